"""`python -m dataplane plan-stacks`: what it selects and the input it refuses, before terraform runs
(`tests/test_plan_e2e.py` plans for real against the emulator)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from dataplane import synth_output
from dataplane.ops.fleet import plan as fleet_plan
from dataplane.ops.fleet.plan import Target, external_id_of, select
from dataplane.policy import external_id_list
from dataplane.runtime.toolchain import needs_init
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES


def plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataplane", "plan-stacks", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120, env={**tool_environment(), CUSTOMERS_DIR_ENV: str(FIXTURES)})


@pytest.fixture(scope="module")
def base_and_head(synthesized, tmp_path_factory):
    """The fixtures as base; a head without `acme` and with `globex` changed (its stack file edited)."""
    root = tmp_path_factory.mktemp("plan-select")
    base, head = root / "base.out", root / "head.out"
    shutil.copytree(synthesized, base)
    shutil.copytree(synthesized, head)
    manifest = json.loads((head / "manifest.json").read_text())
    del manifest["stacks"]["acme"]
    (head / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(head / "stacks" / "acme")
    stack = head / "stacks" / "globex" / "cdk.tf.json"
    stack.write_text(stack.read_text().replace("172.20.0.0/19", "172.24.0.0/19"))
    return base, head


def test_without_names_every_stack_is_selected_in_name_order(synthesized):
    assert select(synthesized) == [Target(n, synthesized / "stacks" / n) for n in ("acme", "globex")]
    assert select(synthesized, ["globex"]) == [Target("globex", synthesized / "stacks" / "globex")]


def test_affected_from_a_base_plans_changed_stacks_and_destroys_removed_ones_from_the_base(base_and_head):
    base, head = base_and_head
    assert select(head, affected_from=base) == [
        Target("acme", base / "stacks" / "acme", destroy=True), Target("globex", head / "stacks" / "globex")]
    assert select(head, affected_from=base, batch=(0, 2)) == [Target("acme", base / "stacks" / "acme", destroy=True)]
    assert select(head, affected_from=base, batch=(1, 2)) == [Target("globex", head / "stacks" / "globex")]
    assert select(base, affected_from=base) == []


@pytest.mark.parametrize("args, message", [
    (["initech"], "plan: no stack 'initech' in {out}; synthesized: acme, globex"),
    (["--", "--help"], "plan: no stack '--help' in {out}; synthesized: acme, globex"),
    (["acme", "--affected-from", "{out}"], "plan: name customers or give --affected-from, not both"),
    (["--affected-from", "/nonexistent"], "plan: /nonexistent: not a directory (expected a cdktf.out layout)"),
])
def test_bad_input_is_one_line_and_exit_2_before_terraform_runs(synthesized, tmp_path, args, message):
    out = tmp_path / "plans"
    result = plan("--outdir", str(synthesized), "--out", str(out), *[a.format(out=synthesized) for a in args])
    assert (result.returncode, result.stderr, result.stdout) == (2, message.format(out=synthesized) + "\n", "")
    assert not out.exists()


def test_an_out_that_cannot_be_a_directory_is_one_line_and_exit_2(synthesized, tmp_path):
    (tmp_path / "plans.txt").write_text("not a directory")
    for out in (tmp_path / "plans.txt", tmp_path / "plans.txt" / "plans"):
        errno = "File exists" if out.name == "plans.txt" else "Not a directory"
        result = plan("--outdir", str(synthesized), "--out", str(out), "acme")
        assert (result.returncode, result.stderr, result.stdout) == (
            2, f"plan: --out {out}: cannot be the directory of plans ({errno})\n", "")
    assert (tmp_path / "plans.txt").read_text() == "not a directory"


@pytest.mark.parametrize("option", ["--batch=2/2", "--batch=x", "--jobs=0", "--jobs=-1"])
def test_bad_batch_or_jobs_is_a_usage_error_naming_the_argument(synthesized, option):
    result = plan("--outdir", str(synthesized), option)
    flag, value = option.split("=")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith(f"python -m dataplane plan-stacks: error: argument {flag}: '{value}'")


def test_a_stack_is_planned_as_its_customer_with_its_external_id(synthesized, customers):
    """The plan role, or the deploy role the customer's bootstrap created, requires the customer's ExternalId: the
    first of its file, read from the stack itself (a removed customer's stack has no file any more)."""
    for name, customer in customers.items():
        assert external_id_of(synth_output.stack_dir(synthesized, name)) == external_id_list(customer.external_id)[0]


def test_a_json_run_s_error_reads_as_terraform_prints_it_even_after_a_crash_line():
    stream = "\n".join([
        json.dumps({"@message": "Terraform 1.11.4", "type": "version"}),
        json.dumps({"@level": "error", "@message": "Error: Backend initialization required, please run \"terraform "
                    "init\"", "type": "diagnostic", "diagnostic": {"detail": "Reason: initial configuration"}}),
        "panic: runtime error",
    ])
    text = fleet_plan.human(stream, "exit status 2\n")
    assert text.splitlines()[1:] == ['Error: Backend initialization required, please run "terraform init"',
                                     "Reason: initial configuration", "panic: runtime error", "exit status 2"]
    assert needs_init(text) and fleet_plan.stream_counts(stream) == dict.fromkeys(fleet_plan.COUNTED, 0)
