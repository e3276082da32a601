"""Drift's findings and report, from refresh-only plans in terraform's shape; where it looks for a state; its input.

The plan files are `terraform plan -refresh-only -out` as terraform 1.11 writes them: a zip archive whose
`tfstate-prev` (the state before the refresh: serial 0, no lineage) and `tfstate` (after it) are state files of
format 4, each resource with its instances' `attributes` and `sensitive_attributes` (cty paths: `get_attr` and
`index` steps, the schema's sensitive attributes among them), beside the stack's synthesized `cdk.tf.json`.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import boto3
import pytest

from dataplane.config.settings import Settings
from dataplane.ops import cli
from dataplane.ops.account import aws
from dataplane.ops.fleet import drift, plan
from dataplane.ops.fleet.plan import Target
from dataplane.project import CUSTOMERS_DIR_ENV
from tests.conftest import FIXTURES
from tests.test_plan_review import (
    HOSTILE,
    PROVIDER,
    ROLE,
    ROUTE,
    ROUTE_TABLE,
    VPC,
    ZONES,
    assert_inert,
    code_contents,
    role,
    route,
    vpc,
)

PEERING = "aws_vpc_peering_connection.peering_connection_E7A626F9"
INTRUDER = "arn:aws:iam::123456789012:root"
BLOCKS = {ROLE: ["assume_role_policy", "description", "max_session_duration", "name"],
          ROUTE: ["destination_cidr_block", "route_table_id", "vpc_peering_connection_id"],
          ROUTE_TABLE: ["tags", "vpc_id"], VPC: ["cidr_block", "enable_dns_hostnames", "enable_dns_support", "tags"],
          PEERING: ["peer_owner_id", "peer_region", "peer_vpc_id", "tags", "vpc_id"]}
"""The globex stack's resource blocks (some of them) and the attributes each sets, as synthesized."""
TOKEN = [{"type": "get_attr", "value": "tags"}, {"type": "index", "value": {"value": "token", "type": "string"}}]
"""The path of a sensitive tag, as `sensitive_attributes` lists it."""


def stack_file() -> dict:
    """The globex stack's `cdk.tf.json` with `BLOCKS`, as cdktf synthesizes it (metadata, a provider alias, a
    dependency: meta-arguments, not attributes)."""
    resources: dict[str, dict] = {}
    for address, keys in BLOCKS.items():
        rtype, name = address.split(".")
        block = {"//": {"metadata": {"path": f"globex/{name}", "uniqueId": name}}, **{key: "…" for key in keys}}
        resources.setdefault(rtype, {})[name] = block
    resources["aws_route"][ROUTE.split(".")[1]].update(provider="aws.peer", depends_on=[PEERING])
    return {"//": {"metadata": {"backend": "local", "stackName": "globex", "version": "0.21.0"}},
            "provider": {"aws": [{"allowed_account_ids": ["210987654321"], "region": "us-west-2"},
                                 {"alias": "peer", "allowed_account_ids": ["123456789012"], "region": "us-west-2"}]},
            "resource": resources,
            "terraform": {"backend": {"local": {"path": "../../../terraform-state/globex.tfstate"}},
                          "required_providers": {"aws": {"source": "aws", "version": "5.100.0"}}}}


def state(values: dict[str, dict], refreshed: bool = True, sensitive: dict[str, list] | None = None) -> dict:
    """A state file in a plan file: one instance of each address (`module.m.type.name`, `[0]` or `["key"]` for an
    instance of `count` or `for_each`) with its attribute `values`, sensitive paths from `sensitive` (else the
    VPC's `tags.token`)."""
    sensitive = {VPC: [TOKEN]} if sensitive is None else sensitive
    resources: dict[tuple, dict] = {}
    for address, attributes in values.items():
        module, mode, rtype, name, key = re.fullmatch(
            r"(module\.[^.]+\.)?(data\.)?([^.]+)\.([^.\[]+)(?:\[(.+)\])?", address).groups()
        resource = resources.setdefault((module, mode, rtype, name), {
            **({"module": module[:-1]} if module else {}), "mode": "data" if mode else "managed", "type": rtype,
            "name": name, "provider": f'provider["{PROVIDER}"]', "instances": []})
        instance = {**({"index_key": json.loads(key)} if key else {}), "schema_version": 0,
                    "attributes": attributes, "sensitive_attributes": sensitive.get(address, []),
                    "private": "bnVsbA=="}
        resource["instances"].append(instance if mode else {**instance, "dependencies": []})
    return {"version": 4, "terraform_version": "1.11.4", "serial": 3 if refreshed else 0,
            "lineage": "ca7b8e78-60d7-a446-3bde-85fba4047d0c" if refreshed else "",
            "outputs": {"role_name": {"value": "astronomer-remote-management", "type": "string"}},
            "resources": list(resources.values()), "check_results": None}


