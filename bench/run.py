"""`make bench`: wall time and peak memory, stock versus fast provider import, in the same run.

Every case runs in a fresh process, the way `make synth` runs main.py (or the review CLI), once per
variant and `--runs` times each, after one unmeasured warm-up run per variant; the table shows
medians. Peak memory is the highest sum of RSS over the whole process tree (Python and jsii's two
Node processes), sampled with psutil: `/usr/bin/time -v` reports the largest single process, not
the tree. Fleets come from `bench.fleet`, with network and peering in every customer. Prints the
table and writes it, with the machine it ran on, to bench/RESULTS.md::

    .venv/bin/python -m bench.run [--runs 3] [--sizes 1 100 1000]

A row is a `Case`; add one to `cases()` to measure something else.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import psutil

from bench.fleet import FULL_KINDS, write_fleet
from dataplane.project import (
    CUSTOMERS_DIR_ENV,
    PROJECT_ROOT,
    PROVIDER_IMPORT_ENV,
    SYNTH_WORKERS_ENV,
)
from dataplane.runtime.toolchain import NODE, tool_environment

RESULTS = Path(__file__).with_name("RESULTS.md")
POLL = 0.02  # seconds between memory samples
CHILDREN_EVERY = 5  # samples between looks for new processes in the tree (a look costs ~4 ms)


@dataclass(frozen=True)
class Variant:
    """How the provider is imported: the mode, and flags for the Python interpreter."""

    label: str
    mode: str
    python_flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


VARIANTS = (
    # The plain cdktf app: the provider package's own eager import, one process, no -O.
    Variant("stock", "stock", env={SYNTH_WORKERS_ENV: "1"}),
    # As `make synth` and `cdktf synth` run it: lazy provider import, `python -O` (jsii's Python-side
    # type checks off; Node checks again), and parallel shards for large fleets.
    Variant("fast", "fast", ("-O",)),
)


@dataclass(frozen=True)
class Case:
    """One row: a command (after `python`), its environment, and how many customers it synthesizes."""

    label: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    customers: int = 0  # 0: not a synth, there is no output to compare


@dataclass(frozen=True)
class Measured:
    wall: float
    peak: int


@dataclass(frozen=True)
class Row:
    case: Case
    measured: dict[str, Measured]  # by variant label
    identical: bool | None  # whether every variant synthesized the same bytes; None if not a synth


def synth_case(count: int, scratch: Path) -> Case:
    """main.py over a generated fleet of `count` full customers."""
    customers = scratch / f"fleet-{count}"
    write_fleet(customers, count, FULL_KINDS)
    noun = "customer" if count == 1 else "customers"
    return Case(f"synth, {count:,} {noun}", ("main.py",), {CUSTOMERS_DIR_ENV: str(customers)}, count)


def review_case(count: int, scratch: Path, env: dict[str, str]) -> Case:
    """`python -m dataplane review` of two synths of `count` customers: 5 added, 5 removed, a tenth changed."""
    base, head = scratch / "review-base", scratch / "review-head"
    write_fleet(base, count, FULL_KINDS)
    write_fleet(head, count + 5, FULL_KINDS)
    for index in range(5):
        (head / f"customer-{index:04d}.toml").unlink()
    for path in sorted(head.glob("*.toml"))[::10]:
        path.write_text(path.read_text().replace('external_id = "astro-', 'external_id = "astro-rotated-'))
    for customers in (base, head):
        outdir = {CUSTOMERS_DIR_ENV: str(customers), "CDKTF_OUTDIR": str(customers.with_suffix(".out"))}
        subprocess.run([sys.executable, "main.py"], cwd=PROJECT_ROOT, env={**env, **outdir}, check=True,
                       capture_output=True)
    return Case(f"review, {count:,} customers", ("-m", "dataplane", "review", "--base", str(base.with_suffix(".out")),
                                                 "--head", str(head.with_suffix(".out"))))


def cases(sizes: list[int], scratch: Path, env: dict[str, str]) -> list[Case]:
    return [synth_case(count, scratch) for count in sizes] + [review_case(max(sizes), scratch, env)]


def tree_rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def measure(argv: list[str], env: dict[str, str]) -> Measured:
    """Run once; wall time and peak RSS of the process tree. Raises on a non-zero exit."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        root = psutil.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        tree, peak, samples = [root], 0, 0
        while True:
            if samples % CHILDREN_EVERY == 0:
                with contextlib.suppress(psutil.Error):
                    tree = [root, *root.children(recursive=True)]
            peak, samples = max(peak, tree_rss(tree)), samples + 1
            with contextlib.suppress(psutil.TimeoutExpired):
                code = root.wait(timeout=POLL)
                break
        wall = time.perf_counter() - start
        if code != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {code}:\n{stderr.read().decode()[-3000:]}")
    return Measured(wall, peak)


def run_case(case: Case, variant: Variant, runs: int, env: dict[str, str], outdir: Path, warm_up: bool) -> Measured:
    """Medians of `runs` runs, after an unmeasured one if `warm_up` (it writes the variant's bytecode
    caches). The last synth stays in `outdir`."""
    argv = [sys.executable, *variant.python_flags, *case.args]
    results = []
    for _ in range(warm_up + runs):
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.parent.mkdir(exist_ok=True)
        run_env = {**env, **case.env, **variant.env, PROVIDER_IMPORT_ENV: variant.mode, "CDKTF_OUTDIR": str(outdir)}
        results.append(measure(argv, run_env))
    results = results[warm_up:]
    return Measured(statistics.median(r.wall for r in results), int(statistics.median(r.peak for r in results)))


