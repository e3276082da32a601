"""The report of preflight and verify: PASS/WARN/FAIL rows, their table and JSON.

Every check is a function returning `(Status, reason)`, or `(Status, reason, found)` when later checks
need what it found: they receive it as an argument (`Row.found`), never through shared state. The
`check` decorator names its row and turns any AWS error (`AWS_ERRORS`: access denied, throttling
after retries, no endpoint, no credentials, an answer that is not AWS's) into a FAIL row carrying a
one-line reason, so a run always ends in a table, never a traceback. Every AWS call, assuming roles
included, runs in a check.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable

from dataplane.config.customer import Customer
from dataplane.ops.account.aws import AWS_ERRORS, aws_error


class Status(str, Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


Outcome = tuple[Status, str] | tuple[Status, str, Any]


@dataclass(frozen=True)
class Row:
    """One check's result, with a one-line reason; `found` is for later checks, not in the output."""

    check: str
    status: Status
    reason: str
    found: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Report:
    """The rows of one command run against one customer; exit status 0 only without a FAIL."""

    command: str
    customer: Customer
    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(row.status is not Status.FAIL for row in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def table(self) -> str:
        c = self.customer
        width = max((len(row.check) for row in self.rows), default=0)
        lines = [f"{self.command} {c.name} (account {c.account_id}, {c.region})"]
        lines += [f"  {row.status.value}  {row.check:<{width}}  {row.reason}" for row in self.rows]
        counts = {s: sum(row.status is s for row in self.rows) for s in Status}
        lines.append(f"{'ok' if self.ok else 'FAILED'}: {counts[Status.PASS]} pass, {counts[Status.WARN]} warn, "
                     f"{counts[Status.FAIL]} fail")
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps({"command": self.command, "customer": self.customer.name, "ok": self.ok,
                           "checks": [{"check": row.check, "status": row.status.value, "reason": row.reason}
                                      for row in self.rows]}, indent=2)


def check(name: str) -> Callable[[Callable[..., Outcome]], Callable[..., Row]]:
    """Make a check function return its row, with what it found; an AWS error becomes a FAIL row with its reason."""
    def decorate(fn: Callable[..., Outcome]) -> Callable[..., Row]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> Row:
            try:
                status, reason, *found = fn(*args, **kwargs)
            except AWS_ERRORS as e:
                return Row(name, Status.FAIL, aws_error(e))
            return Row(name, status, reason, *found)
        return run
    return decorate


def listing(items: Iterable[str], limit: int = 5) -> str:
    """`a, b, c` for a reason line, shortened to `limit` items and a count."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
