"""The review with Terraform plans: `terraform show -json` documents, read into what a reviewer relies on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dataplane import policy
from dataplane.ops.markdown import code
from dataplane.ops.pipeline.plan_review import read_plan
from dataplane.ops.pipeline.review import CONFIGURATION_ONLY, NO_PLANS, Report, ReviewError, StackReview, render, review, split
from dataplane.project import PROJECT_ROOT
from dataplane.runtime.shards import stable_json
from dataplane.runtime.toolchain import AWS_PROVIDER_VERSION, tool_environment

PROVIDER = "registry.terraform.io/hashicorp/aws"
ROOT = "arn:aws:iam::406882777402:root"
SECRETS = ("hunter2", "swordfish", "s3cr3t-value")
VPC, SUBNET = "aws_vpc.network_vpc_4E8F0223", "aws_subnet.network_private-subnet-0_0C797916"
ROUTE_TABLE = "aws_route_table.network_private-route-table_8FAD2D7B"
ROUTE = "aws_route.peering_to-customer-101000-16_45B24935"
ROLE, POLICY = "aws_iam_role.cross-account-role_F7C11791", "aws_iam_role_policy.cross-account-role_activation_635287FC"
ZONES = "data.aws_availability_zones.network_zones_2241F3F0"


def trust(external_id: str) -> str:
    """The role's trust policy as the provider reports it: a JSON string, keys sorted."""
    return json.dumps({"Statement": [{"Action": "sts:AssumeRole", "Condition": {"StringEquals": {
        "sts:ExternalId": external_id}}, "Effect": "Allow", "Principal": {"AWS": ROOT}}], "Version": "2012-10-17"},
        separators=(",", ":"))


def permissions(*actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Action": list(actions), "Effect": "Allow",
                                                               "Resource": "*"}]}, separators=(",", ":"))


def resource(address: str, actions: list[str], before: dict | None, after: dict | None, *, after_unknown=None,
             before_sensitive=None, after_sensitive=None, replace_paths=None, importing=None,
             action_reason=None) -> dict:
    """One entry of `resource_changes` (or `resource_drift`), every field where terraform 1.11 puts it."""
    rtype, name = address.split(".")[-2:]
    change = {"actions": actions, "before": before, "after": after, "after_unknown": after_unknown or {},
              "before_sensitive": before_sensitive if before_sensitive is not None else before is not None and {},
              "after_sensitive": after_sensitive if after_sensitive is not None else after is not None and {}}
    if replace_paths:
        change["replace_paths"] = replace_paths
    if importing:
        change["importing"] = importing
    entry = {"address": address, "mode": "data" if address.startswith("data.") else "managed", "type": rtype,
             "name": name, "provider_name": PROVIDER, "change": change}
    if action_reason:
        entry["action_reason"] = action_reason
    return entry


def plan_document(changes: list[dict], drift: list[dict] = (), relevant: list[tuple[str, list]] = (),
                  errored: bool = False) -> dict:
    """A `terraform show -json` document, with a sensitive variable and output the review must never show."""
    document = {
        "format_version": "1.2", "terraform_version": "1.11.4", "variables": {"token": {"value": "s3cr3t-value"}},
        "planned_values": {"outputs": {}, "root_module": {}}, "resource_changes": changes,
        "output_changes": {"token": {"actions": ["update"], "before": "hunter2", "after": "swordfish",
                                     "after_unknown": False, "before_sensitive": True, "after_sensitive": True}},
        "configuration": {"provider_config": {}, "root_module": {}}, "timestamp": "2026-01-05T10:00:00Z",
        "applyable": True, "complete": True, "errored": errored}
    if drift:
        document["resource_drift"] = list(drift)
    if relevant:
        document["relevant_attributes"] = [{"resource": r, "attribute": a} for r, a in relevant]
    return document


def vpc(cidr: str) -> dict:
    return {"arn": "arn:aws:ec2:us-west-2:210987654321:vpc/vpc-0aaa", "cidr_block": cidr, "enable_dns_hostnames": True,
            "enable_dns_support": True, "id": "vpc-0aaa", "instance_tenancy": "default", "ipv6_cidr_block": "",
            "tags": {"Name": "globex"}, "tags_all": {"Name": "globex", "customer": "globex"}}


def route(table: str = "rtb-0bbb") -> dict:
    return {"carrier_gateway_id": "", "destination_cidr_block": "10.10.0.0/16", "gateway_id": "",
            "id": f"r-{table}1080289494", "origin": "CreateRoute", "route_table_id": table, "state": "active",
            "timeouts": None, "vpc_peering_connection_id": "pcx-0ccc"}


def role(external_id: str, inline: list | None = None) -> dict:
    return {"arn": "arn:aws:iam::210987654321:role/astronomer-remote-management",
            "assume_role_policy": trust(external_id), "description": "", "id": "astronomer-remote-management",
            "inline_policy": inline or [], "max_session_duration": 3600, "name": "astronomer-remote-management",
            "path": "/", "tags": {},
            "tags_all": {"customer": "globex"}}


