"""Faults against the emulator: the wrong account, and a deploy interrupted midway."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time

import psutil
import pytest
from botocore.exceptions import ClientError

from dataplane.settings import PROJECT_ROOT
from tests.deploy import stage

WRONG_ACCOUNT = "999999999999"


def test_deploy_with_credentials_of_another_account_is_refused_before_anything_is_created(
        emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = stage(emulator, customers["globex"], settings, tmp_path)
    wrong = {**deployment.env, **emulator.credentials(WRONG_ACCOUNT)}
    refused = type(deployment)(deployment.customer, deployment.workdir, wrong).deploy(check=False)
    assert refused.returncode != 0
    assert f"AWS account ID not allowed: {WRONG_ACCOUNT}" in refused.stdout + refused.stderr
    for account in (WRONG_ACCOUNT, deployment.customer.account_id):
        with pytest.raises(ClientError, match="NoSuchEntity"):
            emulator.client("iam", account, "us-west-2").get_role(RoleName=settings.role_name)
        vpcs = emulator.client("ec2", account, "us-west-2").describe_vpcs()["Vpcs"]
        assert [v for v in vpcs if not v["IsDefault"]] == []
    peer_ec2 = emulator.client("ec2", deployment.customer.peering.account_id, "us-west-2")
    assert peer_ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []


def kill_when(deployment, ready, timeout: float = 300) -> None:
    """Start `cdktf deploy`, and once `ready()` holds, SIGKILL it and everything it started, as a crash would.

    The tree is frozen top-down first (a stopped process starts no children), so terraform and its
    provider plugin die too and nothing keeps creating resources after the "crash".
    """
    argv = ["npx", "cdktf", "deploy", deployment.customer.name, "--output", str(deployment.workdir / "cdktf.out"),
            "--auto-approve"]
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=deployment.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None and time.monotonic() < deadline, "deploy ended before the fault point"
        time.sleep(0.05)
    frozen, frontier = [], [psutil.Process(process.pid)]
    while frontier:
        member = frontier.pop()
        with contextlib.suppress(psutil.NoSuchProcess):
            member.suspend()
            frozen.append(member)
            frontier += member.children()
    for member in frozen:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(frozen, timeout=30)
    process.wait()


def test_deploy_killed_midway_is_followed_by_a_deploy_that_converges(emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = stage(emulator, customers["globex"], settings, tmp_path)
    c = deployment.customer
    iam, ec2 = emulator.client("iam", c.account_id, c.region), emulator.client("ec2", c.account_id, c.region)
    data_plane_vpcs = lambda: [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == c.network.cidr]  # noqa: E731

    kill_when(deployment, lambda: bool(data_plane_vpcs()))
    assert iam.get_role(RoleName=settings.role_name)
    assert ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []

    resumed = deployment.make("deploy")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(data_plane_vpcs()) == 1
    peerings = ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
    assert [p["Status"]["Code"] for p in peerings] == ["active"]
    assert len(iam.list_roles()["Roles"]) == 1
    state = json.loads(deployment.state_file.read_text())
    stack = json.loads((tmp_path / "cdktf.out" / "stacks" / "globex" / "cdk.tf.json").read_text())
    assert sorted(f"{r['type']}.{r['name']}" for r in state["resources"] if r["mode"] == "managed") == sorted(
        f"{kind}.{name}" for kind, resources in stack["resource"].items() for name in resources)
    assert "No changes." in deployment.cdktf("plan", "--skip-synth").stdout
