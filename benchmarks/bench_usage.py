"""Usage statistics at cluster scale: the local metrics store and Prometheus pushdown.

Data: synthetic, seeded. 1,000 containers (one per pod; 20 namespaces, workloads
of 1-4 replicas) x 14 days at 1-minute resolution: 20,160 scrapes per container
and resource, 40.3 million samples (20.2 M CPU + 20.2 M memory).

1. Store: the samples are appended day by day to a MetricsStore in
   benchmarks/.out/usage-store, then `history().stats(window="14d")` runs in a
   fresh process (wall time, peak RSS from getrusage). Target < 10 s, < 3 GB.
   The same rows are then read into memory and `container_stats()` (the
   FrameHistory path: the demo, notebooks, test frames) is timed and compared.
2. Prometheus: the same series (CPU as cAdvisor counters, memory as gauges)
   are turned into TSDB blocks with promtool (one OpenMetrics file per 2 h
   block: promtool re-reads its whole input per block, so a single 4 GB file
   would take hours), served by a real `prometheus`, and
   `PrometheusHistory.stats(window="14d")` is timed. Target < 30 s. Its numbers
   are compared with the store's. `--prom-containers` scales this part down
   when the import would take too long on a small machine.

Run: .venv/bin/python benchmarks/bench_usage.py [--containers 1000 --days 14]
     [--prom-containers 1000 | --no-prometheus] [--no-frame] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiops.sources.metrics_store import MetricsStore  # noqa: E402
from aiops.usage import USAGE_COLUMNS  # noqa: E402

OUT = Path(__file__).parent / ".out"
STEP = 60
END = 1_709_251_200  # 2024-03-01T00:00:00Z
SAFE = "bcdfghjklmnpqrstvwxz2456789"
MI = 1024 * 1024

PEAK_RSS = r"""
def peak_rss_mb():
    # VmHWM is this process's own peak; ru_maxrss on Linux also carries the
    # high-water mark of the (large) parent that forked it
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

CHILD = r"""
import json, resource, sys, time
""" + PEAK_RSS + r"""
t0 = time.perf_counter()
from aiops.sources.metrics_store import MetricsStore
t1 = time.perf_counter()
h = MetricsStore(sys.argv[1]).history()
s = h.stats(window=sys.argv[2])
t2 = time.perf_counter()
s.to_parquet(sys.argv[3])
print(json.dumps({"import_s": t1 - t0, "stats_s": t2 - t1, "cpu_s": time.process_time(),
                  "rows": len(s),
                  "samples": int(s["samples"].sum()), "rss_mb": peak_rss_mb(),
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FRAME_CHILD = r"""
import json, resource, sys, time
""" + PEAK_RSS + r"""
from aiops.sources.metrics_store import MetricsStore
from aiops.usage import container_stats
df = MetricsStore(sys.argv[1]).history().samples(window=sys.argv[2])
t0, c0 = time.perf_counter(), time.process_time()
s = container_stats(df)
t1, c1 = time.perf_counter(), time.process_time()
s.to_parquet(sys.argv[3])
print(json.dumps({"stats_s": t1 - t0, "cpu_s": c1 - c0, "rows": len(s),
                  "samples": int(s["samples"].sum()),
                  "rss_mb": peak_rss_mb()}))
"""

PROM_CHILD = r"""
import json, resource, sys, time
""" + PEAK_RSS + r"""
t0 = time.perf_counter()
from aiops.sources.prometheus import PrometheusHistory
h = PrometheusHistory(sys.argv[1], at=float(sys.argv[2]), timeout=600,
                      concurrency=int(sys.argv[5]), strategy=sys.argv[6])
s = h.stats(window=sys.argv[3])
t1 = time.perf_counter()
s.to_parquet(sys.argv[4])
slow = sorted(h.queries, key=lambda q: -q.seconds)[:2]
print(json.dumps({"stats_s": t1 - t0, "rows": len(s), "queries": len(h.queries),
                  "query_s": sum(q.seconds for q in h.queries),
                  "slowest": [[round(q.seconds, 2), q.purpose] for q in slow],
                  "rss_mb": peak_rss_mb()}))
