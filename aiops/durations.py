"""Durations users type ("7d", "24h", "90m", "1d12h") as pandas Timedeltas.

One parser for every window parameter, so each rejects bad input the same way.
"""

from __future__ import annotations

import re

import pandas as pd

from aiops.errors import ParameterError

_DAYS = re.compile(r"(?<=\d)d", re.IGNORECASE)  # pandas wants 'D' for days


def parse_duration(text: str, what: str = "time window") -> pd.Timedelta:
    """A positive duration, or ParameterError naming `what` and the expected form."""
    td = None
    if isinstance(text, str) and text.strip():
        try:
            td = pd.Timedelta(_DAYS.sub("D", text.strip()))
        except (ValueError, TypeError):
            td = None
    if td is None or pd.isna(td) or td <= pd.Timedelta(0):
        raise ParameterError(f"invalid {what} {text!r}",
                             "use a positive duration such as 14d, 7d, 24h or 90m")
    return td
