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
import subprocess
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
from dataplane import synth_output
from dataplane.fleet_location import ENVIRONMENT, FleetLocation
from dataplane.project import CUSTOMERS_DIR_ENV, OUTDIR_ENV, PROJECT_ROOT, SANDBOX_ENV, SETTINGS_ENV
from dataplane.runtime.toolchain import tool_environment

SANDBOX_DIR = Path(".sandbox")
"""Everything the sandbox writes, in the current directory; each run starts it afresh."""
FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
SCRUBBED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "MOTO_ACCOUNT_ID")
"""AWS settings that would take the tool elsewhere than the emulator's credentials."""
DEPLOYER_ROLE = "emulator-admin"
"""The role whose credentials `Emulator.credentials` hands out: the sandbox's vendor deployer."""
SANDBOX_FILE = "sandbox.json"
"""In the sandbox's directory: the customers directory its fleet came from, and the ids it gave (file's: sandbox's)."""
SANDBOX_SETTINGS = ("backend", "deployRoleName", "deployerPrincipalArn")
"""The settings the sandbox sets for itself (`sandbox_settings`, `_start_afresh`); a reviewed ref takes them too."""
SANDBOX_DEPLOY_ROLE = "dataplane-deployer"
"""The deploy role in every customer account when the settings name none (`deployRoleName`)."""
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


