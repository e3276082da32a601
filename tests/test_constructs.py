"""Each construct on its own, in a throwaway stack, asserted on the synthesized JSON."""

from __future__ import annotations

import json
import re

import pytest
from cdktf import TerraformOutput, TerraformStack, Testing
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
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
from constructs_lib.tamper_alarm import (
    LOG_RETENTION_DAYS,
    TamperAlarm,
    TamperAlarmProps,
)
from constructs_lib.vpc_peering import VpcPeering, VpcPeeringProps
from dataplane.ops.fleet import adopt
from dataplane.policy import (
    ACTIVATION_ACTIONS,
    DelegationGuard,
    permissions_policy,
    trust_policy,
)
from dataplane.tamper import (
    EVENTS_REGION,
    AlarmNames,
    replica_region,
    role_change_pattern,
    service_trust,
    service_trust_problems,
)
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
        permissions_boundary_arn="arn:aws:iam::aws:policy/PowerUserAccess",
        managed_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",))))


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


GUARD = DelegationGuard("arn:aws:iam::123456789012:policy/boundaries/DataPlane",
                        "arn:aws:iam::123456789012:role/astronomer-remote-management")


def test_managed_policies_are_attached_to_the_role_one_resource_each():
    arns = ("arn:aws:iam::123456789012:policy/team/Extra", "arn:aws:iam::aws:policy/ReadOnlyAccess")
    synthesized = synth(lambda s: CrossAccountRole(s, "role", CrossAccountRoleProps(**ROLE, managed_policy_arns=arns)))
    [role] = synthesized["resource"]["aws_iam_role"]
    attachments = resources(synthesized, IamRolePolicyAttachment.TF_RESOURCE_TYPE)
    assert sorted((a["policy_arn"], a["role"]) for a in attachments) == [
        (arn, f"${{aws_iam_role.{role}.id}}") for arn in arns]


def test_the_guard_bounds_role_changes_keeps_boundaries_and_never_changes_the_role_itself():
    synthesized = synth(lambda s: CrossAccountRole(s, "role", CrossAccountRoleProps(**ROLE, delegation_guard=GUARD)))
    [policy] = resources(synthesized, IamRolePolicy.TF_RESOURCE_TYPE)
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert [(sid, s["Effect"]) for sid, s in statements.items()] == [
        ("DataPlaneActivation", "Allow"), ("OnlyRolesWithTheBoundary", "Allow"), ("NoBoundaryRemoved", "Deny"),
        ("NoBoundaryReplaced", "Deny"), ("NoBoundaryPolicyChanged", "Deny"), ("NeverItself", "Deny")]
    unconditional = set(statements["DataPlaneActivation"]["Action"])
    assert unconditional == {"cloudformation:*", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRoles"}
    bounded = statements["OnlyRolesWithTheBoundary"]
    assert set(bounded["Action"]) == {"iam:CreateRole", "iam:DeleteRolePolicy", "iam:PutRolePolicy",
                                      "iam:UpdateAssumeRolePolicy"}
    assert unconditional | set(bounded["Action"]) == set(ACTIVATION_ACTIONS)
    assert bounded["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": GUARD.boundary_arn}}
    assert statements["NoBoundaryReplaced"]["Condition"] == {
        "StringNotEquals": {"iam:PermissionsBoundary": GUARD.boundary_arn}}
    assert statements["NoBoundaryPolicyChanged"]["Resource"] == GUARD.boundary_arn
    itself = statements["NeverItself"]
    assert itself["Resource"] == GUARD.role_arn and {"iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy",
                                                     "iam:AttachRolePolicy", "iam:DeleteRolePermissionsBoundary",
                                                     "iam:DeleteRole"} <= set(itself["Action"])


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
    (CrossAccountRoleProps, "managed_policy_arns", ("ReadOnlyAccess",), "is not an IAM policy ARN"),
    (CrossAccountRoleProps, "managed_policy_arns", ("arn:aws:iam::aws:policy/A",) * 2, "twice"),
    (CrossAccountRoleProps, "managed_policy_arns", tuple(f"arn:aws:iam::aws:policy/P{i}" for i in range(21)),
     "at most 20 item(s)"),
    (CrossAccountRoleProps, "delegation_guard", DelegationGuard("boundaries/DataPlane", GUARD.role_arn),
     "is not an IAM policy ARN"),
    (CrossAccountRoleProps, "delegation_guard", DelegationGuard(GUARD.boundary_arn,
                                                                "arn:aws:iam::123456789012:role/other"),
     "is not the role astronomer-remote-management"),
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
    with pytest.raises(ValueError, match=rf"^{prop}(\[\d+\]|\.\w+)?: .*{re.escape(message)}"):
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


