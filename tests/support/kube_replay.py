"""A small local Kubernetes API that replays a snapshot directory over real HTTP.

It answers the read paths the live source uses exactly as the API server does
(typed Lists without kind/apiVersion on items, `limit`/`continue` pagination,
Status objects for errors, text/plain logs), so tests can drive the official
client end to end without a cluster. Routes are a table of (method, regex,
handler); watch streams or PATCH are one more row each.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import yaml

from aiops.kinds import KINDS, KindInfo
from aiops.model import ClusterState
from aiops.sources.snapshot import load_snapshot

USER = "system:serviceaccount:aiops:reader"
RESOURCE_VERSION = "424242"
GV = r"(?P<gv>api/v1|apis/[^/]+/[^/]+)"


@dataclass(frozen=True)
class Request:
    """One request as received, for assertions on what a client sent."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by a handler to answer with a Status object."""

    REASONS: ClassVar[dict[int, str]] = {
        400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
        405: "MethodNotAllowed", 410: "Expired", 503: "ServiceUnavailable"}

    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.REASONS.get(self.code, "Unknown"),
                "details": self.details, "code": self.code}


Reply = tuple[int, str, bytes]  # status, content type, body
Handler = Callable[["KubeReplay", Request, dict[str, str]], Reply]


def _json(obj: Any) -> Reply:
    return 200, "application/json", json.dumps(obj).encode()


def _not_found(plural: str, name: str) -> ApiError:
    return ApiError(404, f'{plural} "{name}" not found', {"name": name, "kind": plural})


class KubeReplay:
    """Serve `snapshot_dir` on 127.0.0.1; use as a context manager."""

    def __init__(self, snapshot_dir: str | Path, *, forbidden: Iterable[str] = (),
                 fail_first: int = 0, token: str | None = "replay-token",
                 metrics_clock: Callable[[], datetime] | None = None,
                 fail_when: Callable[[Request], bool] | None = None) -> None:
        self.state: ClusterState = load_snapshot(snapshot_dir)
        self.forbidden = set(forbidden)  # kinds, e.g. {"Secret"}
        self.fail_first = fail_first  # answer 503 to the first N requests
        self.token = token
        # metrics-server stamps each PodMetrics/NodeMetrics with the time of its
        # last scrape: with a clock, every metrics list carries the clock's time
        # (as a live metrics-server between scrapes); without, the snapshot's
        self.metrics_clock = metrics_clock
        # answer 503 (as kube-apiserver does for an unavailable aggregated API,
        # e.g. metrics-server restarting) to the requests this says
        self.fail_when = fail_when
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        metrics = bool(self.state.kind("PodMetrics") or self.state.kind("NodeMetrics"))
        self.kinds = {(k.api_version, k.plural): k for k in KINDS
                      if metrics or k.group != "metrics.k8s.io"}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> KubeReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def write_kubeconfig(self, path: str | Path, context: str = "replay",
                         token: str | None = None) -> Path:
        """A kubeconfig whose `context` points at this server (token: override)."""
        user = {"token": token or self.token} if (token or self.token) else {}
        doc = {"apiVersion": "v1", "kind": "Config", "preferences": {},
               "clusters": [{"name": "replay", "cluster": {"server": self.url}}],
               "users": [{"name": "reader", "user": user}],
               "contexts": [{"name": context, "context": {"cluster": "replay", "user": "reader"}}],
               "current-context": context}
        Path(path).write_text(yaml.safe_dump(doc), encoding="utf-8")
        return Path(path)

    # -- dispatch ------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        req = Request(method, parts.path, dict(parse_qsl(parts.query)))
        self.requests.append(req)
        with self._lock:
            failing, self.fail_first = self.fail_first > 0, max(0, self.fail_first - 1)
        try:
            if failing or (self.fail_when is not None and self.fail_when(req)):
                raise ApiError(503, "the server is currently unable to handle the request")
            if self.token and headers.get("authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized")
            matched = [(verb, m, h) for verb, pattern, h in ROUTES
                       if (m := pattern.fullmatch(req.path))]
            for verb, m, handler in matched:
                if verb == method:
                    return handler(self, req, m.groupdict())
            if matched:
                raise ApiError(405, f"{method} is not supported on {req.path}")
            raise ApiError(404, "the server could not find the requested resource")
        except ApiError as err:
            return err.code, "application/json", json.dumps(err.status()).encode()

    def kind_for(self, gv: str, plural: str, namespaced_path: bool) -> KindInfo:
        info = self.kinds.get((gv.removeprefix("api/").removeprefix("apis/"), plural))
        if info is None or (namespaced_path and not info.namespaced):
            raise ApiError(404, "the server could not find the requested resource")
        return info

    def check_access(self, info: KindInfo, verb: str, ns: str | None) -> None:
        if info.kind in self.forbidden:
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            raise ApiError(403, f'{info.plural} is forbidden: User "{USER}" cannot {verb} '
                           f'resource "{info.plural}" in API group "{info.group}" {scope}',
                           {"kind": info.plural})

    def objects(self, info: KindInfo, ns: str | None) -> list[dict[str, Any]]:
        """Objects of a collection in etcd key order (namespace, name)."""
        objs = [o for o in self.state.kind(info.kind)
                if ns is None or o["metadata"].get("namespace") == ns]
        return sorted(objs, key=_key)


