"""Keep secrets out of every output: Secret values, tokens, credential-like env.

Sources call `scrub_object` on load, so no Secret value ever reaches memory
that a report or a prompt could print. `mask_text` is the last line of defence
for free text (log lines, event messages) on its way out.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
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
        # a <placeholder> in our own advice is not a value
        r"(\s*=\s*|\s*:\s*(?=\S*\d|\S{16,}|[\"']))(?!<[\w -]*>)"
        r"(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"
    ),
    re.compile(r"(?i)\b(bearer)(\s+)([A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"\b()()(sk-[A-Za-z0-9_-]{8,}|ghp_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})"),
    re.compile(r"(?i)(://[^:/\s@]+:)()([^@\s/]+)(?=@)"),  # user:password@host in URLs
]


def is_sensitive_key(name: str) -> bool:
    """True for env var / ConfigMap key names that usually hold credentials."""
    return bool(_SENSITIVE_KEY.search(name or ""))


# every `_TEXT_PATTERNS` match holds one of these (in lower case, for ASCII text,
# where the patterns' case folding is exactly `lower()`)
_TEXT_CLUES = ("passw", "secret", "token", "api", "credential", "bearer", "sk-", "ghp_",
               "akia", "://")


def mask_text(text: str) -> str:
    """Replace credential-looking values in free text by <redacted>."""
    if not text:
        return text
    if text.isascii():  # most text holds no clue: skip the four substitutions
        low = text.lower()
        if not any(c in low for c in _TEXT_CLUES):
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


# -- credential detection (the posture audit's secret checks) ----------------
# Each shape names what was found, so a finding can say why without the value.
_CREDENTIAL_SHAPES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"), "a PEM private key"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "a JWT"),
    (re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|"
                r"glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,})"), "an API token"),
    (re.compile(r"://[^:/\s@]+:(?![$]|\{\{)[^@\s/]+@"), "a URL with a password"),
]
# placeholders and references that stand in for a secret without being one
_PLACEHOLDER = re.compile(r"^\s*(\$\(.*\)|\$\{.*\}|\{\{.*\}\}|<[^>]*>|\*+|x+|\.\.\.)\s*$",
                          re.IGNORECASE)
_NOT_A_CREDENTIAL = re.compile(
    r"^(true|false|yes|no|on|off|none|null|nil|enabled|disabled|\d+(\.\d+)?[a-z]{0,2})$",
    re.IGNORECASE)
# a sensitive-looking name whose last word says the value is not the credential
# itself (AUTH_PROVIDER, TOKEN_TTL, DB_PASSWORD_FILE, SECRET_NAME)
_CONFIG_WORDS = frozenset({
    "file", "path", "dir", "name", "names", "url", "uri", "endpoint", "host", "hostname",
    "port", "ttl", "expiry", "expiration", "expires", "timeout", "length", "header",
    "type", "enabled", "enable", "disabled", "mode", "method", "algorithm", "alg",
    "audience", "issuer", "provider", "realm", "scope", "scopes", "ref", "version", "user",
    "username", "id", "policy", "strategy", "required", "level", "format", "prefix",
    "size", "lifetime", "duration", "interval"})


def _entropy(s: str) -> float:
    counts = {ch: s.count(ch) for ch in set(s)}
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def _literal(value: str) -> bool:
    """A real literal: not empty, a placeholder, a flag, a number, a path or a plain URL."""
    v = value.strip().strip("\"'")
    return bool(v) and not _PLACEHOLDER.match(v) and not _NOT_A_CREDENTIAL.match(v) \
        and not v.startswith(("/", "./", "~/")) \
        and not re.match(r"^[a-z][a-z0-9+.-]*://", v, re.IGNORECASE)


def _names_a_setting(name: str) -> bool:
    """TOKEN_TTL, tokenFile, SECRET_NAME: the last word says it is not the credential."""
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name or "").lower())
    words = [w for w in words if w]
    return bool(words) and words[-1] in _CONFIG_WORDS


def credential_shape(value: str) -> str | None:
    """What credential `value` looks like by its shape alone ("a JWT", "a PEM
    private key", ...), else None. Certificates and public keys are not credentials."""
    if not isinstance(value, str) or not value.strip():
        return None
    for pat, what in _CREDENTIAL_SHAPES:
        if pat.search(value):
            return what
    token = value.strip()
    if (len(token) >= 32 and re.fullmatch(r"[A-Za-z0-9+/=_-]+", token)
            and re.search(r"[a-z]", token) and re.search(r"[A-Z]", token)
            and re.search(r"\d", token) and _entropy(token) >= 4.0):
        return "a long high-entropy string"
    return None


def credential_reason(name: str, value: str | None) -> str | None:
    """Why a literal `name`=`value` setting (env var, ConfigMap key) holds a
    credential: its value's shape, or a sensitive name with a real literal value
    (not empty, a placeholder, a flag, a number, a file path or a plain URL)."""
    if not isinstance(value, str) or not isinstance(name, str):
        return None
    return _credential_reason(name, value)


# the same settings recur in every copy of a workload and every environment:
# each distinct (name, value) is judged once
@lru_cache(maxsize=16384)
def _credential_reason(name: str, value: str) -> str | None:
    shape = credential_shape(value)
    if shape:
        return f"its value looks like {shape}"
    if "\n" in value.strip() or not _literal(value) or not is_sensitive_key(name) \
            or _names_a_setting(name):
        return None
    return "its name says it holds a credential"


def credential_in_text(text: str | None) -> str | None:
    """What credential a multi-line text (a config file in a ConfigMap) holds: a
    credential shape anywhere, or a `password: ...`-style line with a literal value."""
    if not isinstance(text, str):
        return None
    return _credential_in_text(text)


@lru_cache(maxsize=4096)
def _credential_in_text(text: str) -> str | None:
    shape = credential_shape(text)
    if shape:
        return f"it contains {shape}"
    for m in _TEXT_PATTERNS[0].finditer(text):
        if _literal(m.group(3)) and not _names_a_setting(m.group(1)):
            return f"it sets {m.group(1)} to a literal value"
    return None
