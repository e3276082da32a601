"""`python -m dataplane verify <customer>`: after deploy, does the account hold what activation promised?

Runs as the control plane would: the caller's credentials (the control plane's) assume the
cross-account role with the customer's ExternalId. The deployed resources are found in the live
account, not in a local outputs file: the role by its configured name, the data-plane VPC and
route table by the `customer` and `managed-by` tags every resource of the stack carries, and the
peering connection by its two VPCs. So verify checks what is really there, wherever and however
the stack was deployed, and a missing or stale `outputs/<customer>.json` cannot mislead it.

The account is read through the assumed role unless `inspect` credentials are given: the role
may read itself (`iam:GetRole`, `iam:GetRolePolicy`), but in a real account it cannot list its
policies, read the delegation boundary's policy or describe EC2, so pass credentials with read access to the
customer's account for that.

A destroyed customer is not checked: when its activation record says destroyed and its state holds no resources
since, `python -m dataplane verify` says so in one line, exit 0 (`destroyed_record`, `dataplane/ops/fleet/activate.py`).
"""

from __future__ import annotations

import json
import time
from typing import Callable, TypeVar

import boto3
from botocore.exceptions import ClientError

from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.ops.account.aws import assume, aws_error, home_region, peer_session
from dataplane.ops.report import Outcome, Report, Status, check, listing
from dataplane.policy import (
    ACTIVATION_POLICY_NAME,
    MANAGED_BY,
    as_list,
    boundary_escalations,
    granted_actions,
    guard_of,
    normalized,
    ownership_tags,
    permissions_policy,
    trust_problems,
)
from dataplane.tamper import (
    EVENTS_REGION,
    AlarmNames,
    cloudtrail_event,
    role_change_pattern,
)

ROLE_SESSION_NAME = "dataplane-verify"
PROPAGATION_WAIT = 60.0  # seconds of retrying AssumeRole while IAM propagates a new role or trust
T = TypeVar("T")


def verify(customer: Customer, settings: Settings, session: boto3.Session, inspect: boto3.Session | None = None,
           sleep: Callable[[float], None] = time.sleep) -> Report:
    """Assume `customer`'s role from `session` and check the role, network and peering that are live."""
    checks = _Verify(customer, settings, session, sleep)
    assumed = checks.assume_role()
    reader = inspect or assumed.found
    if reader is None:
        return Report("verify", customer, (assumed,))
    permissions = checks.permissions(reader)
    rows = [assumed, checks.trust_policy(reader), permissions, checks.escalation_guard(reader, permissions.found)]
    if customer.network:
        network = checks.network(reader)
        rows.append(network)
        if customer.peering:  # a customer file with [peering] has [network]
            peering = checks.peering(reader, network.found)
            rows += [peering, checks.routes(reader, network.found, peering.found), checks.dns(peering.found)]
    if customer.tamper_alarm:
        rows.append(checks.tamper_alarm(reader))
    return Report("verify", customer, tuple(rows))


def retry_while_denied(call: Callable[[], T], sleep: Callable[[float], None],
                       budget: float = PROPAGATION_WAIT) -> tuple[T, int]:
    """`call()` and the attempts it took, retried after 1, 2, 4... s while AccessDenied, for up to `budget` s."""
    attempts, waited, delay = 1, 0.0, 1.0
    while True:
        try:
            return call(), attempts
        except ClientError as e:
            if e.response["Error"]["Code"] != "AccessDenied" or waited >= budget:
                raise
            pause = min(delay, budget - waited)
            sleep(pause)
            attempts, waited, delay = attempts + 1, waited + pause, delay * 2


