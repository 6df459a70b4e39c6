"""Cost: OpenCost's allocation model, idle cost, aggregation, and the monthly
savings of right-sizing recommendations.

Model (OpenCost's, simplified to a point-in-time snapshot priced per month):

- A running container is allocated max(request, average usage) of CPU and of
  memory; its cost is that x the price per core-hour / GiB-hour x 730 h.
- A PersistentVolumeClaim costs its capacity x the price per GiB-month, split
  evenly between the running pods that mount it (`__unmounted__` otherwise).
- A node costs its capacity x the same prices; idle = node cost - the
  allocated cost of the containers on it.
- Prices: OpenCost's defaults (configs/default.json: CPU 0.031611 USD per
  core-hour, RAM 0.004237 USD per GiB-hour, storage 0.04 USD per GiB-month),
  overridden by a pricing file, per node by a node label such as
  node.kubernetes.io/instance-type.

Pricing file (JSON or YAML)::

    currency: USD
    cpu_core_hour: 0.031611
    ram_gib_hour: 0.004237
    storage_gib_month: 0.04
    node_label: node.kubernetes.io/instance-type
    nodes:                       # per label value; missing fields inherit
      m5.xlarge: {cpu_core_hour: 0.048, ram_gib_hour: 0.0064}

An OpenCost custom-pricing file (keys CPU, RAM hourly, storage per GiB-hour,
values as strings) is read too; its other keys are ignored.

Savings shown here are a potential: they become real only once nodes shrink
(Kubecost's caveat), so `savings()` also estimates how many nodes of the
current shape the requests need before and after.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aiops.errors import ParameterError
from aiops.quantity import to_float
from aiops.usage import check_usage, window_delta

if TYPE_CHECKING:
    from aiops.model import ClusterState

HOURS_PER_MONTH = 730.0
GIB = float(2**30)
DEFAULT_CPU_CORE_HOUR = 0.031611
DEFAULT_RAM_GIB_HOUR = 0.004237
DEFAULT_STORAGE_GIB_MONTH = 0.04
DEFAULT_NODE_LABEL = "node.kubernetes.io/instance-type"
UNALLOCATED = "__unallocated__"
UNMOUNTED = "__unmounted__"
IDLE = "__idle__"
SIGNIFICANT_SAVINGS_PCT = 20.0
PRICE_FIELDS = ("cpu_core_hour", "ram_gib_hour", "storage_gib_month")
TERMINAL_PHASES = ("Succeeded", "Failed")

ALLOCATION_COLUMNS = [
    "namespace", "pod", "container", "workload_kind", "workload", "node", "labels",
    "cpu_request", "cpu_usage", "cpu_allocated", "memory_request", "memory_usage",
    "memory_allocated", "cpu_cost", "ram_cost", "pv_cost", "total_cost",
]
NODE_COST_COLUMNS = [
    "node", "price_key", "cpu_capacity", "memory_capacity", "cpu_cost", "ram_cost",
    "node_cost", "cpu_allocated_cost", "ram_allocated_cost", "allocated_cost", "idle_cost",
    "idle_pct",
]
PVC_COLUMNS = ["namespace", "pvc", "storage_class", "bytes", "pods", "workload_kind",
               "workload", "labels", "monthly_cost"]


# -- prices -------------------------------------------------------------------------

@dataclass(frozen=True)
class Prices:
    """Unit prices; cost helpers return money per month (730 h)."""

    cpu_core_hour: float = DEFAULT_CPU_CORE_HOUR
    ram_gib_hour: float = DEFAULT_RAM_GIB_HOUR
    storage_gib_month: float = DEFAULT_STORAGE_GIB_MONTH
    currency: str = "USD"

    def cpu_month(self, cores: Any) -> Any:
        return cores * self.cpu_core_hour * HOURS_PER_MONTH

    def ram_month(self, bytes_: Any) -> Any:
        return bytes_ / GIB * self.ram_gib_hour * HOURS_PER_MONTH

    def storage_month(self, bytes_: Any) -> Any:
        return bytes_ / GIB * self.storage_gib_month


@dataclass(frozen=True)
class PriceBook:
    """Default prices plus per-node overrides keyed by a node label's value."""

    default: Prices = field(default_factory=Prices)
    node_label: str | None = DEFAULT_NODE_LABEL
    nodes: Mapping[str, Prices] = field(default_factory=dict)
    source: str = "built-in defaults (OpenCost configs/default.json)"

    def for_labels(self, labels: Mapping[str, Any] | None) -> tuple[Prices, str]:
        """Prices for a node with these labels, and the label value used ('' = default)."""
        if self.node_label and labels:
            value = labels.get(self.node_label)
            if isinstance(value, str) and value in self.nodes:
                return self.nodes[value], value
        return self.default, ""

    def for_node(self, state: ClusterState | None, node: str | None) -> Prices:
        if state is None or not node:
            return self.default
        obj = state.get("Node", None, node)
        labels = ((obj or {}).get("metadata") or {}).get("labels")
        return self.for_labels(labels if isinstance(labels, dict) else None)[0]


