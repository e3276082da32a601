"""`python -m dataplane activate <customer>`: preflight, deploy and verify one customer, then its activation record.

The steps run in order, each timed (`preflight: ok in 2.1 s`), and the first that fails stops
the run: preflight with the deployer's credentials (a FAIL row fails it, a WARN row does not),
the deploy (adopt, then terraform, as `make deploy`), then verify. Verify assumes the role
as the control plane when its credentials are given; otherwise as the deployer, whom a trust
policy for the control plane only refuses: that refusal is then a WARN (the control plane's
access is not proven), reported at once, and a `credentials` WARN row says whose credentials
verify ran with. The account is read with the deployer's credentials in both cases: the assumed
role cannot list its own policies or describe EC2.

The record, `<records dir>/<customer>.json` and a readable `<customer>.md`, is written whatever
the outcome, each file replaced atomically: the role, ExternalId, CIDRs and the ids this run's
deploy made (from its outputs file; the subnets and route table by the stack's tags, and the
peering's status, looked up in the `deployed ids` row), every check row, each step's result (`ok`, `failed`,
`not run`) and duration, the failed step, the tool's git commit, and the run's start and end
(UTC); the number of WARN rows (`warnings`), the customer file and whether git has it committed as it is
(`customer_file`), and the tamper alarm's email and topic (`tamper_alarm`). `status` says what the record says of the
data plane now: `activated`, `failed`, or `destroyed`. Ids are absent when the deploy did not succeed in this run.
Running it again on an activated customer changes nothing in the account (the deploy is a no-op) and refreshes the
record; the audit logs an earlier destroy kept stay listed.

Offboarding (`python -m dataplane destroy`) adds the tamper alarm's audit logs it keeps (`offboarding`: each bucket
and key, with its region, and when) to the record before it destroys, or begins one for a customer that has none;
after a successful destroy the record, when there is one, says `destroyed`: when, by whom (the caller's ARN) and
what was kept, the activation kept below it. Every change to a record goes through `update_record`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import boto3

from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.ops.fleet.adopt import AdoptError
from dataplane.ops.fleet.deploy import SynthError, deploy
from dataplane.ops.fleet.list_customers import states
from dataplane.ops.files import write_atomically
from dataplane.ops.markdown import code
from dataplane.ops.account.preflight import preflight
from dataplane.ops.report import Outcome, Report, Row, Status, check
from dataplane.ops.account.verify import verify
from dataplane.policy import ownership_tags
from dataplane.project import PROJECT_ROOT
from dataplane.tamper import AlarmNames

STEPS = ("preflight", "deploy", "verify")
OK, FAILED, NOT_RUN = "ok", "failed", "not run"


@dataclass
class Step:
    """One step's result and duration in seconds; `detail` says why it failed when no check row does."""

    name: str
    result: str = NOT_RUN
    seconds: float | None = None
    detail: str = ""