def plan_file(path: Path, entries: dict[str, dict]) -> Path:
    """A saved plan at `path` holding the state files `entries` (`tfstate-prev`, `tfstate`) beside what else
    terraform puts there."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tfplan", b"\x0a\x04plan")  # terraform's own encoding (protobuf), never read
        for entry, document in entries.items():
            archive.writestr(entry, json.dumps(document, indent=2))
        archive.writestr("tfconfig/m-/cdk.tf.json", json.dumps(stack_file()))
        archive.writestr("tfconfig/modules.json", json.dumps([{"Key": "", "Dir": "."}]))
    return path


def finding(tmp_path: Path, previous: dict[str, dict], refreshed: dict[str, dict], name: str = "globex",
            sensitive: dict[str, list] | None = None) -> drift.StackDrift:
    """The finding of a refresh-only plan of the globex stack whose states hold these values before and after."""
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    (directory / "cdk.tf.json").write_text(json.dumps(stack_file()))
    saved = plan_file(directory / f"{name}.tfplan", {"tfstate-prev": state(previous, False, sensitive),
                                                      "tfstate": state(refreshed, True, sensitive)})
    return drift.read_finding(name, saved, directory / "cdk.tf.json")


TABLE = {"id": "rtb-0bbb", "route": [], "tags": {"Name": "globex-private"},
         "tags_all": {"Name": "globex-private", "customer": "globex"}, "vpc_id": "vpc-0aaa"}
PEERED = {"accept_status": "pending-acceptance", "accepter": [{"allow_remote_vpc_dns_resolution": False}],
          "id": "pcx-0ccc", "peer_vpc_id": "vpc-0ddd", "tags": {"Name": "globex"}}


def deployed() -> dict[str, dict]:
    """The globex stack's resources as its state holds them right after a deploy (a tag of the VPC sensitive)."""
    network = vpc("172.20.0.0/19")
    return {ROLE: {**role("astro-3f9c2b7e"), "tags": None}, ROUTE: route(), ROUTE_TABLE: TABLE, PEERING: PEERED,
            VPC: {**network, "tags": {**network["tags"], "token": "sw0rd"},
                  "tags_all": {**network["tags_all"], "token": "sw0rd"}},
            ZONES: {"id": "us-west-2", "names": ["us-west-2a"]}}


def echoed() -> dict[str, dict]:
    """The stack refreshed right after a deploy: its own resources seen in their parents (a role's inline policy, a
    route table's routes, a peering's status and options), a data source read anew."""
    policy = {"name": "data-plane-activation", "policy": '{"Statement":[]}'}
    routed = [{"cidr_block": "10.10.0.0/16", "gateway_id": "", "vpc_peering_connection_id": "pcx-0ccc"}]
    return {**deployed(), ROLE: role("astro-3f9c2b7e", inline=[policy]), ROUTE_TABLE: {**TABLE, "route": routed},
            PEERING: {**PEERED, "accept_status": "active", "accepter": [{"allow_remote_vpc_dns_resolution": True}]},
            ZONES: {"id": "us-west-2", "names": ["us-west-2a", "us-west-2b"]}}


def tampered() -> dict[str, dict]:
    """The echoes, and: the trust rewritten, the customer's route deleted, the VPC renamed (its sensitive tag too)."""
    refreshed = echoed()
    del refreshed[ROUTE]
    trust = refreshed[ROLE]["assume_role_policy"].replace("arn:aws:iam::406882777402:root", INTRUDER)
    network = refreshed[VPC]
    return {**refreshed, ROLE: {**refreshed[ROLE], "assume_role_policy": trust},
            VPC: {**network, "tags": {"Name": "renamed-by-hand", "token": "hunter2"},
                  "tags_all": {**network["tags_all"], "Name": "renamed-by-hand", "token": "hunter2"}}}


