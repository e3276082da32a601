"""`python -m dataplane sandbox`: an offline AWS (a moto server on 127.0.0.1) holding what each customer already has.

moto maps credentials from `sts:AssumeRole` to the account of the assumed role, so one server serves
every account: each customer's data-plane account and its peer account. moto generates its own
`vpc-`/`rtb-` ids, so the sandbox writes a copy of the fleet with them (each file parsed, its peering ids set, and
written back as TOML: no other value, nor a comment, can be caught by a text replacement), and one environment file per
customer (`.sandbox/env/<customer>.sh`) that points the tool at the sandbox as that customer's account.
The tests run their emulator through the same `Emulator` and `create_customer_side`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import re
import shlex
import shutil
import signal
import socket
import sys
import threading
import tomllib
import urllib.request
from pathlib import Path

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV

SANDBOX_DIR = Path(".sandbox")
"""Everything the sandbox writes, in the current directory; each run starts it afresh."""
FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
SCRUBBED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "MOTO_ACCOUNT_ID")
"""AWS settings that would take the tool elsewhere than the emulator's credentials."""
DEPLOYER_ROLE = "emulator-admin"
"""The role whose credentials `Emulator.credentials` hands out; the sandbox creates it, as an administrator."""
MAKE_DIRS = {"CDKTF_OUT": "cdktf.out", "OUTPUTS": "outputs", "RECORDS": "activations"}
"""The Makefile's output directories (make variables), kept in the sandbox's directory."""
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class SandboxError(Exception):
    """The sandbox cannot start: one line saying why."""


class Emulator:
    """A moto server bound to loopback on `port` (0: a free one); `stop()` ends it.

    Requests are answered one at a time: moto's backends are not thread-safe, and terraform calls in parallel. A call
    that failed half-way under a race was retried by the aws provider into `InvalidSubnet.Conflict` or
    `InvalidPermission.NotFound`; moto's work holds the GIL anyway, so serving in turn costs next to nothing.
    """

    def __init__(self, port: int = 0):
        if port:
            _check_free(port)
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # a failed call is the client's to report
        self._server = make_server("127.0.0.1", port, _one_at_a_time(DomainDispatcherApplication(create_backend_app)),
                                   threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def reset(self) -> None:
        """Forget every resource in every account."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).close()

    def credentials(self, account_id: str) -> dict[str, str]:
        """Fake credentials that moto maps to `account_id`."""
        sts = boto3.client("sts", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id=FAKE_KEYS["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=FAKE_KEYS["AWS_SECRET_ACCESS_KEY"])
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{DEPLOYER_ROLE}",
                                RoleSessionName="sandbox")["Credentials"]
        return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                "AWS_SESSION_TOKEN": creds["SessionToken"]}

    def variables(self, account_id: str, region: str) -> dict[str, str]:
        """The AWS variables that reach `account_id` in `region` through this emulator."""
        return {**self.credentials(account_id), "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region}

    def env(self, account_id: str, region: str, base: dict[str, str]) -> dict[str, str]:
        """`base` with every AWS setting replaced: this emulator, `account_id`'s credentials, `region`."""
        return {**{k: v for k, v in base.items() if k not in SCRUBBED}, **self.variables(account_id, region)}

    def client(self, service: str, account_id: str, region: str):
        c = self.credentials(account_id)
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=c["AWS_ACCESS_KEY_ID"], aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=c["AWS_SESSION_TOKEN"])


def _one_at_a_time(app):
    """`app`, a WSGI application, answering one request at a time (its response read whole inside the lock)."""
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            return list(app(environ, start_response))
    return serialized


def _check_free(port: int) -> None:
    """Refuse a port that another program listens on (the server's own bind error would only end its thread)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
        try:
            probe.bind(("127.0.0.1", port))
        except (OSError, OverflowError) as e:
            in_use = getattr(e, "errno", None) == errno.EADDRINUSE
            reason = "in use (another sandbox?)" if in_use else f"not usable ({e})"
            raise SandboxError(f"port {port} on 127.0.0.1 is {reason}; choose another: --port P "
                               "(make sandbox PORT=P)") from None


def create_customer_side(emulator: Emulator, customer: Customer, text: str) -> str:
    """Create what `customer` already has (its peer VPC with the file's CIDRs, route tables and accepter role,
    which trusts the data-plane account); return `text`, its file, with the emulator's ids: `peering.vpc_id` and
    `peering.route_table_ids` set in the parsed file, every other value as it was (comments are not kept)."""
    if not (peering := customer.peering):
        return text
    ec2 = emulator.client("ec2", peering.account_id, customer.peer_region)
    vpc_id = ec2.create_vpc(CidrBlock=peering.cidrs[0])["Vpc"]["VpcId"]
    for extra in peering.cidrs[1:]:
        ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=extra)
    route_table_ids = [ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
                       for _ in peering.route_table_ids]
    if peering.accepter_role_arn:
        iam = emulator.client("iam", peering.account_id, customer.peer_region)
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):  # another customer's accepter too
            iam.create_role(RoleName=peering.accepter_role_arn.rsplit("/", 1)[1],
                            AssumeRolePolicyDocument=_trust(customer.account_id))
    data = tomllib.loads(text)
    data["peering"] |= {"vpc_id": vpc_id, "route_table_ids": route_table_ids}
    return toml_text(data)


def toml_text(table: dict, path: tuple[str, ...] = ()) -> str:
    """`table`, a parsed customer file (strings, lists of strings, tables of them), as TOML that parses back to it
    exactly: its values first, then each table under its own header."""
    header = [f"[{'.'.join(map(_toml_key, path))}]\n"] if path else []
    values = [f"{_toml_key(key)} = {_toml_value(value)}\n" for key, value in table.items()
              if not isinstance(value, dict)]
    tables = ["\n" + toml_text(value, (*path, key)) for key, value in table.items() if isinstance(value, dict)]
    return "".join(header + values + tables)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return f"[{', '.join(map(_toml_string, value))}]"
    raise ValueError(f"{value!r}: not a value of a customer file (a string or a list of strings)")


def _toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped, everything else as it is."""
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else f"\\{c}" if c in '"\\' else c
                      for c in text)
    return f'"{escaped}"'


