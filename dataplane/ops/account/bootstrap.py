"""`python -m dataplane bootstrap <customer> [--out bootstrap]`: the customer's first step, a CloudFormation template.

The template creates one role in the customer's account, `deployRoleName`, which the vendor's deploying principal
(`deployerPrincipalArn`) assumes with the customer's ExternalId. Its permissions are derived from the customer's
synthesized stack, never written by hand: for every resource the deploy role itself manages (a resource whose
provider assumes another role, the peering accepter, is that role's), what creating it needs (`deployer_actions`
in `constructs_lib/facts.py`) and what reading, changing and destroying it needs (`LIFECYCLE`), plus what the
tool's own commands call (`COMMANDS`). Reads are granted on `*`; every change is scoped: IAM to the stack's roles,
EC2 creations to requests carrying the ownership tags and other EC2 changes to resources carrying them, the
customer's own VPC and route tables by ARN, the tamper alarm's buckets, log group, topics, rule and trail by name,
its keys by the ownership tags. Output: sorted JSON, the same bytes for the same stack and settings.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from constructs_lib import facts
from dataplane import synth_output
from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.policy import (
    ACTIVATION_POLICY_NAME,
    INLINE_POLICIES_QUOTA,
    as_list,
    external_id_list,
    ownership_tags,
)

STACK_NAME = "dataplane-bootstrap"
"""The CloudFormation stack the customer creates; preflight's clean-account row expects it."""
POLICY_NAME = "dataplane-deploy"
"""The deploy role's one inline policy: what preflight reads back."""
MANAGER = "dataplane-bootstrap"
"""The deploy role's `managed-by` tag: the customer's CloudFormation stack, not the activation's Terraform stack."""
READ_VERBS = ("Describe", "Get", "List", "Simulate", "TestEventPattern")
"""An action whose name begins so reads: granted on `*`."""

