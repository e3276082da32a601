"""`python -m dataplane unlock <customer>`: release the S3 state lock a killed run left behind.

Terraform's S3 backend with `use_lockfile` keeps the lock as an object beside the state,
`<key>.tflock`, holding who took it, for what and when. A deploy killed mid-apply never deletes
it, and every later plan or deploy then fails with "Error acquiring the state lock". This shows
the lock's holder and, only after the engineer types the customer's name, releases it with
`terraform force-unlock` in a private workspace, as a deploy would run terraform. With the local
backend the operating system releases the lock when terraform dies: there is nothing to unlock; the
cloud backend's lock is HCP Terraform's, released on the workspace's page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import boto3
from botocore.exceptions import ClientError

from dataplane import synth_output
from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.ops.account.aws import AWS_ERRORS, aws_error
from dataplane.ops.fleet.deploy import workspace
from dataplane.runtime.toolchain import INIT, TerraformError, terraform

LOCK_SUFFIX = ".tflock"


class UnlockError(Exception):
    """The lock could not be read or released."""


def lock_holder(settings: Settings, customer: Customer) -> tuple[str, dict | None]:
    """Where the lock object is, and its content (None when nobody holds the lock)."""
    backend = settings.backend
    key = backend.key(customer.name) + LOCK_SUFFIX
    where = f"s3://{backend.bucket}/{key}"
    try:
        body = boto3.client("s3", region_name=backend.region).get_object(Bucket=backend.bucket, Key=key)["Body"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return where, None
        raise UnlockError(f"cannot read {where}: {aws_error(e)}") from None
    except AWS_ERRORS as e:
        raise UnlockError(f"cannot read {where}: {aws_error(e)}") from None
    try:
        lock = json.loads(body.read())
    except ValueError:
        lock = None
    if not isinstance(lock, dict) or not isinstance(lock.get("ID"), str):
        raise UnlockError(f"{where} is not a terraform lock (no JSON with an ID)")
    return where, lock


def describe(where: str, lock: dict) -> str:
    rows = [("ID", "ID"), ("held by", "Who"), ("operation", "Operation"), ("since", "Created"),
            ("terraform", "Version")]
    return "\n".join([f"state lock {where}"] + [f"  {label + ':':<11}{lock.get(key, '?')}" for label, key in rows])


def unlock(customer: Customer, settings: Settings, outdir: Path, answer: Callable[[str], str]) -> str:
    """Show the lock and release it once `answer(prompt)` returns the customer's name; returns what happened."""
    backend = settings.backend
    if backend.type == "local":
        return (f"{customer.name} uses the local backend: its lock is released by the operating system when "
                "terraform exits or dies; nothing to unlock")
    if backend.type == "cloud":
        name = backend.workspace(customer.name)
        return (f"{customer.name} uses the cloud backend, which keeps its own lock: unlock the workspace {name} "
                f"in HCP Terraform (https://{backend.hostname}/app/{backend.organization}/workspaces/{name}), "
                "and only if the run holding it is dead")
    where, lock = lock_holder(settings, customer)
    if lock is None:
        return f"{customer.name}'s state is not locked ({where} does not exist)"
    print(describe(where, lock))
    print("Release it only if that run is dead (a killed deploy, a cancelled job): releasing the lock of a live "
          "run lets two runs write the state at once.")
    if answer(f"Type the customer name ({customer.name}) to release the lock: ").strip() != customer.name:
        raise UnlockError("not confirmed; the lock stays")
    with workspace(customer, outdir) as workdir:
        stack_dir = synth_output.stack_dir(workdir, customer.name)
        try:
            terraform(stack_dir, INIT, ["force-unlock", "-force", "-no-color", lock["ID"]])
        except TerraformError as e:
            raise UnlockError(str(e)) from None
    return f"released the state lock of {customer.name} ({lock['ID']})"
