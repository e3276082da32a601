"""End to end against the emulator, checked with boto3: each fixture customer deployed with `make deploy`,
planned with `make plan`, deployed again with the stock `cdktf deploy`, verified (and changed by hand), and removed
with `make destroy`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from constructs_lib.data_plane_network import private_subnet_cidrs
from dataplane.ops.fleet import init_cache
from dataplane.ops.report import Status
from dataplane.ops.account.verify import verify
from dataplane.policy import ACTIVATION_ACTIONS, ACTIVATION_POLICY_NAME, trust_policy
from tests.deploy import Deployment, stage
from tests.test_verify import failing, no_external_id, not_passed, session

EXAMPLES = ["acme", "globex"]
MADE: dict[str, subprocess.CompletedProcess] = {}
"""Each customer's `make deploy`, as its fixture ran it."""


@pytest.fixture(scope="module", params=EXAMPLES)
def deployment(request, emulator, customers, settings, tmp_path_factory) -> Deployment:
    """The fixture customer deployed once into a fresh emulator; its tests below run in file order."""
    emulator.reset()
    staged = stage(emulator, customers[request.param], settings, tmp_path_factory.mktemp(request.param))
    deployed = MADE[request.param] = staged.make("deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert not list(staged.workdir.rglob("adopt.tf.json")), "adopt's import blocks go with the deploy"
    return staged


def logged(printed: str) -> Path:
    """The log file a command's result line names (`...; log: PATH`), which exists."""
    found = re.findall(r"; log: (\S+\.log)$", printed, re.M)
    assert found and Path(found[-1]).is_file(), printed
    return Path(found[-1])


def client(emulator, deployment, service, peer=False):
    c = deployment.customer
    return emulator.client(service, c.peering.account_id if peer else c.account_id, c.peer_region if peer else c.region)


def data_plane_vpc(emulator, deployment) -> dict | None:
    vpcs = client(emulator, deployment, "ec2").describe_vpcs(
        Filters=[{"Name": "tag:customer", "Values": [deployment.customer.name]}])["Vpcs"]
    return vpcs[0] if vpcs else None


def routes(ec2, route_table_id) -> dict[str, str]:
    [table] = ec2.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"]
    return {r["DestinationCidrBlock"]: r.get("VpcPeeringConnectionId", r.get("GatewayId"))
            for r in table["Routes"] if "DestinationCidrBlock" in r}


def test_role_trusts_only_the_control_plane_with_the_external_id(emulator, deployment, settings):
    role = client(emulator, deployment, "iam").get_role(RoleName=settings.role_name)["Role"]
    document = role["AssumeRolePolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == trust_policy(settings.trusted_principal, deployment.customer.external_id)
    assert role["MaxSessionDuration"] == settings.max_session_duration
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {"customer": deployment.customer.name,
                                                            "managed-by": "dataplane-activation"}


def test_role_has_exactly_the_activation_permissions(emulator, deployment, settings):
    iam = client(emulator, deployment, "iam")
    assert iam.list_role_policies(RoleName=settings.role_name)["PolicyNames"] == ["data-plane-activation"]
    assert iam.list_attached_role_policies(RoleName=settings.role_name)["AttachedPolicies"] == []
    document = iam.get_role_policy(RoleName=settings.role_name, PolicyName="data-plane-activation")["PolicyDocument"]
    [statement] = document["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Allow", "*")
    assert statement["Action"] == list(ACTIVATION_ACTIONS)


def test_network_has_the_configured_cidr_subnets_and_route_table(emulator, deployment):
    network = deployment.customer.network
    vpc = data_plane_vpc(emulator, deployment)
    if network is None:
        assert vpc is None
        return
    ec2 = client(emulator, deployment, "ec2")
    assert vpc["CidrBlock"] == network.cidr
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        key = attribute[0].upper() + attribute[1:]
        assert ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attribute)[key]["Value"] is True
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == private_subnet_cidrs(network.cidr)
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id",
                                                 "Values": [s["SubnetId"] for s in subnets]}])["RouteTables"]
    assert len(tables) == 1
    assert sorted(a["SubnetId"] for a in tables[0]["Associations"]) == sorted(s["SubnetId"] for s in subnets)


