"""One place says where the fleet lives (`dataplane/fleet_location.py`), and every command reads it: the environment
the sandbox writes (the Makefile's variable names) moves every command's files, and a flag still wins."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dataplane.fleet_location import ENVIRONMENT, FleetLocation, fleet_location
from dataplane.ops import cli
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES
from tests.test_fleet_list import DEPLOYED, write_states


@pytest.fixture
def moved(tmp_path, monkeypatch) -> FleetLocation:
    """Every location set through the environment, each to its own directory under `tmp_path`."""
    where = FleetLocation().under(tmp_path / "fleet")
    for variable, value in where.variables().items():
        monkeypatch.setenv(variable, value)
    return where


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return cli.parser()._subparsers._group_actions[0].choices


def path_defaults(command: argparse.ArgumentParser) -> dict[str, Path]:
    return {a.dest: a.default for a in command._actions if isinstance(a.default, Path)}


def test_defaults_then_the_environment():
    assert fleet_location({}) == FleetLocation()
    assert fleet_location({"CDKTF_OUT": "/x/out", "RECORDS": "/x/records", "PLANS": ""}) == FleetLocation(
        synth_out=Path("/x/out"), records=Path("/x/records"))


def test_the_sandbox_layout_names_every_location_once():
    where = FleetLocation().under(Path("/s"))
    assert where.variables() == {variable: f"/s/{getattr(FleetLocation(), name).name}"
                                 for name, variable in ENVIRONMENT.items()}
    assert len(set(where.variables().values())) == len(ENVIRONMENT)


def test_every_location_a_command_reads_or_writes_comes_from_the_environment(moved):
    """No command keeps a location of its own: each path default is one of the fleet's, as the environment set it."""
    fleet = {Path(v) for v in moved.variables().values()}
    defaults = {name: path_defaults(command) for name, command in subcommands().items()}
    assert {(name, dest) for name, paths in defaults.items() for dest, path in paths.items()
            if path not in fleet} == set()
    expected = {"list": {"outdir": moved.synth_out}, "drift": {"outdir": moved.synth_out},
                "plan": {"outdir": moved.synth_out}, "adopt": {"outdir": moved.synth_out},
                "unlock": {"outdir": moved.synth_out}, "gate": {"outdir": moved.synth_out},
                "plan-stacks": {"outdir": moved.synth_out, "out": moved.plans},
                "deploy": {"outdir": moved.synth_out, "outputs_dir": moved.outputs},
                "activate": {"outdir": moved.synth_out, "outputs_dir": moved.outputs, "records_dir": moved.records},
                "destroy": {"outdir": moved.synth_out, "records_dir": moved.records},
                "rollout": {"outdir": moved.synth_out, "records_dir": moved.rollouts, "outputs_dir": moved.outputs},
                "bootstrap": {"out": moved.bootstrap}}
    for name, paths in expected.items():
        assert paths.items() <= defaults[name].items(), name


def test_a_flag_wins_over_the_environment(moved, tmp_path):
    args = cli.parser().parse_args(["list", "--outdir", str(tmp_path / "mine")])
    assert args.outdir == tmp_path / "mine"


def test_list_reads_the_state_beside_the_environments_synth_output(moved):
    """The sandbox's env file sets CDKTF_OUT: `list` then finds what an activation there deployed."""
    write_states(moved.synth_out.parent / "terraform-state", {"acme": DEPLOYED})
    env = tool_environment() | moved.variables() | {CUSTOMERS_DIR_ENV: str(FIXTURES)}
    listed = subprocess.run([sys.executable, "-m", "dataplane", "list", "--format", "json"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    deployed = {c["name"]: c["state"]["deployed"] for c in json.loads(listed.stdout)["customers"]}
    assert deployed == {"acme": True, "globex": False}


def test_the_synth_writes_where_the_environment_says(moved):
    synth = subprocess.run([sys.executable, "-O", "main.py", "--customer", "acme"], cwd=PROJECT_ROOT,
                           env=tool_environment() | moved.variables() | {CUSTOMERS_DIR_ENV: str(FIXTURES)},
                           capture_output=True, text=True, timeout=300)
    assert synth.returncode == 0, synth.stderr
    assert (moved.synth_out / "stacks" / "acme" / "cdk.tf.json").is_file()
