"""Configuration problems as one human line each, naming the key path (docs/configuration.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from heliod.rewards.numbers import brief

Loc = tuple[str | int, ...]

# Tags of the device union: pydantic puts the chosen tag into the location, users never
# wrote it, so it is dropped (plants[0].devices[1].modbus.port -> plants[0].devices[1].port).
DEVICE_TAGS = frozenset({"modbus", "mqtt"})


class ConfigError(Exception):
    """An unusable configuration: one line per problem, each naming the key path."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


def fail(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as is."""
    # The message goes through the context so that braces in it are not a template.
    return PydanticCustomError("heliod", "{message}", {"message": message})


def show(value: Any) -> str:
    """A value as the user wrote it in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(brief(value), ensure_ascii=False)
    if isinstance(value, int | Decimal):
        return brief(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def format_loc(loc: Iterable[str | int]) -> str:
    """plants[0].devices[1].port from ("plants", 0, "devices", 1, "port")."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:  # a table key that TOML would need quoted, e.g. a field name with a space
            quoted = json.dumps(part, ensure_ascii=False)
            out += f".{quoted}" if out else quoted
    return out


def _clean_loc(loc: Sequence[str | int]) -> Loc:
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part == "[key]":  # pydantic marks an invalid dict key this way
            continue
        if (
            part in DEVICE_TAGS
            and i >= 2
            and loc[i - 2] == "devices"
            and isinstance(loc[i - 1], int)
        ):
            continue
        out.append(part)
    return tuple(out)


def _message(error: ErrorDetails) -> tuple[Loc, str]:
    loc = _clean_loc(error["loc"])
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "heliod":
        return loc, str(ctx["message"])
    if kind == "missing":
        return loc, "required"
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind == "union_tag_not_found":
        return (*loc, "protocol"), "required"
    if kind == "union_tag_invalid":
        tags = ", ".join(t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(","))
        got = value.get("protocol") if isinstance(value, dict) else ctx.get("tag")
        return (*loc, "protocol"), f"must be one of {tags}, got {show(got)}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return loc, f"must be a table, got {show(value)}"
    if kind == "list_type":
        return loc, f"must be an array, got {show(value)}"
    if kind == "string_type":
        return loc, f"must be a string, got {show(value)}"
    if kind in {"bool_type", "bool_parsing"}:
        return loc, f"must be true or false, got {show(value)}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return loc, f"must be an integer, got {show(value)}"
    if kind == "too_short":
        return loc, "must not be empty"
    if kind == "literal_error":
        return loc, f"must be {ctx.get('expected')}, got {show(value)}"
    if kind == "value_error":
        return loc, str(error["msg"]).removeprefix("Value error, ")
    message = str(error["msg"])
    return loc, message[:1].lower() + message[1:]


def problems_from(error: ValidationError) -> list[tuple[Loc, str]]:
    """pydantic's errors as (location, short human message), in pydantic's order."""
    return [_message(e) for e in error.errors(include_url=False)]


def document_order(data: Any, loc: Loc) -> tuple[int, ...]:
    """Sort key placing a problem where its key is in the file (absent keys last)."""
    key: list[int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            keys = list(node)
            key.append(keys.index(part) if part in keys else len(keys))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            key.append(part)
            node = node[part]
        else:
            key.append(1 << 30)
            node = None
    return tuple(key)


def lines(problems: Iterable[tuple[Loc, str]]) -> list[str]:
    """One `key.path: message` line per problem, duplicates removed, order kept."""
    seen: dict[str, None] = {}
    for loc, message in problems:
        seen.setdefault(f"{format_loc(loc)}: {message}" if loc else message, None)
    return list(seen)
