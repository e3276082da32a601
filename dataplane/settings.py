"""Project-wide settings, read from the `context` of `cdktf.json` (the CDKTF convention)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from dataplane.customer import AccountId, Customer, Region, RoleArn, pattern, load_customers
from dataplane.errors import ConfigError, Problem, problems_from_validation
from dataplane.toolchain import PROJECT_ROOT

CUSTOMERS_DIR_ENV = "DATAPLANE_CUSTOMERS_DIR"
MANAGED_BY = "dataplane-activation"

RoleName = Annotated[str, pattern(r"[\w+=,.@-]{1,64}", "an IAM role name (1-64 of A-Z a-z 0-9 + = , . @ _ -)")]
PolicyArn = Annotated[str, pattern(r"arn:aws(-[a-z]+)*:iam::(\d{12}|aws):policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}",
                                    "an IAM policy ARN")]
StateKeyPrefix = Annotated[str, pattern(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*",
                                         "a key prefix of path segments (A-Z a-z 0-9 . _ -) without leading or "
                                         "trailing slashes")]
BucketName = Annotated[str, pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name")]


class _Context(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True,
                              alias_generator=AliasGenerator(validation_alias=to_camel))


class LocalBackend(_Context):
    """One local state file per customer: `<stateDir>/<customer>.tfstate` beside the synth output dir."""

    type: Literal["local"] = "local"
    state_dir: Annotated[str, pattern(r"(?!\.\.?$)[A-Za-z0-9._-]+", "a directory name (A-Z a-z 0-9 . _ -)")] = "terraform-state"


class S3Backend(_Context):
    """One S3 object per customer: `<keyPrefix>/<customer>.tfstate`, encrypted, S3-native lock file."""

    type: Literal["s3"]
    bucket: BucketName
    region: Region
    key_prefix: StateKeyPrefix = "dataplane"

    def key(self, customer: str) -> str:
        return f"{self.key_prefix}/{customer}.tfstate"


class Settings(_Context):
    """The `context` block of cdktf.json, with defaults."""

    control_plane_account_id: AccountId = "406882777402"
    role_name: RoleName = "astronomer-remote-management"
    customers_dir: str = Field("customers", min_length=1)
    control_plane_role_arn: Optional[RoleArn] = None
    permissions_boundary_arn: Optional[PolicyArn] = None
    max_session_duration: int = Field(3600, ge=3600, le=43200)
    backend: Annotated[Union[LocalBackend, S3Backend], Field(discriminator="type")] = LocalBackend()

    @model_validator(mode="after")
    def _role_in_control_plane(self) -> "Settings":
        if self.control_plane_role_arn and self.control_plane_role_arn.split(":")[4] != self.control_plane_account_id:
            raise ValueError("controlPlaneRoleArn must be a role in controlPlaneAccountId")
        return self

    @property
    def trusted_principal(self) -> str:
        """Who may assume the cross-account role: the control-plane role, or its account root."""
        return self.control_plane_role_arn or f"arn:aws:iam::{self.control_plane_account_id}:root"


def load_settings(path: Path = PROJECT_ROOT / "cdktf.json") -> Settings:
    """Read and validate `context` from cdktf.json; `DATAPLANE_CUSTOMERS_DIR` overrides `customersDir`."""
    file = path.name if path.parent == PROJECT_ROOT else str(path)
    try:
        context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    except (OSError, ValueError, AttributeError) as e:
        raise ConfigError([Problem(file, "(file)", f"cannot read project settings: {e}")]) from None
    if override := os.environ.get(CUSTOMERS_DIR_ENV):
        context = {**context, "customersDir": override} if isinstance(context, dict) else context
    try:
        return Settings.model_validate(context)
    except ValidationError as e:
        raise ConfigError(problems_from_validation(file, e, prefix="context")) from None


def load_project(settings_path: Path = PROJECT_ROOT / "cdktf.json") -> tuple[Settings, list[Customer]]:
    """Settings and every customer, validated; raises `ConfigError` listing all problems."""
    settings = load_settings(settings_path)
    directory = PROJECT_ROOT / settings.customers_dir
    return settings, load_customers(directory, settings.control_plane_account_id, display_root=PROJECT_ROOT)
