"""`python -m dataplane drift` against the emulator.

The peering fixture is deployed once with `make deploy`; the fleet's head (it, and `acme`, never deployed) is
synthesized into the deployment's `cdktf.out`, beside its state, as `make synth` would. The tests run in file order:
the fresh deployment is in sync; then it is tampered with by hand and drift reports exactly that; last, credentials
of another account make the stack an error.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import run_main
from tests.deploy import Deployment, stage

CUSTOMER, UNDEPLOYED = "globex", "acme"
CONTROL_PLANE, INTRUDER = "arn:aws:iam::406882777402:root", "arn:aws:iam::123456789012:root"
OTHER_ACCOUNT = "999999999999"


@pytest.fixture(scope="module")
def deployment(emulator, customers, settings, tmp_path_factory) -> Deployment:
    emulator.reset()
    staged = stage(emulator, customers[CUSTOMER], settings, tmp_path_factory.mktemp("drift"))
    deployed = staged.make("deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    shutil.copy(PROJECT_ROOT / customers[UNDEPLOYED].source, staged.workdir / "customers")
    synthesized = run_main(outdir(staged), **{CUSTOMERS_DIR_ENV: str(staged.workdir / "customers")})
    assert synthesized.returncode == 0, synthesized.stderr
    return staged


def outdir(deployment: Deployment) -> Path:
    return deployment.workdir / "cdktf.out"


def drift(env: dict[str, str], deployment: Deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataplane", "drift", "--outdir", str(outdir(deployment)), *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env=env)


def files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` but terraform's working files (`.terraform/`), with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and ".terraform" not in p.relative_to(directory).parts}


def test_a_fresh_deployment_is_in_sync_and_a_customer_without_state_is_not_deployed(deployment, tmp_path):
    """Also while a deploy holds the state lock (terraform's local lock: a POSIX lock on the state file): drift reads
    without taking it, so it never holds up a deploy."""
    report = tmp_path / "drift.md"
    with deployment.state_file.open("r+") as state:
        fcntl.lockf(state, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = drift(deployment.env, deployment, "--out", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    assert re.search(rf"^{CUSTOMER}: in sync in \d+\.\d s$", done.stderr, re.M), done.stderr
    assert f"\n{UNDEPLOYED}: not deployed (no state)\n" in f"\n{done.stderr}"
    assert report.read_text() == (
        "Drift: 0 drifted, 1 in sync, 1 not deployed, 0 errors\n\n"
        "Refresh-only plans (`python -m dataplane drift`): what changed outside Terraform in each deployed customer's "
        "stack, found by refreshing its state against its account.\n\n"
        f"- In sync (1): `{CUSTOMER}`\n"
        f"- Not deployed (1): `{UNDEPLOYED}`\n")


def test_a_route_deleted_the_trust_rewritten_and_a_tag_changed_are_exactly_the_drift(emulator, deployment, settings,
                                                                                     tmp_path):
    c = deployment.customer
    [table] = c.peering.route_table_ids
    emulator.client("ec2", c.peering.account_id, c.peer_region).delete_route(
        RouteTableId=table, DestinationCidrBlock=c.network.cidr)
    iam = emulator.client("iam", c.account_id, c.region)
    trust = iam.get_role(RoleName=settings.role_name)["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Principal"] = {"AWS": INTRUDER}
    iam.update_assume_role_policy(RoleName=settings.role_name, PolicyDocument=json.dumps(trust))
    ec2 = emulator.client("ec2", c.account_id, c.region)
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:customer", "Values": [CUSTOMER]}])["Vpcs"]
    [name] = [t["Value"] for t in vpc["Tags"] if t["Key"] == "Name"]
    ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "Name", "Value": "renamed-by-hand"}])
    before = files(deployment.workdir)
    temporary = tmp_path / "tmp"
    temporary.mkdir()

    done = drift({**deployment.env, "TMPDIR": str(temporary)}, deployment, "--format", "json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(rf"^{CUSTOMER}: drifted in \d+\.\d s$", done.stderr, re.M), done.stderr
    report = json.loads(done.stdout)
    assert report["summary"] == {"drifted": 1, "in sync": 0, "not deployed": 1, "error": 0}
    [stack] = [s for s in report["stacks"] if s["name"] == CUSTOMER]
    state = json.loads(deployment.state_file.read_text())

    def address(rtype: str, **attributes: str) -> str:
        [found] = [f"{r['type']}.{r['name']}" for r in state["resources"] if r["mode"] == "managed"
                   and r["type"] == rtype and attributes.items() <= r["instances"][0]["attributes"].items()]
        return found
    drifted = {d["address"]: d for d in stack["drift"]}
    assert {a: (d["deleted"], [x["path"] for x in d["attributes"]]) for a, d in drifted.items()} == {
        address("aws_iam_role"): (False, ["assume_role_policy"]),
        address("aws_route", route_table_id=table): (True, []),
        address("aws_vpc"): (False, ["tags.Name", "tags_all.Name"])}
    [trust_change] = drifted[address("aws_iam_role")]["attributes"]
    assert CONTROL_PLANE in trust_change["before"] and INTRUDER in trust_change["after"]
    assert [(json.loads(a["before"]), json.loads(a["after"])) for a in drifted[address("aws_vpc")]["attributes"]] == [
        (name, "renamed-by-hand")] * 2
    # Drift writes only its report: the plans went to a private temporary directory, since removed; the state is as
    # it was (a refresh-only plan records nothing).
    assert list(temporary.iterdir()) == []
    assert files(deployment.workdir) == before


def test_a_stack_terraform_cannot_plan_is_an_error_on_one_line(emulator, deployment):
    """Another account's credentials: the stack's provider refuses them (`allowed_account_ids`)."""
    env = {**emulator.env(OTHER_ACCOUNT, deployment.customer.region, tool_environment()),
           CUSTOMERS_DIR_ENV: deployment.env[CUSTOMERS_DIR_ENV]}
    done = drift(env, deployment, CUSTOMER, "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["stacks"] == [{"name": CUSTOMER, "status": "error", "error": (
        f"terraform plan failed: Error: AWS account ID not allowed: {OTHER_ACCOUNT}")}]
    assert re.search(rf"^{CUSTOMER}: error in \d+\.\d s\n    ", done.stderr, re.M), done.stderr
