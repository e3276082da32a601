"""Drift's findings and report, from refresh-only plans in terraform's shape; where it looks for a state; its input.

The plan documents are `terraform show -json` of `terraform plan -refresh-only` as terraform 1.11 writes them: no
`resource_changes` and no `relevant_attributes`, the refresh's findings in `resource_drift`, the configuration's
resource blocks with the attributes they set, and the state before the refresh in `prior_state`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataplane.config.settings import Settings
from dataplane.ops import aws, cli, drift
from dataplane.ops.plan import Target
from dataplane.project import CUSTOMERS_DIR_ENV
from tests.conftest import FIXTURES
from tests.test_plan_review import (
    PROVIDER,
    ROLE,
    ROUTE,
    ROUTE_TABLE,
    VPC,
    resource,
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


def refresh_only(drift_entries: list[dict], deployed: bool = True) -> dict:
    """A refresh-only plan of the globex stack that found `drift_entries`."""
    document = {
        "format_version": "1.2", "terraform_version": "1.11.4", "planned_values": {"outputs": {}, "root_module": {}},
        "output_changes": {}, "timestamp": "2026-01-05T10:00:00Z", "applyable": bool(drift_entries),
        "complete": True, "errored": False,
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "full_name": PROVIDER, "expressions": {"default_tags": [
                {"tags": {"constant_value": {"customer": "globex", "managed-by": "dataplane-activation"}}}]}}},
            "root_module": {"resources": [
                {"address": address, "mode": "managed", "type": address.split(".")[0], "name": address.split(".")[1],
                 "provider_config_key": "aws", "expressions": {key: {"constant_value": "…"} for key in keys}}
                for address, keys in BLOCKS.items()]}}}
    if drift_entries:
        document["resource_drift"] = drift_entries
    if deployed:
        document["prior_state"] = {"format_version": "1.0", "terraform_version": "1.11.4", "values": {
            "outputs": {}, "root_module": {"resources": [
                {"address": ROLE, "mode": "managed", "type": "aws_iam_role", "name": ROLE.split(".")[1],
                 "provider_name": PROVIDER, "schema_version": 0, "values": role("astro-3f9c2b7e"),
                 "sensitive_values": {}}]}}}
    return document


def echoes() -> list[dict]:
    """What a refresh-only plan lists right after a deploy: the stack's own resources seen in their parents."""
    policy = {"name": "data-plane-activation", "policy": '{"Statement":[]}'}
    table = {"id": "rtb-0bbb", "route": [], "tags": {"Name": "globex-private"},
             "tags_all": {"Name": "globex-private", "customer": "globex"}, "vpc_id": "vpc-0aaa"}
    routed = {**table, "route": [{"cidr_block": "10.10.0.0/16", "gateway_id": "", "vpc_peering_connection_id": "pcx"}]}
    peering = {"accept_status": "pending-acceptance", "accepter": [{"allow_remote_vpc_dns_resolution": False}],
               "id": "pcx-0ccc", "peer_vpc_id": "vpc-0ddd", "tags": {"Name": "globex"}}
    accepted = {**peering, "accept_status": "active", "accepter": [{"allow_remote_vpc_dns_resolution": True}]}
    return [resource(ROLE, ["update"], {**role("astro-3f9c2b7e"), "tags": None},
                     role("astro-3f9c2b7e", inline=[policy])),
            resource(ROUTE_TABLE, ["update"], table, routed),
            resource(PEERING, ["update"], peering, accepted)]


