"""Project-wide settings, read from the `context` of `cdktf.json` (the CDKTF convention)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from dataplane.config.customer import (
    NAME_RULE,
    NETWORK_PREFIXES,
    OPT_IN_REGIONS,
    SUPPORTED_REGIONS,
    AccountId,
    AwsRegion,
    Customer,
    CustomerRules,
    RoleArn,
    TamperAlarm,
    commercial_partition,
    distinct,
    load_customers,
    pattern,
)
from dataplane.config.errors import (
    ConfigError,
    Problem,
    problems_from_validation,
    shown,
)
from dataplane.policy import (
    MANAGED_POLICIES_QUOTA,
    ROLE_NAME,
    DelegationGuard,
    admin_equivalent,
    delegation_guard,
    in_account,
    trusted_principal,
)
from dataplane.project import CUSTOMERS_DIR_ENV, PROJECT_ROOT, SANDBOX_ENV, SETTINGS_ENV

RENAMED = {"context.permissionsBoundaryArn": "renamed to permissionsBoundary, which takes the name of a policy "
                                             "(the policy of that name in each customer's account) or an "
                                             "AWS-managed policy ARN"}
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
WORKSPACE_NAME_MAX = 90  # HCP Terraform's limit on a workspace name
CUSTOMER_NAME_MAX = 40  # the longest customer name (NAME_RULE in dataplane/config/customer.py)


def _policy_in_every_account(value: str) -> str:
    if policy := re.fullmatch(r"arn:aws:iam::(\d{12}):policy/(.*)", value, re.ASCII):
        raise ValueError(f"{shown(value)} is a policy of account {policy[1]} only, but each customer's role is in "
                         "the customer's account and needs the policy there; write the policy's name "
                         f"({shown(policy[2])}) for the policy of that name in each customer's account, or an "
                         "AWS-managed policy ARN (arn:aws:iam::aws:policy/<name>)")
    return value


def _network_prefix(value: int) -> int:
    if value not in NETWORK_PREFIXES:
        raise ValueError(f"{value} is neither 19 (a /19, the seed's rule) nor 20 (a /20, the vendor's AWS minimum "
                         "since March 2023)")
    return value


def _bucket_name_allowed(value: str) -> str:
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", value):
        raise ValueError(f"{shown(value)} is formatted as an IP address, which an S3 bucket name may not be")
    if value.startswith(RESERVED_BUCKET_PREFIXES) or value.endswith(RESERVED_BUCKET_SUFFIXES):
        raise ValueError(f"{shown(value)} begins or ends with a prefix or suffix S3 reserves "
                         f"({', '.join(RESERVED_BUCKET_PREFIXES)}; {', '.join(RESERVED_BUCKET_SUFFIXES)})")
    return value


def _not_escalating(values: tuple[str, ...]) -> tuple[str, ...]:
    if escalating := [policy for policy in values if admin_equivalent(policy)]:
        raise ValueError(f"{', '.join(map(shown, escalating))} would make the role an administrator of the customer's "
                         "account; attach only what the control plane needs beyond the activation permissions")
    return values


def _distinct_in_any_case(values: tuple[str, ...]) -> tuple[str, ...]:
    seen = set()
    for value in values:
        if value.lower() in seen:
            raise ValueError(f"lists {shown(value)} twice (IAM policy names ignore case)")
        seen.add(value.lower())
    return values


def _bounds_the_guard(value: str) -> str:
    if admin_equivalent(value):
        raise ValueError(f"{shown(value)} is admin-equivalent: a role bounded by it could do almost anything, so the "
                         "escalation guard would bound nothing; name a policy that allows only what the control "
                         "plane's roles need")
    if value.startswith("arn:"):
        raise ValueError(f"{shown(value)} is an AWS-managed policy, which AWS may widen and the guard cannot protect; "
                         "name a policy of each customer's own account (boundaries/DataPlane)")
    return value


def _inside_the_project(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not (PROJECT_ROOT / path).resolve().is_relative_to(
            PROJECT_ROOT.resolve()):
        raise ValueError(f"{shown(value)} is not a directory inside the project (a relative path without ..): "
                         "customer files are reviewed with it; DATAPLANE_CUSTOMERS_DIR may name one elsewhere")
    return value


RoleName = Annotated[str, pattern(r"[\w+=,.@-]{1,64}", "an IAM role name (1-64 of A-Z a-z 0-9 + = , . @ _ -)")]
PolicyInEveryAccount = Annotated[str, AfterValidator(commercial_partition), AfterValidator(_policy_in_every_account),
                                 pattern(r"(?!.*\.\.)(arn:aws:iam::aws:policy/)?((?!\./)[\w+=,.@-]+/)*"
                                         r"(?!\.$)[\w+=,.@-]{1,128}",
                                         "an AWS-managed policy ARN (arn:aws:iam::aws:policy/<name>) or a policy name, "
                                         "optionally with a path (boundaries/DataPlane), without empty, . or .. "
                                         "segments")]
"""A managed policy every customer's role can use: AWS-managed, or one of that name in each customer's account."""
ManagedPolicies = Annotated[tuple[PolicyInEveryAccount, ...], Field(strict=False, max_length=MANAGED_POLICIES_QUOTA),
                            AfterValidator(_distinct_in_any_case), AfterValidator(_not_escalating)]
DelegationBoundary = Annotated[PolicyInEveryAccount, AfterValidator(_bounds_the_guard)]
"""The escalation guard's boundary: a policy of that name in each customer's account, not an administrator's."""
CustomersDir = Annotated[str, Field(min_length=1), AfterValidator(_inside_the_project)]
StateKeyPrefix = Annotated[str, pattern(r"(?!(.*/)?\.\.?(/|$))[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*",
                                         "a key prefix of path segments (A-Z a-z 0-9 . _ -) without leading or "
                                         "trailing slashes and without . or .. segments")]
