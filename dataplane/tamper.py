"""The tamper alarm's rules: which changes to the cross-account role it reports, and what its parts are called.

The EventBridge pattern the alarm's rule uses (and the CloudTrail-shaped event `verify` tests it with), the names
and regions of its resources, and the trust rule of its two service roles, which the security gate's own check
(CKV_DP_1) applies. Standard library only: the security gate's separate venv imports this module too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dataplane.policy import as_list, principals

EVENTS_REGION = "us-east-1"
"""Where CloudTrail hands IAM's events to EventBridge: IAM is a global service, homed in us-east-1."""
REPLICA_REGION_OF_EVENTS_REGION = "us-west-2"
"""Where the trail's log files are replicated for a customer whose own region is `EVENTS_REGION`."""
ROLE_CHANGES = (
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "DeleteRole",
)
"""The IAM calls that change what the cross-account role may do, or who may assume it: each one alarms."""
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
SERVICE_PRINCIPALS = ("cloudtrail.amazonaws.com", "s3.amazonaws.com")
"""The services the alarm's roles trust: CloudTrail (writing to CloudWatch Logs) and S3 (replicating log files)."""
CONSTRUCT_ID = "tamper-alarm"
"""The alarm's construct id in the stack: the Terraform names of its resources begin with it (`in_alarm`)."""


def role_change_pattern(role_name: str) -> dict:
    """The EventBridge pattern of the alarm's rule: any of `ROLE_CHANGES` to the role called `role_name`."""
    return {
        "source": ["aws.iam"],
        "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
        "detail": {
            "eventSource": ["iam.amazonaws.com"],
            "eventName": list(ROLE_CHANGES),
            "requestParameters": {"roleName": [role_name]},
        },
    }


def cloudtrail_event(account_id: str, event_name: str, request_parameters: dict[str, Any]) -> dict:
    """An IAM call as CloudTrail hands it to EventBridge, for EventBridge's `TestEventPattern`."""
    return {
        "version": "0",
        "id": "7e2b3f0c-0000-4000-8000-000000000000",
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "source": "aws.iam",
        "account": account_id,
        "time": "2025-01-01T00:00:00Z",
        "region": EVENTS_REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "eventTime": "2025-01-01T00:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": event_name,
            "awsRegion": EVENTS_REGION,
            "requestParameters": request_parameters,
            "responseElements": None,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account_id,
        },
    }


def in_alarm(address: str) -> bool:
    """Whether a Terraform resource address (`<type>.<name>`) is one of the alarm's resources."""
    return address.split(".", 1)[-1].startswith(f"{CONSTRUCT_ID}_")


def replica_region(region: str) -> str:
    """Where the trail's log files in `region` are replicated: the alarm's own region, or one apart from it."""
    return REPLICA_REGION_OF_EVENTS_REGION if region == EVENTS_REGION else EVENTS_REGION


@dataclass(frozen=True)
class AlarmNames:
    """The names of the alarm's resources in one customer's account: deterministic, and unique where S3 needs it.

    A bucket name is `<account>-<customer>-<purpose>`: at most 63 characters for a customer name of 40.
    """

    customer: str
    account_id: str

    @property
    def trail(self) -> str:
        return f"{self.customer}-tamper-trail"

    @property
    def log_group(self) -> str:
        return f"/dataplane/{self.customer}/tamper-trail"

    @property
    def trail_topic(self) -> str:
        """The trail's own topic: told of every log file delivered."""
        return f"{self.customer}-tamper-trail-delivery"

    @property
    def rule(self) -> str:
        return f"{self.customer}-role-tamper"

    @property
    def topic(self) -> str:
        """The alarm's topic: emails each change to the role."""
        return f"{self.customer}-role-tamper-alarm"

    @property
    def trail_logs_role(self) -> str:
        return f"{self.customer}-tamper-trail-logs"

    @property
    def replication_role(self) -> str:
        return f"{self.customer}-tamper-replication"

    def bucket(self, purpose: str) -> str:
        """`trail` (the log files), `access` (S3's access logs of it), `trail-r` and `access-r` (their replicas'
        region: the replicas, and S3's access logs of them)."""
        return f"{self.account_id}-{self.customer}-{purpose}"

    def buckets(self, region: str) -> dict[str, str]:
        """Each bucket's name and region, for a customer in `region`."""
        replica = replica_region(region)
        return {self.bucket("trail"): region, self.bucket("access"): region,
                self.bucket("trail-r"): replica, self.bucket("access-r"): replica}

    def trail_arn(self, region: str) -> str:
        return f"arn:aws:cloudtrail:{region}:{self.account_id}:trail/{self.trail}"

    def rule_arn(self) -> str:
        return f"arn:aws:events:{EVENTS_REGION}:{self.account_id}:rule/{self.rule}"

    def topic_arn(self) -> str:
        return f"arn:aws:sns:{EVENTS_REGION}:{self.account_id}:{self.topic}"


