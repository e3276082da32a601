"""Project settings from cdktf.json context: defaults, overrides, refusals."""

from __future__ import annotations

import json
import re

import pytest
from cdktf import Testing

from dataplane.config.customer import (
    NAME_RULE,
    OPT_IN_REGIONS,
    SUPPORTED_REGIONS,
    CustomerRules,
)
from dataplane.config.errors import ConfigError
from dataplane.config.settings import (
    CUSTOMER_NAME_MAX,
    WORKSPACE_NAME_MAX,
    Settings,
    load_project,
    load_settings,
)
from dataplane.ops.fleet.unlock import unlock
from dataplane.policy import DelegationGuard, admin_equivalent
from dataplane.project import CUSTOMERS_DIR_ENV
from stacks import DataPlaneStack
from tests.conftest import FIXTURES


def write_settings(tmp_path, context):
    path = tmp_path / "cdktf.json"
    path.write_text(json.dumps({"language": "python", "app": "python main.py", "context": context}))
    return path


def test_defaults(tmp_path):
    settings = load_settings(write_settings(tmp_path, {}))
    assert settings.control_plane_account_id == "406882777402"
    assert settings.role_name == "astronomer-remote-management"
    assert settings.customers_dir == "customers"
    assert settings.max_session_duration == 3600
    assert settings.backend.type == "local"
    assert settings.trusted_principal == "arn:aws:iam::406882777402:root"
    assert settings.min_network_prefix == 19
    assert settings.supported_regions == tuple(sorted(SUPPORTED_REGIONS)) and settings.opt_in_regions is None
    assert settings.customer_rules == CustomerRules() == CustomerRules(None, 19, SUPPORTED_REGIONS, OPT_IN_REGIONS)


def test_control_plane_role_is_trusted_instead_of_root(tmp_path):
    arn = "arn:aws:iam::406882777402:role/control-plane"
    settings = load_settings(write_settings(tmp_path, {"controlPlaneRoleArn": arn}))
    assert settings.trusted_principal == arn and settings.customer_rules.control_plane_role_arn == arn


def test_vendor_rules_as_settings(tmp_path):
    settings = load_settings(write_settings(tmp_path, {"minNetworkPrefix": 20, "supportedRegions": [
        "us-east-1", "eu-north-1", "af-south-1"], "optInRegions": ["af-south-1"]}))
    assert settings.customer_rules == CustomerRules(min_network_prefix=20, supported_regions=frozenset({
        "us-east-1", "eu-north-1", "af-south-1"}), opt_in_regions=frozenset({"af-south-1"}))


def test_opt_in_regions_default_to_the_supported_ones_of_today_s_list(tmp_path):
    settings = load_settings(write_settings(tmp_path, {"supportedRegions": ["us-east-1", "me-south-1"]}))
    assert settings.customer_rules.opt_in_regions == {"me-south-1"}
    assert load_settings(write_settings(tmp_path, {"optInRegions": []})).customer_rules.opt_in_regions == set()


def test_s3_backend_key_per_customer(tmp_path):
    settings = load_settings(write_settings(tmp_path, {"backend": {
        "type": "s3", "bucket": "astro-state", "region": "us-east-1", "keyPrefix": "activation/prod"}}))
    assert settings.backend.key("acme") == "activation/prod/acme.tfstate"


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "astro.state-1", "1-2.3", "my-s3alias-bucket", "xn-abc",
                                    "192.168.1.1a", "192.168.1"])
def test_s3_bucket_names_that_s3_allows(tmp_path, bucket):
    settings = load_settings(write_settings(tmp_path, {"backend": {"type": "s3", "bucket": bucket,
                                                                   "region": "eu-north-1"}}))
    assert (settings.backend.bucket, settings.backend.region) == (bucket, "eu-north-1")


def test_deploy_role_in_each_customer_s_account(tmp_path):
    settings = load_settings(write_settings(tmp_path, {"deployRoleName": "dataplane-deployer"}))
    assert settings.deploy_role_arn("123456789012") == "arn:aws:iam::123456789012:role/dataplane-deployer"
    assert load_settings(write_settings(tmp_path, {})).deploy_role_arn("123456789012") is None