def same_output(outdirs: list[Path]) -> bool:
    def files(outdir: Path) -> dict[str, bytes]:
        return {str(p.relative_to(outdir)): p.read_bytes() for p in outdir.rglob("*") if p.is_file()}
    first = files(outdirs[0])
    return all(files(other) == first for other in outdirs[1:])


def table(rows: list[Row]) -> list[str]:
    head = ["case", *(f"{v.label}: wall s / peak MB" for v in VARIANTS), "stock ÷ fast (wall)", "identical output"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        m = row.measured
        cells = [f"{m[v.label].wall:.2f} / {m[v.label].peak / 2**20:.0f}" for v in VARIANTS]
        speedup = f"{m['stock'].wall / m['fast'].wall:.1f}×" if row.case.customers else "n/a"
        identical = {True: "yes", False: "**NO**", None: "n/a"}[row.identical]
        lines.append(f"| {row.case.label} | " + " | ".join(cells) + f" | {speedup} | {identical} |")
    return lines


def targets(rows: list[Row]) -> list[str]:
    """The issue's targets, against the `fast` figures."""
    synth = {row.case.customers: row.measured for row in rows if row.case.customers}

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"
    lines = []
    if 1 in synth:
        fast, speedup = synth[1]["fast"].wall, synth[1]["stock"].wall / synth[1]["fast"].wall
        lines.append(f"- 1 customer: {fast:.2f} s (≤ 2.0 s: {verdict(fast <= 2.0)}), {speedup:.1f}× faster than "
                     f"stock (≥ 5×: {verdict(speedup >= 5)})")
    if 1000 in synth:
        fast = synth[1000]["fast"].wall
        lines.append(f"- 1,000 full customers: {fast:.2f} s (≤ 10 s: {verdict(fast <= 10)})")
    peak = max(m["fast"].peak for m in synth.values()) / 2**20
    lines.append(f"- Peak memory of the process tree, fast, any synth: {peak:.0f} MB "
                 f"(≤ 700 MB: {verdict(peak <= 700)})")
    return lines


def write_section(heading: str, text: str) -> None:
    """Put `text` (starting with the `heading` line) into RESULTS.md in place of that section, or at its end."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    before, found, after = current.partition(heading)
    rest = after[after.find("\n## "):] if found and "\n## " in after else ""
    RESULTS.write_text(f"{before.rstrip()}\n\n{text.rstrip()}\n{rest}", encoding="utf-8")


def machine(load: tuple[float, float]) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    node = subprocess.run([str(NODE), "--version"], capture_output=True, text=True).stdout.strip()
    return [
        f"- CPU: {models[0] if models else platform.processor()}, {os.cpu_count()} logical cores",
        f"- RAM: {psutil.virtual_memory().total / 2**30:.1f} GiB; OS: {platform.platform()}",
        f"- Python {platform.python_version()}, Node {node} (jsii's), cdktf {version('cdktf')}, "
        f"cdktf-cdktf-provider-aws {version('cdktf-cdktf-provider-aws')}, jsii {version('jsii')}",
        f"- Load average (1 min) at start and end: {load[0]:.2f} and {load[1]:.2f}; other work on the machine "
        "inflates the figures",
    ]


def report(rows: list[Row], runs: int, load: tuple[float, float]) -> str:
    return "\n".join([
        "# Synth benchmark: stock versus fast provider import",
        "",
        f"`make bench`, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Median of {runs} runs per cell, each a fresh",
        "process, after one unmeasured warm-up run per variant. Wall time is the whole process; peak memory",
        "is the highest sum of RSS over the process tree (every Python and jsii Node process), sampled",
        "every 20 ms with psutil (`/usr/bin/time -v` reports only the largest single process). Fleets come",
        "from `bench/fleet.py`, network and peering in every customer.",
        "",
        f"- `stock`: the plain cdktf app: the provider package's own eager import (`{PROVIDER_IMPORT_ENV}=stock`),",
        f"  one process (`{SYNTH_WORKERS_ENV}=1`), no `-O`",
        "- `fast`: as `make synth` runs it: `dataplane/runtime/provider_import.py` (only the provider modules in use),",
        "  `python -O` (jsii's Python-side type checks off; the jsii kernel checks the values again in Node),",
        "  and, from 200 customers, parallel shards, one per core (`dataplane/runtime/shards.py`)",
        "",
        *table(rows),
        "",
        "Targets:",
        "",
        *targets(rows),
        "",
        "Machine:",
        "",
        *machine(load),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per case and variant (median reported)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000], help="fleet sizes to synthesize")
    args = parser.parse_args(argv)
    # Bytecode is cached, as on a developer's machine.
    env = {k: v for k, v in tool_environment().items() if k != "PYTHONDONTWRITEBYTECODE"}
    load_start = os.getloadavg()[0]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dataplane-bench-") as tmp:
        scratch = Path(tmp)
        for case in cases(args.sizes, scratch, env):
            measured, outdirs = {}, []
            for number, variant in enumerate(VARIANTS):
                outdirs.append(scratch / f"out-{len(rows)}-{number}" / "cdktf.out")
                measured[variant.label] = m = run_case(case, variant, args.runs, env, outdirs[-1], warm_up=not rows)
                print(f"{case.label}, {variant.label}: {m.wall:.2f} s, {m.peak / 2**20:.0f} MB", file=sys.stderr)
            rows.append(Row(case, measured, same_output(outdirs) if case.customers else None))
    text = report(rows, args.runs, (load_start, os.getloadavg()[0]))
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 1 if any(row.identical is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