ALARM = {"name": "hooli", "account_id": "456789012345", "role_name": "astronomer-remote-management",
         "email": "security@hooli.example"}


def alarm_stack(region: str = "eu-west-1") -> tuple[TerraformStack, dict[str, AwsProvider]]:
    """A throwaway stack with the providers the alarm takes: its region's, us-east-1 (`events` unless that is the
    stack's region), and the replicas' region."""
    stack = TerraformStack(Testing.app(), "test")
    providers = {"home": AwsProvider(stack, "aws", region=region)}
    providers["events"] = providers["home"] if region == EVENTS_REGION else AwsProvider(
        stack, "aws-events", alias="events", region=EVENTS_REGION)
    providers["replica"] = providers["events"] if replica_region(region) == EVENTS_REGION else AwsProvider(
        stack, "aws-replica", alias="replica", region=replica_region(region))
    return stack, providers


def alarm_props(providers: dict[str, AwsProvider], **changes) -> TamperAlarmProps:
    return TamperAlarmProps(**{**ALARM, "trail_provider": providers["home"], "events_provider": providers["events"],
                               "replica_provider": providers["replica"], **changes})


@pytest.fixture(scope="module")
def alarm_json():
    stack, providers = alarm_stack()
    alarm = TamperAlarm(stack, "tamper-alarm", alarm_props(providers))
    TerraformOutput(stack, "trail", value=alarm.trail_arn)
    TerraformOutput(stack, "rule", value=alarm.rule_name)
    TerraformOutput(stack, "topic", value=alarm.topic_arn)
    return json.loads(Testing.synth(stack))


def one(synthesized: dict, kind: str) -> dict:
    [resource] = resources(synthesized, kind)
    return resource


def by_bucket(synthesized: dict, kind: str) -> dict[str, dict]:
    """`kind`'s resources by the name of the bucket they configure."""
    names = {f"${{aws_s3_bucket.{key}.id}}": b["bucket"] for key, b in synthesized["resource"]["aws_s3_bucket"].items()}
    return {names[r["bucket"]]: r for r in resources(synthesized, kind)}


def test_the_trail_records_every_region_and_iam_encrypted_validated_and_copied_to_cloudwatch_logs(alarm_json):
    trail = one(alarm_json, "aws_cloudtrail")
    [key] = [k for k, v in alarm_json["resource"]["aws_kms_key"].items() if v["description"].startswith(
        "The tamper alarm's trail:")]
    [bucket] = [k for k, v in alarm_json["resource"]["aws_s3_bucket"].items() if v["bucket"].endswith("-trail")]
    [log_group] = alarm_json["resource"]["aws_cloudwatch_log_group"]
    assert {k: trail[k] for k in ("name", "s3_bucket_name", "is_multi_region_trail", "include_global_service_events",
                                  "enable_log_file_validation", "kms_key_id", "sns_topic_name",
                                  "cloud_watch_logs_group_arn", "provider")} == {
        "name": "hooli-tamper-trail", "s3_bucket_name": f"${{aws_s3_bucket.{bucket}.id}}",
        "is_multi_region_trail": True, "include_global_service_events": True, "enable_log_file_validation": True,
        "kms_key_id": f"${{aws_kms_key.{key}.arn}}", "sns_topic_name": "hooli-tamper-trail-delivery",
        "cloud_watch_logs_group_arn": f"${{aws_cloudwatch_log_group.{log_group}.arn}}:*", "provider": "aws"}
    group = one(alarm_json, "aws_cloudwatch_log_group")
    assert (group["name"], group["retention_in_days"], group["kms_key_id"]) == (
        "/dataplane/hooli/tamper-trail", LOG_RETENTION_DAYS, trail["kms_key_id"])
    assert LOG_RETENTION_DAYS >= 365