@pytest.mark.parametrize("name, words", [
    ("bad name", "'bad name' is not an IAM role name (1-64 of A-Z a-z 0-9 + = , . @ _ -)"),
    ("d" * 65, "is not an IAM role name"),
    ("path/deployer", "is not an IAM role name"),
    ("astronomer-remote-management", "'astronomer-remote-management' is the role this tool creates for the control "
                                     "plane (roleName), which only the control plane may assume"),
])
def test_a_bad_deploy_role_name_is_one_problem(tmp_path, name, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, {"deployRoleName": name}))
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{tmp_path / 'cdktf.json'}: context.deployRoleName: ") and words in str(problem)


def test_plan_role_in_each_customer_s_account_else_the_deploy_role(tmp_path):
    both = load_settings(write_settings(tmp_path, {"deployRoleName": "dataplane-deploy", "planRoleName": "dp-plan"}))
    assert both.plan_role_arn("123456789012") == "arn:aws:iam::123456789012:role/dp-plan"
    assert both.deploy_role_arn("123456789012") == "arn:aws:iam::123456789012:role/dataplane-deploy"
    deploy_only = load_settings(write_settings(tmp_path, {"deployRoleName": "dataplane-deploy"}))
    assert deploy_only.plan_role_arn("123456789012") == "arn:aws:iam::123456789012:role/dataplane-deploy"
    assert load_settings(write_settings(tmp_path, {})).plan_role_arn("123456789012") is None


@pytest.mark.parametrize("context, key, words", [
    ({"planRoleName": "astronomer-remote-management"}, "planRoleName", "is also roleName or deployRoleName"),
    ({"planRoleName": "dp", "deployRoleName": "dp"}, "planRoleName", "is also roleName or deployRoleName"),
    ({"planRoleName": "role/plan"}, "planRoleName", "is not an IAM role name"),
    ({"applyEnvironment": ""}, "applyEnvironment", "is not a GitHub environment name"),
    ({"applyEnvironment": "prod:*"}, "applyEnvironment", "is not a GitHub environment name"),
])
def test_a_bad_plan_role_or_apply_environment_is_one_problem(tmp_path, context, key, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, context))
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{tmp_path / 'cdktf.json'}: context.{key}: ") and words in str(problem)


def test_cloud_backend_one_workspace_per_customer(tmp_path):
    backend = load_settings(write_settings(tmp_path, {"backend": {"type": "cloud", "organization": "astro_platform-1"}}
                                           )).backend
    assert (backend.organization, backend.hostname, backend.workspace("acme")) == (
        "astro_platform-1", "app.terraform.io", "dataplane-acme")


@pytest.mark.parametrize("prefix, hostname", [("", "tfe.example.com"), ("Data_Plane-", "tfe.example.com:8443"),
                                              ("p" * 50, "localhost")])
def test_cloud_backend_prefixes_and_hostnames(tmp_path, prefix, hostname):
    backend = load_settings(write_settings(tmp_path, {"backend": {
        "type": "cloud", "organization": "astro", "workspacePrefix": prefix, "hostname": hostname}})).backend
    assert (backend.workspace("acme"), backend.hostname) == (f"{prefix}acme", hostname)


def test_the_longest_prefix_and_customer_name_fit_a_workspace_name():
    assert NAME_RULE.fullmatch("a" * CUSTOMER_NAME_MAX) and not NAME_RULE.fullmatch("a" * (CUSTOMER_NAME_MAX + 1))
    backend = Settings.model_validate({"backend": {"type": "cloud", "organization": "astro",
                                                   "workspacePrefix": "p" * 50}}).backend
    assert len(backend.workspace("a" * CUSTOMER_NAME_MAX)) == WORKSPACE_NAME_MAX