BucketName = Annotated[str, pattern(r"(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
                                    "an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, beginning "
                                    "and ending with a letter or digit, no two periods in a row"),
                       AfterValidator(_bucket_name_allowed)]
DeployerPrincipal = Annotated[str, AfterValidator(commercial_partition), pattern(
    r"arn:aws:iam::\d{12}:(root|(role|user)(/[\w+=,.@-]+)*/[\w+=,.@-]{1,64})",
    "an IAM principal ARN: an account (arn:aws:iam::<account>:root), a role or a user")]
"""Who may assume the deploy role the customer's bootstrap creates: the vendor's CI role, or its account."""
OrganizationId = Annotated[str, pattern(r"o-[a-z0-9]{10,32}", "an AWS Organizations id (o- and 10-32 of a-z 0-9)")]
EnvironmentName = Annotated[str, pattern(r"[A-Za-z0-9_.-]{1,255}",
                                         "a GitHub environment name (1-255 of A-Z a-z 0-9 _ . -)")]
OrganizationName = Annotated[str, pattern(r"[A-Za-z0-9_-]+",
                                          "an HCP Terraform organization name (letters, digits, _ and -)")]
WorkspacePrefix = Annotated[str, pattern(
    rf"[A-Za-z0-9_-]{{0,{WORKSPACE_NAME_MAX - CUSTOMER_NAME_MAX}}}",
    f"a workspace name prefix: at most {WORKSPACE_NAME_MAX - CUSTOMER_NAME_MAX} of A-Z a-z 0-9 _ -, so that "
    f"<prefix><customer> stays within HCP Terraform's {WORKSPACE_NAME_MAX} characters")]
Regions = Annotated[tuple[AwsRegion, ...], Field(strict=False), AfterValidator(distinct)]
Hostname = Annotated[str, pattern(r"(?=[^:]{1,253}(:|$))[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                                  r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:\d{1,5})?",
                                  "a hostname, optionally with a port (app.terraform.io), without scheme or path")]


class _Context(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True,
                              alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel))


class LocalBackend(_Context):
    """One local state file per customer: `<stateDir>/<customer>.tfstate` beside the synth output dir."""

    type: Literal["local"] = "local"
    state_dir: Annotated[str, pattern(r"(?!\.\.?$)[A-Za-z0-9._-]+",
                                      "a directory name (A-Z a-z 0-9 . _ -)")] = "terraform-state"


