"""`python -m dataplane <command>`: the operations CLI."""

from __future__ import annotations

import argparse
import sys

from dataplane import toolchain


def _terraformrc(args: argparse.Namespace) -> int:
    print(f"wrote {toolchain.TERRAFORM_CLI_CONFIG.name}: aws provider from {toolchain.write_cli_config()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("terraformrc", help="write the project's terraform CLI config").set_defaults(run=_terraformrc)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
