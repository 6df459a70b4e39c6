"""A small local Kubernetes API that replays a snapshot directory over real HTTP.

It answers the read paths the live source uses exactly as the API server does
(typed Lists without kind/apiVersion on items, `limit`/`continue` pagination,
Status objects for errors, text/plain logs), so tests can drive the official
client end to end without a cluster. Routes are a table of (method, regex,
handler); watch streams are one more row.

Writes (POST, PUT, PATCH incl. /scale, DELETE, `?dryRun=All`) answer as the API
does and change the in-memory state, so a client that changes the cluster can be
tested on the exact requests it sends (`requests`, `mutations()`), on RBAC
denials (`forbidden_verbs`) and on what the controllers do next (`on_write`).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import jsonpatch
import jsonpointer
import yaml

from aiops.kinds import BY_KIND, KINDS, KindInfo
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
    content_type: str | None = None  # without parameters such as charset
    body: Any = None  # parsed JSON; the raw text when it is not JSON; None when empty
    time: float = 0.0  # time.monotonic() on arrival, for intervals between requests


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


Reply = tuple[int, str, "bytes | Iterator[bytes]"]  # status, content type, body (or stream)
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
                 fail_when: Callable[[Request], bool] | None = None,
                 forbidden_verbs: Mapping[str, Iterable[str]] | None = None) -> None:
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
        self._init_writes(forbidden_verbs or {})
        _init_watch(self)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> KubeReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect_watches()  # open watch streams would hold their threads
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
    def handle(self, method: str, raw_path: str, headers: dict[str, str],
               body: bytes = b"") -> Reply:
        req = _record(method, raw_path, headers, body)
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

    # -- writes ----------------------------------------------------------------
    def _init_writes(self, forbidden_verbs: Mapping[str, Iterable[str]]) -> None:
        """State for the write paths, apart from the read-only setup above."""
        self.forbidden_verbs = {key: set(verbs) for key, verbs in forbidden_verbs.items()}
        unknown = {v for verbs in self.forbidden_verbs.values() for v in verbs} - WRITE_VERBS
        if unknown:  # reads are denied per kind with `forbidden`; say so, do not ignore
            raise ValueError(f"forbidden_verbs takes {sorted(WRITE_VERBS)}, not {sorted(unknown)}")
        for key in self.forbidden_verbs:
            _known_kind(key.removesuffix("/scale"))
        rvs = [int(rv) for objs in self.state.objects.values() for o in objs
               if str(rv := o["metadata"].get("resourceVersion") or "").isdigit()]
        self._resource_version = max([int(RESOURCE_VERSION), *rvs])
        self._hooks: dict[str, list[WriteHook]] = {}
        self._write_lock = threading.RLock()

    def mutations(self) -> list[Request]:
        """Every request that may change the cluster (all but GET), in order."""
        return [r for r in self.requests if r.method != "GET"]

    def on_write(self, kind: str, callback: WriteHook) -> None:
        """Run `callback(obj)` on the stored object after each stored write of `kind`.

        It plays the controllers: set status (readyReplicas, observedGeneration...)
        or leave it, and the next GET shows it. The write's own answer is not
        affected, as with a real controller acting after the write.
        """
        self._hooks.setdefault(_known_kind(kind), []).append(callback)

    def next_resource_version(self) -> str:
        """One global counter, as etcd's revision: every stored write takes the next."""
        self._resource_version += 1
        return str(self._resource_version)

    def authorize(self, info: KindInfo, verb: str, ns: str | None, name: str | None,
                  sub: str = "") -> None:
        """403 with the API's message when `forbidden` or `forbidden_verbs` deny it."""
        key = f"{info.kind}/{sub}" if sub else info.kind
        if info.kind not in self.forbidden and verb not in self.forbidden_verbs.get(key, ()):
            return
        who = f'{_qualified(info)} "{name}"' if name else _qualified(info)
        resource = f"{info.plural}/{sub}" if sub else info.plural
        scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        raise ApiError(403, f'{who} is forbidden: User "{USER}" cannot {verb} resource '
                       f'"{resource}" in API group "{info.group}" {scope}',
                       _details(info, name))

    def run_hooks(self, obj: dict[str, Any]) -> None:
        """Apply the `on_write` callbacks; a change they make is a write of its own."""
        before = copy.deepcopy(obj)
        for hook in self._hooks.get(obj["kind"], []):
            hook(obj)
        if obj != before:
            obj["metadata"]["resourceVersion"] = self.next_resource_version()


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
    meta: dict[str, Any] = {"resourceVersion": str(srv._resource_version)}
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