def test_unlock_points_a_cloud_backend_to_its_workspace(customers):
    settings = Settings.model_validate({"backend": {"type": "cloud", "organization": "astro"}})
    message = unlock(customers["acme"], settings, None, lambda prompt: pytest.fail("nothing to confirm"))
    assert message == ("acme uses the cloud backend, which keeps its own lock: unlock the workspace dataplane-acme in "
                       "HCP Terraform (https://app.terraform.io/app/astro/workspaces/dataplane-acme), and only if the "
                       "run holding it is dead")


def test_environment_overrides_customers_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, "elsewhere")
    assert load_settings(write_settings(tmp_path, {"customersDir": "customers"})).customers_dir == "elsewhere"


@pytest.mark.parametrize("context, field, words", [
    ({"roleName": "bad name"}, "context.roleName", "IAM role name"),
    ({"rolename": "x"}, "context.rolename", "unknown key"),
    ({"controlPlaneAccountId": 406882777402}, "context.controlPlaneAccountId", "quoted string"),
    ({"maxSessionDuration": 60}, "context.maxSessionDuration", "greater than or equal to 3600"),
    ({"controlPlaneRoleArn": "arn:aws:iam::111122223333:role/x"}, "context", "role in controlPlaneAccountId"),
    ({"controlPlaneRoleArn": "arn:aws-cn:iam::406882777402:role/x"}, "context.controlPlaneRoleArn",
     "'aws-cn' partition; this tool activates commercial AWS regions only"),
    ({"permissionsBoundaryArn": "arn:aws:iam::aws:policy/PowerUserAccess"}, "context.permissionsBoundaryArn",
     "renamed to permissionsBoundary, which takes the name of a policy"),
    ({"permissionsBoundary": "arn:aws:iam::aws:role/x"}, "context.permissionsBoundary",
     "not an AWS-managed policy ARN (arn:aws:iam::aws:policy/<name>) or a policy name"),
    ({"permissionsBoundary": "arn:aws:iam::123456789012:policy/boundaries/DataPlane"}, "context.permissionsBoundary",
     "a policy of account 123456789012 only, but each customer's role is in the customer's account and needs the "
     "policy there; write the policy's name ('boundaries/DataPlane')"),
    ({"permissionsBoundary": "arn:aws-us-gov:iam::aws:policy/PowerUserAccess"}, "context.permissionsBoundary",
     "'aws-us-gov' partition; this tool activates commercial AWS regions only"),
    ({"permissionsBoundary": "/boundaries/DataPlane"}, "context.permissionsBoundary", "or a policy name"),
    ({"permissionsBoundary": "Data Plane"}, "context.permissionsBoundary", "or a policy name"),
    ({"permissionsBoundary": ""}, "context.permissionsBoundary", "or a policy name"),
    ({"managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AdministratorAccess"]},
     "context.managedPolicyArns", "'arn:aws:iam::aws:policy/AdministratorAccess' would make the role an administrator"),
    ({"managedPolicyArns": [f"Policy{i}" for i in range(21)]}, "context.managedPolicyArns", "at most 20 item"),
    ({"managedPolicyArns": ["Audit", "Audit"]}, "context.managedPolicyArns", "lists 'Audit' twice"),
    ({"managedPolicyArns": ["arn:aws:iam::123456789012:policy/Audit"]}, "context.managedPolicyArns[0]",
     "a policy of account 123456789012 only"),
    ({"managedPolicyArns": "Audit"}, "context.managedPolicyArns", "must be an array, not string"),
    ({"delegationBoundary": "arn:aws:iam::123456789012:policy/b"}, "context.delegationBoundary",
     "a policy of account 123456789012 only"),
    ({"delegationBoundary": "Data Plane"}, "context.delegationBoundary", "or a policy name"),
    ({"backend": {"type": "s3", "region": "us-east-1"}}, "context.backend.s3.bucket", "required"),
    ({"backend": {"type": "s3", "bucket": "b-1", "region": "us-east-1", "keyPrefix": "/x/"}},
     "context.backend.s3.keyPrefix", "key prefix"),
    *[({"backend": {"type": "s3", "bucket": "b-1", "region": "us-east-1", "keyPrefix": prefix}},
       "context.backend.s3.keyPrefix", "without . or .. segments") for prefix in ("..", ".", "a/../b", "a/.", "./a")],
    *[({"backend": {"type": "s3", "bucket": "b-1", "region": region}}, "context.backend.s3.region",
       "not a region of the commercial AWS partition") for region in ("xx-fake-9", "cn-north-1", "us-gov-west-1")],
    *[({"backend": {"type": "s3", "bucket": bucket, "region": "us-east-1"}}, "context.backend.s3.bucket",
       "is not an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens")
      for bucket in ("ab", "a" * 64, "Astro-state", "astro_state", "-astro", "astro-", ".astro", "astro.",
                     "astro..state", "astró")],
    ({"backend": {"type": "s3", "bucket": "192.168.1.1", "region": "us-east-1"}}, "context.backend.s3.bucket",
     "formatted as an IP address"),
    *[({"backend": {"type": "s3", "bucket": bucket, "region": "us-east-1"}}, "context.backend.s3.bucket",
       "a prefix or suffix S3 reserves")
      for bucket in ("xn--astro", "sthree-astro", "amzn-s3-demo-astro", "astro-s3alias", "astro--ol-s3", "astro.mrap",
                     "astro--x-s3", "astro--table-s3")],
    ({"backend": {"type": "gcs"}}, "context.backend", "does not match any of the expected tags"),
    ({"backend": {"type": "cloud"}}, "context.backend.cloud.organization", "required"),
    *[({"backend": {"type": "cloud", "organization": org}}, "context.backend.cloud.organization",
       "is not an HCP Terraform organization name (letters, digits, _ and -)")
      for org in ("", "astro platform", "a.b")],
    *[({"backend": {"type": "cloud", "organization": "astro", "workspacePrefix": prefix}},
       "context.backend.cloud.workspacePrefix", "is not a workspace name prefix: at most 50 of A-Z a-z 0-9 _ -, so "
       "that <prefix><customer> stays within HCP Terraform's 90 characters")
      for prefix in ("p" * 51, "data.plane-", "dp/")],
    *[({"backend": {"type": "cloud", "organization": "astro", "hostname": hostname}}, "context.backend.cloud.hostname",
       "is not a hostname, optionally with a port") for hostname in ("https://app.terraform.io", "app.terraform.io/",
                                                                     "-tfe.example.com", "tfe..example.com", "")],
    ({"backend": {"type": "cloud", "organization": "astro", "workspace": "x"}}, "context.backend.cloud.workspace",
     "unknown key"),
])
def test_bad_settings_name_file_and_field(tmp_path, context, field, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, context))
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"{tmp_path / 'cdktf.json'}: {field}: ") and words in p for p in problems), problems