class _Verify:
    """The checks of `verify`; those reading the account get `reader`, the session to read it with."""

    def __init__(self, customer: Customer, settings: Settings, session: boto3.Session,
                 sleep: Callable[[float], None]):
        self.customer, self.settings, self.session, self.sleep = customer, settings, session, sleep
        self.role_arn = f"arn:aws:iam::{customer.account_id}:role/{settings.role_name}"

    @check("assume role")
    def assume_role(self) -> Outcome:
        """Assume the role as the control plane would (with the first ExternalId); finds the role's session."""
        caller = self.session.client("sts", region_name=home_region(self.session)).get_caller_identity()
        external_id = self.customer.external_ids[0]
        try:
            role_session, attempts = retry_while_denied(
                lambda: assume(self.session, self.role_arn, ROLE_SESSION_NAME, external_id), self.sleep)
        except ClientError as e:
            if e.response["Error"]["Code"] != "AccessDenied":
                raise
            return Status.FAIL, f"{aws_error(e)} (as {caller['Arn']}, still denied after {PROPAGATION_WAIT:g}s)"
        done = f"assumed {self.role_arn} with the ExternalId as {caller['Arn']} ({attempts} attempt(s))"
        if caller["Account"] != self.settings.control_plane_account_id:
            return (Status.WARN, f"{done}, which is not the control plane {self.settings.control_plane_account_id}",
                    role_session)
        return Status.PASS, done, role_session

    def _iam(self, reader: boto3.Session):
        return reader.client("iam", region_name=home_region(self.session))

    def _ec2(self, reader: boto3.Session):
        return reader.client("ec2", region_name=self.customer.region)

    @check("trust policy")
    def trust_policy(self, reader: boto3.Session) -> tuple[Status, str]:
        document = self._iam(reader).get_role(RoleName=self.settings.role_name)["Role"]["AssumeRolePolicyDocument"]
        principal = self.settings.trusted_principal
        if problems := trust_problems(document, principal, self.customer.external_ids):
            return Status.FAIL, "; ".join(problems)
        ids = len(self.customer.external_ids)
        return Status.PASS, f"only {principal}, only sts:AssumeRole, " + (
            "ExternalId required" if ids == 1 else f"one of the customer's {ids} ExternalIds required")

    @check("permissions")
    def permissions(self, reader: boto3.Session) -> Outcome:
        """The role's inline policies grant exactly the activation policy (with the escalation guard when
        configured), exactly the configured managed policies are attached, and the role has exactly the configured
        permissions boundary (or none); finds the inline documents."""
        name, iam, account = self.settings.role_name, self._iam(reader), self.customer.account_id
        attached = {p["PolicyArn"] for page in iam.get_paginator("list_attached_role_policies").paginate(
            RoleName=name) for p in page["AttachedPolicies"]}
        inline = {policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                  for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
                  for policy in page["PolicyNames"]}
        expected = permissions_policy(self.settings.delegation_guard(account))
        granted, problems = set(), []
        for policy, document in sorted(inline.items()):
            if any("NotAction" in s for s in as_list(document.get("Statement")) if isinstance(s, dict)):
                problems.append(f"{policy} uses NotAction")
            granted |= granted_actions(document)
        if extra := sorted(granted - granted_actions(expected)):
            problems.append(f"extra actions: {', '.join(extra)}")
        if missing := sorted(granted_actions(expected) - granted):
            problems.append(f"missing actions: {', '.join(missing)}")
        if not problems and [normalized(d) for d in inline.values()] != [normalized(expected)]:
            problems.append(f"the inline policies are not exactly {ACTIVATION_POLICY_NAME} as activation writes it "
                            f"(found: {', '.join(sorted(inline)) or 'none'})")
        managed = set(self.settings.managed_policy_arns_in(account))
        if extra := sorted(attached - managed):
            problems.append(f"managed policies attached that are not configured: {', '.join(extra)}")
        if missing := sorted(managed - attached):
            problems.append(f"configured managed policies not attached: {', '.join(missing)}")
        boundary = self.settings.permissions_boundary_arn(account)
        live = iam.get_role(RoleName=name)["Role"].get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        if live != boundary:
            problems.append(f"permissions boundary {boundary} expected, found {live or 'none'}" if boundary else
                            f"permissions boundary {live} found, but permissionsBoundary is unset")
        if problems:
            return Status.FAIL, "; ".join(problems), inline
        done = f"exactly the {len(granted)} activation actions ({', '.join(sorted(inline))})"
        done += f" and the {len(managed)} managed policies" if managed else ""
        return Status.PASS, done + (f", within the boundary {boundary}" if boundary else ""), inline

    @check("escalation guard")
    def escalation_guard(self, reader: boto3.Session, inline: dict[str, dict] | None) -> tuple[Status, str]:
        """The role can create or change only roles carrying `delegationBoundary`, and never itself; the boundary
        policy's default version lets no role it bounds escalate (`boundary_escalations`)."""
        if inline is None:
            return Status.FAIL, "not checked: the role's inline policies could not be read"
        guard = self.settings.delegation_guard(self.customer.account_id)
        found = {guard_of(document) for document in inline.values()} - {None}
        if guard is None:
            return (Status.WARN, "off: the role may create a role with any policy, or rewrite its own; set "
                    "delegationBoundary to turn it on") if not found else (
                Status.FAIL, f"the live role guards with {', '.join(sorted(found))}, but delegationBoundary is unset")
        if found != {guard.boundary_arn}:
            found_text = listing(sorted(found)) or "none"
            return Status.FAIL, f"not in place: boundary {guard.boundary_arn} expected, found {found_text}"
        iam = self._iam(reader)
        try:
            version = iam.get_policy(PolicyArn=guard.boundary_arn)["Policy"]["DefaultVersionId"]
        except iam.exceptions.NoSuchEntityException:
            return Status.FAIL, (f"the boundary {guard.boundary_arn} does not exist: the control plane can create "
                                 "no role")
        document = iam.get_policy_version(PolicyArn=guard.boundary_arn, VersionId=version)["PolicyVersion"]["Document"]
        if escalations := boundary_escalations(document, guard.boundary_arn):
            return Status.FAIL, (f"the boundary {guard.boundary_arn} ({version}) lets the roles it bounds escalate: "
                                 + "; ".join(escalations))
        return Status.PASS, f"on: roles it creates or changes must carry {guard.boundary_arn}; it cannot change itself"

    @check("network")
    def network(self, reader: boto3.Session) -> Outcome:
        """The data-plane VPC, found by its tags, has the CIDR and DNS settings; finds its id."""
        c, ec2 = self.customer, self._ec2(reader)
        vpcs = ec2.describe_vpcs(Filters=self._tag_filters)["Vpcs"]
        if len(vpcs) != 1:
            return Status.FAIL, f"{len(vpcs)} VPCs tagged customer={c.name}, managed-by={MANAGED_BY} in {c.region}"
        vpc = vpcs[0]
        vpc_id = vpc["VpcId"]
        problems = [] if vpc["CidrBlock"] == c.network.cidr else [f"CIDR {vpc['CidrBlock']}, not {c.network.cidr}"]
        for attribute in ("enableDnsSupport", "enableDnsHostnames"):
            answer = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
            if not answer[attribute[0].upper() + attribute[1:]]["Value"]:
                problems.append(f"{attribute} is off")
        if problems:
            return Status.FAIL, f"{vpc_id}: {'; '.join(problems)}", vpc_id
        return Status.PASS, f"{vpc_id} on {c.network.cidr}, DNS support and hostnames on", vpc_id

    @check("peering")
    def peering(self, reader: boto3.Session, vpc_id: str | None) -> Outcome:
        """An active peering from `vpc_id`, the VPC `network` found, to the customer's; finds the connection."""
        if not vpc_id:
            return Status.FAIL, "not checked: no data-plane VPC"
        peer_vpc = self.customer.peering.vpc_id
        found = [p for page in self._ec2(reader).get_paginator("describe_vpc_peering_connections").paginate()
                 for p in page["VpcPeeringConnections"]
                 if p["RequesterVpcInfo"]["VpcId"] == vpc_id and p["AccepterVpcInfo"]["VpcId"] == peer_vpc]
        active = [p for p in found if p["Status"]["Code"] == "active"]
        if not active:
            seen = listing(f"{p['VpcPeeringConnectionId']} {p['Status']['Code']}" for p in found) or "none"
            return Status.FAIL, f"no active peering from {vpc_id} to {peer_vpc} (found: {seen})"
        connection = active[0]
        return Status.PASS, f"{connection['VpcPeeringConnectionId']} active: {vpc_id} to {peer_vpc}", connection

    @check("routes")
    def routes(self, reader: boto3.Session, vpc_id: str | None, connection: dict | None) -> tuple[Status, str]:
        """Both sides route to each other through `connection`, the peering `peering` found from `vpc_id`."""
        if not connection:
            return Status.FAIL, "not checked: no active peering connection"
        c, pcx = self.customer, connection["VpcPeeringConnectionId"]
        ours = self._ec2(reader).describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, *self._tag_filters])["RouteTables"]
        peer_ec2 = peer_session(reader, c).client("ec2", region_name=c.peer_region)
        theirs = peer_ec2.describe_route_tables(
            Filters=[{"Name": "route-table-id", "Values": list(c.peering.route_table_ids)}])["RouteTables"]
        wanted = [(t, cidr) for t in ours for cidr in c.peering.cidrs] + [(t, c.network.cidr) for t in theirs]
        missing = [f"{t['RouteTableId']} -> {cidr}" for t, cidr in wanted if not _routes(t, cidr, pcx)]
        found = {t["RouteTableId"] for t in theirs}
        missing += [f"{t} not found" for t in c.peering.route_table_ids if t not in found]
        if not ours:
            missing.append(f"no route table tagged customer={c.name} in {vpc_id}")
        if missing:
            return Status.FAIL, f"missing via {pcx}: {', '.join(missing)}"
        tables = ", ".join(t["RouteTableId"] for t in ours + theirs)
        return Status.PASS, f"{len(wanted)} route(s) via {pcx} both ways, in {tables}"

    @check("dns")
    def dns(self, connection: dict | None) -> tuple[Status, str]:
        """Both sides of `connection`, the peering `peering` found, resolve the other's DNS names."""
        if not connection:
            return Status.FAIL, "not checked: no active peering connection"
        sides = (("requester (data plane)", "RequesterVpcInfo"), ("accepter (customer)", "AccepterVpcInfo"))
        off = [side for side, info in sides
               if not connection[info].get("PeeringOptions", {}).get("AllowDnsResolutionFromRemoteVpc")]
        if off:
            return Status.FAIL, f"remote DNS resolution is off for the {' and '.join(off)} side"
        return Status.PASS, "remote DNS resolution on for both sides"

    @property
    def _tag_filters(self) -> list[dict]:
        return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(ownership_tags(self.customer.name).items())]

    @check("tamper alarm")
    def tamper_alarm(self, reader: boto3.Session) -> tuple[Status, str]:
        """The trail logs every region and IAM's events into a private, encrypted, versioned bucket; in us-east-1 the
        rule, enabled, matches a change to the role (EventBridge says) and publishes it to an encrypted topic that
        emails the configured address."""
        c, role = self.customer, self.settings.role_name
        names, email = AlarmNames(c.name, c.account_id), c.tamper_alarm.email
        problems = _trail_problems(reader.client("cloudtrail", region_name=c.region),
                                   reader.client("s3", region_name=c.region), names.trail)
        events, sns = (reader.client(service, region_name=EVENTS_REGION) for service in ("events", "sns"))
        rule = events.describe_rule(Name=names.rule)
        if rule.get("State") != "ENABLED":
            problems.append(f"rule {names.rule} is {rule.get('State')}")
        if json.loads(rule.get("EventPattern") or "{}") != role_change_pattern(role):
            problems.append(f"rule {names.rule} has another pattern than the alarm's")
        change = cloudtrail_event(c.account_id, "PutRolePolicy", {"roleName": role, "policyName": "verify"})
        matched = events.test_event_pattern(EventPattern=rule.get("EventPattern") or "{}",
                                            Event=json.dumps(change)).get("Result")
        if matched is False:
            problems.append(f"EventBridge says rule {names.rule} does not match a PutRolePolicy on {role}")
        targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=names.rule)["Targets"]]
        if names.topic_arn() not in targets:
            problems.append(f"rule {names.rule} does not target {names.topic_arn()}")
        if not sns.get_topic_attributes(TopicArn=names.topic_arn())["Attributes"].get("KmsMasterKeyId"):
            problems.append(f"topic {names.topic} is not KMS-encrypted")
        subscriptions = [s for s in sns.list_subscriptions_by_topic(TopicArn=names.topic_arn())["Subscriptions"]
                         if s["Protocol"] == "email" and s["Endpoint"].lower() == email.lower()]
        if not subscriptions:
            problems.append(f"topic {names.topic} has no email subscription for {email}")
        if problems:
            return Status.FAIL, "; ".join(problems)
        done = f"trail {names.trail} logging; rule {names.rule} in {EVENTS_REGION} emails {email} changes to {role}"
        if matched is None:
            return Status.WARN, f"{done}, but its pattern is not checked: the endpoint does not answer TestEventPattern"
        if all(s["SubscriptionArn"] == "PendingConfirmation" for s in subscriptions):
            return Status.WARN, f"{done} once {email} confirms the subscription (AWS sent the confirmation email)"
        return Status.PASS, done


