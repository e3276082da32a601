"""The one error type for bad input: every problem names its file and field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one field of one file."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class ConfigError(Exception):
    """Raised when project settings or customer files are invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}


def shown(value: object) -> str:
    """`value`'s repr, cut to 60 characters, so a problem stays one short line."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def problems_from_validation(file: str, error: ValidationError, prefix: str = "",
                             renamed: Mapping[str, str] | None = None) -> list[Problem]:
    """Turn pydantic's errors into problems with dotted field paths (`peering.cidrs[0]`).

    `renamed` maps the field path of a key that was renamed to the message for it (instead of "unknown key").
    """
    problems = []
    for e in error.errors(include_url=False):
        if e["type"] == "too_short" and len(e["input"]) >= e["ctx"]["min_length"]:
            continue  # pydantic counts only the valid items; each invalid one has its own problem
        field = prefix
        for part in e["loc"]:
            if isinstance(part, int):
                field += f"[{part}]"
            else:
                field += f".{part}" if field else str(part)
        message = (renamed or {}).get(field) if e["type"] == "extra_forbidden" else None
        problems.append(Problem(file, field or "(file)", message or _message(e)))
    return problems


def _message(e: dict) -> str:
    kind, value = e["type"], e.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "too_short":
        return f"must list at least {e['ctx']['min_length']} item(s)"
    if kind == "too_long":
        return f"must list at most {e['ctx']['max_length']} item(s)"
    if kind.endswith("_type"):
        found = _TYPE_NAMES.get(type(value), type(value).__name__)
        expected = {"string_type": "a quoted string", "int_type": "an integer", "list_type": "an array",
                    "tuple_type": "an array", "model_type": "a table", "bool_type": "a boolean"}.get(kind, kind.removesuffix("_type"))
        return f"must be {expected}, not {found} {shown(value)}"
    return e["msg"].removeprefix("Value error, ")