def default_prices() -> PriceBook:
    return PriceBook()


def _price(value: Any, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out) or out < 0:
        raise ParameterError(f"{where}: price {value!r} is not a non-negative number",
                             "write prices as numbers, e.g. cpu_core_hour: 0.031611")
    return out


def _prices(d: Mapping[str, Any], base: Prices, where: str) -> Prices:
    unknown = sorted(set(d) - {*PRICE_FIELDS, "currency"})
    if unknown:
        raise ParameterError(f"{where}: unknown pricing keys {unknown}",
                             "use " + ", ".join(PRICE_FIELDS))
    kw: dict[str, Any] = {k: _price(d[k], f"{where}.{k}") for k in PRICE_FIELDS if k in d}
    if "currency" in d:
        kw["currency"] = str(d["currency"])
    return replace(base, **kw)


def price_book(data: Mapping[str, Any], source: str = "pricing settings") -> PriceBook:
    """A PriceBook from a parsed pricing document (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise ParameterError(f"{source}: pricing must be a mapping",
                             "see aiops/pricing/default.json for the format")
    if "CPU" in data or "RAM" in data:  # OpenCost custom pricing
        base = Prices(
            cpu_core_hour=_price(data.get("CPU", DEFAULT_CPU_CORE_HOUR), f"{source}.CPU"),
            ram_gib_hour=_price(data.get("RAM", DEFAULT_RAM_GIB_HOUR), f"{source}.RAM"),
            storage_gib_month=(_price(data["storage"], f"{source}.storage") * HOURS_PER_MONTH
                               if "storage" in data else DEFAULT_STORAGE_GIB_MONTH),
            currency=str(data.get("currencyCode") or "USD"))
        return PriceBook(default=base, source=f"{source} (OpenCost format)")
    top = {k: v for k, v in data.items() if k not in ("node_label", "nodes", "description")}
    base = _prices(top, Prices(), source)
    nodes_raw = data.get("nodes") or {}
    if not isinstance(nodes_raw, Mapping):
        raise ParameterError(f"{source}.nodes must map a label value to prices",
                             "e.g. nodes: {m5.xlarge: {cpu_core_hour: 0.048}}")
    nodes = {str(k): _prices(v if isinstance(v, Mapping) else {"?": v}, base,
                             f"{source}.nodes.{k}") for k, v in nodes_raw.items()}
    label = data.get("node_label", DEFAULT_NODE_LABEL)
    return PriceBook(default=base, node_label=str(label) if label else None, nodes=nodes,
                     source=source)


def load_prices(path: str | Path) -> PriceBook:
    """Read a JSON or YAML pricing file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ParameterError(f"pricing file {p} cannot be read: {exc.strerror or exc}",
                             "pass an existing JSON or YAML file") from exc
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json/yaml both raise their own families
        raise ParameterError(f"pricing file {p} is not valid "
                             f"{'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'}"
                             f": {exc}", "fix the syntax") from exc
    return price_book(data, source=str(p))


