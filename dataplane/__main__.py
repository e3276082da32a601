"""`python -m dataplane <command>`: the operations CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataplane import commands as operations, toolchain


def _terraformrc(args: argparse.Namespace) -> int:
    source, changed = toolchain.write_cli_config()
    if changed:
        print(f"wrote {toolchain.TERRAFORM_CLI_CONFIG.name}: aws provider from {source}")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("terraformrc", help="write the project's terraform CLI config").set_defaults(run=_terraformrc)
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