LIFECYCLE: dict[str, tuple[str, ...]] = {
    "aws_iam_role": ("iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:TagRole", "iam:UntagRole",
                     "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy",
                     "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"),
    "aws_iam_role_policy": ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
    "aws_iam_role_policy_attachment": ("iam:DetachRolePolicy",),
    "aws_vpc": ("ec2:DeleteVpc", "ec2:DeleteTags", "ec2:DescribeNetworkAcls", "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups"),
    "aws_availability_zones": (),
    "aws_subnet": ("ec2:DeleteSubnet", "ec2:CreateTags", "ec2:DeleteTags",
                   "ec2:DescribeNetworkInterfaces"),  # the provider waits for a subnet's interfaces before deleting it
    "aws_route_table": ("ec2:DeleteRouteTable", "ec2:CreateTags", "ec2:DeleteTags"),
    "aws_route_table_association": ("ec2:DisassociateRouteTable", "ec2:DescribeRouteTables"),
    "aws_default_security_group": ("ec2:CreateTags", "ec2:DeleteTags", "ec2:DescribeSecurityGroupRules"),
    "aws_vpc_peering_connection": ("ec2:DeleteVpcPeeringConnection", "ec2:CreateTags", "ec2:DeleteTags"),
    "aws_vpc_peering_connection_accepter": ("ec2:DescribeVpcPeeringConnections", "ec2:CreateTags"),
    "aws_vpc_peering_connection_options": ("ec2:DescribeVpcPeeringConnections",),
    "aws_route": ("ec2:DeleteRoute", "ec2:ReplaceRoute", "ec2:DescribeRouteTables"),
    "aws_kms_key": ("kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "kms:PutKeyPolicy",
                    "kms:ScheduleKeyDeletion", "kms:UntagResource", "kms:UpdateKeyDescription"),
    "aws_s3_bucket": ("s3:DeleteBucket", "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketWebsite",
                      "s3:GetBucketVersioning", "s3:GetAccelerateConfiguration", "s3:GetBucketRequestPayment",
                      "s3:GetBucketLogging", "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration",
                      "s3:GetEncryptionConfiguration", "s3:GetBucketObjectLockConfiguration", "s3:GetBucketPolicy",
                      "s3:GetBucketPublicAccessBlock", "s3:GetBucketOwnershipControls", "s3:GetBucketLocation"),
    "aws_s3_bucket_public_access_block": ("s3:GetBucketPublicAccessBlock",),
    "aws_s3_bucket_versioning": ("s3:GetBucketVersioning",),
    "aws_s3_bucket_server_side_encryption_configuration": ("s3:GetEncryptionConfiguration",),
    "aws_s3_bucket_lifecycle_configuration": ("s3:GetLifecycleConfiguration",),
    "aws_s3_bucket_notification": ("s3:GetBucketNotification",),
    "aws_s3_bucket_policy": ("s3:GetBucketPolicy", "s3:DeleteBucketPolicy"),
    "aws_s3_bucket_logging": ("s3:GetBucketLogging",),
    "aws_s3_bucket_replication_configuration": ("s3:GetReplicationConfiguration", "iam:PassRole"),
    "aws_cloudwatch_log_group": ("logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:DeleteLogGroup",
                                 "logs:DeleteRetentionPolicy", "logs:UntagResource"),
    "aws_sns_topic": ("sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:ListTagsForResource",
                      "sns:DeleteTopic", "sns:UntagResource"),
    "aws_sns_topic_policy": ("sns:GetTopicAttributes",),
    "aws_sns_topic_subscription": ("sns:GetSubscriptionAttributes", "sns:Unsubscribe",
                                   "sns:ListSubscriptionsByTopic"),
    "aws_cloudtrail": ("cloudtrail:GetTrail", "cloudtrail:GetTrailStatus", "cloudtrail:DescribeTrails",
                       "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors", "cloudtrail:ListTags",
                       "cloudtrail:UpdateTrail", "cloudtrail:StopLogging", "cloudtrail:DeleteTrail",
                       "cloudtrail:PutEventSelectors", "cloudtrail:RemoveTags"),
    "aws_cloudwatch_event_rule": ("events:DescribeRule", "events:ListTagsForResource", "events:DeleteRule",
                                  "events:UntagResource", "events:TestEventPattern"),
    "aws_cloudwatch_event_target": ("events:ListTargetsByRule", "events:RemoveTargets"),
}
"""Per resource type, what a plan or drift (reads), an update and a destroy call beyond creating it (`facts`), and
what verify reads of it."""
COMMANDS = (
    "ec2:DescribeRegions", "ec2:DescribeVpcs", "cloudformation:ListStacks",  # preflight: region, vpcs, cloudformation
    "iam:GetRole", "iam:GetRolePolicy",  # preflight: role, bootstrap role (it simulates only other callers' policies)
    "servicequotas:GetServiceQuota", "servicequotas:GetAWSDefaultServiceQuota",  # preflight: quotas
    "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",  # verify, adopt
    "ec2:DescribeSubnets", "ec2:DescribeRouteTables", "ec2:DescribeVpcPeeringConnections",  # adopt: orphans (TAGGED)
)
"""What preflight, verify and adopt call whatever the stack holds (sts:GetCallerIdentity needs no permission)."""
GUARD_READS = ("iam:GetPolicy", "iam:GetPolicyVersion")
"""What verify reads of the delegation boundary, when the stack's role policy guards with one (`delegationBoundary`)."""

_EC2_CREATED = {"ec2:CreateVpc": "vpc", "ec2:CreateSubnet": "subnet", "ec2:CreateRouteTable": "route-table",
                "ec2:CreateVpcPeeringConnection": "vpc-peering-connection"}
"""EC2 actions that create a resource, and its type in an ARN: allowed when the request carries the ownership tags."""
_EC2_DEFAULT_GROUP = ("ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:CreateTags")
_EC2_CUSTOMER_VPC = ("ec2:CreateVpcPeeringConnection", "ec2:AcceptVpcPeeringConnection")
_EC2_CUSTOMER_ROUTES = ("ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute")


class BootstrapError(Exception):
    """A setting the bootstrap needs is missing, or the stack cannot be bootstrapped (one line)."""


