"""`python -m dataplane list`: the fixture fleet, overlapping data-plane CIDRs in a generated one, and what each
customer's state (local files here, S3 objects in the emulator) says is deployed."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest

from dataplane.ops.cli import main
from dataplane.policy import DelegationGuard, permissions_policy
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from tests.conftest import FIXTURES

ROLE_ARN = "arn:aws:iam::123456789012:role/astronomer-remote-management"
CHANGED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
BUCKET = "dataplane-state-list"


@pytest.fixture
def fixtures(monkeypatch):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))


def state(serial: int, resources: list, outputs: dict | None = None) -> str:
    return json.dumps({"version": 4, "terraform_version": "1.9.8", "serial": serial, "lineage": "l1",
                       "outputs": outputs or {}, "resources": resources})


DEPLOYED = state(7, [{"mode": "managed", "type": "aws_iam_role", "name": "role", "instances": [{"attributes": {}}]}],
                 {"role_arn": {"value": ROLE_ARN, "type": "string"}})
DESTROYED = state(9, [])


def write_states(directory, states: dict[str, str]) -> None:
    directory.mkdir(parents=True)
    for name, text in states.items():
        path = directory / f"{name}.tfstate"
        path.write_text(text)
        os.utime(path, (CHANGED.timestamp(), CHANGED.timestamp()))


def test_lists_both_examples_and_nothing_deployed(fixtures, tmp_path, capsys):
    assert main(["list", "--outdir", str(tmp_path / "cdktf.out")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "NAME    ACCOUNT       REGION     NETWORK        PEERING",
        "acme    123456789012  us-east-1  -              -",
        "globex  210987654321  us-west-2  172.20.0.0/19  vpc-0a1b2c3d4e5f60718 (111122223333, us-west-2): 10.10.0.0/16",
        "",
        "NAME    DEPLOYED  SERIAL  LAST CHANGE (UTC)  GUARD  ROLE",
        "acme    no        -       -                  -      -",
        "globex  no        -       -                  -      -",
    ]


def test_local_state_deployed_destroyed_and_empty(fixtures, tmp_path, capsys):
    write_states(tmp_path / "terraform-state", {"acme": DEPLOYED, "globex": DESTROYED})
    assert main(["list", "--outdir", str(tmp_path / "cdktf.out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4:] == [
        "NAME    DEPLOYED  SERIAL  LAST CHANGE (UTC)          GUARD  ROLE",
        f"acme    yes       7       2025-03-04T05:06:07+00:00  OFF    {ROLE_ARN}",
        "globex  no        9       2025-03-04T05:06:07+00:00  -      -",
        "WARN  1 deployed customer(s) without the escalation guard: acme (the role may create a role with any "
        "policy, or rewrite its own: set delegationBoundary, then deploy)",
    ]

    write_states(tmp_path / "empty" / "terraform-state", {"acme": "", "globex": "{not json"})
    assert main(["list", "--json", "--outdir", str(tmp_path / "empty" / "cdktf.out")]) == 0
    acme, globex = (c["state"] for c in json.loads(capsys.readouterr().out)["customers"])
    assert acme == {"location": str(tmp_path / "empty" / "terraform-state" / "acme.tfstate"), "deployed": False,
                    "serial": None, "last_change": "2025-03-04T05:06:07+00:00", "role_arn": None, "guard": None,
                    "unknown": None}
    assert (globex["deployed"], globex["unknown"]) == (
        None, "unknown: not a terraform state (no JSON with a serial)")


def test_json_has_the_state_fields(fixtures, tmp_path, capsys):
    write_states(tmp_path / "terraform-state", {"acme": DEPLOYED})
    assert main(["list", "--json", "--outdir", str(tmp_path / "cdktf.out")]) == 0
    acme, globex = json.loads(capsys.readouterr().out)["customers"]
    assert acme["state"] == {"location": str(tmp_path / "terraform-state" / "acme.tfstate"), "deployed": True,
                             "serial": 7, "last_change": "2025-03-04T05:06:07+00:00", "role_arn": ROLE_ARN,
                             "guard": None, "unknown": None}
    assert (globex["state"]["deployed"], globex["state"]["serial"]) == (False, None)


def test_a_deployed_escalation_guard_is_on_and_no_warning_is_given(fixtures, tmp_path, capsys):
    guard = DelegationGuard("arn:aws:iam::123456789012:policy/boundaries/DataPlane", ROLE_ARN)
    policy = {"mode": "managed", "type": "aws_iam_role_policy", "name": "activation",
              "instances": [{"attributes": {"policy": json.dumps(permissions_policy(guard))}}]}
    guarded = state(3, [*json.loads(DEPLOYED)["resources"], policy], {"role_arn": {"value": ROLE_ARN}})
    write_states(tmp_path / "terraform-state", {"acme": guarded})
    assert main(["list", "--outdir", str(tmp_path / "cdktf.out")]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"acme    yes       3       2025-03-04T05:06:07+00:00  on     {ROLE_ARN}",
        "globex  no        -       -                          -      -"]
    assert main(["list", "--json", "--outdir", str(tmp_path / "cdktf.out")]) == 0
    assert json.loads(capsys.readouterr().out)["customers"][0]["state"]["guard"] == guard.boundary_arn


def backend_settings(tmp_path, monkeypatch, backend: dict) -> None:
    project = json.loads((PROJECT_ROOT / "cdktf.json").read_text())
    project["context"]["backend"] = backend
    (tmp_path / "settings.json").write_text(json.dumps(project))
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.json"))


def test_cloud_state_is_unknown_without_calls(fixtures, tmp_path, monkeypatch, capsys):
    backend_settings(tmp_path, monkeypatch, {"type": "cloud", "organization": "astro"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any AWS call would fail, not say "(cloud)"
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["acme    unknown (cloud)", "globex  unknown (cloud)"]


def test_s3_state_deployed_missing_and_unreadable(emulator, aws_via_emulator, fixtures, tmp_path, monkeypatch,
                                                  capsys):
    backend_settings(tmp_path, monkeypatch, {"type": "s3", "bucket": BUCKET, "region": "us-east-1",
                                             "keyPrefix": "fleet"})
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "acme    unknown: Unable to locate credentials", "globex  unknown: Unable to locate credentials"]

    for name, value in emulator.credentials("123456789012").items():
        monkeypatch.setenv(name, value)
    s3 = emulator.client("s3", "123456789012", "us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="fleet/acme.tfstate", Body=DEPLOYED.encode())
    assert main(["list", "--json"]) == 0
    acme, globex = (c["state"] for c in json.loads(capsys.readouterr().out)["customers"])
    modified = s3.head_object(Bucket=BUCKET, Key="fleet/acme.tfstate")["LastModified"]
    assert acme == {"location": f"s3://{BUCKET}/fleet/acme.tfstate", "deployed": True, "serial": 7,
                    "last_change": modified.astimezone(timezone.utc).isoformat(timespec="seconds"),
                    "role_arn": ROLE_ARN, "guard": None, "unknown": None}
    assert globex == {"location": f"s3://{BUCKET}/fleet/globex.tfstate", "deployed": False, "serial": None,
                      "last_change": None, "role_arn": None, "guard": None, "unknown": None}

    s3.delete_object(Bucket=BUCKET, Key="fleet/acme.tfstate")
    s3.delete_bucket(Bucket=BUCKET)
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("globex  unknown: NoSuchBucket: ")


def write_fleet(directory, networks: dict[str, tuple[str, str | None]]) -> None:
    for index, (name, (region, cidr)) in enumerate(networks.items()):
        network = f'\n[network]\ncidr = "{cidr}"\n' if cidr else ""
        (directory / f"{name}.toml").write_text(
            f'account_id = "{100000000000 + index}"\nregion = "{region}"\nexternal_id = "ext-{name}"\n{network}')


def test_flags_overlapping_data_plane_cidrs_and_opt_in_regions(tmp_path, monkeypatch, capsys):
    write_fleet(tmp_path, {"alpha": ("us-east-1", "10.0.0.0/16"), "bravo": ("me-south-1", "10.0.32.0/19"),
                           "charlie": ("eu-west-1", "10.1.0.0/19"), "delta": ("us-west-2", None),
                           "echo": ("us-east-2", "10.1.0.0/16")})
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(tmp_path))
    outdir = str(tmp_path / "cdktf.out")
    assert main(["list", "--outdir", outdir]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ACCOUNT", "REGION", "NETWORK", "PEERING"]
    assert lines[2].split() == ["bravo", "100000000001", "me-south-1", "(opt-in)", "10.0.32.0/19", "-"]
    assert lines[6:8] == ["WARN  alpha and bravo: data-plane CIDRs 10.0.0.0/16 and 10.0.32.0/19 overlap",
                          "WARN  charlie and echo: data-plane CIDRs 10.1.0.0/19 and 10.1.0.0/16 overlap"]

    assert main(["list", "--json", "--outdir", outdir]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in result["customers"]] == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert result["customers"][1]["opt_in_region"] is True and result["customers"][3]["network_cidr"] is None
    assert result["overlaps"] == [{"customers": ["alpha", "bravo"], "cidrs": ["10.0.0.0/16", "10.0.32.0/19"]},
                                  {"customers": ["charlie", "echo"], "cidrs": ["10.1.0.0/19", "10.1.0.0/16"]}]


def test_invalid_fleet_exits_2_naming_the_problem(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken.toml").write_text('account_id = "1"\n')
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(tmp_path))
    with pytest.raises(SystemExit) as exit:
        main(["list"])
    assert exit.value.code == 2
    assert "broken.toml: account_id:" in capsys.readouterr().err
