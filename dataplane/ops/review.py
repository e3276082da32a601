"""The pull-request review of synthesized plans: what changes between two `cdktf.out` outputs, in words.

Pure Python over the synthesized JSON (no cdktf, no AWS), so a fleet reviews in well under a second::

    python -m dataplane review --base base.out --head cdktf.out [--format markdown|json] [--affected]

Per changed customer it lists Terraform addresses added, removed and changed, then what a reviewer
cares about (trust, permissions, role name, account, region, network, peering, outputs), and warns
about every change that replaces or destroys something. Everything is sorted: two runs over the same
inputs print the same bytes. The report shows ExternalIds, as the stack itself does; nothing is logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from dataplane import policy
from dataplane.policy import as_list
from dataplane.synth_output import MANIFEST, STACK_FILE, stack_dir

Status = Literal["added", "removed", "changed", "unchanged"]
Format = Literal["markdown", "json"]


class ReviewError(Exception):
    """An input directory that is not a synthesized output, or a stack in it that cannot be read."""


@dataclass(frozen=True)
class StackFile:
    """One stack's synthesized `cdk.tf.json`: where it was read, and its bytes."""

    path: Path
    raw: bytes

    def document(self) -> dict:
        return _json_object(self.path, self.raw)


@dataclass(frozen=True)
class ChangedResource:
    address: str
    attributes: tuple[str, ...]


@dataclass
class StackReview:
    """One customer's stack: its status, address-level changes, and what they mean."""

    name: str
    status: Status
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ChangedResource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


@dataclass
class Report:
    stacks: list[StackReview]

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
        names = list(_json_object(manifest, manifest.read_bytes())["stacks"])
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


def _json_object(path: Path, raw: bytes) -> dict:
    """`raw`, read from `path`, as a JSON object; a `ReviewError` naming `path` if it is not one."""
    try:
        value = json.loads(raw)
    except ValueError as e:  # truncated, not JSON, or not UTF-8
        raise ReviewError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ReviewError(f"{path}: not a JSON object")
    return value


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


