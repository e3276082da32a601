"""The documented make targets drive the real cdktf CLI: deploy, plan, destroy one customer."""

from __future__ import annotations

import subprocess

import pytest
from botocore.exceptions import ClientError

from dataplane.settings import PROJECT_ROOT
from tests.deploy import stage


def test_make_deploy_plan_destroy(emulator, customers, settings, tmp_path):
    deployment = stage(emulator, customers["acme"], settings, tmp_path)
    iam = emulator.client("iam", deployment.customer.account_id, deployment.customer.region)

    deployed = deployment.make("deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert deployment.outputs()["role_arn"] == iam.get_role(RoleName=settings.role_name)["Role"]["Arn"]
    assert not (tmp_path / "cdktf.out" / "stacks" / "acme" / "adopt.tf.json").exists()

    planned = deployment.make("plan")
    assert planned.returncode == 0 and "No changes." in planned.stdout

    destroyed = deployment.make("destroy")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_role(RoleName=settings.role_name)


def test_make_deploy_without_customer_is_a_usage_error():
    result = subprocess.run(["make", "--no-print-directory", "deploy"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode != 0 and "usage: make deploy CUSTOMER=<name>" in result.stderr
