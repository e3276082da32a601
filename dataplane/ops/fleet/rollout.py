"""`python -m dataplane rollout [CUSTOMER ...]`: a change taken to the fleet canary first, then in waves, halted by
the first failure, resumable.

1. Every selected stack of the synth output is planned, `--jobs` at a time and no more than memory allows
   (`MEMORY_PER_PLAN` each), in a private copy beside the synth output with adopt's import blocks (the ownership
   rules of `make deploy`); each saved plan is kept for the apply. A stack without changes is "no change".
2. The changed stacks are ordered into waves (`waves`): the canary, then cumulative percentages of the rest.
3. Wave by wave, `jobs` stacks at a time: `terraform apply <saved plan>` (a plan made stale by a state change since is
   planned again, once), the outputs written as `make deploy` writes them, then verify as the deployer. Once more
   stacks have failed (at credentials, adopt, plan, apply, outputs or verify) than `rollout.maxFailures`, the rollout
   halts at the end of that wave: no later wave is applied.
4. The record `<records>/<id>.json` and `.md`, rewritten as each stack finishes, and each stack's log in
   `<records>/<id>/<customer>.log`. `--resume` continues the latest unfinished rollout of the same commit and
   settings: done stacks are skipped, the others planned again and applied from the first unfinished wave on.

Credentials: the standard chain, or `deployRoleName` assumed in each stack's account (as `plan` does); a stack
whose account cannot be reached fails as that stack.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import boto3

from dataplane import synth_output
from dataplane.config.customer import Customer
from dataplane.config.settings import Rollout, Settings
from dataplane.ops.fleet import plan
from dataplane.ops.fleet.activate import as_deployer, tool_commit
from dataplane.ops.fleet.adopt import adopt, write_imports
from dataplane.ops.fleet.deploy import stack_outputs_text
from dataplane.ops.account.aws import acting_as
from dataplane.ops.files import write_atomically
from dataplane.ops.markdown import code
from dataplane.ops.report import Report, Status
from dataplane.ops.account.verify import verify
from dataplane.policy import external_id_list
from dataplane.project import GITHUB_STEP_SUMMARY_ENV
from dataplane.runtime.toolchain import tool_environment

CREDENTIALS_FOR = 15 * 60
"""Seconds a stack's assumed deploy role is used before it is assumed again (its session lasts an hour)."""
MEMORY_PER_PLAN = 450 * 2**20
"""What one terraform plan or apply with the aws provider takes, about: `--jobs` is bounded by it."""
STALE = "Saved plan is stale"
PENDING, NO_CHANGE, APPLIED, FAILED = "pending", "no change", "applied", "failed"
DONE = (NO_CHANGE, APPLIED)
RUNNING, PAUSED, HALTED, INCOMPLETE, FINISHED, SUPERSEDED = (
    "running", "paused", "halted", "incomplete", "finished", "superseded")
"""A rollout's status: running (or killed), paused after `--wave N`, halted by failures, incomplete (every wave run,
failures within `maxFailures`), finished, superseded by a later rollout (`--supersede`). All but the last two are
unfinished."""
Format = Literal["markdown", "json"]


class RolloutRefused(Exception):
    """A rollout that may not start: one line saying why (another is unfinished or running, nothing to resume)."""


