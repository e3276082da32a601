"""What preflight and verify share: result rows, their table and JSON, and AWS session plumbing.

Every check is a function returning `(Status, reason)`; the `check` decorator names its row and
turns any AWS error (`AWS_ERRORS`: access denied, throttling after retries, no endpoint, no
credentials, an answer that is not AWS's) into a FAIL row carrying a one-line reason, so a run
always ends in a table, never a traceback. Every AWS call, assuming roles included, runs in a check.
"""

from __future__ import annotations

import functools
import json
import textwrap
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Callable, Iterable

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from dataplane.customer import Customer

DEFAULT_HOME_REGION = "us-east-1"
AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)
"""What an AWS call raises when it fails: an error answer, botocore's own errors, an unparseable answer."""
REASON_LIMIT = 400  # characters of an error in a reason: an error page can be the whole answer


class Status(str, Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


Outcome = tuple[Status, str]


@dataclass(frozen=True)
class Row:
    """One check's result, with a one-line reason."""

    check: str
    status: Status
    reason: str


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
                           "checks": [{**asdict(row), "status": row.status.value} for row in self.rows]}, indent=2)


def aws_error(error: Exception) -> str:
    """One line for an AWS error: the error code and message, or botocore's description, shortened.

    An unparseable answer keeps only botocore's first line: the answer's body follows it.
    """
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        text = f"{detail.get('Code', 'Error')}: {detail.get('Message') or error}"
    elif isinstance(error, ResponseParserError):
        text = "unparseable answer: " + str(error).partition("\n")[0].rstrip(":")
    else:
        text = str(error)
    return textwrap.shorten(text, REASON_LIMIT, placeholder=" …")


def check(name: str) -> Callable[[Callable[..., Outcome]], Callable[..., Row]]:
    """Make a check function return its row; an AWS error becomes a FAIL row with its reason."""
    def decorate(fn: Callable[..., Outcome]) -> Callable[..., Row]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> Row:
            try:
                status, reason = fn(*args, **kwargs)
            except AWS_ERRORS as e:
                return Row(name, Status.FAIL, aws_error(e))
            return Row(name, status, reason)
        return run
    return decorate


def listing(items: Iterable[str], limit: int = 5) -> str:
    """`a, b, c` for a reason line, shortened to `limit` items and a count."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def home_region(session: boto3.Session) -> str:
    """Where account-wide calls (STS, IAM, the region list) go: `--region`/the profile's, else us-east-1."""
    return session.region_name or DEFAULT_HOME_REGION


def assume(session: boto3.Session, role_arn: str, session_name: str, external_id: str | None = None) -> boto3.Session:
    """A session with the credentials of `role_arn`, assumed from `session`."""
    params = {"RoleArn": role_arn, "RoleSessionName": session_name}
    if external_id:
        params["ExternalId"] = external_id
    creds = session.client("sts", region_name=home_region(session)).assume_role(**params)["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=session.region_name)


def peer_session(session: boto3.Session, customer: Customer) -> boto3.Session:
    """A session acting in the peer's account: through `accepter_role_arn` when set, as deploy does."""
    arn = customer.peering.accepter_role_arn
    return assume(session, arn, f"dataplane-{customer.name}") if arn else session
