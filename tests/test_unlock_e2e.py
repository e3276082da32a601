"""S3 state recovery: a deploy killed mid-apply leaves the S3 lock; `make unlock` shows and releases it."""

from __future__ import annotations

import json
import subprocess

from dataplane.project import PROJECT_ROOT, SETTINGS_ENV
from tests.deploy import kill_when, stage

BUCKET = "dataplane-state-tests"
KEY = "activation/acme.tfstate"


def test_a_killed_deploy_leaves_the_s3_lock_and_make_unlock_releases_it_once_confirmed(
        emulator, customers, settings, tmp_path):
    emulator.reset()
    deployment = stage(emulator, customers["acme"], settings, tmp_path)
    c = deployment.customer
    s3 = emulator.client("s3", c.account_id, "us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    project = json.loads((PROJECT_ROOT / "cdktf.json").read_text())
    project["context"]["backend"] = {"type": "s3", "bucket": BUCKET, "region": "us-east-1", "keyPrefix": "activation"}
    (tmp_path / "settings.json").write_text(json.dumps(project))
    deployment = type(deployment)(c, deployment.workdir, {**deployment.env, SETTINGS_ENV: str(tmp_path / "settings.json")})
    iam = emulator.client("iam", c.account_id, c.region)

    kill_when(deployment, lambda: bool(iam.list_roles()["Roles"]))
    lock = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{KEY}.tflock")["Body"].read())
    refused = deployment.make("deploy")
    assert refused.returncode != 0 and "Error acquiring the state lock" in refused.stdout + refused.stderr

    def unlock(answer: str) -> subprocess.CompletedProcess:
        argv = ["make", "--no-print-directory", "-s", "unlock", f"CUSTOMER={c.name}",
                f"CDKTF_OUT={deployment.workdir / 'cdktf.out'}"]
        return subprocess.run(argv, cwd=PROJECT_ROOT, env=deployment.env, input=answer, capture_output=True,
                              text=True, timeout=600)

    kept = unlock("yes\n")
    assert kept.returncode != 0 and "not confirmed; the lock stays" in kept.stderr
    assert f"state lock s3://{BUCKET}/{KEY}.tflock" in kept.stdout
    assert lock["ID"] in kept.stdout and lock["Who"] in kept.stdout and lock["Operation"] in kept.stdout
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{KEY}.tflock")["KeyCount"] == 1

    released = unlock(f"{c.name}\n")
    assert released.returncode == 0, released.stdout + released.stderr
    assert f"released the state lock of {c.name} ({lock['ID']})" in released.stdout
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{KEY}.tflock")["KeyCount"] == 0
    assert "not locked" in unlock("").stdout

    resumed = deployment.make("deploy")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(iam.list_roles()["Roles"]) == 1
