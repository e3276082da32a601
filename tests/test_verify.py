"""`verify` against the moto server, as the control plane: resources built with boto3 as the stack builds them.

moto does not enforce trust policies, so the control plane's credentials can always assume the
role here; what verify proves about trust comes from the document check.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.events.responses import EventsHandler

from dataplane.config.customer import load_customer
from dataplane.config.settings import Settings
from dataplane.ops.cli import main
from dataplane.ops.report import Report, Status
from dataplane.ops.account.verify import PROPAGATION_WAIT, retry_while_denied, verify
from dataplane.policy import (
    ESCALATING_IAM_ACTIONS,
    MANAGED_BY,
    boundary_escalations,
    permissions_policy,
    trust_policy,
    trust_problems,
)
from dataplane.project import CUSTOMERS_DIR_ENV
from dataplane.tamper import EVENTS_REGION, ROLE_CHANGES, AlarmNames, cloudtrail_event
from tests.conftest import EXTRA_FIXTURES, FIXTURES
from tests.deploy import stage
from tests.garbage_endpoint import NO_RETRIES, garbage_endpoint

ACTIVATION_POLICY = "data-plane-activation"


pytestmark = pytest.mark.usefixtures("aws_via_emulator")


def session(emulator, account_id: str) -> boto3.Session:
    c = emulator.credentials(account_id)
    return boto3.Session(aws_access_key_id=c["AWS_ACCESS_KEY_ID"], aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
                         aws_session_token=c["AWS_SESSION_TOKEN"])


def build(emulator, settings, customer) -> dict[str, str]:
    """What DataPlaneStack creates, made with boto3: role, VPC and route table, accepted peering, routes, DNS."""
    tags = [{"Key": "customer", "Value": customer.name}, {"Key": "managed-by", "Value": MANAGED_BY}]
    iam = emulator.client("iam", customer.account_id, customer.region)
    boundary = settings.permissions_boundary_arn(customer.account_id)
    iam.create_role(RoleName=settings.role_name, Tags=tags, AssumeRolePolicyDocument=json.dumps(
        trust_policy(settings.trusted_principal, customer.external_id)),
        **({"PermissionsBoundary": boundary} if boundary else {}))
    iam.put_role_policy(RoleName=settings.role_name, PolicyName=ACTIVATION_POLICY,
                        PolicyDocument=json.dumps(permissions_policy(settings.delegation_guard(customer.account_id))))
    for arn in settings.managed_policy_arns_in(customer.account_id):
        iam.attach_role_policy(RoleName=settings.role_name, PolicyArn=arn)
    if not customer.network:
        return {}
    ec2 = emulator.client("ec2", customer.account_id, customer.region)
    vpc = ec2.create_vpc(CidrBlock=customer.network.cidr,
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        ec2.modify_vpc_attribute(VpcId=vpc, **{attribute: {"Value": True}})
    table = ec2.create_route_table(VpcId=vpc, TagSpecifications=[
        {"ResourceType": "route-table", "Tags": tags}])["RouteTable"]["RouteTableId"]
    peering = customer.peering
    peer_ec2 = emulator.client("ec2", peering.account_id, customer.peer_region)
    pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peering.vpc_id, PeerOwnerId=peering.account_id,
                                            PeerRegion=customer.peer_region)["VpcPeeringConnection"]
    pcx = pcx["VpcPeeringConnectionId"]
    peer_ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    ec2.modify_vpc_peering_connection_options(
        VpcPeeringConnectionId=pcx, RequesterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True})
    peer_ec2.modify_vpc_peering_connection_options(
        VpcPeeringConnectionId=pcx, AccepterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True})
    for cidr in peering.cidrs:
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=cidr, VpcPeeringConnectionId=pcx)
    for peer_table in peering.route_table_ids:
        peer_ec2.create_route(RouteTableId=peer_table, DestinationCidrBlock=customer.network.cidr,
                              VpcPeeringConnectionId=pcx)
    return {"vpc": vpc, "route_table": table, "peering": pcx}


@pytest.fixture
def globex(emulator, customers, settings, tmp_path):
    """Globex's own VPC, route table and accepter role (from the deploy helper), then the stack's resources."""
    customer = stage(emulator, customers["globex"], settings, tmp_path / "globex").customer
    return customer, build(emulator, settings, customer)


@pytest.fixture
def control_plane(emulator, settings):
    """Runs verify with the control plane's credentials; records every wait instead of sleeping."""
    sleeps: list[float] = []

    def run(customer) -> Report:
        report = verify(customer, settings, session(emulator, settings.control_plane_account_id), sleep=sleeps.append)
        assert sleeps == []
        return report
    return run


