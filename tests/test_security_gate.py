"""The security gate: checkov over every synthesized example stack, and our own trust check (CKV_DP_1)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from dataplane.ops.cli import main
from dataplane.ops.gate import CONFIG, GateError, scan
from tests.conftest import stack_json

ROLE = "cross-account-role_F7C11791"


def with_trust(stack: dict, edit) -> dict:
    """`stack` with its role's trust policy statement changed by `edit(statement)`."""
    changed = copy.deepcopy(stack)
    role = changed["resource"]["aws_iam_role"][ROLE]
    policy = json.loads(role["assume_role_policy"])
    edit(policy["Statement"][0])
    role["assume_role_policy"] = json.dumps(policy)
    return changed


def write_stacks(root: Path, stacks: dict[str, dict]) -> Path:
    for name, doc in stacks.items():
        (root / "stacks" / name).mkdir(parents=True)
        (root / "stacks" / name / "cdk.tf.json").write_text(json.dumps(doc))
    return root


def test_every_acknowledged_skip_has_a_reason():
    skips = re.findall(r"^\s*-\s*(CKV\w+)(.*)$", CONFIG.read_text(), flags=re.MULTILINE)
    assert skips, "no skip-check entries found"
    for check, rest in skips:
        assert re.fullmatch(r"\s+#\s*\S.{10,}", rest), f"{check} is skipped without a one-line reason"
    assert "soft-fail" not in CONFIG.read_text()


def test_gate_passes_on_every_example_stack(synthesized, capsys):
    assert main(["gate", str(synthesized)]) == 0
    [summary] = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"security gate: \d+ passed, 0 failed over 2 stack\(s\)", summary)


def test_gate_fails_on_an_insecure_stack(synthesized, tmp_path, capsys):
    def wildcard_without_external_id(statement: dict) -> None:
        statement["Principal"] = {"AWS": "*"}
        del statement["Condition"]

    insecure = with_trust(stack_json(synthesized, "acme"), wildcard_without_external_id)
    outdir = write_stacks(tmp_path / "cdktf.out", {"acme": stack_json(synthesized, "acme"), "insecure": insecure})
    assert main(["gate", str(outdir)]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAILED")]
    assert failed == [
        f"FAILED insecure: resource.{ROLE}: CKV_AWS_60 Ensure IAM role allows only specific services or principals "
        "to assume it",
        f"FAILED insecure: resource.{ROLE}: CKV_DP_1 Ensure an IAM role trusts one non-wildcard principal, only for "
        "sts:AssumeRole, with sts:ExternalId",
    ]


TRUST_VARIANTS = {
    "narrow": lambda s: None,
    "narrow-role-principal": lambda s: s.update(Principal={"AWS": ["arn:aws:iam::406882777402:role/control-plane"]}),
    "wildcard-principal": lambda s: s.update(Principal="*"),
    "wildcard-in-arn": lambda s: s.update(Principal={"AWS": "arn:aws:iam::*:root"}),
    "two-principals": lambda s: s.update(Principal={"AWS": ["arn:aws:iam::406882777402:root",
                                                            "arn:aws:iam::111122223333:root"]}),
    "service-principal": lambda s: s.update(Principal={"Service": "ec2.amazonaws.com"}),
    "extra-action": lambda s: s.update(Action=["sts:AssumeRole", "sts:TagSession"]),
    "any-sts-action": lambda s: s.update(Action="sts:*"),
    "no-external-id": lambda s: s.pop("Condition"),
    "external-id-like": lambda s: s.update(Condition={"StringLike": {"sts:ExternalId": "*"}}),
    "narrow-several-external-ids": lambda s: s.update(Condition={"StringEquals": {"sts:ExternalId": [
        "astro-3f9c2b7e", "astro-cluster-2"]}}),
    "external-id-wildcard": lambda s: s.update(Condition={"StringEquals": {"sts:ExternalId": "astro-*"}}),
    "external-id-list-with-wildcard": lambda s: s.update(Condition={"StringEquals": {"sts:ExternalId": [
        "astro-3f9c2b7e", "*"]}}),
    "external-id-and-string-like": lambda s: s["Condition"].update(StringLike={"sts:ExternalId": "*"}),
    "external-id-if-exists": lambda s: s.update(Condition={"StringEqualsIfExists": {"sts:ExternalId": "astro-x1"}}),
    "external-id-and-other-operator": lambda s: s["Condition"].update(Bool={"aws:SecureTransport": "true"}),
    "external-id-empty-list": lambda s: s.update(Condition={"StringEquals": {"sts:ExternalId": []}}),
    "not-principal": lambda s: s.update(NotPrincipal=s.pop("Principal")),
}


def test_trust_check_passes_narrow_trust_and_fails_each_weakening(synthesized, tmp_path):
    acme = stack_json(synthesized, "acme")
    stacks = {name: with_trust(acme, edit) for name, edit in TRUST_VARIANTS.items()}
    stacks["narrow-globex"] = stack_json(synthesized, "globex")

    def second_allow(policy_stack: dict) -> dict:
        role = policy_stack["resource"]["aws_iam_role"][ROLE]
        policy = json.loads(role["assume_role_policy"])
        policy["Statement"].append({**policy["Statement"][0], "Sid": "Another"})
        role["assume_role_policy"] = json.dumps(policy)
        return policy_stack

    stacks["two-allow-statements"] = second_allow(copy.deepcopy(acme))
    results = scan(write_stacks(tmp_path / "cdktf.out", stacks), only=("CKV_DP_1",))
    assert {r.stack: r.passed for r in results} == {name: name.startswith("narrow") for name in stacks}


def test_gate_refuses_to_pass_on_nothing(tmp_path):
    with pytest.raises(GateError, match="nothing to scan"):
        scan(tmp_path)
    (tmp_path / "stacks").mkdir()
    with pytest.raises(GateError, match="nothing to scan"):
        scan(tmp_path)
