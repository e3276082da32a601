"""CKV_DP_1: every IAM role's trust lets one named principal assume it, and only with an ExternalId.

checkov's built-ins accept a trust that any principal may assume with any action as long as it is not
"*" (CKV_AWS_60), or reject the account-root principal even with an ExternalId (CKV_AWS_61). This is
the rule activation actually relies on: exactly one Allow statement, whose principal is a single AWS
principal without a wildcard, whose action is only `sts:AssumeRole`, and whose condition requires
`sts:ExternalId` with `StringEquals`. A trust that cannot be read (an unresolved reference) fails.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.common.util.type_forcers import extract_policy_dict
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def _one(value: Any) -> Any:
    """A single value, or None when absent or several."""
    if isinstance(value, list):
        return value[0] if len(value) == 1 else None
    return value


def trust_is_narrow(policy: dict[str, Any] | None) -> bool:
    """True when the trust policy follows the rule above."""
    statements = (policy or {}).get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    if any(not isinstance(s, dict) or "NotPrincipal" in s or "NotAction" in s for s in statements):
        return False
    allows = [s for s in statements if s.get("Effect") == "Allow"]
    if len(allows) != 1:
        return False
    statement = allows[0]
    principal = statement.get("Principal")
    aws = _one(principal.get("AWS")) if isinstance(principal, dict) and list(principal) == ["AWS"] else None
    if not isinstance(aws, str) or not aws or "*" in aws:
        return False
    if _one(statement.get("Action")) != "sts:AssumeRole":
        return False
    equals = (statement.get("Condition") or {}).get("StringEquals") or {}
    external_ids = [v for k, v in equals.items() if k.lower() == "sts:externalid"]
    return len(external_ids) == 1 and isinstance(_one(external_ids[0]), str) and bool(_one(external_ids[0]))


class CrossAccountTrust(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure an IAM role trusts one non-wildcard principal, only for sts:AssumeRole, with sts:ExternalId",
            id="CKV_DP_1",
            categories=(CheckCategories.IAM,),
            supported_resources=("aws_iam_role",),
        )

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        policy = _one(conf.get("assume_role_policy"))
        return CheckResult.PASSED if trust_is_narrow(extract_policy_dict(policy)) else CheckResult.FAILED

    def get_evaluated_keys(self) -> list[str]:
        return ["assume_role_policy"]


check = CrossAccountTrust()
