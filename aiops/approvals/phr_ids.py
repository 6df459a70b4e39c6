"""Record ids: ULID-shaped (48-bit milliseconds + 80 random bits, Crockford base32).

Ids sort by time as plain strings, so a directory listing, a DataFrame sort and
`git log` agree. The store draws each id under its lock and forces it above the
chain's head, so id order is chain order even within one millisecond or after
the clock steps back; verify uses that to spot reordered records.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
ID_PATTERN = r"[0-7][0-9A-HJKMNP-TV-Z]{25}"
ID_RE = re.compile(rf"^{ID_PATTERN}$")


def encode(value: int) -> str:
    """26 base32 characters of a 128-bit integer."""
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 32 + _INDEX[ch]
    return value


def new_id(ms: int, after: str | None = None) -> str:
    """An id for time `ms` (Unix milliseconds), strictly greater than `after`."""
    value = (ms << 80) | secrets.randbits(80)
    if after is not None:
        value = max(value, decode(after) + 1)
    return encode(value)


def id_ms(text: str) -> int:
    """The Unix milliseconds an id was made for."""
    return decode(text) >> 80


def id_time(text: str) -> datetime:
    return datetime.fromtimestamp(id_ms(text) / 1000, tz=UTC)


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)
