"""`python -m dataplane <command>`: every operation of the tool, one command tree.

Exit status: 0 on success (no FAIL row), 1 when a step fails, 2 for bad input (configuration,
an unknown or malformed customer name, an unknown profile), always with one line saying which.
Each command's module is imported only when it runs, so the CLI starts light.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    known = commands.add_parser("customer", help="exit 0 when NAME is a customer of the fleet, else say so (exit 2)")
    known.add_argument("customer", metavar="NAME")
    known.set_defaults(run=_known)
    _workspace_parser(commands, "adopt", _adopt, "show what a deploy would adopt: live resources the state lacks")
    deploy = _workspace_parser(commands, "deploy", _deploy, "adopt what is provably ours, then cdktf deploy")
    deploy.add_argument("--outputs-dir", type=Path, default=Path("outputs"),
                        help="where <customer>.json with the stack outputs is written (outputs)")
    _workspace_parser(commands, "unlock", _unlock, "show a killed run's S3 state lock; release it once confirmed")
    _checks_parser(commands, "preflight", _preflight, "check the account is ready, with the deployer's credentials")
    verify = _checks_parser(commands, "verify", _verify, "check the deployed activation, as the control plane would")
    verify.add_argument("--inspect-profile",
                        help="profile with read access to the customer's account (default: the assumed role)")
    listing = commands.add_parser("list", help="every customer, and data-plane CIDRs that overlap")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    listing.set_defaults(run=_list)
    review = commands.add_parser("review", help="review synthesized plans: what changes between two cdktf.out dirs")
    review.add_argument("--base", type=Path, required=True, help="synthesized output of the base (cdktf.out layout)")
    review.add_argument("--head", type=Path, required=True, help="synthesized output of the head (cdktf.out layout)")
    review.add_argument("--format", choices=("markdown", "json"), default="markdown")
    review.add_argument("--affected", action="store_true", help="print only the added or changed stack names")
    review.set_defaults(run=_review)
    gate = commands.add_parser("gate", help="the security gate: checkov over every synthesized stack")
    gate.add_argument("outdir", type=Path, nargs="?", default=Path("cdktf.out"), help="synth output (cdktf.out)")
    gate.set_defaults(run=_gate)
    terraformrc = commands.add_parser("terraformrc", help="write the project's terraform CLI config if it changed")
    terraformrc.set_defaults(run=_terraformrc)
    cdktf = commands.add_parser("cdktf", help="the pinned cdktf CLI, with the project's environment")
    cdktf.add_argument("arguments", nargs=argparse.REMAINDER, help="its arguments (plan <customer> ...)")
    cdktf.set_defaults(run=_cdktf)
    args = parser.parse_args(argv)
    return args.run(args)


def _gate(args: argparse.Namespace) -> int:
    from dataplane.ops import gate

    return gate.run(args.outdir)


def _terraformrc(args: argparse.Namespace) -> int:
    from dataplane.runtime import toolchain

    try:
        source, changed = toolchain.write_cli_config()
    except toolchain.MirrorError as e:
        _usage_error(str(e))
    if changed:
        print(f"wrote {toolchain.TERRAFORM_CLI_CONFIG.name}: aws provider from {source}")
    return 0


def _cdktf(args: argparse.Namespace) -> int:
    from dataplane.project import PROJECT_ROOT
    from dataplane.runtime.toolchain import tool_environment

    return subprocess.run(["cdktf", *args.arguments], cwd=PROJECT_ROOT, env=tool_environment()).returncode


def _review(args: argparse.Namespace) -> int:
    from dataplane.ops import review

    try:
        report = review.review(args.base, args.head)
    except review.ReviewError as e:
        print(f"review: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(review.render(report, args.format, args.affected))
    return 0


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
    from dataplane.ops.preflight import preflight

    return _print(preflight(customer, settings, _session(args.profile, args.region)), args.json)


def _verify(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.ops.verify import verify

    inspect = _session(args.inspect_profile, args.region) if args.inspect_profile else None
    return _print(verify(customer, settings, _session(args.profile, args.region), inspect), args.json)


def _known(args: argparse.Namespace) -> int:
    _customer(args.customer)
    return 0


def _adopt(args: argparse.Namespace) -> int:
    customer = _customer(args.customer)[1]
    from dataplane.ops.adopt import AdoptError
    from dataplane.ops.deploy import SynthError, planned_imports

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
    from dataplane.ops.adopt import AdoptError
    from dataplane.ops.deploy import SynthError, deploy

    try:
        return deploy(customer, args.outdir, args.outputs_dir)
    except (AdoptError, SynthError) as e:
        print(f"deploy {customer.name}: {e}", file=sys.stderr)
        return 1


def _unlock(args: argparse.Namespace) -> int:
    settings, customer = _customer(args.customer)
    from dataplane.ops.deploy import SynthError
    from dataplane.ops.unlock import UnlockError, unlock

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
    from dataplane.ops import list_customers as fleet

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
    from dataplane.config.errors import ConfigError
    from dataplane.config.settings import load_project

    try:
        return load_project()
    except ConfigError as e:
        _usage_error(f"invalid configuration:\n{e}")


def _customer(name: str):
    """Settings and the customer called `name`, or exit 2 with one line naming the known customers."""
    from dataplane.config.settings import UnknownCustomer, customer_named

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
