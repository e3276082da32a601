"""`make bench`, activation part: `make plan`, `make deploy` and `make activate` of the peering fixture against
moto, side by side with the stock way in the same run.

The stock way is the cdktf CLI as its docs describe it: `npx cdktf plan|deploy globex`, which synthesizes
the app (here the plain one: the provider package's own import, no `-O`, one process), then runs
terraform with no plugin cache (a CLI config holding only the provider mirror: every run installs the
provider into its stack directory). Every run starts from a fresh output directory and, for deploys,
an emptied emulator with the customer's own resources created again. Each cell is the median of
`--runs` runs; the deploy row also shows where its time goes (synth, adopt, terraform init, apply)
from the project's own steps timed separately. Appends its section to bench/RESULTS.md::

    .venv/bin/python -m bench.activation [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from bench.run import write_section
from dataplane.config.settings import load_project
from dataplane.ops.sandbox import Emulator, create_deployer
from dataplane.project import (
    OUTDIR_ENV,
    PROJECT_ROOT,
    PROVIDER_IMPORT_ENV,
    SYNTH_WORKERS_ENV,
)
from dataplane.runtime.toolchain import INIT, cli_config, find_mirror
from tests.conftest import FIXTURES
from tests.deploy import Deployment, stage

HEADING = "## Plan, deploy and activate of one customer"
KEPT_INIT = "deploy (fresh account, the customer's init kept)"
"""A deploy after the customer's `make plan`: `terraform init` done before, as for the bare rows (`init_cache`)."""
CUSTOMER = "globex"


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


class Bench:
    def __init__(self, emulator: Emulator, scratch: Path):
        self.emulator, self.scratch = emulator, scratch
        settings, customers = load_project(customers_dir=FIXTURES)
        self.settings, self.customer = settings, {c.name: c for c in customers}[CUSTOMER]
        self.no_cache = scratch / "no-cache.terraformrc"
        self.no_cache.write_text(cli_config(find_mirror(), plugin_cache=None))
        self.runs = 0
        self.retries: list[str] = []

    def fresh(self, deployed: bool) -> Deployment:
        """An emptied emulator with the customer's own resources, in a new work directory; deployed if asked."""
        self.emulator.reset()
        self.runs += 1
        create_deployer(self.emulator, self.customer)
        deployment = stage(self.emulator, self.customer, self.settings, self.scratch / f"run-{self.runs}")
        if deployed:
            timed(["make", "-s", *self.make_args(deployment, "deploy")], deployment.env)
        return deployment

    def planned(self) -> Deployment:
        """A fresh account whose customer was planned before (not timed): its init kept, as the bare rows' is."""
        deployment = self.fresh(deployed=False)
        timed(["make", "-s", *self.make_args(deployment, "plan")], deployment.env)
        return deployment

    @staticmethod
    def make_args(deployment: Deployment, target: str) -> list[str]:
        return [target, f"CUSTOMER={CUSTOMER}", f"CDKTF_OUT={deployment.workdir / 'cdktf.out'}",
                f"OUTPUTS={deployment.workdir}", f"RECORDS={deployment.workdir / 'activations'}"]

    def stock(self, deployment: Deployment, command: str) -> float:
        env = {**deployment.env, "TF_CLI_CONFIG_FILE": str(self.no_cache), PROVIDER_IMPORT_ENV: "stock",
               SYNTH_WORKERS_ENV: "1"}
        out = deployment.workdir / f"stock-{command}.out"
        extra = ["--auto-approve"] if command == "deploy" else []
        return timed(["npx", "cdktf", command, CUSTOMER, "--app", f"{sys.executable} main.py", "--output", str(out),
                      *extra], env)

    def ours(self, deployment: Deployment, target: str) -> float:
        return timed(["make", "-s", *self.make_args(deployment, target)], deployment.env)

    def bare(self, deployment: Deployment, command: str) -> float:
        """Terraform alone on the same stack: synthesized and initialized beforehand (not timed), then `terraform
        plan` or `apply` timed; what `make plan` and `make deploy` add is measured against it."""
        out = deployment.workdir / "bare.out"  # beside the workdir's state, as the project's own outdirs are
        timed([sys.executable, "-O", "main.py", "--customer", CUSTOMER], {**deployment.env, OUTDIR_ENV: str(out)})
        stack_dir = out / "stacks" / CUSTOMER
        timed(["terraform", f"-chdir={stack_dir}", *INIT], deployment.env)
        argv = ["apply", "-auto-approve"] if command == "apply" else ["plan"]
        return timed(["terraform", f"-chdir={stack_dir}", *argv, "-input=false"], deployment.env)

    def retried(self, measured: Callable[[], float]) -> float:
        """A fresh deploy's time; once more on failure (moto now and then refuses to accept a peering it has
        just created: `InvalidStateTransition`), counted in `self.retries`."""
        try:
            return measured()
        except RuntimeError as e:
            self.retries.append(str(e).splitlines()[0])
            return measured()

    def phases(self) -> dict[str, float]:
        """The project's deploy, step by step: synth of one customer, adopt, terraform init, apply."""
        deployment = self.fresh(deployed=False)
        out = deployment.workdir / "phases.out"
        phases = {"synth": timed([sys.executable, "-O", "main.py", "--customer", CUSTOMER],
                                 {**deployment.env, OUTDIR_ENV: str(out)})}
        stack_dir = out / "stacks" / CUSTOMER
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sys; from dataplane.ops.fleet.adopt import adopt; "
                        "from pathlib import Path; adopt(Path(sys.argv[1]), sys.argv[2])", str(stack_dir), CUSTOMER],
                       cwd=PROJECT_ROOT, env=deployment.env, check=True, capture_output=True)
        phases["adopt"] = time.perf_counter() - started
        phases["terraform init"] = timed(["terraform", f"-chdir={stack_dir}", *INIT], deployment.env)
        phases["terraform apply"] = timed(["terraform", f"-chdir={stack_dir}", "apply", "-auto-approve",
                                           "-input=false"], deployment.env)
        phases["cdktf CLI start"] = timed(["npx", "cdktf", "--version"], deployment.env)
        return phases


