"""The cdktf app: one DataPlaneStack per customer file, all validated before anything is built."""

import shutil
import sys
from pathlib import Path

from dataplane.errors import ConfigError
from dataplane.settings import PROJECT_ROOT, load_project

PROVIDER_LOCK = PROJECT_ROOT / ".terraform.lock.hcl"


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
    for customer in customers:  # every `terraform init` uses the checked-in provider hashes
        shutil.copyfile(PROVIDER_LOCK, Path(app.outdir) / "stacks" / customer.name / PROVIDER_LOCK.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
