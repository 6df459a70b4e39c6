"""Read a live cluster through the official `kubernetes` client, read-only.

Only GET requests are sent. Objects are fetched as the API's raw JSON (not the
client's snake_case models) so a live `ClusterState` holds exactly what a
snapshot of the same cluster holds. A kind we may not read (RBAC) or that the
cluster does not serve (no metrics-server) is recorded in `state.unavailable`;
only an unusable kubeconfig, an unreachable API or rejected credentials raise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import urllib3
import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from urllib3.util.retry import Retry

from aiops.errors import LiveClusterError
from aiops.kinds import BY_KIND, KINDS, KindInfo, snapshot_file
from aiops.model import ClusterState, LoadProblem, LogKey, Obj
from aiops.redact import mask_text, scrub_object

Progress = Callable[[str], None]

LOG_LIMIT_BYTES = 2 * 1024 * 1024  # per container log, like a generous `kubectl logs`
LOG_WORKERS = 8  # small: log requests are cheap for us but each costs the kubelet a read
RETRY_STATUSES = (429, 500, 502, 503, 504)
BACKOFF_FACTOR = 0.25  # 0, 0.5, 1, 2 ... seconds between retries
SOURCE_HINT = "or use --source demo / --source PATH to work from a snapshot"


class KubeconfigError(LiveClusterError):
    """The kubeconfig or in-cluster configuration is unusable: retrying cannot help,
    so a long-running sampler stops on it instead of polling forever."""


class _ApiError(Exception):
    """A non-2xx answer, carrying the message of the API's Status object."""

    def __init__(self, status: int, message: str, path: str) -> None:
        super().__init__(f"{path}: {status} {message}")
        self.status = status
        self.message = message
        self.path = path


