"""The PR review report over base/head pairs of real synthesized stacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cdktf import Testing

from dataplane.config.customer import Customer, Network, TamperAlarm
from dataplane.config.settings import Settings
from dataplane.ops import cli
from dataplane.ops.pipeline.review import (
    CONFIGURATION_ONLY,
    Report,
    ReviewError,
    StackReview,
    fleet_change_refusal,
    fleet_change_warning,
    render,
    review,
    role_changes,
    split,
)
from dataplane.project import GITHUB_EVENT_PATH_ENV, PROJECT_ROOT, SETTINGS_ENV
from dataplane.runtime.shards import stable_json
from dataplane.tamper import service_trust
from stacks import DataPlaneStack

ROOT = "arn:aws:iam::406882777402:root"
CONTROL_PLANE_ROLE = "arn:aws:iam::406882777402:role/control-plane"
PEER = "`vpc-0a1b2c3d4e5f60718` (account `111122223333`, `us-west-2`)"


def synth(customer: Customer, settings: Settings) -> bytes:
    """The stack's `cdk.tf.json` as `make synth` writes it (with cdktf's `//` metadata)."""
    outdir = Path(Testing.full_synth(DataPlaneStack(Testing.app(), customer, settings)))
    return (outdir / "stacks" / customer.name / "cdk.tf.json").read_bytes()


@pytest.fixture(scope="module")
def fleet(customers, settings) -> dict[str, bytes]:
    """The example stacks as synthesized today: the base of every pair."""
    return {name: synth(c, settings) for name, c in customers.items()}


def outdir(root: Path, stacks: dict[str, bytes]) -> Path:
    """A `cdktf.out` layout holding `stacks`, with the `manifest.json` cdktf writes for them."""
    manifest = {"stacks": {}, "version": "0.21.0"}
    for name, raw in stacks.items():
        (root / "stacks" / name).mkdir(parents=True)
        (root / "stacks" / name / "cdk.tf.json").write_bytes(raw)
        manifest["stacks"][name] = {
            "annotations": [], "constructPath": name, "dependencies": [], "name": name,
            "stackMetadataPath": f"stacks/{name}/metadata.json", "synthesizedStackPath": f"stacks/{name}/cdk.tf.json",
            "workingDirectory": f"stacks/{name}"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(stable_json(manifest))
    return root


def compare(tmp_path: Path, base: dict[str, bytes], head: dict[str, bytes]) -> Report:
    return review(outdir(tmp_path / "base", base), outdir(tmp_path / "head", head))


def only(report: Report, name: str) -> StackReview:
    [stack] = [s for s in report.stacks if s.name == name]
    return stack


def with_action(raw: bytes, action: str) -> bytes:
    doc = json.loads(raw)
    [policy] = doc["resource"]["aws_iam_role_policy"].values()
    document = json.loads(policy["policy"])
    document["Statement"][0]["Action"].append(action)
    policy["policy"] = json.dumps(document)
    return json.dumps(doc).encode()


def test_nothing_changed_says_so_and_that_no_plan_was_made(tmp_path, fleet):
    report = compare(tmp_path, fleet, fleet)
    assert report.summary() == {"added": 0, "removed": 0, "changed": 0, "unchanged": 2}
    assert report.affected == []
    assert render(report) == ("## Data plane review\n\nConfiguration diff only: no plan against live state was made; "
                              "counts are of resource blocks in the configuration, not Terraform actions.\n\n"
                              "**Customers:** 0 added, 0 removed, 0 changed, 2 unchanged\n\n"
                              "Unchanged (2): `acme`, `globex`\n")
    assert json.loads(render(report, "json"))["basis"] == CONFIGURATION_ONLY


def test_only_cdktf_metadata_changed_is_unchanged(tmp_path, fleet):
    doc = json.loads(fleet["acme"])
    doc["//"]["metadata"]["version"] = "0.22.0"
    assert compare(tmp_path, fleet, {**fleet, "acme": json.dumps(doc).encode()}).summary()["unchanged"] == 2


def test_customer_added_shows_who_may_assume_what_where(tmp_path, fleet, customers, settings):
    initech = customers["acme"].model_copy(update={"name": "initech", "account_id": "999999999999",
                                                   "external_id": "astro-new1"})
    report = compare(tmp_path, fleet, {**fleet, "initech": synth(initech, settings)})
    stack = only(report, "initech")
    assert (stack.status, stack.warnings, report.affected) == ("added", [], ["initech"])
    assert stack.changes == [
        "account `999999999999`, region `us-east-1`",
        "role `astronomer-remote-management` created",
        f"trust principal set: `{ROOT}`",
        "ExternalId set: `astro-new1`",
        "IAM actions granted: `cloudformation:*`, `iam:CreateRole`, `iam:DeleteRolePolicy`, `iam:GetRole`, "
        "`iam:GetRolePolicy`, `iam:ListRoles`, `iam:PutRolePolicy`, `iam:UpdateAssumeRolePolicy`",
        "IAM resources granted: `*`",
        "outputs added: `role_arn`, `role_name`",
    ]
    assert stack.added == ["aws_iam_role.cross-account-role_F7C11791",
                           "aws_iam_role_policy.cross-account-role_activation_635287FC"]


def test_customer_removed_warns_that_the_whole_stack_is_destroyed(tmp_path, fleet):
    report = compare(tmp_path, fleet, {"globex": fleet["globex"]})
    stack = only(report, "acme")
    assert stack.status == "removed"
    assert stack.warnings == ["customer removed: its whole stack in account `123456789012` would be destroyed "
                              "(2 resources)"]
    assert report.affected == []
    markdown = render(report)
    assert "> 1 warning(s), each also in its stack's section:\n> - `acme`: customer removed: its whole" in markdown
    assert "Resource blocks: 0 added, 0 changed, 2 removed in the configuration" in markdown
    assert "- `- aws_iam_role.cross-account-role_F7C11791`" in markdown


def test_network_cidr_change_warns_of_replacement(tmp_path, fleet, customers, settings):
    globex = customers["globex"].model_copy(update={"network": Network(cidr="172.24.0.0/19")})
    stack = only(compare(tmp_path, fleet, {**fleet, "globex": synth(globex, settings)}), "globex")
    assert stack.warnings == ["predicted replacement: network CIDR changed `172.20.0.0/19` → `172.24.0.0/19`: "
                              "replaces the VPC (`aws_vpc.network_vpc_4E8F0223`) and everything in it: subnets, route "
                              "table, routes and the peering"]
    assert stack.changes == []
    changed = {c.address: c.attributes for c in stack.changed}
    assert changed["aws_vpc.network_vpc_4E8F0223"] == ("cidr_block",)
    assert changed["aws_subnet.network_private-subnet-0_0C797916"] == ("cidr_block",)
    assert changed["aws_route.peering_from-customer-rtb-0a1b2c3d4e5f60718_A2E09BD5"] == ("destination_cidr_block",)


def test_an_action_added_widens_the_permissions_a_warning_and_nothing_else(tmp_path, fleet):
    report = compare(tmp_path, fleet, {**fleet, "acme": with_action(fleet["acme"], "ec2:DescribeVpcs")})
    stack = only(report, "acme")
    assert (stack.status, stack.warnings, stack.changes) == (
        "changed", ["permissions widened: IAM actions granted: `ec2:DescribeVpcs`, beside the 8 granted before"], [])
    assert [(c.address, c.attributes) for c in stack.changed] == [
        ("aws_iam_role_policy.cross-account-role_activation_635287FC", ("policy",))]
    assert (stack.added, stack.removed) == ([], [])
    reverted = compare(tmp_path / "back", {"acme": with_action(fleet["acme"], "ec2:DescribeVpcs")},
                       {"acme": fleet["acme"]})
    assert (only(reverted, "acme").changes, only(reverted, "acme").warnings) == (
        ["IAM actions revoked: `ec2:DescribeVpcs`"], [])


def test_a_trust_principal_change_on_every_stack_is_said_once_in_the_digest(tmp_path, fleet, customers):
    narrowed = Settings.model_validate({"controlPlaneRoleArn": CONTROL_PLANE_ROLE})
    role_trusted = {name: synth(c, narrowed) for name, c in customers.items()}
    report = compare(tmp_path / "narrowed", fleet, role_trusted)
    assert report.affected == ["acme", "globex"]
    moved = f"trust principal changed: `{ROOT}` → `{CONTROL_PLANE_ROLE}`"
    assert [(s.warnings, s.changes) for s in report.stacks] == [([moved], [])] * 2
    markdown = render(report)
    digest = "> 2 warning(s), each also in its stack's section:\n> - 2 stacks (`acme`, `globex`): "
    assert f"{digest}{moved}\n\n" in markdown
    assert markdown.count(f"- ⚠️ **{moved}**") == 2
    widened = compare(tmp_path / "widened", role_trusted, fleet)
    assert [s.warnings for s in widened.stacks] == [
        [f"trust principal widened to the account root: `{CONTROL_PLANE_ROLE}` → `{ROOT}`"]] * 2


def test_an_external_id_rotated_is_a_warning(tmp_path, fleet, customers, settings):
    acme = customers["acme"].model_copy(update={"external_id": "astro-rotated"})
    stack = only(compare(tmp_path, fleet, {**fleet, "acme": synth(acme, settings)}), "acme")
    assert (stack.warnings, stack.changes) == (
        ["ExternalId changed: `astro-3f9c2b7e` → `astro-rotated`: the cluster with the old id loses access"], [])


SEVERAL = ("astro-3f9c2b7e", "astro-cluster-2", "astro-cluster-3")


def test_external_ids_added_and_removed_one_per_cluster(tmp_path, fleet, customers, settings):
    several = synth(customers["acme"].model_copy(update={"external_id": SEVERAL}), settings)
    added = only(compare(tmp_path / "added", fleet, {**fleet, "acme": several}), "acme")
    assert (added.warnings, added.changes) == ([
        "ExternalId `astro-cluster-2` added to the trust (before: `astro-3f9c2b7e`): that cluster gains access",
        "ExternalId `astro-cluster-3` added to the trust (before: `astro-3f9c2b7e`): that cluster gains access"], [])
    fewer = synth(customers["acme"].model_copy(update={"external_id": ("astro-cluster-3", "astro-new")}), settings)
    report = compare(tmp_path / "removed", {**fleet, "acme": several}, {**fleet, "acme": fewer})
    stack = only(report, "acme")
    now = "`astro-cluster-3`, `astro-new`"
    assert (stack.changes, stack.warnings) == ([], [
        "ExternalId `astro-new` added to the trust (before: `astro-3f9c2b7e`, `astro-cluster-2`, `astro-cluster-3`): "
        "that cluster gains access",
        f"ExternalId `astro-3f9c2b7e` removed from the trust (after: {now}): that cluster loses access",
        f"ExternalId `astro-cluster-2` removed from the trust (after: {now}): that cluster loses access"])
    assert (f"- ⚠️ **ExternalId `astro-cluster-2` removed from the trust (after: {now}): that cluster loses "
            "access**") in render(report)


def others(warnings: list[str]) -> list[str]:
    """The warnings but the bootstrap policy's (its own test below): what a test of another change asserts."""
    return [w for w in warnings if not w.startswith("bootstrap policy changed")]


