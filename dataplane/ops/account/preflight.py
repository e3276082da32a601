"""`python -m dataplane preflight <customer>`: is the target account ready for activation?

Run with the deployer's credentials before `cdktf deploy`. If the credentials are for another
account, only the identity row is reported: every other answer would describe the wrong account.
A check whose call the endpoint does not implement (moto lacks some) is a WARN row, "not checked".

The tamper alarm's buckets have names anyone can work out (`<account>-<customer>-<purpose>`) and S3's names are
global, so another AWS account can take one first: a deploy could then never create it. Preflight checks each name
is free, or a bucket of this account that this tool made for the customer (its ownership tags).
"""

from __future__ import annotations

import ipaddress
from functools import cached_property

import boto3
from botocore.exceptions import ClientError

from constructs_lib import facts
from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.ops.account import bootstrap
from dataplane.ops.account.aws import (
    AWS_ERRORS,
    home_region,
    peer_session,
    route_target,
    tags_of,
    unimplemented,
    without_error_pages,
)
from dataplane.ops.report import Report, Status, check, listing
from dataplane.policy import MANAGED_BY, not_owned, simulated_actions
from dataplane.tamper import AlarmNames

VCPU_QUOTAS = {"L-1216C47A": "On-Demand Standard vCPUs", "L-34B43A08": "Standard Spot vCPUs"}
MIN_VCPUS = 40


def required_permissions(customer: Customer, settings: Settings) -> tuple[str, ...]:
    """What the deployer needs: activation, then what each construct the customer uses needs (its facts).

    Without an accepter role the deployer accepts the peering itself; with one, it assumes that role.
    """
    used = facts.CROSS_ACCOUNT_ROLE + (facts.MANAGED_POLICY_ATTACHMENTS if settings.managed_policy_arns else ()) + (
        facts.DATA_PLANE_NETWORK if customer.network else ()) + (facts.VPC_PEERING if customer.peering else ()) + (
        facts.TAMPER_ALARM if customer.tamper_alarm else ())
    actions = simulated_actions() + tuple(action for fact in used for action in fact.deployer_actions)
    if customer.peering and not customer.peering.accepter_role_arn:
        actions += facts.PEERING_ACCEPTANCE
    return actions


def _vcpu_quota(client, code: str) -> dict:
    """The account's EC2 quota `code`, or AWS's default for it when the account has none of its own."""
    try:
        return client.get_service_quota(ServiceCode="ec2", QuotaCode=code)
    except client.exceptions.NoSuchResourceException:
        return client.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)


def _bucket_exists(s3, name: str) -> bool:
    """Whether a bucket called `name` exists, in any account (another account's answers 403, or 301 elsewhere)."""
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchBucket"):
            return False
        if e.response["ResponseMetadata"].get("HTTPStatusCode") in (301, 403):
            return True
        raise
    return True


def _bucket_tags(s3, name: str) -> dict[str, str]:
    """A bucket's tags (none: `NoSuchTagSet`)."""
    try:
        return tags_of({"Tags": s3.get_bucket_tagging(Bucket=name)["TagSet"]})
    except ClientError as e:
        if e.response["Error"]["Code"] == "NoSuchTagSet":
            return {}
        raise


def _not_checked(error: Exception, client) -> tuple[Status, str]:
    """A WARN row when `error` shows that `client`'s endpoint does not implement the call; otherwise `error` again."""
    if not unimplemented(error):
        raise error
    action = f"{client.meta.service_model.signing_name}:{error.operation_name}"
    return Status.WARN, f"not checked: the endpoint does not implement {action}"


