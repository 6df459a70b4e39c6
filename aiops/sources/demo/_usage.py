"""Per-container usage history (usage.parquet) and the metrics API's current view.

Each running container is described by a `SeriesSpec` (idle/busy CPU, base
memory, and optionally a leak or OOM kills); `render` turns those into 5-minute
samples over the 14 days before the capture with a daily cycle (busy UTC
afternoons), a weekly one (quiet weekends), noise and a few spikes. The last
sample is also what PodMetrics/NodeMetrics report, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

STEP = timedelta(minutes=5)
DAYS = 14
MI = 1024 * 1024
PAGE = 4096


@dataclass
class SeriesSpec:
    """One container's usage story; cpu in cores (idle, busy), memory in MiB (base, busy)."""

    namespace: str
    workload_kind: str
    workload: str
    pod: str
    container: str
    start: datetime  # samples only from here (container started)
    cpu: tuple[float, float]
    mem: tuple[float, float]
    end: datetime | None = None  # no samples after (pod replaced, container crash-looping)
    leak_mib_per_hour: float = 0.0
    leak_since: datetime | None = None
    ooms: list[datetime] = field(default_factory=list)
    limit_mib: float | None = None
    spikes: int = 2
    variant: str = ""  # copies share the arrays of the first series of the same variant


def grid(now: datetime) -> np.ndarray:
    """Sample times (datetime64[ns], UTC-naive) from now-14d to now inclusive."""
    n = int(timedelta(days=DAYS) / STEP)
    end = np.datetime64(now.replace(tzinfo=None), "ns")
    return end - np.arange(n, -1, -1) * np.timedelta64(int(STEP.total_seconds()), "s")


