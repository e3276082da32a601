"""`python -m dataplane activate` end to end against the emulator, checked with boto3: globex activated once (as
the control plane) and again (as the deployer, changing nothing); acme stopped at preflight by a foreign role; hooli
(the tamper alarm) activated, then offboarded, keeping its audit logs, its records following: the activation record
says destroyed, the outputs file is gone, and verify says so."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest

from dataplane.config.customer import load_customer
from dataplane.ops.fleet.activate import as_deployer
from dataplane.ops.cli import main
from dataplane.ops.report import Row, Status
from dataplane.ops.sandbox import create_deployer
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from dataplane.tamper import AlarmNames
from tests.conftest import EXTRA_FIXTURES, FIXTURES
from tests.deploy import Deployment, stage


def activate(deployment: Deployment, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m dataplane activate <customer>` with synth output, outputs file and record under `workdir`."""
    w = deployment.workdir
    argv = [sys.executable, "-m", "dataplane", "activate", f"--outdir={w / 'cdktf.out'}", f"--outputs-dir={w}",
            f"--records-dir={w / 'activations'}", *args, "--", deployment.customer.name]
    return subprocess.run(argv, cwd=PROJECT_ROOT, env={**deployment.env, **env}, capture_output=True, text=True,
                          timeout=900)


def record(deployment: Deployment) -> dict:
    return json.loads((deployment.workdir / "activations" / f"{deployment.customer.name}.json").read_text())


def markdown(deployment: Deployment) -> str:
    return (deployment.workdir / "activations" / f"{deployment.customer.name}.md").read_text()


def caller_arn(deployment: Deployment) -> str:
    """Whom the deployment's credentials stand for, as STS says."""
    env = deployment.env
    return boto3.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=env["AWS_SESSION_TOKEN"]).get_caller_identity()["Arn"]


def staged(emulator, customer, settings, workdir: Path) -> Deployment:
    create_deployer(emulator, customer)
    return stage(emulator, customer, settings, workdir)


GUARDED = {"managedPolicyArns": ["Audit", "team/Extra"], "delegationBoundary": "boundaries/DataPlane"}
"""Settings with the escalation guard and two managed policies (of the customer's account) attached."""


@pytest.fixture(scope="module")
def globex(emulator, customers, settings, tmp_path_factory) -> tuple[Deployment, subprocess.CompletedProcess, dict]:
    """Globex activated once on a clean account with the escalation guard and managed policies (`GUARDED`), verified
    as the control plane (a profile); its run and record."""
    emulator.reset()
    c = customers["globex"]
    staging = staged(emulator, c, settings, tmp_path_factory.mktemp("globex"))
    guarded = staging.workdir / "cdktf.json"
    project = json.loads((PROJECT_ROOT / "cdktf.json").read_text())
    guarded.write_text(json.dumps({**project, "context": {**project["context"], **GUARDED}}))
    deployment = Deployment(staging.customer, staging.workdir, {**staging.env, SETTINGS_ENV: str(guarded)})
    iam = emulator.client("iam", c.account_id, c.region)
    for name, path in (("Audit", "/"), ("Extra", "/team/"), ("DataPlane", "/boundaries/")):
        iam.create_policy(PolicyName=name, Path=path, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    credentials = emulator.credentials(settings.control_plane_account_id)
    profiles = deployment.workdir / "aws-credentials"
    profiles.write_text("[control-plane]\n" + "".join(f"{k.lower()} = {v}\n" for k, v in credentials.items()))
    done = activate(deployment, "--control-plane-profile=control-plane", AWS_SHARED_CREDENTIALS_FILE=str(profiles),
                    AWS_CONFIG_FILE=str(deployment.workdir / "no-aws-config"))
    return deployment, done, record(deployment)


def live_ids(emulator, deployment: Deployment, settings) -> dict:
    """What boto3 finds deployed for the customer in the emulator."""
    c = deployment.customer
    ec2 = emulator.client("ec2", c.account_id, c.region)
    role = emulator.client("iam", c.account_id, c.region).get_role(RoleName=settings.role_name)["Role"]
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:customer", "Values": [c.name]}])["Vpcs"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    [table] = [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=in_vpc)["RouteTables"]
               if not any(a.get("Main") for a in t.get("Associations", []))]
    [pcx] = ec2.describe_vpc_peering_connections(
        Filters=[{"Name": "requester-vpc-info.vpc-id", "Values": [vpc["VpcId"]]}])["VpcPeeringConnections"]
    return {"role_arn": role["Arn"], "role_id": role["RoleId"], "vpc_id": vpc["VpcId"],
            "subnet_ids": sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=in_vpc)["Subnets"]),
            "route_table_id": table, "peering_id": pcx["VpcPeeringConnectionId"], "peering": pcx["Status"]["Code"]}


