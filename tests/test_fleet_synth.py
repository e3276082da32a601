"""A generated fleet: byte-identical synth from any working directory, and one state per customer."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cdktf import Testing

from bench.fleet import KINDS, write_fleet
from dataplane.config.customer import load_customers
from dataplane.config.settings import Settings
from dataplane.project import (
    CUSTOMERS_DIR_ENV,
    OUTDIR_ENV,
    PROJECT_ROOT,
    SYNTH_WORKERS_ENV,
)
from dataplane.runtime.shards import SHARD_MIN
from dataplane.runtime.toolchain import tool_environment
from stacks import DataPlaneStack
from tests.conftest import files, run_main

S3 = Settings.model_validate({"backend": {"type": "s3", "bucket": "astro-state", "region": "us-east-1",
                                          "keyPrefix": "activation"}})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fleet")
    write_fleet(directory, 4 * len(KINDS))
    return directory


def test_same_fleet_synthesizes_byte_identical_from_different_directories(fleet, tmp_path):
    outputs = []
    for cwd in (tmp_path / "one", tmp_path / "two" / "deeper"):
        cwd.mkdir(parents=True)
        result = run_main(cwd / "cdktf.out", cwd=cwd, DATAPLANE_CUSTOMERS_DIR=str(fleet))
        assert result.returncode == 0, result.stderr
        outputs.append(files(cwd / "cdktf.out"))
    assert len([f for f in outputs[0] if f.endswith("cdk.tf.json")]) == 4 * len(KINDS)
    assert outputs[0] == outputs[1]


@pytest.mark.heavy
def test_sharded_synths_of_a_large_fleet_run_at_once_and_match_one_process_byte_for_byte(tmp_path):
    """Two sharded synths into one output at the same time both succeed; the result is one process's, exactly."""
    fleet = tmp_path / "customers"
    write_fleet(fleet, 2 * SHARD_MIN)
    alone = tmp_path / "alone" / "cdktf.out"
    result = run_main(alone, **{CUSTOMERS_DIR_ENV: str(fleet), SYNTH_WORKERS_ENV: "1"})
    assert result.returncode == 0, result.stderr
    shared = tmp_path / "shared" / "cdktf.out"
    env = {**tool_environment(), CUSTOMERS_DIR_ENV: str(fleet), OUTDIR_ENV: str(shared), SYNTH_WORKERS_ENV: "2"}
    synths = [subprocess.Popen([sys.executable, str(PROJECT_ROOT / "main.py")], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=600)[1] for p in synths]
    assert [p.returncode for p in synths] == [0, 0], errors
    assert len([f for f in files(alone) if f.endswith("cdk.tf.json")]) == 2 * SHARD_MIN
    assert files(shared) == files(alone)
    assert not list(tmp_path.glob("*/.cdktf.out.*")), "no staging or shard directory is left behind"


def test_every_customer_gets_its_own_encrypted_locked_s3_state(fleet, settings):
    customers = load_customers(fleet, settings.control_plane_account_id)
    app = Testing.app()
    backends = [json.loads(Testing.synth(DataPlaneStack(app, c, S3)))["terraform"]["backend"]["s3"] for c in customers]
    assert len({b["key"] for b in backends}) == len(customers)
    assert all(b["encrypt"] is True and b["use_lockfile"] is True and b["bucket"] == "astro-state" for b in backends)
    assert [b["key"] for b in backends] == [f"activation/{c.name}.tfstate" for c in customers]