def _trust(account_id: str) -> str:
    """A trust policy that lets `account_id` assume the role."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "sts:AssumeRole"}]})


def run(settings: Settings, customers: list[Customer], port: int) -> int:
    """Start the sandbox for `customers`, say how to use it, and serve until SIGINT or SIGTERM; exit 0.

    The stop signals wait (blocked) until the sandbox is ready, so an early Ctrl-C still stops it cleanly.
    """
    sys.stdout.reconfigure(line_buffering=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    emulator = Emulator(port)
    try:
        print(f"sandbox: moto on {emulator.endpoint}, an offline AWS for every account (its keys are fake)")
        root = SANDBOX_DIR.resolve()
        shared = _start_afresh(settings, root)
        for customer in customers:
            _write_customer(emulator, customer, root, shared)
        print(f"sandbox: wrote {SANDBOX_DIR}/customers (the fleet with the sandbox's ids) and {SANDBOX_DIR}/env/"
              "<customer>.sh (that account's fake keys, AWS_ENDPOINT_URL, region; synth output and state stay in "
              f"{SANDBOX_DIR})")
        print("In another terminal, take one customer's account and activate it:")
        for customer in customers:
            print(f"  source {SANDBOX_DIR}/env/{customer.name}.sh && make activate CUSTOMER={customer.name}")
        print("sandbox: ready; Ctrl-C stops it")
        signal.sigwait(STOP_SIGNALS)
    finally:
        emulator.stop()
    print("sandbox: stopped; its resources and credentials are gone")
    return 0


def _start_afresh(settings: Settings, root: Path) -> dict[str, str]:
    """An empty `root` holding the project's settings with local state; the variables every customer shares.

    Local state in `root` keeps the sandbox's state away from the real one, whatever the project's backend.
    """
    try:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(root)
        (root / "env").mkdir(parents=True)
        (root / "customers").mkdir()
    except OSError as e:
        raise SandboxError(f"cannot start {SANDBOX_DIR} afresh: {e}") from None
    context = settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    context.update(customersDir=str(root / "customers"), backend={"type": "local"})
    (root / "cdktf.json").write_text(json.dumps({"context": context}, indent=2))
    return {CUSTOMERS_DIR_ENV: str(root / "customers"), SETTINGS_ENV: str(root / "cdktf.json"),
            **{variable: str(root / name) for variable, name in MAKE_DIRS.items()}}


def create_deployer(emulator: Emulator, customer: Customer) -> None:
    """The role the emulator's credentials for the customer's account stand for, an administrator, as a
    deployer's own role would be (preflight reads it)."""
    iam = emulator.client("iam", customer.account_id, customer.region)
    iam.create_role(RoleName=DEPLOYER_ROLE, AssumeRolePolicyDocument=_trust(customer.account_id))
    iam.put_role_policy(RoleName=DEPLOYER_ROLE, PolicyName="administrator", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))


def _write_customer(emulator: Emulator, customer: Customer, root: Path, shared: dict[str, str]) -> None:
    """Create the deployer's role and the customer's side; write its file with the sandbox's ids, and its
    environment file."""
    create_deployer(emulator, customer)
    text = create_customer_side(emulator, customer, (PROJECT_ROOT / customer.source).read_text())
    (root / "customers" / f"{customer.name}.toml").write_text(text)
    if peering := customer.peering:
        role = " and the accepter role" if peering.accepter_role_arn else ""
        print(f"sandbox: {customer.name}: created its VPC ({', '.join(peering.cidrs)}), "
              f"{len(peering.route_table_ids)} route table(s){role} in account {peering.account_id} "
              f"({customer.peer_region})")
    variables = {**emulator.variables(customer.account_id, customer.region), **shared}
    env_file = root / "env" / f"{customer.name}.sh"
    env_file.write_text(f"# {customer.name}'s account {customer.account_id} in the sandbox at {emulator.endpoint}; "
                        "its keys are moto's fake keys, valid only there while it runs.\n"
                        f"unset {' '.join(SCRUBBED)}\n"
                        + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items()))
    env_file.chmod(0o600)
