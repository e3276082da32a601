"""`python -m dataplane gate [cdktf.out]`: checkov (pinned, offline) over every synthesized stack.

checkov runs from its own venv (`.venv-checkov`, from `requirements-checkov.txt`) with `.checkov.yaml`:
the `terraform_json` framework, `--skip-download`, our own checkov checks in `checkov_checks/` (which
import `dataplane.policy`: the project root is on checkov's `PYTHONPATH`), and the acknowledged
skips, each with its reason. Any other failed check fails the gate, and so does finding nothing to scan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dataplane.project import PROJECT_ROOT
from dataplane.synth_output import STACKS

CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"
CONFIG = PROJECT_ROOT / ".checkov.yaml"
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


class GateError(Exception):
    """checkov could not scan (not installed, crashed, parse errors, or nothing to scan)."""


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


def run(outdir: Path) -> int:
    """Scan `outdir` and print every failed check and a summary; 0 all passed, 1 a check failed, 2 no scan."""
    try:
        results = scan(outdir)
    except GateError as e:
        print(f"security gate: {e}", file=sys.stderr)
        return 2
    failed = [r for r in results if not r.passed]
    for result in failed:
        print(f"FAILED {result}")
    stacks = len({r.stack for r in results})
    print(f"security gate: {len(results) - len(failed)} passed, {len(failed)} failed over {stacks} stack(s)")
    return 1 if failed else 0
