"""Scaled-up demo clusters for the benchmarks, generated once and cached under
benchmarks/.out/ (not committed), one directory per variant.

Two variants of the same size:

* realistic (`broken_every=K`): only every K-th copy of the demo's `todo`
  namespace keeps its injected faults, the others run the same release
  healthy, so a few percent of the pods fail, as in a real cluster;
* pathological (`broken_every=None`): every copy is broken, half the pods fail.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

OUT = Path(__file__).parent / ".out"
BASE_PODS = 9  # kube-system + default
# pods and events (before padding) of one copy of the todo namespace
PODS_PER_COPY = 17
EVENTS_PER_COPY = 48
PODS_PER_HEALTHY_COPY = 13  # the frontend rollout done, no failed backup retries
EVENTS_PER_HEALTHY_COPY = 43


def cluster_dir(pods: int, events: int, broken_every: int | None) -> Path:
    name = f"cluster-{pods}-{events}"
    return OUT / (name if broken_every is None else f"{name}-broken{broken_every}")


def scaled_cluster(pods: int = 10_000, events: int = 100_000,
                   broken_every: int | None = None) -> Path:
    """A snapshot directory with about `pods` pods and at least `events` events.

    broken_every: keep the faults only in every K-th copy (None: in all copies).
    """
    from aiops.sources.demo.generator import generate, is_broken_copy

    scale, total_pods, copy_events = 0, BASE_PODS, 0
    while total_pods < pods:
        scale += 1
        broken = is_broken_copy(scale, broken_every)
        total_pods += PODS_PER_COPY if broken else PODS_PER_HEALTHY_COPY
        copy_events += EVENTS_PER_COPY if broken else EVENTS_PER_HEALTHY_COPY
    scale = max(scale, 1)
    extra = max(0, math.ceil((events - copy_events) / total_pods))
    target = cluster_dir(pods, events, broken_every)
    if not (target / "manifest.json").exists():
        t = time.perf_counter()
        print(f"generating {target.name}: scale {scale}"
              + (f", faults in every {broken_every}th copy" if broken_every else "")
              + f", {extra} extra events/pod ...", flush=True)
        generate(target, scale=scale, events_per_pod=extra or None, history=False,
                 broken_every=broken_every)
        print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)
    return target
