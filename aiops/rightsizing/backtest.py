"""Back-test: replay the history against the recommended values.

For every recommendation, over the same samples it was computed from:

- `cpu_over_request`: CPU samples above the recommended CPU request (count and
  % of CPU samples). With the p95 + 30 % plan this is expected to be a few %.
- `cpu_throttle_risk`: share of CPU samples above the recommended CPU limit; when
  no CPU limit is recommended, share above request x `cpu_burst_factor`
  (default 2): bursts that only succeed while the node has idle CPU.
  `cpu_throttle_basis` says which threshold was used.
- `memory_over_request`: memory samples above the recommended memory request.
- `memory_over_limit`: memory samples >= the recommended memory limit (the
  request when no limit is recommended: eviction risk under node pressure);
  each would have been an OOM kill.
- `memory_oom_episodes`: distinct runs of such samples per pod; a gap of more
  than 1.5 sampling steps starts a new run.

A replay is an upper bound of sorts: after a real OOM kill usage restarts from
zero, so consecutive hits would not all have happened. Samples of all pods of
a workload are pooled, as the recommendation pools them.

Vectorised: one group id per (container, resource) for all samples, thresholds
looked up by id, counts by `np.bincount`. Only the (rare) memory hits are sorted
to count episodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aiops.rightsizing._groups import group_ids, time_ns
from aiops.usage import check_usage

KEYS = ["namespace", "workload_kind", "workload", "container"]
BACKTEST_FIELDS = (
    "cpu_samples", "cpu_over_request", "cpu_over_request_pct", "cpu_throttle_basis",
    "cpu_throttle_samples", "cpu_throttle_risk_pct", "memory_samples", "memory_over_request",
    "memory_over_request_pct", "memory_limit_basis", "memory_over_limit",
    "memory_over_limit_pct", "memory_oom_episodes",
)
DEFINITIONS = {
    "cpu_over_request": "CPU samples above the recommended CPU request",
    "cpu_throttle_risk_pct": "% of CPU samples above the recommended CPU limit, or above "
                             "request x cpu_burst_factor when no CPU limit is recommended",
    "memory_over_request": "memory samples above the recommended memory request",
    "memory_over_limit": "memory samples >= the recommended memory limit (request when "
                         "no limit): each would have been an OOM kill",
    "memory_oom_episodes": "distinct runs of such samples per pod (a gap > 1.5 sampling "
                           "steps starts a new run)",
}


def sampling_step(samples: pd.DataFrame, head: int = 500_000) -> pd.Timedelta | None:
    """The typical interval between samples (median gap of distinct times)."""
    if samples.empty:
        return None
    t = pd.Series(samples["time"].iloc[:head].unique()).sort_values()
    gaps = t.diff().dropna()
    gaps = gaps[gaps > pd.Timedelta(0)]
    return pd.Timedelta(gaps.median()) if len(gaps) else None


def _pct(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, np.round(100.0 * part / np.maximum(whole, 1), 2), np.nan)


def backtest(samples: pd.DataFrame, recs: pd.DataFrame, *, cpu_burst_factor: float = 2.0,
             step: pd.Timedelta | None = None) -> pd.DataFrame:
    """Back-test columns (BACKTEST_FIELDS) on `recs`' index.

    `recs` needs the key columns (namespace, workload_kind, workload, container)
    and cpu_request_recommended, cpu_limit_recommended,
    memory_request_recommended, memory_limit_recommended.
    """
    out = pd.DataFrame(index=recs.index)
    n_rows = len(recs)
    zeros = np.zeros(n_rows, dtype=np.int64)
    cpu_req = recs["cpu_request_recommended"].to_numpy(float)
    cpu_lim = recs["cpu_limit_recommended"].to_numpy(float)
    mem_req = recs["memory_request_recommended"].to_numpy(float)
    mem_lim = recs["memory_limit_recommended"].to_numpy(float)
    has_cpu_lim = ~np.isnan(cpu_lim)
    cpu_thr2 = np.where(has_cpu_lim, cpu_lim, cpu_req * cpu_burst_factor)
    has_mem_lim = ~np.isnan(mem_lim)
    mem_thr2 = np.where(has_mem_lim, mem_lim, mem_req)
    counts = {k: zeros.copy() for k in ("cpu_n", "cpu_req", "cpu_thr", "mem_n", "mem_req",
                                        "mem_lim", "mem_ep")}
    samples = check_usage(samples)
    if n_rows and not samples.empty:
        _count(samples, recs, cpu_req, cpu_thr2, mem_req, mem_thr2, counts, step)
    out["cpu_samples"] = counts["cpu_n"]
    out["cpu_over_request"] = counts["cpu_req"]
    out["cpu_over_request_pct"] = _pct(counts["cpu_req"], counts["cpu_n"])
    out["cpu_throttle_basis"] = np.where(has_cpu_lim, "limit",
                                         f"request x {cpu_burst_factor:g}")
    out["cpu_throttle_samples"] = counts["cpu_thr"]
    out["cpu_throttle_risk_pct"] = _pct(counts["cpu_thr"], counts["cpu_n"])
    out["memory_samples"] = counts["mem_n"]
    out["memory_over_request"] = counts["mem_req"]
    out["memory_over_request_pct"] = _pct(counts["mem_req"], counts["mem_n"])
    out["memory_limit_basis"] = np.where(has_mem_lim, "limit", "request (no limit)")
    out["memory_over_limit"] = counts["mem_lim"]
    out["memory_over_limit_pct"] = _pct(counts["mem_lim"], counts["mem_n"])
    out["memory_oom_episodes"] = counts["mem_ep"]
    return out


def _count(samples: pd.DataFrame, recs: pd.DataFrame, cpu_req: np.ndarray,
           cpu_thr2: np.ndarray, mem_req: np.ndarray, mem_thr2: np.ndarray,
           counts: dict[str, np.ndarray], step: pd.Timedelta | None) -> None:
    gid, groups = group_ids(samples, [*KEYS, "resource"])
    n_groups = len(groups)
    # recommendation row of each group (-1: no recommendation for it)
    row_keys = recs[KEYS].astype(str).assign(_row=np.arange(len(recs)))
    merged = groups.reset_index(names="_gid").merge(row_keys, on=KEYS, how="left")
    merged = merged.drop_duplicates("_gid").sort_values("_gid")
    row_of = merged["_row"].fillna(-1).to_numpy(np.int64)
    is_cpu = (merged["resource"] == "cpu").to_numpy() & (row_of >= 0)
    is_mem = (merged["resource"] == "memory").to_numpy() & (row_of >= 0)
    safe = np.where(row_of >= 0, row_of, 0)
    thr1 = np.full(n_groups, np.nan)
    thr2 = np.full(n_groups, np.nan)
    thr1[is_cpu], thr2[is_cpu] = cpu_req[safe[is_cpu]], cpu_thr2[safe[is_cpu]]
    thr1[is_mem], thr2[is_mem] = mem_req[safe[is_mem]], mem_thr2[safe[is_mem]]

    v = samples["value"].to_numpy(float)
    t1, t2 = thr1[gid], thr2[gid]
    mem_sample = is_mem[gid]
    with np.errstate(invalid="ignore"):
        hit1 = v > t1
        hit2 = (v > t2) | (mem_sample & (v == t2))
    n = np.bincount(gid, minlength=n_groups)
    c1 = np.bincount(gid, weights=hit1, minlength=n_groups).astype(np.int64)
    c2 = np.bincount(gid, weights=hit2, minlength=n_groups).astype(np.int64)
    episodes = _episodes(samples, gid, hit2 & mem_sample, n_groups, step)

    for mask, prefix in ((is_cpu, "cpu"), (is_mem, "mem")):
        rows = row_of[mask]
        np.add.at(counts[f"{prefix}_n"], rows, n[mask])
        np.add.at(counts[f"{prefix}_req"], rows, c1[mask])
        np.add.at(counts[f"{prefix}_thr" if prefix == "cpu" else "mem_lim"], rows, c2[mask])
    np.add.at(counts["mem_ep"], row_of[is_mem], episodes[is_mem])


def _episodes(samples: pd.DataFrame, gid: np.ndarray, hits: np.ndarray, n_groups: int,
              step: pd.Timedelta | None) -> np.ndarray:
    """Distinct runs of hit samples per (group, pod)."""
    idx = np.flatnonzero(hits)
    if idx.size == 0:
        return np.zeros(n_groups, dtype=np.int64)
    step = step or sampling_step(samples) or pd.Timedelta(minutes=1)
    t = time_ns(samples["time"].iloc[idx])
    pod, _ = pd.factorize(samples["pod"].iloc[idx].astype(str).to_numpy())
    g = gid[idx]
    order = np.lexsort((t, pod, g))
    t, pod, g = t[order], pod[order], g[order]
    new = np.ones(idx.size, dtype=bool)
    gap = 1.5 * step.value
    new[1:] = (g[1:] != g[:-1]) | (pod[1:] != pod[:-1]) | ((t[1:] - t[:-1]) > gap)
    return np.bincount(g[new], minlength=n_groups).astype(np.int64)


def as_dicts(bt: pd.DataFrame) -> list[dict[str, Any]]:
    """One plain, JSON-able dict per row (ints, floats or None, strings)."""
    records = []
    for row in bt[list(BACKTEST_FIELDS)].itertuples(index=False):
        rec: dict[str, Any] = {}
        for key, val in zip(BACKTEST_FIELDS, row, strict=True):
            if isinstance(val, str):
                rec[key] = val
            elif val is None or (isinstance(val, float) and np.isnan(val)):
                rec[key] = None
            elif isinstance(val, np.integer | int) and not isinstance(val, bool):
                rec[key] = int(val)
            else:
                rec[key] = float(val)
        records.append(rec)
    return records