def failing(report: Report) -> dict[str, str]:
    return {row.check: row.reason for row in report.rows if row.status is Status.FAIL}


def not_passed(report: Report) -> dict[str, Status]:
    return {row.check: row.status for row in report.rows if row.status is not Status.PASS}


def test_role_only_activation_passes(emulator, settings, customers, control_plane):
    build(emulator, settings, customers["acme"])
    report = control_plane(customers["acme"])
    assert [(r.check, r.status) for r in report.rows] == [
        ("assume role", Status.PASS), ("trust policy", Status.PASS), ("permissions", Status.PASS),
        ("escalation guard", Status.WARN)], report.table()
    assert report.rows[3].reason.startswith("off: the role may create a role with any policy, or rewrite its own")
    assert report.rows[0].reason.startswith(
        f"assumed arn:aws:iam::123456789012:role/{settings.role_name} with the ExternalId as "
        f"arn:aws:sts::{settings.control_plane_account_id}:assumed-role/")


def test_network_and_peering_pass(globex, control_plane):
    customer, ids = globex
    report = control_plane(customer)
    assert [r.check for r in report.rows] == [
        "assume role", "trust policy", "permissions", "escalation guard", "network", "peering", "routes", "dns"]
    assert report.ok and not_passed(report) == {"escalation guard": Status.WARN}, report.table()
    assert ids["vpc"] in report.rows[4].reason and ids["peering"] in report.rows[5].reason


def test_credentials_outside_the_control_plane_warn(emulator, settings, customers):
    build(emulator, settings, customers["acme"])
    report = verify(customers["acme"], settings, session(emulator, "999999999999"), sleep=pytest.fail)
    assert report.rows[0].status is Status.WARN and report.rows[0].reason.endswith(
        f"which is not the control plane {settings.control_plane_account_id}")


def test_missing_role_fails(customers, control_plane, settings):
    reasons = failing(control_plane(customers["acme"]))
    assert reasons.keys() == {"trust policy", "permissions", "escalation guard"}
    assert reasons["trust policy"].startswith("NoSuchEntity:")
    assert reasons["escalation guard"] == "not checked: the role's inline policies could not be read"


GUARDED = {"managedPolicyArns": ["Audit", "team/Extra"],
           "delegationBoundary": "boundaries/DataPlane"}
BOUNDARY = "arn:aws:iam::123456789012:policy/boundaries/DataPlane"


def allowing(*statements: dict) -> dict:
    """A policy document of Allow statements on every resource."""
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", **s} for s in statements]}


NARROW = allowing({"Action": ["s3:GetObject", "logs:PutLogEvents"]})


def test_the_guard_and_managed_policies_pass_as_configured_and_each_change_is_named(emulator, customers):
    settings, customer = Settings.model_validate(GUARDED), customers["acme"]
    iam = emulator.client("iam", customer.account_id, customer.region)
    for name, path in (("Audit", "/"), ("Extra", "/team/"), ("DataPlane", "/boundaries/")):
        iam.create_policy(PolicyName=name, Path=path, PolicyDocument=json.dumps(NARROW))
    build(emulator, settings, customer)
    run = lambda s: verify(customer, s, session(emulator, s.control_plane_account_id), sleep=pytest.fail)  # noqa: E731
    report = run(settings)
    assert not_passed(report) == {}, report.table()
    assert report.rows[2].reason == ("exactly the 8 activation actions (data-plane-activation) and the 2 managed "
                                     "policies")
    assert report.rows[3].reason == f"on: roles it creates or changes must carry {BOUNDARY}; it cannot change itself"

    assert failing(run(Settings.model_validate({"managedPolicyArns": GUARDED["managedPolicyArns"]}))) == {
        "permissions": "the inline policies are not exactly data-plane-activation as activation writes it "
                       "(found: data-plane-activation)",
        "escalation guard": f"the live role guards with {BOUNDARY}, but delegationBoundary is unset"}

    iam.detach_role_policy(RoleName=settings.role_name, PolicyArn="arn:aws:iam::123456789012:policy/Audit")
    iam.put_role_policy(RoleName=settings.role_name, PolicyName=ACTIVATION_POLICY,
                        PolicyDocument=json.dumps(permissions_policy()))
    assert failing(run(settings)) == {
        "permissions": "the inline policies are not exactly data-plane-activation as activation writes it "
                       "(found: data-plane-activation); configured managed policies not attached: "
                       "arn:aws:iam::123456789012:policy/Audit",
        "escalation guard": f"not in place: boundary {BOUNDARY} expected, found none"}