def globex_plan() -> dict:
    """The network re-CIDRed, the ExternalId rotated, the route deleted by hand, the role policy imported."""
    table = {"id": "rtb-0bbb", "route": [], "tags": {"Name": "globex-private", "owner-token": "hunter2"},
             "tags_all": {"Name": "globex-private", "customer": "globex", "owner-token": "hunter2"},
             "vpc_id": "vpc-0aaa"}
    retagged = {**table, "tags": {"Name": "globex-rt", "owner-token": "swordfish"},
                "tags_all": {"Name": "globex-rt", "customer": "globex", "owner-token": "swordfish"}}
    masked = {"route": [], "tags": {"owner-token": True}, "tags_all": {}}  # terraform leaves tags_all's copy unmarked
    subnet = {"arn": "arn:aws:ec2:us-west-2:210987654321:subnet/subnet-0ddd", "cidr_block": "172.20.0.0/21",
              "id": "subnet-0ddd", "tags": {"Name": "globex-private-0"}, "vpc_id": "vpc-0aaa"}
    changes = [
        resource(ZONES, ["read"], None, {"state": "available"}, after_unknown={"names": True}),
        resource(ROLE, ["update"], role("astro-3f9c2b7e"), role("astro-rotated")),
        resource(POLICY, ["no-op"], {"id": "astronomer-remote-management:data-plane-activation",
                                     "policy": permissions("iam:GetRole")},
                 {"id": "astronomer-remote-management:data-plane-activation", "policy": permissions("iam:GetRole")},
                 importing={"id": "astronomer-remote-management:data-plane-activation"}),
        resource(ROUTE, ["create"], None, {k: v for k, v in route().items() if k not in ("id", "origin", "state")},
                 after_unknown={"id": True, "origin": True, "state": True}),
        resource(ROUTE_TABLE, ["update"], table, retagged, before_sensitive=masked, after_sensitive=masked),
        resource(SUBNET, ["delete", "create"], subnet, {**subnet, "arn": None, "id": None, "vpc_id": None},
                 after_unknown={"arn": True, "id": True, "vpc_id": True}, replace_paths=[["vpc_id"]],
                 action_reason="replace_because_cannot_update"),
        resource(VPC, ["delete", "create"], vpc("172.20.0.0/19"),
                 {k: v for k, v in vpc("172.24.0.0/19").items() if k not in ("arn", "id", "ipv6_cidr_block")},
                 after_unknown={"arn": True, "id": True, "ipv6_cidr_block": True}, replace_paths=[["cidr_block"]],
                 action_reason="replace_because_cannot_update"),
    ]
    drift = [
        resource(ROLE, ["update"], role("astro-3f9c2b7e"), role("astro-3f9c2b7e", inline=[
            {"name": "data-plane-activation", "policy": permissions("iam:GetRole")}])),
        resource(ROUTE, ["delete"], route(), None),
        resource(VPC, ["update"], vpc("172.20.0.0/19"), {**vpc("172.20.0.0/19"), "enable_dns_hostnames": False}),
    ]
    relevant = [(ROLE, ["id"]), (VPC, ["enable_dns_hostnames"]), (VPC, ["id"])]
    return plan_document(changes, drift, relevant)


def acme_destroy_plan() -> dict:
    """`terraform plan -destroy` of a removed customer: every resource deleted."""
    acme_role = {**role("astro-acme"), "id": "astronomer-remote-management"}
    return plan_document([
        resource(ROLE, ["delete"], acme_role, None),
        resource(POLICY, ["delete"], {"id": "astronomer-remote-management:data-plane-activation",
                                      "policy": permissions("cloudformation:*", "iam:GetRole")}, None),
    ])


def hooli_drift_plan() -> dict:
    """Nothing to change; someone deleted the peering route by hand and refresh found it gone."""
    return plan_document([resource(ROLE, ["no-op"], role("astro-hooli"), role("astro-hooli"))],
                         drift=[resource(ROUTE, ["delete"], route("rtb-0eee"), None)])


