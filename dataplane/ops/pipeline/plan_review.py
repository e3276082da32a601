"""Reading Terraform's plans for the review: what a plan will do to a stack, and what refresh found drifted.

`read_plans(directory)` reads every `<stack>.plan.json` there, the output of `terraform show -json <planfile>`
(JSON plan format 1.x), into a `Plan` per stack: each managed resource's action (create, update, replace,
destroy, forget; no-ops and data sources left out, imports kept), the attributes an update changes, the
attribute paths that force a replacement (`replace_paths`, rendered `cidr_block`, `tags.Name`, `ingress[0]`), and
the drift refresh found outside Terraform (`resource_drift`), attribute by attribute, as Terraform reports it:
in a plan, only the attributes `relevant_attributes` names and every resource deleted outside Terraform (so the
echo of a stack's own resources, a role's `inline_policy` or a route table's `route`, is not drift); in a
refresh-only plan, all of it.

Values are only ever kept masked: whatever the plan marks sensitive (`before_sensitive`, `after_sensitive`:
`true` at a path or above it), and any value equal to one so marked in the same resource (the provider's
`tags_all` copies a sensitive tag unmarked), becomes `(sensitive)`; whatever is unknown until apply
(`after_unknown`) becomes `(known after apply)`. Null, `""`, `[]` and `{}` count as one empty value, as
Terraform's own rendering of the aws provider's plans does. Reading is pure Python; nothing is logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

PLAN_SUFFIX = ".plan.json"
SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"

Action = Literal["create", "update", "replace", "destroy", "forget", "no-op"]
ACTIONS: dict[tuple[str, ...], Action] = {
    ("no-op",): "no-op", ("create",): "create", ("update",): "update", ("delete",): "destroy",
    ("delete", "create"): "replace", ("create", "delete"): "replace", ("create", "forget"): "replace",
    ("forget",): "forget"}
"""Terraform's `change.actions` (all it documents but `read`, which only data sources get) as one action."""
COUNTED = ("create", "update", "replace", "destroy", "import", "forget")
REASONS = {"replace_because_tainted": "tainted", "replace_by_request": "replacement requested (-replace)",
           "replace_by_triggers": "replace_triggered_by"}
"""Why a resource is replaced when no attribute forces it (`action_reason`)."""

AttributePath = tuple[str | int, ...]


class ReviewError(Exception):
    """An input the review cannot read (a synthesized output or a plan), named in the message."""


def json_object(path: Path, raw: bytes) -> dict:
    """`raw`, read from `path`, as a JSON object; a `ReviewError` naming `path` if it is not one."""
    try:
        value = json.loads(raw)
    except ValueError as e:  # truncated, not JSON, or not UTF-8
        raise ReviewError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ReviewError(f"{path}: not a JSON object")
    return value


@dataclass(frozen=True)
class AttributeChange:
    """One attribute path and its values before and after, as shown (JSON text, masked)."""

    path: str
    before: str
    after: str


@dataclass(frozen=True)
class PlannedResource:
    """A managed resource the plan acts on: its action, what forces or makes up the change, and any import."""

    address: str
    action: Action
    attributes: tuple[AttributeChange, ...] = ()
    """An update: the attributes it changes; a replacement: those that force it."""
    reason: str | None = None
    """A replacement no attribute forces: why (tainted, requested)."""
    imported_from: str | None = None
    """The id an `import` block imports it from."""


@dataclass(frozen=True)
class DriftedResource:
    """A managed resource refresh found changed outside Terraform (`deleted`, or these attributes)."""

    address: str
    deleted: bool
    attributes: tuple[AttributeChange, ...] = ()


Values = dict[str, tuple[str, dict]]
"""Terraform address -> (resource type, its attribute values, masked)."""


