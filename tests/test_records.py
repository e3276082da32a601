"""Activation records follow reality: the header says what a reader must know first (warnings, whether verify ran, the
tamper alarm, an uncommitted customer file), a destroy marks the record destroyed and removes the outputs file, and
verify of a destroyed customer says so in one line. No AWS: records are built from check rows."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dataplane.config.customer import load_customer
from dataplane.ops.cli import main
from dataplane.ops.fleet import activate as records
from dataplane.ops.fleet.offboard import records_follow
from dataplane.ops.report import Report, Row, Status
from dataplane.project import CUSTOMERS_DIR_ENV
from dataplane.tamper import AlarmNames
from tests.conftest import EXTRA_FIXTURES, FIXTURES

BY = "arn:aws:sts::456789012345:assumed-role/dataplane-deploy/dataplane-destroy-hooli"
KEPT = [{"kind": "S3 bucket", "id": "456789012345-hooli-trail", "region": "eu-west-1"},
        {"kind": "KMS key", "id": "arn:aws:kms:eu-west-1:456789012345:key/k", "region": "eu-west-1"}]


def activation(customer, settings, tmp_path: Path, rows: dict[str, list[Status]], failed: str | None = None) -> dict:
    """The record of a run whose steps passed (up to `failed`, which failed), with a row of each status in `rows`
    for each step that ran; as `activate` writes it."""
    run = records._Activation(customer, settings, None, None, tmp_path / "cdktf.out", tmp_path)
    for step in run.steps:
        step.result, step.seconds = (records.FAILED if step.name == failed else records.OK), 0.1
        if step.name != "deploy":
            found = rows.get(step.name, [])
            run.reports.append(Report(step.name, customer, tuple(
                Row(f"check {i}", status, f"{status.value} because") for i, status in enumerate(found))))
        if step.name == failed:
            break
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    return run.record(started, started)


@pytest.fixture
def hooli(settings):
    """The tamper alarm's fixture customer (its file is committed in this repository)."""
    return load_customer(EXTRA_FIXTURES / "hooli.toml", settings.control_plane_account_id)


def test_warnings_are_counted_and_the_header_says_activated_with_them(customers, settings, tmp_path):
    record = activation(customers["globex"], settings, tmp_path,
                        {"preflight": [Status.PASS, Status.WARN, Status.WARN], "verify": [Status.WARN, Status.PASS]})
    assert (record["status"], record["result"], record["warnings"]) == ("activated", "activated", 3)
    page = records.markdown(record)
    assert page.startswith("# Activation of globex: activated with 3 warnings\n")
    assert "| Warnings | 3 (the WARN rows under Checks) |" in page

    one = records.markdown(activation(customers["globex"], settings, tmp_path, {"verify": [Status.WARN]}))
    assert one.startswith("# Activation of globex: activated with 1 warning\n")
    clean = records.markdown(activation(customers["globex"], settings, tmp_path, {"verify": [Status.PASS]}))
    assert clean.startswith("# Activation of globex: activated\n") and "| Warnings | none |" in clean


def test_verified_as_only_when_verify_ran(customers, settings, tmp_path):
    stopped = activation(customers["acme"], settings, tmp_path, {"preflight": [Status.FAIL, Status.WARN]},
                         failed="preflight")
    assert (stopped["status"], stopped["failed_step"], stopped["verified_as"], stopped["warnings"]) == (
        "failed", "preflight", None, 1)
    page = records.markdown(stopped)
    assert page.startswith("# Activation of acme: **FAILED** at preflight\n") and "Verified as" not in page

    failed_at_verify = activation(customers["acme"], settings, tmp_path, {"verify": [Status.FAIL]}, failed="verify")
    assert failed_at_verify["verified_as"] == "deployer"
    assert "| Verified as | deployer |" in records.markdown(failed_at_verify)


def test_a_record_written_before_these_fields_existed_still_reads(customers, settings, tmp_path):
    """An older record (no `warnings`, `customer_file`, `tamper_alarm`, `verified_as` even when verify did not run)
    is rewritten by a destroy: its page counts its WARN rows and claims no verify."""
    record = activation(customers["acme"], settings, tmp_path, {"preflight": [Status.WARN, Status.FAIL]},
                        failed="preflight")
    older = {k: v for k, v in record.items() if k not in ("status", "warnings", "customer_file", "tamper_alarm")}
    page = records.markdown({**older, "verified_as": "deployer"})
    assert "| Warnings | 1 (the WARN rows under Checks) |" in page
    assert "Verified as" not in page and "Customer file" not in page and "uncommitted" not in page


