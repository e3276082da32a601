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
(UTC). Ids are absent when the deploy did not succeed in this run. Running it again on an
activated customer changes nothing in the account (the deploy is a no-op) and refreshes the record.
Offboarding (`python -m dataplane destroy`) adds the tamper alarm's audit logs it keeps (`offboarding`: each bucket
and key, with its region, and when) to the record, or begins one for a customer that has none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import boto3

from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.ops.fleet.adopt import AdoptError
from dataplane.ops.fleet.deploy import SynthError, deploy
from dataplane.ops.files import write_atomically
from dataplane.ops.account.preflight import preflight
from dataplane.ops.report import Outcome, Report, Row, Status, check
from dataplane.ops.account.verify import verify
from dataplane.policy import ownership_tags
from dataplane.project import PROJECT_ROOT

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
        paths = write_record(records_dir, customer.name, record)
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
        return {
            "customer": c.name,
            "result": "failed" if failed else "activated",
            "failed_step": failed[0] if failed else None,
            "account_id": c.account_id,
            "region": c.region,
            "role": {"arn": out.get("role_arn"), "name": out.get("role_name"), "external_ids": list(c.external_ids)},
            "network": c.network and {"cidr": c.network.cidr, "vpc_id": out.get("vpc_id"),
                                      "subnet_ids": ids.get("subnet_ids"), "route_table_id": ids.get("route_table_id")},
            "peering": c.peering and {
                "connection_id": out.get("peering_connection_id"), "status": ids.get("peering_status"),
                "peer_account_id": c.peering.account_id, "peer_region": c.peer_region,
                "peer_vpc_id": c.peering.vpc_id, "peer_cidrs": list(c.peering.cidrs)},
            "verified_as": "control plane" if self.control_plane else "deployer",
            "steps": [{"step": s.name, "result": s.result, "seconds": s.seconds, "detail": s.detail}
                      for s in self.steps],
            "checks": [{"step": r.command, "check": row.check, "status": row.status.value, "reason": row.reason}
                       for r in self.reports for row in r.rows],
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


def markdown(record: dict) -> str:
    """The record as a one-page Markdown summary: the activation (when one ran), then the audit logs kept at
    offboarding (when a destroy kept any)."""
    lines = _activation(record) if "steps" in record else [
        f"# {record['customer']}: no activation recorded", "", f"Account {record['account_id']}."]
    if offboarding := record.get("offboarding"):
        lines += ["", "## Kept at offboarding", "",
                  f"Kept on purpose at {offboarding['kept_at']} (UTC), out of Terraform's state: the tamper alarm's "
                  "audit logs, with their settings, and the keys that encrypt them. No destroy deletes them: hand "
                  "them to the customer, or delete them by hand.", "",
                  "| Kept | Id | Region |", "| --- | --- | --- |"]
        lines += [f"| {k['kind']} | `{k['id']}` | {k['region']} |" for k in offboarding["kept"]]
    return "\n".join(lines) + "\n"


def _activation(record: dict) -> list[str]:
    """The activation's part of the summary: its result, account, role, network, peering, steps and checks."""
    r, role, network, peering = record, record["role"], record["network"], record["peering"]
    result = "activated" if r["result"] == "activated" else f"**FAILED** at {r['failed_step']}"
    lines = [f"# Activation of {r['customer']}: {result}", "",
             "| | |", "| --- | --- |",
             f"| Customer | {r['customer']} |", f"| Account | {r['account_id']} |", f"| Region | {r['region']} |",
             f"| Verified as | {r['verified_as']} |", f"| Tool commit | `{r['tool_commit']}` |",
             f"| Started (UTC) | {r['started_at']} |", f"| Finished (UTC) | {r['finished_at']} |", "",
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
    return f"`{value}`" if value else "not deployed"


def _cell(text: str) -> str:
    """`text` on one line, safe in a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def record_kept(records_dir: Path, name: str, account_id: str, kept: list[dict]) -> Path:
    """Add `kept`, the audit logs a destroy keeps (`kind`, `id`, `region` each), to `name`'s record beside those an
    earlier destroy kept; a record is begun when there is none (or it is not a JSON object). The JSON file's path."""
    try:
        record = json.loads((records_dir / f"{name}.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        record = None
    if not isinstance(record, dict):
        record = {"customer": name, "account_id": account_id}
    earlier = record.get("offboarding", {}).get("kept", [])
    record["offboarding"] = {"kept_at": _now().isoformat(timespec="seconds"),
                             "kept": earlier + [item for item in kept if item not in earlier]}
    return write_record(records_dir, name, record)[0]


def write_record(records_dir: Path, name: str, record: dict) -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` in `records_dir`, each replaced atomically (never half-written)."""
    files = {records_dir / f"{name}.json": json.dumps(record, indent=2) + "\n",
             records_dir / f"{name}.md": markdown(record)}
    records_dir.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        write_atomically(path, text)
    return tuple(files)
