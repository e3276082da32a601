"""`make bench`, rollout part: `python -m dataplane rollout` of a contract change against plain terraform.

Twenty role-only customers, each in its own account, are deployed into a moto server on 127.0.0.1
(`bench.plans.deploy`: one CI identity, `deployRoleName` in every account). Then four contract changes, each a
new `maxSessionDuration` for every role (synthesized before the clock starts), are taken to the fleet four ways:

- `rollout`: `python -m dataplane rollout --jobs 2` (plan all with adopt, waves 1/10/50/100 %, apply the saved
  plans, outputs, verify, the record);
- `terraform, 2 at a time`: `terraform plan -out` and `terraform apply` of each stack, two stacks at once;
- `terraform, one after another`: the same, one stack at a time, as applying stack by stack by hand would;
- `cdktf, one after another`: the stock CLI's `cdktf deploy <stack> --skip-synth --auto-approve`, stack by stack.

Every stack directory is initialized once before (as a CI runner with the plugin cache would have it), the same
for all four. Wall time and peak RSS of the process tree as in `bench.run`; the rollout's time per wave from its
record. Target: the rollout within 25 % of plain plan + apply of the same stacks at the same parallelism. Writes
its section to bench/RESULTS.md::

    .venv/bin/python -m bench.rollout [--customers 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.plans import CI_ACCOUNT, deploy
from bench.run import Measured, measure, write_section
from dataplane.config.settings import load_settings
from dataplane.ops.account.aws import acting_as
from dataplane.ops.fleet.plan import account_of
from dataplane.ops.sandbox import Emulator
from dataplane.project import CUSTOMERS_DIR_ENV, OUTDIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from dataplane.runtime.toolchain import tool_environment

HEADING = "## Rollout of a contract change"
JOBS = 2


def apply_each(outdir: Path, jobs: int) -> None:
    """`terraform plan -out` and `terraform apply` of every stack, `jobs` at a time, each in its account (the
    settings' `deployRoleName`, as the rollout reaches it): what the rollout is compared with."""
    settings, environment = load_settings(), tool_environment()

    def one(stack: Path) -> None:
        role = settings.deploy_role_arn(account_of(stack))
        env = acting_as(role, f"bench-{stack.name}", environment).environment
        for command in (["plan", "-input=false", "-no-color", "-out=bench.tfplan"],
                        ["apply", "-input=false", "-no-color", "bench.tfplan"]):
            subprocess.run(["terraform", *command], cwd=stack, env=env, check=True, capture_output=True)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, sorted((outdir / "stacks").iterdir())))


def cdktf_each(outdir: Path) -> None:
    """The stock cdktf CLI's `cdktf deploy <stack> --skip-synth --auto-approve` of every stack, one after another, each
    in its account (the settings' `deployRoleName`, as the rollout reaches it): the stock way of applying a change
    stack by stack (the synth it skips is the same for every way, done before)."""
    settings, environment = load_settings(), tool_environment()
    for stack in sorted((outdir / "stacks").iterdir()):
        env = acting_as(settings.deploy_role_arn(account_of(stack)), f"bench-{stack.name}", environment).environment
        subprocess.run(["npx", "cdktf", "deploy", stack.name, "--skip-synth", "--auto-approve", "--output",
                        str(outdir)], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)


def change(scratch: Path, outdir: Path, settings: Path, max_session: int) -> None:
    """Every role's maximum session set to `max_session`, synthesized (not measured)."""
    document = json.loads(settings.read_text())
    document["context"]["maxSessionDuration"] = max_session
    settings.write_text(json.dumps(document))
    env = {**tool_environment(), CUSTOMERS_DIR_ENV: str(scratch / "customers"), SETTINGS_ENV: str(settings),
           OUTDIR_ENV: str(outdir)}
    subprocess.run([sys.executable, "-O", "main.py"], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)


