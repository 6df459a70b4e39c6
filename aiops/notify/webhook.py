"""POST a JSON body to a webhook (Slack incoming webhook or any JSON receiver).

Standard library only (urllib): the package declares no HTTP client, and a
webhook is one POST. Transient failures (connection errors, timeouts, 429,
5xx) are retried with exponential backoff, honouring Retry-After; any other
4xx is the caller's mistake and retrying would not change the answer.

The webhook URL is itself a credential (a Slack URL's path is its token), so
it is never shown in full: every message names it through `mask_url`.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from aiops.errors import AiopsError, ParameterError
from aiops.redact import REDACTED, mask_text

FORMATS = ("slack", "json")
ENV_URL = "AIOPS_WEBHOOK_URL"
ENV_FORMAT = "AIOPS_WEBHOOK_FORMAT"
MAX_ERROR_BODY = 200  # characters of a refusal's body quoted in the error


class NotifyError(AiopsError):
    """A notification could not be delivered (after the retries it deserved)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 attempts: int = 0) -> None:
        super().__init__(message, hint)
        self.status = status
        self.attempts = attempts


def mask_url(url: str) -> str:
    """`scheme://host[:port]/<redacted>`: where it goes, never the token in the
    path, the query or the userinfo."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    secret_part = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{netloc}/{REDACTED if secret_part else ''}"


@dataclass(frozen=True)
class Delivery:
    """What the receiver answered to a delivered message."""

    status: int
    attempts: int
    body: str  # the receiver's answer, clipped and masked


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected webhook would resend the body elsewhere (or drop it as a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class Notifier:
    """One webhook: `send(payload)` POSTs it as JSON, with retries.

    `format` says which body the message builders make for it (`slack`: text
    plus blocks; `json`: the plain finding record). `backoff` is the first
    wait; it doubles per retry up to `max_backoff`. A Retry-After longer than
    `max_retry_after` is capped (a receiver asking for an hour is not waited on).
    `sleep` is the clock the waits use.
    """

    def __init__(self, url: str, *, format: str = "slack", timeout: float = 10.0,
                 retries: int = 3, backoff: float = 1.0, max_backoff: float = 30.0,
                 max_retry_after: float = 60.0, headers: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if format not in FORMATS:
            raise ParameterError(f"unknown webhook format {format!r}",
                                 f"use one of {', '.join(FORMATS)}")
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ParameterError(f"invalid webhook URL {mask_url(url or '')}",
                                 "use an http(s) URL, e.g. a Slack incoming webhook")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ParameterError("invalid webhook retry settings",
                                 "retries >= 0, timeout > 0, backoff >= 0")
        self.url = url
        self.format = format
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.headers = dict(headers or {})
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"Notifier({self.masked_url!r}, format={self.format!r})"

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Notifier | None:
        """The notifier configured by AIOPS_WEBHOOK_URL / AIOPS_WEBHOOK_FORMAT, or None."""
        env = os.environ if env is None else env
        url = env.get(ENV_URL, "").strip()
        if not url:
            return None
        kwargs.setdefault("format", env.get(ENV_FORMAT, "").strip() or "slack")
        return cls(url, **kwargs)

    def _scrub(self, text: str) -> str:
        """A receiver's answer, clipped, masked, without our own URL's secret parts
        (some receivers echo the path they were called on)."""
        parts = urlsplit(self.url)
        for secret in (parts.path, parts.query, parts.path.rstrip("/").rpartition("/")[2]):
            if len(secret) > 3:
                text = text.replace(secret, REDACTED)
        return _clip(text)

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        delay = min(self.backoff * 2 ** attempt, self.max_backoff)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        if delay > 0:
            self.sleep(delay)

    def send(self, payload: Mapping[str, Any]) -> Delivery:
        """POST `payload` as JSON; retry what may pass later. Raises NotifyError."""
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "aiops-workbench-notify/1"} | self.headers
        where = self.masked_url
        last = ""
        status: int | None = None
        attempts = self.retries + 1
        for attempt in range(attempts):
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            retry_after: float | None = None
            try:
                with _OPENER.open(req, timeout=self.timeout) as resp:
                    body = resp.read(4096).decode("utf-8", "replace")
                    return Delivery(resp.status, attempt + 1, self._scrub(body))
            except urllib.error.HTTPError as exc:
                status = exc.code
                body = self._scrub(_read(exc))
                last = f"HTTP {exc.code}" + (f": {body}" if body else "")
                if exc.code == 429:
                    retry_after = _retry_after(exc.headers.get("Retry-After"))
                elif exc.code < 500:
                    raise NotifyError(
                        f"webhook {where} refused the message ({last})",
                        "check the URL and the receiver's expected format "
                        "(--format slack|json); not retried", status=status,
                        attempts=attempt + 1) from None
            except OSError as exc:  # URLError, timeouts, resets are all OSErrors
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {mask_text(str(reason))}"
                status = None
            if attempt + 1 < attempts:
                self._wait(attempt, retry_after)
        raise NotifyError(f"webhook {where} failed after {attempts} attempts ({last})",
                          "check that the receiver is up and reachable; the message was "
                          "not delivered", status=status, attempts=attempts)


def _read(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(4096).decode("utf-8", "replace")
    except OSError:
        return ""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_ERROR_BODY:
        text = text[: MAX_ERROR_BODY - 1] + "…"
    return mask_text(text)


__all__ = ["ENV_FORMAT", "ENV_URL", "FORMATS", "Delivery", "Notifier", "NotifyError",
           "mask_url"]