NOT_A_PREFIX = "is neither 19 (a /19, the seed's rule) nor 20 (a /20, the vendor's AWS minimum since March 2023)"
NOT_COMMERCIAL = "is not a region of the commercial AWS partition (aws), such as us-east-1; this tool activates " \
                 "commercial regions only"


@pytest.mark.parametrize("context, field, message", [
    ({"minNetworkPrefix": 21}, "context.minNetworkPrefix", f"21 {NOT_A_PREFIX}"),
    ({"minNetworkPrefix": 16}, "context.minNetworkPrefix", f"16 {NOT_A_PREFIX}"),
    ({"minNetworkPrefix": "20"}, "context.minNetworkPrefix", "must be an integer, not string '20'"),
    ({"minNetworkPrefix": 19.0}, "context.minNetworkPrefix", "must be an integer, not float 19.0"),
    ({"minNetworkPrefix": True}, "context.minNetworkPrefix", "must be an integer, not boolean True"),
    ({"supportedRegions": []}, "context.supportedRegions", "must list at least 1 item(s)"),
    ({"supportedRegions": "us-east-1"}, "context.supportedRegions", "must be an array, not string 'us-east-1'"),
    ({"supportedRegions": ["us-east-1", "us-east-1"]}, "context.supportedRegions", "lists 'us-east-1' twice"),
    ({"supportedRegions": ["us-east-1", "mars-1"]}, "context.supportedRegions[1]", f"'mars-1' {NOT_COMMERCIAL}"),
    ({"supportedRegions": ["cn-north-1"]}, "context.supportedRegions[0]", f"'cn-north-1' {NOT_COMMERCIAL}"),
    ({"supportedRegions": [1]}, "context.supportedRegions[0]", "must be a quoted string, not integer 1"),
    ({"optInRegions": ["eu-north-1"]}, "context.optInRegions",
     "'eu-north-1' not in supportedRegions; an opt-in region must be a supported region"),
    ({"supportedRegions": ["us-east-1"], "optInRegions": ["af-south-1", "me-south-1"]}, "context.optInRegions",
     "'af-south-1', 'me-south-1' not in supportedRegions; an opt-in region must be a supported region"),
    ({"optInRegions": ["me-south-1", "me-south-1"]}, "context.optInRegions", "lists 'me-south-1' twice"),
    ({"optInRegions": ["us-gov-west-1"]}, "context.optInRegions[0]", f"'us-gov-west-1' {NOT_COMMERCIAL}"),
])
def test_a_bad_vendor_rule_is_one_problem(tmp_path, context, field, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, context))
    assert [str(p) for p in caught.value.problems] == [f"{tmp_path / 'cdktf.json'}: {field}: {message}"]