def shown(found: drift.StackDrift) -> list[tuple[str, bool, list[tuple[str, str, str]]]]:
    return [(d.address, d.deleted, [(a.path, a.before, a.after) for a in d.attributes]) for d in found.drift]


# ---------------------------------------------------------------- findings


def test_the_echo_of_the_stacks_own_resources_is_not_drift(tmp_path):
    """A role's inline policy, a route table's routes, a peering's status and options: set by the stack's other
    resources after their parent was stored, in attributes the configuration leaves to the provider."""
    assert finding(tmp_path, deployed(), echoed()) == drift.StackDrift("globex", "in sync")
    assert finding(tmp_path, deployed(), deployed()) == drift.StackDrift("globex", "in sync")


def test_deletions_and_changes_to_configured_attributes_are_drift_with_their_values(tmp_path):
    found = finding(tmp_path, deployed(), tampered())
    assert found.status == "drifted"
    [(role_address, role_deleted, [(path, before, after)]), deleted, renamed] = shown(found)
    assert (role_address, role_deleted, path) == (ROLE, False, "assume_role_policy")
    assert "arn:aws:iam::406882777402:root" in before and INTRUDER in after and INTRUDER not in before
    assert deleted == (ROUTE, True, [])
    assert renamed == (VPC, False, [("tags.Name", '"globex"', '"renamed-by-hand"'),
                                    ("tags.token", "(sensitive)", "(sensitive)"),
                                    ("tags_all.Name", '"globex"', '"renamed-by-hand"'),
                                    ("tags_all.token", "(sensitive)", "(sensitive)")])


def test_a_resource_the_configuration_does_not_list_keeps_all_its_drift(tmp_path):
    module = "module.legacy.aws_security_group.web"
    found = finding(tmp_path, {**deployed(), module: {"ingress": []}}, {**deployed(), module: {"ingress": ["0/0"]}})
    assert shown(found) == [(module, False, [("ingress", "[]", '["0/0"]')])]


def test_instances_of_count_and_for_each_are_addressed_by_their_keys(tmp_path):
    routes = {f"{ROUTE}[0]": route("rtb-0aaa"), f"{ROUTE}[1]": route("rtb-0bbb"),
              f'{ROUTE}["rtb-0ccc"]': route("rtb-0ccc")}
    refreshed = {**routes, f"{ROUTE}[0]": {**route("rtb-0aaa"), "vpc_peering_connection_id": "pcx-0fff"}}
    del refreshed[f'{ROUTE}["rtb-0ccc"]']
    found = finding(tmp_path, routes, refreshed)
    assert shown(found) == [(f'{ROUTE}["rtb-0ccc"]', True, []),
                            (f"{ROUTE}[0]", False, [("vpc_peering_connection_id", '"pcx-0ccc"', '"pcx-0fff"')])]


def test_a_deposed_object_is_not_compared(tmp_path):
    """`create_before_destroy` left an old object beside the current one: the refresh's drift is the current's."""
    previous = state({ROUTE: route()}, False)
    previous["resources"][0]["instances"].append({**previous["resources"][0]["instances"][0], "deposed": "00b3c5e1",
                                                  "attributes": route("rtb-0old")})
    saved = plan_file(tmp_path / "globex.tfplan", {"tfstate-prev": previous, "tfstate": state({ROUTE: route()})})
    (tmp_path / "cdk.tf.json").write_text(json.dumps(stack_file()))
    assert drift.read_finding("globex", saved, tmp_path / "cdk.tf.json") == drift.StackDrift("globex", "in sync")


def test_a_path_sensitive_beyond_what_the_values_show_masks_the_value_where_they_end(tmp_path):
    """A `terraform_data`'s `input` (dynamic: stored with its type) and a set's element (indexed by its value): the
    path cannot be followed in the values, so the value where it stops is masked whole."""
    data = "terraform_data.settings"
    stored = {"id": "818eec5f", "input": {"value": {"list": ["a", "sw0rd"]}, "type": [
        "object", {"list": ["tuple", ["string", "string"]]}]}}
    changed = {**stored, "input": {**stored["input"], "value": {"list": ["b", "hunter2"]}}}
    paths = {data: [[{"type": "get_attr", "value": "input"}, {"type": "get_attr", "value": "list"},
                     {"type": "index", "value": {"value": 1, "type": "number"}}]]}
    found = finding(tmp_path, {data: stored}, {data: changed}, sensitive=paths)
    assert shown(found) == [(data, False, [("input", "(sensitive)", "(sensitive)")])]


