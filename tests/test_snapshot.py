"""Snapshot source: cluster-info dump layout, kubectl -o json|yaml files, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiops.errors import SnapshotError, SourceError
from aiops.sources import open_source
from aiops.sources.snapshot import load_snapshot


def pod(name: str, ns: str = "shop", phase: str = "Running", **status) -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                     "creationTimestamp": "2026-11-20T10:00:00Z", "labels": {"app": name}},
        "spec": {"nodeName": "node-1", "containers": [
            {"name": "app", "image": "shop/app:1.0",
             "resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                           "limits": {"memory": "256Mi"}}}]},
        "status": {"phase": phase, "containerStatuses": [
            {"name": "app", "ready": True, "restartCount": 2,
             "state": {"running": {"startedAt": "2026-11-20T10:01:00Z"}}}], **status},
    }


def write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    """A minimal cluster-info dump: typed lists whose items carry no kind."""
    write(tmp_path / "nodes.json", {"kind": "NodeList", "apiVersion": "v1", "items": [
        {"metadata": {"name": "node-1"}, "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}]})
    write(tmp_path / "shop" / "pods.json",
          {"kind": "PodList", "apiVersion": "v1", "items": [pod("web-1"), pod("web-2")]})
    write(tmp_path / "shop" / "events.json", {"kind": "EventList", "apiVersion": "v1", "items": [
        {"metadata": {"name": "web-1.1", "namespace": "shop"}, "type": "Warning",
         "reason": "BackOff", "message": "Back-off restarting failed container app",
         "count": 4, "firstTimestamp": "2026-11-20T10:00:00Z",
         "lastTimestamp": "2026-11-20T11:00:00Z",
         "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"}}]})
    write(tmp_path / "shop" / "web-1" / "logs.txt",
          "==== START logs for container app of pod shop/web-1 ====\n"
          "line one\nline two\n"
          "==== END logs for container app of pod shop/web-1 ====\n")
    write(tmp_path / "shop" / "web-1" / "logs-previous.txt",
          "==== START logs for container app of pod shop/web-1 ====\n"
          "Traceback (most recent call last):\nZeroDivisionError: division by zero\n"
          "==== END logs for container app of pod shop/web-1 ====\n")
    return tmp_path


def test_cluster_info_dump_layout(dump: Path) -> None:
    state = load_snapshot(dump)
    assert state.summary() == {"Event": 1, "Node": 1, "Pod": 2}
    assert {p["kind"] for p in state.kind("Pod")} == {"Pod"}
    assert state.kind("Pod")[0]["apiVersion"] == "v1"
    assert state.logs[("shop", "web-1", "app")] == "line one\nline two"
    assert "division by zero" in state.previous_logs[("shop", "web-1", "app")]
    assert not state.problems
    # captured_at falls back to the newest event when there is no manifest
    assert state.captured_at.isoformat() == "2026-11-20T11:00:00+00:00"
    pods = state.pods.set_index("name")
    assert pods.loc["web-1", "cpu_request"] == pytest.approx(0.25)
    assert pods.loc["web-1", "memory_limit"] == 256 * 2**20
    assert pods.loc["web-1", "restarts"] == 2
    assert state.nodes.iloc[0]["memory_allocatable"] == 8 * 2**30


def test_kubectl_get_files_any_mix(tmp_path: Path) -> None:
    write(tmp_path / "one-pod.json", {"kind": "Pod", "apiVersion": "v1", **pod("solo")})
    write(tmp_path / "mixed.yaml", """
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: shop}
  spec: {replicas: 2}
  status: {availableReplicas: 1, readyReplicas: 1}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {selector: {app: web}}
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"data":{"password":"aHVudGVyMg=="}}'
data:
  password: aHVudGVyMg==
