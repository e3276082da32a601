"""The rollout's rules without an account: waves, its settings, the record, and which rollout may start."""

from __future__ import annotations

import json

import pytest

from dataplane.config.errors import ConfigError
from dataplane.config.settings import Rollout, Settings, load_project, load_settings
from dataplane.ops import cli
from dataplane.ops.fleet import rollout
from dataplane.ops.fleet.rollout import (
    APPLIED,
    FAILED,
    HALTED,
    MEMORY_PER_PLAN,
    PENDING,
    Record,
    Request,
    RolloutRefused,
    Stack,
    job_limit,
    waves,
)
from dataplane.project import CUSTOMERS_DIR_ENV
from tests.conftest import FIXTURES


def names(count: int) -> list[str]:
    return [f"c{index:03d}" for index in range(count)]


@pytest.mark.parametrize("count, sizes", [(1, [1]), (2, [1, 1]), (7, [1, 1, 2, 3]), (200, [1, 20, 80, 99])])
def test_a_canary_then_cumulative_percentages_of_the_rest(count, sizes):
    """10 % / 50 % / 100 % of the customers after the canary, rounded up; an empty wave is dropped."""
    ordered = waves(list(reversed(names(count))), Rollout())
    assert [len(wave) for wave in ordered] == sizes
    assert [name for wave in ordered for name in wave] == names(count)  # by name, each once


def test_no_changed_customer_is_no_wave():
    assert waves([], Rollout()) == []


def test_the_canary_and_the_order_come_from_the_settings():
    rules = Rollout(canary=("c005", "c003", "c099"), order=("c006", "c001"), waves=(50, 100))
    assert waves(names(7), rules) == [["c003", "c005"], ["c006", "c001", "c000"], ["c002", "c004"]]


def test_a_canary_without_changes_gives_way_to_the_first_in_order():
    assert waves(["c002", "c001"], Rollout(canary=("c009",), order=("c002",))) == [["c002"], ["c001"]]


def test_rollout_settings_default_and_from_cdktf_json(tmp_path):
    defaults = Settings().rollout
    assert (defaults.canary, defaults.waves, defaults.order, defaults.max_failures, defaults.pause_between_waves,
            defaults.max_customers_without_label) == ((), (10, 50, 100), (), 0, 0, 10)
    path = tmp_path / "cdktf.json"
    path.write_text(json.dumps({"context": {"rollout": {"canary": ["acme"], "waves": [25, 100], "maxFailures": 2,
                                                        "pauseBetweenWaves": 600, "maxCustomersWithoutLabel": 50}}}))
    given = load_settings(path).rollout
    assert (given.canary, given.waves, given.max_failures, given.pause_between_waves,
            given.max_customers_without_label) == (("acme",), (25, 100), 2, 600, 50)


@pytest.mark.parametrize("value, field, words", [
    ({"waves": [50, 40, 100]}, "context.rollout.waves", "is not increasing"),
    ({"waves": [10, 10, 100]}, "context.rollout.waves", "is not increasing"),
    ({"waves": [10, 50]}, "context.rollout.waves", "ends at 50, not 100"),
    ({"waves": [10, 150]}, "context.rollout.waves[1]", "less than or equal to 100"),
    ({"waves": [0, 100]}, "context.rollout.waves[0]", "greater than or equal to 1"),
    ({"waves": []}, "context.rollout.waves", "at least 1"),
    ({"canary": ["Acme!"]}, "context.rollout.canary[0]", "is not a customer name"),
    ({"canary": ["acme", "acme"]}, "context.rollout.canary", "twice"),
    ({"maxFailures": -1}, "context.rollout.maxFailures", "greater than or equal to 0"),
    ({"pauseBetweenWaves": "1h"}, "context.rollout.pauseBetweenWaves", "must be an integer"),
    ({"canaries": ["acme"]}, "context.rollout.canaries", "did you mean canary?"),
])
def test_bad_rollout_settings_are_one_problem_each(tmp_path, value, field, words):
    path = tmp_path / "cdktf.json"
    path.write_text(json.dumps({"context": {"rollout": value}}))
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    [problem] = refused.value.problems
    assert problem.field == field and words in problem.message, str(problem)


@pytest.mark.parametrize("key", ["canary", "order"])
def test_a_name_not_in_the_fleet_is_refused_at_load_in_one_line(tmp_path, key):
    path = tmp_path / "cdktf.json"
    path.write_text(json.dumps({"context": {"rollout": {key: ["acme", "initech"]}}}))
    with pytest.raises(ConfigError) as refused:
        load_project(path, FIXTURES)
    assert str(refused.value) == (f"{path}: context.rollout.{key}: 'initech' is not a customer of the fleet "
                                  "(acme, globex)")


