"""The security gate: checkov over every synthesized example stack, our own trust check (CKV_DP_1), and parliament
over every policy document they hold."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from cdktf import Testing

from dataplane.config.customer import load_customer
from dataplane.config.settings import Settings
from dataplane.ops.cli import main
from dataplane.ops.pipeline import gate
from dataplane.ops.pipeline.gate import CONFIG, GateError, Result, acknowledgements, lint, policy_documents, scan
from dataplane.tamper import in_alarm, service_trust
from stacks import DataPlaneStack
from tests.conftest import EXTRA_FIXTURES, stack_json

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


ALARM_CHECKS = {"CKV_AWS_18", "CKV_AWS_144", "CKV2_AWS_61", "CKV2_AWS_62", "CKV2_AWS_6", "CKV_AWS_145", "CKV_AWS_21",
                "CKV2_AWS_10", "CKV_AWS_252", "CKV_AWS_35", "CKV_AWS_36", "CKV_AWS_67", "CKV_AWS_7", "CKV2_AWS_64",
                "CKV_AWS_158", "CKV_AWS_338", "CKV_AWS_26", "CKV_AWS_300", "CKV_DP_1"}
"""Checks the tamper alarm's resources bring, each of which must have run on them (and passed)."""


def test_gate_passes_on_every_example_stack_and_the_tamper_alarm(synthesized, settings, tmp_path):
    """Without a skip for the alarm: its buckets log their access and replicate to another region (the access-log
    and replica buckets pass as the target of that logging and replication), its trail has a topic and CloudWatch
    Logs, its service roles follow the service-role trust rule."""
    hooli = load_customer(EXTRA_FIXTURES / "hooli.toml", settings.control_plane_account_id)
    stacks = {name: stack_json(synthesized, name) for name in ("acme", "globex")}
    stacks["hooli"] = json.loads(Testing.synth(DataPlaneStack(Testing.app(), hooli, settings)))
    results = scan(write_stacks(tmp_path / "cdktf.out", stacks))
    assert [str(r) for r in results if not r.passed] == []
    assert {r.stack for r in results} == set(stacks)
    alarm = [r for r in results if r.stack == "hooli" and in_alarm(r.resource.removeprefix("resource."))]
    assert ALARM_CHECKS <= {r.check_id for r in alarm}
    buckets = {r.resource for r in alarm if r.resource.startswith("aws_s3_bucket.")}
    assert len(buckets) == 4 and all({(b, c) for c in ("CKV_AWS_18", "CKV_AWS_144", "CKV2_AWS_61", "CKV2_AWS_62")}
                                     <= {(r.resource, r.check_id) for r in alarm} for b in buckets)