ADMIN = "would make the role an administrator of the customer's account; attach only what the control plane needs " \
        "beyond the activation permissions"
NOT_A_POLICY = "is not an AWS-managed policy ARN (arn:aws:iam::aws:policy/<name>) or a policy name, optionally with " \
               "a path (boundaries/DataPlane), without empty, . or .. segments"
GUARD_ADMIN = "is admin-equivalent: a role bounded by it could do almost anything, so the escalation guard would " \
              "bound nothing; name a policy that allows only what the control plane's roles need"
OUTSIDE = "is not a directory inside the project (a relative path without ..): customer files are reviewed with it; " \
          "DATAPLANE_CUSTOMERS_DIR may name one elsewhere"


@pytest.mark.parametrize("context, field, message", [
    *[({"managedPolicyArns": ["ReadOnly", policy]}, "context.managedPolicyArns", f"{policy!r} {ADMIN}") for policy in (
        "arn:aws:iam::aws:policy/administratoraccess", "arn:aws:iam::aws:policy/PowerUserAccess", "IAMFULLACCESS",
        "team/iamFullAccess", "arn:aws:iam::aws:policy/AWSOrganizationsFullAccess",
        "arn:aws:iam::aws:policy/AdministratorAccess-Amplify")],
    ({"managedPolicyArns": ["Audit", "team/Audit", "AUDIT"]}, "context.managedPolicyArns",
     "lists 'AUDIT' twice (IAM policy names ignore case)"),
    *[({"managedPolicyArns": [policy]}, "context.managedPolicyArns[0]", f"{policy!r} {NOT_A_POLICY}") for policy in (
        "team/../Audit", "team..x/Audit", "team//Audit", "./Audit", "team/.", "Audit/", "arn:aws:iam::aws:policy/",
        "arn:aws:iam::aws:policy//ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess ",
        "arn:aws:iam::aws:policy/ReadOnlyAccess/", "arn:aws:iam::aws:policy/ReadOnlyAccess,x:y")],
    *[({"delegationBoundary": policy}, "context.delegationBoundary", f"{policy!r} {GUARD_ADMIN}") for policy in (
        "arn:aws:iam::aws:policy/AdministratorAccess", "boundaries/PowerUserAccess", "iamfullaccess")],
    ({"delegationBoundary": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, "context.delegationBoundary",
     "'arn:aws:iam::aws:policy/ReadOnlyAccess' is an AWS-managed policy, which AWS may widen and the guard cannot "
     "protect; name a policy of each customer's own account (boundaries/DataPlane)"),
    ({"delegationBoundary": "boundaries/../DataPlane"}, "context.delegationBoundary",
     f"'boundaries/../DataPlane' {NOT_A_POLICY}"),
    *[({"customersDir": directory}, "context.customersDir", f"{directory!r} {OUTSIDE}") for directory in (
        "/srv/customers", "../customers", "customers/../../elsewhere", "..")],
])
def test_a_guard_no_setting_can_switch_off_is_one_problem(tmp_path, context, field, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, context))
    assert [str(p) for p in caught.value.problems] == [f"{tmp_path / 'cdktf.json'}: {field}: {message}"]


