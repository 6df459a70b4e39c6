"""The report site end to end: `aiops report all` (every registered report,
executed with papermill, rendered, runbooks and index written).

Targets (issue 7), on the 2-core machine:
* the demo cluster: under 45 s;
* a generated 1,000-pod cluster (demo generator, faults in every 10th copy of the
  todo namespace, with usage history): under 3 minutes.

Wall time of the whole command (process start, kernels, papermill, nbconvert),
reports running `AIOPS_REPORT_WORKERS` at a time (default: the core count).
The health report alone (issue 2 target: under 20 s) is measured too. Each run
records its report PHRs, as a scheduled run does, but into a temporary store: a
benchmark is not part of the repository's audit trail.
Run: .venv/bin/python benchmarks/bench_report.py [--skip-large]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIOPS = Path(sys.executable).parent / "aiops"
OUT = Path(__file__).parent / ".out"
LARGE_PODS = 1_000
BROKEN_EVERY = 10


def large_cluster(pods: int = LARGE_PODS) -> tuple[Path, int]:
    """A generated snapshot with about `pods` pods and usage history, cached in .out/."""
    sys.path.insert(0, str(Path(__file__).parent))
    from _cluster import BASE_PODS, PODS_PER_COPY, PODS_PER_HEALTHY_COPY

    from aiops.sources.demo.generator import generate, is_broken_copy

    scale, total = 0, BASE_PODS
    while total < pods:
        scale += 1
        total += PODS_PER_COPY if is_broken_copy(scale, BROKEN_EVERY) else PODS_PER_HEALTHY_COPY
    target = OUT / f"site-{pods}-broken{BROKEN_EVERY}"
    if not (target / "manifest.json").exists():
        t = time.perf_counter()
        print(f"generating {target.name}: scale {scale}, with usage history ...", flush=True)
        generate(target, scale=scale, history=True, broken_every=BROKEN_EVERY)
        print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)
    return target, total


def timed(args: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run([str(AIOPS), *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"aiops {' '.join(args)} failed ({proc.returncode})")
    return seconds


def verdict(seconds: float, target: float) -> str:
    return f"{seconds:.1f} s; target < {target:.0f} s: {'met' if seconds < target else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-large", action="store_true", help="only the demo cluster")
    a = ap.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        s = timed(["report", "health", "--source", "demo", "--out", f"{tmp}/health"])
        ok &= s < 20
        print(f"aiops report health --source demo: {verdict(s, 20)}", flush=True)
        s = timed(["report", "all", "--source", "demo", "--out", f"{tmp}/demo"])
        ok &= s < 45
        print(f"aiops report all --source demo: {verdict(s, 45)}", flush=True)
        if not a.skip_large:
            path, pods = large_cluster()
            s = timed(["report", "all", "--source", str(path), "--out", f"{tmp}/large",
                       "--phr-store", f"{tmp}/history/prompts"])
            ok &= s < 180
            print(f"aiops report all on a generated {pods}-pod cluster: {verdict(s, 180)}",
                  flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
