"""The documented make targets drive the real cdktf CLI: deploy, plan, destroy one customer."""

from __future__ import annotations

import json
import subprocess

import pytest
from botocore.exceptions import ClientError

from dataplane.settings import PROJECT_ROOT
from tests.deploy import stage


def make(target: str, deployment, **variables) -> subprocess.CompletedProcess:
    args = [f"{k}={v}" for k, v in {"CUSTOMER": deployment.customer.name, **variables}.items()]
    return subprocess.run(["make", "--no-print-directory", target, *args], cwd=PROJECT_ROOT, env=deployment.env,
                          capture_output=True, text=True, timeout=900)


def test_make_deploy_plan_destroy(emulator, customers, settings, tmp_path):
    deployment = stage(emulator, customers["acme"], settings, tmp_path)
    places = {"CDKTF_OUT": tmp_path / "cdktf.out", "OUTPUTS": tmp_path / "outputs"}
    iam = emulator.client("iam", deployment.customer.account_id, deployment.customer.region)

    deployed = make("deploy", deployment, **places)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    outputs = json.loads((tmp_path / "outputs" / "acme.json").read_text())["acme"]
    assert outputs["role_arn"] == iam.get_role(RoleName=settings.role_name)["Role"]["Arn"]

    planned = make("plan", deployment, **places)
    assert planned.returncode == 0 and "No changes." in planned.stdout

    destroyed = make("destroy", deployment, **places)
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_role(RoleName=settings.role_name)


def test_make_deploy_without_customer_is_a_usage_error():
    result = subprocess.run(["make", "--no-print-directory", "deploy"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode != 0 and "usage: make deploy CUSTOMER=<name>" in result.stderr
