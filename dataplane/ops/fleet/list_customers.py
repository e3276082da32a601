"""`python -m dataplane list`: every customer at a glance, what is deployed, and data-plane CIDRs that overlap.

A control plane that ever peers with several data planes needs their ranges disjoint, so any
two customers whose `network.cidr` overlap are reported. What is deployed comes from each
customer's Terraform state, read where the backend keeps it: the local file (no AWS call), or
the S3 object (with the standard credential chain; an error makes that customer's state
"unknown: <error>", never a failure of the listing). A cloud backend's state is not read.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from botocore.config import Config
from botocore.exceptions import ClientError

from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.ops.account.aws import AWS_ERRORS, aws_error
from dataplane.policy import guard_of

S3_CONFIG = Config(connect_timeout=5, retries={"mode": "standard", "max_attempts": 3})
"""An unreachable S3 costs seconds per customer, not minutes."""


@dataclass(frozen=True)
class Overlap:
    """Two customers whose data-plane CIDRs overlap."""

    customers: tuple[str, str]
    cidrs: tuple[str, str]

    def __str__(self) -> str:
        (a, b), (x, y) = self.customers, self.cidrs
        return f"WARN  {a} and {b}: data-plane CIDRs {x} and {y} overlap"


@dataclass(frozen=True)
class State:
    """What a customer's Terraform state says: deployed means it records managed resources.

    `unknown` says why the state was not read ("unknown (cloud)", "unknown: <error>"); `deployed` is then None.
    `last_change` is the file's or object's modification time (UTC, ISO 8601); `role_arn` the state's output;
    `guard` the boundary the deployed role's escalation guard requires (None: no guard deployed).
    """

    location: str
    deployed: bool | None = None
    serial: int | None = None
    last_change: str | None = None
    role_arn: str | None = None
    guard: str | None = None
    unknown: str | None = None

    @property
    def unguarded(self) -> bool:
        """Deployed without the escalation guard."""
        return bool(self.deployed) and self.guard is None

    def cells(self) -> tuple[str, ...]:
        if self.unknown:
            return (self.unknown,)
        guard = "-" if not self.deployed else "OFF" if self.unguarded else "on"
        return ("yes" if self.deployed else "no", "-" if self.serial is None else str(self.serial),
                self.last_change or "-", guard, self.role_arn or "-")


def overlaps(customers: list[Customer]) -> list[Overlap]:
    """Every pair of customers whose data-plane networks overlap, in name order."""
    networked = [c for c in customers if c.network]
    return [Overlap((a.name, b.name), (a.network.cidr, b.network.cidr))
            for a, b in itertools.combinations(networked, 2)
            if ipaddress.IPv4Network(a.network.cidr).overlaps(ipaddress.IPv4Network(b.network.cidr))]


def states(customers: list[Customer], settings: Settings, outdir: Path) -> list[State]:
    """Each customer's state, in order; local state sits beside `outdir` (`<stateDir>/<customer>.tfstate`)."""
    backend = settings.backend
    if backend.type == "local":
        return [_local(outdir.parent / backend.state_dir / f"{c.name}.tfstate") for c in customers]
    if backend.type == "cloud":
        return [State(f"{backend.hostname}/{backend.organization}/{backend.workspace(c.name)}",
                      unknown="unknown (cloud)") for c in customers]
    import boto3

    s3 = functools.cache(lambda: boto3.client("s3", region_name=backend.region, config=S3_CONFIG))
    return [_s3(s3, backend.bucket, backend.key(c.name)) for c in customers]


def _local(path: Path) -> State:
    try:
        changed, body = path.stat().st_mtime, path.read_bytes()
    except FileNotFoundError:
        return State(str(path), deployed=False)
    except OSError as e:
        return State(str(path), unknown=f"unknown: {e.strerror}")
    return _parsed(str(path), body, datetime.fromtimestamp(changed, timezone.utc))


def _s3(client, bucket: str, key: str) -> State:
    where = f"s3://{bucket}/{key}"
    try:
        answer = client().get_object(Bucket=bucket, Key=key)
        body = answer["Body"].read()
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return State(where, deployed=False)
        return State(where, unknown=f"unknown: {aws_error(e)}")
    except AWS_ERRORS as e:
        return State(where, unknown=f"unknown: {aws_error(e)}")
    return _parsed(where, body, answer["LastModified"])


def _parsed(where: str, body: bytes, changed: datetime) -> State:
    """The state in `body`; an empty one (no bytes) is not deployed."""
    last_change = changed.astimezone(timezone.utc).isoformat(timespec="seconds")
    if not body.strip():
        return State(where, deployed=False, last_change=last_change)
    try:
        state = json.loads(body)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("serial"), int):
        return State(where, unknown="unknown: not a terraform state (no JSON with a serial)")
    resources = [r for r in state.get("resources") or [] if isinstance(r, dict)]
    deployed = any(r.get("mode") == "managed" and r.get("instances") for r in resources)
    role_arn = ((state.get("outputs") or {}).get("role_arn") or {}).get("value")
    policies = [instance.get("attributes", {}).get("policy") for r in resources
                if r.get("type") == "aws_iam_role_policy" for instance in r.get("instances") or []]
    guards = [guard_of(_document(p)) for p in policies]
    return State(where, deployed, state["serial"], last_change, role_arn, next(filter(None, guards), None))


def _document(policy: object) -> dict:
    try:
        document = json.loads(policy) if isinstance(policy, str) else None
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _peering(c: Customer) -> str:
    p = c.peering
    return f"{p.vpc_id} ({p.account_id}, {c.peer_region}): {', '.join(p.cidrs)}" if p else "-"


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Each row as a line: every cell but the row's last padded to its column's widest such cell."""
    widths = [max((len(row[i]) for row in rows if i < len(row) - 1), default=0)
              for i in range(max(len(row) for row in rows))]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths)), row[-1]]) for row in rows]


def table(customers: list[Customer], found: list[State]) -> str:
    """One line per customer, one WARN line per overlapping pair; then one line per customer's state."""
    fleet = [("NAME", "ACCOUNT", "REGION", "NETWORK", "PEERING")] + [
        (c.name, c.account_id, c.region + (" (opt-in)" if c.opt_in_region else ""),
         c.network.cidr if c.network else "-", _peering(c)) for c in customers]
    deployed = [("NAME", "DEPLOYED", "SERIAL", "LAST CHANGE (UTC)", "GUARD", "ROLE")] + [
        (c.name, *state.cells()) for c, state in zip(customers, found)]
    unguarded = [c.name for c, state in zip(customers, found) if state.unguarded]
    warning = [f"WARN  {len(unguarded)} deployed customer(s) without the escalation guard: {', '.join(unguarded)} "
               "(the role may create a role with any policy, or rewrite its own: set delegationBoundary, then "
               "deploy)"] if unguarded else []
    return "\n".join(_aligned(fleet) + [str(o) for o in overlaps(customers)] + [""] + _aligned(deployed) + warning)


def as_json(customers: list[Customer], found: list[State]) -> str:
    return json.dumps({
        "customers": [{
            "name": c.name, "account_id": c.account_id, "region": c.region, "opt_in_region": c.opt_in_region,
            "network_cidr": c.network.cidr if c.network else None,
            "peering": c.peering and {"vpc_id": c.peering.vpc_id, "account_id": c.peering.account_id,
                                      "region": c.peer_region, "cidrs": list(c.peering.cidrs)},
            "state": asdict(state),
        } for c, state in zip(customers, found)],
        "overlaps": [{"customers": list(o.customers), "cidrs": list(o.cidrs)} for o in overlaps(customers)],
    }, indent=2)
