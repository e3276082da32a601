"""`python -m dataplane rollout` against the emulator: six role-only customers, each in its own account.

One CI identity reaches every account through `deployRoleName`, as the pipeline does. The tests run in file
order on one fleet: a first rollout creates every customer; a contract change (the role's session length, a
setting) is printed by `--dry-run` and rolls out; the next change meets a customer of wave 2 whose state cannot
be read, and halts there; once the state is mended, `--resume` finishes it. The settings pin the canary (`grove`)
and two waves after it (50 %, 100 %): `[grove]`, `[aurora, birch, cedar]`, `[dune, ember]`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataplane.config.settings import load_project
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import run_main
from tests.emulator import Emulator

FLEET = PROJECT_ROOT / "tests" / "fixtures" / "rollout"
CI_ACCOUNT, DEPLOY_ROLE, REGION = "999999999999", "dataplane-deploy", "us-east-1"
WAVES = [["grove"], ["aurora", "birch", "cedar"], ["dune", "ember"]]
FAULTY = "birch"


@dataclass(frozen=True)
class Fleet:
    """The fixture fleet synthesized in `workdir`, its settings file there, and the CI identity's environment."""

    emulator: Emulator
    workdir: Path
    accounts: dict[str, str]

    @property
    def settings_file(self) -> Path:
        return self.workdir / "cdktf.json"

    @property
    def env(self) -> dict[str, str]:
        return {**self.emulator.env(CI_ACCOUNT, REGION, tool_environment()), CUSTOMERS_DIR_ENV: str(FLEET),
                SETTINGS_ENV: str(self.settings_file)}

    def synth(self, max_session: int) -> None:
        """The settings with the role's `maxSessionDuration`, and the fleet synthesized with them."""
        context = json.loads((PROJECT_ROOT / "cdktf.json").read_text())["context"]
        self.settings_file.write_text(json.dumps({"context": {
            **context, "maxSessionDuration": max_session, "deployRoleName": DEPLOY_ROLE,
            "rollout": {"canary": ["grove"], "waves": [50, 100]}}}))
        done = run_main(self.workdir / "cdktf.out", **{CUSTOMERS_DIR_ENV: str(FLEET),
                                                       SETTINGS_ENV: str(self.settings_file)})
        assert done.returncode == 0, done.stderr

    def rollout(self, *args: str, settings: Path | None = None) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "dataplane", "rollout", "--outdir", str(self.workdir / "cdktf.out"),
                "--records-dir", str(self.records), "--outputs-dir", str(self.workdir / "outputs"), "--jobs", "2",
                *args]
        env = {**self.env, SETTINGS_ENV: str(settings or self.settings_file)}
        return subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)

    @property
    def records(self) -> Path:
        return self.workdir / "rollouts"

    def record(self) -> dict:
        [latest, *_] = sorted(self.records.glob("*.json"), reverse=True)
        return json.loads(latest.read_text())

    def sessions(self) -> dict[str, int | None]:
        """Each customer's live role: its maximum session, or None when there is no role."""
        found = {}
        for name, account in self.accounts.items():
            iam = self.emulator.client("iam", account, REGION)
            try:
                found[name] = iam.get_role(RoleName="astronomer-remote-management")["Role"]["MaxSessionDuration"]
            except iam.exceptions.NoSuchEntityException:
                found[name] = None
        return found

    def state(self, name: str) -> Path:
        return self.workdir / "terraform-state" / f"{name}.tfstate"


@pytest.fixture(scope="module")
def fleet(emulator, tmp_path_factory) -> Fleet:
    emulator.reset()
    customers = load_project(customers_dir=FLEET)[1]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CI_ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
    for customer in customers:  # the role the CI identity assumes in each account (moto would let it assume none)
        emulator.client("iam", customer.account_id, REGION).create_role(RoleName=DEPLOY_ROLE,
                                                                        AssumeRolePolicyDocument=json.dumps(trust))
    return Fleet(emulator, tmp_path_factory.mktemp("rollout"), {c.name: c.account_id for c in customers})


def results(record: dict) -> dict[str, str]:
    return {name: stack["result"] for name, stack in record["stacks"].items()}


