"""The customer's bootstrap against the emulator, for `test_bootstrap_e2e` and `test_bootstrap_alarm_e2e`: the
template launched through moto's CloudFormation in a fresh customer account, then the vendor's deployer (an IAM user of
the vendor's account) runs the tool, which assumes the created role.

acme (role only), globex-network (globex's network without its peering) and hooli (the tamper alarm) each go through
their whole lifecycle with moto's IAM access control on (`access_control`, `live`): activate, a drift made outside
Terraform found by `drift` and repaired by a deploy, destroy. Each passes; and after acme's activation, without one
action the stack needs, preflight names it and a deploy fails with AccessDenied. globex (network and cross-account
peering) is activated without it: moto compares an assumed role's session ARN with a trust's principal as a plain
string, so the accepter role's account-root trust refuses the deploy role's session under enforcement.

Removing any one action fails a command: moto checks each request's action against the deploy role's policy, so every
action it allowed the role's sessions over the lifecycle (recorded, by IAM's name) would have been denied without it;
the test asserts that this is every action the bootstrap grants, but for those listed with their reason
(`NOT_EVALUATED`, `GRANTED_UNUSED`). One real removal (`REMOVED`) shows the mechanism end to end.

What moto's enforcement does not check, and how it is covered instead:
- the conditions of an identity policy (moto has no request context for them and treats each as met: the
  `aws:RequestTag`/`aws:ResourceTag` of the EC2 and KMS grants, `iam:PassedToService`): the unit tests of `bootstrap`
  check each statement's condition; `test_the_alarm_passes_only_the_roles_the_bootstrap_lets_it` checks each role
  passed goes to the service it trusts;
- resources where moto does not know the request's (it passes `*`, which `access_control` lets match any `Resource`;
  IAM's and S3's are checked by ARN here): the unit tests check the ARNs the grants name;
- actions IAM authorizes inside another call (`iam:PassRole`, tagging on create): `NOT_EVALUATED`, and the drift's
  changed tags make the tagging actions explicit calls, which moto checks.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qs

import pytest

from dataplane.ops.account import bootstrap
from dataplane.ops.sandbox import launch_bootstrap
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from tests.conftest import run_main
from tests.deploy import Deployment, stage


VENDOR_ACCOUNT = "999988887777"
DEPLOY_ROLE = "dataplane-deploy"
DEPLOYER = f"arn:aws:iam::{VENDOR_ACCOUNT}:user/deployer"
S3_ACTIONS = {"s3:HeadBucket": "s3:ListBucket", "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
              "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock"}
"""moto's names for S3 requests that IAM authorizes as another action."""
S3_SUBRESOURCES = {
    "accelerate": ("s3:GetAccelerateConfiguration", "s3:PutAccelerateConfiguration", None),
    "acl": ("s3:GetBucketAcl", "s3:PutBucketAcl", None),
    "cors": ("s3:GetBucketCORS", "s3:PutBucketCORS", "s3:PutBucketCORS"),
    "encryption": ("s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration", "s3:PutEncryptionConfiguration"),
    "lifecycle": ("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    "location": ("s3:GetBucketLocation", None, None),
    "logging": ("s3:GetBucketLogging", "s3:PutBucketLogging", None),
    "notification": ("s3:GetBucketNotification", "s3:PutBucketNotification", None),
    "object-lock": ("s3:GetBucketObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration", None),
    "ownershipControls": ("s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls",
                          "s3:PutBucketOwnershipControls"),
    "policy": ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
    "policyStatus": ("s3:GetBucketPolicyStatus", None, None),
    "publicAccessBlock": ("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
                          "s3:PutBucketPublicAccessBlock"),
    "replication": ("s3:GetReplicationConfiguration", "s3:PutReplicationConfiguration",
                    "s3:PutReplicationConfiguration"),
    "requestPayment": ("s3:GetBucketRequestPayment", "s3:PutBucketRequestPayment", None),
    "tagging": ("s3:GetBucketTagging", "s3:PutBucketTagging", "s3:PutBucketTagging"),
    "uploads": ("s3:ListBucketMultipartUploads", None, None),
    "versioning": ("s3:GetBucketVersioning", "s3:PutBucketVersioning", None),
    "versions": ("s3:ListBucketVersions", None, None),
    "website": ("s3:GetBucketWebsite", "s3:PutBucketWebsite", "s3:DeleteBucketWebsite"),
}
"""A bucket's subresources (the request's query) and the IAM action of a GET, PUT and DELETE of each: moto names
those it does not map (encryption, replication, ownership controls, ...) as listing or creating the bucket."""
REMOVED = "iam:ListAttachedRolePolicies"
"""The action the deploy role is run without, once: a refresh of the role reads it."""
NOT_EVALUATED = {"iam:PassRole"}
"""Actions moto never evaluates: IAM authorizes passing a role inside the call that passes it (CloudTrail's
CreateTrail, S3's PutBucketReplication), moto only the call (what was passed:
`test_the_alarm_passes_only_the_roles_the_bootstrap_lets_it`)."""
GRANTED_UNUSED = {
    "role only": set(),
    "tamper alarm": {
        "cloudtrail:GetTrail", "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors",  # the provider
        "cloudtrail:PutEventSelectors",  # reads with DescribeTrails; the trail has no event or insight selectors
        "cloudtrail:StopLogging",  # the stack never turns logging off; a destroy deletes the trail
        "logs:DeleteRetentionPolicy",  # the log group always has a retention: an update puts it back
        "s3:GetBucketLocation", "s3:GetBucketOwnershipControls",  # no read of the provider asks them
        "s3:DeleteBucket", "s3:DeleteBucketPolicy",  # offboarding keeps the audit-log buckets and their policies
    },
}
"""Actions the bootstrap grants that no command of the lifecycle (`live`) asked of moto, each with its reason: reads
the aws provider makes in AWS but not against moto, and changes the lifecycle does not make (a trail's logging
stopped, the alarm removed from a live stack). Listed so that the test fails when the derivation changes either
way."""
NO_PERMISSION = {"sts:GetCallerIdentity"}
"""Actions IAM never denies (moto allows them before it reads a policy)."""


def s3_action(method: str, path: str, named: str) -> str:
    """IAM's action for an S3 request (path-style, as the tool's clients send to an endpoint) that moto names
    `named`."""
    where, _, query = path.partition("?")
    if where.strip("/") and "/" not in where.strip("/"):  # the bucket itself, not one of its objects
        for subresource in parse_qs(query, keep_blank_values=True):
            actions = dict(zip(("GET", "PUT", "DELETE"), S3_SUBRESOURCES.get(subresource, ())))
            if actions.get(method):
                return actions[method]
    return S3_ACTIONS.get(named, named)


class Enforcement:
    """moto's IAM access control in the module's emulator: `enforcement(True)` switches it on, `(False)` off.
    `allowed` collects, while it is on, every action (IAM's name) it allowed a session of the deploy role."""

    def __init__(self, patch: pytest.MonkeyPatch):
        self._patch = patch
        self.allowed: set[str] = set()

    def __call__(self, on: bool) -> None:  # the emulator's server runs in this process
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        self._patch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0 if on else float("inf"))
        self._patch.setattr(ActionAuthenticatorMixin, "request_count", 0)

    def take(self) -> set[str]:
        """The actions allowed since the last call."""
        allowed, self.allowed = self.allowed, set()
        return allowed


