"""`python -m dataplane plan-stacks`: what Terraform will do to each stack, planned in parallel, as JSON a review reads.

    python -m dataplane plan-stacks [CUSTOMER ...] [--affected-from BASE_OUT] [--batch i/n] [--jobs N] [--out plans]

For each selected stack of the synth output (`--outdir`, default `cdktf.out`): `terraform init`
(the aws provider from the project's CLI config, through its one shared plugin cache, so the
provider is installed once for all stacks), `terraform plan -detailed-exitcode -out`, and
`terraform show -json`, written to `<out>/<customer>.tfplan` and `<out>/<customer>.plan.json`.
A refresh-only plan (for `python -m dataplane drift`) is not shown: drift reads the saved plan
file itself, sparing a second load of the aws provider's schema. With `--affected-from`, the
selection is the stacks added or changed since that base synth output, and every customer
removed since then is planned as a destroy of the base's stack (in a private copy beside the
synth output, so a local state path resolves as it would have in the base).

One progress line per stack as it finishes (name, result, seconds). Exit status as terraform's
`-detailed-exitcode`: 0 no changes anywhere, 2 changes (0 with `--ok-on-changes`), 1 any error;
the other stacks still finish and are reported. Credentials: the standard chain, or the read-only plan role
(`planRoleName`, else `deployRoleName`) assumed in each stack's account. A plan never takes the state lock: those
credentials may only read the state, and a saved plan is only reviewed here (an apply of one refuses a changed state).
Without `--batch`, `<out>` holds only this run's plans afterwards (a review reads every plan there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

from dataplane import synth_output
from dataplane.config.settings import Settings
from dataplane.ops.pipeline import review
from dataplane.ops.pipeline.matrix import batch_of
from dataplane.ops.pipeline.plan_review import COUNTED
from dataplane.policy import external_id_list
from dataplane.runtime.toolchain import (
    AWS_PROVIDER,
    AWS_PROVIDER_VERSION,
    INIT,
    PLUGIN_CACHE,
    needs_init,
    tool_environment,
)

Result = Literal["no changes", "changes", "error"]
PLAN_SUFFIX, JSON_SUFFIX = ".tfplan", ".plan.json"
TIMEOUT = 1800


class PlanInputError(Exception):
    """A selection that cannot be planned: no synth output, or a name that is not one of its stacks."""


@dataclass(frozen=True)
class Target:
    """One stack to plan: where its synthesized files are, and whether it is planned as a destroy, or refresh-only
    (what changed outside Terraform, for `python -m dataplane drift`: read without taking the state lock, so it never
    holds up a deploy)."""

    name: str
    directory: Path
    destroy: bool = False
    refresh_only: bool = False


@dataclass(frozen=True)
class StackPlan:
    name: str
    result: Result
    seconds: float
    destroy: bool = False
    error: str = ""

    def line(self, result: str | None = None) -> str:
        """The progress line: name, result (or what the caller calls it), seconds; a failure's terraform output
        indented below."""
        line = f"{self.name}: {result or self.result}{' (destroy)' if self.destroy else ''} in {self.seconds:.1f} s"
        return line + "".join(f"\n    {text}" for text in self.error.splitlines())


def select(outdir: Path, names: Sequence[str] = (), affected_from: Path | None = None,
           batch: tuple[int, int] | None = None) -> list[Target]:
    """The stacks to plan, sorted by name: those named, those affected since a base, or all; then one batch."""
    try:
        stacks = review.load_stacks(outdir)
        if affected_from is not None:
            report = review.review(affected_from, outdir)
    except review.ReviewError as e:
        raise PlanInputError(str(e)) from None
    if unknown := [n for n in names if n not in stacks]:
        raise PlanInputError(f"no stack {unknown[0]!r} in {outdir}; synthesized: {', '.join(sorted(stacks)) or 'none'}")
    if affected_from is not None:
        targets = [Target(n, synth_output.stack_dir(outdir, n)) for n in report.affected]
        targets += [Target(n, synth_output.stack_dir(affected_from, n), destroy=True) for n in report.named("removed")]
    else:
        targets = [Target(n, synth_output.stack_dir(outdir, n)) for n in sorted(names or stacks)]
    targets.sort(key=lambda t: t.name)
    if batch is None:
        return targets
    chosen = set(batch_of([t.name for t in targets], *batch))
    return [t for t in targets if t.name in chosen]


def account_of(directory: Path) -> str:
    """The account a synthesized stack deploys into: its default aws provider's `allowed_account_ids`."""
    document = json.loads((directory / synth_output.STACK_FILE).read_text(encoding="utf-8"))
    provider = next(p for p in document["provider"]["aws"] if "alias" not in p)
    return provider["allowed_account_ids"][0]