@dataclass(frozen=True)
class Plan:
    """One stack's plan, as the review needs it."""

    name: str
    errored: bool
    resources: tuple[PlannedResource, ...]
    drift: tuple[DriftedResource, ...]
    before: Values
    """Managed resources as the state holds them (refreshed), before the plan is applied."""
    after: Values
    """Managed resources as the plan leaves them."""
    whole_stack: Literal["created", "destroyed"] | None = None
    """When every managed resource is created (a new stack) or destroyed (a `-destroy` plan)."""
    account: str | None = None
    """The data-plane account: the `allowed_account_ids` of the configuration's default aws provider."""

    def counts(self) -> dict[str, int]:
        """Resources per action, as Terraform's summary counts them: an import also counts its action, if any."""
        counts = dict.fromkeys(COUNTED, 0)
        for resource in self.resources:
            if resource.action != "no-op":
                counts[resource.action] += 1
            if resource.imported_from is not None:
                counts["import"] += 1
        return counts

    @property
    def news(self) -> bool:
        """Whether the plan does anything or found drift."""
        return bool(self.resources or self.drift)


# ---------------------------------------------------------------- reading


def read_plans(directory: Path) -> dict[str, Plan]:
    """Stack name -> its plan, for every `<stack>.plan.json` in `directory` (other files are not read)."""
    if not directory.is_dir():
        raise ReviewError(f"{directory}: not a directory (expected <customer>{PLAN_SUFFIX} files)")
    plans = {}
    for path in sorted(directory.glob(f"*{PLAN_SUFFIX}")):
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ReviewError(f"{path}: cannot be read ({e.strerror})") from None
        if not (name := path.name[:-len(PLAN_SUFFIX)]):
            raise ReviewError(f"{path}: no stack name before {PLAN_SUFFIX}")
        plans[name] = read_plan(name, path, raw)
    return plans


def read_plan(name: str, path: Path, raw: bytes) -> Plan:
    """Stack `name`'s plan from `raw`, the `terraform show -json` output read from `path`."""
    document = json_object(path, raw)
    if not str(document.get("format_version", "")).startswith("1."):
        raise ReviewError(f"{path}: not a Terraform JSON plan (`terraform show -json`): no format_version 1.x")
    changes = [(entry, _action(path, entry)) for entry in _managed(path, document, "resource_changes")]
    before: Values = {}
    after: Values = {}
    for entry, action in changes:
        change, values = entry["change"], _Masks(entry["change"])
        if change.get("before") is not None:
            before[entry["address"]] = (entry["type"], values.shown(change["before"], change.get("before_sensitive")))
        if action not in ("destroy", "forget"):
            after[entry["address"]] = (entry["type"], values.shown(change.get("after"), change.get("after_sensitive"),
                                                                   change.get("after_unknown")))
    resources = sorted((r for entry, action in changes if (r := _planned(entry, action))), key=lambda r: r.address)
    actions = {action for _, action in changes}
    whole = "created" if actions == {"create"} else "destroyed" if actions == {"destroy"} else None
    return Plan(name, document.get("errored") is True, tuple(resources), tuple(read_drift(path, document)), before,
                after, whole, _account(document))


def _account(document: dict) -> str | None:
    """The accounts a plan's configuration allows its default aws provider (`allowed_account_ids`), if constant."""
    step: Any = document
    for key in ("configuration", "provider_config", "aws", "expressions", "allowed_account_ids", "constant_value"):
        step = step.get(key) if isinstance(step, dict) else None
    ids = step if isinstance(step, list) and all(isinstance(i, str) for i in step) else []
    return ", ".join(ids) or None


def _planned(entry: dict, action: Action) -> PlannedResource | None:
    """What the plan does to one managed resource; None for a no-op that imports nothing."""
    change, values = entry["change"], _Masks(entry["change"])
    importing = change.get("importing")
    imported_from = str(importing.get("id", "")) if isinstance(importing, dict) else None
    if action == "no-op" and imported_from is None:
        return None
    if action == "replace":
        causes = sorted((tuple(p) for p in change.get("replace_paths") or [] if isinstance(p, list)), key=_path_key)
        reason = None if causes else REASONS.get(str(entry.get("action_reason")), "no attribute named")
        return PlannedResource(entry["address"], action, tuple(map(values.change, causes)), reason, imported_from)
    attributes = tuple(map(values.change, values.changed_paths())) if action == "update" else ()
    return PlannedResource(entry["address"], action, attributes, None, imported_from)


