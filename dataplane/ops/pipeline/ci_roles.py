"""`python -m dataplane ci-roles --repo ORG/REPO --ci-account ID [--branch main]`: the pipeline's roles, as IAM JSON.

Two identities, each assumed through GitHub's OIDC provider with `aud` and `sub` pinned (StringEquals, no wildcard):

- the CI plan role (`dataplane-ci-plan`, in the CI account), trusted by the repository's pull requests
  (`repo:ORG/REPO:pull_request`) and by the drift schedule on the branch (`repo:ORG/REPO:ref:refs/heads/<branch>`),
  may only assume the plan role (`planRoleName`) in a customer's account;
- the CI apply role (`dataplane-ci-apply`), trusted only by jobs in the apply environment
  (`repo:ORG/REPO:environment:<applyEnvironment>`, which runs after its required reviewers approve), may only assume
  the deploy role (`deployRoleName`).

In every customer's account, the plan role trusts only the CI plan role and reads: the stack's services (never an
object of a customer's bucket) and, with the s3 backend, the state; the deploy role trusts only the CI apply role and
may do what a deploy, destroy, preflight and verify need (the deployer actions of `constructs_lib/facts.py`, the
activation actions, `CHANGE_ACTIONS`), and write the state. Accepter roles of the fleet (`accepter_role_arn`) may be
assumed by both. Output: sorted JSON, the same bytes for the same input.
"""

from __future__ import annotations

import json
import re

from constructs_lib import facts
from dataplane.config.customer import Customer
from dataplane.config.settings import S3Backend, Settings
from dataplane.policy import simulated_actions

OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
CI_PLAN_ROLE, CI_APPLY_ROLE = "dataplane-ci-plan", "dataplane-ci-apply"
ARGUMENTS = {
    "--repo": (re.compile(r"(?!-)[A-Za-z0-9-]{1,39}(?<!-)/(?!\.\.?$)[A-Za-z0-9._-]{1,100}", re.ASCII),
               "a GitHub repository, OWNER/NAME (owner: 1-39 of A-Z a-z 0-9 -; name: 1-100 of A-Z a-z 0-9 . _ -)"),
    "--branch": (re.compile(r"(?!/)(?!.*(\.\.|//|@\{|\.lock(/|$)))[A-Za-z0-9._/-]{1,255}(?<![/.])", re.ASCII),
                 "a branch name (A-Z a-z 0-9 . _ / -, no .., //, @{ or .lock)"),
    "--ci-account": (re.compile(r"\d{12}", re.ASCII), "an AWS account id (12 digits)"),
}
"""Each argument's grammar, and what it is, for the one line that refuses it."""
READ_ACTIONS = (
    "cloudtrail:DescribeTrails", "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors",
    "cloudtrail:GetTrail", "cloudtrail:GetTrailStatus", "cloudtrail:ListTags", "ec2:Describe*", "events:Describe*",
    "events:ListTagsForResource", "events:ListTargetsByRule", "iam:Get*", "iam:List*", "kms:DescribeKey",
    "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "logs:DescribeLogGroups",
    "logs:ListTagsForResource", "logs:ListTagsLogGroup", "s3:GetAccelerateConfiguration", "s3:GetBucket*",
    "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration",
    "s3:ListAllMyBuckets", "sns:GetSubscriptionAttributes", "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic",
    "sns:ListTagsForResource")
"""What a refresh of the stack's resources reads, service by service; no object of a bucket, no secret."""
CHANGE_ACTIONS = (
    "cloudformation:ListStacks", "cloudtrail:DeleteTrail", "cloudtrail:PutEventSelectors", "cloudtrail:RemoveTags",
    "cloudtrail:StopLogging", "cloudtrail:UpdateTrail", "ec2:DeleteRoute", "ec2:DeleteRouteTable",
    "ec2:DeleteSubnet", "ec2:DeleteTags", "ec2:DeleteVpc", "ec2:DeleteVpcPeeringConnection",
    "ec2:DisassociateRouteTable", "ec2:ReplaceRoute", "events:DeleteRule", "events:RemoveTargets",
    "events:UntagResource", "iam:DeleteRole", "iam:DeleteRolePermissionsBoundary", "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary", "iam:SimulatePrincipalPolicy", "iam:TagRole", "iam:UntagRole",
    "iam:UpdateRole", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:UntagResource", "logs:DeleteLogGroup",
    "logs:UntagResource", "s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:PutBucketOwnershipControls",
    "servicequotas:GetAWSDefaultServiceQuota", "servicequotas:GetServiceQuota", "sns:DeleteTopic",
    "sns:Unsubscribe", "sns:UntagResource")
