"""Project settings from cdktf.json context: defaults, overrides, refusals."""

from __future__ import annotations

import json

import pytest
from cdktf import Testing

from dataplane.config.errors import ConfigError
from dataplane.config.settings import Settings, load_project, load_settings
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


def test_control_plane_role_is_trusted_instead_of_root(tmp_path):
    arn = "arn:aws:iam::406882777402:role/control-plane"
    assert load_settings(write_settings(tmp_path, {"controlPlaneRoleArn": arn})).trusted_principal == arn


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
     "a policy of account 123456789012 only, but each customer's role is in the customer's account and needs a "
     "boundary policy there; write the policy's name ('boundaries/DataPlane')"),
    ({"permissionsBoundary": "arn:aws-us-gov:iam::aws:policy/PowerUserAccess"}, "context.permissionsBoundary",
     "'aws-us-gov' partition; this tool activates commercial AWS regions only"),
    ({"permissionsBoundary": "/boundaries/DataPlane"}, "context.permissionsBoundary", "or a policy name"),
    ({"permissionsBoundary": "Data Plane"}, "context.permissionsBoundary", "or a policy name"),
    ({"permissionsBoundary": ""}, "context.permissionsBoundary", "or a policy name"),
    ({"backend": {"type": "s3", "region": "us-east-1"}}, "context.backend.s3.bucket", "required"),
    ({"backend": {"type": "s3", "bucket": "b-1", "region": "us-east-1", "keyPrefix": "/x/"}},
     "context.backend.s3.keyPrefix", "key prefix"),
    *[({"backend": {"type": "s3", "bucket": "b-1", "region": "us-east-1", "keyPrefix": prefix}},
       "context.backend.s3.keyPrefix", "without . or .. segments") for prefix in ("..", ".", "a/../b", "a/.", "./a")],
    *[({"backend": {"type": "s3", "bucket": "b-1", "region": region}}, "context.backend.s3.region",
       "not a region of the commercial AWS partition") for region in ("xx-fake-9", "cn-north-1", "us-gov-west-1")],
    *[({"backend": {"type": "s3", "bucket": bucket, "region": "us-east-1"}}, "context.backend.s3.bucket",
       "is not an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens")
      for bucket in ("ab", "a" * 64, "Astro-state", "astro_state", "-astro", "astro-", ".astro", "astro.", "astro..state",
                     "astró")],
    ({"backend": {"type": "s3", "bucket": "192.168.1.1", "region": "us-east-1"}}, "context.backend.s3.bucket",
     "formatted as an IP address"),
    *[({"backend": {"type": "s3", "bucket": bucket, "region": "us-east-1"}}, "context.backend.s3.bucket",
       "a prefix or suffix S3 reserves")
      for bucket in ("xn--astro", "sthree-astro", "amzn-s3-demo-astro", "astro-s3alias", "astro--ol-s3", "astro.mrap",
                     "astro--x-s3", "astro--table-s3")],
    ({"backend": {"type": "gcs"}}, "context.backend", "does not match any of the expected tags"),
])
def test_bad_settings_name_file_and_field(tmp_path, context, field, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, context))
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"{tmp_path / 'cdktf.json'}: {field}: ") and words in p for p in problems), problems


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


def test_no_boundary_by_default(customers, settings):
    [role] = json.loads(Testing.synth(DataPlaneStack(Testing.app(), customers["acme"], settings)))[
        "resource"]["aws_iam_role"].values()
    assert "permissions_boundary" not in role
