"""What activation grants and how its resources are recognised: the one place for these rules.

The activation actions and the documents built from them (the control plane's trust, the
activation permissions), what IAM refuses in them though moto accepts it (shape, size quotas),
the ownership tags every resource of a stack carries, the trust rule that verify, review and
the security gate's own check (CKV_DP_1) all apply, the admin-equivalent policies that settings and CKV_DP_2
refuse, and what a delegation boundary may not allow (verify). Standard library only: the security gate's
separate venv imports this module too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ACTIVATION_ACTIONS = (
    "cloudformation:*",
    "iam:CreateRole",
    "iam:DeleteRolePolicy",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRoles",
    "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy",
)
"""The seed's activation permissions, granted to the control plane through the cross-account role."""

SIMULATED = {"cloudformation:*": ("cloudformation:CreateStack", "cloudformation:UpdateStack",
                                  "cloudformation:DeleteStack", "cloudformation:DescribeStacks",
                                  "cloudformation:DescribeStackEvents", "cloudformation:CreateChangeSet",
                                  "cloudformation:ExecuteChangeSet")}
"""A wildcard action as the operations it stands for, where a policy simulation needs names."""

ACTIVATION_POLICY_NAME = "data-plane-activation"
ROLE_NAME = "astronomer-remote-management"
"""The seed's name of the cross-account role (the `roleName` setting's default)."""
MANAGED_BY = "dataplane-activation"
TRUST_POLICY_QUOTA = 2_048
"""IAM's default quota on a role's trust policy, in characters without whitespace (AWS raises it on request)."""
INLINE_POLICIES_QUOTA = 10_240
"""IAM's limit on a role's inline policies together, in characters without whitespace."""
_STRING_OR_WHITESPACE = re.compile(r'("(?:[^"\\]|\\.)*")|[ \t\n\r]+')


def as_list(value) -> list:
    """A policy field that IAM lets be one value or a list (`Action`, `Statement`, principals) as a list."""
    return [] if value is None else value if isinstance(value, list) else [value]


def account_root(account_id: str) -> str:
    """The principal that stands for a whole account."""
    return f"arn:aws:iam::{account_id}:root"


def trusted_principal(control_plane_account_id: str, control_plane_role_arn: str | None = None) -> str:
    """Who may assume the cross-account role: the control-plane role, or its account root."""
    return control_plane_role_arn or account_root(control_plane_account_id)


def external_id_list(external_id: str | Sequence[str]) -> list[str]:
    """A customer's `external_id`, one id or several, as a list."""
    return [external_id] if isinstance(external_id, str) else list(external_id)


def trust_policy(principal: str, external_id: str | Sequence[str]) -> dict:
    """The role's trust: one principal, `sts:AssumeRole` only, one of the ExternalIds required.

    `external_id` is one id or several, as in the customer file; one id is written as a plain string.
    """
    ids = external_id_list(external_id)
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AstroControlPlane",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": ids[0] if len(ids) == 1 else ids}},
        }],
    }


ROLE_CHANGING_ACTIONS = ("iam:CreateRole", "iam:DeleteRolePolicy", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy")
"""The activation actions that create roles or change their policies and trust: bounded by the escalation guard."""

SELF_CHANGING_ACTIONS = (
    "iam:AttachRolePolicy", "iam:DeleteRole", "iam:DeleteRolePermissionsBoundary", "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:TagRole", "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription",
)
"""Every way to change a role: the guard denies all of them on the cross-account role itself."""

BOUNDARY_POLICY_CHANGING_ACTIONS = ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
                                    "iam:SetDefaultPolicyVersion")

ADMIN_EQUIVALENT_POLICIES = frozenset({"administratoraccess", "poweruseraccess", "iamfullaccess",
                                       "awsorganizationsfullaccess"})
"""Names of policies that make a role an administrator, or let it grant itself anything, in lower case: AWS's own
(`arn:aws:iam::aws:policy/<name>`), and any policy a customer calls so. `AdministratorAccess-<service>` too."""

ESCALATING_IAM_ACTIONS = (
    "iam:AddUserToGroup", "iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:AttachUserPolicy",
    "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:CreatePolicyVersion", "iam:CreateRole", "iam:CreateUser",
    "iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary", "iam:PassRole", "iam:PutGroupPolicy",
    "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:PutUserPermissionsBoundary", "iam:PutUserPolicy",
    "iam:SetDefaultPolicyVersion", "iam:UpdateAssumeRolePolicy", "iam:UpdateLoginProfile",
)
"""IAM actions that let a principal give itself, or a principal it makes, more than it has."""

