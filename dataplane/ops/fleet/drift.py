"""`python -m dataplane drift`: what changed outside Terraform in every deployed customer's stack.

    python -m dataplane drift [CUSTOMER ...] [--outdir cdktf.out] [--batch i/n] [--jobs N] [--format markdown|json]
                              [--out FILE]
    python -m dataplane drift --merge DIR [--format markdown|json] [--out FILE]

For each stack of the synth output (all, or those named) that has a state, a refresh-only plan (`terraform plan
-refresh-only`, without taking the state lock: drift never holds up a deploy) through `plan`'s runner: the same init,
credentials (the plan role) and parallelism, one progress line per stack on stderr as it finishes, counted (`[3/18]
acme: in sync in 2.9 s`; on a terminal, a progress bar below: `progress.Fleet`). A stack whose plan fails names
terraform's errors and the log that holds its whole output (`<synth output's parent>/logs/<customer>-drift-<UTC
time>.log`). Whether a stack has a state, its synthesized backend says: the local state file exists; the S3 object
exists (asked with the credentials its plan uses); a cloud workspace is planned, and terraform says. The plans go to a
private temporary directory, removed afterwards: drift writes only its report, and the logs of failed plans.

Each stack is then in sync, drifted, not deployed (no state, or one without resources) or an error (one line). Drift
is what the refresh found changed outside Terraform, read from the saved plan file itself, a zip archive: its
`tfstate-prev` (the state before the refresh) and `tfstate` (after it) are the two states `terraform show` compares
for a plan's `resource_drift`, so drift compares them the same way (every managed resource instance gone, or with
other attributes) and reads the result as `plan_review` reads `resource_drift` (sensitive values, the paths each
instance's `sensitive_attributes` lists, masked). No `terraform show -json`: one terraform command per stack instead
of two, each of which starts the aws provider and decodes its schema, most of a stack's time. A plan file without
these two states (another terraform's format) is that stack's error.

Reported are every resource deleted, and every change to an attribute the configuration sets: the keys of its
resource block in the synthesized stack file, and `tags_all`, where the provider's default tags go. Not drift, and
not reported, are the attributes the configuration leaves to the provider that the stack's own resources changed
after their parent was stored, which a refresh-only plan lists too: a role's `inline_policy` (its
`aws_iam_role_policy`), a route table's `route` (an `aws_route`), a peering's `accept_status` and DNS options.

The report, Markdown (the drift issue's body, at most `MAX_CHARS`) or JSON, is sorted and holds no timings: the same
findings give the same bytes. In Markdown, every name, address, value and error is a code span (`markdown.code`):
nothing that AWS, a state or terraform's output holds takes effect there as Markdown or HTML. Exit status: 0 every
deployed stack in sync (in a fleet-wide run, stacks not deployed are listed apart, never counted in sync), 2 any drift,
1 otherwise: any error (every other stack is still checked and reported), a customer named on the command line that is
not deployed, bad input or settings (never 2: 2 is drift).

At fleet scale the pipeline shards the check: `--batch i/n` checks batch i of n of the stacks (as `plan --batch`), its
JSON report saying which batch it is; `--merge DIR` reads every shard's JSON report in DIR (`*.json`) and renders the
one report, and exit status, of all their stacks, as one run over them all would. A batch missing, or one of another
count, is refused (exit 1): a report of part of the fleet would close the drift issue.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from dataplane.config.settings import Settings
from dataplane.ops.fleet import plan, state
from dataplane.ops.fleet.progress import Fleet, error_lines, new_log
from dataplane.ops.pipeline import review
from dataplane.ops.markdown import code
from dataplane.ops.pipeline.plan_review import (
    AttributeChange,
    DriftedResource,
    ReviewError,
    json_object,
    read_drift,
)
from dataplane.synth_output import STACK_FILE, stack_dir

Status = Literal["drifted", "in sync", "not deployed", "error"]
Format = Literal["markdown", "json"]
STATUSES: tuple[Status, ...] = ("drifted", "in sync", "not deployed", "error")
HEADINGS = {"drifted": "Drifted", "in sync": "In sync", "not deployed": "Not deployed", "error": "Errors"}
PROVIDER_ATTRIBUTES = frozenset({"tags_all"})
"""Attributes the configuration sets through the provider (its `default_tags`), not in the resource block."""
META_ARGUMENTS = frozenset({"//", "connection", "count", "depends_on", "for_each", "lifecycle", "provider",
                            "provisioner"})
"""Keys of a resource block (JSON syntax) that are not its attributes; `//` holds cdktf's metadata."""
PREVIOUS, REFRESHED = "tfstate-prev", "tfstate"
"""A saved plan file's states (in the zip archive): before the refresh, and after it."""
STATE_VERSION = 4
"""The state file format those states are in (terraform 0.12 and later)."""
ERROR_CHARS = 300
MAX_CHARS = 65_000
"""The Markdown report's size: under GitHub's 65,536 characters for an issue body, with room for its marker."""