@contextlib.contextmanager
def access_control() -> Iterator[Enforcement]:
    """moto's IAM access control (`INITIAL_NO_AUTH_ACTION_COUNT`), switched on and off in the module's emulator (its
    server runs in this process).

    moto evaluates identity policies' actions, and resources only where it knows the request's resource (an IAM
    role's ARN, an S3 bucket's; elsewhere it passes `*`); it treats every condition as met. Two corrections make its
    check the policy's, not its own gaps: a request whose resource moto does not know matches any `Resource` (real
    IAM compares the created or addressed resource's ARN, which the unit tests check), and moto's S3 names are
    translated to IAM's (`s3_action`). Every action it allows the deploy role's sessions is recorded (`Enforcement`).
    """
    from moto.iam import access_control

    matches, create = access_control.IAMPolicyStatement._check_element_matches, access_control.IAMRequestBase.__init__
    permitted = access_control.IAMRequestBase.check_action_permitted

    def known_resources(statement, element, value):
        return (element == "Resource" and value == "*") or matches(statement, element, value)

    def iam_names(request, *args, **kwargs):
        create(request, *args, **kwargs)
        if isinstance(request, access_control.S3IAMRequest):
            request._action = s3_action(request._method, request._path, request._action)

    def recorded(request, resource):
        permitted(request, resource)  # raises moto's AccessDenied
        key = request._access_key
        if (isinstance(key, access_control.AssumedRoleAccessKey) and key._owner_role_name == DEPLOY_ROLE
                and request._action not in NO_PERMISSION):
            switch.allowed.add(request._action)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(access_control.IAMPolicyStatement, "_check_element_matches", known_resources)
        patch.setattr(access_control.IAMRequestBase, "__init__", iam_names)
        patch.setattr(access_control.IAMRequestBase, "check_action_permitted", recorded)
        switch = Enforcement(patch)
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


