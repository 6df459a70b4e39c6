"""The watcher against the local API replay, with scripted watch streams.

Every test drives the official client over real HTTP: the replay streams the
events a test emits, drops connections, answers 410 for compacted versions.
Waits are on the watcher's own notifications (or, for the server's request log,
a poll with a generous timeout), never a fixed sleep.
"""

from __future__ import annotations

import copy
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import git
import pytest

from aiops.approvals.phr import PhrStore
from aiops.kpis.detection import mttd_items
from aiops.kpis.inputs import load_kpi_inputs
from aiops.notify import Notifier
from aiops.sources.demo import DATA_DIR
from aiops.sources.live import connect, load_live
from aiops.watch import Watcher, WatchOptions
from tests.support.kube_replay import KubeReplay

WAIT = 30.0  # generous: the machine is shared; the latency asserts are separate
HEALTHY_POD = ("todo", "todo-backend-645c8f94d5-h24rw")  # Deployment/todo-backend
OTHER_POD = ("todo", "todo-redis-5759c4dd49-dbmsp")  # Deployment/todo-redis


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


@pytest.fixture
def replay() -> Iterator[KubeReplay]:
    with KubeReplay(DATA_DIR) as srv:
        yield srv


@pytest.fixture
def store(tmp_path: Path) -> PhrStore:
    repo = git.Repo.init(tmp_path / "repo")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "watch test")
        cfg.set_value("user", "email", "watch@test")
    repo.index.commit("initial")
    return PhrStore(tmp_path / "repo" / "history" / "prompts", lock_timeout=5.0)


@dataclass
class Rig:
    srv: KubeReplay
    watcher: Watcher
    store: PhrStore | None
    logs: list[str] = field(default_factory=list)

    def wait(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        assert self.watcher.wait_for(predicate, timeout), "timed out; log:\n" + \
            "\n".join(self.logs[-20:])

    def detections(self, rule: str | None = None) -> list[Any]:
        assert self.store is not None
        return [r for r in self.store.records("detection")
                if rule is None or r.meta.data.get("rule") == rule]

    def open_episode(self, rule: str, subject: str) -> bool:
        return any(e.rule == rule and e.subject == subject
                   for e in list(self.watcher.episodes.open.values()))

    def caught_up(self, kind: str, rv: str) -> bool:
        return int(self.watcher.stream(kind).resource_version or 0) >= int(rv)

    def settle(self, versions: dict[str, str], diagnoses_before: int) -> None:
        """Until the streams applied `versions` and the diagnoses they caused are done."""
        self.wait(lambda: all(self.caught_up(k, rv) for k, rv in versions.items())
                  and self.watcher.idle() and len(self.watcher.stats.diagnoses) > diagnoses_before)


@pytest.fixture
def make_rig(replay: KubeReplay, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[tuple[Watcher, Any]] = []

    def make(store: PhrStore | None = None, **kwargs: Any) -> Rig:
        config = str(replay.write_kubeconfig(tmp_path / f"kubeconfig{len(made)}"))
        client, _server, _ctx = connect("replay", kubeconfig=config)
        options = WatchOptions(**{"record_existing": False, **kwargs.pop("options", {})})
        initial = load_live("replay", kubeconfig=config, logs=False,
                            namespaces=[options.namespace] if options.namespace else None)
        logs: list[str] = []
        w = Watcher(client, initial, store=store, options=options, log=logs.append, **kwargs)
        made.append((w, client))
        w.start()
        rig = Rig(replay, w, store, logs)
        rig.wait(lambda: all(s.resource_version or s.failed for s in w.streams))  # listed
        return rig

    yield make
    for w, client in made:
        w.stop()
        client.close()


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def crash_loop(srv: KubeReplay, ns: str, name: str, restarts: int = 3) -> dict[str, Any]:
    """The stored pod, its first container now in CrashLoopBackOff."""
    pod = copy.deepcopy(srv.state.get("Pod", ns, name))
    assert pod is not None
    now = datetime.now(UTC)
    cs = pod["status"]["containerStatuses"][0]
    cs.update(ready=False, started=False, restartCount=restarts, state={"waiting": {
        "reason": "CrashLoopBackOff",
        "message": f"back-off 40s restarting failed container={cs['name']} pod={name}"}},
        lastState={"terminated": {"exitCode": 1, "reason": "Error",
                                  "startedAt": _iso(now - timedelta(seconds=2)),
                                  "finishedAt": _iso(now)}})
    for cond in pod["status"].get("conditions") or []:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond["status"] = "False"
    return pod


def backoff_event(srv: KubeReplay, ns: str, pod: str, count: int) -> dict[str, Any]:
    now = _iso(datetime.now(UTC))
    return {"metadata": {"name": f"{pod}.backoff", "namespace": ns},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod,
                               "fieldPath": "spec.containers{backend}"},
            "reason": "BackOff", "message": "Back-off restarting failed container",
            "type": "Warning", "count": count, "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": "kubelet"}}