def test_every_bucket_is_private_encrypted_versioned_expiring_and_announcing_its_events(alarm_json):
    names = ["456789012345-hooli-access", "456789012345-hooli-access-r", "456789012345-hooli-trail",
             "456789012345-hooli-trail-r"]
    assert sorted(b["bucket"] for b in resources(alarm_json, "aws_s3_bucket")) == names
    assert all(b["force_destroy"] is False for b in resources(alarm_json, "aws_s3_bucket"))
    keys = {f"${{aws_kms_key.{key}.arn}}": f"aws_kms_key.{key}" for key in alarm_json["resource"]["aws_kms_key"]}
    assert {n: by_bucket(alarm_json, "aws_s3_bucket_server_side_encryption_configuration")[n]["rule"][0][
        "apply_server_side_encryption_by_default"]["kms_master_key_id"] for n in names} == {
        b["bucket"]: next(ref for ref, address in keys.items() if b["depends_on"] == [address])
        for b in resources(alarm_json, "aws_s3_bucket")}, "a bucket depends on the key that encrypts it"
    blocks = by_bucket(alarm_json, "aws_s3_bucket_public_access_block")
    assert {n: [b[k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                               "restrict_public_buckets")] for n, b in blocks.items()} == {n: [True] * 4 for n in names}
    versioning = by_bucket(alarm_json, "aws_s3_bucket_versioning")
    assert {n: v["versioning_configuration"]["status"] for n, v in versioning.items()} == {n: "Enabled" for n in names}
    encryption = by_bucket(alarm_json, "aws_s3_bucket_server_side_encryption_configuration")
    defaults = {n: e["rule"][0]["apply_server_side_encryption_by_default"] for n, e in encryption.items()}
    assert {n: d["sse_algorithm"] for n, d in defaults.items()} == {n: "aws:kms" for n in names}
    assert all(d["kms_master_key_id"].startswith("${aws_kms_key.") for d in defaults.values())
    lifecycle = {n: r["rule"] for n, r in by_bucket(alarm_json, "aws_s3_bucket_lifecycle_configuration").items()}
    assert {n: (rule["expiration"], rule["noncurrent_version_expiration"]) for n, [rule] in lifecycle.items()} == {
        n: ([{"days": LOG_RETENTION_DAYS}], [{"noncurrent_days": LOG_RETENTION_DAYS}]) for n in names}
    assert all(n["eventbridge"] for n in resources(alarm_json, "aws_s3_bucket_notification"))
    logging = {n: r["target_prefix"] for n, r in by_bucket(alarm_json, "aws_s3_bucket_logging").items()}
    assert logging == {"456789012345-hooli-trail": "trail/", "456789012345-hooli-trail-r": "trail-r/"}


def test_only_cloudtrail_writes_the_trail_bucket_for_this_trail_handing_the_logs_to_the_owner(alarm_json):
    policy = json.loads(by_bucket(alarm_json, "aws_s3_bucket_policy")["456789012345-hooli-trail"]["policy"])
    trail = "arn:aws:cloudtrail:eu-west-1:456789012345:trail/hooli-tamper-trail"
    assert policy["Statement"] == [
        {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::456789012345-hooli-trail",
         "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
        {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::456789012345-hooli-trail/AWSLogs/456789012345/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}}]


def test_log_files_are_replicated_to_another_region_keeping_what_is_deleted(alarm_json):
    replications = {r["provider"]: r["rule"] for r in resources(alarm_json, "aws_s3_bucket_replication_configuration")}
    assert sorted(replications) == ["aws", "aws.events"]
    for [rule] in replications.values():
        assert rule["status"] == "Enabled" and rule["delete_marker_replication"] == {"status": "Disabled"}
        assert rule["destination"]["encryption_configuration"]["replica_kms_key_id"].startswith("${aws_kms_key.")
    roles = {r["name"]: json.loads(r["assume_role_policy"]) for r in resources(alarm_json, "aws_iam_role")}
    assert sorted(roles) == ["hooli-tamper-replication", "hooli-tamper-trail-logs"]
    assert roles["hooli-tamper-replication"] == service_trust("s3.amazonaws.com", "456789012345", [
        "arn:aws:s3:::456789012345-hooli-trail", "arn:aws:s3:::456789012345-hooli-access-r"])
    assert roles["hooli-tamper-trail-logs"] == service_trust("cloudtrail.amazonaws.com", "456789012345", [
        "arn:aws:cloudtrail:eu-west-1:456789012345:trail/hooli-tamper-trail"])
    assert [service_trust_problems(r) for r in roles.values()] == [[], []]


