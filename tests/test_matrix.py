"""The pipeline's job matrices: batches that cover every planned stack, never more jobs than GitHub runs."""

from __future__ import annotations

import json
from math import ceil
from pathlib import Path

import pytest

from dataplane.ops import cli
from dataplane.ops.pipeline import matrix
from dataplane.project import SETTINGS_ENV
from dataplane.ops.pipeline.review import Report, StackReview


def names(n: int) -> list[str]:
    return [f"customer-{i:04d}" for i in reversed(range(n))]


def report(**status: list[str]) -> Report:
    return Report(sorted((StackReview(name, kind) for kind, group in status.items() for name in group),
                         key=lambda s: s.name))


def test_batch_of_is_the_ith_contiguous_chunk_of_the_sorted_names():
    assert [matrix.batch_of(["d", "a", "c", "b", "e"], i, 3) for i in range(3)] == [["a", "b"], ["c", "d"], ["e"]]
    assert matrix.batch_of(["b", "a"], 0, 1) == ["a", "b"]
    assert matrix.batch_of(["a", "b", "c"], 3, 4) == []
    assert matrix.batch_of([], 0, 2) == []


@pytest.mark.parametrize("index, count", [(-1, 2), (2, 2), (0, 0)])
def test_batch_of_refuses_an_index_outside_the_count(index, count):
    with pytest.raises(ValueError):
        matrix.batch_of(["a"], index, count)


@pytest.mark.parametrize("per_job, max_jobs", [(1, 256), (3, 7), (20, 256), (20, 1), (7, 256)])
def test_batches_cover_every_stack_once_none_empty_and_never_more_than_max_jobs(per_job, max_jobs):
    for total in [*range(0, 45), 255, 256, 257, 300, 511, 512, 513, 1000, 5121]:
        fleet = names(total)
        count = matrix.batch_count(total, per_job, max_jobs)
        batches = [matrix.batch_of(fleet, i, count) for i in range(count)]
        assert count <= max_jobs
        assert sum(batches, []) == sorted(fleet)
        assert all(batches), (total, count)
        if ceil(total / per_job) <= max_jobs:
            assert count == ceil(total / per_job) and all(len(b) <= per_job for b in batches)


def test_plan_matrix_counts_added_changed_and_removed_stacks():
    change = report(added=["a"], changed=["b", "c"], removed=["d"], unchanged=["e", "f"])
    assert matrix.planned(change) == ["a", "b", "c", "d"]
    assert matrix.matrix("plan", change, per_job=3) == [{"batch": "0/2", "index": 0}, {"batch": "1/2", "index": 1}]
    assert matrix.matrix("plan", report(unchanged=["a"])) == []


def test_plan_matrix_of_300_and_more_stacks_stays_within_256_jobs():
    for total in (300, 1000, 25_600):
        include = matrix.matrix("plan", report(changed=names(total)), per_job=1)
        assert 0 < len(include) <= 256
        assert [e["index"] for e in include] == list(range(len(include)))
        assert {e["batch"] for e in include} == {f"{i}/{len(include)}" for i in range(len(include))}


def test_apply_and_destroy_matrices_name_one_customer_a_job_in_order():
    change = report(added=["b"], changed=["a"], removed=["d", "c"], unchanged=["e"])
    assert matrix.matrix("apply", change) == [{"customers": "a", "group": "a"}, {"customers": "b", "group": "b"}]
    assert matrix.matrix("destroy", change) == [{"customers": "c", "group": "c"}, {"customers": "d", "group": "d"}]
    assert matrix.matrix("destroy", report(added=["a"])) == []
    assert matrix.matrix("destroy", report(removed=["c", "d"]), per_job=5) == matrix.matrix("destroy", change)


def jobs_of(include: list[dict]) -> list[list[str]]:
    return [entry["customers"].split(" ") for entry in include]


