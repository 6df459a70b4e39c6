"""Detection latency of `aiops watch` (issue 7, MTTD) against the local API replay.

20 scripted failures, one after the other: a new pod in CrashLoopBackOff is
streamed to the watcher, which debounces (1 s), diagnoses, and records a
detection PHR in a git-backed store. Latency = from the watch event leaving the
replay to the detection being recorded (what the MTTD gains over a 5-minute
cron diagnosis). Run: .venv/bin/python benchmarks/bench_watch.py [N]
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import git

from aiops.approvals.phr import PhrStore
from aiops.sources.demo import DATA_DIR
from aiops.sources.live import connect, load_live
from aiops.watch import Watcher, WatchOptions
from tests.support.kube_replay import KubeReplay

TEMPLATE = ("todo", "todo-backend-645c8f94d5-h24rw")


def failing_pod(srv: KubeReplay, i: int) -> dict:
    """A bare pod (its own workload, so every failure is a new episode) crash-looping."""
    pod = copy.deepcopy(srv.state.get("Pod", *TEMPLATE))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pod["metadata"] = {"name": f"bench-{i}", "namespace": "todo", "uid": f"bench-{i}"}
    cs = pod["status"]["containerStatuses"][0]
    cs.update(ready=False, restartCount=3, state={"waiting": {"reason": "CrashLoopBackOff"}},
              lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}})
    return pod


def main(n: int = 20) -> int:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    repo = git.Repo.init(tmp / "repo")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "bench")
        cfg.set_value("user", "email", "bench@localhost")
    repo.index.commit("initial")
    store = PhrStore(tmp / "repo" / "history" / "prompts")
    latencies: list[float] = []
    with KubeReplay(DATA_DIR) as srv:
        config = str(srv.write_kubeconfig(tmp / "kubeconfig"))
        client, _server, _ctx = connect("replay", kubeconfig=config)
        initial = load_live("replay", kubeconfig=config, logs=False)
        w = Watcher(client, initial, store=store,
                    options=WatchOptions(record_existing=False))
        with w:
            assert w.wait_for(lambda: all(s.resource_version for s in w.streams), 30)
            for i in range(n):
                subject = f"Pod/bench-{i}"
                t0 = time.monotonic()
                srv.emit("Pod", "ADDED", failing_pod(srv, i))
                found = w.wait_for(lambda s=subject: any(
                    e.subject == s and e.recorded for e in list(w.episodes.open.values())), 30)
                if not found:
                    print(f"failure {i} not detected within 30 s")
                    return 1
                latencies.append(time.monotonic() - t0)
        client.close()
    records = store.records("detection")
    qs = statistics.quantiles(latencies, n=10)
    print(f"{n} scripted failures, {len(records)} detection records")
    print("detection latency (watch event -> detection PHR): "
          f"median {statistics.median(latencies):.2f} s, p90 {qs[-1]:.2f} s, "
          f"max {max(latencies):.2f} s (debounce 1.0 s included)")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
