"""The AWS emulator for tests: a moto server on 127.0.0.1, and credentials for any account in it.

moto maps credentials from `sts:AssumeRole` to the account of the assumed role, so one server
serves several accounts (the data-plane account and the customer's peer account).
"""

from __future__ import annotations

import json
import logging
import urllib.request

import boto3
from moto.server import ThreadedMotoServer

FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
SCRUBBED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "MOTO_ACCOUNT_ID")


class Emulator:
    """A moto server bound to loopback on a free port; `stop()` ends it."""

    def __init__(self):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Forget every resource in every account."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).close()

    def credentials(self, account_id: str) -> dict[str, str]:
        """Fake credentials that moto maps to `account_id`."""
        sts = boto3.client("sts", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/emulator-admin",
                                RoleSessionName="tests")["Credentials"]
        return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                "AWS_SESSION_TOKEN": creds["SessionToken"]}

    def env(self, account_id: str, region: str, base: dict[str, str]) -> dict[str, str]:
        """`base` with every AWS setting replaced: this emulator, `account_id`'s credentials, `region`."""
        env = {k: v for k, v in base.items() if k not in SCRUBBED}
        return {**env, **self.credentials(account_id), "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_REGION": region, "AWS_DEFAULT_REGION": region}

    def client(self, service: str, account_id: str, region: str):
        c = self.credentials(account_id)
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=c["AWS_ACCESS_KEY_ID"], aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=c["AWS_SESSION_TOKEN"])


def dump(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
