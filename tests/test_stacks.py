"""The synthesized customer stacks, as `make synth` writes them, and the stack's own wiring."""

from __future__ import annotations

import json
import re

import pytest
from cdktf import Testing

from dataplane.config.customer import Customer, TamperAlarm
from dataplane.config.settings import Settings
from dataplane.policy import guard_of, ownership_tags
from dataplane.project import CUSTOMERS_DIR_ENV, SETTINGS_ENV
from dataplane.tamper import role_change_pattern
from stacks import DataPlaneStack
from tests.conftest import EXTRA_FIXTURES, run_main, stack_json
from tests.snapshot import StackSnapshot, readable

EXAMPLES = ["acme", "globex"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_snapshot(synthesized, snapshot, name):
    assert readable(stack_json(synthesized, name)) == snapshot(extension_class=StackSnapshot)


def test_only_the_example_stacks_are_synthesized(synthesized):
    assert sorted(p.name for p in (synthesized / "stacks").iterdir()) == EXAMPLES


def test_provider_pins_the_customer_account_and_region(synthesized, customers):
    for name in EXAMPLES:
        [provider] = [p for p in stack_json(synthesized, name)["provider"]["aws"] if "alias" not in p]
        assert provider["allowed_account_ids"] == [customers[name].account_id]
        assert provider["region"] == customers[name].region
        assert provider["default_tags"] == [{"tags": {"customer": name, "managed-by": "dataplane-activation"}}]


def test_peer_provider_assumes_the_accepter_role_in_the_peer_account(synthesized, customers):
    peering = customers["globex"].peering
    [peer] = [p for p in stack_json(synthesized, "globex")["provider"]["aws"] if p.get("alias") == "peer"]
    assert peer["allowed_account_ids"] == [peering.account_id]
    assert peer["assume_role"][0]["role_arn"] == peering.accepter_role_arn


def test_each_customer_has_its_own_local_state(synthesized):
    paths = [stack_json(synthesized, n)["terraform"]["backend"]["local"]["path"] for n in EXAMPLES]
    assert paths == ["../../../terraform-state/acme.tfstate", "../../../terraform-state/globex.tfstate"]


def test_outputs_for_the_control_plane(synthesized):
    assert sorted(stack_json(synthesized, "acme")["output"]) == ["role_arn", "role_name"]
    assert sorted(stack_json(synthesized, "globex")["output"]) == [
        "peering_connection_id", "role_arn", "role_name", "vpc_id"]


def test_s3_backend_encrypts_locks_and_keys_per_customer(settings, customers):
    s3 = Settings.model_validate({"backend": {"type": "s3", "bucket": "astro-state", "region": "us-east-1",
                                              "keyPrefix": "activation"}})
    app = Testing.app()
    backends = {name: json.loads(Testing.synth(DataPlaneStack(app, customers[name], s3)))["terraform"]["backend"]
                for name in EXAMPLES}
    assert backends == {name: {"s3": {"bucket": "astro-state", "region": "us-east-1", "encrypt": True,
                                      "use_lockfile": True, "key": f"activation/{name}.tfstate"}}
                        for name in EXAMPLES}


CLOUD = Settings.model_validate({"backend": {"type": "cloud", "organization": "astro", "workspacePrefix": "dp-",
                                             "hostname": "tfe.example.com"}})


def test_cloud_backend_one_workspace_per_customer(customers):
    app = Testing.app()
    terraform = {name: json.loads(Testing.synth(DataPlaneStack(app, customers[name], CLOUD)))["terraform"]
                 for name in EXAMPLES}
    assert {name: (t["cloud"], "backend" in t) for name, t in terraform.items()} == {
        name: ({"organization": "astro", "hostname": "tfe.example.com", "workspaces": {"name": f"dp-{name}"}}, False)
        for name in EXAMPLES}


@pytest.mark.parametrize("name", ["acme-cloud"])
def test_snapshot_with_the_cloud_backend(synthesized, tmp_path, snapshot, name):
    """As `make synth` writes it with the cloud backend: only the backend differs from acme's own stack."""
    settings = tmp_path / "cdktf.json"
    settings.write_text(json.dumps({"context": {"backend": {"type": "cloud", "organization": "astro"}}}))
    result = run_main(tmp_path / "cdktf.out", **{SETTINGS_ENV: str(settings)})
    assert result.returncode == 0, result.stderr
    stack, local = stack_json(tmp_path / "cdktf.out", "acme"), stack_json(synthesized, "acme")
    assert readable(stack) == snapshot(extension_class=StackSnapshot)
    for document in (stack, local):
        for key in ("backend", "cloud"):
            document["terraform"].pop(key, None)
            document["//"]["metadata"].pop(key, None)
    assert stack == local


GUARDED = {"managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "team/DataPlaneExtra"],
           "delegationBoundary": "boundaries/DataPlane"}


@pytest.mark.parametrize("name", ["initech"])
def test_snapshot_with_several_external_ids_attachments_and_the_guard(tmp_path, snapshot, name):
    """As `make synth` writes it with `managedPolicyArns` and `delegationBoundary`: the trust requires one of the
    customer's ExternalIds (in the file's order), the policies are attached, the inline policy carries the guard."""
    settings = tmp_path / "cdktf.json"
    settings.write_text(json.dumps({"context": GUARDED}))
    result = run_main(tmp_path / "cdktf.out", **{CUSTOMERS_DIR_ENV: str(EXTRA_FIXTURES),
                                                 SETTINGS_ENV: str(settings)})
    assert result.returncode == 0, result.stderr
    stack = readable(stack_json(tmp_path / "cdktf.out", name))
    [role] = stack["resource"]["aws_iam_role"].values()
    assert role["assume_role_policy"]["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": [
        "astro-5a7e1c90", "astro-b3d28f14", "astro-e9046c2d"]}}
    attached = sorted(a["policy_arn"] for a in stack["resource"]["aws_iam_role_policy_attachment"].values())
    assert attached == ["arn:aws:iam::345678901234:policy/team/DataPlaneExtra",
                        "arn:aws:iam::aws:policy/ReadOnlyAccess"]
    [policy] = stack["resource"]["aws_iam_role_policy"].values()
    assert guard_of(policy["policy"]) == "arn:aws:iam::345678901234:policy/boundaries/DataPlane"
    assert stack == snapshot(extension_class=StackSnapshot)