"""What the facts do not list: changing and destroying the stack's resources, and preflight's own calls."""


class CiRolesError(Exception):
    """An argument that is not what it names: the repository, branch or CI account; or a role name not set."""


def document(settings: Settings, customers: list[Customer], repo: str, ci_account: str, branch: str = "main") -> dict:
    """The OIDC provider, the two CI roles and the two roles of every customer account, each with its trust and
    permissions; raises `CiRolesError` for a malformed argument or a role name the settings lack."""
    for name, value in (("--repo", repo), ("--branch", branch), ("--ci-account", ci_account)):
        rule, what = ARGUMENTS[name]
        if not rule.fullmatch(value):
            raise CiRolesError(f"{name} {value!r}: not {what}")
    if not (settings.plan_role_name and settings.deploy_role_name):
        raise CiRolesError("set planRoleName and deployRoleName in cdktf.json first: the roles CI assumes in each "
                           "customer's account")
    provider = f"arn:aws:iam::{ci_account}:oidc-provider/{OIDC_HOST}"
    ci_plan, ci_apply = (f"arn:aws:iam::{ci_account}:role/{name}" for name in (CI_PLAN_ROLE, CI_APPLY_ROLE))
    accepters = sorted({c.peering.accepter_role_arn for c in customers if c.peering and c.peering.accepter_role_arn})
    deploy_actions = simulated_actions() + tuple(a for fact in facts.ALL for a in fact.deployer_actions) + (
        facts.PEERING_ACCEPTANCE + CHANGE_ACTIONS + READ_ACTIONS)
    return {
        "oidc_provider": {"arn": provider, "url": f"https://{OIDC_HOST}", "client_ids": [AUDIENCE]},
        "ci_roles": {
            CI_PLAN_ROLE: _role(ci_plan, _github_trust(provider, [f"repo:{repo}:pull_request",
                                                                  f"repo:{repo}:ref:refs/heads/{branch}"]),
                                [_allow(["sts:AssumeRole"], [f"arn:aws:iam::*:role/{settings.plan_role_name}"])]),
            CI_APPLY_ROLE: _role(ci_apply, _github_trust(provider, [
                f"repo:{repo}:environment:{settings.apply_environment}"]),
                [_allow(["sts:AssumeRole"], [f"arn:aws:iam::*:role/{settings.deploy_role_name}"])]),
        },
        "customer_account_roles": {
            "accounts": sorted({c.account_id for c in customers}),
            settings.plan_role_name: _role(None, _trust(ci_plan), [
                _allow(READ_ACTIONS + ("sts:GetCallerIdentity",), ["*"]), *_state(settings, write=False),
                *_accepters(accepters)]),
            settings.deploy_role_name: _role(None, _trust(ci_apply), [
                _allow(deploy_actions + ("sts:GetCallerIdentity",), ["*"]), *_state(settings, write=True),
                *_accepters(accepters)]),
        },
    }


def render(value: dict) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def _role(arn: str | None, trust: dict, statements: list[dict]) -> dict:
    role = {"assume_role_policy": trust, "policy": {"Version": "2012-10-17", "Statement": statements}}
    return {"arn": arn, **role} if arn else role


def _github_trust(provider: str, subjects: list[str]) -> dict:
    """Trust for GitHub's OIDC tokens of exactly these `sub` claims, issued for STS."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{OIDC_HOST}:aud": AUDIENCE, f"{OIDC_HOST}:sub": sorted(subjects)}}}]}


def _trust(role_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": "sts:AssumeRole"}]}


def _allow(actions, resources: list[str]) -> dict:
    return {"Effect": "Allow", "Action": sorted(set(actions)), "Resource": sorted(resources)}


def _state(settings: Settings, write: bool) -> list[dict]:
    """Reading (and with `write`, writing and unlocking) the states under the S3 backend's prefix; other backends:
    none (local state stays on the machine, HCP Terraform has its own token)."""
    backend = settings.backend
    if not isinstance(backend, S3Backend):
        return []
    objects = f"arn:aws:s3:::{backend.bucket}/{backend.key_prefix}/*"
    statements = [_allow(["s3:ListBucket"], [f"arn:aws:s3:::{backend.bucket}"]), _allow(["s3:GetObject"], [objects])]
    if write:
        statements += [_allow(["s3:PutObject"], [objects]), _allow(["s3:DeleteObject"], [f"{objects}.tflock"])]
    return statements


def _accepters(arns: list[str]) -> list[dict]:
    return [_allow(["sts:AssumeRole"], arns)] if arns else []
