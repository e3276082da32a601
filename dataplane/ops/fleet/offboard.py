"""`python -m dataplane destroy <customer> [--base REF]`: remove a customer's stack from its account.

Without `--base`, the customer of the current fleet is synthesized into a private directory beside the synth
output (as a deploy is) and destroyed from there (`terraform destroy`, as `cdktf destroy` runs it: `deploy.py`'s
`destroy_stack`). With `--base`, the customer's file is already gone (its removal is being applied): the stack is
synthesized from that git ref in a private directory beside the synth output (so a local state path resolves as it
did), and destroyed from there. Only what the stack's state holds is destroyed; the customer's own resources are not
in it.

The tamper alarm's audit logs are kept on purpose: its trail's records are the evidence of who did what in the
account. Before the destroy, its four buckets, with every setting of theirs (public access block, encryption,
versioning, policy, lifecycle, logging, replication, notifications), and the KMS keys that encrypt them (so the
logs stay readable) are taken out of the state (`terraform state rm`): the destroy leaves them as they are, and
ends with exit 0. The run names each, with its region and account, and adds them to the customer's activation
record (`<records dir>/<customer>.json` and `.md`) first: nothing leaves the state before the record lists it.

Records follow the destroy: once it succeeds, the outputs file the deploy wrote (`<outputs dir>/<customer>.json`) is
removed, and the activation record, when there is one, says the data plane was destroyed: when, by whom (the ARN of
the credentials the run acts with, asked of STS before anything changes) and what was kept (`record_destroyed`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import boto3

from dataplane import synth_output
from dataplane.config.customer import NAME_RULE, Customer
from dataplane.ops.fleet import state
from dataplane.ops.fleet.activate import kept_summary, record_destroyed, record_kept
from dataplane.ops.account.aws import AWS_ERRORS, aws_error, home_region
from dataplane.ops.fleet.deploy import SynthError, destroy_stack, workspace
from dataplane.ops.fleet.plan import account_of
from dataplane.ops.pipeline.ref_synth import RefError, synth_ref
from dataplane.ops.pipeline.review import load_stacks
from dataplane.runtime.toolchain import INIT, TerraformError, terraform
from dataplane.tamper import in_alarm


class OffboardError(Exception):
    """The customer cannot be destroyed from the base: not in it, still in the fleet, or a bad ref."""


@dataclass(frozen=True)
class AuditLogs:
    """What a destroy keeps: the tamper alarm's buckets with their settings, and the keys that encrypt them."""

    addresses: tuple[str, ...]
    """Every resource taken out of the state."""
    kept: tuple[dict, ...]
    """Each bucket and key as the record lists it: `kind`, `id` (bucket name, key ARN), `region`."""


def audit_logs(found: dict | None) -> AuditLogs:
    """The audit logs of a stack's state: every `aws_s3_bucket*` resource of the alarm, and each alarm key whose ARN
    one of them names (the buckets' encryption, the replicas' encryption)."""
    alarm = {f"{r['type']}.{r['name']}": r for r in (found or {}).get("resources", [])
             if r.get("mode") == "managed" and r.get("instances") and in_alarm(f"{r['type']}.{r['name']}")}
    logs = {address: r for address, r in alarm.items() if r["type"].startswith("aws_s3_bucket")}
    named = set(_strings([r["instances"] for r in logs.values()]))
    keys = {address: r for address, r in alarm.items()
            if r["type"] == "aws_kms_key" and r["instances"][0]["attributes"].get("arn") in named}
    buckets = [r["instances"][0]["attributes"] for r in logs.values() if r["type"] == "aws_s3_bucket"]
    arns = [r["instances"][0]["attributes"]["arn"] for r in keys.values()]
    return AuditLogs(tuple(logs) + tuple(keys), tuple(
        [{"kind": "S3 bucket", "id": b["bucket"], "region": b["region"]} for b in buckets]
        + [{"kind": "KMS key", "id": arn, "region": arn.split(":")[3]} for arn in arns]))


def _strings(value: object) -> Iterator[str]:
    """Every string in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


def destroy(customer: Customer, outdir: Path, records_dir: Path, outputs_dir: Path) -> int:
    """Destroy `customer`, of the current fleet, from its stack synthesized now; the CLI's exit status."""
    try:
        with workspace(customer, outdir) as workdir:
            return _destroy(customer.name, workdir, records_dir, outputs_dir)
    except SynthError as e:
        print(f"destroy {customer.name}: {e}", file=sys.stderr)
        return 1


