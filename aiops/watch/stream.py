"""List then watch one kind through the official client's raw HTTP.

The watch API only promises "every change after resourceVersion R": so each
stream remembers the last R it saw (from objects and BOOKMARKs), resumes from it
after a dropped connection, and relists when the API answers 410 Gone (R was
compacted away), diffing the new list against what it held so a failure that
happened during the gap still triggers a diagnosis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from aiops.kinds import KindInfo
from aiops.model import Obj

# kind, type (ADDED/MODIFIED/DELETED/BOOKMARK, or SYNC for a relist's diff and FAILED
# when the kind cannot be watched), old object (None when new), new object (None when
# deleted)
OnChange = Callable[[str, str, Obj | None, Obj | None], None]
OnList = Callable[[str, list[Obj]], dict[tuple[str, str], Obj]]


class Gone(Exception):
    """410: our resourceVersion is older than the API keeps; relist."""


class StreamError(Exception):
    """Any other non-2xx answer (403, 404, 5xx); retried with backoff."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status


def _key(obj: Obj) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return (md.get("namespace") or "", md.get("name") or "")


@dataclass
class KindStream:
    """One kind's list-and-watch loop; `run` until `stop` is set."""

    client: ApiClient
    info: KindInfo
    namespace: str | None
    on_list: OnList  # replaces the kind's objects, returns the ones held before
    on_change: OnChange
    stop: threading.Event
    timeout_seconds: int = 300  # server-side end of each watch, as client-go does
    read_timeout: float = 330.0  # a silent stream longer than this is dead
    page_size: int = 500
    log: Callable[[str], None] = lambda _m: None
    resource_version: str | None = None
    lists: int = 0
    resumes: int = 0
    relists: int = 0  # after a 410
    failed: str = ""  # why the kind is not watched (forbidden, not served)
    _response: Any = field(default=None, repr=False)

    def path(self) -> str:
        return self.info.path(self.namespace if self.info.namespaced else None)

    def run(self) -> None:
        """List, watch, resume or relist, until stopped; errors back off up to 10 s."""
        backoff = 0.1
        while not self.stop.is_set():
            try:
                if self.resource_version is None:
                    self.relist()
                self.watch_once()
                backoff = 0.1
            except Gone:
                self.log(f"{self.info.kind}: resourceVersion {self.resource_version} expired "
                         "(410), relisting")
                self.resource_version = None
                self.relists += 1
            except (urllib3.exceptions.HTTPError, ApiException, OSError, StreamError,
                    ValueError) as exc:
                if self.stop.is_set():
                    return
                if isinstance(exc, StreamError) and exc.status in (401, 403, 404):
                    self.log(f"{self.info.kind}: not watched ({exc}); retrying cannot help")
                    self.failed = str(exc)
                    self.on_change(self.info.kind, "FAILED", None, None)
                    return
                self.resumes += 1
                self.log(f"{self.info.kind}: watch interrupted ({type(exc).__name__}: {exc}); "
                         f"resuming from {self.resource_version} in {backoff:.1f}s")
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def close(self) -> None:
        """Cut the open stream so `run` sees `stop` at once (SIGTERM, --duration)."""
        resp = self._response
        if resp is not None:
            shutdown = getattr(resp, "shutdown", None)  # urllib3 >= 2.3
            try:
                if shutdown is not None:
                    shutdown()
                resp.close()
            except Exception:  # best effort while stopping
                pass

    def _request(self, query: list[tuple[str, str]], timeout: tuple[float, float]) -> Any:
        method, url, headers, _body, _post = self.client.param_serialize(
            "GET", self.path(), query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        resp = self.client.call_api(method, url, headers, _request_timeout=timeout)
        raw = resp.response
        if not 200 <= raw.status < 300:
            body = raw.read()
            try:
                message = orjson.loads(body).get("message") or raw.reason
            except (orjson.JSONDecodeError, AttributeError):
                message = raw.reason
            raise StreamError(raw.status, str(message))
        return raw

    def relist(self) -> None:
        """A full list (paged): replace the kind's objects, remember the list's version,
        and report what changed since the objects held before."""
        items: list[Obj] = []
        token: str | None = None
        version = ""
        while True:
            query = [("limit", str(self.page_size))]
            if token:
                query.append(("continue", token))
            body = orjson.loads(self._request(query, (15.0, 60.0)).read())
            for item in body.get("items") or []:
                item.setdefault("kind", self.info.kind)
                item.setdefault("apiVersion", self.info.api_version)
                items.append(item)
            meta = body.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                break
        self.lists += 1
        self.resource_version = version or None
        before = self.on_list(self.info.kind, items)
        for obj in items:
            old = before.pop(_key(obj), None)
            if old is None or old.get("metadata", {}).get("resourceVersion") != \
                    obj["metadata"].get("resourceVersion"):
                self.on_change(self.info.kind, "SYNC", old, obj)
        for old in before.values():
            self.on_change(self.info.kind, "SYNC", old, None)

    def watch_once(self) -> None:
        """One watch request from `resource_version`, until the server ends it."""
        query = [("watch", "1"), ("resourceVersion", self.resource_version or "0"),
                 ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(self.timeout_seconds))]
        raw = self._request(query, (15.0, self.read_timeout))
        self._response = raw
        try:
            if self.stop.is_set():
                return
            for line in raw:
                if self.stop.is_set():
                    return
                if line.strip():
                    self._apply(orjson.loads(line))
        finally:
            self._response = None
            raw.release_conn()

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message") or "Expired")
            raise StreamError(int(obj.get("code") or 500), str(obj.get("message")))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":  # nothing changed up to this version: resume from it
            self.resource_version = version or self.resource_version
            self.on_change(self.info.kind, kind, None, None)
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        obj.setdefault("kind", self.info.kind)
        obj.setdefault("apiVersion", self.info.api_version)
        self.on_change(self.info.kind, kind, None, obj)
        self.resource_version = version or self.resource_version