def test_managed_policies_attached_and_detached_and_the_guard_turned_on_and_off(tmp_path, fleet, customers):
    guarded = Settings.model_validate({"managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "team/Extra"],
                                       "delegationBoundary": "boundaries/DataPlane"})
    acme = synth(customers["acme"], guarded)
    boundary = "arn:aws:iam::123456789012:policy/boundaries/DataPlane"
    on = only(compare(tmp_path / "on", fleet, {**fleet, "acme": acme}), "acme")
    assert (others(on.warnings), on.changes) == ([
        "managed policies attached: `arn:aws:iam::123456789012:policy/team/Extra`, "
        "`arn:aws:iam::aws:policy/ReadOnlyAccess` (before: none)"], [f"escalation guard boundary set: `{boundary}`"])
    assert len(on.added) == 2
    off = only(compare(tmp_path / "off", {**fleet, "acme": acme}, fleet), "acme")
    assert off.changes == ["managed policies detached: `arn:aws:iam::123456789012:policy/team/Extra`, "
                           "`arn:aws:iam::aws:policy/ReadOnlyAccess`"]
    off_warnings = others(off.warnings)
    assert off_warnings[-1] == (f"escalation guard boundary removed (was `{boundary}`): the role may again create "
                                "roles with any policy, or rewrite its own")
    assert off_warnings[0].startswith("also destroys: `aws_iam_role_policy_attachment.cross-account-role_managed-")


