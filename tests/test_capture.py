"""`capture` writes a snapshot that the snapshot reader loads back unchanged."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aiops.errors import ParameterError
from aiops.model import ClusterState, LoadProblem
from aiops.sources.capture import capture
from aiops.sources.demo import DATA_DIR
from aiops.sources.live import load_live
from aiops.sources.snapshot import load_snapshot
from tests.support.kube_replay import KubeReplay

SNAPSHOT = DATA_DIR
IN_DUMP = {"Node", "Event", "ReplicationController", "Service", "DaemonSet", "Deployment",
           "ReplicaSet", "Pod"}


@pytest.fixture(scope="module", autouse=True)
def _no_proxy() -> Iterator[None]:
    """The client honours HTTP(S)_PROXY: keep 127.0.0.1 off any proxy of the host."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="module")
def demo() -> ClusterState:
    return load_snapshot(SNAPSHOT, source="demo")


def by_name(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["metadata"].get("namespace") or "", o["metadata"]["name"]): o for o in objs}


def assert_same(back: ClusterState, state: ClusterState) -> None:
    assert back.summary() == state.summary()
    for kind, objs in state.objects.items():
        assert by_name(back.kind(kind)) == by_name(objs), kind
    assert back.logs == state.logs
    assert back.previous_logs == state.previous_logs
    assert back.context == state.context
    assert back.captured_at == state.captured_at.replace(microsecond=0)


def test_demo_round_trips(tmp_path: Path, demo: ClusterState) -> None:
    out = tmp_path / "snap"
    counts = capture(demo, out)
    assert counts == demo.summary()
    back = load_snapshot(out)
    assert_same(back, demo)
    assert not back.problems


def test_layout_is_cluster_info_dump_style(tmp_path: Path, demo: ClusterState) -> None:
    out = tmp_path / "snap"
    messages: list[str] = []
    capture(demo, out, progress=messages.append)
    assert "writing nodes.json" in messages
    nodes = (out / "nodes.json").read_text()
    assert nodes.startswith('{\n    "kind": "NodeList",\n    "apiVersion": "v1",')
    pod = demo.kind("Pod")[0]
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    pods = json.loads((out / ns / "pods.json").read_text())
    assert pods["kind"] == "PodList" and pods["apiVersion"] == "v1"
    assert "resourceVersion" in pods["metadata"]
    assert name in {i["metadata"]["name"] for i in pods["items"]}
    assert not any("kind" in i or "apiVersion" in i for i in pods["items"])
    ns_key, pod_key, container = next(iter(demo.logs))
    logs = (out / ns_key / pod_key / "logs.txt").read_text()
    assert logs.startswith(f"==== START logs for container {container} of pod "
                           f"{ns_key}/{pod_key} ====\n")
    assert f"==== END logs for container {container} of pod {ns_key}/{pod_key} ====\n" in logs
    prev = next(iter(demo.previous_logs))
    assert (out / prev[0] / prev[1] / "logs-previous.txt").exists()
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_manifest(tmp_path: Path, demo: ClusterState) -> None:
    demo_copy = ClusterState(source="kube:prod", objects=demo.objects, context="prod",
                             captured_at=datetime(2026, 11, 23, 7, 41, 2, 123, tzinfo=UTC),
                             unavailable={"Secret": "forbidden: nope"},
                             problems=[LoadProblem("/api/v1/secrets", "forbidden")])
    out = tmp_path / "snap"
    counts = capture(demo_copy, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator"] == "aiops capture"
    assert manifest["captured_at"] == "2026-11-23T07:41:02Z"
    assert manifest["context"] == "prod" and manifest["source"] == "kube:prod"
    assert manifest["unavailable"] == {"Secret": "forbidden: nope"}
    assert manifest["problems"] == [{"where": "/api/v1/secrets", "message": "forbidden"}]
    assert manifest["counts"] == counts
    back = load_snapshot(out)
    assert back.context == "prod"
    assert back.captured_at == datetime(2026, 11, 23, 7, 41, 2, tzinfo=UTC)


def test_live_capture_has_the_extra_kinds_and_previous_logs(tmp_path: Path,
                                                            demo: ClusterState) -> None:
    with KubeReplay(SNAPSHOT) as server:
        kc = server.write_kubeconfig(tmp_path / "kc")
        live = load_live(kubeconfig=str(kc), log_tail_lines=1_000_000)
    out = tmp_path / "snap"
    counts = capture(live, out)
    extra = set(counts) - IN_DUMP
    assert extra >= {k for k in demo.objects if k not in IN_DUMP}
    assert {"Namespace", "Secret", "PodMetrics"} <= extra
    assert list(out.rglob("logs-previous.txt"))
    back = load_snapshot(out)
    assert_same(back, live)
    assert back.previous_logs == demo.previous_logs
    assert json.loads((out / "manifest.json").read_text())["source"] == "kube"


def test_non_empty_target_is_refused(tmp_path: Path, demo: ClusterState) -> None:
    out = tmp_path / "snap"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    with pytest.raises(ParameterError, match="not empty"):
        capture(demo, out)
    assert [p.name for p in out.iterdir()] == ["notes.md"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="is a file"):
        capture(demo, tmp_path / "file")


def test_empty_target_is_used(tmp_path: Path, demo: ClusterState) -> None:
    capture(demo, tmp_path)
    assert (tmp_path / "manifest.json").exists()


def test_overwrite_replaces_the_previous_snapshot_only(tmp_path: Path,
                                                      demo: ClusterState) -> None:
    out = tmp_path / "snap"
    capture(demo, out)
    (out / "notes.md").write_text("mine")
    ns = demo.kind("Pod")[0]["metadata"]["namespace"]
    small = ClusterState(source="demo", objects={"Node": demo.kind("Node")})
    capture(small, out, overwrite=True)
    assert (out / "notes.md").read_text() == "mine"
    assert not (out / ns / "pods.json").exists()
    assert load_snapshot(out).summary() == {"Node": len(demo.kind("Node"))}


def test_secret_values_are_never_written(tmp_path: Path) -> None:
    applied = {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"pw":"aHVudGVy"}}'}
    secret = {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
              "metadata": {"name": "db", "namespace": "app", "annotations": applied},
              "data": {"pw": "aHVudGVy"}, "stringData": {"token": "s3cr3t-value"}}
    state = ClusterState(source="test", objects={"Secret": [secret]})
    capture(state, tmp_path / "snap")
    text = (tmp_path / "snap" / "app" / "secrets.json").read_text()
    assert "aHVudGVy" not in text and "s3cr3t-value" not in text
    written = json.loads(text)["items"][0]
    assert written["data"] == {"pw": ""} and written["stringData"] == {"token": ""}
    assert secret["data"] == {"pw": "aHVudGVy"}  # the caller's state is not modified


def test_demo_secrets_have_no_values_on_disk(tmp_path: Path, demo: ClusterState) -> None:
    capture(demo, tmp_path / "snap")
    for f in (tmp_path / "snap").rglob("secrets.json"):
        for item in json.loads(f.read_text())["items"]:
            assert not any((item.get("data") or {}).values())


def test_an_interrupted_write_leaves_no_file(tmp_path: Path, demo: ClusterState,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)  # the same module capture writes through
    with pytest.raises(OSError, match="disk full"):
        capture(demo, tmp_path / "snap")
    assert [p for p in (tmp_path / "snap").rglob("*") if p.is_file()] == []
