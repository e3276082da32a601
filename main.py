"""The cdktf app: one DataPlaneStack per customer file, all validated before anything is built.

`python main.py` synthesizes every customer (or only those named with `--customer`) into
`CDKTF_OUTDIR` (default: the fleet's synth output, `dataplane/fleet_location.py`). It synthesizes into a
private directory first and then publishes the result (`dataplane/synth_output.py`), so a failed synth changes
nothing and a running plan or deploy keeps its files. A large fleet is split over parallel shards
(`dataplane/runtime/shards.py`), each of which is this app run with `--shard i/n` into a shard directory.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from dataplane import runtime, synth_output
from dataplane.config.customer import Customer
from dataplane.config.errors import ConfigError
from dataplane.config.settings import (
    Settings,
    UnknownCustomer,
    customer_named,
    load_project,
)
from dataplane.fleet_location import fleet_location
from dataplane.project import OUTDIR_ENV, PROJECT_ROOT
from dataplane.runtime import shards

PROVIDER_LOCK = PROJECT_ROOT / ".terraform.lock.hcl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customer", action="append", default=[], metavar="NAME",
                        help="synthesize only this customer (repeatable); the whole fleet is still validated")
    parser.add_argument("--shard", type=shards.parse, help="synthesize only shard i of n (i/n), into CDKTF_OUTDIR")
    args = parser.parse_args(argv)
    try:
        settings, customers = load_project()
        if args.customer:
            wanted = {customer_named(customers, name).name for name in args.customer}
            customers = [c for c in customers if c.name in wanted]
    except ConfigError as e:
        print(f"refusing to synthesize: {len(e.problems)} problem(s) in the configuration", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except UnknownCustomer as e:
        print(e, file=sys.stderr)
        return 2

    outdir = Path(os.environ.get(OUTDIR_ENV) or fleet_location().synth_out)
    if args.shard is not None:
        index, count = args.shard
        synthesize(customers[index::count], settings, outdir)
        return 0
    with synth_output.private_dir(outdir, "synth") as staged:
        if (count := shards.workers(len(customers))) > 1:
            worker_args = [arg for name in args.customer for arg in ("--customer", name)]
            try:
                shards.synthesize(count, staged, Path(__file__).resolve(), worker_args,
                                  lambda shard_dir: synthesize(customers[::count], settings, shard_dir))
            except shards.ShardError as e:
                print(e, file=sys.stderr)
                return 1
        else:
            synthesize(customers, settings, staged)
        names = synth_output.publish(staged, outdir)
    print(f"synthesized {len(names)} stack{'' if len(names) == 1 else 's'} into {outdir}")
    return 0


def synthesize(customers: list[Customer], settings: Settings, outdir: Path) -> None:
    """One stack per customer into `outdir`, each with the checked-in provider lock file."""
    runtime.prepare()
    from cdktf import App

    from stacks import DataPlaneStack

    outdir.mkdir(parents=True, exist_ok=True)
    app = App(outdir=str(outdir))
    for customer in customers:
        DataPlaneStack(app, customer, settings)
    app.synth()
    for customer in customers:  # every `terraform init` uses the checked-in provider hashes
        shutil.copyfile(PROVIDER_LOCK, synth_output.stack_dir(outdir, customer.name) / PROVIDER_LOCK.name)


if __name__ == "__main__":
    sys.exit(main())