def test_a_boundary_changed_or_removed_is_a_warning_and_one_set_is_not(tmp_path, fleet, customers):
    def acme(**context) -> bytes:
        return synth(customers["acme"], Settings.model_validate(context))
    old, new = "arn:aws:iam::123456789012:policy/boundaries/Old", "arn:aws:iam::123456789012:policy/boundaries/New"
    capped = acme(permissionsBoundary="boundaries/Old", delegationBoundary="boundaries/Old")
    recapped = acme(permissionsBoundary="boundaries/New", delegationBoundary="boundaries/New")
    set_ = only(compare(tmp_path / "set", fleet, {**fleet, "acme": capped}), "acme")
    assert (others(set_.warnings), set_.changes) == ([], [f"permissions boundary set: `{old}`",
                                                  f"escalation guard boundary set: `{old}`"])
    changed = only(compare(tmp_path / "changed", {**fleet, "acme": capped}, {**fleet, "acme": recapped}), "acme")
    assert others(changed.warnings) == [f"permissions boundary changed: `{old}` → `{new}`",
                                f"escalation guard boundary changed: `{old}` → `{new}`"]
    removed = only(compare(tmp_path / "removed", {**fleet, "acme": recapped}, fleet), "acme")
    assert others(removed.warnings) == [
        f"permissions boundary removed (was `{new}`): the role's permissions are no longer capped",
        f"escalation guard boundary removed (was `{new}`): the role may again create roles with any policy, or "
        "rewrite its own"]


def test_a_resource_added_to_the_inline_policy_widens_it(tmp_path, fleet):
    doc = json.loads(fleet["acme"])
    [inline] = doc["resource"]["aws_iam_role_policy"].values()
    document = json.loads(inline["policy"])
    document["Statement"].append({"Effect": "Allow", "Action": "iam:GetRole", "Resource": "arn:aws:iam::*:role/x"})
    inline["policy"] = json.dumps(document)
    stack = only(compare(tmp_path, fleet, {**fleet, "acme": json.dumps(doc).encode()}), "acme")
    assert (stack.warnings, stack.changes) == (
        ["permissions widened: IAM resources granted: `arn:aws:iam::*:role/x`, beside the 1 granted before"], [])


def test_a_peering_into_another_customer_s_data_plane_account_is_a_warning(tmp_path, fleet, customers, settings):
    globex = customers["globex"]
    acme_account = customers["acme"].account_id
    into_acme = globex.peering.model_copy(update={
        "account_id": acme_account, "accepter_role_arn": f"arn:aws:iam::{acme_account}:role/peering-accepter"})
    head = {**fleet, "globex": synth(globex.model_copy(update={"peering": into_acme}), settings)}
    stack = only(compare(tmp_path, fleet, head), "globex")
    assert stack.warnings[-1] == (
        f"peering into another customer's data-plane account: `vpc-0a1b2c3d4e5f60718` in account `{acme_account}`, "
        "`acme`'s (before: `vpc-0a1b2c3d4e5f60718` in account `111122223333`)")
    assert stack.warnings[0].startswith("predicted replacement: peering target changed ")


