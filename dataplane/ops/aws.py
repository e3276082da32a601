"""AWS plumbing the operations share: which errors mean an AWS call failed, sessions, resource fields."""

from __future__ import annotations

import textwrap

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from dataplane.config.customer import Customer

DEFAULT_HOME_REGION = "us-east-1"
AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)
"""What an AWS call raises when it fails: an error answer, botocore's own errors, an unparseable answer."""
REASON_LIMIT = 400  # characters of an error in a reason: an error page can be the whole answer


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


def tags_of(resource: dict) -> dict[str, str]:
    """An AWS resource's `Tags` list as a dict."""
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def route_target(route: dict) -> str:
    """Where a route sends traffic (gateway, NAT, peering, instance, interface... ids), and its state unless active."""
    target = ", ".join(value for key, value in route.items() if key.endswith(("Id", "Arn"))
                       and not key.startswith("Destination") and not key.endswith("OwnerId"))
    return target if route.get("State") == "active" else f"{target} ({route.get('State')})"