def resolve_prices(prices: PriceBook | Prices | str | Path | None) -> PriceBook:
    if prices is None:
        return default_prices()
    if isinstance(prices, PriceBook):
        return prices
    if isinstance(prices, Prices):
        return PriceBook(default=prices, source="given prices")
    return load_prices(prices)


# -- allocation ---------------------------------------------------------------------

def _md(o: Mapping[str, Any]) -> Mapping[str, Any]:
    m = o.get("metadata") if isinstance(o, Mapping) else None
    return m if isinstance(m, Mapping) else {}


def _mean_usage(history: pd.DataFrame | None, window: str | None) -> pd.DataFrame:
    """Average usage per (namespace, pod, container) and resource, wide."""
    cols = ["namespace", "pod", "container", "cpu_usage", "memory_usage"]
    if history is None:
        return pd.DataFrame(columns=cols)
    df = check_usage(history)
    from aiops.rightsizing.config import duration

    if (td := window_delta(duration(window))) is not None and not df.empty:
        df = df[df["time"] >= df["time"].max() - td]
    if df.empty:
        return pd.DataFrame(columns=cols)
    m = (df.groupby(["namespace", "pod", "container", "resource"], observed=True)["value"]
         .mean().unstack("resource"))
    m = m.rename(columns={"cpu": "cpu_usage", "memory": "memory_usage"})
    for c in ("cpu_usage", "memory_usage"):
        if c not in m.columns:
            m[c] = np.nan
    m = m.reset_index()
    for c in ("namespace", "pod", "container"):
        m[c] = m[c].astype(str)
    return m[cols]


def running_containers(state: ClusterState) -> pd.DataFrame:
    """Containers of pods that hold node resources now (scheduled, not terminated)."""
    c = state.containers
    pods = state.pods
    if c.empty:
        return c
    live = pods[(pods["node"] != "") & ~pods["phase"].isin(TERMINAL_PHASES)]
    keys = set(zip(live["namespace"], live["name"], strict=True))
    mask = [(ns, p) in keys for ns, p in zip(c["namespace"], c["pod"], strict=True)]
    c = c[np.asarray(mask, dtype=bool) & ~c["init"].astype(bool)]
    labels = dict(zip(zip(pods["namespace"], pods["name"], strict=True), pods["labels"],
                      strict=True))
    return c.assign(labels=[labels.get((ns, p)) or {} for ns, p in
                            zip(c["namespace"], c["pod"], strict=True)])


def allocation(state: ClusterState, history: pd.DataFrame | None = None,
               prices: PriceBook | Prices | str | Path | None = None, *,
               window: str | None = None) -> pd.DataFrame:
    """Per running container: requests, average usage, allocation and monthly cost.

    `history` is a tidy usage frame (defaults to `state.history`). A container
    without usage samples is allocated its requests.
    """
    book = resolve_prices(prices)
    if history is None:
        history = state.history
    c = running_containers(state)
    if c.empty:
        return pd.DataFrame(columns=ALLOCATION_COLUMNS)
    usage = _mean_usage(history, window)
    df = c.merge(usage, on=["namespace", "pod", "container"], how="left")
    df["cpu_allocated"] = np.fmax(df["cpu_request"].fillna(0), df["cpu_usage"].fillna(0))
    df["memory_allocated"] = np.fmax(df["memory_request"].fillna(0),
                                     df["memory_usage"].fillna(0))
    node_prices = {n: book.for_node(state, n) for n in df["node"].unique()}
    df["cpu_cost"] = [node_prices[n].cpu_month(v) for n, v in
                      zip(df["node"], df["cpu_allocated"], strict=True)]
    df["ram_cost"] = [node_prices[n].ram_month(v) for n, v in
                      zip(df["node"], df["memory_allocated"], strict=True)]
    pv = _pvc_share(state, book)
    df["pv_cost"] = [pv.get((ns, p, cn), 0.0) for ns, p, cn in
                     zip(df["namespace"], df["pod"], df["container"], strict=True)]
    df["total_cost"] = df["cpu_cost"] + df["ram_cost"] + df["pv_cost"]
    return df[ALLOCATION_COLUMNS].reset_index(drop=True)