def test_a_list_element_sensitive_is_masked_alone(tmp_path):
    group = "aws_security_group.web"
    stored = {"ingress": [{"cidr": "10.0.0.0/8"}, {"cidr": "s3cret"}], "name": "web"}
    changed = {"ingress": [{"cidr": "10.1.0.0/16"}, {"cidr": "hunter2"}], "name": "web"}
    paths = {group: [[{"type": "get_attr", "value": "ingress"}, {"type": "index", "value": {"value": 1,
                                                                                           "type": "number"}}]]}
    found = finding(tmp_path, {group: stored}, {group: changed}, sensitive=paths)
    assert shown(found) == [(group, False, [("ingress", '[{"cidr": "10.0.0.0/8"}, "(sensitive)"]',
                                             '[{"cidr": "10.1.0.0/16"}, "(sensitive)"]')])]


def test_a_state_without_managed_resources_before_the_refresh_is_not_deployed(tmp_path):
    """Everything deleted outside Terraform is drift, not a stack never deployed."""
    assert finding(tmp_path, {}, {}).status == "not deployed"
    assert finding(tmp_path, {ZONES: {"id": "us-west-2"}}, {ZONES: {"id": "us-west-2"}}).status == "not deployed"
    gone = finding(tmp_path, deployed(), {})
    assert [(d.address, d.deleted) for d in gone.drift] == [(address, True) for address in sorted(BLOCKS)]


def test_the_configured_attributes_are_the_resource_blocks_keys_but_meta_arguments(tmp_path):
    configured = drift.configured_attributes(stack_file())
    assert configured[ROUTE] == frozenset(BLOCKS[ROUTE]) | {"tags_all"}
    assert configured == {address: frozenset(keys) | {"tags_all"} for address, keys in BLOCKS.items()}


@pytest.mark.parametrize("entries, error", [
    ({"tfstate": {"version": 4}}, "plan file without tfstate-prev: unsupported terraform version"),
    ({"tfstate-prev": {"version": 4}}, "plan file without tfstate: unsupported terraform version"),
    ({"tfstate-prev": {"version": 5}, "tfstate": {"version": 4}},
     "plan file's tfstate-prev not a state of format 4: unsupported terraform version"),
    (None, "plan file not a zip archive: unsupported terraform version"),
])
def test_a_plan_file_of_another_terraform_is_an_error_on_one_line(tmp_path, entries, error):
    saved = tmp_path / "globex.tfplan"
    if entries is None:
        saved.write_text('{"format_version": "1.2"}')
    else:
        plan_file(saved, entries)
    (tmp_path / "cdk.tf.json").write_text(json.dumps(stack_file()))
    assert drift.read_finding("globex", saved, tmp_path / "cdk.tf.json") == drift.StackDrift(
        "globex", "error", error=error)


def test_a_state_that_is_not_json_is_an_error_naming_it(tmp_path):
    saved = tmp_path / "globex.tfplan"
    with zipfile.ZipFile(saved, "w") as archive:
        archive.writestr("tfstate-prev", "{")
        archive.writestr("tfstate", "{}")
    found = drift.read_finding("globex", saved, tmp_path / "cdk.tf.json")
    assert found.status == "error" and found.error.startswith(f"{saved}/tfstate-prev: not valid JSON (")


def test_terraform_s_error_box_becomes_one_line():
    error = ("terraform plan failed: ╷\n│ Error: AWS account ID not allowed: 999999999999\n│ \n│   with provider"
             '["registry.terraform.io/hashicorp/aws"],\n│   on cdk.tf.json line 39, in provider.aws:\n╵')
    assert drift.one_line(error) == "terraform plan failed: Error: AWS account ID not allowed: 999999999999"
    assert drift.one_line("KeyError: 'provider'\nmore") == "KeyError: 'provider'"
    assert len(drift.one_line("x" * 1000)) <= drift.ERROR_CHARS