def test_the_tamper_alarm_is_in_the_record_and_its_header(hooli, customers, settings, tmp_path):
    record = activation(hooli, settings, tmp_path, {"verify": [Status.PASS]})
    topic = AlarmNames("hooli", hooli.account_id).topic_arn()
    assert record["tamper_alarm"] == {"email": "security@hooli.example", "topic_arn": topic}
    assert f"| Tamper alarm | emails security@hooli.example (topic `{topic}`) |" in records.markdown(record)
    assert activation(customers["acme"], settings, tmp_path, {})["tamper_alarm"] is None


def test_an_uncommitted_customer_file_is_marked(customers, settings, tmp_path):
    committed = activation(customers["acme"], settings, tmp_path, {"verify": [Status.PASS]})
    assert committed["customer_file"] == {"path": "tests/fixtures/customers/acme.toml", "committed": True}
    page = records.markdown(committed)
    assert "uncommitted" not in page and "| Customer file | `tests/fixtures/customers/acme.toml`, committed |" in page

    copy = tmp_path / "customers" / "acme.toml"
    copy.parent.mkdir()
    copy.write_text((FIXTURES / "acme.toml").read_text())
    outside = activation(load_customer(copy, settings.control_plane_account_id), settings, tmp_path,
                         {"verify": [Status.WARN]})
    assert outside["customer_file"] == {"path": str(copy), "committed": False}
    page = records.markdown(outside)
    assert page.startswith("# Activation of acme: activated with 1 warning, from an uncommitted file\n")
    assert f"| Customer file | `{copy}`, **from an uncommitted file** (not committed to git as it is) |" in page


