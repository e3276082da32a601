"""`python -m dataplane deploy <customer>`: synth, adopt, then terraform apply, in a private workspace.

A deploy never works in the shared synth output: it synthesizes its one customer into a new
directory beside it (same parent, so the local state path is the same one), adopts there, and
applies that directory (`plan_customer`: `terraform plan` there, for `make plan`). No other
synth can change its files while it runs, and the import blocks adopt writes go with the directory:
a killed deploy leaves nothing that a later plan would apply. `python -m dataplane adopt <customer>`
shows what a deploy would adopt.

The deploy runs what `cdktf deploy` runs, without the CLI (its start-up, its spinner): `terraform apply
-auto-approve` with the same environment (the deployer's credentials, the project's CLI config), in a directory
initialized as the customer's last run left it (`init_cache`: `terraform init` only when terraform asks for it), and
writes the outputs file `<outputs dir>/<customer>.json` byte for byte as `cdktf deploy --outputs-file` does
(`outputs_file_text`), from the outputs the applied state records (what `terraform output -json` prints, without
starting terraform again). A destroy (`destroy_stack`) is `terraform init` and `terraform destroy -auto-approve`, as
`cdktf destroy`'s. Each prints its progress lines and keeps terraform's output in a log
(`dataplane/ops/fleet/progress.py`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import boto3

from dataplane import synth_output
from dataplane.config.customer import Customer
from dataplane.ops.files import write_atomically
from dataplane.ops.fleet import init_cache, state
from dataplane.ops.fleet.adopt import adopt, write_imports
from dataplane.ops.fleet.progress import Progress
from dataplane.project import PROJECT_ROOT
from dataplane.runtime.toolchain import INIT, tool_environment

MAIN = PROJECT_ROOT / "main.py"
APPLY = ["apply", "-auto-approve", "-input=false", "-no-color"]
PLAN = ["plan", "-input=false", "-no-color"]
DESTROY = ["destroy", "-auto-approve", "-input=false", "-no-color"]


class SynthError(Exception):
    """main.py failed for the customer; carries its error output."""


@contextlib.contextmanager
def workspace(customer: Customer, outdir: Path, also: Sequence[Customer] = ()) -> Iterator[Path]:
    """`customer`'s stack (and those of `also`, in the same synth) synthesized into a private directory beside
    `outdir`; yields the output directory."""
    with synth_output.private_dir(outdir, f"deploy-{customer.name}") as workdir:
        names = [arg for c in (customer, *also) for arg in ("--customer", c.name)]
        done = subprocess.run([sys.executable, "-O", str(MAIN), *names], cwd=PROJECT_ROOT,
                              env={**tool_environment(), "CDKTF_OUTDIR": str(workdir)},
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SynthError(done.stderr.strip() or done.stdout.strip())
        yield workdir


@contextlib.contextmanager
def _synthesized(customer: Customer, outdir: Path, progress: Progress) -> Iterator[Path]:
    """`workspace`, its synth timed on a progress line; yields the stack's directory."""
    started = time.monotonic()
    with workspace(customer, outdir) as workdir:
        progress.say(f"synth {time.monotonic() - started:.1f} s")
        yield synth_output.stack_dir(workdir, customer.name)


def planned_imports(customer: Customer, outdir: Path) -> list[dict]:
    """What a deploy of `customer` would adopt now (writes nothing)."""
    with workspace(customer, outdir) as workdir:
        return adopt(synth_output.stack_dir(workdir, customer.name), customer.name)


def plan_customer(customer: Customer, outdir: Path) -> int:
    """`terraform plan` of `customer`'s stack as synthesized now: its result and each resource it would change
    printed, the whole plan in the log; its exit status.

    The stock `cdktf plan` synthesizes the whole fleet and starts the cdktf CLI first; this synthesizes one
    stack and runs terraform itself, with the project's CLI config (its shared plugin cache).
    """
    progress = Progress("plan", customer.name, outdir)
    with _synthesized(customer, outdir, progress) as stack_dir:
        planned = init_cache.run(progress, "plan", PLAN, stack_dir, outdir, customer.name)
        if planned.ok:
            for line in planned.output.splitlines():
                if line.lstrip().startswith("# ") and (" will be " in line or " must be " in line):
                    print(f"    {line.strip().removeprefix('# ')}", flush=True)
            progress.done("planned")
        return planned.status