@pytest.mark.parametrize("statuses, code", [
    ((), 0), (("in sync", "not deployed"), 0), (("in sync", "drifted"), 2), (("drifted", "error"), 1)])
def test_exit_status_any_error_1_else_any_drift_2_else_0(statuses, code):
    assert drift.exit_status([drift.StackDrift(f"c{i}", s) for i, s in enumerate(statuses)]) == code


def test_a_customer_named_but_not_deployed_is_no_green(fixture_fleet, tmp_path, capsys):
    """`drift acme` of a customer without state: exit 1 and a line that says so, not "in sync"."""
    outdir = tmp_path / "cdktf.out"
    stack(outdir, "acme", {"local": {"path": "../../../terraform-state/acme.tfstate"}})
    assert cli.main(["drift", "--outdir", str(outdir), "acme"]) == 1
    state_file = tmp_path / "terraform-state" / "acme.tfstate"
    assert f"drift: acme is not deployed (no state at {state_file}): nothing to compare\n" in capsys.readouterr().err


# ---------------------------------------------------------------- the report


@pytest.fixture
def fleet(tmp_path) -> list[drift.StackDrift]:
    return sorted([finding(tmp_path, deployed(), tampered()), finding(tmp_path, deployed(), echoed(), "acme"),
                   drift.StackDrift("hooli", "not deployed"), drift.StackDrift("zeta", "not deployed"),
                   drift.StackDrift("initech", "error", error="terraform init failed: Error: Failed to get existing "
                                                              "workspaces: AccessDenied")],
                  key=lambda f: f.name)


def test_the_markdown_report_summarizes_names_every_stack_and_details_drift_and_errors(fleet):
    """Long values are clipped around their first difference, as in the review."""
    markdown = drift.render(fleet)
    trust = next(line for line in markdown.splitlines() if "`assume_role_policy`" in line)
    before, after = trust.split(" → ")
    assert "406882777402:root" in before and INTRUDER in after and before.startswith("  - `assume_role_policy`: `…")
    assert markdown == (
        "Drift: 1 drifted, 1 in sync, 2 not deployed, 1 error\n"
        "\n"
        "Refresh-only plans (`python -m dataplane drift`): what changed outside Terraform in each deployed customer's "
        "stack, found by refreshing its state against its account.\n"
        "\n"
        "- Drifted (1): `globex`\n"
        "- In sync (1): `acme`\n"
        "- Not deployed (2): `hooli`, `zeta`\n"
        "- Errors (1): `initech`\n"
        "\n"
        "### `globex`: drifted\n"
        "\n"
        f"- `{ROLE}`: changed\n"
        f"{trust}\n"
        f"- `{ROUTE}`: deleted outside Terraform\n"
        f"- `{VPC}`: changed\n"
        '  - `tags.Name`: `"globex"` → `"renamed-by-hand"`\n'
        "  - `tags.token`: (sensitive) → (sensitive)\n"
        '  - `tags_all.Name`: `"globex"` → `"renamed-by-hand"`\n'
        "  - `tags_all.token`: (sensitive) → (sensitive)\n"
        "\n"
        "### `initech`: error\n"
        "\n"
        "`terraform init failed: Error: Failed to get existing workspaces: AccessDenied`\n")


def test_the_json_report_holds_the_same_findings(fleet):
    report = json.loads(drift.render(fleet, "json"))
    assert report["summary"] == {"drifted": 1, "in sync": 1, "not deployed": 2, "error": 1}
    assert [(s["name"], s["status"]) for s in report["stacks"]] == [
        ("acme", "in sync"), ("globex", "drifted"), ("hooli", "not deployed"), ("initech", "error"),
        ("zeta", "not deployed")]
    globex, initech = report["stacks"][1], report["stacks"][3]
    assert [(d["address"], d["deleted"], [a["path"] for a in d["attributes"]]) for d in globex["drift"]] == [
        (ROLE, False, ["assume_role_policy"]), (ROUTE, True, []),
        (VPC, False, ["tags.Name", "tags.token", "tags_all.Name", "tags_all.token"])]
    assert initech["error"].startswith("terraform init failed: ")