def test_committed_means_tracked_and_unchanged(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    git("init", "-q")
    file = tmp_path / "acme.toml"
    file.write_text("a = 1\n")
    assert not records.committed(file)  # untracked
    git("add", "acme.toml")
    assert not records.committed(file)  # staged, not committed
    git("commit", "-q", "-m", "acme")
    assert records.committed(file)
    file.write_text("a = 2\n")
    assert not records.committed(file)  # modified
    assert not records.committed(tmp_path / "gone" / "acme.toml")  # no such directory


def test_a_destroy_marks_the_record_destroyed_and_keeps_the_activation_below(hooli, settings, tmp_path):
    activated = activation(hooli, settings, tmp_path, {"preflight": [Status.WARN], "verify": [Status.PASS]})
    records_dir = tmp_path / "activations"
    records.write_record(records_dir, "hooli", activated)
    records.record_kept(records_dir, "hooli", hooli.account_id, KEPT)
    before = datetime.now(timezone.utc).isoformat(timespec="seconds")

    assert records.record_destroyed(records_dir, "hooli", BY) == records_dir / "hooli.json"
    record = json.loads((records_dir / "hooli.json").read_text())
    destroyed = record.pop("destroyed")
    assert (destroyed["by"], destroyed["kept"]) == (BY, KEPT)
    assert destroyed["at"] >= before and destroyed["at"].endswith("+00:00")
    assert record.pop("status") == "destroyed" and activated.pop("status") == "activated"
    assert record.pop("offboarding")["kept"] == KEPT
    assert record == activated  # the activation's history stays, whole

    page = (records_dir / "hooli.md").read_text()
    assert page.startswith("# Destroyed: the data plane of hooli\n")
    for line in (f"| Destroyed (UTC) | {destroyed['at']} |", f"| Destroyed by | `{BY}` |",
                 "| Kept | 1 audit-log bucket(s) and 1 KMS key(s), listed under Kept at offboarding |",
                 "\n## Activation of hooli: activated with 1 warning\n", "\n### Cross-account role\n",
                 "\n## Kept at offboarding\n"):
        assert line in page
    assert page.index("Destroyed") < page.index("Activation of hooli")
    assert not list(records_dir.glob(".*")), "no partial record files"


def test_a_destroy_without_an_activation_record_writes_none(tmp_path):
    assert records.record_destroyed(tmp_path / "activations", "acme", BY) is None
    assert not (tmp_path / "activations").exists()


def test_a_destroy_that_kept_logs_without_an_activation_says_so(tmp_path):
    records_dir = tmp_path / "activations"
    records.record_kept(records_dir, "hooli", "456789012345", KEPT)
    records.record_destroyed(records_dir, "hooli", BY)
    page = (records_dir / "hooli.md").read_text()
    assert page.startswith("# Destroyed: the data plane of hooli\n")
    assert "\n## hooli: no activation recorded\n" in page and "\n## Kept at offboarding\n" in page


def test_an_activation_after_a_destroy_replaces_it_and_keeps_the_logs_listed(customers, settings, tmp_path):
    records_dir = tmp_path / "activations"
    records.record_kept(records_dir, "globex", "210987654321", KEPT)
    records.record_destroyed(records_dir, "globex", BY)
    again = activation(customers["globex"], settings, tmp_path, {"verify": [Status.PASS]})
    records.update_record(records_dir, "globex", lambda earlier: records._activated(earlier, again))
    record = json.loads((records_dir / "globex.json").read_text())
    assert record["status"] == "activated" and "destroyed" not in record and record["offboarding"]["kept"] == KEPT
    assert (records_dir / "globex.md").read_text().startswith("# Activation of globex: activated\n")


def test_records_follow_a_destroy_the_outputs_file_removed(tmp_path, capsys):
    records_dir, outputs = tmp_path / "activations", tmp_path / "outputs"
    outputs.mkdir()
    for name in ("hooli", "acme"):
        (outputs / f"{name}.json").write_text('{"x": {"vpc_id": "vpc-1"}}')
    records.record_kept(records_dir, "hooli", "456789012345", KEPT)

    assert records_follow("hooli", records_dir, outputs, BY)
    assert [p.name for p in outputs.iterdir()] == ["acme.json"]
    assert json.loads((records_dir / "hooli.json").read_text())["status"] == "destroyed"
    assert capsys.readouterr().out == (f"destroy hooli: removed {outputs / 'hooli.json'}; {records_dir / 'hooli.json'} "
                                       f"says destroyed by {BY}\n")

    assert records_follow("initech", records_dir, outputs, BY)  # no outputs, no record: nothing to follow
    assert capsys.readouterr().out == "" and not (records_dir / "initech.json").exists()


def test_records_that_cannot_follow_are_one_line(tmp_path, capsys):
    blocked = tmp_path / "activations"
    blocked.write_text("a file, not a directory")
    assert not records_follow("hooli", blocked, tmp_path, BY)
    assert capsys.readouterr().err.startswith("destroy hooli: destroyed, but the records cannot follow: ")


def verify(monkeypatch, capsys, tmp_path, *args: str) -> tuple[int, str]:
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    status = main(["verify", "globex", f"--records-dir={tmp_path / 'activations'}",
                   f"--outdir={tmp_path / 'cdktf.out'}", *args])
    return status, capsys.readouterr().out


def test_verify_of_a_destroyed_customer_is_one_line(monkeypatch, capsys, tmp_path):
    records_dir = tmp_path / "activations"
    records.record_kept(records_dir, "globex", "210987654321", KEPT)
    records.record_destroyed(records_dir, "globex", BY)
    at = json.loads((records_dir / "globex.json").read_text())["destroyed"]["at"]
    state = tmp_path / "terraform-state" / "globex.tfstate"
    state.parent.mkdir()
    state.write_text(json.dumps({"version": 4, "serial": 9, "resources": []}))

    assert verify(monkeypatch, capsys, tmp_path) == (
        0, f"globex: destroyed on {at} (activation record {records_dir / 'globex.json'}); nothing to verify\n")
    status, out = verify(monkeypatch, capsys, tmp_path, "--json")
    assert status == 0 and json.loads(out) == {"command": "verify", "customer": "globex", "ok": True, "checks": [],
                                               "destroyed": {"at": at, "by": BY, "kept": KEPT,
                                                             "record": str(records_dir / "globex.json")}}


def test_a_destroyed_record_does_not_hide_a_deploy_made_since(customers, settings, tmp_path):
    """`make deploy` after the destroy fills the state: the record is out of date, and verify checks the account."""
    records_dir, outdir = tmp_path / "activations", tmp_path / "cdktf.out"
    records.record_kept(records_dir, "globex", "210987654321", KEPT)
    records.record_destroyed(records_dir, "globex", BY)
    found = records.destroyed_record(customers["globex"], settings, records_dir, outdir)
    assert found[0] == records_dir / "globex.json"
    state = tmp_path / "terraform-state" / "globex.tfstate"
    state.parent.mkdir()
    state.write_text(json.dumps({"version": 4, "serial": 10, "resources": [
        {"mode": "managed", "type": "aws_iam_role", "name": "role", "instances": [{"attributes": {"id": "r"}}]}]}))
    assert records.destroyed_record(customers["globex"], settings, records_dir, outdir) is None
    assert records.destroyed_record(customers["acme"], settings, records_dir, outdir) is None  # no record