def run(settings: Settings, customers: list[Customer], port: int, source: Path) -> int:
    """Start the sandbox for `customers` (the files of directory `source`), say how to use it, and serve until
    SIGINT or SIGTERM; exit 0.

    The sandbox runs the fleet as the pipeline does: one identity, the vendor's deployer, assumes each customer's
    deploy role, which the customer's own bootstrap (`python -m dataplane bootstrap`) created in its account.
    The stop signals wait (blocked) until the sandbox is ready, so an early Ctrl-C still stops it cleanly.
    """
    sys.stdout.reconfigure(line_buffering=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    emulator = Emulator(port)
    try:
        print(f"sandbox: moto on {emulator.endpoint}, an offline AWS for every account (its keys are fake)")
        root, settings = SANDBOX_DIR.resolve(), sandbox_settings(settings)
        shared = _start_afresh(settings, root) | {SANDBOX_ENV: str(root)}
        ids = {}
        for customer in customers:
            ids |= _write_customer(emulator, customer, root)
        (root / SANDBOX_FILE).write_text(json.dumps({"source": str(source), "ids": ids}, indent=2, sort_keys=True))
        _bootstrap_every_account(emulator, settings, root, shared)
        vendor = settings.deployer_principal_arn.split(":")[4]
        env_file = root / "env.sh"
        env_file.write_text(f"# The vendor's deployer (account {vendor}) in the sandbox at {emulator.endpoint}: it "
                            "reaches every customer's account through the deploy role its bootstrap created. Its "
                            "keys are moto's fake keys, valid only there while it runs.\n"
                            f"unset {' '.join(SCRUBBED)}\n"
                            + "".join(f"export {k}={shlex.quote(v)}\n"
                                      for k, v in {**emulator.variables(vendor, "us-east-1"), **shared}.items()))
        env_file.chmod(0o600)
        print(f"sandbox: wrote {SANDBOX_DIR}/customers (the fleet with the sandbox's ids) and {SANDBOX_DIR}/env.sh "
              f"(the deployer's fake keys, AWS_ENDPOINT_URL; synth output, state, outputs and records stay in "
              f"{SANDBOX_DIR})")
        print("In another terminal, take the deployer's identity, then activate, list, drift and destroy:")
        print(f"  source {SANDBOX_DIR}/env.sh")
        for customer in customers:
            print(f"  make activate CUSTOMER={customer.name}")
        print("sandbox: ready; Ctrl-C stops it")
        signal.sigwait(STOP_SIGNALS)
    finally:
        emulator.stop()
    print("sandbox: stopped; its resources and credentials are gone")
    return 0


def sandbox_settings(settings: Settings) -> Settings:
    """The settings the sandbox runs: the vendor's deployer is its own identity (in the account of the settings'
    `deployerPrincipalArn`, else the control plane's), and every customer account has a deploy role."""
    account = (settings.deployer_principal_arn.split(":")[4] if settings.deployer_principal_arn
               else settings.control_plane_account_id)
    return settings.model_copy(update={"deploy_role_name": settings.deploy_role_name or SANDBOX_DEPLOY_ROLE,
                                       "deployer_principal_arn": f"arn:aws:iam::{account}:role/{DEPLOYER_ROLE}"})


def _start_afresh(settings: Settings, root: Path) -> dict[str, str]:
    """An empty `root` holding `settings` with local state; the variables every command shares.

    Local state in `root` keeps the sandbox's state away from the real one, whatever the project's backend.
    """
    if left := _left_behind(root):
        print(f"sandbox: removing the last sandbox's {SANDBOX_DIR} ({left}); its AWS resources ended with it")
    try:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(root)
        (root / "customers").mkdir(parents=True)
    except OSError as e:
        raise SandboxError(f"cannot start {SANDBOX_DIR} afresh: {e}") from None
    context = settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    context.update(customersDir=str(root / "customers"), backend={"type": "local"})
    (root / "cdktf.json").write_text(json.dumps({"context": context}, indent=2))
    return {CUSTOMERS_DIR_ENV: str(root / "customers"), SETTINGS_ENV: str(root / "cdktf.json"),
            **FleetLocation().under(root).variables()}


def _left_behind(root: Path) -> str:
    """What an earlier sandbox left in `root`, a phrase: `3 files in terraform-state, 1 in activations`."""
    if not root.is_dir():
        return ""
    counts = {d.name: sum(1 for f in d.rglob("*") if f.is_file()) for d in sorted(root.iterdir()) if d.is_dir()}
    parts = [f"{n} file(s) in {name}" for name, n in counts.items() if n]
    return ", ".join(parts) or "nothing but settings"


def create_deployer(emulator: Emulator, customer: Customer) -> None:
    """The role the emulator's credentials for the customer's account stand for, an administrator, as a
    deployer's own role would be (preflight reads it)."""
    iam = emulator.client("iam", customer.account_id, customer.region)
    iam.create_role(RoleName=DEPLOYER_ROLE, AssumeRolePolicyDocument=_trust(customer.account_id))
    iam.put_role_policy(RoleName=DEPLOYER_ROLE, PolicyName="administrator", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))


def _write_customer(emulator: Emulator, customer: Customer, root: Path) -> dict[str, str]:
    """Create the customer's side and write its file with the sandbox's ids; return them, by the file's ids."""
    text = create_customer_side(emulator, customer, (PROJECT_ROOT / customer.source).read_text())
    (root / "customers" / f"{customer.name}.toml").write_text(text)
    if not (peering := customer.peering):
        return {}
    role = " and the accepter role" if peering.accepter_role_arn else ""
    print(f"sandbox: {customer.name}: created its VPC ({', '.join(peering.cidrs)}), "
          f"{len(peering.route_table_ids)} route table(s){role} in account {peering.account_id} "
          f"({customer.peer_region})")
    given = tomllib.loads(text)["peering"]
    return dict(zip([peering.vpc_id, *peering.route_table_ids], [given["vpc_id"], *given["route_table_ids"]]))


