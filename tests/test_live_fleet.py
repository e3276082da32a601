"""The live fleet (`customers/`, or `DATAPLANE_CUSTOMERS_DIR`), checked generically, never by name.

Every customer file loads, synthesizes, passes `terraform validate` and the security gate. No other
test reads the live fleet, so adding, changing or removing a valid customer keeps `make test` green:
the last test proves it on a copy of the fleet with one customer added and one removed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fleet import customer_toml
from dataplane.config.settings import load_project
from dataplane.ops.pipeline.gate import scan
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import run_main


@pytest.fixture(scope="module")
def fleet():
    """The live fleet as `make synth` loads it: settings and every customer."""
    return load_project()


@pytest.fixture(scope="module")
def fleet_out(fleet, tmp_path_factory) -> Path:
    """The live fleet synthesized by main.py."""
    settings = fleet[0]
    outdir = tmp_path_factory.mktemp("live") / "cdktf.out"
    result = run_main(outdir, **{CUSTOMERS_DIR_ENV: str(PROJECT_ROOT / settings.customers_dir)})
    assert result.returncode == 0, result.stderr
    return outdir


def test_every_customer_file_synthesizes_into_its_own_stack(fleet, fleet_out):
    names = sorted(p.name for p in (fleet_out / "stacks").iterdir())
    assert names == [c.name for c in fleet[1]]


def test_every_stack_passes_terraform_validate(fleet, fleet_out, tmp_path):
    """One `terraform init` shared by every stack (same provider), then `validate` in each."""
    if not fleet[1]:
        pytest.skip("the fleet is empty")
    env = {**tool_environment(), "TF_DATA_DIR": str(tmp_path / "terraform")}
    failures = []
    for index, customer in enumerate(fleet[1]):
        stack_dir = fleet_out / "stacks" / customer.name
        commands = [["terraform", "init", "-input=false", "-backend=false", "-no-color"]] if index == 0 else []
        for command in commands + [["terraform", "validate", "-no-color"]]:
            result = subprocess.run(command, cwd=stack_dir, env=env, capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                failures.append(f"{customer.name}: {' '.join(command[:2])}: {result.stdout}{result.stderr}")
    assert failures == []


def test_every_stack_passes_the_security_gate(fleet, fleet_out):
    if not fleet[1]:
        pytest.skip("the fleet is empty")
    failed = [str(r) for r in scan(fleet_out) if not r.passed]
    assert failed == []


@pytest.mark.heavy
def test_adding_and_removing_a_customer_keeps_the_fleet_checks_green(fleet, tmp_path):
    customers = fleet[1]
    copy = tmp_path / "customers"
    copy.mkdir()
    for customer in customers[1:]:
        shutil.copy(PROJECT_ROOT / customer.source, copy)
    taken = {c.account_id for c in customers}
    index = next(i for i in range(900_000) if f"{100_000_000_000 + i:012d}" not in taken)
    (copy / "newly-added.toml").write_text(customer_toml(index, "cross-account-peering"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", str(Path(__file__)),
         "-k", "not adding_and_removing"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
        env={**tool_environment(), CUSTOMERS_DIR_ENV: str(copy)})
    assert result.returncode == 0, result.stdout[-4000:]