GUARD_ONLY = Settings.model_validate({"delegationBoundary": "boundaries/DataPlane"})


def guarded_role(emulator, customer, boundary: dict | None) -> Report:
    """Verify of `customer`'s role with the escalation guard, whose boundary policy has `boundary` (None: no policy)."""
    if boundary is not None:
        emulator.client("iam", customer.account_id, customer.region).create_policy(
            PolicyName="DataPlane", Path="/boundaries/", PolicyDocument=json.dumps(boundary))
    build(emulator, GUARD_ONLY, customer)
    return verify_guarded(emulator, customer)


def verify_guarded(emulator, customer) -> Report:
    return verify(customer, GUARD_ONLY, session(emulator, GUARD_ONLY.control_plane_account_id), sleep=pytest.fail)


SELF_PROPAGATING = allowing({"Action": ["iam:CreateRole", "iam:PutRolePolicy"],
                             "Condition": {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}},
                            NARROW["Statement"][0])
"""AWS's delegated-administration boundary: the roles it bounds may make roles only with itself as their boundary."""


@pytest.mark.parametrize("boundary, problem", [
    (NARROW, None),
    (SELF_PROPAGATING, None),
    (allowing({"Sid": "Admin", "Action": "*"}), "Admin allows *, which covers 20 escalating IAM actions such as "
                                                "iam:AddUserToGroup"),
    (allowing({"Action": ["s3:*", "iam:*"]}), "statement 0 allows iam:*, which covers 20 escalating IAM actions"),
    (allowing({"Action": "iam:*Role*"}), "statement 0 allows iam:*Role*, which covers 7 escalating IAM actions "
                                         "such as iam:AttachRolePolicy"),
    (allowing({"Action": "IAM:passrole"}), "statement 0 allows IAM:passrole"),
    (allowing({"NotAction": ["s3:*", "ec2:*"]}), "statement 0 allows every action but s3:*, ec2:*, which covers "
                                                 "20 escalating IAM actions such as iam:AddUserToGroup"),
    (allowing({"NotAction": ["iam:*User*", "iam:*Group*", "iam:*Policy*", "iam:*AccessKey", "iam:*Boundary"]}),
     "statement 0 allows every action but iam:*User*, iam:*Group*, iam:*Policy*, iam:*AccessKey, iam:*Boundary, "
     "which covers 4 escalating IAM actions such as iam:CreateLoginProfile"),
    (allowing({"Action": "iam:PutRolePolicy", "Condition": {"StringEquals": {
        "iam:PermissionsBoundary": "arn:aws:iam::123456789012:policy/Other"}}}),
     "statement 0 allows iam:PutRolePolicy"),
], ids=["narrow", "self-propagating", "star", "iam-star", "role-wildcard", "named-any-case", "not-action",
        "not-action-but-one", "another-boundary-condition"])
def test_a_boundary_that_lets_roles_escalate_fails_the_guard(emulator, customers, boundary, problem):
    row = guarded_role(emulator, customers["acme"], boundary).rows[3]
    if problem is None:
        assert (row.status, row.reason) == (Status.PASS, f"on: roles it creates or changes must carry {BOUNDARY}; it "
                                                         "cannot change itself")
    else:
        assert row.status is Status.FAIL and row.reason.startswith(
            f"the boundary {BOUNDARY} (v1) lets the roles it bounds escalate: {problem}"), row.reason


def test_the_guard_reads_the_boundary_s_default_version(emulator, customers):
    iam = emulator.client("iam", customers["acme"].account_id, customers["acme"].region)
    assert guarded_role(emulator, customers["acme"], NARROW).rows[3].status is Status.PASS
    iam.create_policy_version(PolicyArn=BOUNDARY, PolicyDocument=json.dumps(allowing({"Action": "*"})))
    assert verify_guarded(emulator, customers["acme"]).rows[3].status is Status.PASS, "v2 is not the default"
    iam.set_default_policy_version(PolicyArn=BOUNDARY, VersionId="v2")
    assert failing(verify_guarded(emulator, customers["acme"]))["escalation guard"].startswith(
        f"the boundary {BOUNDARY} (v2) lets the roles it bounds escalate: statement 0 allows *")