def test_the_reports_are_deterministic_and_never_show_a_sensitive_value(fleet):
    for fmt in ("markdown", "json"):
        text = drift.render(fleet, fmt)
        assert text == drift.render(list(fleet), fmt)
        assert "hunter2" not in text and "sw0rd" not in text


def test_tags_and_errors_from_aws_are_shown_exactly_and_inert(tmp_path):
    """Tags someone set in the customer's account, and an error AWS returned, through the drift issue's body."""
    tags = {key: value for key, value in zip(HOSTILE, reversed(HOSTILE))}
    network = deployed()[VPC]
    found = [finding(tmp_path, deployed(), {**deployed(), VPC: {**network, "tags": tags, "tags_all": tags}},
                     sensitive={}),
             drift.StackDrift("initech", "error", error=drift.one_line(
                 "Error: AccessDenied: <img src=x> @team `x` [x](http://evil.example) <!--\nsecond line"))]
    markdown = drift.render(found)
    assert_inert(markdown, 2)
    shown = code_contents(markdown)
    assert "Error: AccessDenied: <img src=x> @team `x` [x](http://evil.example) <!--" in shown
    for key in HOSTILE:
        assert f"tags.{key}".replace("\r\n", "⏎").replace("\n", "⏎") in shown
        assert json.dumps(tags[key], ensure_ascii=False) in shown


def test_a_report_too_long_for_an_issue_names_every_stack_and_details_as_many_as_fit(fleet):
    [globex] = [f for f in fleet if f.name == "globex"]
    many = [drift.StackDrift(f"customer-{n:04d}", "drifted", globex.drift) for n in range(300)]
    text = drift.to_markdown(many)
    assert len(text) <= drift.MAX_CHARS
    assert text.startswith("Drift: 300 drifted, 0 in sync, 0 not deployed, 0 errors\n")
    assert all(f"`customer-{n:04d}`" in text.split("\n\n### ")[0] for n in range(300))
    shown_sections = text.count("\n### ")
    assert 0 < shown_sections < 300
    assert text.endswith(f"\n(details of {300 - shown_sections} more stack(s) left out, for GitHub's size limit: "
                         "`python -m dataplane drift` prints them all)\n")


# ---------------------------------------------------------------- where the state is looked for


def stack(outdir: Path, name: str, backend: dict, account: str = "123456789012") -> Target:
    """A synthesized stack with only what drift reads: its backend and its account."""
    directory = outdir / "stacks" / name
    directory.mkdir(parents=True)
    (directory / "cdk.tf.json").write_text(json.dumps({
        "provider": {"aws": [{"allowed_account_ids": [account], "region": "us-east-1"}]},
        "terraform": {"backend": backend}}))
    manifest = outdir / "manifest.json"
    stacks = json.loads(manifest.read_text())["stacks"] if manifest.exists() else {}
    stacks[name] = {"synthesizedStackPath": f"stacks/{name}/cdk.tf.json"}
    manifest.write_text(json.dumps({"stacks": stacks}))
    return Target(name, directory, refresh_only=True)


def test_a_local_state_is_the_file_the_backend_names_beside_the_synth_output(tmp_path, settings):
    target = stack(tmp_path / "cdktf.out", "acme", {"local": {"path": "../../../terraform-state/acme.tfstate"}})
    assert drift.has_state(target, settings) is False
    (tmp_path / "terraform-state").mkdir()
    (tmp_path / "terraform-state" / "acme.tfstate").write_text(json.dumps({"resources": []}))
    assert drift.has_state(target, settings) is False, "a state without resources: destroyed, not deployed"
    (tmp_path / "terraform-state" / "acme.tfstate").write_text(DEPLOYED_STATE)
    assert drift.has_state(target, settings) is True


def test_a_cloud_workspace_is_planned_and_terraform_says(tmp_path, settings):
    target = stack(tmp_path / "cdktf.out", "acme", {"cloud": {"organization": "astro"}})
    assert drift.has_state(target, settings) is True