def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """For the replay's request log, which notifies nobody: poll it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_crash_loop_detected_once_within_seconds(make_rig: Callable[..., Rig],
                                                 store: PhrStore) -> None:
    rig = make_rig(store)
    srv, w = rig.srv, rig.watcher
    t0 = time.monotonic()
    srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD))
    rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-backend"))
    latency = time.monotonic() - t0
    print(f"detection latency (event to detection record): {latency:.2f} s")
    assert latency < 5.0
    [rec] = rig.detections("crash-loop")
    data = rec.meta.data
    assert data["owner"] == "Deployment/todo-backend"
    assert data["failure_start"] and data["detected_at"] and data["episode"]
    assert 0 <= data["latency_s"] < 10 and 0 <= data["pipeline_s"] < 5
    assert data["at_start"] is False
    assert rec.meta.object is not None and rec.meta.object.namespace == "todo"
    mttd = mttd_items(load_kpi_inputs(store))  # the MTTD KPI reads the record as written
    assert len(mttd) == 1 and 0 <= mttd["value"].iloc[0] * 60 < 10

    # the same episode goes on: more restarts, BackOff events -> diagnoses, no new record
    before = len(w.stats.diagnoses)
    versions = {"Event": srv.emit("Event", "ADDED", backoff_event(srv, *HEALTHY_POD, 1)),
                "Pod": srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD, 4))}
    rig.settle(versions, before)
    *_, last = srv.script_watch("Event", [("MODIFIED", backoff_event(srv, *HEALTHY_POD, n))
                                          for n in (2, 3, 4)])
    rig.settle({"Event": last}, len(w.stats.diagnoses))
    assert len(rig.detections("crash-loop")) == 1
    assert len(w.stats.diagnoses) >= before + 2


def test_recovery_closes_the_episode_and_a_relapse_is_a_new_one(
        make_rig: Callable[..., Rig], store: PhrStore) -> None:
    rig = make_rig(store)
    srv = rig.srv
    healthy = copy.deepcopy(srv.state.get("Pod", *HEALTHY_POD))
    srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD))
    rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-backend"))
    srv.emit("Pod", "MODIFIED", healthy)
    rig.wait(lambda: not rig.open_episode("crash-loop", "Deployment/todo-backend"))
    assert [e.rule for e in rig.watcher.episodes.closed] == ["crash-loop"]
    srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD, 5))
    rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-backend"))
    assert len(rig.detections("crash-loop")) == 2


def test_disconnect_resumes_from_the_last_resource_version(make_rig: Callable[..., Rig],
                                                           store: PhrStore) -> None:
    rig = make_rig(store)
    srv, w = rig.srv, rig.watcher
    pod = copy.deepcopy(srv.state.get("Pod", *HEALTHY_POD))
    pod["metadata"].setdefault("labels", {})["touched"] = "yes"  # no failure: no diagnosis
    srv.emit("Pod", "MODIFIED", pod)
    rv = srv.bookmark()  # the version to resume from, with no object of its own
    rig.wait(lambda: rig.caught_up("Pod", rv))
    watches_before = len(srv.watches())
    srv.disconnect_watches()
    eventually(lambda: any(r.path == "/api/v1/pods" for r in srv.watches()[watches_before:]))
    resumed = [r for r in srv.watches()[watches_before:] if r.path == "/api/v1/pods"]
    assert resumed[0].query["resourceVersion"] == rv
    assert w.stream("Pod").resumes >= 1 and w.stream("Pod").lists == 1  # no relist

    t0 = time.monotonic()
    srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD))
    rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-backend"))
    assert time.monotonic() - t0 < 5.0
    assert len(rig.detections("crash-loop")) == 1


def test_one_namespace_is_watched_in_its_namespace(make_rig: Callable[..., Rig],
                                                   store: PhrStore) -> None:
    rig = make_rig(store, options={"namespace": "todo"})
    srv = rig.srv
    wanted = {"/api/v1/namespaces/todo/pods", "/api/v1/namespaces/todo/events",
              "/apis/apps/v1/namespaces/todo/deployments", "/api/v1/nodes"}
    eventually(lambda: wanted <= {r.path for r in srv.watches()})
    assert not {"/api/v1/pods", "/api/v1/events"} & {r.path for r in srv.requests}
    srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD))
    rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-backend"))
    assert len(rig.detections("crash-loop")) == 1


def test_410_relists_and_sees_what_happened_in_the_gap(make_rig: Callable[..., Rig],
                                                       store: PhrStore) -> None:
    rig = make_rig(store)
    srv, w = rig.srv, rig.watcher
    old_rv = w.stream("Pod").resource_version
    # a failure the watch never streams (its event was compacted away) ...
    broken = crash_loop(srv, *HEALTHY_POD)
    with srv._write_lock:
        stored = srv.state.get("Pod", *HEALTHY_POD)
        srv.state.objects["Pod"].remove(stored)
        broken["metadata"]["resourceVersion"] = srv.next_resource_version()
        srv.state.objects["Pod"].append(broken)
        srv.state.add([])
        srv.compacted_before = int(srv.next_resource_version())
    start = len(srv.requests)
    srv.disconnect_watches()
    rig.wait(lambda: w.stream("Pod").relists >= 1
             and rig.open_episode("crash-loop", "Deployment/todo-backend"))
    pods = [r for r in srv.requests[start:] if r.path == "/api/v1/pods"]
    watch_expired, listing, watch_new = pods[0], pods[1], pods[2]
    assert watch_expired.query["watch"] == "1" and watch_expired.query["resourceVersion"] == old_rv
    assert "watch" not in listing.query
    assert watch_new.query["watch"] == "1"
    assert int(watch_new.query["resourceVersion"]) >= srv.compacted_before
    [rec] = rig.detections("crash-loop")
    assert rec.meta.data["owner"] == "Deployment/todo-backend"

    # and it goes on watching from the new version
    srv.emit("Pod", "MODIFIED", crash_loop(srv, *OTHER_POD))
    rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-redis"))


class Receiver:
    """A webhook on 127.0.0.1 that answers 200 and keeps what it got."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.hits.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"