def test_a_missing_boundary_policy_fails_the_guard(emulator, customers):
    assert failing(guarded_role(emulator, customers["acme"], None)) == {
        "escalation guard": f"the boundary {BOUNDARY} does not exist: the control plane can create no role"}


def test_boundary_escalations_read_any_document_shape():
    assert boundary_escalations({"Statement": {"Effect": "Allow", "Action": "iam:Create*", "Resource": "*"}}, BOUNDARY
                                ) == ["statement 0 allows iam:Create*, which covers 5 escalating IAM actions such as "
                                      "iam:CreateAccessKey"]
    assert boundary_escalations(allowing({"NotAction": "iam:*"}), BOUNDARY) == []
    assert boundary_escalations({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}, "junk"]},
                                BOUNDARY) == []
    assert boundary_escalations(None, BOUNDARY) == []
    assert len(ESCALATING_IAM_ACTIONS) == len(set(ESCALATING_IAM_ACTIONS)) == 20


def test_a_permissions_boundary_removed_or_replaced_fails_permissions(emulator, customers):
    customer = customers["acme"]
    bounded = Settings.model_validate({"permissionsBoundary": "boundaries/Role"})
    expected, other = (f"arn:aws:iam::{customer.account_id}:policy/boundaries/{name}" for name in ("Role", "Other"))
    iam = emulator.client("iam", customer.account_id, customer.region)
    for name in ("Role", "Other"):
        iam.create_policy(PolicyName=name, Path="/boundaries/", PolicyDocument=json.dumps(NARROW))
    build(emulator, bounded, customer)
    run = lambda s: verify(customer, s, session(emulator, s.control_plane_account_id), sleep=pytest.fail)  # noqa: E731
    report = run(bounded)
    assert report.ok and report.rows[2].reason.endswith(f", within the boundary {expected}"), report.table()
    assert failing(run(Settings())) == {
        "permissions": f"permissions boundary {expected} found, but permissionsBoundary is unset"}

    iam.delete_role_permissions_boundary(RoleName=bounded.role_name)
    assert failing(run(bounded)) == {"permissions": f"permissions boundary {expected} expected, found none"}
    iam.put_role_permissions_boundary(RoleName=bounded.role_name, PermissionsBoundary=other)
    assert failing(run(bounded)) == {"permissions": f"permissions boundary {expected} expected, found {other}"}


def rewrite_trust(document):
    def tamper(emulator, settings, customer, ids):
        emulator.client("iam", customer.account_id, customer.region).update_assume_role_policy(
            RoleName=settings.role_name, PolicyDocument=json.dumps(document(settings)))
    return tamper


def add_policy(emulator, settings, customer, ids):
    emulator.client("iam", customer.account_id, customer.region).put_role_policy(
        RoleName=settings.role_name, PolicyName="extra",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ec2:*", "iam:GetRole"], "Resource": "*"}]}))


def attach_policy(emulator, settings, customer, ids):
    iam = emulator.client("iam", customer.account_id, customer.region)
    arn = iam.create_policy(PolicyName="admin", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=settings.role_name, PolicyArn=arn)


def shrink_policy(emulator, settings, customer, ids):
    emulator.client("iam", customer.account_id, customer.region).put_role_policy(
        RoleName=settings.role_name, PolicyName=ACTIVATION_POLICY, PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}))


def delete_route(peer: bool):
    def tamper(emulator, settings, customer, ids):
        if peer:
            emulator.client("ec2", customer.peering.account_id, customer.peer_region).delete_route(
                RouteTableId=customer.peering.route_table_ids[0], DestinationCidrBlock=customer.network.cidr)
        else:
            emulator.client("ec2", customer.account_id, customer.region).delete_route(
                RouteTableId=ids["route_table"], DestinationCidrBlock=customer.peering.cidrs[0])
    return tamper