def test_the_tamper_alarm_added_its_email_changed_and_removed(tmp_path, fleet, customers, settings):
    """The alarm by name, its service roles apart from the control plane's trust and permissions."""
    def alarmed(email: str) -> bytes:
        return synth(customers["globex"].model_copy(update={"tamper_alarm": TamperAlarm(email=email)}), settings)
    first, second = alarmed("security@globex.example"), alarmed("soc@globex.example")
    added = only(compare(tmp_path / "added", fleet, {**fleet, "globex": first}), "globex")
    assert (others(added.warnings), added.changes) == ([], [
        "tamper alarm created: changes to the role emailed to `security@globex.example` once it confirms the "
        "subscription", "providers added: `aws.events`"])
    assert len(added.added) == 48 and added.removed == added.changed == []
    changed = only(compare(tmp_path / "changed", {**fleet, "globex": first}, {**fleet, "globex": second}), "globex")
    assert (others(changed.warnings), changed.changes) == ([
        "tamper alarm email changed: `security@globex.example` → `soc@globex.example`, which must confirm the "
        "subscription"], [])
    removed = only(compare(tmp_path / "removed", {**fleet, "globex": first}, fleet), "globex")
    assert (others(removed.warnings), removed.changes) == ([
        "tamper alarm removed: changes to the role are no longer emailed to `security@globex.example`; its "
        "resources are destroyed, and the apply stops at a bucket holding logs (empty it, or `terraform state rm` it "
        "to keep it)"], ["providers removed: `aws.events`"])


def test_a_plan_creating_the_alarm_s_service_roles_leaves_the_control_plane_s_access_as_it_is(tmp_path):
    role = {"address": "aws_iam_role.tamper-alarm_trail-logs-role_039A4A8A", "mode": "managed", "type": "aws_iam_role",
            "name": "tamper-alarm_trail-logs-role_039A4A8A", "change": {
                "actions": ["create"], "before": None, "after": {"assume_role_policy": json.dumps(service_trust(
                    "cloudtrail.amazonaws.com", "123456789012", ["arn:aws:cloudtrail:us-east-1:123456789012:trail/t"]
                ))},
                "before_sensitive": False, "after_sensitive": {}, "after_unknown": {}}}
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "acme.plan.json").write_text(json.dumps({"format_version": "1.2", "resource_changes": [
        role]}))
    stack = only(review(None, None, tmp_path / "plans"), "acme")
    assert (stack.changes, stack.warnings) == ([], [])


def role_plan(before: bytes, after: bytes) -> dict:
    """A plan updating acme's role from its trust in `before` to its trust in `after` (synthesized stacks)."""
    def trust(raw: bytes) -> str:
        [role] = json.loads(raw)["resource"]["aws_iam_role"].values()
        return role["assume_role_policy"]
    return {"format_version": "1.2", "resource_changes": [{
        "address": "aws_iam_role.cross-account-role_F7C11791", "mode": "managed", "type": "aws_iam_role",
        "name": "cross-account-role_F7C11791", "change": {
            "actions": ["update"], "before": {"assume_role_policy": trust(before)},
            "after": {"assume_role_policy": trust(after)}, "before_sensitive": {}, "after_sensitive": {},
            "after_unknown": {}}}]}


def test_a_plan_removing_an_external_id_warns_in_the_same_words(tmp_path, fleet, customers, settings):
    several = synth(customers["acme"].model_copy(update={"external_id": SEVERAL}), settings)
    fewer = synth(customers["acme"].model_copy(update={"external_id": SEVERAL[:2]}), settings)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "acme.plan.json").write_text(json.dumps(role_plan(several, fewer)))
    stack = only(review(None, None, tmp_path / "plans"), "acme")
    assert (stack.changes, stack.warnings) == ([], [
        "ExternalId `astro-cluster-3` removed from the trust (after: `astro-3f9c2b7e`, `astro-cluster-2`): that "
        "cluster loses access"])
    rotated = role_plan(fleet["acme"], synth(customers["acme"].model_copy(update={"external_id": "astro-b"}), settings))
    (tmp_path / "plans" / "acme.plan.json").write_text(json.dumps(rotated))
    stack = only(review(None, None, tmp_path / "plans"), "acme")
    assert (stack.changes, stack.warnings) == (
        [], ["ExternalId changed: `astro-3f9c2b7e` → `astro-b`: the cluster with the old id loses access"])


def test_role_name_and_region_changes_warn_of_replacement(tmp_path, fleet, customers):
    renamed = Settings.model_validate({"roleName": "astro-activation"})
    acme = customers["acme"].model_copy(update={"region": "eu-west-1"})
    stack = only(compare(tmp_path, fleet, {**fleet, "acme": synth(acme, renamed)}), "acme")
    assert stack.warnings == [
        "predicted replacement: region changed `us-east-1` → `eu-west-1`: replaces every regional resource (network, "
        "peering); the old region's are left behind, not destroyed",
        "predicted replacement: role name changed `astronomer-remote-management` → `astro-activation`: replaces the "
        "role (`aws_iam_role.cross-account-role_F7C11791`); the control plane cannot assume it in between",
    ]


