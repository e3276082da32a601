"""The documented make targets refuse bad input before anything runs (`tests/test_deploy_e2e.py` runs them for real)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES

CUSTOMER_TARGETS = ("plan", "deploy", "destroy", "adopt", "unlock")


def make(*args: str, cwd=PROJECT_ROOT) -> subprocess.CompletedProcess:
    env = {**tool_environment(), CUSTOMERS_DIR_ENV: str(FIXTURES)}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_make_deploy_without_customer_is_a_usage_error():
    result = make("deploy")
    assert result.returncode == 2 and "usage: make deploy CUSTOMER=<name>" in result.stderr


def one_line(result: subprocess.CompletedProcess) -> str:
    """The one line a refused make target printed on stderr (besides make's own `*** Error` line)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    first, *rest = result.stderr.splitlines()
    assert all(re.match(r"make(\[\d+\])?: \*\*\* ", line) for line in rest), result.stderr
    return first


def refused(target: str, name: str) -> None:
    """`make <target> CUSTOMER=<name>` says only that there is no such customer, and runs nothing."""
    result = make(target, f"CUSTOMER={name}")
    assert one_line(result) == f"no customer {name!r}; known: acme, globex", target
    assert "cdktf" not in result.stdout


@pytest.mark.parametrize("name", ["acme; touch {marker} #", "acme$$(touch {marker})", "acme$(shell touch {marker})",
                                  'acme"; touch {marker}; "', "acme `touch {marker}`"])
def test_a_customer_name_is_never_shell_or_make_code(tmp_path, name):
    marker = tmp_path / "injected"
    for target in ("plan", "deploy"):
        refused(target, name.format(marker=marker))
    assert not marker.exists()


@pytest.mark.parametrize("target", CUSTOMER_TARGETS)
def test_an_unknown_or_option_like_customer_is_one_line_exit_2(target):
    for name in ("initech", "--help"):
        refused(target, name)


@pytest.mark.parametrize("command", ["adopt", "deploy", "plan", "destroy", "preflight", "verify", "unlock"])
def test_every_command_taking_a_customer_refuses_an_unknown_one_alike(command):
    result = subprocess.run([sys.executable, "-m", "dataplane", command, "--", "acme/../x"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**tool_environment(), CUSTOMERS_DIR_ENV: str(FIXTURES)})
    assert (result.returncode, result.stderr) == (2, "no customer 'acme/../x'; known: acme, globex\n")


def test_review_base_must_be_a_git_commit_and_is_never_shell_code(tmp_path):
    marker = tmp_path / "injected"
    for base in (f'HEAD"; touch {marker}; "', f"HEAD$(touch {marker})", "--help", "no-such-ref"):
        result = make("-s", "review", f"BASE={base}")
        assert one_line(result) == f"BASE '{base}' is not a git commit (git rev-parse --verify)"
    arguments = make("-s", "review", "BASE=HEAD", f"REVIEW_ARGS=--affected; touch {marker}")
    assert arguments.returncode == 2 and f"unrecognized arguments: --affected; touch {marker}" in arguments.stderr
    assert not marker.exists()


@pytest.mark.parametrize("target", ["synth-base", "plan-affected"])
def test_targets_taking_a_base_need_a_git_commit(target, tmp_path):
    assert one_line(make(target)) == f"usage: make {target} BASE=<git ref>"
    marker = tmp_path / "injected"
    for base in (f"HEAD$(touch {marker})", "--help"):
        assert one_line(make(target, f"BASE={base}")) == f"BASE '{base}' is not a git commit (git rev-parse --verify)"
    assert not marker.exists()


def test_destroy_from_a_base_refuses_a_customer_still_in_the_fleet_or_a_bad_base(tmp_path):
    marker = tmp_path / "injected"
    assert one_line(make("destroy", "CUSTOMER=acme", "BASE=HEAD")).startswith("destroy: acme is still in the fleet")
    assert one_line(make("destroy", "CUSTOMER=initech", f"BASE=HEAD`touch {marker}`")) == (
        f"destroy: BASE 'HEAD`touch {marker}`' is not a git commit (git rev-parse --verify)")
    assert not marker.exists()


def test_plain_make_lists_every_target_with_one_line():
    """`make` is `make help`: each target an engineer runs, with its one line; nothing runs."""
    rules = re.findall(r"^([a-z][a-z-]*):(?!=)", (PROJECT_ROOT / "Makefile").read_text(), re.MULTILINE)
    targets = sorted(set(rules) - {"require-customer"})
    shown = make()
    assert shown.returncode == 0 and shown.stdout == make("help").stdout
    listed = {line.split()[0]: line.split(None, 1)[1] for line in shown.stdout.splitlines()}
    assert sorted(listed) == targets
    assert {"test", "test-quick", "synth", "deploy", "destroy"} <= listed.keys()
