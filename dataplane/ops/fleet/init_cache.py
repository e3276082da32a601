"""`terraform init` once per customer, not once per command.

A deploy or a plan works in a private copy of its customer's stack, synthesized anew (`deploy.workspace`), which
would need its own `terraform init` (about a second, even with the shared plugin cache: terraform checks the
provider's checksums). Instead, what the last successful init of that customer's stack made, its `.terraform`
directory (the backend's configuration, links into the plugin cache) and its lock file, is kept in
`<synth output's parent>/.<synth output's name>.init/<customer>/` and copied into the next private copy. Terraform
decides whether it still serves: when a step asks for `terraform init` (a changed backend or provider, a lock file
that no longer matches), the copy is initialized, the step run again and what is kept replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from dataplane.ops.fleet.progress import Progress, Run
from dataplane.runtime.toolchain import INIT, needs_init

KEPT = (".terraform", ".terraform.lock.hcl")
"""What `terraform init` makes in a stack's directory."""


def kept(outdir: Path, name: str) -> Path:
    """Where the last init of customer `name`'s stack is kept, for stacks synthesized from `outdir`."""
    return outdir.parent / f".{outdir.name}.init" / name


def restore(stack_dir: Path, outdir: Path, name: str) -> bool:
    """The kept init of `name`'s stack copied into `stack_dir`; whether there was one."""
    source = kept(outdir, name)
    if not all((source / part).exists() for part in KEPT):
        return False
    try:
        shutil.copytree(source / KEPT[0], stack_dir / KEPT[0], symlinks=True)
        shutil.copy2(source / KEPT[1], stack_dir / KEPT[1])
    except OSError:  # replaced while copied: initialize anew
        shutil.rmtree(stack_dir / KEPT[0], ignore_errors=True)
        return False
    return True


def keep(stack_dir: Path, outdir: Path, name: str) -> None:
    """Keep the init just made in `stack_dir` for the next run on `name`'s stack (replacing the one kept)."""
    target = kept(outdir, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    shutil.copytree(stack_dir / KEPT[0], staged / KEPT[0], symlinks=True)
    shutil.copy2(stack_dir / KEPT[1], staged / KEPT[1])
    old = target.with_name(f".{name}.old.{os.getpid()}")
    try:
        if target.exists():
            os.rename(target, old)
        os.rename(staged, target)
    except OSError:  # another run kept its init at the same moment: that one serves as well
        shutil.rmtree(staged, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def run(progress: Progress, step: str, command: list[str], stack_dir: Path, outdir: Path, name: str) -> Run:
    """`terraform <command>` as `progress`'s `step` in `stack_dir`, initialized as last time when it can be, else
    anew (then kept)."""
    if restore(stack_dir, outdir, name):
        done = progress.run(step, ["terraform", *command], stack_dir, report=False)
        if done.ok or not needs_init(done.output):
            if not done.ok:
                progress.failure(step, done)
            return done
        progress.say("initializing again: terraform asks for it (see the log)")
    if not (init := progress.run("init", ["terraform", *INIT], stack_dir)).ok:
        return init
    keep(stack_dir, outdir, name)
    return progress.run(step, ["terraform", *command], stack_dir)