class DriftError(Exception):
    """A stack's state could not be looked for."""


@dataclass(frozen=True)
class StackDrift:
    """One stack's finding: its status, what drifted, or its error (one line)."""

    name: str
    status: Status
    drift: tuple[DriftedResource, ...] = ()
    error: str = ""


# ---------------------------------------------------------------- finding drift


def select(outdir: Path, names: Sequence[str] = (), batch: tuple[int, int] | None = None) -> list[plan.Target]:
    """The stacks to check, sorted: those named, or all of the synth output, then one batch; a `plan.PlanInputError`
    otherwise."""
    return [replace(target, refresh_only=True) for target in plan.select(outdir, names, batch=batch)]


def has_state(target: plan.Target, settings: Settings) -> bool:
    """Whether the stack's state records resources (a cloud workspace: assumed), an S3 object read with the
    credentials its plan uses (a local file needs none); a `DriftError` when it cannot be read."""
    import boto3

    from dataplane.ops.account.aws import AWS_ERRORS, assume, aws_error

    try:
        session = None
        if state.backend(target.directory)[0] == "s3" and (
                role := settings.plan_role_arn(plan.account_of(target.directory))):
            session = assume(boto3.Session(), role, f"dataplane-drift-{target.name}"[:64])
        return state.deployed(target.directory, session)
    except AWS_ERRORS as e:
        raise DriftError(f"cannot read the state {state.where(target.directory)}: {aws_error(e)}") from None
    except state.StateError as e:
        raise DriftError(str(e)) from None


def find(targets: Sequence[plan.Target], outdir: Path, settings: Settings, jobs: int,
         progress: Callable[[str], None]) -> list[StackDrift]:
    """Every target's finding, sorted by name; `progress` hears one line per stack as it is known."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        states = list(pool.map(lambda target: _state(target, settings), targets))
    found: list[StackDrift] = []
    for target, known in zip(targets, states):
        if known is False:
            found.append(StackDrift(target.name, "not deployed"))
            progress(f"{target.name}: not deployed (no state)")
        elif known is not True:
            found.append(StackDrift(target.name, "error", error=one_line(known)))
            progress(f"{target.name}: error\n    {known}")
    deployed = {target.name: target for target, known in zip(targets, states) if known is True}
    fleet = Fleet(progress, len(deployed))
    with tempfile.TemporaryDirectory(prefix="dataplane-drift-") as out:
        def planned(result: plan.StackPlan) -> None:
            plan_file = Path(out) / f"{result.name}{plan.PLAN_SUFFIX}"
            found.append(_finding(result, plan_file, deployed[result.name].directory / STACK_FILE))
            fleet.done(_line(result, found[-1], outdir))

        try:
            plan.plan_all(list(deployed.values()), outdir, Path(out), settings, jobs, planned)
        finally:
            fleet.close()
    return sorted(found, key=lambda f: f.name)


def _line(result: plan.StackPlan, finding: StackDrift, outdir: Path) -> str:
    """A planned stack's progress line; a failure's with terraform's errors and the log that keeps its output."""
    if finding.status != "error":
        return result.line(finding.status)
    text = result.error or finding.error
    try:
        where = str(new_log(outdir, result.name, "drift", text + "\n"))
    except OSError as e:
        where = f"none ({e.strerror or e})"
    return "\n".join([f"{result.name}: error in {result.seconds:.1f} s",
                      *(f"    {line}" if line else "" for line in [*error_lines(text), f"log: {where}"])])


def _state(target: plan.Target, settings: Settings) -> bool | str:
    """`has_state`, or why it cannot be told."""
    try:
        return has_state(target, settings)
    except DriftError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - one stack's failure (files, credentials) never stops the others
        return f"{type(e).__name__}: {e}"