def _pod_claims(state: ClusterState) -> dict[tuple[str, str], list[str]]:
    """Running pod -> the PVC names it mounts."""
    out: dict[tuple[str, str], list[str]] = {}
    for p in state.kind("Pod"):
        md, spec = _md(p), p.get("spec") or {}
        if (p.get("status") or {}).get("phase") in TERMINAL_PHASES or not spec.get("nodeName"):
            continue
        claims = [((v.get("persistentVolumeClaim") or {}).get("claimName"))
                  for v in spec.get("volumes") or [] if isinstance(v, dict)]
        claims = [c for c in claims if isinstance(c, str) and c]
        if claims:
            out[(md.get("namespace") or "", md.get("name") or "")] = claims
    return out


def pvc_costs(state: ClusterState, prices: PriceBook | Prices | str | Path | None = None
              ) -> pd.DataFrame:
    """Every PVC's capacity and monthly cost, with the pods and workload mounting it."""
    book = resolve_prices(prices)
    mounts: dict[tuple[str, str], list[str]] = {}
    for (ns, pod), claims in _pod_claims(state).items():
        for claim in claims:
            mounts.setdefault((ns, claim), []).append(pod)
    pods = state.pods.set_index(["namespace", "name"]) if len(state.pods) else None
    rows = []
    for pvc in state.kind("PersistentVolumeClaim"):
        md, spec, st = _md(pvc), pvc.get("spec") or {}, pvc.get("status") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        # only a Bound claim has a volume behind it that is billed
        size = to_float((st.get("capacity") or {}).get("storage"))
        if size != size and st.get("phase") == "Bound":
            size = to_float(((spec.get("resources") or {}).get("requests") or {})
                            .get("storage"))
        size = 0.0 if size != size else size
        users = mounts.get((ns, name), [])
        wk, wn, labels = "", UNMOUNTED, {}
        if users and pods is not None and (ns, users[0]) in pods.index:
            row = pods.loc[(ns, users[0])]
            wk, wn, labels = row["workload_kind"], row["workload"], row["labels"] or {}
        rows.append((ns, name, spec.get("storageClassName") or "", size, users, wk, wn,
                     labels, book.default.storage_month(size)))
    return pd.DataFrame(rows, columns=PVC_COLUMNS)


def _pvc_share(state: ClusterState, book: PriceBook) -> dict[tuple[str, str, str], float]:
    """PVC cost per (namespace, pod, first container): split evenly among pods."""
    pvcs = pvc_costs(state, book)
    first_container: dict[tuple[str, str], str] = {}
    for p in state.kind("Pod"):
        md = _md(p)
        cs = (p.get("spec") or {}).get("containers") or []
        if cs and isinstance(cs[0], dict):
            first_container[(md.get("namespace") or "", md.get("name") or "")] = \
                cs[0].get("name") or ""
    out: dict[tuple[str, str, str], float] = {}
    for r in pvcs.itertuples(index=False):
        for pod in r.pods:
            key = (r.namespace, pod, first_container.get((r.namespace, pod), ""))
            out[key] = out.get(key, 0.0) + r.monthly_cost / len(r.pods)
    return out


