"""main.py as `make synth` runs it: all-or-nothing, deterministic, valid Terraform."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES, run_main

EXAMPLES = ["acme", "globex"]


def test_invalid_customer_file_exits_2_names_everything_and_writes_nothing(tmp_path):
    customers = tmp_path / "customers"
    shutil.copytree(FIXTURES, customers)
    (customers / "broken.toml").write_text('account_id = 1234\nregion = "us-east-1"\nexternal_id = "astro-x1"\n'
                                           '[network]\ncidr = "10.0.0.0/24"\n')
    (customers / "worse.toml").write_text('account_id = "999999999999"\nregion = "moon-1"\n')
    outdir = tmp_path / "cdktf.out"
    result = run_main(outdir, DATAPLANE_CUSTOMERS_DIR=str(customers))
    assert result.returncode == 2
    assert f"{customers}/broken.toml: account_id: must be a quoted string" in result.stderr
    assert f"{customers}/broken.toml: network.cidr: 10.0.0.0/24 is smaller than a /19" in result.stderr
    assert f"{customers}/worse.toml: external_id: required key is missing" in result.stderr
    assert f"{customers}/worse.toml: region: 'moon-1' is not an AWS region name" in result.stderr
    assert not outdir.exists()


def test_same_inputs_give_byte_identical_output_from_another_directory(synthesized, tmp_path):
    again = tmp_path / "elsewhere" / "cdktf.out"
    (tmp_path / "elsewhere").mkdir()
    result = run_main(again, cwd=tmp_path / "elsewhere")
    assert result.returncode == 0, result.stderr
    for name in EXAMPLES:
        first = (synthesized / "stacks" / name / "cdk.tf.json").read_bytes()
        assert (again / "stacks" / name / "cdk.tf.json").read_bytes() == first


def test_normal_output_has_no_node_banner_or_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JSII_NODE"}
    result = subprocess.run([sys.executable, "main.py"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={**env, CUSTOMERS_DIR_ENV: str(FIXTURES), "CDKTF_OUTDIR": str(tmp_path / "cdktf.out")},
                            timeout=600)
    assert result.returncode == 0
    assert "end-of-life" not in result.stderr + result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_stack_passes_terraform_init_and_validate(synthesized, name):
    stack_dir = synthesized / "stacks" / name
    env = tool_environment()
    for command in (["terraform", "init", "-input=false", "-backend=false", "-no-color"],
                    ["terraform", "validate", "-no-color"]):
        result = subprocess.run(command, cwd=stack_dir, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "The configuration is valid" in result.stdout