def _finding(result: plan.StackPlan, plan_file: Path, stack_file: Path) -> StackDrift:
    """A planned stack's finding: its error, or what its refresh-only plan found."""
    if result.result == "error":
        return StackDrift(result.name, "error", error=one_line(result.error))
    if result.result == "no changes":  # refresh found nothing
        return StackDrift(result.name, "in sync")
    return read_finding(result.name, plan_file, stack_file)


def read_finding(name: str, plan_file: Path, stack_file: Path) -> StackDrift:
    """Stack `name`'s finding from its refresh-only plan, saved in `plan_file`, and its synthesized `stack_file`."""
    try:
        previous, refreshed = map(managed_instances, read_states(plan_file))
        drift = tuple(read_drift(plan_file, {"resource_drift": resource_drift(previous, refreshed)}))
        stack = json_object(stack_file, stack_file.read_bytes())
    except (OSError, ReviewError) as e:
        return StackDrift(name, "error", error=one_line(str(e)))
    if not previous:
        return StackDrift(name, "not deployed")
    drift = relevant_drift(drift, stack)
    return StackDrift(name, "drifted" if drift else "in sync", drift)


def read_states(plan_file: Path) -> tuple[dict, dict]:
    """The states a saved plan holds: before the refresh (`tfstate-prev`) and after it (`tfstate`); a `ReviewError`
    for a plan file of another format."""
    try:
        with zipfile.ZipFile(plan_file) as archive:
            if missing := [entry for entry in (PREVIOUS, REFRESHED) if entry not in archive.namelist()]:
                raise ReviewError(f"plan file without {missing[0]}: unsupported terraform version")
            previous, refreshed = (json_object(plan_file / entry, archive.read(entry))
                                   for entry in (PREVIOUS, REFRESHED))
    except zipfile.BadZipFile:
        raise ReviewError("plan file not a zip archive: unsupported terraform version") from None
    if unknown := [entry for entry, document in ((PREVIOUS, previous), (REFRESHED, refreshed))
                   if document.get("version") != STATE_VERSION]:
        raise ReviewError(f"plan file's {unknown[0]} not a state of format {STATE_VERSION}: unsupported terraform "
                          "version")
    return previous, refreshed


Instances = dict[str, tuple[dict, dict]]
"""Address -> a managed resource of a state file and one of its instances (`attributes`, `sensitive_attributes`)."""


def managed_instances(document: dict) -> Instances:
    """Every managed resource instance a state file holds (its current object: deposed ones are not compared)."""
    found: Instances = {}
    for resource in document.get("resources") or []:
        if resource.get("mode") != "managed":
            continue
        address = ".".join(filter(None, (resource.get("module"), resource["type"], resource["name"])))
        for instance in resource.get("instances") or []:
            if "deposed" not in instance:
                key = instance.get("index_key")
                found[address if key is None else f"{address}[{json.dumps(key)}]"] = resource, instance
    return found


def resource_drift(previous: Instances, refreshed: Instances) -> list[dict]:
    """A plan's `resource_drift` (as `terraform show -json` writes it) from the instances before and after the
    refresh: every one deleted, and every one whose attributes changed."""
    entries = []
    for address, (resource, instance) in sorted(previous.items()):
        after = refreshed[address][1] if address in refreshed else None
        if after is None or after["attributes"] != instance["attributes"]:
            entries.append({"address": address, "mode": "managed", "type": resource["type"], "name": resource["name"],
                            "change": {"actions": ["delete"] if after is None else ["update"],
                                       "before": instance["attributes"], "before_sensitive": sensitive_mask(instance),
                                       "after": None if after is None else after["attributes"],
                                       "after_sensitive": after is not None and sensitive_mask(after)}})
    return entries


def sensitive_mask(instance: dict) -> dict | bool:
    """An instance's `sensitive_attributes` (cty paths of `get_attr` and `index` steps) as the mask `terraform show
    -json` writes (`before_sensitive`): `true` at each path. A path that leaves the values (into a set's element, or
    a dynamic attribute, stored with its type) marks the value where it leaves them, whole."""
    mask: dict | bool = {}
    for path in instance.get("sensitive_attributes") or []:
        value, steps = instance["attributes"], []
        for step in path:
            key = step.get("value") if step.get("type") == "get_attr" else (step.get("value") or {}).get("value")
            if not (isinstance(value, dict) and isinstance(key, str) and key in value
                    or isinstance(value, list) and type(key) is int and 0 <= key < len(value)):
                break
            value = value[key]
            steps.append(key)
        mask = _marked(mask, steps)
    return mask