def _key(obj: dict[str, Any]) -> str:
    md = obj["metadata"]
    return f"{md.get('namespace') or ''}/{md['name']}"


# -- handlers -----------------------------------------------------------------
def _version(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    return _json({"major": "1", "minor": "30", "gitVersion": "v1.30.0-replay",
                  "platform": "linux/amd64"})


def _core(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": srv.url.removeprefix("http://")}]})


def _groups(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    groups: dict[str, list[str]] = {}
    for api_version, _plural in srv.kinds:
        if "/" in api_version:
            group, version = api_version.split("/")
            groups.setdefault(group, [])
            if version not in groups[group]:
                groups[group].append(version)
    return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
         "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
        for g, vs in groups.items()]})


def _list(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    ns = args.get("ns")
    info = srv.kind_for(args["gv"], args["plural"], ns is not None)
    srv.check_access(info, "list", ns)
    objs = srv.objects(info, ns)
    if token := req.query.get("continue"):
        try:
            start = json.loads(base64.urlsafe_b64decode(token))["start"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "continue key is not valid: malformed token") from None
        objs = [o for o in objs if _key(o) >= start]
    limit = int(req.query.get("limit") or 0)
    meta: dict[str, Any] = {"resourceVersion": RESOURCE_VERSION}
    if 0 < limit < len(objs):
        cont = {"v": "meta.k8s.io/v1", "rv": int(RESOURCE_VERSION),
                "start": _key(objs[limit - 1]) + "\x00"}
        meta["continue"] = base64.urlsafe_b64encode(json.dumps(cont).encode()).decode()
        meta["remainingItemCount"] = len(objs) - limit
        objs = objs[:limit]
    items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in objs]
    if srv.metrics_clock is not None and info.group == "metrics.k8s.io":
        stamp = srv.metrics_clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = [{**o, "timestamp": stamp} for o in items]
    return _json({"kind": f"{info.kind}List", "apiVersion": info.api_version,
                  "metadata": meta, "items": items})


def _get(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    ns = args.get("ns")
    info = srv.kind_for(args["gv"], args["plural"], ns is not None)
    srv.check_access(info, "get", ns)
    found = next((o for o in srv.objects(info, ns) if o["metadata"]["name"] == args["name"]),
                 None)
    if found is None or (info.namespaced and ns is None):
        raise _not_found(info.plural, args["name"])
    return _json(found)


def _log(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    ns, name, q = args["ns"], args["name"], req.query
    pod = srv.state.get("Pod", ns, name)
    if args["gv"] != "api/v1" or pod is None:
        raise _not_found("pods", name)
    statuses = {s["name"]: s for key in ("initContainerStatuses", "containerStatuses")
                for s in (pod.get("status") or {}).get(key) or []}
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    container = q.get("container") or (names[0] if len(names) == 1 else "")
    if not container:
        raise ApiError(400, f"a container name must be specified for pod {name}, "
                       f"choose one of: [{' '.join(names)}]")
    if container not in statuses and container not in names:
        raise ApiError(400, f"container {container} is not valid for pod {name}")
    key = (ns, name, container)
    status = statuses.get(container) or {}
    if q.get("previous") == "true":
        if key not in srv.state.previous_logs:
            raise ApiError(400, f'previous terminated container "{container}" in pod '
                           f'"{name}" not found')
        text = srv.state.previous_logs[key]
    elif not status or ("waiting" in status.get("state", {}) and not status.get("restartCount")):
        reason = status.get("state", {}).get("waiting", {}).get("reason") or "ContainerCreating"
        raise ApiError(400, f'container "{container}" in pod "{name}" is waiting to start: '
                       f"{reason}")
    else:
        text = srv.state.logs.get(key, "")
    lines = text.splitlines(keepends=False)
    if tail := q.get("tailLines"):
        lines = lines[-int(tail):] if int(tail) > 0 else []
    body = "".join(f"{line}\n" for line in lines).encode()
    if limit := q.get("limitBytes"):
        body = body[: int(limit)]
    return 200, "text/plain", body


ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (verb, re.compile(pattern), handler) for verb, pattern, handler in [
        ("GET", r"/version/?", _version),
        ("GET", r"/api/?", _core),
        ("GET", r"/apis/?", _groups),
        ("GET", rf"/{GV}/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log", _log),
        ("GET", rf"/{GV}/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/]+)", _get),
        ("GET", rf"/{GV}/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)", _list),
        ("GET", rf"/{GV}/(?P<plural>[^/]+)/(?P<name>[^/]+)", _get),
        ("GET", rf"/{GV}/(?P<plural>[^/]+)", _list),
    ]
]


def _make_handler(srv: KubeReplay) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's pool expects
        disable_nagle_algorithm = True  # else each small answer waits for a delayed ACK

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, ctype, body = srv.handle(self.command, self.path, headers)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            pass

    return _Handler