def test_peering_removed_warns_and_lists_what_goes_with_it(tmp_path, fleet, customers, settings):
    globex = customers["globex"].model_copy(update={"peering": None})
    stack = only(compare(tmp_path, fleet, {**fleet, "globex": synth(globex, settings)}), "globex")
    assert others(stack.warnings)[0] == (f"peering to {PEER} destroyed "
                                 "(`aws_vpc_peering_connection.peering_connection_E7A626F9`): traffic to the "
                                 "customer's VPC stops")
    assert others(stack.warnings)[1].startswith("also destroys: `aws_route.peering_from-customer-")
    assert len(others(stack.warnings)) == 2
    assert stack.changes == [
        "peer CIDRs removed: `10.10.0.0/16`",
        "customer route tables routed to the data plane removed: `rtb-0a1b2c3d4e5f60718`",
        "outputs removed: `peering_connection_id`",
        "providers removed: `aws.peer`",
    ]


def test_peering_target_and_cidrs_changed(tmp_path, fleet, customers, settings):
    c = customers["globex"]
    peering = c.peering.model_copy(update={"vpc_id": "vpc-0fedcba9876543210", "cidrs": ("10.30.0.0/16",)})
    head = {**fleet, "globex": synth(c.model_copy(update={"peering": peering}), settings)}
    stack = only(compare(tmp_path, fleet, head), "globex")
    assert stack.warnings == [
        f"predicted replacement: peering target changed {PEER} → `vpc-0fedcba9876543210` (account `111122223333`, "
        "`us-west-2`): replaces the peering connection (`aws_vpc_peering_connection.peering_connection_E7A626F9`); "
        "traffic stops until the new one is accepted",
        "also destroys: `aws_route.peering_to-customer-101000-16_45B24935`",
    ]
    assert stack.changes == ["peer CIDRs added: `10.30.0.0/16`", "peer CIDRs removed: `10.10.0.0/16`"]


def test_stale_stack_directory_not_in_the_manifest_is_ignored(tmp_path, fleet):
    """A removed customer's directory left in head (a cdktf synth does not clean up) is still a removal."""
    base = outdir(tmp_path / "base", fleet)
    head = outdir(tmp_path / "head", {"globex": fleet["globex"]})
    shutil.copytree(base / "stacks" / "acme", head / "stacks" / "acme")
    report = review(base, head)
    assert (only(report, "acme").status, report.named("unchanged")) == ("removed", ["globex"])


def truncated(head: Path) -> str:
    path = head / "stacks" / "globex" / "cdk.tf.json"
    path.write_bytes(path.read_bytes()[:1000])
    return f"{path}: not valid JSON ("


def not_json(head: Path) -> str:
    path = head / "stacks" / "globex" / "cdk.tf.json"
    path.write_text("[]")
    return f"{path}: not a JSON object"


def stack_missing(head: Path) -> str:
    path = head / "stacks" / "acme" / "cdk.tf.json"
    path.unlink()
    return f"{path}: stack acme is in manifest.json but cannot be read (No such file or directory)"


def no_manifest(head: Path) -> str:
    (head / "manifest.json").unlink()
    return f"{head}: no manifest.json, so not a synthesized output (expected a cdktf.out layout)"


def manifest_without_stacks(head: Path) -> str:
    (head / "manifest.json").write_text('{"version": "0.21.0"}')
    return f"{head / 'manifest.json'}: not a cdktf manifest (no stacks.<name>.synthesizedStackPath)"


def rewritten(head: Path, change) -> Path:
    """globex's stack in `head` with `change` made to its document."""
    path = head / "stacks" / "globex" / "cdk.tf.json"
    document = json.loads(path.read_bytes())
    change(document)
    path.write_text(json.dumps(document))
    return path


def resource_not_an_object(head: Path) -> str:
    return f"{rewritten(head, lambda d: d.update(resource=['aws_vpc']))}: resource is not an object"


def resources_not_objects(head: Path) -> str:
    return f"{rewritten(head, lambda d: d['resource'].update(aws_vpc=['v']))}: resource.aws_vpc is not an object of " \
           "resources"


def account_ids_not_strings(head: Path) -> str:
    path = rewritten(head, lambda d: d["provider"]["aws"][0].update(allowed_account_ids=[210987654321]))
    return f"{path}: provider.aws[0].allowed_account_ids is not a list of strings"


def account_ids_not_a_list(head: Path) -> str:
    path = rewritten(head, lambda d: d["provider"]["aws"][0].update(allowed_account_ids="210987654321"))
    return f"{path}: provider.aws[0].allowed_account_ids is not a list of strings"


@pytest.mark.parametrize("damage", [truncated, not_json, stack_missing, no_manifest, manifest_without_stacks,
                                    resource_not_an_object, resources_not_objects, account_ids_not_strings,
                                    account_ids_not_a_list])
def test_broken_output_is_refused_naming_the_file(tmp_path, synthesized, damage):
    """main.py's real output, then one thing broken in the head."""
    head = shutil.copytree(synthesized, tmp_path / "head")
    message = damage(head)
    with pytest.raises(ReviewError) as refused:
        review(synthesized, head)
    assert str(refused.value).startswith(message)
    done = review_cli(synthesized, head)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"review: {message}") and done.stderr.count("\n") == 1


