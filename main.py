"""The cdktf app: one DataPlaneStack per customer file, all validated before anything is built."""

import sys

from dataplane.errors import ConfigError
from dataplane.settings import load_project


def main() -> int:
    try:
        settings, customers = load_project()
    except ConfigError as e:
        print(f"refusing to synthesize: {len(e.problems)} problem(s) in the configuration", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2

    from cdktf import App

    from stacks import DataPlaneStack

    app = App()
    for customer in customers:
        DataPlaneStack(app, customer, settings)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