def test_the_rule_in_us_east_1_matches_the_nine_changes_to_the_role_and_emails_them_encrypted(alarm_json):
    rule = one(alarm_json, "aws_cloudwatch_event_rule")
    pattern = json.loads(rule["event_pattern"])
    assert pattern == role_change_pattern("astronomer-remote-management")
    assert sorted(pattern["detail"]["eventName"]) == sorted([
        "AttachRolePolicy", "DetachRolePolicy", "PutRolePolicy", "DeleteRolePolicy", "UpdateAssumeRolePolicy",
        "UpdateRole", "PutRolePermissionsBoundary", "DeleteRolePermissionsBoundary", "DeleteRole"])
    assert pattern["detail"]["requestParameters"] == {"roleName": ["astronomer-remote-management"]}
    assert (pattern["source"], pattern["detail-type"]) == (["aws.iam"], ["AWS API Call via CloudTrail"])
    assert (rule["name"], rule["state"], rule["provider"]) == ("hooli-role-tamper", "ENABLED", "aws.events")
    topics = {t["name"]: t for t in resources(alarm_json, "aws_sns_topic")}
    [topic] = [key for key, t in alarm_json["resource"]["aws_sns_topic"].items()
               if t["name"] == "hooli-role-tamper-alarm"]
    target = one(alarm_json, "aws_cloudwatch_event_target")
    assert (target["arn"], target["provider"]) == (f"${{aws_sns_topic.{topic}.arn}}", "aws.events")
    key_ref = topics["hooli-role-tamper-alarm"]["kms_master_key_id"]
    key = alarm_json["resource"]["aws_kms_key"][key_ref.split(".")[1]]
    assert key["provider"] == "aws.events" and {"Sid": "ServicePublishes", "Effect": "Allow", "Principal": {
        "Service": "events.amazonaws.com"}, "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"} in \
        json.loads(key["policy"])["Statement"]
    [publish] = [json.loads(p["policy"])["Statement"] for p in resources(alarm_json, "aws_sns_topic_policy")
                 if p["provider"] == "aws.events"]
    assert publish == [{"Sid": "PublishFromSource", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": "arn:aws:sns:us-east-1:456789012345:hooli-role-tamper-alarm",
                        "Condition": {"ArnEquals": {
                            "aws:SourceArn": "arn:aws:events:us-east-1:456789012345:rule/hooli-role-tamper"}}}]
    subscription = one(alarm_json, "aws_sns_topic_subscription")
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "security@hooli.example")


def test_every_key_rotates_and_is_administered_by_the_account(alarm_json):
    keys = resources(alarm_json, "aws_kms_key")
    assert len(keys) == 4 and all(k["enable_key_rotation"] for k in keys)
    assert all(json.loads(k["policy"])["Statement"][0] == {
        "Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::456789012345:root"},
        "Action": "kms:*", "Resource": "*"} for k in keys)


def test_the_alarm_exposes_its_trail_rule_and_topic(alarm_json):
    assert {name: o["value"].split(".")[0] for name, o in alarm_json["output"].items()} == {
        "trail": "${aws_cloudtrail", "rule": "${aws_cloudwatch_event_rule", "topic": "${aws_sns_topic"}


def test_in_us_east_1_the_alarm_uses_the_default_provider_and_replicates_to_us_west_2():
    stack, providers = alarm_stack(EVENTS_REGION)
    TamperAlarm(stack, "tamper-alarm", alarm_props(providers))
    synthesized = json.loads(Testing.synth(stack))
    assert one(synthesized, "aws_cloudwatch_event_rule")["provider"] == "aws"
    assert {b["bucket"]: b["provider"] for b in resources(synthesized, "aws_s3_bucket")} == {
        "456789012345-hooli-trail": "aws", "456789012345-hooli-access": "aws",
        "456789012345-hooli-trail-r": "aws.replica", "456789012345-hooli-access-r": "aws.replica"}


def test_every_bucket_name_fits_s3_s_63_characters_for_the_longest_customer_name():
    names = AlarmNames("a" * 40, "456789012345")
    assert max(len(names.bucket(purpose)) for purpose in ("trail", "access", "trail-r", "access-r")) == 62


@pytest.mark.parametrize("prop, value, message", [
    ("name", "Hooli", "is not a customer name"),
    ("account_id", "4567", "is not a 12-digit AWS account id"),
    ("role_name", "a b", "is not an IAM role name"),
    ("email", "security", "is not an email address"),
])
def test_alarm_props_refuse_a_bad_value_naming_the_prop(prop, value, message):
    _, providers = alarm_stack()
    with pytest.raises(ValueError, match=rf"^{prop}: .*{re.escape(message)}"):
        alarm_props(providers, **{prop: value})


def test_alarm_props_refuse_providers_in_the_wrong_regions():
    _, providers = alarm_stack()
    with pytest.raises(ValueError, match="^events_provider: in eu-west-1, not us-east-1, where IAM's events arrive$"):
        alarm_props(providers, events_provider=providers["home"])
    with pytest.raises(ValueError, match="^replica_provider: in eu-west-1, the trail's own region"):
        alarm_props(providers, replica_provider=providers["home"])


def test_the_alarm_describes_the_types_it_synthesizes_with_its_roles_described_as_roles(alarm_json):
    assert types(alarm_json) == {f.type for f in TamperAlarm.FACTS} | {IamRole.TF_RESOURCE_TYPE,
                                                                       IamRolePolicy.TF_RESOURCE_TYPE}
    assert types(alarm_json) <= {f.type for f in facts.ALL}
