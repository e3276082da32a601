"""Shared fixtures: one jsii runtime per session, the fixture customers synthesized once.

The suite runs on three workers (pytest-xdist; much of an end-to-end test waits on the emulator and terraform),
one test module per worker at a time, so each module keeps its own emulator and its module-scoped deployments.

Tests never read the live fleet (`customers/`): the customers they rely on are fixtures in
`tests/fixtures/customers`, and `tests/test_live_fleet.py` checks the live fleet generically.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dataplane import runtime
from dataplane.config.settings import Settings, load_project
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import AWS_PROVIDER_VERSION, tool_environment
from tests.emulator import SCRUBBED, Emulator

SUMMARY = pytest.StashKey[list]()
"""`config.stash[SUMMARY]`: lines for the run's closing summary (workers hand theirs to the controller)."""
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "customers"
"""The customers tests rely on: `acme` (role only) and `globex` (network, cross-account peering)."""
EXTRA_FIXTURES = FIXTURES.parent / "customers-extra"
"""Fixture customers beyond the two examples (several ExternalIds, the tamper alarm), synthesized on their own."""


def pytest_configure(config):
    """Before any worker starts: install the aws provider into the shared plugin cache once.

    terraform's plugin cache is not safe for concurrent first installs; later inits only link to it.
    Every process (controller and workers) prepares the jsii runtime first, as `main.py` does.
    """
    runtime.prepare()
    if hasattr(config, "workerinput"):
        return
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "main.tf.json").write_text(json.dumps({"terraform": {"required_providers": {
            "aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSION}}}}))
        subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], cwd=directory,
                       env=tool_environment(), capture_output=True, timeout=600, check=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Tests using the emulator (or the sandbox's) are marked `deploys` (before `-m` selects: `make test-quick` leaves
    them out). End-to-end modules (those using it) first, in file order: the many quick modules then fill the workers
    to the end, instead of one worker finishing a long module alone."""
    for item in items:
        if {"emulator", "sandbox"} & set(getattr(item, "fixturenames", ())):  # a moto server, in-process or not
            item.add_marker(pytest.mark.deploys)
    e2e = {item.path for item in items if item.get_closest_marker("deploys")}
    items.sort(key=lambda item: item.path not in e2e)


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["summary"] = session.config.stash.get(SUMMARY, [])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    node.config.stash.setdefault(SUMMARY, []).extend(getattr(node, "workeroutput", {}).get("summary", []))


def pytest_terminal_summary(terminalreporter, config):
    """Figures tests recorded for the closing summary (for example the property tests' tally)."""
    for line in sorted(config.stash.get(SUMMARY, [])):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def project():
    """The checked-in settings and the fixture customers."""
    return load_project(customers_dir=FIXTURES)


@pytest.fixture(scope="session")
def settings(project) -> Settings:
    return project[0]


@pytest.fixture(scope="session")
def customers(project) -> dict:
    return {c.name: c for c in project[1]}


def run_main(outdir: Path, cwd: Path = PROJECT_ROOT, **env) -> subprocess.CompletedProcess:
    """Run the cdktf app the way `make synth` does, into `outdir`, on the fixture customers unless `env` says."""
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "main.py")], cwd=cwd, capture_output=True, text=True,
                          env={**tool_environment(), CUSTOMERS_DIR_ENV: str(FIXTURES), "CDKTF_OUTDIR": str(outdir),
                               **env}, timeout=600)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Path:
    """The fixture customers synthesized once by main.py, as `make synth` would; returns the outdir."""
    outdir = tmp_path_factory.mktemp("synth") / "cdktf.out"
    result = run_main(outdir)
    assert result.returncode == 0, result.stderr
    return outdir


def files(outdir: Path) -> dict[str, bytes]:
    """Every file of a synth output, by relative path, with its bytes."""
    return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*")) if p.is_file()}


def stack_json(outdir: Path, name: str) -> dict:
    return json.loads((outdir / "stacks" / name / "cdk.tf.json").read_text())


@pytest.fixture(scope="module")
def emulator():
    """One moto server per test module on 127.0.0.1, reset after each module."""
    server = Emulator()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def event_patterns_answered():
    """The emulator answers EventBridge's `TestEventPattern`, which moto 5.2.5 stubs (an empty answer, no `Result`),
    with moto's own pattern matcher: the one it routes `PutEvents` to rules with (its server runs in this process).
    Gives moto's own stub, for a test of an endpoint that does not answer the call."""
    from moto.events.models import EventPattern
    from moto.events.responses import EventsHandler

    def answer(handler: EventsHandler) -> str:
        pattern = EventPattern.load(handler._get_param("EventPattern"))
        return json.dumps({"Result": pattern.matches_event(json.loads(handler._get_param("Event")))})

    unanswered = EventsHandler.test_event_pattern
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EventsHandler, "test_event_pattern", answer)
        yield unanswered


@pytest.fixture
def aws_via_emulator(emulator, monkeypatch, tmp_path):
    """An empty emulator, reached through AWS_ENDPOINT_URL as boto3 would in real use; no local AWS config."""
    emulator.reset()
    for name in SCRUBBED + ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