def dns_off(emulator, settings, customer, ids):
    emulator.client("ec2", customer.peering.account_id, customer.peer_region).modify_vpc_peering_connection_options(
        VpcPeeringConnectionId=ids["peering"],
        AccepterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": False})


def delete_peering(emulator, settings, customer, ids):
    emulator.client("ec2", customer.account_id, customer.region).delete_vpc_peering_connection(
        VpcPeeringConnectionId=ids["peering"])


def no_external_id(settings):
    document = trust_policy(settings.trusted_principal, "unused")
    del document["Statement"][0]["Condition"]
    return document


def second_principal(settings):
    document = trust_policy(settings.trusted_principal, "astro-8d41a6c0")
    document["Statement"][0]["Principal"]["AWS"] = [settings.trusted_principal, "999999999999"]
    return document


@pytest.mark.parametrize("tamper, expected", [
    (rewrite_trust(no_external_id), {"trust policy": "AstroControlPlane does not require the sts:ExternalId"}),
    (rewrite_trust(second_principal), {"trust policy": "AstroControlPlane trusts arn:aws:iam::999999999999:root"}),
    (rewrite_trust(lambda s: trust_policy(s.trusted_principal, "astro-other")),
     {"trust policy": "AstroControlPlane requires ExternalId astro-other, not astro-8d41a6c0"}),
    (add_policy, {"permissions": "extra actions: ec2:*"}),
    (attach_policy, {"permissions": "managed policies attached that are not configured: "
                                     "arn:aws:iam::210987654321:policy/admin"}),
    (shrink_policy, {"permissions": "missing actions: cloudformation:*, iam:CreateRole, iam:DeleteRolePolicy, "
                                    "iam:GetRolePolicy, iam:ListRoles, iam:PutRolePolicy, iam:UpdateAssumeRolePolicy"}),
    (delete_route(peer=False), {"routes": "missing via {peering}: {route_table} -> 10.10.0.0/16"}),
    (delete_route(peer=True), {"routes": "missing via {peering}: {peer_route_table} -> 172.20.0.0/19"}),
    (dns_off, {"dns": "remote DNS resolution is off for the accepter (customer) side"}),
    (delete_peering, {"peering": "no active peering from {vpc} to {peer_vpc} (found: {peering} deleted)",
                      "routes": "not checked: no active peering connection",
                      "dns": "not checked: no active peering connection"}),
], ids=["no-external-id", "second-principal", "other-external-id", "extra-action", "attached-policy",
        "missing-actions", "route-deleted", "peer-route-deleted", "dns-off", "peering-deleted"])
def test_tampering_fails_the_row_naming_the_change(emulator, settings, globex, control_plane, tamper, expected):
    customer, ids = globex
    tamper(emulator, settings, customer, ids)
    names = {**ids, "peer_vpc": customer.peering.vpc_id, "peer_route_table": customer.peering.route_table_ids[0]}
    assert failing(control_plane(customer)) == {row: reason.format(**names) for row, reason in expected.items()}


def test_missing_data_plane_vpc_fails(emulator, settings, customers, control_plane, tmp_path):
    customer = stage(emulator, customers["globex"], settings, tmp_path / "globex").customer
    build(emulator, settings, customer.model_copy(update={"network": None, "peering": None}))
    assert failing(control_plane(customer)) == {
        "network": "0 VPCs tagged customer=globex, managed-by=dataplane-activation in us-west-2",
        "peering": "not checked: no data-plane VPC",
        "routes": "not checked: no active peering connection",
        "dns": "not checked: no active peering connection"}


def test_trust_problems_reads_the_document(settings):
    principal = settings.trusted_principal
    assert trust_problems(trust_policy(principal, "x1"), principal, "x1") == []
    as_account_id = trust_policy(settings.control_plane_account_id, "x1")
    assert trust_problems(as_account_id, principal, "x1") == []
    broad = {"Statement": {"Effect": "Allow", "Principal": "*", "Action": ["sts:AssumeRole", "sts:TagSession"]}}
    assert trust_problems(broad, principal, "x1") == [
        "statement 0 trusts *", "statement 0 allows sts:TagSession",
        "statement 0 does not require the sts:ExternalId", f"{principal} is not trusted"]
    assert trust_problems({"Statement": []}, principal, "x1") == [f"no statement allows {principal}"]


def test_trust_problems_accepts_exactly_the_set_of_external_ids(settings):
    principal = settings.trusted_principal
    several = trust_policy(principal, ["astro-a1", "astro-b2"])
    assert trust_problems(several) == trust_problems(several, principal, ("astro-b2", "astro-a1")) == []
    assert trust_problems(several, principal, "astro-a1") == trust_problems(several, principal, ("astro-a1",)) == [
        "AstroControlPlane requires ExternalId astro-a1, astro-b2, not astro-a1"]
    assert trust_problems(trust_policy(principal, "astro-a1"), principal, ("astro-a1", "astro-b2")) == [
        "AstroControlPlane requires ExternalId astro-a1, not astro-a1, astro-b2"]


@pytest.mark.parametrize("condition, problem", [
    ({"StringEquals": {"sts:ExternalId": ["astro-a1", "astro-*"]}},
     "AstroControlPlane requires ExternalId astro-*, with a wildcard character (* or ?)"),
    ({"StringEquals": {"sts:ExternalId": "astro-?1"}},
     "AstroControlPlane requires ExternalId astro-?1, with a wildcard character (* or ?)"),
    ({"StringEquals": {"sts:ExternalId": "astro-a1"}, "StringLike": {"sts:ExternalId": "*"}},
     "AstroControlPlane uses condition operator StringLike; the trust uses only StringEquals"),
    ({"StringEquals": {"sts:ExternalId": "astro-a1"}, "Bool": {"aws:SecureTransport": "true"}},
     "AstroControlPlane uses condition operator Bool; the trust uses only StringEquals"),
    ({"StringEquals": {"sts:ExternalId": []}}, "AstroControlPlane does not require the sts:ExternalId"),
    ({"StringEquals": {"sts:ExternalId": ["astro-a1", ""]}}, "AstroControlPlane does not require the sts:ExternalId"),
])
def test_trust_problems_refuse_anything_wider_than_string_equals_ids(settings, condition, problem):
    document = trust_policy(settings.trusted_principal, "astro-a1")
    document["Statement"][0]["Condition"] = condition
    assert problem in trust_problems(document)


def test_several_external_ids_pass_as_exactly_that_set(emulator, settings, customers, control_plane):
    acme = customers["acme"].model_copy(update={"external_id": ("astro-3f9c2b7e", "astro-cluster-2")})
    build(emulator, settings, acme)
    report = control_plane(acme)
    assert report.ok, report.table()
    assert report.rows[1].reason == (f"only {settings.trusted_principal}, only sts:AssumeRole, one of the customer's "
                                     "2 ExternalIds required")
    more = acme.model_copy(update={"external_id": ("astro-3f9c2b7e", "astro-cluster-2", "astro-cluster-3")})
    assert failing(control_plane(more)) == {"trust policy": "AstroControlPlane requires ExternalId astro-3f9c2b7e, "
                                                             "astro-cluster-2, not astro-3f9c2b7e, astro-cluster-2, "
                                                             "astro-cluster-3"}


def denied(code: str = "AccessDenied") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "not yet"}}, "AssumeRole")