def tampered() -> list[dict]:
    """The echoes, and: the trust rewritten, the customer's route deleted, the VPC renamed (a sensitive tag too)."""
    trust_before = role("astro-3f9c2b7e")
    trust_after = {**trust_before, "assume_role_policy": trust_before["assume_role_policy"].replace(
        "arn:aws:iam::406882777402:root", INTRUDER)}
    renamed = vpc("172.20.0.0/19")
    renamed = {**renamed, "tags": {"Name": "renamed-by-hand", "token": "hunter2"},
               "tags_all": {**renamed["tags_all"], "Name": "renamed-by-hand", "token": "hunter2"}}
    masked = {"tags": {"token": True}, "tags_all": {}}
    entries = echoes()
    entries[0] = resource(ROLE, ["update"], trust_before, {**trust_after, "inline_policy": [{"name": "x"}]})
    return entries + [resource(ROUTE, ["delete"], route(), None),
                      resource(VPC, ["update"], {**vpc("172.20.0.0/19"), "tags": {"Name": "globex", "token": "sw0rd"},
                                                 "tags_all": {"Name": "globex", "customer": "globex",
                                                              "token": "sw0rd"}},
                               renamed, before_sensitive=masked, after_sensitive=masked)]


def finding(tmp_path: Path, document: dict, name: str = "globex") -> drift.StackDrift:
    path = tmp_path / f"{name}.plan.json"
    path.write_text(json.dumps(document))
    return drift.read_finding(name, path)


def shown(found: drift.StackDrift) -> list[tuple[str, bool, list[tuple[str, str, str]]]]:
    return [(d.address, d.deleted, [(a.path, a.before, a.after) for a in d.attributes]) for d in found.drift]


# ---------------------------------------------------------------- findings


def test_the_echo_of_the_stacks_own_resources_is_not_drift(tmp_path):
    """A role's inline policy, a route table's routes, a peering's status and options: set by the stack's other
    resources after their parent was stored, in attributes the configuration leaves to the provider."""
    assert finding(tmp_path, refresh_only(echoes())) == drift.StackDrift("globex", "in sync")
    assert finding(tmp_path, refresh_only([])) == drift.StackDrift("globex", "in sync")


def test_deletions_and_changes_to_configured_attributes_are_drift_with_their_values(tmp_path):
    found = finding(tmp_path, refresh_only(tampered()))
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
    found = finding(tmp_path, refresh_only([resource(module, ["update"], {"ingress": []}, {"ingress": ["0/0"]})]))
    assert shown(found) == [(module, False, [("ingress", "[]", '["0/0"]')])]


def test_a_state_without_resources_is_not_deployed(tmp_path):
    assert finding(tmp_path, refresh_only([], deployed=False)).status == "not deployed"


def test_a_plan_that_cannot_be_read_is_an_error_on_one_line(tmp_path):
    path = tmp_path / "globex.plan.json"
    path.write_text('{"format_version": "0.1"}')
    found = drift.read_finding("globex", path)
    assert (found.status, found.error) == ("error", f"{path}: not a Terraform JSON plan (`terraform show -json`): "
                                                    "no format_version 1.x")


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


# ---------------------------------------------------------------- the report


@pytest.fixture
def fleet(tmp_path) -> list[drift.StackDrift]:
    return sorted([finding(tmp_path, refresh_only(tampered())), finding(tmp_path, refresh_only(echoes()), "acme"),
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
        "terraform init failed: Error: Failed to get existing workspaces: AccessDenied\n")


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


def test_an_unknown_customer_is_one_line_exit_2_before_anything_runs(fixture_fleet, tmp_path, capsys):
    stack(tmp_path / "cdktf.out", "acme", {"local": {"path": "../../../terraform-state/acme.tfstate"}})
    assert cli.main(["drift", "--outdir", str(tmp_path / "cdktf.out"), "nobody"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"drift: no stack 'nobody' in {tmp_path / 'cdktf.out'}; synthesized: acme\n")


def test_a_report_file_in_a_missing_directory_is_refused_before_anything_runs(fixture_fleet, tmp_path, capsys):
    stack(tmp_path / "cdktf.out", "acme", {"local": {"path": "../../../terraform-state/acme.tfstate"}})
    report = tmp_path / "missing" / "drift.md"
    assert cli.main(["drift", "--outdir", str(tmp_path / "cdktf.out"), "--out", str(report)]) == 2
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