def write_plans(directory: Path, plans: dict[str, dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in plans.items():
        (directory / f"{name}.plan.json").write_text(json.dumps(document, indent=2))
    (directory / "globex.tfplan").write_bytes(b"PK\x03\x04 binary plan, not read")
    return directory


@pytest.fixture
def plans(tmp_path) -> Path:
    return write_plans(tmp_path / "plans", {"globex": globex_plan(), "acme": acme_destroy_plan(),
                                            "hooli": hooli_drift_plan()})


def only(report: Report, name: str) -> StackReview:
    [stack] = [s for s in report.stacks if s.name == name]
    return stack


def review_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataplane", "review", *map(str, args)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------- what the plan does


def test_counts_are_terraform_actions_without_no_ops_and_data_sources(plans):
    stack = only(review(None, None, plans), "globex")
    assert stack.plan.counts() == {"create": 1, "update": 2, "replace": 2, "destroy": 0, "import": 1, "forget": 0}
    assert [(r.address, r.action, r.imported_from) for r in stack.plan.resources] == [
        (ROLE, "update", None), (POLICY, "no-op", "astronomer-remote-management:data-plane-activation"),
        (ROUTE, "create", None), (ROUTE_TABLE, "update", None), (SUBNET, "replace", None), (VPC, "replace", None)]
    markdown = render(review(None, None, plans))
    assert "Plan: 1 to create, 2 to update, 2 to replace, 0 to destroy, 1 to import\n" in markdown
    assert f"- `import {POLICY}` (from `astronomer-remote-management:data-plane-activation`)\n" in markdown
    assert "aws_availability_zones" not in markdown


ROTATED = "ExternalId changed: `astro-3f9c2b7e` → `astro-rotated`: the cluster with the old id loses access"


def test_every_replacement_names_the_attributes_that_force_it(plans):
    stack = only(review(None, None, plans), "globex")
    assert stack.warnings == [ROTATED, f"replaces `{SUBNET}` (forced by `vpc_id`)",
                              f"replaces `{VPC}` (forced by `cidr_block`)"]
    markdown = render(review(None, None, plans))
    assert (f"- `-/+ {VPC}` (forced by `cidr_block`)\n"
            '  - `cidr_block`: `"172.20.0.0/19"` → `"172.24.0.0/19"`\n') in markdown
    assert f'- `-/+ {SUBNET}` (forced by `vpc_id`)\n  - `vpc_id`: `"vpc-0aaa"` → (known after apply)\n' in markdown


def test_nested_paths_and_replacements_no_attribute_forces(tmp_path):
    group = {"ingress": [{"cidr_blocks": ["10.0.0.0/8"], "from_port": 443}], "tags": {"Name": "a"}}
    document = plan_document([
        resource("aws_security_group.web", ["create", "delete"], group,
                 {"ingress": [{"cidr_blocks": ["10.1.0.0/16"], "from_port": 443}], "tags": {"Name": "b"}},
                 replace_paths=[["tags", "Name"], ["ingress", 0, "cidr_blocks"]]),
        resource("aws_instance.tainted", ["delete", "create"], {"ami": "ami-1"}, {"ami": "ami-1"},
                 action_reason="replace_because_tainted"),
    ])
    plan = read_plan("x", tmp_path / "x.plan.json", json.dumps(document).encode())
    [tainted, web] = plan.resources
    assert [(a.path, a.before, a.after) for a in web.attributes] == [
        ("ingress[0].cidr_blocks", '["10.0.0.0/8"]', '["10.1.0.0/16"]'), ("tags.Name", '"a"', '"b"')]
    assert (tainted.action, tainted.attributes, tainted.reason) == ("replace", (), "tainted")


def test_drift_is_reported_apart_from_the_change_as_terraform_reports_it(plans):
    stack = only(review(None, None, plans), "globex")
    assert [(d.address, d.deleted, [(a.path, a.before, a.after) for a in d.attributes]) for d in stack.plan.drift] == [
        (ROUTE, True, []), (VPC, False, [("enable_dns_hostnames", "true", "false")])]
    # The role's inline_policy refreshed with the stack's own policy is not relevant to the plan: no drift.
    assert not any("drift" in w or "inline_policy" in w for w in stack.warnings)
    markdown = render(review(None, None, plans))
    section = markdown[markdown.index("### `globex`"):markdown.index("### `hooli`")]
    plan_list, drift = section.split("Drift: changed outside Terraform, found by refresh (not part of this change):\n")
    assert f"`+ {ROUTE}`" in plan_list and "deleted outside Terraform" not in plan_list
    assert drift.startswith(f"- `{ROUTE}`: deleted outside Terraform\n- `{VPC}`: changed\n"
                            "  - `enable_dns_hostnames`: `true` → `false`\n")
    assert "inline_policy" not in markdown


def test_refresh_only_plan_reports_all_drift(tmp_path):
    document = globex_plan()
    del document["resource_changes"], document["relevant_attributes"]
    plan = read_plan("globex", tmp_path / "globex.plan.json", json.dumps(document).encode())
    assert [(d.address, [a.path for a in d.attributes]) for d in plan.drift] == [
        (ROLE, ["inline_policy"]), (ROUTE, []), (VPC, ["enable_dns_hostnames"])]


def test_trust_and_permissions_come_from_the_plan_in_the_configuration_diff_s_words(plans, tmp_path):
    assert only(review(None, None, plans), "globex").changes == []
    granted = write_plans(tmp_path / "granted", {"acme": plan_document([
        resource(POLICY, ["update"], {"policy": permissions("iam:GetRole")},
                 {"policy": permissions("iam:GetRole", "ec2:DescribeVpcs")})])})
    stack = only(review(None, None, granted), "acme")
    assert (stack.status, stack.changes, stack.warnings) == (
        "changed", [], ["permissions widened: IAM actions granted: `ec2:DescribeVpcs`, beside the 1 granted before"])


def test_sensitive_values_are_never_printed(plans):
    report = review(None, None, plans)
    for text in (render(report), render(report, "json"), *split(report, 1_000)):
        assert not [secret for secret in SECRETS if secret in text]
    [table] = [r for r in only(report, "globex").plan.resources if r.address == ROUTE_TABLE]
    assert [(a.path, a.before, a.after) for a in table.attributes] == [
        ("tags.Name", '"globex-private"', '"globex-rt"'), ("tags.owner-token", "(sensitive)", "(sensitive)"),
        ("tags_all.Name", '"globex-private"', '"globex-rt"'), ("tags_all.owner-token", "(sensitive)", "(sensitive)")]


def test_a_value_wholly_sensitive_is_shown_as_sensitive(tmp_path):
    """A mask of `true` for the whole object, as for a resource whose every attribute is sensitive."""
    document = plan_document([resource("aws_ssm_parameter.token", ["update"],
                                       {"description": "old", "value": "hunter2"}, {"description": "new",
                                                                                    "value": "swordfish"},
                                       before_sensitive={"value": True}, after_sensitive=True)])
    [parameter] = read_plan("x", tmp_path / "x.plan.json", json.dumps(document).encode()).resources
    assert [(a.path, a.before, a.after) for a in parameter.attributes] == [
        ("description", '"old"', "(sensitive)"), ("value", "(sensitive)", "(sensitive)")]


def test_a_destroy_plan_destroys_the_whole_stack(plans):
    stack = only(review(None, None, plans), "acme")
    assert (stack.status, stack.plan.counts()["destroy"]) == ("removed", 2)
    assert stack.warnings == ["the plan destroys the whole stack (2 resources)"]
    assert stack.changes == [f"trust principal removed (was `{ROOT}`)", "ExternalId removed (was `astro-acme`)",
                             "IAM actions revoked: `cloudformation:*`, `iam:GetRole`", "IAM resources revoked: `*`"]


def test_an_errored_plan_is_a_warning(tmp_path):
    document = {**hooli_drift_plan(), "errored": True}
    stack = only(review(None, None, write_plans(tmp_path / "p", {"hooli": document})), "hooli")
    assert stack.warnings == ["the plan errored: Terraform could not plan everything, so this stack's figures are "
                              "incomplete"]


def test_plans_alone_review_every_plan_file(plans):
    report = review(None, None, plans)
    assert [(s.name, s.status, s.reported) for s in report.stacks] == [
        ("acme", "removed", True), ("globex", "changed", True), ("hooli", "unchanged", True)]
    markdown = render(report)
    assert markdown.startswith("## Data plane review\n\nPlanned against live state: figures marked (plan) are "
                               "Terraform's planned actions.\n\n")
    assert ("**Plans:** 3 stack(s) planned: 1 to create, 2 to update, 2 to replace, 2 to destroy, 1 to import; "
            "drift found in 2 of them\n") in markdown
    assert "### `hooli`: unchanged (plan)\n\nPlan: no changes\n\nDrift:" in markdown


def test_json_carries_the_same_data_and_runs_are_byte_identical(plans):
    markdown, as_json = review_cli("--plans", plans), review_cli("--plans", plans, "--format", "json")
    assert (markdown.returncode, as_json.returncode, markdown.stderr, as_json.stderr) == (0, 0, "", "")
    assert (markdown.stdout, as_json.stdout) == (review_cli("--plans", plans).stdout,
                                                 review_cli("--plans", plans, "--format", "json").stdout)
    report = review(None, None, plans)
    document = json.loads(as_json.stdout)
    assert document["plans"] == {"stacks": 3, "drifted": 2, "create": 1, "update": 2, "replace": 2, "destroy": 2,
                                 "import": 1, "forget": 0}
    for item in document["stacks"]:
        stack = only(report, item["name"])
        assert (item["basis"], item["warnings"], item["changes"]) == ("plan", stack.warnings, stack.changes)
        assert item["plan"]["counts"] == stack.plan.counts()
        assert [d["address"] for d in item["plan"]["drift"]] == [d.address for d in stack.plan.drift]
        for warning in item["warnings"]:
            assert f"> - `{item['name']}`: {warning}\n" in markdown.stdout
    [vpc_change] = [r for r in document["stacks"][1]["plan"]["resources"] if r["address"] == VPC]
    assert vpc_change == {"address": VPC, "action": "replace", "reason": None, "imported_from": None, "attributes": [
        {"path": "cidr_block", "before": '"172.20.0.0/19"', "after": '"172.24.0.0/19"'}]}


# ---------------------------------------------------------------- with the configuration diff


def stack_doc(external_id: str, cidr: str | None = None) -> dict:
    """A synthesized `cdk.tf.json`, cut to what the review reads."""
    resources = {"aws_iam_role": {"cross-account-role_F7C11791": {
        "name": "astronomer-remote-management", "assume_role_policy": trust(external_id)}}}
    if cidr:
        resources["aws_vpc"] = {"network_vpc_4E8F0223": {"cidr_block": cidr}}
    return {"provider": {"aws": [{"allowed_account_ids": ["210987654321"], "region": "us-west-2"}]},
            "resource": resources}


def outdir(root: Path, stacks: dict[str, dict]) -> Path:
    manifest = {"stacks": {name: {"synthesizedStackPath": f"stacks/{name}/cdk.tf.json"} for name in stacks}}
    for name, document in stacks.items():
        (root / "stacks" / name).mkdir(parents=True)
        (root / "stacks" / name / "cdk.tf.json").write_text(json.dumps(document))
    (root / "manifest.json").write_text(stable_json(manifest))
    return root


@pytest.fixture
def synthesized_pair(tmp_path) -> tuple[Path, Path]:
    """acme removed, globex re-CIDRed with its ExternalId rotated, initech added, hooli and umbrella unchanged."""
    same = {"hooli": stack_doc("astro-hooli"), "umbrella": stack_doc("astro-umbrella")}
    base = outdir(tmp_path / "base", {"acme": stack_doc("astro-acme"),
                                      "globex": stack_doc("astro-3f9c2b7e", "172.20.0.0/19"), **same})
    head = outdir(tmp_path / "head", {"globex": stack_doc("astro-rotated", "172.24.0.0/19"),
                                      "initech": stack_doc("astro-initech"), **same})
    return base, head


def test_a_predicted_replacement_the_plan_does_not_confirm_is_no_root_cause(synthesized_pair, tmp_path):
    """The plan is the truth: when it replaces nothing, the configuration's guess is not said at all."""
    document = globex_plan()
    for change in document["resource_changes"]:
        if change["change"]["actions"] == ["delete", "create"]:
            change["change"]["actions"] = ["update"]
            change["change"].pop("replace_paths", None)
    globex = only(review(*synthesized_pair, write_plans(tmp_path / "updates", {"globex": document})), "globex")
    assert globex.warnings == [ROTATED]


def test_with_base_and_head_every_planned_stack_gets_the_plan_s_figures(synthesized_pair, plans):
    report = review(*synthesized_pair, plans)
    assert report.summary() == {"added": 1, "removed": 1, "changed": 1, "unchanged": 2}
    assert report.affected == ["globex", "initech"]
    globex = only(report, "globex")
    assert globex.warnings == [  # most severe first: the cause the plan confirms, access, the replacements
        f"root cause: network CIDR changed `172.20.0.0/19` → `172.24.0.0/19`: replaces the VPC (`{VPC}`) and "
        "everything in it: subnets, route table, routes and the peering", ROTATED,
        f"replaces `{SUBNET}` (forced by `vpc_id`)", f"replaces `{VPC}` (forced by `cidr_block`)"]
    assert globex.changes == []
    markdown = render(report)
    assert "predicted" not in markdown[markdown.index("### `globex`"):markdown.index("### `hooli`")]
    assert "### `acme`: removed (plan)\n\n- ⚠️ **the plan destroys the whole stack (2 resources)**" in markdown
    assert "### `hooli`: unchanged (plan)" in markdown
    assert "### `initech`: added (configuration diff only)" in markdown
    assert "Resource blocks: 1 added, 0 changed, 0 removed in the configuration" in markdown
    assert ("Stacks marked (configuration diff only) had no plan: their counts are of resource blocks in the "
            "configuration, not Terraform actions.") in markdown.splitlines()[2]
    assert markdown.endswith("Unchanged (1): `umbrella`\n")


def test_without_a_plan_the_configuration_guess_stays_predicted(synthesized_pair, tmp_path):
    report = review(*synthesized_pair, tmp_path / "no-plans-were-made")
    globex = only(report, "globex")
    assert (globex.plan, globex.warnings[0][:33]) == (None, "predicted replacement: network CI")
    assert [s.name for s in report.stacks if s.reported] == ["acme", "globex", "initech"]


def test_a_plan_for_a_stack_in_neither_side_is_refused(synthesized_pair, tmp_path):
    strays = write_plans(tmp_path / "strays", {"wayne": hooli_drift_plan()})
    with pytest.raises(ReviewError, match="plan for 'wayne', a stack in neither"):
        review(*synthesized_pair, strays)


# ---------------------------------------------------------------- bad plans


@pytest.mark.parametrize("content, message", [
    (b'{"format_version": "1.2", "resource_changes": [', "not valid JSON ("),
    (b"[]", "not a JSON object"),
    (b'{"resource_changes": []}', "not a Terraform JSON plan (`terraform show -json`): no format_version 1.x"),
    (b'{"format_version": "1.2", "resource_changes": {}}', "resource_changes is not a list"),
    (b'{"format_version": "1.2", "resource_changes": [{"address": "aws_vpc.v"}]}',
     "resource_changes[0] is not a resource change (address, type, change.actions)"),
    (json.dumps(plan_document([resource(VPC, ["delete", "update"], vpc("a"), vpc("b"))])).encode(),
     f"{VPC}: unknown actions ['delete', 'update']"),
])
def test_a_plan_that_cannot_be_read_is_refused_naming_the_file(tmp_path, content, message):
    plans = write_plans(tmp_path / "plans", {"hooli": hooli_drift_plan()})
    (plans / "globex.plan.json").write_bytes(content)
    with pytest.raises(ReviewError) as refused:
        review(None, None, plans)
    assert str(refused.value).startswith(f"{plans / 'globex.plan.json'}: {message}")
    done = review_cli("--plans", plans)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"review: {plans / 'globex.plan.json'}: ") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("made", [False, True])
def test_no_plans_at_all_is_a_review_that_says_so(tmp_path, made):
    """A pull request that touches no stack, or whose plans all failed: the sticky comment still gets a review."""
    plans = tmp_path / "plans"
    if made:
        plans.mkdir()
    done = review_cli("--plans", plans)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == ("## Data plane review\n\nNo plans: no stack was planned (no stack changed, or every plan "
                           "failed).\n\n**Customers:** 0 added, 0 removed, 0 changed, 0 unchanged\n")
    assert json.loads(review_cli("--plans", plans, "--format", "json").stdout)["plans"] == {
        "stacks": 0, "drifted": 0, "create": 0, "update": 0, "replace": 0, "destroy": 0, "import": 0, "forget": 0}


def test_no_plans_beside_the_configuration_diff_is_said_too(synthesized_pair, tmp_path):
    (tmp_path / "plans").mkdir()
    done = review_cli("--base", synthesized_pair[0], "--head", synthesized_pair[1], "--plans", tmp_path / "plans")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[2] == f"{NO_PLANS} {CONFIGURATION_ONLY}"
    assert "**Plans:**" not in done.stdout and "### `globex`: changed (configuration diff only)" in done.stdout


def test_plans_that_are_a_file_are_refused(tmp_path):
    (tmp_path / "plans").write_text("not a directory")
    done = review_cli("--plans", tmp_path / "plans")
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1)