def external_id_of(directory: Path) -> str | None:
    """The first ExternalId the synthesized stack's role requires: the customer's, which its deploy role (the
    bootstrap's) and plan role require too. None when its role requires none."""
    document = json.loads((directory / synth_output.STACK_FILE).read_text(encoding="utf-8"))
    for role in document.get("resource", {}).get("aws_iam_role", {}).values():
        try:
            statements = json.loads(role.get("assume_role_policy", ""))["Statement"]
        except (ValueError, TypeError, KeyError):
            continue  # a reference to another resource: not the customer's role
        for statement in statements:
            if ids := statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId"):
                return external_id_list(ids)[0]
    return None


class _Credentials:
    """Per-stack environment: the standard chain, or a role assumed in the stack's account: the plan role
    (`read_only`: plans and drift) or the deploy role (applies)."""

    def __init__(self, settings: Settings, base: dict[str, str], read_only: bool = False):
        self._role_arn, self._base = settings.plan_role_arn if read_only else settings.deploy_role_arn, base

    def environment(self, target: Target) -> dict[str, str]:
        from dataplane.ops.account.aws import acting_as

        role = self._role_arn(account_of(target.directory))
        external_id = external_id_of(target.directory) if role else None
        return acting_as(role, f"dataplane-plan-{target.name}", self._base, external_id=external_id).environment


