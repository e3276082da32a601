"""A generated fleet: byte-identical synth from any working directory, and one state per customer."""

from __future__ import annotations

import json

import pytest
from cdktf import Testing

from bench.fleet import KINDS, write_fleet
from dataplane.config.customer import load_customers
from dataplane.config.settings import Settings
from dataplane.project import SYNTH_WORKERS_ENV
from dataplane.runtime.shards import SHARD_MIN
from stacks import DataPlaneStack
from tests.conftest import run_main

S3 = Settings.model_validate({"backend": {"type": "s3", "bucket": "astro-state", "region": "us-east-1",
                                          "keyPrefix": "activation"}})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fleet")
    write_fleet(directory, 4 * len(KINDS))
    return directory


def files(outdir) -> dict[str, bytes]:
    return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*")) if p.is_file()}


def test_same_fleet_synthesizes_byte_identical_from_different_directories(fleet, tmp_path):
    outputs = []
    for cwd in (tmp_path / "one", tmp_path / "two" / "deeper"):
        cwd.mkdir(parents=True)
        result = run_main(cwd / "cdktf.out", cwd=cwd, DATAPLANE_CUSTOMERS_DIR=str(fleet))
        assert result.returncode == 0, result.stderr
        outputs.append(files(cwd / "cdktf.out"))
    assert len([f for f in outputs[0] if f.endswith("cdk.tf.json")]) == 4 * len(KINDS)
    assert outputs[0] == outputs[1]


def test_sharded_synth_of_a_large_fleet_is_byte_identical_to_one_process(tmp_path):
    write_fleet(tmp_path / "customers", 2 * SHARD_MIN)
    outputs = []
    for workers in ("1", "2"):
        outdir = tmp_path / f"workers-{workers}" / "cdktf.out"
        result = run_main(outdir, DATAPLANE_CUSTOMERS_DIR=str(tmp_path / "customers"), **{SYNTH_WORKERS_ENV: workers})
        assert result.returncode == 0, result.stderr
        outputs.append(files(outdir))
    assert len([f for f in outputs[0] if f.endswith("cdk.tf.json")]) == 2 * SHARD_MIN
    assert outputs[0] == outputs[1]
    assert not list(tmp_path.glob("workers-2/*.shard-*"))


def test_every_customer_gets_its_own_encrypted_locked_s3_state(fleet, settings):
    customers = load_customers(fleet, settings.control_plane_account_id)
    app = Testing.app()
    backends = [json.loads(Testing.synth(DataPlaneStack(app, c, S3)))["terraform"]["backend"]["s3"] for c in customers]
    assert len({b["key"] for b in backends}) == len(customers)
    assert all(b["encrypt"] is True and b["use_lockfile"] is True and b["bucket"] == "astro-state" for b in backends)
    assert [b["key"] for b in backends] == [f"activation/{c.name}.tfstate" for c in customers]