def review_cli(base: Path, head: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataplane", "review", "--base", str(base), "--head", str(head),
                           *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)


def test_cli_is_deterministic_and_lists_affected_stacks(tmp_path, fleet, customers, settings):
    initech = customers["acme"].model_copy(update={"name": "initech", "account_id": "999999999999"})
    base = outdir(tmp_path / "base", fleet)
    head = outdir(tmp_path / "head", {"globex": with_action(fleet["globex"], "ec2:DescribeVpcs"),
                                      "initech": synth(initech, settings)})

    def cli(*args: str) -> str:
        done = review_cli(base, head, *args)
        assert (done.returncode, done.stderr) == (0, "")
        return done.stdout

    for args in ((), ("--format", "json")):
        assert cli(*args) == cli(*args)
    assert cli("--affected") == "globex\ninitech\n"
    report = json.loads(cli("--format", "json"))
    assert report["summary"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 0}
    assert [(s["name"], s["status"]) for s in report["stacks"]] == [
        ("acme", "removed"), ("globex", "changed"), ("initech", "added")]
    markdown = cli()
    assert markdown.index("### `acme`: removed") < markdown.index("### `globex`: changed") < markdown.index(
        "### `initech`: added")


def test_cli_refuses_a_missing_directory(tmp_path):
    done = review_cli(tmp_path / "nope", tmp_path)
    assert done.returncode == 2
    assert "nope: not a directory" in done.stderr


def test_data_sources_are_not_counted_as_resources_to_add(tmp_path, fleet):
    report = compare(tmp_path, {"acme": fleet["acme"]}, fleet)
    stack = only(report, "globex")
    assert stack.data_sources == ["data.aws_availability_zones.network_zones_2241F3F0"]
    assert not [a for a in stack.added + stack.removed if a.startswith("data.")] and len(stack.added) == 15
    markdown = render(report)
    assert markdown.splitlines()[2] == CONFIGURATION_ONLY
    assert "Resource blocks: 15 added, 0 changed, 0 removed in the configuration" in markdown
    assert "(read, not created; not counted): `data.aws_availability_zones.network_zones_2241F3F0`" in markdown
    assert json.loads(render(report, "json"))["stacks"][0]["resources"]["data_sources"] == stack.data_sources


def with_subnet_cidr(raw: bytes, cidr: str) -> bytes:
    doc = json.loads(raw)
    doc["resource"]["aws_subnet"]["network_private-subnet-0_0C797916"]["cidr_block"] = cidr
    return json.dumps(doc).encode()


def test_subnet_cidr_change_alone_is_a_predicted_replacement(tmp_path, fleet):
    stack = only(compare(tmp_path, fleet, {**fleet, "globex": with_subnet_cidr(fleet["globex"], "172.20.16.0/21")}),
                 "globex")
    assert stack.warnings == ["predicted replacement: subnet CIDR changed `172.20.0.0/21` → `172.20.16.0/21`: "
                              "replaces the subnet (`aws_subnet.network_private-subnet-0_0C797916`)"]


# ---------------------------------------------------------------- comment-sized parts

CUSTOMER_ROUTES = 60
"""Peer CIDRs added to each generated stack: a section of about 6,000 characters."""


def grown(raw: bytes, index: int, routes: int) -> bytes:
    """globex's stack with `routes` more peer CIDRs; every tenth also on a new VPC CIDR (a predicted replacement)."""
    doc = json.loads(raw)
    template = doc["resource"]["aws_route"]["peering_to-customer-101000-16_45B24935"]
    for n in range(routes):
        cidr = f"10.{100 + n // 250}.{n % 250}.0/24"
        doc["resource"]["aws_route"][f"peering_to-customer-{cidr.replace('.', '').replace('/', '-')}_{n:08X}"] = {
            **template, "destination_cidr_block": cidr}
    if index % 10 == 0:
        doc["resource"]["aws_vpc"]["network_vpc_4E8F0223"]["cidr_block"] = "172.24.0.0/19"
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory, fleet) -> tuple[Path, Path]:
    """300 changed stacks (base and head outdirs); `c007` has 2,000 new routes, more than one part can hold."""
    root = tmp_path_factory.mktemp("big")
    names = [f"c{i:03d}" for i in range(300)]
    base = outdir(root / "base", {name: fleet["globex"] for name in names})
    head = outdir(root / "head", {name: grown(fleet["globex"], i, 2000 if name == "c007" else CUSTOMER_ROUTES)
                                  for i, name in enumerate(names)})
    return base, head


