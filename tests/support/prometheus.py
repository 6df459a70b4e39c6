"""A real Prometheus for tests: known series written as OpenMetrics, turned into
TSDB blocks with `promtool tsdb create-blocks-from openmetrics`, served by a
`prometheus` process on a free local port.

`usage_dataset()` builds cAdvisor and kube-state-metrics series whose truth is
known: the tidy frame of what they mean (CPU as per-scrape-interval rates,
memory as the raw working set), so a test compares `PrometheusHistory.stats()`
with `container_stats(truth)`. It holds a counter reset, a scrape gap, a NaN
sample, container restarts (new `id` series), a duplicate scrape job, the
pause (`POD`) and pod-level (`container=""`) series that must be ignored, and
owners only kube-state-metrics knows (an Argo Rollout). Three clusters are
told apart by a `cluster` label: `prod` (everything), `bare` (cAdvisor only,
no kube-state-metrics) and `ksm` (kube-state-metrics only, no cAdvisor).

`AuthProxy` stands in front of it to check bearer tokens, count concurrent
requests, record what was sent, or answer with a chosen error.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

BLOCK_S = 7200  # promtool writes 2 h blocks; one input file per block keeps it linear
SCRAPE_S = 60
END = 1_709_251_200  # 2024-03-01T00:00:00Z, a multiple of the scrape interval
WINDOW = "2d"
N = 47 * 60  # scrapes: 47 h of data, well inside the 2 d window
SAFE = "bcdfghjklmnpqrstvwxz2456789"


# -- binaries -------------------------------------------------------------------
def find_binaries() -> tuple[str, str] | None:
    prom = os.environ.get("PROMETHEUS") or shutil.which("prometheus")
    tool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    return (prom, tool) if prom and tool else None


def require_binaries() -> tuple[str, str]:
    """(prometheus, promtool), or a skip (a failure when CI=true: CI must have them)."""
    import pytest

    found = find_binaries()
    if found is None:
        reason = ("prometheus/promtool not found (Debian: apt-get install -y "
                  "--no-install-recommends prometheus; or set PROMETHEUS and PROMTOOL)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return found


# -- series and blocks --------------------------------------------------------
@dataclass
class Series:
    family: str  # OpenMetrics family; a counter's samples are named family + "_total"
    kind: str  # "counter" | "gauge"
    labels: dict[str, str]
    times: np.ndarray  # int seconds, increasing
    values: np.ndarray  # float

    @property
    def sample_name(self) -> str:
        return self.family + "_total" if self.kind == "counter" else self.family

    def prefix(self) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.sample_name}{{{labels}}}"


def _fmt(v: float) -> str:
    return "NaN" if np.isnan(v) else repr(float(v))


def write_blocks(series: Sequence[Series], data_dir: Path, work_dir: Path, promtool: str,
                 jobs: int = 2) -> int:
    """Write `series` into TSDB blocks under data_dir; returns the sample count.

    promtool re-reads its whole input once per 2 h block, so the input is split
    into one OpenMetrics file per block (aligned like promtool's blocks).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    all_t = [s.times for s in series if len(s.times)]
    if not all_t:
        return 0
    lo = min(int(t[0]) for t in all_t) // BLOCK_S * BLOCK_S
    hi = max(int(t[-1]) for t in all_t)
    families: dict[str, str] = {}
    for s in series:
        families.setdefault(s.family, s.kind)
    by_family: dict[str, list[Series]] = {f: [] for f in families}
    for s in series:
        by_family[s.family].append(s)
    prefixes = {id(s): s.prefix() for s in series}

    def one(w0: int) -> int:
        w1 = w0 + BLOCK_S
        path = work_dir / f"block-{w0}.om"
        count = 0
        with open(path, "w", encoding="utf-8") as fh:
            for fam, kind in families.items():
                fh.write(f"# TYPE {fam} {kind}\n")
                for s in by_family[fam]:
                    a, b = np.searchsorted(s.times, [w0, w1])
                    if a == b:
                        continue
                    p = prefixes[id(s)]
                    fh.write("".join(f"{p} {_fmt(v)} {t}\n" for t, v in
                                     zip(s.times[a:b].tolist(), s.values[a:b].tolist(),
                                         strict=True)))
                    count += int(b - a)
            fh.write("# EOF\n")
        if count:
            proc = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q",
                                   str(path), str(data_dir)], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"promtool failed on {path}: {proc.stderr[-2000:]}")
        path.unlink()
        return count

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return sum(pool.map(one, range(lo, hi + 1, BLOCK_S)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: SIGTERM the server when the test process dies, even by SIGKILL/timeout."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class PrometheusServer:
    """`prometheus` serving data_dir on 127.0.0.1:<free port> (no scraping)."""

    def __init__(self, data_dir: Path, binary: str, extra_args: Iterable[str] = (),
                 compact: bool = False) -> None:
        self.data_dir = data_dir
        self.binary = binary
        self.extra_args = list(extra_args)
        self.compact = compact
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log_path = data_dir.parent / f"{data_dir.name}-prometheus.log"

    def start(self, timeout: float = 90.0) -> str:
        config = self.data_dir.parent / f"{self.data_dir.name}-prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = [self.binary, f"--config.file={config}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=10y", "--log.level=warn"]
        if not self.compact:  # keep the imported 2 h blocks: no background compaction
            args.append("--storage.tsdb.max-block-duration=2h")
        args += self.extra_args
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.proc.returncode}): "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self.url
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout:g}s: "
                           f"{self.log_path.read_text(errors='replace')[-2000:]}")

    def blocks(self) -> list[Path]:
        return [p for p in self.data_dir.iterdir() if p.is_dir() and len(p.name) == 26]

    def wait_compacted(self, timeout: float = 1800.0, quiet: float = 90.0) -> int:
        """With compact=True: wait until the block count has not changed for `quiet`
        seconds (Prometheus compacts imported blocks in the background, like a
        long-running server's 14 days would be); returns the block count."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = len(self.blocks())
            busy = any(p.suffix == ".tmp" or p.name.endswith(".tmp-for-creation")
                       for p in self.data_dir.iterdir())
            if n != last or busy:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return n
            time.sleep(5)
        return len(self.blocks())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


# -- the known dataset ----------------------------------------------------------
@dataclass
class Dataset:
    series: list[Series]
    truth: pd.DataFrame  # tidy samples (USAGE_COLUMNS) the series mean
    events: pd.DataFrame  # expected restarts / OOM kills per container
    end: int = END
    window: str = WINDOW
    notes: dict[str, str] = field(default_factory=dict)


class _Builder:
    def __init__(self) -> None:
        self.series: list[Series] = []
        self.truth: list[pd.DataFrame] = []
        self.grid = END - (N - 1 - np.arange(N)) * SCRAPE_S

    def _truth(self, idx: np.ndarray, values: np.ndarray, ns: str, kind: str, workload: str,
               pod: str, container: str, resource: str) -> None:
        ok = ~np.isnan(values)
        self.truth.append(pd.DataFrame({
            "time": pd.to_datetime(self.grid[idx][ok] * 10**9, unit="ns", utc=True),
            "namespace": ns, "workload_kind": kind, "workload": workload, "pod": pod,
            "container": container, "resource": resource, "value": values[ok]}))

    def cpu(self, labels: dict[str, str], idx: np.ndarray, rates: np.ndarray,
            resets: Sequence[int] = (), start: float = 1000.0,
            truth: tuple[str, str, str] | None = None, dup: bool = False,
            scrape: int = SCRAPE_S) -> None:
        """A cAdvisor CPU counter sampled at grid[idx] whose per-interval rate is `rates`.

        At a reset position the process restarted right after the previous scrape,
        so the counter only holds that interval's usage (irate reads c/60).
        Truth: the rate of every scrape whose previous scrape (one interval
        earlier) exists, computed as Prometheus' irate does.
        """
        c = np.empty(len(idx))
        acc = start
        for j in range(len(idx)):
            inc = rates[j] * scrape
            acc = inc if j in resets else acc + inc
            c[j] = acc
        self._add_counter(labels, idx, c, truth, dup, scrape)

    def _add_counter(self, labels: dict[str, str], idx: np.ndarray, c: np.ndarray,
                     truth: tuple[str, str, str] | None, dup: bool, scrape: int) -> None:
        times = self.grid[idx]
        self.series.append(Series("container_cpu_usage_seconds", "counter", labels, times, c))
        if dup:
            self.series.append(Series("container_cpu_usage_seconds", "counter",
                                      {**labels, "job": "kubelet-dup", "instance": "dup:10250"},
                                      times, c.copy()))
        if truth is None:
            return
        consecutive = np.diff(times) == scrape
        last, prev = c[1:], c[:-1]
        diff = np.where(last < prev, last, last - prev)
        rate = diff / (scrape * 1000 / 1000)
        ns, kind, workload = truth
        self._truth(idx[1:][consecutive], rate[consecutive], ns, kind, workload,
                    labels["pod"], labels["container"], "cpu")

    def mem(self, labels: dict[str, str], idx: np.ndarray, values: np.ndarray,
            truth: tuple[str, str, str] | None = None, dup: bool = False) -> None:
        times = self.grid[idx]
        self.series.append(Series("container_memory_working_set_bytes", "gauge", labels, times,
                                  values))
        if dup:
            self.series.append(Series("container_memory_working_set_bytes", "gauge",
                                      {**labels, "job": "kubelet-dup", "instance": "dup:10250"},
                                      times, values.copy()))
        if truth is not None:
            ns, kind, workload = truth
            self._truth(idx, values, ns, kind, workload, labels["pod"], labels["container"],
                        "memory")

    def gauge(self, family: str, labels: dict[str, str], idx: np.ndarray,
              values: np.ndarray | float = 1.0, kind: str = "gauge") -> None:
        vals = np.broadcast_to(np.asarray(values, dtype=float), idx.shape).copy()
        self.series.append(Series(family, kind, labels, self.grid[idx], vals))


def _pattern(rng: np.random.Generator, n: int, base: float, amp: float) -> np.ndarray:
    """A daily-ish cycle with noise and a few spikes: a realistic, non-trivial shape."""
    k = np.arange(n)
    shape = base * (1 + amp * np.sin(2 * np.pi * k / 1440)) * rng.lognormal(0, 0.25, n)
    for at in rng.integers(0, n - 3, 3):
        shape[at:at + 2] *= 3.0
    return np.round(shape, 6)


def _suffix(rng: np.random.Generator, n: int = 5) -> str:
    return "".join(rng.choice(list(SAFE), n))


def usage_dataset(seed: int = 7, many: int = 60) -> Dataset:
    """The known series of the three clusters (see the module doc)."""
    rng = np.random.default_rng(seed)
    b = _Builder()
    every = np.arange(N)
    mib = 1024.0 * 1024.0

    def cad(cluster: str, ns: str, pod: str, container: str, cid: str = "") -> dict[str, str]:
        lab = {"cluster": cluster, "namespace": ns, "pod": pod, "container": container,
               "job": "kubelet", "instance": "node-1:10250", "image": f"{container}:1",
               "id": f"/kubepods/burstable/pod-{pod}/{cid or container + '-1'}",
               "name": cid or container}
        if not container:
            lab.pop("image")
            lab["id"] = f"/kubepods/burstable/pod-{pod}"
        return lab

    def ksm(cluster: str, ns: str, **extra: str) -> dict[str, str]:
        return {"cluster": cluster, "namespace": ns, "job": "kube-state-metrics",
                "instance": "ksm:8080", **extra}

    def owners(cluster: str, ns: str, pod: str, kind: str, name: str, idx: np.ndarray) -> None:
        b.gauge("kube_pod_owner", ksm(cluster, ns, pod=pod, uid=f"uid-{pod}", owner_kind=kind,
                                      owner_name=name,
                                      owner_is_controller="true" if kind != "<none>"
                                      else "false"), idx)

    def restarts(cluster: str, ns: str, pod: str, container: str, idx: np.ndarray,
                 at: Sequence[int] = (), reasons: Sequence[str] = ()) -> None:
        counts = np.searchsorted(np.asarray(at, dtype=int), idx, side="right").astype(float)
        b.gauge("kube_pod_container_status_restarts", ksm(cluster, ns, pod=pod,
                container=container, uid=f"uid-{pod}"), idx, counts, kind="counter")
        # the last termination's reason, as one series per reason (KSM drops the
        # old reason's series when a new one appears)
        current = np.full(len(idx), "", dtype=object)
        for k, reason in zip(at, reasons, strict=True):
            current[idx >= k] = reason
        for reason in sorted(set(reasons)):
            b.gauge("kube_pod_container_status_last_terminated_reason",
                    ksm(cluster, ns, pod=pod, container=container, uid=f"uid-{pod}",
                        reason=reason), idx[current == reason])

    # ---- cluster prod, namespace shop ------------------------------------------
    P, NS = "prod", "shop"
    web = ("shop", "Deployment", "web")
    b.gauge("kube_replicaset_owner", ksm(P, NS, replicaset="web-7c9d8b6f5d",
                                         owner_kind="Deployment", owner_name="web",
                                         owner_is_controller="true"), every)
    # pod A: a counter reset (process restart inside the same series) at scrape 1000
    pa_ = "web-7c9d8b6f5d-4xkzq"
    b.cpu(cad(P, NS, pa_, "app"), every, _pattern(rng, N, 0.25, 0.6), resets=[1000],
          truth=web)
    b.mem(cad(P, NS, pa_, "app"), every, np.floor(_pattern(rng, N, 300, 0.2) * mib), truth=web)
    # ...and its pause container and pod cgroup, which must be ignored
    b.cpu(cad(P, NS, pa_, "POD"), every, np.full(N, 0.001))
    b.mem(cad(P, NS, pa_, "POD"), every, np.full(N, 1.0 * mib))
    b.cpu(cad(P, NS, pa_, ""), every, _pattern(rng, N, 0.9, 0.6))
    b.mem(cad(P, NS, pa_, ""), every, np.floor(_pattern(rng, N, 900, 0.2) * mib))
    owners(P, NS, pa_, "ReplicaSet", "web-7c9d8b6f5d", every)
    restarts(P, NS, pa_, "app", every, at=[1000], reasons=["Error"])
    # pod B: a 30-minute scrape gap and a NaN working-set sample
    pb = "web-7c9d8b6f5d-9mwpt"
    keep = every[(every < 1500) | (every >= 1530)]
    b.cpu(cad(P, NS, pb, "app"), keep, _pattern(rng, len(keep), 0.3, 0.6), truth=web)
    mem_b = np.floor(_pattern(rng, len(keep), 340, 0.2) * mib)
    mem_b[700] = np.nan
    b.mem(cad(P, NS, pb, "app"), keep, mem_b, truth=web)
    owners(P, NS, pb, "ReplicaSet", "web-7c9d8b6f5d", every)
    restarts(P, NS, pb, "app", every)

    # db-0: two OOM kills (scrapes 600 and 2000), each a new container (new `id`
    # series, counter from zero); also scraped by a second job (duplicates)
    db = ("shop", "StatefulSet", "db")
    cuts = [0, 600, 2000, N]
    for j in range(3):
        idx = every[cuts[j]:cuts[j + 1]]
        labels = cad(P, NS, "db-0", "postgres", cid=f"postgres-{j + 1}")
        b.cpu(labels, idx, _pattern(rng, len(idx), 0.5, 0.5), start=0.0, truth=db, dup=True)
        rise = np.linspace(400, 1000, len(idx)) if j < 2 else np.linspace(400, 800, len(idx))
        b.mem(labels, idx, np.floor((rise + rng.normal(0, 5, len(idx))) * mib), truth=db,
              dup=True)
    owners(P, NS, "db-0", "StatefulSet", "db", every)
    restarts(P, NS, "db-0", "postgres", every, at=[600, 2000], reasons=["OOMKilled"] * 2)

    # api: one pod, two containers
    api = ("shop", "Deployment", "api")
    pod = "api-5c7d9f8b4-x2x9k"
    b.gauge("kube_replicaset_owner", ksm(P, NS, replicaset="api-5c7d9f8b4",
                                         owner_kind="Deployment", owner_name="api",
                                         owner_is_controller="true"), every)
    for container, base, mbase in (("api", 0.8, 500), ("sidecar", 0.02, 40)):
        b.cpu(cad(P, NS, pod, container), every, _pattern(rng, N, base, 0.7), truth=api)
        b.mem(cad(P, NS, pod, container), every, np.floor(_pattern(rng, N, mbase, 0.1) * mib),
              truth=api)
        restarts(P, NS, pod, container, every)
    owners(P, NS, pod, "ReplicaSet", "api-5c7d9f8b4", every)

    # report: a CronJob's pod that ran one hour
    rep = ("shop", "CronJob", "report")
    idx = every[2400:2460]
    pod = "report-28471380-7bq2x"
    b.cpu(cad(P, NS, pod, "main"), idx, _pattern(rng, len(idx), 1.5, 0.1), truth=rep)
    b.mem(cad(P, NS, pod, "main"), idx, np.floor(_pattern(rng, len(idx), 700, 0.1) * mib),
          truth=rep)
    owners(P, NS, pod, "Job", "report-28471380", idx)
    b.gauge("kube_job_owner", ksm(P, NS, job_name="report-28471380", owner_kind="CronJob",
                                  owner_name="report", owner_is_controller="true"), idx)
    restarts(P, NS, pod, "main", idx)

    # canary: pods of a ReplicaSet owned by an Argo Rollout (only KSM knows)
    can = ("shop", "Rollout", "canary")
    pod = "canary-6d5f8b9c7-h4n2w"
    b.cpu(cad(P, NS, pod, "app"), every, _pattern(rng, N, 0.1, 0.3), truth=can)
    b.mem(cad(P, NS, pod, "app"), every, np.floor(_pattern(rng, N, 120, 0.1) * mib), truth=can)
    owners(P, NS, pod, "ReplicaSet", "canary-6d5f8b9c7", every)
    b.gauge("kube_replicaset_owner", ksm(P, NS, replicaset="canary-6d5f8b9c7",
                                         owner_kind="Rollout", owner_name="canary",
                                         owner_is_controller="true"), every)
    restarts(P, NS, pod, "app", every)

    # debug: a bare pod
    dbg = ("shop", "Pod", "debug")
    b.cpu(cad(P, NS, "debug", "shell"), every, np.full(N, 0.001), truth=dbg)
    b.mem(cad(P, NS, "debug", "shell"), every, np.full(N, 2.0 * mib), truth=dbg)
    owners(P, NS, "debug", "<none>", "<none>", every)
    restarts(P, NS, "debug", "shell", every)

    # ---- cluster prod, namespace many: single-pod Deployments, last 2 hours -------
    recent = every[-120:]
    for i in range(many):
        name = f"svc-{i:02d}"
        pod = f"{name}-{_suffix(rng, 9)}-{_suffix(rng)}"
        t = ("many", "Deployment", name)
        b.cpu(cad(P, "many", pod, "app"), recent, _pattern(rng, 120, 0.05 + i / 100, 0.2),
              truth=t)
        b.mem(cad(P, "many", pod, "app"), recent,
              np.floor(_pattern(rng, 120, 50 + i, 0.05) * mib), truth=t)

    # ---- cluster bare: cAdvisor only ---------------------------------------------
    for pod in ("canary-6d5f8b9c7-h4n2w", "nginx-7f8d9c6b5-q2w4z"):
        b.cpu(cad("bare", "edge", pod, "app"), recent, _pattern(rng, 120, 0.2, 0.2))
        b.mem(cad("bare", "edge", pod, "app"), recent, np.floor(_pattern(rng, 120, 80, 0.1)
                                                                 * mib))

    # ---- cluster slow: scraped every 2 minutes, 4 hours ---------------------------------
    slow = every[-240:][(N - 1 - every[-240:]) % 2 == 0]
    pod = "batch-7f8d9c6b5-q2w4z"
    t = ("slow", "Deployment", "batch")
    b.cpu(cad("slow", "slow", pod, "worker"), slow, _pattern(rng, len(slow), 0.4, 0.3),
          truth=t, scrape=2 * SCRAPE_S)
    b.mem(cad("slow", "slow", pod, "worker"), slow,
          np.floor(_pattern(rng, len(slow), 90, 0.1) * mib), truth=t)

    # ---- cluster ksm: kube-state-metrics only ---------------------------------------
    owners("ksm", "x", "lonely-7f8d9c6b5-q2w4z", "ReplicaSet", "lonely-7f8d9c6b5", recent)
    restarts("ksm", "x", "lonely-7f8d9c6b5-q2w4z", "app", recent)

    truth = pd.concat(b.truth, ignore_index=True)
    truth["time"] = truth["time"].astype("datetime64[ns, UTC]")
    events = pd.DataFrame([
        ("shop", "web-7c9d8b6f5d-4xkzq", "app", "Deployment", "web", 0, 1),
        ("shop", "db-0", "postgres", "StatefulSet", "db", 2, 2),
    ], columns=["namespace", "pod", "container", "workload_kind", "workload", "oom_kills",
                "restarts"])
    return Dataset(b.series, truth, events)


# -- a proxy in front of it -----------------------------------------------------------
@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]  # without Authorization
    authorized: bool


class AuthProxy:
    """Forwards to `upstream`; optionally requires a bearer token or answers errors.

    `fail` maps a path (e.g. "/api/v1/query") to (status, JSON body) answered
    instead of forwarding. `seen` records every request; `max_inflight` is the
    highest number of requests served at once.
    """

    def __init__(self, upstream: str, token: str | None = None) -> None:
        self.upstream = upstream
        self.token = token
        self.fail: dict[str, tuple[int, bytes]] = {}
        self.seen: list[Seen] = []
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _handle(self) -> None:
                with proxy._lock:
                    proxy.inflight += 1
                    proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
                try:
                    self._serve()
                finally:
                    with proxy._lock:
                        proxy.inflight -= 1

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                params: dict[str, list[str]] = {}
                for k, v in parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(
                        body.decode(), keep_blank_values=True):
                    params.setdefault(k, []).append(v)
                auth = self.headers.get("Authorization", "")
                ok = proxy.token is None or auth == f"Bearer {proxy.token}"
                headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
                with proxy._lock:
                    proxy.seen.append(Seen(self.command, parts.path, params, headers, ok))
                if not ok:
                    self._reply(401, b"Unauthorized\n", "text/plain")
                    return
                if parts.path in proxy.fail:
                    status, payload = proxy.fail[parts.path]
                    self._reply(status, payload, "application/json")
                    return
                req = urllib.request.Request(proxy.upstream + self.path, data=body or None,
                                             method=self.command)
                if body:
                    req.add_header("Content-Type", self.headers.get("Content-Type", ""))
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        self._reply(r.status, r.read(), r.headers.get("Content-Type", ""))
                except urllib.error.HTTPError as e:
                    self._reply(e.code, e.read(), e.headers.get("Content-Type", ""))

            def _reply(self, status: int, data: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AuthProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