# ---------------------------------------------------------------- real terraform output


def test_reads_what_terraform_show_json_writes(tmp_path):
    """A real plan (offline: no refresh, the provider from the project's mirror) of a new stack's resources."""
    policy = json.loads(permissions("iam:GetRole"))
    config = {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSION}}},
        "provider": {"aws": [{"region": "us-east-1", "skip_credentials_validation": True, "access_key": "x",
                              "skip_requesting_account_id": True, "skip_metadata_api_check": True, "secret_key": "x"}]},
        "resource": {"aws_vpc": {"v": {"cidr_block": "10.0.0.0/16"}},
                     "aws_iam_role": {"r": {"name": "r", "assume_role_policy": trust("astro-real")}},
                     "aws_iam_role_policy": {"p": {"name": "p", "role": "${aws_iam_role.r.id}",
                                                   "policy": json.dumps(policy)}}}}
    (tmp_path / "main.tf.json").write_text(json.dumps(config))
    env = tool_environment()
    for argv in (["init", "-input=false"], ["plan", "-refresh=false", "-input=false", "-out", "p"]):
        subprocess.run(["terraform", *argv, "-no-color"], cwd=tmp_path, env=env, capture_output=True, timeout=300,
                       check=True)
    shown = subprocess.run(["terraform", "show", "-json", "p"], cwd=tmp_path, env=env, capture_output=True,
                           timeout=300, check=True).stdout
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "fresh.plan.json").write_bytes(shown)
    stack = only(review(None, None, plans), "fresh")
    assert (stack.status, stack.plan.counts()["create"], stack.warnings) == ("added", 3, [])
    assert stack.changes == [f"trust principal set: `{ROOT}`", "ExternalId set: `astro-real`",
                             "IAM actions granted: `iam:GetRole`", "IAM resources granted: `*`"]


