"""The local metrics store: day partitions, atomic appends, compaction, retention,
the UsageHistory it serves, and sampling metrics.k8s.io PodMetrics into it."""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from aiops.errors import ParameterError, SourceError
from aiops.model import ClusterState
from aiops.sources import open_source
from aiops.sources.metrics_store import (
    MetricsStore,
    Poll,
    metrics_loader,
    podmetrics_frame,
    sample_loop,
    sample_once,
)
from aiops.usage import USAGE_COLUMNS, FrameHistory, stats_columns


@pytest.fixture(scope="module")
def demo() -> ClusterState:
    return open_source("demo")


@pytest.fixture(scope="module")
def demo_history(demo: ClusterState) -> pd.DataFrame:
    return demo.history


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory,
               demo_history: pd.DataFrame) -> MetricsStore:
    store = MetricsStore(tmp_path_factory.mktemp("demo-store"))
    store.append(demo_history)
    return store


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    out = df[USAGE_COLUMNS].astype({c: str for c in USAGE_COLUMNS[1:-1]})
    out["time"] = out["time"].astype("datetime64[ns, UTC]")
    return out.sort_values(USAGE_COLUMNS).reset_index(drop=True)


# -- the demo's history through the store -------------------------------------------
@pytest.mark.parametrize("window", [None, "14d", "1d", "36h", "2h"])
@pytest.mark.parametrize("namespaces", [None, ["todo"], ["kube-system", "todo"]])
def test_stats_identical_to_frame_history(demo_history: pd.DataFrame, demo_store: MetricsStore,
                                          window: str | None,
                                          namespaces: list[str] | None) -> None:
    expected = FrameHistory(demo_history).stats(window=window, namespaces=namespaces)
    got = demo_store.history().stats(window=window, namespaces=namespaces)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_other_quantiles(demo_history: pd.DataFrame, demo_store: MetricsStore) -> None:
    qs = (0.0, 0.25, 0.999, 1.0)
    pd.testing.assert_frame_equal(demo_store.history().stats(quantiles=qs),
                                  FrameHistory(demo_history).stats(quantiles=qs),
                                  check_exact=True)


def test_samples_round_trip(demo_history: pd.DataFrame, demo_store: MetricsStore) -> None:
    got = demo_store.history().samples()
    pd.testing.assert_frame_equal(_rows(got), _rows(demo_history))
    assert str(got["time"].dtype) == "datetime64[ns, UTC]"
    week = demo_store.history().samples(window="7d", namespaces=["todo"])
    pd.testing.assert_frame_equal(
        _rows(week), _rows(FrameHistory(demo_history).samples(window="7d",
                                                              namespaces=["todo"])))


def test_partitioned_by_day(demo_history: pd.DataFrame, demo_store: MetricsStore) -> None:
    days = [p.day for p in demo_store.partitions()]
    expected = sorted({t.strftime("%Y-%m-%d") for t in demo_history["time"]})
    assert days == expected and len(days) == 15
    for p in demo_store.partitions():
        files = list(p.path.glob("*.parquet"))
        assert len(files) == 1
        times = pq.read_table(files[0], columns=["time"])["time"].to_pandas()
        assert (times.dt.strftime("%Y-%m-%d") == p.day).all()


def test_reads_only_the_window_partitions(demo_store: MetricsStore) -> None:
    newest = demo_store.newest_ns()
    assert newest is not None
    files = demo_store.files(since_ns=newest - 3600 * 10**9)
    assert len(files) == 1 and "date=2026-11-23" in str(files[0])


def test_empty_store(tmp_path: Path) -> None:
    h = MetricsStore(tmp_path / "nothing").history()
    assert list(h.stats(window="7d").columns) == stats_columns()
    assert h.stats().empty and h.samples(window="1d").empty