def node_costs(state: ClusterState, alloc: pd.DataFrame,
               prices: PriceBook | Prices | str | Path | None = None) -> pd.DataFrame:
    """Node cost from capacity x prices; idle = node cost - allocated container cost."""
    book = resolve_prices(prices)
    nodes = state.nodes
    if nodes.empty:
        return pd.DataFrame(columns=NODE_COST_COLUMNS)
    used = alloc.groupby("node")[["cpu_cost", "ram_cost"]].sum() if len(alloc) else None
    rows = []
    for n in nodes.itertuples(index=False):
        obj = state.get("Node", None, n.name) or {}
        labels = _md(obj).get("labels")
        pr, key = book.for_labels(labels if isinstance(labels, dict) else None)
        cpu_cap = 0.0 if n.cpu_capacity != n.cpu_capacity else n.cpu_capacity
        mem_cap = 0.0 if n.memory_capacity != n.memory_capacity else n.memory_capacity
        cpu_cost, ram_cost = pr.cpu_month(cpu_cap), pr.ram_month(mem_cap)
        ca = float(used.loc[n.name, "cpu_cost"]) if used is not None and n.name in used.index \
            else 0.0
        ra = float(used.loc[n.name, "ram_cost"]) if used is not None and n.name in used.index \
            else 0.0
        total = cpu_cost + ram_cost
        idle = total - ca - ra
        rows.append((n.name, key, cpu_cap, mem_cap, cpu_cost, ram_cost, total, ca, ra, ca + ra,
                     idle, round(100 * idle / total, 2) if total else np.nan))
    return pd.DataFrame(rows, columns=NODE_COST_COLUMNS)


@dataclass
class CostReport:
    """Allocation, PVCs and nodes of one cluster, priced per month."""

    allocations: pd.DataFrame
    pvcs: pd.DataFrame
    nodes: pd.DataFrame
    prices: PriceBook

    @property
    def totals(self) -> dict[str, float]:
        node = float(self.nodes["node_cost"].sum())
        allocated = float(self.nodes["allocated_cost"].sum())
        # allocations on nodes the snapshot does not list still count as allocated
        off_nodes = float(self.allocations.loc[
            ~self.allocations["node"].isin(self.nodes["node"]),
            ["cpu_cost", "ram_cost"]].to_numpy().sum())
        storage = float(self.pvcs["monthly_cost"].sum())
        return {"node_cost": node, "allocated_cost": allocated + off_nodes,
                "idle_cost": float(self.nodes["idle_cost"].sum()), "storage_cost": storage,
                "cluster_cost": node + storage + off_nodes,
                "idle_pct": round(100 * float(self.nodes["idle_cost"].sum()) / node, 2)
                if node else math.nan}

    def by(self, dimension: str = "namespace", *, include_idle: bool = True) -> pd.DataFrame:
        return aggregate(self, dimension, include_idle=include_idle)


def cost_report(state: ClusterState, history: pd.DataFrame | None = None,
                prices: PriceBook | Prices | str | Path | None = None, *,
                window: str | None = None) -> CostReport:
    book = resolve_prices(prices)
    alloc = allocation(state, history, book, window=window)
    return CostReport(alloc, pvc_costs(state, book), node_costs(state, alloc, book), book)


def _key(df: pd.DataFrame, dimension: str) -> pd.Series:
    if dimension == "namespace":
        return df["namespace"].astype(str)
    if dimension == "workload":
        return (df["namespace"].astype(str) + "/" + df["workload_kind"].astype(str) + "/"
                + df["workload"].astype(str))
    if dimension == "node" and "node" in df.columns:
        return df["node"].astype(str)
    if dimension.startswith("label:"):
        label = dimension.split(":", 1)[1]
        return pd.Series([(lb or {}).get(label) or UNALLOCATED for lb in df["labels"]],
                         index=df.index, dtype=object)
    raise ParameterError(f"unknown cost dimension {dimension!r}",
                         "use namespace, workload, node or label:<key> (e.g. label:team)")