def test_gate_fails_on_an_insecure_stack_and_passes_the_guard_and_attachments(synthesized, customers, tmp_path,
                                                                              capsys):
    def wildcard_without_external_id(statement: dict) -> None:
        statement["Principal"] = {"AWS": "*"}
        del statement["Condition"]

    insecure = with_trust(stack_json(synthesized, "acme"), wildcard_without_external_id)
    guarded = Settings.model_validate({"managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "team/Extra"],
                                       "delegationBoundary": "boundaries/DataPlane"})
    acme = customers["acme"]
    escalating = json.loads(Testing.synth(DataPlaneStack(Testing.app(), acme, Settings.model_validate(
        {"managedPolicyArns": ["ReadOnly"]}))).replace(f"arn:aws:iam::{acme.account_id}:policy/ReadOnly",
                                                       "arn:aws:iam::aws:policy/IAMFullAccess"))
    outdir = write_stacks(tmp_path / "cdktf.out", {
        "acme": stack_json(synthesized, "acme"), "insecure": insecure, "escalating": escalating,
        "guarded": json.loads(Testing.synth(DataPlaneStack(Testing.app(), acme, guarded)))})
    assert main(["gate", str(outdir)]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAILED")]
    [attachment] = escalating["resource"]["aws_iam_role_policy_attachment"]
    assert failed == [
        f"FAILED escalating: aws_iam_role_policy_attachment.{attachment}: CKV2_AWS_56 Ensure AWS Managed IAMFullAccess "
        "IAM policy is not used.",
        f"FAILED escalating: resource.{attachment}: CKV_DP_2 Ensure no IAM role is attached a managed policy that "
        "makes it an administrator",
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
    "narrow-service-role": lambda s: service_role(s),
    "service-role-of-another-service": lambda s: service_role(s, Principal={"Service": "lambda.amazonaws.com"}),
    "service-role-without-source-arn": lambda s: service_role(s, Condition={"StringEquals": {
        "aws:SourceAccount": "123456789012"}}),
    "service-role-with-a-wildcard-source-arn": lambda s: service_role(s, Condition={"StringEquals": {
        "aws:SourceAccount": "123456789012", "aws:SourceArn": "arn:aws:cloudtrail:*:123456789012:trail/*"}}),
    "service-role-with-string-like": lambda s: service_role(s, Condition={"StringLike": {
        "aws:SourceAccount": "123456789012", "aws:SourceArn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/x"}}),
    "service-role-and-the-control-plane": lambda s: service_role(s, Principal={
        "Service": "cloudtrail.amazonaws.com", "AWS": "arn:aws:iam::406882777402:root"}),
}


def service_role(statement: dict, **changes) -> None:
    """`statement` made the tamper alarm's CloudTrail role's trust, then `changes`."""
    statement.clear()
    statement.update(service_trust("cloudtrail.amazonaws.com", "123456789012", [
        "arn:aws:cloudtrail:us-east-1:123456789012:trail/acme-tamper-trail"])["Statement"][0], **changes)


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
    with pytest.raises(GateError, match="parliament found no policy document"):
        lint(write_stacks(tmp_path / "cdktf.out", {"empty": {"resource": {}}}))


def test_every_acknowledged_parliament_finding_has_a_reason():
    assert len(acknowledgements()) >= 5
    assert all(len(a.reason) >= 40 and a.issue.isupper() and re.fullmatch(r"aws_\w+\.\w+", a.policy)
               for a in acknowledgements())


@pytest.mark.parametrize("entry, problem", [
    ({"issue": "RESOURCE_STAR", "policy": "aws_kms_key.policy"}, "needs issue, policy and reason"),
    ({"issue": "RESOURCE_STAR", "policy": "aws_kms_key.policy", "reason": "fine"}, "must say why"),
    ({"issue": "RESOURCE_STAR", "policy": "aws_kms_key.policy", "reason": "a reason long enough to read", "stack": "x"},
     "nothing else"),
    ({"issue": "RESOURCE_STAR", "policy": "aws_kms_key.policy", "reason": "a reason long enough to read",
      "actions": "kms:*"}, "actions a list of strings"),
])
def test_a_malformed_acknowledgement_stops_the_gate(tmp_path, entry, problem):
    path = tmp_path / ".parliament.yaml"
    path.write_text(json.dumps({"acknowledged": [entry]}))
    with pytest.raises(GateError, match=f"^.parliament.yaml: acknowledged\\[0\\]: .*{problem}"):
        acknowledgements(path)


def guarded_settings() -> Settings:
    return Settings.model_validate({"managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "team/Extra"],
                                    "delegationBoundary": "boundaries/DataPlane",
                                    "permissionsBoundary": "boundaries/Role"})


def test_parliament_finds_only_acknowledged_findings_in_every_fixture_stack_and_each_is_needed(synthesized, settings,
                                                                                              customers, tmp_path):
    hooli = load_customer(EXTRA_FIXTURES / "hooli.toml", settings.control_plane_account_id)
    stacks = {name: stack_json(synthesized, name) for name in ("acme", "globex")}
    stacks["hooli"] = json.loads(Testing.synth(DataPlaneStack(Testing.app(), hooli, settings)))
    stacks["guarded"] = json.loads(Testing.synth(DataPlaneStack(Testing.app(), customers["acme"], guarded_settings())))
    documents, findings = lint(write_stacks(tmp_path / "cdktf.out", stacks))
    accepted = acknowledgements()
    kinds = {f"{resource.split('.')[0]}.{attribute}" for resource, attribute, _ in policy_documents(stacks["hooli"])}
    assert kinds == {"aws_iam_role.assume_role_policy", "aws_iam_role_policy.policy", "aws_kms_key.policy",
                     "aws_s3_bucket_policy.policy", "aws_sns_topic_policy.policy"}
    assert documents >= 21 and {f.stack for f in findings} == set(stacks)
    assert [str(f) for f in findings if not any(a.covers(f) for a in accepted)] == []
    assert [a for a in accepted if not any(a.covers(f) for f in findings)] == [], "an acknowledgement no finding needs"


def with_activation_actions(stack: dict, actions) -> dict:
    """`stack` with its activation policy's first statement allowing `actions`."""
    changed = copy.deepcopy(stack)
    [policy] = changed["resource"]["aws_iam_role_policy"].values()
    document = json.loads(policy["policy"])
    document["Statement"][0]["Action"] = actions
    policy["policy"] = json.dumps(document)
    return changed


@pytest.mark.parametrize("actions, failed", [
    ("*", "parliament PRIVILEGE_ESCALATION (HIGH) AttachRolePolicy; iam:attachrolepolicy, sts:assumerole"),
    (["cloudformation:*", "iam:AttachRolePolicy"], "parliament PERMISSIONS_MANAGEMENT_ACTIONS (MEDIUM) Permissions "
                                                   "management actions; cloudformation:setstackpolicy, "
                                                   "iam:attachrolepolicy"),
    (["cloudformation:*", "ec2:RunInstances"], "parliament RESOURCE_STAR (LOW) Unnecessary use of Resource *; "
                                               "cloudformation:CancelUpdateStack"),
])
def test_an_unacknowledged_finding_fails_the_gate(synthesized, tmp_path, monkeypatch, capsys, actions, failed):
    """checkov's part stubbed to pass: the exit status and the lines are parliament's."""
    monkeypatch.setattr(gate, "scan", lambda outdir: [Result("acme", "aws_iam_role.x", "CKV_X", True, "passed")])
    acme = stack_json(synthesized, "acme")
    outdir = write_stacks(tmp_path / "cdktf.out", {"acme": acme, "hostile": with_activation_actions(acme, actions)})
    assert main(["gate", str(outdir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    [policy] = acme["resource"]["aws_iam_role_policy"]
    assert f"FAILED hostile: aws_iam_role_policy.{policy}.policy: {failed}" in "\n".join(lines)
    assert all(line.startswith("FAILED hostile: ") for line in lines[:-1]) and lines[-1].startswith(
        "security gate: 1 passed, 0 failed over 1 stack(s); parliament: ")
    monkeypatch.setattr(gate, "ACKNOWLEDGED", tmp_path / "none.yaml")
    assert main(["gate", str(outdir)]) == 2
