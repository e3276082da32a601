"""Snapshots for reviewers: one file per customer, `<customer>.json`, keys sorted, policies expanded."""

from __future__ import annotations

import json

from syrupy.extensions.json import JSONSnapshotExtension

POLICY_FIELDS = ("assume_role_policy", "policy")


def readable(stack: dict) -> dict:
    """The stack with IAM policy strings parsed, so a snapshot diff shows the statement that changed."""
    expanded = json.loads(json.dumps(stack))
    for resources in expanded.get("resource", {}).values():
        for resource in resources.values():
            for field in POLICY_FIELDS:
                if isinstance(resource.get(field), str):
                    resource[field] = json.loads(resource[field])
    return expanded


class StackSnapshot(JSONSnapshotExtension):
    """Names the snapshot after the customer: the test's parameter id."""

    @classmethod
    def get_snapshot_name(cls, *, test_location, index=0) -> str:
        return test_location.testname.split("[", 1)[1].rstrip("]")

    def serialize(self, data, **kwargs) -> str:
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