def _managed(path: Path, document: dict, key: str) -> list[dict]:
    """The entries of `document[key]` for managed resources, each checked to have what the review reads."""
    entries = [] if document.get(key) is None else document[key]
    if not isinstance(entries, list):
        raise ReviewError(f"{path}: {key} is not a list")
    for index, entry in enumerate(entries):
        change = entry.get("change") if isinstance(entry, dict) else None
        if not (isinstance(change, dict) and isinstance(change.get("actions"), list)
                and isinstance(entry.get("address"), str) and isinstance(entry.get("type"), str)):
            raise ReviewError(f"{path}: {key}[{index}] is not a resource change (address, type, change.actions)")
    return [e for e in entries if e.get("mode", "managed") == "managed"]


def _action(path: Path, entry: dict) -> Action:
    actions = tuple(map(str, entry["change"]["actions"]))
    if actions not in ACTIONS:
        raise ReviewError(f"{path}: {entry['address']}: unknown actions {list(actions)}")
    return ACTIONS[actions]


def read_drift(path: Path, document: dict) -> Iterator[DriftedResource]:
    """What refresh found changed outside Terraform (`document`'s `resource_drift`, read from `path`), as Terraform
    itself reports it, by address.

    A refresh-only plan (no `resource_changes`): all of it. A plan: only what may affect it, the attributes
    `relevant_attributes` names (a role's `inline_policy` refreshed with the stack's own role policy is not
    drift), and every resource deleted outside Terraform. Changes only between empty values are left out.
    """
    relevant: dict[str, list[AttributePath]] | None = None
    if "resource_changes" in document:
        relevant = {}
        for item in document.get("relevant_attributes") or []:
            if isinstance(item, dict) and isinstance(item.get("attribute"), list):
                relevant.setdefault(str(item.get("resource") or ""), []).append(tuple(item["attribute"]))
    for entry in sorted(_managed(path, document, "resource_drift"), key=lambda e: e["address"]):
        action = _action(path, entry)
        if action == "destroy":
            yield DriftedResource(entry["address"], deleted=True)
        elif action == "update":
            values = _Masks(entry["change"])
            paths = [p for p in values.changed_paths()
                     if relevant is None or _matches(p, relevant.get(entry["address"], []) + relevant.get("", []))]
            if paths:
                yield DriftedResource(entry["address"], deleted=False, attributes=tuple(map(values.change, paths)))


def _matches(path: AttributePath, relevant: list[AttributePath]) -> bool:
    """Whether `path` is at, below or above one of the `relevant` paths."""
    return any(path[:len(r)] == r or r[:len(path)] == path for r in relevant)


# ---------------------------------------------------------------- values, masked


def _child(value: Any, step: str | int) -> Any:
    """`value[step]` for an object key or a list index; None when there is none."""
    if isinstance(value, dict) and isinstance(step, str):
        return value.get(step)
    if isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
        return value[step]
    return None


def _mask(mask: Any, step: str | int) -> Any:
    """A sensitive or unknown mask one step down: `true` covers everything below it."""
    return True if mask is True else _child(mask, step)


def _marked(mask: Any) -> bool:
    """Whether a mask marks anything at or below its node."""
    if isinstance(mask, dict):
        return any(map(_marked, mask.values()))
    if isinstance(mask, list):
        return any(map(_marked, mask))
    return mask is True


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _leaves(value: Any, mask: Any) -> Iterator[Any]:
    """The scalar values at or below the paths `mask` marks."""
    if mask is True:
        if isinstance(value, dict):
            yield from (leaf for v in value.values() for leaf in _leaves(v, True))
        elif isinstance(value, list):
            yield from (leaf for v in value for leaf in _leaves(v, True))
        elif not _empty(value):
            yield value
    elif isinstance(mask, (dict, list)):
        steps = mask.keys() if isinstance(mask, dict) else range(len(mask))
        yield from (leaf for step in steps for leaf in _leaves(_child(value, step), _child(mask, step)))