"""


def layout(containers: int, seed: int) -> pd.DataFrame:
    """One container per pod; workloads of 1-4 replicas over 20 namespaces."""
    rng = np.random.default_rng(seed)
    rows = []
    w = 0
    while len(rows) < containers:
        replicas = int(rng.integers(1, 5))
        ns = f"team-{w % 20:02d}"
        name = f"svc-{w:04d}"
        rs = "".join(rng.choice(list(SAFE), 9))
        for _ in range(min(replicas, containers - len(rows))):
            pod = f"{name}-{rs}-{''.join(rng.choice(list(SAFE), 5))}"
            rows.append((ns, "Deployment", name, pod, "app",
                         float(rng.uniform(0.01, 2.0)), float(rng.uniform(30, 2000))))
        w += 1
    return pd.DataFrame(rows, columns=["namespace", "workload_kind", "workload", "pod",
                                       "container", "cpu_base", "mem_base_mib"])


def series_values(pods: pd.DataFrame, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(CPU counters, working-set bytes), each (pods, n) for scrapes END-(n-1)*60 .. END."""
    rng = np.random.default_rng(seed + 1)
    k = np.arange(n)
    daily = 1 + 0.6 * np.sin(2 * np.pi * (k % 1440) / 1440)
    counters = np.empty((len(pods), n))
    mem = np.empty((len(pods), n))
    for i, (cpu_base, mem_base) in enumerate(zip(pods["cpu_base"], pods["mem_base_mib"],
                                                 strict=True)):
        rate = cpu_base * daily * rng.lognormal(0, 0.3, n)
        counters[i] = 1000.0 + np.cumsum(rate * STEP)
        m = mem_base * (1 + 0.15 * daily) + rng.normal(0, mem_base * 0.01, n)
        mem[i] = np.floor(np.maximum(m, 1) * MI / 4096) * 4096
    return counters, mem


def fill_store(path: Path, pods: pd.DataFrame, counters: np.ndarray, mem: np.ndarray,
               days: int) -> dict[str, float]:
    """Append day by day (as a sampler's compacted days would be); CPU = irate of the counter."""
    if path.exists():
        shutil.rmtree(path)
    store = MetricsStore(path)
    n = counters.shape[1]
    times = END - (n - 1 - np.arange(n)) * STEP
    rate = np.full_like(counters, np.nan)
    rate[:, 1:] = (counters[:, 1:] - counters[:, :-1]) / 60.0  # what irate returns
    per_day = 1440
    t0 = time.perf_counter()
    rows = 0
    cats, codes = {}, {}
    for c in ("namespace", "workload_kind", "workload", "pod", "container"):
        cat = pd.Categorical(pods[c].astype(str))
        cats[c], codes[c] = cat.dtype, np.asarray(cat.codes)
    npods = len(pods)
    for d in range(0, n, per_day):
        sl = slice(d, min(d + per_day, n))
        m = sl.stop - sl.start
        parts = []
        for resource, values in (("cpu", rate[:, sl]), ("memory", mem[:, sl])):
            df = pd.DataFrame({
                "time": pd.to_datetime(np.tile(times[sl], npods) * 10**9, unit="ns", utc=True),
                **{c: pd.Categorical.from_codes(np.repeat(codes[c], m), dtype=cats[c])
                   for c in cats},
                "resource": pd.Categorical.from_codes(
                    np.full(npods * m, int(resource == "memory"), np.int8),
                    categories=["cpu", "memory"]),
                "value": values.reshape(-1)})
            parts.append(df)
        rows += store.append(pd.concat(parts, ignore_index=True)[USAGE_COLUMNS])
    return {"rows": rows, "append_s": time.perf_counter() - t0,
            "size_mb": sum(f.stat().st_size for f in path.rglob("*.parquet")) / MI}