def state_ids(deployment: Deployment) -> dict:
    """Every resource the state records, with its id.

    Not the serial: the first apply after a create stores what refresh reads back (the peering's accepted
    status, the role's inline policy, routes), one serial up, with nothing changed in the account.
    """
    state = json.loads(deployment.state_file.read_text())
    return {f"{r['mode']}.{r['type']}.{r['name']}": [i["attributes"].get("id") for i in r["instances"]]
            for r in state["resources"]}


def recorded_ids(entry: dict) -> dict:
    return {"role_arn": entry["role"]["arn"], "vpc_id": entry["network"]["vpc_id"],
            "subnet_ids": entry["network"]["subnet_ids"], "route_table_id": entry["network"]["route_table_id"],
            "peering_id": entry["peering"]["connection_id"], "peering": entry["peering"]["status"]}


def test_activation_passes_and_records_the_deployed_ids(emulator, globex, settings):
    deployment, done, entry = globex
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("preflight", "deploy", "verify"):
        assert f"\n{step}: ok in " in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("activated globex in ")
    live = live_ids(emulator, deployment, settings)
    assert recorded_ids(entry) == {k: v for k, v in live.items() if k != "role_id"}
    assert len(live["subnet_ids"]) == 2 and live["peering"] == "active"

    c = deployment.customer
    assert (entry["customer"], entry["result"], entry["failed_step"], entry["verified_as"]) == (
        "globex", "activated", None, "control plane")
    assert (entry["account_id"], entry["region"]) == (c.account_id, c.region)
    assert entry["role"] == {"arn": live["role_arn"], "name": settings.role_name, "external_ids": list(c.external_ids)}
    assert (entry["network"]["cidr"], entry["peering"]["peer_cidrs"], entry["peering"]["peer_vpc_id"]) == (
        c.network.cidr, list(c.peering.cidrs), c.peering.vpc_id)
    assert [(s["step"], s["result"]) for s in entry["steps"]] == [
        ("preflight", "ok"), ("deploy", "ok"), ("verify", "ok")]
    assert all(s["seconds"] >= 0 for s in entry["steps"])
    checks = {(row["step"], row["check"]): row["status"] for row in entry["checks"]}
    assert checks[("preflight", "role")] == "PASS" and checks[("preflight", "permissions")] == "WARN"
    assert [row["check"] for row in entry["checks"] if row["step"] == "verify"] == [
        "assume role", "trust policy", "permissions", "escalation guard", "network", "peering", "routes", "dns",
        "deployed ids"]
    assert all(row["status"] == "PASS" for row in entry["checks"] if row["step"] == "verify"), entry["checks"]
    rows = {row["check"]: row["reason"] for row in entry["checks"] if row["step"] == "verify"}
    assert rows["escalation guard"].startswith(f"on: roles it creates or changes must carry arn:aws:iam::{c.account_id}"
                                               ":policy/boundaries/DataPlane")
    assert rows["permissions"].endswith("and the 2 managed policies")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert entry["tool_commit"] == (head.stdout.strip() if head.returncode == 0 else "unknown")
    assert entry["started_at"] <= entry["finished_at"] and entry["started_at"].endswith("+00:00")
    warnings = sum(row["status"] == "WARN" for row in entry["checks"])
    assert (entry["status"], entry["warnings"], entry["tamper_alarm"]) == ("activated", warnings, None) and warnings
    assert entry["customer_file"] == {"path": str(deployment.workdir / "customers" / "globex.toml"),
                                      "committed": False}  # staged by the test, outside git

    page = markdown(deployment)
    assert page.startswith(f"# Activation of globex: activated with {warnings} warning{'s' * (warnings > 1)}, from an "
                           "uncommitted file\n")
    assert "| Verified as | control plane |" in page
    for value in recorded_ids(entry).values():
        assert all(v in page for v in (value if isinstance(value, list) else [value]))
    assert c.external_id in page and "| verify | dns | PASS |" in page
    assert not list(deployment.workdir.glob("activations/.*")), "no partial record files"


