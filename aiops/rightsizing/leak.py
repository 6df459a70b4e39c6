"""Memory-leak forecast: does a container's working set grow steadily, and when
does it reach its memory limit?

Method, per pod (then summarised per workload container):

1. Daily maxima of the working set, each placed at the time it was observed.
   Days with fewer samples than `day_coverage` x the pod's median day (the
   partial first/last day of the window) are left out.
2. Restarts reset the working set: a daily maximum more than `reset_drop`
   below the previous one starts a new segment, and only the last segment is
   fitted.
3. Ordinary least squares of the daily maxima over time (closed form on
   centred sums, vectorised over all pods): slope b (bytes/day), its standard
   error se, and R².
4. A leak needs all of: at least `min_days` points, b > 0, R² >= `min_r2`,
   at least `min_steady` of the day-over-day changes positive, b / se >=
   `min_t`, and growth over the segment >= `min_growth` of its start level.
   Daily maxima make a flat but spiky container (periodic batches, OOM kills at
   the limit) fail R² and steadiness.
5. Time to limit = (limit - fitted level now) / b, with a 95 % band from the
   slope's uncertainty only: (limit - level) / (b ± t(0.975, n-2) x se); the
   upper end is unbounded when b - t x se <= 0.

Findings use rule id `memory-leak`; severity critical when the limit is reached
within `critical_days`, warning within `warning_days` (or when there is no
limit: the node's memory is then the ceiling), info beyond.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aiops.diagnose.finding import Evidence, Finding, Remediation
from aiops.quantity import format_bytes
from aiops.rightsizing._groups import group_ids, time_ns
from aiops.rightsizing.config import LeakConfig
from aiops.usage import check_usage

if TYPE_CHECKING:
    from aiops.model import ClusterState

KEYS = ["namespace", "workload_kind", "workload", "container"]
RULE_ID = "memory-leak"
DOCS = "https://kubernetes.io/docs/tasks/configure-pod-container/assign-memory-resource/"
DAY_NS = 86_400 * 10**9
LEAK_COLUMNS = [
    *KEYS, "leak", "pod", "pods", "pods_leaking", "days", "segment_start", "slope_bytes_per_day",
    "slope_se", "r2", "steady_share", "growth", "first_daily_max", "last_daily_max",
    "current_bytes", "limit_bytes", "days_to_limit", "days_to_limit_low",
    "days_to_limit_high", "eta", "eta_earliest", "eta_latest", "severity", "reason",
]
ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
         2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """Student's t 97.5 % quantile (table to 30 df, Cornish-Fisher term beyond)."""
    if df < 1:
        return math.inf
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df)


def memory_limits(state: ClusterState) -> pd.DataFrame:
    """Current memory limit per workload container (largest over its pods)."""
    c = state.containers
    if c.empty:
        return pd.DataFrame(columns=[*KEYS, "memory_limit"])
    return (c.groupby(KEYS, as_index=False, sort=False)["memory_limit"].max())


