"""A synthesized stack's Terraform state, looked for where its backend keeps it.

The local file and the S3 object are read directly (the S3 object with the caller's session: the
standard credential chain, as terraform's S3 backend reads it, or an assumed deploy role), so
looking at a state costs no `terraform init`; only the cloud backend needs terraform, whose
workspace is assumed to exist. Read only: nothing here writes a state.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from dataplane.runtime.toolchain import INIT, terraform
from dataplane.synth_output import STACK_FILE

MISSING = ("404", "NoSuchKey", "NotFound")


class StateError(Exception):
    """A state that exists but cannot be read as one: not JSON, or not shaped as Terraform writes a state."""


def backend(stack_dir: Path) -> tuple[str, dict]:
    """The stack's backend as synthesized: ("local" | "s3" | "cloud", its configuration)."""
    settings = json.loads((stack_dir / STACK_FILE).read_text(encoding="utf-8"))["terraform"]
    if "cloud" in settings:
        return "cloud", settings["cloud"]
    return next(iter(settings.get("backend", {"local": {"path": "terraform.tfstate"}}).items()))


def deployed(stack_dir: Path, session: boto3.Session | None = None) -> bool:
    """Whether the stack's state records a managed resource (a cloud workspace: assumed, terraform will say)."""
    return backend(stack_dir)[0] == "cloud" or bool(managed_ids(read(stack_dir, session)))


def read(stack_dir: Path, session: boto3.Session | None = None) -> dict | None:
    """The stack's state, or None when there is none yet (no file, object or workspace state, or an empty one)."""
    kind, config = backend(stack_dir)
    if kind == "local":
        path = stack_dir / config["path"]
        body = path.read_bytes() if path.is_file() else b""  # terraform killed mid-write can leave it empty
    elif kind == "s3":
        try:
            body = _s3(config, session).get_object(Bucket=config["bucket"], Key=config["key"])["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise
    else:
        body = terraform(stack_dir, INIT, ["state", "pull"]).encode()
    try:
        found = json.loads(body) if body.strip() else None
    except ValueError as e:
        raise StateError(f"the state at {where(stack_dir)} is not valid JSON ({e})") from None
    if found is not None and (problem := malformed(found)):
        raise StateError(f"the state at {where(stack_dir)} is not a Terraform state: {problem}")
    return found


def malformed(found: object) -> str | None:
    """What in a parsed state this tool cannot read (it reads each managed resource's instances and their ids)."""
    resources = found.get("resources", []) if isinstance(found, dict) else None
    if not isinstance(resources, list):
        return "not an object with a list of resources"
    for number, resource in enumerate(resources):
        if not isinstance(resource, dict):
            return f"resource {number} is not an object"
        if resource.get("mode") != "managed":
            continue
        address, instances = f"{resource.get('type')}.{resource.get('name')}", resource.get("instances", [])
        if not isinstance(instances, list):
            return f"{address}: its instances are not a list"
        for index, instance in enumerate(instances):
            attributes = instance.get("attributes") if isinstance(instance, dict) else None
            if not isinstance(attributes, dict) or not isinstance(attributes.get("id"), str):
                return f"{address}: instance {index} has no attributes with an id"
    return None


def where(stack_dir: Path) -> str:
    """Where the state lives, for messages."""
    kind, config = backend(stack_dir)
    if kind == "s3":
        return f"s3://{config['bucket']}/{config['key']}"
    if kind == "cloud":
        return f"{config.get('hostname', 'app.terraform.io')}/{config['organization']}/{config['workspaces']['name']}"
    return str((stack_dir / config["path"]).resolve())


def managed_ids(state: dict | None) -> dict[str, str]:
    """Address -> id of every managed resource the state records."""
    return {f"{r['type']}.{r['name']}": r["instances"][0]["attributes"]["id"]
            for r in (state or {}).get("resources", []) if r.get("mode") == "managed" and r.get("instances")}


def outputs(state: dict | None) -> dict[str, dict]:
    """The root module's outputs a state records, as `terraform output -json` prints them: by name, each with
    `sensitive`, `type` and `value`."""
    return {name: {"sensitive": bool(output.get("sensitive", False)), "type": output["type"], "value": output["value"]}
            for name, output in sorted(((state or {}).get("outputs") or {}).items())}


def _s3(config: dict, session: boto3.Session | None):
    return (session or boto3.Session()).client("s3", region_name=config["region"])