def aggregate(report: CostReport, dimension: str = "namespace", *,
              include_idle: bool = True) -> pd.DataFrame:
    """Monthly cost by namespace, workload, node or `label:<key>`.

    Containers without the label are grouped under `__unallocated__`; idle node
    cost is one `__idle__` row (OpenCost's convention).
    """
    a = report.allocations
    parts = []
    if len(a):
        parts.append(a.assign(key=_key(a, dimension))
                     .groupby("key")[["cpu_cost", "ram_cost", "pv_cost"]].sum())
    pv = report.pvcs[[not pods for pods in report.pvcs["pods"]]] if len(report.pvcs) \
        else report.pvcs
    if len(pv) and dimension != "node":  # unmounted claims still cost storage
        keyed = pv.assign(key=_key(pv, dimension) if dimension.startswith("label:")
                          else (pv["namespace"] if dimension == "namespace"
                                else pv["namespace"] + "/" + UNMOUNTED))
        parts.append(keyed.groupby("key")[["monthly_cost"]].sum()
                     .rename(columns={"monthly_cost": "pv_cost"}))
    out = pd.concat(parts).groupby(level=0).sum() if parts else \
        pd.DataFrame(columns=["cpu_cost", "ram_cost", "pv_cost"])
    out = out.reindex(columns=["cpu_cost", "ram_cost", "pv_cost"]).fillna(0.0)
    if include_idle and len(report.nodes):
        idle_cpu = float((report.nodes["cpu_cost"] - report.nodes["cpu_allocated_cost"]).sum())
        idle_ram = float((report.nodes["ram_cost"] - report.nodes["ram_allocated_cost"]).sum())
        out.loc[IDLE] = [idle_cpu, idle_ram, 0.0]
    out["total_cost"] = out.sum(axis=1)
    total = float(out["total_cost"].sum())
    out["share_pct"] = (100 * out["total_cost"] / total).round(2) if total else np.nan
    out.index.name = dimension
    return out.sort_values("total_cost", ascending=False).reset_index()


# -- savings ------------------------------------------------------------------------

def row_savings(recs: pd.DataFrame, prices: PriceBook | Prices | str | Path | None = None,
                state: ClusterState | None = None) -> pd.DataFrame:
    """Monthly cost before/after per recommendation row (OpenCost allocation).

    Needs cpu/memory request current/recommended, `replicas` (average pods
    running) and optionally `cpu_mean` / `memory_mean` (average usage per pod)
    and `node`. Cost = replicas x price x max(request, average usage).
    """
    book = resolve_prices(prices)
    n = len(recs)
    cpu_mean = recs["cpu_mean"].fillna(0).to_numpy(float) if "cpu_mean" in recs else np.zeros(n)
    mem_mean = recs["memory_mean"].fillna(0).to_numpy(float) if "memory_mean" in recs \
        else np.zeros(n)
    replicas = recs["replicas"].fillna(0).to_numpy(float) if "replicas" in recs else np.ones(n)
    nodes = recs["node"] if "node" in recs else pd.Series([""] * n, index=recs.index)
    pr = [book.for_node(state, nd) for nd in nodes]
    cpu_p = np.array([p.cpu_core_hour for p in pr], dtype=float) * HOURS_PER_MONTH
    ram_p = np.array([p.ram_gib_hour for p in pr], dtype=float) * HOURS_PER_MONTH / GIB

    def cost(cpu: pd.Series, mem: pd.Series) -> np.ndarray:
        c = np.fmax(cpu.fillna(0).to_numpy(float), cpu_mean)
        m = np.fmax(mem.fillna(0).to_numpy(float), mem_mean)
        return replicas * (c * cpu_p + m * ram_p)

    before = cost(recs["cpu_request_current"], recs["memory_request_current"])
    after = cost(recs["cpu_request_recommended"], recs["memory_request_recommended"])
    return pd.DataFrame({"monthly_cost_current": before, "monthly_cost_recommended": after,
                         "monthly_savings_usd": before - after}, index=recs.index)