def _daily(mem: pd.DataFrame, cfg: LeakConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily maxima per pod after dropping partial days and pre-restart segments,
    and the time of each pod's last sample (ns) as `now`.

    Vectorised over all samples: dense (pod, day) ids and `np.maximum.at`.
    """
    pod_keys = [*KEYS, "pod"]
    pid, pkeys = group_ids(mem, pod_keys)
    t = time_ns(mem["time"])
    v = mem["value"].to_numpy(float)
    day0 = int(t.min()) // DAY_NS
    day = t // DAY_NS - day0
    n_days = int(day.max()) + 1
    size = len(pkeys) * n_days
    did = pid * n_days + day
    dmax = np.full(size, -np.inf)
    np.maximum.at(dmax, did, v)
    count = np.bincount(did, minlength=size)
    at_max = v == dmax[did]
    tmax = np.full(size, np.iinfo(np.int64).min)
    np.maximum.at(tmax, did[at_max], t[at_max])
    last = np.full(len(pkeys), np.iinfo(np.int64).min)
    np.maximum.at(last, pid, t)
    now = pkeys.assign(now=last)
    idx = np.flatnonzero(count > 0)
    daily = pd.DataFrame({
        "_pod": idx // n_days,
        "day": pd.to_datetime((idx % n_days + day0) * DAY_NS, utc=True),
        "max": dmax[idx], "count": count[idx], "t": pd.to_datetime(tmax[idx], utc=True),
    }).join(pkeys, on="_pod").drop(columns="_pod")
    median = daily.groupby(pod_keys, sort=False)["count"].transform("median")
    daily = daily[daily["count"] >= cfg.day_coverage * median].copy()
    prev = daily.groupby(pod_keys, sort=False)["max"].shift(1)
    daily["reset"] = (daily["max"] < prev * (1 - cfg.reset_drop)).astype(int)
    seg = daily.groupby(pod_keys, sort=False)["reset"].cumsum()
    top = seg.groupby([daily[k] for k in pod_keys], sort=False).transform("max")
    return daily[seg == top].drop(columns="reset"), now


def _fit(daily: pd.DataFrame, now_ns: pd.Series) -> pd.DataFrame:
    """OLS per pod on centred sums: slope, se, R², steadiness, fitted level now."""
    pod_keys = [*KEYS, "pod"]
    x = time_ns(daily["t"]) / DAY_NS
    d = daily.assign(x=x, y=daily["max"].astype(float))
    g = d.groupby(pod_keys, sort=False)
    d["xc"] = d["x"] - g["x"].transform("mean")
    d["yc"] = d["y"] - g["y"].transform("mean")
    d["xx"], d["xy"], d["yy"] = d["xc"] ** 2, d["xc"] * d["yc"], d["yc"] ** 2
    d["up"] = (g["y"].diff() > 0).astype(float)
    g = d.groupby(pod_keys, sort=False)
    f = g.agg(n=("y", "size"), mx=("x", "mean"), my=("y", "mean"), sxx=("xx", "sum"),
              sxy=("xy", "sum"), syy=("yy", "sum"), ups=("up", "sum"), x0=("x", "min"),
              x1=("x", "max"), y0=("y", "first"), y1=("y", "last"), start=("day", "min"))
    with np.errstate(invalid="ignore", divide="ignore"):
        f["b"] = np.where(f["sxx"] > 0, f["sxy"] / f["sxx"], np.nan)
        ssr = np.maximum(f["syy"] - f["b"] * f["sxy"], 0.0)
        f["r2"] = np.where(f["syy"] > 0, 1 - ssr / f["syy"], 0.0)
        f["se"] = np.where((f["n"] > 2) & (f["sxx"] > 0),
                           np.sqrt(ssr / np.maximum(f["n"] - 2, 1) / f["sxx"]), np.nan)
        f["steady"] = np.where(f["n"] > 1, f["ups"] / (f["n"] - 1), 0.0)
        f["a"] = f["my"] - f["b"] * f["mx"]
        start_level = f["a"] + f["b"] * f["x0"]
        f["growth"] = np.where(start_level > 0, f["b"] * (f["x1"] - f["x0"]) / start_level,
                               np.nan)
        f["t_stat"] = np.where(f["se"] > 0, f["b"] / f["se"],
                               np.where(f["b"] > 0, np.inf, 0.0))
    f = f.reset_index()
    now = f[pod_keys].merge(now_ns, on=pod_keys, how="left")["now"].to_numpy()
    f["now"] = now
    f["level"] = f["a"] + f["b"] * (now / DAY_NS)
    return f


def leak_forecast(samples: pd.DataFrame, limits: pd.DataFrame | None = None,
                  config: LeakConfig | None = None) -> pd.DataFrame:
    """One row per workload container with memory samples (LEAK_COLUMNS).

    `limits` has the key columns and `memory_limit` (bytes; see
    `memory_limits(state)`); without it times to limit are NaN.
    """
    cfg = config or LeakConfig()
    samples = check_usage(samples)
    mem = samples[samples["resource"] == "memory"]
    if mem.empty:
        return pd.DataFrame(columns=LEAK_COLUMNS)
    daily, now_ns = _daily(mem, cfg)
    if daily.empty:
        return pd.DataFrame(columns=LEAK_COLUMNS)
    f = _fit(daily, now_ns)
    f["leak"] = ((f["n"] >= cfg.min_days) & (f["b"] > 0) & (f["r2"] >= cfg.min_r2)
                 & (f["steady"] >= cfg.min_steady) & (f["t_stat"] >= cfg.min_t)
                 & (f["growth"] >= cfg.min_growth))
    if limits is not None and len(limits):
        lim = limits[[*KEYS, "memory_limit"]].copy()
        lim[KEYS] = lim[KEYS].astype(str)
        lim = lim.groupby(KEYS, as_index=False)["memory_limit"].max()
        f = f.merge(lim, on=KEYS, how="left")
    else:
        f["memory_limit"] = np.nan
    tq = np.array([t975(int(n) - 2) for n in f["n"]])
    room = np.maximum(f["memory_limit"] - f["level"], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["days"] = np.where(f["b"] > 0, room / f["b"], np.inf)
        hi_b = f["b"] + tq * f["se"].fillna(0)
        lo_b = f["b"] - tq * f["se"].fillna(0)
        f["days_low"] = np.where(hi_b > 0, room / hi_b, np.inf)
        f["days_high"] = np.where(lo_b > 0, room / lo_b, np.inf)
    f.loc[f["memory_limit"].isna(), ["days", "days_low", "days_high"]] = np.nan
    return _per_container(f, cfg)


def _per_container(f: pd.DataFrame, cfg: LeakConfig) -> pd.DataFrame:
    # worst pod first: leaking, then soonest at the limit, then best fit
    f = f.assign(_rank_days=f["days"].fillna(np.inf))
    f = f.sort_values([*KEYS, "leak", "_rank_days", "r2"],
                      ascending=[True] * len(KEYS) + [False, True, False])
    g = f.groupby(KEYS, sort=False)
    worst = g.head(1).set_index(KEYS)
    worst["pods"] = g.size()
    worst["pods_leaking"] = g["leak"].sum()
    rows = []
    for key, r in worst.iterrows():
        now = pd.Timestamp(int(r["now"]), tz="UTC")

        def eta(days: float, now: pd.Timestamp = now) -> pd.Timestamp | None:
            return None if not np.isfinite(days) else now + pd.Timedelta(days=float(days))

        leak = bool(r["leak"])
        days, lo, hi = float(r["days"]), float(r["days_low"]), float(r["days_high"])
        rows.append({
            **dict(zip(KEYS, key, strict=True)),
            "leak": leak, "pod": r["pod"], "pods": int(r["pods"]),
            "pods_leaking": int(r["pods_leaking"]), "days": int(r["n"]),
            "segment_start": r["start"], "slope_bytes_per_day": float(r["b"]),
            "slope_se": float(r["se"]), "r2": float(r["r2"]),
            "steady_share": float(r["steady"]), "growth": float(r["growth"]),
            "first_daily_max": float(r["y0"]), "last_daily_max": float(r["y1"]),
            "current_bytes": float(r["level"]), "limit_bytes": float(r["memory_limit"]),
            "days_to_limit": days if leak else np.nan,
            "days_to_limit_low": lo if leak else np.nan,
            "days_to_limit_high": hi if leak else np.nan,
            "eta": eta(days) if leak else None,
            "eta_earliest": eta(lo) if leak else None,
            "eta_latest": eta(hi) if leak else None,
            "severity": _severity(days, cfg) if leak else None,
            "reason": _reason(r, cfg),
        })
    return pd.DataFrame(rows, columns=LEAK_COLUMNS)


def _severity(days: float, cfg: LeakConfig) -> str:
    if not np.isfinite(days) or math.isnan(days):
        return "warning"  # no limit (NaN) or not converging: the node is the ceiling
    if days <= cfg.critical_days:
        return "critical"
    return "warning" if days <= cfg.warning_days else "info"


def _reason(r: pd.Series, cfg: LeakConfig) -> str:
    if r["leak"]:
        return (f"working set grows {format_bytes(r['b'])}/day over {int(r['n'])} days "
                f"(R² {r['r2']:.2f}, {r['steady'] * 100:.0f} % of days up)")
    why = []
    if r["n"] < cfg.min_days:
        why.append(f"{int(r['n'])} usable days < {cfg.min_days}")
    if not r["b"] > 0:
        why.append("no growth")
    else:
        if r["r2"] < cfg.min_r2:
            why.append(f"R² {r['r2']:.2f} < {cfg.min_r2}")
        if r["steady"] < cfg.min_steady:
            why.append(f"only {r['steady'] * 100:.0f} % of days up")
        if r["t_stat"] < cfg.min_t:
            why.append(f"slope/se {r['t_stat']:.1f} < {cfg.min_t}")
        if not r["growth"] >= cfg.min_growth:
            why.append(f"growth {r['growth'] * 100:.0f} % < {cfg.min_growth * 100:.0f} %")
    return "no leak: " + "; ".join(why or ["thresholds not met"])


def _days_text(days: float) -> str:
    if not np.isfinite(days):
        return "never at this rate"
    return f"{days * 24:.0f} h" if days < 3 else f"{days:.1f} days"


def leak_findings(forecast: pd.DataFrame, state: ClusterState | None = None,
                  *, now: datetime | None = None) -> list[Finding]:
    """Findings (rule `memory-leak`) for the forecast's leaking containers.

    With `state`, a rollout restart of the workload is attached as a stop-gap
    Action (tier low) where the workload kind supports it.
    """
    from aiops.diagnose.actions import rollout_restart

    out: list[Finding] = []
    for r in forecast[forecast["leak"].astype(bool)].itertuples(index=False):
        rd: dict[str, Any] = r._asdict()
        ns, kind, name, container = (rd[k] for k in KEYS)
        limit = rd["limit_bytes"]
        if limit == limit:  # not NaN
            lo, hi = _days_text(rd["days_to_limit_low"]), _days_text(rd["days_to_limit_high"])
            band = "95 % band within the hour" if lo == hi else f"95 % band {lo} to {hi}"
            when = (f"reaches its {format_bytes(limit)} limit in "
                    f"~{_days_text(rd['days_to_limit'])} ({band})")
        else:
            when = "has no memory limit: it grows until the node runs short of memory"
        summary = (f"{kind}/{name} container {container}: working set grows "
                   f"{format_bytes(rd['slope_bytes_per_day'])}/day, {when}")
        start = pd.Timestamp(rd["segment_start"])
        evidence = [Evidence(
            "metrics",
            f"daily peak working set of pod {rd['pod']}: {format_bytes(rd['first_daily_max'])}"
            f" -> {format_bytes(rd['last_daily_max'])} over {rd['days']} days "
            f"(slope {format_bytes(rd['slope_bytes_per_day'])}/day ± "
            f"{format_bytes(rd['slope_se'])}, R² {rd['r2']:.3f})",
            "container_memory_working_set_bytes, daily maxima",
            start.to_pydatetime())]
        if limit == limit:
            evidence.append(Evidence("spec", f"resources.limits.memory: {format_bytes(limit)}",
                                     f"{kind}/{name} container {container}"))
        if rd["eta"] is not None:
            evidence.append(Evidence(
                "metrics", f"forecast: limit reached around {rd['eta']:%Y-%m-%d %H:%M} UTC "
                f"(earliest {rd['eta_earliest']:%Y-%m-%d %H:%M})",
                "linear fit of daily maxima", None))
        action = None
        workload = state.get(kind, ns, name) if state is not None else None
        if workload is not None and kind in ROLLOUT_KINDS:
            at = now or (state.captured_at if state is not None else None) or datetime.now(UTC)
            stamp = at.isoformat().replace("+00:00", "Z")
            action = rollout_restart(
                workload, stamp, description=f"stop-gap: restart {kind}/{name} to reset the "
                f"leaking working set of {container} (does not fix the leak)")
        commands = (f"kubectl top pod -n {ns} --containers",
                    f"kubectl rollout restart {kind.lower()}/{name} -n {ns}")
        out.append(Finding(
            rule=RULE_ID, severity=rd["severity"] or "warning", namespace=ns, kind=kind,
            name=name, owner=f"{kind}/{name}", summary=summary, evidence=evidence,
            confidence=float(min(0.95, rd["r2"])), first_seen=start.to_pydatetime(),
            remediation=Remediation(
                "Find the leak (heap profile, the change that introduced it). Until it is "
                "fixed a rollout restart resets the working set; a larger limit only "
                "postpones the OOM kill.", commands, action),
            docs=DOCS, pods=[rd["pod"]], rank=40))
    return out