@dataclass
class StackNeeds:
    """What the deploy role acts on in one synthesized stack."""

    account: str
    region: str
    types: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)
    service_roles: dict[str, str] = field(default_factory=dict)
    assumed_roles: set[str] = field(default_factory=set)
    buckets: set[str] = field(default_factory=set)
    named: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    customer_vpcs: set[str] = field(default_factory=set)
    customer_route_tables: set[str] = field(default_factory=set)
    boundary: bool = False
    guarded: bool = False
    """Whether a role policy of the stack guards with the delegation boundary (`iam:PermissionsBoundary`)."""
    customer: str = ""
    state: tuple[str, str] | None = None
    """The S3 backend's bucket and key: the deployer's credentials read and write the state there."""

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action the deploy role needs, sorted."""
        by_type = {fact.type: fact.deployer_actions for fact in facts.ALL}
        needed = set(COMMANDS) | {a for t in self.types for a in by_type[t] + LIFECYCLE[t]}
        if self.assumed_roles:
            needed.add("sts:AssumeRole")
        if self.boundary:
            needed |= {"iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"}
        if self.guarded:
            needed |= set(GUARD_READS)
        if "aws_vpc_peering_connection_accepter" in self.types:
            needed |= set(facts.PEERING_ACCEPTANCE)
        return tuple(sorted(needed))


def stack_needs(stack: dict) -> StackNeeds:
    """Read what the deploy role manages from a synthesized stack (`cdk.tf.json`); raises `BootstrapError` for a
    resource type no construct describes."""
    providers = {p.get("alias"): p for p in stack.get("provider", {}).get("aws", [])}
    default = providers[None]
    needs = StackNeeds(default["allowed_account_ids"][0], default["region"])
    needs.customer = default.get("default_tags", [{}])[0].get("tags", {}).get("customer", "")
    if s3 := stack.get("terraform", {}).get("backend", {}).get("s3"):
        needs.state = (s3["bucket"], s3["key"])
    known = {fact.type for fact in facts.ALL}
    for kind in ("resource", "data"):
        for type_, blocks in sorted(stack.get(kind, {}).items()):
            if type_ not in known:
                raise BootstrapError(f"{type_}: no construct's facts describe it (constructs_lib/facts.py)")
            for block in blocks.values():
                provider = providers[block.get("provider", "aws").partition(".")[2] or None]
                if provider.get("assume_role"):  # another role acts there (the peering accepter)
                    needs.assumed_roles.add(provider["assume_role"][0]["role_arn"])
                    continue
                needs.types.add(type_)
                _note(needs, type_, block)
    return needs


def _note(needs: StackNeeds, type_: str, block: dict) -> None:
    """Record the names and ids one resource block of the deploy role's gives its permissions' resources."""
    literal = {k: v for k, v in block.items() if isinstance(v, str) and "${" not in v}
    if type_ == "aws_iam_role":
        needs.roles.add(literal["name"])
        needs.boundary |= "permissions_boundary" in block
        services = [s["Principal"]["Service"] for s in json.loads(block["assume_role_policy"])["Statement"]
                    if "Service" in s.get("Principal", {})]
        if services:
            needs.service_roles[literal["name"]] = services[0]
    elif type_ == "aws_iam_role_policy":
        needs.guarded |= "iam:PermissionsBoundary" in block.get("policy", "")
    elif type_ == "aws_s3_bucket":
        needs.buckets.add(literal["bucket"])
    elif type_ in ("aws_cloudwatch_log_group", "aws_sns_topic", "aws_cloudwatch_event_rule", "aws_cloudtrail"):
        needs.named[type_].add(literal["name"])
    elif type_ == "aws_vpc_peering_connection":
        needs.customer_vpcs.add(f"arn:aws:ec2:{literal.get('peer_region', needs.region)}:"
                                f"{literal.get('peer_owner_id', needs.account)}:vpc/{literal['peer_vpc_id']}")
    elif type_ == "aws_vpc_peering_connection_accepter":
        needs.customer_vpcs.add(f"arn:aws:ec2:{needs.region}:{needs.account}:vpc/*")
    elif type_ == "aws_route" and "route_table_id" in literal:
        needs.customer_route_tables.add(f"arn:aws:ec2:{needs.region}:{needs.account}:route-table/"
                                        f"{literal['route_table_id']}")


def is_read(action: str) -> bool:
    return action.split(":", 1)[1].startswith(READ_VERBS)


def permissions(needs: StackNeeds) -> dict:
    """The deploy role's inline policy: reads on `*`, every change scoped (see the module's docstring)."""
    account, tagged = needs.account, {f"aws:ResourceTag/{k}": v for k, v in ownership_tags(needs.customer).items()}
    requested = {f"aws:RequestTag/{k}": v for k, v in ownership_tags(needs.customer).items()}
    grants: dict[tuple[str, tuple[str, ...], str], set[str]] = defaultdict(set)

    def grant(sid: str, action: str, resources, condition: dict | None = None) -> None:
        grants[(sid, tuple(sorted(resources)), json.dumps(condition or {}, sort_keys=True))].add(action)

    roles = [f"arn:aws:iam::{account}:role/{name}" for name in needs.roles]
    for action in needs.actions:
        service, name = action.split(":", 1)
        if is_read(action):
            grant("Read", action, ["*"])
        elif action == "iam:PassRole":
            for role, principal in sorted(needs.service_roles.items()):
                grant("PassServiceRoles", action, [f"arn:aws:iam::{account}:role/{role}"],
                      {"StringEquals": {"iam:PassedToService": principal}})
        elif service == "iam":
            grant("StackRoles", action, roles)
        elif action == "sts:AssumeRole":
            grant("AssumeAccepterRole", action, needs.assumed_roles)
        elif service == "ec2":
            _ec2(needs, action, grant, tagged, requested)
        elif service == "s3":
            grant("AlarmBuckets", action, [f"arn:aws:s3:::{bucket}" for bucket in needs.buckets])
        elif service == "kms":
            if name in ("CreateKey", "TagResource"):  # a new key is tagged as it is created
                grant("CreateTaggedKeys", action, ["*"], {"StringEquals": requested})
            if name != "CreateKey":
                grant("ChangeTaggedKeys", action, ["*"], {"StringEquals": tagged})
        elif service in _NAMED:
            type_, arn = _NAMED[service]
            grant(f"Alarm{service.capitalize()}", action,
                  [a for n in needs.named[type_] for a in arn(account, n)])
        else:
            raise BootstrapError(f"{action}: no rule scopes it (dataplane/ops/account/bootstrap.py)")
    if needs.state:  # terraform's S3 backend runs with the deploy role's credentials: this stack's state and lock
        bucket, key = needs.state
        grant("State", "s3:ListBucket", [f"arn:aws:s3:::{bucket}"])
        for action in ("s3:GetObject", "s3:PutObject"):
            grant("State", action, [f"arn:aws:s3:::{bucket}/{key}", f"arn:aws:s3:::{bucket}/{key}.tflock"])
        grant("State", "s3:DeleteObject", [f"arn:aws:s3:::{bucket}/{key}.tflock"])
    statements = [{"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": list(resources),
                   **({"Condition": json.loads(condition)} if condition != "{}" else {})}
                  for (sid, resources, condition), actions in grants.items()]
    statements.sort(key=lambda s: (s["Sid"], json.dumps(s, sort_keys=True)))
    counts: dict[str, int] = defaultdict(int)
    for statement in statements:
        counts[statement["Sid"]] += 1
    seen: dict[str, int] = defaultdict(int)
    for statement in statements:  # IAM wants each Sid once: the sid's statements are numbered
        if counts[statement["Sid"]] > 1:
            seen[statement["Sid"]] += 1
            statement["Sid"] += str(seen[statement["Sid"]])
    return {"Version": "2012-10-17", "Statement": statements}


_NAMED = {
    "logs": ("aws_cloudwatch_log_group", lambda a, n: (f"arn:aws:logs:*:{a}:log-group:{n}",
                                                      f"arn:aws:logs:*:{a}:log-group:{n}:*")),
    "sns": ("aws_sns_topic", lambda a, n: (f"arn:aws:sns:*:{a}:{n}", f"arn:aws:sns:*:{a}:{n}:*")),
    "events": ("aws_cloudwatch_event_rule", lambda a, n: (f"arn:aws:events:*:{a}:rule/{n}",)),
    "cloudtrail": ("aws_cloudtrail", lambda a, n: (f"arn:aws:cloudtrail:*:{a}:trail/{n}",)),
}
"""Services whose resources the stack names: per service, the resource type naming them and their ARNs."""


def _ec2(needs: StackNeeds, action: str, grant, tagged: dict, requested: dict) -> None:
    """Scope one EC2 change: new resources by the request's tags, the stack's own by theirs, the customer's by ARN."""
    prefix = f"arn:aws:ec2:{needs.region}:{needs.account}"
    created = sorted(f"{prefix}:{kind}/*" for act, kind in _EC2_CREATED.items() if act in needs.actions)
    if action in _EC2_CREATED:
        grant("CreateTagged", action, created, {"StringEquals": requested})
    if action == "ec2:CreateTags" and created:
        grant("TagOnCreate", action, created, {"StringEquals": {"ec2:CreateAction": sorted(
            name.split(":")[1] for name in _EC2_CREATED if name in needs.actions)}})
    if action in _EC2_DEFAULT_GROUP and "aws_default_security_group" in needs.types:
        grant("DefaultSecurityGroup", action, [f"{prefix}:security-group/*"])
    if action in _EC2_CUSTOMER_VPC and needs.customer_vpcs:
        grant("CustomerVpc", action, needs.customer_vpcs)
    if action in _EC2_CUSTOMER_ROUTES and needs.customer_route_tables:
        grant("CustomerRouteTables", action, needs.customer_route_tables)
    if action != "ec2:CreateVpc":
        grant("ChangeTagged", action, ["*"], {"StringEquals": tagged})