def test_jobs_are_bounded_by_memory():
    assert job_limit(8, 10 * MEMORY_PER_PLAN) == 8
    assert job_limit(8, 3 * MEMORY_PER_PLAN + 1) == 3
    assert job_limit(8, MEMORY_PER_PLAN // 2) == 1


def record(rollout_id: str, commit: str = "a" * 40, digest: str = "sha256:1", status: str = HALTED) -> Record:
    stacks = {"acme": Stack(wave=1, result=APPLIED, plan={"update": 1}, seconds={"plan": 1.0, "apply": 2.5}),
              "globex": Stack(wave=2, result=FAILED, failed_step="apply",
                            error="terraform apply failed: | boom <img src=x> `@team`"),
              "hooli": Stack(wave=3)}
    return Record(rollout_id, commit, digest, status, "2026-01-01T00:00:00+00:00", None,
                  [["acme"], ["globex"], ["hooli"]], ["initech"], [3.5, 1.0, None], stacks)


def test_the_record_reads_back_as_written(tmp_path):
    written = record("20260101T000000Z")
    (tmp_path / "r.json").write_text(written.json())
    assert Record.read(tmp_path / "r.json") == written
    assert written.failed() == ["globex"] and written.failed(1) == [] and written.stacks["hooli"].result == PENDING
    assert json.loads(written.json())["stacks"]["acme"] == {
        "error": "", "failed_step": None, "finished_at": None, "plan": {"update": 1}, "result": "applied",
        "seconds": {"apply": 2.5, "plan": 1.0}, "stale_plans": 0, "started_at": None, "wave": 1}


def test_the_record_in_markdown():
    text = rollout.markdown(record("20260101T000000Z"))
    assert text.startswith("# Rollout 20260101T000000Z: halted\n")
    assert "| 1 (canary) | `acme` | applied | +0 ~1 -0 ±0 | 1.0 | 2.5 | - | - |" in text
    assert "| 2 | `globex` | failed | failed at apply | - | - | - | apply |" in text
    assert "| 3 | `hooli` | pending |" in text and "Without changes (1): `initech`" in text
    assert "`globex` failed at apply: `` terraform apply failed: | boom <img src=x> `@team` ``\n" in text


def test_a_dry_run_report_in_markdown():
    stacks = {"acme": Stack(plan={"create": 3}), "globex": Stack(result=FAILED, failed_step="adopt")}
    assert rollout.plan_markdown([["acme"], ["globex"]], ["hooli"], stacks) == (
        "# Rollout plan: 2 changed stack(s) in 2 wave(s), 1 without changes\n\n"
        "| Wave | Customer | Plan |\n| --- | --- | --- |\n"
        "| 1 (canary) | `acme` | +3 ~0 -0 ±0 |\n| 2 | `globex` | failed at adopt |\n\n"
        "Without changes (1): `hooli`\n")


@pytest.fixture
def records(tmp_path, monkeypatch):
    monkeypatch.setattr(rollout, "tool_commit", lambda: "a" * 40)
    monkeypatch.setattr(rollout, "settings_hash", lambda settings: "sha256:1")
    return tmp_path / "rollouts"


def request(records_dir, **options) -> Request:
    return Request((), records_dir.parent / "cdktf.out", records_dir, records_dir.parent / "outputs", 1, **options)


def write(records_dir, written: Record) -> None:
    records_dir.mkdir(exist_ok=True)
    (records_dir / f"{written.id}.json").write_text(written.json())


def test_resume_takes_the_latest_unfinished_rollout_of_the_same_commit_and_settings(records):
    write(records, record("20260101T000000Z", status="finished"))
    write(records, record("20260102T000000Z"))
    write(records, record("20260103T000000Z", status="superseded"))
    assert rollout._starting(request(records, resume=True), Settings()).id == "20260102T000000Z"


@pytest.mark.parametrize("commit, digest", [("b" * 40, "sha256:1"), ("a" * 40, "sha256:2")])
def test_a_rollout_of_another_commit_or_settings_is_refused_while_one_is_unfinished(records, commit, digest):
    write(records, record("20260102T000000Z", commit=commit, digest=digest))
    for options in ({}, {"resume": True}):
        with pytest.raises(RolloutRefused, match=rf"^rollout 20260102T000000Z \(halted, commit {commit[:12]}, "
                                                 rf"settings {digest}\) is unfinished; this is commit aaaaaaaaaaaa"):
            rollout._starting(request(records, **options), Settings())


def test_an_unfinished_rollout_of_the_same_commit_is_resumed_or_superseded_never_run_twice(records):
    write(records, record("20260102T000000Z"))
    with pytest.raises(RolloutRefused, match="is unfinished; --resume continues it, or --supersede starts anew$"):
        rollout._starting(request(records), Settings())
    assert rollout._starting(request(records, supersede=True), Settings()) is None
    assert Record.read(records / "20260102T000000Z.json").status == "superseded"
    assert (records / "20260102T000000Z.md").read_text().startswith("# Rollout 20260102T000000Z: superseded")
    with pytest.raises(RolloutRefused, match="^nothing to resume: no unfinished rollout in "):
        rollout._starting(request(records, resume=True), Settings())


def test_a_second_rollout_at_once_is_refused(records):
    with rollout._locked(records), pytest.raises(RolloutRefused, match="another rollout is running"):
        with rollout._locked(records):
            pass


def test_resuming_a_finished_rollout_of_the_same_commit_and_settings_is_nothing_to_do(records):
    write(records, record("20260102T000000Z", status="finished"))
    assert not rollout._starting(request(records, resume=True), Settings()).unfinished


@pytest.mark.parametrize("argv, line", [
    (["--resume", "acme"], "rollout: --resume continues the recorded rollout: no CUSTOMER, --supersede or --dry-run"),
    (["--resume", "--supersede"], "rollout: --resume continues the recorded rollout: no CUSTOMER, --supersede or "
                                  "--dry-run"),
    (["initech"], "no customer 'initech'; known: acme, globex"),
    (["--github-summary"], "rollout: --github-summary: GITHUB_STEP_SUMMARY is not set (GitHub Actions sets it)"),
])
def test_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, argv, line):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["rollout", *argv])
    assert exited.value.code == 2 and capsys.readouterr().err == line + "\n"
