"""The cdktf app: one DataPlaneStack per customer file, all validated before anything is built.

`python main.py` synthesizes every customer into `CDKTF_OUTDIR` (default `cdktf.out`); a large
fleet is split over parallel shards (`dataplane/shards.py`), each of which is this app run with
`--shard i/n`.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from dataplane import shards
from dataplane.customer import Customer
from dataplane.errors import ConfigError
from dataplane.settings import PROJECT_ROOT, Settings, load_project

PROVIDER_LOCK = PROJECT_ROOT / ".terraform.lock.hcl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shard", type=shards.parse, help="synthesize only shard i of n (i/n)")
    args = parser.parse_args(argv)
    try:
        settings, customers = load_project()
    except ConfigError as e:
        print(f"refusing to synthesize: {len(e.problems)} problem(s) in the configuration", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2

    outdir = Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
    if args.shard is None and (count := shards.workers(len(customers))) > 1:
        shards.synthesize(count, outdir, Path(__file__).resolve(),
                          lambda shard_dir: synthesize(customers[::count], settings, shard_dir))
    else:
        index, count = args.shard or (0, 1)
        synthesize(customers[index::count], settings, outdir)
    return 0


def synthesize(customers: list[Customer], settings: Settings, outdir: Path) -> None:
    """One stack per customer into `outdir`, each with the checked-in provider lock file."""
    from cdktf import App

    from stacks import DataPlaneStack

    outdir.mkdir(parents=True, exist_ok=True)
    app = App(outdir=str(outdir))
    for customer in customers:
        DataPlaneStack(app, customer, settings)
    app.synth()
    for customer in customers:  # every `terraform init` uses the checked-in provider hashes
        shutil.copyfile(PROVIDER_LOCK, outdir / "stacks" / customer.name / PROVIDER_LOCK.name)


if __name__ == "__main__":
    sys.exit(main())
