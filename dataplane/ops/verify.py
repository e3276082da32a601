"""`python -m dataplane verify <customer>`: after deploy, does the account hold what activation promised?

Runs as the control plane would: the caller's credentials (the control plane's) assume the
cross-account role with the customer's ExternalId. The deployed resources are found in the live
account, not in a local outputs file: the role by its configured name, the data-plane VPC and
route table by the `customer` and `managed-by` tags every resource of the stack carries, and the
peering connection by its two VPCs. So verify checks what is really there, wherever and however
the stack was deployed, and a missing or stale `outputs/<customer>.json` cannot mislead it.

The account is read through the assumed role unless `inspect` credentials are given: the role
may read itself (`iam:GetRole`, `iam:GetRolePolicy`), but in a real account it cannot list its
policies or describe EC2, so pass credentials with read access to the customer's account for that.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import boto3
from botocore.exceptions import ClientError

from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.ops.aws import assume, aws_error, home_region, peer_session
from dataplane.ops.report import Outcome, Report, Status, check, listing
from dataplane.policy import (
    ACTIVATION_ACTIONS,
    MANAGED_BY,
    as_list,
    ownership_tags,
    trust_problems,
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
    rows = [assumed, checks.trust_policy(reader), checks.permissions(reader)]
    if customer.network:
        network = checks.network(reader)
        rows.append(network)
        if customer.peering:  # a customer file with [peering] has [network]
            peering = checks.peering(reader, network.found)
            rows += [peering, checks.routes(reader, network.found, peering.found), checks.dns(peering.found)]
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
    def permissions(self, reader: boto3.Session) -> tuple[Status, str]:
        name, iam = self.settings.role_name, self._iam(reader)
        attached = [p["PolicyName"] for page in iam.get_paginator("list_attached_role_policies").paginate(
            RoleName=name) for p in page["AttachedPolicies"]]
        inline = [p for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
                  for p in page["PolicyNames"]]
        granted, problems = set(), []
        for policy in inline:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for statement in as_list(document.get("Statement")):
                if "NotAction" in statement:
                    problems.append(f"{policy} uses NotAction")
                if statement.get("Effect") == "Allow":
                    granted |= set(as_list(statement.get("Action")))
        expected = set(ACTIVATION_ACTIONS)
        if extra := sorted(granted - expected):
            problems.append(f"extra actions: {', '.join(extra)}")
        if missing := sorted(expected - granted):
            problems.append(f"missing actions: {', '.join(missing)}")
        if attached:
            problems.append(f"managed policies attached: {', '.join(attached)}")
        if problems:
            return Status.FAIL, "; ".join(problems)
        return Status.PASS, f"exactly the {len(expected)} activation actions ({', '.join(inline)})"

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


def _routes(table: dict, cidr: str, connection_id: str) -> bool:
    return any(r.get("DestinationCidrBlock") == cidr and r.get("VpcPeeringConnectionId") == connection_id
               and r.get("State") == "active" for r in table["Routes"])
