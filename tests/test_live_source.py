"""The live source, driven by the official client against a local API replay.

The replay serves the demo snapshot over real HTTP on 127.0.0.1, so these tests
exercise kubeconfig loading, pagination, retries, RBAC and log fetching exactly
as against a cluster, without one.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aiops.errors import LiveClusterError
from aiops.kinds import BY_KIND
from aiops.model import ClusterState
from aiops.sources.demo import DATA_DIR
from aiops.sources.live import load_live
from aiops.sources.snapshot import load_snapshot
from tests.support.kube_replay import KubeReplay

SNAPSHOT = DATA_DIR
TOKEN = "replay-token"
ALL_LINES = 1_000_000
SECRET_VALUE = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk"  # what an unscrubbed API would serve


@pytest.fixture(scope="module", autouse=True)
def _no_proxy() -> Iterator[None]:
    """The client honours HTTP(S)_PROXY: keep 127.0.0.1 off any proxy of the host."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield


@pytest.fixture(scope="module")
def demo() -> ClusterState:
    return load_snapshot(SNAPSHOT)


@pytest.fixture(scope="module")
def replay() -> Iterator[KubeReplay]:
    with KubeReplay(SNAPSHOT, token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def kubeconfig(replay: KubeReplay, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(replay.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config"))


@pytest.fixture(scope="module")
def loaded(replay: KubeReplay, kubeconfig: str) -> tuple[ClusterState, list[Any], list[str]]:
    """One paginated load of the whole demo, with the requests and progress it made."""
    start = len(replay.requests)
    messages: list[str] = []
    state = load_live(kubeconfig=kubeconfig, page_size=5, log_tail_lines=ALL_LINES,
                      progress=messages.append)
    return state, replay.requests[start:], messages


@pytest.fixture(scope="module")
def live(loaded: tuple[ClusterState, list[Any], list[str]]) -> ClusterState:
    return loaded[0]


def by_name(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["metadata"].get("namespace") or "", o["metadata"]["name"]): o for o in objs}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret_values() -> set[str]:
    """Every Secret value present in the raw demo files (before scrubbing), and ours."""
    values = {SECRET_VALUE}
    for f in Path(SNAPSHOT).rglob("secrets.json"):
        for item in json.loads(f.read_text()).get("items", []):
            for field in ("data", "stringData"):
                values.update(v for v in (item.get(field) or {}).values() if len(v) >= 4)
    return values


# -- same cluster, two ways -----------------------------------------------------
def test_live_load_matches_the_snapshot(live: ClusterState, demo: ClusterState) -> None:
    assert live.summary() == demo.summary()
    for kind, objs in demo.objects.items():
        assert by_name(live.kind(kind)) == by_name(objs), kind
    assert live.source == "kube"
    assert live.context == "replay"
    assert not live.problems
    assert not live.unavailable


def test_live_logs_are_indexed_as_they_load(live: ClusterState) -> None:
    """The diagnosis's load-time log pass sees the logs fetched from the API too,
    and leaves nothing in flight; the sweep of the loaded state is what it would
    be without that pass."""
    import copy

    from aiops.diagnose.context import Context
    from aiops.diagnose.rules import logs

    known = live.__dict__[logs._KNOWN]
    assert logs._LOADING not in live.__dict__
    assert set(known) == {(p, k) for p, src in ((False, live.logs), (True, live.previous_logs))
                          for k, t in src.items() if t.isascii()}
    assert known
    bare = copy.deepcopy(live)
    del bare.__dict__[logs._KNOWN], bare.__dict__[logs._AS_LOADED]
    assert logs._sweep(Context(live)) == logs._sweep(Context(bare))


@pytest.mark.parametrize(("frame", "key"), [
    ("pods", ["namespace", "name"]),
    ("containers", ["namespace", "pod", "container"]),
    ("nodes", ["name"]),
    ("workloads", ["namespace", "kind", "name"]),
    ("services", ["namespace", "name"]),
])
def test_frames_are_the_same(live: ClusterState, demo: ClusterState, frame: str,
                             key: list[str]) -> None:
    def sort(df: pd.DataFrame) -> pd.DataFrame:
        return df.sort_values(key).reset_index(drop=True)

    pd.testing.assert_frame_equal(sort(getattr(live, frame)), sort(getattr(demo, frame)))


def test_items_carry_kind_and_api_version(live: ClusterState) -> None:
    for kind, objs in live.objects.items():
        for obj in objs:
            assert obj["kind"] == kind
            assert obj["apiVersion"] == BY_KIND[kind].api_version


def has_run(state: ClusterState, key: tuple[str, str, str]) -> bool:
    """Only a container that has started has a log the API can return."""
    pod = state.get("Pod", key[0], key[1]) or {}
    statuses = [cs for field in ("initContainerStatuses", "containerStatuses")
                for cs in (pod.get("status") or {}).get(field) or [] if cs["name"] == key[2]]
    return bool(statuses) and ("waiting" not in statuses[0].get("state", {})
                               or statuses[0].get("restartCount", 0) > 0)


def test_logs_and_previous_logs_match(live: ClusterState, demo: ClusterState) -> None:
    assert demo.logs and demo.previous_logs
    # a dump records "Request log error: ... waiting to start" for containers that
    # never ran; the live source does not ask for those logs at all
    expected = {k: v for k, v in demo.logs.items() if has_run(demo, k)}
    assert expected
    assert {k: v for k, v in live.logs.items() if k in expected} == expected
    assert not {k: v for k, v in live.logs.items() if k not in expected and v}
    assert not [k for k in live.logs if not has_run(demo, k)]
    assert live.previous_logs == demo.previous_logs


def test_lists_are_paginated_with_continue(live: ClusterState,
                                           loaded: tuple[ClusterState, list[Any], list[str]]
                                           ) -> None:
    _, requests, messages = loaded
    pod_lists = [r for r in requests if r.path == "/api/v1/pods"]
    pages = -(-len(live.kind("Pod")) // 5)
    assert len(pod_lists) == pages > 1
    assert all(r.query["limit"] == "5" for r in pod_lists)
    assert "continue" not in pod_lists[0].query
    assert all(r.query.get("continue") for r in pod_lists[1:])
    assert "listing pods (page 2)" in messages


def test_only_get_requests(loaded: tuple[ClusterState, list[Any], list[str]]) -> None:
    _, requests, _ = loaded
    assert requests
    assert {r.method for r in requests} == {"GET"}


def test_previous_logs_only_for_restarted_containers(
        live: ClusterState, loaded: tuple[ClusterState, list[Any], list[str]]) -> None:
    _, requests, _ = loaded
    previous = {(r.path.split("/")[4], r.path.split("/")[6], r.query["container"])
                for r in requests if r.path.endswith("/log") and r.query.get("previous")}
    restarted = {(p["metadata"]["namespace"], p["metadata"]["name"], cs["name"])
                 for p in live.kind("Pod")
                 for cs in (p["status"].get("initContainerStatuses") or [])
                 + (p["status"].get("containerStatuses") or [])
                 if cs.get("restartCount")}
    assert previous == restarted


def test_secrets_have_no_values(live: ClusterState) -> None:
    for secret in live.kind("Secret"):
        assert not any((secret.get("data") or {}).values())
    dumped = json.dumps(live.objects)
    assert not [v for v in secret_values() if v in dumped]


def test_secret_values_served_by_the_api_are_dropped(tmp_path: Path) -> None:
    with KubeReplay(SNAPSHOT, token=TOKEN) as server:
        served = server.state.kind("Secret")[0]
        served["data"] = {"password": SECRET_VALUE}
        served["metadata"].setdefault("annotations", {})[
            "kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
                {"data": {"password": SECRET_VALUE}})
        state = load_live(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")), logs=False)
    secret = state.get("Secret", served["metadata"]["namespace"], served["metadata"]["name"])
    assert secret is not None and secret["data"] == {"password": ""}
    assert SECRET_VALUE not in json.dumps(state.objects)


# -- partial access and flaky servers ----------------------------------------------
def test_forbidden_kind_is_unavailable_and_the_rest_loads(tmp_path: Path,
                                                          demo: ClusterState) -> None:
    with KubeReplay(SNAPSHOT, forbidden={"Secret"}, token=TOKEN) as server:
        state = load_live(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")), logs=False)
    reason = state.unavailable["Secret"]
    assert reason.startswith("forbidden: secrets is forbidden: User ")
    assert 'cannot list resource "secrets"' in reason
    assert "Secret" not in state.objects
    assert any(p.where == "/api/v1/secrets" for p in state.problems)
    assert len(state.kind("Pod")) == len(demo.kind("Pod"))
    assert state.is_available("Pod") and not state.is_available("Secret")


def test_service_unavailable_is_retried(tmp_path: Path) -> None:
    with KubeReplay(SNAPSHOT, fail_first=1, token=TOKEN) as server:
        state = load_live(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")), logs=False)
        first, second = server.requests[:2]
    assert first.path == second.path == "/version"
    assert state.kind("Pod") and not state.problems


def test_metrics_api_absent_is_unavailable_not_an_error(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    shutil.copytree(SNAPSHOT, snap)
    for f in [*snap.rglob("podmetrics.json"), *snap.rglob("nodemetrics.json")]:
        f.unlink()
    with KubeReplay(snap, token=TOKEN) as server:
        state = load_live(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")), logs=False)
        paths = {r.path for r in server.requests}
    assert "not served" in state.unavailable["PodMetrics"]
    assert "NodeMetrics" in state.unavailable
    assert not any(p.startswith("/apis/metrics.k8s.io") for p in paths)
    assert state.kind("Pod")


def test_a_log_that_cannot_be_fetched_is_a_problem(tmp_path: Path, demo: ClusterState) -> None:
    with KubeReplay(SNAPSHOT, token=TOKEN) as server:
        key = next(iter(server.state.previous_logs))
        del server.state.previous_logs[key]
        state = load_live(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")),
                          log_tail_lines=ALL_LINES)
    assert key not in state.previous_logs
    where = f"{key[0]}/{key[1]}/{key[2]} previous log"
    assert [p for p in state.problems if p.where == where]
    assert len(state.previous_logs) == len(demo.previous_logs) - 1
    assert state.logs


def test_log_tail_lines_is_sent_and_honoured(tmp_path: Path) -> None:
    with KubeReplay(SNAPSHOT, token=TOKEN) as server:
        state = load_live(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")),
                          log_tail_lines=3)
        log_requests = [r for r in server.requests if r.path.endswith("/log")]
    assert log_requests and all(r.query["tailLines"] == "3" for r in log_requests)
    assert all(len(text.splitlines()) <= 3 for text in state.logs.values())


def test_namespace_filter(tmp_path: Path, demo: ClusterState) -> None:
    ns = max(demo.namespaces, key=lambda n: sum(
        1 for p in demo.kind("Pod") if p["metadata"]["namespace"] == n))
    with KubeReplay(SNAPSHOT, token=TOKEN) as server:
        state = load_live(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")),
                          namespaces=[ns], logs=False)
        paths = {r.path for r in server.requests}
    assert "/api/v1/pods" not in paths
    assert f"/api/v1/namespaces/{ns}/pods" in paths
    assert "/api/v1/nodes" in paths  # cluster-scoped kinds are still listed
    assert {p["metadata"]["namespace"] for p in state.kind("Pod")} == {ns}
    assert [n["metadata"]["name"] for n in state.kind("Namespace")] == [ns]
    assert len(state.kind("Pod")) == sum(
        1 for p in demo.kind("Pod") if p["metadata"]["namespace"] == ns)
    assert len(state.kind("Node")) == len(demo.kind("Node"))


def test_progress_reports_each_kind(loaded: tuple[ClusterState, list[Any], list[str]]) -> None:
    _, _, messages = loaded
    assert "listing nodes" in messages
    assert "listing podmetrics" in messages
    assert any(m.startswith("fetching ") and m.endswith("container logs") for m in messages)


# -- errors a user can act on ---------------------------------------------------------
def assert_clean(err: LiveClusterError) -> None:
    text = str(err)
    assert TOKEN not in text
    assert "Traceback" not in text
    assert not [v for v in secret_values() if v in text]


def test_unreachable_server_fails_fast_with_the_url(tmp_path: Path, replay: KubeReplay) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    kc = replay.write_kubeconfig(tmp_path / "kc")
    kc.write_text(kc.read_text().replace(replay.url, url))
    start = time.monotonic()
    with pytest.raises(LiveClusterError) as exc:
        load_live(kubeconfig=str(kc))
    assert time.monotonic() - start < 5
    msg = str(exc.value)
    assert url in msg and "connection refused" in msg
    assert "replay" in msg and "kubectl --context replay cluster-info" in msg
    assert "--source" in msg
    assert_clean(exc.value)


def test_a_silent_server_times_out(tmp_path: Path, replay: KubeReplay) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kc = replay.write_kubeconfig(tmp_path / "kc")
        kc.write_text(kc.read_text().replace(replay.url, url))
        start = time.monotonic()
        with pytest.raises(LiveClusterError, match=r"no answer within 0\.3s \(timeout\)"):
            load_live(kubeconfig=str(kc), timeout=0.3, retries=1)
    assert time.monotonic() - start < 3


def test_missing_kubeconfig_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope" / "config"
    with pytest.raises(LiveClusterError, match=re.escape(f"kubeconfig {missing} not found")):
        load_live(kubeconfig=str(missing))
    monkeypatch.setenv("KUBECONFIG", str(missing))
    with pytest.raises(LiveClusterError, match=re.escape(f"kubeconfig {missing} not found")):
        load_live()


def test_no_kubeconfig_in_a_pod_uses_in_cluster_config(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(LiveClusterError, match="in-cluster configuration failed"):
        load_live()  # no service account token is mounted here


def test_unknown_context_lists_the_available_ones(kubeconfig: str) -> None:
    with pytest.raises(LiveClusterError) as exc:
        load_live("staging", kubeconfig=kubeconfig)
    msg = str(exc.value)
    assert "'staging' not found" in msg and kubeconfig in msg
    assert "available contexts: replay" in msg
    assert_clean(exc.value)


def test_invalid_kubeconfig_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "config"
    bad.write_text("clusters: [unclosed\n")
    with pytest.raises(LiveClusterError, match=re.escape(f"kubeconfig {bad} is not valid")):
        load_live(kubeconfig=str(bad))


def test_wrong_token_is_a_credentials_error(tmp_path: Path, replay: KubeReplay) -> None:
    wrong = "not-the-token-0123456789"
    kc = replay.write_kubeconfig(tmp_path / "kc", token=wrong)
    with pytest.raises(LiveClusterError) as exc:
        load_live(kubeconfig=str(kc))
    msg = str(exc.value)
    assert "credentials" in msg and "401" in msg and replay.url in msg
    assert wrong not in msg
    assert_clean(exc.value)


def test_context_argument_names_the_source(kubeconfig: str) -> None:
    state = load_live("replay", kubeconfig=kubeconfig, logs=False)
    assert state.source == "kube:replay"
    assert state.context == "replay"
