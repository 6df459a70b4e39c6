"""Usage history from the Prometheus HTTP API (also Thanos Query, Mimir, VictoriaMetrics).

`PrometheusHistory` implements `aiops.usage.UsageHistory`; `stats()` computes
in PromQL what can be computed there exactly and fetches no raw samples.

Points
------
Statistics are computed over one *point* per step S and series, S =
max(60 s, window / 4032) (5 min for 14 days; `stats_step` overrides it):

* CPU (cores): ``irate(container_cpu_usage_seconds_total[2S-1ms])``, the rate
  of the last scrape interval before each step: a *sample* of the
  per-interval rates, so peaks are not averaged away. `irate` handles counter
  resets; a scrape gap yields no point (fewer than two scrapes in the range)
  rather than an invented one. With scrapes every S aligned to S the points
  are exactly the per-interval rates.
* Memory (bytes): ``max_over_time(container_memory_working_set_bytes[S-1ms])``,
  the peak working set of each step; with scrapes every S these are the raw
  samples, and the peak of the points is the true peak at any S.
* `container=""` (the pod cgroup) and `container="POD"` (the pause container)
  are excluded; `selector` adds matchers to every query (e.g. `cluster="prod"`).
  A *segment* is one series of (namespace, pod, container, id): `id` changes
  when a container restarts; a second scrape job's copy of a series has the
  same `id` and is dropped (``max by (namespace, pod, container, id)``).

Statistics per workload container
---------------------------------
`container_stats` pools the points of every pod of a workload (a request
applies to each pod). How a group is computed depends on `strategy`:

* ``"hybrid"`` (default): a group with one segment gets all its statistics
  from PromQL (``count_over_time``, ``avg_over_time``, ``max_over_time`` and
  ``quantile_over_time`` of the subquery ``points[W:S]``; first/last from a
  bucketed count and a short ``timestamp()`` subquery). For a group with
  several segments (replicas, rollouts, restarts) the quantile of the pooled
  points cannot be derived from per-pod quantiles, so its points are fetched
  (one subquery per chunk) and pooled exactly as `container_stats` does.
* ``"points"``: every group from its points. One subquery evaluation per
  chunk: the least Prometheus CPU, the most data on the wire (at most 4032
  points per segment).
* ``"pushdown"``: everything in PromQL; a multi-segment group's quantiles
  come from each segment's quantile function queried on a grid (min,
  10 %..99.5 %, max): each segment's CDF is interpolated between its grid
  points (in -log(1-F), as usage tails are roughly exponential) and the
  count-weighted mixture is inverted. Exact for samples, mean, peak, first,
  last, pods and single-segment groups; for pooled quantiles the error on
  random sets of 2-4 similar replicas averaged 0.2-0.6 % (max ~3 % at p99)
  and on pairs of very different pods 0.4-1.2 % (max ~5 %). Least data on
  the wire, but every statistic and grid level re-evaluates the subquery: on
  1,000 containers x 14 days (2 cores) it took 84 s against 23 s for "hybrid"
  and 19 s for "points" (benchmarks/bench_usage.py).

A segment whose pushed-down numbers come back NaN (a NaN sample poisons
`avg_over_time`) is recomputed from its points with NaN dropped.

Queries are chunked: at most `batch_pods` pods per query (a `namespace` and a
`pod=~"a|b|..."` matcher), at most `concurrency` in flight, and no
aggregation inside a subquery (Prometheus would evaluate it at every step:
~10x slower), so a 1,000-workload cluster never sends one giant query. Pods
are mapped to workloads with kube-state-metrics (`kube_pod_owner`, then
`kube_replicaset_owner` / `kube_job_owner`, read from the series index),
else with a `ClusterState` (`state.top_owner`), else from the pod name
(`owner_from_name`). `events()` reads OOM kills and restarts from
kube-state-metrics.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import orjson
import pandas as pd
import urllib3
from urllib3.util.retry import Retry

from aiops.errors import ParameterError, SourceError
from aiops.redact import mask_text
from aiops.usage import (
    DEFAULT_QUANTILES,
    STAT_KEYS,
    USAGE_COLUMNS,
    qcol,
    stats_columns,
    window_delta,
)

log = logging.getLogger("aiops.prometheus")

CPU_METRIC = "container_cpu_usage_seconds_total"
MEM_METRIC = "container_memory_working_set_bytes"
POD_OWNER = "kube_pod_owner"
RS_OWNER = "kube_replicaset_owner"
JOB_OWNER = "kube_job_owner"
RESTARTS = "kube_pod_container_status_restarts_total"
LAST_TERMINATED = "kube_pod_container_status_last_terminated_reason"
CADVISOR_METRICS = (CPU_METRIC, MEM_METRIC)
KSM_METRICS = (POD_OWNER, RS_OWNER, JOB_OWNER, RESTARTS, LAST_TERMINATED)
BY_SEG = "namespace, pod, container, id"  # one container instance; `id` changes on restart

DEFAULT_WINDOW = "14d"
MIN_STEP_S = 60
STATS_MAX_POINTS = 4032  # points per series in stats(): 14 days at 5 minutes
FIRST_LAST_BUCKETS = 64
STRATEGIES = ("hybrid", "pushdown", "points")
SAMPLES_MAX_POINTS = 10000  # Prometheus refuses more than 11,000 points per series
# quantile grid of the mixture combination (min and max are added)
MIXTURE_GRID = (0.1, 0.25, 0.5, 0.75, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.995)
MAX_REGEX_CHARS = 16000
# not 503: Prometheus answers a query timeout with it, and re-running is futile
RETRY_STATUSES = (429, 502, 504)
EVENT_COLUMNS = ["namespace", "pod", "container", "workload_kind", "workload",
                 "oom_kills", "restarts"]
CADVISOR_HINT = ("exported by cAdvisor via the kubelet (/metrics/cadvisor): add the kubelet's "
                 "cAdvisor scrape job (kube-prometheus-stack: kubelet ServiceMonitor) or fix "
                 "the selector")
KSM_HINT = ("exported by kube-state-metrics: install it (kube-prometheus-stack ships it) "
            "and make sure Prometheus scrapes it")
URL_HINT = ("use the base URL that serves /api/v1/query, e.g. http://prometheus:9090, "
            "Thanos Query's URL, or Mimir's http://mimir/prometheus")

# pod-template-hash and pod name suffixes use this alphabet (k8s.io/apimachinery rand)
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_RS_POD = re.compile(rf"^(?P<base>.+)-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}$")
_CRON_POD = re.compile(rf"^(?P<base>.+)-\d{{8,10}}-[{_SAFE}]{{5}}$")
_STS_POD = re.compile(r"^(?P<base>.+)-\d+$")
_RANDOM_POD = re.compile(rf"^(?P<base>.+)-[{_SAFE}]{{5}}$")
_RS_NAME = re.compile(rf"^(?P<base>.+)-[{_SAFE}]{{6,10}}$")
_CRON_JOB = re.compile(r"^(?P<base>.+)-\d{8,10}$")


class PrometheusError(SourceError):
    """Prometheus is unreachable, refused us, or could not answer a query."""


class MissingMetricsError(PrometheusError):
    """A metric the computation needs has no series in the window."""


@dataclass(frozen=True)
class QueryRecord:
    """One request sent, for progress, debugging and tests (never holds credentials)."""

    purpose: str
    path: str
    query: str
    seconds: float
    status: int
    params: dict[str, str] = field(default_factory=dict)


# -- pod -> workload ----------------------------------------------------------
def owner_from_name(pod: str) -> tuple[str, str]:
    """Guess (kind, workload) from a pod name when nothing better is known.

    `web-7c9d8b6f5d-4xkzq` -> Deployment web; `report-28471380-7bq2x` ->
    CronJob report; `db-0` -> StatefulSet db; `agent-x7k2p` -> ("Unknown",
    agent) (a DaemonSet or a Job: the name cannot tell); anything else is a
    bare Pod.
    """
    for pattern, kind in ((_CRON_POD, "CronJob"), (_RS_POD, "Deployment"),
                          (_STS_POD, "StatefulSet"), (_RANDOM_POD, "Unknown")):
        m = pattern.match(pod)
        if m:
            return kind, m.group("base")
    return "Pod", pod


def _rs_from_name(rs: str) -> tuple[str, str]:
    m = _RS_NAME.match(rs)
    return ("Deployment", m.group("base")) if m else ("ReplicaSet", rs)


def _job_from_name(job: str) -> tuple[str, str]:
    m = _CRON_JOB.match(job)
    return ("CronJob", m.group("base")) if m else ("Job", job)


# -- small helpers ------------------------------------------------------------
def _dur(seconds: float) -> str:
    """A PromQL duration in whole milliseconds."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _q(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _alt(names: Iterable[str]) -> str:
    """A RE2 alternation matching exactly these names."""
    return "|".join(re.escape(n) for n in names)