def test_customers_dir_stays_inside_the_project_through_links(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "fleet").mkdir(parents=True)
    (project / "outside").symlink_to(tmp_path)
    monkeypatch.setattr("dataplane.config.settings.PROJECT_ROOT", project)
    assert Settings.model_validate({"customersDir": "fleet/acme"}).customers_dir == "fleet/acme"
    with pytest.raises(ValueError, match=f"'outside/customers' {re.escape(OUTSIDE)}"):
        Settings.model_validate({"customersDir": "outside/customers"})


def test_the_environment_may_put_the_customers_anywhere(tmp_path, monkeypatch):
    path = write_settings(tmp_path, {"customersDir": "/srv/customers"})
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(tmp_path / "customers"))
    assert load_settings(path).customers_dir == str(tmp_path / "customers")
    monkeypatch.delenv(CUSTOMERS_DIR_ENV)
    with pytest.raises(ConfigError, match="context.customersDir: '/srv/customers' is not a directory inside"):
        load_settings(path)


def test_an_admin_equivalent_name_is_refused_in_any_spelling_only_as_a_name():
    assert [policy for policy in ("AdministratorAccess", "arn:aws:iam::aws:policy/ADMINISTRATORACCESS",
                                  "x/poweruseraccess", "AdministratorAccess-AWSElasticBeanstalk", "ReadOnlyAccess",
                                  "AdministratorAccessReview", "team/IAMReadOnlyAccess", "NotIAMFullAccess")
            if admin_equivalent(policy)] == ["AdministratorAccess", "arn:aws:iam::aws:policy/ADMINISTRATORACCESS",
                                             "x/poweruseraccess", "AdministratorAccess-AWSElasticBeanstalk"]


def test_the_permissions_boundary_may_still_be_aws_managed(tmp_path):
    settings = load_settings(write_settings(tmp_path, {
        "permissionsBoundary": "arn:aws:iam::aws:policy/PowerUserAccess",
        "managedPolicyArns": ["Audit", "arn:aws:iam::aws:policy/Audit"]}))
    assert settings.permissions_boundary_arn("123456789012") == "arn:aws:iam::aws:policy/PowerUserAccess"
    assert settings.managed_policy_arns_in("123456789012") == ("arn:aws:iam::123456789012:policy/Audit",
                                                                "arn:aws:iam::aws:policy/Audit")


def write_customer(directory, name: str, text: str) -> None:
    """A customer file of `text`, with the account id and, unless `text` has one, an ExternalId."""
    directory.mkdir(exist_ok=True)
    external_id = "" if "external_id" in text else 'external_id = "astro-3f9c2b7e"\n'
    (directory / f"{name}.toml").write_text(f'account_id = "123456789012"\n{external_id}{text}')


def test_the_loader_applies_the_settings_network_prefix(tmp_path):
    write_customer(tmp_path / "customers", "acme", 'region = "us-east-1"\n[network]\ncidr = "10.0.0.0/20"\n')
    with pytest.raises(ConfigError) as caught:
        load_project(write_settings(tmp_path, {}), tmp_path / "customers")
    assert [p.message for p in caught.value.problems] == [
        "10.0.0.0/20 is smaller than a /19; the data plane needs at least a /19"]
    _, [acme] = load_project(write_settings(tmp_path, {"minNetworkPrefix": 20}), tmp_path / "customers")
    assert acme.network.cidr == "10.0.0.0/20"