@pytest.mark.parametrize("name", ["hooli"])
def test_snapshot_with_the_tamper_alarm(tmp_path, snapshot, name):
    """As `make synth` writes it: the trail in the customer's region (eu-west-1), the rule and topic in us-east-1
    through the provider alias `events`, which also holds the log files' replicas."""
    result = run_main(tmp_path / "cdktf.out", **{CUSTOMERS_DIR_ENV: str(EXTRA_FIXTURES)})
    assert result.returncode == 0, result.stderr
    stack = readable(stack_json(tmp_path / "cdktf.out", name))
    [rule] = stack["resource"]["aws_cloudwatch_event_rule"].values()
    assert rule["provider"] == "aws.events" and json.loads(rule["event_pattern"]) == role_change_pattern(
        "astronomer-remote-management")
    [subscription] = stack["resource"]["aws_sns_topic_subscription"].values()
    assert subscription["endpoint"] == "security@hooli.example"
    assert stack == snapshot(extension_class=StackSnapshot)


def alarm_providers(customer: Customer, settings: Settings) -> dict[str, dict]:
    """The stack's providers for `customer` with a tamper alarm, by alias (`aws` for the default)."""
    alarmed = customer.model_copy(update={"tamper_alarm": TamperAlarm(email="security@acme.example")})
    stack = json.loads(Testing.synth(DataPlaneStack(Testing.app(), alarmed, settings)))
    return {p.get("alias", "aws"): p for p in stack["provider"]["aws"]}


def test_the_events_alias_exists_only_outside_us_east_1_and_every_provider_tags_and_pins_the_account(customers,
                                                                                                     settings):
    """globex (us-west-2): `events` in us-east-1 (the replicas too); acme (us-east-1): the default provider holds the
    rule, and `replica` is in us-west-2."""
    regions = {name: {alias: p["region"] for alias, p in alarm_providers(customers[name], settings).items()}
               for name in EXAMPLES}
    assert regions == {"acme": {"aws": "us-east-1", "replica": "us-west-2"},
                       "globex": {"aws": "us-west-2", "peer": "us-west-2", "events": "us-east-1"}}
    for name in EXAMPLES:
        for provider in alarm_providers(customers[name], settings).values():
            assert provider["default_tags"] == [{"tags": ownership_tags(name)}]
            assert provider["allowed_account_ids"] in ([customers[name].account_id],
                                                       [customers[name].peering and customers[name].peering.account_id])


def test_without_an_alarm_the_stack_has_no_alarm_provider_or_resource(synthesized):
    for name in EXAMPLES:
        stack = stack_json(synthesized, name)
        assert {p.get("alias") for p in stack["provider"]["aws"]} <= {None, "peer"}
        assert "aws_cloudtrail" not in stack["resource"]


def test_control_plane_role_arn_replaces_the_account_root(customers):
    arn = "arn:aws:iam::406882777402:role/control-plane"
    stack = DataPlaneStack(Testing.app(), customers["acme"], Settings.model_validate({"controlPlaneRoleArn": arn}))
    [role] = json.loads(Testing.synth(stack))["resource"]["aws_iam_role"].values()
    assert json.loads(role["assume_role_policy"])["Statement"][0]["Principal"] == {"AWS": arn}


def test_no_customer_value_becomes_a_terraform_interpolation(synthesized):
    """Only the stack's own references are interpolations; the loader refuses `${` and `%{` in values."""
    for name in EXAMPLES:
        text = (synthesized / "stacks" / name / "cdk.tf.json").read_text()
        assert "%{" not in text
        for expression in re.findall(r"\$\{(.*?)\}", text):
            assert re.fullmatch(r"aws_[a-z_]+\.[\w-]+\.\w+|element\(data\.aws_availability_zones\.[\w-]+\.names, \d\)",
                                expression), expression