def test_second_run_changes_nothing_and_refreshes_the_record(emulator, globex, settings):
    deployment, _, first = globex
    before, recorded = live_ids(emulator, deployment, settings), state_ids(deployment)
    again = activate(deployment)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "\ndeploy globex: apply: 0 added, 0 changed, 0 destroyed in " in again.stdout
    assert live_ids(emulator, deployment, settings) == before and state_ids(deployment) == recorded

    entry = record(deployment)
    assert recorded_ids(entry) == recorded_ids(first)
    assert entry["started_at"] >= first["finished_at"] and entry["verified_as"] == "deployer"
    verify = {row["check"]: row for row in entry["checks"] if row["step"] == "verify"}
    assert verify["credentials"]["status"] == "WARN" and verify["credentials"]["reason"].startswith(
        "verify ran with the deployer's credentials, not the control plane's")
    assert verify["assume role"]["status"] == "WARN"  # moto lets the deployer in: it does not enforce trust
    reactivation = {row["check"]: row["status"] for row in entry["checks"] if row["step"] == "preflight"}
    assert (reactivation["role"], reactivation["vpcs"], reactivation["peer route tables"]) == ("WARN",) * 3


def test_a_foreign_role_stops_activation_at_preflight_and_nothing_is_created(emulator, customers, settings,
                                                                             tmp_path):
    acme = customers["acme"]
    iam = emulator.client("iam", acme.account_id, acme.region)
    iam.create_role(RoleName=settings.role_name, AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    foreign = iam.get_role(RoleName=settings.role_name)["Role"]
    deployment = staged(emulator, acme, settings, tmp_path)

    done = activate(deployment)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"  FAIL  role            {foreign['Arn']} already exists and was not created by this tool" in done.stdout
    assert "\npreflight: FAILED in " in done.stdout and "deploy: " not in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("activation of acme FAILED at preflight; record: ")
    assert not deployment.state_file.exists() and not (tmp_path / "cdktf.out").exists()
    assert iam.get_role(RoleName=settings.role_name)["Role"] == foreign
    assert iam.list_role_policies(RoleName=settings.role_name)["PolicyNames"] == []

    entry = record(deployment)
    assert (entry["status"], entry["result"], entry["failed_step"], entry["verified_as"]) == (
        "failed", "failed", "preflight", None)
    assert [(s["step"], s["result"]) for s in entry["steps"]] == [
        ("preflight", "failed"), ("deploy", "not run"), ("verify", "not run")]
    assert entry["role"] == {"arn": None, "name": None, "external_ids": list(acme.external_ids)}
    assert [row["check"] for row in entry["checks"] if row["status"] == "FAIL"] == ["role"]
    page = markdown(deployment)
    assert page.startswith("# Activation of acme: **FAILED** at preflight, from an uncommitted file\n")
    assert "Verified as" not in page


def test_bad_input_exits_2_before_anything_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(FIXTURES))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    for argv, message in ((["activate", "nobody"], "no customer 'nobody'; known: acme, globex"),
                          (["activate", "acme", "--control-plane-profile", "nope"], "(nope) could not be found")):
        with pytest.raises(SystemExit) as exit:
            main([*argv, f"--records-dir={tmp_path}"])
        assert exit.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_deployer_refused_by_the_trust_is_a_warn_not_a_fail():
    refused = Row("assume role", Status.FAIL, "AccessDenied: not authorized to perform sts:AssumeRole (as arn:x)")
    assert as_deployer(refused) == Row("assume role", Status.WARN, "not checked as the control plane: the deployer "
                                       "may not assume the role, as a trust policy for the control plane only intends")
    for row in (Row("assume role", Status.FAIL, "ExpiredToken: expired"), Row("assume role", Status.WARN, "x")):
        assert as_deployer(row) is row