MANAGED_POLICIES_QUOTA = 20
"""IAM's hard limit on managed policies attached to one role (the default quota is 10; AWS raises it to 20)."""


@dataclass(frozen=True)
class DelegationGuard:
    """AWS's delegated-administration pattern for the cross-account role, in one customer's account.

    `boundary_arn` is the permissions boundary every role the role creates or changes must carry; `role_arn`
    is the cross-account role itself, which may never change itself.
    """

    boundary_arn: str
    role_arn: str


def admin_equivalent(policy: str) -> bool:
    """Whether a policy (ARN, or name with optional path) is named as one of `ADMIN_EQUIVALENT_POLICIES`, any case."""
    name = policy.rsplit("/", 1)[-1].lower()
    return name in ADMIN_EQUIVALENT_POLICIES or name.startswith("administratoraccess-")


def action_matches(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (`*` any characters, `?` one; case-insensitive) covers `action`."""
    rule = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rule, action, re.IGNORECASE | re.DOTALL) is not None


def boundary_escalations(document: Any, boundary_arn: str) -> list[str]:
    """How a delegation boundary's document lets a role it bounds escalate; none: it does not.

    An Allow statement escalates when it grants one of `ESCALATING_IAM_ACTIONS` (through `*`, `iam:*`, any other
    pattern, by name, or through `NotAction`), unless it grants them only to requests that carry this very boundary
    (`StringEquals` `iam:PermissionsBoundary` = `boundary_arn`: AWS's self-propagating boundary).
    """
    problems = []
    for index, statement in enumerate(as_list(document.get("Statement")) if isinstance(document, dict) else []):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        condition = statement.get("Condition")
        equals = condition.get("StringEquals") if isinstance(condition, dict) else None
        required = [v for k, v in equals.items() if k.lower() == "iam:permissionsboundary"] if isinstance(
            equals, dict) else []
        if required and as_list(required[0]) == [boundary_arn]:
            continue
        if "NotAction" in statement:
            excluded = [str(p) for p in as_list(statement["NotAction"])]
            grants = [(f"every action but {', '.join(excluded)}",
                       [a for a in ESCALATING_IAM_ACTIONS if not any(action_matches(p, a) for p in excluded)])]
        else:
            grants = [(pattern, [a for a in ESCALATING_IAM_ACTIONS if action_matches(pattern, a)])
                      for pattern in map(str, as_list(statement.get("Action")))]
        for what, granted in grants:
            if not granted:
                continue
            covers = granted[0] if len(granted) == 1 else f"{len(granted)} escalating IAM actions such as {granted[0]}"
            problems.append(f"{statement.get('Sid') or f'statement {index}'} allows {what}"
                            + ("" if what.lower() == granted[0].lower() else f", which covers {covers}"))
    return problems


def in_account(policy: str, account_id: str) -> str:
    """A policy setting's ARN in `account_id`: an AWS-managed ARN as it is, a name as the policy in that account."""
    return policy if policy.startswith("arn:") else f"arn:aws:iam::{account_id}:policy/{policy}"


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def delegation_guard(boundary: str | None, account_id: str, role_name: str) -> DelegationGuard | None:
    """The escalation guard of role `role_name` in `account_id` with `boundary` (a setting: name or ARN), if any."""
    return boundary and DelegationGuard(in_account(boundary, account_id), role_arn(account_id, role_name))


def permissions_policy(guard: DelegationGuard | None = None) -> dict:
    """The role's inline policy: exactly the activation actions; with `guard`, the escalation guard.

    The guard allows the role-changing actions only where the request carries the boundary
    (`iam:PermissionsBoundary`: a role created with it, a role that has it), and denies removing or replacing a
    boundary, changing the boundary policy, and every change to the role itself. A condition on a key a request
    does not carry does not match, so an action IAM gives no boundary key fails closed: it is refused.
    """
    if guard is None:
        return {"Version": "2012-10-17",
                "Statement": [{"Sid": "DataPlaneActivation", "Effect": "Allow", "Action": list(ACTIVATION_ACTIONS),
                               "Resource": "*"}]}
    boundary = {"iam:PermissionsBoundary": guard.boundary_arn}
    statements = [
        {"Sid": "DataPlaneActivation", "Effect": "Allow",
         "Action": [a for a in ACTIVATION_ACTIONS if a not in ROLE_CHANGING_ACTIONS], "Resource": "*"},
        {"Sid": "OnlyRolesWithTheBoundary", "Effect": "Allow", "Action": list(ROLE_CHANGING_ACTIONS),
         "Resource": "*", "Condition": {"StringEquals": boundary}},
        {"Sid": "NoBoundaryRemoved", "Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary", "Resource": "*"},
        {"Sid": "NoBoundaryReplaced", "Effect": "Deny", "Action": "iam:PutRolePermissionsBoundary", "Resource": "*",
         "Condition": {"StringNotEquals": boundary}},
        {"Sid": "NoBoundaryPolicyChanged", "Effect": "Deny", "Action": list(BOUNDARY_POLICY_CHANGING_ACTIONS),
         "Resource": guard.boundary_arn},
        {"Sid": "NeverItself", "Effect": "Deny", "Action": list(SELF_CHANGING_ACTIONS), "Resource": guard.role_arn},
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def granted_actions(document: dict) -> set[str]:
    """The actions a policy's Allow statements name (conditional or not)."""
    return {str(a) for s in as_list(document.get("Statement")) if isinstance(s, dict) and s.get("Effect") == "Allow"
            for a in as_list(s.get("Action"))}


def guard_of(document: dict) -> str | None:
    """The boundary a role's inline policy guards with (`permissions_policy` with a guard), or None: no guard."""
    statements = {s.get("Sid"): s for s in as_list(document.get("Statement")) if isinstance(s, dict)}
    condition = statements.get("OnlyRolesWithTheBoundary", {}).get("Condition")
    bounded = condition.get("StringEquals") if isinstance(condition, dict) else None
    boundary = bounded.get("iam:PermissionsBoundary") if isinstance(bounded, dict) else None
    return boundary if isinstance(boundary, str) and "NeverItself" in statements else None


def normalized(document: Any) -> Any:
    """A policy document with every list sorted and one-element lists as their element: equal when IAM reads
    them alike, whatever order or form they are written in."""
    if isinstance(document, dict):
        return {k: normalized(v) for k, v in sorted(document.items())}
    if isinstance(document, list):
        items = sorted((normalized(v) for v in document), key=lambda v: json.dumps(v, sort_keys=True))
        return items[0] if len(items) == 1 else items
    return document


def policy_json(document: dict) -> str:
    """A policy document as the stack writes it into Terraform's JSON."""
    return json.dumps(document)


def iam_size(text: str) -> int:
    """A policy's size as IAM counts it against its quotas: its JSON text without whitespace outside strings."""
    return len(_STRING_OR_WHITESPACE.sub(lambda match: match[1] or "", text))


def trust_policy_problems(document: dict) -> list[str]:
    """What IAM refuses in a role's trust policy as the stack writes it, though moto accepts it.

    A statement without a `Principal`, a statement with a `Resource` (or `NotResource`), and a policy over
    IAM's default quota (`TRUST_POLICY_QUOTA`).
    """
    problems = []
    for index, statement in enumerate(as_list(document.get("Statement"))):
        sid = statement.get("Sid") or f"statement {index}"
        if "Principal" not in statement:
            problems.append(f"the trust policy's {sid} has no Principal, which IAM requires")
        if resource := [key for key in ("Resource", "NotResource") if key in statement]:
            problems.append(f"the trust policy's {sid} has {resource[0]}, which IAM refuses in a trust policy")
    if (size := iam_size(policy_json(document))) > TRUST_POLICY_QUOTA:
        problems.append(f"the trust policy would be {size:,} characters (whitespace excluded), over IAM's default "
                        f"quota of {TRUST_POLICY_QUOTA:,}")
    return problems


def inline_policies_problems(documents: Sequence[dict]) -> list[str]:
    """What IAM refuses in a role's inline policies as the stack writes them: over `INLINE_POLICIES_QUOTA` together."""
    if (size := sum(iam_size(policy_json(d)) for d in documents)) > INLINE_POLICIES_QUOTA:
        return [f"the role's inline policies would be {size:,} characters in total (whitespace excluded), over "
                f"IAM's limit of {INLINE_POLICIES_QUOTA:,}"]
    return []


def simulated_actions(actions: tuple[str, ...] = ACTIVATION_ACTIONS) -> tuple[str, ...]:
    """`actions` with each wildcard replaced by the operations it stands for (`SIMULATED`)."""
    return tuple(name for action in actions for name in SIMULATED.get(action, (action,)))


def ownership_tags(customer: str) -> dict[str, str]:
    """The tags that prove a live resource belongs to `customer`'s stack (provider default tags)."""
    return {"customer": customer, "managed-by": MANAGED_BY}


def not_owned(tags: dict[str, str], customer: str) -> list[str]:
    """Why `tags` do not prove ownership by `customer`'s stack (`no managed-by tag`, `customer=x`); none: owned."""
    return [f"{k}={tags[k]}" if k in tags else f"no {k} tag"
            for k, v in sorted(ownership_tags(customer).items()) if tags.get(k) != v]


def principals(principal: Any) -> set[str]:
    """A statement's `Principal` as a set: `*` stays `*`, an account id becomes its root ARN, other kinds `Kind:x`."""
    if not isinstance(principal, dict):
        return {str(principal)}
    found = set()
    for kind, values in principal.items():
        for value in as_list(values):
            if kind == "AWS" and re.fullmatch(r"\d{12}", str(value)):
                value = account_root(str(value))
            found.add(str(value) if kind == "AWS" else f"{kind}:{value}")
    return found


def required_external_ids(statement: dict) -> list | None:
    """The ExternalIds a statement requires under `StringEquals`; None when it requires none that way."""
    condition = statement.get("Condition")
    equals = condition.get("StringEquals") if isinstance(condition, dict) else None
    if not isinstance(equals, dict):
        return None
    found = [value for key, value in equals.items() if key.lower() == "sts:externalid"]
    return as_list(found[0]) if found else None


def trust_problems(document: Any, principal: str | None = None,
                   external_id: str | Sequence[str] | None = None) -> list[str]:
    """What makes a trust policy wider than activation allows; none: it follows the trust rule.

    The rule: exactly one Allow statement, trusting one AWS principal without a wildcard (`principal`,
    when given), allowing only `sts:AssumeRole`, and requiring `sts:ExternalId` under `StringEquals`, no
    other condition operator, one id or a list of them, none with a wildcard (exactly the ids of
    `external_id`, one or several, when given).
    """
    statements = as_list(document.get("Statement")) if isinstance(document, dict) else []
    if any(not isinstance(s, dict) for s in statements):
        return ["a statement is not a JSON object"]
    allows = [s for s in statements if s.get("Effect") == "Allow"]
    if not allows:
        return [f"no statement allows {principal or 'any principal'}"]
    problems = [f"{len(allows)} statements allow access; the trust has exactly one"] if len(allows) > 1 else []
    expected = None if external_id is None else sorted(set(external_id_list(external_id)))
    for index, statement in enumerate(allows):
        sid = statement.get("Sid") or f"statement {index}"
        if "NotPrincipal" in statement or "NotAction" in statement:
            problems.append(f"{sid} uses NotPrincipal or NotAction")
        trusted = principals(statement.get("Principal"))
        others = sorted(trusted - {principal}) if principal else sorted(
            p for p in trusted if "*" in p or not p.startswith("arn:") or len(trusted) > 1)
        if others or not trusted:
            problems.append(f"{sid} trusts {', '.join(others) or 'no principal'}")
        if actions := sorted(str(a) for a in as_list(statement.get("Action")) if str(a).lower() != "sts:assumerole"):
            problems.append(f"{sid} allows {', '.join(actions)}")
        condition = statement.get("Condition")
        if operators := sorted(set(condition) - {"StringEquals"}) if isinstance(condition, dict) else []:
            problems.append(f"{sid} uses condition operator {', '.join(operators)}; the trust uses only StringEquals")
        required = required_external_ids(statement)
        if not required or not all(isinstance(v, str) and v for v in required):
            problems.append(f"{sid} does not require the sts:ExternalId")
        elif wildcards := sorted(v for v in required if "*" in v or "?" in v):
            problems.append(f"{sid} requires ExternalId {', '.join(wildcards)}, with a wildcard character (* or ?)")
        elif expected is not None and sorted(set(required)) != expected:
            problems.append(f"{sid} requires ExternalId {', '.join(sorted(set(required)))}, not {', '.join(expected)}")
    if principal and not any(principal in principals(s.get("Principal")) for s in allows):
        problems.append(f"{principal} is not trusted")
    return problems
