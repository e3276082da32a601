"""`python -m dataplane sandbox`: a fixture customer deploys into it with only what it prints, and Ctrl-C stops it
cleanly. The sandbox runs in its own directory, as `make sandbox` runs in the project's."""

from __future__ import annotations

import os
import re
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
from dataplane.ops.sandbox import create_customer_side, toml_text
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
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
    """The sandbox on the fixture customers in a fresh directory, ready: (process, port, directory, lines)."""
    directory, port = tmp_path_factory.mktemp("sandbox"), free_port()
    (directory / ".sandbox" / "customers").mkdir(parents=True)
    (directory / ".sandbox" / "customers" / "stale.toml").write_text("left by an earlier run\n")
    process = subprocess.Popen([*COMMAND, f"--port={port}"], cwd=directory, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, process.kill)
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


def test_it_starts_afresh_and_prints_how_to_activate_each_customer_and_no_key(sandbox):
    process, port, directory, lines = sandbox
    assert lines[0] == f"sandbox: moto on http://127.0.0.1:{port}, an offline AWS for every account (its keys are fake)"
    assert [line.strip() for line in lines if "make activate" in line] == [
        f"source .sandbox/env/{name}.sh && make activate CUSTOMER={name}" for name in ("acme", "globex")]
    for name in ("acme", "globex"):
        env = sourced(directory / ".sandbox" / "env" / f"{name}.sh")
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert all(env[key] not in "\n".join(lines) for key in KEYS)
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", "\n".join(lines))
    assert sorted(p.name for p in (directory / ".sandbox" / "customers").iterdir()) == ["acme.toml", "globex.toml"]


def test_a_second_sandbox_on_its_port_is_refused_and_leaves_it_alone(sandbox):
    process, port, directory, lines = sandbox
    env_file = directory / ".sandbox" / "env" / "globex.sh"
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
def test_globex_activates_with_what_the_sandbox_printed(sandbox):
    """Preflight, `make deploy` and verify with only the sourced environment file: the cross-account peering is
    active, and synth output, outputs and state stay in .sandbox."""
    process, port, directory, lines = sandbox
    [source] = [line.split()[1] for line in lines if line.endswith("CUSTOMER=globex")]
    env = sourced(directory / source)
    for argv in ([sys.executable, "-m", "dataplane", "preflight", "globex"],
                 ["make", "--no-print-directory", "deploy", "CUSTOMER=globex"],
                 [sys.executable, "-m", "dataplane", "verify", "globex"]):
        done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    sandbox_dir = directory / ".sandbox"
    assert {p.relative_to(sandbox_dir).as_posix() for p in sandbox_dir.glob("*/globex.*")} >= {
        "outputs/globex.json", "terraform-state/globex.tfstate"}
    peer_vpc = tomllib.loads((sandbox_dir / "customers" / "globex.toml").read_text())["peering"]["vpc_id"]
    ec2 = boto3.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                       **{key.lower(): env[key] for key in KEYS})
    [peering] = ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
    assert (peering["Status"]["Code"], peering["AccepterVpcInfo"]["VpcId"]) == ("active", peer_vpc)


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