def _activity(times: np.ndarray) -> np.ndarray:
    """0..1 load shape: afternoon peak around 14:30 UTC, weekends at ~45 %."""
    secs = (times - np.datetime64("1970-01-01T00:00:00", "ns")) / np.timedelta64(1, "s")
    hour = (secs % 86400) / 3600
    weekday = ((secs // 86400).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    daily = 0.12 + 0.88 * np.exp(-0.5 * ((hour - 14.5) / 3.3) ** 2)
    weekly = np.where(weekday >= 5, 0.45, 1.0)
    return daily * weekly


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """AR(1) noise: neighbouring 5-minute samples are alike, as real series are."""
    eps = rng.normal(0.0, sigma, n + 24)
    kernel = 0.7 ** np.arange(24)
    return np.convolve(eps, kernel, mode="valid")[:n]


def series_values(spec: SeriesSpec, times: np.ndarray, activity: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask of samples present, cpu cores, memory bytes) for one container."""
    n = len(times)
    start = np.datetime64(spec.start.replace(tzinfo=None), "ns")
    mask = times >= start
    if spec.end is not None:
        mask &= times <= np.datetime64(spec.end.replace(tzinfo=None), "ns")
    idle, busy = spec.cpu
    noise = np.exp(_smooth_noise(rng, n, 0.09))
    cpu = (idle + (busy - idle) * activity) * noise
    for _ in range(spec.spikes):
        at = int(rng.integers(0, n - 3))
        cpu[at:at + int(rng.integers(1, 4))] *= float(rng.uniform(2.5, 5.0))
    base, extra = spec.mem
    mem_mib = base + extra * activity + _smooth_noise(rng, n, max(base * 0.004, 0.05))
    if spec.leak_mib_per_hour:
        since = np.datetime64((spec.leak_since or spec.start).replace(tzinfo=None), "ns")
        hours = np.clip((times - since) / np.timedelta64(1, "h"), 0, None)
        mem_mib = mem_mib + spec.leak_mib_per_hour * hours
    for oom in spec.ooms:
        at = np.datetime64(oom.replace(tzinfo=None), "ns")
        idx = int(np.searchsorted(times, at)) - 1  # last sample before the kill
        if 0 <= idx < n and spec.limit_mib:
            mem_mib[idx] = spec.limit_mib - float(rng.uniform(0.2, 3.5))
            if idx >= 1:
                mem_mib[idx - 1] = max(mem_mib[idx - 1], spec.limit_mib * 0.62)
            cpu[idx] = max(cpu[idx], busy * 6)
    mem = np.floor(np.maximum(mem_mib, 0.2) * MI / PAGE) * PAGE
    return mask, np.round(np.maximum(cpu, 0.0), 6), mem


@dataclass
class Rendered:
    """All series evaluated on the grid (kept in memory for metrics and parquet)."""

    times: np.ndarray
    specs: list[SeriesSpec]
    masks: list[np.ndarray]
    cpu: list[np.ndarray]
    mem: list[np.ndarray]

    def current(self, i: int) -> tuple[float, float] | None:
        """(cores, bytes) at the capture time, or None when the container is not running."""
        if not self.masks[i][-1]:
            return None
        return float(self.cpu[i][-1]), float(self.mem[i][-1])


def render(specs: list[SeriesSpec], now: datetime, seed: int) -> Rendered:
    """Evaluate every spec on the grid.

    A scaled copy of a namespace (todo-2, ...) tells the same story with other
    names, so its n-th series of a (workload, container) reuses the arrays of
    the first namespace that had one of the same variant (a healthy copy does
    not reuse a broken one's): copies cost no extra rendering, and the base
    namespace's values do not depend on how many copies follow.
    """
    rng = np.random.default_rng(seed)
    times = grid(now)
    act = _activity(times)
    masks, cpus, mems = [], [], []
    seen: dict[tuple[str, str, str], int] = {}
    done: dict[tuple[str, str, int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for spec in specs:
        n = seen.get((spec.namespace, spec.workload, spec.container), 0)
        seen[(spec.namespace, spec.workload, spec.container)] = n + 1
        key = (spec.workload, spec.container, n, spec.variant)
        if key not in done:
            done[key] = series_values(spec, times, act, rng)
        m, c, b = done[key]
        masks.append(m)
        cpus.append(c)
        mems.append(b)
    return Rendered(times, specs, masks, cpus, mems)


def write_parquet(r: Rendered, path: Path) -> int:
    """Write the long table (one row per sample and resource); returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "time", "series", "resource", "value")}
    for i in range(len(r.specs)):
        m = r.masks[i]
        k = int(m.sum())
        if not k:
            continue
        for res_code, values in ((0, r.cpu[i]), (1, r.mem[i])):
            cols["time"].append(r.times[m])
            cols["series"].append(np.full(k, i, dtype=np.int32))
            cols["resource"].append(np.full(k, res_code, dtype=np.int8))
            cols["value"].append(values[m].astype(np.float64))
    time = np.concatenate(cols["time"]) if cols["time"] else np.array([], "datetime64[ns]")
    sidx = np.concatenate(cols["series"]) if cols["series"] else np.array([], np.int32)
    ridx = np.concatenate(cols["resource"]) if cols["resource"] else np.array([], np.int8)
    value = np.concatenate(cols["value"]) if cols["value"] else np.array([], np.float64)

    def dict_col(attr: str) -> pa.DictionaryArray:
        names = [getattr(s, attr) for s in r.specs]
        uniq = sorted(set(names))
        code = {n: j for j, n in enumerate(uniq)}
        per_series = np.array([code[n] for n in names], dtype=np.int32)
        return pa.DictionaryArray.from_arrays(pa.array(per_series[sidx], pa.int32()),
                                              pa.array(uniq, pa.string()))

    table = pa.table({
        "time": pa.array(time, pa.timestamp("ns", tz="UTC")),
        "namespace": dict_col("namespace"),
        "workload_kind": dict_col("workload_kind"),
        "workload": dict_col("workload"),
        "pod": dict_col("pod"),
        "container": dict_col("container"),
        "resource": pa.DictionaryArray.from_arrays(pa.array(ridx.astype(np.int32), pa.int32()),
                                                   pa.array(["cpu", "memory"], pa.string())),
        "value": pa.array(value, pa.float64()),
    })
    pq.write_table(table, path, compression="zstd", compression_level=9,
                   use_byte_stream_split=["value"], write_statistics=True,
                   row_group_size=1 << 20)
    return table.num_rows


def cpu_quantity(cores: float) -> str:
    return f"{round(cores * 1e9)}n"


def mem_quantity(nbytes: float) -> str:
    return f"{int(nbytes) // 1024}Ki"
