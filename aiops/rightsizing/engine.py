"""The right-sizing engine: usage statistics + cluster state -> Recommendations.

`recommend()` is pure over what the sources loaded: the cluster state (current
requests/limits, OOM kills, HPAs, replicas) and a `UsageHistory` (statistics,
and samples for the back-test and the leak forecast).

One row per workload container (pods of a workload pooled; CronJob and Job
containers included). Status:

- `ok`: sized by the strategy; an Action when something really changes.
- `insufficient-data`: fewer than `min_samples` samples or a span shorter than
  `min_span`; current values are kept.
- `hpa-managed`: an HPA scales the workload on a resource (CPU, memory);
  that resource is left as is (changing its request moves the HPA's
  utilization); the other resource is still sized.

Post-processing common to all strategies: floors (10m / 100Mi), the VPA-like
OOM bump, limits never below requests, CPU rounded up to 1m and memory to
1Mi, and changes below `min_change` dropped. A container whose working set is
forecast to leak keeps its memory settings: a larger limit only postpones the
OOM kill (see `aiops.rightsizing.leak`).

Actions patch the top workload object (Deployment, StatefulSet, DaemonSet,
ReplicaSet, CronJob). Bare Pods (static or not) and Jobs get none: their pod
templates cannot be changed in place; the reason says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aiops.cost import TERMINAL_PHASES, PriceBook, Prices, resolve_prices, row_savings
from aiops.diagnose.actions import pod_spec_of, set_container_fields
from aiops.diagnose.finding import Action
from aiops.errors import ParameterError
from aiops.quantity import format_bytes, format_cores, to_float
from aiops.rightsizing.backtest import as_dicts, backtest, sampling_step
from aiops.rightsizing.config import MIB, RightsizeConfig, duration
from aiops.rightsizing.leak import leak_forecast
from aiops.rightsizing.scaling import HpaInfo, hpa_index
from aiops.rightsizing.strategies import get_strategy
from aiops.usage import FrameHistory, UsageHistory, container_stats, qcol, window_delta

if TYPE_CHECKING:
    from pathlib import Path

    from aiops.model import ClusterState

KEYS = ["namespace", "workload_kind", "workload", "container"]
RESOURCES = ("cpu", "memory")
FIELDS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
REC_FIELDS = (
    "namespace", "workload_kind", "workload", "container",
    "cpu_request_current", "cpu_request_recommended", "cpu_limit_current",
    "cpu_limit_recommended", "memory_request_current", "memory_request_recommended",
    "memory_limit_current", "memory_limit_recommended", "cpu_p95", "memory_peak", "samples",
    "status", "reason", "backtest", "monthly_savings_usd", "action",
)
EXTRA_COLUMNS = (
    "strategy", "changed", "cpu_samples", "memory_samples", "span_hours", "cpu_mean",
    "cpu_p99", "cpu_peak", "memory_mean", "memory_p95", "pods", "pods_running", "replicas",
    "node", "oom_killed", "hpa", "leak_days_to_limit", "patchable",
)
STATUSES = ("ok", "insufficient-data", "hpa-managed")
PATCHABLE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "CronJob")
FIELD_PATHS = {
    "cpu_request": ("resources", "requests", "cpu"),
    "cpu_limit": ("resources", "limits", "cpu"),
    "memory_request": ("resources", "requests", "memory"),
    "memory_limit": ("resources", "limits", "memory"),
}

Recommendations = pd.DataFrame
"""A frame with REC_FIELDS + EXTRA_COLUMNS; `attrs` holds strategy, window, config."""


# -- inputs -------------------------------------------------------------------------

def _template_resources(obj: dict[str, Any] | None, container: str) -> dict[str, float] | None:
    """Requests/limits of a container in a workload's pod template (None: not there)."""
    if obj is None:
        return None
    spec = pod_spec_of(obj)
    for section in ("containers", "initContainers"):
        for c in spec.get(section) or []:
            if isinstance(c, dict) and c.get("name") == container:
                res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
                out = {}
                for f, (_, part, name) in FIELD_PATHS.items():
                    values = res.get(part) if isinstance(res.get(part), dict) else {}
                    out[f] = to_float(values.get(name))
                return out
    return None


