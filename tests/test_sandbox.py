"""`python -m dataplane sandbox`: a fixture customer deploys into it with only what it prints, and Ctrl-C stops it
cleanly. The sandbox runs in its own directory, as `make sandbox` runs in the project's."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import boto3
import psutil
import pytest

from hypothesis import given
from hypothesis import strategies as st

from dataplane.config.customer import load_customer
from dataplane.config.settings import load_project
from dataplane.ops.account import bootstrap
from dataplane.ops.sandbox import as_in_sandbox, create_customer_side, toml_text
from dataplane.project import CUSTOMERS_DIR_ENV, OUTDIR_ENV, PROJECT_ROOT, SANDBOX_ENV, SETTINGS_ENV
from tests.conftest import FIXTURES

COMMAND = [sys.executable, "-m", "dataplane", "sandbox"]
ENV = {**os.environ, CUSTOMERS_DIR_ENV: str(FIXTURES), "PYTHONPATH": str(PROJECT_ROOT)}
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def sourced(env_file: Path) -> dict[str, str]:
    """The environment after `source <env_file>` in bash: the engineer's second terminal."""
    done = subprocess.run(["bash", "-c", 'source "$1" && env -0', "_", str(env_file)], capture_output=True,
                          check=True, env=os.environ)
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The sandbox on a copy of the fixture customers in a fresh directory, ready: (process, port, directory,
    lines); the copy is `directory / "customers"`."""
    directory, port = tmp_path_factory.mktemp("sandbox"), free_port()
    shutil.copytree(FIXTURES, directory / "customers")
    (directory / ".sandbox" / "customers").mkdir(parents=True)
    (directory / ".sandbox" / "customers" / "stale.toml").write_text("left by an earlier run\n")
    process = subprocess.Popen([*COMMAND, f"--port={port}", f"--customers-dir={directory / 'customers'}"],
                               cwd=directory, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    lines = []
    while not lines or not lines[-1].startswith("sandbox: ready"):
        line = process.stdout.readline()
        assert line, f"the sandbox ended before it was ready:\n{''.join(lines)}{process.stderr.read()}"
        lines.append(line.rstrip("\n"))
    watchdog.cancel()
    yield process, port, directory, lines
    if process.poll() is None:
        process.kill()
        process.wait()


def in_sandbox(directory: Path) -> dict[str, str]:
    """The engineer's second terminal: `source .sandbox/env.sh`, as the sandbox printed."""
    return sourced(directory / ".sandbox" / "env.sh")


def project_of(env: dict[str, str]):
    """The settings and customers the sandbox's shell runs with."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CUSTOMERS_DIR_ENV, env[CUSTOMERS_DIR_ENV])
        return load_project(Path(env[SETTINGS_ENV]))


def as_deployer(env: dict[str, str], service: str, account: str, region: str = "us-east-1"):
    """A client of `service` in `account`, reached as the pipeline reaches it: the env's identity assumes the
    account's deploy role."""
    vendor = boto3.Session(region_name=region, **{key.lower(): env[key] for key in KEYS})
    role = project_of(env)[0].deploy_role_arn(account)
    keys = vendor.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"]).assume_role(
        RoleArn=role, RoleSessionName="test")["Credentials"]
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=region,
                        aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"],
                        aws_session_token=keys["SessionToken"])


def test_it_starts_afresh_and_prints_how_to_activate_each_customer_and_no_key(sandbox):
    process, port, directory, lines = sandbox
    assert lines[0] == f"sandbox: moto on http://127.0.0.1:{port}, an offline AWS for every account (its keys are fake)"
    assert lines[1] == ("sandbox: removing the last sandbox's .sandbox (1 file(s) in customers); its AWS resources "
                        "ended with it")
    assert [line.strip() for line in lines if line.startswith("  ")] == [
        "source .sandbox/env.sh", "make activate CUSTOMER=acme", "make activate CUSTOMER=globex"]
    env = in_sandbox(directory)
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
    assert all(env[key] not in "\n".join(lines) for key in KEYS)
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", "\n".join(lines))
    assert sorted(p.name for p in (directory / ".sandbox" / "customers").iterdir()) == ["acme.toml", "globex.toml"]


