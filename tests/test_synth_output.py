"""Synth output that is consistent and safe to share: exactly the current stacks, others' files kept."""

from __future__ import annotations

import shutil
import subprocess
import sys

from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES, files, run_main


def test_synth_publishes_exactly_the_current_stacks_and_keeps_terraform_files(tmp_path):
    customers = tmp_path / "customers"
    shutil.copytree(FIXTURES, customers)
    outdir = tmp_path / "cdktf.out"
    assert run_main(outdir, **{CUSTOMERS_DIR_ENV: str(customers)}).returncode == 0
    working = {outdir / "stacks" / "globex" / ".terraform" / "providers" / "marker": b"init",
               outdir / "stacks" / "globex" / "plan.tfplan": b"plan"}
    for path, content in working.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (customers / "acme.toml").unlink()

    result = run_main(outdir, **{CUSTOMERS_DIR_ENV: str(customers)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"synthesized 1 stack into {outdir}\n"
    assert sorted(p.name for p in (outdir / "stacks").iterdir()) == ["globex"]
    assert '"acme"' not in (outdir / "manifest.json").read_text()
    assert {path: path.read_bytes() for path in working} == working
    assert not list(tmp_path.glob(".cdktf.out.*")), "the private staging directory is removed"


def test_a_failed_synth_leaves_the_previous_output_untouched(tmp_path):
    outdir = tmp_path / "cdktf.out"
    assert run_main(outdir).returncode == 0
    before = files(outdir)
    broken_node = run_main(outdir, JSII_NODE=str(tmp_path / "no-node"))
    assert broken_node.returncode != 0
    assert files(outdir) == before
    assert not list(tmp_path.glob(".cdktf.out.*"))


def test_synth_setup_does_not_build_the_security_gate_venv_and_is_quiet():
    planned = subprocess.run(["make", "-n", "--no-print-directory", "synth"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=60)
    assert planned.returncode == 0 and "venv-checkov" not in planned.stdout
    again = subprocess.run([sys.executable, "-m", "dataplane", "terraformrc"], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=60, env=tool_environment())
    assert again.returncode == 0 and again.stdout == "", "the .terraformrc message appears only when it changes"