# ---------------------------------------------------------------- what a security reviewer must see

CONTROL_PLANE_ROLE = "arn:aws:iam::406882777402:role/control-plane"
GLOBEX, ACME = "210987654321", "123456789012"
ATTACHMENT = "aws_iam_role_policy_attachment.cross-account-role_managed-0_1A2B3C4D"
ALARM_EMAIL = "aws_sns_topic_subscription.tamper-alarm_email_5E6F7A8B"
PEERING = "aws_vpc_peering_connection.peering_connection_E7A626F9"


def in_account(document: dict, account: str) -> dict:
    """`document` with its configuration's default aws provider allowed only `account`, as cdktf synthesizes it."""
    document["configuration"]["provider_config"] = {"aws": {"name": "aws", "full_name": PROVIDER, "expressions": {
        "allowed_account_ids": {"constant_value": [account]}, "region": {"constant_value": "us-west-2"}}}}
    return document


def trusted(principal: str, *external_ids: str, boundary: str = "") -> dict:
    ids = external_ids[0] if len(external_ids) == 1 else list(external_ids)
    return {**role("unused"), "permissions_boundary": boundary,
            "assume_role_policy": json.dumps(policy.trust_policy(principal, ids))}


def guarded(boundary: str, *extra: dict) -> dict:
    document = policy.permissions_policy(policy.delegation_guard(boundary, GLOBEX, policy.ROLE_NAME))
    return {"policy": json.dumps({**document, "Statement": document["Statement"] + list(extra)})}