def test_at_pins_the_window_end(demo_history: pd.DataFrame, demo_store: MetricsStore) -> None:
    at = pd.Timestamp("2026-11-20T12:00:00Z")
    got = demo_store.history(at=at).stats(window="2d")
    sub = demo_history[demo_history["time"] <= at]
    pd.testing.assert_frame_equal(got, FrameHistory(sub).stats(window="2d"), check_exact=True)


# -- writes -----------------------------------------------------------------------------
def _day_frame(day: str, value: float = 1.0, n: int = 6, pod: str = "web-1") -> pd.DataFrame:
    t = pd.date_range(f"{day}T00:00:00Z", periods=n, freq="1h")
    return pd.DataFrame({"time": t, "namespace": "ns", "workload_kind": "Deployment",
                         "workload": "web", "pod": pod, "container": "app",
                         "resource": "cpu", "value": value})


def test_append_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MetricsStore(tmp_path / "s")
    store.append(_day_frame("2026-01-01"))
    before = store.history().samples()
    import aiops.sources.metrics_store as ms

    real = ms.pq.write_table

    def crash(table, where, **kw):  # the disk fills up half-way through the file
        real(table.slice(0, 1), where, **kw)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ms.pq, "write_table", crash)
    with pytest.raises(OSError):
        store.append(_day_frame("2026-01-01", value=2.0))
    monkeypatch.undo()
    day = tmp_path / "s" / "date=2026-01-01"
    assert [f.name for f in day.iterdir() if f.name.startswith(".")] == []  # no temp left
    pd.testing.assert_frame_equal(store.history().samples(), before)
    # a temp file of a writer that died is invisible to readers
    (day / ".part-00000000000000000001-dead.parquet.tmp").write_bytes(b"PAR1 garbage")
    pd.testing.assert_frame_equal(store.history().samples(), before)


def test_compaction_keeps_every_row(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "s", compact_after=3)
    frames = [_day_frame("2026-01-01", value=float(i), pod=f"web-{i}") for i in range(7)]
    for f in frames:
        store.append(f)
    day = tmp_path / "s" / "date=2026-01-01"
    assert len(list(day.glob("*.parquet"))) < 3
    assert list(day.glob("cpart-*.parquet"))
    pd.testing.assert_frame_equal(_rows(store.history().samples()),
                                  _rows(pd.concat(frames, ignore_index=True)))
    # a crash between the compaction's rename and its clean-up leaves superseded
    # parts behind: readers ignore them (no double counting)
    upto = int(next(day.glob("cpart-*.parquet")).name.split("-")[1])
    stale = day / f"part-{upto - 1:020d}-0badc0de.parquet"
    pq.write_table(pq.read_table(next(day.glob("cpart-*.parquet"))), stale)
    assert store.history().stats()["samples"].sum() == 7 * 6
    store.compact()
    assert not stale.exists()
    assert store.history().stats()["samples"].sum() == 7 * 6


def test_retention_prunes_whole_old_days(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "s", retention="3d")
    for day in ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"):
        store.append(_day_frame(day))
    assert [p.day for p in store.partitions()] == ["2026-01-03", "2026-01-04", "2026-01-05"]
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".trash")]
    # measured from the newest data, and the newest partition always stays
    tiny = MetricsStore(tmp_path / "s", retention="1h")
    assert tiny.prune() == ["2026-01-03", "2026-01-04"]
    assert [p.day for p in tiny.partitions()] == ["2026-01-05"]
    assert tiny.prune() == []
    assert tiny.history().stats()["samples"].sum() == 6


def test_invalid_settings(tmp_path: Path) -> None:
    with pytest.raises(ParameterError):
        MetricsStore(tmp_path, retention="forever")
    with pytest.raises(ParameterError):
        sample_loop(lambda: None, MetricsStore(tmp_path), every="0s", iterations=1)
    with pytest.raises(ParameterError, match="lacks columns"):
        MetricsStore(tmp_path).append(pd.DataFrame({"time": [], "value": []}))


