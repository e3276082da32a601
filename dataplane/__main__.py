"""`python -m dataplane`: the operations CLI (`dataplane/ops/cli.py`)."""

import sys

from dataplane.ops.cli import main

if __name__ == "__main__":
    sys.exit(main())
