"""`python -m dataplane <command>`: the operations CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataplane import commands as operations, toolchain


def _terraformrc(args: argparse.Namespace) -> int:
    print(f"wrote {toolchain.TERRAFORM_CLI_CONFIG.name}: aws provider from {toolchain.write_cli_config()}")
    return 0


def _review(args: argparse.Namespace) -> int:
    from dataplane import review  # here, not at the top: keeps the CLI start-up light

    try:
        report = review.review(args.base, args.head)
    except review.ReviewError as e:
        print(f"review: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(review.render(report, args.format, args.affected))
    return 0


def _adopt(args: argparse.Namespace) -> int:
    from dataplane.adopt import AdoptError, adopt

    try:
        imports = adopt(args.outdir / "stacks" / args.customer)
    except AdoptError as e:
        print(f"adopt {args.customer}: {e}", file=sys.stderr)
        return 1
    for block in imports:
        print(f"adopting {block['to']} = {block['id']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("terraformrc", help="write the project's terraform CLI config").set_defaults(run=_terraformrc)
    adopt = commands.add_parser("adopt", help="import live resources an interrupted deploy left out of the state")
    adopt.add_argument("customer")
    adopt.add_argument("--outdir", type=Path, default=Path("cdktf.out"), help="synthesized output (cdktf.out)")
    adopt.set_defaults(run=_adopt)
    operations.register(commands)
    review = commands.add_parser("review", help="review synthesized plans: what changes between two cdktf.out dirs")
    review.add_argument("--base", type=Path, required=True, help="synthesized output of the base (cdktf.out layout)")
    review.add_argument("--head", type=Path, required=True, help="synthesized output of the head (cdktf.out layout)")
    review.add_argument("--format", choices=("markdown", "json"), default="markdown")
    review.add_argument("--affected", action="store_true", help="print only the added or changed stack names")
    review.set_defaults(run=_review)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
