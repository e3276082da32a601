"""`python -m dataplane ci-roles`: the pipeline's two identities, each trusted only by the GitHub subjects it is
pinned to; in the customer accounts the plan role trusting only the CI plan role, and the deploy role the customer's
bootstrap creates (its trust and policy the bootstrap's, never described twice), which the CI apply role must be
the principal of."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dataplane.config.settings import Settings
from dataplane.ops import cli
from dataplane.ops.account import bootstrap
from dataplane.ops.pipeline import ci_roles
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from tests.conftest import FIXTURES, stack_json

REPO, CI_ACCOUNT = "acme-corp/data-plane", "111122223333"
CI_APPLY = f"arn:aws:iam::{CI_ACCOUNT}:role/dataplane-ci-apply"
CONTEXT = {"planRoleName": "dataplane-plan", "deployRoleName": "dataplane-deploy", "applyEnvironment": "production",
           "deployerPrincipalArn": CI_APPLY,
           "backend": {"type": "s3", "bucket": "acme-tf-state", "region": "us-east-1", "keyPrefix": "fleet"}}
SUB, AUD = "token.actions.githubusercontent.com:sub", "token.actions.githubusercontent.com:aud"


@pytest.fixture(scope="module")
def stacks(synthesized, customers) -> dict[str, dict]:
    """The fixture customers' stacks, synthesized once for the session."""
    return {name: stack_json(synthesized, name) for name in customers}


def document(stacks, customers, context: dict = CONTEXT, **kwargs) -> dict:
    return ci_roles.document(Settings.model_validate(context), list(customers.values()), REPO, CI_ACCOUNT,
                             stacks_of=lambda customers: {c.name: stacks[c.name] for c in customers}, **kwargs)


@pytest.fixture(scope="module")
def roles(stacks, customers) -> dict:
    return document(stacks, customers)


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
    assert roles["ci_roles"]["dataplane-ci-apply"]["arn"] == CI_APPLY


def test_the_plan_role_trusts_only_the_ci_plan_role(roles, customers):
    accounts = roles["customer_account_roles"]
    assert accounts["accounts"] == sorted({c.account_id for c in customers.values()})
    assert only_statement(accounts["dataplane-plan"]["assume_role_policy"]) == {
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CI_ACCOUNT}:role/dataplane-ci-plan"},
        "Action": "sts:AssumeRole"}


def test_the_deploy_role_is_each_customer_s_bootstrap_trusting_the_ci_apply_role(roles, customers, stacks):
    deploy = roles["customer_account_roles"]["dataplane-deploy"]
    assert "python -m dataplane bootstrap CUSTOMER" in deploy["created_by"]
    assert sorted(deploy["customers"]) == sorted(customers)
    settings = Settings.model_validate(CONTEXT)
    for name, customer in customers.items():
        role = deploy["customers"][name]
        assert role["account"] == customer.account_id
        assert role["bootstrap"] == f"python -m dataplane bootstrap {name}"
        assert role["assume_role_policy"] == bootstrap.trust(settings, customer)
        assert only_statement(role["assume_role_policy"])["Principal"] == {"AWS": CI_APPLY}
        assert role["policy"] == bootstrap.permissions(bootstrap.stack_needs(stacks[name]))
        assert role["policy"] == bootstrap.template(stacks[name], settings, customer)["Resources"]["DeployRole"][
            "Properties"]["Policies"][0]["PolicyDocument"]
        assert "permissions_boundary" not in role


def test_the_deploy_role_s_boundary_is_the_bootstrap_s(stacks, customers):
    roles = document(stacks, customers, {**CONTEXT, "deployRoleBoundary": "dataplane-deploy-boundary"})
    for name, customer in customers.items():
        assert roles["customer_account_roles"]["dataplane-deploy"]["customers"][name]["permissions_boundary"] == (
            f"arn:aws:iam::{customer.account_id}:policy/dataplane-deploy-boundary")