def destroy_from(name: str, ref: str, outdir: Path, fleet: list[Customer], confirm: Callable[[str, str], bool],
                 records_dir: Path, outputs_dir: Path) -> int:
    """Destroy `name`, a customer of `ref`'s fleet no longer in `fleet`, from `ref`'s synthesized stack, once
    `confirm(name, account)` agrees (else 1, nothing destroyed)."""
    if current := next((c for c in fleet if c.name == name), None):
        raise OffboardError(f"{name} is still in the fleet ({current.source}): remove its file first, or destroy "
                            "it without BASE")
    if not NAME_RULE.fullmatch(name):
        raise OffboardError(f"no customer {name!r} (not a customer name)")
    with synth_output.private_dir(outdir, f"destroy-{name}") as workdir:
        try:
            synth_ref(ref, workdir)
        except RefError as e:
            raise OffboardError(str(e)) from None
        if name not in (stacks := load_stacks(workdir)):
            raise OffboardError(f"no customer {name!r} at {ref}; known there: {', '.join(sorted(stacks)) or 'none'}")
        if not confirm(name, account_of(synth_output.stack_dir(workdir, name))):
            return 1
        return _destroy(name, workdir, records_dir, outputs_dir)


def _destroy(name: str, workdir: Path, records_dir: Path, outputs_dir: Path) -> int:
    """Keep the audit logs out of the state (recorded first), destroy the stack synthesized in `workdir`, then have
    the records follow (`records_follow`); terraform's exit status, or 1 when the logs could not be kept (nothing
    destroyed) or the records could not follow."""
    stack_dir = synth_output.stack_dir(workdir, name)
    account = account_of(stack_dir)
    by = destroyer(name)
    try:
        logs = audit_logs(state.read(stack_dir))
        if logs.addresses:
            record = record_kept(records_dir, name, account, list(logs.kept))
            terraform(stack_dir, INIT, ["state", "rm", "-no-color", *logs.addresses])
    except (state.StateError, TerraformError, *AWS_ERRORS) as e:
        print(f"destroy {name}: the audit logs cannot be kept out of the destroy; nothing was destroyed: "
              f"{aws_error(e) if isinstance(e, AWS_ERRORS) else e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"destroy {name}: cannot write the record in {records_dir}: {e.strerror or e}; nothing was destroyed",
              file=sys.stderr)
        return 1
    if logs.addresses:
        print(f"keeping the tamper alarm's audit logs in account {account} on purpose (out of the state, listed in "
              f"{record}):", flush=True)
        for item in logs.kept:
            print(f"  {item['kind']} {item['id']} ({item['region']})", flush=True)
    status = destroy_stack(name, workdir)
    if status != 0:
        return status
    if not records_follow(name, records_dir, outputs_dir, by):
        return 1
    if logs.addresses:
        print(f"destroyed {name}; kept {kept_summary(list(logs.kept))} in account {account}, listed above and in "
              f"{record}")
    return 0


def destroyer(name: str) -> str:
    """The ARN of the credentials this run acts with (the CLI made them the deployer's), as STS says; when STS does
    not say, `unknown (<why>)`, said on stderr too: the destroy goes on, its record naming no one."""
    session = boto3.Session()
    try:
        return session.client("sts", region_name=home_region(session)).get_caller_identity()["Arn"]
    except AWS_ERRORS as e:
        print(f"destroy {name}: whose credentials these are is unknown (sts:GetCallerIdentity: {aws_error(e)}); the "
              "record will say so", file=sys.stderr)
        return f"unknown ({aws_error(e)})"


def records_follow(name: str, records_dir: Path, outputs_dir: Path, by: str) -> bool:
    """After a successful destroy: remove the outputs file the deploy wrote, and have the activation record (when
    there is one) say destroyed, by `by`. Whether both could be done (else one line saying what could not)."""
    outputs = outputs_dir / f"{name}.json"
    try:
        removed = outputs.is_file()
        outputs.unlink(missing_ok=True)
        record = record_destroyed(records_dir, name, by)
    except OSError as e:
        print(f"destroy {name}: destroyed, but the records cannot follow: {e.filename}: {e.strerror or e}",
              file=sys.stderr)
        return False
    followed = [f"removed {outputs}"] if removed else []
    followed += [f"{record} says destroyed by {by}"] if record else []
    if followed:
        print(f"destroy {name}: {'; '.join(followed)}", flush=True)
    return True