def security_plan() -> dict:
    """globex's plan: every change a security reviewer must see, at once."""
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}
    boundary = f"arn:aws:iam::{GLOBEX}:policy/Boundary"
    return in_account(plan_document([
        resource(ROLE, ["update"], trusted(CONTROL_PLANE_ROLE, "astro-a", boundary=boundary),
                 trusted(ROOT, "astro-a", "astro-b")),
        resource(POLICY, ["update"], guarded("boundaries/A"), guarded("boundaries/B", read)),
        resource(ATTACHMENT, ["create"], None, {"policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
                                                "role": "astronomer-remote-management"}),
        resource(ALARM_EMAIL, ["update"], {"endpoint": "soc@globex.example", "protocol": "email"},
                 {"endpoint": "attacker@evil.example", "protocol": "email"}),
        resource(PEERING, ["create"], None, {"peer_owner_id": ACME, "peer_vpc_id": "vpc-0fff", "vpc_id": "vpc-0aaa"}),
    ]), GLOBEX)


def test_every_change_a_security_reviewer_must_see_is_a_warning_with_before_and_after(tmp_path):
    acme = in_account(plan_document([resource(ROLE, ["no-op"], role("astro-acme"), role("astro-acme"))]), ACME)
    plans = write_plans(tmp_path / "plans", {"globex": security_plan(), "acme": acme})
    report = review(None, None, plans)
    globex = only(report, "globex")
    guard = f"arn:aws:iam::{GLOBEX}:policy/boundaries/"
    assert globex.warnings == [
        f"trust principal widened to the account root: `{CONTROL_PLANE_ROLE}` → `{ROOT}`",
        "ExternalId `astro-b` added to the trust (before: `astro-a`): that cluster gains access",
        "permissions widened: IAM actions granted: `s3:GetObject`, beside the 8 granted before",
        "permissions widened: IAM resources granted: `arn:aws:s3:::data/*`, beside the 1 granted before",
        "managed policies attached: `arn:aws:iam::aws:policy/ReadOnlyAccess` (before: none)",
        f"permissions boundary removed (was `arn:aws:iam::{GLOBEX}:policy/Boundary`): the role's permissions are no "
        "longer capped",
        f"escalation guard boundary changed: `{guard}A` → `{guard}B`",
        "tamper alarm email changed: `soc@globex.example` → `attacker@evil.example`, which must confirm the "
        "subscription",
        f"peering into another customer's data-plane account: `vpc-0fff` in account `{ACME}`, `acme`'s (before: "
        "none)",
    ]
    assert globex.changes == []
    markdown = render(report)
    assert all(f"> - `globex`: {warning}\n" in markdown and f"- ⚠️ **{warning}**\n" in markdown
               for warning in globex.warnings)
    assert json.loads(render(report, "json"))["stacks"][0]["warnings"] == globex.warnings