def service_trust(service: str, account_id: str, source_arns: list[str]) -> dict:
    """A service role's trust: `service` only, `sts:AssumeRole` only, and only for `source_arns` in `account_id`."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id,
                                           "aws:SourceArn": source_arns[0] if len(source_arns) == 1 else source_arns}},
        }],
    }


def trusts_a_service(document: Any) -> bool:
    """Whether an Allow statement of a trust policy trusts an AWS service (`{"Service": ...}`)."""
    statements = as_list(document.get("Statement")) if isinstance(document, dict) else []
    return any(p.startswith("Service:") for s in statements if isinstance(s, dict) and s.get("Effect") == "Allow"
               for p in principals(s.get("Principal")))


def service_trust_problems(document: Any) -> list[str]:
    """What makes a service role's trust wider than `service_trust` writes it; none: it follows the rule.

    The rule: exactly one Allow statement, trusting one of `SERVICE_PRINCIPALS`, allowing only `sts:AssumeRole`,
    under `StringEquals` only, requiring `aws:SourceAccount` (an account id) and `aws:SourceArn` (ARNs without a
    wildcard), so the service acts for this account's own trail or buckets only (no confused deputy).
    """
    statements = as_list(document.get("Statement")) if isinstance(document, dict) else []
    allows = [s for s in statements if isinstance(s, dict) and s.get("Effect") == "Allow"]
    if len(allows) != 1:
        return [f"{len(allows)} statements allow access; a service role's trust has exactly one"]
    [statement] = allows
    problems = []
    if "NotPrincipal" in statement or "NotAction" in statement:
        problems.append("uses NotPrincipal or NotAction")
    trusted = principals(statement.get("Principal"))
    if len(trusted) != 1 or not trusted <= {f"Service:{s}" for s in SERVICE_PRINCIPALS}:
        problems.append(f"trusts {', '.join(sorted(trusted)) or 'no principal'}, not one of "
                        f"{', '.join(SERVICE_PRINCIPALS)}")
    if actions := sorted(str(a) for a in as_list(statement.get("Action")) if str(a).lower() != "sts:assumerole"):
        problems.append(f"allows {', '.join(actions)}")
    condition = statement.get("Condition")
    condition = condition if isinstance(condition, dict) else {}
    if operators := sorted(set(condition) - {"StringEquals"}):
        problems.append(f"uses condition operator {', '.join(operators)}; a service role's trust uses only "
                        "StringEquals")
    equals = condition.get("StringEquals")
    equals = {k.lower(): as_list(v) for k, v in equals.items()} if isinstance(equals, dict) else {}
    accounts, arns = equals.get("aws:sourceaccount", []), equals.get("aws:sourcearn", [])
    if not accounts or not all(isinstance(a, str) and re.fullmatch(r"\d{12}", a) for a in accounts):
        problems.append("does not require aws:SourceAccount to be an account id")
    if not arns or not all(isinstance(a, str) and a.startswith("arn:") and not set("*?") & set(a) for a in arns):
        problems.append("does not require aws:SourceArn to be ARNs without a wildcard")
    return problems
