"""`python -m dataplane gate [cdktf.out]`: checkov and the IAM linter parliament (both pinned, offline) over every
synthesized stack.

checkov runs from its own venv (`.venv-checkov`, from `requirements-checkov.txt`) with `.checkov.yaml`:
the `terraform_json` framework, `--skip-download`, our own checkov checks in `checkov_checks/` (which
import `dataplane.policy`: the project root is on checkov's `PYTHONPATH`), and the acknowledged
skips, each with its reason. Any other failed check fails the gate, and so does finding nothing to scan.

parliament (in the project's venv) lints every policy document the stacks hold: each JSON string with a `Statement`
in any resource (trust, identity, key, bucket and topic policies), with its community auditors (privilege
escalation, permissions management, credentials exposure). Its findings are acknowledged one by one, each with its
reason, in `.parliament.yaml`; any other finding fails the gate.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from dataplane.ops.report import listing
from dataplane.policy import action_matches
from dataplane.project import PROJECT_ROOT
from dataplane.synth_output import STACK_FILE, STACKS

with warnings.catch_warnings():  # parliament 1.6.4 imports the deprecated pkg_resources and leaves its data open
    warnings.simplefilter("ignore")
    import parliament
parliament.override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")

CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"
CONFIG = PROJECT_ROOT / ".checkov.yaml"
ACKNOWLEDGED = PROJECT_ROOT / ".parliament.yaml"
ACKNOWLEDGEMENT_KEYS = {"issue", "policy", "detail", "actions", "reason"}
INDEX = re.compile(r"\[\d+\]")
OFFLINE = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE"}
"""With `--skip-download`: no guideline mapping, no version check; checkov then makes no connection."""


@dataclass(frozen=True, order=True)
class Result:
    """One check on one resource of one stack."""

    stack: str
    resource: str
    check_id: str
    passed: bool
    name: str

    def __str__(self) -> str:
        return f"{self.stack}: {self.resource}: {self.check_id} {self.name}"


@dataclass(frozen=True, order=True)
class Finding:
    """One parliament finding in one policy document of one stack."""

    stack: str
    resource: str
    attribute: str
    issue: str
    severity: str
    title: str
    detail: str
    actions: tuple[str, ...]

    @property
    def policy(self) -> str:
        """Which kind of policy it is in: `<resource type>.<attribute>` (`aws_kms_key.policy`)."""
        return f"{self.resource.split('.')[0]}.{INDEX.sub('', self.attribute)}"

    def __str__(self) -> str:
        what = "; ".join(filter(None, (self.detail or self.title, listing(self.actions))))
        return f"{self.stack}: {self.resource}.{self.attribute}: parliament {self.issue} ({self.severity}) {what}"


@dataclass(frozen=True)
class Acknowledgement:
    """A parliament finding accepted with its reason: its issue in one kind of policy and, where given, only with that
    detail (a regular expression the whole detail matches) or only for those actions (patterns, as IAM reads them)."""

    issue: str
    policy: str
    reason: str
    detail: str | None = None
    actions: tuple[str, ...] = ()

    def covers(self, finding: Finding) -> bool:
        return (finding.issue == self.issue and finding.policy == self.policy
                and (self.detail is None or re.fullmatch(self.detail, finding.detail) is not None)
                and (not self.actions or bool(finding.actions) and all(
                    any(action_matches(p, a) for p in self.actions) for a in finding.actions)))


class GateError(Exception):
    """checkov or parliament could not scan (not installed, crashed, parse errors, nothing to scan), or the
    acknowledgements cannot be read."""


def scan(outdir: Path, only: tuple[str, ...] = ()) -> list[Result]:
    """Every check result for the stacks under `outdir/stacks`, sorted; `only` limits the checkov checks run."""
    if not (outdir / STACKS).is_dir():
        raise GateError(f"{outdir / STACKS}: no synthesized stacks, nothing to scan")
    if not CHECKOV.exists():
        raise GateError(f"{CHECKOV} is missing: run `make setup`")
    command = [str(CHECKOV), "--config-file", str(CONFIG), "-d", str(outdir / STACKS), "-o", "json"]
    if only:
        command += ["--check", ",".join(only)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **OFFLINE, "PYTHONPATH": str(PROJECT_ROOT)})
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise GateError(f"checkov exited {done.returncode} without a report:\n{done.stderr.strip()}") from None
    summary = report.get("summary", report)
    if summary.get("parsing_errors"):
        raise GateError(f"checkov could not parse: {report['results'].get('parsing_errors')}")
    results = sorted(
        Result(stack=Path(c["file_path"]).parts[1], resource=c["resource"], check_id=c["check_id"],
               passed=c["check_result"]["result"] == "PASSED", name=c["check_name"])
        for key in ("passed_checks", "failed_checks") for c in report.get("results", {}).get(key, []))
    if not results:
        raise GateError(f"checkov found nothing to scan in {outdir / STACKS}")
    return results


def policy_documents(stack: dict) -> Iterator[tuple[str, str, str]]:
    """`(resource, attribute, document)` for every policy document (a JSON string with a `Statement`) in a
    synthesized stack's resources, at any depth (`inline_policy[0].policy`)."""
    def documents(value, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield from documents(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from documents(item, f"{path}[{index}]")
        elif isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                document = json.loads(value)
            except ValueError:
                return
            if isinstance(document, dict) and "Statement" in document:
                yield path, value
    for kind, resources in (stack.get("resource") or {}).items():
        for name, conf in (resources or {}).items():
            for attribute, document in documents(conf, ""):
                yield f"{kind}.{name}", attribute, document


def lint(outdir: Path) -> tuple[int, list[Finding]]:
    """How many policy documents the stacks under `outdir/stacks` hold, and parliament's findings in them, sorted."""
    count, findings = 0, []
    for path in sorted((outdir / STACKS).glob(f"*/{STACK_FILE}")):
        try:
            stack = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise GateError(f"{path}: cannot read the stack: {e}") from None
        for resource, attribute, document in policy_documents(stack):
            count += 1
            for found in parliament.analyze_policy_string(document, ignore_private_auditors=True,
                                                          include_community_auditors=True).findings:
                found = parliament.enhance_finding(found)
                location = found.location
                detail = ": ".join(str(part) for part in (found.detail if isinstance(found.detail, str) else "",
                                                          location.get("type"), location.get("string")) if part)
                actions = location.get("actions") or (found.detail if isinstance(found.detail, list) else ())
                findings.append(Finding(path.parent.name, resource, attribute, found.issue, found.severity,
                                        found.title.strip(), detail, tuple(sorted(map(str, actions)))))
    if not count:
        raise GateError(f"parliament found no policy document in {outdir / STACKS}")
    return count, sorted(set(findings))


def acknowledgements(path: Path | None = None) -> list[Acknowledgement]:
    """The acknowledged parliament findings of `path` (`.parliament.yaml`), each checked to have its reason."""
    path = path or ACKNOWLEDGED
    try:
        entries = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("acknowledged")
    except (OSError, ValueError, AttributeError, yaml.YAMLError) as e:
        raise GateError(f"{path.name}: cannot read the acknowledged findings: {e}") from None
    found = []
    for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
        where = f"{path.name}: acknowledged[{index}]"
        if not isinstance(entry, dict) or not ACKNOWLEDGEMENT_KEYS >= set(entry) >= {"issue", "policy", "reason"}:
            raise GateError(f"{where}: needs issue, policy and reason (and may have detail or actions), nothing else")
        actions = entry.get("actions", [])
        if not all(isinstance(entry.get(k, ""), str) for k in ("issue", "policy", "detail", "reason")) or not (
                isinstance(actions, list) and all(isinstance(a, str) for a in actions)):
            raise GateError(f"{where}: issue, policy, detail and reason are strings, actions a list of strings")
        if len(entry["reason"].strip()) < 20:
            raise GateError(f"{where}: the reason must say why the finding is accepted")
        found.append(Acknowledgement(entry["issue"], entry["policy"], entry["reason"], entry.get("detail"),
                                     tuple(actions)))
    return found


def run(outdir: Path) -> int:
    """Scan and lint `outdir`, print every failed check, every unacknowledged finding and a summary; 0 all passed,
    1 a check failed or a finding is not acknowledged, 2 no scan."""
    try:
        accepted = acknowledgements()
        documents, findings = lint(outdir)
        results = scan(outdir)
    except GateError as e:
        print(f"security gate: {e}", file=sys.stderr)
        return 2
    failed = [r for r in results if not r.passed]
    unacknowledged = [f for f in findings if not any(a.covers(f) for a in accepted)]
    for problem in [*failed, *unacknowledged]:
        print(f"FAILED {problem}")
    stacks = len({r.stack for r in results})
    print(f"security gate: {len(results) - len(failed)} passed, {len(failed)} failed over {stacks} stack(s); "
          f"parliament: {len(findings) - len(unacknowledged)} findings acknowledged, {len(unacknowledged)} not, in "
          f"{documents} policy documents")
    return 1 if failed or unacknowledged else 0
