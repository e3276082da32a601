"""Shared fixtures: one jsii runtime per session, the example fleet synthesized once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dataplane  # noqa: F401  (first: it prepares the jsii runtime)
from dataplane.settings import PROJECT_ROOT, Settings, load_project
from dataplane.toolchain import tool_environment
from tests.emulator import SCRUBBED, Emulator

SUMMARY = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, config):
    """Figures tests recorded for the closing summary (for example the property tests' tally)."""
    for line in config.stash.get(SUMMARY, []):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def project():
    """The checked-in settings and example customers."""
    return load_project()


@pytest.fixture(scope="session")
def settings(project) -> Settings:
    return project[0]


@pytest.fixture(scope="session")
def customers(project) -> dict:
    return {c.name: c for c in project[1]}


def run_main(outdir: Path, cwd: Path = PROJECT_ROOT, **env) -> subprocess.CompletedProcess:
    """Run the cdktf app the way `make synth` does, into `outdir`."""
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "main.py")], cwd=cwd, capture_output=True, text=True,
                          env={**tool_environment(), "CDKTF_OUTDIR": str(outdir), **env}, timeout=600)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Path:
    """The example fleet synthesized once by main.py, as `make synth` would; returns the outdir."""
    outdir = tmp_path_factory.mktemp("synth") / "cdktf.out"
    result = run_main(outdir)
    assert result.returncode == 0, result.stderr
    return outdir


def stack_json(outdir: Path, name: str) -> dict:
    return json.loads((outdir / "stacks" / name / "cdk.tf.json").read_text())


@pytest.fixture(scope="module")
def emulator():
    """One moto server per test module on 127.0.0.1, reset after each module."""
    server = Emulator()
    yield server
    server.stop()


@pytest.fixture
def aws_via_emulator(emulator, monkeypatch, tmp_path):
    """An empty emulator, reached through AWS_ENDPOINT_URL as boto3 would in real use; no local AWS config."""
    emulator.reset()
    for name in SCRUBBED + ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
