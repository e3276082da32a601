"""The synthesized output (`cdktf.out`): its layout, and publishing a synth into it safely.

The layout is cdktf's: `<outdir>/manifest.json` names the stacks, and each stack lives in
`<outdir>/stacks/<name>/` with its `cdk.tf.json` (and the provider lock file `main.py` copies in).
Terraform keeps its own files there too (`.terraform/`), so a synth never writes into the output
directly: it writes into a private directory beside it, and `publish` then moves in only the files
the synth produced, each atomically and only when it changed, removes the stacks of customers no
longer in the fleet, and leaves every other file alone. Publishing holds a lock, so concurrent
synths take turns; a synth that fails publishes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from dataplane.project import CDKTF_CLI_ENV

MANIFEST = "manifest.json"
STACKS = "stacks"
STACK_FILE = "cdk.tf.json"
IMPORTS_FILE = "adopt.tf.json"
"""Terraform import blocks adopt writes beside a stack's file, in a deploy's private directory only."""
LOCK = ".synth.lock"


def stack_dir(outdir: Path, name: str) -> Path:
    """Where terraform runs for stack `name`."""
    return outdir / STACKS / name


@contextlib.contextmanager
def private_dir(outdir: Path, purpose: str) -> Iterator[Path]:
    """A new directory beside `outdir` (same parent, so relative state paths agree), removed afterwards.

    Directories of this kind left by killed processes are removed first.
    """
    outdir.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{outdir.name}.{purpose}."
    for left in outdir.parent.glob(f"{glob.escape(prefix)}*"):
        if not _alive(left.name.removeprefix(prefix).split(".", 1)[0]):
            shutil.rmtree(left, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", dir=outdir.parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def publish(staged: Path, outdir: Path) -> list[str]:
    """Make `outdir` hold exactly the stacks synthesized into `staged`; returns their names.

    Under the cdktf CLI the stacks of removed customers are left for the CLI, which removes them
    after the synth (and fails if they are already gone).
    """
    names = sorted(json.loads((staged / MANIFEST).read_text(encoding="utf-8"))["stacks"])
    (outdir / STACKS).mkdir(parents=True, exist_ok=True)
    with open(outdir / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in names:
            _move_files(stack_dir(staged, name), stack_dir(outdir, name))
        for old in (outdir / STACKS).iterdir():
            if old.name not in names and old.is_dir() and not old.is_symlink() and CDKTF_CLI_ENV not in os.environ:
                shutil.rmtree(old)
        _move_file(staged / MANIFEST, outdir / MANIFEST)
    return names


def _move_files(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            _move_file(path, target / path.relative_to(source))


def _move_file(source: Path, target: Path) -> None:
    """Replace `target` by `source` atomically, unless it already holds the same bytes."""
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
