"""`preflight` against the moto server: a clean account passes, each problem fails its own row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from dataplane.config.customer import load_customer
from dataplane.config.settings import Settings
from dataplane.ops.cli import main
from dataplane.ops.account.preflight import VCPU_QUOTAS, preflight, required_permissions
from dataplane.ops.report import Report, Row, Status
from dataplane.policy import MANAGED_BY
from dataplane.project import CUSTOMERS_DIR_ENV
from tests.conftest import EXTRA_FIXTURES, FIXTURES
from tests.deploy import stage
from tests.garbage_endpoint import (
    NO_RETRIES,
    broken_endpoint,
    closed_endpoint,
    garbage_endpoint,
)

DEPLOYER_ROLE = "emulator-admin"  # the role Emulator.credentials() assumes
SIMULATION_NOT_CHECKED = "not checked: the endpoint does not implement iam:SimulatePrincipalPolicy"


@dataclass
class UnemulatedCalls:
    """Answers for the two calls moto does not implement; a test sets what they say, or an error both answer."""

    denied: set[str] = field(default_factory=set)
    quotas: dict[str, float] = field(default_factory=lambda: dict.fromkeys(VCPU_QUOTAS, 64.0))
    simulated: list[dict] = field(default_factory=list)
    error: tuple[int, str] | None = None  # HTTP status and AWS error code

    def install(self, session: boto3.Session) -> boto3.Session:
        for operation in ("iam.SimulatePrincipalPolicy", "service-quotas.GetServiceQuota"):
            session.events.register(f"before-parameter-build.{operation}", self._remember)
            session.events.register(f"before-call.{operation}", self._answer)
        return session

    @staticmethod
    def _remember(params: dict, context: dict, **_) -> None:
        context["stubbed-params"] = params

    def _answer(self, model, context: dict, **_) -> tuple[AWSResponse, dict]:
        params = context["stubbed-params"]
        if self.error:
            status, code = self.error
            return AWSResponse(None, status, {}, None), {"Error": {"Code": code, "Message": "refused"},
                                                         "ResponseMetadata": {"HTTPStatusCode": status}}
        if model.name == "SimulatePrincipalPolicy":
            self.simulated.append(params)
            body = {"IsTruncated": False, "EvaluationResults": [
                {"EvalActionName": a, "EvalResourceName": "*",
                 "EvalDecision": "implicitDeny" if a in self.denied else "allowed"} for a in params["ActionNames"]]}
        else:
            code = params["QuotaCode"]
            body = {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": self.quotas[code]}}
        return AWSResponse(None, 200, {}, None), body


@pytest.fixture
def unemulated_calls() -> UnemulatedCalls:
    """The only stubbed AWS calls in preflight: iam:SimulatePrincipalPolicy and service-quotas:GetServiceQuota.

    moto implements neither; every other call goes to the emulator.
    """
    return UnemulatedCalls()


pytestmark = pytest.mark.usefixtures("aws_via_emulator")


def deployer(emulator, account_id: str) -> boto3.Session:
    """The deployer's session in `account_id`; its role exists there, as a real caller's role would."""
    emulator.client("iam", account_id, "us-east-1").create_role(RoleName=DEPLOYER_ROLE, AssumeRolePolicyDocument="{}")
    c = emulator.credentials(account_id)
    return boto3.Session(aws_access_key_id=c["AWS_ACCESS_KEY_ID"], aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
                         aws_session_token=c["AWS_SESSION_TOKEN"])


@pytest.fixture
def run(emulator, settings, unemulated_calls):
    def run(customer, account_id: str | None = None) -> Report:
        session = unemulated_calls.install(deployer(emulator, account_id or customer.account_id))
        return preflight(customer, settings, session)
    return run


@pytest.fixture
def globex(emulator, customers, settings, tmp_path):
    """Globex with its own VPC, route table and accepter role in the peer account (ids from the emulator)."""
    return stage(emulator, customers["globex"], settings, tmp_path / "globex").customer


def rows(report: Report) -> dict[str, Row]:
    return {row.check: row for row in report.rows}


def failing(report: Report) -> dict[str, str]:
    return {row.check: row.reason for row in report.rows if row.status is Status.FAIL}


def test_clean_account_passes(run, customers, settings, unemulated_calls):
    report = run(customers["acme"])
    assert [(r.check, r.status) for r in report.rows] == [
        (name, Status.PASS)
        for name in ("identity", "region", "vpcs", "cloudformation", "role", "permissions", "quotas")]
    assert report.exit_code == 0
    [simulated] = unemulated_calls.simulated
    assert simulated["PolicySourceArn"] == f"arn:aws:iam::123456789012:role/{DEPLOYER_ROLE}"
    assert simulated["ActionNames"] == list(required_permissions(customers["acme"], settings))


def test_the_deployer_needs_to_attach_policies_only_with_managed_policies(customers):
    plain = required_permissions(customers["acme"], Settings())
    attaching = required_permissions(customers["acme"], Settings.model_validate({"managedPolicyArns": ["Audit"]}))
    assert "iam:AttachRolePolicy" not in plain
    assert attaching == (*plain, "iam:AttachRolePolicy", "iam:ListAttachedRolePolicies")


def test_clean_account_with_peering_passes(run, globex, unemulated_calls):
    report = run(globex)
    assert failing(report) == {} and report.ok, report.table()
    assert {"peer vpc", "peer route tables"} <= rows(report).keys()
    assert "ec2:CreateVpcPeeringConnection" in unemulated_calls.simulated[0]["ActionNames"]


def test_wrong_account_fails_identity_and_checks_nothing_else(run, customers):
    report = run(customers["acme"], account_id="999999999999")
    assert [r.check for r in report.rows] == ["identity"]
    assert "999999999999" in failing(report)["identity"] and "123456789012" in failing(report)["identity"]
    assert report.exit_code == 1


def test_opt_in_region_not_enabled_fails(run, customers):
    customer = customers["acme"].model_copy(update={"region": "me-south-1"})
    assert failing(run(customer)) == {
        "region": "me-south-1 is not enabled for this account (not-opted-in): opt in first"}


def test_leftover_vpc_fails(run, emulator, customers):
    vpc = emulator.client("ec2", "123456789012", "us-east-1").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    assert failing(run(customers["acme"])) == {
        "vpcs": f"not a clean account: VPCs in us-east-1 besides the default: {vpc} (10.9.0.0/16)"}


def test_cloudformation_stack_fails(run, emulator, customers):
    emulator.client("cloudformation", "123456789012", "us-east-1").create_stack(
        StackName="leftover", TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}))
    assert failing(run(customers["acme"])) == {
        "cloudformation": "not a clean account: CloudFormation stacks in us-east-1: leftover (CREATE_COMPLETE)"}


def test_foreign_role_with_the_role_name_fails(run, emulator, customers, settings):
    emulator.client("iam", "123456789012", "us-east-1").create_role(
        RoleName=settings.role_name, AssumeRolePolicyDocument="{}")
    assert failing(run(customers["acme"])) == {
        "role": f"arn:aws:iam::123456789012:role/{settings.role_name} already exists and was not created by this "
                "tool (no managed-by tag)"}


def test_own_role_and_vpc_warn_reactivation(run, emulator, customers, settings, globex):
    tags = [{"Key": "managed-by", "Value": MANAGED_BY}, {"Key": "customer", "Value": "globex"}]
    emulator.client("iam", globex.account_id, "us-east-1").create_role(
        RoleName=settings.role_name, AssumeRolePolicyDocument="{}", Tags=tags)
    emulator.client("ec2", globex.account_id, globex.region).create_vpc(
        CidrBlock=globex.network.cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])
    report = run(globex)
    assert {r.check for r in report.rows if r.status is Status.WARN} == {"role", "vpcs"}
    assert rows(report)["role"].reason.startswith("re-activation:")
    assert report.exit_code == 0


@pytest.fixture
def hooli(settings):
    """Hooli (eu-west-1) with the tamper alarm: buckets `456789012345-hooli-trail`, `-access` there, and `-trail-r`,
    `-access-r` in us-east-1."""
    return load_customer(EXTRA_FIXTURES / "hooli.toml", settings.control_plane_account_id)


def bucket(emulator, account_id: str, name: str, tags: dict[str, str] | None = None) -> None:
    """Create `name` in `account_id`, in the region the tamper alarm puts it (tagged with `tags`)."""
    region = "us-east-1" if name.endswith("-r") else "eu-west-1"
    s3 = emulator.client("s3", account_id, region)
    s3.create_bucket(Bucket=name, **({} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}))
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def test_the_tamper_alarm_s_bucket_names_pass_when_free(run, hooli, settings):
    report = run(hooli)
    assert (rows(report)["alarm buckets"].status, rows(report)["alarm buckets"].reason) == (Status.PASS, (
        "456789012345-hooli-trail, 456789012345-hooli-access, 456789012345-hooli-trail-r, "
        "456789012345-hooli-access-r free"))
    assert {"s3:ListAllMyBuckets", "s3:GetBucketTagging"} <= set(required_permissions(hooli, settings))


def test_a_bucket_name_taken_by_another_account_or_not_the_customer_s_fails(run, emulator, hooli):
    """Names anyone can work out: another account that took one, or a bucket of the account this tool did not make
    for the customer, stops the activation before the deploy (which could never create it)."""
    bucket(emulator, "999999999999", "456789012345-hooli-trail-r")
    bucket(emulator, hooli.account_id, "456789012345-hooli-access")
    bucket(emulator, hooli.account_id, "456789012345-hooli-trail", {"managed-by": MANAGED_BY, "customer": "initech"})
    assert failing(run(hooli)) == {"alarm buckets": (
        "456789012345-hooli-trail is a bucket of this account not created by this tool for hooli (customer=initech); "
        "456789012345-hooli-access is a bucket of this account not created by this tool for hooli (no customer tag, "
        "no managed-by tag); 456789012345-hooli-trail-r is taken by another AWS account: the deploy could not create "
        "the tamper alarm's buckets")}


def test_the_customer_s_own_buckets_warn_reactivation(run, emulator, hooli):
    for name in ("456789012345-hooli-trail", "456789012345-hooli-trail-r"):
        bucket(emulator, hooli.account_id, name, {"managed-by": MANAGED_BY, "customer": "hooli"})
    row = rows(run(hooli))["alarm buckets"]
    assert (row.status, row.reason) == (Status.WARN, (
        "re-activation: 456789012345-hooli-trail, 456789012345-hooli-trail-r already hooli's; "
        "456789012345-hooli-access, 456789012345-hooli-access-r free"))


def test_denied_actions_fail_and_are_all_listed(run, customers, unemulated_calls):
    unemulated_calls.denied = {"iam:CreateRole", "cloudformation:CreateStack"}
    reason = failing(run(customers["acme"]))["permissions"]
    assert reason == (f"arn:aws:iam::123456789012:role/{DEPLOYER_ROLE} is denied 2 of 14 actions: "
                      "cloudformation:CreateStack, iam:CreateRole")


def test_low_vcpu_quota_warns(run, customers, unemulated_calls):
    unemulated_calls.quotas["L-34B43A08"] = 16
    report = run(customers["acme"])
    assert rows(report)["quotas"] == Row("quotas", Status.WARN, "On-Demand Standard vCPUs 64, Standard Spot vCPUs 16; "
                                                                "below 40: Standard Spot vCPUs (request an increase)")
    assert report.exit_code == 0


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (403, "AccessDenied", Status.FAIL), (500, "InternalFailure", Status.FAIL), (400, "InvalidAction", Status.WARN),
    (400, "UnknownOperationException", Status.WARN), (501, "NotImplemented", Status.WARN)])
def test_an_error_answer_fails_unless_it_says_the_call_is_not_implemented(run, customers, unemulated_calls, status,
                                                                          code, outcome):
    unemulated_calls.error = (status, code)
    report = rows(run(customers["acme"]))
    assert (report["permissions"].status, report["quotas"].status) == (outcome, outcome)
    assert (report["permissions"].reason, report["quotas"].reason) == (
        (f"{code}: refused", f"{code}: refused") if outcome is Status.FAIL else
        (SIMULATION_NOT_CHECKED, "not checked: the endpoint does not implement servicequotas:GetServiceQuota"))


def test_calls_moto_does_not_implement_warn_not_checked_and_pass(emulator, customers, settings):
    """Without the stubs, moto answers both calls with an HTML error page (HTTP 500): neither row fails."""
    report = preflight(customers["acme"], settings, deployer(emulator, customers["acme"].account_id))
    assert [(r.check, r.status) for r in report.rows] == [
        (name, Status.PASS) for name in ("identity", "region", "vpcs", "cloudformation", "role")] + [
        ("permissions", Status.WARN), ("quotas", Status.WARN)]
    assert (rows(report)["permissions"].reason, rows(report)["quotas"].reason) == (
        SIMULATION_NOT_CHECKED, "not checked: the endpoint does not implement servicequotas:GetAWSDefaultServiceQuota")
    assert report.exit_code == 0


@pytest.mark.parametrize(("kind", "outcome", "reason"), [
    ("html-404", Status.WARN, "not checked: the endpoint does not implement servicequotas:GetServiceQuota"),
    ("html-500", Status.WARN, "not checked: the endpoint does not implement servicequotas:GetServiceQuota"),
    ("html-501", Status.WARN, "not checked: the endpoint does not implement servicequotas:GetServiceQuota"),
    ("html-502", Status.FAIL, "502: Bad Gateway"),
    ("html-200", Status.FAIL, "unparseable answer: no quota L-1216C47A in it (not an AWS endpoint?)"),
    ("closed-port", Status.FAIL, 'Could not connect to the endpoint URL: "{url}/"')])
def test_only_a_missing_call_is_not_checked(emulator, customers, settings, monkeypatch, kind, outcome, reason):
    """An error page with 404, 500 or 501 says the endpoint lacks the call; a gateway's page, success or silence fail.

    Shown on the quota row, whose endpoint can be replaced alone; the permission row follows the same rule.
    """
    for name, value in NO_RETRIES.items():
        monkeypatch.setenv(name, value)
    with broken_endpoint(kind) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", url)
        report = preflight(customers["acme"], settings, deployer(emulator, customers["acme"].account_id))
    assert rows(report)["quotas"] == Row("quotas", outcome, reason.format(url=url))


def test_unreachable_iam_fails_permissions(emulator, customers, settings, monkeypatch):
    for name, value in NO_RETRIES.items():
        monkeypatch.setenv(name, value)
    url = closed_endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", url)
    report = preflight(customers["acme"], settings, deployer(emulator, customers["acme"].account_id))
    assert failing(report)["permissions"] == f'Could not connect to the endpoint URL: "{url}/"'
    assert report.exit_code == 1


def test_peer_cidr_overlapping_the_data_plane_fails(run, emulator, globex):
    peer_ec2 = emulator.client("ec2", globex.peering.account_id, globex.peer_region)
    peer_ec2.associate_vpc_cidr_block(VpcId=globex.peering.vpc_id, CidrBlock="172.20.16.0/20")
    assert failing(run(globex)) == {"peer vpc": (
        f"{globex.peering.vpc_id}: the VPC also has 172.20.16.0/20, which the file does not list; "
        "172.20.16.0/20 overlaps network.cidr 172.20.0.0/19")}


def test_missing_peer_vpc_fails(run, emulator, globex):
    peering = globex.peering.model_copy(update={"vpc_id": "vpc-0123456789abcdef0"})
    customer = globex.model_copy(update={"peering": peering})
    assert failing(run(customer))["peer vpc"] == "vpc-0123456789abcdef0 not found in account 111122223333 (us-west-2)"


def test_missing_or_foreign_route_table_fails(run, emulator, globex):
    peer_ec2 = emulator.client("ec2", globex.peering.account_id, globex.peer_region)
    [missing] = globex.peering.route_table_ids
    peer_ec2.delete_route_table(RouteTableId=missing)
    other_vpc = peer_ec2.create_vpc(CidrBlock="10.11.0.0/16")["Vpc"]["VpcId"]
    foreign = peer_ec2.create_route_table(VpcId=other_vpc)["RouteTable"]["RouteTableId"]
    customer = globex.model_copy(update={"peering": globex.peering.model_copy(
        update={"route_table_ids": (missing, foreign)})})
    assert failing(run(customer)) == {"peer route tables": (
        f"{missing} not found; {foreign} belongs to {other_vpc}, not {globex.peering.vpc_id}")}


def peering_to(emulator, customer, tags: dict[str, str]) -> str:
    """An accepted peering to the customer's VPC from a VPC on `network.cidr` in its account, both tagged `tags`."""
    ec2 = emulator.client("ec2", customer.account_id, customer.region)
    tags = [{"Key": k, "Value": v} for k, v in tags.items()]
    vpc = ec2.create_vpc(CidrBlock=customer.network.cidr,
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(
        VpcId=vpc, PeerVpcId=customer.peering.vpc_id, PeerOwnerId=customer.peering.account_id,
        PeerRegion=customer.peer_region, TagSpecifications=[{"ResourceType": "vpc-peering-connection", "Tags": tags}],
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    emulator.client("ec2", customer.peering.account_id, customer.peer_region).accept_vpc_peering_connection(
        VpcPeeringConnectionId=pcx)
    return pcx


def test_existing_route_for_the_data_plane_cidr_fails_naming_its_target(run, emulator, globex):
    peer_ec2 = emulator.client("ec2", globex.peering.account_id, globex.peer_region)
    igw = peer_ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    peer_ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=globex.peering.vpc_id)
    [table] = globex.peering.route_table_ids
    peer_ec2.create_route(RouteTableId=table, DestinationCidrBlock=globex.network.cidr, GatewayId=igw)
    assert failing(run(globex)) == {"peer route tables": (
        f"{table} already routes 172.20.0.0/19 to {igw}: deploying would fail or re-point it")}


@pytest.mark.parametrize("tags", [{"Name": "to-partner", "customer": "globex"},
                                  {"managed-by": MANAGED_BY, "customer": "initech"}],
                         ids=["not-managed-by-us", "another-customer"])
def test_route_through_a_peering_not_ours_for_the_customer_fails(run, emulator, globex, tags):
    pcx = peering_to(emulator, globex, tags)
    [table] = globex.peering.route_table_ids
    emulator.client("ec2", globex.peering.account_id, globex.peer_region).create_route(
        RouteTableId=table, DestinationCidrBlock=globex.network.cidr, VpcPeeringConnectionId=pcx)
    assert failing(run(globex))["peer route tables"] == (
        f"{table} already routes 172.20.0.0/19 to {pcx}: deploying would fail or re-point it")


def test_route_through_our_own_peering_warns_reactivation(run, emulator, globex):
    pcx = peering_to(emulator, globex, {"managed-by": MANAGED_BY, "customer": "globex"})
    [table] = globex.peering.route_table_ids
    emulator.client("ec2", globex.peering.account_id, globex.peer_region).create_route(
        RouteTableId=table, DestinationCidrBlock=globex.network.cidr, VpcPeeringConnectionId=pcx)
    report = run(globex)
    assert {r.check for r in report.rows if r.status is Status.WARN} == {"vpcs", "peer route tables"}
    assert rows(report)["peer route tables"].reason == (
        f"re-activation: 172.20.0.0/19 is already routed through {pcx} (this tool's peering for globex) in {table}")
    assert report.exit_code == 0


@pytest.mark.parametrize("status", [200, 500])
def test_unparseable_answers_fail_their_rows_and_every_other_row_runs(emulator, globex, settings, monkeypatch,
                                                                      status):
    """EC2 and service quotas answer HTML; so does moto to iam:SimulatePrincipalPolicy, not stubbed here.

    An HTML error page says the endpoint lacks the call (a WARN row), a page answering success is unparseable.
    """
    for name, value in NO_RETRIES.items():
        monkeypatch.setenv(name, value)
    with garbage_endpoint(status) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", url)
        report = preflight(globex, settings, deployer(emulator, globex.account_id))
    assert all(row.reason and "\n" not in row.reason and "<" not in row.reason for row in report.rows), report.rows
    assert {r.check: r.status for r in report.rows} == {
        "identity": Status.PASS, "region": Status.FAIL, "vpcs": Status.FAIL, "cloudformation": Status.PASS,
        "role": Status.PASS, "permissions": Status.WARN, "quotas": Status.FAIL if status == 200 else Status.WARN,
        "peer vpc": Status.FAIL, "peer route tables": Status.FAIL}
    assert all(reason.startswith("unparseable answer: ") for reason in failing(report).values()), report.table()
    assert rows(report)["permissions"].reason == SIMULATION_NOT_CHECKED


def test_cli_prints_the_table_and_exits_1_on_a_fail(emulator, monkeypatch, capsys):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    for name, value in emulator.credentials("999999999999").items():
        monkeypatch.setenv(name, value)
    assert main(["preflight", "acme"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("preflight acme (account 123456789012, us-east-1)\n  FAIL  identity  credentials are for")
    assert out.rstrip().endswith("FAILED: 0 pass, 0 warn, 1 fail")


def test_cli_exits_0_with_rows_moto_cannot_check(emulator, monkeypatch, capsys):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    deployer(emulator, "123456789012")
    for name, value in emulator.credentials("123456789012").items():
        monkeypatch.setenv(name, value)
    assert main(["preflight", "acme"]) == 0
    out = capsys.readouterr().out
    assert f"  WARN  permissions     {SIMULATION_NOT_CHECKED}\n" in out and "html" not in out.lower(), out
    assert out.rstrip().endswith("ok: 5 pass, 2 warn, 0 fail")
