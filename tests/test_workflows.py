"""The GitHub workflows: actionlint-clean, logic-free (every step a make target or a `python -m dataplane` command the
project has), actions pinned to release tags, one change per customer at a time, matrices only from `matrix`."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess

import pytest
import yaml

from dataplane.ops import cli
from dataplane.project import PROJECT_ROOT

WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = PROJECT_ROOT / ".venv" / "bin" / "actionlint"
DATAPLANE = (["python", "-m", "dataplane"], [".venv/bin/python", "-m", "dataplane"])
SAMPLES = {"BATCH": "0/4"}
"""Values for environment variables a step's arguments name, where the parser checks their form."""
ENV_REFERENCE = re.compile(r'"\$([A-Z_][A-Z0-9_]*)"')
PINNED = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+@v\d+(\.\d+){0,2}")


def workflow(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / name).read_text())


def jobs():
    """(workflow file, job id, job) for every job of every workflow."""
    for path in WORKFLOWS:
        for job_id, job in yaml.safe_load(path.read_text())["jobs"].items():
            yield path.name, job_id, job


def steps():
    """(workflow file, job id, job, step) for every step of every workflow."""
    for name, job_id, job in jobs():
        for step in job["steps"]:
            yield name, job_id, job, step


def makefile() -> tuple[set[str], set[str]]:
    """The Makefile's targets and variables."""
    targets, variables = set(), set()
    for line in (PROJECT_ROOT / "Makefile").read_text().splitlines():
        if rule := re.match(r"([^\t#\s.][^:=#]*?)\s*::?(?!=)", line):
            targets.update(rule[1].split())
        elif variable := re.match(r"(?:override\s+)?([A-Z_][A-Z0-9_]*)\s*[?:+]?=", line):
            variables.add(variable[1])
    return targets, variables


