"""Project settings from cdktf.json context: defaults, overrides, refusals."""

from __future__ import annotations

import json

import pytest

from dataplane.errors import ConfigError
from dataplane.settings import CUSTOMERS_DIR_ENV, load_project, load_settings


def write_settings(tmp_path, context) -> "Path":
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


def test_environment_overrides_customers_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, "elsewhere")
    assert load_settings(write_settings(tmp_path, {"customersDir": "customers"})).customers_dir == "elsewhere"


@pytest.mark.parametrize("context, field, words", [
    ({"roleName": "bad name"}, "context.roleName", "IAM role name"),
    ({"rolename": "x"}, "context.rolename", "unknown key"),
    ({"controlPlaneAccountId": 406882777402}, "context.controlPlaneAccountId", "quoted string"),
    ({"maxSessionDuration": 60}, "context.maxSessionDuration", "greater than or equal to 3600"),
    ({"controlPlaneRoleArn": "arn:aws:iam::111122223333:role/x"}, "context", "role in controlPlaneAccountId"),
    ({"permissionsBoundaryArn": "arn:aws:iam::aws:role/x"}, "context.permissionsBoundaryArn", "policy ARN"),
    ({"backend": {"type": "s3", "region": "us-east-1"}}, "context.backend.s3.bucket", "required"),
    ({"backend": {"type": "s3", "bucket": "b-1", "region": "us-east-1", "keyPrefix": "/x/"}},
     "context.backend.s3.keyPrefix", "key prefix"),
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


def test_checked_in_project_loads_both_examples():
    settings, customers = load_project()
    assert [c.name for c in customers] == ["acme", "globex"]
    assert customers[0].network is None and customers[1].peering is not None