def trust(settings: Settings, customer: Customer) -> dict:
    """Only the vendor's deploying principal, only `sts:AssumeRole`, only with one of the customer's ExternalIds."""
    ids = external_id_list(customer.external_id)
    condition: dict = {"StringEquals": {"sts:ExternalId": ids[0] if len(ids) == 1 else ids}}
    if settings.deployer_principal_org_id:
        condition["StringEquals"]["aws:PrincipalOrgID"] = settings.deployer_principal_org_id
    if settings.deployer_requires_mfa:
        condition["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "VendorDeployer", "Effect": "Allow", "Principal": {"AWS": settings.deployer_principal_arn},
        "Action": "sts:AssumeRole", "Condition": condition}]}


def template(stack: dict, settings: Settings, customer: Customer) -> dict:
    """The CloudFormation template of `customer`'s deploy role; raises `BootstrapError` when a setting is missing
    or the policy would exceed IAM's quota."""
    missing = [key for key, value in (("deployRoleName", settings.deploy_role_name),
                                      ("deployerPrincipalArn", settings.deployer_principal_arn)) if not value]
    if missing:
        raise BootstrapError(f"set {' and '.join(missing)} in cdktf.json first: the role the customer creates, and "
                             "who may assume it")
    policy = permissions(stack_needs(stack))
    if (size := policy_size(policy)) > INLINE_POLICIES_QUOTA:
        raise BootstrapError(f"the deploy role's policy would be {size} characters; IAM allows {INLINE_POLICIES_QUOTA}")
    properties = {
        "RoleName": settings.deploy_role_name,
        "Description": f"Deploys the Astro data plane of {customer.name} (dataplane-activation); created by the "
                       "customer, assumed by the vendor's deployer with the customer's ExternalId",
        "AssumeRolePolicyDocument": trust(settings, customer),
        "MaxSessionDuration": 3600,
        "Policies": [{"PolicyName": POLICY_NAME, "PolicyDocument": policy}],
        "Tags": [{"Key": "customer", "Value": customer.name}, {"Key": "managed-by", "Value": MANAGER}],
    }
    if settings.deploy_role_boundary:
        properties["PermissionsBoundary"] = settings.deploy_role_boundary_arn(customer.account_id)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"The deploy role for {customer.name}'s Astro data plane: least privilege, derived from its "
                       "stack (python -m dataplane bootstrap)",
        "Resources": {"DeployRole": {"Type": "AWS::IAM::Role", "Properties": properties}},
        "Outputs": {"DeployRoleArn": {"Value": {"Fn::GetAtt": ["DeployRole", "Arn"]}}},
    }


