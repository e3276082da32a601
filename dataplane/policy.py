"""What activation grants and how its resources are recognised: the one place for these rules.

The activation actions and the documents built from them (the control plane's trust, the
activation permissions), the ownership tags every resource of a stack carries, and the trust
rule that verify, review and the security gate's own check (CKV_DP_1) all apply. Standard
library only: the security gate's separate venv imports this module too.
"""

from __future__ import annotations

import re
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
MANAGED_BY = "dataplane-activation"


def as_list(value) -> list:
    """A policy field that IAM lets be one value or a list (`Action`, `Statement`, principals) as a list."""
    return [] if value is None else value if isinstance(value, list) else [value]


def trust_policy(principal: str, external_id: str) -> dict:
    """The role's trust: one principal, `sts:AssumeRole` only, the ExternalId required."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AstroControlPlane",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
        }],
    }


def permissions_policy() -> dict:
    """The role's inline policy: exactly the activation actions."""
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": "DataPlaneActivation", "Effect": "Allow", "Action": list(ACTIVATION_ACTIONS),
                           "Resource": "*"}]}


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
                value = f"arn:aws:iam::{value}:root"
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


def trust_problems(document: Any, principal: str | None = None, external_id: str | None = None) -> list[str]:
    """What makes a trust policy wider than activation allows; none: it follows the trust rule.

    The rule: exactly one Allow statement, trusting one AWS principal without a wildcard (`principal`,
    when given), allowing only `sts:AssumeRole`, and requiring `sts:ExternalId` under `StringEquals`
    (exactly `external_id`, when given).
    """
    statements = as_list(document.get("Statement")) if isinstance(document, dict) else []
    if any(not isinstance(s, dict) for s in statements):
        return ["a statement is not a JSON object"]
    allows = [s for s in statements if s.get("Effect") == "Allow"]
    if not allows:
        return [f"no statement allows {principal or 'any principal'}"]
    problems = [f"{len(allows)} statements allow access; the trust has exactly one"] if len(allows) > 1 else []
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
        required = required_external_ids(statement)
        if not required or not all(isinstance(v, str) and v for v in required):
            problems.append(f"{sid} does not require the sts:ExternalId")
        elif external_id is not None and required != [external_id]:
            problems.append(f"{sid} requires ExternalId {', '.join(required)}, not {external_id}")
    if principal and not any(principal in principals(s.get("Principal")) for s in allows):
        problems.append(f"{principal} is not trusted")
    return problems
