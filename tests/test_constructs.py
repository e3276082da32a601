"""Each construct on its own, in a throwaway stack, asserted on the synthesized JSON."""

from __future__ import annotations

import json

import pytest
from cdktf import TerraformOutput, TerraformStack, Testing
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_peering_connection import VpcPeeringConnection
from cdktf_cdktf_provider_aws.vpc_peering_connection_accepter import (
    VpcPeeringConnectionAccepterA,
)

from constructs_lib import (
    CrossAccountRole,
    CrossAccountRoleSettings,
    DataPlaneNetwork,
    DataPlaneNetworkSettings,
    VpcPeering,
    VpcPeeringSettings,
)


def synth(build) -> dict:
    stack = TerraformStack(Testing.app(), "test")
    AwsProvider(stack, "aws", region="us-east-1")
    build(stack)
    return json.loads(Testing.synth(stack))


def resources(synthesized: dict, kind: str) -> list[dict]:
    return list(synthesized["resource"].get(kind, {}).values())


@pytest.fixture(scope="module")
def role_json():
    return synth(lambda s: CrossAccountRole(s, "role", CrossAccountRoleSettings(
        role_name="astronomer-remote-management", trusted_principal="arn:aws:iam::406882777402:root",
        external_id="astro-3f9c2b7e", max_session_duration=7200,
        permissions_boundary_arn="arn:aws:iam::aws:policy/PowerUserAccess")))


def test_role_trust_policy_exactly(role_json):
    [role] = resources(role_json, IamRole.TF_RESOURCE_TYPE)
    assert json.loads(role["assume_role_policy"]) == {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AstroControlPlane", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::406882777402:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "astro-3f9c2b7e"}},
        }],
    }


def test_role_name_duration_and_boundary(role_json):
    assert Testing.to_have_resource_with_properties(json.dumps(role_json), IamRole.TF_RESOURCE_TYPE, {
        "name": "astronomer-remote-management", "max_session_duration": 7200,
        "permissions_boundary": "arn:aws:iam::aws:policy/PowerUserAccess"})


