"""What activation grants: the control plane's trust and the activation permissions (from the seed)."""

from __future__ import annotations

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
