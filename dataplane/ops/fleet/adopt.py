"""Adopt what an interrupted deploy created but never recorded, and only what provably is ours.

A deploy killed mid-apply can leave resources in AWS that the state does not know: the next
apply would create a second VPC, or fail on the role that already exists. Before deploying,
`adopt` checks that the credentials act in the stack's accounts (`sts:GetCallerIdentity` against
each provider's `allowed_account_ids`), reads the state, finds the live resource for every
resource of the stack the state lacks, and returns Terraform `import` blocks for them:

- a role, VPC, subnet, route table or peering connection only when it carries the stack's
  ownership tags (`managed-by` and `customer`); one that matches by name or CIDR without them
  belongs to someone else;
- a route only when it already points at this stack's peering connection: a route to the same
  destination through anything else is the customer's;
- an inline policy or a route-table association only between resources already proven ours.

Anything that matches but is not provably ours, and every tagged resource of this stack that
neither the state nor the stack accounts for (left by an earlier CIDR or a lost state), stops
the deploy before terraform runs: `NotOurs` names each, why, and what the engineer can do.
Resources that adopt themselves (the accepter, peering options, the default security group)
and data sources are left to Terraform, and so are the tamper alarm's buckets, trail, log group and
keys (`NOT_LOOKED_UP`: not adopted yet; see `facts.TAMPER_ALARM`). How each resource type is found,
and the order, come from the facts of the construct that makes it (`constructs_lib/facts.py`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import boto3

from constructs_lib import facts
from constructs_lib.facts import Adoption
from dataplane.ops.fleet import state
from dataplane.ops.account.aws import AWS_ERRORS, assume, aws_error, route_target, tags_of
from dataplane.ops.report import listing
from dataplane.policy import not_owned, ownership_tags
from dataplane.runtime.toolchain import TerraformError
from dataplane.synth_output import IMPORTS_FILE, STACK_FILE

REFERENCE = re.compile(r"\$\{([a-z0-9_]+\.[\w-]+)\.(id|vpc_peering_connection_id)\}")
LIVE_PEERING = ["initiating-request", "pending-acceptance", "provisioning", "active"]


class AdoptError(Exception):
    """adopt could not look (credentials for another account, an AWS error, terraform failed)."""


@dataclass(frozen=True, order=True)
class Finding:
    """A live resource adopt will not take over: what it is, why, and what the engineer can do."""

    resource: str
    why: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.why}. {self.remedy}"


class NotOurs(AdoptError):
    """Live resources in the way that are not provably this stack's; nothing was changed."""

    def __init__(self, findings: list[Finding]):
        self.findings = sorted(findings)
        super().__init__("stopped before terraform ran; nothing in the account was changed:\n"
                         + "\n".join(f"  {f}" for f in self.findings))