def test_role_permissions_are_the_activation_permissions_exactly(role_json):
    [policy] = resources(role_json, IamRolePolicy.TF_RESOURCE_TYPE)
    document = json.loads(policy["policy"])
    assert [s["Effect"] for s in document["Statement"]] == ["Allow"]
    assert document["Statement"][0]["Resource"] == "*"
    assert sorted(document["Statement"][0]["Action"]) == [
        "cloudformation:*", "iam:CreateRole", "iam:DeleteRolePolicy", "iam:GetRole", "iam:GetRolePolicy",
        "iam:ListRoles", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"]
    assert policy["role"].startswith("${aws_iam_role.") and policy["role"].endswith(".id}")


def test_role_exposes_arn_and_name():
    def build(stack):
        role = CrossAccountRole(stack, "role", CrossAccountRoleSettings("r", "arn:aws:iam::1:root", "xx"))
        TerraformOutput(stack, "arn", value=role.role_arn)
        TerraformOutput(stack, "name", value=role.role_name)
    synthesized = synth(build)
    [role] = synthesized["resource"]["aws_iam_role"]
    assert synthesized["output"] == {"arn": {"value": f"${{aws_iam_role.{role}.arn}}"},
                                     "name": {"value": f"${{aws_iam_role.{role}.name}}"}}


@pytest.fixture(scope="module")
def network_json():
    return synth(lambda s: DataPlaneNetwork(s, "network", DataPlaneNetworkSettings("acme", "172.20.0.0/19")))


def test_network_vpc_with_dns(network_json):
    assert Testing.to_have_resource_with_properties(json.dumps(network_json), Vpc.TF_RESOURCE_TYPE, {
        "cidr_block": "172.20.0.0/19", "enable_dns_support": True, "enable_dns_hostnames": True})


def test_network_private_subnets_in_two_zones(network_json):
    subnets = sorted(resources(network_json, "aws_subnet"), key=lambda s: s["cidr_block"])
    assert [s["cidr_block"] for s in subnets] == ["172.20.0.0/21", "172.20.8.0/21"]
    [zones] = network_json["data"]["aws_availability_zones"]
    assert [s["availability_zone"] for s in subnets] == [
        f"${{element(data.aws_availability_zones.{zones}.names, 0)}}",
        f"${{element(data.aws_availability_zones.{zones}.names, 1)}}"]
    assert all(s["lifecycle"] == {"ignore_changes": ["availability_zone"]} for s in subnets)
    [route_table] = network_json["resource"]["aws_route_table"]
    associations = resources(network_json, "aws_route_table_association")
    assert sorted(a["subnet_id"] for a in associations) == sorted(
        f"${{aws_subnet.{name}.id}}" for name in network_json["resource"]["aws_subnet"])
    assert {a["route_table_id"] for a in associations} == {f"${{aws_route_table.{route_table}.id}}"}


def test_network_default_security_group_has_no_rules(network_json):
    [group] = resources(network_json, "aws_default_security_group")
    assert group["ingress"] == [] and group["egress"] == []


def peering_json(accepter: bool) -> dict:
    def build(stack):
        peer = AwsProvider(stack, "aws-peer", alias="peer", region="us-east-1") if accepter else None
        VpcPeering(stack, "peering", VpcPeeringSettings(
            name="acme", vpc_id="vpc-dataplane", route_table_id="rtb-dataplane", data_plane_cidr="172.20.0.0/19",
            peer_vpc_id="vpc-0a1b2c3d", peer_account_id="111122223333", peer_region="us-east-1",
            peer_cidrs=("10.10.0.0/16", "10.20.0.0/16"), peer_route_table_ids=("rtb-0a1b2c3d", "rtb-1a1b2c3d"),
            accepter_provider=peer))
    return synth(build)


def test_cross_account_peering_is_accepted_on_the_peer_provider():
    synthesized = peering_json(accepter=True)
    [connection] = resources(synthesized, VpcPeeringConnection.TF_RESOURCE_TYPE)
    assert connection["peer_owner_id"] == "111122223333" and connection["peer_region"] == "us-east-1"
    assert "auto_accept" not in connection
    [accepter] = resources(synthesized, VpcPeeringConnectionAccepterA.TF_RESOURCE_TYPE)
    assert accepter["provider"] == "aws.peer" and accepter["auto_accept"] is True
    options = resources(synthesized, "aws_vpc_peering_connection_options")
    assert sorted((o.get("provider", "aws"), sorted(k for k in ("accepter", "requester") if k in o)) for o in options) \
        == [("aws", ["requester"]), ("aws.peer", ["accepter"])]
    assert all(list(o.get("accepter", o.get("requester")).values()) == [True] for o in options)


def test_routes_in_both_directions():
    routes = resources(peering_json(accepter=True), Route.TF_RESOURCE_TYPE)
    to_customer = sorted((r["route_table_id"], r["destination_cidr_block"]) for r in routes if "provider" not in r)
    from_customer = sorted((r["route_table_id"], r["destination_cidr_block"]) for r in routes
                           if r.get("provider") == "aws.peer")
    assert to_customer == [("rtb-dataplane", "10.10.0.0/16"), ("rtb-dataplane", "10.20.0.0/16")]
    assert from_customer == [("rtb-0a1b2c3d", "172.20.0.0/19"), ("rtb-1a1b2c3d", "172.20.0.0/19")]
    assert len(routes) == 4


def test_same_account_same_region_peering_auto_accepts():
    synthesized = peering_json(accepter=False)
    [connection] = resources(synthesized, VpcPeeringConnection.TF_RESOURCE_TYPE)
    assert connection["auto_accept"] is True and "peer_region" not in connection
    assert resources(synthesized, VpcPeeringConnectionAccepterA.TF_RESOURCE_TYPE) == []
    [options] = resources(synthesized, "aws_vpc_peering_connection_options")
    assert options["accepter"] == {"allow_remote_vpc_dns_resolution": True}
    assert options["requester"] == {"allow_remote_vpc_dns_resolution": True}
    assert all("provider" not in r for r in resources(synthesized, Route.TF_RESOURCE_TYPE))