class _Init:
    """`terraform init`, alone until the shared plugin cache holds the provider (its first fill is not
    safe to run concurrently), then in parallel: later inits only link to the cache."""

    def __init__(self):
        self._lock = threading.Lock()
        self._warm = (PLUGIN_CACHE / AWS_PROVIDER / AWS_PROVIDER_VERSION).is_dir()

    def __call__(self, directory: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        if not self._warm:
            with self._lock:
                if not self._warm:
                    done = _terraform(directory, env, INIT)
                    self._warm = done.returncode == 0
                    return done
        return _terraform(directory, env, INIT)


def _terraform(directory: Path, env: dict[str, str], command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["terraform", *command], cwd=directory, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def _failure(step: str, done: subprocess.CompletedProcess) -> str:
    return f"terraform {step} failed: {(done.stderr or done.stdout).strip()}"


def plan_stack(target: Target, out: Path, env: dict[str, str], init: _Init, lock: bool = True) -> tuple[Result, str]:
    """Init, plan and show one stack (a refresh-only plan is not shown); (result, error message). A failed stack
    leaves no plan files. Without `lock`, terraform does not take the state lock."""
    plan_file, json_file = out / f"{target.name}{PLAN_SUFFIX}", out / f"{target.name}{JSON_SUFFIX}"
    for stale in (plan_file, json_file):
        stale.unlink(missing_ok=True)
    result, error = _plan_stack(target, plan_file, json_file, env, init, lock)
    if result == "error":
        plan_file.unlink(missing_ok=True)  # terraform saves an errored plan too
    return result, error


def _plan_stack(target: Target, plan_file: Path, json_file: Path, env: dict[str, str],
                init: _Init, lock: bool) -> tuple[Result, str]:
    """Plan in an initialized stack directory: one initialized before is planned at once, and initialized
    again only when terraform asks for it (a changed backend or lock file). A refresh-only plan is not shown: its
    plan file holds what drift reads, and `show` would load the provider's schema again."""
    command = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={plan_file}"]
    command += ["-destroy"] if target.destroy else ["-refresh-only"] if target.refresh_only else []
    command += [] if lock and not target.refresh_only else ["-lock=false"]
    planned = _initialized(target.directory, env, command, init)
    if planned.returncode not in (0, 2):
        return "error", _failure("plan" if planned.args[1] == "plan" else "init", planned)
    if target.refresh_only:
        return ("changes" if planned.returncode == 2 else "no changes"), ""
    shown = _terraform(target.directory, env, ["show", "-json", str(plan_file)])
    if shown.returncode != 0:
        return "error", _failure("show", shown)
    partial = json_file.with_suffix(".partial")
    partial.write_text(shown.stdout, encoding="utf-8")
    os.replace(partial, json_file)
    return ("changes" if planned.returncode == 2 else "no changes"), ""


def plan_counted(directory: Path, plan_file: Path, env: dict[str, str],
                 init: _Init) -> tuple[Result, dict[str, int], str]:
    """Plan the stack in `directory` into `plan_file`, taking the state lock; (result, its resources per action as
    `Plan.counts()` gives them, error message). The counts come from terraform's machine-readable stream (`plan
    -json`), which spares `terraform show` and its second load of the aws provider's schema."""
    plan_file.unlink(missing_ok=True)
    planned = _initialized(directory, env, ["plan", "-input=false", "-json", "-detailed-exitcode",
                                            f"-out={plan_file}"], init)
    if planned.returncode not in (0, 2):
        plan_file.unlink(missing_ok=True)  # terraform saves an errored plan too
        step = "plan" if planned.args[1] == "plan" else "init"
        return "error", {}, f"terraform {step} failed: {human(planned.stdout, planned.stderr)}"
    return ("changes" if planned.returncode == 2 else "no changes"), stream_counts(planned.stdout), ""


UI_ACTIONS = {"create": "create", "update": "update", "replace": "replace", "delete": "destroy", "remove": "forget"}
"""terraform's machine-readable `planned_change` actions, as `Plan.counts()` names them (`noop`, `read`, `move` and an
import alone are not counted; imports are, from the `change_summary`)."""


def stream_counts(stream: str) -> dict[str, int]:
    """Resources per action in a `terraform plan -json` stream, as `Plan.counts()` reads them from the saved plan."""
    counts = dict.fromkeys(COUNTED, 0)
    for message in _messages(stream):
        if message.get("type") == "planned_change" and (action := UI_ACTIONS.get(message["change"]["action"])):
            counts[action] += 1
        elif message.get("type") == "change_summary":
            counts["import"] = message["changes"].get("import", 0)
    return counts


def human(stdout: str, stderr: str = "") -> str:
    """The text of a `-json` run's messages (a diagnostic's summary and detail), as terraform would print them."""
    lines = []
    for message in _messages(stdout):
        lines.append(message.get("@message", ""))
        if detail := (message.get("diagnostic") or {}).get("detail"):
            lines.append(detail)
    return "\n".join(lines + [stderr.strip()]).strip()


def _messages(stream: str) -> list[dict]:
    """The JSON messages of a `-json` run's output, one a line; a line that is not one (a crash's text) is kept as
    its `@message`."""
    messages = []
    for line in filter(str.strip, stream.splitlines()):
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        messages.append(message if isinstance(message, dict) else {"@message": line})
    return messages


def _initialized(directory: Path, env: dict[str, str], command: list[str],
                 init: _Init) -> subprocess.CompletedProcess:
    """`terraform <command>` in `directory`, initialized first when it is not, or again when terraform asks for it;
    the run, or the failed init's."""
    done = _terraform(directory, env, command) if (directory / ".terraform").is_dir() else None
    if done is None or done.returncode == 1 and needs_init(done.stderr + done.stdout):
        if (done := init(directory, env)).returncode != 0:
            return done
        done = _terraform(directory, env, command)
    return done


def _run(target: Target, outdir: Path, out: Path, credentials: _Credentials, init: _Init) -> StackPlan:
    started = time.monotonic()
    try:
        env = credentials.environment(target)
        if target.destroy:
            with synth_output.private_dir(outdir, f"plan-{target.name}") as workdir:
                copy = synth_output.stack_dir(workdir, target.name)
                shutil.copytree(target.directory, copy, ignore=shutil.ignore_patterns(".terraform"))
                result, error = plan_stack(Target(target.name, copy, True), out, env, init, lock=False)
        else:
            result, error = plan_stack(target, out, env, init, lock=False)
    except Exception as e:  # noqa: BLE001 - one stack's failure (credentials, files) never stops the others
        result, error = "error", f"{type(e).__name__}: {e}"
    return StackPlan(target.name, result, time.monotonic() - started, target.destroy, error)


def plan_all(targets: Sequence[Target], outdir: Path, out: Path, settings: Settings, jobs: int,
             progress: Callable[[StackPlan], None], env: dict[str, str] | None = None) -> list[StackPlan]:
    """Plan every target, `jobs` at a time; `progress` hears of each as it finishes. Sorted results."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    credentials, init = _Credentials(settings, env or tool_environment(), read_only=True), _Init()
    results = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_run, t, outdir, out, credentials, init) for t in targets]
        for future in as_completed(futures):
            results.append(future.result())
            progress(results[-1])
    return sorted(results, key=lambda r: r.name)


def make_out(out: Path) -> None:
    """Make `out`, the directory plans are written to, unless it is one; a `PlanInputError` when it cannot be (a file
    in the way, no permission)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PlanInputError(f"--out {out}: cannot be the directory of plans ({e.strerror or e})") from None


def keep_only(out: Path, names: Sequence[str]) -> None:
    """Remove plans in `out` of stacks not in `names` (an earlier run's), so a review reads only this run's."""
    for path in out.glob("*"):
        stack = path.name.removesuffix(JSON_SUFFIX).removesuffix(PLAN_SUFFIX)
        if stack != path.name and stack not in names:
            path.unlink()


def exit_status(results: Sequence[StackPlan], ok_on_changes: bool = False) -> int:
    if any(r.result == "error" for r in results):
        return 1
    return 2 if any(r.result == "changes" for r in results) and not ok_on_changes else 0
