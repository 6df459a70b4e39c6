"""The few REST calls the executor makes, over the official client's ApiClient.

Paths come from aiops/kinds.py (the same table the live loader reads with), so a
write goes exactly where a read came from. Every mutating call takes `dry_run`,
sent as the API's `dryRun=All`: the server validates and admits the change and
answers as if made, storing nothing. Nothing else in the workbench writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from aiops.errors import AiopsError
from aiops.kinds import BY_KIND, KindInfo

Obj = dict[str, Any]
JSON_PATCH = "application/json-patch+json"


class ApiCallError(AiopsError):
    """The API server refused or failed a call (its Status message is quoted)."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


@dataclass
class KubeWriter:
    client: ApiClient
    timeout: float = 15.0

    # -- paths ----------------------------------------------------------------------
    @staticmethod
    def info(kind: str) -> KindInfo:
        if kind not in BY_KIND:
            raise ApiCallError(400, f"kind {kind!r} is not one the executor knows",
                               f"known kinds: {', '.join(sorted(BY_KIND))}")
        return BY_KIND[kind]

    def path(self, target: dict[str, str], sub: str = "") -> str:
        info = self.info(target["kind"])
        ns = target.get("namespace") or None
        base = info.path(ns if info.namespaced else None)
        return f"{base}/{quote(target['name'], safe='')}" + (f"/{sub}" if sub else "")

    # -- calls ----------------------------------------------------------------------
    def get(self, target: dict[str, str]) -> Obj | None:
        """The object now, or None when it does not exist."""
        try:
            return self._call("GET", self.path(target))
        except ApiCallError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str, selector: dict[str, str] | None = None) -> list[Obj]:
        info = self.info(kind)
        query = [("labelSelector", ",".join(f"{k}={v}" for k, v in selector.items()))] \
            if selector else []
        body = self._call("GET", info.path(namespace if info.namespaced else None), query)
        items = body.get("items") or []
        for it in items:
            it.setdefault("kind", kind)
        return items

    def patch(self, target: dict[str, str], ops: list[dict[str, Any]], *,
              dry_run: bool) -> Obj:
        return self._call("PATCH", self.path(target), self._dry(dry_run), body=ops,
                          content_type=JSON_PATCH)

    def create(self, obj: Obj, *, dry_run: bool) -> Obj:
        md = obj.get("metadata") or {}
        info = self.info(obj.get("kind") or "")
        ns = md.get("namespace") if info.namespaced else None
        return self._call("POST", info.path(ns), self._dry(dry_run), body=obj,
                          content_type="application/json")

    def delete(self, target: dict[str, str], *, dry_run: bool) -> Obj:
        return self._call("DELETE", self.path(target), self._dry(dry_run))

    @staticmethod
    def _dry(dry_run: bool) -> list[tuple[str, str]]:
        return [("dryRun", "All")] if dry_run else []

    def _call(self, method: str, path: str, query: list[tuple[str, str]] | None = None, *,
              body: Any = None, content_type: str | None = None) -> Obj:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        m, url, hdrs, data, _post = self.client.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"])
        try:
            resp = self.client.call_api(m, url, hdrs, data,
                                        _request_timeout=(self.timeout, self.timeout))
            raw = resp.read()
        except (urllib3.exceptions.HTTPError, ApiException) as exc:
            raise ApiCallError(0, f"{method} {path}: the API server is unreachable ({exc})",
                               "check the connection; nothing was changed by this call") \
                from None
        try:
            answer = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            answer = {"message": raw[:200].decode("utf-8", "replace")}
        if not 200 <= resp.status < 300:
            msg = answer.get("message") if isinstance(answer, dict) else None
            raise ApiCallError(resp.status, f"{method} {path}: {resp.status} "
                               f"{msg or resp.reason or 'error'}", _hint(resp.status))
        return answer if isinstance(answer, dict) else {}


def _hint(status: int) -> str:
    return {
        403: "the executor's service account lacks this permission (see deploy/ RBAC)",
        404: "the object is gone: re-run the diagnosis",
        409: "the object changed since it was read: review the change again",
        422: "the server rejected the change as invalid; nothing was applied",
    }.get(status, "see the message; nothing else was attempted")
