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
- `--plans DIR` (`<customer>.plan.json` files, `terraform show -json` output; `plan_review` reads them):
  the plan's figures instead of that guess, for every stack that has a plan: resources to create, update,
  replace, destroy and import, each replacement with the attributes that force it, the drift refresh found
  (its own section), and trust and permissions read from the plan's before and after values. Alone, every
  plan in DIR is reviewed; with `--base`/`--head`, those give the stacks and their statuses (a stack without
  a plan keeps the configuration diff, labelled so; one whose configuration is unchanged is reported when its
  plan changes something or found drift), and a missing DIR counts as empty (no stack was planned).
- Markdown is split into parts of at most `--max-chars` characters (default 65000, at least 1000), at stack
  boundaries: part 1 holds the heading, the summary and a digest of every warning with its stack (spilling
  over only if they alone exceed a part), then stack sections fill parts in order; a section longer than a
  part is cut between lines (the first line left out clipped into the room left) with a note
  `(truncated: N more lines; see the workflow artifact)`. With more than one part, each begins with
  `**Part i of n**`. On stdout, one part is printed as it is; several each follow a line
  `<!-- dataplane-review part i of n -->` (not counted in N). With `--parts-dir OUT`, the parts are written to
  `OUT/part-001.md`, `OUT/part-002.md`, ... (OUT created; nothing in it removed, and refused if it holds a
  higher-numbered part from an earlier run) and only the written paths are printed. JSON is never split.