def policy_size(document: dict) -> int:
    """Characters as IAM counts them: the JSON without whitespace outside strings."""
    return len(json.dumps(document, separators=(",", ":")))


def needed_actions(stack: dict) -> set[str]:
    """Every action the deploy role's policy grants for `stack`, as the bootstrap would derive it now (what preflight
    compares the live role with): the stack's needs and, with the S3 backend, its state's."""
    return granted_actions(permissions(stack_needs(stack)))


def granted_actions(document: dict) -> set[str]:
    """Every action an identity policy's Allow statements name."""
    return {a for s in as_list(document.get("Statement")) if s.get("Effect") == "Allow" for a in as_list(s["Action"])}


def synthesized(customer: Customer) -> dict:
    """`customer`'s stack as main.py synthesizes it now (`cdk.tf.json`), in a temporary directory."""
    return synthesized_all([customer])[customer.name]


def synthesized_all(customers: Sequence[Customer]) -> dict[str, dict]:
    """Each customer's stack (by name) as main.py synthesizes them now, in one synth, in a temporary directory."""
    from dataplane.ops.fleet.deploy import workspace

    if not customers:
        return {}
    with tempfile.TemporaryDirectory() as directory, workspace(customers[0], Path(directory) / "cdktf.out",
                                                               also=customers[1:]) as out:
        return {c.name: json.loads((synth_output.stack_dir(out, c.name) / synth_output.STACK_FILE).read_text())
                for c in customers}