def run_store(path: Path, window: str) -> dict[str, float]:
    out = OUT / "store-stats.parquet"
    res = subprocess.run([sys.executable, "-c", CHILD, str(path), window, str(out)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_frame(path: Path, window: str) -> dict[str, float]:
    """container_stats() over the same rows held in memory (FrameHistory, the demo path)."""
    out = OUT / "frame-stats.parquet"
    res = subprocess.run([sys.executable, "-c", FRAME_CHILD, str(path), window, str(out)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_prometheus(pods: pd.DataFrame, counters: np.ndarray, mem: np.ndarray, window: str,
                   concurrency: int, strategies: list[str]) -> dict[str, Any]:
    from tests.support.prometheus import Series, find_binaries, write_blocks

    binaries = find_binaries()
    if binaries is None:
        return {"skipped": "prometheus/promtool not installed"}
    prom, promtool = binaries
    base = OUT / "usage-prom"
    n = counters.shape[1]
    params = {"containers": len(pods), "scrapes": n, "first_pod": pods["pod"].iloc[0],
              "checksum": float(counters[:, -1].sum() + mem[:, -1].sum())}
    marker = base / "params.json"
    if marker.exists() and json.loads(marker.read_text()) == params:
        return _serve(base, prom, window, concurrency, strategies,
                      {"samples": 2 * counters.size, "import_s": 0.0, "reused": True})
    if base.exists():
        shutil.rmtree(base)
    times = END - (n - 1 - np.arange(n)) * STEP
    series = []
    for i, p in enumerate(pods.itertuples()):
        labels = {"namespace": p.namespace, "pod": p.pod, "container": p.container,
                  "job": "kubelet", "id": f"/kubepods/pod-{p.pod}/{p.container}"}
        series.append(Series("container_cpu_usage_seconds", "counter", labels, times,
                             counters[i]))
        series.append(Series("container_memory_working_set_bytes", "gauge", labels, times,
                             mem[i]))
    for p in pods.itertuples():  # what kube-state-metrics says about the owners
        rs = p.pod.rsplit("-", 1)[0]
        series.append(Series("kube_pod_owner", "gauge",
                             {"namespace": p.namespace, "pod": p.pod, "owner_kind": "ReplicaSet",
                              "owner_name": rs, "owner_is_controller": "true"},
                             times[::60], np.ones(len(times[::60]))))
    for (ns, rs, wl) in {(p.namespace, p.pod.rsplit("-", 1)[0], p.workload)
                         for p in pods.itertuples()}:
        series.append(Series("kube_replicaset_owner", "gauge",
                             {"namespace": ns, "replicaset": rs, "owner_kind": "Deployment",
                              "owner_name": wl, "owner_is_controller": "true"},
                             times[::60], np.ones(len(times[::60]))))
    t0 = time.perf_counter()
    samples = write_blocks(series, base / "data", base / "work", promtool, jobs=2)
    import_s = time.perf_counter() - t0
    del series
    marker.write_text(json.dumps(params))
    return _serve(base, prom, window, concurrency, strategies,
                  {"samples": samples, "import_s": import_s})


def _serve(base: Path, prom: str, window: str, concurrency: int, strategies: list[str],
           extra: dict[str, float]) -> dict[str, Any]:
    from tests.support.prometheus import PrometheusServer

    # a long-running server keeps 14 days in a few compacted blocks, not 168 2 h ones
    server = PrometheusServer(base / "data", prom, compact=True)
    t0 = time.perf_counter()
    url = server.start(timeout=600)
    blocks = server.wait_compacted()
    result: dict[str, Any] = {**extra, "start_s": time.perf_counter() - t0, "blocks": blocks}
    try:
        for strategy in strategies:
            out = OUT / f"prom-stats-{strategy}.parquet"
            res = subprocess.run([sys.executable, "-c", PROM_CHILD, url, str(END), window,
                                  str(out), str(concurrency), strategy],
                                 capture_output=True, text=True, check=False, cwd=ROOT)
            if res.returncode != 0:
                result[strategy] = {"error": res.stderr[-1500:]}
            else:
                result[strategy] = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    return result


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """Relative differences of the recommendation inputs (p95 CPU, peak memory)."""
    keys = ["namespace", "workload_kind", "workload", "container", "resource"]
    m = a.merge(b, on=keys, suffixes=("_a", "_b"))
    out: dict[str, Any] = {"rows": f"{len(m)}/{len(a)}"}
    for res, cols in (("cpu", ("p95", "peak")), ("memory", ("peak", "p95"))):
        mm = m[m["resource"] == res]
        for c in cols:
            rel = (mm[f"{c}_b"] / mm[f"{c}_a"] - 1).abs()
            out[f"{res}_{c}_median"] = float(rel.median())
            out[f"{res}_{c}_max"] = float(rel.max())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--containers", type=int, default=1000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--prom-containers", type=int, default=None,
                    help="containers for the Prometheus part (default: all)")
    ap.add_argument("--no-prometheus", action="store_true")
    ap.add_argument("--no-frame", action="store_true",
                    help="skip container_stats() over the rows held in memory")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--strategies", default="hybrid,points",
                    help="PrometheusHistory strategies to time (hybrid,points,pushdown)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", action="store_true",
                    help="keep benchmarks/.out data (the Prometheus blocks are then reused)")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    window = f"{a.days}d"
    n = a.days * 1440
    t0 = time.perf_counter()
    pods = layout(a.containers, a.seed)
    counters, mem = series_values(pods, n, a.seed)
    gen_s = time.perf_counter() - t0
    print(f"data: {len(pods)} containers in {pods['workload'].nunique()} workloads x "
          f"{a.days} d at 1 min = {2 * len(pods) * n / 1e6:.1f} M samples "
          f"(generated in {gen_s:.1f} s)")
    store_path = OUT / "usage-store"
    fill = fill_store(store_path, pods, counters, mem, a.days)
    print(f"store: appended {fill['rows'] / 1e6:.1f} M rows in {fill['append_s']:.1f} s, "
          f"{fill['size_mb']:.0f} MB on disk")
    st = run_store(store_path, window)
    ok_store = st["stats_s"] < 10 and st["rss_mb"] < 3072
    print(f"store stats(window={window}): {st['stats_s']:.2f} s ({st['cpu_s']:.2f} s CPU "
          f"incl. imports), peak RSS {st['rss_mb']:.0f} MB "
          f"(VmHWM; getrusage ru_maxrss {st['ru_maxrss_mb']:.0f} MB incl. the forking parent), "
          f"{st['rows']} rows over {st['samples'] / 1e6:.1f} M samples "
          f"-> target < 10 s and < 3072 MB: {'met' if ok_store else 'MISSED'}")
    if not a.no_frame:
        fr = run_frame(store_path, window)
        same = pd.read_parquet(OUT / "frame-stats.parquet").equals(
            pd.read_parquet(OUT / "store-stats.parquet"))
        print(f"frame container_stats(): {fr['stats_s']:.2f} s ({fr['cpu_s']:.2f} s CPU) over "
              "the rows in memory, "
              f"peak RSS {fr['rss_mb']:.0f} MB (incl. the rows), {fr['rows']} rows; "
              f"identical to the store's stats: {same}")
    ok_prom = True
    if not a.no_prometheus:
        k = a.prom_containers or len(pods)
        sub = pods.iloc[:k]
        strategies = a.strategies.split(",")
        pr = run_prometheus(sub, counters[:k], mem[:k], window, a.concurrency, strategies)
        if "skipped" in pr:
            print(f"prometheus part skipped: {pr['skipped']}")
        else:
            how = ("blocks reused from an earlier run" if pr.get("reused") else
                   f"imported by promtool in {pr['import_s']:.0f} s")
            print(f"prometheus: {k} containers, {pr['samples'] / 1e6:.1f} M samples {how}; "
                  f"server ready and compacted to {pr['blocks']} blocks in {pr['start_s']:.0f} s")
            store_df = pd.read_parquet(OUT / "store-stats.parquet")
            store_df = store_df[store_df["workload"].isin(set(sub["workload"]))]
            # workloads cut by --prom-containers have fewer pods on the Prometheus side
            full = sub.groupby("workload").size() == pods[pods["workload"].isin(
                sub["workload"])].groupby("workload").size()
            store_df = store_df[store_df["workload"].isin(full[full].index)]
            for strategy in strategies:
                r = pr[strategy]
                if "error" in r:
                    ok_prom = False
                    print(f"prometheus stats strategy={strategy}: FAILED {r['error']}")
                    continue
                ok = r["stats_s"] < 30
                ok_prom = ok_prom and (ok or strategy == "pushdown")
                print(f"prometheus stats(window={window}, strategy={strategy}): "
                      f"{r['stats_s']:.2f} s, {r['queries']} queries ({r['query_s']:.1f} s "
                      f"summed), client peak RSS {r['rss_mb']:.0f} MB; slowest {r['slowest']}"
                      f" -> target < 30 s: {'met' if ok else 'MISSED'}")
                cmp = compare(store_df, pd.read_parquet(OUT / f"prom-stats-{strategy}.parquet"))
                diffs = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in cmp.items())
                print("  relative difference to the store (Prometheus: CPU sampled every 5 min,"
                      f" memory 5-min peaks; store: every 1-min sample): {diffs}")
    if not a.keep:
        shutil.rmtree(store_path, ignore_errors=True)
        shutil.rmtree(OUT / "usage-prom", ignore_errors=True)
    return 0 if ok_store and ok_prom else 1


if __name__ == "__main__":
    sys.exit(main())
