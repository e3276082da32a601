"""`python -m dataplane deploy <customer>`: synth, adopt, then the pinned cdktf CLI, in a private workspace.

A deploy never works in the shared synth output: it synthesizes its one customer into a new
directory beside it (same parent, so the local state path is the same one), adopts there, and
runs `cdktf deploy` on that directory (`plan_customer`: `terraform plan` there, for `make plan`). No other
synth can change its files while it runs, and the import blocks adopt writes go with the directory:
a killed deploy leaves nothing that a later plan would apply. `python -m dataplane adopt <customer>`
shows what a deploy would adopt.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from dataplane import synth_output
from dataplane.config.customer import Customer
from dataplane.ops.fleet.adopt import adopt, write_imports
from dataplane.project import PROJECT_ROOT
from dataplane.runtime.toolchain import (
    INIT,
    TerraformError,
    terraform,
    tool_environment,
)

MAIN = PROJECT_ROOT / "main.py"


class SynthError(Exception):
    """main.py failed for the customer; carries its error output."""


@contextlib.contextmanager
def workspace(customer: Customer, outdir: Path) -> Iterator[Path]:
    """`customer`'s stack synthesized into a private directory beside `outdir`; yields the output directory."""
    with synth_output.private_dir(outdir, f"deploy-{customer.name}") as workdir:
        done = subprocess.run([sys.executable, "-O", str(MAIN), "--customer", customer.name], cwd=PROJECT_ROOT,
                              env={**tool_environment(), "CDKTF_OUTDIR": str(workdir)},
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SynthError(done.stderr.strip() or done.stdout.strip())
        yield workdir


def planned_imports(customer: Customer, outdir: Path) -> list[dict]:
    """What a deploy of `customer` would adopt now (writes nothing)."""
    with workspace(customer, outdir) as workdir:
        return adopt(synth_output.stack_dir(workdir, customer.name), customer.name)


def plan_customer(customer: Customer, outdir: Path) -> int:
    """`terraform plan` of `customer`'s stack as synthesized now, printed as terraform prints it; its exit status.

    The stock `cdktf plan` synthesizes the whole fleet and starts the cdktf CLI first; this synthesizes one
    stack and runs terraform itself, with the project's CLI config (its shared plugin cache).
    """
    with workspace(customer, outdir) as workdir:
        stack_dir = synth_output.stack_dir(workdir, customer.name)
        try:
            terraform(stack_dir, INIT)
        except TerraformError as e:
            print(e, file=sys.stderr)
            return 1
        return subprocess.run(["terraform", "plan", "-input=false"], cwd=stack_dir, env=tool_environment()).returncode


def deploy(customer: Customer, outdir: Path, outputs_dir: Path) -> int:
    """Adopt what is provably ours, then `cdktf deploy`; returns the CLI's exit status."""
    with workspace(customer, outdir) as workdir:
        stack_dir = synth_output.stack_dir(workdir, customer.name)
        imports = adopt(stack_dir, customer.name)
        for block in imports:
            print(f"adopting {block['to']} = {block['id']}", flush=True)
        if imports:
            write_imports(stack_dir, imports)
        outputs_dir.mkdir(parents=True, exist_ok=True)
        outputs_file = (outputs_dir / f"{customer.name}.json").resolve()
        return subprocess.run(["cdktf", "deploy", customer.name, "--skip-synth", "--auto-approve",
                               f"--output={workdir}", f"--outputs-file={outputs_file}"],
                              cwd=PROJECT_ROOT, env=tool_environment()).returncode