def _marked(mask: Any, steps: list[str | int]) -> Any:
    """`mask` with `true` at the path `steps`."""
    if not steps or mask is True:
        return True
    step, node = steps[0], mask
    if isinstance(step, int):
        node = node if isinstance(node, list) else []
        node.extend([False] * (step + 1 - len(node)))
    else:
        node = node if isinstance(node, dict) else {}
        node.setdefault(step, False)
    node[step] = _marked(node[step], steps[1:])
    return node


def relevant_drift(drift: Sequence[DriftedResource], stack: dict) -> tuple[DriftedResource, ...]:
    """`drift` without the echoes: deletions, and changes to attributes the configuration sets (see the module).

    A resource the synthesized `stack` does not list (in a module, say) keeps all its drift.
    """
    configured = configured_attributes(stack)
    kept = []
    for resource in drift:
        names = configured.get(resource.address.split("[", 1)[0])
        if resource.deleted or names is None:
            kept.append(resource)
        elif attributes := tuple(a for a in resource.attributes if re.match(r"[^.\[]*", a.path)[0] in names):
            kept.append(replace(resource, attributes=attributes))
    return tuple(kept)


def configured_attributes(stack: dict) -> dict[str, frozenset[str]]:
    """Address -> the attributes its resource block sets, and `PROVIDER_ATTRIBUTES`: the managed resources of a
    synthesized stack (`cdk.tf.json`), its meta-arguments left out."""
    return {f"{rtype}.{name}": frozenset(block) - META_ARGUMENTS | PROVIDER_ATTRIBUTES
            for rtype, blocks in (stack.get("resource") or {}).items() for name, block in blocks.items()}


def one_line(error: str) -> str:
    """An error on one line: its first, followed by terraform's `Error:` line when the first ends in a colon."""
    lines = [text for line in error.splitlines() if (text := line.strip(" \t│╷╵"))]
    if not lines:
        return "failed"
    detail = next((line for line in lines[1:] if line.startswith("Error")), lines[1] if len(lines) > 1 else "")
    text = f"{lines[0]} {detail}" if lines[0].endswith(":") and detail else lines[0]
    return textwrap.shorten(text, ERROR_CHARS, placeholder=" …")


def exit_status(found: Sequence[StackDrift], named: bool = False) -> int:
    """1 on an error, or a customer asked for by name not deployed (nothing to compare is no green); 2 on drift."""
    if any(f.status == "error" or named and f.status == "not deployed" for f in found):
        return 1
    return 2 if any(f.status == "drifted" for f in found) else 0


# ---------------------------------------------------------------- the report


def counts(found: Sequence[StackDrift]) -> dict[Status, int]:
    return {status: sum(f.status == status for f in found) for status in STATUSES}


def summary(found: Sequence[StackDrift]) -> str:
    """The report's first line: `Drift: 2 drifted, 17 in sync, 1 not deployed, 0 errors`."""
    n = counts(found)
    return (f"Drift: {n['drifted']} drifted, {n['in sync']} in sync, {n['not deployed']} not deployed, "
            f"{n['error']} error{'' if n['error'] == 1 else 's'}")


def to_json(found: Sequence[StackDrift], batch: tuple[int, int] | None = None) -> str:
    stacks = []
    for f in found:
        item: dict = {"name": f.name, "status": f.status}
        if f.status == "drifted":
            item["drift"] = [asdict(d) for d in f.drift]
        if f.status == "error":
            item["error"] = f.error
        stacks.append(item)
    document = {"summary": counts(found), "stacks": stacks} | ({"batch": "%d/%d" % batch} if batch else {})
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def from_json(path: Path) -> tuple[str | None, list[StackDrift]]:
    """A JSON report's batch (`i/n`; None: not a shard's) and findings; a `ReviewError` naming a non-report file."""
    document = json_object(path, _read(path))
    try:
        return document.get("batch"), [
            StackDrift(item["name"], item["status"],
                       tuple(DriftedResource(d["address"], d["deleted"], tuple(AttributeChange(**a)
                                                                             for a in d["attributes"]))
                             for d in item.get("drift", ())), item.get("error", ""))
            for item in document["stacks"]]
    except (KeyError, TypeError):
        raise ReviewError(f"{path}: not a drift report (python -m dataplane drift --format json)") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ReviewError(f"{path}: cannot be read ({e.strerror})") from None