@pytest.mark.parametrize("kind, status", [("apply", "added"), ("apply", "changed"), ("destroy", "removed")])
@pytest.mark.parametrize("total", [1, 255, 256, 257, 300, 511, 512, 513, 1000, 25_600])
def test_any_number_of_customers_fits_in_256_jobs_each_customer_once(kind, status, total):
    """Up to 256, one customer a job; beyond, contiguous batches of the sorted names, as even as they come, each in
    its own concurrency group (the customer; the batch's first and last names), none empty."""
    customers = names(total)
    include = matrix.matrix(kind, report(**{status: customers}))
    batches = jobs_of(include)
    assert 0 < len(include) <= 256 and all(batches)
    assert sum(batches, []) == sorted(customers)
    assert max(map(len, batches)) - min(map(len, batches)) <= ceil(total / 256)
    assert [e["group"] for e in include] == [b[0] if len(b) == 1 else f"{b[0]}..{b[-1]}" for b in batches]
    assert len({e["group"] for e in include}) == len(include)
    if total <= 256:
        assert len(include) == total


def test_a_group_names_at_most_two_of_the_longest_customer_names():
    longest = [f"{'c' * 36}{i:04d}" for i in range(600)]
    assert {len(e["group"]) for e in matrix.matrix("destroy", report(removed=longest))} == {82}


def test_fewer_jobs_than_customers_batches_them():
    include = matrix.matrix("destroy", report(removed=["a", "b", "c", "d", "e"]), max_jobs=2)
    assert include == [{"customers": "a b c", "group": "a..c"}, {"customers": "d e", "group": "d..e"}]


# ---------------------------------------------------------------- the command


def outdir(root: Path, stacks: dict[str, str]) -> Path:
    """A `cdktf.out` layout: `manifest.json` and `stacks/<name>/cdk.tf.json` holding a role named after the value."""
    root.mkdir()
    for name, role in stacks.items():
        (root / "stacks" / name).mkdir(parents=True)
        (root / "stacks" / name / "cdk.tf.json").write_text(
            json.dumps({"resource": {"aws_iam_role": {"role": {"name": role}}}}))
    (root / "manifest.json").write_text(json.dumps({"stacks": {name: {} for name in stacks}}))
    return root


