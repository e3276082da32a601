"""Synthesize the project as committed at a git ref: the base of a review, a plan or an offboarding.

`python -m dataplane synth-ref --outdir base.out -- <ref>` checks the ref out into a temporary
worktree (with this checkout's `node_modules`, so jsii runs on the project's Node), runs that
commit's own `main.py` there with its own `cdk.tf.json` settings and `customers/`, and removes
the worktree again. The fleet overrides of this checkout (`DATAPLANE_CUSTOMERS_DIR`,
`DATAPLANE_SETTINGS`) do not apply: a ref is synthesized as it was committed; in a sandbox's shell, as the sandbox
runs the working tree (its identity, local state and ids: `sandbox.as_in_sandbox`), so a review compares like with
like.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from dataplane.project import CUSTOMERS_DIR_ENV, OUTDIR_ENV, PROJECT_ROOT, SANDBOX_ENV, SETTINGS_ENV
from dataplane.runtime.toolchain import tool_environment


class RefError(Exception):
    """The ref is not a commit of this repository, or its synth failed (with its error output)."""


def commit_of(ref: str) -> str:
    """The commit `ref` names, verified by git (never a command line option, never shell text)."""
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RefError(f"BASE '{ref}' is not a git commit (git rev-parse --verify)")
    return done.stdout.strip()


def synth_ref(ref: str, outdir: Path) -> str:
    """Synthesize `ref` into `outdir`; returns the commit."""
    commit = commit_of(ref)
    env = {k: v for k, v in tool_environment().items() if k not in (CUSTOMERS_DIR_ENV, SETTINGS_ENV)}
    with tempfile.TemporaryDirectory(prefix="dataplane-ref.") as tmp:
        worktree = Path(tmp) / "worktree"
        _git("worktree", "add", "--quiet", "--detach", str(worktree), commit)
        try:
            (worktree / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
            if sandbox_root := os.environ.get(SANDBOX_ENV):
                from dataplane.ops.sandbox import as_in_sandbox

                as_in_sandbox(worktree, Path(sandbox_root))
            done = subprocess.run([sys.executable, "-O", "main.py"], cwd=worktree, capture_output=True, text=True,
                                  env={**env, OUTDIR_ENV: str(outdir.resolve())}, timeout=1800)
        finally:
            _git("worktree", "remove", "--force", str(worktree))
    if done.returncode != 0:
        raise RefError(f"synth of {ref} ({commit[:12]}) failed:\n{(done.stderr or done.stdout).strip()}")
    return commit


def _git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=PROJECT_ROOT, check=True, capture_output=True)
