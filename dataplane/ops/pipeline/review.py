"""The pull-request review: what a change does to each customer's stack, in words, sized for PR comments.

Pure Python over synthesized JSON and Terraform's JSON plans (no cdktf, no AWS), so a fleet reviews in well
under a second::

    python -m dataplane review [--base B --head H] [--plans DIR] [--format markdown|json] [--affected]
                               [--max-chars N] [--parts-dir OUT]

- `--base`/`--head` (two `cdktf.out` dirs): the configuration diff. Per changed customer, the Terraform
  resource blocks added, changed and removed in the configuration (data sources apart, not counted), then
  what a reviewer cares about (trust, permissions, role name, account, region, network, peering, outputs,
  the tamper alarm), and a warning for every change that destroys something or, by the attributes known to force it
  (VPC or subnet `cidr_block`, role `name`, peering `peer_vpc_id`/`peer_owner_id`/`peer_region`, provider
  region or account), is a predicted replacement. Its first line says no plan against live state was made.
- From the configuration and from a plan alike (`access_changes`), a warning with its before and after for every
  change a security reviewer must see: the trust principal moved (to its account's root: widened), an ExternalId
  added or removed, a permissions or escalation-guard boundary changed or removed, a managed policy attached, an IAM
  action or resource granted to a role that had access, the tamper alarm's email changed or the alarm removed, and a
  peering into another stack's data-plane account.
- With `label_limit` (`rollout.maxCustomersWithoutLabel`, the CLI's), a change to more existing customers' roles
  (`role_changes`) than that is one warning at the top: it needs the `fleet-change` label before it can apply.
- `--plans DIR` (`<customer>.plan.json` files, `terraform show -json` output; `plan_review` reads them):
  the plan's figures instead of that guess, for every stack that has a plan: resources to create, update,
  replace, destroy and import, each replacement with the attributes that force it, the drift refresh found
  (its own section), and trust and permissions read from the plan's before and after values. Alone, every
  plan in DIR is reviewed; with `--base`/`--head`, those give the stacks and their statuses (a stack without
  a plan keeps the configuration diff, labelled so; one whose configuration is unchanged is reported when its
  plan changes something or found drift). A missing DIR counts as empty: the review says no stack was planned.
- Markdown is split into parts of at most `--max-chars` characters (default 65000, at least 1000), at stack
  boundaries: part 1 holds the heading, the summary and a digest of every warning with its stack (a warning
  several stacks share but for their own account and name, once with their count), spilling over only if they
  alone exceed a part; then stack sections fill parts in order; a section longer than a part is cut between lines
  (the first line left out clipped into the room left, before any code span the cut would fall in) with a note
  `(truncated: N more lines; see the workflow artifact)`. With more than one part, each begins with
  `**Part i of n**`. On stdout, one part is printed as it is; several each follow a line
  `<!-- dataplane-review part i of n -->` (not counted in N). With `--parts-dir OUT`, the parts are written to
  `OUT/part-001.md`, `OUT/part-002.md`, ... (OUT created; nothing in it removed, and refused if it holds a
  higher-numbered part from an earlier run) and only the written paths are printed. JSON is never split.

Everything is sorted: two runs over the same inputs print the same bytes. The report shows ExternalIds, as
the stack itself does; values a plan marks sensitive are never shown; nothing is logged. Every name, address and
value is a code span (`markdown.code`), so nothing from AWS or a plan takes effect as Markdown or HTML.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from dataplane import policy
from dataplane.ops.account import bootstrap
from dataplane.ops.markdown import code, cut
from dataplane.ops.pipeline.plan_review import (
    COUNTED,
    SENSITIVE,
    UNKNOWN,
    AttributeChange,
    Plan,
    ReviewError,
    json_object,
    read_plans,
)
from dataplane.policy import as_list
from dataplane.synth_output import MANIFEST, STACK_FILE, stack_dir
from dataplane.tamper import in_alarm

Status = Literal["added", "removed", "changed", "unchanged"]
Format = Literal["markdown", "json"]
DEFAULT_MAX_CHARS = 65_000
"""A part's default size: under GitHub's 65,536-character comment limit, with room for a marker line."""
MIN_CHARS = 1_000
CONFIGURATION_ONLY = ("Configuration diff only: no plan against live state was made; counts are of resource blocks "
                      "in the configuration, not Terraform actions.")
NO_PLANS = "No plans: no stack was planned (no stack changed, or every plan failed)."
PREDICTED = "predicted replacement: "
"""How the configuration diff says what a change will replace; with a plan that confirms it, it is the root cause."""
DIGEST_NAMES = 3
"""Stacks named in a digest line of a warning several share."""
FLEET_CHANGE_LABEL = "fleet-change"
"""The pull-request label a change to more customers' roles than `rollout.maxCustomersWithoutLabel` needs to apply."""
ROLE_TYPES = frozenset({"aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment"})
"""A customer's role: the role, its inline policies and its managed policy attachments."""


@dataclass(frozen=True)
class StackFile:
    """One stack's synthesized `cdk.tf.json`: where it was read, and its bytes."""

    path: Path
    raw: bytes

    @cached_property
    def document(self) -> dict:
        """The stack as a JSON object with what the review reads in the shapes cdktf writes; a `ReviewError` naming
        the file and the first part that is not."""
        document = json_object(self.path, self.raw)
        if problem := _shape_problem(document):
            raise ReviewError(f"{self.path}: {problem}")
        return document


