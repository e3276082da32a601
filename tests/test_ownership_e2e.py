"""Never change what the tool does not own, against the emulator: faults and things in the way.

Every case where something is not provably the stack's stops before terraform runs, names what
it found, and leaves the account as it was; interrupted deploys converge without duplicates.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cdktf import Testing

from bench.fleet import write_fleet
from dataplane.config.settings import Settings
from dataplane.ops.fleet import adopt
from dataplane.ops.fleet.state import StateError, read
from dataplane.policy import ownership_tags
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SYNTH_WORKERS_ENV
from dataplane.runtime.shards import SHARD_MIN
from stacks import DataPlaneStack
from tests.conftest import run_main
from tests.deploy import freeze, kill, kill_when, stage

WRONG_ACCOUNT = "999999999999"

FOREIGN_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "sts:AssumeRole"}]}
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def data_plane_vpcs(ec2, cidr: str) -> list[str]:
    return [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == cidr]


def live_peerings(ec2) -> list[str]:
    return [p["VpcPeeringConnectionId"] for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
            if p["Status"]["Code"] == "active"]


def stopped(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "stopped before terraform ran; nothing in the account was changed" in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize("tags", [[], [{"Key": "managed-by", "Value": "dataplane-activation"},
                                       {"Key": "customer", "Value": "someone-else"}]], ids=["untagged", "other-customer"])
def test_a_role_the_tool_did_not_create_for_the_customer_is_never_adopted(emulator, customers, settings, tmp_path, tags):
    emulator.reset()
    deployment = stage(emulator, customers["acme"], settings, tmp_path)
    c = deployment.customer
    iam = emulator.client("iam", c.account_id, c.region)
    arn = iam.create_role(RoleName=settings.role_name, AssumeRolePolicyDocument=json.dumps(FOREIGN_TRUST),
                          **({"Tags": tags} if tags else {}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=settings.role_name, PolicyName="admin", PolicyDocument=json.dumps(ADMIN))

    message = stopped(deployment.make("deploy"))
    assert f"role {arn}: not this stack's" in message
    assert "set another roleName" in message
    role = iam.get_role(RoleName=settings.role_name)["Role"]
    assert role["AssumeRolePolicyDocument"] == FOREIGN_TRUST
    assert role.get("Tags", []) == tags
    assert iam.list_role_policies(RoleName=settings.role_name)["PolicyNames"] == ["admin"]
    assert not deployment.state_file.exists()


def test_a_customer_route_to_the_data_plane_cidr_through_something_else_is_never_repointed(
        emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = stage(emulator, customers["globex"], settings, tmp_path)
    c = deployment.customer
    peer_ec2 = emulator.client("ec2", c.peering.account_id, c.peer_region)
    gateway = peer_ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    peer_ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=c.peering.vpc_id)
    table = c.peering.route_table_ids[0]
    peer_ec2.create_route(RouteTableId=table, DestinationCidrBlock=c.network.cidr, GatewayId=gateway)

    message = stopped(deployment.make("deploy"))
    assert f"route {c.network.cidr} in {table}: already points at {gateway}" in message
    [route_table] = peer_ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]
    assert [r.get("GatewayId") for r in route_table["Routes"] if r.get("DestinationCidrBlock") == c.network.cidr] == [
        gateway]
    assert data_plane_vpcs(emulator.client("ec2", c.account_id, c.region), c.network.cidr) == []


def test_deploy_with_credentials_of_another_account_is_refused_before_anything_is_created(
        emulator, customers, settings, tmp_path):
    """The stock `cdktf deploy`, too: the provider allows only the customer's account."""
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