def activate(customer: Customer, settings: Settings, deployer: boto3.Session, control_plane: boto3.Session | None,
             outdir: Path, outputs_dir: Path, records_dir: Path) -> int:
    """Run the steps for `customer` and write its record; 0 only when every step passed and the record is written."""
    run = _Activation(customer, settings, deployer, control_plane, outdir, outputs_dir)
    started, begun = _now(), time.monotonic()
    for step in run.steps:
        clock = time.monotonic()
        passed = getattr(run, step.name)(step)
        step.result, step.seconds = OK if passed else FAILED, round(time.monotonic() - clock, 1)
        print(f"{step.name}: {step.result if passed else 'FAILED'} in {step.seconds:.1f} s", flush=True)
        if not passed:
            break
    record = run.record(started, _now())
    try:
        paths = update_record(records_dir, customer.name, lambda earlier: _activated(earlier, record))
    except OSError as e:
        print(f"activate {customer.name}: cannot write the record in {records_dir}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    where = ", ".join(str(p) for p in paths)
    if record["failed_step"]:
        print(f"activation of {customer.name} FAILED at {record['failed_step']}; record: {where}")
        return 1
    print(f"activated {customer.name} in {time.monotonic() - begun:.1f} s; record: {where}")
    return 0


class _Activation:
    """The steps of one run, each returning whether it passed, and what they found for the record."""

    def __init__(self, customer: Customer, settings: Settings, deployer: boto3.Session,
                 control_plane: boto3.Session | None, outdir: Path, outputs_dir: Path):
        self.customer, self.settings, self.deployer, self.control_plane = customer, settings, deployer, control_plane
        self.outdir, self.outputs_dir = outdir, outputs_dir
        self.steps = [Step(name) for name in STEPS]
        self.reports: list[Report] = []
        self.outputs: dict = {}
        self.ids: dict = {}

    def preflight(self, step: Step) -> bool:
        return self._reported(preflight(self.customer, self.settings, self.deployer))

    def deploy(self, step: Step) -> bool:
        c = self.customer
        try:
            status = deploy(c, self.outdir, self.outputs_dir)
        except (AdoptError, SynthError) as e:
            step.detail = str(e)
            print(f"deploy {c.name}: {e}", file=sys.stderr)
            return False
        if status != 0:
            step.detail = f"terraform exited with status {status} (the run printed its errors and its log's path)"
            return False
        path = self.outputs_dir / f"{c.name}.json"
        try:
            self.outputs = json.loads(path.read_text(encoding="utf-8"))[c.name]
        except (OSError, ValueError, KeyError, TypeError) as e:
            step.detail = f"no outputs for {c.name} in {path} ({type(e).__name__}: {e})"
            print(f"deploy {c.name}: {step.detail}", file=sys.stderr)
            return False
        return True

    def verify(self, step: Step) -> bool:
        """As the control plane when its credentials are given, else as the deployer; the ids for the record."""
        c = self.customer
        if self.control_plane:
            report = verify(c, self.settings, self.control_plane, self.deployer)
            rows = list(report.rows)
        else:  # the deployer's refusal is what the trust intends: nothing to wait for while IAM propagates
            report = verify(c, self.settings, self.deployer, self.deployer, sleep=lambda _: None)
            rows = [as_deployer(report.rows[0]), *report.rows[1:], Row(
                "credentials", Status.WARN, "verify ran with the deployer's credentials, not the control plane's: "
                "the control plane's access to the role is not proven (give --control-plane-profile)")]
        if c.network:
            ids = self.deployed_ids()
            self.ids = ids.found or {}
            rows.append(ids)
        return self._reported(Report("verify", c, tuple(rows)))

    @check("deployed ids")
    def deployed_ids(self) -> Outcome:
        """The subnets and route table of the deployed VPC (by the stack's tags), and the peering's status."""
        c, ec2 = self.customer, self.deployer.client("ec2", region_name=self.customer.region)
        vpc_id = self.outputs["vpc_id"]
        ours = [{"Name": "vpc-id", "Values": [vpc_id]}] + [
            {"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(ownership_tags(c.name).items())]
        subnets = sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=ours)["Subnets"])
        tables = sorted(t["RouteTableId"] for t in ec2.describe_route_tables(Filters=ours)["RouteTables"])
        if len(tables) != 1:
            return Status.FAIL, f"{len(tables)} route tables tagged customer={c.name} in {vpc_id}, not 1"
        ids = {"subnet_ids": subnets, "route_table_id": tables[0]}
        found = f"{vpc_id}: subnets {', '.join(subnets) or 'none'}, route table {tables[0]}"
        if c.peering:
            pcx = self.outputs["peering_connection_id"]
            connections = ec2.describe_vpc_peering_connections(
                Filters=[{"Name": "vpc-peering-connection-id", "Values": [pcx]}])["VpcPeeringConnections"]
            ids["peering_status"] = connections[0]["Status"]["Code"] if connections else "not found"
            found += f"; {pcx} {ids['peering_status']}"
        return Status.PASS, found, ids

    def _reported(self, report: Report) -> bool:
        self.reports.append(report)
        print(report.table(), flush=True)
        return report.ok

    def record(self, started: datetime, finished: datetime) -> dict:
        """The activation record: what is handed to the control plane and to support."""
        c, out, ids = self.customer, self.outputs, self.ids
        failed = [s.name for s in self.steps if s.result == FAILED]
        verified = any(s.name == "verify" and s.result != NOT_RUN for s in self.steps)
        checks = [{"step": r.command, "check": row.check, "status": row.status.value, "reason": row.reason}
                  for r in self.reports for row in r.rows]
        return {
            "customer": c.name,
            "status": "failed" if failed else "activated",
            "result": "failed" if failed else "activated",
            "failed_step": failed[0] if failed else None,
            "account_id": c.account_id,
            "region": c.region,
            "customer_file": customer_file(c),
            "role": {"arn": out.get("role_arn"), "name": out.get("role_name"), "external_ids": list(c.external_ids)},
            "network": c.network and {"cidr": c.network.cidr, "vpc_id": out.get("vpc_id"),
                                      "subnet_ids": ids.get("subnet_ids"), "route_table_id": ids.get("route_table_id")},
            "peering": c.peering and {
                "connection_id": out.get("peering_connection_id"), "status": ids.get("peering_status"),
                "peer_account_id": c.peering.account_id, "peer_region": c.peer_region,
                "peer_vpc_id": c.peering.vpc_id, "peer_cidrs": list(c.peering.cidrs)},
            "tamper_alarm": c.tamper_alarm and {"email": c.tamper_alarm.email,
                                                "topic_arn": AlarmNames(c.name, c.account_id).topic_arn()},
            "verified_as": ("control plane" if self.control_plane else "deployer") if verified else None,
            "warnings": sum(row["status"] == Status.WARN.value for row in checks),
            "steps": [{"step": s.name, "result": s.result, "seconds": s.seconds, "detail": s.detail}
                      for s in self.steps],
            "checks": checks,
            "tool_commit": tool_commit(),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"),
        }


def as_deployer(assumed: Row) -> Row:
    """Verify's assume-role row when the deployer was the caller: a refusal is then what the trust intends, a WARN."""
    if assumed.status is Status.FAIL and assumed.reason.startswith("AccessDenied:"):
        return Row(assumed.check, Status.WARN, "not checked as the control plane: the deployer may not assume the "
                   "role, as a trust policy for the control plane only intends")
    return assumed


def _now() -> datetime:
    return datetime.now(timezone.utc)


def tool_commit() -> str:
    """The project's git commit (`git rev-parse HEAD`), or "unknown" outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def customer_file(customer: Customer) -> dict:
    """The customer file as the record names it: its path, and whether git has it committed as it is."""
    return {"path": customer.source, "committed": committed(PROJECT_ROOT / customer.source)}


def committed(path: Path) -> bool:
    """Whether `path` is committed to git as it is, in the repository holding it: tracked (`git ls-files
    --error-unmatch`) and neither changed nor staged (`git status --porcelain` names it not). False outside git."""
    def git(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *command, "--", path.name], cwd=path.parent, capture_output=True, text=True,
                              timeout=30)
    try:
        tracked, status = git("ls-files", "--error-unmatch"), git("status", "--porcelain")
    except (OSError, subprocess.TimeoutExpired):  # no git, or no such directory
        return False
    return tracked.returncode == 0 and status.returncode == 0 and not status.stdout.strip()


def markdown(record: dict) -> str:
    """The record as a one-page Markdown summary: the destroy first (when the data plane was destroyed), then the
    activation (when one ran), then the audit logs kept at offboarding (when a destroy kept any)."""
    lines = _activation(record) if "steps" in record else [
        f"# {record['customer']}: no activation recorded", "", f"Account {record['account_id']}."]
    if "destroyed" in record:  # the activation is history: its headings one level down, under the destroy's
        lines = _destroyed(record) + [""] + [f"#{line}" if line.startswith("#") else line for line in lines]
    if offboarding := record.get("offboarding"):
        lines += ["", "## Kept at offboarding", "",
                  f"Kept on purpose at {offboarding['kept_at']} (UTC), out of Terraform's state: the tamper alarm's "
                  "audit logs, with their settings, and the keys that encrypt them. No destroy deletes them: hand "
                  "them to the customer, or delete them by hand.", "",
                  "| Kept | Id | Region |", "| --- | --- | --- |"]
        lines += [f"| {k['kind']} | `{k['id']}` | {k['region']} |" for k in offboarding["kept"]]
    return "\n".join(lines) + "\n"


def _destroyed(record: dict) -> list[str]:
    """The destroy's part of the summary: when, by whom, and what it kept."""
    r, destroyed = record, record["destroyed"]
    kept = f"{kept_summary(destroyed['kept'])}, listed under Kept at offboarding" if destroyed["kept"] else "nothing"
    return [f"# Destroyed: the data plane of {r['customer']}", "", "| | |", "| --- | --- |",
            f"| Customer | {r['customer']} |", f"| Account | {r['account_id']} |",
            f"| Destroyed (UTC) | {destroyed['at']} |", f"| Destroyed by | {code(destroyed['by'])} |",
            f"| Kept | {kept} |"]


def _activation(record: dict) -> list[str]:
    """The activation's part of the summary: its result (with its warnings), customer file, account, tamper alarm,
    role, network, peering, steps and checks. A record written before a field existed shows without it."""
    r, role, network, peering = record, record["role"], record["network"], record["peering"]
    warnings = r.get("warnings", sum(c["status"] == Status.WARN.value for c in r["checks"]))
    result = (f"**FAILED** at {r['failed_step']}" if r["result"] != "activated" else
              f"activated with {warnings} warning{'s' if warnings > 1 else ''}" if warnings else "activated")
    file = r.get("customer_file")
    uncommitted = bool(file) and not file["committed"]
    rows = [("Customer", r["customer"])]
    if file:
        rows.append(("Customer file", f"{code(file['path'])}, " + ("**from an uncommitted file** (not committed to git "
                                                                 "as it is)" if uncommitted else "committed")))
    rows += [("Account", r["account_id"]), ("Region", r["region"])]
    if alarm := r.get("tamper_alarm"):
        rows.append(("Tamper alarm", f"emails {alarm['email']} (topic {code(alarm['topic_arn'])})"))
    if any(s["step"] == "verify" and s["result"] != NOT_RUN for s in r["steps"]):
        rows.append(("Verified as", r["verified_as"]))
    rows += [("Warnings", f"{warnings} (the WARN rows under Checks)" if warnings else "none"),
             ("Tool commit", f"`{r['tool_commit']}`"), ("Started (UTC)", r["started_at"]),
             ("Finished (UTC)", r["finished_at"])]
    lines = [f"# Activation of {r['customer']}: {result}{', from an uncommitted file' if uncommitted else ''}", "",
             "| | |", "| --- | --- |", *(f"| {name} | {value} |" for name, value in rows), "",
             "## Cross-account role", "",
             f"- ARN: {_code(role['arn'])}", f"- Name: {_code(role['name'])}",
             f"- ExternalId{'s' if len(role['external_ids']) > 1 else ''}: "
             f"{', '.join(map(_code, role['external_ids']))}"]
    if network:
        lines += ["", "## Network", "", f"- VPC: {_code(network['vpc_id'])} ({network['cidr']})",
                  f"- Subnets: {', '.join(map(_code, network['subnet_ids'] or [None]))}",
                  f"- Route table: {_code(network['route_table_id'])}"]
    if peering:
        lines += ["", "## Peering", "",
                  f"- Connection: {_code(peering['connection_id'])} ({peering['status'] or 'unknown'})",
                  f"- Peer: {_code(peering['peer_vpc_id'])} in account {peering['peer_account_id']} "
                  f"({peering['peer_region']}), CIDRs {', '.join(peering['peer_cidrs'])}"]
    lines += ["", "## Steps", "", "| Step | Result | Duration |", "| --- | --- | --- |"]
    lines += [f"| {s['step']} | {s['result']} | {_duration(s['seconds'])} |" for s in r["steps"]]
    lines += [f"\n{s['step']} failed: {_cell(s['detail'])}" for s in r["steps"] if s["detail"]]
    lines += ["", "## Checks", "", "| Step | Check | Result | Reason |", "| --- | --- | --- | --- |"]
    lines += [f"| {c['step']} | {c['check']} | {c['status']} | {_cell(c['reason'])} |" for c in r["checks"]]
    return lines


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def _code(value: str | None) -> str:
    return code(value) if value else "not deployed"


def _cell(text: str) -> str:
    """`text` on one line, safe in a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def record_paths(records_dir: Path, name: str) -> tuple[Path, Path]:
    """`name`'s record in `records_dir`: `<name>.json` and `<name>.md`."""
    return records_dir / f"{name}.json", records_dir / f"{name}.md"


def load_record(records_dir: Path, name: str) -> dict | None:
    """`name`'s record, or None when there is none (or it is not a JSON object)."""
    try:
        record = json.loads(record_paths(records_dir, name)[0].read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def update_record(records_dir: Path, name: str,
                  change: Callable[[dict | None], dict | None]) -> tuple[Path, Path] | None:
    """Write `change(record)` as `name`'s record, `record` being the one there (None when there is none); nothing
    when `change` gives None. The paths written, or None. Every change to a record (activate, destroy) goes here."""
    record = change(load_record(records_dir, name))
    return None if record is None else write_record(records_dir, name, record)


def _activated(earlier: dict | None, record: dict) -> dict:
    """An activation's `record` replacing the `earlier` one: the audit logs an earlier destroy kept stay listed (they
    are still in the account); the rest, a destroy's included, is this activation's."""
    return {**record, **{key: value for key, value in (earlier or {}).items() if key == "offboarding"}}


def record_kept(records_dir: Path, name: str, account_id: str, kept: list[dict]) -> Path:
    """Add `kept`, the audit logs a destroy keeps (`kind`, `id`, `region` each), to `name`'s record beside those an
    earlier destroy kept; a record is begun when there is none (or it is not a JSON object). The JSON file's path."""
    def keep(record: dict | None) -> dict:
        record = record or {"customer": name, "account_id": account_id}
        earlier = record.get("offboarding", {}).get("kept", [])
        return {**record, "offboarding": {"kept_at": _now().isoformat(timespec="seconds"),
                                          "kept": earlier + [item for item in kept if item not in earlier]}}
    return update_record(records_dir, name, keep)[0]


def record_destroyed(records_dir: Path, name: str, by: str) -> Path | None:
    """Say in `name`'s record that its data plane was destroyed (`status`), now, by `by` (the caller's ARN), keeping
    the audit logs its `offboarding` lists (`destroyed`); the activation stays in it. The JSON file's path, or None
    when there is no record (nothing was ever activated or kept for `name`)."""
    def destroyed(record: dict | None) -> dict | None:
        if record is None:
            return None
        kept = record.get("offboarding", {}).get("kept", [])
        return {**record, "status": "destroyed",
                "destroyed": {"at": _now().isoformat(timespec="seconds"), "by": by, "kept": kept}}
    written = update_record(records_dir, name, destroyed)
    return written and written[0]


def kept_summary(kept: list[dict]) -> str:
    """What a destroy kept, counted: `4 audit-log bucket(s) and 2 KMS key(s)`."""
    kinds = [item["kind"] for item in kept]
    return f"{kinds.count('S3 bucket')} audit-log bucket(s) and {kinds.count('KMS key')} KMS key(s)"


def destroyed_record(customer: Customer, settings: Settings, records_dir: Path,
                     outdir: Path) -> tuple[Path, dict] | None:
    """`customer`'s record (its path) and what it says of the destroy (`destroyed`: when, by whom, what was kept), when
    it says the data plane was destroyed and the state (beside `outdir` when local) holds no resources since; None
    otherwise (a deploy after the destroy fills the state: the record is then out of date, and verify checks)."""
    record = load_record(records_dir, customer.name)
    if record is None or record.get("status") != "destroyed" or states([customer], settings, outdir)[0].deployed:
        return None
    return record_paths(records_dir, customer.name)[0], record["destroyed"]


def write_record(records_dir: Path, name: str, record: dict) -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` in `records_dir`, each replaced atomically (never half-written)."""
    files = dict(zip(record_paths(records_dir, name), (json.dumps(record, indent=2) + "\n", markdown(record))))
    records_dir.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        write_atomically(path, text)
    return tuple(files)