def test_assume_role_backs_off_exponentially_while_denied():
    sleeps: list[float] = []
    outcomes = iter([denied(), denied(), "role session"])

    def call():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    assert retry_while_denied(call, sleeps.append) == ("role session", 3)
    assert sleeps == [1, 2]


def test_assume_role_gives_up_after_about_a_minute():
    sleeps: list[float] = []
    with pytest.raises(ClientError):
        retry_while_denied(lambda: (_ for _ in ()).throw(denied()), sleeps.append)
    assert sleeps == [1, 2, 4, 8, 16, 29] and sum(sleeps) == PROPAGATION_WAIT


def test_other_errors_are_not_retried():
    with pytest.raises(ClientError):
        retry_while_denied(lambda: (_ for _ in ()).throw(denied("ExpiredToken")), pytest.fail)


@pytest.mark.parametrize("status", [200, 500])
def test_unparseable_iam_and_ec2_answers_fail_their_rows(globex, control_plane, monkeypatch, status):
    customer, _ = globex
    for name, value in NO_RETRIES.items():
        monkeypatch.setenv(name, value)
    with garbage_endpoint(status) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        report = control_plane(customer)
    assert report.rows[0].status is Status.PASS, report.table()
    failed = failing(report)
    assert failed.keys() == {"trust policy", "permissions", "escalation guard", "network", "peering", "routes", "dns"}
    for check in ("trust policy", "permissions", "network"):
        assert failed[check] == ("unparseable answer: Unable to parse response (syntax error: line 1, column 0), "
                                 "invalid XML received. Further retries may succeed")
    assert failed["peering"] == "not checked: no data-plane VPC"


