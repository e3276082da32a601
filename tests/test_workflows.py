"""The GitHub workflows: actionlint-clean, logic-free (every step a make target or a `python -m dataplane` command the
project has), actions pinned by commit, one change per customer at a time, matrices only from `matrix`, the plan role
for pull requests and drift, the apply role only in the apply environment, no checkout that keeps its token."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess

import pytest
import yaml

from dataplane.config.settings import load_settings
from dataplane.ops import cli
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES

WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = PROJECT_ROOT / ".venv" / "bin" / "actionlint"
DATAPLANE = (["python", "-m", "dataplane"], [".venv/bin/python", "-m", "dataplane"])
SAMPLES = {"BATCH": "0/4"}
"""Values for environment variables a step's arguments name, where the parser checks their form."""
ENV_REFERENCE = re.compile(r'"\$([A-Z_][A-Z0-9_]*)"')
USES = re.compile(r"^\s*(?:- )?uses: (\S+)@(\S+)(?: # (\S+))?$", re.M)
PINS = {
    "actions/cache": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "actions/setup-node": ("820762786026740c76f36085b0efc47a31fe5020", "v7.0.0"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "hashicorp/setup-terraform": ("dfe3c3f87815947d99a8997f908cb6525fc44e9e", "v4.0.1"),
}
"""Each action's commit and the release tag it was confirmed as, from a fetched copy of the action's repository
(`git rev-parse <tag>^{commit}`): a new pin is confirmed the same way before it is added here."""
PLAN_ROLE, APPLY_ROLE = "${{ vars.DATAPLANE_CI_PLAN_ROLE_ARN }}", "${{ vars.DATAPLANE_CI_APPLY_ROLE_ARN }}"


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


def test_every_action_is_pinned_to_a_confirmed_commit_with_its_release_tag():
    used = [match.groups() for path in WORKFLOWS for match in USES.finditer(path.read_text())]
    assert len(used) == sum("uses" in step for *_, step in steps())
    assert {(action, (commit, tag)) for action, commit, tag in used} <= set(PINS.items())


def test_every_checkout_drops_its_token():
    """Nothing in the workflows pushes: no checkout leaves the token in .git/config for a later step to read."""
    checkouts = [(name, job_id, step) for name, job_id, _, step in steps()
                 if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and [(name, job_id) for name, job_id, step in checkouts
                          if step.get("with", {}).get("persist-credentials") is not False] == []


ROLLOUT_JOBS = ("apply", "apply-wave-2", "apply-wave-3", "apply-rest")
"""The apply workflow's rollout: the canary, waves 2 and 3, and every wave left."""


def test_destroys_change_one_customer_at_a_time_after_an_approval():
    """One job per customer (a batch per job beyond 256: `matrix destroy`), each in the customer's concurrency group
    (the batch's), each customer destroyed on its own, one after another (`make destroy-each`)."""
    job = workflow("apply.yml")["jobs"]["destroy"]
    assert job["concurrency"] == {"group": "dataplane-${{ matrix.group }}", "cancel-in-progress": False}
    assert job["environment"] == load_settings().apply_environment == "dataplane-production"
    assert job["strategy"]["fail-fast"] is False
    [destroy] = [step for step in job["steps"] if "run" in step and words(step["run"])[1] == "destroy-each"]
    assert words(destroy["run"]) == ["make", "destroy-each", "CUSTOMERS=sample", "BASE=sample", "YES=1"]
    assert destroy["env"] == {"CUSTOMERS": "${{ matrix.customers }}", "BASE": "${{ github.event.before }}"}


def test_make_destroy_each_tries_every_customer_and_fails_naming_those_not_destroyed(tmp_path):
    """Names only, never shell or make code; a failed one does not stop the others (`make destroy` refuses each)."""
    env = {**tool_environment(), CUSTOMERS_DIR_ENV: str(FIXTURES)}
    make = ["make", "--no-print-directory", "-s", "destroy-each"]
    usage = subprocess.run(make, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and usage.stderr.startswith('usage: make destroy-each CUSTOMERS="<name> ..."')
    marker = tmp_path / "injected"
    customers = f"acme initech$(touch {marker}) `touch {marker}` *"
    done = subprocess.run([*make, f"CUSTOMERS={customers}", "BASE=HEAD"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    refusals = [line for line in done.stderr.splitlines() if line.startswith("destroy: ")]
    assert refusals[0].startswith("destroy: acme is still in the fleet") and len(refusals) == 6, done.stderr
    assert done.returncode == 2 and f"destroy-each: not destroyed: {customers}" in done.stderr.splitlines()
    assert not marker.exists()


def test_the_rollout_runs_wave_by_wave_each_after_the_one_before_and_an_approval():
    """One job per wave after an approval, one rollout at a time; each later one after the one before (a failed wave
    runs none), continuing the record the one before uploaded; every job shows the record in its summary."""
    jobs = workflow("apply.yml")["jobs"]
    waves = []
    for before, job_id in zip((None, *ROLLOUT_JOBS), ROLLOUT_JOBS):
        job = jobs[job_id]
        assert job["environment"] == "dataplane-production"
        assert job["concurrency"] == {"group": "dataplane-rollout", "cancel-in-progress": False}
        assert before is None or before in job["needs"]
        [rollout] = [words(s["run"]) for s in job["steps"] if words(s.get("run", "x"))[:2] == ["make", "rollout"]]
        args = rollout[2].removeprefix("ROLLOUT_ARGS=").split()
        assert ("--resume" in args) == (before is not None) and "--github-summary" in args, job_id
        waves.append(args[args.index("--wave") + 1] if "--wave" in args else None)
        uses = [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s]
        assert "actions/upload-artifact" in uses and ("actions/download-artifact" in uses) == (before is not None)
    assert waves == ["1", "2", "3", None]


NEEDS = re.compile(r"needs\.([\w-]+)\.(result|outputs\.[\w-]+)")
TOKEN = re.compile(r"\s+|'(?:[^']|'')*'|&&|\|\||[=!]=|!|[()]|[A-Za-z_][\w.-]*(?:\(\))?")
STATUS = {"success()", "failure()", "always()", "cancelled()"}


def evaluate(condition: str | None, job_needs: list[str], results: dict[str, str], outputs: dict[str, dict],
             ancestors_succeeded: bool, cancelled: bool = False) -> bool:
    """A job's `if:` as GitHub evaluates it, for the expressions the workflows use (&&, ||, !, ==, !=, parentheses,
    the status functions, `needs.<job>.result|outputs.<name>`): `success() && ` is implied without a status function,
    and success() wants every job before (the needed ones and theirs) to have succeeded."""
    expression = (condition or "success()").strip().removeprefix("${{").removesuffix("}}")
    tokens = [t for t in TOKEN.findall(expression) if not t.isspace()]
    assert "".join(tokens) == "".join(expression.split()), f"unparsed: {expression}"
    if not STATUS & set(tokens):
        tokens = ["success()", "&&", *tokens]
    functions = {"success()": ancestors_succeeded and not cancelled, "failure()": not ancestors_succeeded,
                 "always()": True, "cancelled()": cancelled}
    python = []
    for token in tokens:
        if token in functions:
            python.append(repr(functions[token]))
        elif token.startswith("'"):
            python.append(repr(token[1:-1].replace("''", "'")))
        elif reference := NEEDS.fullmatch(token):
            job, what = reference.groups()
            assert job in job_needs, f"{token}: {job} is not in needs"
            python.append(repr(results[job] if what == "result" else outputs.get(job, {}).get(what[8:], "")))
        else:
            python.append({"&&": "and", "||": "or", "!": "not", "==": "==", "!=": "!=", "(": "(", ")": ")"}[token])
    return eval(" ".join(python), {"__builtins__": {}})  # noqa: S307: built from the tokens above only


def needs_of(job: dict) -> list[str]:
    return [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])


def run_apply_workflow(synth: dict[str, str], failing: set[str] = frozenset(), cancelled: bool = False) -> list[str]:
    """The jobs of apply.yml that run, in order, given the synth job's outputs and the jobs that fail if they run."""
    jobs = workflow("apply.yml")["jobs"]
    results: dict[str, str] = {}
    ancestors: dict[str, set[str]] = {}
    for job_id, job in jobs.items():  # the file lists each job after those it needs
        needs = needs_of(job)
        assert set(needs) <= set(results), job_id
        ancestors[job_id] = set(needs).union(*(ancestors[n] for n in needs))
        succeeded = all(results[a] == "success" for a in ancestors[job_id])
        runs = evaluate(job.get("if"), needs, results, {"synth": synth}, succeeded, cancelled)
        results[job_id] = ("failure" if job_id in failing else "success") if runs else "skipped"
    return [job_id for job_id, result in results.items() if result != "skipped"]


@pytest.mark.parametrize("destroys", [{"destroy-count": "0"}, {"destroy-count": "2"}, {"destroy-count": "2",
                                                                                         "fails": "destroy"}])
@pytest.mark.parametrize("approve_each_wave, failing, ran", [
    ("true", None, ["apply", "apply-wave-2", "apply-wave-3", "apply-rest"]),
    ("true", "apply", ["apply"]),
    ("true", "apply-wave-2", ["apply", "apply-wave-2"]),
    ("true", "apply-wave-3", ["apply", "apply-wave-2", "apply-wave-3"]),
    ("true", "apply-rest", ["apply", "apply-wave-2", "apply-wave-3", "apply-rest"]),
    ("", None, ["apply", "apply-wave-2", "apply-wave-3", "apply-rest"]),  # no output: the safe default
    ("false", None, ["apply", "apply-rest"]),
    ("false", "apply", ["apply"]),
    ("false", "apply-rest", ["apply", "apply-rest"]),
])
def test_each_wave_is_approved_or_all_after_the_canary_at_once_as_the_settings_say(destroys, approve_each_wave,
                                                                                      failing, ran):
    """rollout.approveEachWave true: one job per wave, each after an approval; false: the canary, then one job (one
    approval) for every wave left. Either way a failed wave runs no later job, and whatever became of the destroys
    (none to run, done, failed), the rollout runs."""
    synth = {"apply-count": "5", "destroy-count": destroys["destroy-count"], "approve-each-wave": approve_each_wave}
    failing = {name for name in (failing, destroys.get("fails")) if name}
    done = run_apply_workflow(synth, failing)
    assert [job_id for job_id in done if job_id in ROLLOUT_JOBS] == ran
    assert ("destroy" in done) == (destroys["destroy-count"] != "0")


@pytest.mark.parametrize("approve_each_wave", ["true", "false"])
def test_nothing_to_apply_or_a_cancelled_run_rolls_nothing_out(approve_each_wave):
    synth = {"apply-count": "0", "destroy-count": "1", "approve-each-wave": approve_each_wave}
    assert run_apply_workflow(synth) == ["synth", "destroy"]
    assert run_apply_workflow({**synth, "apply-count": "3"}, cancelled=True) == []


def test_the_rollout_jobs_state_their_conditions_in_full():
    """No wave job leans on the implied success(): it would skip every wave after a skipped or failed destroy job and,
    when the settings approve the waves at once, the job running them after the skipped waves 2 and 3. The setting
    comes from the settings themselves, through `matrix apply` in the synth job."""
    jobs = workflow("apply.yml")["jobs"]
    for job_id in ROLLOUT_JOBS:
        assert jobs[job_id]["if"].startswith("${{ !cancelled() && "), job_id
        assert "synth" in needs_of(jobs[job_id]), job_id
    synth = jobs["synth"]
    assert synth["outputs"]["approve-each-wave"] == "${{ steps.apply.outputs.approve-each-wave }}"
    [step] = [step for step in synth["steps"] if step.get("id") == "apply"]
    assert words(step["run"])[3:5] == ["matrix", "apply"] and "--github-output" in step["run"]
    assert load_settings().rollout.approve_each_wave is True


def test_apply_runs_after_the_destroys_whatever_their_outcome():
    """One customer's failed offboarding never skips another customer's apply; a cancelled run applies nothing."""
    job = workflow("apply.yml")["jobs"]["apply"]
    assert job["needs"] == ["synth", "destroy"]
    assert job["if"] == ("${{ !cancelled() && needs.synth.result == 'success' "
                         "&& needs.synth.outputs.apply-count != '0' }}")


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
    assert matrices == 3  # plan; destroy (the apply is a rollout); drift


def credentials() -> dict[tuple[str, str], tuple[dict, str]]:
    """(workflow file, job id) -> (job, the role it assumes) for every job that gets AWS credentials."""
    found = {}
    for name, job_id, job, step in steps():
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
            assert (name, job_id) not in found, "one role per job"
            assert set(step["with"]) == {"role-to-assume", "aws-region"}, (name, job_id)
            found[name, job_id] = job, step["with"]["role-to-assume"]
    return found


def test_aws_credentials_come_only_from_the_oidc_roles():
    found = credentials()
    assert found and {job["permissions"]["id-token"] for job, _ in found.values()} == {"write"}
    assert {role for _, role in found.values()} == {PLAN_ROLE, APPLY_ROLE}


def test_only_jobs_in_the_apply_environment_assume_the_apply_role():
    """The environment's required reviewers approve before its job starts; every other job, the pull request's plan
    (which runs the pull request's own code) and drift among them, gets the read-only plan role."""
    environment = load_settings().apply_environment
    roles = {key: (job.get("environment"), role) for key, (job, role) in credentials().items()}
    assert roles == {**{("apply.yml", job_id): (environment, APPLY_ROLE) for job_id in ROLLOUT_JOBS},
                     ("apply.yml", "destroy"): (environment, APPLY_ROLE),
                     ("drift.yml", "drift"): (None, PLAN_ROLE), ("pull-request.yml", "plan"): (None, PLAN_ROLE)}
    assert [key for key, (job, role) in credentials().items() if role == APPLY_ROLE and "environment" not in job] == []


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


def test_drift_runs_daily_and_on_demand_in_batches_merged_into_one_issue():
    """The fleet is cut into batches (`matrix drift`), each checked in its own job; the merge job reads every batch's
    report and updates the open issue while the merge fails (drift, an error, a batch missing), closes it when it
    succeeds (all in sync)."""
    drift = workflow("drift.yml")
    assert set(drift[True]) == {"schedule", "workflow_dispatch"}  # YAML 1.1 reads the key `on` as True
    [schedule] = drift[True]["schedule"]
    assert re.fullmatch(r"\d+ \d+ \* \* \*", schedule["cron"])
    assert drift["permissions"] == {"contents": "read"}
    jobs = drift["jobs"]
    assert list(jobs) == ["shards", "drift", "report"]
    runs = {job_id: [(step.get("if"), words(step["run"])) for step in job["steps"] if "run" in step]
            for job_id, job in jobs.items()}
    dataplane = [".venv/bin/python", "-m", "dataplane"]
    assert runs["shards"] == [(None, ["make", "synth"]),
                              (None, [*dataplane, "matrix", "drift", "--head", "cdktf.out", "--github-output"])]
    assert runs["drift"] == [(None, ["make", "setup"]), (None, [*dataplane, "drift", "--batch", "0/4", "--format",
                                                                "json", "--out", "sample"])]
    [find] = [step for step in jobs["drift"]["steps"] if words(step.get("run", "x"))[3:4] == ["drift"]]
    assert find["env"] == {"BATCH": "${{ matrix.batch }}", "REPORT": "drift-${{ matrix.index }}.json"}
    [upload] = [step for step in jobs["drift"]["steps"] if step.get("uses", "").startswith("actions/upload-")]
    assert (upload["if"], upload["with"]["path"]) == ("${{ !cancelled() }}", "drift-${{ matrix.index }}.json")
    report = jobs["report"]
    assert report["needs"] == ["shards", "drift"] and report["if"].startswith("${{ !cancelled() && ")
    [download] = [step for step in report["steps"] if step.get("uses", "").startswith("actions/download-")]
    assert download["with"] == {"pattern": "drift-*", "merge-multiple": True, "path": "drift-reports"}
    assert runs["report"] == [
        (None, ["make", "setup"]),
        (None, [*dataplane, "drift", "--merge", "drift-reports", "--format", "markdown", "--out", "drift.md"]),
        ("${{ failure() && steps.drift.outcome == 'failure' }}",
         [*dataplane, "issue", "--title", "Data plane drift", "--body-file", "drift.md"]),
        (None, [*dataplane, "issue", "--title", "Data plane drift", "--body-file", "drift.md", "--close"])]
    assert [step["id"] for step in report["steps"] if words(step.get("run", "x"))[3:4] == ["drift"]] == ["drift"]
    assert report["permissions"] == {"contents": "read", "issues": "write"}
    assert report["concurrency"] == {"group": "dataplane-drift", "cancel-in-progress": False}
    for step in report["steps"]:
        if words(step.get("run", "x"))[3:4] == ["issue"]:
            assert step["env"] == {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}


def test_drift_batches_are_set_up_as_the_plan_jobs_are_and_get_credentials_last():
    plan = [step for step in workflow("pull-request.yml")["jobs"]["plan"]["steps"] if "uses" in step]
    steps = workflow("drift.yml")["jobs"]["drift"]["steps"]
    artifacts = ("actions/download-", "actions/upload-")
    assert [s for s in steps if "uses" in s and not s["uses"].startswith(artifacts)] == [
        s for s in plan if not s["uses"].startswith(artifacts)]
    assert workflow("drift.yml")["jobs"]["drift"]["permissions"] == {"contents": "read", "id-token": "write"}
    credentials = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/"))
    assert [s["run"] for s in steps[:credentials] if "run" in s] == ["make setup"]


def test_a_pull_request_changing_many_customers_roles_needs_the_fleet_change_label():
    """The check runs again when a label is added or removed, and reads the event's labels."""
    pull_request = workflow("pull-request.yml")
    assert {"labeled", "unlabeled", "synchronize"} <= set(pull_request[True]["pull_request"]["types"])
    job = pull_request["jobs"]["fleet-change"]
    assert job["needs"] == "synth" and "permissions" not in job  # the workflow's: contents read, no token to write
    assert [words(s["run"]) for s in job["steps"] if "run" in s] == [
        ["make", "setup"], [".venv/bin/python", "-m", "dataplane", "blast-radius", "--base", "base.out", "--head",
                            "cdktf.out"]]


@pytest.mark.parametrize("job_id", ["review", "fleet-change"])
def test_the_checks_that_judge_a_pull_request_run_the_base_s_code(job_id):
    """The review comment and the label check come from code already on main, not from the pull request."""
    checkout = next(s for s in workflow("pull-request.yml")["jobs"][job_id]["steps"]
                    if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
