"""CKV_DP_1: every IAM role's trust follows activation's trust rule (`dataplane.policy.trust_problems`), or,
for a role that trusts an AWS service (the tamper alarm's), the service-role rule
(`dataplane.tamper.service_trust_problems`).

checkov's built-ins accept a trust that any principal may assume with any action as long as it is not
"*" (CKV_AWS_60), or reject the account-root principal even with an ExternalId (CKV_AWS_61). This is
the rule activation actually relies on, the same one `verify` applies to the live role: exactly one
Allow statement, one AWS principal without a wildcard, only `sts:AssumeRole`, and `sts:ExternalId`
required with `StringEquals` (one id or a list, none with a wildcard; no other condition operator). A
service role's: one of the alarm's services, only `sts:AssumeRole`, and only for this account's own
resources (`aws:SourceAccount` and `aws:SourceArn` under `StringEquals`). A trust that cannot be read
(an unresolved reference) fails. The security gate runs checkov with the
project root on `PYTHONPATH`, so this imports the project's rule.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.common.util.type_forcers import extract_policy_dict
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dataplane.policy import trust_problems
from dataplane.tamper import service_trust_problems, trusts_a_service


class CrossAccountTrust(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure an IAM role trusts one non-wildcard principal, only for sts:AssumeRole, with sts:ExternalId",
            id="CKV_DP_1",
            categories=(CheckCategories.IAM,),
            supported_resources=("aws_iam_role",),
        )

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        policy = conf.get("assume_role_policy")
        policy = policy[0] if isinstance(policy, list) and len(policy) == 1 else policy
        document = extract_policy_dict(policy)
        if not document:
            return CheckResult.FAILED
        rule = service_trust_problems if trusts_a_service(document) else trust_problems
        return CheckResult.FAILED if rule(document) else CheckResult.PASSED

    def get_evaluated_keys(self) -> list[str]:
        return ["assume_role_policy"]


check = CrossAccountTrust()