def deploy(customer: Customer, outdir: Path, outputs_dir: Path) -> int:
    """Adopt what is provably ours, then `terraform apply` as `cdktf deploy` runs it (initialized when terraform asks),
    and write the outputs file; the exit status (terraform's when it failed)."""
    progress = Progress("deploy", customer.name, outdir)
    with _synthesized(customer, outdir, progress) as stack_dir:
        imports = adopt(stack_dir, customer.name)
        for block in imports:
            progress.say(f"adopting {block['to']} = {block['id']}")
        if imports:
            write_imports(stack_dir, imports)
        if not (applied := init_cache.run(progress, "apply", APPLY, stack_dir, outdir, customer.name)).ok:
            return applied.status
        outputs_dir.mkdir(parents=True, exist_ok=True)
        path = outputs_dir / f"{customer.name}.json"
        write_atomically(path, stack_outputs_text(stack_dir))
        progress.say(f"outputs written to {path}")
        progress.done("deployed")
        return 0


def destroy_stack(name: str, workdir: Path) -> int:
    """`terraform init` and `destroy` of stack `name` synthesized in `workdir` (a private directory beside the synth
    output), as `cdktf destroy` runs them; the exit status (terraform's when it failed)."""
    progress = Progress("destroy", name, workdir)
    stack_dir = synth_output.stack_dir(workdir, name)
    for step, command in (("init", INIT), ("destroy", DESTROY)):
        if not (run := progress.run(step, ["terraform", *command], stack_dir)).ok:
            return run.status
    progress.done("destroyed")
    return 0


def stack_outputs_text(stack_dir: Path, session: boto3.Session | None = None) -> str:
    """The outputs file of the stack applied in `stack_dir`: its state's outputs (read as `state.read` reads the
    state, with `session`'s credentials for an S3 backend), as `terraform output -json` would print them."""
    document = json.loads((stack_dir / synth_output.STACK_FILE).read_text(encoding="utf-8"))
    return outputs_file_text(document, state.outputs(state.read(stack_dir, session)))


def outputs_file_text(stack: dict, outputs: dict[str, dict]) -> str:
    """The outputs file as `cdktf deploy --outputs-file` writes it (cdktf 0.21's `getConstructIdsForOutputs`, then
    `saveOutputs`): the synthesized stack's output ids (`"//"."outputs"`, by construct path, the stack's name first)
    with `terraform output -json`'s values, sensitive ones and construct paths without any left out; JSON indented by
    two, without a final newline, as `JSON.stringify(value, null, 2)` writes it."""
    mapping = (stack.get("//") or {}).get("outputs")
    found = _by_construct(mapping, outputs) if mapping is not None else outputs
    return json.dumps(_values(found), indent=2, ensure_ascii=False)


def _by_construct(mapping: dict, outputs: dict[str, dict]) -> dict:
    found: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, str):
            if value in outputs:
                found[key] = outputs[value]
        elif not _empty(mapped := _by_construct(value, outputs)):
            found[key] = mapped
    return found


def _empty(value: Any) -> bool:
    return isinstance(value, dict) and all(v is None or _empty(v) for v in value.values())


def _values(found: dict) -> dict:
    """Each terraform output (`sensitive`, `type`, `value`) as its value, a sensitive one left out."""
    values = {}
    for key, entry in found.items():
        if _is_output(entry):
            if not entry["sensitive"]:
                values[key] = entry["value"]
        else:
            values[key] = _values(entry)
    return values


def _is_output(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("sensitive"), bool)
            and isinstance(entry.get("type"), str | list))