def test_critical_finding_escalated_once(make_rig: Callable[..., Rig], store: PhrStore,
                                         tmp_path: Path) -> None:
    hook = Receiver()
    try:
        rig = make_rig(store, notifier=Notifier(hook.url, format="json", retries=0),
                       notify_state=tmp_path / "notify-state.json")
        srv, w = rig.srv, rig.watcher
        srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD))
        rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-backend"))
        crash = [h for h in hook.hits if h.get("rule") == "crash-loop"]
        assert len(crash) == 1 and crash[0]["severity"] == "critical"
        versions = {"Pod": srv.emit("Pod", "MODIFIED", crash_loop(srv, *HEALTHY_POD, 6)),
                    "Event": srv.emit("Event", "ADDED", backoff_event(srv, *HEALTHY_POD, 3))}
        rig.settle(versions, len(w.stats.diagnoses) - 1)
        assert len([h for h in hook.hits if h.get("rule") == "crash-loop"]) == 1
        assert all(h.get("severity") == "critical" for h in hook.hits)
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def test_burst_of_changes_is_rate_limited(make_rig: Callable[..., Rig]) -> None:
    rate, n = 15.0, 40
    rig = make_rig(None, options={"max_rate": rate, "debounce": 0.2})
    srv, w = rig.srv, rig.watcher
    before = len(w.stats.diagnoses)
    template = crash_loop(srv, *HEALTHY_POD)
    for i in range(n):  # 40 bare pods (40 workloads) crash at once
        pod = copy.deepcopy(template)
        pod["metadata"] = {"name": f"burst-{i}", "namespace": "todo", "uid": f"burst-uid-{i}"}
        srv.emit("Pod", "ADDED", pod)
    rig.wait(lambda: sum(e.rule == "crash-loop" and e.subject.startswith("Pod/burst-")
                         for e in list(w.episodes.open.values())) == n, timeout=60)
    starts = w.stats.diagnoses[before:]
    gaps = [b - a for a, b in pairwise(starts)]
    print(f"{len(starts)} diagnoses for {n} changed pods over {starts[-1] - starts[0]:.1f} s")
    assert min(gaps) >= 1 / rate - 1e-9  # float rounding only
    assert max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts) <= rate


