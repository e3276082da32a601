"""The runner every deploy, plan, destroy and drift goes through (`dataplane/ops/fleet/progress.py`): what it prints
has no control code, what the tool printed goes to the log without them, and a failure names terraform's error and
the log. Against a fake tool printing colours, spinner redraws and a boxed `Error:` block, as the cdktf CLI and
terraform do on a terminal; `tests/test_deploy_e2e.py` checks a real `make deploy`."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

from dataplane.ops.fleet import progress
from dataplane.ops.fleet.deploy import outputs_file_text
from dataplane.ops.fleet.progress import Fleet, Progress, StatusLine, error_lines, plain, summary

FAKE_TOOL = r'''
import os, sys
print("\x1b[0m\x1b[1mInitializing the backend...\x1b[0m", flush=True)
for frame in "⠋⠙⠹⠸":
    sys.stdout.write(f"\r{frame} applying")
    sys.stdout.flush()
sys.stdout.write("\r\x1b[2Kapplied\n")
print(f"NO_COLOR={os.environ.get('NO_COLOR')} FORCE_COLOR={os.environ.get('FORCE_COLOR')}", flush=True)
if sys.argv[1] == "fail":
    red = lambda text: f"\x1b[31m{text}\x1b[0m"
    sys.stderr.write(f"{red('╷')}\n{red('│')} \x1b[1m\x1b[31mError: \x1b[0m\x1b[1mcreating IAM Role (data-plane): "
                     f"EntityAlreadyExists: Role with name data-plane already exists.\x1b[0m\n{red('│')} \n"
                     f"{red('│')}   with aws_iam_role.role,\n{red('│')}   on cdk.tf.json line 42, in resource:\n"
                     f"{red('│')}   42:       }}\n{red('│')} \n{red('╵')}\n")
    sys.stderr.flush()
    print("Releasing state lock. This may take a few moments...", flush=True)
    sys.exit(1)
print("\x1b[0m\x1b[1m\x1b[32mApply complete! Resources: 2 added, 0 changed, 0 destroyed.\x1b[0m", flush=True)
'''


@pytest.fixture
def tool(tmp_path) -> list[str]:
    script = tmp_path / "tool.py"
    script.write_text(FAKE_TOOL, encoding="utf-8")
    return [sys.executable, str(script)]


def runner(tmp_path: Path) -> tuple[Progress, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Progress("deploy", "acme", tmp_path / "cdktf.out", out, err), out, err


def the_log(tmp_path: Path) -> Path:
    [log] = (tmp_path / "logs").iterdir()
    assert re.fullmatch(r"acme-deploy-\d{8}T\d{6}Z\.log", log.name), log.name
    return log


def test_a_failed_run_prints_terraform_s_error_block_then_the_log_and_no_control_code(tool, tmp_path):
    run, out, err = runner(tmp_path)
    done = run.run("apply", [*tool, "fail"], tmp_path, env=dict(os.environ))
    assert (done.status, done.ok) == (1, False)
    printed = out.getvalue() + err.getvalue()
    assert "\x1b" not in printed and "\r" not in printed
    assert out.getvalue() == ""
    log = the_log(tmp_path)
    assert err.getvalue().splitlines() == [
        f"deploy acme: apply FAILED (exit status 1) in {done.seconds:.1f} s:",
        "    Error: creating IAM Role (data-plane): EntityAlreadyExists: Role with name data-plane already exists.",
        "",
        "      with aws_iam_role.role,",
        "      on cdk.tf.json line 42, in resource:",
        "      42:       }",
        f"deploy acme: full output in {log}",
    ]


def test_the_log_holds_the_whole_output_as_a_terminal_last_showed_it_without_control_codes(tool, tmp_path):
    run, _, _ = runner(tmp_path)
    run.run("apply", [*tool, "fail"], tmp_path, env=dict(os.environ))
    text = the_log(tmp_path).read_text(encoding="utf-8")
    assert "\x1b" not in text and "\r" not in text
    assert text.startswith("# python -m dataplane deploy acme, ")
    body = text.splitlines()[2:-1]
    assert body[:3] == ["Initializing the backend...", "applied", "NO_COLOR=1 FORCE_COLOR=0"]
    error = "│ Error: creating IAM Role (data-plane): EntityAlreadyExists: Role with name data-plane already exists."
    assert error in body
    assert body[-1] == "Releasing state lock. This may take a few moments..."
    assert re.fullmatch(rf"== apply: {re.escape(sys.executable)} \S+ fail \(in {re.escape(str(tmp_path))}, "
                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", text.splitlines()[1])
    assert re.fullmatch(r"== apply: exit status 1 in \d+\.\d s", text.splitlines()[-1])


def test_a_successful_run_prints_one_line_with_terraform_s_result_and_time(tool, tmp_path):
    run, out, err = runner(tmp_path)
    done = run.run("apply", [*tool, "ok"], tmp_path, env=dict(os.environ))
    assert done.ok and err.getvalue() == ""
    assert out.getvalue() == f"deploy acme: apply: 2 added, 0 changed, 0 destroyed in {done.seconds:.1f} s\n"
    run.done("deployed")
    last = out.getvalue().splitlines()[-1]
    assert re.fullmatch(rf"deploy acme: deployed in \d+\.\d s; log: {re.escape(str(the_log(tmp_path)))}", last)
    assert "Apply complete! Resources: 2 added" in the_log(tmp_path).read_text(encoding="utf-8")


def test_a_failure_not_reported_prints_nothing_until_the_caller_reports_it(tool, tmp_path):
    run, out, err = runner(tmp_path)
    done = run.run("apply", [*tool, "fail"], tmp_path, env=dict(os.environ), report=False)
    assert not done.ok and out.getvalue() == err.getvalue() == ""
    run.failure("apply", done)
    assert err.getvalue().startswith(f"deploy acme: apply FAILED (exit status {done.status}) in ")


def test_each_run_has_a_log_of_its_own_and_one_command_s_steps_share_one(tool, tmp_path):
    run, _, _ = runner(tmp_path)
    run.run("init", [*tool, "ok"], tmp_path, env=dict(os.environ))
    run.run("apply", [*tool, "ok"], tmp_path, env=dict(os.environ))
    assert re.findall(r"^== (\w+): exit status 0", the_log(tmp_path).read_text(), re.M) == ["init", "apply"]
    first = progress.new_log(tmp_path / "cdktf.out", "acme", "drift", "x")
    second = progress.new_log(tmp_path / "cdktf.out", "acme", "drift", "y")
    assert first != second and second.read_text().endswith("\ny")


def test_nothing_is_written_before_a_tool_runs(tmp_path):
    run, out, _ = runner(tmp_path)
    run.say("synth 1.0 s")
    run.done("deployed")
    assert not (tmp_path / "logs").exists()
    assert out.getvalue().splitlines()[-1].startswith("deploy acme: deployed in ")


def test_terraform_s_plain_errors_are_found_without_colour_and_warnings_are_not_errors():
    output = ("aws_iam_role.role: Creating...\n\nWarning: Argument is deprecated\n\n  with aws_s3_bucket.logs,\n\n"
              "Error: AWS account ID not allowed: 999999999999\n\n"
              "  with provider[\"registry.terraform.io/hashicorp/aws\"],\n"
              "  on cdk.tf.json line 29, in provider \"aws\":\n"
              "  29:       },\n\n\n"
              "Error: Error acquiring the state lock\n\nLock Info:\n  ID:        1234\n\n")
    assert error_lines(output) == [
        "Error: AWS account ID not allowed: 999999999999", "",
        "  with provider[\"registry.terraform.io/hashicorp/aws\"],", "  on cdk.tf.json line 29, in provider \"aws\":",
        "  29:       },", "", "Error: Error acquiring the state lock", "", "Lock Info:", "  ID:        1234"]
    assert error_lines("terraform plan failed: Error: No valid credential sources found\n\nPlease see") == [
        "Error: No valid credential sources found", "", "Please see"]
    assert error_lines("\n".join(f"line {i}" for i in range(30)) + "\n\n") == [f"line {i}" for i in range(20, 30)]
    assert len(error_lines("Error: x\n" + "detail\n" * 100)) == progress.ERROR_LINES + 1


@pytest.mark.parametrize("output, result", [
    ("Plan: 3 to add, 0 to change, 0 to destroy.\n\nApply complete! Resources: 1 imported, 3 added, 0 changed, "
     "0 destroyed.\n", "1 imported, 3 added, 0 changed, 0 destroyed"),
    ("No changes. Your infrastructure matches the configuration.\n\nApply complete! Resources: 0 added, 0 changed, "
     "0 destroyed.\n", "0 added, 0 changed, 0 destroyed"),
    ("Plan: 0 to add, 1 to change, 0 to destroy.\n\nChanges to Outputs:\n  ~ vpc_id = \"a\" -> \"b\"\n",
     "0 to add, 1 to change, 0 to destroy"),
    ("Changes to Outputs:\n  + role_arn = \"x\"\n", "changes to outputs only"),
    ("\x1b[1mNo changes.\x1b[0m Your infrastructure matches the configuration.\n", "no changes"),
    ("Destroy complete! Resources: 14 destroyed.\n", "14 destroyed"),
    ("Terraform has been successfully initialized!\n", None),
])
def test_the_result_is_terraform_s_own_summary(output, result):
    assert summary(output) == result


def test_plain_resolves_redraws_as_a_terminal_shows_them():
    assert plain("\x1b]0;title\x07\x1b[32mok\x1b[0m\n50%\r100%\r\n⠋ wait\r\x1b[2Kdone\x08\nabcdef\rxy") == (
        "ok\n100%\ndone\nxycdef")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_fleet_counts_each_stack_and_draws_its_bar_only_on_a_terminal():
    lines: list[str] = []
    pipe = io.StringIO()
    fleet = Fleet(lines.append, 2, pipe)
    fleet.done("acme: in sync in 2.0 s")
    fleet.done("hooli: drifted in 3.0 s")
    fleet.close()
    assert lines == ["[1/2] acme: in sync in 2.0 s", "[2/2] hooli: drifted in 3.0 s"] and pipe.getvalue() == ""

    terminal = Terminal()
    fleet = Fleet(lambda line: terminal.write(line + "\n"), 2, terminal)
    fleet.done("acme: in sync in 2.0 s")
    fleet.close()
    shown = terminal.getvalue()
    assert "\x1b" not in shown
    assert f"[{'.' * 30}] 0/2" in shown and f"[{'#' * 15}{'.' * 15}] 1/2" in shown
    assert "\r[1/2] acme: in sync in 2.0 s\n\r[" in shown
    assert shown.endswith("\r")


def test_the_status_line_is_silent_in_a_pipe():
    pipe = io.StringIO()
    line = StatusLine(pipe)
    line.show("deploy acme: apply 3 s: aws_iam_role.role: Creating...")
    line.clear()
    assert pipe.getvalue() == ""


# ---------------------------------------------------------------- the outputs file, as `cdktf deploy` writes it

TERRAFORM_OUTPUTS = {
    "peering_connection_id": {"sensitive": False, "type": "string", "value": "pcx-565d629ac7c809325"},
    "role_arn": {"sensitive": False, "type": "string",
                 "value": "arn:aws:iam::210987654321:role/astronomer-remote-management"},
    "role_name": {"sensitive": False, "type": "string", "value": "astronomer-remote-management"},
    "vpc_id": {"sensitive": False, "type": "string", "value": "vpc-fc491a4c7ca410630"},
}
CDKTF_WROTE = (b'{\n  "globex": {\n    "peering_connection_id": "pcx-565d629ac7c809325",\n    "role_arn": '
               b'"arn:aws:iam::210987654321:role/astronomer-remote-management",\n    "role_name": '
               b'"astronomer-remote-management",\n    "vpc_id": "vpc-fc491a4c7ca410630"\n  }\n}')
"""What `cdktf deploy --outputs-file` (cdktf-cli 0.21.0) wrote for the peering fixture (`tests/test_deploy_e2e.py`
compares the two files of a real deploy too)."""


def test_the_outputs_file_is_byte_for_byte_what_cdktf_deploy_writes():
    stack = {"//": {"outputs": {"globex": {name: name for name in TERRAFORM_OUTPUTS}}}}
    assert outputs_file_text(stack, TERRAFORM_OUTPUTS).encode() == CDKTF_WROTE


def test_the_outputs_file_follows_cdktf_for_construct_paths_sensitive_values_and_unicode():
    """cdktf's `getConstructIdsForOutputs` and `saveOutputs`: outputs nested by construct path, a construct whose
    outputs are all missing left out, a sensitive value left out (its construct kept, empty), no ASCII escaping."""
    stack = {"//": {"outputs": {"acme": {"role_arn": "role_arn", "network": {"vpc_id": "network_vpc_id_1A2B"},
                                         "gone": {"x": "missing"}, "secrets": {"token": "secrets_token"}}}}}
    outputs = {"role_arn": {"sensitive": False, "type": "string", "value": "ärn"},
               "network_vpc_id_1A2B": {"sensitive": False, "type": ["list", "string"], "value": ["vpc-1", "vpc-2"]},
               "secrets_token": {"sensitive": True, "type": "string", "value": "hunter2"}}
    assert outputs_file_text(stack, outputs) == (
        '{\n  "acme": {\n    "role_arn": "ärn",\n    "network": {\n      "vpc_id": [\n        "vpc-1",\n'
        '        "vpc-2"\n      ]\n    },\n    "secrets": {}\n  }\n}')
    assert json.loads(outputs_file_text({}, outputs)) == {"role_arn": "ärn", "network_vpc_id_1A2B": ["vpc-1", "vpc-2"]}