@pytest.fixture
def s3(emulator, aws_via_emulator, monkeypatch):
    """An S3 state bucket in the emulator, reached as boto3 would in real use, with the CI account's credentials."""
    for name, value in {**emulator.credentials("999999999999"), "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    client = emulator.client("s3", "123456789012", "us-east-1")
    client.create_bucket(Bucket="astro-state")
    return client


DEPLOYED_STATE = json.dumps({"resources": [{"mode": "managed", "type": "aws_iam_role", "name": "role",
                                             "instances": [{"attributes": {"id": "astronomer-remote-management"}}]}]})
S3_BACKEND = {"s3": {"bucket": "astro-state", "key": "dataplane/acme.tfstate", "region": "us-east-1",
                     "encrypt": True, "use_lockfile": True}}


def test_an_s3_state_is_the_object_the_backend_names(s3, tmp_path, settings):
    target = stack(tmp_path / "cdktf.out", "acme", S3_BACKEND)
    assert drift.has_state(target, settings) is False
    s3.put_object(Bucket="astro-state", Key="dataplane/acme.tfstate", Body=DEPLOYED_STATE.encode())
    assert drift.has_state(target, settings) is True


def test_with_a_deploy_role_the_s3_state_is_looked_for_as_the_plan_would(s3, tmp_path, monkeypatch):
    assumed = []

    def assume(session, role_arn, session_name):
        assumed.append((role_arn, session_name))
        return aws_assume(session, role_arn, session_name)

    aws_assume = aws.assume
    monkeypatch.setattr(aws, "assume", assume)
    s3.put_object(Bucket="astro-state", Key="dataplane/acme.tfstate", Body=DEPLOYED_STATE.encode())
    target = stack(tmp_path / "cdktf.out", "acme", S3_BACKEND)
    assert drift.has_state(target, Settings.model_validate({"deployRoleName": "dataplane-deploy"})) is True
    assert assumed == [("arn:aws:iam::123456789012:role/dataplane-deploy", "dataplane-drift-acme")]


ROLES = Settings.model_validate({"planRoleName": "dataplane-plan", "deployRoleName": "dataplane-deploy"})


def test_with_a_plan_role_drift_reads_the_state_as_the_plan_role(s3, tmp_path, monkeypatch):
    assumed = []
    aws_assume = aws.assume
    monkeypatch.setattr(aws, "assume",
                        lambda session, role, name: assumed.append(role) or aws_assume(session, role, name))
    target = stack(tmp_path / "cdktf.out", "acme", S3_BACKEND)
    assert drift.has_state(target, ROLES) is False
    assert assumed == ["arn:aws:iam::123456789012:role/dataplane-plan"]


@pytest.mark.parametrize("read_only, role", [(True, "dataplane-plan"), (False, "dataplane-deploy")])
def test_plans_run_as_the_plan_role_and_applies_as_the_deploy_role_in_the_stack_s_account(s3, tmp_path, read_only,
                                                                                          role):
    """The terraform environment carries the assumed role's keys, not the caller's profile."""
    target = stack(tmp_path / "cdktf.out", "acme", S3_BACKEND, account="210987654321")
    env = plan._Credentials(ROLES, {"AWS_PROFILE": "ci", "PATH": "/bin"}, read_only).environment(target)
    assert "AWS_PROFILE" not in env and env["PATH"] == "/bin"
    keys = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": env["AWS_SESSION_TOKEN"]}
    caller = boto3.client("sts", region_name="us-east-1", **keys).get_caller_identity()
    assert caller["Arn"] == f"arn:aws:sts::210987654321:assumed-role/{role}/dataplane-plan-acme"


def test_an_unreachable_s3_is_that_stack_s_error_and_the_others_are_still_found(s3, tmp_path, settings, monkeypatch):
    outdir = tmp_path / "cdktf.out"
    targets = [stack(outdir, "acme", S3_BACKEND),
               stack(outdir, "hooli", {"local": {"path": "../../../terraform-state/hooli.tfstate"}})]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    lines: list[str] = []
    found = drift.find(targets, outdir, settings, 2, lines.append)
    assert [(f.name, f.status) for f in found] == [("acme", "error"), ("hooli", "not deployed")]
    assert found[0].error.startswith("cannot read the state s3://astro-state/dataplane/acme.tfstate: ")
    assert "127.0.0.1:9" in found[0].error and "\n" not in found[0].error
    assert sorted(line.split("\n")[0] for line in lines) == ["acme: error", "hooli: not deployed (no state)"]


# ---------------------------------------------------------------- input


@pytest.fixture
def fixture_fleet(monkeypatch):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))


