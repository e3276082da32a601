"""Adopt what an interrupted deploy created but never recorded, so the next deploy converges.

A deploy killed mid-apply can leave resources in AWS that the state does not know: the next
apply would create a second VPC, or fail on the role that already exists. Before deploying,
`adopt` reads the state, looks up every resource of the synthesized stack that the state lacks
(by the name, tags and CIDRs the stack gives it), and writes Terraform `import` blocks for the
ones found into `adopt.tf.json` beside `cdk.tf.json`; the deploy then imports them instead of
creating duplicates. Resources that adopt themselves (the accepter, peering options, the
default security group) and data sources are left to Terraform.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Callable, Optional

import boto3

from dataplane.checks import assume
from dataplane.toolchain import tool_environment

IMPORTS_FILE = "adopt.tf.json"
REFERENCE = re.compile(r"\$\{([a-z0-9_]+\.[\w-]+)\.(id|vpc_peering_connection_id)\}")
LIVE_PEERING = ["initiating-request", "pending-acceptance", "provisioning", "active"]


class AdoptError(Exception):
    """The live account cannot be matched to the stack unambiguously."""


def _one(found: list, what: str) -> Optional[str]:
    if len(found) > 1:
        raise AdoptError(f"{len(found)} {what} match; remove the duplicates by hand, then deploy again: {found}")
    return found[0] if found else None


def _tag_filters(tags: dict) -> list[dict]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


class Lookup:
    """Finds a stack resource's live id from its synthesized configuration, or None."""

    def __init__(self, clients: Callable[[str, Optional[str]], object], ids: dict[str, str], default_tags: dict):
        self.client, self.ids, self.default_tags = clients, ids, default_tags

    def resolve(self, value: str) -> Optional[str]:
        match = REFERENCE.fullmatch(value) if isinstance(value, str) else None
        return self.ids.get(match.group(1)) if match else value

    def aws_iam_role(self, config, provider):
        iam = self.client("iam", provider)
        try:
            return iam.get_role(RoleName=config["name"])["Role"]["RoleName"]
        except iam.exceptions.NoSuchEntityException:
            return None

    def aws_iam_role_policy(self, config, provider):
        iam, role = self.client("iam", provider), self.resolve(config["role"])
        if not role:
            return None
        try:
            iam.get_role_policy(RoleName=role, PolicyName=config["name"])
        except iam.exceptions.NoSuchEntityException:
            return None
        return f"{role}:{config['name']}"

    def aws_vpc(self, config, provider):
        vpcs = self.client("ec2", provider).describe_vpcs(Filters=[
            {"Name": "cidr-block-association.cidr-block", "Values": [config["cidr_block"]]},
            *_tag_filters({**self.default_tags, **config.get("tags", {})})])["Vpcs"]
        return _one([v["VpcId"] for v in vpcs], f"VPCs on {config['cidr_block']}")

    def aws_subnet(self, config, provider):
        vpc = self.resolve(config["vpc_id"])
        subnets = vpc and self.client("ec2", provider).describe_subnets(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "cidr-block", "Values": [config["cidr_block"]]}])["Subnets"]
        return _one([s["SubnetId"] for s in subnets or []], f"subnets on {config['cidr_block']}")

    def aws_route_table(self, config, provider):
        vpc = self.resolve(config["vpc_id"])
        tables = vpc and self.client("ec2", provider).describe_route_tables(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, *_tag_filters(config.get("tags", {}))])["RouteTables"]
        return _one([t["RouteTableId"] for t in tables or []], "route tables")

    def aws_route_table_association(self, config, provider):
        subnet, table = self.resolve(config["subnet_id"]), self.resolve(config["route_table_id"])
        if not (subnet and table):
            return None
        [route_table] = self.client("ec2", provider).describe_route_tables(RouteTableIds=[table])["RouteTables"]
        linked = any(a.get("SubnetId") == subnet for a in route_table.get("Associations", []))
        return f"{subnet}/{table}" if linked else None

    def aws_vpc_peering_connection(self, config, provider):
        vpc = self.resolve(config["vpc_id"])
        found = vpc and self.client("ec2", provider).describe_vpc_peering_connections(Filters=[
            {"Name": "requester-vpc-info.vpc-id", "Values": [vpc]},
            {"Name": "accepter-vpc-info.vpc-id", "Values": [config["peer_vpc_id"]]},
            {"Name": "status-code", "Values": LIVE_PEERING}])["VpcPeeringConnections"]
        return _one([p["VpcPeeringConnectionId"] for p in found or []], "peering connections")

    def aws_route(self, config, provider):
        table, cidr = self.resolve(config["route_table_id"]), config["destination_cidr_block"]
        if not table:
            return None
        [route_table] = self.client("ec2", provider).describe_route_tables(RouteTableIds=[table])["RouteTables"]
        exists = any(r.get("DestinationCidrBlock") == cidr for r in route_table["Routes"])
        return f"{table}_{cidr}" if exists else None


ORDER = ("aws_iam_role", "aws_iam_role_policy", "aws_vpc", "aws_subnet", "aws_route_table",
         "aws_route_table_association", "aws_vpc_peering_connection", "aws_route")


def _state(stack_dir: Path) -> dict[str, str]:
    """Addresses and ids of the resources the state records (empty when there is no state yet)."""
    env = tool_environment()
    for command in (["terraform", "init", "-input=false", "-no-color"], ["terraform", "state", "pull"]):
        result = subprocess.run(command, cwd=stack_dir, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise AdoptError(f"{' '.join(command)} failed: {result.stderr or result.stdout}")
    state = json.loads(result.stdout or "{}")
    return {f"{r['type']}.{r['name']}": r["instances"][0]["attributes"]["id"]
            for r in state.get("resources", []) if r.get("mode") == "managed" and r.get("instances")}


def _clients(stack: dict) -> Callable[[str, Optional[str]], object]:
    """boto3 clients per provider alias, assuming the provider's role where it has one."""
    sessions: dict[Optional[str], boto3.Session] = {}

    def client(service: str, alias: Optional[str]):
        if alias not in sessions:
            [config] = [p for p in stack["provider"]["aws"] if p.get("alias") == alias]
            session = boto3.Session(region_name=config["region"])
            if config.get("assume_role"):
                session = assume(session, config["assume_role"][0]["role_arn"], "dataplane-adopt")
            sessions[alias] = session
        return sessions[alias].client(service)
    return client


def adopt(stack_dir: Path) -> list[dict]:
    """Write import blocks for live resources the state lacks; return them (none: no file)."""
    stack = json.loads((stack_dir / "cdk.tf.json").read_text())
    imports_file = stack_dir / IMPORTS_FILE
    imports_file.unlink(missing_ok=True)
    ids = _state(stack_dir)
    default_tags = stack["provider"]["aws"][0].get("default_tags", [{}])[0].get("tags", {})
    lookup = Lookup(_clients(stack), ids, default_tags)
    imports = []
    for kind in ORDER:
        for name, config in sorted(stack.get("resource", {}).get(kind, {}).items()):
            address = f"{kind}.{name}"
            if address in ids:
                continue
            alias = config.get("provider", "aws").removeprefix("aws").removeprefix(".") or None
            found = getattr(lookup, kind)(config, alias)
            if found:
                ids[address] = found
                imports.append({"to": address, "id": found, **({"provider": config["provider"]} if alias else {})})
    if imports:
        imports_file.write_text(json.dumps({"import": imports}, indent=2, sort_keys=True) + "\n")
    return imports