def _step_for(window_s: float, max_points: int) -> int:
    return max(MIN_STEP_S, math.ceil(window_s / max_points))


def _to_epoch(at: datetime | str | float | int | None) -> float | None:
    if at is None:
        return None
    if isinstance(at, int | float):
        return float(at)
    ts = pd.Timestamp(at)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.timestamp()


def _points(pts: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """[[t, "v"], ...] of a matrix result as (times, values) arrays."""
    if not pts:
        return np.zeros(0), np.zeros(0)
    arr = np.array(pts, dtype=object)
    return arr[:, 0].astype(np.float64), arr[:, 1].astype(np.float64)


def _points_seg(r: dict[str, Any]) -> _Seg:
    """A segment's statistics from the points of a matrix result (NaN dropped)."""
    t, v = _points(r.get("values") or [])
    ok = ~np.isnan(v)
    seg = _Seg(values=np.sort(v[ok]))
    if seg.values is not None and seg.values.size:
        seg.stats = {"samples": float(seg.values.size), "mean": float(v[ok].mean()),
                     "peak": float(seg.values[-1]), "first": float(t[ok].min()),
                     "last": float(t[ok].max())}
    else:
        seg.stats = {"samples": 0.0}
    return seg


def _presence(metric: str, sel: str, step: int) -> str:
    """A point at every step whose last interval holds a raw sample."""
    return f"count_over_time({metric}{sel}[{_dur(step - 0.001)}])"


def _value(r: dict[str, Any]) -> float:
    try:
        return float(r["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan


def pooled_quantile(values: np.ndarray, q: float) -> float:
    """The linear-interpolation quantile of sorted `values`, bit-identical to pandas."""
    n = len(values)
    if n == 0:
        return math.nan
    rank = q * (n - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    return float(values[lo] + (values[hi] - values[lo]) * (rank - lo))


def mixture_quantile(parts: Sequence[tuple[float, Sequence[tuple[float, float]]]],
                     q: float) -> float:
    """Quantile q of a count-weighted mixture of piecewise-linear CDFs.

    `parts` holds (sample count, [(level, value), ...]) per segment, the
    points of its quantile function (level 0 = min, 1 = max). Each segment's
    CDF is interpolated between its points in -log(1 - F) (usage tails are
    roughly exponential), the weighted mixture is evaluated at every point of
    every segment and inverted by linear interpolation between them.
    """
    parts = [(n, sorted(pts)) for n, pts in parts if n > 0 and pts]
    if not parts:
        return math.nan
    if len(parts) == 1:
        levels, xs = zip(*parts[0][1], strict=True)
        return float(np.interp(q, levels, xs))
    curves = [(n, _cdf_points(pts)) for n, pts in parts]
    cands = np.unique(np.concatenate([xs for _, (xs, _lv) in curves]))
    total = float(sum(n for n, _ in parts))
    cdf = np.zeros(len(cands))
    for n, (xs, levels) in curves:
        # interpolate in -log(1 - F): tails of usage distributions are roughly
        # exponential, so this bends like them between grid points
        u = -np.log1p(-np.minimum(levels, 1.0 - 0.5 / max(n, 1.0)))
        f = -np.expm1(-np.interp(cands, xs, u))
        f = np.where(cands < xs[0], 0.0, np.where(cands >= xs[-1], 1.0, f))
        cdf += f * (n / total)
    idx = int(np.searchsorted(cdf, q, side="left"))
    if idx <= 0:
        return float(cands[0])
    if idx >= len(cands):
        return float(cands[-1])
    c0, c1, f0, f1 = cands[idx - 1], cands[idx], cdf[idx - 1], cdf[idx]
    if f1 <= f0:
        return float(c1)
    return float(c0 + (c1 - c0) * (q - f0) / (f1 - f0))


def _cdf_points(pts: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """A quantile function's points as strictly increasing CDF points.

    Several levels at one value (a flat stretch, e.g. constant memory) are a
    jump of the CDF: it is drawn as a vertical step just left of the value.
    """
    by_x: dict[float, list[float]] = {}
    for lv, x in pts:
        by_x.setdefault(float(x), []).append(float(lv))
    xs: list[float] = []
    lvs: list[float] = []
    for x in sorted(by_x):
        lo, hi = min(by_x[x]), max(by_x[x])
        if not xs or lo < hi:
            left = float(np.nextafter(x, -np.inf))
            if not xs or left > xs[-1]:
                xs.append(left)
                lvs.append(lo if lo < hi else 0.0)
        xs.append(x)
        lvs.append(hi)
    return np.array(xs), np.array(lvs)


@dataclass
@dataclass(frozen=True, eq=False)
class _Chunk:
    """(namespace, pod) pairs queried together (a namespace and a pod regex matcher)."""

    pods: list[tuple[str, str]]

    @property
    def namespaces(self) -> list[str]:
        return sorted({ns for ns, _ in self.pods})

    @property
    def pod_names(self) -> list[str]:
        return sorted({p for _, p in self.pods})

    @property
    def where(self) -> str:
        ns = self.namespaces
        return (f"in namespace {ns[0]}" if len(ns) == 1 else f"in {len(ns)} namespaces") + \
            f" ({len(self.pods)} pods)"

    def wants(self, labels: dict[str, str]) -> bool:
        """Drop a same-named pod of another namespace the matchers also caught."""
        return (labels.get("namespace", ""), labels.get("pod", "")) in set(self.pods)


@dataclass(frozen=True)
class _Job:
    resource: str
    chunk: _Chunk
    stat: str  # a statistic, or "points"
    query: str
    purpose: str


@dataclass
class _Seg:
    """Per-segment numbers: pushed down (stats) or computed from points (vals)."""

    stats: dict[str, float] = field(default_factory=dict)
    values: np.ndarray | None = None


# -- the source -----------------------------------------------------------------
class PrometheusHistory:
    """Usage history read from a Prometheus-compatible HTTP API.

    url: base URL (``http://prometheus:9090``; Mimir ``http://mimir/prometheus``).
    token / token_file: bearer token (the file is re-read per request so a
    rotated service-account token keeps working); never printed.
    headers: extra headers (e.g. ``{"X-Scope-OrgID": "tenant"}``).
    verify / ca_file: TLS verification (``verify=False`` disables it).
    timeout: seconds per request (also sent as the query's server-side timeout).
    retries: retries on connection errors and 429/502/504 answers.
    at: evaluation time (datetime, ISO string or epoch seconds), default now.
    selector: extra label matchers for every query, e.g. ``cluster="prod"``.
    state: a ClusterState used to map pods kube-state-metrics does not know.
    strategy: "hybrid" (default), "pushdown" or "points": where statistics are
    computed (see the module doc).
    stats_step: point spacing S of stats() (default max(60s, window/4032): 5 min
    for 14 days; "60s" for every minute at 5x the query cost).
    batch_pods / concurrency: pods per query and requests in flight.
    """

    def __init__(self, url: str, *, token: str | None = None,
                 token_file: str | Path | None = None,
                 headers: dict[str, str] | None = None, verify: bool = True,
                 ca_file: str | Path | None = None, timeout: float = 60.0, retries: int = 2,
                 at: datetime | str | float | None = None, selector: str = "",
                 state: Any = None, batch_pods: int = 200, concurrency: int = 4,
                 strategy: str = "hybrid", stats_step: str | None = None,
                 name: str | None = None,
                 on_query: Callable[[QueryRecord], None] | None = None) -> None:
        if not url or not re.match(r"^https?://", url.strip()):
            raise ParameterError(f"invalid Prometheus URL {url!r}",
                                 "give an http:// or https:// URL, " + URL_HINT)
        if strategy not in STRATEGIES:
            raise ParameterError(f"invalid stats strategy {strategy!r}",
                                 f"use one of {', '.join(STRATEGIES)}")
        if batch_pods < 1 or concurrency < 1:
            raise ParameterError("batch_pods and concurrency must be at least 1",
                                 "e.g. batch_pods=100, concurrency=4")
        parts = urlsplit(url.strip())
        self._auth_header: str | None = None
        if parts.username is not None:
            raw = f"{parts.username}:{parts.password or ''}".encode()
            self._auth_header = "Basic " + base64.b64encode(raw).decode()
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        self.url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.name = name or f"prometheus:{netloc}"
        self._token = token
        self._token_file = Path(token_file) if token_file else None
        self._headers = dict(headers or {})
        self.timeout = float(timeout)
        self.at = _to_epoch(at)
        sel = selector.strip()
        if sel.startswith("{") and sel.endswith("}"):
            sel = sel[1:-1].strip()
        self.selector = sel.rstrip(",")
        self.state = state
        self.batch_pods = batch_pods
        self.concurrency = concurrency
        self.strategy = strategy
        td = window_delta(stats_step) if stats_step else None
        self.stats_step = max(1, math.ceil(td.total_seconds())) if td is not None else None
        self.on_query = on_query
        self.queries: list[QueryRecord] = []
        self.notes: list[str] = []
        self._scrape_s: float | None = None
        self._lock = threading.Lock()
        # a read timeout is not retried either: the query would only time out again
        retry = Retry(total=retries, connect=retries, read=0, status=retries, other=0,
                      backoff_factor=0.5, backoff_max=8, status_forcelist=RETRY_STATUSES,
                      allowed_methods={"GET", "POST"}, raise_on_status=False,
                      respect_retry_after_header=True)
        kw: dict[str, Any] = {}
        if parts.scheme == "https":
            kw["cert_reqs"] = "CERT_REQUIRED" if verify else "CERT_NONE"
            if ca_file:
                kw["ca_certs"] = str(ca_file)
        self._pool = urllib3.PoolManager(
            num_pools=2, maxsize=max(2, concurrency), retries=retry,
            timeout=urllib3.Timeout(connect=min(self.timeout, 10.0), read=self.timeout), **kw)

    def __repr__(self) -> str:
        return f"PrometheusHistory({self.url!r}, selector={self.selector!r})"

    # -- HTTP -----------------------------------------------------------------
    def _request_headers(self) -> dict[str, str]:
        h = {"Accept": "application/json", **self._headers}
        token = self._token
        if self._token_file is not None:
            try:
                token = self._token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PrometheusError(
                    f"cannot read the Prometheus token file {self._token_file}: "
                    f"{exc.strerror or exc}", "check the path and its permissions") from None
        if token:
            h["Authorization"] = f"Bearer {token}"
        elif self._auth_header:
            h["Authorization"] = self._auth_header
        return h

    def _call(self, method: str, path: str, fields: list[tuple[str, str]],
              purpose: str) -> Any:
        """Send one API request; return its `data` or raise a one-line PrometheusError."""
        url = self.url + path
        t0 = time.perf_counter()
        try:
            if method == "POST":
                resp = self._pool.request("POST", url, fields=fields, encode_multipart=False,
                                          headers=self._request_headers())
            else:
                resp = self._pool.request("GET", url, fields=fields,
                                          headers=self._request_headers())
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc, purpose) from None
        params = {k: v for k, v in fields if k != "query"}
        rec = QueryRecord(purpose, path, dict(fields).get("query", ""),
                          time.perf_counter() - t0, resp.status, params)
        with self._lock:
            self.queries.append(rec)
        if self.on_query:
            self.on_query(rec)
        return self._answer(resp, path, purpose)

    def _answer(self, resp: Any, path: str, purpose: str) -> Any:
        status, data = resp.status, resp.data
        try:
            body = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            body = None
        if status in (401, 403):
            what = "rejected the credentials" if status == 401 else "denied access"
            raise PrometheusError(
                f"Prometheus at {self.url} {what} ({status}) while trying to {purpose}",
                "pass a valid bearer token (token= or token_file=, e.g. the service account "
                "token) or the headers your proxy/tenant needs (e.g. X-Scope-OrgID)")
        if status == 404:
            raise PrometheusError(
                f"{self.url}{path} answered 404: this URL does not serve the Prometheus "
                "HTTP API", URL_HINT)
        if not isinstance(body, dict) or "status" not in body:
            snippet = mask_text(" ".join(data[:120].decode("utf-8", "replace").split()))
            raise PrometheusError(
                f"{self.url}{path} did not answer with Prometheus JSON "
                f"(HTTP {status}: {snippet or 'empty body'}) while trying to {purpose}",
                "a login page or proxy may be in the way; " + URL_HINT)
        if body.get("status") != "success":
            kind = body.get("errorType") or f"HTTP {status}"
            err = mask_text(" ".join(str(body.get("error") or "no message").split()))[:300]
            if status == 503 or kind == "timeout" or "timeout" in err or "timed out" in err:
                hint = ("the query timed out or Prometheus is overloaded: use a shorter window, "
                        "fewer namespaces, a smaller batch_pods, or raise the timeout "
                        "(client timeout= and the server's --query.timeout)")
            elif status == 422 or kind == "execution":
                hint = ("the server refused to execute it (often --query.max-samples): use a "
                        "shorter window, fewer namespaces or a smaller batch_pods")
            else:
                hint = "check the selector and that the server speaks PromQL"
            raise PrometheusError(
                f"Prometheus at {self.url} could not {purpose}: {status} {kind}: {err}", hint)
        for w in body.get("warnings") or []:
            note = f"Prometheus warning while trying to {purpose}: {mask_text(str(w))}"
            with self._lock:
                if note not in self.notes:
                    self.notes.append(note)
            log.warning(note)
        return body.get("data")

    def _unreachable(self, exc: Exception, purpose: str) -> PrometheusError:
        cause: Any = getattr(exc, "reason", None) or exc
        text = str(cause)
        if isinstance(cause, urllib3.exceptions.NameResolutionError):
            why = "the host name could not be resolved (DNS)"
        elif isinstance(cause, urllib3.exceptions.ReadTimeoutError) or "Read timed out" in text:
            why = f"no answer within {self.timeout:g}s (timeout)"
        elif isinstance(cause, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
                cause, urllib3.exceptions.NewConnectionError):
            why = f"no connection within {min(self.timeout, 10.0):g}s (timeout)"
        elif "refused" in text.lower():
            why = "connection refused"
        elif isinstance(cause, urllib3.exceptions.SSLError) or "SSL" in text:
            why = f"TLS failed ({mask_text(text.splitlines()[-1][:200])})"
        else:
            why = mask_text(text.split(": ", 1)[-1][:200]) or type(cause).__name__
        return PrometheusError(
            f"cannot reach Prometheus at {self.url} ({why}) while trying to {purpose}",
            "check the URL and port (or a `kubectl port-forward`), network/VPN and proxy "
            "settings; " + URL_HINT)

    def _end(self) -> float:
        return self.at if self.at is not None else time.time()

    def instant(self, query: str, at: float, purpose: str) -> list[dict[str, Any]]:
        """An instant query (POST); returns the result list (vector or matrix)."""
        data = self._call("POST", "/api/v1/query",
                          [("query", query), ("time", f"{at:.3f}"),
                           ("timeout", f"{self.timeout:g}s")], purpose)
        return (data or {}).get("result") or []

    def range_query(self, query: str, start: float, end: float, step: int,
                    purpose: str) -> list[dict[str, Any]]:
        data = self._call("POST", "/api/v1/query_range",
                          [("query", query), ("start", f"{start:.3f}"), ("end", f"{end:.3f}"),
                           ("step", f"{step}s"), ("timeout", f"{self.timeout:g}s")], purpose)
        return (data or {}).get("result") or []

    def series(self, match: str, start: float, end: float, purpose: str) -> list[dict[str, str]]:
        """Label sets of the series matching `match` in [start, end] (index only, cheap)."""
        data = self._call("POST", "/api/v1/series",
                          [("match[]", match), ("start", f"{start:.3f}"),
                           ("end", f"{end:.3f}")], purpose)
        return [s for s in data or [] if isinstance(s, dict)]

    def present_metrics(self, names: Sequence[str], start: float, end: float) -> set[str]:
        """Which of `names` have series matching the selector in [start, end]."""
        match = "{" + ", ".join(filter(None, [f"__name__=~{_q(_alt(names))}",
                                              self.selector])) + "}"
        data = self._call("GET", "/api/v1/label/__name__/values",
                          [("match[]", match), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")],
                          "list the metric names it holds")
        return {n for n in data or [] if n in names}

    def _pmap(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        """fn(*job) for every job, at most `concurrency` in flight, yielded as they
        finish (so a caller turns each answer into arrays before the next arrives)."""
        if len(jobs) <= 1 or self.concurrency == 1:
            for j in jobs:
                yield fn(*j)
            return
        pending = list(reversed(jobs))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            running: set[Future[Any]] = set()
            try:
                while pending or running:
                    while pending and len(running) < self.concurrency:
                        running.add(pool.submit(fn, *pending.pop()))
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for f in done:
                        yield f.result()
            finally:
                for f in running:
                    f.cancel()

    # -- selectors ------------------------------------------------------------
    def _sel(self, *matchers: str) -> str:
        return "{" + ", ".join(m for m in (*matchers, self.selector) if m) + "}"

    def _ns_matcher(self, namespaces: Sequence[str] | None) -> str:
        if not namespaces:
            return ""
        names = sorted(set(namespaces))
        return f"namespace={_q(names[0])}" if len(names) == 1 else \
            f"namespace=~{_q(_alt(names))}"

    def _container_sel(self, ns_matcher: str, pods: Sequence[str] | None = None) -> str:
        pod = f"pod=~{_q(_alt(pods))}" if pods else ""
        return self._sel(ns_matcher, pod, 'container!=""', 'container!="POD"')

    def _step(self, step: int, end: float) -> int:
        """`step`, or the CPU scrape interval when scrapes are sparser: irate needs
        two scrapes within 2 steps, and finer steps would only repeat points."""
        if self._scrape_s is None:
            query = (f"quantile(0.5, count_over_time({CPU_METRIC}"
                     f"{self._container_sel('')}[1h]))")
            try:
                found = self.instant(query, end, "estimate the scrape interval")
            except PrometheusError as exc:  # best effort: the real queries will tell
                log.debug("scrape interval unknown: %s", exc)
                found = []
            counts = [_value(r) for r in found]
            n = counts[0] if counts and not math.isnan(counts[0]) else 0.0
            self._scrape_s = 3600.0 / (n - 1) if n >= 2 else 0.0
        if self._scrape_s > step * 1.05:
            return math.ceil(self._scrape_s)
        return step

    def _window(self, window: str | None) -> tuple[float, float]:
        td = window_delta(window or DEFAULT_WINDOW)
        assert td is not None
        return td.total_seconds(), self._end()

    def _require(self, names: Sequence[str], start: float, end: float, hint: str,
                 what: str) -> set[str]:
        """Raise MissingMetricsError naming every metric of `names` without series."""
        present = self.present_metrics(names, start, end)
        missing = [n for n in names if n not in present]
        if missing:
            where = f" matching {{{self.selector}}}" if self.selector else ""
            raise MissingMetricsError(
                f"Prometheus at {self.url} has no {' / '.join(missing)} series{where} "
                f"in the window: cannot {what}",
                f"{'this metric is' if len(missing) == 1 else 'these metrics are'} {hint}")
        return present

    # -- inventory and owners ----------------------------------------------------
    def _inventory(self, metric: str, namespaces: Sequence[str] | None, start: float,
                   end: float) -> list[dict[str, str]]:
        """Container series of `metric` (label sets), per batch of namespaces."""
        batches: list[Sequence[str] | None] = [None]
        if namespaces:
            names = sorted(set(namespaces))
            batches = [names[i:i + 50] for i in range(0, len(names), 50)]
        jobs = [(f"{metric}{self._container_sel(self._ns_matcher(b))}", start, end,
                 f"list the {metric} series") for b in batches]
        out: list[dict[str, str]] = []
        for res in self._pmap(self.series, jobs):
            out.extend(s for s in res if s.get("namespace") and s.get("pod")
                       and s.get("container") not in (None, "", "POD"))
        return out

    def _owners(self, pods: set[tuple[str, str]], start: float,
                end: float) -> dict[tuple[str, str], tuple[str, str]]:
        """(namespace, pod) -> (workload kind, workload) for every pod in `pods`."""
        namespaces = sorted({ns for ns, _ in pods})
        present = self.present_metrics((POD_OWNER, RS_OWNER, JOB_OWNER), start, end) \
            if namespaces else set()
        pod_owner: dict[tuple[str, str], tuple[str, str]] = {}
        rs_owner: dict[tuple[str, str], tuple[str, str]] = {}
        job_owner: dict[tuple[str, str], tuple[str, str]] = {}
        batches = [namespaces[i:i + 50] for i in range(0, len(namespaces), 50)]
        for metric, key, target in ((POD_OWNER, "pod", pod_owner),
                                    (RS_OWNER, "replicaset", rs_owner),
                                    (JOB_OWNER, "job_name", job_owner)):
            if metric not in present:
                continue
            jobs = [(f"{metric}{self._sel(self._ns_matcher(b))}", start, end,
                     f"map pods to workloads ({metric})") for b in batches]
            for res in self._pmap(self.series, jobs):
                for s in sorted(res, key=lambda s: s.get("owner_is_controller") != "true"):
                    k = (s.get("namespace", ""), s.get(key, ""))
                    if k[1] and k not in target:
                        target[k] = (s.get("owner_kind", "<none>"), s.get("owner_name", "<none>"))
        if POD_OWNER not in present and pods:
            note = (f"{POD_OWNER} not found ({KSM_HINT.split(':')[0]}): pods were mapped to "
                    "workloads " + ("with the cluster state, else " if self.state else "")
                    + "from their names")
            if note not in self.notes:
                self.notes.append(note)
            log.warning(note)
        return {p: self._owner_of(p, pod_owner, rs_owner, job_owner) for p in pods}

    def _owner_of(self, pod: tuple[str, str], pod_owner: dict, rs_owner: dict,
                  job_owner: dict) -> tuple[str, str]:
        ns, name = pod
        hit = pod_owner.get(pod)
        if hit is not None:
            kind, owner = hit
            if kind in ("<none>", "", "Node") or owner in ("<none>", ""):
                return "Pod", name  # bare or static (mirror) pod, as top_owner says
            if kind == "ReplicaSet":
                up = rs_owner.get((ns, owner))
                if up and up[0] not in ("<none>", "") and up[1] not in ("<none>", ""):
                    return up
                if up:
                    return "ReplicaSet", owner
                return self._state_owner("ReplicaSet", ns, owner) or _rs_from_name(owner)
            if kind == "Job":
                up = job_owner.get((ns, owner))
                if up and up[0] not in ("<none>", "") and up[1] not in ("<none>", ""):
                    return up
                if up:
                    return "Job", owner
                return self._state_owner("Job", ns, owner) or _job_from_name(owner)
            return kind, owner
        return self._state_owner("Pod", ns, name) or owner_from_name(name)

    def _state_owner(self, kind: str, ns: str, name: str) -> tuple[str, str] | None:
        if self.state is None:
            return None
        obj = self.state.get(kind, ns, name)
        return self.state.top_owner(obj) if obj is not None else None

    # -- stats ----------------------------------------------------------------------
    def stats(self, *, window: str | None = None, namespaces: Sequence[str] | None = None,
              quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        """container_stats() of the window ending at `at`, computed in PromQL."""
        quantiles = [float(q) for q in quantiles]
        if any(not 0 <= q <= 1 for q in quantiles):
            raise ParameterError(f"quantiles must be within [0, 1], got {quantiles}",
                                 "e.g. 0.5, 0.95, 0.99")
        w, end = self._window(window)
        start = end - w
        self._require(CADVISOR_METRICS, start, end, CADVISOR_HINT, "compute usage statistics")
        step = self.stats_step or self._step(_step_for(w, STATS_MAX_POINTS), end)
        inv = {"cpu": self._inventory(CPU_METRIC, namespaces, start, end),
               "memory": self._inventory(MEM_METRIC, namespaces, start, end)}
        pods = {(s["namespace"], s["pod"]) for series in inv.values() for s in series}
        owners = self._owners(pods, start, end)
        segs = self._segments(inv, owners, w, step, end, quantiles)
        rows: list[dict[str, Any]] = []
        for resource in ("cpu", "memory"):
            rows.extend(self._combine(resource, segs[resource], owners, quantiles))
        cols = stats_columns(quantiles)
        if not rows:
            return pd.DataFrame(columns=cols)
        out = pd.DataFrame(rows)
        for c in ("first", "last"):
            ms = np.round(out[c].to_numpy(np.float64) * 1000).astype(np.int64)
            out[c] = pd.to_datetime(ms, unit="ms", utc=True).astype("datetime64[ns, UTC]")
        out["samples"] = out["samples"].astype("int64")
        out["pods"] = out["pods"].astype("int64")
        return out.sort_values(STAT_KEYS, kind="stable").reset_index(drop=True)[cols]

    @staticmethod
    def _seg_key(labels: dict[str, str]) -> tuple[str, str, str, str]:
        return (labels.get("namespace", ""), labels.get("pod", ""),
                labels.get("container", ""), labels.get("id", ""))

    @staticmethod
    def _group_of(key: tuple[str, ...], resource: str,
                  owners: dict[tuple[str, str], tuple[str, str]]) -> tuple[str, ...]:
        kind, workload = owners.get((key[0], key[1])) or owner_from_name(key[1])
        return (key[0], kind, workload, key[2], resource)

    def _chunks(self, pods: Iterable[tuple[str, str]]) -> list[_Chunk]:
        """Batches of at most `batch_pods` (namespace, pod) pairs (and MAX_REGEX_CHARS)."""
        out: list[_Chunk] = []
        cur: list[tuple[str, str]] = []
        size = 0
        for ns, pod in sorted(set(pods)):
            if cur and (len(cur) >= self.batch_pods or size + len(pod) > MAX_REGEX_CHARS):
                out.append(_Chunk(cur))
                cur, size = [], 0
            cur.append((ns, pod))
            size += len(pod) + len(ns) + 2
        if cur:
            out.append(_Chunk(cur))
        return out

    def _chunk_sel(self, chunk: _Chunk) -> str:
        return self._container_sel(self._ns_matcher(chunk.namespaces), chunk.pod_names)

    @staticmethod
    def _points_expr(resource: str, sel: str, step: int) -> str:
        """One point per step and series (see the module doc): the CPU rate of the
        last scrape interval, or the peak working set within the step."""
        if resource == "cpu":
            return f"irate({CPU_METRIC}{sel}[{_dur(2 * step - 0.001)}])"
        return f"max_over_time({MEM_METRIC}{sel}[{_dur(step - 0.001)}])"

    def _stat_queries(self, resource: str, sel: str, w: float, step: int,
                      levels: Sequence[float]) -> list[tuple[str, str]]:
        """(stat, PromQL) per pushed-down statistic of one chunk.

        No aggregation inside a subquery (Prometheus evaluates it at every step,
        ~10x slower): each series is reduced first, then `max by` the segment
        labels removes duplicates of a second scrape job.
        """
        by = f"max by ({BY_SEG})"
        rng = f"{self._points_expr(resource, sel, step)}[{_dur(w)}:{_dur(step)}]"
        qs = [("samples", f"{by} (count_over_time({rng}))"),
              ("mean", f"{by} (avg_over_time({rng}))"),
              ("peak", f"{by} (max_over_time({rng}))")]
        for lv in levels:
            if lv == 1.0:
                continue  # the peak
            fn = "min_over_time(" if lv == 0 else f"quantile_over_time({lv!r}, "
            qs.append((f"q{lv!r}", f"{by} ({fn}{rng}))"))
        return qs

    def _segments(self, inv: dict[str, list[dict[str, str]]],
                  owners: dict[tuple[str, str], tuple[str, str]], w: float, step: int,
                  end: float, quantiles: Sequence[float]
                  ) -> dict[str, dict[tuple[str, ...], _Seg]]:
        """Per resource and segment: pushed-down statistics or points (per `strategy`).

        All queries of both resources go through one pool, so fetching points and
        computing aggregates overlap.
        """
        jobs: list[_Job] = []
        grid = sorted({0.0, *quantiles, *MIXTURE_GRID})
        for resource, series in inv.items():
            metric = CPU_METRIC if resource == "cpu" else MEM_METRIC
            seg_keys = {self._seg_key(s) for s in series}
            per_group: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
            for k in seg_keys:
                per_group[self._group_of(k, resource, owners)].add(k)
            multi = {(k[0], k[1]) for ks in per_group.values() if len(ks) > 1 for k in ks}
            single = {(k[0], k[1]) for k in seg_keys} - multi
            if self.strategy == "points":
                points, plans = single | multi, []
            elif self.strategy == "hybrid":
                points, plans = multi, [(single, sorted(set(quantiles)))]
            else:
                points, plans = set(), [(single, sorted(set(quantiles))), (multi, grid)]
            jobs += self._points_jobs(resource, points, w, step)
            for pods, levels in plans:
                for chunk in self._chunks(pods):
                    for stat, query in self._stat_queries(resource, self._chunk_sel(chunk), w,
                                                          step, levels):
                        label = stat if not stat.startswith("q") else f"quantile {stat[1:]}"
                        jobs.append(_Job(resource, chunk, stat, query,
                                         f"compute the {label} of {metric} {chunk.where}"))
        segs: dict[str, dict[tuple[str, ...], _Seg]] = {"cpu": {}, "memory": {}}
        pushed: dict[str, dict[tuple[str, ...], _Seg]] = {"cpu": {}, "memory": {}}
        done: set[tuple[str, tuple[str, ...]]] = set()
        for job, result in self._pmap(self._run_job, [(j, end) for j in jobs]):
            for r in result:
                labels = r.get("metric") or {}
                if not job.chunk.wants(labels):
                    continue  # a same-named pod of another namespace
                key = self._seg_key(labels)
                if job.stat == "points":
                    if (job.resource, key) not in done:  # else a second scrape job's copy
                        done.add((job.resource, key))
                        segs[job.resource][key] = _points_seg(r)
                else:
                    pushed[job.resource].setdefault(key, _Seg()).stats[job.stat] = _value(r)
        for resource, found in pushed.items():
            if not found:
                continue
            for key, (first, last) in self._first_last(
                    resource, {(k[0], k[1]) for k in found}, w, step, end).items():
                if key in found:
                    found[key].stats.update(first=first, last=last)
            # a NaN sample poisons avg_over_time & co: recompute from the points
            poisoned = {(k[0], k[1]) for k, seg in found.items()
                        if any(math.isnan(v) for v in seg.stats.values())}
            if poisoned:
                redo = self._points_jobs(resource, poisoned, w, step)
                fixed: set[tuple[str, ...]] = set()
                for job, result in self._pmap(self._run_job, [(j, end) for j in redo]):
                    for r in result:
                        key = self._seg_key(r.get("metric") or {})
                        if job.chunk.wants(r.get("metric") or {}) and key not in fixed:
                            fixed.add(key)
                            found[key] = _points_seg(r)
            segs[resource].update(found)
        return segs

    def _points_jobs(self, resource: str, pods: set[tuple[str, str]], w: float,
                     step: int) -> list[_Job]:
        """Instant queries returning every point of these pods' segments (a subquery
        matrix), for exact pooled quantiles or NaN-free statistics."""
        metric = CPU_METRIC if resource == "cpu" else MEM_METRIC
        return [_Job(resource, c, "points",
                     f"{self._points_expr(resource, self._chunk_sel(c), step)}"
                     f"[{_dur(w)}:{_dur(step)}]", f"fetch the {metric} points {c.where}")
                for c in self._chunks(pods)]

    def _run_job(self, job: _Job, end: float) -> tuple[_Job, list[dict[str, Any]]]:
        return job, self.instant(job.query, end, job.purpose)

    def _first_last(self, resource: str, pods: set[tuple[str, str]], w: float, step: int,
                    end: float) -> dict[tuple[str, ...], tuple[float, float]]:
        """Time of each segment's first and last point, to the step.

        A subquery over `timestamp()` of every step is slow in Prometheus, so:
        one range query counts samples per bucket (1/64 of the window), then a
        short subquery at step resolution looks only inside the first and the
        last bucket that holds data.
        """
        metric = CPU_METRIC if resource == "cpu" else MEM_METRIC
        bucket = step * max(1, math.ceil(w / FIRST_LAST_BUCKETS / step))
        n = math.ceil(w / bucket)
        lo = end - w
        by = f"max by ({BY_SEG})"
        chunks = self._chunks(pods)
        jobs = [(c, f"{by} (count_over_time({metric}{self._chunk_sel(c)}[{_dur(bucket)}]))",
                 end - (n - 1) * bucket, end, bucket,
                 f"find the first and last {metric} samples {c.where}") for c in chunks]

        def ranged(chunk: _Chunk, query: str, t0: float, t1: float, st: int,
                   purpose: str) -> tuple[_Chunk, list[dict[str, Any]]]:
            return chunk, self.range_query(query, t0, t1, st, purpose)

        first_b: dict[float, set[tuple[str, str]]] = defaultdict(set)
        last_b: dict[float, set[tuple[str, str]]] = defaultdict(set)
        rough: dict[tuple[str, ...], tuple[float, float]] = {}
        for chunk, result in self._pmap(ranged, jobs):
            for r in result:
                labels = r.get("metric") or {}
                ts = [float(p[0]) for p in r.get("values") or [] if float(p[1]) > 0]
                if ts and chunk.wants(labels):
                    pod = (labels.get("namespace", ""), labels.get("pod", ""))
                    first_b[min(ts)].add(pod)
                    last_b[max(ts)].add(pod)
                    rough[self._seg_key(labels)] = (max(lo, min(ts) - bucket), max(ts))
        S = _dur(step)
        refine = []
        for t_bucket, bucket_pods in first_b.items():
            # the first point may sit in the next bucket (irate needs two scrapes)
            t_hi = min(t_bucket + bucket, end)
            for c in self._chunks(bucket_pods):
                sel = self._chunk_sel(c)
                inner = self._points_expr("cpu", sel, step) if resource == "cpu" else \
                    _presence(metric, sel, step)
                refine.append((c, "first", f"min by ({BY_SEG}) (min_over_time((timestamp("
                                           f"{inner}) >= {lo:.3f})[{_dur(t_hi - t_bucket + bucket)}"
                                           f":{S}] @ {t_hi:.3f}))",
                               f"find the first {metric} point {c.where}"))
        for t_bucket, bucket_pods in last_b.items():
            for c in self._chunks(bucket_pods):
                inner = _presence(metric, self._chunk_sel(c), step)
                refine.append((c, "last", f"{by} (max_over_time(timestamp({inner})"
                                          f"[{_dur(bucket)}:{S}] @ {t_bucket:.3f}))",
                               f"find the last {metric} point {c.where}"))

        def run(chunk: _Chunk, stat: str, query: str,
                purpose: str) -> tuple[_Chunk, str, list[dict[str, Any]]]:
            return chunk, stat, self.instant(query, end, purpose)

        found: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for chunk, stat, result in self._pmap(run, refine):
            for r in result:
                labels = r.get("metric") or {}
                if chunk.wants(labels):
                    v = _value(r)
                    got = found[self._seg_key(labels)]
                    if not math.isnan(v):
                        got[stat] = min(got.get(stat, v), v) if stat == "first" else \
                            max(got.get(stat, v), v)
        # a refinement that found nothing (data only just before the window): the
        # bucket's bounds
        return {k: (found[k].get("first", b[0]), found[k].get("last", b[1]))
                for k, b in rough.items()}

    def _combine(self, resource: str, segs: dict[tuple[str, ...], _Seg],
                 owners: dict[tuple[str, str], tuple[str, str]],
                 quantiles: Sequence[float]) -> list[dict[str, Any]]:
        groups: dict[tuple[str, ...], list[_Seg]] = defaultdict(list)
        pods: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for key, seg in segs.items():
            if seg.stats.get("samples", 0) > 0:
                g = self._group_of(key, resource, owners)
                groups[g].append(seg)
                pods[g].add(key[1])
        rows = []
        for gkey, members in groups.items():
            n = np.array([m.stats["samples"] for m in members])
            means = np.array([m.stats.get("mean", math.nan) for m in members])
            row: dict[str, Any] = dict(zip(STAT_KEYS, gkey, strict=True))
            row["samples"] = int(n.sum())
            row["pods"] = len(pods[gkey])
            row["first"] = min(m.stats.get("first", math.nan) for m in members)
            row["last"] = max(m.stats.get("last", math.nan) for m in members)
            row["mean"] = float((n * means).sum() / n.sum())
            row["peak"] = max(m.stats.get("peak", -math.inf) for m in members)
            for q in quantiles:
                row[qcol(q)] = self._pooled(members, q)
            rows.append(row)
        return rows

    @staticmethod
    def _pooled(members: list[_Seg], q: float) -> float:
        """Quantile q of the pooled points of a group's segments (see module doc)."""
        if len(members) == 1 and members[0].values is None:
            return members[0].stats.get("peak" if q == 1.0 else f"q{q!r}", math.nan)
        if all(m.values is not None for m in members):
            vals = members[0].values if len(members) == 1 else \
                np.sort(np.concatenate([m.values for m in members]))
            return pooled_quantile(vals, q)
        parts = []
        for m in members:
            if m.values is not None:  # recomputed from its points: use its exact grid
                grid = sorted({0.0, 1.0, q, *MIXTURE_GRID})
                pts = [(lv, pooled_quantile(m.values, lv)) for lv in grid]
            else:
                pts = [(float(k[1:]), v) for k, v in m.stats.items()
                       if k.startswith("q") and not math.isnan(v)]
                pts.append((1.0, m.stats["peak"]))
            parts.append((m.stats["samples"], pts))
        return mixture_quantile(parts, q)

    # -- samples ----------------------------------------------------------------------
    def samples(self, *, window: str | None = None,
                namespaces: Sequence[str] | None = None) -> pd.DataFrame:
        """Tidy samples at step max(60s, window/10000) for charts and back-tests.

        CPU points are `irate` points like those of `stats()`; memory points are
        the peak working set within each step (`max_over_time(mem[step])`), so a
        short spike is never lost to down-sampling.
        """
        w, end = self._window(window)
        self._require(CADVISOR_METRICS, end - w, end, CADVISOR_HINT, "read usage samples")
        step = self._step(_step_for(w, SAMPLES_MAX_POINTS), end)
        end_al = math.floor(end / step) * step
        start_al = math.ceil((end - w) / step) * step
        inv = {"cpu": self._inventory(CPU_METRIC, namespaces, end - w, end),
               "memory": self._inventory(MEM_METRIC, namespaces, end - w, end)}
        pods = {(s["namespace"], s["pod"]) for series in inv.values() for s in series}
        owners = self._owners(pods, end - w, end)
        jobs = []
        for resource, series in inv.items():
            metric = CPU_METRIC if resource == "cpu" else MEM_METRIC
            for chunk in self._chunks((s["namespace"], s["pod"]) for s in series):
                sel = self._chunk_sel(chunk)
                query = self._points_expr("cpu", sel, step) if resource == "cpu" else \
                    f"max_over_time({MEM_METRIC}{sel}[{_dur(step - 0.001)}])"
                jobs.append((chunk, resource, query, f"read {metric} samples {chunk.where}"))

        def run(chunk: _Chunk, resource: str, query: str, purpose: str) -> pd.DataFrame | None:
            result = self.range_query(query, start_al, end_al, step, purpose)
            seen: set[tuple[str, ...]] = set()
            keep = []
            for r in result:  # one series per container instance (a second job's are copies)
                labels = r.get("metric") or {}
                if chunk.wants(labels) and self._seg_key(labels) not in seen:
                    seen.add(self._seg_key(labels))
                    keep.append(r)
            df = _matrix_frame(keep, resource, owners)
            key = ["namespace", "pod", "container", "time"]
            if df is not None and df.duplicated(key).any():  # instances overlapping a step
                df = df.groupby(key, sort=False, as_index=False).agg(
                    {c: "first" if c != "value" else "max" for c in USAGE_COLUMNS
                     if c not in key})[USAGE_COLUMNS]
            return df

        frames = [f for f in self._pmap(run, jobs) if f is not None]
        return _tidy(frames)

    # -- events ---------------------------------------------------------------------
    def events(self, window: str | None = None,
               namespaces: Sequence[str] | None = None) -> pd.DataFrame:
        """OOM kills and restarts per container in the window (kube-state-metrics).

        restarts: rise of `kube_pod_container_status_restarts_total` over the
        window (max - min per container). oom_kills: the restarts counted at
        steps where the container's last termination reason is OOMKilled
        (one step = max(60s, window/10000); two restarts with different reasons
        inside one step are attributed to the later reason), capped at restarts.
        """
        w, end = self._window(window)
        start = end - w
        step = _step_for(w, SAMPLES_MAX_POINTS)
        present = self._require((RESTARTS,), start, end, KSM_HINT,
                                "count restarts and OOM kills")
        present |= self.present_metrics((LAST_TERMINATED,), start, end)
        ns_list: list[str | None]
        if namespaces:
            ns_list = sorted(set(namespaces))
        else:
            found = self.series(f"{RESTARTS}{self._sel()}", start, end,
                                f"list the {RESTARTS} series")
            ns_list = sorted({s.get("namespace", "") for s in found} - {""})
        by = "namespace, pod, container"
        W, S = _dur(w), _dur(step)
        jobs = []
        for ns in ns_list:
            sel = self._sel(f"namespace={_q(ns)}" if ns else "")
            r = f"{RESTARTS}{sel}"
            jobs.append(("restarts", f"max by ({by}) (max_over_time({r}[{W}]) - "
                                     f"min_over_time({r}[{W}]))",
                         f"count restarts ({RESTARTS}) in namespace {ns}"))
            if LAST_TERMINATED in present:
                oom_sel = self._sel(f"namespace={_q(ns)}" if ns else "", 'reason="OOMKilled"')
                jobs.append(("oom_kills",
                             f"sum by ({by}) (sum_over_time((clamp_min(max by ({by}) ({r}) - "
                             f"max by ({by}) ({r} offset {S}), 0) * on ({by}) group_left() "
                             f"max by ({by}) ({LAST_TERMINATED}{oom_sel}))[{W}:{S}]))",
                             f"count OOM kills ({LAST_TERMINATED}) in namespace {ns}"))

        def run(stat: str, query: str, purpose: str) -> tuple[str, list[dict[str, Any]]]:
            return stat, self.instant(query, end, purpose)

        counts: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
        for stat, result in self._pmap(run, jobs):
            for r in result:
                m = r.get("metric") or {}
                key = (m.get("namespace", ""), m.get("pod", ""), m.get("container", ""))
                try:
                    counts[key][stat] = float(r["value"][1])
                except (KeyError, IndexError, TypeError, ValueError):
                    continue
        if not counts:
            return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("oom_kills", "restarts")
                                              else "object") for c in EVENT_COLUMNS})
        owners = self._owners({(k[0], k[1]) for k in counts}, start, end)
        rows = []
        for key, c in sorted(counts.items()):
            restarts = round(max(c.get("restarts", 0.0), 0.0))
            ooms = round(max(c.get("oom_kills", 0.0), 0.0))
            kind, workload = owners.get((key[0], key[1])) or owner_from_name(key[1])
            rows.append({"namespace": key[0], "pod": key[1], "container": key[2],
                         "workload_kind": kind, "workload": workload,
                         "oom_kills": min(ooms, restarts),
                         "restarts": restarts})
        return pd.DataFrame(rows, columns=EVENT_COLUMNS)

    def check(self, window: str | None = None) -> dict[str, bool]:
        """Which cAdvisor and kube-state-metrics series exist in the window."""
        w, end = self._window(window)
        names = (*CADVISOR_METRICS, *KSM_METRICS)
        present = self.present_metrics(names, end - w, end)
        return {n: n in present for n in names}

    def close(self) -> None:
        self._pool.clear()


def _matrix_frame(result: list[dict[str, Any]], resource: str,
                  owners: dict[tuple[str, str], tuple[str, str]]) -> pd.DataFrame | None:
    """A range query's matrix as tidy rows (NaN points dropped)."""
    parts = []
    for r in result:
        m = r.get("metric") or {}
        pts = r.get("values") or []
        if not pts:
            continue
        ns, pod, container = m.get("namespace", ""), m.get("pod", ""), m.get("container", "")
        kind, workload = owners.get((ns, pod)) or owner_from_name(pod)
        t, v = _points(pts)
        ok = ~np.isnan(v)
        n = int(ok.sum())
        parts.append(pd.DataFrame({
            "time": pd.to_datetime(np.round(t[ok] * 1000).astype(np.int64), unit="ms", utc=True),
            "namespace": ns, "workload_kind": kind, "workload": workload, "pod": pod,
            "container": container, "resource": resource, "value": v[ok]}, index=range(n)))
    return pd.concat(parts, ignore_index=True) if parts else None


def _tidy(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        df = pd.DataFrame({c: pd.Series(dtype="object") for c in USAGE_COLUMNS})
        df["time"] = pd.Series(dtype="datetime64[ns, UTC]")
        df["value"] = pd.Series(dtype="float64")
    else:
        df = pd.concat(frames, ignore_index=True)
    df["time"] = df["time"].astype("datetime64[ns, UTC]")
    for c in USAGE_COLUMNS[1:-1]:
        df[c] = df[c].astype("category")
    return df[USAGE_COLUMNS]


__all__ = ["MissingMetricsError", "PrometheusError", "PrometheusHistory", "QueryRecord",
           "mixture_quantile", "owner_from_name", "pooled_quantile"]
