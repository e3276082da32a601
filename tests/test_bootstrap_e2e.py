"""The customer's bootstrap against the emulator: the template launched through moto's CloudFormation in a fresh
customer account, then `activate` run as the vendor's principal, which the tool makes assume the created role.

acme (role only) runs with moto's IAM access control on (`enforcement`): the activation through the role passes, and
without one action the stack needs preflight names it and a deploy fails with AccessDenied. globex (network and
cross-account peering) runs without it: moto compares an assumed role's session ARN with a trust's principal as a
plain string, so the accepter role's account-root trust refuses the deploy role's session under enforcement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dataplane.ops.account import bootstrap
from dataplane.ops.sandbox import launch_bootstrap
from dataplane.project import PROJECT_ROOT, SETTINGS_ENV
from tests.deploy import Deployment, stage

VENDOR_ACCOUNT = "999988887777"
DEPLOY_ROLE = "dataplane-deploy"
DEPLOYER = f"arn:aws:iam::{VENDOR_ACCOUNT}:user/deployer"
S3_ACTIONS = {"s3:HeadBucket": "s3:ListBucket", "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
              "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock"}
"""moto's names for S3 requests that IAM authorizes as another action."""


@pytest.fixture(scope="module")
def enforcement(emulator):
    """Switches moto's IAM access control (`INITIAL_NO_AUTH_ACTION_COUNT`) on and off in the module's emulator.

    moto evaluates identity policies' actions, and resources only where it knows the request's resource (an IAM
    role's ARN, an S3 bucket's; elsewhere it passes `*`); it treats every condition as met. Two corrections make its
    check the policy's, not its own gaps: a request whose resource moto does not know matches any `Resource` (real
    IAM compares the created or addressed resource's ARN, which the unit tests check), and moto's S3 names are
    translated to IAM's (`S3_ACTIONS`).
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam import access_control

    matches, create = access_control.IAMPolicyStatement._check_element_matches, access_control.IAMRequestBase.__init__

    def known_resources(statement, element, value):
        return (element == "Resource" and value == "*") or matches(statement, element, value)

    def iam_names(request, *args, **kwargs):
        create(request, *args, **kwargs)
        request._action = S3_ACTIONS.get(request._action, request._action)

    def switch(on: bool) -> None:  # the emulator's server runs in this process
        patch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0 if on else float("inf"))
        patch.setattr(ActionAuthenticatorMixin, "request_count", 0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(access_control.IAMPolicyStatement, "_check_element_matches", known_resources)
        patch.setattr(access_control.IAMRequestBase, "__init__", iam_names)
        yield switch
        switch(False)


def bootstrapped(emulator, customer, settings, workdir: Path) -> tuple[Deployment, dict]:
    """The customer staged, its bootstrap template launched through moto's CloudFormation in its account, and the
    vendor's deployer (an IAM user that may assume the deploy role of any account); the deployment runs as it."""
    context = {**json.loads((PROJECT_ROOT / "cdktf.json").read_text())["context"],
               "deployRoleName": DEPLOY_ROLE, "deployerPrincipalArn": DEPLOYER}
    project = workdir / "cdktf.json"
    project.write_text(json.dumps({"context": context}))
    staging = stage(emulator, customer, settings, workdir)
    argv = [sys.executable, "-m", "dataplane", "bootstrap", f"--out={workdir / 'bootstrap'}", customer.name]
    env = {**staging.env, SETTINGS_ENV: str(project)}
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    template = json.loads((workdir / "bootstrap" / f"{customer.name}.cfn.json").read_text())
    launch_bootstrap(emulator, customer, template)
    iam = emulator.client("iam", VENDOR_ACCOUNT, "us-east-1")
    iam.create_user(UserName="deployer")
    iam.put_user_policy(UserName="deployer", PolicyName="assume-deploy-roles", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Resource": f"arn:aws:iam::*:role/{DEPLOY_ROLE}"}]}))
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    env.pop("AWS_SESSION_TOKEN")
    env |= {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    return Deployment(staging.customer, workdir, env), template


def run(deployment: Deployment, command: str, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "dataplane", command, *args, "--", deployment.customer.name]
    return subprocess.run(argv, cwd=PROJECT_ROOT, env=deployment.env, capture_output=True, text=True, timeout=900)


def activate(deployment: Deployment) -> subprocess.CompletedProcess:
    w = deployment.workdir
    return run(deployment, "activate", f"--outdir={w / 'cdktf.out'}", f"--outputs-dir={w}",
               f"--records-dir={w / 'activations'}")


@pytest.fixture(scope="module")
def acme(emulator, enforcement, customers, settings, tmp_path_factory):
    """acme bootstrapped, then activated through the deploy role with moto's access control on."""
    emulator.reset()
    deployment, template = bootstrapped(emulator, customers["acme"], settings, tmp_path_factory.mktemp("acme"))
    enforcement(True)
    try:
        done = activate(deployment)
    finally:
        enforcement(False)
    return deployment, template, done


def test_the_created_role_is_the_templates(emulator, acme):
    deployment, template, _ = acme
    c = deployment.customer
    iam = emulator.client("iam", c.account_id, c.region)
    role = iam.get_role(RoleName=DEPLOY_ROLE)["Role"]
    properties = template["Resources"]["DeployRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"] == properties["AssumeRolePolicyDocument"]
    assert iam.list_role_policies(RoleName=DEPLOY_ROLE)["PolicyNames"] == [bootstrap.POLICY_NAME]
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {"customer": c.name, "managed-by": bootstrap.MANAGER}


def test_activation_through_the_bootstrap_role_passes_with_access_control_on(acme):
    deployment, _, done = acme
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("preflight", "deploy", "verify"):
        assert f"\n{step}: ok in " in done.stdout
    assert "bootstrap role" in done.stdout and f"{DEPLOY_ROLE} grants all" in done.stdout
    record = json.loads((deployment.workdir / "activations" / "acme.json").read_text())
    checks = {row["check"]: row["status"] for row in record["checks"] if row["step"] == "preflight"}
    assert checks["cloudformation"] == "PASS"  # the bootstrap's own stack is expected
    # its permissions are the bootstrap's, compared with the stack's needs; a simulation on `*` would deny the scoped
    assert checks["bootstrap role"] == "PASS" and "permissions" not in checks


def test_without_one_needed_action_preflight_names_it_and_a_deploy_is_denied(emulator, enforcement, acme):
    deployment, template, done = acme
    assert done.returncode == 0
    c, removed = deployment.customer, "iam:ListAttachedRolePolicies"  # a refresh of the role reads it
    policy = template["Resources"]["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != removed]
    emulator.client("iam", c.account_id, c.region).put_role_policy(
        RoleName=DEPLOY_ROLE, PolicyName=bootstrap.POLICY_NAME, PolicyDocument=json.dumps(policy))
    enforcement(True)
    try:
        checked = run(deployment, "preflight")
        deployed = run(deployment, "deploy", f"--outdir={deployment.workdir / 'cdktf.out'}",
                       f"--outputs-dir={deployment.workdir}")
    finally:
        enforcement(False)
    assert checked.returncode == 1
    assert f"re-run the bootstrap: {DEPLOY_ROLE} lacks 1 action(s) the stack now needs: {removed}" in checked.stdout
    assert deployed.returncode != 0  # terraform's SDK reads moto's denial as a 403 "UnknownError"
    denied = f"operation error IAM: {removed.split(':')[1]}, https response error StatusCode: 403"
    assert denied in deployed.stdout + deployed.stderr, deployed.stdout + deployed.stderr


def test_a_peering_customer_activates_through_its_bootstrap_role(emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = bootstrapped(emulator, customers["globex"], settings, tmp_path)[0]
    done = activate(deployment)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{DEPLOY_ROLE} grants all" in done.stdout