""")
    state = load_snapshot(tmp_path)
    assert state.summary() == {"Deployment": 1, "Pod": 1, "Secret": 1, "Service": 1}
    secret = state.kind("Secret")[0]
    assert secret["data"] == {"password": ""}
    assert "aHVudGVy" not in json.dumps(secret)
    w = state.workloads.iloc[0]
    assert (w["kind"], w["desired"], w["available"], w["healthy"]) == ("Deployment", 2, 1, False)


def test_single_file_source(tmp_path: Path) -> None:
    f = write(tmp_path / "p.json", {"kind": "PodList", "items": [pod("a")]})
    state = open_source(str(f))
    assert [p["metadata"]["name"] for p in state.kind("Pod")] == ["a"]


def test_unreadable_files_are_named_and_the_rest_loads(dump: Path) -> None:
    write(dump / "shop" / "services.json", '{"kind": "ServiceList", "items": [{"meta')
    write(dump / "broken.yaml", "kind: Pod\nmetadata: [unclosed\n")
    write(dump / "crd.json", {"kind": "Widget", "apiVersion": "example.com/v1",
                              "metadata": {"name": "w"}})
    write(dump / "empty.json", "")
    write(dump / "nostatus.json", {"kind": "Pod", "apiVersion": "v1",
                                   "metadata": {"name": "bare", "namespace": "shop"}})
    write(dump / "nometa.json", {"kind": "Pod", "apiVersion": "v1"})
    state = load_snapshot(dump)
    text = "\n".join(str(p) for p in state.problems)
    assert "services.json: invalid or truncated JSON" in text
    assert "broken.yaml: invalid YAML at line" in text
    assert "unknown kind 'Widget'" in text
    assert "empty.json: file is empty" in text
    assert "Pod shop/bare has no status" in text
    assert "Pod without metadata.name" in text
    assert len(state.kind("Pod")) == 3  # web-1, web-2 and the bare pod
    bare = state.pods.set_index("name").loc["bare"]
    assert bare["phase"] == "Unknown" and not bare["ready"]


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="does not exist") as e:
        load_snapshot(tmp_path / "nope")
    assert "cluster-info dump" in (e.value.hint or "")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotError, match="is empty"):
        load_snapshot(tmp_path / "empty")
    write(tmp_path / "junk" / "a.json", "[1, 2]")
    with pytest.raises(SnapshotError, match="no Kubernetes objects"):
        load_snapshot(tmp_path / "junk")
    with pytest.raises(SourceError, match="unknown source scheme"):
        open_source("ftp:somewhere")


def test_binary_and_truncated_logs(tmp_path: Path) -> None:
    write(tmp_path / "pods.json", {"kind": "PodList", "items": [pod("web-1")]})
    p = tmp_path / "shop" / "web-1" / "logs.txt"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"==== START logs for container app of pod shop/web-1 ====\n"
                  b"\xff\xfe binary \x00 bytes\npanic: runtime error")
    state = load_snapshot(tmp_path)
    log = state.logs[("shop", "web-1", "app")]
    assert "panic: runtime error" in log and "\ufffd" in log


def test_events_k8s_io_v1_shape(tmp_path: Path) -> None:
    write(tmp_path / "ev.yaml", """
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: x.1, namespace: shop, creationTimestamp: "2026-11-20T10:00:00Z"}
eventTime: "2026-11-20T10:00:00.000000Z"
series: {count: 7, lastObservedTime: "2026-11-20T12:00:00.000000Z"}
reason: Unhealthy
note: "Readiness probe failed: HTTP probe failed with statuscode: 503"
type: Warning
regarding: {kind: Pod, namespace: shop, name: web-1}
reportingController: kubelet
""")
    ev = load_snapshot(tmp_path).events.iloc[0]
    assert (ev["count"], ev["object_name"], ev["source"]) == (7, "web-1", "kubelet")
    assert ev["message"].startswith("Readiness probe failed")
    assert ev["last_time"].hour == 12


def test_several_containers_in_one_log_file(tmp_path: Path) -> None:
    write(tmp_path / "pods.json", {"kind": "PodList", "items": [pod("web-1")]})
    write(tmp_path / "shop" / "web-1" / "logs.txt",
          "==== START logs for container init of pod shop/web-1 ====\n"
          "==== END logs for container init of pod shop/web-1 ====\n"
          "==== START logs for container app of pod shop/web-1 ====\n"
          "a\n\nb\n"
          "==== END logs for container app of pod shop/web-1 ====\n"
          "==== START logs for container side of pod shop/web-1 ====\n"
          "Request log error: container \"side\" is waiting to start\n")
    logs = load_snapshot(tmp_path).logs
    assert logs[("shop", "web-1", "init")] == ""
    assert logs[("shop", "web-1", "app")] == "a\n\nb"
    assert logs[("shop", "web-1", "side")].startswith("Request log error")


def test_plain_kubectl_logs_file(tmp_path: Path) -> None:
    write(tmp_path / "pods.json", {"kind": "PodList", "items": [pod("web-1")]})
    write(tmp_path / "shop" / "web-1" / "logs.txt", "just a log line\n")
    assert load_snapshot(tmp_path).logs[("shop", "web-1", "")] == "just a log line\n"


def test_mixed_timestamp_precision_in_one_column(tmp_path: Path) -> None:
    # the scheduler writes fractional seconds, the kubelet does not: both must parse
    ev = {"metadata": {"name": "e", "namespace": "shop"}, "reason": "X", "type": "Warning",
          "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"}}
    write(tmp_path / "events.json", {"kind": "EventList", "items": [
        {**ev, "metadata": {"name": "a", "namespace": "shop"},
         "eventTime": "2026-11-20T10:00:00.123456Z"},
        {**ev, "metadata": {"name": "b", "namespace": "shop"},
         "firstTimestamp": "2026-11-20T11:00:00Z", "lastTimestamp": "2026-11-20T12:00:00Z"}]})
    write(tmp_path / "pods.json", {"kind": "PodList", "items": [pod("web-1")]})
    times = load_snapshot(tmp_path).events["last_time"]
    assert times.notna().all() and times.max().hour == 12


def test_event_index_follows_the_event_list() -> None:
    """The loader indexes events file by file; the index is extended with events
    appended later, rebuilt when the list is replaced or shrunk, and dropped by add."""
    from aiops.model import ClusterState

    def ev(name: str, reason: str, about: str) -> dict:
        return {"kind": "Event", "metadata": {"name": name, "namespace": "ns"},
                "reason": reason, "involvedObject": {"kind": "Pod", "namespace": "ns",
                                                     "name": about}}

    st = ClusterState(source="t", objects={"Event": [ev("a", "Failed", "p1")]})
    st.index_events()
    assert st.events_by_object == {("Pod", "ns", "p1"): [st.kind("Event")[0]]}
    st.objects["Event"].append(ev("b", "BackOff", "p1"))
    st.objects["Event"].append({"kind": "Event", "metadata": {"name": "c"}})  # about nothing
    assert [e["metadata"]["name"] for e in st.events_by_object[("Pod", "ns", "p1")]] == \
        ["a", "b"]
    assert st.events_by_reason == {"Failed": {("Pod", "ns", "p1")},
                                   "BackOff": {("Pod", "ns", "p1")}}
    st.objects["Event"] = [ev("d", "Killing", "p2")]
    assert list(st.events_by_object) == [("Pod", "ns", "p2")]
    st.objects["Event"].clear()
    assert st.events_by_object == {} and st.events_by_reason == {}
    st.add([ev("e", "Pulled", "p3")])
    assert list(st.events_by_reason) == ["Pulled"]


def test_kind_index_follows_the_lists() -> None:
    """Kinds indexed file by file while loading are extended with objects appended
    later; get and in_namespace see them all, in state order."""
    from aiops.model import ClusterState

    def pod(name: str, ns: object = "a") -> dict:
        return {"kind": "Pod", "metadata": {"name": name, "namespace": ns}}

    st = ClusterState(source="t", objects={"Pod": [pod("p1")]})
    st.index_kinds(["Pod", "Missing", "Event"])
    assert st.names_unique("Pod") and st.named("Pod") == {("a", "p1"): st.kind("Pod")[0]}
    st.objects["Pod"] += [pod("p2", "b"), pod("p1"), pod("x", ["unhashable"]), pod("y", 3)]
    st.index_kinds(["Pod"])
    assert st.get("Pod", "a", "p1") is st.kind("Pod")[2]  # the last of a name wins
    assert [p["metadata"]["name"] for p in st.in_namespace("Pod", "a")] == ["p1", "p1"]
    assert st.get("Pod", "b", "p2") and st.in_namespace("Pod", 3) == [st.kind("Pod")[4]]
    assert not st.names_unique("Pod")  # p1 twice, and names in odd namespaces not named
    assert set(st.named("Pod")) == {("a", "p1"), ("b", "p2")}
    st.objects["Pod"] = [pod("q")]  # replaced: read again
    assert st.get("Pod", "a", "p1") is None and st.get("Pod", "a", "q") is not None
    assert [p["metadata"]["name"] for p in st.in_namespace("Pod", "a")] == ["q"]
    assert st.names_unique("Pod") and st.names_unique("Missing")


def test_loader_indexes_every_kind_it_read(tmp_path) -> None:
    from aiops.sources.snapshot import load_snapshot

    (tmp_path / "ns").mkdir()
    (tmp_path / "ns" / "pods.json").write_text(json.dumps({"kind": "List", "items": [
        {"kind": "Deployment", "apiVersion": "apps/v1",
         "metadata": {"name": "d", "namespace": "ns"}}]}))
    (tmp_path / "ns" / "deployments.json").write_text(json.dumps({
        "kind": "DeploymentList", "items": [{"metadata": {"name": "e", "namespace": "ns"}}]}))
    st = load_snapshot(tmp_path)
    assert st.get("Deployment", "ns", "d") and st.get("Deployment", "ns", "e")
