"""The customer's bootstrap: the deploy role's template derived from each fixture stack, linted by cfn-lint; every
action real, every change scoped; the command's bad input refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import botocore.session
import parliament
import pytest

from constructs_lib import facts
from dataplane.config.settings import load_project
from dataplane.ops.account import bootstrap
from dataplane.ops.fleet import adopt
from dataplane.policy import INLINE_POLICIES_QUOTA
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from tests.conftest import EXTRA_FIXTURES, FIXTURES, run_main, stack_json

DEPLOYER = "arn:aws:iam::999988887777:role/ci-apply"
BOOTSTRAP = {"deployRoleName": "dataplane-deploy", "deployerPrincipalArn": DEPLOYER}
SERVICES = {"servicequotas": "service-quotas"}
"""IAM prefixes whose botocore service has another name."""
IAM_ONLY = {
    "s3:ListBucket": "HeadBucket", "s3:ListAllMyBuckets": "ListBuckets", "s3:GetBucketCORS": "GetBucketCors",
    "s3:PutEncryptionConfiguration": "PutBucketEncryption", "s3:GetEncryptionConfiguration": "GetBucketEncryption",
    "s3:PutLifecycleConfiguration": "PutBucketLifecycleConfiguration",
    "s3:GetLifecycleConfiguration": "GetBucketLifecycleConfiguration",
    "s3:PutReplicationConfiguration": "PutBucketReplication", "s3:GetReplicationConfiguration": "GetBucketReplication",
    "s3:PutBucketNotification": "PutBucketNotificationConfiguration",
    "s3:GetBucketNotification": "GetBucketNotificationConfiguration",
    "s3:PutBucketPublicAccessBlock": "PutPublicAccessBlock", "s3:GetBucketPublicAccessBlock": "GetPublicAccessBlock",
    "s3:GetAccelerateConfiguration": "GetBucketAccelerateConfiguration",
    "s3:GetBucketObjectLockConfiguration": "GetObjectLockConfiguration", "iam:PassRole": None,
}
"""IAM actions that are not an API operation of the same name: the operation they authorize (None: no operation)."""


@pytest.fixture(scope="module")
def stacks(synthesized, tmp_path_factory) -> dict[str, dict]:
    """Every fixture customer's synthesized stack."""
    extra = tmp_path_factory.mktemp("extra") / "cdktf.out"
    assert run_main(extra, **{CUSTOMERS_DIR_ENV: str(EXTRA_FIXTURES)}).returncode == 0
    return {**{name: stack_json(synthesized, name) for name in ("acme", "globex")},
            **{name: stack_json(extra, name) for name in ("hooli", "initech")}}


@pytest.fixture(scope="module")
def fleet(settings):
    customers = {c.name: c for d in (FIXTURES, EXTRA_FIXTURES) for c in load_project(customers_dir=d)[1]}
    return settings.model_copy(update={"deploy_role_name": "dataplane-deploy", "deployer_principal_arn": DEPLOYER}), \
        customers


@pytest.fixture(scope="module")
def templates(stacks, fleet) -> dict[str, dict]:
    settings, customers = fleet
    return {name: bootstrap.template(stack, settings, customers[name]) for name, stack in stacks.items()}