def test_one_identity_reaches_every_customer_account_through_the_deploy_role_its_bootstrap_created(sandbox):
    """The env file holds the vendor deployer's keys, not a customer account's: each account is reached as the
    pipeline reaches it, by assuming the deploy role the customer's bootstrap template created there."""
    process, port, directory, lines = sandbox
    env = in_sandbox(directory)
    session = boto3.Session(region_name="us-east-1", **{key.lower(): env[key] for key in KEYS})
    me = session.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"]).get_caller_identity()
    settings, customers = project_of(env)
    assert me["Arn"].startswith(f"arn:aws:sts::{settings.deployer_principal_arn.split(':')[4]}:assumed-role/")
    assert all(me["Account"] != c.account_id for c in load_project(customers_dir=FIXTURES)[1])
    for customer in customers:
        iam = as_deployer(env, "iam", customer.account_id)
        role = iam.get_role(RoleName=settings.deploy_role_name)["Role"]
        assert {t["Key"]: t["Value"] for t in role["Tags"]}["managed-by"] == bootstrap.MANAGER
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "AWS": settings.deployer_principal_arn}


def test_a_second_sandbox_on_its_port_is_refused_and_leaves_it_alone(sandbox):
    process, port, directory, lines = sandbox
    env_file = directory / ".sandbox" / "env.sh"
    before = env_file.read_text()
    second = subprocess.run([*COMMAND, f"--port={port}"], cwd=directory, env=ENV, capture_output=True, text=True,
                            timeout=60)
    assert (second.returncode, second.stdout) == (2, "")
    assert second.stderr == (f"sandbox: port {port} on 127.0.0.1 is in use (another sandbox?); choose another: "
                             "--port P (make sandbox PORT=P)\n")
    assert env_file.read_text() == before