@pytest.fixture
def dirs(tmp_path) -> list[str]:
    """Base and head: `acme` changed, `globex` removed, `initech` added, `hooli` unchanged."""
    base = outdir(tmp_path / "base", {"acme": "old", "globex": "r", "hooli": "r"})
    head = outdir(tmp_path / "head", {"acme": "new", "hooli": "r", "initech": "r"})
    return ["--base", str(base), "--head", str(head)]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["matrix", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_prints_compact_sorted_json(capsys, dirs):
    assert run(capsys, "plan", *dirs, "--per-job", "2") == (
        0, '{"include":[{"batch":"0/2","index":0},{"batch":"1/2","index":1}]}\n', "")
    assert run(capsys, "apply", *dirs) == (
        0, '{"include":[{"customers":"acme","group":"acme"},{"customers":"initech","group":"initech"}]}\n', "")
    assert run(capsys, "destroy", *dirs) == (0, '{"include":[{"customers":"globex","group":"globex"}]}\n', "")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Writes the project's settings (cdktf.json's `context`) where the command reads them."""
    def write(context: dict):
        path = tmp_path / "cdktf.json"
        path.write_text(json.dumps({"language": "python", "app": "python main.py", "context": context}))
        monkeypatch.setenv(SETTINGS_ENV, str(path))
    return write


def test_github_output_appends_the_matrix_its_count_and_for_apply_whether_each_wave_is_approved(
        capsys, dirs, tmp_path, monkeypatch, settings):
    output = tmp_path / "github-output"
    output.write_text("earlier=1\n")
    monkeypatch.setenv(matrix.GITHUB_OUTPUT_ENV, str(output))
    settings({})
    assert run(capsys, "apply", *dirs, "--github-output")[0] == 0
    assert run(capsys, "destroy", *dirs, "--max-jobs", "1", "--github-output")[0] == 0
    settings({"rollout": {"approveEachWave": False}})
    assert run(capsys, "apply", *dirs, "--max-jobs", "1", "--github-output")[0] == 0
    assert output.read_text() == (
        'earlier=1\n'
        'matrix={"include":[{"customers":"acme","group":"acme"},{"customers":"initech","group":"initech"}]}\n'
        'count=2\napprove-each-wave=true\n'
        'matrix={"include":[{"customers":"globex","group":"globex"}]}\ncount=1\n'
        'matrix={"include":[{"customers":"acme initech","group":"acme..initech"}]}\ncount=1\n'
        'approve-each-wave=false\n')


def test_an_empty_matrix_has_count_0(capsys, tmp_path, monkeypatch, settings):
    same = outdir(tmp_path / "same", {"acme": "r"})
    monkeypatch.setenv(matrix.GITHUB_OUTPUT_ENV, str(tmp_path / "github-output"))
    settings({})
    for kind in ("plan", "apply", "destroy"):
        assert run(capsys, kind, "--base", str(same), "--head", str(same), "--github-output") == (
            0, '{"include":[]}\n', "")
    assert (tmp_path / "github-output").read_text() == ('matrix={"include":[]}\ncount=0\n' * 2
                                                        + 'approve-each-wave=true\n'
                                                        + 'matrix={"include":[]}\ncount=0\n')


def test_300_removed_customers_are_destroyed_by_at_most_256_jobs(capsys, tmp_path):
    base = outdir(tmp_path / "base", {name: "r" for name in names(300)})
    head = outdir(tmp_path / "head", {})
    code, out, err = run(capsys, "destroy", "--base", str(base), "--head", str(head))
    include = json.loads(out)["include"]
    assert (code, err, len(include)) == (0, "", 150)
    assert sum(jobs_of(include), []) == sorted(names(300))


def test_bad_settings_are_exit_2_and_write_nothing(capsys, dirs, tmp_path, monkeypatch, settings):
    output = tmp_path / "github-output"
    monkeypatch.setenv(matrix.GITHUB_OUTPUT_ENV, str(output))
    settings({"rollout": {"approveEachWave": "no"}})
    code, out, err = run(capsys, "apply", *dirs, "--github-output")
    assert (code, out) == (2, "") and err.startswith("matrix: ") and "context.rollout.approveEachWave" in err
    assert not output.exists()


@pytest.mark.parametrize("args, message", [
    (["--max-jobs", "0"], "matrix: --max-jobs must be 1 to 256"),
    (["--max-jobs", "257"], "matrix: --max-jobs must be 1 to 256"),
    (["--per-job", "0"], "matrix: --per-job must be at least 1"),
    (["--github-output"], "matrix: --github-output: GITHUB_OUTPUT is not set (GitHub Actions sets it in a step)"),
])
def test_bad_options_are_one_line_exit_2(capsys, dirs, monkeypatch, args, message):
    monkeypatch.delenv(matrix.GITHUB_OUTPUT_ENV, raising=False)
    assert run(capsys, "plan", *dirs, *args) == (2, "", message + "\n")


def test_a_directory_that_is_not_a_synth_output_is_one_line_exit_2(capsys, tmp_path):
    head = outdir(tmp_path / "head", {"acme": "r"})
    code, out, err = run(capsys, "plan", "--base", str(tmp_path / "missing"), "--head", str(head))
    assert (code, out) == (2, "")
    assert err == f"matrix: {tmp_path / 'missing'}: not a directory (expected a cdktf.out layout)\n"


def test_the_drift_matrix_batches_every_stack_of_the_head_and_takes_no_base(capsys, tmp_path, dirs):
    head = dirs[3]
    assert run(capsys, "drift", "--head", head, "--per-job", "2") == (
        0, '{"include":[{"batch":"0/2","index":0},{"batch":"1/2","index":1}]}\n', "")
    assert run(capsys, "drift", "--head", head) == (0, '{"include":[{"batch":"0/1","index":0}]}\n', "")
    for args, message in ((["drift", *dirs], "matrix drift: no --base: every stack of --head is checked"),
                          (["plan", "--head", head], "matrix plan: --base is required")):
        with pytest.raises(SystemExit) as refused:
            cli.main(["matrix", *args])
        assert (refused.value.code, capsys.readouterr().err) == (2, message + "\n")