def test_the_loader_applies_the_settings_regions(tmp_path):
    write_customer(tmp_path / "customers", "acme", 'region = "eu-north-1"\n')
    _, [acme] = load_project(write_settings(tmp_path, {"supportedRegions": ["eu-north-1"], "optInRegions": [
        "eu-north-1"]}), tmp_path / "customers")
    assert acme.opt_in_region
    with pytest.raises(ConfigError) as caught:
        load_project(write_settings(tmp_path, {"supportedRegions": ["us-east-1", "us-west-2"]}), tmp_path / "customers")
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("region", "'eu-north-1' is not a supported Astro region (supported: us-east-1, us-west-2)")]
    with pytest.raises(ConfigError, match="'eu-north-1' is not a supported Astro region"):
        load_project(write_settings(tmp_path, {}), tmp_path / "customers")


def test_the_loader_sizes_the_trust_with_the_settings_principal(tmp_path):
    """ExternalIds that make the trust exactly 2,048 characters with the account root; the role ARN is 14 longer."""
    ids = f'["{"x" * 1224}", "{"y" * 606}"]'
    write_customer(tmp_path / "customers", "acme", f'region = "us-east-1"\nexternal_id = {ids}\n')
    assert load_project(write_settings(tmp_path, {}), tmp_path / "customers")[1][0].external_ids[1] == "y" * 606
    role = {"controlPlaneRoleArn": "arn:aws:iam::406882777402:role/control-plane"}
    with pytest.raises(ConfigError, match="acme.toml: external_id: the trust policy would be 2,062 characters"):
        load_project(write_settings(tmp_path, role), tmp_path / "customers")


def test_unreadable_settings(tmp_path):
    (tmp_path / "cdktf.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read project settings"):
        load_settings(tmp_path / "cdktf.json")


def test_project_loads_the_customers_of_the_given_directory():
    settings, customers = load_project(customers_dir=FIXTURES)
    assert [c.name for c in customers] == ["acme", "globex"]
    assert customers[0].network is None and customers[1].peering is not None


@pytest.mark.parametrize("boundary, in_acme", [
    (None, None),
    ("arn:aws:iam::aws:policy/PowerUserAccess", "arn:aws:iam::aws:policy/PowerUserAccess"),
    ("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess", "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"),
    ("DataPlaneBoundary", "arn:aws:iam::123456789012:policy/DataPlaneBoundary"),
    ("boundaries/DataPlane", "arn:aws:iam::123456789012:policy/boundaries/DataPlane"),
])
def test_permissions_boundary_resolves_in_each_customer_s_account(tmp_path, boundary, in_acme):
    context = {"permissionsBoundary": boundary} if boundary else {}
    assert load_settings(write_settings(tmp_path, context)).permissions_boundary_arn("123456789012") == in_acme


@pytest.mark.parametrize("boundary", ["arn:aws:iam::aws:policy/PowerUserAccess", "boundaries/DataPlane"])
def test_each_stack_s_role_has_the_boundary_of_its_account(customers, boundary):
    settings = Settings.model_validate({"permissionsBoundary": boundary})
    for customer in customers.values():
        stack = DataPlaneStack(Testing.app(), customer, settings)
        [role] = json.loads(Testing.synth(stack))["resource"]["aws_iam_role"].values()
        expected = boundary if boundary.startswith("arn:") else f"arn:aws:iam::{customer.account_id}:policy/{boundary}"
        assert role["permissions_boundary"] == expected


def test_managed_policies_and_the_delegation_boundary_resolve_in_each_customer_s_account():
    settings = Settings.model_validate({"managedPolicyArns": ["team/Extra", "arn:aws:iam::aws:policy/ReadOnlyAccess"],
                                        "delegationBoundary": "boundaries/DataPlane", "roleName": "activation"})
    assert settings.managed_policy_arns_in("123456789012") == (
        "arn:aws:iam::123456789012:policy/team/Extra", "arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert settings.delegation_guard("123456789012") == DelegationGuard(
        "arn:aws:iam::123456789012:policy/boundaries/DataPlane", "arn:aws:iam::123456789012:role/activation")
    assert Settings().managed_policy_arns_in("123456789012") == () and Settings().delegation_guard("1") is None