def _routes(table: dict, cidr: str, connection_id: str) -> bool:
    return any(r.get("DestinationCidrBlock") == cidr and r.get("VpcPeeringConnectionId") == connection_id
               and r.get("State") == "active" for r in table["Routes"])


def _trail_problems(cloudtrail, s3, name: str) -> list[str]:
    """What is missing from the trail called `name`: logging, every region, IAM's events, and a private, KMS-encrypted,
    versioned bucket."""
    trails = cloudtrail.describe_trails(trailNameList=[name])["trailList"]
    if not trails:
        return [f"no trail {name}"]
    trail, problems = trails[0], []
    if not cloudtrail.get_trail_status(Name=trail["TrailARN"])["IsLogging"]:
        problems.append(f"trail {name} is not logging")
    if not trail.get("IsMultiRegionTrail"):
        problems.append(f"trail {name} logs one region only")
    if not trail.get("IncludeGlobalServiceEvents"):
        problems.append(f"trail {name} leaves out global service events (IAM's)")
    bucket = trail["S3BucketName"]
    encryption = _unless_missing(s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError", bucket)
    rules = encryption.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if not any(r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"].startswith("aws:kms") for r in rules):
        problems.append(f"bucket {bucket} is not KMS-encrypted")
    block = _unless_missing(s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration", bucket).get(
        "PublicAccessBlockConfiguration", {})
    if not all(block.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                      "RestrictPublicBuckets")):
        problems.append(f"bucket {bucket} does not block all public access")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        problems.append(f"bucket {bucket} is not versioned")
    return problems


def _unless_missing(get: Callable[..., dict], missing: str, bucket: str) -> dict:
    """A bucket setting, or {} when the bucket has none (the error code `missing`)."""
    try:
        return get(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] != missing:
            raise
        return {}