def as_in_sandbox(worktree: Path, root: Path) -> None:
    """Make `worktree`, a checked-out ref, synthesize as the sandbox in `root` runs the working tree, so that a
    review in the sandbox's shell compares like with like: the sandbox's identity and local state in its settings,
    and the sandbox's ids for the customers' own resources in its customer files (each file parsed and rewritten)."""
    ids = json.loads((root / SANDBOX_FILE).read_text())["ids"]
    ours = json.loads((root / "cdktf.json").read_text())["context"]
    project = worktree / "cdktf.json"
    document = json.loads(project.read_text())
    document["context"].update({key: ours[key] for key in SANDBOX_SETTINGS if key in ours})
    project.write_text(json.dumps(document, indent=2))
    for path in sorted((worktree / document["context"].get("customersDir", "customers")).glob("*.toml")):
        data = tomllib.loads(path.read_text())
        if isinstance(peering := data.get("peering"), dict):
            peering["vpc_id"] = ids.get(peering.get("vpc_id"), peering.get("vpc_id"))
            peering["route_table_ids"] = [ids.get(i, i) for i in peering.get("route_table_ids", [])]
            path.write_text(toml_text(data))


def launch_bootstrap(emulator: Emulator, customer: Customer, template: dict) -> None:
    """Launch `template`, a bootstrap, through the emulator's CloudFormation in `customer`'s account, as the customer
    would; raise `SandboxError` when the stack is not created."""
    from dataplane.ops.account import bootstrap

    cfn = emulator.client("cloudformation", customer.account_id, customer.region)
    cfn.create_stack(StackName=bootstrap.STACK_NAME, TemplateBody=json.dumps(template),
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    if (status := cfn.describe_stacks(StackName=bootstrap.STACK_NAME)["Stacks"][0]["StackStatus"]) != "CREATE_COMPLETE":
        raise SandboxError(f"{customer.name}: the bootstrap stack ended {status}")
    role = template["Resources"]["DeployRole"]["Properties"]  # moto 5.2.5's CloudFormation stores an inline policy as
    emulator.client("iam", customer.account_id, customer.region).put_role_policy(  # Python's repr: put it as JSON
        RoleName=role["RoleName"], PolicyName=bootstrap.POLICY_NAME,
        PolicyDocument=json.dumps(role["Policies"][0]["PolicyDocument"]))


def _bootstrap_every_account(emulator: Emulator, settings: Settings, root: Path, shared: dict[str, str]) -> None:
    """Synthesize the sandbox's fleet once, then launch each customer's bootstrap template in its account as the
    customer would (CloudFormation), and the read-only plan role when the settings name one."""
    from dataplane.config.customer import load_customers
    from dataplane.ops.account import bootstrap
    from dataplane.ops.pipeline.ci_roles import READ_ACTIONS

    outdir = Path(shared[ENVIRONMENT["synth_out"]])
    done = subprocess.run([sys.executable, "-O", str(PROJECT_ROOT / "main.py")], cwd=PROJECT_ROOT,
                          env={**tool_environment(), **shared, OUTDIR_ENV: str(outdir)},
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SandboxError(f"cannot synthesize the fleet for the bootstraps: {done.stderr.strip()}")
    vendor = settings.deployer_principal_arn.split(":")[4]
    emulator.client("iam", vendor, "us-east-1").create_role(RoleName=DEPLOYER_ROLE,
                                                            AssumeRolePolicyDocument=_trust(vendor))
    for customer in load_customers(Path(shared[CUSTOMERS_DIR_ENV]), settings.control_plane_account_id):
        stack = json.loads((synth_output.stack_dir(outdir, customer.name) / synth_output.STACK_FILE).read_text())
        launch_bootstrap(emulator, customer, bootstrap.template(stack, settings, customer))
        if settings.plan_role_name:
            iam = emulator.client("iam", customer.account_id, customer.region)
            iam.create_role(RoleName=settings.plan_role_name, AssumeRolePolicyDocument=_trust(vendor))
            iam.put_role_policy(RoleName=settings.plan_role_name, PolicyName="read-only", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": sorted(READ_ACTIONS), "Resource": "*"}]}))
        print(f"sandbox: {customer.name}: launched its bootstrap in account {customer.account_id}: role "
              f"{settings.deploy_role_name} for the deployer")