class Lookup:
    """Finds the live id of each stack resource from its synthesized configuration, owned or not."""

    def __init__(self, client: Callable[[str, Optional[str]], object], ids: dict[str, str], customer: str):
        self.client, self.ids, self.customer = client, ids, customer
        self.ownership = ownership_tags(customer)
        self.findings: list[Finding] = []
        self.owner = " and ".join(f"{k}={v}" for k, v in sorted(self.ownership.items()))

    def resolve(self, value: str) -> Optional[str]:
        match = REFERENCE.fullmatch(value) if isinstance(value, str) else None
        return self.ids.get(match.group(1)) if match else value

    def ours(self, resource: str, tags: dict[str, str], remedy: str) -> bool:
        """True when `tags` carry the stack's ownership tags; else record why `resource` is not ours."""
        if differing := not_owned(tags, self.customer):
            self.findings.append(Finding(resource, f"not this stack's ({', '.join(differing)}; this stack's "
                                                   f"resources carry {self.owner})", remedy))
        return not differing

    def one(self, found: list[str], what: str) -> Optional[str]:
        if len(found) > 1:
            self.findings.append(Finding(
                what, f"{len(found)} live resources carry this stack's tags: {', '.join(found)}",
                "Delete the duplicates by hand, then deploy again."))
            return None
        return found[0] if found else None

    def role(self, config, provider):
        iam = self.client("iam", provider)
        try:
            role = iam.get_role(RoleName=config["name"])["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None
        remedy = ("It was not created by this tool for this customer: keep it, and set another roleName in "
                  "cdktf.json, or remove it yourself once you know nobody uses it.")
        return role["RoleName"] if self.ours(f"role {role['Arn']}", tags_of(role), remedy) else None

    def inline_policy(self, config, provider):
        iam, role = self.client("iam", provider), self.resolve(config["role"])
        if not role:
            return None
        try:
            iam.get_role_policy(RoleName=role, PolicyName=config["name"])
        except iam.exceptions.NoSuchEntityException:
            return None
        return f"{role}:{config['name']}"

    def attachment(self, config, provider):
        role, arn = self.resolve(config["role"]), config["policy_arn"]
        if not role:
            return None
        attached = [p["PolicyArn"] for page in self.client("iam", provider).get_paginator(
            "list_attached_role_policies").paginate(RoleName=role) for p in page["AttachedPolicies"]]
        return f"{role}/{arn}" if arn in attached else None

    def vpc(self, config, provider):
        cidr = config["cidr_block"]
        vpcs = self.client("ec2", provider).describe_vpcs(Filters=[
            {"Name": "cidr-block-association.cidr-block", "Values": [cidr]}])["Vpcs"]
        remedy = "Choose another network.cidr, or remove that VPC yourself if it is unused."
        ours = [v["VpcId"] for v in vpcs if self.ours(f"VPC {v['VpcId']} on {cidr}", tags_of(v), remedy)]
        return self.one(ours, f"VPC on {cidr}")

    def subnet(self, config, provider):
        vpc, cidr = self.resolve(config["vpc_id"]), config["cidr_block"]
        subnets = vpc and self.client("ec2", provider).describe_subnets(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "cidr-block", "Values": [cidr]}])["Subnets"]
        remedy = "Someone else created it in the data-plane VPC: remove it yourself if it is unused."
        ours = [s["SubnetId"] for s in subnets or []
                if self.ours(f"subnet {s['SubnetId']} on {cidr}", tags_of(s), remedy)]
        return self.one(ours, f"subnet on {cidr}")

    def route_table(self, config, provider):
        vpc = self.resolve(config["vpc_id"])
        tags = {**self.ownership, **config.get("tags", {})}
        tables = vpc and self.client("ec2", provider).describe_route_tables(Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            *({"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items()))])["RouteTables"]
        return self.one([t["RouteTableId"] for t in tables or []], f"route table tagged {tags} in {vpc}")

    def association(self, config, provider):
        subnet, table = self.resolve(config["subnet_id"]), self.resolve(config["route_table_id"])
        if not (subnet and table):
            return None
        [route_table] = self.client("ec2", provider).describe_route_tables(RouteTableIds=[table])["RouteTables"]
        linked = any(a.get("SubnetId") == subnet for a in route_table.get("Associations", []))
        return f"{subnet}/{table}" if linked else None

    def peering(self, config, provider):
        vpc, peer_vpc = self.resolve(config["vpc_id"]), config["peer_vpc_id"]
        found = vpc and self.client("ec2", provider).describe_vpc_peering_connections(Filters=[
            {"Name": "requester-vpc-info.vpc-id", "Values": [vpc]},
            {"Name": "accepter-vpc-info.vpc-id", "Values": [peer_vpc]},
            {"Name": "status-code", "Values": LIVE_PEERING}])["VpcPeeringConnections"]
        remedy = "Someone else peered these VPCs: remove that peering yourself if it is unused."
        ours = [p["VpcPeeringConnectionId"] for p in found or []
                if self.ours(f"peering connection {p['VpcPeeringConnectionId']} ({vpc} to {peer_vpc})", tags_of(p),
                             remedy)]
        return self.one(ours, f"peering connection {vpc} to {peer_vpc}")

    def route(self, config, provider):
        table, cidr = self.resolve(config["route_table_id"]), config["destination_cidr_block"]
        connection = self.resolve(config["vpc_peering_connection_id"])
        if not table:
            return None
        tables = self.client("ec2", provider).describe_route_tables(
            Filters=[{"Name": "route-table-id", "Values": [table]}])["RouteTables"]
        if not tables:
            self.findings.append(Finding(f"route table {table}", "not found where the stack routes to the data plane",
                                         "Check peering.route_table_ids in the customer file."))
            return None
        routes = [r for r in tables[0]["Routes"] if r.get("DestinationCidrBlock") == cidr]
        if not routes:
            return None
        if connection and routes[0].get("VpcPeeringConnectionId") == connection:
            return f"{table}_{cidr}"
        self.findings.append(Finding(
            f"route {cidr} in {table}",
            f"already points at {route_target(routes[0])}, not at this stack's peering connection "
            f"({connection or 'none yet'})",
            "It is not this tool's route: remove or change it yourself if it is unused, or choose another CIDR."))
        return None


FINDERS = {Adoption.ROLE_BY_NAME: Lookup.role, Adoption.INLINE_POLICY: Lookup.inline_policy,
           Adoption.ROLE_ATTACHMENT: Lookup.attachment,
           Adoption.TAGGED_VPC: Lookup.vpc, Adoption.TAGGED_SUBNET: Lookup.subnet,
           Adoption.TAGGED_ROUTE_TABLE: Lookup.route_table, Adoption.ASSOCIATION: Lookup.association,
           Adoption.TAGGED_PEERING: Lookup.peering, Adoption.PEERING_ROUTE: Lookup.route}
"""The `Lookup` method that finds the live resource, to import it, for each adoption strategy of the facts."""
LEFT_TO_TERRAFORM = frozenset({Adoption.ADOPTS_ITSELF, Adoption.DATA_SOURCE, Adoption.NOT_LOOKED_UP})
"""Strategies adopt imports nothing for; an accepter (`PEERING_ACCEPTER`) only stands for its connection."""
DESCRIBED = frozenset(f.type for f in facts.ALL if f.adoption is not Adoption.DATA_SOURCE)
"""The resource types some construct's facts describe; adopt refuses a stack with any other."""

TAGGED = (("VPC", "describe_vpcs", "Vpcs", "VpcId"),
          ("subnet", "describe_subnets", "Subnets", "SubnetId"),
          ("route table", "describe_route_tables", "RouteTables", "RouteTableId"),
          ("peering connection", "describe_vpc_peering_connections", "VpcPeeringConnections", "VpcPeeringConnectionId"))
"""The EC2 resources the stack tags, searched for orphans by their ownership tags."""


def _orphans(ec2, customer: str, known: set[str]) -> list[Finding]:
    """Live EC2 resources with the stack's tags that neither the state nor a lookup accounts for."""
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(ownership_tags(customer).items())]
    findings = []
    for kind, call, key, id_key in TAGGED:
        for resource in getattr(ec2, call)(Filters=filters)[key]:
            if resource.get("Status", {}).get("Code", "active") not in LIVE_PEERING or resource[id_key] in known:
                continue
            findings.append(Finding(
                f"{kind} {resource[id_key]}",
                "carries this stack's tags, but neither the state nor the stack's configuration accounts for it "
                "(left by an earlier configuration or a lost state)",
                "Restore the state that records it, or delete it (and routes through it) by hand once it is unused."))
    return findings


def _state(stack_dir: Path, deployer: Optional[boto3.Session]) -> dict[str, str]:
    """Addresses and ids of the resources the state records (empty when there is no state yet)."""
    try:
        return state.managed_ids(state.read(stack_dir, deployer))
    except (TerraformError, state.StateError) as e:
        raise AdoptError(str(e)) from None


def _sessions(stack: dict, deployer: Optional[boto3.Session]) -> dict[Optional[str], boto3.Session]:
    """One session per provider alias (the deployer's credentials, else the standard chain), each proven to act in
    the provider's allowed account."""
    sessions: dict[Optional[str], boto3.Session] = {}
    for config in stack["provider"]["aws"]:
        alias = config.get("alias")
        region = config["region"]
        session = boto3.Session(region_name=region) if deployer is None else _in_region(deployer, region)
        if config.get("assume_role"):
            session = assume(sessions[None], config["assume_role"][0]["role_arn"], "dataplane-adopt")
        caller = session.client("sts").get_caller_identity()
        allowed = config["allowed_account_ids"]
        if caller["Account"] not in allowed:
            raise AdoptError(f"the credentials act in account {caller['Account']} ({caller['Arn']}), not "
                             f"{' or '.join(allowed)} (provider {'aws.' + alias if alias else 'aws'}); nothing was "
                             "looked up. Use the credentials of the customer's account.")
        sessions[alias] = session
    return sessions


def _in_region(session: boto3.Session, region: str) -> boto3.Session:
    """`session`'s credentials, in `region`."""
    creds = session.get_credentials().get_frozen_credentials()
    return boto3.Session(aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                         aws_session_token=creds.token, region_name=region)


def adopt(stack_dir: Path, customer: str, deployer: Optional[boto3.Session] = None) -> list[dict]:
    """Import blocks for the live resources of this stack that the state lacks; raises `NotOurs`, `AdoptError`.
    `deployer`: the credentials to look with (default: the standard chain)."""
    stack = json.loads((stack_dir / STACK_FILE).read_text())
    try:
        sessions = _sessions(stack, deployer)
        ids = _state(stack_dir, deployer)
        return _imports(stack, customer, ids, sessions)
    except AWS_ERRORS as e:
        raise AdoptError(f"AWS error: {aws_error(e)}") from None


def _imports(stack: dict, customer: str, ids: dict[str, str],
             sessions: dict[Optional[str], boto3.Session]) -> list[dict]:
    lookup = Lookup(lambda service, alias: sessions[alias].client(service), ids, customer)
    resources = stack.get("resource", {})
    if unknown := sorted(set(resources) - DESCRIBED):
        raise AdoptError(f"cannot look up {listing(unknown)}: no construct's facts describe it "
                         "(constructs_lib/facts.py)")
    known = set(ids.values())
    imports = []
    for fact in facts.ALL:  # in dependency order
        for name, config in sorted(resources.get(fact.type, {}).items()):
            address = f"{fact.type}.{name}"
            if address in ids or fact.adoption in LEFT_TO_TERRAFORM:
                continue
            if fact.adoption is Adoption.PEERING_ACCEPTER:  # the connection's id, for routes through it
                ids[address] = lookup.resolve(config["vpc_peering_connection_id"])
                continue
            alias = config.get("provider", "aws").removeprefix("aws").removeprefix(".") or None
            if found := FINDERS[fact.adoption](lookup, config, alias):
                ids[address] = found
                known.add(found)
                imports.append({"to": address, "id": found, **({"provider": config["provider"]} if alias else {})})
    findings = lookup.findings + _orphans(sessions[None].client("ec2"), customer, known)
    if findings:
        raise NotOurs(findings)
    return imports


def write_imports(stack_dir: Path, imports: list[dict]) -> None:
    """Write the import blocks beside the stack, for the deploy that runs there next."""
    (stack_dir / IMPORTS_FILE).write_text(json.dumps({"import": imports}, indent=2, sort_keys=True) + "\n")