def test_a_first_rollout_creates_every_customer_canary_first(fleet):
    fleet.synth(3600)
    done = fleet.rollout()
    assert done.returncode == 0, done.stderr
    assert fleet.sessions() == dict.fromkeys(fleet.accounts, 3600)
    record = fleet.record()
    assert (record["status"], record["waves"], record["unchanged"]) == ("finished", WAVES, [])
    assert results(record) == dict.fromkeys(fleet.accounts, "applied")
    assert record["stacks"]["grove"]["plan"]["create"] == record["stacks"]["aurora"]["plan"]["create"] > 0
    assert done.stderr.index("wave 1/3 (canary): grove") < done.stderr.index("wave 2/3: aurora, birch, cedar")
    assert json.loads((fleet.workdir / "outputs" / "dune.json").read_text())["dune"]["role_arn"] == (
        f"arn:aws:iam::{fleet.accounts['dune']}:role/astronomer-remote-management")
    assert (fleet.records / f"{record['id']}.md").read_text().startswith(f"# Rollout {record['id']}: finished")


def test_the_dry_run_of_a_contract_change_prints_the_waves_and_changes_nothing(fleet):
    fleet.synth(7200)
    done = fleet.rollout("--dry-run", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"waves": WAVES, "unchanged": []}
    assert fleet.sessions() == dict.fromkeys(fleet.accounts, 3600)
    assert len(list(fleet.records.glob("*.json"))) == 1


def test_the_contract_change_rolls_out(fleet):
    done = fleet.rollout()
    assert done.returncode == 0, done.stderr
    assert fleet.sessions() == dict.fromkeys(fleet.accounts, 7200)
    stacks = fleet.record()["stacks"]
    assert {name: stack["plan"]["update"] for name, stack in stacks.items()} == dict.fromkeys(fleet.accounts, 1)


def test_a_fault_in_wave_2_halts_the_rollout_at_the_end_of_that_wave(fleet):
    """The canary and the rest of wave 2 are applied, the faulty customer fails, no later wave is touched; a new
    rollout with other settings is refused while this one is unfinished."""
    fleet.synth(10800)
    state = fleet.state(FAULTY)
    fleet.workdir.joinpath("kept.tfstate").write_bytes(state.read_bytes())
    state.write_text("{ not a state")
    done = fleet.rollout()
    assert done.returncode == 1, done.stderr
    log = fleet.records / fleet.record()["id"] / f"{FAULTY}.log"
    assert f"{FAULTY} (wave 2) failed at adopt: " in done.stderr and f"(log: {log})" in done.stderr
    assert "is not valid JSON" in log.read_text()
    assert fleet.sessions() == {**dict.fromkeys(fleet.accounts, 7200), "grove": 10800, "aurora": 10800,
                                "cedar": 10800}
    record = fleet.record()
    assert record["status"] == "halted"
    assert {n: record["stacks"][n]["result"] for n in WAVES[2]} == dict.fromkeys(WAVES[2], "pending")
    other = fleet.workdir / "other.json"
    other.write_text(json.dumps({"context": {**json.loads(fleet.settings_file.read_text())["context"],
                                             "maxSessionDuration": 3600}}))
    refused = fleet.rollout(settings=other)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"rollout: rollout {record['id']} (halted, commit ") and len(
        refused.stderr.splitlines()) == 1, refused.stderr
    assert fleet.sessions()["dune"] == 7200


def test_resume_after_mending_finishes_the_rollout(fleet):
    fleet.state(FAULTY).write_bytes(fleet.workdir.joinpath("kept.tfstate").read_bytes())
    done = fleet.rollout("--resume")
    assert done.returncode == 0, done.stderr
    assert fleet.sessions() == dict.fromkeys(fleet.accounts, 10800)
    record = fleet.record()
    assert record["status"] == "finished"
    assert results(record) == dict.fromkeys(fleet.accounts, "applied")
    assert "grove" not in done.stderr  # done customers are skipped: not planned, not applied
    assert done.stderr.index("wave 2/3") < done.stderr.index("wave 3/3")
