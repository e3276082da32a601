"""`python -m dataplane ci-roles`: the pipeline's two identities, each trusted only by the GitHub subjects it is
pinned to, and the per-account roles each trusting only one of them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dataplane.config.settings import Settings
from dataplane.ops import cli
from dataplane.ops.pipeline import ci_roles
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from tests.conftest import FIXTURES

REPO, CI_ACCOUNT = "acme-corp/data-plane", "111122223333"
CONTEXT = {"planRoleName": "dataplane-plan", "deployRoleName": "dataplane-deploy", "applyEnvironment": "production",
           "backend": {"type": "s3", "bucket": "acme-tf-state", "region": "us-east-1", "keyPrefix": "fleet"}}
SUB, AUD = "token.actions.githubusercontent.com:sub", "token.actions.githubusercontent.com:aud"


@pytest.fixture(scope="module")
def roles(customers) -> dict:
    return ci_roles.document(Settings.model_validate(CONTEXT), list(customers.values()), REPO, CI_ACCOUNT)


def only_statement(policy: dict) -> dict:
    [statement] = policy["Statement"]
    return statement


def test_each_ci_role_is_trusted_by_github_for_sts_with_its_subjects_pinned(roles):
    provider = f"arn:aws:iam::{CI_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    assert roles["oidc_provider"] == {"arn": provider, "url": "https://token.actions.githubusercontent.com",
                                      "client_ids": ["sts.amazonaws.com"]}
    subjects = {}
    for name, role in roles["ci_roles"].items():
        trust = only_statement(role["assume_role_policy"])
        assert trust["Principal"] == {"Federated": provider} and trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert set(trust["Condition"]) == {"StringEquals"}, "no StringLike: no wildcard subject"
        assert trust["Condition"]["StringEquals"][AUD] == "sts.amazonaws.com"
        subjects[name] = trust["Condition"]["StringEquals"][SUB]
        assert not any(c in s for s in subjects[name] for c in "*?")
    assert subjects == {"dataplane-ci-plan": [f"repo:{REPO}:pull_request", f"repo:{REPO}:ref:refs/heads/main"],
                        "dataplane-ci-apply": [f"repo:{REPO}:environment:production"]}


def test_the_ci_plan_role_reaches_only_plan_roles_and_the_apply_role_only_deploy_roles(roles):
    assert {name: only_statement(role["policy"]) for name, role in roles["ci_roles"].items()} == {
        "dataplane-ci-plan": {"Effect": "Allow", "Action": ["sts:AssumeRole"],
                              "Resource": ["arn:aws:iam::*:role/dataplane-plan"]},
        "dataplane-ci-apply": {"Effect": "Allow", "Action": ["sts:AssumeRole"],
                               "Resource": ["arn:aws:iam::*:role/dataplane-deploy"]}}


def test_each_customer_account_role_trusts_only_its_ci_role(roles, customers):
    accounts = roles["customer_account_roles"]
    assert accounts["accounts"] == sorted({c.account_id for c in customers.values()})
    for name, ci_role in (("dataplane-plan", "dataplane-ci-plan"), ("dataplane-deploy", "dataplane-ci-apply")):
        assert only_statement(accounts[name]["assume_role_policy"]) == {
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CI_ACCOUNT}:role/{ci_role}"},
            "Action": "sts:AssumeRole"}


def test_the_plan_role_reads_and_reads_the_state_the_deploy_role_also_writes_it(roles):
    accounts = roles["customer_account_roles"]
    plan, deploy = (accounts[name]["policy"]["Statement"] for name in ("dataplane-plan", "dataplane-deploy"))
    plan_actions = {a for s in plan for a in s["Action"]}
    writes = ("Create", "Put", "Delete", "Update", "Attach", "Detach", "Tag", "Untag", "Modify", "Accept",
              "Associate", "Revoke", "Schedule", "Enable", "Start", "Stop", "Set", "Subscribe", "Remove")
    assert [a for a in plan_actions if a.split(":")[1].startswith(writes)] == []
    assert "s3:GetObject" in plan_actions and "s3:Get*" not in plan_actions and "*" not in plan_actions
    state = "arn:aws:s3:::acme-tf-state/fleet/*"
    assert {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [state]} in plan
    assert {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [state]} in deploy
    assert {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": [f"{state}.tflock"]} in deploy
    deploy_actions = {a for s in deploy for a in s["Action"]}
    assert {"iam:CreateRole", "iam:PutRolePolicy", "ec2:CreateVpc", "ec2:DeleteVpc"} <= deploy_actions
    assert plan_actions - {"s3:GetObject", "s3:ListBucket"} <= deploy_actions


def test_the_fleet_s_accepter_roles_may_be_assumed_by_both(roles, customers):
    accepters = sorted({c.peering.accepter_role_arn for c in customers.values()
                        if c.peering and c.peering.accepter_role_arn})
    assert accepters
    for name in ("dataplane-plan", "dataplane-deploy"):
        assert {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": accepters} in (
            roles["customer_account_roles"][name]["policy"]["Statement"])


def test_the_output_is_sorted_json_the_same_every_time(tmp_path):
    settings = tmp_path / "cdktf.json"
    settings.write_text(json.dumps({"context": CONTEXT}))
    env = {SETTINGS_ENV: str(settings), CUSTOMERS_DIR_ENV: str(FIXTURES), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.run([sys.executable, "-m", "dataplane", "ci-roles", "--repo", REPO, "--ci-account", CI_ACCOUNT,
                            "--branch", "release/v2"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                           timeout=60) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == json.dumps(json.loads(runs[0].stdout), indent=2, sort_keys=True) + "\n"
    assert f"repo:{REPO}:ref:refs/heads/release/v2" in runs[0].stdout


@pytest.mark.parametrize("argument, value", [
    ("--repo", "acme"), ("--repo", "acme/*"), ("--repo", "acme/data-plane:pull_request"), ("--repo", "-acme/x"),
    ("--repo", "acme/.."), ("--branch", "*"), ("--branch", "main/../x"), ("--branch", "a:b"),
    ("--ci-account", "1111"), ("--ci-account", "*")])
def test_a_malformed_argument_is_one_line_naming_it_and_exit_2(tmp_path, monkeypatch, capsys, argument, value):
    settings = tmp_path / "cdktf.json"
    settings.write_text(json.dumps({"context": CONTEXT}))
    monkeypatch.setenv(SETTINGS_ENV, str(settings))
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    args = {"--repo": REPO, "--ci-account": CI_ACCOUNT, argument: value}
    with pytest.raises(SystemExit) as exited:
        cli.main(["ci-roles", *(f"{name}={given}" for name, given in args.items())])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert err.startswith(f"ci-roles: {argument} {value!r}: not ") and err.count("\n") == 1


def test_without_the_per_account_role_names_nothing_is_printed(customers):
    with pytest.raises(ci_roles.CiRolesError, match="set planRoleName and deployRoleName"):
        ci_roles.document(Settings.model_validate({"deployRoleName": "dataplane-deploy"}), list(customers.values()),
                          REPO, CI_ACCOUNT)
