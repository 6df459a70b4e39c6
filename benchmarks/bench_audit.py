"""Posture audit speed on 10,000 pods' worth of workloads.

Target (issue 5): auditing 10,000 pods' worth of workloads in under 3 s.
Measured twice: the loaded 10,000-pod snapshot (workloads audited once at their
top controller: a Deployment's ReplicaSets and pods are not audited again), and
the same cluster's objects written out as manifests, as `aiops audit --manifests
DIR` reads them. The target is the audit; parsing the YAML is reported beside it
(PyYAML, even with libyaml, reads about 1-2 MB/s here).
Run: .venv/bin/python benchmarks/bench_audit.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import OUT, scaled_cluster

from aiops.security import audit, load_checks, load_manifests
from aiops.security.manifests import as_manifests, write_manifests
from aiops.security.subjects import AuditContext
from aiops.sources.snapshot import load_snapshot

TARGET_S = 3.0


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def cpu_seconds(fn) -> float:
    """CPU time of one call: on a shared machine wall time also counts the others."""
    c = time.process_time()
    fn()
    return time.process_time() - c


def main() -> int:
    load_checks()
    state = load_snapshot(scaled_cluster(broken_every=10))
    ctx = AuditContext(state)
    pods = len(state.kind("Pod"))
    runs = [timed(lambda: audit(state)) for _ in range(3)]
    t_state = statistics.median(t for t, _ in runs)
    report = runs[0][1]
    cpu = min(cpu_seconds(lambda: audit(state)) for _ in range(3))
    print(f"cluster: {pods} pods -> {len(ctx.workloads)} workloads, {len(ctx.containers)} "
          f"containers, {len(load_checks())} checks, {len(report.results)} results, "
          f"{len(report.failures())} failed; audit median of 3: {t_state:.2f} s wall "
          f"(best CPU {cpu:.2f} s)", flush=True)

    target = OUT / "audit-manifests"
    if not target.exists():
        write_manifests(as_manifests(state), target)
    size = sum(f.stat().st_size for f in target.glob("*.yaml")) / 1e6
    t_load, (mstate, origin) = timed(lambda: load_manifests(target))
    t_audit, _ = timed(lambda: audit(mstate, origin=origin))
    print(f"manifests: {size:.1f} MB YAML -> {len(AuditContext(mstate).workloads)} workloads; "
          f"audit {t_audit:.2f} s (+ YAML parse {t_load:.2f} s, {size / t_load:.1f} MB/s)",
          flush=True)
    ok = t_state < TARGET_S and t_audit < TARGET_S
    print(f"target (10,000 pods' worth of workloads audited in < {TARGET_S:.0f} s): "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