def test_the_same_warning_in_many_stacks_is_said_once_in_the_digest_but_for_their_own_account(tmp_path):
    """A setting that attaches a policy by name: each stack's ARN is in its own account, and the digest says it once."""
    def attaching(account: str) -> dict:
        return in_account(plan_document([resource(ATTACHMENT, ["create"], None, {
            "policy_arn": f"arn:aws:iam::{account}:policy/team/Extra", "role": "astronomer-remote-management"})]),
            account)
    accounts = {f"c{n}": f"1000000000{n:02d}" for n in range(5)}
    report = review(None, None, write_plans(tmp_path / "p", {name: attaching(a) for name, a in accounts.items()}))
    assert [s.warnings for s in report.stacks] == [
        [f"managed policies attached: `arn:aws:iam::{account}:policy/team/Extra` (before: none)"]
        for account in accounts.values()]
    markdown = render(report)
    assert ("> [!WARNING]\n> 5 warning(s), each also in its stack's section:\n"
            "> - 5 stacks (`c0`, `c1`, `c2` and 2 more): managed policies attached: "
            "`arn:aws:iam::{account}:policy/team/Extra` (before: none)\n\n") in markdown
    assert markdown.count("- ⚠️ **managed policies attached: ") == 5


# ---------------------------------------------------------------- values from AWS and plans are inert Markdown