def _shape_problem(document: dict) -> str | None:
    """The first part of a synthesized stack the review reads that is not in cdktf's shape; None: all are."""
    for kind in ("resource", "data", "output", "provider"):
        if not isinstance(document.get(kind, {}), dict):
            return f"{kind} is not an object"
    for kind in ("resource", "data"):
        for rtype, items in document.get(kind, {}).items():
            if not isinstance(items, dict) or not all(isinstance(body, dict) for body in items.values()):
                return f"{kind}.{rtype} is not an object of {'resources' if kind == 'resource' else 'data sources'}"
    providers = document.get("provider", {}).get("aws", [])
    if not isinstance(providers, list) or not all(isinstance(p, dict) for p in providers):
        return "provider.aws is not a list of objects"
    for index, provider in enumerate(providers):
        ids = provider.get("allowed_account_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return f"provider.aws[{index}].allowed_account_ids is not a list of strings"
        if not all(isinstance(provider.get(key, ""), str) for key in ("alias", "region")):
            return f"provider.aws[{index}]: alias and region must be strings"
    return None


@dataclass(frozen=True)
class ChangedResource:
    address: str
    attributes: tuple[str, ...]


@dataclass
class StackReview:
    """One customer's stack: its status, its resource blocks' changes (or its plan), and what they mean."""

    name: str
    status: Status
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ChangedResource] = field(default_factory=list)
    data_sources: list[str] = field(default_factory=list)
    """Data source blocks added, changed or removed: read, never created, so not counted."""
    warnings: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    access: list[str] = field(default_factory=list)
    """Trust and permission changes: from the plan when there is one, else from the configuration."""
    other: list[str] = field(default_factory=list)
    plan: Plan | None = None
    account: str | None = None
    """Its data-plane account, from the configuration (head, else base) or the plan."""

    @property
    def changes(self) -> list[str]:
        """The non-destructive changes a reviewer approves, in words."""
        return self.created + self.access + self.other

    @property
    def reported(self) -> bool:
        """Whether the review shows this stack: its configuration changed, or its plan does something or found drift."""
        return self.status != "unchanged" or self.plan is not None and self.plan.news


@dataclass
class Report:
    stacks: list[StackReview]
    planned: bool = False
    """Whether plans were given (`--plans`)."""
    label_limit: int | None = None
    """`rollout.maxCustomersWithoutLabel`: more customers' roles changed need `FLEET_CHANGE_LABEL` (None: unchecked)."""

    def named(self, status: Status) -> list[str]:
        return [s.name for s in self.stacks if s.status == status]

    @property
    def affected(self) -> list[str]:
        """Stacks in head that differ from base (added or changed): the ones CI should plan."""
        return [s.name for s in self.stacks if s.status in ("added", "changed")]

    def summary(self) -> dict[str, int]:
        return {status: len(self.named(status)) for status in ("added", "removed", "changed", "unchanged")}


# ---------------------------------------------------------------- reading


def load_stacks(outdir: Path) -> dict[str, StackFile]:
    """Stack name -> its file, for every stack the `manifest.json` of a synthesized output directory lists.

    The manifest alone says which stacks a synth produced: a stack directory it does not list (a
    removed customer's, left behind) is not reviewed.
    """
    if not outdir.is_dir():
        raise ReviewError(f"{outdir}: not a directory (expected a cdktf.out layout)")
    manifest = outdir / MANIFEST
    if not manifest.is_file():
        raise ReviewError(f"{outdir}: no {MANIFEST}, so not a synthesized output (expected a cdktf.out layout)")
    try:
        names = list(json_object(manifest, manifest.read_bytes())["stacks"])
    except (KeyError, TypeError):
        raise ReviewError(f"{manifest}: not a cdktf manifest (no stacks.<name>.synthesizedStackPath)") from None
    if odd := [n for n in names if not isinstance(n, str) or not n or "/" in n or n in (".", "..")]:
        raise ReviewError(f"{manifest}: not a stack name: {odd[0]!r}")
    paths = {name: stack_dir(outdir, name) / STACK_FILE for name in names}
    stacks = {}
    for name, path in paths.items():
        try:
            stacks[name] = StackFile(path, path.read_bytes())
        except OSError as e:
            raise ReviewError(f"{path}: stack {name} is in {MANIFEST} but cannot be read ({e.strerror})") from None
    return stacks


def _strip(value: Any) -> Any:
    """The value without cdktf's `//` metadata, which Terraform ignores."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "//"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _blocks(doc: dict) -> dict[str, dict]:
    """Terraform address -> block body, for managed resources and data sources."""
    blocks = {}
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for rtype, items in doc.get(kind, {}).items():
            for name, body in items.items():
                blocks[f"{prefix}{rtype}.{name}"] = _strip(body)
    return blocks


# ---------------------------------------------------------------- trust and permissions (both sources)


POLICY_ATTRIBUTES = {"aws_iam_role": "assume_role_policy", "aws_iam_role_policy": "policy", "aws_iam_policy": "policy"}
"""Resource type -> its attribute holding an IAM policy: a role's trust, or permissions."""


@dataclass(frozen=True)
class Access:
    """What a security reviewer must see of a stack, read alike from its configuration and from a plan: who may assume
    its role, requiring which ExternalIds; the IAM actions and resources its policies allow, the managed policies
    attached, the role's permissions boundary and the boundary its escalation guard requires; where the tamper alarm
    emails; and its peerings, as (peer VPC, peer account)."""

    principals: frozenset[str] = frozenset()
    external_ids: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    managed_policies: frozenset[str] = frozenset()
    guard: frozenset[str] = frozenset()
    boundary: frozenset[str] = frozenset()
    alarm: frozenset[str] = frozenset()
    peerings: frozenset[tuple[str, str]] = frozenset()


