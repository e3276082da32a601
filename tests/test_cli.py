"""The CLI as a shell uses it: a closed pipe and `--format` on every command with JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataplane.ops import cli
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES

ENV = {**tool_environment(), CUSTOMERS_DIR_ENV: str(FIXTURES)}


def dataplane(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dataplane", *args], cwd=PROJECT_ROOT, env=ENV,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_reader_that_closes_the_pipe_gets_no_traceback(tmp_path):
    """`list --format json | head -c1`: the reader is gone before the command writes."""
    reader, writer = os.pipe()
    os.close(reader)
    command = dataplane("list", "--format", "json", "--outdir", str(tmp_path / "cdktf.out"), stdout=writer)
    os.close(writer)
    _, stderr = command.communicate(timeout=120)
    assert command.returncode == 141 and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("flag", [["--format", "json"], ["--json"]])
def test_list_speaks_json_by_format_or_its_alias(tmp_path, flag):
    command = dataplane("list", *flag, "--outdir", str(tmp_path / "cdktf.out"), stdout=subprocess.PIPE)
    stdout, stderr = command.communicate(timeout=120)
    assert command.returncode == 0, stderr
    assert {c["name"] for c in json.loads(stdout)["customers"]} == {"acme", "globex"}


def test_destroy_off_a_terminal_needs_yes_and_destroys_nothing(tmp_path):
    command = dataplane("destroy", "--outdir", str(tmp_path / "cdktf.out"), "acme", stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE)
    _, stderr = command.communicate(timeout=120)
    assert command.returncode == 2
    assert stderr == ("destroy: acme: not confirmed: on a terminal, type the name when asked; elsewhere pass --yes "
                      "(make: YES=1)\n")
    assert not (tmp_path / "cdktf.out").exists()


def test_destroy_on_a_terminal_asks_for_the_name_and_stops_on_another(tmp_path):
    terminal, user = os.openpty()
    command = dataplane("destroy", "--outdir", str(tmp_path / "cdktf.out"), "acme", stdin=user,
                        stdout=subprocess.PIPE)
    os.write(terminal, b"globex\n")
    _, stderr = command.communicate(timeout=120)
    os.close(user)
    os.close(terminal)
    assert (command.returncode, stderr) == (1, "Destroy acme's data plane in account 123456789012? Type acme to "
                                               "confirm: destroy: acme: not confirmed; nothing was changed\n")
    assert not (tmp_path / "cdktf.out").exists()


def test_help_lists_every_command_once_with_the_everyday_ones_apart_from_the_plumbing():
    shown = subprocess.run([sys.executable, "-m", "dataplane", "--help"], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: python -m dataplane [-h] COMMAND ...")
    everyday, plumbing = shown.stdout.split("everyday commands:\n")[1].split("\npipeline plumbing and set-up:\n")
    listed = {title: [line.split()[0] for line in text.splitlines() if line.startswith("  ")]
              for title, text in (("everyday", everyday), ("plumbing", plumbing))}
    assert {"activate", "deploy", "plan", "verify", "list", "drift", "destroy"} <= set(listed["everyday"])
    assert {"matrix", "comment", "terraformrc", "customer", "synth-ref", "plan-stacks"} <= set(listed["plumbing"])
    commands = cli.parser()._subparsers._group_actions[0].choices
    assert sorted(listed["everyday"] + listed["plumbing"]) == sorted(commands)


def test_an_unexpected_error_is_one_line_naming_the_file_that_keeps_its_traceback(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("state answered nonsense")

    monkeypatch.setattr(cli, "_known", broken)
    assert cli.main(["customer", "acme"]) == 1
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert out == "" and line.startswith("python -m dataplane customer: unexpected error: RuntimeError: state answered "
                                         "nonsense (a bug: please report it with ")
    kept = Path(line.rsplit(" ", 1)[1].rstrip(")"))
    assert "Traceback" in kept.read_text() and "state answered nonsense" in kept.read_text()
    kept.unlink()
