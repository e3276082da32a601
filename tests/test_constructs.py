"""Each construct on its own, in a throwaway stack, asserted on the synthesized JSON."""

from __future__ import annotations

import json
import re

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

from constructs_lib import facts
from constructs_lib.cross_account_role import CrossAccountRole, CrossAccountRoleProps
from constructs_lib.data_plane_network import (
    DataPlaneNetwork,
    DataPlaneNetworkProps,
    private_subnet_cidrs,
)
from constructs_lib.facts import Adoption
from constructs_lib.props import validate_role_policies
from constructs_lib.vpc_peering import VpcPeering, VpcPeeringProps
from dataplane.ops import adopt
from dataplane.policy import permissions_policy, trust_policy
from tests.conftest import stack_json

ROLE = {"role_name": "astronomer-remote-management", "trusted_principal": "arn:aws:iam::406882777402:root",
        "external_id": "astro-3f9c2b7e"}
NETWORK = {"name": "acme", "cidr": "172.20.0.0/19"}
PEERING = {"name": "acme", "vpc_id": "vpc-0d0d0d0d", "route_table_id": "rtb-0d0d0d0d", "data_plane_cidr": "172.20.0.0/19",
           "peer_vpc_id": "vpc-0a1b2c3d", "peer_account_id": "111122223333", "peer_region": "us-east-1",
           "peer_cidrs": ("10.10.0.0/16", "10.20.0.0/16"), "peer_route_table_ids": ("rtb-0a1b2c3d", "rtb-1a1b2c3d")}
VALID = {CrossAccountRoleProps: ROLE, DataPlaneNetworkProps: NETWORK, VpcPeeringProps: PEERING}


def synth(build) -> dict:
    stack = TerraformStack(Testing.app(), "test")
    AwsProvider(stack, "aws", region="us-east-1")
    build(stack)
    return json.loads(Testing.synth(stack))


def resources(synthesized: dict, kind: str) -> list[dict]:
    return list(synthesized["resource"].get(kind, {}).values())