def _policy(value: Any) -> dict:
    """An IAM policy given as a JSON string (as synthesized) or an object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _allow_statements(policy: Any) -> list[dict]:
    return [s for s in as_list(_policy(policy).get("Statement")) if isinstance(s, dict) and s.get("Effect") == "Allow"]


@dataclass(frozen=True)
class _Facts:
    """What a reviewer cares about in one stack, independent of construct addresses."""

    account: str | None
    region: str | None
    principals: frozenset[str]
    external_ids: frozenset[str]
    actions: frozenset[str]
    peer_cidrs: frozenset[str]
    peer_route_tables: frozenset[str]
    outputs: dict[str, Any]


def _of_type(blocks: dict[str, dict], rtype: str) -> dict[str, dict]:
    prefix = f"{rtype}."
    return {a: b for a, b in blocks.items() if a.startswith(prefix)}


def _facts(doc: dict, blocks: dict[str, dict]) -> _Facts:
    provider = next((p for p in doc.get("provider", {}).get("aws", []) if "alias" not in p), {})
    principals: set[str] = set()
    external_ids: set[str] = set()
    for role in _of_type(blocks, "aws_iam_role").values():
        for statement in _allow_statements(role.get("assume_role_policy")):
            principals |= policy.principals(statement.get("Principal"))
            external_ids.update(map(str, policy.required_external_ids(statement) or []))
    actions = {str(action)
               for rtype in ("aws_iam_role_policy", "aws_iam_policy")
               for body in _of_type(blocks, rtype).values()
               for statement in _allow_statements(body.get("policy"))
               for action in as_list(statement.get("Action"))}
    # Routes to the customer sit in our route table (a reference); routes back sit in theirs (an id).
    peering_routes = [r for r in _of_type(blocks, "aws_route").values() if r.get("vpc_peering_connection_id")]
    ours = [r for r in peering_routes if str(r.get("route_table_id", "")).startswith("${")]
    theirs = [r for r in peering_routes if not str(r.get("route_table_id", "")).startswith("${")]
    return _Facts(
        account=", ".join(as_list(provider.get("allowed_account_ids"))) or None,
        region=provider.get("region"),
        principals=frozenset(principals),
        external_ids=frozenset(external_ids),
        actions=frozenset(actions),
        peer_cidrs=frozenset(str(r.get("destination_cidr_block")) for r in ours),
        peer_route_tables=frozenset(str(r.get("route_table_id")) for r in theirs),
        outputs=_strip(doc.get("output", {})),
    )


# ---------------------------------------------------------------- comparing


def _code(values: Iterable[str]) -> str:
    return ", ".join(f"`{v}`" for v in sorted(values)) or "none"


def _peer_target(connection: dict) -> str:
    where = f"account {connection.get('peer_owner_id')}"
    if connection.get("peer_region"):
        where += f", {connection['peer_region']}"
    return f"`{connection.get('peer_vpc_id')}` ({where})"


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


def _warnings(base: dict[str, dict], head: dict[str, dict], removed: list[str], bf: _Facts, hf: _Facts) -> list[str]:
    """Every change that replaces or destroys something."""
    warnings: list[str] = []
    if bf.account and hf.account and bf.account != hf.account:
        warnings.append(f"account changed `{bf.account}` → `{hf.account}`: every resource is created anew in the new "
                        "account, and Terraform loses track of the old account's")
    if bf.region and hf.region and bf.region != hf.region:
        warnings.append(f"region changed `{bf.region}` → `{hf.region}`: replaces every regional resource (network, "
                        "peering); the old region's are left behind, not destroyed")
    explained = set()
    for address in sorted(_of_type(base, "aws_iam_role")):
        before, after = base[address].get("name"), head.get(address, {}).get("name")
        if address in removed:
            warnings.append(f"role `{before}` destroyed (`{address}`): the control plane loses access")
            explained.add(address)
        elif before != after:
            warnings.append(f"role name changed `{before}` → `{after}`: replaces the role (`{address}`); the "
                            "control plane cannot assume it in between")
    for address in sorted(_of_type(base, "aws_vpc")):
        before, after = base[address].get("cidr_block"), head.get(address, {}).get("cidr_block")
        if address in removed:
            warnings.append(f"network `{before}` destroyed (`{address}`), with its subnets, route table and routes")
            explained.add(address)
        elif before != after:
            warnings.append(f"network CIDR changed `{before}` → `{after}`: replaces the VPC (`{address}`) and "
                            "everything in it: subnets, route table, routes and the peering")
    for address in sorted(_of_type(base, "aws_vpc_peering_connection")):
        before = _peer_target(base[address])
        if address in removed:
            warnings.append(f"peering to {before} destroyed (`{address}`): traffic to the customer's VPC stops")
            explained.add(address)
        elif before != (after := _peer_target(head[address])):
            warnings.append(f"peering target changed {before} → {after}: replaces the peering connection "
                            f"(`{address}`); traffic stops until the new one is accepted")
    others = [a for a in removed if a not in explained and not a.startswith("data.")]
    if others:
        warnings.append(f"also destroys: {_code(others)}")
    return warnings


def _changes(head: dict[str, dict], added: list[str], bf: _Facts, hf: _Facts) -> list[str]:
    """The non-destructive changes a reviewer approves, in words."""
    out = [] if bf.account else [f"account `{hf.account}`, region `{hf.region}`"]
    for address in added:
        body = head[address]
        if address.startswith("aws_iam_role."):
            out.append(f"role `{body.get('name')}` created")
        elif address.startswith("aws_vpc."):
            out.append(f"network created on `{body.get('cidr_block')}`")
        elif address.startswith("aws_vpc_peering_connection."):
            out.append(f"peering to {_peer_target(body)} created")
    _value_change("trust principal", bf.principals, hf.principals, out)
    _value_change("ExternalId", bf.external_ids, hf.external_ids, out)
    _set_change("IAM actions", bf.actions, hf.actions, out, added="granted", removed="revoked")
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
    review = StackReview(
        name, status,
        added=sorted(head.keys() - base.keys()),
        removed=sorted(base.keys() - head.keys()),
        changed=[ChangedResource(a, tuple(sorted(k for k in base[a].keys() | head[a].keys()
                                                 if base[a].get(k) != head[a].get(k))))
                 for a in sorted(base.keys() & head.keys()) if base[a] != head[a]],
    )
    base_facts, head_facts = _facts(base_doc, base), _facts(head_doc, head)
    if status == "removed":
        managed = [a for a in review.removed if not a.startswith("data.")]
        review.warnings.append(f"customer removed: its whole stack in account `{base_facts.account}` would be "
                               f"destroyed ({len(managed)} resources)")
        return review
    review.warnings = _warnings(base, head, review.removed, base_facts, head_facts)
    review.changes = _changes(head, review.added, base_facts, head_facts)
    if status == "changed":
        review.changes += _settings_changes(base_doc, head_doc, base_facts, head_facts)
    return review


def review(base_dir: Path, head_dir: Path) -> Report:
    """Review every customer stack in `head_dir` against `base_dir`, in name order."""
    base, head = load_stacks(base_dir), load_stacks(head_dir)
    return Report([review_stack(name, base.get(name), head.get(name)) for name in sorted(base.keys() | head.keys())])


# ---------------------------------------------------------------- rendering


def to_json(report: Report) -> str:
    return json.dumps({
        "summary": report.summary(),
        "affected": report.affected,
        "stacks": [{
            "name": s.name,
            "status": s.status,
            "warnings": s.warnings,
            "changes": s.changes,
            "resources": {"added": s.added, "removed": s.removed,
                          "changed": [{"address": c.address, "attributes": list(c.attributes)} for c in s.changed]},
        } for s in report.stacks if s.status != "unchanged"],
        "unchanged": report.named("unchanged"),
    }, indent=2, ensure_ascii=False) + "\n"


def _summary_line(report: Report) -> str:
    counts = report.summary()
    return (f"**Customers:** {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed, "
            f"{counts['unchanged']} unchanged")


def to_markdown(report: Report) -> str:
    lines = ["## Data plane review", "", _summary_line(report), ""]
    warned = sum(len(s.warnings) for s in report.stacks)
    if warned:
        lines += ["> [!WARNING]", f"> {warned} change(s) replace or destroy something: see ⚠️ below.", ""]
    for s in report.stacks:
        if s.status == "unchanged":
            continue
        lines += [f"### `{s.name}`: {s.status}", ""]
        lines += [f"- ⚠️ **{w}**" for w in s.warnings]
        lines += [f"- {c}" for c in s.changes]
        if s.warnings or s.changes:
            lines.append("")
        lines.append(f"Resources: {len(s.added)} to add, {len(s.changed)} to change, {len(s.removed)} to destroy")
        lines += [f"- `+ {a}`" for a in s.added]
        lines += [f"- `~ {c.address}` ({', '.join(c.attributes)})" for c in s.changed]
        lines += [f"- `- {a}`" for a in s.removed]
        lines.append("")
    unchanged = report.named("unchanged")
    if unchanged:
        lines += [f"Unchanged ({len(unchanged)}): {', '.join(unchanged)}", ""]
    return "\n".join(lines)


def render(report: Report, fmt: Format = "markdown", affected: bool = False) -> str:
    """The report as Markdown or JSON, or only the affected stack names, one a line."""
    if affected:
        return "".join(f"{name}\n" for name in report.affected)
    return to_json(report) if fmt == "json" else to_markdown(report)