# -- writes -------------------------------------------------------------------
WriteHook = Callable[[dict[str, Any]], None]

WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
# kinds whose strategy keeps metadata.generation (bumped on spec changes)
GENERATION_KINDS = frozenset({
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
    "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "PodDisruptionBudget"})
# kinds whose DELETE answers with the object instead of a Status (ReturnDeletedObject)
DELETED_OBJECT_KINDS = frozenset({
    "Pod", "Service", "ServiceAccount", "PersistentVolumeClaim", "PersistentVolume",
    "ResourceQuota"})
# the strategic-merge subset: lists merged by key; other lists must be atomic ones
SMP_MERGE_KEYS = {"containers": "name", "initContainers": "name",
                  "ephemeralContainers": "name", "volumes": "name", "env": "name",
                  "volumeMounts": "mountPath"}
SMP_ATOMIC_LISTS = frozenset({"args", "command"})


class WriteError(ApiError):
    """An ApiError whose reason the code does not imply (409 AlreadyExists or Conflict)."""

    REASONS: ClassVar[dict[int, str]] = {
        **ApiError.REASONS, 409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid"}

    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(code, message, details)
        self.reason = reason or self.REASONS.get(code, "Unknown")

    def status(self) -> dict[str, Any]:
        return super().status() | {"reason": self.reason}


@dataclass(frozen=True)
class _Target:
    """The object a write addresses, RBAC already checked."""

    info: KindInfo
    ns: str | None
    name: str | None


def _record(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Request:
    """A Request with its content type and parsed body, as tests assert them."""
    parts = urlsplit(raw_path)
    ctype = (headers.get("content-type") or "").split(";")[0].strip() or None
    parsed: Any = None
    if body:
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
    return Request(method, parts.path, dict(parse_qsl(parts.query)), ctype, parsed,
                   time.monotonic())


def _known_kind(kind: str) -> str:
    """A kind of aiops.kinds, else ValueError: a misspelt kind would never match."""
    if kind not in BY_KIND:
        raise ValueError(f"unknown kind {kind!r}; kinds are those of aiops.kinds, e.g. "
                         "'Deployment' (and 'Deployment/scale' for forbidden_verbs)")
    return kind


def _qualified(info: KindInfo) -> str:
    """'deployments.apps' or 'configmaps', as API messages name a resource."""
    return f"{info.plural}.{info.group}" if info.group else info.plural


def _details(info: KindInfo, name: str | None, **extra: str) -> dict[str, Any]:
    details = {"name": name, "group": info.group, "kind": info.plural, **extra}
    return {k: v for k, v in details.items() if v}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _target(srv: KubeReplay, args: dict[str, str], verb: str, sub: str = "") -> _Target:
    ns, name = args.get("ns"), args.get("name")
    info = srv.kind_for(args["gv"], args["plural"], ns is not None)
    if info.group == "metrics.k8s.io" or (info.namespaced and ns is None):
        raise ApiError(405, "the server does not allow this method on the requested resource")
    srv.authorize(info, verb, ns, name, sub)
    return _Target(info, ns, name)


def _dry_run(req: Request) -> bool:
    value = req.query.get("dryRun")
    if value not in (None, "All"):
        raise ApiError(400, f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return value == "All"


def _body(req: Request) -> dict[str, Any]:
    if not isinstance(req.body, dict):
        raise ApiError(400, "the body of the request is not a JSON object")
    return copy.deepcopy(req.body)


def _stored(srv: KubeReplay, t: _Target) -> dict[str, Any]:
    found = next((o for o in srv.objects(t.info, t.ns) if o["metadata"]["name"] == t.name),
                 None)
    if found is None:
        raise ApiError(404, f'{_qualified(t.info)} "{t.name}" not found',
                       _details(t.info, t.name))
    return found


def _check_names(t: _Target, obj: dict[str, Any]) -> None:
    """400 when the body names another object than the URL, as the API checks."""
    md = obj.setdefault("metadata", {})
    if md.get("name") != t.name:
        raise ApiError(400, f"the name of the object ({md.get('name')}) does not match the "
                            f"name on the URL ({t.name})")
    if t.ns and md.setdefault("namespace", t.ns) != t.ns:
        raise ApiError(400, "the namespace of the provided object does not match the "
                            "namespace sent on the request")


def _conflict(t: _Target) -> WriteError:
    return WriteError(409, f"Operation cannot be fulfilled on {_qualified(t.info)} "
                           f'"{t.name}": the object has been modified; please apply your '
                           "changes to the latest version and try again",
                      _details(t.info, t.name))


def _commit(srv: KubeReplay, t: _Target, old: dict[str, Any], new: dict[str, Any],
            dry: bool) -> dict[str, Any]:
    """The update step shared by PUT, PATCH and /scale; returns the answer's object.

    A resourceVersion in `new` is a precondition (409 when stale); status and the
    identity fields are the server's; generation counts spec changes.
    """
    _check_names(t, new)
    md, old_md = new["metadata"], old["metadata"]
    if md.get("resourceVersion") and md["resourceVersion"] != old_md.get("resourceVersion"):
        raise _conflict(t)
    for key in ("uid", "creationTimestamp", "generation", "resourceVersion"):
        if key in old_md:
            md[key] = old_md[key]
    new["kind"], new["apiVersion"] = old["kind"], old["apiVersion"]
    if "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    if "generation" in old_md and new.get("spec") != old.get("spec"):
        md["generation"] = old_md["generation"] + 1
    if dry:
        return new
    md["resourceVersion"] = srv.next_resource_version()
    old.clear()
    old.update(new)  # in place: the object stays where the lists and indexes hold it
    answer = copy.deepcopy(old)
    srv.run_hooks(old)
    return answer


# -- patches ------------------------------------------------------------------
def _apply_patch(ctype: str | None, doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a PATCH body by its content type; 415 for the ones not implemented."""
    appliers: dict[str, Callable[[dict[str, Any], Any], Any]] = {
        JSON_PATCH: _json_patch, MERGE_PATCH: _merge_patch, STRATEGIC_PATCH: _strategic_patch}
    if ctype not in appliers:
        raise WriteError(415, "the body of the request was in an unknown format - accepted "
                              f"media types include: {', '.join(appliers)} (the replay does "
                              f"not implement {ctype})")
    if ctype != JSON_PATCH and not isinstance(patch, dict):
        raise ApiError(400, f"the body of a {ctype} patch must be a JSON object")
    patched = appliers[ctype](copy.deepcopy(doc), patch)
    if not isinstance(patched, dict):
        raise WriteError(422, "the server rejected our request due to an error in our request")
    return patched


def _invalid_patch(cause: str) -> WriteError:
    """The API's answer when a JSON patch does not apply (a generic 422, cause in details)."""
    return WriteError(422, "the server rejected our request due to an error in our request",
                      {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]})


def _json_patch(doc: dict[str, Any], ops: Any) -> Any:
    """RFC 6902, one operation at a time so a failure can name its operation."""
    if not isinstance(ops, list):
        raise ApiError(400, "json: cannot unmarshal object into Go value of type "
                            "jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise ApiError(400, f"invalid JSON patch operation {json.dumps(op)}")
        try:
            doc = jsonpatch.apply_patch(doc, [op])
        except jsonpatch.JsonPatchTestFailed:
            raise _invalid_patch(f"testing value {op.get('path')} failed: test failed") from None
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException):
            raise _invalid_patch(f"{op.get('op')} operation does not apply: doc is missing "
                                 f"path: \"{op.get('path')}\": missing value") from None
        except jsonpatch.InvalidJsonPatch as exc:
            raise ApiError(400, f"invalid JSON patch operation {json.dumps(op)}: {exc}") from None
    return doc


def _merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _strategic_patch(doc: Any, patch: Any, field_name: str = "") -> Any:
    """Merge patch plus lists merged by key (SMP_MERGE_KEYS); 415 for the rest.

    Directives ($patch, $setElementOrder, $retainKeys...) and lists whose strategy
    is not in the tables are refused by name rather than patched wrongly.
    """
    if isinstance(patch, list):
        if field_name in SMP_MERGE_KEYS:
            return _merge_list(doc if isinstance(doc, list) else [], patch,
                               SMP_MERGE_KEYS[field_name])
        if field_name in SMP_ATOMIC_LISTS:
            return copy.deepcopy(patch)
        raise WriteError(415, f"strategic merge patch of the list {field_name!r} is not "
                              "implemented by the replay; use a JSON or merge patch")
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            raise WriteError(415, f"strategic merge patch directive {key!r} is not "
                                  "implemented by the replay; use a JSON or merge patch")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _strategic_patch(out.get(key), value, key)
    return out


def _merge_list(items: list[Any], patch: list[Any], key: str) -> list[Any]:
    """Elements with the same `key` merge (strategically); new ones are appended."""
    out = list(items)
    for element in patch:
        if not isinstance(element, dict) or key not in element:
            raise WriteError(422, f"the server rejected our request: element {element!r} "
                                  f"has no merge key {key!r}")
        at = next((i for i, o in enumerate(out)
                   if isinstance(o, dict) and o.get(key) == element[key]), None)
        if at is None:
            out.append(_strategic_patch({}, element))
        else:
            out[at] = _strategic_patch(out[at], element)
    return out


# -- write handlers -------------------------------------------------------------
def _serialized(handler: Handler) -> Handler:
    """Writes are read-modify-write on shared state: one at a time."""
    def locked(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
        with srv._write_lock:
            return handler(srv, req, args)
    return locked


@_serialized
def _create(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    t = _target(srv, args, "create")
    dry, obj = _dry_run(req), _body(req)
    if obj.get("kind", t.info.kind) != t.info.kind or \
            obj.get("apiVersion", t.info.api_version) != t.info.api_version:
        raise ApiError(400, f"the object is a {obj.get('apiVersion')} {obj.get('kind')}, "
                            f"not a {t.info.api_version} {t.info.kind}")
    md = obj.setdefault("metadata", {})
    if not md.get("name") and md.get("generateName"):
        md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
    if not md.get("name"):
        raise WriteError(422, f'{t.info.kind} "" is invalid: metadata.name: Required value: '
                              "name or generateName is required", _details(t.info, None))
    t = _Target(t.info, t.ns, md["name"])
    _check_names(t, obj)
    if srv.state.get(t.info.kind, t.ns, md["name"]) is not None:
        raise WriteError(409, f'{_qualified(t.info)} "{t.name}" already exists',
                         _details(t.info, t.name), reason="AlreadyExists")
    obj["kind"], obj["apiVersion"] = t.info.kind, t.info.api_version
    md.update(uid=str(uuid.uuid4()), creationTimestamp=_now())
    if t.info.kind in GENERATION_KINDS:
        md["generation"] = 1
        obj["status"] = {}
    if dry:
        md.pop("resourceVersion", None)
        return 201, "application/json", json.dumps(obj).encode()
    md["resourceVersion"] = srv.next_resource_version()
    srv.state.add([obj])
    answer = json.dumps(obj).encode()
    srv.run_hooks(obj)
    return 201, "application/json", answer


@_serialized
def _replace(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    t = _target(srv, args, "update")
    dry, new = _dry_run(req), _body(req)
    return _json(_commit(srv, t, _stored(srv, t), new, dry))


@_serialized
def _patch(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    t = _target(srv, args, "patch")
    dry, old = _dry_run(req), _stored(srv, t)
    return _json(_commit(srv, t, old, _apply_patch(req.content_type, old, req.body), dry))


@_serialized
def _delete(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    """Status for most kinds, the object for pods and the like; pods go at once."""
    t = _target(srv, args, "delete")
    dry, old = _dry_run(req), _stored(srv, t)
    options = req.body if isinstance(req.body, dict) else {}
    md = old["metadata"]
    for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted = (options.get("preconditions") or {}).get(field_name)
        if wanted and wanted != md.get(field_name):
            raise WriteError(409, f"Precondition failed: {label} in precondition: {wanted}, "
                                  f"{label} in object meta: {md.get(field_name)}",
                             _details(t.info, t.name))
    answer: dict[str, Any] = {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": _details(t.info, t.name, uid=md.get("uid", ""))}
    if t.info.kind in DELETED_OBJECT_KINDS:
        answer = copy.deepcopy(old)
        if t.info.kind == "Pod":
            grace = req.query.get("gracePeriodSeconds") or options.get("gracePeriodSeconds")
            spec_grace = (old.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            answer["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=int(
                spec_grace if grace is None else grace))
    if not dry:
        if t.info.kind == "Pod":
            answer["metadata"]["resourceVersion"] = srv.next_resource_version()
        srv.state.objects[t.info.kind].remove(old)
        srv.state.add([])  # drops the state's cached indexes
    return _json(answer)


# -- the /scale subresource -------------------------------------------------------
def _scale_of(parent: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale the API derives from a deployment/statefulset/replicaset."""
    md, spec, status = parent["metadata"], parent.get("spec") or {}, parent.get("status") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                            "creationTimestamp") if k in md},
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in labels.items())}}


def _scale_target(srv: KubeReplay, args: dict[str, str], verb: str) -> _Target:
    if args["gv"] != "apis/apps/v1":
        raise ApiError(404, "the server could not find the requested resource")
    return _target(srv, args, verb, sub="scale")


def _get_scale(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    t = _scale_target(srv, args, "get")
    return _json(_scale_of(_stored(srv, t)))


def _rescale(srv: KubeReplay, t: _Target, scale: dict[str, Any], dry: bool) -> Reply:
    """Write a Scale's replicas (and its resourceVersion precondition) to the parent."""
    parent = _stored(srv, t)
    _check_names(t, scale)
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise WriteError(422, f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: '
                              f"Invalid value: {json.dumps(replicas)}: must be greater than "
                              "or equal to 0", _details(t.info, t.name))
    new = copy.deepcopy(parent)
    new["spec"]["replicas"] = replicas
    new["metadata"]["resourceVersion"] = scale["metadata"].get("resourceVersion")
    return _json(_scale_of(_commit(srv, t, parent, new, dry)))


@_serialized
def _replace_scale(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    t = _scale_target(srv, args, "update")
    return _rescale(srv, t, _body(req), _dry_run(req))


@_serialized
def _patch_scale(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    t = _scale_target(srv, args, "patch")
    dry, scale = _dry_run(req), _scale_of(_stored(srv, t))
    return _rescale(srv, t, _apply_patch(req.content_type, scale, req.body), dry)


# -- ready-made on_write hooks ------------------------------------------------------
def rollout_complete(obj: dict[str, Any]) -> None:
    """on_write hook: the controller rolled the new spec out and every replica is Ready."""
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    status = obj.setdefault("status", {})
    status.update(observedGeneration=obj["metadata"].get("generation", 1), replicas=replicas,
                  updatedReplicas=replicas, readyReplicas=replicas, availableReplicas=replicas)
    status.pop("unavailableReplicas", None)
    _progressing(obj, "True", "NewReplicaSetAvailable", "has successfully progressed.")


def rollout_stuck(obj: dict[str, Any]) -> None:
    """on_write hook: the change is seen, one new replica is created and never gets Ready."""
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    status = obj.setdefault("status", {})
    ready = min(status.get("readyReplicas", 0), replicas)
    status.update(observedGeneration=obj["metadata"].get("generation", 1),
                  replicas=ready + 1, updatedReplicas=1, readyReplicas=ready,
                  availableReplicas=ready, unavailableReplicas=replicas + 1 - ready)
    _progressing(obj, "False", "ProgressDeadlineExceeded", "has timed out progressing.")


def _progressing(obj: dict[str, Any], value: str, reason: str, tail: str) -> None:
    """Set a Deployment's Progressing condition (other kinds have none to set)."""
    if obj["kind"] != "Deployment":
        return
    conditions = obj["status"].setdefault("conditions", [])
    conditions[:] = [c for c in conditions if c.get("type") != "Progressing"]
    conditions.append({"type": "Progressing", "status": value, "reason": reason,
                       "lastUpdateTime": _now(), "lastTransitionTime": _now(),
                       "message": f'Deployment "{obj["metadata"]["name"]}" {tail}'})


_NS_OBJECT = rf"/{GV}/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/]+)"
_SCALE = rf"/{GV}/namespaces/(?P<ns>[^/]+)/(?P<plural>deployments|statefulsets|replicasets)" \
         r"/(?P<name>[^/]+)/scale"
ROUTES.extend((verb, re.compile(pattern), handler) for verb, pattern, handler in [
    ("GET", _SCALE, _get_scale),
    ("PUT", _SCALE, _replace_scale),
    ("PATCH", _SCALE, _patch_scale),
    ("POST", rf"/{GV}/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)", _create),
    ("POST", rf"/{GV}/(?P<plural>[^/]+)", _create),
    ("PUT", _NS_OBJECT, _replace),
    ("PUT", rf"/{GV}/(?P<plural>[^/]+)/(?P<name>[^/]+)", _replace),
    ("PATCH", _NS_OBJECT, _patch),
    ("PATCH", rf"/{GV}/(?P<plural>[^/]+)/(?P<name>[^/]+)", _patch),
    ("DELETE", _NS_OBJECT, _delete),
    ("DELETE", rf"/{GV}/(?P<plural>[^/]+)/(?P<name>[^/]+)", _delete),
])


# -- watch streams ---------------------------------------------------------------
# `GET <collection>?watch=1&resourceVersion=RV` answers newline-delimited watch
# events, chunked, as the API does. A test scripts them: `emit` / `script_watch`
# change the stored object and push the event to open watches, `bookmark` sends
# BOOKMARKs, `disconnect_watches` drops every open stream mid-stream, and a
# resourceVersion older than `compacted_before` gets the API's 410 Expired.
# Writes through POST/PUT/PATCH/DELETE do not stream events: only `emit` does.
WatchEvent = tuple[int, str, str, dict[str, Any]]  # revision, kind, type, object


def _init_watch(srv: KubeReplay) -> None:
    srv.watch_log: list[WatchEvent] = []  # type: ignore[misc]
    srv.compacted_before = 0  # type: ignore[attr-defined]
    srv._watch_cond = threading.Condition()  # type: ignore[attr-defined]
    srv._watch_generation = 0  # type: ignore[attr-defined]
    quiet = srv._server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        """A client that cuts its keep-alive connection (a watcher stopping) is normal."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            quiet(request, client_address)

    srv._server.handle_error = handle_error  # type: ignore[method-assign]


def _emit(self: KubeReplay, kind: str, type: str, obj: dict[str, Any]) -> str:
    """Store a change of `kind` (ADDED/MODIFIED/DELETED) under the next revision and
    push it to open watches; returns the revision."""
    info = BY_KIND[_known_kind(kind)]
    obj = copy.deepcopy(obj)
    obj["kind"], obj["apiVersion"] = info.kind, info.api_version
    md = obj.setdefault("metadata", {})
    with self._write_lock, self._watch_cond:
        rv = md["resourceVersion"] = self.next_resource_version()
        old = self.state.get(kind, md.get("namespace"), md["name"])
        if old is not None:
            self.state.objects[kind].remove(old)
        if type != "DELETED":
            self.state.objects.setdefault(kind, []).append(obj)
        self.state.add([])  # drops the state's cached indexes
        self.watch_log.append((int(rv), kind, type, copy.deepcopy(obj)))
        self._watch_cond.notify_all()
    return rv


def _script_watch(self: KubeReplay, kind: str, events: Iterable[tuple[str, dict[str, Any]]]
                  ) -> list[str]:
    """`emit` each (type, object) in order; returns their revisions."""
    return [self.emit(kind, type, obj) for type, obj in events]


def _bookmark(self: KubeReplay) -> str:
    """A BOOKMARK at the current revision to the watches that asked for them."""
    with self._write_lock, self._watch_cond:
        rv = self.next_resource_version()
        self.watch_log.append((int(rv), "", "BOOKMARK", {}))
        self._watch_cond.notify_all()
    return rv


def _disconnect_watches(self: KubeReplay) -> None:
    """Drop every open watch connection mid-stream (no final chunk), as a network
    blip or an apiserver restart does."""
    with self._watch_cond:
        self._watch_generation += 1
        self._watch_cond.notify_all()


def _watches(self: KubeReplay) -> list[Request]:
    """The watch requests received, in order."""
    return [r for r in self.requests if r.query.get("watch") in ("1", "true")]


KubeReplay.emit = _emit  # type: ignore[attr-defined]
KubeReplay.script_watch = _script_watch  # type: ignore[attr-defined]
KubeReplay.bookmark = _bookmark  # type: ignore[attr-defined]
KubeReplay.disconnect_watches = _disconnect_watches  # type: ignore[attr-defined]
KubeReplay.watches = _watches  # type: ignore[attr-defined]


class _Dropped(Exception):
    """The stream is cut without its final chunk (disconnect_watches)."""


def _line(type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type, "object": obj}).encode() + b"\n"


def _watch(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    ns = args.get("ns")
    info = srv.kind_for(args["gv"], args["plural"], ns is not None)
    srv.check_access(info, "watch", ns)
    q = req.query
    since = q.get("resourceVersion") or "0"
    if not since.isdigit():
        raise ApiError(400, f"invalid resource version: {since}")
    bookmarks = q.get("allowWatchBookmarks") == "true"
    deadline = time.monotonic() + int(q.get("timeoutSeconds") or 1800)
    cond = srv._watch_cond  # type: ignore[attr-defined]

    def events() -> Iterator[bytes]:
        with cond:
            generation = srv._watch_generation  # type: ignore[attr-defined]
            if 0 < int(since) < srv.compacted_before:  # type: ignore[attr-defined]
                expired = ApiError(410, f"too old resource version: {since} "
                                        f"({srv.compacted_before})")  # type: ignore[attr-defined]
                yield _line("ERROR", expired.status())
                return
            seen = len(srv.watch_log)  # type: ignore[attr-defined]
            start = int(since)
            if start == 0:  # no version: the current objects as ADDED, then changes
                initial = [copy.deepcopy(o) for o in srv.objects(info, ns)]
            else:
                initial = []
                seen = next((i for i, e in enumerate(srv.watch_log)  # type: ignore[attr-defined]
                             if e[0] > start), seen)
        for obj in initial:
            yield _line("ADDED", obj)
        while time.monotonic() < deadline:
            with cond:
                cond.wait_for(lambda n=seen: len(srv.watch_log) > n  # type: ignore[attr-defined]
                              or srv._watch_generation != generation,  # type: ignore[attr-defined]
                              timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                if srv._watch_generation != generation:  # type: ignore[attr-defined]
                    raise _Dropped
                fresh = srv.watch_log[seen:]  # type: ignore[attr-defined]
                seen += len(fresh)
            for rv, kind, type, obj in fresh:
                if type == "BOOKMARK":
                    if bookmarks:
                        yield _line(type, {"kind": info.kind, "apiVersion": info.api_version,
                                           "metadata": {"resourceVersion": str(rv)}})
                elif kind == info.kind and (ns is None or obj["metadata"].get("namespace") == ns):
                    yield _line(type, obj)

    return 200, "application/json", events()


def _list_or_watch(srv: KubeReplay, req: Request, args: dict[str, str]) -> Reply:
    if req.query.get("watch") in ("1", "true"):
        return _watch(srv, req, args)
    return _list(srv, req, args)


ROUTES[:] = [(verb, pattern, _list_or_watch if handler is _list else handler)
             for verb, pattern, handler in ROUTES]


def _stream(handler: BaseHTTPRequestHandler, code: int, ctype: str,
            chunks: Iterator[bytes]) -> None:
    """Send a watch answer chunk by chunk; a drop closes the socket without the
    final chunk, so the client sees a broken stream rather than a clean end."""
    handler.send_response(code)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    try:
        for chunk in chunks:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
    except (_Dropped, OSError):
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)


def _make_handler(srv: KubeReplay) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's pool expects
        disable_nagle_algorithm = True  # else each small answer waits for a delayed ACK

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            sent = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, ctype, body = srv.handle(self.command, self.path, headers, sent)
            if not isinstance(body, bytes):  # a watch: newline-delimited JSON, chunked
                _stream(self, code, ctype, body)
                return
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            pass

    return _Handler