def median(values: list[float]) -> float:
    return statistics.median(values)


def section(rows: dict[str, tuple[float, float | None]], phases: dict[str, float], runs: int,
            retries: list[str]) -> str:
    lines = [HEADING, "", f"The peering fixture (`{CUSTOMER}`) against moto on 127.0.0.1; median of {runs} runs, "
             "each from a fresh output directory (deploys: an emptied emulator). The bare rows are terraform alone on "
             "the same stack, synthesized and initialized beforehand: what the make targets add (synth, adopt, "
             "outputs, the tool's start) is the difference. A customer's `terraform init` is kept between its runs "
             "(`dataplane/ops/fleet/init_cache.py`): the first deploy pays it, later plans and deploys do not.", "",
             "| case | project: wall s | stock `npx cdktf`: wall s | stock ÷ project |", "|---|---|---|---|"]
    for label, (ours, stock) in rows.items():
        ratio = f"{stock / ours:.1f}×" if stock else "n/a"
        lines.append(f"| {label} | {ours:.1f} | {f'{stock:.1f}' if stock else 'n/a'} | {ratio} |")
    for target, label, bare, goal in (("make plan", "plan (deployed, no changes)", "bare terraform plan", 2),
                                      ("make deploy", KEPT_INIT, "bare terraform apply", 3),
                                      ("make deploy", "deploy (fresh account)", "bare terraform apply", None)):
        overhead = rows[label][0] - rows[bare][0]
        aim = f"target: {goal} s or less, {'met' if overhead <= goal else '**missed**'}" if goal else "with its init"
        lines.append(f"- `{target}` ({label}) above a {bare} of the same stack: {overhead:+.1f} s ({aim})")
    lines += ["", "Where a project deploy's time goes (each step run on its own, once):", ""]
    lines += [f"- {name}: {seconds:.1f} s" for name, seconds in phases.items()]
    lines += ["", f"Deploys run again after an emulator failure: {len(retries)}"]
    lines += [f"- `{failure}`" for failure in retries]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.activation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (median reported)")
    args = parser.parse_args(argv)
    emulator = Emulator()
    try:
        with tempfile.TemporaryDirectory(prefix="dataplane-bench-activation-") as tmp:
            bench = Bench(emulator, Path(tmp))
            samples: dict[str, tuple[list[float], list[float]]] = {
                "plan (deployed, no changes)": ([], []), "bare terraform plan": ([], []),
                "deploy (fresh account)": ([], []), KEPT_INIT: ([], []), "bare terraform apply": ([], []),
                "activate": ([], [])}
            for _ in range(args.runs):
                deployed = bench.fresh(deployed=True)
                samples["plan (deployed, no changes)"][0].append(bench.ours(deployed, "plan"))
                samples["plan (deployed, no changes)"][1].append(bench.stock(deployed, "plan"))
                samples["bare terraform plan"][0].append(bench.bare(deployed, "plan"))
                samples["deploy (fresh account)"][0].append(bench.retried(lambda: bench.ours(
                    bench.fresh(deployed=False), "deploy")))
                samples[KEPT_INIT][0].append(bench.retried(lambda: bench.ours(bench.planned(), "deploy")))
                samples["deploy (fresh account)"][1].append(bench.retried(lambda: bench.stock(
                    bench.fresh(deployed=False), "deploy")))
                samples["bare terraform apply"][0].append(bench.retried(lambda: bench.bare(
                    bench.fresh(deployed=False), "apply")))
                samples["activate"][0].append(bench.retried(lambda: bench.ours(bench.fresh(deployed=False),
                                                                                "activate")))
                for dirs in Path(tmp).glob("run-*"):
                    shutil.rmtree(dirs, ignore_errors=True)
            rows = {label: (median(ours), median(stock) if stock else None)
                    for label, (ours, stock) in samples.items()}
            for label, (ours, stock) in rows.items():
                print(f"{label}: {ours:.1f} s, stock {stock or 0:.1f} s", file=sys.stderr)
            phases = bench.phases()
    finally:
        emulator.stop()
    text = section(rows, phases, args.runs, bench.retries)
    write_section(HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
