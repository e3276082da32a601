"""An endpoint that is not AWS (an HTML page, as moto gives for calls it lacks) or no endpoint at all:
preflight and verify end in a one-line FAIL row, never a traceback."""

from __future__ import annotations

import json

import pytest

from dataplane.ops.cli import main
from dataplane.project import CUSTOMERS_DIR_ENV
from tests.conftest import FIXTURES
from tests.emulator import FAKE_KEYS
from tests.garbage_endpoint import BROKEN, NO_RETRIES, broken_endpoint


@pytest.mark.parametrize("kind", BROKEN)
@pytest.mark.parametrize(("command", "first_row"), [("preflight", "identity"), ("verify", "assume role")])
def test_broken_endpoint_is_a_fail_row_not_a_traceback(monkeypatch, capsys, kind, command, first_row):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    for name, value in {**FAKE_KEYS, **NO_RETRIES}.items():
        monkeypatch.setenv(name, value)
    with broken_endpoint(kind) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        assert main([command, "globex", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    [row] = result["checks"]
    assert (result["ok"], row["check"], row["status"]) == (False, first_row, "FAIL")
    assert "\n" not in row["reason"]
    assert row["reason"].startswith(
        f'Could not connect to the endpoint URL: "{url}/"' if kind == "closed-port" else
        "unparseable answer: Unable to parse response (syntax error: line 1, column 0), invalid XML received")