def _render_path(path: AttributePath) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else str(step)
    return text


def _path_key(path: AttributePath) -> tuple:
    return tuple((isinstance(step, str), step) for step in path)


class _Masks:
    """One resource change's values with its sensitive and unknown masks: what changed, and how to show it."""

    def __init__(self, change: dict):
        self.before, self.after = change.get("before"), change.get("after")
        self.before_sensitive = change.get("before_sensitive")
        self.after_sensitive = change.get("after_sensitive")
        self.unknown = change.get("after_unknown")
        self.secrets = [*_leaves(self.before, self.before_sensitive), *_leaves(self.after, self.after_sensitive)]

    def shown(self, value: Any, sensitive: Any, unknown: Any = None) -> Any:
        """`value` with sensitive parts (and copies of them) masked and unknown parts marked, keys added for these."""
        if sensitive is True:
            return SENSITIVE
        if unknown is True or value is None and _marked(unknown):
            return UNKNOWN
        if isinstance(value, dict):
            keys = set(value) | {k for k, v in (unknown.items() if isinstance(unknown, dict) else ()) if _marked(v)}
            return {k: self.shown(value.get(k), _child(sensitive, k), _child(unknown, k)) for k in sorted(keys)}
        if isinstance(value, list):
            return [self.shown(v, _child(sensitive, i), _child(unknown, i)) for i, v in enumerate(value)]
        return SENSITIVE if value is not None and not isinstance(value, bool) and value in self.secrets else value

    def changed_paths(self, path: AttributePath = ()) -> Iterator[AttributePath]:
        """The attribute paths whose value differs between before and after, objects descended into, sorted.

        A value wholly sensitive or unknown is one change; a resource always has its attributes compared one by one.
        """
        before, after = self._at(self.before, path), self._at(self.after, path)
        unknown = self._mask_at(self.unknown, path)
        if path and (unknown is True or self._mask_at(self.before_sensitive, path) is True
                     or self._mask_at(self.after_sensitive, path) is True):
            if unknown is True or before != after:
                yield path
            return
        if (isinstance(before, dict) or _empty(before)) and (isinstance(after, dict) or _empty(after)) \
                and (isinstance(before, dict) or isinstance(after, dict) or isinstance(unknown, dict)):
            keys = set(before or {}) | set(after or {}) | set(unknown if isinstance(unknown, dict) else {})
            for key in sorted(keys):
                yield from self.changed_paths((*path, key))
        elif _marked(unknown) or not (before == after or _empty(before) and _empty(after)):
            yield path

    def change(self, path: AttributePath) -> AttributeChange:
        """The attribute at `path`, before and after, as shown."""
        before = self.shown(self._at(self.before, path), self._mask_at(self.before_sensitive, path))
        after = self.shown(self._at(self.after, path), self._mask_at(self.after_sensitive, path),
                           self._mask_at(self.unknown, path))
        return AttributeChange(_render_path(path), _text(before), _text(after))

    @staticmethod
    def _at(value: Any, path: AttributePath) -> Any:
        for step in path:
            value = _child(value, step)
        return value

    @staticmethod
    def _mask_at(mask: Any, path: AttributePath) -> Any:
        for step in path:
            mask = _mask(mask, step)
        return mask


def _text(value: Any) -> str:
    """A shown value as one line: the markers as they are, anything else as JSON with sorted keys.

    A string holding a JSON object (an IAM policy) is shown as that object, not as an escaped string.
    """
    if value in (SENSITIVE, UNKNOWN):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