HOSTILE = ("multi\nline\n### pwned", "tick`s ``here``", "<!-- hidden", "<img src=x onerror=alert(1)>", "@team",
           "@org/security", "[x](http://evil.example)", "<http://evil.example>", "&lt;b&gt;", "`", "a\r\n\r\n# top")
"""Tag keys and values a stranger with write access to a customer's account could set."""
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.*?)(?<!`)\1(?!`)")
"""A CommonMark code span: a run of backticks, then the nearest run of exactly as many."""


def outside_code(markdown: str) -> str:
    return "\n".join(CODE_SPAN.sub("", line) for line in markdown.splitlines())


def code_contents(markdown: str) -> set[str]:
    """What each code span shows: its content, one space each side dropped where it has both."""
    found = set()
    for line in markdown.splitlines():
        for match in CODE_SPAN.finditer(line):
            text = match[2]
            found.add(text[1:-1] if text.startswith(" ") and text.endswith(" ") and text.strip() else text)
    return found


def assert_inert(markdown: str, stack_headings: int) -> None:
    """Nothing but code spans carries a value: no HTML, comment, link, autolink or mention outside them, and no
    line a value started."""
    outside = outside_code(markdown)
    assert not [c for c in ("<", "@", "](", "http", "&", "`") if c in outside], outside
    assert not [line for line in markdown.splitlines() if "pwned" in line.split("`")[0] or "top" == line[2:]]
    assert sum(line.startswith("### ") for line in markdown.splitlines()) == stack_headings


@pytest.mark.parametrize("value, shown", [
    ("a", "a"), ("a`b", "a`b"), ("`x", "`x"), ("x```y`", "x```y`"), (" a ", " a "), ("", " "),
    ("l1\nl2\r\nl3\u2028", "l1⏎l2⏎l3⏎"), ("\u202eevil\x00", "\ufffdevil\ufffd")])
def test_a_value_is_one_code_span_that_shows_it(value, shown):
    span = code(value)
    assert CODE_SPAN.fullmatch(span) and code_contents(span) == {shown}


def test_values_from_a_plan_are_shown_exactly_and_inert(tmp_path):
    tags = {key: value for key, value in zip(HOSTILE, reversed(HOSTILE))}
    hostile_vpc = 'aws_vpc.network["<!-- @team `x`"]'
    document = plan_document([
        resource(VPC, ["update"], vpc("172.20.0.0/19"), {**vpc("172.20.0.0/19"), "tags": tags}),
        resource(hostile_vpc, ["delete", "create"], {"cidr_block": "10.0.0.0/16", "tags": {}},
                 {"cidr_block": "10.0.0.0/16", "tags": tags}, replace_paths=[["tags", k] for k in HOSTILE]),
        resource(ROUTE_TABLE, ["no-op"], {"id": "rtb"}, {"id": "rtb"}, importing={"id": "<img src=x> @team\nnext"}),
    ], drift=[resource(VPC, ["update"], vpc("172.20.0.0/19"), {**vpc("172.20.0.0/19"), "tags": tags})],
        relevant=[(VPC, ["tags"])])
    plans = write_plans(tmp_path / "plans", {"globex": document})
    done = review_cli("--plans", plans)
    assert (done.returncode, done.stderr) == (0, "")
    assert_inert(done.stdout, 1)
    shown = code_contents(done.stdout)
    for key in HOSTILE:
        path = f"tags.{key}".replace("\r\n", "⏎").replace("\n", "⏎")
        assert path in shown
        assert json.dumps(tags[key], ensure_ascii=False) in shown  # values as JSON: a newline is `\n`
    assert f"-/+ {hostile_vpc}" in shown and "<img src=x> @team⏎next" in shown
    assert f"replaces {hostile_vpc}" not in outside_code(done.stdout)


def test_a_part_never_ends_inside_a_value(tmp_path):
    """A value longer than a part is cut before its code span, never inside it (the rest would be Markdown)."""
    key = "<!-- " + "@team " * 400
    document = plan_document([resource(VPC, ["update"], vpc("172.20.0.0/19"),
                                       {**vpc("172.20.0.0/19"), "tags": {key: "<img src=x>"}})])
    report = review(None, None, write_plans(tmp_path / "plans", {"globex": document}))
    parts = split(report, 1_000)
    assert max(map(len, parts)) <= 1_000 and any("(truncated: " in part for part in parts)
    for part in parts:
        assert "<" not in outside_code(part) and "@" not in outside_code(part)