Everything is sorted: two runs over the same inputs print the same bytes. The report shows ExternalIds, as
the stack itself does; values a plan marks sensitive are never shown; nothing is logged.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from dataplane import policy
from dataplane.ops.plan_review import (
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


@dataclass(frozen=True)
class StackFile:
    """One stack's synthesized `cdk.tf.json`: where it was read, and its bytes."""

    path: Path
    raw: bytes

    def document(self) -> dict:
        return json_object(self.path, self.raw)


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
    """Who may assume a stack's roles, requiring which ExternalIds, the IAM actions its policies allow, the managed
    policies attached, and the boundary its escalation guard requires."""

    principals: frozenset[str]
    external_ids: frozenset[str]
    actions: frozenset[str]
    managed_policies: frozenset[str] = frozenset()
    guard: frozenset[str] = frozenset()


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


def access_of(resources: Iterable[tuple[str, dict]]) -> Access:
    """The access granted by Terraform resources given as (type, attribute values): synthesized or planned."""
    principals: set[str] = set()
    external_ids: set[str] = set()
    actions: set[str] = set()
    managed: set[str] = set()
    guard: set[str] = set()
    for rtype, body in resources:
        document = _policy(body.get(POLICY_ATTRIBUTES.get(rtype, "")))
        if rtype == "aws_iam_role":
            for statement in _allow_statements(document):
                principals |= policy.principals(statement.get("Principal"))
                external_ids.update(map(str, policy.required_external_ids(statement) or []))
        elif rtype in POLICY_ATTRIBUTES:
            actions |= policy.granted_actions(document)
            guard.update(filter(None, [policy.guard_of(document)]))
        elif rtype == "aws_iam_role_policy_attachment" and body.get("policy_arn"):
            managed.add(str(body["policy_arn"]))
    return Access(*map(frozenset, (principals, external_ids, actions, managed, guard)))


def access_changes(before: Access, after: Access) -> tuple[list[str], list[str]]:
    """Trust and permission changes in words, and the warnings among them: the same for a configuration diff and a plan.

    One ExternalId replaced by another is a rotation (`changed`). Where either side has several (one per control-plane
    cluster), the ids added and removed are listed, and each id removed while the role stays is a warning.
    """
    out: list[str] = []
    warnings: list[str] = []
    _value_change("trust principal", before.principals, after.principals, out)
    ids = before.external_ids, after.external_ids
    if all(ids) and max(map(len, ids)) > 1:
        _set_change("ExternalIds", *ids, out)
        warnings += [f"ExternalId `{gone}` removed from the trust: that cluster loses access"
                     for gone in sorted(ids[0] - ids[1])]
    else:
        _value_change("ExternalId", *ids, out)
    _set_change("IAM actions", before.actions, after.actions, out, added="granted", removed="revoked")
    _set_change("managed policies", before.managed_policies, after.managed_policies, out, added="attached",
                removed="detached")
    _value_change("escalation guard boundary", before.guard, after.guard, out)
    if before.guard and not after.guard and after.actions:
        warnings.append("escalation guard removed: the role may again create roles with any policy, or rewrite its own")
    return out, warnings


def _code(values: Iterable[str]) -> str:
    return ", ".join(f"`{v}`" for v in sorted(values)) or "none"


def _set_change(label: str, before: frozenset[str], after: frozenset[str], out: list[str],
                added: str = "added", removed: str = "removed") -> None:
    if after - before:
        out.append(f"{label} {added}: {_code(after - before)}")
    if before - after:
        out.append(f"{label} {removed}: {_code(before - after)}")


def _value_change(label: str, before: frozenset[str], after: frozenset[str], out: list[str]) -> None:
    if before == after:
        return
    if not before:
        out.append(f"{label} set: {_code(after)}")
    elif not after:
        out.append(f"{label} removed (was {_code(before)})")
    else:
        out.append(f"{label} changed: {_code(before)} → {_code(after)}")


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
    alarm_email: str | None
    """Where the tamper alarm emails the role's changes; None: no alarm."""


def _of_type(blocks: dict[str, dict], rtype: str) -> dict[str, dict]:
    prefix = f"{rtype}."
    return {a: b for a, b in blocks.items() if a.startswith(prefix)}


def _facts(doc: dict, blocks: dict[str, dict]) -> _Facts:
    provider = next((p for p in doc.get("provider", {}).get("aws", []) if "alias" not in p), {})
    # Routes to the customer sit in our route table (a reference); routes back sit in theirs (an id).
    peering_routes = [r for r in _of_type(blocks, "aws_route").values() if r.get("vpc_peering_connection_id")]
    ours = [r for r in peering_routes if str(r.get("route_table_id", "")).startswith("${")]
    theirs = [r for r in peering_routes if not str(r.get("route_table_id", "")).startswith("${")]
    return _Facts(
        account=", ".join(as_list(provider.get("allowed_account_ids"))) or None,
        region=provider.get("region"),
        access=access_of((address.split(".", 1)[0], body) for address, body in blocks.items()
                         if not in_alarm(address)),
        peer_cidrs=frozenset(str(r.get("destination_cidr_block")) for r in ours),
        peer_route_tables=frozenset(str(r.get("route_table_id")) for r in theirs),
        outputs=_strip(doc.get("output", {})),
        alarm_email=next((str(s.get("endpoint")) for a, s in _of_type(blocks, "aws_sns_topic_subscription").items()
                          if in_alarm(a) and s.get("protocol") == "email"), None),
    )


def _peer_target(connection: dict) -> str:
    where = f"account {connection.get('peer_owner_id')}"
    if connection.get("peer_region"):
        where += f", {connection['peer_region']}"
    return f"`{connection.get('peer_vpc_id')}` ({where})"


def _warnings(base: dict[str, dict], head: dict[str, dict], removed: list[str], bf: _Facts, hf: _Facts) -> list[str]:
    """Every change that destroys something, or that attributes known to force it predict to replace something."""
    warnings: list[str] = []
    if bf.account and hf.account and bf.account != hf.account:
        warnings.append(f"predicted replacement: account changed `{bf.account}` → `{hf.account}`: every resource is "
                        "created anew in the new account, and Terraform loses track of the old account's")
    if bf.region and hf.region and bf.region != hf.region:
        warnings.append(f"predicted replacement: region changed `{bf.region}` → `{hf.region}`: replaces every "
                        "regional resource (network, peering); the old region's are left behind, not destroyed")
    explained = set()
    for address in sorted(a for a in _of_type(base, "aws_iam_role") if not in_alarm(a)):
        before, after = base[address].get("name"), head.get(address, {}).get("name")
        if address in removed:
            warnings.append(f"role `{before}` destroyed (`{address}`): the control plane loses access")
            explained.add(address)
        elif before != after:
            warnings.append(f"predicted replacement: role name changed `{before}` → `{after}`: replaces the role "
                            f"(`{address}`); the control plane cannot assume it in between")
    network_replaced = False
    for address in sorted(_of_type(base, "aws_vpc")):
        before, after = base[address].get("cidr_block"), head.get(address, {}).get("cidr_block")
        if address in removed:
            warnings.append(f"network `{before}` destroyed (`{address}`), with its subnets, route table and routes")
            explained.add(address)
        elif before != after:
            network_replaced = True
            warnings.append(f"predicted replacement: network CIDR changed `{before}` → `{after}`: replaces the VPC "
                            f"(`{address}`) and everything in it: subnets, route table, routes and the peering")
    for address in [] if network_replaced else sorted(set(_of_type(base, "aws_subnet")) - set(removed)):
        before, after = base[address].get("cidr_block"), head[address].get("cidr_block")
        if before != after:
            warnings.append(f"predicted replacement: subnet CIDR changed `{before}` → `{after}`: replaces the subnet "
                            f"(`{address}`)")
    for address in sorted(_of_type(base, "aws_vpc_peering_connection")):
        before = _peer_target(base[address])
        if address in removed:
            warnings.append(f"peering to {before} destroyed (`{address}`): traffic to the customer's VPC stops")
            explained.add(address)
        elif before != (after := _peer_target(head[address])):
            warnings.append(f"predicted replacement: peering target changed {before} → {after}: replaces the peering "
                            f"connection (`{address}`); traffic stops until the new one is accepted")
    if bf.alarm_email and not hf.alarm_email:
        alarm = {a for a in removed if in_alarm(a)}
        warnings.append(f"tamper alarm removed: changes to the role are no longer emailed to `{bf.alarm_email}`; "
                        f"its {len(alarm)} resources are destroyed, and the apply stops at a bucket holding logs "
                        "(empty it, or `terraform state rm` it to keep it)")
        explained |= alarm
    if others := [a for a in removed if a not in explained]:
        warnings.append(f"also destroys: {_code(others)}")
    return warnings


def _created(head: dict[str, dict], added: list[str], bf: _Facts, hf: _Facts) -> list[str]:
    """What the change creates, in words: a new stack's account and region, role, network, peering and alarm."""
    out = [] if bf.account else [f"account `{hf.account}`, region `{hf.region}`"]
    for address in added:
        body = head[address]
        if address.startswith("aws_iam_role.") and not in_alarm(address):
            out.append(f"role `{body.get('name')}` created")
        elif address.startswith("aws_vpc."):
            out.append(f"network created on `{body.get('cidr_block')}`")
        elif address.startswith("aws_vpc_peering_connection."):
            out.append(f"peering to {_peer_target(body)} created")
    if hf.alarm_email and not bf.alarm_email:
        out.append(f"tamper alarm created: changes to the role emailed to `{hf.alarm_email}` once it confirms the "
                   "subscription")
    return out


def _other_changes(bf: _Facts, hf: _Facts) -> list[str]:
    """Peering routes, outputs and the tamper alarm's email, in words."""
    out: list[str] = []
    if bf.alarm_email and hf.alarm_email and bf.alarm_email != hf.alarm_email:
        out.append(f"tamper alarm email changed: `{bf.alarm_email}` → `{hf.alarm_email}`, which must confirm the "
                   "subscription")
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


def review_stack(name: str, base_file: StackFile | None, head_file: StackFile | None) -> StackReview:
    """Compare one customer's stack; `None` means absent on that side. Identical bytes are not parsed."""
    both = base_file is not None and head_file is not None
    if both and base_file.raw == head_file.raw:
        return StackReview(name, "unchanged")
    base_doc = base_file.document() if base_file is not None else {}
    head_doc = head_file.document() if head_file is not None else {}
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
    if status == "removed":
        review.warnings.append(f"customer removed: its whole stack in account `{base_facts.account}` would be "
                               f"destroyed ({len(review.removed)} resources)")
        return review
    review.access, access_warnings = access_changes(base_facts.access, head_facts.access)
    review.warnings = _warnings(base, head, review.removed, base_facts, head_facts) + access_warnings
    review.created = _created(head, review.added, base_facts, head_facts)
    review.other = _other_changes(base_facts, head_facts)
    if status == "changed":
        review.other += _settings_changes(base_doc, head_doc, base_facts, head_facts)
    return review


# ---------------------------------------------------------------- plans


def _plan_warnings(plan: Plan) -> list[str]:
    """What the plan replaces, destroys or stops managing; and whether it could plan everything."""
    out = ["the plan errored: Terraform could not plan everything, so this stack's figures are incomplete"
           ] if plan.errored else []
    if plan.whole_stack == "destroyed":
        return out + [f"the plan destroys the whole stack ({len(plan.resources)} resources)"]
    out += [f"replaces `{r.address}` ({_cause(r.attributes, r.reason)})"
            for r in plan.resources if r.action == "replace"]
    if destroyed := [r.address for r in plan.resources if r.action == "destroy"]:
        out.append(f"destroys: {_code(destroyed)}")
    if forgotten := [r.address for r in plan.resources if r.action == "forget"]:
        out.append(f"stops managing (leaves in the account, forgets from the state): {_code(forgotten)}")
    return out


def _cause(attributes: tuple[AttributeChange, ...], reason: str | None) -> str:
    return f"forced by {', '.join(f'`{a.path}`' for a in attributes)}" if attributes else str(reason)


def _plan_access(plan: Plan) -> tuple[list[str], list[str]]:
    """Trust and permission changes read from the plan's values (a policy hidden from it, said so), and warnings."""
    lines, warnings = access_changes(*(access_of(v for a, v in values.items() if not in_alarm(a))
                                       for values in (plan.before, plan.after)))
    for side, values in (("in the state", plan.before), ("as planned", plan.after)):
        for address, (rtype, body) in sorted(values.items()):
            if (shown := body.get(POLICY_ATTRIBUTES.get(rtype, ""))) in (SENSITIVE, UNKNOWN):
                lines.append(f"`{address}`: its policy {side} is {shown}, so trust and permissions leave it out")
    return lines, warnings


def _with_plan(stack: StackReview, plan: Plan | None) -> StackReview:
    """`stack` with the plan's figures instead of the configuration's guess, when it has a plan."""
    if plan is not None:
        stack.access, access_warnings = _plan_access(plan)
        stack.plan, stack.warnings = plan, _plan_warnings(plan) + access_warnings
    return stack


def _planned_status(plan: Plan) -> Status:
    """A stack's status known only from its plan: created or destroyed whole, else changed if it acts at all."""
    if plan.whole_stack is not None:
        return "added" if plan.whole_stack == "created" else "removed"
    return "changed" if plan.resources else "unchanged"


def review(base_dir: Path | None, head_dir: Path | None, plans_dir: Path | None = None) -> Report:
    """Review every customer stack: of `head_dir` against `base_dir`, of `plans_dir`'s plans, or both, by name."""
    if base_dir is None or head_dir is None:
        if plans_dir is None:
            raise ReviewError("nothing to review: give --base and --head, or --plans, or all three")
        plans = read_plans(plans_dir)
        return Report([_with_plan(StackReview(n, _planned_status(p)), p) for n, p in sorted(plans.items())], True)
    base, head = load_stacks(base_dir), load_stacks(head_dir)
    plans = read_plans(plans_dir) if plans_dir is not None and plans_dir.exists() else {}
    if strays := sorted(plans.keys() - base.keys() - head.keys()):
        raise ReviewError(f"{plans_dir}: plan for {strays[0]!r}, a stack in neither {base_dir} nor {head_dir}")
    return Report([_with_plan(review_stack(name, base.get(name), head.get(name)), plans.get(name))
                   for name in sorted(base.keys() | head.keys())], plans_dir is not None)


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
    totals = {"stacks": len(plans), "drifted": sum(1 for p in plans if p.drift)}
    for plan in plans:
        for action, count in plan.counts().items():
            totals[action] = totals.get(action, 0) + count
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
    if report.planned:
        totals = _plan_totals(report)
        lines += [_counts_line(totals, f"**Plans:** {totals['stacks']} stack(s) planned: ")
                  + f"; drift found in {totals['drifted']} of them", ""]
    if warned := [(s.name, w) for s in report.stacks for w in s.warnings]:
        lines += ["> [!WARNING]", f"> {len(warned)} warning(s), each also in its stack's section:"]
        lines += [f"> - `{name}`: {warning}" for name, warning in warned]
        lines.append("")
    return lines


CLIP = 100
"""Characters of a value shown in Markdown, around where before and after first differ."""


def _span(text: str) -> str:
    """A value as inline code; the sensitive and unknown markers as plain text."""
    if text in (SENSITIVE, UNKNOWN):
        return text
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _clip(text: str, start: int) -> str:
    if text in (SENSITIVE, UNKNOWN) or len(text) <= CLIP and start == 0:
        return text
    return ("…" if start else "") + text[start:start + CLIP] + ("…" if start + CLIP < len(text) else "")


def _values(change: AttributeChange) -> str:
    """`path`: before → after, long values clipped alike around their first difference."""
    before, after = change.before, change.after
    first = next((i for i, (b, a) in enumerate(zip(before, after)) if b != a), min(len(before), len(after)))
    start = max(0, first - CLIP // 4) if max(len(before), len(after)) > CLIP else 0
    return f"`{change.path}`: {_span(_clip(before, start))} → {_span(_clip(after, start))}"


SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "destroy": "-", "forget": "forget", "no-op": "import"}


def _plan_lines(plan: Plan) -> list[str]:
    counts = plan.counts()
    lines = [_counts_line(counts, "Plan (errored, incomplete): " if plan.errored else "Plan: ")
             if any(counts.values()) else "Plan: no changes"]
    for r in plan.resources:
        notes = [] if r.imported_from is None else [f"{'from' if r.action == 'no-op' else 'imported from'} "
                                                    f"`{r.imported_from}`"]
        if r.action == "replace":
            notes.append(_cause(r.attributes, r.reason))
        lines.append(f"- `{SYMBOLS[r.action]} {r.address}`" + (f" ({'; '.join(notes)})" if notes else ""))
        lines += [f"  - {_values(a)}" for a in r.attributes]
    lines.append("")
    if plan.drift:
        lines += ["Drift: changed outside Terraform, found by refresh (not part of this change):"]
        for d in plan.drift:
            lines.append(f"- `{d.address}`: " + ("deleted outside Terraform" if d.deleted else "changed"))
            lines += [f"  - {_values(a)}" for a in d.attributes]
        lines.append("")
    return lines


def _configuration_lines(stack: StackReview) -> list[str]:
    lines = [f"Resource blocks: {len(stack.added)} added, {len(stack.changed)} changed, {len(stack.removed)} removed "
             "in the configuration"]
    lines += [f"- `+ {a}`" for a in stack.added]
    lines += [f"- `~ {c.address}` ({', '.join(c.attributes)})" for c in stack.changed]
    lines += [f"- `- {a}`" for a in stack.removed]
    if stack.data_sources:
        lines += ["", f"Data sources added, changed or removed (read, not created; not counted): "
                      f"{_code(stack.data_sources)}"]
    return lines + [""]


def _section(stack: StackReview) -> list[str]:
    lines = [f"### `{stack.name}`: {stack.status} ({'plan' if stack.plan else 'configuration diff only'})", ""]
    lines += [f"- ⚠️ **{w}**" for w in stack.warnings]
    lines += [f"- {c}" for c in stack.changes]
    if stack.warnings or stack.changes:
        lines.append("")
    return lines + (_configuration_lines(stack) if stack.plan is None else _plan_lines(stack.plan))


def _markdown_blocks(report: Report) -> list[str]:
    """The Markdown review as blocks a split keeps whole: the head, each reported stack, the unchanged list."""
    blocks = [_head(report)] + [_section(s) for s in report.stacks if s.reported]
    if unchanged := [s.name for s in report.stacks if not s.reported]:
        blocks.append([f"Unchanged ({len(unchanged)}): {', '.join(unchanged)}", ""])
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
            line = line[:budget - 2] + "…\n"
        if len(pieces[-1]) + len(line) > budget:
            pieces.append("")
        pieces[-1] += line
    return pieces


def _truncated(block: str, budget: int) -> str:
    """`block` cut between lines to fit `budget` characters, with a note of how many lines were left out.

    The first line that does not fit is kept as far as the room left allows (a line can be longer than a part).
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
        clipped = lines[kept][:room] + "…\n"
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
