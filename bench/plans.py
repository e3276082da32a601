"""`make bench`, fleet part: `python -m dataplane plan-stacks` and `drift` of a deployed fleet against the emulator.

Twenty role-only fixture customers, each in its own account, are deployed into a moto server on
127.0.0.1 (terraform apply per stack), then planned in the same run four ways: `--jobs 1` and
`--jobs 2`, each with the project's shared plugin cache and without it (a CLI config with the
same provider mirror but no `plugin_cache_dir`: every stack installs the provider itself, the
stock terraform way). Every stack's `.terraform` is removed before each variant, so each pays
for its init. One CI identity plans every account through the `deployRoleName` setting, as the
pull-request workflow does. Each variant runs once (a plan of 20 stacks is long enough to
measure); wall time and peak RSS of the process tree as in `bench.run`. Then `drift` of the same fleet,
`--jobs 1` and `--jobs 2` (target: 60 s with 2 jobs). Writes its section
to bench/RESULTS.md::

    .venv/bin/python -m bench.plans [--customers 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.fleet import write_fleet
from bench.run import Measured, measure, write_section
from dataplane.ops.fleet.plan import account_of
from dataplane.ops.sandbox import Emulator
from dataplane.project import CUSTOMERS_DIR_ENV, OUTDIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from dataplane.runtime.toolchain import cli_config, find_mirror, tool_environment

HEADING = "## Plan of a deployed fleet"
CI_ACCOUNT = "999999999999"
DEPLOY_ROLE = "dataplane-deploy"
WITHOUT_CACHE = ("import sys; from pathlib import Path; from dataplane.runtime import toolchain; "
                 "toolchain.TERRAFORM_CLI_CONFIG = Path(sys.argv[1]); from dataplane.ops.cli import main; "
                 "sys.exit(main(sys.argv[2:]))")


def deploy(emulator: Emulator, scratch: Path, count: int) -> tuple[Path, Path]:
    """Synthesize `count` role-only customers and apply each stack; (synth output, settings file)."""
    customers, outdir, settings = scratch / "customers", scratch / "cdktf.out", scratch / "cdktf.json"
    write_fleet(customers, count, ("role-only",))
    project = json.loads((PROJECT_ROOT / "cdktf.json").read_text())
    settings.write_text(json.dumps({"context": {**project["context"], "deployRoleName": DEPLOY_ROLE}}))
    env = {**tool_environment(), CUSTOMERS_DIR_ENV: str(customers), SETTINGS_ENV: str(settings),
           OUTDIR_ENV: str(outdir)}
    subprocess.run([sys.executable, "-O", "main.py"], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)

    def apply(stack: Path) -> None:
        stack_env = emulator.env(account_of(stack), "us-east-1", tool_environment())
        for command in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
            subprocess.run(["terraform", *command], cwd=stack, env=stack_env, check=True, capture_output=True)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(apply, sorted((outdir / "stacks").iterdir())))
    return outdir, settings


def variant(outdir: Path, settings: Path, env: dict[str, str], jobs: int, config: Path | None) -> Measured:
    for stack in (outdir / "stacks").iterdir():
        shutil.rmtree(stack / ".terraform", ignore_errors=True)
    plan = ["plan-stacks", "--outdir", str(outdir), "--out", str(outdir.parent / "plans"), "--jobs", str(jobs)]
    argv = [sys.executable, "-m", "dataplane", *plan] if config is None else [
        sys.executable, "-c", WITHOUT_CACHE, str(config), *plan]
    return measure(argv, {**env, SETTINGS_ENV: str(settings)})


def drift(outdir: Path, settings: Path, env: dict[str, str], jobs: int) -> Measured:
    """`python -m dataplane drift` of the deployed fleet (every stack in sync: exit 0)."""
    return measure([sys.executable, "-m", "dataplane", "drift", "--outdir", str(outdir), "--jobs", str(jobs)],
                   {**env, SETTINGS_ENV: str(settings)})


def section(count: int, rows: dict[tuple[int, bool], Measured], drifts: dict[int, Measured]) -> str:
    lines = [HEADING, "", f"`python -m dataplane plan-stacks` of {count} deployed role-only customers (one account each) "
             "against moto on 127.0.0.1, one CI identity assuming `deployRoleName` per account; every stack "
             "initialized anew in each variant; one run each.", "",
             "| jobs | shared plugin cache: wall s / peak MB | no cache (stock): wall s / peak MB | stock ÷ cache |",
             "|---|---|---|---|"]
    for jobs in (1, 2):
        cached, stock = rows[jobs, True], rows[jobs, False]
        lines.append(f"| {jobs} | {cached.wall:.1f} / {cached.peak / 2**20:.0f} | {stock.wall:.1f} / "
                     f"{stock.peak / 2**20:.0f} | {stock.wall / cached.wall:.1f}× |")
    speedup = rows[1, True].wall / rows[2, True].wall
    lines += ["", f"`--jobs 2` versus `--jobs 1`, with the cache: {speedup:.2f}× faster.", "",
              f"`python -m dataplane drift` (refresh-only plans) of the same {count} deployed customers:", "",
              "| jobs | wall s / peak MB |", "|---|---|"]
    lines += [f"| {jobs} | {m.wall:.1f} / {m.peak / 2**20:.0f} |" for jobs, m in sorted(drifts.items())]
    met = "met" if drifts[2].wall <= 60 else "**missed**"
    lines += ["", f"Target: drift over {count} customers within 60 s with 2 jobs: {drifts[2].wall:.1f} s, {met}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plans", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20, help="deployed customers to plan (20)")
    args = parser.parse_args(argv)
    emulator = Emulator()
    try:
        with tempfile.TemporaryDirectory(prefix="dataplane-bench-plan-") as tmp:
            scratch = Path(tmp)
            outdir, settings = deploy(emulator, scratch, args.customers)
            no_cache = scratch / "no-cache.terraformrc"
            no_cache.write_text(cli_config(find_mirror(), plugin_cache=None))
            env = emulator.env(CI_ACCOUNT, "us-east-1", tool_environment())
            rows = {}
            for cached in (True, False):
                for jobs in (1, 2):
                    rows[jobs, cached] = m = variant(outdir, settings, env, jobs, None if cached else no_cache)
                    print(f"plan, jobs {jobs}, cache {cached}: {m.wall:.1f} s, {m.peak / 2**20:.0f} MB",
                          file=sys.stderr)
            drifts = {jobs: drift(outdir, settings, env, jobs) for jobs in (1, 2)}
    finally:
        emulator.stop()
    text = section(args.customers, rows, drifts)
    write_section(HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
