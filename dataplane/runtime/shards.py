"""Synthesize a large fleet in parallel shards, one process each, merged into one output.

Each jsii call is a synchronous round trip between Python and jsii's Node process, so one app
uses about one core. Above `SHARD_MIN` customers per worker, `main.py` synthesizes shard 0
itself and runs itself once for each other shard (`--shard i/n`: customers i, i+n, ...), each
into its own directory inside the synth's private staging directory (no idle parent: memory
stays at one app per core), then moves the stacks together and writes the merged `manifest.json`
exactly as cdktf writes it (json-stable-stringify, two-space indent). `main.py` publishes the
result only when every shard succeeded. `DATAPLANE_SYNTH_WORKERS` sets the number of workers
(default: the CPU count; 1 turns sharding off).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from dataplane.project import OUTDIR_ENV, SYNTH_WORKERS_ENV
from dataplane.synth_output import MANIFEST, STACKS

SHARD_MIN = 100


class ShardError(Exception):
    """A shard's synth failed (its own error output says why)."""


def workers(customers: int) -> int:
    """How many shards `customers` warrant: at most the CPU count, each of at least SHARD_MIN."""
    configured = int(os.environ.get(SYNTH_WORKERS_ENV) or os.cpu_count() or 1)
    return max(1, min(configured, customers // SHARD_MIN))


def parse(shard: str) -> tuple[int, int]:
    """`i/n` as (i, n)."""
    index, count = (int(part) for part in shard.split("/"))
    if not 0 <= index < count:
        raise ValueError(f"--shard {shard}: expected i/n with 0 <= i < n")
    return index, count


def stable_json(value) -> str:
    """JSON as cdktf writes its manifest: sorted keys, two spaces, empty containers over two lines."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return re.sub(r"^( *)(.*)(\[\]|\{\})", lambda m: f"{m[1]}{m[2]}{m[3][0]}\n{m[1]}{m[3][1]}", text, flags=re.M)


def synthesize(count: int, staged: Path, main: Path, main_args: list[str],
               first_shard: Callable[[Path], None]) -> None:
    """Synthesize shard 0 with `first_shard(dir)` and the others by running `main`, in parallel; merge into `staged`."""
    shard_dirs = [staged / f"shard-{i}" for i in range(count)]
    processes: dict[int, subprocess.Popen] = {}
    try:
        for i in range(1, count):
            argv = [sys.executable, *_python_flags(), str(main), *main_args, "--shard", f"{i}/{count}"]
            processes[i] = subprocess.Popen(argv, env={**os.environ, OUTDIR_ENV: str(shard_dirs[i])})
        first_shard(shard_dirs[0])
        failed = [i for i, p in processes.items() if p.wait() != 0]
        if failed:
            raise ShardError(f"synth failed in shard(s) {', '.join(map(str, failed))}; the output is left unchanged")
        stacks = {}
        for shard_dir in shard_dirs:
            stacks.update(json.loads((shard_dir / MANIFEST).read_text())["stacks"])
        version = json.loads((shard_dirs[0] / MANIFEST).read_text())["version"]
        (staged / STACKS).mkdir(parents=True)
        for shard_dir in shard_dirs:
            for stack in (shard_dir / STACKS).iterdir():
                stack.rename(staged / STACKS / stack.name)
        (staged / MANIFEST).write_text(stable_json({"stacks": stacks, "version": version}), encoding="utf-8")
    finally:
        for process in processes.values():  # only still running when shard 0 failed
            process.kill()
            process.wait()
        for shard_dir in shard_dirs:
            shutil.rmtree(shard_dir, ignore_errors=True)


def _python_flags() -> list[str]:
    return ["-O"] * sys.flags.optimize