def render(value: dict) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def write(stack: dict, settings: Settings, customer: Customer, out: Path) -> tuple[Path, Path]:
    """Write `<out>/<customer>.cfn.json` and the customer's page `<out>/<customer>.md`; return both paths."""
    document = template(stack, settings, customer)
    out.mkdir(parents=True, exist_ok=True)
    cfn, page_file = out / f"{customer.name}.cfn.json", out / f"{customer.name}.md"
    cfn.write_text(render(document), encoding="utf-8")
    page_file.write_text(page(document, stack, settings, customer, cfn.name), encoding="utf-8")
    return cfn, page_file


_WHY = {
    "Read": "read what the deployment reads: plans, drift checks, preflight and verification (no object of any "
            "bucket, no secret)",
    "StackRoles": "create, change and delete only the roles the activation creates",
    "PassServiceRoles": "hand the tamper alarm's service roles to the one AWS service each is for",
    "AssumeAccepterRole": "assume the peering accepter role you named, to accept the peering in that account",
    "CreateTagged": "create the data-plane network's resources, only tagged as this activation's",
    "TagOnCreate": "tag those resources as they are created",
    "ChangeTagged": "change and delete only resources tagged as this activation's",
    "DefaultSecurityGroup": "remove every rule of the data-plane VPC's default security group (AWS creates it "
                            "untagged, so it cannot be told apart by tag)",
    "CustomerVpc": "request (or accept) the peering with your VPC",
    "CustomerRouteTables": "add the route to the data plane in the route tables you listed",
    "AlarmBuckets": "create and configure the tamper alarm's audit-log buckets, by name",
    "CreateTaggedKeys": "create the tamper alarm's encryption keys, only tagged as this activation's",
    "ChangeTaggedKeys": "change only keys tagged as this activation's",
    "AlarmLogs": "the tamper alarm's CloudTrail log group, by name",
    "AlarmSns": "the tamper alarm's topics, by name",
    "AlarmEvents": "the tamper alarm's EventBridge rule, by name",
    "AlarmCloudtrail": "the tamper alarm's trail, by name",
    "State": "read and write this data plane's Terraform state and its lock file, by key, in the vendor's state "
             "bucket",
}