def test_an_unknown_customer_is_one_line_exit_1_before_anything_runs(fixture_fleet, tmp_path, capsys):
    stack(tmp_path / "cdktf.out", "acme", {"local": {"path": "../../../terraform-state/acme.tfstate"}})
    assert cli.main(["drift", "--outdir", str(tmp_path / "cdktf.out"), "nobody"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"drift: no stack 'nobody' in {tmp_path / 'cdktf.out'}; synthesized: acme\n")


def test_a_report_file_in_a_missing_directory_is_refused_before_anything_runs(fixture_fleet, tmp_path, capsys):
    stack(tmp_path / "cdktf.out", "acme", {"local": {"path": "../../../terraform-state/acme.tfstate"}})
    report = tmp_path / "missing" / "drift.md"
    assert cli.main(["drift", "--outdir", str(tmp_path / "cdktf.out"), "--out", str(report)]) == 1
    assert capsys.readouterr() == ("", f"drift: {report}: its directory does not exist\n")


def test_stacks_without_state_are_reported_without_running_terraform(fixture_fleet, tmp_path, capsys):
    outdir = tmp_path / "cdktf.out"
    for name in ("hooli", "acme"):
        stack(outdir, name, {"local": {"path": f"../../../terraform-state/{name}.tfstate"}})
    report = tmp_path / "drift.md"
    assert cli.main(["drift", "--outdir", str(outdir), "--out", str(report)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("acme: not deployed (no state)\nhooli: not deployed (no state)\n")
    assert f"report written to {report}\n" in err
    assert report.read_text().startswith("Drift: 0 drifted, 0 in sync, 2 not deployed, 0 errors\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "drift.md"]


# ---------------------------------------------------------------- shards


def shard_reports(directory: Path, found: list[drift.StackDrift], count: int) -> Path:
    """`found` cut into `count` batches, each batch's JSON report in `directory` as `drift --batch i/n` writes it."""
    directory.mkdir()
    names = [f.name for f in found]
    for index in range(count):
        batch = set(plan.batch_of(names, index, count))
        (directory / f"drift-{index}.json").write_text(
            drift.render([f for f in found if f.name in batch], "json", (index, count)))
    return directory


def test_merging_the_shards_reports_gives_the_report_of_one_run_over_every_stack(fleet, tmp_path, capsys):
    shards = shard_reports(tmp_path / "shards", fleet, 2)
    assert json.loads((shards / "drift-1.json").read_text())["batch"] == "1/2"
    assert drift.merged(shards) == fleet
    assert drift.to_markdown(drift.merged(shards)) == drift.render(fleet)
    report = tmp_path / "drift.md"
    assert cli.main(["drift", "--merge", str(shards), "--out", str(report)]) == 1  # initech's error
    assert report.read_text() == drift.render(fleet)
    assert capsys.readouterr().err.startswith("Drift: 1 drifted, 1 in sync, 2 not deployed, 1 error: 5 stack(s) from ")
    assert cli.main(["drift", "--merge", str(shards), "--format", "json"]) == 1
    assert capsys.readouterr().out == drift.render(fleet, "json")


@pytest.mark.parametrize("left_out", [["drift-1.json"], ["drift-0.json", "drift-1.json"]])
def test_a_shard_s_report_missing_is_refused_not_merged_into_a_partial_report(fleet, tmp_path, capsys, left_out):
    shards = shard_reports(tmp_path / "shards", fleet, 2)
    for name in left_out:
        (shards / name).unlink()
    found = "0/2" if len(left_out) == 1 else "none"
    assert cli.main(["drift", "--merge", str(shards)]) == 1
    assert capsys.readouterr() == ("", f"drift: {shards}: not the shard reports of every batch i/n, each once "
                                       f"(found: {found})\n")


def test_a_batch_checks_its_share_of_the_stacks(tmp_path):
    outdir = tmp_path / "cdktf.out"
    for name in ("acme", "globex", "hooli"):
        stack(outdir, name, {"local": {"path": f"../../../terraform-state/{name}.tfstate"}})
    assert [[t.name for t in drift.select(outdir, (), (i, 2))] for i in range(2)] == [["acme", "globex"], ["hooli"]]
    assert {t.refresh_only for t in drift.select(outdir, (), (0, 2))} == {True}