def _inventory(state: ClusterState, namespaces: Sequence[str] | None,
               include_init: bool) -> pd.DataFrame:
    c = state.containers
    cols = [*KEYS, "pods", "pods_running", "node", "oom_killed", "oom_limit",
            *(f"{f}_current" for f in FIELDS)]
    if c.empty:
        return pd.DataFrame(columns=cols)
    if not include_init:
        c = c[~c["init"].astype(bool)]
    if namespaces:
        c = c[c["namespace"].isin(list(namespaces))]
    if c.empty:
        return pd.DataFrame(columns=cols)
    pods = state.pods
    phase = dict(zip(zip(pods["namespace"], pods["name"], strict=True), pods["phase"],
                     strict=True))
    running = [phase.get((ns, p)) not in TERMINAL_PHASES and bool(node)
               for ns, p, node in zip(c["namespace"], c["pod"], c["node"], strict=True)]
    oom = (c["reason"] == "OOMKilled") | (c["last_reason"] == "OOMKilled")
    c = c.assign(running=running, oom=oom,
                 oom_lim=c["memory_limit"].where(oom),
                 node_=c["node"].replace("", np.nan))
    g = c.groupby(KEYS, sort=True)
    inv = g.agg(pods=("pod", "nunique"), pods_running=("running", "sum"),
                node=("node_", "first"), oom_killed=("oom", "any"), oom_limit=("oom_lim", "max"),
                **{f"{f}_pod": (f, "max") for f in FIELDS}).reset_index()
    inv["node"] = inv["node"].fillna("")
    rows = []
    for r in inv.itertuples(index=False):
        tpl = None
        if r.workload_kind != "Pod":
            tpl = _template_resources(state.get(r.workload_kind, r.namespace, r.workload),
                                      r.container)
        cur = tpl or {f: getattr(r, f"{f}_pod") for f in FIELDS}
        rows.append([cur[f] for f in FIELDS])
    inv[[f"{f}_current" for f in FIELDS]] = pd.DataFrame(rows, index=inv.index, dtype=float)
    return inv[cols]


def _history_only(state: ClusterState, wide: pd.DataFrame, inv: pd.DataFrame) -> pd.DataFrame:
    """Workload containers with history but no pod now (a CronJob between runs)."""
    have = set(map(tuple, inv[KEYS].to_numpy().tolist()))
    rows = []
    for key in wide.index:
        if key in have:
            continue
        ns, kind, name, container = key
        tpl = _template_resources(state.get(kind, ns, name), container) \
            if kind in PATCHABLE_KINDS or kind == "Job" else None
        if tpl is None:
            continue
        rows.append({"namespace": ns, "workload_kind": kind, "workload": name,
                     "container": container, "pods": 0, "pods_running": 0, "node": "",
                     "oom_killed": False, "oom_limit": np.nan,
                     **{f"{f}_current": tpl[f] for f in FIELDS}})
    return pd.DataFrame(rows, columns=inv.columns)


def _wide(stats: pd.DataFrame, quantiles: Sequence[float]) -> pd.DataFrame:
    """Per workload container: `<resource>_<stat>` columns."""
    cols = ["samples", "first", "last", "mean", "peak", *(qcol(q) for q in quantiles)]
    parts = []
    for res in RESOURCES:
        sub = stats[stats["resource"].astype(str) == res]
        sub = sub.assign(**{k: sub[k].astype(str) for k in KEYS}).set_index(KEYS)
        sub = sub.reindex(columns=cols)
        parts.append(sub.add_prefix(f"{res}_"))
    wide = parts[0].join(parts[1], how="outer")
    return wide[~wide.index.duplicated()]