def test_adopt_refuses_credentials_of_another_account_before_any_lookup(emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = stage(emulator, customers["acme"], settings, tmp_path)
    wrong = type(deployment)(deployment.customer, deployment.workdir,
                             {**deployment.env, **emulator.credentials(WRONG_ACCOUNT)})
    for target in ("adopt", "deploy"):
        result = wrong.make(target)
        assert result.returncode != 0
        assert (f"the credentials act in account {WRONG_ACCOUNT}" in result.stderr
                and f"not {deployment.customer.account_id}" in result.stderr), result.stderr
    assert emulator.client("iam", deployment.customer.account_id, "us-east-1").list_roles()["Roles"] == []


def test_unreachable_endpoint_is_one_line_not_a_traceback(emulator, customers, settings, tmp_path):
    deployment = stage(emulator, customers["acme"], settings, tmp_path)
    closed = {**deployment.env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = type(deployment)(deployment.customer, deployment.workdir, closed).make("adopt")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "adopt acme: AWS error: Could not connect to the endpoint URL" in result.stderr, result.stderr


ROLE = {"mode": "managed", "type": "aws_iam_role", "name": "role"}


@pytest.mark.parametrize("state, problem", [
    ([], "not an object with a list of resources"),
    ({"resources": {"aws_iam_role": {}}}, "not an object with a list of resources"),
    ({"resources": ["aws_iam_role.role"]}, "resource 0 is not an object"),
    ({"resources": [{**ROLE, "instances": {"attributes": {"id": "r"}}}]}, "aws_iam_role.role: its instances are not a "
                                                                          "list"),
    ({"resources": [{**ROLE, "instances": [{}]}]}, "aws_iam_role.role: instance 0 has no attributes with an id"),
    ({"resources": [{**ROLE, "instances": [{"attributes": {"id": "r"}}, {"attributes": None}]}]},
     "aws_iam_role.role: instance 1 has no attributes with an id"),
    ({"resources": [{**ROLE, "instances": [{"attributes": {"id": 7}}]}]},
     "aws_iam_role.role: instance 0 has no attributes with an id"),
])
def test_a_malformed_state_is_a_state_error_naming_it_and_what_is_wrong(tmp_path, state, problem):
    """What adopt (and drift) read of a state is checked: a `StateError`, which adopt reports as one line."""
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    (stack_dir / "cdk.tf.json").write_text(json.dumps({"terraform": {"backend": {"local": {"path": "acme.tfstate"}}}}))
    (stack_dir / "acme.tfstate").write_text(json.dumps(state))
    with pytest.raises(StateError) as refused:
        read(stack_dir)
    assert str(refused.value) == f"the state at {stack_dir / 'acme.tfstate'} is not a Terraform state: {problem}"


def test_make_adopt_with_a_malformed_state_instance_is_one_line_exit_1(emulator, customers, settings, tmp_path):
    deployment = stage(emulator, customers["acme"], settings, tmp_path)
    deployment.state_file.parent.mkdir()
    deployment.state_file.write_text(json.dumps({"version": 4, "resources": [{**ROLE, "instances": [{}]}]}))
    result = deployment.make("adopt")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (f"adopt acme: the state at {deployment.state_file.resolve()} is not a Terraform state: aws_iam_role.role: "
            "instance 0 has no attributes with an id\n") in result.stderr, result.stderr


def test_lost_state_and_a_changed_cidr_stop_with_the_orphans_listed(emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = stage(emulator, customers["globex"], settings, tmp_path)
    c = deployment.customer
    assert deployment.make("deploy").returncode == 0
    ec2 = emulator.client("ec2", c.account_id, c.region)
    [old_vpc] = data_plane_vpcs(ec2, c.network.cidr)
    [peering] = live_peerings(ec2)
    deployment.state_file.unlink()
    source = deployment.workdir / "customers" / "globex.toml"
    source.write_text(source.read_text().replace(c.network.cidr, "172.24.0.0/19"))

    message = stopped(deployment.make("deploy"))
    assert f"VPC {old_vpc}: carries this stack's tags, but neither the state nor" in message
    assert f"peering connection {peering}: carries this stack's tags" in message
    assert data_plane_vpcs(ec2, "172.24.0.0/19") == []
    assert live_peerings(ec2) == [peering]


def start_deploy_until_adopted(deployment) -> tuple[subprocess.Popen, list]:
    """Start `make deploy`; once adopt has written its import blocks, freeze the whole deploy."""
    argv = ["make", "--no-print-directory", "deploy", f"CUSTOMER={deployment.customer.name}",
            f"CDKTF_OUT={deployment.workdir / 'cdktf.out'}", f"OUTPUTS={deployment.workdir}"]
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=deployment.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not list(deployment.workdir.glob(".cdktf.out.deploy-*/stacks/*/adopt.tf.json")):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "adopt wrote no import blocks"
        time.sleep(0.05)
    return process, freeze(process)


def test_interrupted_deploys_and_a_sharded_synth_in_between_leave_one_vpc_and_one_peering(
        emulator, customers, settings, tmp_path):
    """The sequence that once duplicated the network: a crash, adopt, a sharded synth of the fleet, deploy."""
    emulator.reset()
    deployment = stage(emulator, customers["globex"], settings, tmp_path)
    c = deployment.customer
    ec2 = emulator.client("ec2", c.account_id, c.region)
    outdir = deployment.workdir / "cdktf.out"
    kill_when(deployment, lambda: bool(data_plane_vpcs(ec2, c.network.cidr)))

    # A deploy killed right after adopt leaves no import block that a later plan would apply.
    process, frozen = start_deploy_until_adopted(deployment)
    kill(frozen)
    process.communicate()
    planned = deployment.make("plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert not list(outdir.rglob("adopt.tf.json"))

    # A sharded synth of the whole fleet while a deploy stands between adopt and apply.
    fleet = deployment.workdir / "fleet"
    write_fleet(fleet, 2 * SHARD_MIN)
    shutil.copy(deployment.workdir / "customers" / "globex.toml", fleet)
    process, frozen = start_deploy_until_adopted(deployment)
    synth = run_main(outdir, **{CUSTOMERS_DIR_ENV: str(fleet), SYNTH_WORKERS_ENV: "2"})
    assert synth.returncode == 0, synth.stderr
    assert (outdir / "stacks" / "customer-0000").is_dir()
    for member in reversed(frozen):
        member.resume()
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output

    assert len(data_plane_vpcs(ec2, c.network.cidr)) == 1
    assert len(live_peerings(ec2)) == 1
    assert len(emulator.client("iam", c.account_id, c.region).list_roles()["Roles"]) == 1
    state = json.loads(deployment.state_file.read_text())
    stack = json.loads((outdir / "stacks" / "globex" / "cdk.tf.json").read_text())
    assert sorted(f"{r['type']}.{r['name']}" for r in state["resources"] if r["mode"] == "managed") == sorted(
        f"{kind}.{name}" for kind, resources in stack["resource"].items() for name in resources)
    assert not list(deployment.workdir.glob(".cdktf.out.deploy-*")), "no workspace is left behind"


def test_the_adopted_role_s_configured_attachments_are_adopted_and_others_are_left_alone(
        emulator, aws_via_emulator, customers, monkeypatch, tmp_path):
    """A role proven ours brings its configured managed policies into the state; nothing else attached is touched."""
    settings = Settings.model_validate({"managedPolicyArns": ["team/Extra", "Audit"]})
    c = customers["acme"]
    for name, value in emulator.variables(c.account_id, c.region).items():
        monkeypatch.setenv(name, value)
    iam = emulator.client("iam", c.account_id, c.region)
    iam.create_role(RoleName=settings.role_name, AssumeRolePolicyDocument=json.dumps(FOREIGN_TRUST),
                    Tags=[{"Key": k, "Value": v} for k, v in ownership_tags(c.name).items()])
    arns = {name: iam.create_policy(PolicyName=name, Path=path, PolicyDocument=json.dumps(ADMIN))["Policy"]["Arn"]
            for name, path in (("Extra", "/team/"), ("Audit", "/"), ("Other", "/"))}
    for name in ("Extra", "Other"):
        iam.attach_role_policy(RoleName=settings.role_name, PolicyArn=arns[name])
    stack_dir = Path(Testing.full_synth(DataPlaneStack(Testing.app(), c, settings))) / "stacks" / c.name
    imports = {i["to"].split(".")[0]: i["id"] for i in adopt.adopt(stack_dir, c.name)}
    assert imports == {"aws_iam_role": settings.role_name,
                       "aws_iam_role_policy_attachment": f"{settings.role_name}/{arns['Extra']}"}
    attached = iam.list_attached_role_policies(RoleName=settings.role_name)["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in attached) == ["Extra", "Other"]
