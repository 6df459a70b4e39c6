"""Kubernetes resource quantities as floats (cores, bytes).

Parsing is delegated to the official client's `parse_quantity`; this module only
adds the NaN-for-missing convention the frames use and human formatting.
"""

from __future__ import annotations

import math
from functools import lru_cache

from kubernetes.utils.quantity import parse_quantity


@lru_cache(maxsize=4096)
def _parse(text: str) -> float:
    return float(parse_quantity(text))


def to_float(value: object) -> float:
    """Quantity string/number -> float; missing or malformed -> NaN (never raises)."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    try:
        return _parse(str(value).strip())
    except (ValueError, ArithmeticError, TypeError):
        return math.nan


_BINARY = [("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)]


def format_bytes(value: float) -> str:
    """Bytes -> '1.5Gi' style text (binary units, as kubectl users read them)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    for suffix, factor in _BINARY:
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.0f}"


def format_cores(value: float) -> str:
    """Cores -> '250m' or '2' (millicores under one core)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) < 1:
        return f"{value * 1000:.0f}m"
    return f"{value:.3g}"