def test_a_big_review_splits_into_parts_that_fit_with_every_warning_in_part_one(big_fleet):
    report = review(*big_fleet)
    parts = split(report, 65_000)
    assert 20 <= len(parts) < 100 and max(map(len, parts)) <= 65_000
    assert parts == split(review(*big_fleet), 65_000)
    assert [p.split("\n", 1)[0] for p in parts] == [f"**Part {i} of {len(parts)}**" for i in range(1, len(parts) + 1)]
    first = parts[0]
    assert "## Data plane review" in first and CONFIGURATION_ONLY in first
    assert "**Customers:** 0 added, 0 removed, 300 changed, 0 unchanged" in first
    warnings = {w for s in report.stacks for w in s.warnings}
    assert sum(map(len, (s.warnings for s in report.stacks))) == 30 and len(warnings) == 1
    assert f"> 30 warning(s), each also in its stack's section:\n> - 30 stacks (`c000`, `c010`, `c020` and 27 more): " \
           f"{warnings.pop()}\n" in first
    # Every stack once, in order, at most one part per stack; only c007's section is cut.
    headings = [line for part in parts for line in part.splitlines() if line.startswith("### ")]
    assert headings == [f"### `c{i:03d}`: changed (configuration diff only)" for i in range(300)]
    whole = render(report)
    sections = ["### " + s for s in whole.split("\n### ")[1:]]
    assert all(any(s.rstrip("\n") in p for p in parts) for s in sections if not s.startswith("### `c007`"))
    [cut] = [p for p in parts if "### `c007`" in p]
    assert len(cut) <= 65_000 and "(truncated: " in cut and " more lines; see the workflow artifact)\n" in cut


def test_a_small_limit_still_holds_and_a_review_that_fits_is_one_part_without_numbering(big_fleet, tmp_path, fleet):
    parts = split(review(*big_fleet), 1_000)
    assert max(map(len, parts)) <= 1_000
    assert parts[0].startswith(f"**Part 1 of {len(parts)}**\n\n## Data plane review\n")
    small = compare(tmp_path, fleet, {**fleet, "acme": with_action(fleet["acme"], "ec2:DescribeVpcs")})
    assert split(small) == [render(small)]
    with pytest.raises(ValueError):
        split(small, 999)


def test_cli_writes_parts_to_a_directory_byte_identical_across_runs(big_fleet, tmp_path):
    base, head = big_fleet

    def parts_in(directory: Path) -> dict[str, bytes]:
        done = review_cli(base, head, "--max-chars", "20000", "--parts-dir", str(directory))
        assert (done.returncode, done.stderr) == (0, "")
        files = sorted(directory.iterdir())
        assert done.stdout == "".join(f"{f}\n" for f in files)
        return {f.name: f.read_bytes() for f in files}

    first, second = parts_in(tmp_path / "one"), parts_in(tmp_path / "two")
    assert first == second and list(first)[:2] == ["part-001.md", "part-002.md"]
    assert all(len(body.decode()) <= 20_000 for body in first.values())
    shown = review_cli(base, head, "--max-chars", "20000")
    assert shown.stdout == "".join(f"<!-- dataplane-review part {i} of {len(first)} -->\n{body.decode()}"
                                   for i, body in enumerate(first.values(), 1))
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / f"part-{len(first) + 1:03d}.md").write_text("an earlier review's")
    refused = review_cli(base, head, "--max-chars", "20000", "--parts-dir", str(stale))
    assert (refused.returncode, refused.stdout, refused.stderr.count("\n")) == (2, "", 1)
    assert sorted(p.name for p in stale.iterdir()) == [f"part-{len(first) + 1:03d}.md"]
    as_json = review_cli(base, head, "--format", "json", "--max-chars", "1000")
    assert len(json.loads(as_json.stdout)["stacks"]) == 300


@pytest.mark.parametrize("args", [("--max-chars", "999"), ("--max-chars", "lots"),
                                  ("--format", "json", "--parts-dir", "x")])
def test_cli_refuses_bad_part_options_in_one_line(tmp_path, fleet, args):
    base = outdir(tmp_path / "base", fleet)
    done = review_cli(base, base, *args)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1)
    assert done.stderr.startswith("review: ")


