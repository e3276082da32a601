"""Plans, drift and offboarding against the emulator, on one deployment.

The peering fixture is deployed once with `make deploy`; heads that change it are planned with
`python -m dataplane plan-stacks` and reviewed with `review --plans`, and compared with what terraform itself
says; `python -m dataplane drift` checks the fleet's head (it, and `acme`, never deployed). The tests
run in file order: the deployment is first only read; then it is tampered with by hand, and drift and
the plan-based review report exactly that; last, the customer's file is removed and its stack
destroyed from a base commit.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataplane.ops.fleet import plan as fleet_plan
from dataplane.ops.pipeline.plan_review import read_plan
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SETTINGS_ENV
from dataplane.runtime.toolchain import tool_environment
from tests.conftest import FIXTURES, run_main
from tests.deploy import Deployment, stage

CUSTOMER, UNDEPLOYED = "globex", "acme"
CI_ACCOUNT = "999999999999"
CONTROL_PLANE, INTRUDER = "arn:aws:iam::406882777402:root", "arn:aws:iam::123456789012:root"


@pytest.fixture(scope="module")
def deployment(emulator, customers, settings, tmp_path_factory) -> Deployment:
    """The peering fixture deployed with `make deploy`, and its configuration synthesized as the base."""
    emulator.reset()
    staged = stage(emulator, customers[CUSTOMER], settings, tmp_path_factory.mktemp("plan"))
    deployed = staged.make("deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    synthesized = run_main(staged.workdir / "base.out", **{CUSTOMERS_DIR_ENV: str(staged.workdir / "customers")})
    assert synthesized.returncode == 0, synthesized.stderr
    return staged


def base(deployment: Deployment) -> Path:
    return deployment.workdir / "base.out"


def head(deployment: Deployment, name: str, edit=None) -> Path:
    """A head synthesized beside the deployment (so the local state path is the same one): the customer's
    file edited by `edit`, or removed when `edit` is None."""
    customers = deployment.workdir / f"{name}-customers"
    customers.mkdir()
    if edit is not None:
        source = deployment.workdir / "customers" / f"{CUSTOMER}.toml"
        (customers / source.name).write_text(edit(source.read_text()))
    outdir = deployment.workdir / f"{name}.out"
    synthesized = run_main(outdir, **{CUSTOMERS_DIR_ENV: str(customers)})
    assert synthesized.returncode == 0, synthesized.stderr
    return outdir


def dataplane(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataplane", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=900, env=env)


def plan(deployment: Deployment, outdir: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    """`python -m dataplane plan-stacks` of `outdir` into `<outdir>.plans`, which it returns; it must find changes."""
    plans = outdir.with_suffix(".plans")
    planned = dataplane(env or deployment.env, "plan-stacks", "--outdir", str(outdir), "--out", str(plans), *args)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert re.search(rf"^{CUSTOMER}: changes( \(destroy\))? in \d+\.\d s$", planned.stdout, re.M), planned.stdout
    return plans


def review(deployment: Deployment, outdir: Path, plans: Path, fmt: str = "json") -> str:
    reviewed = dataplane(deployment.env, "review", "--base", str(base(deployment)), "--head", str(outdir),
                         "--plans", str(plans), "--format", fmt)
    assert reviewed.returncode == 0, reviewed.stderr
    return reviewed.stdout


def reviewed_stack(deployment: Deployment, outdir: Path, plans: Path) -> dict:
    [stack] = [s for s in json.loads(review(deployment, outdir, plans))["stacks"] if s["name"] == CUSTOMER]
    return stack


def terraform_summary(plans: Path, stack_dir: Path) -> tuple[int, int, int]:
    """terraform's own `Plan: a to add, c to change, d to destroy.` for the saved plan."""
    shown = subprocess.run(["terraform", "show", "-no-color", str(plans / f"{CUSTOMER}.tfplan")], cwd=stack_dir,
                           capture_output=True, text=True, timeout=300, env=tool_environment())
    found = re.search(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy", shown.stdout)
    assert found, shown.stdout + shown.stderr
    return tuple(int(n) for n in found.groups())


def fleet(deployment: Deployment) -> Path:
    """The fleet's head, synthesized once into the deployment's `cdktf.out` (beside its state), as `make synth`
    would: the deployed customer, and `acme`, never deployed."""
    outdir = deployment.workdir / "cdktf.out"
    if not (outdir / "manifest.json").is_file():
        customers = deployment.workdir / "fleet-customers"
        customers.mkdir()
        shutil.copy(deployment.workdir / "customers" / f"{CUSTOMER}.toml", customers)
        shutil.copy(FIXTURES / f"{UNDEPLOYED}.toml", customers)
        synthesized = run_main(outdir, **{CUSTOMERS_DIR_ENV: str(customers)})
        assert synthesized.returncode == 0, synthesized.stderr
    return outdir


def drift(env: dict[str, str], deployment: Deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataplane", "drift", "--outdir", str(fleet(deployment)), *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env=env)


def files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` but terraform's working files (`.terraform/`), with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and ".terraform" not in p.relative_to(directory).parts}


def test_a_cidr_and_external_id_change_is_reviewed_as_terraform_plans_it(deployment):
    """The counts are terraform's own; the VPC's replacement names `cidr_block`; the trust diff shows the ids."""
    outdir = head(deployment, "changed", lambda text: text.replace("172.20.0.0/19", "172.24.0.0/19").replace(
        "astro-8d41a6c0", "astro-rotated-1"))
    plans = plan(deployment, outdir, "--affected-from", str(base(deployment)))
    assert sorted(p.name for p in plans.iterdir()) == [f"{CUSTOMER}.plan.json", f"{CUSTOMER}.tfplan"]
    stack = reviewed_stack(deployment, outdir, plans)
    counts = stack["plan"]["counts"]
    add, change, destroy = terraform_summary(plans, outdir / "stacks" / CUSTOMER)
    assert (counts["create"] + counts["replace"], counts["update"], counts["destroy"] + counts["replace"]) == (
        add, change, destroy)
    replaced = {r["address"]: [a["path"] for a in r["attributes"]]
                for r in stack["plan"]["resources"] if r["action"] == "replace"}
    [vpc] = [address for address in replaced if address.startswith("aws_vpc.")]
    assert replaced[vpc] == ["cidr_block"]
    [role] = [r for r in stack["plan"]["resources"] if r["address"].startswith("aws_iam_role.")]
    assert role["action"] == "update" and [a["path"] for a in role["attributes"]] == ["assume_role_policy"]
    markdown = review(deployment, outdir, plans, "markdown")
    assert f"`{vpc}`" in markdown and "`cidr_block`" in markdown
    assert "ExternalId changed: `astro-8d41a6c0` → `astro-rotated-1`" in markdown
    warnings = stack["warnings"]  # most severe first: the one-sentence cause, access, then the plan's replacements
    assert warnings[0].startswith("root cause: network CIDR changed `172.20.0.0/19` → `172.24.0.0/19`: replaces the "
                                  f"VPC (`{vpc}`) and everything in it")
    assert [w for w in warnings if w.startswith("replaces ")] == warnings[-len(replaced):]
    assert markdown.index("root cause: network CIDR changed") < markdown.index(f"replaces `{vpc}`")


def test_the_rollout_s_counts_from_terraform_s_stream_are_the_saved_plan_s(deployment, tmp_path):
    """`plan_counted` (the rollout's plan: `terraform plan -json`, no `terraform show`) counts what the saved plan
    holds, replacements and updates alike."""
    outdir = head(deployment, "counted", lambda text: text.replace("172.20.0.0/19", "172.24.0.0/19").replace(
        "astro-8d41a6c0", "astro-rotated-1"))
    stack_dir, plan_file = outdir / "stacks" / CUSTOMER, tmp_path / f"{CUSTOMER}.tfplan"
    result, counts, error = fleet_plan.plan_counted(stack_dir, plan_file, deployment.env, fleet_plan._Init())
    assert (result, error) == ("changes", "")
    shown = subprocess.run(["terraform", "show", "-json", str(plan_file)], cwd=stack_dir, capture_output=True,
                           timeout=300, env=deployment.env, check=True)
    saved = read_plan(CUSTOMER, plan_file, shown.stdout).counts()
    assert counts == saved and saved["replace"] > 0 and saved["update"] > 0


def test_one_ci_identity_plans_the_customers_account_through_the_deploy_role(emulator, deployment, tmp_path):
    """Credentials of another account are refused by the stack's allowed account; with `deployRoleName`
    the tool assumes that role in the stack's account, and the freshly deployed stack has no changes."""
    ci = {**emulator.env(CI_ACCOUNT, deployment.customer.region, tool_environment()),
          CUSTOMERS_DIR_ENV: deployment.env[CUSTOMERS_DIR_ENV]}
    args = ["plan-stacks", "--outdir", str(base(deployment)), "--out", str(tmp_path / "plans"), CUSTOMER]
    refused = dataplane(ci, *args)
    assert refused.returncode == 1 and f"{CUSTOMER}: error in" in refused.stdout, refused.stdout + refused.stderr
    assert f"AWS account ID not allowed: {CI_ACCOUNT}" in refused.stdout
    assert not (tmp_path / "plans" / f"{CUSTOMER}.plan.json").exists()
    settings = tmp_path / "cdktf.json"
    context = json.loads((PROJECT_ROOT / "cdktf.json").read_text())["context"]
    settings.write_text(json.dumps({"context": {**context, "deployRoleName": "dataplane-deploy"}}))
    planned = dataplane({**ci, SETTINGS_ENV: str(settings)}, *args)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert re.search(rf"^{CUSTOMER}: no changes in", planned.stdout, re.M)
    assert json.loads((tmp_path / "plans" / f"{CUSTOMER}.plan.json").read_text())["resource_changes"]


def test_one_ci_identity_deploys_the_customers_account_through_the_deploy_role(emulator, deployment, tmp_path):
    """Without `deployRoleName`, deploy stops before anything runs (the credentials act in the CI account); with it,
    preflight reads the customer's account as that role, and the deploy (of the unchanged stack) succeeds."""
    ci = {**emulator.env(CI_ACCOUNT, deployment.customer.region, tool_environment()),
          CUSTOMERS_DIR_ENV: deployment.env[CUSTOMERS_DIR_ENV]}
    args = ["deploy", CUSTOMER, "--outdir", str(deployment.workdir / "cdktf.out"), "--outputs-dir", str(tmp_path)]
    refused = dataplane(ci, *args)
    assert refused.returncode == 1 and f"the credentials act in account {CI_ACCOUNT}" in refused.stderr, (
        refused.stdout + refused.stderr)
    settings = tmp_path / "cdktf.json"
    context = json.loads((PROJECT_ROOT / "cdktf.json").read_text())["context"]
    settings.write_text(json.dumps({"context": {**context, "deployRoleName": "dataplane-deploy"}}))
    ci[SETTINGS_ENV] = str(settings)
    account = deployment.customer.account_id
    checked = dataplane(ci, "preflight", CUSTOMER)
    assert f"assumed-role/dataplane-deploy/dataplane-preflight-{CUSTOMER} in account {account}" in checked.stdout, (
        checked.stdout + checked.stderr)
    deployed = dataplane(ci, *args)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    outputs = json.loads((tmp_path / f"{CUSTOMER}.json").read_text())[CUSTOMER]
    assert outputs["role_arn"] == deployment.outputs()["role_arn"]


def test_a_removed_customer_is_reviewed_as_its_whole_stack_destroyed(deployment):
    outdir = head(deployment, "removed")
    plans = plan(deployment, outdir, "--affected-from", str(base(deployment)))
    state = json.loads(deployment.state_file.read_text())
    managed = [r for r in state["resources"] if r["mode"] == "managed"]
    counts = reviewed_stack(deployment, outdir, plans)["plan"]["counts"]
    assert counts["destroy"] == sum(len(r["instances"]) for r in managed)
    assert counts["create"] == counts["update"] == counts["replace"] == 0


def test_a_fresh_deployment_is_in_sync_and_a_customer_without_state_is_not_deployed(deployment, tmp_path):
    """Also while a deploy holds the state lock (terraform's local lock: a POSIX lock on the state file): drift reads
    without taking it, so it never holds up a deploy."""
    report = tmp_path / "drift.md"
    with deployment.state_file.open("r+") as state:
        fcntl.lockf(state, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = drift(deployment.env, deployment, "--out", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    assert re.search(rf"^\[1/1\] {CUSTOMER}: in sync in \d+\.\d s$", done.stderr, re.M), done.stderr
    assert f"\n{UNDEPLOYED}: not deployed (no state)\n" in f"\n{done.stderr}"
    assert report.read_text() == (
        "Drift: 0 drifted, 1 in sync, 1 not deployed, 0 errors\n\n"
        "Refresh-only plans (`python -m dataplane drift`): what changed outside Terraform in each deployed customer's "
        "stack, found by refreshing its state against its account.\n\n"
        f"- In sync (1): `{CUSTOMER}`\n"
        f"- Not deployed (1): `{UNDEPLOYED}`\n")


def test_a_stack_terraform_cannot_plan_is_an_error_on_one_line(emulator, deployment):
    """Another account's credentials: the stack's provider refuses them (`allowed_account_ids`)."""
    env = {**emulator.env(CI_ACCOUNT, deployment.customer.region, tool_environment()),
           CUSTOMERS_DIR_ENV: deployment.env[CUSTOMERS_DIR_ENV]}
    done = drift(env, deployment, CUSTOMER, "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["stacks"] == [{"name": CUSTOMER, "status": "error", "error": (
        f"terraform plan failed: Error: AWS account ID not allowed: {CI_ACCOUNT}")}]
    found = re.search(rf"^\[1/1\] {CUSTOMER}: error in \d+\.\d s\n    Error: AWS account ID not allowed: {CI_ACCOUNT}\n"
                      r"(?:.*\n)*?    log: (\S+)$", done.stderr, re.M)
    assert found, done.stderr
    log = Path(found[1])
    assert log.parent == deployment.workdir / "logs" and log.name.startswith(f"{CUSTOMER}-drift-")
    assert f"Error: AWS account ID not allowed: {CI_ACCOUNT}" in log.read_text()


def test_a_route_deleted_the_trust_rewritten_and_a_tag_changed_are_exactly_the_drift(emulator, deployment, settings,
                                                                                     tmp_path):
    c = deployment.customer
    [table] = c.peering.route_table_ids
    emulator.client("ec2", c.peering.account_id, c.peer_region).delete_route(
        RouteTableId=table, DestinationCidrBlock=c.network.cidr)
    iam = emulator.client("iam", c.account_id, c.region)
    trust = iam.get_role(RoleName=settings.role_name)["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Principal"] = {"AWS": INTRUDER}
    iam.update_assume_role_policy(RoleName=settings.role_name, PolicyDocument=json.dumps(trust))
    ec2 = emulator.client("ec2", c.account_id, c.region)
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:customer", "Values": [CUSTOMER]}])["Vpcs"]
    [name] = [t["Value"] for t in vpc["Tags"] if t["Key"] == "Name"]
    ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "Name", "Value": "renamed-by-hand"}])
    before = files(deployment.workdir)
    temporary = tmp_path / "tmp"
    temporary.mkdir()

    done = drift({**deployment.env, "TMPDIR": str(temporary)}, deployment, "--format", "json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(rf"^\[1/1\] {CUSTOMER}: drifted in \d+\.\d s$", done.stderr, re.M), done.stderr
    report = json.loads(done.stdout)
    assert report["summary"] == {"drifted": 1, "in sync": 0, "not deployed": 1, "error": 0}
    [stack] = [s for s in report["stacks"] if s["name"] == CUSTOMER]
    state = json.loads(deployment.state_file.read_text())

    def address(rtype: str, **attributes: str) -> str:
        [found] = [f"{r['type']}.{r['name']}" for r in state["resources"] if r["mode"] == "managed"
                   and r["type"] == rtype and attributes.items() <= r["instances"][0]["attributes"].items()]
        return found
    drifted = {d["address"]: d for d in stack["drift"]}
    assert {a: (d["deleted"], [x["path"] for x in d["attributes"]]) for a, d in drifted.items()} == {
        address("aws_iam_role"): (False, ["assume_role_policy"]),
        address("aws_route", route_table_id=table): (True, []),
        address("aws_vpc"): (False, ["tags.Name", "tags_all.Name"])}
    [trust_change] = drifted[address("aws_iam_role")]["attributes"]
    assert CONTROL_PLANE in trust_change["before"] and INTRUDER in trust_change["after"]
    assert [(json.loads(a["before"]), json.loads(a["after"])) for a in drifted[address("aws_vpc")]["attributes"]] == [
        (name, "renamed-by-hand")] * 2
    # Drift writes only its report: the plans went to a private temporary directory, since removed; the state is as
    # it was (a refresh-only plan records nothing).
    assert list(temporary.iterdir()) == []
    assert files(deployment.workdir) == before


def test_drift_a_plan_finds_is_reported_apart_from_the_change(emulator, deployment):
    """After the tampering above: the route deleted by hand is drift, and the plan creates it again."""
    outdir = head(deployment, "drift", lambda text: text.replace("astro-8d41a6c0", "astro-rotated-2"))
    plans = plan(deployment, outdir, CUSTOMER)
    stack = reviewed_stack(deployment, outdir, plans)
    [route] = [d["address"] for d in stack["plan"]["drift"] if d["deleted"]]
    assert route.startswith("aws_route.")
    assert {r["address"] for r in stack["plan"]["resources"] if r["action"] == "create"} == {route}
    markdown = review(deployment, outdir, plans, "markdown")
    drift = markdown.index("Drift:")
    assert route in markdown[drift:] and "ExternalId changed" in markdown[:drift]


def base_commit(deployment: Deployment) -> str:
    """A commit of this project (HEAD's code) whose fleet is the deployed customer alone; no ref points at it."""
    env = {**os.environ, "GIT_INDEX_FILE": str(deployment.workdir / "index"), "GIT_AUTHOR_NAME": "test",
           "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "test",
           "GIT_COMMITTER_EMAIL": "test@example.com"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()
    git("read-tree", "HEAD")
    git("rm", "--cached", "-r", "-q", "--ignore-unmatch", "customers")
    blob = git("hash-object", "-w", str(deployment.workdir / "customers" / f"{CUSTOMER}.toml"))
    git("update-index", "--add", "--cacheinfo", f"100644,{blob},customers/{CUSTOMER}.toml")
    return git("commit-tree", git("write-tree"), "-p", "HEAD", "-m", "fleet with the deployed customer")


def test_offboarding_destroys_from_the_base_and_keeps_the_customers_own_resources(emulator, deployment):
    gone = deployment.workdir / "offboarded-customers"
    gone.mkdir()
    commit = base_commit(deployment)
    destroyed = deployment.make("destroy", f"BASE={commit}", "YES=1", **{CUSTOMERS_DIR_ENV: str(gone)})
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert not json.loads(deployment.state_file.read_text())["resources"]
    c = deployment.customer
    ec2 = emulator.client("ec2", c.account_id, c.region)
    assert not ec2.describe_vpcs(Filters=[{"Name": "tag:customer", "Values": [CUSTOMER]}])["Vpcs"]
    assert not emulator.client("iam", c.account_id, c.region).list_roles()["Roles"]
    peer = emulator.client("ec2", c.peering.account_id, c.peer_region)
    assert peer.describe_vpcs(VpcIds=[c.peering.vpc_id])["Vpcs"]
    [table] = peer.describe_route_tables(RouteTableIds=c.peering.route_table_ids)["RouteTables"]
    assert [r for r in table["Routes"] if r.get("VpcPeeringConnectionId")] == []
    leftovers = [p.name for p in deployment.workdir.iterdir() if p.name.startswith(".cdktf.out.destroy")]
    assert leftovers == []