def test_the_plan_role_reads_and_reads_the_state(roles):
    plan = roles["customer_account_roles"]["dataplane-plan"]["policy"]["Statement"]
    plan_actions = {a for s in plan for a in s["Action"]}
    writes = ("Create", "Put", "Delete", "Update", "Attach", "Detach", "Tag", "Untag", "Modify", "Accept",
              "Associate", "Revoke", "Schedule", "Enable", "Start", "Stop", "Set", "Subscribe", "Remove")
    assert [a for a in plan_actions if a.split(":")[1].startswith(writes)] == []
    assert "s3:GetObject" in plan_actions and "s3:Get*" not in plan_actions and "*" not in plan_actions
    assert {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::acme-tf-state/fleet/*"]} in plan
    assert {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::acme-tf-state"]} in plan


def test_the_fleet_s_accepter_roles_may_be_assumed_by_the_plan_role_and_the_peering_customer_s_deploy_role(roles):
    accounts = roles["customer_account_roles"]
    assert {"Effect": "Allow", "Action": ["sts:AssumeRole"],
            "Resource": ["arn:aws:iam::111122223333:role/peering-accepter"]} in accounts["dataplane-plan"]["policy"][
        "Statement"]
    assumed = {name: [r for s in role["policy"]["Statement"] if "sts:AssumeRole" in s["Action"] for r in s["Resource"]]
               for name, role in accounts["dataplane-deploy"]["customers"].items()}
    assert assumed == {"acme": [], "globex": ["arn:aws:iam::111122223333:role/peering-accepter"]}


def test_the_document_is_the_same_whatever_the_customers_order(stacks, customers, roles):
    reversed_order = dict(reversed(list(customers.items())))
    assert ci_roles.render(document(stacks, reversed_order)) == ci_roles.render(roles)


def test_the_output_is_sorted_json_the_same_every_time(tmp_path):
    settings = tmp_path / "cdktf.json"
    settings.write_text(json.dumps({"context": CONTEXT}))
    env = {SETTINGS_ENV: str(settings), CUSTOMERS_DIR_ENV: str(FIXTURES), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.run([sys.executable, "-m", "dataplane", "ci-roles", "--repo", REPO, "--ci-account", CI_ACCOUNT,
                            "--branch", "release/v2"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == json.dumps(json.loads(runs[0].stdout), indent=2, sort_keys=True) + "\n"
    assert f"repo:{REPO}:ref:refs/heads/release/v2" in runs[0].stdout
    assert sorted(json.loads(runs[0].stdout)["customer_account_roles"]["dataplane-deploy"]["customers"]) == [
        "acme", "globex"]


def run_cli(tmp_path, monkeypatch, capsys, context: dict, *args: str) -> tuple[int, str, str]:
    settings = tmp_path / "cdktf.json"
    settings.write_text(json.dumps({"context": context}))
    monkeypatch.setenv(SETTINGS_ENV, str(settings))
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    with pytest.raises(SystemExit) as exited:
        cli.main(["ci-roles", *args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.mark.parametrize("argument, value", [
    ("--repo", "acme"), ("--repo", "acme/*"), ("--repo", "acme/data-plane:pull_request"), ("--repo", "-acme/x"),
    ("--repo", "acme/.."), ("--branch", "*"), ("--branch", "main/../x"), ("--branch", "a:b"),
    ("--ci-account", "1111"), ("--ci-account", "*")])
def test_a_malformed_argument_is_one_line_naming_it_and_exit_2(tmp_path, monkeypatch, capsys, argument, value):
    args = {"--repo": REPO, "--ci-account": CI_ACCOUNT, argument: value}
    status, out, err = run_cli(tmp_path, monkeypatch, capsys, CONTEXT,
                               *(f"{name}={given}" for name, given in args.items()))
    assert status == 2 and out == ""
    assert err.startswith(f"ci-roles: {argument} {value!r}: not ") and err.count("\n") == 1


@pytest.mark.parametrize("deployer", [None, "arn:aws:iam::999988887777:role/dataplane-ci-apply",
                                      f"arn:aws:iam::{CI_ACCOUNT}:role/ci-apply", f"arn:aws:iam::{CI_ACCOUNT}:root"])
def test_a_deployer_other_than_the_ci_apply_role_is_refused_in_one_line_before_any_synth(
        tmp_path, monkeypatch, capsys, deployer):
    context = {k: v for k, v in CONTEXT.items() if k != "deployerPrincipalArn"} | (
        {"deployerPrincipalArn": deployer} if deployer else {})
    monkeypatch.setattr(bootstrap, "synthesized_all", lambda customers: pytest.fail("synthesized before the check"))
    status, out, err = run_cli(tmp_path, monkeypatch, capsys, context, f"--repo={REPO}", f"--ci-account={CI_ACCOUNT}")
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"ci-roles: deployerPrincipalArn in cdktf.json is {deployer or 'not set'}, but the "
                          f"pipeline's apply jobs act as {CI_APPLY}: ")


def test_a_deployer_that_requires_mfa_is_refused_the_pipeline_has_none(stacks, customers):
    with pytest.raises(ci_roles.CiRolesError, match="^deployerRequiresMfa in cdktf.json is true, but the pipeline"):
        document({}, customers, {**CONTEXT, "deployerRequiresMfa": True})


def test_a_stack_the_bootstrap_refuses_is_one_line_naming_the_customer(stacks, customers):
    broken = {**stacks, "acme": {**stacks["acme"], "resource": {**stacks["acme"]["resource"], "aws_instance": {
        "x": {}}}}}
    with pytest.raises(ci_roles.CiRolesError, match="^acme: aws_instance: no construct's facts describe it"):
        document(broken, customers)


def test_without_the_per_account_role_names_nothing_is_printed(customers):
    with pytest.raises(ci_roles.CiRolesError, match="set planRoleName and deployRoleName"):
        ci_roles.document(Settings.model_validate({"deployRoleName": "dataplane-deploy"}), list(customers.values()),
                          REPO, CI_ACCOUNT)
