"""`python -m dataplane ci-roles --repo ORG/REPO --ci-account ID [--branch main]`: the pipeline's roles, as IAM JSON.

Two identities, each assumed through GitHub's OIDC provider with `aud` and `sub` pinned (StringEquals, no wildcard):

- the CI plan role (`dataplane-ci-plan`, in the CI account), trusted by the repository's pull requests
  (`repo:ORG/REPO:pull_request`) and by the drift schedule on the branch (`repo:ORG/REPO:ref:refs/heads/<branch>`),
  may only assume the plan role (`planRoleName`) in a customer's account;
- the CI apply role (`dataplane-ci-apply`), trusted only by jobs in the apply environment
  (`repo:ORG/REPO:environment:<applyEnvironment>`, which runs after its required reviewers approve), may only assume
  the deploy role (`deployRoleName`).

In every customer's account, the plan role trusts only the CI plan role and reads: the stack's services (never an
object of a customer's bucket) and, with the s3 backend, the state; the fleet's accepter roles (`accepter_role_arn`)
it may assume. The deploy role is not described here: the customer creates it with its bootstrap
(`python -m dataplane bootstrap CUSTOMER`, `dataplane/ops/account/bootstrap.py`), and this prints, per customer, the
bootstrap's trust and policy derived from the customer's stack as synthesized now. Its trust names the settings'
`deployerPrincipalArn`, which must therefore be the CI apply role: anything else is refused before anything is
printed. Output: sorted JSON, the same bytes for the same input.
"""

from __future__ import annotations

import json
import re
from typing import Callable

from dataplane.config.customer import Customer
from dataplane.config.settings import S3Backend, Settings
from dataplane.ops.account import bootstrap

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


class CiRolesError(Exception):
    """An argument that is not what it names: the repository, branch or CI account; a role name not set; settings the
    pipeline's apply jobs could not assume the customers' deploy roles with; or a stack the bootstrap refuses."""


def document(settings: Settings, customers: list[Customer], repo: str, ci_account: str, branch: str = "main",
             stacks_of: Callable[[list[Customer]], dict[str, dict]] | None = None) -> dict:
    """The OIDC provider, the two CI roles, and in the customer accounts the plan role and, per customer, the deploy
    role its bootstrap creates (from its stack, `stacks_of(customers)[name]`: the fleet synthesized now, in one synth,
    unless given). Raises
    `CiRolesError` for a malformed argument, a role name the settings lack, a deployer the CI apply role is not, or a
    stack the bootstrap refuses; every check but the last before any stack is synthesized."""
    for name, value in (("--repo", repo), ("--branch", branch), ("--ci-account", ci_account)):
        rule, what = ARGUMENTS[name]
        if not rule.fullmatch(value):
            raise CiRolesError(f"{name} {value!r}: not {what}")
    if not (settings.plan_role_name and settings.deploy_role_name):
        raise CiRolesError("set planRoleName and deployRoleName in cdktf.json first: the roles CI assumes in each "
                           "customer's account")
    provider = f"arn:aws:iam::{ci_account}:oidc-provider/{OIDC_HOST}"
    ci_plan, ci_apply = (f"arn:aws:iam::{ci_account}:role/{name}" for name in (CI_PLAN_ROLE, CI_APPLY_ROLE))
    _check_deployer(settings, ci_apply)
    accepters = sorted({c.peering.accepter_role_arn for c in customers if c.peering and c.peering.accepter_role_arn})
    ordered = sorted(customers, key=lambda c: c.name)
    stacks = (stacks_of or bootstrap.synthesized_all)(ordered)
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
                _allow(READ_ACTIONS + ("sts:GetCallerIdentity",), ["*"]), *_state(settings),
                *_accepters(accepters)]),
            settings.deploy_role_name: {
                "created_by": "each customer's bootstrap: python -m dataplane bootstrap CUSTOMER, launched by the "
                              f"customer as the CloudFormation stack {bootstrap.STACK_NAME}",
                "customers": {c.name: _bootstrap_role(settings, c, stacks[c.name]) for c in ordered},
            },
        },
    }


def _check_deployer(settings: Settings, ci_apply: str) -> None:
    """The deploy role the bootstrap creates trusts `deployerPrincipalArn`, the pipeline's apply jobs act as the CI
    apply role: refuse settings under which they could not assume it."""
    if settings.deployer_principal_arn != ci_apply:
        raise CiRolesError(f"deployerPrincipalArn in cdktf.json is {settings.deployer_principal_arn or 'not set'}, "
                           f"but the pipeline's apply jobs act as {ci_apply}: the deploy role each customer's "
                           "bootstrap creates trusts only deployerPrincipalArn, so set it to the CI apply role (and "
                           "send the customers their new bootstrap)")
    if settings.deployer_requires_mfa:
        raise CiRolesError(f"deployerRequiresMfa in cdktf.json is true, but the pipeline's apply jobs act as "
                           f"{ci_apply} through GitHub's OIDC, without MFA: they could not assume the deploy role "
                           "each customer's bootstrap creates")


def _bootstrap_role(settings: Settings, customer: Customer, stack: dict) -> dict:
    """The deploy role `customer`'s bootstrap template creates: its account, trust, policy and boundary."""
    try:
        properties = bootstrap.template(stack, settings, customer)["Resources"]["DeployRole"]["Properties"]
    except bootstrap.BootstrapError as e:
        raise CiRolesError(f"{customer.name}: {e}") from None
    role = {"account": customer.account_id, "bootstrap": f"python -m dataplane bootstrap {customer.name}",
            "assume_role_policy": properties["AssumeRolePolicyDocument"],
            "policy": properties["Policies"][0]["PolicyDocument"]}
    if "PermissionsBoundary" in properties:
        role["permissions_boundary"] = properties["PermissionsBoundary"]
    return role


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


def _state(settings: Settings) -> list[dict]:
    """Reading the states under the S3 backend's prefix; other backends: none (local state stays on the machine, HCP
    Terraform has its own token)."""
    backend = settings.backend
    if not isinstance(backend, S3Backend):
        return []
    return [_allow(["s3:ListBucket"], [f"arn:aws:s3:::{backend.bucket}"]),
            _allow(["s3:GetObject"], [f"arn:aws:s3:::{backend.bucket}/{backend.key_prefix}/*"])]


def _accepters(arns: list[str]) -> list[dict]:
    return [_allow(["sts:AssumeRole"], arns)] if arns else []