def test_offboarding_keeps_the_tamper_alarm_s_audit_logs_and_the_record_lists_them(emulator, settings, tmp_path):
    """hooli activated (eu-west-1; replicas in us-east-1), a log file in its trail bucket, then `make destroy`: exit
    0; the four buckets (with their settings and the log file) and the two keys that encrypt them stay, named in
    the output and the record; everything else is destroyed, the alarm's other keys scheduled for deletion. The
    records follow: the activation record says destroyed (when, by whom, what was kept), the outputs file is gone,
    and verify says destroyed in one line."""
    emulator.reset()
    hooli = load_customer(EXTRA_FIXTURES / "hooli.toml", settings.control_plane_account_id)
    deployment = staged(emulator, hooli, settings, tmp_path)
    activated = activate(deployment)
    assert activated.returncode == 0, activated.stdout + activated.stderr
    c, names = deployment.customer, AlarmNames(hooli.name, hooli.account_id)
    s3 = {region: emulator.client("s3", c.account_id, region) for region in ("eu-west-1", "us-east-1")}
    s3["eu-west-1"].put_object(Bucket=names.bucket("trail"), Key="AWSLogs/456789012345/log.json.gz", Body=b"who did")
    kms = {region: emulator.client("kms", c.account_id, region) for region in s3}
    key_arns = {region: {k["KeyArn"] for k in kms[region].list_keys()["Keys"]} for region in kms}
    encrypting = {region: s3[region].get_bucket_encryption(Bucket=names.bucket("access" if region == "eu-west-1"
                                                                                   else "trail-r"))[
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
        for region in s3}

    assert deployment.outputs_file.exists()
    destroyed = deployment.make("destroy", "YES=1", f"RECORDS={tmp_path / 'activations'}")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    kept = [*({"kind": "S3 bucket", "id": name, "region": region} for name, region in names.buckets(c.region).items()),
            *({"kind": "KMS key", "id": encrypting[region], "region": region} for region in ("eu-west-1", "us-east-1"))]
    listed = tmp_path / "activations" / "hooli.json"
    assert (f"keeping the tamper alarm's audit logs in account {c.account_id} on purpose (out of the state, listed "
            f"in {listed}):\n") in destroyed.stdout
    for item in kept:
        assert f"\n  {item['kind']} {item['id']} ({item['region']})\n" in destroyed.stdout
    assert destroyed.stdout.rstrip().splitlines()[-1] == (
        f"destroyed hooli; kept 4 audit-log bucket(s) and 2 KMS key(s) in account {c.account_id}, listed above and in "
        f"{listed}")

    for name, region in names.buckets(c.region).items():
        assert s3[region].get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
        assert s3[region].get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    body = s3["eu-west-1"].get_object(Bucket=names.bucket("trail"), Key="AWSLogs/456789012345/log.json.gz")["Body"]
    assert body.read() == b"who did"
    states = {arn: kms[region].describe_key(KeyId=arn)["KeyMetadata"]["KeyState"]
              for region in kms for arn in key_arns[region]}
    assert {arn: state for arn, state in states.items() if state == "Enabled"} == dict.fromkeys(encrypting.values(),
                                                                                                 "Enabled")
    assert sorted(states.values()) == ["Enabled", "Enabled", "PendingDeletion", "PendingDeletion"]
    roles = emulator.client("iam", c.account_id, c.region).list_roles()["Roles"]
    assert [r["RoleName"] for r in roles] == ["emulator-admin"]  # the deployer's own
    # The trail is gone from the state too (moto 5.2.5 still lists a trail deleted by its ARN, as the provider does).
    assert json.loads(deployment.state_file.read_text())["resources"] == []

    entry = record(deployment)
    assert entry["result"] == "activated" and sorted(entry["offboarding"]["kept"], key=str) == sorted(kept, key=str)
    assert entry["status"] == "destroyed" and entry["tamper_alarm"]["email"] == hooli.tamper_alarm.email
    gone = entry["destroyed"]
    assert (gone["by"], sorted(gone["kept"], key=str)) == (caller_arn(deployment), sorted(kept, key=str))
    assert entry["finished_at"] <= gone["at"] <= datetime.now(timezone.utc).isoformat(timespec="seconds")
    assert (f"\ndestroy hooli: removed {deployment.outputs_file}; {listed} says destroyed by {gone['by']}\n"
            in destroyed.stdout)
    assert not deployment.outputs_file.exists()
    page = markdown(deployment)
    assert page.startswith("# Destroyed: the data plane of hooli\n") and f"| Destroyed by | `{gone['by']}` |" in page
    assert "| Kept | 4 audit-log bucket(s) and 2 KMS key(s), listed under Kept at offboarding |" in page
    assert "\n## Activation of hooli: activated" in page and "\n## Kept at offboarding\n" in page
    assert all(f"| {item['kind']} | `{item['id']}` | {item['region']} |" in page for item in kept)

    verified = subprocess.run([sys.executable, "-m", "dataplane", "verify", f"--records-dir={tmp_path / 'activations'}",
                               f"--outdir={tmp_path / 'cdktf.out'}", "--", "hooli"], cwd=PROJECT_ROOT,
                              env=deployment.env, capture_output=True, text=True, timeout=300)
    assert (verified.returncode, verified.stdout, verified.stderr) == (
        0, f"hooli: destroyed on {gone['at']} (activation record {listed}); nothing to verify\n", "")