def test_cli_records_existing_failures_once_and_stops_on_sigterm(
        replay: KubeReplay, store: PhrStore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from aiops.cli import app, main

    kubeconfig = str(replay.write_kubeconfig(tmp_path / "kubeconfig"))
    beat = tmp_path / "beat" / "heartbeat"
    args = ["watch", "--source", "kube:replay", "--store", str(store.root),
            "--heartbeat", str(beat)]
    env = {**os.environ, "KUBECONFIG": kubeconfig, "NO_PROXY": "127.0.0.1,localhost",
           "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "aiops.cli", *args], env=env,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or []],
                     daemon=True).start()


    def until(prefix: str) -> list[str]:
        seen = [lines.get(timeout=60)]
        while not seen[-1].startswith(prefix):
            seen.append(lines.get(timeout=60))
        return seen

    try:
        detected = until("watching")  # printed once the failures present are recorded
        assert sum(x.startswith("detected ") for x in detected) > 10
        deadline = time.monotonic() + 10  # the heartbeat a liveness probe reads
        while not beat.exists():
            assert time.monotonic() < deadline, "no heartbeat while watching"
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert until("stopped:")[-1].startswith("stopped: ")
    recorded = store.records("detection")
    assert len({r.meta.data["episode"] for r in recorded}) == len(recorded) > 10
    assert {"crash-loop", "oom-killed"} <= {r.meta.data["rule"] for r in recorded}
    assert all(r.meta.data["at_start"] for r in recorded)

    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    again = CliRunner().invoke(app, [*args, "--duration", "1s"])  # a restart
    assert again.exit_code == 0, again.output
    assert "0 detections recorded" in again.output
    assert len(store.records("detection")) == len(recorded)
    assert main([*args, "--duration", "fast"]) == 2  # a bad duration, before connecting
    assert main(["watch", "--source", "demo"]) == 2  # a snapshot cannot be watched


def test_a_forbidden_kind_is_left_out_the_others_still_detect(
        make_rig: Callable[..., Rig], replay: KubeReplay, store: PhrStore) -> None:
    replay.forbidden.add("Event")  # RBAC: no list/watch on events
    rig = make_rig(store)
    events = rig.watcher.stream("Event")
    assert "403" in events.failed and events.resource_version is None
    rig.srv.emit("Pod", "MODIFIED", crash_loop(rig.srv, *HEALTHY_POD))
    rig.wait(lambda: rig.open_episode("crash-loop", "Deployment/todo-backend"))
    assert len([r for r in rig.srv.requests if r.path == "/api/v1/events"]) == 2  # load, list
