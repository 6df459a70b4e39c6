"""Redact everything a caller puts into a PHR, before it is written or committed.

A record is committed to git and never rewritten, so a secret that got in
could only be removed by rewriting history. Every string goes through
`aiops.redact.mask_text`; on top of that, a value under a credential-like key
(`password`, `apiKey`, ...) is replaced, a Secret object is scrubbed, and any
word shaped like a credential (JWT, PEM private key, provider token, long
high-entropy string) is masked wherever it appears.
"""

from __future__ import annotations

import re
from typing import Any

from aiops.redact import REDACTED, credential_reason, credential_shape, mask_text, scrub_object

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?"
                  r"(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)", re.DOTALL)
_WORD = re.compile(r"[^\s\"'`,;()\[\]{}<>]{20,}")


def redact_text(text: str) -> str:
    """Mask credentials in free text (titles, bodies, any string value)."""
    if not text:
        return text
    text = _PEM.sub(REDACTED, text)
    text = mask_text(text)
    return _WORD.sub(lambda m: REDACTED if credential_shape(m.group(0)) else m.group(0), text)


def redact_value(value: Any, key: str | None = None) -> Any:
    """A deep copy of `value` with every secret masked (dict keys are kept)."""
    if isinstance(value, dict):
        value = scrub_object(dict(value)) if value.get("kind") == "Secret" else value
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, key) for v in value]
    if isinstance(value, str):
        if key is not None and credential_reason(key, value):
            return REDACTED
        return redact_text(value)
    return value
