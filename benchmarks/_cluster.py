"""Scaled-up demo clusters for the benchmarks, generated once and cached under
benchmarks/.out/ (not committed)."""

from __future__ import annotations

import math
import time
from pathlib import Path

OUT = Path(__file__).parent / ".out"
PODS_PER_COPY = 17  # pods of one copy of the demo's todo namespace
BASE_PODS = 9  # kube-system + default
EVENTS_PER_COPY = 48


def scaled_cluster(pods: int = 10_000, events: int = 100_000) -> Path:
    """A snapshot directory with about `pods` pods and at least `events` events."""
    from aiops.sources.demo.generator import generate

    scale = max(1, math.ceil((pods - BASE_PODS) / PODS_PER_COPY))
    total_pods = BASE_PODS + scale * PODS_PER_COPY
    extra = max(0, math.ceil((events - scale * EVENTS_PER_COPY) / total_pods))
    target = OUT / f"cluster-{pods}-{events}"
    if not (target / "manifest.json").exists():
        t = time.perf_counter()
        print(f"generating {target.name}: scale {scale}, {extra} extra events/pod ...",
              flush=True)
        generate(target, scale=scale, events_per_pod=extra or None, history=False)
        print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)
    return target