def test_cli_verify_as_the_control_plane(emulator, settings, customers, monkeypatch, capsys):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    build(emulator, settings, customers["acme"])
    for name, value in emulator.credentials(settings.control_plane_account_id).items():
        monkeypatch.setenv(name, value)
    assert main(["verify", "acme", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["command"], result["customer"], result["ok"]) == ("verify", "acme", True)
    assert [c["status"] for c in result["checks"]] == ["PASS", "PASS", "PASS", "WARN"]


class PendingSubscriptions:
    """Reads through `session`, but SNS lists every subscription as pending confirmation, as AWS does until the
    recipient confirms (moto confirms an email subscription at once)."""

    def __init__(self, session: boto3.Session):
        self.session = session

    def client(self, service: str, **kwargs):
        client = self.session.client(service, **kwargs)
        if service == "sns":
            listed = client.list_subscriptions_by_topic
            client.list_subscriptions_by_topic = lambda **call: {"Subscriptions": [
                {**s, "SubscriptionArn": "PendingConfirmation"} for s in listed(**call)["Subscriptions"]]}
        return client


def test_after_a_real_deploy_the_tamper_alarm_passes_and_a_put_role_policy_on_the_role_matches_its_rule(
        emulator, settings, control_plane, tmp_path, monkeypatch, event_patterns_answered):
    """hooli (eu-west-1) deployed with `make deploy`: verify's row passes; EventBridge (the emulator's) matches the
    deployed rule's pattern against the PutRolePolicy made on the role, as CloudTrail hands it over, and not against
    one on another role; a pending subscription, an endpoint that cannot test the pattern, and each part changed by
    hand are named."""
    hooli = load_customer(EXTRA_FIXTURES / "hooli.toml", settings.control_plane_account_id)
    deployment = stage(emulator, hooli, settings, tmp_path)
    deployed = deployment.make("deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    customer = deployment.customer

    def checked():
        return control_plane(customer)
    names, role, email = AlarmNames(customer.name, customer.account_id), settings.role_name, "security@hooli.example"
    report = checked()
    assert report.ok and not_passed(report) == {"escalation guard": Status.WARN}, report.table()
    assert report.rows[-1].check == "tamper alarm" and report.rows[-1].reason == (
        f"trail hooli-tamper-trail logging; rule hooli-role-tamper in us-east-1 emails {email} changes to {role}")

    document = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]})
    emulator.client("iam", customer.account_id, customer.region).put_role_policy(
        RoleName=role, PolicyName="escalate", PolicyDocument=document)
    events = emulator.client("events", customer.account_id, EVENTS_REGION)
    pattern = events.describe_rule(Name=names.rule)["EventPattern"]
    call = {"roleName": role, "policyName": "escalate", "policyDocument": document}

    def matches(event_name: str, parameters: dict) -> bool:
        event = cloudtrail_event(customer.account_id, event_name, parameters)
        return events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"]
    assert matches("PutRolePolicy", call)
    assert not matches("PutRolePolicy", {**call, "roleName": "someone-else"})
    assert all(matches(change, {"roleName": role}) for change in ROLE_CHANGES)
    assert not matches("GetRolePolicy", {"roleName": role, "policyName": "escalate"})

    reader = session(emulator, customer.account_id)
    pending = verify(customer, settings, session(emulator, settings.control_plane_account_id),
                     inspect=PendingSubscriptions(reader), sleep=pytest.fail)
    assert (pending.rows[-1].status, pending.rows[-1].reason) == (Status.WARN, (
        f"trail hooli-tamper-trail logging; rule hooli-role-tamper in us-east-1 emails {email} changes to {role} "
        f"once {email} confirms the subscription (AWS sent the confirmation email)"))
    with monkeypatch.context() as moto_as_released:
        moto_as_released.setattr(EventsHandler, "test_event_pattern", event_patterns_answered)
        unanswered = checked().rows[-1]
    assert (unanswered.status, unanswered.reason.split(", but ")[1]) == (
        Status.WARN, "its pattern is not checked: the endpoint does not answer TestEventPattern")

    events.disable_rule(Name=names.rule)
    emulator.client("s3", customer.account_id, customer.region).delete_public_access_block(Bucket=names.bucket("trail"))
    emulator.client("cloudtrail", customer.account_id, customer.region).stop_logging(Name=names.trail)
    assert {r.check: r.reason for r in checked().rows}["tamper alarm"] == (
        f"trail hooli-tamper-trail is not logging; bucket {customer.account_id}-hooli-trail does not block all "
        "public access; rule hooli-role-tamper is DISABLED")