class S3Backend(_Context):
    """One S3 object per customer: `<keyPrefix>/<customer>.tfstate`, encrypted, S3-native lock file."""

    type: Literal["s3"]
    bucket: BucketName
    region: AwsRegion
    key_prefix: StateKeyPrefix = "dataplane"

    def key(self, customer: str) -> str:
        return f"{self.key_prefix}/{customer}.tfstate"


class CloudBackend(_Context):
    """One HCP Terraform (or Terraform Enterprise) workspace per customer: `<workspacePrefix><customer>`."""

    type: Literal["cloud"]
    organization: OrganizationName
    workspace_prefix: WorkspacePrefix = "dataplane-"
    hostname: Hostname = "app.terraform.io"

    def workspace(self, customer: str) -> str:
        return f"{self.workspace_prefix}{customer}"


def _cumulative(values: tuple[int, ...]) -> tuple[int, ...]:
    if any(later <= earlier for earlier, later in zip(values, values[1:])):
        raise ValueError(f"{list(values)} is not increasing: each wave is a cumulative percentage of the customers "
                         "after the canary")
    if values[-1] != 100:
        raise ValueError(f"{list(values)} ends at {values[-1]}, not 100: the last wave must reach every customer")
    return values


CustomerNames = Annotated[tuple[Annotated[str, pattern(NAME_RULE.pattern, "a customer name")], ...],
                          Field(strict=False), AfterValidator(distinct)]
WavePercentages = Annotated[tuple[Annotated[int, Field(ge=1, le=100)], ...], Field(strict=False, min_length=1),
                            AfterValidator(_cumulative)]


class Rollout(_Context):
    """`rollout`: how `python -m dataplane rollout` takes a change to the fleet, canary first, then in waves."""

    canary: CustomerNames = ()
    """The first wave: those of these customers whose stacks change (none: the first changed one in `order`)."""
    waves: WavePercentages = (10, 50, 100)
    """Cumulative percentages of the changed customers after the canary, one wave each."""
    order: CustomerNames = ()
    """Customers taken first, in this order; the others follow by name."""
    max_failures: int = Field(0, ge=0)
    """Failed customers tolerated before the rollout halts at the end of a wave."""
    pause_between_waves: int = Field(0, ge=0, le=86400)
    """Seconds of bake time between two waves."""
    max_customers_without_label: int = Field(10, ge=1)
    """A pull request changing more customers' roles than this needs the `fleet-change` label to apply."""
    approve_each_wave: bool = True
    """The apply workflow asks the apply environment's approval before each wave (true), or once after the canary
    for every wave left, run in one job that still halts at the first failed wave (false)."""