@pytest.fixture(scope="module")
def role_json():
    return synth(lambda s: CrossAccountRole(s, "role", CrossAccountRoleProps(
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


@pytest.mark.parametrize("external_id, condition", [
    (("astro-3f9c2b7e",), "astro-3f9c2b7e"),
    (("astro-3f9c2b7e", "astro-cluster-2"), ["astro-3f9c2b7e", "astro-cluster-2"]),
])
def test_role_trusts_each_of_several_external_ids(external_id, condition):
    """One id (a string, or a list of one) stays a plain string; several are a list in the file's order."""
    synthesized = synth(lambda s: CrossAccountRole(s, "role", CrossAccountRoleProps(**{**ROLE,
                                                                                       "external_id": external_id})))
    [role] = resources(synthesized, IamRole.TF_RESOURCE_TYPE)
    [statement] = json.loads(role["assume_role_policy"])["Statement"]
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": condition}}


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
        role = CrossAccountRole(stack, "role", CrossAccountRoleProps("r", "arn:aws:iam::406882777402:root", "xx"))
        TerraformOutput(stack, "arn", value=role.role_arn)
        TerraformOutput(stack, "name", value=role.role_name)
    synthesized = synth(build)
    [role] = synthesized["resource"]["aws_iam_role"]
    assert synthesized["output"] == {"arn": {"value": f"${{aws_iam_role.{role}.arn}}"},
                                     "name": {"value": f"${{aws_iam_role.{role}.name}}"}}


@pytest.fixture(scope="module")
def network_json():
    return synth(lambda s: DataPlaneNetwork(s, "network", DataPlaneNetworkProps("acme", "172.20.0.0/19")))


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


@pytest.mark.parametrize("cidr, subnets", [
    ("10.0.0.0/16", ["10.0.0.0/18", "10.0.64.0/18"]),
    ("172.20.0.0/19", ["172.20.0.0/21", "172.20.8.0/21"]),
    ("172.20.16.0/20", ["172.20.16.0/22", "172.20.20.0/22"]),
])
def test_private_subnets_are_the_first_two_quarters(cidr, subnets):
    """A /20 (minNetworkPrefix 20) gives two /22s: 1,019 usable addresses each, half the VPC left free."""
    assert private_subnet_cidrs(cidr) == subnets


def test_a_slash_20_network_synthesizes():
    synthesized = synth(lambda s: DataPlaneNetwork(s, "network", DataPlaneNetworkProps("acme", "172.20.16.0/20")))
    assert sorted(s["cidr_block"] for s in resources(synthesized, "aws_subnet")) == ["172.20.16.0/22", "172.20.20.0/22"]


def test_network_default_security_group_has_no_rules(network_json):
    [group] = resources(network_json, "aws_default_security_group")
    assert group["ingress"] == [] and group["egress"] == []


def peering_json(accepter: bool) -> dict:
    def build(stack):
        peer = AwsProvider(stack, "aws-peer", alias="peer", region="us-east-1") if accepter else None
        VpcPeering(stack, "peering", VpcPeeringProps(**PEERING, accepter_provider=peer))
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
    assert to_customer == [("rtb-0d0d0d0d", "10.10.0.0/16"), ("rtb-0d0d0d0d", "10.20.0.0/16")]
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


@pytest.mark.parametrize("props, prop, value, message", [
    (CrossAccountRoleProps, "role_name", "astronomer remote", "'astronomer remote' is not an IAM role name"),
    (CrossAccountRoleProps, "role_name", "r" * 65, "is not an IAM role name"),
    (CrossAccountRoleProps, "trusted_principal", "arn:aws:iam::1:root", "is not an account root"),
    (CrossAccountRoleProps, "trusted_principal", "*", "is not an account root"),
    (CrossAccountRoleProps, "trusted_principal", "arn:aws-cn:iam::406882777402:root", "partition"),
    (CrossAccountRoleProps, "external_id", "x", "is not 2-1224 characters"),
    (CrossAccountRoleProps, "external_id", "astro 3f9c", "is not 2-1224 characters"),
    (CrossAccountRoleProps, "external_id", (), "must list at least 1 item(s)"),
    (CrossAccountRoleProps, "external_id", ("astro-1", "astro 2"), "'astro 2' is not 2-1224 characters"),
    (CrossAccountRoleProps, "external_id", ("astro-1", "astro-1"), "lists 'astro-1' twice"),
    (CrossAccountRoleProps, "external_id", tuple(f"astro-{i}" for i in range(21)), "must list at most 20 item(s)"),
    (CrossAccountRoleProps, "external_id", ("x" * 1224, "y" * 607),
     "the trust policy would be 2,049 characters (whitespace excluded), over IAM's default quota of 2,048"),
    (CrossAccountRoleProps, "max_session_duration", 3599, "greater than or equal to 3600"),
    (CrossAccountRoleProps, "max_session_duration", 43201, "less than or equal to 43200"),
    (CrossAccountRoleProps, "max_session_duration", "3600", "must be an integer"),
    (CrossAccountRoleProps, "permissions_boundary_arn", "PowerUserAccess", "is not an IAM policy ARN"),
    (CrossAccountRoleProps, "permissions_boundary_arn", "arn:aws:iam::1:policy/x", "is not an IAM policy ARN"),
    (DataPlaneNetworkProps, "name", "Acme", "is not a customer name"),
    (DataPlaneNetworkProps, "cidr", "172.20.0.0", "has no prefix length"),
    (DataPlaneNetworkProps, "cidr", "172.20.0.1/19", "has host bits set"),
    (DataPlaneNetworkProps, "cidr", "172.20.0.0/21", "smaller than a /20"),
    (DataPlaneNetworkProps, "cidr", "10.0.0.0/15", "larger than a /16"),
    (DataPlaneNetworkProps, "cidr", "8.8.0.0/16", "not in a private (RFC1918) range"),
    (VpcPeeringProps, "name", "", "is not a customer name"),
    (VpcPeeringProps, "vpc_id", "vpc-dataplane", "is not a VPC id"),
    (VpcPeeringProps, "route_table_id", "rtb-dataplane", "is not a route table id"),
    (VpcPeeringProps, "data_plane_cidr", "172.20.0.0/21", "smaller than a /20"),
    (VpcPeeringProps, "peer_vpc_id", "vpc-1", "is not a VPC id"),
    (VpcPeeringProps, "peer_account_id", "1111", "is not a 12-digit AWS account id"),
    (VpcPeeringProps, "peer_region", "mars-1", "is not a region of the commercial AWS partition"),
    (VpcPeeringProps, "peer_cidrs", (), "must list at least 1 item(s)"),
    (VpcPeeringProps, "peer_cidrs", ("10.10.0.0",), "has no prefix length"),
    (VpcPeeringProps, "peer_route_table_ids", (), "must list at least 1 item(s)"),
    (VpcPeeringProps, "peer_route_table_ids", ("rtb-0a1b2c3d", "rtb-x"), "is not a route table id"),
])
def test_props_refuse_a_bad_value_naming_the_prop(props, prop, value, message):
    with pytest.raises(ValueError, match=rf"^{prop}(\[\d+\])?: .*{re.escape(message)}"):
        props(**{**VALID[props], prop: value})


def test_props_take_what_any_project_may_choose():
    """The constructs do not see the settings: a /20 and 20 ExternalIds filling the trust to 2,048 pass."""
    DataPlaneNetworkProps("acme", "172.20.16.0/20")
    CrossAccountRoleProps(**{**ROLE, "external_id": ("x" * 1224, "y" * 606)})
    CrossAccountRoleProps(**{**ROLE, "external_id": tuple(f"astro-{i}" for i in range(20))})


def misshapen(edit) -> dict:
    document = trust_policy("arn:aws:iam::406882777402:root", "astro-3f9c2b7e")
    edit(document["Statement"][0])
    return document


@pytest.mark.parametrize("trust, inline, message", [
    (misshapen(lambda s: s.pop("Principal")), [permissions_policy()],
     "external_id: the trust policy's AstroControlPlane has no Principal, which IAM requires"),
    (misshapen(lambda s: s.update(Resource="*")), [permissions_policy()],
     "external_id: the trust policy's AstroControlPlane has Resource, which IAM refuses in a trust policy"),
    (misshapen(lambda s: None), [permissions_policy()] * 39,
     "(inline policies): the role's inline policies would be 10,491 characters in total (whitespace excluded), "
     "over IAM's limit of 10,240"),
])
def test_props_refuse_role_policies_iam_would_refuse(trust, inline, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate_role_policies(trust, inline)
    validate_role_policies(misshapen(lambda s: None), [permissions_policy()] * 38)  # 10,222 characters


def test_props_take_a_role_principal_an_account_boundary_and_references():
    CrossAccountRoleProps(**{**ROLE, "trusted_principal": "arn:aws:iam::406882777402:role/control-plane",
                             "permissions_boundary_arn": "arn:aws:iam::123456789012:policy/boundaries/DataPlane"})

    def build(stack):
        network = DataPlaneNetwork(stack, "network", DataPlaneNetworkProps(**NETWORK))
        VpcPeering(stack, "peering", VpcPeeringProps(**{**PEERING, "vpc_id": network.vpc_id,
                                                        "route_table_id": network.route_table_id}))
    synthesized = synth(build)
    [table] = synthesized["resource"]["aws_route_table"]
    to_customer = [r for r in resources(synthesized, Route.TF_RESOURCE_TYPE)
                   if r["destination_cidr_block"] in PEERING["peer_cidrs"]]
    assert {r["route_table_id"] for r in to_customer} == {f"${{aws_route_table.{table}.id}}"}


def types(synthesized: dict) -> set[str]:
    """The resource and data source types of a synthesized stack."""
    return {kind for block in ("resource", "data") for kind in synthesized.get(block, {})}


def test_each_construct_describes_exactly_the_types_it_synthesizes(role_json, network_json):
    assert types(role_json) == {f.type for f in CrossAccountRole.FACTS}
    assert types(network_json) == {f.type for f in DataPlaneNetwork.FACTS}
    assert types(peering_json(accepter=True)) == {f.type for f in VpcPeering.FACTS}


@pytest.mark.parametrize("name", ["acme", "globex"])
def test_every_type_in_the_fixture_stacks_is_described_by_a_construct(synthesized, name):
    assert types(stack_json(synthesized, name)) <= {f.type for f in facts.ALL}


def test_adopt_implements_every_adoption_strategy_the_facts_use():
    assert len({f.type for f in facts.ALL}) == len(facts.ALL)  # adopt looks each type up once
    implemented = set(adopt.FINDERS) | adopt.LEFT_TO_TERRAFORM | {Adoption.PEERING_ACCEPTER}
    assert {f.adoption for f in facts.ALL} <= implemented