def policy_of(template: dict) -> dict:
    return template["Resources"]["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]


def test_cfn_lint_passes_every_template(templates, tmp_path):
    paths = []
    for name, template in templates.items():
        paths.append(tmp_path / f"{name}.cfn.json")
        paths[-1].write_text(bootstrap.render(template))
    done = subprocess.run([Path(sys.executable).parent / "cfn-lint", *map(str, paths)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_granted_action_is_an_operation_of_its_service(templates):
    session = botocore.session.get_session()
    for template in templates.values():
        for action in bootstrap.granted_actions(policy_of(template)):
            prefix, name = action.split(":")
            operation = IAM_ONLY.get(action, name)
            if operation is not None:
                model = session.get_service_model(SERVICES.get(prefix, prefix))
                assert operation in model.operation_names, action


def iam_privileges() -> dict[str, set[str]]:
    """parliament's copy of AWS's service authorization reference: every IAM action, with the condition keys IAM
    supplies for it (its own, and those of the resource types it acts on)."""
    definitions = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    privileges = {}
    for service in definitions:
        resources = {r["resource"]: set(r["condition_keys"]) for r in service["resources"]}
        for p in service["privileges"]:
            privileges[f"{service['prefix']}:{p['privilege']}"] = {
                k for r in p["resource_types"] for k in r["condition_keys"] + sorted(
                    resources.get(r["resource_type"].rstrip("*"), ()))}
    return privileges


def test_the_mapping_of_iam_actions_to_operations_is_real():
    privileges = iam_privileges()
    assert [action for action in IAM_ONLY if action not in privileges] == []


def test_granted_actions_are_iam_actions_and_their_conditions_apply(templates):
    """A tag condition is on a key IAM supplies for some resource type of each action it guards."""
    privileges = iam_privileges()
    for name, template in templates.items():
        for statement in policy_of(template)["Statement"]:
            for action in statement["Action"]:
                assert action in privileges, (name, action)
                keys = privileges[action]
                for key in (k for op in statement.get("Condition", {}).values() for k in op):
                    generic = key.split("/")[0] + "/${TagKey}" if "Tag/" in key else key
                    assert generic in keys or key.startswith("iam:PassedToService"), (name, action, key)


def test_no_wildcard_action_no_iam_star_no_pass_role_on_star_and_changes_scoped(templates):
    for name, template in templates.items():
        for statement in policy_of(template)["Statement"]:
            assert statement["Effect"] == "Allow" and "NotAction" not in statement
            for action in statement["Action"]:
                assert "*" not in action, (name, action)
                if "*" in statement["Resource"] and not bootstrap.is_read(action):
                    assert "Condition" in statement, (name, action)  # changes on * only by ownership tags
                if action.startswith("iam:") and not bootstrap.is_read(action):
                    assert all(r.startswith("arn:aws:iam::") for r in statement["Resource"]), (name, action)


def test_the_policy_fits_iam_and_is_derived_from_what_each_stack_holds(templates, stacks):
    sizes = {name: bootstrap.policy_size(policy_of(t)) for name, t in templates.items()}
    assert all(size <= INLINE_POLICIES_QUOTA for size in sizes.values()), sizes
    actions = {name: bootstrap.granted_actions(policy_of(t)) for name, t in templates.items()}
    assert "ec2:CreateVpc" not in actions["acme"] and "ec2:CreateVpc" in actions["globex"]
    assert "cloudtrail:CreateTrail" in actions["hooli"] and "cloudtrail:CreateTrail" not in actions["globex"]
    assert not any(a.startswith("cloudformation:Create") for a in set().union(*actions.values()))
    globex = bootstrap.stack_needs(stacks["globex"])
    assert globex.assumed_roles == {"arn:aws:iam::111122223333:role/peering-accepter"}
    assert "aws_vpc_peering_connection_accepter" not in globex.types  # the accepter role accepts, not this one


def test_with_the_s3_backend_the_role_reads_and_writes_only_this_stack_s_state_and_lock(stacks):
    """terraform's S3 backend runs with the deploy role's credentials: its state object and lock file, by key."""
    stack = json.loads(json.dumps(stacks["acme"]))
    stack["terraform"]["backend"] = {"s3": {"bucket": "vendor-state", "key": "dataplane/acme.tfstate",
                                            "region": "us-east-1", "encrypt": True, "use_lockfile": True}}
    statements = bootstrap.permissions(bootstrap.stack_needs(stack))["Statement"]
    state = [s for s in statements if s["Sid"].startswith("State")]
    key = "arn:aws:s3:::vendor-state/dataplane/acme.tfstate"
    granted = {(action, resource) for s in state for action in s["Action"] for resource in s["Resource"]}
    assert ("s3:ListBucket", "arn:aws:s3:::vendor-state") in granted
    assert {("s3:GetObject", key), ("s3:PutObject", key), ("s3:PutObject", f"{key}.tflock"),
            ("s3:DeleteObject", f"{key}.tflock")} <= granted
    assert ("s3:DeleteObject", key) not in granted and not any(r.endswith("/*") for _, r in granted)
    assert not [s for s in bootstrap.permissions(bootstrap.stack_needs(stacks["acme"]))["Statement"]
                if s["Sid"].startswith("State")], "the local backend needs no grant"
    # preflight compares the live role with these: a role without the state's grant is named as lacking it
    state_actions = bootstrap.needed_actions(stack) - bootstrap.needed_actions(stacks["acme"])
    assert {"s3:GetObject", "s3:PutObject"} <= state_actions


def test_the_delegation_boundary_s_reads_are_granted_only_to_a_guarded_stack(stacks, tmp_path):
    """verify reads the boundary's policy only when the role guards with one (`delegationBoundary`)."""
    project = tmp_path / "cdktf.json"
    context = json.loads((PROJECT_ROOT / "cdktf.json").read_text())["context"]
    project.write_text(json.dumps({"context": {**context, "delegationBoundary": "boundaries/DataPlane"}}))
    assert run_main(tmp_path / "cdktf.out", **{SETTINGS_ENV: str(project)}).returncode == 0
    guarded = bootstrap.stack_needs(stack_json(tmp_path / "cdktf.out", "acme"))
    assert guarded.guarded and set(bootstrap.GUARD_READS) <= set(guarded.actions)
    assert not set(bootstrap.GUARD_READS) & set(bootstrap.stack_needs(stacks["acme"]).actions)


def test_every_resource_type_of_the_facts_has_its_lifecycle_and_every_action_is_scoped(stacks):
    assert set(bootstrap.LIFECYCLE) == {fact.type for fact in facts.ALL}
    for stack in stacks.values():
        bootstrap.permissions(bootstrap.stack_needs(stack))  # raises for an action no rule scopes


def test_adopts_lookups_are_granted():
    calls = {"ec2:" + "".join(w.capitalize() for w in method.split("_")) for _, method, _, _ in adopt.TAGGED}
    assert calls <= set(bootstrap.COMMANDS)


def test_trust_is_the_deployer_with_the_external_ids_and_optional_conditions(fleet, stacks):
    settings, customers = fleet
    strict = settings.model_copy(update={"deployer_principal_org_id": "o-abcdefghij", "deployer_requires_mfa": True})
    [statement] = bootstrap.trust(strict, customers["initech"])["Statement"]
    assert statement["Principal"] == {"AWS": DEPLOYER} and statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": list(customers["initech"].external_id),
                                                       "aws:PrincipalOrgID": "o-abcdefghij"},
                                      "Bool": {"aws:MultiFactorAuthPresent": "true"}}


def test_output_is_deterministic(templates, stacks, fleet):
    settings, customers = fleet
    again = bootstrap.template(json.loads(json.dumps(stacks["hooli"])), settings, customers["hooli"])
    assert bootstrap.render(again) == bootstrap.render(templates["hooli"])


def cli(tmp_path: Path, *args: str, **context) -> subprocess.CompletedProcess:
    project = tmp_path / "cdktf.json"
    base = json.loads((PROJECT_ROOT / "cdktf.json").read_text())["context"]
    project.write_text(json.dumps({"context": {**base, **context}}))
    return subprocess.run([sys.executable, "-m", "dataplane", "bootstrap", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, CUSTOMERS_DIR_ENV: str(FIXTURES), SETTINGS_ENV: str(project)})


def test_the_command_writes_the_template_and_the_customers_page(tmp_path):
    done = cli(tmp_path, "globex", f"--out={tmp_path / 'out'}", **BOOTSTRAP)
    assert done.returncode == 0, done.stderr
    template = json.loads((tmp_path / "out" / "globex.cfn.json").read_text())
    page = (tmp_path / "out" / "globex.md").read_text()
    assert template["Resources"]["DeployRole"]["Properties"]["RoleName"] == "dataplane-deploy"
    for part in ("aws cloudformation deploy --template-file globex.cfn.json --stack-name dataplane-bootstrap",
                 "CAPABILITY_NAMED_IAM", "aws iam get-role --role-name dataplane-deploy",
                 "aws cloudformation delete-stack --stack-name dataplane-bootstrap", DEPLOYER, "astro-8d41a6c0",
                 "the role the Astro control plane assumes"):
        assert part in page


@pytest.mark.parametrize("args, context, message", [
    (["nobody"], BOOTSTRAP, "no customer 'nobody'; known: acme, globex"),
    (["acme", "--out=/etc/hostname"], BOOTSTRAP, "bootstrap: --out '/etc/hostname': not a directory"),
    (["acme"], {}, "bootstrap acme: set deployRoleName and deployerPrincipalArn in cdktf.json first"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, context, message):
    done = cli(tmp_path, *args, **context)
    assert done.returncode == 2 and done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
