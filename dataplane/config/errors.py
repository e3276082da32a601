"""The one error type for bad input: every problem names its file and field."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError


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
                             renamed: Mapping[str, str] | None = None,
                             model: type[BaseModel] | None = None) -> list[Problem]:
    """Turn pydantic's errors into problems with dotted field paths (`peering.cidrs[0]`).

    `renamed` maps the field path of a key that was renamed to the message for it (instead of "unknown key");
    with the validated `model`, an unknown key names the nearest known one.
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
        if e["type"] == "extra_forbidden" and not message and model is not None:
            message = _unknown_key(str(e["loc"][-1]), _keys_at(model, e["loc"][:-1]))
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


def _unknown_key(key: str, known: list[str]) -> str:
    """"unknown key", with the nearest known key when one is close (`externel_id` → `external_id`)."""
    nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"unknown key; did you mean {nearest[0]}?" if nearest else "unknown key"


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a file may write at `loc` inside `model` (field names or their validation aliases)."""
    kinds: list = [model]
    for part in loc:
        models = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
        if isinstance(part, int):
            kinds = [arg for k in kinds for arg in typing.get_args(k) if arg is not Ellipsis]
            continue
        if tagged := [m for m in models if part in _tags(m)]:
            kinds = tagged  # a discriminated union's member, named by its tag
            continue
        fields = [f for m in models for name, f in m.model_fields.items() if part in (name, _key(f, name))]
        kinds = [arg for f in fields for arg in _unwrapped(f.annotation)]
        if not kinds:
            return []
    return sorted({_key(f, name) for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)
                   for name, f in k.model_fields.items()})


def _tags(model: type[BaseModel]) -> tuple:
    """The values of a union member's `type` tag (`Literal["s3"]`), if it has one."""
    tag = model.model_fields.get("type")
    return typing.get_args(tag.annotation) if tag else ()


def _key(field, name: str) -> str:
    return field.validation_alias if isinstance(field.validation_alias, str) else field.alias or name


def _unwrapped(annotation) -> list:
    """The types a field's annotation may hold: Optional, unions and Annotated taken apart."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrapped(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrapped(arg)]
    return [annotation]


UNQUOTED_LEADING_ZERO = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=\s*(0[\d_]+)")
TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def toml_problem(file: str, error: Exception, text: str) -> Problem:
    """A TOML syntax error as a problem; an unquoted number with a leading zero (an account id) says to quote it."""
    where = TOML_LINE.search(str(error))
    lines = text.splitlines()
    if where and 0 < int(where[1]) <= len(lines) and (key := UNQUOTED_LEADING_ZERO.match(lines[int(where[1]) - 1])):
        return Problem(file, key[1], f"a number cannot begin with 0: quote it ({key[1]} = \"{key[2]}\"), as every "
                                     "account id is written, so its leading zero is kept")
    return Problem(file, "(file)", f"not valid TOML: {error}")