def test_no_boundary_by_default(customers, settings):
    [role] = json.loads(Testing.synth(DataPlaneStack(Testing.app(), customers["acme"], settings)))[
        "resource"]["aws_iam_role"].values()
    assert "permissions_boundary" not in role


def test_the_tamper_alarm_default_reaches_customers_without_their_own(tmp_path):
    write_customer(tmp_path / "customers", "acme", 'region = "us-east-1"\n')
    (tmp_path / "customers" / "globex.toml").write_text('account_id = "210987654321"\nregion = "us-east-1"\n'
                                                        'external_id = "astro-8d41a6c0"\n'
                                                        '[tamper_alarm]\nemail = "security@globex.example"\n')
    settings, customers = load_project(write_settings(tmp_path, {"tamperAlarm": {"email": "soc@astro.example"}}),
                                       tmp_path / "customers")
    assert settings.tamper_alarm.email == "soc@astro.example"
    assert {c.name: c.tamper_alarm.email for c in customers} == {"acme": "soc@astro.example",
                                                                 "globex": "security@globex.example"}
    assert [c.tamper_alarm for c in load_project(write_settings(tmp_path, {}), tmp_path / "customers")[1]] == [
        None, customers[1].tamper_alarm]


@pytest.mark.parametrize("context, field, message", [
    ({"tamperAlarm": {"email": "soc"}}, "context.tamperAlarm.email",
     "'soc' is not an email address (name@example.com, at most 254 characters)"),
    ({"tamperAlarm": {}}, "context.tamperAlarm.email", "required key is missing"),
    ({"tamperAlarm": "soc@astro.example"}, "context.tamperAlarm", "must be a table, not string 'soc@astro.example'"),
    ({"tamper_alarm": {"email": "soc@astro.example"}}, "context.tamper_alarm", "unknown key; did you mean tamperAlarm?"),
])
def test_a_bad_tamper_alarm_default_is_one_problem(tmp_path, context, field, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, context))
    assert [str(p) for p in caught.value.problems] == [f"{tmp_path / 'cdktf.json'}: {field}: {message}"]


def test_settings_written_back_as_cdktf_json_load_as_the_same_settings(tmp_path):
    """What the sandbox writes to .sandbox/cdktf.json (camelCase at every level) reads back unchanged."""
    settings = load_settings(write_settings(tmp_path, {
        "backend": {"type": "s3", "bucket": "state-bucket", "region": "us-east-1", "keyPrefix": "fleet"},
        "tamperAlarm": {"email": "soc@astro.example"}, "deployRoleName": "dataplane-deployer",
        "rollout": {"waves": [20, 100], "maxFailures": 1, "pauseBetweenWaves": 5}}))
    written = settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert load_settings(write_settings(tmp_path, written)) == settings


def test_each_wave_is_approved_unless_the_settings_say_otherwise(tmp_path):
    """`rollout.approveEachWave`: the apply workflow asks an approval before each wave (the default), or once after
    the canary for every wave left (false)."""
    assert Settings().rollout.approve_each_wave is True
    assert load_settings(write_settings(tmp_path, {"rollout": {"waves": [50, 100]}})).rollout.approve_each_wave is True
    given = load_settings(write_settings(tmp_path, {"rollout": {"approveEachWave": False}}))
    assert given.rollout.approve_each_wave is False
    assert given.model_dump(mode="json", by_alias=True)["rollout"]["approveEachWave"] is False


@pytest.mark.parametrize("rollout, field, message", [
    ({"approveEachWave": "no"}, "context.rollout.approveEachWave", "must be a boolean, not string 'no'"),
    ({"approveEachWave": 0}, "context.rollout.approveEachWave", "must be a boolean, not integer 0"),
    ({"approve_each_wave": False}, "context.rollout.approve_each_wave", "unknown key; did you mean approveEachWave?"),
])
def test_a_bad_approve_each_wave_is_one_problem(tmp_path, rollout, field, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, {"rollout": rollout}))
    assert [str(p) for p in caught.value.problems] == [f"{tmp_path / 'cdktf.json'}: {field}: {message}"]