def job_limit(jobs: int, available: int) -> int:
    """`jobs`, bounded by the memory `available` (bytes) at `MEMORY_PER_PLAN` each; at least 1."""
    return max(1, min(jobs, available // MEMORY_PER_PLAN))


def waves(changed: Sequence[str], rules: Rollout) -> list[list[str]]:
    """The changed customers in waves: the canary (those of `rules.canary`, else the first in order), then the rest
    up to each cumulative percentage of `rules.waves` (rounded up); in `rules.order`, then by name. No empty wave."""
    pinned = [name for name in rules.order if name in changed]
    ordered = pinned + sorted(set(changed) - set(pinned))
    canary = [name for name in ordered if name in rules.canary] or ordered[:1]
    rest = [name for name in ordered if name not in canary]
    result, taken = [canary] if canary else [], 0
    for percent in rules.waves:
        upto = -(-len(rest) * percent // 100)
        if upto > taken:
            result.append(rest[taken:upto])
            taken = upto
    return result


def settings_hash(settings: Settings) -> str:
    """The settings a rollout ran with, as one digest (a resume needs the same)."""
    return "sha256:" + hashlib.sha256(settings.model_dump_json().encode()).hexdigest()


@dataclass
class Stack:
    """One customer's part in a rollout: its wave (0: unchanged), result, the step that failed, its plan's counts,
    seconds per step, and when it started and finished (UTC)."""

    wave: int = 0
    result: str = PENDING
    failed_step: str | None = None
    error: str = ""
    plan: dict[str, int] = field(default_factory=dict)
    stale_plans: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None


@dataclass
class Record:
    """A rollout: `<records>/<id>.json`."""

    id: str
    commit: str
    settings_hash: str
    status: str
    started_at: str
    finished_at: str | None
    waves: list[list[str]]
    unchanged: list[str]
    wave_seconds: list[float | None]
    stacks: dict[str, Stack]

    @property
    def unfinished(self) -> bool:
        return self.status not in (FINISHED, SUPERSEDED)

    def failed(self, through: int | None = None) -> list[str]:
        """The failed stacks of every wave (or of waves 1 to `through`), in wave order."""
        return [name for wave in self.waves[:through] for name in wave if self.stacks[name].result == FAILED]

    def json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> "Record":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{**data, "stacks": {name: Stack(**stack) for name, stack in data["stacks"].items()}})
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise RolloutRefused(f"{path} is not a rollout record ({type(e).__name__}: {e}); move it away") from None


@dataclass(frozen=True)
class Request:
    """What the command line asked for."""

    names: tuple[str, ...]
    outdir: Path
    records_dir: Path
    outputs_dir: Path
    jobs: int
    dry_run: bool = False
    format: Format = "markdown"
    resume: bool = False
    supersede: bool = False
    last_wave: int | None = None
    github_summary: bool = False


def run(request: Request, settings: Settings, customers: Sequence[Customer], say: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep) -> int:
    """The rollout `request` asks for; 0 when every stack it reached is done, 1 on a failure. Raises
    `RolloutRefused`, and `plan.PlanInputError` for a selection the synth output does not hold."""
    fleet = {c.name: c for c in customers}
    names = [t.name for t in plan.select(request.outdir, request.names or sorted(fleet))]
    if request.dry_run:
        return _dry_run(request, settings, fleet, names, say)
    with _locked(request.records_dir):
        record = _starting(request, settings)
        if record is not None and not record.unfinished:
            say(f"rollout {record.id} of this commit and settings is {record.status}: nothing to resume")
            return 0
        started = time.monotonic()
        with synth_output.private_dir(request.outdir, "rollout") as workdir:
            runner = _Runner(request, settings, fleet, workdir, say)
            if record is None:
                record = runner.new_record(names)
            else:
                runner.record = record
                record.status = RUNNING
                runner.prepare_all([n for wave in record.waves for n in wave if record.stacks[n].result not in DONE])
            status = runner.apply_waves(sleep)
        record.status, record.finished_at = status, _now()
        runner.save()
    if request.github_summary:
        with open(os.environ[GITHUB_STEP_SUMMARY_ENV], "a", encoding="utf-8") as summary:
            summary.write(markdown(record))
    return _summary(record, request.records_dir, time.monotonic() - started, say)


def _dry_run(request: Request, settings: Settings, fleet: dict[str, Customer], names: list[str],
             say: Callable[[str], None]) -> int:
    """Plan and order, print the waves; nothing is applied and no record is written."""
    with synth_output.private_dir(request.outdir, "rollout") as workdir:
        runner = _Runner(request, settings, fleet, workdir, say)
        runner.record = _record("dry-run", "", "", {name: Stack() for name in names})
        runner.prepare_all(names)
    stacks = runner.record.stacks
    changed = [n for n in names if stacks[n].result != NO_CHANGE]
    ordered = waves(changed, settings.rollout)
    unchanged = [n for n in names if stacks[n].result == NO_CHANGE]
    if request.format == "json":
        print(json.dumps({"waves": ordered, "unchanged": unchanged}, indent=2))
    else:
        print(plan_markdown(ordered, unchanged, stacks), end="")
    failed = [n for n in names if stacks[n].result == FAILED]
    for name in failed:
        say(f"{name}: failed at {stacks[name].failed_step}: {stacks[name].error.splitlines()[0]}")
    return 1 if failed else 0


def _starting(request: Request, settings: Settings) -> Record | None:
    """The rollout to resume (unfinished, or the latest finished one of this commit and settings: nothing to do), or
    None for a new one (an unfinished one superseded when asked); `RolloutRefused` otherwise."""
    commit, digest = tool_commit(), settings_hash(settings)
    latest = latest_unfinished(request.records_dir)
    if latest is None:
        if not request.resume:
            return None
        done = latest_record(request.records_dir)
        if done and (done.status, done.commit, done.settings_hash) == (FINISHED, commit, digest):
            return done
        raise RolloutRefused(f"nothing to resume: no unfinished rollout in {request.records_dir}")
    where = (f"rollout {latest.id} ({latest.status}, commit {latest.commit[:12]}, settings {latest.settings_hash[:19]})"
             f" is unfinished")
    same = (latest.commit, latest.settings_hash) == (commit, digest)
    if request.resume:
        if not same:
            raise RolloutRefused(f"{where}; this is commit {commit[:12]}, settings {digest[:19]}: resume it from its "
                                 "own commit and settings, or start anew with --supersede")
        return latest
    if not request.supersede:
        then = "--resume continues it" if same else f"this is commit {commit[:12]}, settings {digest[:19]}"
        raise RolloutRefused(f"{where}; {then}, or --supersede starts anew")
    latest.status = SUPERSEDED
    write_atomically(request.records_dir / f"{latest.id}.json", latest.json())
    write_atomically(request.records_dir / f"{latest.id}.md", markdown(latest))
    return None


def latest_unfinished(records_dir: Path) -> Record | None:
    """The newest unfinished rollout recorded in `records_dir` (ids sort by time)."""
    for path in sorted(records_dir.glob("*.json"), reverse=True):
        if (record := Record.read(path)).unfinished:
            return record
    return None


def latest_record(records_dir: Path) -> Record | None:
    """The newest rollout recorded in `records_dir`."""
    return next((Record.read(path) for path in sorted(records_dir.glob("*.json"), reverse=True)), None)


@contextlib.contextmanager
def _locked(records_dir: Path) -> Iterator[None]:
    """One rollout at a time per records directory."""
    records_dir.mkdir(parents=True, exist_ok=True)
    with open(records_dir / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RolloutRefused(f"another rollout is running (it holds {records_dir / '.lock'})") from None
        yield


class _StepFailed(Exception):
    def __init__(self, step: str, error: str):
        super().__init__(error)
        self.step = step


class _Runner:
    """The steps of one run, stack by stack, and the record they keep up to date."""

    def __init__(self, request: Request, settings: Settings, fleet: dict[str, Customer], workdir: Path,
                 say: Callable[[str], None]):
        self.request, self.settings, self.fleet, self.workdir, self.say = request, settings, fleet, workdir, say
        self.environment, self.init = tool_environment(), plan._Init()
        self.plans = workdir / "plans"
        self.plans.mkdir()
        self.record: Record | None = None
        self._saving = threading.Lock()
        self._credentials: dict[str, tuple[float, dict[str, str], boto3.Session]] = {}
        self._assuming = threading.Lock()

    @property
    def logs(self) -> Path:
        return self.request.records_dir / self.record.id

    def new_record(self, names: list[str]) -> Record:
        """Plan every stack and order the changed ones into waves: the new rollout's record, saved."""
        self.record = _record(datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"), tool_commit(),
                              settings_hash(self.settings), {name: Stack() for name in names})
        self.prepare_all(names)
        stacks = self.record.stacks
        self.record.waves = waves([n for n in names if stacks[n].result != NO_CHANGE], self.settings.rollout)
        self.record.unchanged = [n for n in names if stacks[n].result == NO_CHANGE]
        self.record.wave_seconds = [None] * len(self.record.waves)
        for number, wave in enumerate(self.record.waves, 1):
            for name in wave:
                stacks[name].wave = number
        self.save()
        return self.record

    def prepare_all(self, names: Sequence[str]) -> None:
        """Plan `names` in parallel; each stack's entry says no change, pending (with its plan) or failed."""
        with ThreadPoolExecutor(max_workers=self.request.jobs) as pool:
            list(pool.map(self._prepare_one, names))

    def _prepare_one(self, name: str) -> None:
        stack = self.record.stacks[name]
        stack.result, stack.failed_step, stack.error = PENDING, None, ""
        with self._failing(name, stack, "plan"):
            changed = self._prepare(name, stack)
            stack.result = PENDING if changed else NO_CHANGE
            self.say(f"{name}: {'changes' if changed else 'no changes'} ({_counts(stack.plan)}) in "
                     f"{stack.seconds.get('plan', 0):.1f} s")

    def _prepare(self, name: str, stack: Stack) -> bool:
        """Credentials, adopt, plan into the saved plan; whether the plan changes anything."""
        env, session = self._deployer(name, stack)
        target = plan.Target(name, self._copy(name, stack, env))
        with _timed(stack, "adopt"):
            imports = adopt(target.directory, name, session)
        (target.directory / synth_output.IMPORTS_FILE).unlink(missing_ok=True)
        if imports:
            write_imports(target.directory, imports)
        self._log(name, "adopt", "".join(f"adopting {i['to']} = {i['id']}\n" for i in imports) or "nothing to adopt\n")
        with _timed(stack, "plan"):
            result, stack.plan, error = plan.plan_counted(target.directory, self._plan_file(name), env, self.init)
        if result == "error":
            raise _StepFailed("plan", error)
        self._log(name, "plan", f"{result}: {_counts(stack.plan)}\n")
        return result == "changes"

    def _plan_file(self, name: str) -> Path:
        return self.plans / f"{name}{plan.PLAN_SUFFIX}"

    def apply_waves(self, sleep: Callable[[float], None]) -> str:
        """Apply the waves not done yet, in order, pausing between them; the rollout's status afterwards."""
        record, rules = self.record, self.settings.rollout
        last = len(record.waves) if self.request.last_wave is None else min(self.request.last_wave, len(record.waves))
        ran = False
        for number, wave in enumerate(record.waves[:last], 1):
            todo = [name for name in wave if record.stacks[name].result == PENDING]
            if not todo:
                continue
            if ran and rules.pause_between_waves:
                self.say(f"pausing {rules.pause_between_waves} s before wave {number}")
                sleep(rules.pause_between_waves)
            ran = True
            self.say(f"wave {number}/{len(record.waves)}{' (canary)' if number == 1 else ''}: {', '.join(wave)}")
            clock = time.monotonic()
            with ThreadPoolExecutor(max_workers=self.request.jobs) as pool:
                list(pool.map(self._apply_one, todo))
            record.wave_seconds[number - 1] = round(time.monotonic() - clock, 1)
            self.save()
            if len(record.failed(number)) > rules.max_failures:
                return HALTED
        if any(record.stacks[name].result == PENDING for wave in record.waves for name in wave):
            return PAUSED
        return INCOMPLETE if record.failed() else FINISHED

    def _apply_one(self, name: str) -> None:
        stack = self.record.stacks[name]
        stack.started_at, stack.finished_at = _now(), None
        with self._failing(name, stack, "apply"):
            if self._apply(name, stack):
                self._outputs(name, stack)
                self._verify(name, stack)
                stack.result = APPLIED
            else:
                stack.result = NO_CHANGE
            self.say(f"{name}: {stack.result} in {sum(stack.seconds.get(s, 0) for s in ('apply', 'verify')):.1f} s")
        stack.finished_at = _now()
        self.save()

    def _apply(self, name: str, stack: Stack) -> bool:
        """Apply the saved plan; a stale one is planned again, once. Whether anything was applied."""
        done = self._terraform_apply(name, stack)
        if done.returncode != 0 and STALE in done.stderr:
            stack.stale_plans += 1
            self.say(f"{name}: the saved plan is stale (the state changed since it was planned); planning again")
            if not self._prepare(name, stack):
                return False
            done = self._terraform_apply(name, stack)
        if done.returncode != 0:
            raise _StepFailed("apply", f"terraform apply failed: {(done.stderr or done.stdout).strip()}")
        return True

    def _terraform_apply(self, name: str, stack: Stack):
        env, _ = self._deployer(name, stack)
        with _timed(stack, "apply"):
            done = plan._terraform(synth_output.stack_dir(self.workdir, name), env,
                                   ["apply", "-input=false", "-no-color", str(self._plan_file(name))])
        self._log(name, "apply", done.stdout + done.stderr)
        return done

    def _outputs(self, name: str, stack: Stack) -> None:
        """`<outputs dir>/<customer>.json`, as `make deploy` writes it (the stack outputs for the control plane)."""
        _, session = self._deployer(name, stack)
        with _timed(stack, "outputs"):
            text = stack_outputs_text(synth_output.stack_dir(self.workdir, name), session)
            self.request.outputs_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(self.request.outputs_dir / f"{name}.json", text)

    def _verify(self, name: str, stack: Stack) -> None:
        """verify as the deployer (the control plane's access is `verify`'s to prove with its credentials)."""
        customer = self.fleet[name]
        _, session = self._deployer(name, stack)
        with _timed(stack, "verify"):
            report = verify(customer, self.settings, session, session, sleep=lambda _: None)
        report = Report(report.command, customer, (as_deployer(report.rows[0]), *report.rows[1:]))
        self._log(name, "verify", report.table() + "\n")
        if not report.ok:
            raise _StepFailed("verify", "; ".join(f"{row.check}: {row.reason}" for row in report.rows
                                                  if row.status is Status.FAIL))

    def _deployer(self, name: str, stack: Stack) -> tuple[dict[str, str], boto3.Session]:
        """The environment terraform runs with and the session adopt and verify use: the deploy role in the
        customer's account (`deployRoleName`), assumed again once `CREDENTIALS_FOR` has passed (a session lasts an
        hour; a stack's steps may be far apart, across waves), else the caller's credentials."""
        with self._assuming:
            held = self._credentials.get(name)
        if held is None or time.monotonic() - held[0] > CREDENTIALS_FOR:
            with _timed(stack, "credentials"):
                customer = self.fleet[name]
                role = self.settings.deploy_role_arn(customer.account_id)
                external_id = external_id_list(customer.external_id)[0] if role else None
                credentials = acting_as(role, f"dataplane-rollout-{name}", self.environment, external_id=external_id)
            held = (time.monotonic(), credentials.environment, credentials.session)
            with self._assuming:
                self._credentials[name] = held
        return held[1], held[2]

    def _copy(self, name: str, stack: Stack, env: dict[str, str]) -> Path:
        """The stack's private copy, for adopt's import blocks (never in the shared synth output), with terraform's
        own directory: the shared stack is initialized first, as `plan` does, so that a later run copies it as is."""
        copy, shared = synth_output.stack_dir(self.workdir, name), synth_output.stack_dir(self.request.outdir, name)
        if copy.is_dir():
            return copy
        if not (shared / ".terraform").is_dir():
            with _timed(stack, "plan"):
                done = self.init(shared, env)
            if done.returncode != 0:
                raise _StepFailed("plan", plan._failure("init", done))
        shutil.copytree(shared, copy, symlinks=True,
                        ignore=shutil.ignore_patterns(f"*{plan.PLAN_SUFFIX}", synth_output.IMPORTS_FILE))
        return copy

    @contextlib.contextmanager
    def _failing(self, name: str, stack: Stack, phase: str) -> Iterator[None]:
        """A failure of one stack is that stack's (the step, the error, its log), never the rollout's; one outside
        a named step is the `phase`'s."""
        try:
            with _step(phase):
                yield
        except _StepFailed as e:
            stack.result, stack.failed_step, stack.error = FAILED, e.step, str(e)
        if stack.result == FAILED:
            self._log(name, stack.failed_step, stack.error + "\n")
            self.say(f"{name}: FAILED at {stack.failed_step} (log: {self.logs / f'{name}.log'})")

    def _log(self, name: str, step: str, text: str) -> None:
        if self.request.dry_run:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "a", encoding="utf-8") as log:
            log.write(f"== {step} ({_now()})\n{text}")

    def save(self) -> None:
        """The record, `.json` and `.md`, each replaced atomically."""
        with self._saving:
            directory = self.request.records_dir
            write_atomically(directory / f"{self.record.id}.json", self.record.json())
            write_atomically(directory / f"{self.record.id}.md", markdown(self.record))


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    """Any failure inside is a failure of step `name`."""
    try:
        yield
    except _StepFailed:
        raise
    except Exception as e:  # noqa: BLE001 - named after the step, reported as the stack's failure
        raise _StepFailed(name, f"{type(e).__name__}: {e}") from None


@contextlib.contextmanager
def _timed(stack: Stack, step: str) -> Iterator[None]:
    """Add the time inside to `stack`'s seconds for `step`; any failure inside is that step's."""
    clock = time.monotonic()
    try:
        with _step(step):
            yield
    finally:
        stack.seconds[step] = round(stack.seconds.get(step, 0) + time.monotonic() - clock, 1)


def _record(rollout_id: str, commit: str, digest: str, stacks: dict[str, Stack]) -> Record:
    return Record(rollout_id, commit, digest, RUNNING, _now(), None, [], [], [], stacks)


def _summary(record: Record, records_dir: Path, seconds: float, say: Callable[[str], None]) -> int:
    where = f"{records_dir / record.id}.json, .md"
    stacks = record.stacks.values()
    counts = {result: sum(s.result == result for s in stacks) for result in (APPLIED, NO_CHANGE, FAILED, PENDING)}
    say(f"rollout {record.id} {record.status} in {seconds:.1f} s: {counts[APPLIED]} applied, {counts[NO_CHANGE]} "
        f"without changes, {counts[FAILED]} failed, {counts[PENDING]} not reached; record: {where}")
    for name in record.failed():
        stack = record.stacks[name]
        say(f"{name} (wave {stack.wave}) failed at {stack.failed_step}: {stack.error.strip().splitlines()[0]} "
            f"(log: {records_dir / record.id / f'{name}.log'})")
    if record.status == HALTED:
        wave = max(record.stacks[name].wave for name in record.failed())
        say(f"halted at the end of wave {wave} of {len(record.waves)}: {sum(map(len, record.waves[wave:]))} stack(s) "
            "of later waves untouched; mend, then run again with --resume")
    return 1 if record.failed() else 0


def _counts(counts: dict[str, int]) -> str:
    """Terraform's summary of a plan: +create ~update -destroy ±replace, and imports."""
    text = (f"+{counts.get('create', 0)} ~{counts.get('update', 0)} -{counts.get('destroy', 0)} "
            f"±{counts.get('replace', 0)}")
    return text + (f", {counts['import']} to import" if counts.get("import") else "")


def plan_markdown(ordered: list[list[str]], unchanged: list[str], stacks: dict[str, Stack]) -> str:
    """`--dry-run`'s report: the waves, each stack with its plan, and the stacks without changes."""
    lines = [f"# Rollout plan: {sum(map(len, ordered))} changed stack(s) in {len(ordered)} wave(s), "
             f"{len(unchanged)} without changes", "", "| Wave | Customer | Plan |", "| --- | --- | --- |"]
    for number, wave in enumerate(ordered, 1):
        label = f"{number} (canary)" if number == 1 else str(number)
        lines += [f"| {label} | `{name}` | {_plan_cell(stacks[name])} |" for name in wave]
    if unchanged:
        lines += ["", f"Without changes ({len(unchanged)}): {', '.join(f'`{n}`' for n in unchanged)}"]
    return "\n".join(lines) + "\n"


def _plan_cell(stack: Stack) -> str:
    return f"failed at {stack.failed_step}" if stack.result == FAILED and not stack.plan else _counts(stack.plan)


def markdown(record: Record) -> str:
    """The record as a one-page Markdown summary."""
    r = record
    lines = [f"# Rollout {r.id}: {r.status}", "", "| | |", "| --- | --- |", f"| Commit | `{r.commit}` |",
             f"| Settings | `{r.settings_hash}` |", f"| Started (UTC) | {r.started_at} |",
             f"| Finished (UTC) | {r.finished_at or '-'} |", "",
             "| Wave | Customer | Result | Plan | Plan s | Apply s | Verify s | Failed step |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for number, wave in enumerate(r.waves, 1):
        for name in wave:
            s = r.stacks[name]
            seconds = [f"{s.seconds[step]:.1f}" if step in s.seconds else "-" for step in ("plan", "apply", "verify")]
            lines.append(f"| {number}{' (canary)' if number == 1 else ''} | `{name}` | {s.result} | {_plan_cell(s)} | "
                         f"{' | '.join(seconds)} | {s.failed_step or '-'} |")
    lines += ["", "| Wave | Seconds |", "| --- | --- |"]
    lines += [f"| {n} | {'-' if t is None else f'{t:.1f}'} |" for n, t in enumerate(r.wave_seconds, 1)]
    if r.unchanged:
        lines += ["", f"Without changes ({len(r.unchanged)}): {', '.join(f'`{n}`' for n in r.unchanged)}"]
    for name in r.failed():  # terraform's and AWS's words: shown as code, never read as Markdown
        error = " ".join(r.stacks[name].error.split())[:2000]
        lines += ["", f"`{name}` failed at {r.stacks[name].failed_step}: {code(error)}"]
    return "\n".join(lines) + "\n"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