def destroy(deployment: Deployment) -> subprocess.CompletedProcess:
    w = deployment.workdir
    return run(deployment, "destroy", "--yes", f"--outdir={w / 'cdktf.out'}", f"--outputs-dir={w}",
               f"--records-dir={w / 'activations'}")


@dataclass
class Lifecycle:
    """A customer bootstrapped, then taken by the vendor's deployer through the commands the deploy role serves, with
    moto's access control on: each command's run, and the actions moto allowed the deploy role's sessions in it."""

    deployment: Deployment
    template: dict
    runs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    allowed: dict[str, set[str]] = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    """The activation record as activate wrote it."""
    state: dict = field(default_factory=dict)
    """The Terraform state as activate left it."""
    created: dict = field(default_factory=dict)
    """The deploy role the bootstrap created (`GetRole`), and its inline policies' names (`policies`)."""

    @property
    def policy(self) -> dict:
        return self.template["Resources"]["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]

    def step(self, enforcement: Enforcement, name: str, command: Callable[[], subprocess.CompletedProcess]):
        enforcement.take()
        enforcement(True)
        try:
            done = command()
        finally:
            enforcement(False)
        self.runs[name], self.allowed[name] = done, enforcement.take()
        return done


def live(emulator, enforcement, customer, settings, workdir: Path,
         meanwhile: Callable[[Lifecycle], None] = lambda life: None) -> Lifecycle:
    """`customer` bootstrapped, activated, `meanwhile` (with access control on or off, as it chooses), then changed
    outside Terraform (`drift_outside`), its drift found, repaired by a deploy, and destroyed: every command the deploy
    role serves, and every kind of call terraform makes (create, read, update, delete)."""
    emulator.reset()
    life = Lifecycle(*bootstrapped(emulator, customer, settings, workdir))
    d, iam = life.deployment, emulator.client("iam", customer.account_id, customer.region)
    life.created = {**iam.get_role(RoleName=DEPLOY_ROLE)["Role"],
                    "policies": iam.list_role_policies(RoleName=DEPLOY_ROLE)["PolicyNames"]}
    life.step(enforcement, "activate", lambda: activate(d))
    if life.runs["activate"].returncode == 0:
        life.record = json.loads((workdir / "activations" / f"{customer.name}.json").read_text())
        life.state = json.loads(d.state_file.read_text())
        meanwhile(life)
        drift_outside(emulator, d)
        synthesized = run_main(workdir / "cdktf.out", **{k: d.env[k] for k in (CUSTOMERS_DIR_ENV, SETTINGS_ENV)})
        assert synthesized.returncode == 0, synthesized.stderr
        life.step(enforcement, "drift", lambda: run(d, "drift", f"--outdir={workdir / 'cdktf.out'}"))
        life.step(enforcement, "repair", lambda: run(d, "deploy", f"--outdir={workdir / 'cdktf.out'}",
                                                     f"--outputs-dir={workdir}"))
        life.step(enforcement, "destroy", lambda: destroy(d))
    return life


LIFECYCLE = ("activate", "drift", "repair", "destroy")
"""The steps of `live` whose requests prove the policy (not acme's runs without one action)."""


DRIFTED = {"customer": "drifted", "drift": "outside"}
"""Tags set on every resource outside Terraform: one of the stack's changed, one added, so that the repair tags and
untags. (In AWS the `aws:ResourceTag` conditions would refuse the repair of a changed ownership tag of an EC2 resource
or a KMS key, by design; the tagging actions are needed anyway, to tag those resources as they are created.)"""


def drift_outside(emulator, deployment: Deployment) -> None:
    """Change, as the account's administrator, what only an update repairs, on every resource of the state that can
    be: its tags (`DRIFTED`); a role's session duration, description and trust; a key's description and policy; a log
    group's retention; a trail's log file validation and logging."""
    c = deployment.customer
    pairs = [{"Key": k, "Value": v} for k, v in DRIFTED.items()]
    for resource in json.loads(deployment.state_file.read_text())["resources"]:
        attributes = resource["instances"][0]["attributes"]
        arn = attributes.get("arn", "")
        client = partial(emulator.client, account_id=c.account_id, region=(arn.split(":") + [""] * 4)[3] or c.region)
        if resource["type"] == "aws_iam_role":
            name, iam = attributes["name"], client("iam")
            iam.tag_role(RoleName=name, Tags=pairs)
            iam.update_role(RoleName=name, MaxSessionDuration=attributes["max_session_duration"] + 3600,
                            Description="drifted")
            trust = json.loads(attributes["assume_role_policy"])
            trust["Statement"][0]["Sid"] = "Drifted"
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        elif resource["type"] == "aws_kms_key":
            kms, key = client("kms"), attributes["key_id"]
            kms.tag_resource(KeyId=key, Tags=[{"TagKey": k, "TagValue": v} for k, v in DRIFTED.items()])
            kms.update_key_description(KeyId=key, Description="drifted")
            policy = json.loads(attributes["policy"])
            policy["Statement"][0]["Sid"] = "Drifted"
            kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
        elif resource["type"] == "aws_cloudwatch_log_group":
            logs = client("logs")
            logs.tag_resource(resourceArn=arn, tags=DRIFTED)
            logs.put_retention_policy(logGroupName=attributes["name"], retentionInDays=1)
        elif resource["type"] == "aws_sns_topic":
            client("sns").tag_resource(ResourceArn=arn, Tags=pairs)
        elif resource["type"] == "aws_cloudwatch_event_rule":
            client("events").tag_resource(ResourceARN=arn, Tags=pairs)
        elif resource["type"] in ("aws_vpc", "aws_subnet", "aws_route_table", "aws_default_security_group"):
            ec2 = client("ec2")
            ec2.create_tags(Resources=[attributes["id"]], Tags=pairs)
            if resource["type"] == "aws_vpc":
                ec2.modify_vpc_attribute(VpcId=attributes["id"],
                                         EnableDnsHostnames={"Value": not attributes["enable_dns_hostnames"]})
            if resource["type"] == "aws_default_security_group":
                ec2.authorize_security_group_ingress(GroupId=attributes["id"], IpPermissions=[{
                    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
                ec2.authorize_security_group_egress(GroupId=attributes["id"], IpPermissions=[{
                    "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        elif resource["type"] == "aws_cloudtrail":
            trail = client("cloudtrail")
            trail.add_tags(ResourceId=arn, TagsList=pairs)
            trail.update_trail(Name=arn, EnableLogFileValidation=not attributes["enable_log_file_validation"])
            trail.stop_logging(Name=arn)


def activation_passed(life: Lifecycle) -> None:
    """activate passed through the bootstrap role, preflight relying on the `bootstrap role` row."""
    done = life.runs["activate"]
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("preflight", "deploy", "verify"):
        assert f"\n{step}: ok in " in done.stdout
    assert f"PASS  bootstrap role  {DEPLOY_ROLE} grants all" in done.stdout
    checks = {row["check"]: row["status"] for row in life.record["checks"] if row["step"] == "preflight"}
    assert checks["cloudformation"] == "PASS"  # the bootstrap's own stack is expected
    # its permissions are the bootstrap's, compared with the stack's needs; a simulation on `*` would deny the scoped
    assert checks["bootstrap role"] == "PASS" and "permissions" not in checks


def lifecycle_passed(life: Lifecycle) -> None:
    """The drift made outside Terraform found, repaired by a deploy, the stack destroyed."""
    assert life.runs["activate"].returncode == 0
    drift, repair, gone = life.runs["drift"], life.runs["repair"], life.runs["destroy"]
    assert drift.returncode == 2, drift.stdout + drift.stderr  # drift found: what `drift_outside` changed
    assert repair.returncode == 0 and " 0 added, " in repair.stdout and " 0 destroyed" in repair.stdout, (
        repair.stdout + repair.stderr)
    assert gone.returncode == 0, gone.stdout + gone.stderr


def every_granted_action_allowed(life: Lifecycle, unused: set[str], stash: list[str]) -> None:
    """moto checks each request's action against the deploy role's policy, so an action it allowed would have been
    denied without it: every granted action allowed over the lifecycle (but `NOT_EVALUATED` and the `unused` listed)
    means removing any one fails a command. The counts go to `stash` (the run's summary)."""
    failed = [step for step in LIFECYCLE if step not in life.runs or life.runs[step].returncode not in (0, 2)]
    assert not failed, f"{failed} failed (test_the_lifecycle_passes_...): the lifecycle did not run whole"
    allowed = set().union(*(life.allowed[step] for step in LIFECYCLE))
    granted = bootstrap.granted_actions(life.policy)
    stash.append(f"bootstrap e2e: {life.deployment.customer.name}: {len(granted)} actions granted, {len(allowed)} "
                 "requested over the lifecycle (" + ", ".join(f"{step} {len(life.allowed[step])}"
                                                             for step in LIFECYCLE) + ")")
    assert allowed <= granted
    assert sorted(granted - allowed) == sorted(NOT_EVALUATED & granted | unused)
