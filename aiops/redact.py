"""Keep secrets out of every output: Secret values, tokens, credential-like env.

Sources call `scrub_object` on load, so no Secret value ever reaches memory
that a report or a prompt could print. `mask_text` is the last line of defence
for free text (log lines, event messages) on its way out.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

_SENSITIVE_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|apikey|private[_-]?key|credential|auth|"
    r"access[_-]?key|client[_-]?secret|dsn|connection[_-]?string|session[_-]?key)",
    re.IGNORECASE,
)
_TEXT_PATTERNS = [
    # key=value / key: value where the key looks sensitive
    # key=value, or key: value where the value looks like a credential (has a digit
    # or is long) so prose such as "token: unexpected status" stays readable
    re.compile(
        r"(?i)\b([\w.-]*(?:password|passwd|secret|token|api[_-]?key|apikey|credential)[\w.-]*)"
        r"(\s*=\s*|\s*:\s*(?=\S*\d|\S{16,}|[\"']))(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"
    ),
    re.compile(r"(?i)\b(bearer)(\s+)([A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"\b()()(sk-[A-Za-z0-9_-]{8,}|ghp_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})"),
    re.compile(r"(?i)(://[^:/\s@]+:)()([^@\s/]+)(?=@)"),  # user:password@host in URLs
]


def is_sensitive_key(name: str) -> bool:
    """True for env var / ConfigMap key names that usually hold credentials."""
    return bool(_SENSITIVE_KEY.search(name or ""))


def mask_text(text: str) -> str:
    """Replace credential-looking values in free text by <redacted>."""
    if not text:
        return text
    for pat in _TEXT_PATTERNS:
        text = pat.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text


def scrub_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Remove values that must never be kept: Secret data and its applied copy."""
    if obj.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(obj.get(field), dict):
                obj[field] = dict.fromkeys(obj[field], "")
        ann = (obj.get("metadata") or {}).get("annotations")
        if isinstance(ann, dict) and "kubectl.kubernetes.io/last-applied-configuration" in ann:
            ann["kubectl.kubernetes.io/last-applied-configuration"] = REDACTED
    return obj


def mask_env_value(name: str, value: str | None) -> str | None:
    """An env var value as it may be shown: masked when its name is sensitive."""
    if value is None:
        return None
    return REDACTED if is_sensitive_key(name) else mask_text(value)