def preflight(customer: Customer, settings: Settings, session: boto3.Session) -> Report:
    """Check the account `session` acts in against everything activating `customer` needs."""
    checks = _Preflight(customer, settings, session)
    identity = checks.identity()
    if identity.status is Status.FAIL:
        return Report("preflight", customer, (identity,))
    # The deploy role's permissions are the bootstrap's, derived from the stack and scoped to its resources: its
    # own row compares them with what the stack needs now; a simulation on `*` would deny what is scoped.
    bootstrapped = bool(settings.deploy_role_name) and f":assumed-role/{settings.deploy_role_name}/" in identity.found
    rows = [identity, checks.region(), checks.vpcs(), checks.stacks(), checks.role(),
            *([] if bootstrapped else [checks.permissions(identity.found)]), checks.quotas()]
    if settings.deploy_role_name:
        rows.append(checks.bootstrap_role())
    if customer.peering:
        rows += [checks.peer_vpc(), checks.peer_route_tables()]
    if customer.tamper_alarm:
        rows.append(checks.alarm_buckets())
    return Report("preflight", customer, tuple(rows))


class _Preflight:
    def __init__(self, customer: Customer, settings: Settings, session: boto3.Session):
        self.customer, self.settings, self.session = customer, settings, session

    def _client(self, service: str, region: str | None = None):
        return self.session.client(service, region_name=region or self.customer.region)

    @cached_property
    def _iam(self):
        return without_error_pages(self._client("iam", home_region(self.session)))

    @check("identity")
    def identity(self) -> tuple[Status, str, str]:
        """Whose the credentials are; finds the caller's ARN."""
        caller = self._client("sts", home_region(self.session)).get_caller_identity()
        arn, account = caller["Arn"], caller["Account"]
        if account != self.customer.account_id:
            return Status.FAIL, (f"credentials are for account {account} ({arn}), not {self.customer.name}'s "
                                 f"{self.customer.account_id}; nothing else was checked"), arn
        return Status.PASS, f"{arn} in account {account}", arn

    @check("region")
    def region(self) -> tuple[Status, str]:
        region = self.customer.region
        found = self._client("ec2", home_region(self.session)).describe_regions(
            AllRegions=True, RegionNames=[region])["Regions"]
        status = found[0].get("OptInStatus") if found else None
        if status == "opt-in-not-required":
            return Status.PASS, f"{region} is enabled (no opt-in needed)"
        if status == "opted-in":
            return Status.PASS, f"{region} is opted in"
        return Status.FAIL, f"{region} is not enabled for this account ({status or 'unknown region'}): opt in first"

    @check("vpcs")
    def vpcs(self) -> tuple[Status, str]:
        c = self.customer
        pages = self._client("ec2").get_paginator("describe_vpcs").paginate()
        found = [v for page in pages for v in page["Vpcs"] if not v.get("IsDefault")]
        if c.peering and not c.peering_crosses_boundary:  # the customer's own VPC to peer with is expected here
            found = [v for v in found if v["VpcId"] != c.peering.vpc_id]
        ours = [v for v in found if not not_owned(tags_of(v), c.name)]
        foreign = [f"{v['VpcId']} ({v['CidrBlock']})" for v in found if v not in ours]
        if foreign:
            return Status.FAIL, f"not a clean account: VPCs in {c.region} besides the default: {listing(foreign)}"
        if ours:
            return Status.WARN, f"re-activation: {listing(v['VpcId'] for v in ours)} already deployed for {c.name}"
        return Status.PASS, f"no VPCs in {c.region} besides the default"

    @check("cloudformation")
    def stacks(self) -> tuple[Status, str]:
        pages = self._client("cloudformation").get_paginator("list_stacks").paginate()
        found = [f"{s['StackName']} ({s['StackStatus']})" for page in pages for s in page["StackSummaries"]
                 if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"] != bootstrap.STACK_NAME]
        if found:
            return Status.FAIL, (f"not a clean account: CloudFormation stacks in {self.customer.region}: "
                                 f"{listing(found)}")
        return Status.PASS, f"no CloudFormation stacks in {self.customer.region}"

    @check("role")
    def role(self) -> tuple[Status, str]:
        name = self.settings.role_name
        try:
            role = self._iam.get_role(RoleName=name)["Role"]
        except ClientError as e:
            if e.response["Error"]["Code"] == "NoSuchEntity":
                return Status.PASS, f"no role named {name} yet"
            raise
        if tags_of(role).get("managed-by") == MANAGED_BY:
            return Status.WARN, f"re-activation: {role['Arn']} exists and is managed by this tool; deploy updates it"
        return Status.FAIL, f"{role['Arn']} already exists and was not created by this tool (no managed-by tag)"

    @check("permissions")
    def permissions(self, arn: str) -> tuple[Status, str]:
        """Whether `arn`, the caller `identity` found, is allowed every action activation needs."""
        if arn.endswith(":root"):
            return Status.WARN, "the account root user has every permission, but should not be used to activate"
        if ":assumed-role/" in arn:
            arn = self._iam.get_role(RoleName=arn.split("/")[1])["Role"]["Arn"]
        elif ":user/" not in arn:
            return Status.WARN, f"cannot simulate the policies of {arn}; check the activation permissions by hand"
        actions = required_permissions(self.customer, self.settings)
        pages = self._iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=arn, ActionNames=list(actions))
        try:
            denied = [r["EvalActionName"] for page in pages for r in page["EvaluationResults"]
                      if r["EvalDecision"] != "allowed"]
        except AWS_ERRORS as e:
            return _not_checked(e, self._iam)
        if denied:
            return Status.FAIL, f"{arn} is denied {len(denied)} of {len(actions)} actions: {', '.join(denied)}"
        return Status.PASS, f"{arn} is allowed all {len(actions)} actions activation needs"

    @check("bootstrap role")
    def bootstrap_role(self) -> tuple[Status, str]:
        """The deploy role the customer's bootstrap created grants every action this customer's stack needs now."""
        name = self.settings.deploy_role_name
        try:
            live = self._iam.get_role_policy(RoleName=name, PolicyName=bootstrap.POLICY_NAME)["PolicyDocument"]
        except ClientError as e:
            if e.response["Error"]["Code"] == "NoSuchEntity":
                return Status.FAIL, (f"{name} has no policy {bootstrap.POLICY_NAME}: the customer has not run the "
                                     f"bootstrap (python -m dataplane bootstrap {self.customer.name})")
            raise
        needed = bootstrap.needed_actions(bootstrap.synthesized(self.customer))
        if missing := sorted(needed - bootstrap.granted_actions(live)):
            return Status.FAIL, (f"re-run the bootstrap: {name} lacks {len(missing)} action(s) the stack now needs: "
                                 f"{', '.join(missing)}")
        return Status.PASS, f"{name} grants all {len(needed)} actions the stack needs"

    @check("quotas")
    def quotas(self) -> tuple[Status, str]:
        quotas = without_error_pages(self._client("service-quotas"))
        values = {}
        for code, name in VCPU_QUOTAS.items():
            try:
                quota = _vcpu_quota(quotas, code)
            except AWS_ERRORS as e:
                return _not_checked(e, quotas)
            if "Quota" not in quota:  # botocore reads an answer that is not JSON as an empty one
                return Status.FAIL, f"unparseable answer: no quota {code} in it (not an AWS endpoint?)"
            values[name] = quota["Quota"]["Value"]
        found = ", ".join(f"{name} {value:g}" for name, value in values.items())
        low = [name for name, value in values.items() if value < MIN_VCPUS]
        if low:
            return Status.WARN, f"{found}; below {MIN_VCPUS}: {', '.join(low)} (request an increase)"
        return Status.PASS, f"{found} (at least {MIN_VCPUS})"

    @check("alarm buckets")
    def alarm_buckets(self) -> tuple[Status, str]:
        """Each of the tamper alarm's bucket names is free, or a bucket of this account tagged as the customer's."""
        c = self.customer
        owned = {b["Name"] for page in self._client("s3").get_paginator("list_buckets").paginate()
                 for b in page["Buckets"]}
        free, ours, problems = [], [], []
        for name, region in AlarmNames(c.name, c.account_id).buckets(c.region).items():
            s3 = self._client("s3", region)
            if name not in owned:
                if _bucket_exists(s3, name):
                    problems.append(f"{name} is taken by another AWS account")
                else:
                    free.append(name)
            elif why := not_owned(_bucket_tags(s3, name), c.name):
                problems.append(f"{name} is a bucket of this account not created by this tool for {c.name} "
                                f"({', '.join(why)})")
            else:
                ours.append(name)
        if problems:
            return Status.FAIL, f"{'; '.join(problems)}: the deploy could not create the tamper alarm's buckets"
        if ours:
            return Status.WARN, (f"re-activation: {listing(ours)} already {c.name}'s"
                                 + (f"; {listing(free)} free" if free else ""))
        return Status.PASS, f"{listing(free)} free"

    @cached_property
    def _peer_ec2(self):
        return peer_session(self.session, self.customer).client("ec2", region_name=self.customer.peer_region)

    @check("peer vpc")
    def peer_vpc(self) -> tuple[Status, str]:
        c, peering = self.customer, self.customer.peering
        vpcs = self._peer_ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [peering.vpc_id]}])["Vpcs"]
        if not vpcs:
            return Status.FAIL, f"{peering.vpc_id} not found in account {peering.account_id} ({c.peer_region})"
        actual = {a["CidrBlock"] for a in vpcs[0]["CidrBlockAssociationSet"]
                  if a["CidrBlockState"]["State"] == "associated"}
        problems = []
        if missing := sorted(set(peering.cidrs) - actual):
            problems.append(f"the file lists {', '.join(missing)}, which the VPC does not have")
        if extra := sorted(actual - set(peering.cidrs)):
            problems.append(f"the VPC also has {', '.join(extra)}, which the file does not list")
        network = ipaddress.IPv4Network(c.network.cidr)
        if overlap := sorted(a for a in actual if ipaddress.IPv4Network(a).overlaps(network)):
            problems.append(f"{', '.join(overlap)} overlaps network.cidr {network}")
        if problems:
            return Status.FAIL, f"{peering.vpc_id}: {'; '.join(problems)}"
        where = f"{peering.vpc_id} in {peering.account_id} ({c.peer_region})"
        return Status.PASS, f"{where} has {', '.join(sorted(actual))}"

    @check("peer route tables")
    def peer_route_tables(self) -> tuple[Status, str]:
        """The customer's route tables are in its VPC and hold no route for `network.cidr` but this tool's."""
        c, peering = self.customer, self.customer.peering
        found = {t["RouteTableId"]: t for t in self._peer_ec2.describe_route_tables(
            Filters=[{"Name": "route-table-id", "Values": list(peering.route_table_ids)}])["RouteTables"]}
        problems = []
        for table_id in peering.route_table_ids:
            if table_id not in found:
                problems.append(f"{table_id} not found")
            elif found[table_id]["VpcId"] != peering.vpc_id:
                problems.append(f"{table_id} belongs to {found[table_id]['VpcId']}, not {peering.vpc_id}")
        cidr = c.network.cidr
        routes = [(table_id, route) for table_id in peering.route_table_ids if table_id in found
                  for route in found[table_id]["Routes"] if route.get("DestinationCidrBlock") == cidr]
        ours = self._own_peerings({r["VpcPeeringConnectionId"] for _, r in routes if "VpcPeeringConnectionId" in r})
        problems += [f"{table_id} already routes {cidr} to {route_target(route)}: deploying would fail or re-point it"
                     for table_id, route in routes if route.get("VpcPeeringConnectionId") not in ours]
        if problems:
            return Status.FAIL, "; ".join(problems)
        if routes:
            return Status.WARN, (f"re-activation: {cidr} is already routed through {listing(sorted(ours))} "
                                 f"(this tool's peering for {c.name}) in {listing(t for t, _ in routes)}")
        return Status.PASS, f"{', '.join(peering.route_table_ids)} in {peering.vpc_id}, no route for {cidr} yet"

    def _own_peerings(self, ids: set[str]) -> set[str]:
        """Those of the peering connections `ids` tagged as this tool's for the customer, seen from the peer side."""
        if not ids:
            return set()
        found = self._peer_ec2.describe_vpc_peering_connections(
            Filters=[{"Name": "vpc-peering-connection-id", "Values": sorted(ids)}])["VpcPeeringConnections"]
        return {p["VpcPeeringConnectionId"] for p in found
                if not not_owned(tags_of(p), self.customer.name)}
