"""Kubernetes resource quantities as floats (cores, bytes).

Parsing is delegated to the official client's `parse_quantity`; this module only
adds the NaN-for-missing convention the frames use and human formatting.
The client's quantity module is self-contained, but importing it through the
package runs `kubernetes/__init__` (the whole client, seconds of start-up), so
it is loaded from its file on its own.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path


def _official_parser() -> Callable[[str], object]:
    spec = importlib.util.find_spec("kubernetes")  # locates, does not import
    if spec is None or spec.origin is None:
        raise ImportError("the kubernetes client package is not installed")
    path = Path(spec.origin).parent / "utils" / "quantity.py"
    qspec = importlib.util.spec_from_file_location("aiops._k8s_quantity", path)
    assert qspec is not None and qspec.loader is not None
    module = importlib.util.module_from_spec(qspec)
    qspec.loader.exec_module(module)
    return module.parse_quantity


parse_quantity = _official_parser()


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