# -- sampling PodMetrics ----------------------------------------------------------------
def test_sample_once_from_the_demo_podmetrics(demo: ClusterState, demo_history: pd.DataFrame,
                                              tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "s")
    rows = sample_once(demo, store)
    pms = demo.kind("PodMetrics")
    n_containers = sum(len(pm["containers"]) for pm in pms)
    assert len(rows) == 2 * n_containers
    assert store.history().stats()["samples"].sum() == len(rows)
    # the demo's last history sample is what metrics-server reports
    last = demo_history[demo_history["time"] == demo_history["time"].max()]
    m = rows.merge(last, on=["namespace", "pod", "container", "resource"],
                   suffixes=("", "_hist"))
    assert len(m) == len(rows)
    assert (m["workload"] == m["workload_hist"].astype(str)).all()
    assert (m["workload_kind"] == m["workload_kind_hist"].astype(str)).all()
    cpu = m[m["resource"] == "cpu"]
    mem = m[m["resource"] == "memory"]
    np.testing.assert_allclose(cpu["value"], cpu["value_hist"], atol=1e-9)
    assert ((mem["value_hist"] - mem["value"]).abs() < 1024).all()
    assert (rows["time"] == pd.Timestamp(pms[0]["timestamp"])).any()


def _state_at(demo: ClusterState, when: str) -> ClusterState:
    pms = copy.deepcopy(demo.kind("PodMetrics"))
    for pm in pms:
        pm["timestamp"] = when
    return ClusterState(source="test", objects={"Pod": demo.kind("Pod"),
                                                "ReplicaSet": demo.kind("ReplicaSet"),
                                                "Deployment": demo.kind("Deployment"),
                                                "PodMetrics": pms})


def test_sample_loop_survives_a_failed_poll(demo: ClusterState, tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "s")
    calls = iter(["2026-11-23T08:00:00Z", "boom", "2026-11-23T08:01:00Z",
                  "2026-11-23T08:01:00Z"])  # the last: metrics-server did not refresh yet

    def load() -> ClusterState:
        when = next(calls)
        if when == "boom":
            raise SourceError("the Kubernetes API is unreachable")
        return _state_at(demo, when)

    res = sample_loop(load, store, every=0.01, iterations=4)
    per_poll = 2 * sum(len(pm["containers"]) for pm in demo.kind("PodMetrics"))
    assert (res.polls, res.failures, res.rows) == (4, 1, 2 * per_poll)
    stats = store.history().stats()
    assert stats["samples"].sum() == 2 * per_poll
    assert set(store.history().samples()["time"].astype(str)) == {
        "2026-11-23 08:00:00+00:00", "2026-11-23 08:01:00+00:00"}


def test_sample_loop_stops_on_event(demo: ClusterState, tmp_path: Path) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def on_poll(poll: Poll) -> None:
        seen.append(poll.number)
        threading.Timer(0.2, stop.set).start()  # e.g. Ctrl-C while waiting for the tick

    t0 = time.monotonic()
    res = sample_loop(lambda: demo, MetricsStore(tmp_path / "s"), every="1h",
                      stop_event=stop, on_poll=on_poll)
    assert time.monotonic() - t0 < 30  # the 1 h wait was interrupted
    assert res.polls == 1 and seen == [1]
    assert res.rows == 2 * sum(len(pm["containers"]) for pm in demo.kind("PodMetrics"))


def test_no_metrics_server_is_a_clear_error(tmp_path: Path) -> None:
    state = ClusterState(source="kube", unavailable={
        "PodMetrics": "API metrics.k8s.io/v1beta1 is not served (metrics-server is not "
                      "installed)"})
    with pytest.raises(SourceError, match="metrics-server"):
        sample_once(state, MetricsStore(tmp_path / "s"))