@dataclass
class SavingsReport:
    rows: pd.DataFrame
    current_monthly: float
    recommended_monthly: float
    total_monthly: float
    actionable_monthly: float  # rows that carry an Action (patchable now)
    savings_pct: float  # of the analysed containers' current cost
    significant: bool  # savings_pct >= 20
    cluster_monthly: float | None  # node + storage cost, with state
    cluster_pct: float | None  # savings as a share of it
    nodes_before: int | None
    nodes_after: int | None
    node_shape: dict[str, float] | None
    requests: dict[str, float]  # cpu/memory requests of live pods before/after
    unfit: list[str]
    note: str
    currency: str = "USD"

    def to_dict(self) -> dict[str, Any]:
        return {"current_monthly": round(self.current_monthly, 2),
                "recommended_monthly": round(self.recommended_monthly, 2),
                "total_monthly_savings": round(self.total_monthly, 2),
                "actionable_monthly_savings": round(self.actionable_monthly, 2),
                "savings_pct": round(self.savings_pct, 2), "significant": self.significant,
                "cluster_monthly": None if self.cluster_monthly is None
                else round(self.cluster_monthly, 2),
                "cluster_pct": None if self.cluster_pct is None else round(self.cluster_pct, 2),
                "nodes_before": self.nodes_before, "nodes_after": self.nodes_after,
                "node_shape": self.node_shape, "requests": dict(self.requests),
                "unfit": list(self.unfit), "note": self.note, "currency": self.currency}


def nodes_needed(cpu: float, memory: float, shape: Mapping[str, float]) -> int:
    """Lower bound of nodes of one shape holding these requests (no fragmentation,
    no per-node DaemonSet overhead)."""
    need = max(cpu / shape["cpu"] if shape["cpu"] else 0.0,
               memory / shape["memory"] if shape["memory"] else 0.0)
    return max(1, math.ceil(need - 1e-9))


def _shape(state: ClusterState) -> dict[str, float] | None:
    n = state.nodes
    if n.empty:
        return None
    shapes = n[["cpu_allocatable", "memory_allocatable"]].dropna()
    if shapes.empty:
        return None
    mode = shapes.value_counts().index[0]  # the most common node shape
    return {"cpu": float(mode[0]), "memory": float(mode[1])}


def savings(recs: pd.DataFrame, prices: PriceBook | Prices | str | Path | None = None, *,
            state: ClusterState | None = None) -> SavingsReport:
    """Monthly savings per recommendation and in total, plus the node-count effect.

    The percentage is relative to the current monthly cost of the analysed
    containers. With `state`, requests of every scheduled or pending pod are
    summed before and after the change, and divided by the most common node
    shape's allocatable resources: savings become real only once the node
    count (or node size) shrinks.
    """
    book = resolve_prices(prices)
    keys = [c for c in ("namespace", "workload_kind", "workload", "container", "status")
            if c in recs.columns]
    money = row_savings(recs, book, state)
    rows = pd.concat([recs[keys], money], axis=1)
    rows["actionable"] = ([a is not None for a in recs["action"]] if "action" in recs.columns
                          else False)
    actionable = float(rows.loc[rows["actionable"], "monthly_savings_usd"].sum())
    current = float(money["monthly_cost_current"].sum())
    recommended = float(money["monthly_cost_recommended"].sum())
    total = current - recommended
    pct = 100 * total / current if current > 0 else 0.0
    significant = pct >= SIGNIFICANT_SAVINGS_PCT
    before = after = None
    shape = _shape(state) if state is not None else None
    unfit: list[str] = []
    requests: dict[str, float] = {}
    cluster = cluster_pct = None
    if state is not None:
        nodes = node_costs(state, pd.DataFrame(columns=["node", "cpu_cost", "ram_cost"]), book)
        cluster = float(nodes["node_cost"].sum()) + float(
            pvc_costs(state, book)["monthly_cost"].sum())
        cluster_pct = 100 * total / cluster if cluster > 0 else None
    if state is not None and shape is not None:
        before, after, unfit, requests = _node_effect(state, recs, shape)
    currency = book.default.currency
    parts = [f"potential {total:,.2f} {currency}/month = {pct:.1f} % of the analysed "
             f"containers' {current:,.2f} {currency}/month"
             + (f" ({cluster_pct:.1f} % of the cluster's {cluster:,.2f})"
                if cluster_pct is not None and cluster is not None else "")
             + f", {actionable:,.2f} of it through the proposed Actions"]
    if not significant:
        parts.append(f"below {SIGNIFICANT_SAVINGS_PCT:.0f} %: right-sizing alone is "
                     "unlikely to change the bill much")
    if before is not None:
        parts.append(f"savings become real once nodes shrink: requests need {before} node(s) "
                     f"of the current shape before and {after} after"
                     + (" (no node can be removed; a smaller node shape would be needed)"
                        if after == before else ""))
    if unfit:
        parts.append("pods larger than one node of that shape are left out: "
                     + ", ".join(unfit))
    return SavingsReport(rows, current, recommended, total, actionable, pct, significant, cluster,
                         cluster_pct, before, after, shape, requests, unfit, "; ".join(parts),
                         currency)