def _policy(value: Any) -> dict:
    """An IAM policy given as a JSON string (as synthesized and planned) or an object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _allow_statements(document: Any) -> list[dict]:
    statements = as_list(_policy(document).get("Statement"))
    return [s for s in statements if isinstance(s, dict) and s.get("Effect") == "Allow"]


def access_of(resources: Iterable[tuple[str, str, dict]]) -> Access:
    """The `Access` of Terraform resources given as (address, type, attribute values): synthesized or planned.

    The tamper alarm's own roles and policies (its services') are not the control plane's access.
    """
    principals: set[str] = set()
    external_ids: set[str] = set()
    actions: set[str] = set()
    granted: set[str] = set()
    managed: set[str] = set()
    guard: set[str] = set()
    boundary: set[str] = set()
    alarm: set[str] = set()
    peerings: set[tuple[str, str]] = set()
    for address, rtype, body in resources:
        if not isinstance(body, dict):  # a resource a plan shows wholly sensitive
            continue
        if in_alarm(address):
            if rtype == "aws_sns_topic_subscription" and body.get("protocol") == "email" and body.get("endpoint"):
                alarm.add(str(body["endpoint"]))
            continue
        document = _policy(body.get(POLICY_ATTRIBUTES.get(rtype, "")))
        if rtype == "aws_iam_role":
            for statement in _allow_statements(document):
                principals |= policy.principals(statement.get("Principal"))
                external_ids.update(map(str, policy.required_external_ids(statement) or []))
            boundary.update(map(str, filter(None, [body.get("permissions_boundary")])))
        elif rtype in POLICY_ATTRIBUTES:
            actions |= policy.granted_actions(document)
            granted.update(str(r) for s in _allow_statements(document) for r in as_list(s.get("Resource")))
            guard.update(filter(None, [policy.guard_of(document)]))
        elif rtype == "aws_iam_role_policy_attachment" and body.get("policy_arn"):
            managed.add(str(body["policy_arn"]))
        elif rtype == "aws_vpc_peering_connection":
            peerings.add((str(body.get("peer_vpc_id")), str(body.get("peer_owner_id"))))
    return Access(*map(frozenset, (principals, external_ids, actions, granted, managed, guard, boundary, alarm,
                                   peerings)))


def access_changes(before: Access, after: Access, neighbours: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """What a change does to a stack's `Access`, in words, and the warnings among them, each with its before and
    after: the same for a configuration diff and a plan. `neighbours`: the fleet's other data-plane accounts, each
    with its customer.

    Warned: the trust principal changed (from a role to its account's root: widened); an ExternalId added or removed;
    the permissions boundary or the escalation guard's boundary changed or removed while the role stays; a managed
    policy attached; an IAM action or resource granted to a role that had access; the tamper alarm's email changed or
    the alarm removed while the role stays; a peering into another customer's account. What a new stack grants, or
    a change takes away, is a plain line.
    """
    out: list[str] = []
    warnings: list[str] = []
    existed, stays = bool(before.principals or before.actions), bool(after.principals or after.actions)
    if before.principals and after.principals and before.principals != after.principals:
        move = "widened to the account root" if _to_root(before.principals, after.principals) else "changed"
        warnings.append(f"trust principal {move}: {_code(before.principals)} → {_code(after.principals)}")
    else:
        _value_change("trust principal", before.principals, after.principals, out)
    ids = before.external_ids, after.external_ids
    if all(ids) and max(map(len, ids)) == 1 and ids[0] != ids[1]:
        warnings.append(f"ExternalId changed: {_code(ids[0])} → {_code(ids[1])}: the cluster with the old id loses "
                        "access")
    elif all(ids):
        warnings += [f"ExternalId {code(new)} added to the trust (before: {_code(ids[0])}): that cluster gains access"
                     for new in sorted(ids[1] - ids[0])]
        warnings += [f"ExternalId {code(gone)} removed from the trust (after: {_code(ids[1])}): that cluster loses "
                     "access" for gone in sorted(ids[0] - ids[1])]
    else:
        _value_change("ExternalId", *ids, out)
    for what, was, now in (("actions", before.actions, after.actions),
                           ("resources", before.resources, after.resources)):
        if (granted := now - was) and existed:
            warnings.append(f"permissions widened: IAM {what} granted: {_code(granted)}, beside the {len(was)} "
                            "granted before")
        elif granted:
            out.append(f"IAM {what} granted: {_code(granted)}")
        if was - now:
            out.append(f"IAM {what} revoked: {_code(was - now)}")
    if attached := after.managed_policies - before.managed_policies:
        warnings.append(f"managed policies attached: {_code(attached)} (before: {_code(before.managed_policies)})")
    if detached := before.managed_policies - after.managed_policies:
        out.append(f"managed policies detached: {_code(detached)}")
    _boundary_change("permissions boundary", before.boundary, after.boundary, stays, out, warnings,
                     "the role's permissions are no longer capped")
    _boundary_change("escalation guard boundary", before.guard, after.guard, stays, out, warnings,
                     "the role may again create roles with any policy, or rewrite its own")
    if before.alarm and after.alarm and before.alarm != after.alarm:
        warnings.append(f"tamper alarm email changed: {_code(before.alarm)} → {_code(after.alarm)}, which must "
                        "confirm the subscription")
    elif before.alarm and not after.alarm and stays:
        warnings.append(f"tamper alarm removed: changes to the role are no longer emailed to {_code(before.alarm)}; "
                        "its resources are destroyed, and the apply stops at a bucket holding logs (empty it, or "
                        "`terraform state rm` it to keep it)")
    elif after.alarm and not before.alarm:
        out.append(f"tamper alarm created: changes to the role emailed to {_code(after.alarm)} once it confirms the "
                   "subscription")
    for vpc, account in sorted(after.peerings):
        if account in neighbours:
            warnings.append(f"peering into another customer's data-plane account: {code(vpc)} in account "
                            f"{code(account)}, {code(neighbours[account])}'s (before: {_peerings(before.peerings)})")
    return out, warnings


def _to_root(before: frozenset[str], after: frozenset[str]) -> bool:
    """Whether the trust moves from a principal to the root of its account: to whomever that account's IAM allows."""
    accounts = {p.split(":")[4] for p in before - after if p.startswith("arn:") and p.count(":") >= 5}
    return any(p.startswith("arn:") and p.endswith(":root") and p.split(":")[4] in accounts for p in after - before)


def _boundary_change(label: str, before: frozenset[str], after: frozenset[str], stays: bool, out: list[str],
                     warnings: list[str], consequence: str) -> None:
    """A boundary changed, or removed from a role that stays (and so is `consequence`): a warning; set: a line."""
    if before and after and before != after:
        warnings.append(f"{label} changed: {_code(before)} → {_code(after)}")
    elif before and not after and stays:
        warnings.append(f"{label} removed (was {_code(before)}): {consequence}")
    else:
        _value_change(label, before, after, out)


def _peerings(peerings: frozenset[tuple[str, str]]) -> str:
    return ", ".join(f"{code(vpc)} in account {code(account)}" for vpc, account in sorted(peerings)) or "none"


def _code(values: Iterable[str]) -> str:
    return ", ".join(map(code, sorted(values))) or "none"


def _set_change(label: str, before: frozenset[str], after: frozenset[str], out: list[str],
                added: str = "added", removed: str = "removed") -> None:
    if after - before:
        out.append(f"{label} {added}: {_code(after - before)}")
    if before - after:
        out.append(f"{label} {removed}: {_code(before - after)}")


def _value_change(label: str, before: frozenset[str], after: frozenset[str], out: list[str]) -> None:
    """A value set where there was none, or removed, in words (a value changed is a warning)."""
    if after and not before:
        out.append(f"{label} set: {_code(after)}")
    elif before and not after:
        out.append(f"{label} removed (was {_code(before)})")


# ---------------------------------------------------------------- the configuration diff


@dataclass(frozen=True)
class _Facts:
    """What a reviewer cares about in one stack, independent of construct addresses."""

    account: str | None
    region: str | None
    access: Access
    peer_cidrs: frozenset[str]
    peer_route_tables: frozenset[str]
    outputs: dict[str, Any]


def _of_type(blocks: dict[str, dict], rtype: str) -> dict[str, dict]:
    prefix = f"{rtype}."
    return {a: b for a, b in blocks.items() if a.startswith(prefix)}


def _provider(doc: dict) -> dict:
    """The stack's default aws provider (no alias)."""
    return next((p for p in doc.get("provider", {}).get("aws", []) if "alias" not in p), {})


def _account(doc: dict) -> str | None:
    """The data-plane account of a synthesized stack: its default provider's `allowed_account_ids`."""
    return ", ".join(_provider(doc).get("allowed_account_ids", [])) or None


def _facts(doc: dict, blocks: dict[str, dict]) -> _Facts:
    # Routes to the customer sit in our route table (a reference); routes back sit in theirs (an id).
    peering_routes = [r for r in _of_type(blocks, "aws_route").values() if r.get("vpc_peering_connection_id")]
    ours = [r for r in peering_routes if str(r.get("route_table_id", "")).startswith("${")]
    theirs = [r for r in peering_routes if not str(r.get("route_table_id", "")).startswith("${")]
    return _Facts(
        account=_account(doc),
        region=_provider(doc).get("region"),
        access=access_of((address, address.split(".", 1)[0], body) for address, body in blocks.items()),
        peer_cidrs=frozenset(str(r.get("destination_cidr_block")) for r in ours),
        peer_route_tables=frozenset(str(r.get("route_table_id")) for r in theirs),
        outputs=_strip(doc.get("output", {})),
    )


def _peer_target(connection: dict) -> str:
    where = f"account {code(connection.get('peer_owner_id'))}"
    if connection.get("peer_region"):
        where += f", {code(connection['peer_region'])}"
    return f"{code(connection.get('peer_vpc_id'))} ({where})"


def _warnings(base: dict[str, dict], head: dict[str, dict], removed: list[str], bf: _Facts, hf: _Facts) -> list[str]:
    """Every change that destroys something, or that attributes known to force it predict to replace something."""
    warnings: list[str] = []
    if bf.account and hf.account and bf.account != hf.account:
        warnings.append(f"{PREDICTED}account changed {code(bf.account)} → {code(hf.account)}: every "
                        "resource is created anew in the new account, and Terraform loses track of the old account's")
    if bf.region and hf.region and bf.region != hf.region:
        warnings.append(f"{PREDICTED}region changed {code(bf.region)} → {code(hf.region)}: replaces "
                        "every regional resource (network, peering); the old region's are left behind, not destroyed")
    explained = set()
    for address in sorted(a for a in _of_type(base, "aws_iam_role") if not in_alarm(a)):
        before, after = base[address].get("name"), head.get(address, {}).get("name")
        if address in removed:
            warnings.append(f"role {code(before)} destroyed ({code(address)}): the control plane loses access")
            explained.add(address)
        elif before != after:
            warnings.append(f"{PREDICTED}role name changed {code(before)} → {code(after)}: replaces the "
                            f"role ({code(address)}); the control plane cannot assume it in between")
    network_replaced = False
    for address in sorted(_of_type(base, "aws_vpc")):
        before, after = base[address].get("cidr_block"), head.get(address, {}).get("cidr_block")
        if address in removed:
            warnings.append(f"network {code(before)} destroyed ({code(address)}), with its subnets, route table and "
                            "routes")
            explained.add(address)
        elif before != after:
            network_replaced = True
            warnings.append(f"{PREDICTED}network CIDR changed {code(before)} → {code(after)}: replaces "
                            f"the VPC ({code(address)}) and everything in it: subnets, route table, routes and the "
                            "peering")
    for address in [] if network_replaced else sorted(set(_of_type(base, "aws_subnet")) - set(removed)):
        before, after = base[address].get("cidr_block"), head[address].get("cidr_block")
        if before != after:
            warnings.append(f"{PREDICTED}subnet CIDR changed {code(before)} → {code(after)}: replaces "
                            f"the subnet ({code(address)})")
    for address in sorted(_of_type(base, "aws_vpc_peering_connection")):
        before = _peer_target(base[address])
        if address in removed:
            warnings.append(f"peering to {before} destroyed ({code(address)}): traffic to the customer's VPC stops")
            explained.add(address)
        elif before != (after := _peer_target(head[address])):
            warnings.append(f"{PREDICTED}peering target changed {before} → {after}: replaces the peering "
                            f"connection ({code(address)}); traffic stops until the new one is accepted")
    if bf.access.alarm and not hf.access.alarm:  # the alarm's removal is warned of with the access
        explained |= {a for a in removed if in_alarm(a)}
    if others := [a for a in removed if a not in explained]:
        warnings.append(f"also destroys: {_code(others)}")
    return warnings


def _created(head: dict[str, dict], added: list[str], bf: _Facts, hf: _Facts) -> list[str]:
    """What the change creates, in words: a new stack's account and region, role, network and peering."""
    out = [] if bf.account else [f"account {code(hf.account)}, region {code(hf.region)}"]
    for address in added:
        body = head[address]
        if address.startswith("aws_iam_role.") and not in_alarm(address):
            out.append(f"role {code(body.get('name'))} created")
        elif address.startswith("aws_vpc."):
            out.append(f"network created on {code(body.get('cidr_block'))}")
        elif address.startswith("aws_vpc_peering_connection."):
            out.append(f"peering to {_peer_target(body)} created")
    return out


def _other_changes(bf: _Facts, hf: _Facts) -> list[str]:
    """Peering routes and outputs, in words."""
    out: list[str] = []
    _set_change("peer CIDRs", bf.peer_cidrs, hf.peer_cidrs, out)
    _set_change("customer route tables routed to the data plane", bf.peer_route_tables, hf.peer_route_tables, out)
    outputs_changed = frozenset(n for n in set(bf.outputs) & set(hf.outputs) if bf.outputs[n] != hf.outputs[n])
    _set_change("outputs", frozenset(bf.outputs), frozenset(hf.outputs), out)
    if outputs_changed:
        out.append(f"outputs changed: {_code(outputs_changed)}")
    return out


def _providers(doc: dict) -> dict[str, Any]:
    return {f"aws.{p['alias']}" if "alias" in p else "aws": p for p in doc.get("provider", {}).get("aws", [])}


def _settings_changes(base_doc: dict, head_doc: dict, bf: _Facts, hf: _Facts) -> list[str]:
    """Changes outside resources and outputs: providers (beyond account and region), backend, versions."""
    out: list[str] = []
    before, after = _providers(base_doc), _providers(head_doc)
    _set_change("providers", frozenset(before), frozenset(after), out)
    changed = {n for n in before.keys() & after.keys() if before[n] != after[n]}
    if (bf.account, bf.region) != (hf.account, hf.region):
        changed.discard("aws")
    if changed:
        out.append(f"providers changed: {_code(changed)}")
    if _strip(base_doc.get("terraform")) != _strip(head_doc.get("terraform")):
        out.append("Terraform settings changed (backend or required providers)")
    return out


def review_stack(name: str, base_file: StackFile | None, head_file: StackFile | None,
                 neighbours: Mapping[str, str] = {}) -> StackReview:
    """Compare one customer's stack; `None` means absent on that side. Identical bytes are not parsed.

    `neighbours`: the other stacks' accounts in the head fleet, each with its customer (see `access_changes`)."""
    both = base_file is not None and head_file is not None
    if both and base_file.raw == head_file.raw:
        return StackReview(name, "unchanged")
    base_doc = base_file.document if base_file is not None else {}
    head_doc = head_file.document if head_file is not None else {}
    base, head = _blocks(base_doc), _blocks(head_doc)
    if both and _strip(base_doc) == _strip(head_doc):
        return StackReview(name, "unchanged")
    status: Status = "added" if base_file is None else "removed" if head_file is None else "changed"
    added, removed = sorted(head.keys() - base.keys()), sorted(base.keys() - head.keys())
    changed = [ChangedResource(a, tuple(sorted(k for k in base[a].keys() | head[a].keys()
                                               if base[a].get(k) != head[a].get(k))))
               for a in sorted(base.keys() & head.keys()) if base[a] != head[a]]
    review = StackReview(
        name, status,
        added=[a for a in added if not a.startswith("data.")],
        removed=[a for a in removed if not a.startswith("data.")],
        changed=[c for c in changed if not c.address.startswith("data.")],
        data_sources=sorted(a for a in [*added, *removed, *(c.address for c in changed)] if a.startswith("data.")),
    )
    base_facts, head_facts = _facts(base_doc, base), _facts(head_doc, head)
    review.account = head_facts.account or base_facts.account
    if status == "removed":
        review.warnings.append(f"customer removed: its whole stack in account {code(base_facts.account)} would be "
                               f"destroyed ({len(review.removed)} resources)")
        return review
    review.access, access_warnings = access_changes(base_facts.access, head_facts.access, neighbours)
    review.warnings = _warnings(base, head, review.removed, base_facts, head_facts) + access_warnings
    review.created = _created(head, review.added, base_facts, head_facts)
    review.other = _other_changes(base_facts, head_facts)
    if status == "changed":
        review.other += _settings_changes(base_doc, head_doc, base_facts, head_facts)
        review.warnings += _bootstrap_changes(name, base_doc, head_doc)
    return review


def _bootstrap_changes(name: str, base_doc: dict, head_doc: dict) -> list[str]:
    """A warning when the deploy role the customer's bootstrap creates must change: its actions, derived from the
    stack (`bootstrap.permissions`), differ between base and head. A stack without a default aws provider has no
    deploy role to derive."""
    providers = [as_list(doc.get("provider", {}).get("aws")) for doc in (base_doc, head_doc)]
    if not all(any("alias" not in p for p in aws) for aws in providers):
        return []
    try:
        before, after = (bootstrap.needed_actions(doc) for doc in (base_doc, head_doc))
    except bootstrap.BootstrapError as e:
        return [f"bootstrap policy cannot be derived ({code(str(e))}): {code(name)}'s deploy role may not cover it"]
    if before == after:
        return []
    changes = "; ".join(f"actions {verb}: {_code(values)}" for verb, values in (("added", after - before),
                                                                                ("removed", before - after)) if values)
    return [f"bootstrap policy changed ({changes}): {code(name)} must re-run the bootstrap "
            f"(`make bootstrap CUSTOMER={name}`) before this change deploys"]


# ---------------------------------------------------------------- plans


def _plan_warnings(plan: Plan) -> list[str]:
    """What the plan replaces, destroys or stops managing; and whether it could plan everything."""
    out = ["the plan errored: Terraform could not plan everything, so this stack's figures are incomplete"
           ] if plan.errored else []
    if plan.whole_stack == "destroyed":
        return out + [f"the plan destroys the whole stack ({len(plan.resources)} resources)"]
    out += [f"replaces {code(r.address)} ({_cause(r.attributes, r.reason)})"
            for r in plan.resources if r.action == "replace"]
    if destroyed := [r.address for r in plan.resources if r.action == "destroy"]:
        out.append(f"destroys: {_code(destroyed)}")
    if forgotten := [r.address for r in plan.resources if r.action == "forget"]:
        out.append(f"stops managing (leaves in the account, forgets from the state): {_code(forgotten)}")
    return out


def _cause(attributes: tuple[AttributeChange, ...], reason: str | None) -> str:
    return f"forced by {', '.join(code(a.path) for a in attributes)}" if attributes else str(reason)


def _plan_access(plan: Plan, neighbours: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """`access_changes` read from the plan's values (a policy hidden from it, said so)."""
    lines, warnings = access_changes(*(access_of((a, rtype, body) for a, (rtype, body) in values.items())
                                       for values in (plan.before, plan.after)), neighbours)
    for side, values in (("in the state", plan.before), ("as planned", plan.after)):
        for address, (rtype, body) in sorted(values.items()):
            shown = body.get(POLICY_ATTRIBUTES.get(rtype, "")) if isinstance(body, dict) else body
            if rtype in POLICY_ATTRIBUTES and shown in (SENSITIVE, UNKNOWN):
                lines.append(f"{code(address)}: its policy {side} is {shown}, so trust and permissions leave it out")
    return lines, warnings


def _with_plan(stack: StackReview, plan: Plan | None, neighbours: Mapping[str, str]) -> StackReview:
    """`stack` with the plan's figures instead of the configuration's guess, when it has a plan.

    Its warnings, most severe first: a plan that errored; the root cause, in one sentence, of the replacements the
    plan confirms (the configuration's prediction); what changes access; then the plan's replacements and destroys.
    """
    if plan is not None:
        stack.access, access_warnings = _plan_access(plan, neighbours)
        planned = _plan_warnings(plan)
        errored = planned[:1] if plan.errored else []
        replaces = any(r.action == "replace" for r in plan.resources)
        causes = [f"root cause: {w.removeprefix(PREDICTED)}" for w in stack.warnings
                  if replaces and w.startswith(PREDICTED)]
        stack.plan, stack.warnings = plan, errored + causes + access_warnings + planned[len(errored):]
        stack.account = stack.account or plan.account
    return stack


def _planned_status(plan: Plan) -> Status:
    """A stack's status known only from its plan: created or destroyed whole, else changed if it acts at all."""
    if plan.whole_stack is not None:
        return "added" if plan.whole_stack == "created" else "removed"
    return "changed" if plan.resources else "unchanged"


def review(base_dir: Path | None, head_dir: Path | None, plans_dir: Path | None = None,
           label_limit: int | None = None) -> Report:
    """Review every customer stack: of `head_dir` against `base_dir`, of `plans_dir`'s plans, or both, by name.

    A missing `plans_dir` counts as empty: no stack was planned. `label_limit`: see `Report.label_limit`.
    """
    if (base_dir is None or head_dir is None) and plans_dir is None:
        raise ReviewError("nothing to review: give --base and --head, or --plans, or all three")
    plans = read_plans(plans_dir) if plans_dir is not None and plans_dir.exists() else {}
    if base_dir is None or head_dir is None:
        fleet = {name: plan.account for name, plan in plans.items()}
        stacks = [StackReview(name, _planned_status(plan)) for name, plan in sorted(plans.items())]
    else:
        base, head = load_stacks(base_dir), load_stacks(head_dir)
        if strays := sorted(plans.keys() - base.keys() - head.keys()):
            raise ReviewError(f"{plans_dir}: plan for {strays[0]!r}, a stack in neither {base_dir} nor {head_dir}")
        fleet = {name: _account(stack.document) for name, stack in head.items()}
        stacks = [review_stack(name, base.get(name), head.get(name), _neighbours(fleet, name))
                  for name in sorted(base.keys() | head.keys())]
    return Report([_with_plan(s, plans.get(s.name), _neighbours(fleet, s.name)) for s in stacks], plans_dir is not None,
                  label_limit)


def role_changes(report: Report) -> list[str]:
    """The blast radius: existing customers whose role the configuration change touches (a `ROLE_TYPES` block added,
    removed or changed; the tamper alarm's own roles apart). New customers have no access to break and a removed one
    has its own warning, so neither counts; a review of plans alone compares no configuration and counts none."""
    return [s.name for s in report.stacks if s.status == "changed" and any(
        address.split(".", 1)[0] in ROLE_TYPES and not in_alarm(address)
        for address in [*s.added, *s.removed, *(c.address for c in s.changed)])]


def fleet_change_warning(report: Report) -> str | None:
    """The warning for a change to more customers' roles than `report.label_limit`; None: within it, or unchecked."""
    touched = len(role_changes(report))
    if report.label_limit is None or touched <= report.label_limit:
        return None
    return (f"this change touches the roles of {touched} customers (more than {report.label_limit}): it needs the "
            f"{code(FLEET_CHANGE_LABEL)} label before it can apply")


def fleet_change_refusal(report: Report, labels: Iterable[str]) -> str | None:
    """Why the pull request may not apply: `fleet_change_warning` while it lacks the label; None: it may."""
    warning = fleet_change_warning(report)
    return warning if warning is not None and FLEET_CHANGE_LABEL not in labels else None


def _neighbours(fleet: Mapping[str, str | None], name: str) -> dict[str, str]:
    """The data-plane accounts of the fleet's stacks but `name`, each with its customer."""
    return {account: other for other, account in sorted(fleet.items()) if account and other != name}


# ---------------------------------------------------------------- rendering


def _stack_json(stack: StackReview) -> dict:
    item: dict[str, Any] = {"name": stack.name, "status": stack.status,
                            "basis": "configuration" if stack.plan is None else "plan",
                            "warnings": stack.warnings, "changes": stack.changes}
    if stack.plan is None:
        item["resources"] = {"added": stack.added, "removed": stack.removed,
                             "changed": [{"address": c.address, "attributes": list(c.attributes)}
                                         for c in stack.changed],
                             "data_sources": stack.data_sources}
    else:
        item["plan"] = {"errored": stack.plan.errored, "counts": stack.plan.counts(),
                        "resources": [asdict(r) for r in stack.plan.resources],
                        "drift": [asdict(d) for d in stack.plan.drift]}
    return item


def _plan_totals(report: Report) -> dict[str, int]:
    plans = [s.plan for s in report.stacks if s.plan is not None]
    totals = {"stacks": len(plans), "drifted": sum(1 for p in plans if p.drift), **dict.fromkeys(COUNTED, 0)}
    for plan in plans:
        for action, count in plan.counts().items():
            totals[action] += count
    return totals


def to_json(report: Report) -> str:
    document: dict[str, Any] = {"basis": _basis(report), "summary": report.summary(), "affected": report.affected}
    if report.planned:
        document["plans"] = _plan_totals(report)
    document["stacks"] = [_stack_json(s) for s in report.stacks if s.reported]
    document["unchanged"] = [s.name for s in report.stacks if not s.reported]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _basis(report: Report) -> str:
    """The review's first line: what its figures are."""
    if not report.planned:
        return CONFIGURATION_ONLY
    if not any(s.plan for s in report.stacks):
        return f"{NO_PLANS} {CONFIGURATION_ONLY}" if report.stacks else NO_PLANS
    line = "Planned against live state: figures marked (plan) are Terraform's planned actions."
    if any(s.reported and s.plan is None for s in report.stacks):
        line += (" Stacks marked (configuration diff only) had no plan: their counts are of resource blocks in the "
                 "configuration, not Terraform actions.")
    return line


def _counts_line(counts: dict[str, int], prefix: str) -> str:
    line = (f"{prefix}{counts['create']} to create, {counts['update']} to update, {counts['replace']} to replace, "
            f"{counts['destroy']} to destroy, {counts['import']} to import")
    return line + (f", {counts['forget']} to forget" if counts["forget"] else "")


def _head(report: Report) -> list[str]:
    counts = report.summary()
    lines = ["## Data plane review", "", _basis(report), "",
             f"**Customers:** {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed, "
             f"{counts['unchanged']} unchanged", ""]
    if report.planned and (totals := _plan_totals(report))["stacks"]:
        lines += [_counts_line(totals, f"**Plans:** {totals['stacks']} stack(s) planned: ")
                  + f"; drift found in {totals['drifted']} of them", ""]
    if fleet := fleet_change_warning(report):
        lines += ["> [!WARNING]", f"> **{fleet}**", ""]
    if count := sum(len(s.warnings) for s in report.stacks):
        lines += ["> [!WARNING]", f"> {count} warning(s), each also in its stack's section:", *_digest(report), ""]
    return lines


def _digest(report: Report) -> list[str]:
    """Each warning with its stack; one that several stacks share but for their own account and name (a change to
    the settings gives every stack the same), once with their count and the first few of them."""
    shared: dict[str, list[tuple[str, str]]] = {}
    for stack in report.stacks:
        for warning in stack.warnings:
            shared.setdefault(_in_general(stack, warning), []).append((stack.name, warning))
    lines = []
    for general, warned in shared.items():
        if len(warned) == 1:
            lines.append(f"> - {code(warned[0][0])}: {warned[0][1]}")
        else:
            names = ", ".join(code(name) for name, _ in warned[:DIGEST_NAMES])
            more = f" and {len(warned) - DIGEST_NAMES} more" if len(warned) > DIGEST_NAMES else ""
            lines.append(f"> - {len(warned)} stacks ({names}{more}): {general}")
    return lines


def _in_general(stack: StackReview, warning: str) -> str:
    """`warning` with the stack's own account(s) as `{account}` and its name as `{customer}`."""
    for account in filter(None, (stack.account or "").split(", ")):
        warning = re.sub(rf"(?<!\d){re.escape(account)}(?!\d)", "{account}", warning)
    return re.sub(rf"(?<![\w.:/-]){re.escape(stack.name)}(?![\w.:/-])", "{customer}", warning)


CLIP = 100
"""Characters of a value shown in Markdown, around where before and after first differ."""


def _span(text: str) -> str:
    """A value as inline code; the sensitive and unknown markers as plain text."""
    return text if text in (SENSITIVE, UNKNOWN) else code(text)


def _clip(text: str, start: int) -> str:
    if text in (SENSITIVE, UNKNOWN) or len(text) <= CLIP and start == 0:
        return text
    return ("…" if start else "") + text[start:start + CLIP] + ("…" if start + CLIP < len(text) else "")


def _values(change: AttributeChange) -> str:
    """`path`: before → after, long values clipped alike around their first difference."""
    before, after = change.before, change.after
    first = next((i for i, (b, a) in enumerate(zip(before, after)) if b != a), min(len(before), len(after)))
    start = max(0, first - CLIP // 4) if max(len(before), len(after)) > CLIP else 0
    return f"{code(change.path)}: {_span(_clip(before, start))} → {_span(_clip(after, start))}"


SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "destroy": "-", "forget": "forget", "no-op": "import"}


def _plan_lines(plan: Plan) -> list[str]:
    counts = plan.counts()
    lines = [_counts_line(counts, "Plan (errored, incomplete): " if plan.errored else "Plan: ")
             if any(counts.values()) else "Plan: no changes"]
    for r in plan.resources:
        notes = [] if r.imported_from is None else [f"{'from' if r.action == 'no-op' else 'imported from'} "
                                                    f"{code(r.imported_from)}"]
        if r.action == "replace":
            notes.append(_cause(r.attributes, r.reason))
        lines.append(f"- {code(f'{SYMBOLS[r.action]} {r.address}')}" + (f" ({'; '.join(notes)})" if notes else ""))
        lines += [f"  - {_values(a)}" for a in r.attributes]
    lines.append("")
    if plan.drift:
        lines += ["Drift: changed outside Terraform, found by refresh (not part of this change):"]
        for d in plan.drift:
            lines.append(f"- {code(d.address)}: " + ("deleted outside Terraform" if d.deleted else "changed"))
            lines += [f"  - {_values(a)}" for a in d.attributes]
        lines.append("")
    return lines


def _configuration_lines(stack: StackReview) -> list[str]:
    lines = [f"Resource blocks: {len(stack.added)} added, {len(stack.changed)} changed, {len(stack.removed)} removed "
             "in the configuration"]
    lines += [f"- {code(f'+ {a}')}" for a in stack.added]
    lines += [f"- {code(f'~ {c.address}')} ({', '.join(c.attributes)})" for c in stack.changed]
    lines += [f"- {code(f'- {a}')}" for a in stack.removed]
    if stack.data_sources:
        lines += ["", f"Data sources added, changed or removed (read, not created; not counted): "
                      f"{_code(stack.data_sources)}"]
    return lines + [""]


def _section(stack: StackReview) -> list[str]:
    lines = [f"### {code(stack.name)}: {stack.status} ({'plan' if stack.plan else 'configuration diff only'})", ""]
    lines += [f"- ⚠️ **{w}**" for w in stack.warnings]
    lines += [f"- {c}" for c in stack.changes]
    if stack.warnings or stack.changes:
        lines.append("")
    return lines + (_configuration_lines(stack) if stack.plan is None else _plan_lines(stack.plan))


def _markdown_blocks(report: Report) -> list[str]:
    """The Markdown review as blocks a split keeps whole: the head, each reported stack, the unchanged list."""
    blocks = [_head(report)] + [_section(s) for s in report.stacks if s.reported]
    if unchanged := [s.name for s in report.stacks if not s.reported]:
        blocks.append([f"Unchanged ({len(unchanged)}): {', '.join(map(code, unchanged))}", ""])
    return ["\n".join(lines) + "\n" for lines in blocks]


def _join(pieces: Iterable[str]) -> str:
    return "".join(pieces).rstrip("\n") + "\n"


def to_markdown(report: Report) -> str:
    return _join(_markdown_blocks(report))


def render(report: Report, fmt: Format = "markdown", affected: bool = False) -> str:
    """The report as Markdown (whole) or JSON, or only the affected stack names, one a line."""
    if affected:
        return "".join(f"{name}\n" for name in report.affected)
    return to_json(report) if fmt == "json" else to_markdown(report)


# ---------------------------------------------------------------- comment-sized parts


def _part_heading(index: int | str, count: int | str) -> str:
    return f"**Part {index} of {count}**\n\n"


def split(report: Report, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """The Markdown review in parts of at most `max_chars` characters each (see the module docstring)."""
    if max_chars < MIN_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_CHARS}, not {max_chars}")
    blocks = _markdown_blocks(report)
    if len(whole := _join(blocks)) <= max_chars:
        return [whole]
    digits = 1
    while len(str(len(parts := _pack(blocks, max_chars - len(_part_heading("9" * digits, "9" * digits)))))) > digits:
        digits += 1
    return [_join([_part_heading(i, len(parts)), *part]) for i, part in enumerate(parts, 1)]


def _pack(blocks: list[str], budget: int) -> list[list[str]]:
    """The head spread over as many parts as it needs, then each stack block whole (cut if longer than a part)."""
    parts = [[piece] for piece in _spread(blocks[0], budget)]
    room = budget - len(parts[-1][0])
    for block in blocks[1:]:
        block = block if len(block) <= budget else _truncated(block, budget)
        if len(block) > room:
            parts.append([])
            room = budget
        parts[-1].append(block)
        room -= len(block)
    return parts


def _spread(text: str, budget: int) -> list[str]:
    """`text` in pieces of at most `budget` characters, split between lines (a longer line cut short)."""
    pieces = [""]
    for line in text.splitlines(keepends=True):
        if len(line) > budget:
            line = cut(line, budget - 2) + "…\n"
        if len(pieces[-1]) + len(line) > budget:
            pieces.append("")
        pieces[-1] += line
    return pieces


def _truncated(block: str, budget: int) -> str:
    """`block` cut between lines to fit `budget` characters, with a note of how many lines were left out.

    The first line that does not fit is kept as far as the room left allows (a line can be longer than a part), cut
    before any code span the cut would fall in.
    """
    lines = block.splitlines(keepends=True)
    left = [0] * (len(lines) + 1)
    for index in range(len(lines) - 1, -1, -1):
        left[index] = left[index + 1] + bool(lines[index].strip())

    def note(kept: int) -> str:
        return f"(truncated: {left[kept]} more lines; see the workflow artifact)\n\n"

    kept = size = 0
    while kept < len(lines) and size + len(lines[kept]) + len(note(kept + 1)) <= budget:
        size += len(lines[kept])
        kept += 1
    clipped = ""
    if kept < len(lines) and (room := budget - size - len(note(kept + 1)) - len("…\n")) >= CLIP:
        clipped = cut(lines[kept], room) + "…\n"
    return "".join(lines[:kept]) + clipped + note(kept + bool(clipped))


def join_parts(parts: list[str]) -> str:
    """The parts for stdout: one as it is; several each after a line `<!-- dataplane-review part i of n -->`."""
    if len(parts) == 1:
        return parts[0]
    return "".join(f"<!-- dataplane-review part {i} of {len(parts)} -->\n{part}" for i, part in enumerate(parts, 1))


PART_FILE = re.compile(r"part-(\d{3,})\.md")


def write_parts(parts: list[str], directory: Path) -> list[Path]:
    """Write part i to `directory/part-00i.md` (created if missing); refused if it holds a later part already."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        stale = sorted(p.name for p in directory.iterdir()
                       if (m := PART_FILE.fullmatch(p.name)) and int(m[1]) > len(parts))
    except OSError as e:
        raise ReviewError(f"{directory}: cannot be used for the parts ({e.strerror})") from None
    if stale:
        raise ReviewError(f"{directory}: holds {stale[0]} from an earlier review, beyond this one's {len(parts)} "
                          "part(s); use an empty directory")
    written = []
    for index, part in enumerate(parts, 1):
        path = directory / f"part-{index:03d}.md"
        try:
            path.write_text(part, encoding="utf-8")
        except OSError as e:
            raise ReviewError(f"{path}: cannot be written ({e.strerror})") from None
        written.append(path)
    return written