def words(command: str) -> list[str]:
    """The command's words as the shell splits them (operators apart), with sample values for the variables."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    return [re.sub(r"\$([A-Z_][A-Z0-9_]*)", lambda m: SAMPLES.get(m[1], "sample"), t) for t in tokens]


def problems_of(command: str, env: dict, targets: set[str], variables: set[str]) -> list[str]:
    """What is wrong with one `run:` command; none when it is one make or `python -m dataplane` command."""
    if "\n" in command.strip() or "${{" in command:
        return ["not one line without ${{ }} expressions (pass values through env:)"]
    if "$" in ENV_REFERENCE.sub("", command):
        return ['an environment variable not quoted as "$NAME"']
    problems = [f"${name} is not in the step's env" for name in ENV_REFERENCE.findall(command) if name not in env]
    argv = words(command)
    if operators := [w for w in argv if set(w) <= set("();<>|&")]:
        problems.append(f"shell operators {operators}: one command only")
    elif argv[0] == "make":
        assigned = [w.split("=", 1)[0] for w in argv[1:] if "=" in w]
        problems += [f"make option {w}" for w in argv[1:] if w.startswith("-")]
        problems += [f"make target {w!r} is not in the Makefile" for w in argv[1:]
                     if "=" not in w and not w.startswith("-") and w not in targets]
        problems += [f"make variable {v} is not in the Makefile" for v in assigned if v not in variables]
    elif argv[:3] in DATAPLANE:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            try:
                cli.parser().parse_args(argv[3:])
            except SystemExit:
                problems.append(f"python -m dataplane refuses it: {stderr.getvalue().strip().splitlines()[-1]}")
    else:
        problems.append("neither a make target nor a python -m dataplane command")
    return problems


def test_actionlint_passes():
    assert WORKFLOWS, "no workflows"
    done = subprocess.run([str(ACTIONLINT), "-no-color", *map(str, WORKFLOWS)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_run_step_is_a_make_target_or_a_dataplane_command_the_project_has():
    targets, variables = makefile()
    problems = []
    for name, job_id, job, step in steps():
        if "run" in step:
            env = {**workflow(name).get("env", {}), **job.get("env", {}), **step.get("env", {})}
            problems += [f"{name} {job_id}: {step['run']!r}: {p}"
                         for p in problems_of(step["run"], env, targets, variables)]
    assert problems == []


def test_the_venv_is_built_before_a_step_uses_it():
    for name, job_id, job in jobs():
        runs = [step["run"] for step in job["steps"] if "run" in step]
        for i, command in enumerate(runs):
            if command.startswith(".venv/"):
                assert any(c.startswith("make ") for c in runs[:i]), f"{name} {job_id}: {command}"


def test_every_action_is_pinned_to_a_release_tag():
    used = {step["uses"] for _, _, _, step in steps() if "uses" in step}
    assert used and {u for u in used if not PINNED.fullmatch(u)} == set()


@pytest.mark.parametrize("job_id", ["apply", "destroy"])
def test_apply_and_destroy_change_one_customer_at_a_time_after_an_approval(job_id):
    job = workflow("apply.yml")["jobs"][job_id]
    assert job["concurrency"] == {"group": "dataplane-${{ matrix.customer }}", "cancel-in-progress": False}
    assert job["environment"] == "dataplane-production"
    assert job["strategy"]["fail-fast"] is False


def test_every_matrix_comes_from_the_matrix_command_and_an_empty_one_runs_no_job():
    """`python -m dataplane matrix` never lists more than 256 jobs (tests/test_matrix.py); GitHub refuses an empty
    matrix, so a job runs only when the count is not 0."""
    matrices = 0
    for path in WORKFLOWS:
        jobs = yaml.safe_load(path.read_text())["jobs"]
        for job_id, job in jobs.items():
            if "strategy" not in job:
                continue
            matrices += 1
            source, output = re.fullmatch(r"\$\{\{ fromJSON\(needs\.([\w-]+)\.outputs\.([\w-]+)\) \}\}",
                                          job["strategy"]["matrix"]).groups()
            outputs = jobs[source]["outputs"]
            step_id = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.matrix \}\}", outputs[output])[1]
            [count] = [o for o, v in outputs.items() if v == f"${{{{ steps.{step_id}.outputs.count }}}}"]
            [step] = [s for s in jobs[source]["steps"] if s.get("id") == step_id]
            assert words(step["run"])[3:4] == ["matrix"] and "--github-output" in step["run"], (path.name, job_id)
            assert f"needs.{source}.outputs.{count} != '0'" in job["if"], (path.name, job_id)
    assert matrices == 3  # plan; apply and destroy


def test_aws_credentials_come_only_from_the_oidc_role():
    for name, job_id, job, step in steps():
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
            assert job["permissions"]["id-token"] == "write", (name, job_id)
            assert step["with"]["role-to-assume"] == "${{ vars.DATAPLANE_CI_ROLE_ARN }}", (name, job_id)
            assert set(step["with"]) == {"role-to-assume", "aws-region"}, (name, job_id)


def test_the_review_is_posted_with_the_workflow_token():
    job = workflow("pull-request.yml")["jobs"]["review"]
    [post] = [s for s in job["steps"] if words(s.get("run", "x"))[3:4] == ["comment"]]
    assert post["env"] == {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}
    assert job["permissions"]["pull-requests"] == "write"


def test_set_up_steps_cache_their_downloads():
    for name, job_id, _, step in steps():
        action = step.get("uses", "").split("@")[0]
        cache = {"actions/setup-python": "pip", "actions/setup-node": "npm"}.get(action)
        if cache:
            assert step["with"]["cache"] == cache, (name, job_id)
        if action == "actions/cache":
            assert "hashFiles(" in step["with"]["key"], (name, job_id)


def test_drift_runs_daily_and_on_demand_and_keeps_one_issue():
    """The report goes to a file the issue steps read: the open issue is updated while the drift step fails (drift
    or an error), and closed when it succeeds (all in sync)."""
    drift = workflow("drift.yml")
    assert set(drift[True]) == {"schedule", "workflow_dispatch"}  # YAML 1.1 reads the key `on` as True
    [schedule] = drift[True]["schedule"]
    assert re.fullmatch(r"\d+ \d+ \* \* \*", schedule["cron"])
    assert drift["permissions"] == {"contents": "read"}
    [(job_id, job)] = drift["jobs"].items()
    assert job["permissions"] == {"contents": "read", "id-token": "write", "issues": "write"}
    assert job["concurrency"] == {"group": "dataplane-drift", "cancel-in-progress": False}
    runs = [(step.get("if"), words(step["run"])) for step in job["steps"] if "run" in step]
    assert runs == [
        (None, ["make", "synth"]),
        (None, [".venv/bin/python", "-m", "dataplane", "drift", "--format", "markdown", "--out", "drift.md"]),
        ("${{ failure() && steps.drift.outcome == 'failure' }}",
         [".venv/bin/python", "-m", "dataplane", "issue", "--title", "Data plane drift", "--body-file", "drift.md"]),
        (None, [".venv/bin/python", "-m", "dataplane", "issue", "--title", "Data plane drift", "--body-file",
                "drift.md", "--close"])]
    [find] = [step for step in job["steps"] if words(step.get("run", "x"))[3:4] == ["drift"]]
    assert find["id"] == "drift"
    for step in job["steps"]:
        if words(step.get("run", "x"))[3:4] == ["issue"]:
            assert step["env"] == {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}


def test_drift_is_set_up_as_the_plan_jobs_are_and_gets_credentials_after_the_synth():
    plan = [step for step in workflow("pull-request.yml")["jobs"]["plan"]["steps"] if "uses" in step]
    steps = workflow("drift.yml")["jobs"]["drift"]["steps"]
    set_up = [step for step in steps if "uses" in step]
    assert set_up == [step for step in plan if not step["uses"].startswith(("actions/download-", "actions/upload-"))]
    credentials = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/"))
    assert [s["run"] for s in steps[:credentials] if "run" in s] == ["make synth"]