def _node_effect(state: ClusterState, recs: pd.DataFrame, shape: Mapping[str, float]
                 ) -> tuple[int, int, list[str], dict[str, float]]:
    pods = state.pods
    live = pods[~pods["phase"].isin(TERMINAL_PHASES)]
    fits = (live["cpu_request"] <= shape["cpu"]) & (live["memory_request"] <= shape["memory"])
    unfit = [f"{ns}/{n}" for ns, n in zip(live.loc[~fits, "namespace"],
                                          live.loc[~fits, "name"], strict=True)]
    live = live[fits]
    cpu, mem = float(live["cpu_request"].sum()), float(live["memory_request"].sum())
    before = nodes_needed(cpu, mem, shape)
    # pods of each recommended container that count above (scheduled or pending, fitting)
    c = state.containers
    c = c[~c["init"].astype(bool)]
    keep = set(zip(live["namespace"], live["name"], strict=True))
    c = c[[(ns, p) in keep for ns, p in zip(c["namespace"], c["pod"], strict=True)]]
    count = c.groupby(["namespace", "workload_kind", "workload", "container"]).size()
    d_cpu = d_mem = 0.0
    for r in recs.itertuples(index=False):
        k = (r.namespace, r.workload_kind, r.workload, r.container)
        if k not in count.index:
            continue
        n = float(count.loc[k])
        d_cpu += n * _delta(r.cpu_request_current, r.cpu_request_recommended)
        d_mem += n * _delta(r.memory_request_current, r.memory_request_recommended)
    cpu_after, mem_after = max(cpu - d_cpu, 0.0), max(mem - d_mem, 0.0)
    after = nodes_needed(cpu_after, mem_after, shape)
    return before, after, unfit, {"cpu_before": cpu, "cpu_after": cpu_after,
                                  "memory_before": mem, "memory_after": mem_after}


def _delta(cur: float, new: float) -> float:
    cur = 0.0 if cur != cur else float(cur)
    new = 0.0 if new != new else float(new)
    return cur - new


__all__ = [
    "ALLOCATION_COLUMNS", "DEFAULT_CPU_CORE_HOUR", "DEFAULT_RAM_GIB_HOUR",
    "DEFAULT_STORAGE_GIB_MONTH", "HOURS_PER_MONTH", "IDLE", "UNALLOCATED", "CostReport",
    "PriceBook", "Prices", "SavingsReport", "aggregate", "allocation", "cost_report",
    "default_prices", "load_prices", "node_costs", "nodes_needed", "price_book",
    "pvc_costs", "resolve_prices", "row_savings", "savings",
]
