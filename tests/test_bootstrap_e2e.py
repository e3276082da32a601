"""The customer's bootstrap against the emulator (`tests/bootstrap_lifecycle.py` says how): acme (role only) and
globex-network (globex's network without its peering) through their lifecycle with moto's IAM access control on, acme
also without one action; globex (with its cross-account peering) activated without access control.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from dataplane.config.customer import load_customer
from dataplane.ops.account import bootstrap
from dataplane.ops.sandbox import toml_text
from dataplane.project import PROJECT_ROOT
from tests.bootstrap_lifecycle import (
    DEPLOY_ROLE,
    GRANTED_UNUSED,
    REMOVED,
    Lifecycle,
    activate,
    access_control,
    activation_passed,
    bootstrapped,
    every_granted_action_allowed,
    lifecycle_passed,
    live,
    run,
)
from tests.conftest import SUMMARY

pytestmark = pytest.mark.deploys  # the tests parametrized by customer reach the emulator through `getfixturevalue`


@pytest.fixture(scope="module")
def acme(emulator, customers, settings, tmp_path_factory) -> Lifecycle:
    """acme (role only) through its lifecycle; after its activation, a preflight and a deploy without one action the
    stack needs (`REMOVED`), the full policy put back after them."""

    with access_control() as enforcement:
        def without_one_action(life: Lifecycle) -> None:
            d = life.deployment
            iam = emulator.client("iam", d.customer.account_id, d.customer.region)
            policy = json.loads(json.dumps(life.policy))
            for statement in policy["Statement"]:
                statement["Action"] = [a for a in statement["Action"] if a != REMOVED]
            iam.put_role_policy(RoleName=DEPLOY_ROLE, PolicyName=bootstrap.POLICY_NAME,
                                PolicyDocument=json.dumps(policy))
            life.step(enforcement, "preflight without one", lambda: run(d, "preflight"))
            life.step(enforcement, "deploy without one", lambda: run(
                d, "deploy", f"--outdir={d.workdir / 'cdktf.out'}", f"--outputs-dir={d.workdir}"))
            iam.put_role_policy(RoleName=DEPLOY_ROLE, PolicyName=bootstrap.POLICY_NAME,
                                PolicyDocument=json.dumps(life.policy))

        return live(emulator, enforcement, customers["acme"], settings, tmp_path_factory.mktemp("acme"),
                    without_one_action)


@pytest.fixture(scope="module")
def network(emulator, customers, settings, tmp_path_factory) -> Lifecycle:
    """globex's data-plane network without its peering (`globex-network`, network only) through its lifecycle."""
    data = tomllib.loads((PROJECT_ROOT / customers["globex"].source).read_text())
    del data["peering"]
    source = tmp_path_factory.mktemp("network-file") / "globex-network.toml"
    source.write_text(toml_text(data))
    customer = load_customer(source, settings.control_plane_account_id)
    with access_control() as enforcement:
        return live(emulator, enforcement, customer, settings, tmp_path_factory.mktemp("network"))


def test_the_created_role_is_the_templates(acme):
    role, properties = acme.created, acme.template["Resources"]["DeployRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"] == properties["AssumeRolePolicyDocument"]
    assert role["policies"] == [bootstrap.POLICY_NAME]
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == {"customer": "acme", "managed-by": bootstrap.MANAGER}


@pytest.mark.parametrize("kind", ["acme", "network"])
def test_activation_through_the_bootstrap_role_passes_with_access_control_on(kind, request):
    activation_passed(request.getfixturevalue(kind))


def test_without_one_needed_action_preflight_names_it_and_a_deploy_is_denied(acme):
    checked, deployed = acme.runs["preflight without one"], acme.runs["deploy without one"]
    assert checked.returncode == 1
    assert f"re-run the bootstrap: {DEPLOY_ROLE} lacks 1 action(s) the stack now needs: {REMOVED}" in checked.stdout
    assert deployed.returncode != 0  # terraform's SDK reads moto's denial as a 403 "UnknownError"
    denied = f"operation error IAM: {REMOVED.split(':')[1]}, https response error StatusCode: 403"
    assert denied in deployed.stdout + deployed.stderr, deployed.stdout + deployed.stderr


@pytest.mark.parametrize("kind", ["acme", "network"])
def test_the_lifecycle_passes_through_the_bootstrap_role_with_access_control_on(kind, request):
    lifecycle_passed(request.getfixturevalue(kind))


@pytest.mark.parametrize("kind", ["acme", "network"])
def test_every_action_the_bootstrap_grants_is_one_moto_allowed_the_deploy_role(kind, request):
    every_granted_action_allowed(request.getfixturevalue(kind), GRANTED_UNUSED["role only"],
                                 request.config.stash.setdefault(SUMMARY, []))


def test_a_peering_customer_activates_through_its_bootstrap_role(emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = bootstrapped(emulator, customers["globex"], settings, tmp_path)[0]
    done = activate(deployment)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{DEPLOY_ROLE} grants all" in done.stdout