def section(count: int, rows: dict[str, Measured], record: dict) -> str:
    rollout, parallel = rows["rollout"], rows["parallel"]
    waves = ", ".join(f"{len(wave)} in {seconds:.1f} s" for wave, seconds in zip(record["waves"],
                                                                               record["wave_seconds"]))
    ratio = rollout.wall / parallel.wall
    lines = [HEADING, "", f"A contract change (every role's `maxSessionDuration`) taken to {count} deployed role-only "
             "customers (one account each) against moto on 127.0.0.1, one CI identity assuming `deployRoleName` per "
             "account, every stack initialized before; one run each (`bench/rollout.py`).", "",
             "| how | wall s | peak MB |", "|---|---|---|",
             f"| `python -m dataplane rollout --jobs {JOBS}` (plan all, adopt, waves, apply, outputs, verify, record) "
             f"| {rollout.wall:.1f} | {rollout.peak / 2**20:.0f} |",
             f"| terraform plan + apply, {JOBS} stacks at a time | {parallel.wall:.1f} | {parallel.peak / 2**20:.0f} |",
             f"| terraform plan + apply, one after another | {rows['serial'].wall:.1f} | "
             f"{rows['serial'].peak / 2**20:.0f} |",
             f"| stock `cdktf deploy <stack> --skip-synth`, one after another | {rows['cdktf'].wall:.1f} | "
             f"{rows['cdktf'].peak / 2**20:.0f} |", "",
             f"The rollout's waves (stacks, time): {waves}; planning before the first wave "
             f"{rollout.wall - sum(record['wave_seconds']):.1f} s (with the process start and the record).", "",
             f"Target: the rollout within 25 % of plain terraform plan + apply at the same parallelism: "
             f"{ratio:.2f}× ({'met' if ratio <= 1.25 else '**missed**'}); against one after another: "
             f"{rollout.wall / rows['serial'].wall:.2f}×; the stock CLI one stack after another takes "
             f"{rows['cdktf'].wall / rollout.wall:.1f}× the rollout's time.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20, help="deployed customers to roll out to (20)")
    parser.add_argument("--apply-each", type=Path, metavar="OUTDIR", help=argparse.SUPPRESS)
    parser.add_argument("--cdktf-each", type=Path, metavar="OUTDIR", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=JOBS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.apply_each:
        apply_each(args.apply_each, args.jobs)
        return 0
    if args.cdktf_each:
        cdktf_each(args.cdktf_each)
        return 0
    emulator = Emulator()
    try:
        with tempfile.TemporaryDirectory(prefix="dataplane-bench-rollout-") as tmp:
            scratch = Path(tmp)
            outdir, settings = deploy(emulator, scratch, args.customers)
            env = {**emulator.env(CI_ACCOUNT, "us-east-1", tool_environment()), SETTINGS_ENV: str(settings),
                   CUSTOMERS_DIR_ENV: str(scratch / "customers")}
            runs = {
                "rollout": [sys.executable, "-m", "dataplane", "rollout", "--outdir", str(outdir), "--jobs", str(JOBS),
                            "--records-dir", str(scratch / "rollouts"), "--outputs-dir", str(scratch / "outputs")],
                "parallel": [sys.executable, "-m", "bench.rollout", "--apply-each", str(outdir), "--jobs", str(JOBS)],
                "serial": [sys.executable, "-m", "bench.rollout", "--apply-each", str(outdir), "--jobs", "1"],
                "cdktf": [sys.executable, "-m", "bench.rollout", "--cdktf-each", str(outdir)],
            }
            rows = {}
            for number, (name, argv) in enumerate(runs.items(), 2):
                change(scratch, outdir, settings, 3600 * number)
                rows[name] = measure(argv, env)
                print(f"{name}: {rows[name].wall:.1f} s, {rows[name].peak / 2**20:.0f} MB", file=sys.stderr)
            [record] = (scratch / "rollouts").glob("*.json")
            text = section(args.customers, rows, json.loads(record.read_text()))
    finally:
        emulator.stop()
    write_section(HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
