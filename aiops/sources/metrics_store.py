"""A local columnar usage store, so a cluster without Prometheus builds its own history.

Layout (Parquet, one directory per UTC day)::

    STORE/date=2026-11-23/part-<seq>-<rand>.parquet    one append
    STORE/date=2026-11-23/cpart-<upto>-<rand>.parquet  a compaction of that day

* Appends are atomic: a part is written to a hidden temp file (ignored by
  readers), fsynced and renamed into place, so a reader never sees half a file
  and a crash loses at most the append in flight.
* Compaction merges a day's parts into one `cpart` file. The cpart's name says
  which parts it replaces (every part whose sequence number is <= `upto`);
  readers use the newest cpart plus the newer parts, so the rename is the
  commit and the deletions after it are only clean-up.
* Retention (e.g. "30d") drops whole day partitions that end more than the
  retention before the end of the newest day; the newest partition is never
  removed. Retention is measured from the newest data, not from the clock, so
  a store whose sampler stopped keeps its last history.
* One writer at a time (an advisory lock on STORE/.lock); any number of readers.

`MetricsStore(path).history()` is a `UsageHistory` that reads only the day
partitions of the window and only the columns it needs (pyarrow.dataset), and
computes `stats()` in one streamed pass holding only the value column (40
million samples: ~5 s, < 1 GB). Its numbers are those of `container_stats`
on the same rows (bit-identical on the demo history; a mean may differ in the
last bit, as pandas sums with Kahan compensation and the store in extended
precision). Rows are written sorted by (resource, namespace, workload,
container, pod, time), so a batch holds long runs of one group.

`sample_once` turns metrics.k8s.io PodMetrics into tidy rows; `sample_loop`
polls on a fixed tick, backs off after failed polls and never stops on one;
`aiops metrics sample` is its command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from aiops.durations import parse_duration
from aiops.errors import ParameterError, SourceError
from aiops.quantity import to_float
from aiops.usage import (
    DEFAULT_QUANTILES,
    STAT_KEYS,
    USAGE_COLUMNS,
    check_usage,
    qcol,
    stats_columns,
    window_delta,
)

log = logging.getLogger("aiops.metrics")

DAY_NS = 86_400 * 10**9
STRING_COLUMNS = USAGE_COLUMNS[1:-1]
_DICT = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema([("time", pa.timestamp("ns", tz="UTC"))]
                   + [(c, _DICT) for c in STRING_COLUMNS] + [("value", pa.float64())])
SORT_KEYS = ["resource", "namespace", "workload_kind", "workload", "container", "pod", "time"]
ROW_GROUP = 1 << 18
COMPACT_AFTER = 64  # parts in one day before an append compacts it
_PART = re.compile(r"^(c?part)-(\d{20})-[0-9a-f]+\.parquet$")
_DAY_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _day(ns: int) -> str:
    return str(np.datetime64(ns // DAY_NS, "D"))


def _day_start_ns(day: str) -> int:
    return int(np.datetime64(day, "D").astype("datetime64[ns]").astype(np.int64))


class _Seq:
    """Strictly increasing nanosecond sequence numbers for part names."""

    _lock = threading.Lock()
    _last = 0

    @classmethod
    def next(cls) -> int:
        with cls._lock:
            cls._last = max(cls._last + 1, time.time_ns())
            return cls._last


def _to_table(df: pd.DataFrame) -> pa.Table:
    """The tidy frame as an Arrow table of SCHEMA (strings dictionary-encoded), sorted."""
    df = df[USAGE_COLUMNS]
    t = pd.to_datetime(df["time"], utc=True)
    cols: dict[str, Any] = {"time": pa.array(t.to_numpy("datetime64[ns]"),
                                             pa.timestamp("ns", tz="UTC"))}
    for c in STRING_COLUMNS:
        s = df[c]
        if s.isna().any():
            s = s.astype(object).where(s.notna(), "")
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = pa.array(s.cat.categories.astype(str).to_numpy(object), pa.string())
            cols[c] = pa.DictionaryArray.from_arrays(pa.array(s.cat.codes.to_numpy(np.int32)),
                                                     cats)
        else:
            cols[c] = pa.array(s.astype(str).to_numpy(object), pa.string()).dictionary_encode()
    cols["value"] = pa.array(df["value"].to_numpy(np.float64), pa.float64())
    return _sorted(pa.table(cols, schema=SCHEMA))


def _sorted(table: pa.Table) -> pa.Table:
    """Rows ordered by SORT_KEYS (strings lexicographically): a streamed batch then
    holds long runs of one group (stats() works on runs, not rows), and a row group
    covers a narrow range of resources and namespaces."""
    table = table.unify_dictionaries().combine_chunks()
    keys = []
    for k in reversed(SORT_KEYS):  # np.lexsort: the last key is the primary one
        col = table[k].chunk(0) if table[k].num_chunks else pa.array([], table[k].type)
        if pa.types.is_dictionary(col.type):
            words = np.array(col.dictionary.to_pylist(), dtype=object)
            rank = np.empty(len(words), np.int64)
            rank[np.argsort(words, kind="stable")] = np.arange(len(words))
            keys.append(rank[col.indices.to_numpy(zero_copy_only=False)])
        else:
            keys.append(pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False))
    return table.take(pa.array(np.lexsort(keys)))


@dataclass(frozen=True)
class Partition:
    day: str
    path: Path


class MetricsStore:
    """Day-partitioned Parquet usage samples under `path` (created on first append)."""

    def __init__(self, path: str | Path, retention: str | None = None,
                 compact_after: int = COMPACT_AFTER) -> None:
        self.path = Path(path)
        self.retention = parse_duration(retention, "retention") if retention else None
        self.compact_after = compact_after

    def __repr__(self) -> str:
        return f"MetricsStore({str(self.path)!r})"

    # -- writing ------------------------------------------------------------------
    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def append(self, frame: pd.DataFrame) -> int:
        """Append tidy rows (USAGE_COLUMNS; NaN values dropped); returns rows written."""
        df = check_usage(frame, "rows to store")
        if df.empty:
            return 0
        table = _to_table(df)
        days = pc.divide(pc.cast(table["time"], pa.int64()), DAY_NS).to_numpy()
        unique_days = np.unique(days)
        with self._writer():
            touched = []
            for d in unique_days:
                part = table.filter(pa.array(days == d)) if len(unique_days) > 1 else table
                pdir = self.path / f"date={_day(int(d) * DAY_NS)}"
                pdir.mkdir(exist_ok=True)
                _write_atomic(part, pdir / f"part-{_Seq.next():020d}-{secrets.token_hex(4)}"
                                           ".parquet")
                touched.append(pdir)
            for pdir in touched:
                if len(_live_files(pdir)) >= self.compact_after:
                    self._compact_dir(pdir)
            if self.retention is not None:
                self._prune()
        return table.num_rows

    def compact(self) -> int:
        """Merge every day's parts into one file; returns the partitions rewritten."""
        with self._writer():
            return sum(self._compact_dir(p.path) for p in self.partitions())

    def _compact_dir(self, pdir: Path) -> bool:
        live = _live_files(pdir)
        if len(live) <= 1:
            _remove(_superseded(pdir))  # left by a compaction that crashed before clean-up
            return False
        upto = max(int(_PART.match(f.name).group(2)) for f in live)  # type: ignore[union-attr]
        table = pa.concat_tables([pq.read_table(f, schema=SCHEMA) for f in live])
        table = _sorted(table)
        _write_atomic(table, pdir / f"cpart-{upto:020d}-{secrets.token_hex(4)}.parquet")
        _remove(_superseded(pdir))
        return True

    def prune(self) -> list[str]:
        """Apply the retention now; returns the days removed."""
        with self._writer():
            return self._prune()

    def _prune(self) -> list[str]:
        if self.retention is None:
            return []
        parts = self.partitions()
        if len(parts) <= 1:
            return []
        newest_end = _day_start_ns(parts[-1].day) + DAY_NS
        cutoff = newest_end - int(self.retention.value)
        removed = []
        for p in parts[:-1]:  # never the newest
            if _day_start_ns(p.day) + DAY_NS <= cutoff:
                trash = self.path / f".trash-{p.path.name}-{secrets.token_hex(4)}"
                os.replace(p.path, trash)  # readers stop seeing it at once
                shutil.rmtree(trash, ignore_errors=True)
                removed.append(p.day)
        if removed:
            log.info("metrics store %s: retention removed %s", self.path, ", ".join(removed))
        return removed

    # -- reading ------------------------------------------------------------------
    def partitions(self) -> list[Partition]:
        if not self.path.is_dir():
            return []
        out = [Partition(m.group(1), p) for p in self.path.iterdir()
               if p.is_dir() and (m := _DAY_DIR.match(p.name))]
        return sorted(out, key=lambda p: p.day)

    def files(self, since_ns: int | None = None, until_ns: int | None = None) -> list[Path]:
        """Live files of the days overlapping [since, until]."""
        out: list[Path] = []
        for p in self.partitions():
            start = _day_start_ns(p.day)
            if since_ns is not None and start + DAY_NS <= since_ns:
                continue
            if until_ns is not None and start > until_ns:
                continue
            out.extend(_live_files(p.path))
        return out

    @staticmethod
    def _filter(since_ns: int | None, until_ns: int | None,
                namespaces: Sequence[str] | None, resource: str | None) -> Any:
        ts = pa.timestamp("ns", tz="UTC")
        parts = []
        if since_ns is not None:
            parts.append(ds.field("time") >= pa.scalar(since_ns, ts))
        if until_ns is not None:
            parts.append(ds.field("time") <= pa.scalar(until_ns, ts))
        if namespaces:
            parts.append(ds.field("namespace").isin(pa.array(sorted(set(namespaces)),
                                                              pa.string())))
        if resource:
            parts.append(ds.field("resource") == resource)
        flt = None
        for p in parts:
            flt = p if flt is None else flt & p
        return flt

    def read(self, *, since_ns: int | None = None, until_ns: int | None = None,
             namespaces: Sequence[str] | None = None, resource: str | None = None,
             columns: Sequence[str] | None = None) -> pa.Table:
        """Rows of [since, until] (inclusive) as an Arrow table, reading only the day
        partitions and columns needed."""
        cols = list(columns) if columns else list(SCHEMA.names)
        flt = self._filter(since_ns, until_ns, namespaces, resource)
        for attempt in range(3):
            files = self.files(since_ns, until_ns)
            if not files:
                return SCHEMA.empty_table().select(cols)
            try:
                dataset = ds.dataset([str(f) for f in files], schema=SCHEMA, format="parquet")
                return dataset.to_table(columns=cols, filter=flt)
            except FileNotFoundError:  # a compaction or prune ran meanwhile: list again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def batches(self, *, since_ns: int | None = None, until_ns: int | None = None,
                namespaces: Sequence[str] | None = None,
                columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Like read(), streamed as record batches (constant memory per batch)."""
        cols = list(columns) if columns else list(SCHEMA.names)
        files = self.files(since_ns, until_ns)
        if not files:
            return iter(())
        dataset = ds.dataset([str(f) for f in files], schema=SCHEMA, format="parquet")
        return dataset.to_batches(columns=cols, batch_size=1 << 20,
                                  filter=self._filter(since_ns, until_ns, namespaces, None))

    def newest_ns(self, namespaces: Sequence[str] | None = None) -> int | None:
        """Time of the newest sample (of these namespaces), or None when empty."""
        for p in reversed(self.partitions()):
            start = _day_start_ns(p.day)
            t = self.read(since_ns=start, until_ns=start + DAY_NS - 1, namespaces=namespaces,
                          columns=["time"])["time"]
            if len(t):
                return int(pc.cast(pc.max(t), pa.int64()).as_py())
        return None

    def last_seen(self) -> dict[tuple[str, str], pd.Timestamp]:
        """(namespace, pod) -> newest stored time, from the newest day partition: a
        sampler that restarts (or runs once a minute from cron) then skips PodMetrics
        metrics-server has not refreshed instead of storing them twice."""
        parts = self.partitions()
        if not parts:
            return {}
        start = _day_start_ns(parts[-1].day)
        t = self.read(since_ns=start, until_ns=start + DAY_NS - 1,
                      columns=["namespace", "pod", "time"])
        if not t.num_rows:
            return {}
        t = pa.table({"namespace": pc.cast(t["namespace"], pa.string()),
                      "pod": pc.cast(t["pod"], pa.string()), "time": t["time"]})
        newest = t.group_by(["namespace", "pod"]).aggregate([("time", "max")]).to_pandas()
        return {(ns, pod): pd.Timestamp(ts) for ns, pod, ts in
                zip(newest["namespace"], newest["pod"], newest["time_max"], strict=True)}

    def describe(self) -> dict[str, Any]:
        """What the store holds, for `aiops metrics show`: time range, sample times,
        rows, namespaces, workloads, pods, containers, and size on disk. Reads every
        column but the values, batch by batch."""
        times: set[int] = set()
        groups: dict[str, set[tuple[str, ...]]] = {"workloads": set(), "pods": set(),
                                                   "containers": set()}
        namespaces: set[str] = set()
        by_resource: dict[str, int] = {}
        rows = 0
        first = last = None
        for batch in self.batches(columns=[*STRING_COLUMNS, "time"]):
            if not batch.num_rows:
                continue
            t = pc.cast(batch.column("time"), pa.int64())
            times.update(pc.unique(t).to_pylist())
            lo, hi = pc.min(t).as_py(), pc.max(t).as_py()
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
            rows += batch.num_rows
            tbl = pa.Table.from_batches([batch]).select(STRING_COLUMNS)
            for k in tbl.group_by(STRING_COLUMNS).aggregate([([], "count_all")]).to_pylist():
                namespaces.add(k["namespace"])
                groups["workloads"].add((k["namespace"], k["workload_kind"], k["workload"]))
                groups["pods"].add((k["namespace"], k["pod"]))
                groups["containers"].add((k["namespace"], k["pod"], k["container"]))
                by_resource[k["resource"]] = by_resource.get(k["resource"], 0) + k["count_all"]
        files = [f for f in self.path.rglob("*") if f.is_file()] if self.path.is_dir() else []
        live = [f for p in self.partitions() for f in _live_files(p.path)]

        def ts(ns: int | None) -> pd.Timestamp | None:
            return None if ns is None else pd.Timestamp(ns, unit="ns", tz="UTC")

        return {"path": str(self.path), "rows": rows, "samples": len(times),
                "first": ts(first), "last": ts(last),
                "span": ts(last) - ts(first) if first is not None else None,
                "rows_by_resource": by_resource, "namespaces": sorted(namespaces),
                **{k: len(v) for k, v in groups.items()},
                "days": [p.day for p in self.partitions()],
                "files": len(live), "bytes": sum(f.stat().st_size for f in files)}

    def history(self, at: datetime | str | None = None, name: str | None = None) -> StoreHistory:
        return StoreHistory(self, at=at, name=name)


def _write_atomic(table: pa.Table, final: Path) -> None:
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        # lz4 and no dictionary for the values: reads ~2x faster than zstd for about
        # the same size (usage values hardly compress); byte-stream-split helps floats
        pq.write_table(table, tmp, compression="lz4", row_group_size=ROW_GROUP,
                       use_dictionary=[*STRING_COLUMNS, "time"],
                       use_byte_stream_split=["value"], write_statistics=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _remove(files: list[Path]) -> None:
    for f in files:
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


def _scan(pdir: Path) -> tuple[list[tuple[int, Path]], list[tuple[int, Path]]]:
    parts, cparts = [], []
    with contextlib.suppress(FileNotFoundError):
        for f in pdir.iterdir():
            m = _PART.match(f.name)
            if m:
                (cparts if m.group(1) == "cpart" else parts).append((int(m.group(2)), f))
    return sorted(parts), sorted(cparts)


def _live_files(pdir: Path) -> list[Path]:
    """The newest compaction plus the parts written after it."""
    parts, cparts = _scan(pdir)
    if not cparts:
        return [f for _, f in parts]
    upto, newest = cparts[-1]
    return [newest] + [f for seq, f in parts if seq > upto]


def _superseded(pdir: Path) -> list[Path]:
    parts, cparts = _scan(pdir)
    if not cparts:
        return []
    upto, newest = cparts[-1]
    return [f for _, f in cparts if f != newest] + [f for seq, f in parts if seq <= upto]


# -- the history --------------------------------------------------------------
class StoreHistory:
    """UsageHistory over a MetricsStore.

    The window ends at `at`, or (like FrameHistory) at the newest sample of the
    selected namespaces, and includes its start.
    """

    def __init__(self, store: MetricsStore, at: datetime | str | None = None,
                 name: str | None = None) -> None:
        self.store = store
        self.at_ns = _utc(at).value if at is not None else None
        self.name = name or f"store:{store.path}"

    def _bounds(self, window: str | None,
                namespaces: Sequence[str] | None) -> tuple[int | None, int | None] | None:
        td = window_delta(window)
        end = self.at_ns
        if td is None:
            return None, end
        if end is None:
            end = self.store.newest_ns(namespaces)
            if end is None:
                return None
        return end - int(td.value), end

    def samples(self, *, window: str | None = None,
                namespaces: Sequence[str] | None = None) -> pd.DataFrame:
        bounds = self._bounds(window, namespaces)
        if bounds is None:
            return SCHEMA.empty_table().to_pandas()
        table = self.store.read(since_ns=bounds[0], until_ns=bounds[1], namespaces=namespaces)
        return table.to_pandas()

    def stats(self, *, window: str | None = None, namespaces: Sequence[str] | None = None,
              quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        """container_stats() of the window, from one streamed pass over the rows."""
        quantiles = [float(q) for q in quantiles]
        cols = stats_columns(quantiles)
        bounds = self._bounds(window, namespaces)
        if bounds is None:
            return pd.DataFrame(columns=cols)
        for attempt in range(3):
            try:
                rows = _stream_stats(self.store.batches(
                    since_ns=bounds[0], until_ns=bounds[1], namespaces=namespaces,
                    columns=[*STAT_KEYS, "pod", "time", "value"]), quantiles)
                break
            except FileNotFoundError:  # a compaction or prune ran meanwhile: list again
                if attempt == 2:
                    raise
        if not rows:
            return pd.DataFrame(columns=cols)
        out = pd.DataFrame(rows)
        for c in ("first", "last"):
            out[c] = pd.to_datetime(out[c].to_numpy(np.int64), unit="ns", utc=True)
        out["samples"] = out["samples"].astype("int64")
        out["pods"] = out["pods"].astype("int64")
        return out.sort_values(STAT_KEYS, kind="stable").reset_index(drop=True)[cols]


def _indices(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    return arr.indices.to_numpy(zero_copy_only=False), arr.dictionary


@dataclass
class _Group:
    runs: list[tuple[int, int, int]]  # (batch, start, end)
    first: int
    last: int
    pods: set[int]


def _stream_stats(batches: Iterable[pa.RecordBatch],
                  quantiles: Sequence[float]) -> list[dict[str, Any]]:
    """container_stats() over record batches, holding only the value column.

    Rows of a group are found as runs of equal keys within each batch (the
    store writes rows sorted by group, so a batch has few runs; unsorted input
    is still correct, only slower). Per group the values of its runs are
    concatenated once and summarised by `summary_inplace`, the function
    `container_stats` uses too.
    """
    from aiops.rightsizing._groups import summary_inplace

    groups: dict[tuple[str, ...], _Group] = {}
    pod_code: dict[str, int] = {}
    values: list[np.ndarray] = []
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        bi = len(values)
        values.append(batch.column("value").to_numpy(zero_copy_only=False))
        key = np.zeros(n, np.int64)
        idx, words = [], []
        for c in STAT_KEYS:
            i, d = _indices(batch.column(c))
            key = key * max(len(d), 1) + i
            idx.append(i)
            words.append(d.to_pylist())
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = np.r_[starts[1:], n]
        t = pc.cast(batch.column("time"), pa.int64()).to_numpy(zero_copy_only=False)
        tmin = np.minimum.reduceat(t, starts)
        tmax = np.maximum.reduceat(t, starts)
        pod_i, pod_d = _indices(batch.column("pod"))
        pod_map = np.array([pod_code.setdefault(p, len(pod_code)) for p in pod_d.to_pylist()],
                           dtype=np.int64)
        pod_g = pod_map[pod_i] if len(pod_map) else pod_i
        run_groups = []
        for r, s0 in enumerate(starts.tolist()):
            name = tuple(words[j][idx[j][s0]] for j in range(len(STAT_KEYS)))
            g = groups.get(name)
            if g is None:
                g = groups[name] = _Group([], int(tmin[r]), int(tmax[r]), set())
            g.runs.append((bi, s0, int(ends[r])))
            g.first = min(g.first, int(tmin[r]))
            g.last = max(g.last, int(tmax[r]))
            run_groups.append(g)
        # every distinct pod of a run appears at a change of (key, pod)
        changes = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]) | (pod_g[1:] != pod_g[:-1])])
        run_of = np.searchsorted(starts, changes, side="right") - 1
        for r, p in zip(run_of.tolist(), pod_g[changes].tolist(), strict=True):
            run_groups[r].pods.add(p)
    rows = []
    for name, g in groups.items():
        v = np.concatenate([values[b][s:e] for b, s, e in g.runs])
        if np.isnan(v).any():
            v = v[~np.isnan(v)]
        n = len(v)
        if n == 0:
            continue
        mean, peak, quants = summary_inplace(v, quantiles)
        row: dict[str, Any] = dict(zip(STAT_KEYS, name, strict=True))
        row.update(samples=n, pods=len(g.pods), first=g.first, last=g.last, mean=mean,
                   peak=peak, **{qcol(q): x for q, x in zip(quantiles, quants, strict=True)})
        rows.append(row)
    return rows


# -- sampling metrics.k8s.io ----------------------------------------------------
StateSource = Any  # a ClusterState, or a callable returning one


def _parse_time(text: Any, default: pd.Timestamp) -> pd.Timestamp:
    if isinstance(text, str) and text:
        try:
            return _utc(text)
        except ValueError:
            pass
    return default


def podmetrics_frame(state: Any) -> pd.DataFrame:
    """PodMetrics objects of a ClusterState as tidy usage rows (one per container and resource).

    The time is the PodMetrics `timestamp` (end of its `window`); the workload
    comes from `state.top_owner` of the pod, or from the pod's name when the pod
    itself was not loaded.
    """
    from aiops.sources.prometheus import owner_from_name

    default = _utc(state.captured_at)
    rows: list[tuple[Any, ...]] = []
    for pm in state.kind("PodMetrics"):
        md = pm.get("metadata") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        if not (isinstance(ns, str) and isinstance(name, str) and name):
            continue
        pod = state.get("Pod", ns, name)
        kind, workload = state.top_owner(pod) if pod is not None else owner_from_name(name)
        when = _parse_time(pm.get("timestamp"), default)
        for c in pm.get("containers") or []:
            if not isinstance(c, dict) or not c.get("name"):
                continue
            usage = c.get("usage") or {}
            for resource in ("cpu", "memory"):
                v = to_float(usage.get(resource))
                if not math.isnan(v):
                    rows.append((when, ns, kind, workload, name, c["name"], resource, v))
    df = pd.DataFrame(rows, columns=USAGE_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True).astype("datetime64[ns, UTC]")
    df["value"] = df["value"].astype(np.float64)
    return df


def _resolve(source: StateSource) -> Any:
    return source() if callable(source) else source


def sample_once(source: StateSource, store: MetricsStore,
                seen: dict[tuple[str, str], pd.Timestamp] | None = None) -> pd.DataFrame:
    """Read PodMetrics once (a ClusterState or a loader) and append them to `store`.

    `seen` (pod -> last stored timestamp) skips PodMetrics metrics-server has
    not refreshed since the previous poll, so no sample is stored twice.
    Returns the rows appended; `attrs` says what metrics-server reported
    (`pods`, `containers`, and `time`, the newest PodMetrics timestamp), which
    a skipped, unrefreshed poll still has.
    """
    state = _resolve(source)
    if not state.kind("PodMetrics") and "PodMetrics" in getattr(state, "unavailable", {}):
        why = state.unavailable["PodMetrics"]
        hint = ("install metrics-server (it serves metrics.k8s.io)" if "not served" in why
                else "allow list on pods.metrics.k8s.io to this identity"
                if why.startswith("forbidden") else
                "metrics-server is down or restarting: check `kubectl get apiservice "
                "v1beta1.metrics.k8s.io` and its pod")
        raise SourceError(f"PodMetrics are not available from {state.source}: {why}", hint)
    df = podmetrics_frame(state)
    reported = {"pods": int(df["pod"].nunique() if len(df) else 0),
                "containers": len(df.drop_duplicates(["namespace", "pod", "container"])),
                "time": df["time"].max() if len(df) else None}
    if seen is not None:
        pairs = list(zip(zip(df["namespace"], df["pod"], strict=True), df["time"], strict=True))
        fresh = np.array([k not in seen or t > seen[k] for k, t in pairs], dtype=bool)
        df = df[fresh] if len(df) else df
        current = {k: max(seen.get(k, t), t) for k, t in pairs}
        seen.clear()  # only pods still reported: bounded by the cluster's pods
        seen.update(current)
    if not df.empty:
        store.append(df)
    df.attrs.update(reported)
    return df


@dataclass
class LoopResult:
    polls: int = 0
    failures: int = 0
    rows: int = 0


@dataclass
class Poll:
    """What one poll of `sample_loop` did, for a progress line."""

    number: int
    rows: pd.DataFrame | None  # appended rows (attrs: pods, containers, time); None: failed
    error: Exception | None
    retry_in: float  # seconds until the next poll
    backoff: float = 0.0  # after a failure: the delay chosen (interval x 2^(failures-1))


def _seconds(every: str | float | int) -> float:
    if isinstance(every, int | float):
        secs = float(every)
        if secs <= 0:
            raise ParameterError(f"invalid sampling interval {every!r}", "use e.g. 60s or 5m")
        return secs
    return parse_duration(every, "sampling interval").total_seconds()


def sample_loop(load_fn: Callable[[], Any], store: MetricsStore, every: str | float = "60s",
                iterations: int | None = None, stop_event: threading.Event | None = None,
                on_poll: Callable[[Poll], None] | None = None,
                fatal: tuple[type[BaseException], ...] = (),
                max_backoff: float = 300.0) -> LoopResult:
    """Poll `load_fn()` every `every` and append its PodMetrics to `store`.

    A failed poll (API down, metrics-server restarting, disk full) is reported
    and retried with exponential backoff (the interval, doubled per consecutive
    failure, at most `max_backoff` or the interval if longer); what is stored is
    never touched by a failure (appends are atomic). Exceptions of `fatal`
    (e.g. an unusable kubeconfig, which no retry fixes) end the loop. Ticks are
    on a fixed schedule; a poll that overruns skips the ticks it missed. Stops
    after `iterations` polls or when `stop_event` is set; a poll in progress
    always finishes its write first.
    """
    interval = _seconds(every)
    cap = max(interval, max_backoff)
    stop = stop_event or threading.Event()
    result = LoopResult()
    seen = store.last_seen()
    failing = 0
    next_at = time.monotonic()
    while not stop.is_set() and (iterations is None or result.polls < iterations):
        started = time.monotonic()
        result.polls += 1
        df: pd.DataFrame | None = None
        error: Exception | None = None
        try:
            df = sample_once(load_fn, store, seen)
        except fatal:
            raise
        except Exception as exc:  # one bad poll must not end the sampler
            error = exc
            result.failures += 1
            failing += 1
            log.warning("metrics poll %d failed: %s", result.polls, exc)
        else:
            failing = 0
            result.rows += len(df)
        now = time.monotonic()
        backoff = min(interval * 2 ** (failing - 1), cap) if failing else 0.0
        if failing:
            next_at = started + backoff
        else:
            next_at += interval
            if next_at < now:  # overran: skip the missed ticks
                next_at += math.ceil((now - next_at) / interval) * interval
        done = iterations is not None and result.polls >= iterations
        if on_poll:
            on_poll(Poll(result.polls, df, error, 0.0 if done else max(0.0, next_at - now),
                         backoff))
        if done:
            break
        stop.wait(max(0.0, next_at - time.monotonic()))
    return result


def metrics_loader(spec: str = "kube", namespaces: Sequence[str] | None = None,
                   kubeconfig: str | None = None, timeout: float = 15.0) -> Callable[[], Any]:
    """A light `load_fn` for sample_loop.

    For `kube` / `kube:CONTEXT` it lists only what sampling needs (pods, their
    owner chain and PodMetrics; no logs, events or RBAC); any other spec is
    opened with `open_source` (a snapshot or the demo) on every call.
    """
    scheme, _, arg = spec.partition(":")
    if scheme != "kube":
        from aiops.model import ClusterState
        from aiops.sources import open_source

        def load_snapshot() -> Any:
            state = open_source(spec)
            if not namespaces:
                return state
            keep = set(namespaces)
            return ClusterState(
                source=state.source, context=state.context, captured_at=state.captured_at,
                unavailable=state.unavailable,
                objects={k: [o for o in objs if (o.get("metadata") or {}).get("namespace")
                             in keep] for k, objs in state.objects.items()})

        return load_snapshot

    def load() -> Any:
        from aiops.sources.live import load_pod_metrics

        return load_pod_metrics(arg or None, kubeconfig=kubeconfig, namespaces=namespaces,
                                timeout=timeout)

    return load


__all__ = ["LoopResult", "MetricsStore", "Poll", "StoreHistory", "metrics_loader",
           "podmetrics_frame", "sample_loop", "sample_once"]