@dataclass
class _Api:
    """The few GET calls the loader needs, over one configured ApiClient."""

    client: ApiClient
    server: str
    context: str | None
    timeout: float

    def get(self, path: str, query: Sequence[tuple[str, str]] = (),
            accept: str = "application/json") -> bytes:
        """GET `path` and return the body; 401 and transport errors raise at once."""
        method, url, headers, _body, _post = self.client.param_serialize(
            "GET", path, query_params=list(query), header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.client.call_api(method, url, headers,
                                        _request_timeout=(self.timeout, self.timeout))
            data = resp.read()
        except (urllib3.exceptions.HTTPError, ApiException) as exc:
            raise self._unreachable(exc) from None
        if resp.status == 401:
            raise LiveClusterError(
                f"the Kubernetes API at {self.server} rejected the credentials of "
                f"{self.ctx_label()} (401 Unauthorized)",
                "the token or certificate has expired or is wrong: log in again "
                f"(check with `kubectl{self.ctx_flag()} auth whoami`)",
            )
        if not 200 <= resp.status < 300:
            raise _ApiError(resp.status, _status_message(data, resp.reason), path)
        return data

    def get_json(self, path: str, query: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        data = self.get(path, query)
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _ApiError(200, "the answer is not JSON (a proxy in the way?)", path) from None
        if not isinstance(body, dict):
            raise _ApiError(200, "the answer is not a JSON object", path)
        return body

    def ctx_label(self) -> str:
        return f"context {self.context!r}" if self.context else "the in-cluster service account"

    def ctx_flag(self) -> str:
        return f" --context {self.context}" if self.context else ""

    def _unreachable(self, exc: Exception) -> LiveClusterError:
        return LiveClusterError(
            f"cannot reach the Kubernetes API at {self.server} ({self.ctx_label()}): "
            f"{_transport_reason(exc, self.timeout)}",
            f"check `kubectl{self.ctx_flag()} cluster-info`, your VPN or network, {SOURCE_HINT}",
        )


def load_live(
    context: str | None = None,
    *,
    kubeconfig: str | None = None,
    namespaces: list[str] | None = None,
    timeout: float = 15.0,
    retries: int = 3,
    page_size: int = 500,
    logs: bool = True,
    log_tail_lines: int = 1000,
    progress: Progress | None = None,
) -> ClusterState:
    """Load every kind of `aiops.kinds.KINDS` (and container logs) from a cluster.

    `context` picks a kubeconfig context (default: the current one); without any
    kubeconfig inside a pod, the pod's service account is used. `namespaces`
    limits namespaced kinds (cluster-scoped ones are still read). Raises
    `LiveClusterError` only for a bad kubeconfig, an unreachable API or rejected
    credentials; everything else lands in `state.unavailable` / `state.problems`.
    """
    note: Progress = progress or (lambda _msg: None)
    wanted = list(dict.fromkeys(namespaces)) if namespaces else None
    api = _connect(context, kubeconfig, timeout, retries)
    try:
        note(f"connecting to {api.server}")
        _check_server(api)
        state = ClusterState(source=f"kube:{context}" if context else "kube",
                             context=api.context, captured_at=datetime.now(UTC))
        served = _served_versions(api)
        for info in KINDS:
            _load_kind(api, info, state, served, wanted, page_size, note)
        if wanted:
            _keep_namespaces(state, wanted)
        if logs:
            _load_logs(api, state, log_tail_lines, note)
        state.index_logs(None)  # all logs are in
    finally:
        api.client.close()
    return state


# Pods, their owner chain (for the workload of each pod) and PodMetrics: all a
# metrics sampler needs, so a poll costs a handful of lists, not a full load.
POD_METRICS_KINDS = ("Pod", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job",
                     "CronJob", "PodMetrics")


def load_pod_metrics(
    context: str | None = None,
    *,
    kubeconfig: str | None = None,
    namespaces: Sequence[str] | None = None,
    timeout: float = 15.0,
    retries: int = 1,
    page_size: int = 500,
) -> ClusterState:
    """The light load a metrics sampler makes on every poll: pods, their owners and
    metrics.k8s.io PodMetrics (of `namespaces`, default all), nothing else.

    Same client, retries and errors as `load_live`; a PodMetrics list that fails
    (metrics-server absent, restarting or forbidden) lands in
    `state.unavailable["PodMetrics"]` for the caller to judge. `retries` is low
    by default: a sampler retries at its next tick anyway.
    """
    wanted = list(dict.fromkeys(namespaces)) if namespaces else None
    api = _connect(context, kubeconfig, timeout, retries)
    try:
        _check_server(api)
        state = ClusterState(source=f"kube:{context}" if context else "kube",
                             context=api.context, captured_at=datetime.now(UTC))
        served = _served_versions(api)
        for kind in POD_METRICS_KINDS:
            _load_kind(api, BY_KIND[kind], state, served, wanted, page_size, lambda _m: None)
    finally:
        api.client.close()
    return state


class LiveSession:
    """A read-only session for callers that load a few kinds again and again (the
    rollout guard, the watcher): one connection, the loader's paging, retries and
    RBAC handling, and logs fetched one by one as the caller decides."""

    def __init__(self, context: str | None = None, *, kubeconfig: str | None = None,
                 timeout: float = 15.0, retries: int = 2) -> None:
        self._api = _connect(context, kubeconfig, timeout, retries)
        self.context = context
        _check_server(self._api)
        self._served = _served_versions(self._api)

    def load(self, kinds: Sequence[str], namespaces: Sequence[str] | None = None,
             page_size: int = 500) -> ClusterState:
        """The objects of `kinds` (of `namespaces`, default all) as a ClusterState."""
        wanted = list(dict.fromkeys(namespaces)) if namespaces else None
        state = ClusterState(source=f"kube:{self.context}" if self.context else "kube",
                             context=self._api.context, captured_at=datetime.now(UTC))
        for kind in kinds:
            _load_kind(self._api, BY_KIND[kind], state, self._served, wanted, page_size,
                       lambda _m: None)
        return state

    @staticmethod
    def log_targets(state: ClusterState) -> Iterator[tuple[LogKey, bool]]:
        """(key, previous) of every container that has run (previous: it restarted)."""
        return _log_targets(state)

    def log(self, state: ClusterState, key: LogKey, previous: bool, tail_lines: int) -> str:
        """One container's log; a log that cannot be read is a LoadProblem and ""."""
        try:
            return _fetch_log(self._api, key, previous, tail_lines)
        except _ApiError as exc:
            state.problems.append(LoadProblem(f"{'/'.join(key)} log",
                                              f"{exc.status} {exc.message}"))
            return ""

    def close(self) -> None:
        self._api.client.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- connection ---------------------------------------------------------------
def connect(context: str | None = None, *, kubeconfig: str | None = None,
            timeout: float = 15.0, retries: int = 2) -> tuple[ApiClient, str, str | None]:
    """(client, server URL, context name) from the kubeconfig or the in-cluster
    account, with GET-only retries; the executor writes through it (close it after)."""
    api = _connect(context, kubeconfig, timeout, retries)
    return api.client, api.server, api.context


def _connect(context: str | None, kubeconfig: str | None, timeout: float,
             retries: int) -> _Api:
    """Build an ApiClient from the kubeconfig (or the in-cluster service account)."""
    cfg = Configuration()
    spec = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    files = [str(Path(p).expanduser()) for p in spec.split(os.pathsep) if p]
    existing = [f for f in files if os.path.isfile(f)]
    ctx_name: str | None
    if not existing and kubeconfig is None and not context \
            and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            kube_config.load_incluster_config(client_configuration=cfg)
        except kube_config.ConfigException as exc:
            raise KubeconfigError(f"in-cluster configuration failed: {_one_line(exc)}",
                                   "is the service account token mounted in this pod?") from None
        ctx_name = None
    else:
        ctx_name = _load_kubeconfig(cfg, spec, existing, context)
    cfg.retries = Retry(
        total=retries, connect=retries, read=retries, status=retries, other=0,
        backoff_factor=BACKOFF_FACTOR, backoff_max=8, status_forcelist=RETRY_STATUSES,
        allowed_methods={"GET"}, raise_on_status=False, respect_retry_after_header=True,
    )
    return _Api(ApiClient(cfg), cfg.host, ctx_name, timeout)


def _load_kubeconfig(cfg: Configuration, spec: str, existing: list[str],
                     context: str | None) -> str:
    """Apply one kubeconfig context to `cfg`; return the context's name."""
    if not existing:
        raise KubeconfigError(
            f"kubeconfig {spec} not found",
            "pass --kubeconfig FILE, set KUBECONFIG, or run inside a cluster; " + SOURCE_HINT,
        )
    where = os.pathsep.join(existing)
    try:
        names, current = _read_contexts(existing)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise KubeconfigError(f"kubeconfig {where} is not valid: {_one_line(exc)}",
                               "fix the file or point KUBECONFIG at a working one") from None
    available = f"available contexts: {', '.join(names) or 'none'}"
    name = context or current
    if not name:
        raise KubeconfigError(f"kubeconfig {where} has no current-context",
                               f"use --source kube:CONTEXT; {available}")
    if name not in names:
        raise KubeconfigError(f"context {name!r} not found in kubeconfig {where}",
                               f"{available} (see `kubectl config get-contexts`)")
    try:
        kube_config.load_kube_config(config_file=where, context=name,
                                     client_configuration=cfg, persist_config=False)
    except Exception as exc:  # the loader raises many types for a bad file
        raise KubeconfigError(
            f"context {name!r} in kubeconfig {where} cannot be used: {_one_line(exc)}",
            f"check it with `kubectl --context {name} cluster-info`",
        ) from None
    return name


def _read_contexts(files: list[str]) -> tuple[list[str], str | None]:
    """Context names and current-context over merged kubeconfig files (first wins)."""
    names: list[str] = []
    current: str | None = None
    for f in files:
        with open(f, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{f} is not a kubeconfig mapping")
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in names:
                names.append(str(entry["name"]))
        current = current or doc.get("current-context") or None
    return names, current


def _check_server(api: _Api) -> None:
    """One cheap GET first, so an unreachable API or a bad token fails fast."""
    try:
        api.get_json("/version")
    except _ApiError as exc:
        if exc.status == 403:  # unusual but harmless: the lists will tell
            return
        if exc.status >= 500:
            raise LiveClusterError(
                f"the Kubernetes API at {api.server} is not healthy: {exc.status} {exc.message}",
                f"retry later or check `kubectl{api.ctx_flag()} get --raw /readyz`",
            ) from None
        raise LiveClusterError(
            f"{api.server} ({api.ctx_label()}) answers, but not as a Kubernetes API "
            f"(/version: {exc.status} {exc.message})",
            "check the server URL in the kubeconfig and any proxy (HTTPS_PROXY/NO_PROXY)",
        ) from None


def _served_versions(api: _Api) -> set[str] | None:
    """Group versions the API serves (discovery); None when discovery is denied."""
    try:
        served = set(api.get_json("/api").get("versions") or [])
        for group in api.get_json("/apis").get("groups") or []:
            served.update(v.get("groupVersion") for v in group.get("versions") or [])
    except _ApiError:
        return None
    return served


# -- objects ------------------------------------------------------------------
def _load_kind(api: _Api, info: KindInfo, state: ClusterState, served: set[str] | None,
               namespaces: list[str] | None, page_size: int, note: Progress) -> None:
    """List one kind completely, or record why it is unavailable (never half of it)."""
    if served is not None and info.api_version not in served:
        extra = " (metrics-server is not installed)" if info.group == "metrics.k8s.io" else ""
        state.unavailable[info.kind] = f"API {info.api_version} is not served{extra}"
        return
    scopes: list[str | None] = list(namespaces) if info.namespaced and namespaces else [None]
    items: list[Obj] = []
    try:
        for ns in scopes:
            items.extend(_list_pages(api, info, ns, page_size, note))
    except _ApiError as exc:
        reason = "forbidden" if exc.status == 403 else f"error {exc.status}"
        state.unavailable[info.kind] = f"{reason}: {exc.message}"
        state.problems.append(LoadProblem(exc.path, f"{info.kind} not loaded, {reason}: "
                                                    f"{exc.message}"))
        return
    if items:
        state.objects[info.kind] = items
        state.index_events()  # a no-op unless events were just listed


def _list_pages(api: _Api, info: KindInfo, namespace: str | None, page_size: int,
                note: Progress) -> Iterator[Obj]:
    """Yield the items of one collection, following `continue` tokens."""
    label = snapshot_file(info).removesuffix(".json") + (f" in {namespace}" if namespace else "")
    token: str | None = None
    page = 1
    while True:
        note(f"listing {label}" + (f" (page {page})" if page > 1 else ""))
        query = [("limit", str(page_size))] if page_size > 0 else []
        if token:
            query.append(("continue", token))
        body = api.get_json(info.path(namespace), query)
        api_version = body.get("apiVersion") or info.api_version
        for item in body.get("items") or []:
            item.setdefault("kind", info.kind)
            item.setdefault("apiVersion", api_version)
            yield scrub_object(item)
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return
        page += 1


def _keep_namespaces(state: ClusterState, wanted: list[str]) -> None:
    """With a namespace filter, keep only those Namespace objects; note missing ones."""
    if "Namespace" not in state.objects:
        return
    found = [n for n in state.objects["Namespace"] if n["metadata"].get("name") in wanted]
    state.objects["Namespace"] = found
    names = {n["metadata"]["name"] for n in found}
    for ns in wanted:
        if ns not in names:
            state.problems.append(LoadProblem(f"namespace {ns}", "not found in the cluster"))


# -- logs ---------------------------------------------------------------------
def _log_targets(state: ClusterState) -> Iterator[tuple[LogKey, bool]]:
    """(key, previous) for every container that has run; previous when it restarted."""
    for pod in state.kind("Pod"):
        md = pod.get("metadata") or {}
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (
                status.get("containerStatuses") or []):
            key = (md.get("namespace") or "", md.get("name") or "", cs.get("name") or "")
            restarts = cs.get("restartCount") or 0
            if "waiting" not in (cs.get("state") or {}) or restarts > 0:
                yield key, False
            if restarts > 0:
                yield key, True


def _load_logs(api: _Api, state: ClusterState, tail_lines: int, note: Progress) -> None:
    """Fetch logs concurrently; a log that cannot be read is a LoadProblem."""
    targets = list(_log_targets(state))
    note(f"fetching {len(targets)} container logs")
    with ThreadPoolExecutor(max_workers=LOG_WORKERS) as pool:
        futures = [(key, prev, pool.submit(_fetch_log, api, key, prev, tail_lines))
                   for key, prev in targets]
        for key, prev, fut in futures:
            where = f"{key[0]}/{key[1]}/{key[2]} {'previous ' if prev else ''}log"
            try:
                text = fut.result()
            except _ApiError as exc:
                state.problems.append(LoadProblem(where, f"{exc.status} {exc.message}"))
                continue
            except LiveClusterError as exc:  # the API went away: stop asking
                state.problems.append(LoadProblem(where, str(exc)))
                pool.shutdown(wait=True, cancel_futures=True)
                break
            (state.previous_logs if prev else state.logs)[key] = text
            state.index_logs([(prev, key)])


def _fetch_log(api: _Api, key: LogKey, previous: bool, tail_lines: int) -> str:
    ns, pod, container = key
    query = [("container", container), ("limitBytes", str(LOG_LIMIT_BYTES))]
    if tail_lines > 0:
        query.append(("tailLines", str(tail_lines)))
    if previous:
        query.append(("previous", "true"))
    data = api.get(f"/api/v1/namespaces/{ns}/pods/{pod}/log", query, accept="text/plain")
    # a snapshot's logs.txt keeps no final newline per container: match it
    return data.decode("utf-8", errors="replace").removesuffix("\n")


# -- messages -----------------------------------------------------------------
def _status_message(data: bytes, reason: str | None) -> str:
    """The `message` of a Status body, else the start of the body or the HTTP reason."""
    try:
        body = orjson.loads(data)
        if isinstance(body, dict) and body.get("message"):
            return mask_text(str(body["message"]))
    except orjson.JSONDecodeError:
        pass
    text = data[:200].decode("utf-8", errors="replace").strip()
    return mask_text(text) or (reason or "no message")


def _one_line(exc: Exception) -> str:
    """An exception's text on one masked line (YAML errors span several)."""
    return mask_text(" ".join(str(exc).split()))[:300]


def _transport_reason(exc: Exception, timeout: float) -> str:
    """A short, token-free reason for a transport failure."""
    cause: Any = getattr(exc, "reason", None) or exc
    if isinstance(cause, urllib3.exceptions.NameResolutionError):
        return "the host name could not be resolved (DNS)"
    if isinstance(cause, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
            cause, urllib3.exceptions.NewConnectionError):
        return f"no connection within {timeout:g}s (timeout)"
    if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
        return f"no answer within {timeout:g}s (timeout)"
    text = str(cause)
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(cause, urllib3.exceptions.SSLError) or "SSL" in text:
        return f"TLS handshake failed ({mask_text(text.splitlines()[-1][:200])})"
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        return f"{type(cause).__name__} after retries"
    return mask_text(text.split(": ", 1)[-1][:200]) or type(cause).__name__