def test_podmetrics_of_unknown_pods_use_the_name(tmp_path: Path) -> None:
    state = ClusterState(source="test", objects={"PodMetrics": [{
        "kind": "PodMetrics", "metadata": {"namespace": "ns", "name": "api-5c7d9f8b4-x2x9k"},
        "timestamp": "2026-01-01T00:00:00Z", "window": "15s",
        "containers": [{"name": "api", "usage": {"cpu": "250m", "memory": "128Mi"}},
                       {"name": "broken", "usage": {"cpu": "n/a"}}]}]})
    df = podmetrics_frame(state)
    assert df[["workload_kind", "workload", "container", "resource", "value"]].values.tolist() \
        == [["Deployment", "api", "api", "cpu", 0.25],
            ["Deployment", "api", "api", "memory", 128 * 2**20]]


def test_metrics_loader_for_a_snapshot_source() -> None:
    load = metrics_loader("demo")
    assert load().kind("PodMetrics")


def test_metrics_loader_lists_only_what_sampling_needs(tmp_path: Path) -> None:
    from aiops.sources.demo import DATA_DIR
    from tests.support.kube_replay import KubeReplay

    with KubeReplay(DATA_DIR) as server:
        load = metrics_loader("kube:replay",
                              kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")))
        state = load()
        paths = {r.path for r in server.requests}
    assert state.kind("PodMetrics") and state.kind("Pod")
    assert not any("/events" in p or "/log" in p or "secrets" in p for p in paths)
    rows = sample_once(state, MetricsStore(tmp_path / "s"))
    demo_rows = podmetrics_frame(open_source("demo"))
    pd.testing.assert_frame_equal(_rows(rows), _rows(demo_rows))


# -- container_stats: one grouped implementation, the numbers pandas gives ---------------
def _pandas_stats(df: pd.DataFrame, quantiles=(0.5, 0.9, 0.95, 0.99)) -> pd.DataFrame:
    """The former container_stats (a pandas groupby), kept as the reference."""
    from aiops.usage import STAT_KEYS, check_usage, qcol

    df = check_usage(df)
    keys = {k: df[k].astype(str) for k in STAT_KEYS}
    g = df.assign(**keys).groupby(STAT_KEYS, observed=True, sort=True)
    out = g["value"].agg(samples="count", mean="mean", peak="max")
    out["pods"] = g["pod"].nunique()
    out["first"] = g["time"].min()
    out["last"] = g["time"].max()
    qs = g["value"].quantile(list(quantiles)).unstack()
    qs.columns = [qcol(q) for q in qs.columns]
    return out.join(qs).reset_index()[stats_columns(quantiles)]


def test_container_stats_equals_the_pandas_groupby_on_the_demo(
        demo_history: pd.DataFrame) -> None:
    from aiops.usage import container_stats

    for qs in ((0.5, 0.9, 0.95, 0.99), (0.0, 0.25, 0.999, 1.0)):
        pd.testing.assert_frame_equal(container_stats(demo_history, qs),
                                      _pandas_stats(demo_history, qs), check_exact=True)


def test_container_stats_on_unsorted_plain_frames() -> None:
    """Object (not categorical) keys, shuffled rows, gaps (NaN), repeated pods."""
    from aiops.usage import container_stats

    rng = np.random.default_rng(7)
    n = 20_000
    df = pd.DataFrame({
        "time": pd.Timestamp("2026-01-01", tz="UTC")
        + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
        "namespace": rng.choice(["a", "b", "c"], n),
        "workload_kind": "Deployment",
        "workload": rng.choice(["web", "api", "db"], n),
        "pod": rng.choice([f"p{i}" for i in range(7)], n),
        "container": rng.choice(["app", "sidecar"], n),
        "resource": rng.choice(["cpu", "memory"], n),
        "value": rng.lognormal(0, 2, n)})
    df.loc[rng.random(n) < 0.05, "value"] = np.nan
    got = container_stats(df)
    expected = _pandas_stats(df)
    pd.testing.assert_frame_equal(got.drop(columns="mean"), expected.drop(columns="mean"),
                                  check_exact=True)
    # pandas sums with Kahan compensation, we in extended precision: last bit at most
    np.testing.assert_allclose(got["mean"], expected["mean"], rtol=4e-16, atol=0)