class Settings(_Context):
    """The `context` block of cdktf.json, with defaults."""

    control_plane_account_id: AccountId = "406882777402"
    role_name: RoleName = ROLE_NAME
    customers_dir: CustomersDir = "customers"
    control_plane_role_arn: Optional[RoleArn] = None
    permissions_boundary: Optional[PolicyInEveryAccount] = None
    managed_policy_arns: ManagedPolicies = ()
    delegation_boundary: Optional[DelegationBoundary] = None
    max_session_duration: int = Field(3600, ge=3600, le=43200)
    deploy_role_name: Optional[RoleName] = None
    plan_role_name: Optional[RoleName] = None
    """The read-only role plans and drift assume in each customer's account (None: `deploy_role_name`'s)."""
    deployer_principal_arn: Optional[DeployerPrincipal] = None
    """Who the bootstrap's deploy role trusts (`python -m dataplane bootstrap`): the vendor's deploying principal."""
    deployer_principal_org_id: Optional[OrganizationId] = None
    """With it, the deploy role's trust also requires the caller's AWS Organization (`aws:PrincipalOrgID`)."""
    deployer_requires_mfa: bool = False
    """With it, the deploy role's trust also requires a session signed in with MFA (`aws:MultiFactorAuthPresent`)."""
    deploy_role_boundary: Optional[PolicyInEveryAccount] = None
    """The boundary the bootstrap puts on the deploy role (a name: that policy in each customer's account)."""
    apply_environment: EnvironmentName = "dataplane-production"
    """The GitHub environment (with required reviewers) whose jobs alone may assume the CI apply role."""
    min_network_prefix: Annotated[int, AfterValidator(_network_prefix)] = NETWORK_PREFIXES[0]
    supported_regions: Annotated[Regions, Field(min_length=1)] = tuple(sorted(SUPPORTED_REGIONS))
    opt_in_regions: Optional[Regions] = None
    """None: those of `OPT_IN_REGIONS` that are supported."""
    backend: Annotated[Union[LocalBackend, S3Backend, CloudBackend], Field(discriminator="type")] = LocalBackend()
    tamper_alarm: Optional[TamperAlarm] = None
    """The tamper alarm of every customer whose file has no [tamper_alarm] of its own."""
    rollout: Rollout = Rollout()

    @field_validator("deploy_role_name")
    @classmethod
    def _deploy_role_is_not_the_activation_role(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is not None and value == info.data.get("role_name"):
            raise ValueError(f"{shown(value)} is the role this tool creates for the control plane (roleName), "
                             "which only the control plane may assume; name the role deployers assume instead")
        return value

    @field_validator("plan_role_name")
    @classmethod
    def _plan_role_is_its_own(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is not None and value in (info.data.get("role_name"), info.data.get("deploy_role_name")):
            raise ValueError(f"{shown(value)} is also roleName or deployRoleName; the plan role is read-only, so it "
                             "must be a role of its own")
        return value

    @field_validator("opt_in_regions")
    @classmethod
    def _opt_in_regions_are_supported(cls, value: Optional[tuple[str, ...]],
                                      info: ValidationInfo) -> Optional[tuple[str, ...]]:
        supported = info.data.get("supported_regions")
        if value and supported is not None and (unsupported := [r for r in value if r not in supported]):
            raise ValueError(f"{', '.join(map(shown, unsupported))} not in supportedRegions; an opt-in region "
                             "must be a supported region")
        return value

    @model_validator(mode="after")
    def _role_in_control_plane(self) -> "Settings":
        if self.control_plane_role_arn and self.control_plane_role_arn.split(":")[4] != self.control_plane_account_id:
            raise ValueError("controlPlaneRoleArn must be a role in controlPlaneAccountId")
        return self

    @property
    def trusted_principal(self) -> str:
        """Who may assume the cross-account role: the control-plane role, or its account root."""
        return trusted_principal(self.control_plane_account_id, self.control_plane_role_arn)

    @property
    def customer_rules(self) -> CustomerRules:
        """What these settings decide about customer files, for the loader."""
        return CustomerRules(control_plane_role_arn=self.control_plane_role_arn,
                             min_network_prefix=self.min_network_prefix,
                             supported_regions=frozenset(self.supported_regions),
                             opt_in_regions=frozenset(OPT_IN_REGIONS & set(self.supported_regions)
                                                      if self.opt_in_regions is None else self.opt_in_regions),
                             role_name=self.role_name, delegation_boundary=self.delegation_boundary,
                             tamper_alarm=self.tamper_alarm)

    def deploy_role_arn(self, account_id: str) -> Optional[str]:
        """The role deploy, activate, destroy, preflight and verify assume in `account_id` (None: the caller's own)."""
        if self.deploy_role_name is None:
            return None
        return f"arn:aws:iam::{account_id}:role/{self.deploy_role_name}"

    def deploy_role_boundary_arn(self, account_id: str) -> Optional[str]:
        """The bootstrap's boundary on the deploy role in `account_id` (`deployRoleBoundary`), or None."""
        return self.deploy_role_boundary and in_account(self.deploy_role_boundary, account_id)

    def plan_role_arn(self, account_id: str) -> Optional[str]:
        """The role plans and drift assume in `account_id`: `planRoleName`, else the deploy role (None: the
        caller's own)."""
        if self.plan_role_name is None:
            return self.deploy_role_arn(account_id)
        return f"arn:aws:iam::{account_id}:role/{self.plan_role_name}"

    def permissions_boundary_arn(self, account_id: str) -> Optional[str]:
        """The role's boundary in `account_id`: the AWS-managed policy, or the named policy in that account."""
        return self.permissions_boundary and in_account(self.permissions_boundary, account_id)

    def managed_policy_arns_in(self, account_id: str) -> tuple[str, ...]:
        """The managed policies attached to the role in `account_id`, sorted."""
        return tuple(sorted(in_account(policy, account_id) for policy in self.managed_policy_arns))

    def delegation_guard(self, account_id: str) -> Optional[DelegationGuard]:
        """The escalation guard of the role in `account_id` (`delegationBoundary`), or None: no guard."""
        return delegation_guard(self.delegation_boundary, account_id, self.role_name)


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate `context` from cdktf.json (or `DATAPLANE_SETTINGS`); `DATAPLANE_CUSTOMERS_DIR`
    overrides `customersDir`, with any path (the environment of tests and the sandbox, not a reviewed file)."""
    path, file = _settings_file(path)
    try:
        context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    except (OSError, ValueError, AttributeError) as e:
        raise ConfigError([Problem(file, "(file)", f"cannot read project settings: {e}")]) from None
    if (override := os.environ.get(CUSTOMERS_DIR_ENV)) and isinstance(context, dict):
        context = {key: value for key, value in context.items() if key != "customersDir"}  # replaced, so not checked
    try:
        settings = Settings.model_validate(context)
    except ValidationError as e:
        raise ConfigError(problems_from_validation(file, e, prefix="context", renamed=RENAMED,
                                                    model=Settings)) from None
    return settings.model_copy(update={"customers_dir": override}) if override else settings


def _settings_file(path: Path | None) -> tuple[Path, str]:
    """The settings file (`path`, else `DATAPLANE_SETTINGS`, else cdktf.json) and its name in messages."""
    path = path or Path(os.environ.get(SETTINGS_ENV) or PROJECT_ROOT / "cdktf.json")
    return path, path.name if path.parent == PROJECT_ROOT else str(path)


def load_project(settings_path: Path | None = None,
                 customers_dir: Path | None = None) -> tuple[Settings, list[Customer]]:
    """Settings and every customer (of `customers_dir`, else the settings'), validated; raises `ConfigError`."""
    settings = load_settings(settings_path)
    directory = customers_dir or PROJECT_ROOT / settings.customers_dir
    customers = load_customers(directory, settings.control_plane_account_id, display_root=PROJECT_ROOT,
                               rules=settings.customer_rules)
    names = {c.name for c in customers}
    if problems := [Problem(_settings_file(settings_path)[1], f"context.rollout.{key}",
                            f"{shown(name)} is not a customer of the fleet ({', '.join(sorted(names)) or 'none'})")
                    for key in ("canary", "order") for name in getattr(settings.rollout, key) if name not in names]:
        raise ConfigError(problems)
    return settings, customers


class UnknownCustomer(Exception):
    """A name that is not a customer of the fleet: `no customer 'x'; known: a, b`."""

    def __init__(self, name: str, customers: list[Customer]):
        known = ", ".join(c.name for c in customers) or "none"
        source = _sandbox_source()
        if source and Path(name).name == name and (source / f"{name}.toml").is_file():
            super().__init__(f"no customer {name!r} in the sandbox: {source / name}.toml was added after it "
                             f"started; restart the sandbox to include {name}")
        else:
            super().__init__(f"no customer {name!r}; known: {known}")


def _sandbox_source() -> Path | None:
    """In a sandbox's shell, the customers directory the sandbox copied its fleet from."""
    if not (root := os.environ.get(SANDBOX_ENV)):
        return None
    try:
        return Path(json.loads((Path(root) / "sandbox.json").read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def customer_named(customers: list[Customer], name: str) -> Customer:
    """The customer called `name` (a malformed name is simply not one of them)."""
    for customer in customers:
        if customer.name == name:
            return customer
    raise UnknownCustomer(name, customers)