def _replicas(row: pd.Series, window: pd.Timedelta | None, step: pd.Timedelta | None
              ) -> float:
    """Average number of pods billed: pods scheduled and running now, or for Jobs
    and CronJobs the duty cycle seen in the history (CPU samples x step / span)."""
    if row["workload_kind"] in ("Job", "CronJob"):
        n = row.get("cpu_samples")
        if _isnan(n) or step is None or window is None or window <= pd.Timedelta(0):
            return 0.0
        return float(n * (step / window))
    return float(row["pods_running"])


# -- decisions ----------------------------------------------------------------------

def _ceil_cpu(x: float) -> float:
    return math.ceil(x * 1000 - 1e-6) / 1000


def _ceil_mem(x: float) -> float:
    return math.ceil(x / MIB - 1e-9) * MIB


def _isnan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _changed(cur: float, new: float, min_change: float) -> bool:
    if _isnan(new):
        return False
    if _isnan(cur) or cur == 0:
        return True
    return abs(new - cur) / cur >= min_change


def _fmt(field: str, x: float) -> str:
    return format_cores(x) if field.startswith("cpu") else format_bytes(x)


def _quantity(field: str, x: float) -> str:
    """A Kubernetes quantity for the patch: whole millicores / MiB."""
    if field.startswith("cpu"):
        return f"{round(x * 1000)}m"
    return f"{round(x / MIB)}Mi"


def _decide(row: pd.Series, raw: pd.Series | None, cfg: RightsizeConfig,
            hpa: HpaInfo | None, leak_days: float) -> dict[str, Any]:
    cur = {f: row[f"{f}_current"] for f in FIELDS}
    rec = dict(cur)
    notes: list[str] = []
    q = qcol(cfg.percentile)
    n_cpu = 0 if _isnan(row.get("cpu_samples")) else int(row["cpu_samples"])
    n_mem = 0 if _isnan(row.get("memory_samples")) else int(row["memory_samples"])
    span = row.get("span_hours")
    span_td = pd.Timedelta(hours=0 if _isnan(span) else float(span))
    if min(n_cpu, n_mem) < cfg.min_samples or span_td < cfg.min_span_delta or raw is None:
        why = []
        if min(n_cpu, n_mem) == 0:
            why.append("no " + " or ".join(r for r, n in (("cpu", n_cpu), ("memory", n_mem))
                                           if n == 0) + " samples in the window")
        elif min(n_cpu, n_mem) < cfg.min_samples:
            why.append(f"{min(n_cpu, n_mem)} samples < {cfg.min_samples}")
        if min(n_cpu, n_mem) and span_td < cfg.min_span_delta:
            why.append(f"history spans {span_td} < {cfg.min_span}")
        return {"status": "insufficient-data", "rec": rec, "changed": [],
                "reason": "insufficient data: " + "; ".join(why or ["no usage statistics"])
                + "; current values kept"}
    status = "ok"
    # CPU
    cpu_req = raw["cpu_request"]
    if cpu_req < cfg.min_cpu:
        notes.append(f"cpu raised to the {format_cores(cfg.min_cpu)} minimum")
    cpu_req = _ceil_cpu(max(cpu_req, cfg.min_cpu))
    if not _isnan(raw["cpu_limit"]):
        cpu_lim = raw["cpu_limit"]
    elif cfg.cpu_limit_multiple is not None:
        cpu_lim = cpu_req * cfg.cpu_limit_multiple
    else:
        cpu_lim = cur["cpu_limit"]
    if not _isnan(cpu_lim):
        cpu_lim = _ceil_cpu(max(cpu_lim, cpu_req))
    # memory
    mem_req = raw["memory_request"]
    if mem_req < cfg.min_memory:
        notes.append(f"memory raised to the {format_bytes(cfg.min_memory)} minimum")
    mem_req = max(mem_req, cfg.min_memory)
    mem_lim = raw["memory_limit"]
    mem_lim = mem_req * cfg.memory_limit_multiple if _isnan(mem_lim) else max(mem_lim, mem_req)
    if row.get("oom_killed"):
        base = max(x for x in (row.get("oom_limit"), row.get("memory_peak"), 0.0)
                   if not _isnan(x))
        bump = max(base + cfg.oom_bump_bytes, base * cfg.oom_bump_ratio)
        if mem_lim < bump or mem_req < bump:
            notes.append(f"OOM-killed at {format_bytes(base)}: memory raised to max(+"
                         f"{format_bytes(cfg.oom_bump_bytes)}, x{cfg.oom_bump_ratio:g}) = "
                         f"{format_bytes(_ceil_mem(bump))}")
        mem_req = max(mem_req, bump)
        mem_lim = max(mem_lim, mem_req * cfg.memory_limit_multiple)
    mem_req, mem_lim = _ceil_mem(mem_req), _ceil_mem(mem_lim)
    new = {"cpu_request": cpu_req, "cpu_limit": cpu_lim, "memory_request": mem_req,
           "memory_limit": mem_lim}
    basis = (f"{raw['basis']}: cpu {q} {format_cores(row.get(f'cpu_{q}'))} -> request "
             f"{format_cores(cpu_req)}; memory peak {format_bytes(row.get('memory_peak'))} -> "
             f"request {format_bytes(mem_req)}, limit {format_bytes(mem_lim)}")
    # resources the workload's HPA scales on stay as they are
    held: set[str] = set()
    if hpa is not None:
        held = {r for r in hpa.resources_for(row["container"]) if r in RESOURCES}
        if held:
            status = "hpa-managed"
            notes.append(f"HPA {hpa.name} scales on {', '.join(sorted(held))}: left as is")
    if not _isnan(leak_days) and "memory" not in held:
        held.add("memory")
        notes.append(f"memory leak forecast (limit in ~{leak_days:.1f} days): memory left as "
                     "is, fix the leak (see the memory-leak finding)")
    for f in FIELDS:
        if f.split("_")[0] not in held and _changed(cur[f], new[f], cfg.min_change):
            rec[f] = new[f]
    # a limit must never sit below its request
    for res in RESOURCES:
        lim, req = rec[f"{res}_limit"], rec[f"{res}_request"]
        if not _isnan(lim) and not _isnan(req) and lim < req:
            rec[f"{res}_limit"] = req
    changed = [f for f in FIELDS if not _same(cur[f], rec[f])]
    if not changed:
        notes.append("no change worth a rollout (below "
                     f"{cfg.min_change * 100:g} % or already right)")
    return {"status": status, "rec": rec, "changed": changed,
            "reason": "; ".join([basis, *notes])}


