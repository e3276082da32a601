"""`python -m dataplane destroy <customer> [--base REF]`: remove a customer's stack from its account.

Without `--base`, the customer of the current fleet is destroyed through the pinned cdktf CLI, as
`cdktf destroy` would. With `--base`, the customer's file is already gone (its removal is being
applied): the stack is synthesized from that git ref in a private directory beside the synth
output (so a local state path resolves as it did), and the cdktf CLI destroys it from there. Only
what the stack's state holds is destroyed; the customer's own resources are not in it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

from dataplane import synth_output
from dataplane.config.customer import NAME_RULE, Customer
from dataplane.ops.plan import account_of
from dataplane.ops.ref_synth import RefError, synth_ref
from dataplane.ops.review import load_stacks
from dataplane.project import PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment


class OffboardError(Exception):
    """The customer cannot be destroyed from the base: not in it, still in the fleet, or a bad ref."""


def destroy(name: str, outdir: Path, *extra: str) -> int:
    """`cdktf destroy <name>` on `outdir`; the CLI's exit status."""
    return subprocess.run(["cdktf", "destroy", name, "--auto-approve", f"--output={outdir}", *extra],
                          cwd=PROJECT_ROOT, env=tool_environment()).returncode


def destroy_from(name: str, ref: str, outdir: Path, fleet: list[Customer], confirm: Callable[[str, str], bool]) -> int:
    """Destroy `name`, a customer of `ref`'s fleet no longer in `fleet`, from `ref`'s synthesized stack, once
    `confirm(name, account)` agrees (else 1, nothing destroyed)."""
    if current := next((c for c in fleet if c.name == name), None):
        raise OffboardError(f"{name} is still in the fleet ({current.source}): remove its file first, or destroy "
                            "it without BASE")
    if not NAME_RULE.fullmatch(name):
        raise OffboardError(f"no customer {name!r} (not a customer name)")
    with synth_output.private_dir(outdir, f"destroy-{name}") as workdir:
        try:
            synth_ref(ref, workdir)
        except RefError as e:
            raise OffboardError(str(e)) from None
        if name not in (stacks := load_stacks(workdir)):
            raise OffboardError(f"no customer {name!r} at {ref}; known there: {', '.join(sorted(stacks)) or 'none'}")
        if not confirm(name, account_of(synth_output.stack_dir(workdir, name))):
            return 1
        return destroy(name, workdir, "--skip-synth")
