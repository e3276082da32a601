"""The customer file (`customers/<name>.toml`) as a typed, immutable model, and its loader.

Validation happens here, once, before any construct is built. `load_customers` reads every
file, collects every problem in every file, and raises one `ConfigError` listing them all.
The rules the project's settings choose (`CustomerRules`) are handed to the loader.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from dataplane.config.errors import (
    ConfigError,
    Problem,
    problems_from_validation,
    shown,
    toml_problem,
)
from dataplane.policy import (
    ROLE_NAME,
    delegation_guard,
    external_id_list,
    inline_policies_problems,
    permissions_policy,
    trust_policy,
    trust_policy_problems,
    trusted_principal,
)

AWS_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1",
    "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
    "me-west-1", "mx-central-1", "sa-east-1", "sa-west-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
})
"""Every region of the `aws` (commercial) partition, as botocore's partitions.json lists them (a test compares)."""

SUPPORTED_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-south-1", "eu-west-1",
    "eu-west-2", "eu-west-3", "me-south-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
})
OPT_IN_REGIONS = frozenset({"af-south-1", "ap-east-1", "eu-south-1", "me-south-1"})
"""The defaults of the settings `supportedRegions` and `optInRegions`."""

RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
NOT_IN_A_VPC = tuple((ipaddress.IPv4Network(n), what) for n, what in (
    ("0.0.0.0/8", "\"this network\""), ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/3", "multicast and reserved")))
LARGEST_PREFIX, SMALLEST_VPC_PREFIX = 16, 28
NETWORK_PREFIXES = (19, 20)
"""The smallest data-plane VPC a project may choose (`minNetworkPrefix`): the seed's /19 (the default), or /20, the
vendor's AWS minimum since March 2023."""
MAX_EXTERNAL_IDS = 20
MAX_PEER_CIDRS = 50  # a VPC has at most 50 IPv4 CIDRs
MAX_ROUTE_TABLES = 50
MAX_FILE_BYTES = 64 * 1024
DIRECTORY_RULE = "the customers directory holds only customer files (<customer>.toml) and README files"
RENAMED = {"tamperAlarm": "written tamper_alarm in a customer file (customer files are snake_case; tamperAlarm is "
                          "the project-wide default in cdktf.json)"}
"""Keys a customer file may not use, with the one-line hint given instead of "unknown key"."""

NAME_RULE = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", re.ASCII)
ACCOUNT_ID = r"\d{12}"
ROLE_ARN = rf"arn:aws:iam::{ACCOUNT_ID}:role/([\w+=,.@-]+/)*[\w+=,.@-]{{1,64}}"
"""Regular expressions of the loader's rules that constructs reuse (`constructs_lib/props.py`)."""


@dataclass(frozen=True)
class CustomerRules:
    """The rules for customer files that the project's settings choose (`cdktf.json` context); defaults: the seed's."""

    control_plane_role_arn: Optional[str] = None
    """Trusted instead of the control-plane account root: it changes the trust policy whose size is checked."""
    min_network_prefix: int = NETWORK_PREFIXES[0]
    supported_regions: frozenset[str] = SUPPORTED_REGIONS
    opt_in_regions: frozenset[str] = OPT_IN_REGIONS
    role_name: str = ROLE_NAME
    delegation_boundary: Optional[str] = None
    """With the role's name, the escalation guard in the inline policy whose size is checked."""
    tamper_alarm: Optional[TamperAlarm] = None
    """The project's default tamper alarm, for a customer whose file has no [tamper_alarm] of its own."""


def pattern(regex: str, what: str) -> AfterValidator:
    """A validator: the whole value matches `regex` (ASCII only), else `<value> is not <what>`."""
    rule = re.compile(regex, re.ASCII)

    def check(value: str) -> str:
        if not rule.fullmatch(value):
            raise ValueError(f"{shown(value)} is not {what}")
        return value
    return AfterValidator(check)


def _aws_region(value: str) -> str:
    if value not in AWS_REGIONS:
        raise ValueError(f"{shown(value)} is not a region of the commercial AWS partition (aws), such as us-east-1; "
                         "this tool activates commercial regions only")
    return value


def commercial_partition(value: str) -> str:
    """A validator: refuse an ARN of another partition (aws-cn, aws-us-gov, ...) than commercial AWS."""
    if value.startswith("arn:") and (partition := value.split(":")[1]) != "aws":
        raise ValueError(f"{shown(value)} is in the {shown(partition)} partition; this tool activates commercial "
                         "AWS regions only, so ARNs begin arn:aws:")
    return value


def _network(value: str) -> str:
    if "/" not in value:
        raise ValueError(f"{shown(value)} has no prefix length; write it as a CIDR such as 10.20.0.0/19")
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ipaddress.NetmaskValueError:
        raise ValueError(f"{shown(value)} has an invalid prefix length") from None
    except ValueError as e:
        if "host bits set" in str(e):
            raise ValueError(f"{shown(value)} has host bits set (did you mean "
                             f"{ipaddress.IPv4Network(value, strict=False)}?)") from None
        raise ValueError(f"{shown(value)} is not an IPv4 CIDR") from None


def _vpc_cidr(value: str) -> str:
    net = ipaddress.IPv4Network(value)
    if net.prefixlen < LARGEST_PREFIX:
        raise ValueError(f"{value} is larger than a /{LARGEST_PREFIX}, the largest VPC AWS allows")
    if net.prefixlen > SMALLEST_VPC_PREFIX:
        raise ValueError(f"{value} is smaller than a /{SMALLEST_VPC_PREFIX}, the smallest VPC AWS allows")
    for block, what in NOT_IN_A_VPC:
        if net.subnet_of(block):
            raise ValueError(f"{value} is in {block} ({what}), which no VPC can use")
    return value


def _data_plane_cidr(value: str, info: ValidationInfo) -> str:
    """RFC1918, and no smaller than the project's `minNetworkPrefix` (the loader's context); without the project's
    rules (a construct's props), no smaller than any project may choose."""
    net = ipaddress.IPv4Network(value)
    if not any(net.subnet_of(block) for block in RFC1918):
        raise ValueError(f"{value} is not in a private (RFC1918) range: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16")
    smallest = info.context.min_network_prefix if isinstance(info.context, CustomerRules) else max(NETWORK_PREFIXES)
    if net.prefixlen > smallest:
        raise ValueError(f"{value} is smaller than a /{smallest}; the data plane needs at least a /{smallest}")
    return value


def distinct(values: tuple[str, ...]) -> tuple[str, ...]:
    """A validator: refuse a list that names a value twice."""
    if twice := next((v for i, v in enumerate(values) if v in values[:i]), None):
        raise ValueError(f"lists {shown(twice)} twice")
    return values


AccountId = Annotated[str, pattern(ACCOUNT_ID, "a 12-digit AWS account id")]
Region = Annotated[str, pattern(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", "an AWS region name")]
AwsRegion = Annotated[str, AfterValidator(_aws_region)]
ExternalId = Annotated[str, pattern(r"[A-Za-z0-9+=,.@:/_-]{2,1224}",
                                     "2-1224 characters of A-Z a-z 0-9 + = , . @ : / _ -")]
_ONE_EXTERNAL_ID = TypeAdapter(ExternalId)
_EXTERNAL_ID_LIST = TypeAdapter(Annotated[tuple[ExternalId, ...], Field(min_length=1, max_length=MAX_EXTERNAL_IDS),
                                          AfterValidator(distinct)])


def _one_or_several(value: object) -> str | tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return _EXTERNAL_ID_LIST.validate_python(value)
    return _ONE_EXTERNAL_ID.validate_python(value, strict=True)


ExternalIds = Annotated[Union[str, tuple[str, ...]], PlainValidator(_one_or_several)]
"""One ExternalId, or a list of 1-20 distinct ones (one per control-plane cluster)."""
VpcId = Annotated[str, pattern(r"vpc-([0-9a-f]{8}|[0-9a-f]{17})", "a VPC id (vpc- and 8 or 17 hex digits)")]
RouteTableId = Annotated[str, pattern(r"rtb-([0-9a-f]{8}|[0-9a-f]{17})",
                                       "a route table id (rtb- and 8 or 17 hex digits)")]
RoleArn = Annotated[str, AfterValidator(commercial_partition),
                    pattern(ROLE_ARN, "an IAM role ARN (arn:aws:iam::<account>:role/<name>)")]
Cidr = Annotated[str, AfterValidator(_network)]
PeerCidr = Annotated[Cidr, AfterValidator(_vpc_cidr)]
DataPlaneCidr = Annotated[Cidr, AfterValidator(_data_plane_cidr), AfterValidator(_vpc_cidr)]
Email = Annotated[str, pattern(r"(?=.{6,254}$)(?!\.)(?!.*\.\.)[A-Za-z0-9._%+-]{1,64}(?<!\.)@"
                               r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
                               "an email address (name@example.com, at most 254 characters)")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Network(_Strict):
    """The data-plane VPC."""

    cidr: DataPlaneCidr


class Peering(_Strict):
    """VPC peering from the data-plane VPC to the customer's own VPC."""

    vpc_id: VpcId
    account_id: AccountId
    region: Optional[AwsRegion] = None
    cidrs: tuple[PeerCidr, ...] = Field(min_length=1, max_length=MAX_PEER_CIDRS, strict=False)
    route_table_ids: tuple[RouteTableId, ...] = Field(min_length=1, max_length=MAX_ROUTE_TABLES, strict=False)
    accepter_role_arn: Optional[RoleArn] = None

    @model_validator(mode="after")
    def _unique(self) -> "Peering":
        for field in ("cidrs", "route_table_ids"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise ValueError(f"{field} lists a value twice")
        for a in self.cidrs:
            for b in self.cidrs:
                if a < b and ipaddress.IPv4Network(a).overlaps(ipaddress.IPv4Network(b)):
                    raise ValueError(f"cidrs {a} and {b} overlap")
        if self.accepter_role_arn and self.accepter_role_arn.split(":")[4] != self.account_id:
            raise ValueError(f"accepter_role_arn is in account {self.accepter_role_arn.split(':')[4]}, "
                             f"not the peer account {self.account_id}")
        return self


class TamperAlarm(_Strict):
    """The tamper alarm: changes to the cross-account role, emailed to `email` (`constructs_lib/tamper_alarm.py`)."""

    email: Email


class CustomerFile(_Strict):
    """Exactly what a customer file may contain."""

    account_id: AccountId
    region: Region
    external_id: ExternalIds
    network: Optional[Network] = None
    peering: Optional[Peering] = None
    tamper_alarm: Optional[TamperAlarm] = None
    """In a `Customer`: the file's own, else the project's default (`tamperAlarm`)."""


class Customer(CustomerFile):
    """A validated customer: the file's content plus its name (the file stem) and source path."""

    name: str
    source: str
    opt_in_region: bool = False
    """Whether the account must opt in to the region (the project's `optInRegions`)."""

    @property
    def external_ids(self) -> tuple[str, ...]:
        """The ExternalIds the role's trust accepts, one or several."""
        return tuple(external_id_list(self.external_id))

    @property
    def peer_region(self) -> Optional[str]:
        return self.peering and (self.peering.region or self.region)

    @property
    def peering_crosses_boundary(self) -> bool:
        """True when the peer is in another account or region, so the accepter acts there."""
        return bool(self.peering) and (self.peering.account_id != self.account_id or self.peer_region != self.region)


def _semantic_problems(file: str, data: CustomerFile, control_plane_account_id: str,
                       rules: CustomerRules) -> list[Problem]:
    problems = []
    if data.region not in rules.supported_regions:
        problems.append(Problem(file, "region", f"{data.region!r} is not a supported Astro region "
                                                f"(supported: {', '.join(sorted(rules.supported_regions))})"))
    if data.account_id == control_plane_account_id:
        problems.append(Problem(file, "account_id", f"{data.account_id} is the control-plane account; "
                                                    "the data plane needs the customer's own clean account"))
    peering = data.peering
    if peering and peering.account_id == control_plane_account_id:
        problems.append(Problem(file, "peering.account_id", f"{peering.account_id} is the control-plane account; "
                                                            "the peer VPC must be the customer's own"))
    if peering and not data.network:
        problems.append(Problem(file, "peering", "[peering] requires [network]: there is no data-plane VPC to peer from"))
    if peering and data.network:
        own = ipaddress.IPv4Network(data.network.cidr)
        for i, cidr in enumerate(peering.cidrs):
            if ipaddress.IPv4Network(cidr).overlaps(own):
                problems.append(Problem(file, f"peering.cidrs[{i}]", f"{cidr} overlaps network.cidr {own}"))
    if peering and peering.account_id != data.account_id and not peering.accepter_role_arn:
        problems.append(Problem(file, "peering.accepter_role_arn",
                                f"required: the peer account {peering.account_id} differs from account_id "
                                f"{data.account_id}, so the peering must be accepted through a role there"))
    return problems


def _iam_problems(file: str, data: CustomerFile, principal: str, rules: CustomerRules) -> list[Problem]:
    """What IAM would refuse, though moto accepts it, in the role's policies as the stack will write them."""
    trust = trust_policy_problems(trust_policy(principal, data.external_id))
    guard = delegation_guard(rules.delegation_boundary, data.account_id, rules.role_name)
    inline = inline_policies_problems([permissions_policy(guard)])
    return [Problem(file, "external_id", p) for p in trust] + [Problem(file, "(inline policies)", p) for p in inline]


def _kind(mode: int) -> str:
    return {stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a named pipe (FIFO)",
            stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}.get(stat.S_IFMT(mode),
                                                                                               "a special file")


def _read(path: Path, file: str) -> bytes:
    """The bytes of a regular file of at most `MAX_FILE_BYTES`; nothing else is read, and nothing blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)  # a FIFO opens at once, then fails below
    except OSError as e:
        raise ConfigError([Problem(file, "(file)", f"cannot open: {e.strerror}")]) from None
    with os.fdopen(fd, "rb") as f:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError([Problem(file, "(file)", f"{_kind(status.st_mode)}, not a regular file")])
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([Problem(file, "(file)", f"file is {max(status.st_size, len(data))} bytes; "
                                                   f"a customer file is at most {MAX_FILE_BYTES}")])
    return data


def _parse(data: bytes, file: str, rules: CustomerRules) -> CustomerFile:
    """The file's content, typed; raises `ConfigError`, or `RecursionError` for absurdly deep nesting."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(file, "(file)", f"not valid TOML: {e}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([toml_problem(file, e, text)]) from None
    try:
        return CustomerFile.model_validate(raw, context=rules)
    except ValidationError as e:
        raise ConfigError(problems_from_validation(file, e, renamed=RENAMED, model=CustomerFile)) from None


def load_customer(path: Path, control_plane_account_id: str, display: str | None = None,
                  rules: CustomerRules = CustomerRules()) -> Customer:
    """Load and validate one customer file against the project's `rules`; raise `ConfigError` with every problem."""
    file = display or str(path)
    name = path.stem
    problems = []
    if not NAME_RULE.fullmatch(name):
        problems.append(Problem(file, "(file name)", f"customer name {name!r} must be 2-40 characters of lowercase "
                                                     "letters, digits and hyphens, start with a letter and not end "
                                                     "with a hyphen"))
    try:
        data = _parse(_read(path, file), file, rules)
    except ConfigError as e:
        raise ConfigError(problems + e.problems) from None
    except RecursionError:
        raise ConfigError(problems + [Problem(file, "(file)", "arrays or tables nested too deeply")]) from None
    problems += _semantic_problems(file, data, control_plane_account_id, rules)
    problems += _iam_problems(file, data, trusted_principal(control_plane_account_id, rules.control_plane_role_arn),
                              rules)
    if problems:
        raise ConfigError(problems)
    return Customer(name=name, source=file, opt_in_region=data.region in rules.opt_in_regions,
                    **dict(data, tamper_alarm=data.tamper_alarm or rules.tamper_alarm))


def _entry_problems(path: Path, display: str) -> list[Problem]:
    """Why an entry of the customers directory is refused: its name, or it is not a regular file."""
    problems = []
    if not (path.name.endswith(".toml") or path.name.startswith("README")):
        problems.append(Problem(display, "(file name)", f"{shown(path.name)} is not named <customer>.toml; "
                                                        f"{DIRECTORY_RULE}"))
    try:
        mode = os.lstat(path).st_mode
    except OSError as e:
        return problems + [Problem(display, "(file)", f"cannot be read ({e.strerror})")]
    if not stat.S_ISREG(mode):
        problems.append(Problem(display, "(file)", f"{_kind(mode)}, not a regular file; {DIRECTORY_RULE}"))
    return problems


def load_customers(directory: Path, control_plane_account_id: str, display_root: Path | None = None,
                   rules: CustomerRules = CustomerRules()) -> list[Customer]:
    """Load every `<name>.toml` in `directory` against the project's `rules`, sorted by name; all-or-nothing.

    Every entry must be a regular file (not a link) named `<name>.toml` or `README*`. Names are
    file stems, so stack ids and state keys are unique; two files for the same account are
    refused (both stacks would manage the same role in it), and so are two that require the same
    ExternalId (the id is what keeps one customer's control-plane cluster out of another's role).
    """
    if not directory.is_dir():
        raise ConfigError([Problem(str(directory), "customersDir", "directory does not exist")])
    try:
        paths = sorted(directory.iterdir())
    except OSError as e:
        raise ConfigError([Problem(str(directory), "customersDir", f"cannot list the directory ({e.strerror})")]) from None
    customers, problems = [], []
    for path in paths:
        display = str(path.relative_to(display_root)) if display_root and path.is_relative_to(display_root) else str(path)
        display = display if display.isprintable() else repr(display)
        if entry_problems := _entry_problems(path, display):
            problems += entry_problems
        elif not path.name.startswith("README"):
            try:
                customers.append(load_customer(path, control_plane_account_id, display, rules))
            except ConfigError as e:
                problems += e.problems
    seen: dict[str, Customer] = {}
    for c in customers:
        if (other := seen.setdefault(c.account_id, c)) is not c:
            problems.append(Problem(c.source, "account_id", f"{c.account_id} is also the account of {other.source}: "
                                                            "one customer per account, or both stacks would manage "
                                                            "the same role"))
    requiring: dict[str, Customer] = {}
    for c in customers:
        others = {requiring.setdefault(external_id, c).source for external_id in c.external_ids} - {c.source}
        problems += [Problem(c.source, "external_id", f"also required by {other}") for other in sorted(others)]
    if problems:
        raise ConfigError(problems)
    return customers