def test_an_invalid_customers_dir_is_one_line(tmp_path):
    done = subprocess.run([*COMMAND, "--port=0", f"--customers-dir={tmp_path / 'none'}"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"sandbox: {tmp_path / 'none'}: customersDir: directory does not exist\n"
    assert not (tmp_path / ".sandbox").exists()


@pytest.mark.deploys
def test_in_one_shell_activate_list_drift_and_destroy_agree(sandbox):
    """The quick start, with only the sourced env file: `make activate`, then `list` and `make drift` see what it
    deployed (state, outputs and records stay in .sandbox), and `make destroy` takes it away again."""
    process, port, directory, lines = sandbox
    env = in_sandbox(directory)

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)

    activated = run("make", "--no-print-directory", "activate", "CUSTOMER=globex")
    assert activated.returncode == 0, activated.stdout + activated.stderr
    sandbox_dir = directory / ".sandbox"
    assert {p.relative_to(sandbox_dir).as_posix() for p in sandbox_dir.glob("*/globex.*")} >= {
        "outputs/globex.json", "terraform-state/globex.tfstate", "activations/globex.json"}
    peer_vpc = tomllib.loads((sandbox_dir / "customers" / "globex.toml").read_text())["peering"]["vpc_id"]
    [peering] = as_deployer(env, "ec2", "210987654321", "us-west-2").describe_vpc_peering_connections()[
        "VpcPeeringConnections"]
    assert (peering["Status"]["Code"], peering["AccepterVpcInfo"]["VpcId"]) == ("active", peer_vpc)

    listed = run(sys.executable, "-m", "dataplane", "list", "--format", "json")
    assert {c["name"]: c["state"]["deployed"] for c in json.loads(listed.stdout)["customers"]} == {
        "acme": False, "globex": True}
    drift = run("make", "--no-print-directory", "drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    assert "- In sync (1): `globex`\n- Not deployed (1): `acme`\n" in drift.stdout

    destroyed = run("make", "--no-print-directory", "destroy", "CUSTOMER=globex", "YES=1")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    listed = run(sys.executable, "-m", "dataplane", "list", "--format", "json")
    assert {c["name"]: c["state"]["deployed"] for c in json.loads(listed.stdout)["customers"]} == {
        "acme": False, "globex": False}


def test_a_customer_added_after_the_sandbox_started_is_named_with_the_restart_it_needs(sandbox):
    process, port, directory, lines = sandbox
    text = (directory / "customers" / "acme.toml").read_text()
    (directory / "customers" / "wayne.toml").write_text(text.replace("123456789012", "123456789099"))
    try:
        for argv in ([sys.executable, "-m", "dataplane", "customer", "wayne"],
                     ["make", "--no-print-directory", "activate", "CUSTOMER=wayne"]):
            done = subprocess.run(argv, cwd=PROJECT_ROOT, env=in_sandbox(directory), capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 2 and done.stdout == ""
            assert done.stderr.splitlines()[0] == (
                f"no customer 'wayne' in the sandbox: {directory / 'customers' / 'wayne'}.toml was added after it "
                "started; restart the sandbox to include wayne")
    finally:
        (directory / "customers" / "wayne.toml").unlink()


def test_a_review_in_the_sandbox_compares_like_with_like(sandbox, tmp_path):
    """A ref's synth in the sandbox's shell takes the sandbox's identity, state and ids (`as_in_sandbox`): the
    committed fleet against the sandbox's copy of it is no change at all, not an invented replacement."""
    process, port, directory, lines = sandbox
    env = in_sandbox(directory)
    worktree = tmp_path / "worktree"
    shutil.copytree(directory / "customers", worktree / "customers")
    (worktree / "cdktf.json").write_text((PROJECT_ROOT / "cdktf.json").read_text())
    as_in_sandbox(worktree, Path(env[SANDBOX_ENV]))
    base_env = {**env, SETTINGS_ENV: str(worktree / "cdktf.json"), CUSTOMERS_DIR_ENV: str(worktree / "customers")}
    for side, side_env in (("base", base_env), ("head", env)):
        done = subprocess.run([sys.executable, "-O", "main.py"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              env={**side_env, OUTDIR_ENV: str(tmp_path / f"{side}.out")}, timeout=300)
        assert done.returncode == 0, done.stderr
    reviewed = subprocess.run([sys.executable, "-m", "dataplane", "review", "--base", str(tmp_path / "base.out"),
                               "--head", str(tmp_path / "head.out"), "--affected"], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert (reviewed.returncode, reviewed.stdout) == (0, ""), reviewed.stderr


def test_ctrl_c_stops_it_cleanly(sandbox):
    process, port, directory, lines = sandbox
    started = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert (process.stdout.read(), process.stderr.read()) == (
        "sandbox: stopped; its resources and credentials are gone\n", "")
    assert not [p for p in started if p.is_running()], "nothing the sandbox started outlives it"
    assert port_free(port)


TRAPS = (FIXTURES / "globex.toml").read_text().replace('external_id = "astro-8d41a6c0"', """\
# moved from vpc-0a1b2c3d4e5f60718 (see rtb-0a1b2c3d4e5f60718)
external_id = ["vpc-0a1b2c3d4e5f60718", "rtb-0a1b2c3d4e5f60718x"]""")
"""Globex's file where its peering ids also appear in a comment, as another field's values and inside one: text
replacement would rewrite the ExternalIds the control plane issued."""


def test_the_sandbox_sets_the_peering_ids_in_the_parsed_file_and_nothing_else(emulator, settings, tmp_path):
    emulator.reset()
    source = tmp_path / "original" / "globex.toml"
    source.parent.mkdir()
    source.write_text(TRAPS)
    customer = load_customer(source, settings.control_plane_account_id)
    copy = tmp_path / "sandbox" / "globex.toml"
    copy.parent.mkdir()
    copy.write_text(create_customer_side(emulator, customer, TRAPS))
    ec2 = emulator.client("ec2", customer.peering.account_id, customer.peer_region)
    [vpc] = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]]
    tables = [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "RouteTables"] if not any(a.get("Main") for a in t.get("Associations", []))]
    original = tomllib.loads(TRAPS)
    assert tomllib.loads(copy.read_text()) == {**original, "peering": {
        **original["peering"], "vpc_id": vpc, "route_table_ids": tables}}
    sandboxed = load_customer(copy, settings.control_plane_account_id)
    assert sandboxed.external_ids == ("vpc-0a1b2c3d4e5f60718", "rtb-0a1b2c3d4e5f60718x")
    assert (sandboxed.peering.vpc_id, sandboxed.peering.route_table_ids) == (vpc, tuple(tables))


TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
VALUES = st.one_of(TEXT, st.lists(TEXT, max_size=4))


@given(st.dictionaries(TEXT, st.one_of(VALUES, st.dictionaries(TEXT, VALUES, max_size=4)), max_size=6))
def test_toml_text_parses_back_to_exactly_what_it_was_given(data):
    assert tomllib.loads(toml_text(data)) == data
