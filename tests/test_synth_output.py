"""Synth output that is consistent and safe to share: exactly the current stacks, others' files kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from bench.fleet import write_fleet
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SYNTH_WORKERS_ENV
from dataplane.runtime.shards import SHARD_MIN
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES, run_main


def files(outdir) -> dict[str, bytes]:
    return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*")) if p.is_file()}


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


def test_concurrent_sharded_synths_into_one_output_both_succeed(tmp_path):
    fleet = tmp_path / "fleet"
    write_fleet(fleet, 2 * SHARD_MIN)
    outdir = tmp_path / "cdktf.out"
    env = {**tool_environment(), CUSTOMERS_DIR_ENV: str(fleet), "CDKTF_OUTDIR": str(outdir), SYNTH_WORKERS_ENV: "2"}
    synths = [subprocess.Popen([sys.executable, str(PROJECT_ROOT / "main.py")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in synths]
    for p in synths:
        p.stdout.close(), p.stderr.close()
    assert [code for code, _ in results] == [0, 0], results
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert sorted(manifest["stacks"]) == sorted(p.stem for p in fleet.glob("*.toml"))
    for stack in manifest["stacks"].values():
        assert json.loads((outdir / stack["synthesizedStackPath"]).read_text())["resource"]
    assert not list(tmp_path.glob(".cdktf.out.*")), "no staging or shard directory is left behind"


def test_synth_setup_does_not_build_the_security_gate_venv_and_is_quiet():
    planned = subprocess.run(["make", "-n", "--no-print-directory", "synth"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=60)
    assert planned.returncode == 0 and "venv-checkov" not in planned.stdout
    again = subprocess.run([sys.executable, "-m", "dataplane", "terraformrc"], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=60, env=tool_environment())
    assert again.returncode == 0 and again.stdout == "", "the .terraformrc message appears only when it changes"
