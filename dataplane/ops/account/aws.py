"""AWS plumbing the operations share: which errors mean a call failed or is unimplemented, sessions, resource fields."""

from __future__ import annotations

import http.client
import textwrap
from dataclasses import dataclass
from typing import Mapping, Optional

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from dataplane.config.customer import Customer

DEFAULT_HOME_REGION = "us-east-1"
AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)
"""What an AWS call raises when it fails: an error answer, botocore's own errors, an unparseable answer."""
REASON_LIMIT = 400  # characters of an error in a reason: an error page can be the whole answer
UNKNOWN_ACTION_CODES = ("NotImplemented", "InvalidAction", "UnknownOperationException")
"""The error codes of an endpoint that does not know the call (AWS's own, or an emulator's)."""


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


def without_error_pages(client):
    """`client`, raising a ClientError that names only the HTTP status for an error answered with a web page.

    botocore would quote the page in the error, or fail to parse it and lose the status. Such an error is not retried.
    """
    client.meta.events.register("before-parse", _raise_error_page)
    return client


def _raise_error_page(operation_model, response_dict: dict, **_) -> None:
    status, headers = response_dict["status_code"], {k.lower(): v for k, v in response_dict["headers"].items()}
    if status >= 400 and headers.get("content-type", "").startswith("text/html"):
        error = {"Code": str(status), "Message": http.client.responses.get(status, "")}
        raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers}},
                          operation_model.name)


def unimplemented(error: Exception) -> bool:
    """Whether `error` is an endpoint's answer that it does not implement the call.

    That is an unknown-action error code, HTTP 501, or HTTP 404 or 500 with a web page instead of an AWS error
    document (moto's answer to a call it does not emulate; see `without_error_pages`). Not a denied call, a
    failed connection, an AWS error document with status 500, nor an unparseable answer with status 200.
    """
    if not isinstance(error, ClientError):
        return False
    meta = error.response.get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode")
    page = meta.get("HTTPHeaders", {}).get("content-type", "").startswith("text/html")
    return error.response["Error"].get("Code") in UNKNOWN_ACTION_CODES or status == 501 or (
        page and status in (404, 500))


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


@dataclass(frozen=True)
class Credentials:
    """Credentials acting in one account: `session` for boto3 calls, `environment` for terraform and the cdktf CLI."""

    session: boto3.Session
    environment: dict[str, str]


def acting_as(role_arn: Optional[str], session_name: str, environment: Mapping[str, str],
              session: Optional[boto3.Session] = None, external_id: Optional[str] = None) -> Credentials:
    """The caller's credentials (`session`, else the standard chain, with `environment` as it is), or, with
    `role_arn`, that role assumed from them (with `external_id` when the role's trust requires one): its session,
    and `environment` with its keys instead of a profile."""
    session = session or boto3.Session()
    if role_arn is None:
        return Credentials(session, dict(environment))
    assumed = assume(session, role_arn, session_name[:64], external_id)
    keys = assumed.get_credentials().get_frozen_credentials()
    kept = {k: v for k, v in environment.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    return Credentials(assumed, {**kept, "AWS_ACCESS_KEY_ID": keys.access_key,
                                 "AWS_SECRET_ACCESS_KEY": keys.secret_key, "AWS_SESSION_TOKEN": keys.token})


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
