"""The `preflight`, `verify` and `list` subcommands of `python -m dataplane`.

Exit status: 0 when no row is FAIL, 1 when one is, 2 for bad input (configuration, an unknown
customer or profile). AWS libraries are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def register(commands: argparse._SubParsersAction) -> None:
    """Add the subcommands to the CLI's subparsers."""
    _checks_parser(commands, "preflight", _preflight, "check the account is ready, with the deployer's credentials")
    verify = _checks_parser(commands, "verify", _verify, "check the deployed activation, as the control plane would")
    verify.add_argument("--inspect-profile",
                        help="profile with read access to the customer's account (default: the assumed role)")
    fleet_list = commands.add_parser("list", help="every customer, and data-plane CIDRs that overlap")
    fleet_list.add_argument("--json", action="store_true", help="print as JSON")
    fleet_list.set_defaults(run=_list)


def _checks_parser(commands: argparse._SubParsersAction, name: str, run, help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help)
    parser.add_argument("customer", help="customer name (customers/<name>.toml)")
    parser.add_argument("--json", action="store_true", help="print the result rows as JSON")
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    parser.add_argument("--region", help="region for STS and IAM calls (default: the profile's, else us-east-1)")
    parser.set_defaults(run=run)
    return parser


def _preflight(args: argparse.Namespace) -> int:
    from dataplane.preflight import preflight

    settings, customer = _customer(args.customer)
    return _print(preflight(customer, settings, _session(args.profile, args.region)), args.json)


def _verify(args: argparse.Namespace) -> int:
    from dataplane.verify import verify

    settings, customer = _customer(args.customer)
    inspect = _session(args.inspect_profile, args.region) if args.inspect_profile else None
    return _print(verify(customer, settings, _session(args.profile, args.region), inspect), args.json)


def _list(args: argparse.Namespace) -> int:
    from dataplane import fleet

    customers = _project()[1]
    print(fleet.as_json(customers) if args.json else fleet.table(customers))
    return 0


def _print(report, as_json: bool) -> int:
    print(report.json() if as_json else report.table())
    return report.exit_code


def _usage_error(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def _project():
    """Settings and every customer, or exit 2 listing every configuration problem."""
    from dataplane.errors import ConfigError
    from dataplane.settings import load_project

    try:
        return load_project()
    except ConfigError as e:
        _usage_error(f"invalid configuration:\n{e}")


def _customer(name: str):
    settings, customers = _project()
    found = {c.name: c for c in customers}
    if name not in found:
        _usage_error(f"no customer {name!r}; known: {', '.join(found) or 'none'}")
    return settings, found[name]


def _session(profile: str | None, region: str | None):
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as e:
        _usage_error(str(e))
