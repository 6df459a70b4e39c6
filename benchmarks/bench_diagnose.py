"""Diagnosis speed on a 10,000-pod / 100,000-event cluster.

Targets (issue 3): one pod's diagnosis median under 20 ms; whole-cluster triage
under 1 s; cost about linear in the number of objects.
Run: .venv/bin/python benchmarks/bench_diagnose.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import scaled_cluster

from aiops.diagnose import diagnose
from aiops.sources.snapshot import load_snapshot


def triage_seconds(state, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        diagnose(state)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    state = load_snapshot(scaled_cluster())
    pods = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in state.kind("Pod")]
    t = time.perf_counter()
    first = diagnose(state)  # builds the per-state indexes once, as a session would
    warm = time.perf_counter() - t
    triage = triage_seconds(state)
    rng = random.Random(7)
    sample = rng.sample(pods, 300)
    per_pod = []
    for ns, name in sample:
        t = time.perf_counter()
        diagnose(state, namespace=ns, pod=name)
        per_pod.append((time.perf_counter() - t) * 1000)
    per_pod.sort()
    print(f"cluster: {len(pods)} pods, {len(state.kind('Event'))} events; "
          f"{len(first.findings)} findings, {len(first.failures)} rule failures")
    print(f"first triage (builds indexes): {warm:.2f} s")
    print(f"whole-cluster triage, median of 3: {triage:.3f} s (target < 1 s)")
    print(f"one pod, {len(per_pod)} random pods: median {statistics.median(per_pod):.2f} ms, "
          f"p95 {per_pod[int(0.95 * len(per_pod))]:.2f} ms (target median < 20 ms)")
    small = load_snapshot(scaled_cluster(pods=2_500, events=25_000))
    diagnose(small)
    t_small = triage_seconds(small)
    n_small = len(small.kind("Pod"))
    print(f"linearity: {n_small} pods {t_small * 1e6 / n_small:.1f} us/pod vs "
          f"{len(pods)} pods {triage * 1e6 / len(pods):.1f} us/pod")
    ok = triage < 1 and statistics.median(per_pod) < 20
    print(f"targets: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
