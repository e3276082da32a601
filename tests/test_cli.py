"""The CLI as a shell uses it: a closed pipe and `--format` on every command with JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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
