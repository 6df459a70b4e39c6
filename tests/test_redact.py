"""Secrets never leave: Secret data scrubbed on load, credentials masked in text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.redact import (
    _TEXT_PATTERNS,
    REDACTED,
    is_sensitive_key,
    mask_env_value,
    mask_text,
    scrub_object,
)


@pytest.mark.parametrize("text, secret", [
    ("password=hunter2", "hunter2"),
    ("DB_PASSWORD: s3cret-value", "s3cret-value"),
    ('api_key: "abc123"', "abc123"),
    ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
    ("using key sk-demo-0123456789abcdef", "sk-demo-0123456789abcdef"),
    ("postgres://app:pa55word@db:5432/todo", "pa55word"),
    ("aws AKIAABCDEFGHIJKLMNOP in env", "AKIAABCDEFGHIJKLMNOP"),
])
def test_mask_text_hides_credentials(text: str, secret: str) -> None:
    masked = mask_text(text)
    assert secret not in masked and REDACTED in masked


def test_mask_text_keeps_prose_readable() -> None:
    msg = "failed to fetch anonymous token: unexpected status: 401 Unauthorized"
    assert mask_text(msg) == msg
    assert mask_text("") == ""


def test_scrub_secret_keeps_keys_drops_values() -> None:
    s = {"kind": "Secret", "metadata": {"name": "x", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"k":"dmFsdWU="}}'}},
         "data": {"k": "dmFsdWU="}, "stringData": {"p": "plain"}}
    scrub_object(s)
    assert s["data"] == {"k": ""} and s["stringData"] == {"p": ""}
    assert "dmFsdWU" not in str(s)
    cm = {"kind": "ConfigMap", "data": {"k": "v"}}
    assert scrub_object(cm)["data"] == {"k": "v"}


def test_sensitive_env_names() -> None:
    assert is_sensitive_key("OPENAI_API_KEY") and is_sensitive_key("db_password")
    assert not is_sensitive_key("LOG_LEVEL")
    assert mask_env_value("SMTP_PASSWORD", "x") == REDACTED
    assert mask_env_value("LOG_LEVEL", "debug") == "debug"


_PIECES = ["password", "PassWD", "secret", "TOKEN", "api_key", "Api-Key", "apikey",
           "credential", "Bearer", "bearer", "sk-", "ghp_", "AKIA", "://", "user:pw@",
           "=", ": ", "\"", "'", " ", "abcdefgh1234", "ABCDEFGHIJKLMNOP", "x" * 20, "0123",
           "connection refused", "ok", "_", "-", ".", "@", "/"]


@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
@settings(max_examples=2000, deadline=None)
def test_mask_text_shortcut_changes_nothing(text: str) -> None:
    """The no-clue shortcut returns text unchanged only where the patterns would."""
    slow = text
    for pat in _TEXT_PATTERNS:
        slow = pat.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", slow)
    assert mask_text(text) == slow
