"""CKV_DP_2: no role is given a managed policy that would make it an administrator (`dataplane.policy`).

The `managedPolicyArns` setting attaches policies to the cross-account role; the loader refuses the
policies that would make the role an administrator of the customer's account, or let it grant itself anything
(`admin_equivalent`: AWS's or the customer's, by name in any case). This check holds a synthesized stack to the
same rule, whoever wrote it, from that one list (checkov's own CKV_AWS_274 and CKV2_AWS_56 each know one of them).
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dataplane.policy import admin_equivalent


class ManagedPolicyAttachment(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure no IAM role is attached a managed policy that makes it an administrator",
            id="CKV_DP_2",
            categories=(CheckCategories.IAM,),
            supported_resources=("aws_iam_role_policy_attachment",),
        )

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        arn = conf.get("policy_arn")
        arn = arn[0] if isinstance(arn, list) and len(arn) == 1 else arn
        return CheckResult.FAILED if isinstance(arn, str) and admin_equivalent(arn) else CheckResult.PASSED

    def get_evaluated_keys(self) -> list[str]:
        return ["policy_arn"]


check = ManagedPolicyAttachment()