def _same(a: float, b: float) -> bool:
    return (_isnan(a) and _isnan(b)) or a == b


def _action(state: ClusterState, row: pd.Series, decided: dict[str, Any],
            strategy: str, window: str | None) -> tuple[Action | None, str | None]:
    kind, ns, name, container = (row["workload_kind"], row["namespace"], row["workload"],
                                 row["container"])
    if kind not in PATCHABLE_KINDS:
        why = ("a bare or static Pod's resources cannot be patched: change its manifest"
               if kind == "Pod" else f"a {kind}'s pod template is immutable: change what "
               "creates it" if kind == "Job" else f"{kind} is not a patchable workload")
        return None, why
    obj = state.get(kind, ns, name)
    if obj is None:
        return None, f"{kind}/{name} not found in the cluster state: no patch"
    cur = {f: row[f"{f}_current"] for f in FIELDS}
    rec = decided["rec"]
    changes = {FIELD_PATHS[f]: _quantity(f, rec[f]) for f in decided["changed"]}
    what = ", ".join(f"{f.replace('_', ' ')} {_fmt(f, cur[f])} -> {_fmt(f, rec[f])}"
                     for f in decided["changed"])
    checks = ([f"the next {name} Job completes successfully"] if kind == "CronJob" else
              [f"kubectl rollout status {kind.lower()}/{name} -n {ns} --timeout=300s "
               "succeeds (rollout complete)"])
    checks.append(f"no OOMKilled terminations of container {container} after the change")
    if "cpu_request" in decided["changed"]:
        checks.append(f"p95 CPU of {container} stays below the new request "
                      f"{format_cores(rec['cpu_request'])} for 24h")
    if "memory_limit" in decided["changed"] or "memory_request" in decided["changed"]:
        lim = rec["memory_limit"] if not _isnan(rec["memory_limit"]) else rec["memory_request"]
        checks.append(f"peak memory of {container} stays below {format_bytes(lim)} for 24h")
    checks.append("roll back with the inverse patch within 5 minutes if a check fails")
    action = set_container_fields(
        obj, container, changes, tier="medium", validate=checks,
        description=f"Right-size {kind}/{name} container {container}: {what} "
                    f"({strategy}, {window or 'all'} of history)")
    if action is None:
        return None, f"container {container} not in {kind}/{name}'s pod template"
    return action, None