def test_peering_is_active_with_routes_both_ways_and_dns(emulator, deployment):
    c = deployment.customer
    if c.peering is None:
        assert client(emulator, deployment, "ec2").describe_vpc_peering_connections()["VpcPeeringConnections"] == []
        return
    ec2, peer_ec2 = client(emulator, deployment, "ec2"), client(emulator, deployment, "ec2", peer=True)
    pcx_id = deployment.outputs()["peering_connection_id"]
    [pcx] = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
    assert pcx["Status"]["Code"] == "active"
    assert pcx["AccepterVpcInfo"]["VpcId"] == c.peering.vpc_id
    assert pcx["AccepterVpcInfo"]["OwnerId"] == c.peering.account_id
    assert pcx["RequesterVpcInfo"]["VpcId"] == data_plane_vpc(emulator, deployment)["VpcId"]
    assert pcx["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True
    [accepted] = peer_ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
    assert accepted["AccepterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True
    vpc_id = data_plane_vpc(emulator, deployment)["VpcId"]
    [table] = [t for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
               if not any(a.get("Main") for a in t.get("Associations", []))]
    to_customer = routes(ec2, table["RouteTableId"])
    assert {cidr: to_customer.get(cidr) for cidr in c.peering.cidrs} == {cidr: pcx_id for cidr in c.peering.cidrs}
    for route_table_id in c.peering.route_table_ids:
        assert routes(peer_ec2, route_table_id).get(c.network.cidr) == pcx_id


def test_outputs_file_has_role_arn_and_ids(deployment, settings):
    c = deployment.customer
    outputs = deployment.outputs()
    assert outputs["role_arn"] == f"arn:aws:iam::{c.account_id}:role/{settings.role_name}"
    assert outputs["role_name"] == settings.role_name
    expected = {"role_arn", "role_name"} | ({"vpc_id"} if c.network else set()) | (
        {"peering_connection_id"} if c.peering else set())
    assert set(outputs) == expected
    if c.peering:
        assert outputs["peering_connection_id"].startswith("pcx-")


def test_make_deploy_prints_its_progress_without_control_codes_and_logs_terraform_s_output(deployment):
    """One line per step (`deploy acme: apply: 9 added, 0 changed, 0 destroyed in 8.1 s`), then the log that holds
    terraform's whole output; no ANSI code in what it prints (the cdktf CLI's spinner and colours were hundreds)."""
    deployed, name = MADE[deployment.customer.name], deployment.customer.name
    assert "\x1b[" not in deployed.stdout + deployed.stderr and "\r" not in deployed.stdout + deployed.stderr
    assert re.search(rf"^deploy {name}: synth \d+\.\d s$", deployed.stdout, re.M), deployed.stdout
    assert re.search(rf"^deploy {name}: apply: \d+ added, 0 changed, 0 destroyed in \d+\.\d s$", deployed.stdout,
                     re.M), deployed.stdout
    assert f"deploy {name}: outputs written to {deployment.outputs_file}\n" in deployed.stdout
    log = logged(deployed.stdout)
    assert log.parent == deployment.workdir / "logs" and log.name.startswith(f"{name}-deploy-")
    text = log.read_text(encoding="utf-8")
    assert "\x1b" not in text and "Terraform has been successfully initialized!" in text
    assert re.search(r"^Apply complete! Resources: \d+ added, 0 changed, 0 destroyed\.$", text, re.M), text
    assert "Creation complete after" in text and '"value"' not in text, "outputs' values stay out of the log"


def test_plan_right_after_deploy_reports_no_changes_without_initializing_again(deployment):
    planned = deployment.make("plan")
    assert planned.returncode == 0 and f"plan {deployment.customer.name}: plan: no changes in " in planned.stdout
    assert "\x1b[" not in planned.stdout + planned.stderr
    log = logged(planned.stdout).read_text()
    assert "No changes. Your infrastructure matches the configuration." in log
    assert "== init" not in log, "the deploy's init is reused (init_cache)"


def test_a_kept_init_terraform_refuses_is_made_again(deployment):
    """A kept lock file that no longer matches (here: emptied) makes terraform ask for `terraform init`: the plan
    initializes, passes, and keeps the new init."""
    kept = init_cache.kept(deployment.workdir / "cdktf.out", deployment.customer.name)
    (kept / ".terraform.lock.hcl").write_text("# emptied\n")
    planned = deployment.make("plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "initializing again: terraform asks for it" in planned.stdout and "FAILED" not in planned.stderr
    steps = re.findall(r"^== (\w+): exit status (\d+)", logged(planned.stdout).read_text(), re.M)
    assert steps == [("plan", "1"), ("init", "0"), ("plan", "0")]
    assert "hashicorp/aws" in (kept / ".terraform.lock.hcl").read_text()


def test_second_deploy_changes_nothing_and_writes_the_outputs_file_make_deploy_wrote(deployment):
    """The stock `cdktf deploy --outputs-file` writes the same bytes as `make deploy` (terraform without the CLI)."""
    written = deployment.outputs_file.read_bytes()
    redeployed = deployment.deploy().stdout
    assert "No changes." in redeployed or "0 added, 0 changed, 0 destroyed" in redeployed
    assert deployment.outputs_file.read_bytes() == written
    assert "No changes." in deployment.cdktf("plan", "--skip-synth").stdout


def test_verify_passes_then_names_each_change_made_by_hand(emulator, deployment, settings, monkeypatch):
    """As the control plane: the deployment passes (the guard is off: a WARN); each change made in the account by
    hand then fails the row that names it."""
    customer, outputs = deployment.customer, deployment.outputs()
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)

    def checked():
        return verify(customer, settings, session(emulator, settings.control_plane_account_id), sleep=pytest.fail)
    report = checked()
    assert report.ok and not_passed(report) == {"escalation guard": Status.WARN}, report.table()
    assert outputs["role_arn"] in report.rows[0].reason
    if customer.peering:
        assert outputs["vpc_id"] in report.rows[4].reason and outputs["peering_connection_id"] in report.rows[5].reason

    iam = client(emulator, deployment, "iam")
    iam.put_role_policy(RoleName=settings.role_name, PolicyName=ACTIVATION_POLICY_NAME, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": [*ACTIVATION_ACTIONS, "iam:PassRole"], "Resource": "*"}]}))
    expected = {"permissions": "extra actions: iam:PassRole"}
    assert failing(checked()) == expected

    iam.update_assume_role_policy(RoleName=settings.role_name, PolicyDocument=json.dumps(no_external_id(settings)))
    expected["trust policy"] = "AstroControlPlane does not require the sts:ExternalId"
    assert failing(checked()) == expected

    if customer.peering:
        [peer_table] = customer.peering.route_table_ids
        client(emulator, deployment, "ec2", peer=True).delete_route(RouteTableId=peer_table,
                                                                    DestinationCidrBlock=customer.network.cidr)
        expected["routes"] = f"missing via {outputs['peering_connection_id']}: {peer_table} -> {customer.network.cidr}"
        assert failing(checked()) == expected


def test_destroy_removes_what_the_stack_created_and_keeps_the_customers_resources(emulator, deployment, settings):
    c = deployment.customer
    pcx_id = deployment.outputs().get("peering_connection_id")
    destroyed = deployment.make("destroy", "YES=1")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert re.search(rf"^destroy {c.name}: destroy: \d+ destroyed in \d+\.\d s$", destroyed.stdout, re.M)
    assert "Destroy complete! Resources:" in logged(destroyed.stdout).read_text()
    with pytest.raises(ClientError, match="NoSuchEntity"):
        client(emulator, deployment, "iam").get_role(RoleName=settings.role_name)
    assert data_plane_vpc(emulator, deployment) is None
    assert json.loads(deployment.state_file.read_text())["resources"] == []
    if c.peering:
        peer_ec2 = client(emulator, deployment, "ec2", peer=True)
        pcxs = peer_ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
        assert [p["Status"]["Code"] for p in pcxs] in ([], ["deleted"])
        assert peer_ec2.describe_vpcs(VpcIds=[c.peering.vpc_id])["Vpcs"][0]["CidrBlock"] == c.peering.cidrs[0]
        for route_table_id in c.peering.route_table_ids:
            assert c.network.cidr not in routes(peer_ec2, route_table_id)
        accepter_role = c.peering.accepter_role_arn.rsplit("/", 1)[1]
        assert client(emulator, deployment, "iam", peer=True).get_role(RoleName=accepter_role)["Role"]
