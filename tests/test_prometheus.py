"""PrometheusHistory against a real Prometheus serving series whose truth is known.

The session fixture imports `tests.support.prometheus.usage_dataset()` with
promtool and starts `prometheus` on a free local port; every query pins the
evaluation time (`at=END`), so the tests do not depend on today's date.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiops.errors import ParameterError, SourceError
from aiops.model import ClusterState
from aiops.sources.metrics_store import MetricsStore
from aiops.sources.prometheus import (
    MissingMetricsError,
    PrometheusError,
    PrometheusHistory,
    mixture_quantile,
    owner_from_name,
    pooled_quantile,
)
from aiops.usage import STAT_KEYS, FrameHistory, container_stats
from tests.support.prometheus import (
    END,
    WINDOW,
    AuthProxy,
    Dataset,
    PrometheusServer,
    free_port,
    require_binaries,
    usage_dataset,
    write_blocks,
)

PROD = 'cluster="prod"'
TOKEN = "s3cr3t-t0ken-value-for-tests"


@dataclass
class Prom:
    url: str
    data: Dataset

    def history(self, **kw: object) -> PrometheusHistory:
        kw.setdefault("at", END)
        kw.setdefault("selector", PROD)
        kw.setdefault("retries", 0)
        return PrometheusHistory(kw.pop("url", self.url), **kw)  # type: ignore[arg-type]

    def truth(self, *namespaces: str) -> pd.DataFrame:
        t = self.data.truth
        return t[t["namespace"].isin(namespaces)] if namespaces else t


@pytest.fixture(scope="session")
def prom(tmp_path_factory: pytest.TempPathFactory):
    binary, promtool = require_binaries()
    data = usage_dataset()
    root = tmp_path_factory.mktemp("prometheus")
    write_blocks(data.series, root / "data", root / "work", promtool)
    server = PrometheusServer(root / "data", binary)
    url = server.start()
    try:
        yield Prom(url, data)
    finally:
        server.stop()


def _same(expected: pd.DataFrame, got: pd.DataFrame, rtol: float = 1e-9) -> None:
    """Equal stats frames: keys and counts exactly, floats within rtol."""
    assert list(got.columns) == list(expected.columns)
    e = expected.reset_index(drop=True)
    g = got.reset_index(drop=True)
    assert g[STAT_KEYS].astype(str).values.tolist() == e[STAT_KEYS].astype(str).values.tolist()
    for c in ("samples", "pods", "first", "last"):
        assert g[c].tolist() == e[c].tolist(), c
    for c in e.columns[len(STAT_KEYS) + 4:]:
        np.testing.assert_allclose(g[c].to_numpy(float), e[c].to_numpy(float), rtol=rtol,
                                   err_msg=c)


# -- statistics --------------------------------------------------------------------
@pytest.mark.system
@pytest.mark.parametrize("strategy", ["hybrid", "points"])
def test_stats_equal_container_stats_of_the_truth(prom: Prom, strategy: str) -> None:
    got = prom.history(strategy=strategy).stats(window=WINDOW, namespaces=["shop", "many"])
    _same(container_stats(prom.truth("shop", "many")), got)


@pytest.mark.system
def test_known_p95_and_peak(prom: Prom) -> None:
    """The numbers right-sizing reads, against numpy on the generated series."""
    stats = prom.history().stats(window=WINDOW, namespaces=["shop"]).set_index(
        ["workload", "container", "resource"])
    t = prom.truth("shop")
    for wl, container in (("web", "app"), ("db", "postgres"), ("api", "api")):
        sel = t[(t["workload"] == wl) & (t["container"] == container)]
        cpu = np.sort(sel.loc[sel["resource"] == "cpu", "value"].to_numpy())
        mem = sel.loc[sel["resource"] == "memory", "value"].to_numpy()
        assert stats.loc[(wl, container, "cpu"), "p95"] == pytest.approx(
            np.quantile(cpu, 0.95), rel=1e-9)
        assert stats.loc[(wl, container, "memory"), "peak"] == mem.max()
        assert stats.loc[(wl, container, "cpu"), "samples"] == len(cpu)
    assert stats.loc[("web", "app", "cpu"), "pods"] == 2  # two replicas pooled


@pytest.mark.system
def test_pushdown_strategy_is_exact_except_pooled_quantiles(prom: Prom) -> None:
    h = prom.history(strategy="pushdown")
    got = h.stats(window=WINDOW, namespaces=["shop"])
    exp = container_stats(prom.truth("shop"))
    assert got[STAT_KEYS].values.tolist() == exp[STAT_KEYS].values.tolist()
    for c in ("samples", "pods", "first", "last"):
        assert got[c].tolist() == exp[c].tolist(), c
    np.testing.assert_allclose(got["mean"], exp["mean"], rtol=1e-9)
    np.testing.assert_allclose(got["peak"], exp["peak"], rtol=0)
    # one segment per group, except web (two pods) and db (three container instances)
    single = ~exp["workload"].isin(["web", "db"])
    for q in ("p50", "p90", "p95", "p99"):
        np.testing.assert_allclose(got.loc[single, q], exp.loc[single, q], rtol=1e-9)
        tol = 0.01 if q == "p95" else 0.05  # mixture of per-pod quantile functions
        np.testing.assert_allclose(got.loc[~single, q], exp.loc[~single, q], rtol=tol)
    assert any("quantile_over_time" in q.query for q in h.queries)
    # points are fetched only to repair the NaN sample of web's pod B
    fetched = [q for q in h.queries if q.purpose.startswith("fetch the")]
    assert fetched and all("9mwpt" in q.query and "|" not in q.query for q in fetched)


@pytest.mark.system
def test_nan_gap_and_counter_reset_are_handled(prom: Prom) -> None:
    h = prom.history()
    got = h.stats(window=WINDOW, namespaces=["shop"]).set_index(
        ["workload", "container", "resource"])
    t = prom.truth("shop")
    web = t[t["workload"] == "web"]
    assert not got.isna().any().any()  # pod B's NaN working-set sample was dropped
    # the gap leaves 30 scrapes out (31 CPU rates: the first after it needs two scrapes)
    assert got.loc[("web", "app", "memory"), "samples"] == 2 * 2820 - 30 - 1
    assert got.loc[("web", "app", "cpu"), "samples"] == 2 * 2819 - 31
    # the counter reset of pod A gives the interval's rate, not a negative or huge one
    assert got.loc[("web", "app", "cpu"), "peak"] == pytest.approx(
        web.loc[web["resource"] == "cpu", "value"].max(), rel=1e-12)
    assert web.loc[web["resource"] == "cpu", "value"].max() < 5
    # db-0: restarted twice (three `id` series) and scraped twice: counted once
    assert got.loc[("db", "postgres", "memory"), "samples"] == 2820
    assert got.loc[("db", "postgres", "cpu"), "samples"] == 2820 - 3


@pytest.mark.system
def test_workloads_from_kube_state_metrics(prom: Prom) -> None:
    got = prom.history().stats(window=WINDOW, namespaces=["shop"])
    pairs = set(zip(got["workload_kind"], got["workload"], strict=True))
    assert pairs == {("Deployment", "web"), ("Deployment", "api"), ("StatefulSet", "db"),
                     ("CronJob", "report"), ("Rollout", "canary"), ("Pod", "debug")}
    # the pause container and the pod cgroup (container "POD" / "") are not workloads
    assert set(got["container"]) == {"app", "api", "sidecar", "postgres", "main", "shell"}


# -- samples and the local store ----------------------------------------------------
@pytest.mark.system
def test_samples_and_store_give_the_same_numbers(prom: Prom, tmp_path: Path) -> None:
    h = prom.history()
    samples = h.samples(window=WINDOW, namespaces=["shop"])
    truth = prom.truth("shop")
    expected = container_stats(truth)
    _same(expected, container_stats(samples), rtol=1e-12)
    # the history through the local store: the truth, and what samples() returned
    for i, frame in enumerate((truth, samples)):
        store = MetricsStore(tmp_path / f"store{i}")
        store.append(frame)
        _same(expected, store.history().stats(window=WINDOW), rtol=1e-12)
    # and Prometheus' own stats: the recommendation inputs agree
    pushed = h.stats(window=WINDOW, namespaces=["shop"])
    for c in ("samples", "p95", "peak"):
        np.testing.assert_allclose(pushed[c].to_numpy(float), expected[c].to_numpy(float),
                                   rtol=1e-9)
    steps = {q.params.get("step") for q in h.queries if q.purpose.startswith("read ")}
    assert steps == {"60s"}


@pytest.mark.system
def test_samples_step_is_bounded(prom: Prom) -> None:
    h = prom.history()
    h.samples(window="30d", namespaces=["shop"])
    ranges = [q for q in h.queries if q.path.endswith("query_range")]
    assert ranges
    for q in ranges:
        step = int(q.params["step"].rstrip("s"))
        points = (float(q.params["end"]) - float(q.params["start"])) / step + 1
        assert step == 260 and points <= 10001  # max(60s, 30d / 10000)


# -- chunking -----------------------------------------------------------------------
@pytest.mark.system
def test_queries_are_chunked_with_bounded_concurrency(prom: Prom) -> None:
    with AuthProxy(prom.url) as proxy:
        h = prom.history(url=proxy.url, batch_pods=10, concurrency=2, strategy="hybrid")
        lock, inflight, peak = threading.Lock(), [0], [0]
        send = h._pool.request

        def counted(*args: object, **kw: object) -> object:
            with lock:
                inflight[0] += 1
                peak[0] = max(peak[0], inflight[0])
            try:
                return send(*args, **kw)
            finally:
                with lock:
                    inflight[0] -= 1

        h._pool.request = counted  # type: ignore[method-assign]
        got = h.stats(window=WINDOW, namespaces=["many"])
    _same(container_stats(prom.truth("many")), got)
    assert len(got) == 120  # 60 single-pod Deployments x cpu/memory
    per_purpose = Counter(re.sub(r" in .*", "", q.purpose) for q in h.queries)
    cpu_p95 = per_purpose["compute the quantile 0.95 of container_cpu_usage_seconds_total"]
    assert cpu_p95 == 6  # 60 pods / 10 per query
    for q in h.queries:
        m = re.search(r'pod=~"([^"]*)"', q.query)
        if m:
            assert len(m.group(1).split("|")) <= 10
    assert peak[0] == 2  # never more requests in flight than `concurrency`
    assert len(h.queries) == len(proxy.seen)


# -- events ---------------------------------------------------------------------------
@pytest.mark.system
def test_events_count_oom_kills_and_restarts(prom: Prom) -> None:
    ev = prom.history().events(WINDOW)
    assert list(ev.columns) == ["namespace", "pod", "container", "workload_kind", "workload",
                                "oom_kills", "restarts"]
    assert len(ev) == 8  # every shop container (kube-state-metrics knows them all)
    hit = ev[(ev["oom_kills"] > 0) | (ev["restarts"] > 0)].reset_index(drop=True)
    exp = prom.data.events.sort_values(["namespace", "pod", "container"])
    assert hit.to_dict("records") == exp.to_dict("records")
    one_ns = prom.history().events(WINDOW, namespaces=["shop"])
    assert len(one_ns) == 8


# -- missing exporters ----------------------------------------------------------------
@pytest.mark.system
def test_without_kube_state_metrics(prom: Prom) -> None:
    h = prom.history(selector='cluster="bare"')
    with pytest.raises(MissingMetricsError) as err:
        h.events(WINDOW)
    msg = str(err.value)
    assert "kube_pod_container_status_restarts_total" in msg and "kube-state-metrics" in msg
    assert "\n" not in msg
    stats = h.stats(window=WINDOW)
    assert set(zip(stats["workload_kind"], stats["workload"], strict=True)) == {
        ("Deployment", "canary"), ("Deployment", "nginx")}  # from the pod names
    assert any("kube_pod_owner" in n and "kube-state-metrics" in n for n in h.notes)
    # with the cluster state, its ownerReferences decide (an Argo Rollout here)
    state = ClusterState(source="test", objects={
        "Pod": [{"kind": "Pod", "metadata": {
            "namespace": "edge", "name": "canary-6d5f8b9c7-h4n2w", "ownerReferences": [
                {"kind": "ReplicaSet", "name": "canary-6d5f8b9c7", "controller": True}]}}],
        "ReplicaSet": [{"kind": "ReplicaSet", "metadata": {
            "namespace": "edge", "name": "canary-6d5f8b9c7", "ownerReferences": [
                {"kind": "Rollout", "name": "canary", "controller": True}]}}]})
    stats = prom.history(selector='cluster="bare"', state=state).stats(window=WINDOW)
    assert ("Rollout", "canary") in set(zip(stats["workload_kind"], stats["workload"],
                                            strict=True))


@pytest.mark.system
def test_without_cadvisor(prom: Prom) -> None:
    h = prom.history(selector='cluster="ksm"')
    for call in (lambda: h.stats(window=WINDOW), lambda: h.samples(window=WINDOW)):
        with pytest.raises(MissingMetricsError) as err:
            call()
        msg = str(err.value)
        assert "container_cpu_usage_seconds_total" in msg
        assert "container_memory_working_set_bytes" in msg
        assert "cAdvisor via the kubelet" in msg and "\n" not in msg
    assert isinstance(err.value, SourceError)
    check = h.check(WINDOW)
    assert check["kube_pod_owner"] and not check["container_cpu_usage_seconds_total"]


# -- transport errors -------------------------------------------------------------------
def test_unreachable_url_names_it() -> None:
    port = free_port()
    h = PrometheusHistory(f"http://127.0.0.1:{port}", at=END, retries=0, timeout=5)
    with pytest.raises(PrometheusError) as err:
        h.stats(window=WINDOW)
    msg = str(err.value)
    assert f"cannot reach Prometheus at http://127.0.0.1:{port}" in msg
    assert "connection refused" in msg and "\n" not in msg


def test_unresolvable_host_says_dns() -> None:
    h = PrometheusHistory("http://prometheus.invalid:9090", at=END, retries=0, timeout=5)
    with pytest.raises(PrometheusError, match=r"could not be resolved \(DNS\)"):
        h.check()


def test_invalid_options() -> None:
    with pytest.raises(ParameterError, match="invalid Prometheus URL"):
        PrometheusHistory("prometheus:9090")
    with pytest.raises(ParameterError, match="strategy"):
        PrometheusHistory("http://x:9090", strategy="magic")
    with pytest.raises(ParameterError, match="window"):
        PrometheusHistory("http://x:9090").stats(window="-3d")


@pytest.mark.system
def test_wrong_path_is_a_404_message(prom: Prom) -> None:
    h = prom.history(url=prom.url + "/not-prometheus")
    with pytest.raises(PrometheusError) as err:
        h.stats(window=WINDOW)
    msg = str(err.value)
    assert "/not-prometheus/api/v1/" in msg and "answered 404" in msg
    assert "does not serve the Prometheus HTTP API" in msg


@pytest.mark.system
def test_bearer_token_is_sent_and_never_shown(prom: Prom, tmp_path: Path) -> None:
    with AuthProxy(prom.url, token=TOKEN) as proxy:
        with pytest.raises(PrometheusError) as err:
            prom.history(url=proxy.url).check(WINDOW)
        assert "rejected the credentials (401)" in str(err.value)
        bad = prom.history(url=proxy.url, token="wrong-token-123456")
        with pytest.raises(PrometheusError) as err:
            bad.check(WINDOW)
        assert "wrong-token-123456" not in str(err.value) + repr(bad)
        good = prom.history(url=proxy.url, token=TOKEN, headers={"X-Scope-OrgID": "team-a"})
        n0 = len(proxy.seen)
        got = good.stats(window=WINDOW, namespaces=["shop"])
        seen_good = proxy.seen[n0:]
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        from_file = prom.history(url=proxy.url, token_file=token_file).stats(
            window=WINDOW, namespaces=["shop"])
        seen_file = proxy.seen[n0 + len(seen_good):]
    _same(container_stats(prom.truth("shop")), got)
    _same(got, from_file, rtol=0)
    assert len(seen_good) == len(good.queries)
    assert all(s.authorized and s.headers.get("X-Scope-OrgID") == "team-a" for s in seen_good)
    assert seen_file and all(s.authorized for s in seen_file)
    assert TOKEN not in repr(good)
    assert TOKEN not in json.dumps([q.__dict__ for q in good.queries], default=str)


@pytest.mark.system
@pytest.mark.parametrize(("status", "body", "expect"), [
    (503, {"status": "error", "errorType": "timeout",
           "error": "query timed out in expression evaluation"}, "query timed out"),
    (422, {"status": "error", "errorType": "execution",
           "error": "query processing would load too many samples into memory"},
     "max-samples"),
    (200, "<html>login</html>", "did not answer with Prometheus JSON"),
])
def test_server_errors_name_the_query_purpose(prom: Prom, status: int, body: object,
                                              expect: str) -> None:
    with AuthProxy(prom.url) as proxy:
        payload = json.dumps(body).encode() if isinstance(body, dict) else str(body).encode()
        proxy.fail["/api/v1/query"] = (status, payload)
        with pytest.raises(PrometheusError) as err:
            prom.history(url=proxy.url).stats(window=WINDOW, namespaces=["shop"])
    msg = str(err.value)
    assert expect in msg and "\n" not in msg
    if status != 200:
        assert re.search(r"could not (compute|fetch) the .*container_", msg)


# -- pure functions ---------------------------------------------------------------------
@pytest.mark.parametrize(("pod", "owner"), [
    ("web-7c9d8b6f5d-4xkzq", ("Deployment", "web")),
    ("report-28471380-7bq2x", ("CronJob", "report")),
    ("db-0", ("StatefulSet", "db")),
    ("node-agent-x7k2p", ("Unknown", "node-agent")),
    ("debug", ("Pod", "debug")),
])
def test_owner_from_name(pod: str, owner: tuple[str, str]) -> None:
    assert owner_from_name(pod) == owner


def test_mixture_quantile_pools_like_the_samples() -> None:
    rng = np.random.default_rng(3)
    grid = sorted({0.0, 1.0, 0.1, 0.25, 0.5, 0.75, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.995})
    pods = [rng.lognormal(0, 0.5, n) * s for n, s in ((4000, 1.0), (6000, 1.1), (2000, 0.9))]
    parts = [(len(p), [(lv, pooled_quantile(np.sort(p), lv)) for lv in grid]) for p in pods]
    pooled = np.sort(np.concatenate(pods))
    for q in (0.5, 0.9, 0.95, 0.99):
        assert mixture_quantile(parts, q) == pytest.approx(pooled_quantile(pooled, q), rel=0.02)
    # identical pods: exact; a constant pod is a jump, not a ramp
    same = [(100, [(lv, pooled_quantile(np.sort(pods[0]), lv)) for lv in grid])] * 3
    assert mixture_quantile(same, 0.95) == pytest.approx(pooled_quantile(np.sort(pods[0]),
                                                                           0.95))
    flat = [(100, [(lv, 5.0) for lv in grid]), (100, [(lv, 5.0) for lv in grid])]
    assert mixture_quantile(flat, 0.5) == pytest.approx(5.0)


def test_pooled_quantile_matches_pandas() -> None:
    v = np.sort(np.random.default_rng(1).random(1001))
    for q in (0.0, 0.5, 0.95, 0.999, 1.0):
        assert pooled_quantile(v, q) == pd.Series(v).quantile(q)


def test_frame_history_window_semantics_shared_with_the_store(tmp_path: Path) -> None:
    """Store and FrameHistory agree on the window end (the newest sample)."""
    data = usage_dataset(many=2)
    store = MetricsStore(tmp_path / "s")
    store.append(data.truth)
    for window in ("2d", "6h"):
        _same(FrameHistory(data.truth).stats(window=window),
              store.history().stats(window=window), rtol=1e-12)  # mean: 1 ulp


@pytest.mark.system
def test_sparse_scrapes_widen_the_step(prom: Prom) -> None:
    """Scrapes every 2 min: a 1-min step would leave irate without two scrapes."""
    h = prom.history(selector='cluster="slow"')
    got = h.stats(window=WINDOW)
    _same(container_stats(prom.truth("slow")), got)
    assert got["samples"].tolist() == [119, 120]  # CPU rates need two scrapes
    assert any("[172800s:120s]" in q.query for q in h.queries)
    _same(container_stats(prom.truth("slow")), container_stats(h.samples(window=WINDOW)),
          rtol=1e-12)


@pytest.mark.system
def test_unknown_namespace_is_empty_not_an_error(prom: Prom) -> None:
    h = prom.history()
    got = h.stats(window=WINDOW, namespaces=["no-such-namespace"])
    assert got.empty and list(got.columns) == list(container_stats(prom.truth()).columns)
    assert h.samples(window=WINDOW, namespaces=["no-such-namespace"]).empty
    assert h.events(WINDOW, namespaces=["no-such-namespace"]).empty