# -- the engine ---------------------------------------------------------------------

def _as_history(state: ClusterState, history: UsageHistory | pd.DataFrame | None
                ) -> UsageHistory:
    if history is None:
        df = state.history
        if df is None:
            raise ParameterError(f"source {state.source} has no usage history",
                                 "pass a UsageHistory (metrics store, Prometheus) or a "
                                 "usage frame")
        return FrameHistory(df, name=state.source)
    if isinstance(history, pd.DataFrame):
        return FrameHistory(history)
    return history


def recommend(state: ClusterState, history: UsageHistory | pd.DataFrame | None = None,
              config: RightsizeConfig | None = None, *, window: str | None = "14d",
              namespaces: Sequence[str] | None = None, stats: pd.DataFrame | None = None,
              samples: pd.DataFrame | None = None,
              prices: PriceBook | Prices | str | Path | None = None,
              run_backtest: bool = True) -> Recommendations:
    """Right-sizing recommendations, one row per workload container.

    `history` defaults to the state's own history (a UsageHistory or a tidy
    usage frame). `stats` (container_stats of the window with
    `config.quantiles`, e.g. pushed down to Prometheus) and `samples` may be
    passed precomputed; samples are only read for the back-test and the leak
    check (`run_backtest=False` and `detect_leaks=False` skip them). Prices
    (a PriceBook, Prices or a pricing file) turn request cuts into
    `monthly_savings_usd`.

    Cost: with precomputed stats, 1,000 containers x 14 days at 1-minute
    resolution (20M CPU + 20M memory samples) take a few seconds: every pass
    over the samples is vectorised (group ids from category codes, bincount,
    ufunc.at); Python loops run over containers only.
    """
    cfg = config or RightsizeConfig()
    strat = get_strategy(cfg.strategy)
    window_text, window = window, duration(window)
    hist = _as_history(state, history)
    td = window_delta(window)
    ns_list = list(namespaces) if namespaces else None
    need_samples = run_backtest or cfg.detect_leaks
    if samples is None and (need_samples or stats is None):
        samples = hist.samples(window=window, namespaces=ns_list)
    elif samples is not None and ns_list:
        samples = samples[samples["namespace"].isin(ns_list)]
    if stats is None:
        stats = (container_stats(samples, cfg.quantiles) if isinstance(hist, FrameHistory)
                 and samples is not None
                 else hist.stats(window=window, namespaces=ns_list, quantiles=cfg.quantiles))
    elif ns_list:
        stats = stats[stats["namespace"].isin(ns_list)]
    missing_q = [qcol(q) for q in cfg.quantiles if qcol(q) not in stats.columns]
    if missing_q:
        raise ParameterError(f"usage statistics lack the quantile columns {missing_q}",
                             f"compute them with quantiles={cfg.quantiles}")

    wide = _wide(stats, cfg.quantiles)
    inv = _inventory(state, ns_list, cfg.include_init_containers)
    extra = _history_only(state, wide, inv)
    if len(extra):
        inv = pd.concat([inv, extra], ignore_index=True)
    df = inv.join(wide, on=KEYS)
    if df.empty:
        return _empty(cfg, window)
    first = df[["cpu_first", "memory_first"]].max(axis=1)
    last = df[["cpu_last", "memory_last"]].min(axis=1)
    df["span_hours"] = (pd.to_datetime(last, utc=True) - pd.to_datetime(first, utc=True)) \
        .dt.total_seconds() / 3600
    df["samples"] = df[["cpu_samples", "memory_samples"]].fillna(0).min(axis=1).astype(int)

    has = df["cpu_samples"].fillna(0).gt(0) & df["memory_samples"].fillna(0).gt(0)
    raw = strat(df[has], cfg) if has.any() else pd.DataFrame()

    leak_days = pd.Series(np.nan, index=df.index)
    if cfg.detect_leaks and samples is not None and len(samples):
        limits = df[KEYS].assign(memory_limit=df["memory_limit_current"])
        lf = leak_forecast(samples, limits, cfg.leak)
        if len(lf):
            lf = lf[lf["leak"].astype(bool)].set_index(KEYS)["days_to_limit"]
            leak_days = pd.Series([lf.get(tuple(k), np.nan) if len(lf) else np.nan
                                   for k in df[KEYS].to_numpy().tolist()], index=df.index)

    hpas = hpa_index(state)
    step = sampling_step(samples) if samples is not None else None
    span = td
    if samples is not None and len(samples):
        seen = pd.Timedelta(samples["time"].max() - samples["time"].min()) + (step or
                                                                              pd.Timedelta(0))
        span = seen if span is None else min(span, seen)
    out_rows = []
    for i, row in df.iterrows():
        hpa = hpas.get((row["namespace"], row["workload_kind"], row["workload"]))
        r = raw.loc[i] if len(raw) and i in raw.index else None
        d = _decide(row, r, cfg, hpa, float(leak_days.loc[i]))
        action, why_not = (None, None)
        if d["status"] != "insufficient-data" and d["changed"]:
            action, why_not = _action(state, row, d, strat.name, window_text)
        reason = d["reason"] + (f"; no Action: {why_not}" if why_not else "")
        out_rows.append({
            **{f"{f}_recommended": d["rec"][f] for f in FIELDS},
            "status": d["status"], "reason": reason, "action": action,
            "changed": list(d["changed"]), "hpa": hpa.name if hpa else None,
            "patchable": row["workload_kind"] in PATCHABLE_KINDS,
            "replicas": _replicas(row, span, step),
        })
    dec = pd.DataFrame(out_rows, index=df.index)
    recs = pd.concat([df, dec], axis=1)
    q = qcol(cfg.percentile)
    recs["leak_days_to_limit"] = leak_days
    recs["strategy"] = strat.name
    recs["oom_killed"] = recs["oom_killed"].astype(bool)
    money = row_savings(recs, prices=resolve_prices(prices), state=state)
    recs["monthly_savings_usd"] = money["monthly_savings_usd"].round(4)
    if run_backtest and samples is not None:
        bt = backtest(samples, recs, cpu_burst_factor=cfg.cpu_burst_factor, step=step)
        recs["backtest"] = as_dicts(bt)
    else:
        recs["backtest"] = [{} for _ in range(len(recs))]
    cols = list(REC_FIELDS) + list(EXTRA_COLUMNS)
    if f"cpu_{q}" not in cols:
        cols.append(f"cpu_{q}")
    recs = recs[cols].sort_values(KEYS).reset_index(drop=True)
    recs.attrs.update(_attrs(cfg, window_text, state))
    return recs


def _attrs(cfg: RightsizeConfig, window: str | None, state: ClusterState) -> dict[str, Any]:
    return {"strategy": cfg.strategy, "window": window, "config": cfg.model_dump(),
            "source": state.source, "generated_at": datetime.now(UTC).isoformat()}


def _empty(cfg: RightsizeConfig, window: str | None) -> Recommendations:
    df = pd.DataFrame(columns=list(REC_FIELDS) + list(EXTRA_COLUMNS))
    df.attrs.update({"strategy": cfg.strategy, "window": window,
                     "config": cfg.model_dump()})
    return df
