"""The subcommands of `python -m dataplane` that act on customers: customer, adopt, deploy, preflight, verify, list.

Exit status: 0 on success (no FAIL row), 1 when a step fails, 2 for bad input (configuration,
an unknown or malformed customer name, an unknown profile), always with one line saying which.
AWS libraries are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn


def register(commands: argparse._SubParsersAction) -> None:
    """Add the subcommands to the CLI's subparsers."""
    known = commands.add_parser("customer", help="exit 0 when NAME is a customer of the fleet, else say so (exit 2)")
    known.add_argument("customer", metavar="NAME")
    known.set_defaults(run=_known)
    _workspace_parser(commands, "adopt", _adopt, "show what a deploy would adopt: live resources the state lacks")
    deploy = _workspace_parser(commands, "deploy", _deploy, "adopt what is provably ours, then cdktf deploy")
    deploy.add_argument("--outputs-dir", type=Path, default=Path("outputs"),
                        help="where <customer>.json with the stack outputs is written (outputs)")
    _workspace_parser(commands, "unlock", _unlock, "show the S3 state lock a killed run left, release it once confirmed")
    _checks_parser(commands, "preflight", _preflight, "check the account is ready, with the deployer's credentials")
    verify = _checks_parser(commands, "verify", _verify, "check the deployed activation, as the control plane would")
    verify.add_argument("--inspect-profile",
                        help="profile with read access to the customer's account (default: the assumed role)")
    fleet_list = commands.add_parser("list", help="every customer, and data-plane CIDRs that overlap")
    fleet_list.add_argument("--json", action="store_true", help="print as JSON")
    fleet_list.set_defaults(run=_list)


def _workspace_parser(commands: argparse._SubParsersAction, name: str, run, help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help)
    parser.add_argument("customer", help="customer name (customers/<name>.toml)")
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"),
                        help="synth output dir (cdktf.out); the private workspace and local state sit beside it")
    parser.set_defaults(run=run)
    return parser


def _checks_parser(commands: argparse._SubParsersAction, name: str, run, help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help)
    parser.add_argument("customer", help="customer name (customers/<name>.toml)")
    parser.add_argument("--json", action="store_true", help="print the result rows as JSON")
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    parser.add_argument("--region", help="region for STS and IAM calls (default: the profile's, else us-east-1)")
    parser.set_defaults(run=run)
    return parser


def _preflight(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.preflight import preflight

    return _print(preflight(customer, settings, _session(args.profile, args.region)), args.json)


def _verify(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.verify import verify

    inspect = _session(args.inspect_profile, args.region) if args.inspect_profile else None
    return _print(verify(customer, settings, _session(args.profile, args.region), inspect), args.json)


def _known(args: argparse.Namespace) -> int:
    _customer(args.customer)
    return 0


def _adopt(args: argparse.Namespace) -> int:
    customer = _customer(args.customer)[1]
    from dataplane.adopt import AdoptError
    from dataplane.deploy import SynthError, planned_imports

    try:
        imports = planned_imports(customer, args.outdir)
    except (AdoptError, SynthError) as e:
        print(f"adopt {customer.name}: {e}", file=sys.stderr)
        return 1
    for block in imports:
        print(f"would adopt {block['to']} = {block['id']}")
    print(f"{len(imports)} resource(s) to adopt; everything else is in the state or not yet created")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    customer = _customer(args.customer)[1]
    from dataplane.adopt import AdoptError
    from dataplane.deploy import SynthError, deploy

    try:
        return deploy(customer, args.outdir, args.outputs_dir)
    except (AdoptError, SynthError) as e:
        print(f"deploy {customer.name}: {e}", file=sys.stderr)
        return 1


def _unlock(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.deploy import SynthError
    from dataplane.unlock import UnlockError, unlock

    try:
        print(unlock(customer, settings, args.outdir, _answer))
    except (UnlockError, SynthError) as e:
        print(f"unlock {customer.name}: {e}", file=sys.stderr)
        return 1
    return 0


def _answer(prompt: str) -> str:
    """The engineer's answer on standard input; none (end of input) is no."""
    try:
        return input(prompt)
    except EOFError:
        return ""


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
    """Settings and the customer called `name`, or exit 2 with one line naming the known customers."""
    from dataplane.selection import UnknownCustomer, customer_named

    settings, customers = _project()
    try:
        return settings, customer_named(customers, name)
    except UnknownCustomer as e:
        _usage_error(str(e))


def _session(profile: str | None, region: str | None):
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as e:
        _usage_error(str(e))