def page(document: dict, stack: dict, settings: Settings, customer: Customer, template_name: str) -> str:
    """The page for the customer's security team: what the role may do and why, how to create, check and remove it."""
    role = document["Resources"]["DeployRole"]["Properties"]
    policy = role["Policies"][0]["PolicyDocument"]
    activation = next(json.loads(p["policy"]) for p in stack["resource"]["aws_iam_role_policy"].values()
                      if p["name"] == ACTIVATION_POLICY_NAME)
    lines = [
        f"# Astro data plane: the deploy role for {customer.name}",
        "",
        f"Before activation, create one IAM role in your account {customer.account_id}: `{role['RoleName']}`. "
        "The vendor's deployment pipeline assumes it to create the data plane, and nothing else can:",
        "",
        f"- **who**: only `{settings.deployer_principal_arn}`, only through `sts:AssumeRole`, and only with your "
        "ExternalId (" + ", ".join(f"`{i}`" for i in external_id_list(customer.external_id)) + ")"
        + (f", from AWS Organization `{settings.deployer_principal_org_id}`" if settings.deployer_principal_org_id
           else "") + (", signed in with MFA" if settings.deployer_requires_mfa else "") + ";",
        f"- **what**: {len(granted_actions(policy))} actions, derived from exactly what your data plane holds "
        f"({policy_size(policy)} of IAM's {INLINE_POLICIES_QUOTA} characters); no `*` action, no `iam:*`, no "
        "`iam:PassRole` on `*`; reads on `*`, every change limited to what the activation creates;",
        "- **tags**: `managed-by = dataplane-bootstrap`, `customer = " + customer.name + "`"
        + (f"; permissions boundary `{role['PermissionsBoundary']}`" if "PermissionsBoundary" in role else "") + ".",
        "",
        "## What the role may do, and why",
        "",
        "| statement | why | actions | on |",
        "| --- | --- | --- | --- |",
    ]
    for statement in policy["Statement"]:
        sid = re.sub(r"\d+$", "", statement["Sid"])
        on = ", ".join(f"`{r}`" for r in statement["Resource"])
        if "Condition" in statement:
            on += " when " + "; ".join(f"`{k}` = `{v}`" for op in statement["Condition"].values()
                                       for k, v in sorted(op.items()))
        lines.append(f"| {statement['Sid']} | {_WHY[sid]} | {', '.join(f'`{a}`' for a in statement['Action'])} "
                     f"| {on} |")
    lines += [
        "",
        "## Apart from it: the role the activation creates for the Astro control plane",
        "",
        f"The deployment then creates `{settings.role_name}`, the role the Astro control plane assumes (trusted by "
        f"`{settings.trusted_principal}` with your ExternalId). Its permissions are the activation permissions: "
        + ", ".join(f"`{a}`" for s in as_list(activation.get("Statement")) for a in as_list(s.get("Action"))
                    if s.get("Effect") == "Allow") + ". The deploy role does not hold them.",
        "",
        "## Create it",
        "",
        "```sh",
        f"aws cloudformation deploy --template-file {template_name} --stack-name {STACK_NAME} \\",
        f"  --capabilities CAPABILITY_NAMED_IAM --region {customer.region}",
        "```",
        "",
        "## Check it",
        "",
        "```sh",
        f"aws iam get-role --role-name {role['RoleName']}",
        f"aws iam get-role-policy --role-name {role['RoleName']} --policy-name {POLICY_NAME}",
        "```",
        "",
        "The trust must name only the principal above with your ExternalId; the policy must be the template's.",
        "When the data plane changes so that it needs a new permission, you receive a new template: deploy it "
        "the same way (the stack is updated in place).",
        "",
        "## Remove it when the activation ends",
        "",
        "```sh",
        f"aws cloudformation delete-stack --stack-name {STACK_NAME} --region {customer.region}",
        "```",
        "",
        "Removing it stops every deployment into your account; the data plane already deployed stays as it is.",
        "",
    ]
    return "\n".join(lines)