@pytest.mark.parametrize("args", [(), ("--base", "x")])
def test_cli_needs_base_and_head_or_plans(args):
    done = subprocess.run([sys.executable, "-m", "dataplane", "review", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1)


# ---------------------------------------------------------------- who must approve

SECURITY_TEAM = "@your-org/dataplane-security"


def code_owners(path: str) -> list[str]:
    """The owners GitHub requires for `path`: those of the last CODEOWNERS rule that matches it."""
    owners: list[str] = []
    for line in (PROJECT_ROOT / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *names = line.split()
            assert pattern.startswith("/") and "*" not in pattern, f"{pattern}: anchored paths only, read as written"
            if path == pattern[1:] or pattern.endswith("/") and path.startswith(pattern[1:]):
                owners = names
    return owners


def test_codeowners_puts_what_decides_every_customer_s_access_under_the_security_team():
    files = [path for directory in ("constructs_lib", "stacks", ".github/workflows")
             for path in sorted((PROJECT_ROOT / directory).rglob("*")) if path.is_file()]
    guarded = ["cdktf.json", "dataplane/policy.py", ".github/CODEOWNERS", "dataplane/ops/pipeline/review.py",
               "dataplane/ops/pipeline/plan_review.py", "dataplane/ops/markdown.py",
               *(str(path.relative_to(PROJECT_ROOT)) for path in files if "__pycache__" not in path.parts)]
    assert len(guarded) > 10 and ".github/workflows/pull-request.yml" in guarded
    assert {path: code_owners(path) for path in guarded} == {path: [SECURITY_TEAM] for path in guarded}
    assert code_owners("docs/notes.md") == []
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    assert f"Replace the placeholder `{SECURITY_TEAM}` with your security team" in readme


# ---------------------------------------------------------------- the blast radius


def test_the_blast_radius_counts_existing_customers_whose_roles_change_and_warns_once_over_the_limit(tmp_path, fleet,
                                                                                                      customers,
                                                                                                      settings):
    """New customers have no access to break: an added stack is not counted, however many roles it creates."""
    initech = customers["acme"].model_copy(update={"name": "initech", "account_id": "999999999999"})
    widened = {name: with_action(raw, "ec2:DescribeVpcs") for name, raw in fleet.items()}
    base, head = outdir(tmp_path / "base", fleet), outdir(tmp_path / "head", {**widened,
                                                                             "initech": synth(initech, settings)})
    report = review(base, head, label_limit=1)
    assert (role_changes(report), report.affected) == (["acme", "globex"], ["acme", "globex", "initech"])
    warning = ("this change touches the roles of 2 customers (more than 1): it needs the `fleet-change` label before "
               "it can apply")
    assert fleet_change_warning(report) == warning
    markdown = render(report)
    assert markdown.count(warning) == 1 and f"> [!WARNING]\n> **{warning}**\n\n" in split(report)[0]
    assert fleet_change_refusal(report, {"fleet-change", "docs"}) is None
    assert fleet_change_refusal(report, {"docs"}) == warning
    for within in (review(base, head, label_limit=2), review(base, head)):  # at the limit, or unchecked
        assert fleet_change_warning(within) is None and "fleet-change" not in render(within)
        assert fleet_change_refusal(within, ()) is None


def test_only_role_resources_count_toward_the_blast_radius(tmp_path, fleet):
    def tagged_vpc(raw: bytes) -> bytes:
        doc = json.loads(raw)
        [vpc] = doc["resource"]["aws_vpc"].values()
        vpc["tags"] = {**vpc.get("tags", {}), "team": "network"}
        return json.dumps(doc).encode()

    networks = {name: tagged_vpc(raw) for name, raw in fleet.items() if "aws_vpc" in json.loads(raw)["resource"]}
    assert networks, "no example customer with a network"
    report = compare(tmp_path, fleet, {**fleet, **networks})
    assert sorted(networks) == report.affected and role_changes(report) == []


def test_the_check_fails_over_the_limit_without_the_label_and_passes_with_it(tmp_path, fleet, monkeypatch, capfd):
    base = outdir(tmp_path / "base", fleet)
    head = outdir(tmp_path / "head", {name: with_action(raw, "ec2:DescribeVpcs") for name, raw in fleet.items()})

    def check(labels: list[str], limit: int) -> tuple[int, str, str]:
        settings = json.loads((PROJECT_ROOT / "cdktf.json").read_text())
        settings["context"]["rollout"] = {**settings["context"].get("rollout", {}), "maxCustomersWithoutLabel": limit}
        (tmp_path / "cdktf.json").write_text(json.dumps(settings))
        event = {"action": "labeled", "pull_request": {"number": 7, "labels": [{"name": n, "id": 1} for n in labels]}}
        (tmp_path / "event.json").write_text(json.dumps(event))
        monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "cdktf.json"))
        monkeypatch.setenv(GITHUB_EVENT_PATH_ENV, str(tmp_path / "event.json"))
        return cli.main(["blast-radius", "--base", str(base), "--head", str(head)]), *capfd.readouterr()

    assert check(["docs"], 1) == (1, "", "blast-radius: this change touches the roles of 2 customers (more than 1): "
                                         "it needs the `fleet-change` label before it can apply\n")
    passed = "blast-radius: the roles of 2 customer(s) change (more than {} need the fleet-change label)\n"
    assert check(["docs", "fleet-change"], 1) == (0, passed.format(1), "")
    assert check([], 2) == (0, passed.format(2), "")
    (tmp_path / "event.json").write_text(json.dumps({"action": "push"}))
    with pytest.raises(SystemExit) as refused:
        cli.main(["blast-radius", "--base", str(base), "--head", str(head)])
    assert refused.value.code == 2
    assert capfd.readouterr().err == (f"blast-radius: {tmp_path / 'event.json'}: not a pull_request event (no "
                                      "pull_request.labels)\n")


def test_a_change_the_bootstrap_role_must_follow_is_a_warning_naming_the_actions(tmp_path, fleet, customers, settings):
    """The tamper alarm needs CloudTrail, S3, SNS... from the deploy role: the customer re-runs its bootstrap."""
    alarmed = synth(customers["globex"].model_copy(
        update={"tamper_alarm": TamperAlarm(email="security@globex.example")}), settings)
    stack = only(compare(tmp_path / "added", fleet, {**fleet, "globex": alarmed}), "globex")
    [warning] = [w for w in stack.warnings if w.startswith("bootstrap policy changed (actions added: ")]
    assert "`cloudtrail:CreateTrail`" in warning and "actions removed" not in warning
    assert warning.endswith("`globex` must re-run the bootstrap (`make bootstrap CUSTOMER=globex`) before this "
                            "change deploys")
    back = only(compare(tmp_path / "removed", {**fleet, "globex": alarmed}, fleet), "globex")
    assert [w for w in back.warnings if w.startswith("bootstrap policy changed (actions removed: ")]
