"""`aiops metrics sample|show` and `--store` on the readers, end to end.

The sampler runs through the real entry point (`aiops.cli.main`, or the console
script in a subprocess for signals) against the local Kubernetes API replay,
which serves the demo cluster's PodMetrics at /apis/metrics.k8s.io/v1beta1/pods
as metrics-server does; the store is then read back as the readers read it.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from aiops.cli import main
from aiops.sources.demo import DATA_DIR
from aiops.sources.metrics_store import MetricsStore, podmetrics_frame
from aiops.sources.snapshot import load_snapshot
from tests.support.kube_replay import KubeReplay, Request

BIN = Path(sys.executable).parent / "aiops"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  pods (\d+)  containers (\d+)  rows (\d+)")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("AIOPS_METRICS_STORE", raising=False)
    yield


@pytest.fixture(scope="module")
def demo_rows() -> pd.DataFrame:
    """What metrics-server reports for the demo cluster, as tidy rows."""
    return podmetrics_frame(load_snapshot(DATA_DIR))


def ticking(start: str = "2026-11-23T00:00:00Z", step: timedelta = timedelta(minutes=1)
            ) -> Callable[[], datetime]:
    """A metrics-server clock: every PodMetrics list is one scrape `step` later."""
    t = [datetime.fromisoformat(start.replace("Z", "+00:00")) - step]

    def now() -> datetime:
        t[0] += step
        return t[0]

    return now


def serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kw) -> KubeReplay:
    server = KubeReplay(DATA_DIR, **kw)
    monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
    return server


def sample(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["metrics", "sample", "--source", "kube:replay", *args])
    cap = capsys.readouterr()
    return code, [line for line in cap.out.splitlines() if line.strip()], cap.err


def stored(path: Path) -> pd.DataFrame:
    return MetricsStore(path).history().samples()


# -- sampling ---------------------------------------------------------------------------
def test_once_stores_what_metrics_server_reports(monkeypatch, tmp_path, capsys,
                                                 demo_rows) -> None:
    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path) as server:
        code, lines, err = sample(capsys, "--store", str(store), "--once")
        paths = {r.path for r in server.requests}
    assert code == 0, err
    assert "/apis/metrics.k8s.io/v1beta1/pods" in paths
    assert not any("/log" in p or "events" in p or "secrets" in p for p in paths)
    assert len(lines) == 1
    pods, containers, rows = map(int, LINE.match(lines[0]).groups())
    assert (pods, containers, rows) == (demo_rows["pod"].nunique(),
                                        len(demo_rows) // 2, len(demo_rows))
    got = stored(store)
    assert len(got) == len(demo_rows)
    key = ["namespace", "pod", "container", "resource"]
    m = got.astype({c: str for c in key}).merge(demo_rows, on=key, suffixes=("", "_pm"))
    assert len(m) == len(demo_rows)
    assert (m["value"] == m["value_pm"]).all() and (m["time"] == m["time_pm"]).all()
    assert (m["workload"].astype(str) == m["workload_pm"]).all()


def test_namespace_filter_lists_only_those_namespaces(monkeypatch, tmp_path, capsys,
                                                      demo_rows) -> None:
    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path) as server:
        code, _, err = sample(capsys, "--store", str(store), "--once", "-n", "todo")
        paths = {r.path for r in server.requests}
    assert code == 0, err
    assert "/apis/metrics.k8s.io/v1beta1/namespaces/todo/pods" in paths
    assert "/apis/metrics.k8s.io/v1beta1/pods" not in paths and "/api/v1/pods" not in paths
    got = stored(store)
    assert set(got["namespace"].astype(str)) == {"todo"}
    assert len(got) == (demo_rows["namespace"] == "todo").sum()


def test_once_again_without_a_new_scrape_stores_nothing_twice(monkeypatch, tmp_path, capsys,
                                                               demo_rows) -> None:
    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path):  # the snapshot's timestamps never move
        assert sample(capsys, "--store", str(store), "--once")[0] == 0
        code, lines, _ = sample(capsys, "--store", str(store), "--once")
    assert code == 0 and "rows 0 (metrics-server has not refreshed" in lines[0]
    assert len(stored(store)) == len(demo_rows)


def test_short_loop(monkeypatch, tmp_path, capsys, demo_rows) -> None:
    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path, metrics_clock=ticking()):
        t0 = time.monotonic()
        code, lines, err = sample(capsys, "--store", str(store), "--every", "0.2s",
                                  "--count", "3")
        took = time.monotonic() - t0
    assert code == 0, err
    assert len(lines) == 3 and all(LINE.match(line) for line in lines)
    assert [int(LINE.match(line).group(3)) for line in lines] == [len(demo_rows)] * 3
    assert took >= 0.4  # two waits of 0.2 s between three polls
    assert "3 polls, 0 failed" in err
    got = stored(store)
    assert len(got) == 3 * len(demo_rows)
    assert sorted(got["time"].astype(str).unique()) == [
        "2026-11-23 00:00:00+00:00", "2026-11-23 00:01:00+00:00", "2026-11-23 00:02:00+00:00"]
    assert MetricsStore(store).describe()["samples"] == 3


def test_retention_drops_old_days(monkeypatch, tmp_path, capsys, demo_rows) -> None:
    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path, metrics_clock=ticking(step=timedelta(hours=12))):
        code, lines, err = sample(capsys, "--store", str(store), "--every", "0.01s",
                                  "--count", "6", "--retention", "1d")
    assert code == 0, err
    assert len(lines) == 6
    # scrapes on 23 Nov 00:00, 12:00, 24 Nov 00:00, 12:00, 25 Nov 00:00, 12:00
    assert [p.day for p in MetricsStore(store).partitions()] == ["2026-11-25"]
    assert len(stored(store)) == 2 * len(demo_rows)


def test_a_failed_poll_loses_nothing_and_the_loop_goes_on(monkeypatch, tmp_path, capsys,
                                                          demo_rows) -> None:
    polls = [0]  # each poll starts with one GET /version

    def metrics_server_restarting(req: Request) -> bool:
        if req.path == "/version":
            polls[0] += 1
        return polls[0] == 2 and req.path.startswith("/apis/metrics.k8s.io/")

    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path, metrics_clock=ticking(),
               fail_when=metrics_server_restarting):
        code, lines, err = sample(capsys, "--store", str(store), "--every", "0.2s",
                                  "--count", "3")
    assert code == 0
    assert len(lines) == 2  # polls 1 and 3
    failed = [line for line in err.splitlines() if "poll 2 failed" in line]
    assert len(failed) == 1
    assert "PodMetrics are not available from kube:replay: error 503" in failed[0]
    assert "retrying in 0.2s" in failed[0]
    assert "3 polls, 1 failed" in err
    assert len(stored(store)) == 2 * len(demo_rows)


def test_a_stopped_api_server_fails_once_cleanly(monkeypatch, tmp_path, capsys,
                                                 demo_rows) -> None:
    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path):
        assert sample(capsys, "--store", str(store), "--once")[0] == 0
    before = stored(store)
    code, lines, err = sample(capsys, "--store", str(store), "--once")  # server is gone
    assert code == 2 and not lines
    assert "poll 1 failed: cannot reach the Kubernetes API" in err
    assert "connection refused" in err and "Traceback" not in err
    pd.testing.assert_frame_equal(stored(store), before)
    # a loop against it backs off, then says so and exits 2 when no poll succeeded
    code, _, err = sample(capsys, "--store", str(store), "--every", "0.05s", "--count", "3")
    assert code == 2
    assert [m.group(1) for m in re.finditer(r"retrying in (\S+)s", err)] == ["0.05", "0.1"]
    pd.testing.assert_frame_equal(stored(store), before)


def test_an_unusable_kubeconfig_stops_the_loop_at_once(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    t0 = time.monotonic()
    code, _, err = sample(capsys, "--store", str(tmp_path / "s"), "--every", "1h")
    assert code == 2 and time.monotonic() - t0 < 10
    assert "kubeconfig" in err and "not found" in err and "Traceback" not in err


@pytest.mark.parametrize(("args", "message"), [
    (["--every", "soon"], "invalid sampling interval 'soon'"),
    (["--every", "0s"], "invalid sampling interval '0s'"),
    (["--retention", "forever-ish"], "invalid retention 'forever-ish'"),
    (["--once", "--count", "3"], "--once and --count disagree"),
])
def test_bad_parameters_exit_2(tmp_path, capsys, args, message) -> None:
    code, _, err = sample(capsys, "--store", str(tmp_path / "s"), *args)
    assert code == 2 and message in err
    assert not (tmp_path / "s").exists()


def test_sigterm_stops_after_the_current_write(tmp_path, demo_rows) -> None:
    store = tmp_path / "store"
    with KubeReplay(DATA_DIR, metrics_clock=ticking()) as server:
        env = {"KUBECONFIG": str(server.write_kubeconfig(tmp_path / "kc")),
               "NO_PROXY": "127.0.0.1", "PATH": "/usr/bin:/bin"}
        proc = subprocess.Popen([str(BIN), "metrics", "sample", "--source", "kube:replay",
                                 "--store", str(store), "--every", "0.2s"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        deadline = time.monotonic() + 60
        while len(MetricsStore(store).files()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping after the current poll" in err
    n = len([line for line in out.splitlines() if LINE.match(line)])
    assert n >= 2 and f"{n} polls, 0 failed" in err
    assert len(stored(store)) == n * len(demo_rows)  # every poll printed is stored
    assert not list(store.rglob(".*.tmp"))


# -- reading the store ----------------------------------------------------------------
@pytest.fixture(scope="module")
def day_of_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """110 scrapes 15 minutes apart (27 h): enough history to right-size."""
    tmp = tmp_path_factory.mktemp("day")
    store = tmp / "store"
    with KubeReplay(DATA_DIR, metrics_clock=ticking(step=timedelta(minutes=15))) as server, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp / "kc")))
        mp.setenv("NO_PROXY", "127.0.0.1")
        assert main(["metrics", "sample", "--source", "kube:replay", "--store", str(store),
                     "--every", "0.001s", "--count", "110"]) == 0
    return store


def test_show(day_of_samples: Path, capsys, demo_rows) -> None:
    assert main(["metrics", "show", "--store", str(day_of_samples)]) == 0
    out = capsys.readouterr().out
    assert "time range: 2026-11-23 00:00:00+00:00 .. 2026-11-24 03:15:00+00:00" in out
    assert f"110 sample times, {110 * len(demo_rows)} rows" in out
    namespaces = sorted(demo_rows["namespace"].unique())
    assert f"namespaces: {len(namespaces)} ({', '.join(namespaces)})" in out
    assert f"containers: {len(demo_rows) // 2}" in out
    assert "2 day partitions" in out and "on disk:" in out
    assert main(["metrics", "show", "--store", str(day_of_samples), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["samples"] == 110 and doc["rows"] == 110 * len(demo_rows)
    assert doc["pods"] == demo_rows["pod"].nunique() and doc["bytes"] > 0


def test_show_of_a_missing_store_exit_2(tmp_path, capsys) -> None:
    assert main(["metrics", "show", "--store", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_rightsize_from_the_store(day_of_samples: Path, capsys) -> None:
    assert main(["rightsize", "--source", "demo", "--store", str(day_of_samples),
                 "--format", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    sampled = [r for r in recs if r["samples"] >= 110]
    assert sampled and all(r["status"] in ("ok", "hpa-managed") for r in sampled)
    assert any(r["action"] for r in sampled)


def test_rightsize_with_too_little_history(monkeypatch, tmp_path, capsys) -> None:
    store = tmp_path / "store"
    with serve(monkeypatch, tmp_path):
        assert sample(capsys, "--store", str(store), "--once")[0] == 0
    assert main(["rightsize", "--source", "demo", "--store", str(store),
                 "--format", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs and {r["status"] for r in recs} == {"insufficient-data"}
    assert any("1 samples < 100" in r["reason"] for r in recs)


def test_cost_from_the_store(day_of_samples: Path, capsys) -> None:
    from aiops.cost import aggregate, cost_report, default_prices
    from aiops.sources import open_source

    assert main(["cost", "--source", "demo", "--store", str(day_of_samples),
                 "--format", "json"]) == 0
    got = pd.DataFrame(json.loads(capsys.readouterr().out))
    usage = MetricsStore(day_of_samples).history().samples()
    expected = aggregate(cost_report(open_source("demo"), usage, default_prices()))
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False,
                                  rtol=1e-9)
    assert main(["cost", "--source", "demo", "--store", str(day_of_samples / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