def merged(directory: Path) -> list[StackDrift]:
    """The findings of every shard report (`*.json`) in `directory`, sorted by name; a `ReviewError` unless they are
    the batches 0 to n-1 of one n, each once."""
    reports = [from_json(path) for path in sorted(directory.glob("*.json"))]
    batches = [str(batch) for batch, _ in reports]
    if not reports or set(batches) != {f"{i}/{len(reports)}" for i in range(len(reports))}:
        raise ReviewError(f"{directory}: not the shard reports of every batch i/n, each once (found: "
                          f"{', '.join(sorted(batches)) or 'none'})")
    return sorted((finding for _, found in reports for finding in found), key=lambda f: f.name)


def to_markdown(found: Sequence[StackDrift], max_chars: int = MAX_CHARS) -> str:
    """The summary, every stack named under its status, then the details (drift, errors) of as many as fit."""
    head = [summary(found), "", "Refresh-only plans (`python -m dataplane drift`): what changed outside Terraform in "
            "each deployed customer's stack, found by refreshing its state against its account.", ""]
    for status in STATUSES:
        if names := [f.name for f in found if f.status == status]:
            head.append(f"- {HEADINGS[status]} ({len(names)}): " + ", ".join(map(code, names)))
    text = "\n".join(head) + "\n"
    details = [_details(f) for f in found if f.status in ("drifted", "error")]
    for index, block in enumerate(details):
        note = (f"\n(details of {len(details) - index} more stack(s) left out, for GitHub's size limit: "
                "`python -m dataplane drift` prints them all)\n")
        if len(text) + len(block) + (len(note) if index + 1 < len(details) else 0) > max_chars:
            return text + note
        text += block
    return text


def _details(finding: StackDrift) -> str:
    lines = ["", f"### {code(finding.name)}: {finding.status}", ""]
    if finding.status == "error":
        lines.append(code(finding.error))
    for resource in finding.drift:
        lines.append(f"- {code(resource.address)}: " + ("deleted outside Terraform" if resource.deleted else "changed"))
        lines += [f"  - {review._values(a)}" for a in resource.attributes]  # the review's rendering of a change
    return "\n".join(lines) + "\n"


def render(found: Sequence[StackDrift], fmt: Format = "markdown", batch: tuple[int, int] | None = None) -> str:
    return to_json(found, batch) if fmt == "json" else to_markdown(found)


def run(outdir: Path, names: Sequence[str], settings: Settings, jobs: int, fmt: Format, out: Path | None,
        progress: Callable[[str], None], batch: tuple[int, int] | None = None) -> int:
    """Check the stacks (of `batch`: all) and write the report to `out` (else stdout); the exit status. Bad input:
    one line, exit 1."""
    try:
        targets = select(outdir, names, batch)
    except plan.PlanInputError as e:
        print(f"drift: {e}", file=sys.stderr)
        return 1
    if out is not None and not out.parent.is_dir():
        print(f"drift: {out}: its directory does not exist", file=sys.stderr)
        return 1
    started = time.monotonic()
    found = find(targets, outdir, settings, jobs, progress)
    progress(f"{summary(found)}: {len(found)} stack(s) in {time.monotonic() - started:.1f} s")
    for name in [f.name for f in found if names and f.status == "not deployed"]:
        print(f"drift: {name} is not deployed (no state at {state.where(stack_dir(outdir, name))}): "
              "nothing to compare", file=sys.stderr)
    return _write(found, render(found, fmt, batch), out, progress, bool(names))


def merge(directory: Path, fmt: Format, out: Path | None, progress: Callable[[str], None]) -> int:
    """Write the one report of the shard reports in `directory` to `out` (else stdout); the exit status of their
    stacks. Not every shard's report: one line, exit 1."""
    try:
        found = merged(directory)
    except ReviewError as e:
        print(f"drift: {e}", file=sys.stderr)
        return 1
    progress(f"{summary(found)}: {len(found)} stack(s) from the shard reports in {directory}")
    return _write(found, render(found, fmt), out, progress)


def _write(found: Sequence[StackDrift], report: str, out: Path | None, progress: Callable[[str], None],
           named: bool = False) -> int:
    """`report` written to `out` (else stdout); the exit status of `found`."""
    if out is None:
        sys.stdout.write(report)
        return exit_status(found, named)
    try:
        out.write_text(report, encoding="utf-8")
    except OSError as e:
        print(f"drift: {out}: cannot be written ({e.strerror})", file=sys.stderr)
        return 1
    progress(f"report written to {out}")
    return exit_status(found, named)
