"""Type-tolerant accessors shared by the rule families: a field of the wrong
type reads as empty instead of raising, so malformed objects never crash a rule."""

from __future__ import annotations

import re
from typing import Any

_INT = re.compile(r"-?\d+")


def as_text(v: Any) -> str:
    return v if isinstance(v, str) else ""


def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def as_int(v: Any) -> int | None:
    """An int, or an integer written as text; booleans and anything else -> None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and _INT.fullmatch(v.strip()):
        return int(v.strip())
    return None


def str_map(v: Any) -> dict[str, str]:
    """A label map with only string keys and values (anything else dropped)."""
    return {k: x for k, x in as_dict(v).items() if isinstance(k, str) and isinstance(x, str)}
