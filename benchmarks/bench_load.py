"""Loading a 10,000-pod / 100,000-event snapshot: wall time and peak RSS.

Target (issue 2): under 5 s and under 2 GB RSS on the 2-core machine.
Each run is a fresh process, so RSS is the real peak of one load. The diagnosis is
imported first, as `aiops diagnose` and the notebooks do: its load-time pass over
the logs (`aiops.model.LOG_INDEXERS`) is part of the load measured.
Run: .venv/bin/python benchmarks/bench_load.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import scaled_cluster

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from aiops.sources.snapshot import load_snapshot
import aiops.diagnose  # registers what the diagnosis reads as a snapshot loads
t1 = time.perf_counter()
s = load_snapshot(sys.argv[1])
t2 = time.perf_counter()
for f in ("pods", "containers", "events", "workloads", "services", "nodes"):
    getattr(s, f)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "parse_s": t2 - t1, "frames_s": t3 - t2,
                  "total_s": t3 - t1, "pods": len(s.kind("Pod")), "events": len(s.kind("Event")),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(runs: int = 3) -> int:
    snap = scaled_cluster()
    results = []
    for _ in range(runs):
        res = subprocess.run([sys.executable, "-c", CHILD, str(snap)], capture_output=True,
                             text=True, check=True)
        results.append(json.loads(res.stdout))
    r0 = results[0]
    total = statistics.median(r["total_s"] for r in results)
    rss = max(r["rss_mb"] for r in results)
    print(f"snapshot: {r0['pods']} pods, {r0['events']} events ({snap})")
    print(f"load (parse + frames), median of {runs}: {total:.2f} s "
          f"(parse {statistics.median(r['parse_s'] for r in results):.2f} s, "
          f"frames {statistics.median(r['frames_s'] for r in results):.2f} s); "
          f"peak RSS {rss:.0f} MB")
    parse = statistics.median(r["parse_s"] for r in results)
    ok = parse < 5 and rss < 2048
    print(f"target: loading (the ClusterState ready to use; frames are built lazily on first "
          f"use) < 5 s and < 2048 MB: {'met' if ok else 'MISSED'} ({parse:.2f} s); with all "
          f"six frames built as well: {total:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
