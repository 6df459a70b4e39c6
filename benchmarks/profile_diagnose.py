"""Where the first whole-cluster triage of a 10,000-pod cluster spends its time:
each rule's own work and each state-wide table it builds (`Context.shared`), on
first use, exclusive of what is nested in them. CPU time, so that a busy machine
blurs the figures less. Pass --rules a,b to time some rules only (the tables they
need are still built, and counted where they are built).
Run: .venv/bin/python benchmarks/profile_diagnose.py [--pods N] [--rules a,b]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import scaled_cluster

from aiops.diagnose import context as C
from aiops.diagnose.registry import RULES, load_rules
from aiops.sources.snapshot import load_snapshot


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--rules", default="")
    args = ap.parse_args()
    path = scaled_cluster(pods=args.pods, events=args.pods * 10, broken_every=10)
    state = load_snapshot(path)
    load_rules()
    gc.collect()
    gc.disable()
    nested: list[float] = []
    tables: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    plain_shared = C.Context.shared

    def shared(self: C.Context, key: Any, build: Any) -> Any:
        def timed() -> Any:
            nested.append(0.0)
            t = time.process_time()
            out = build()
            spent = time.process_time() - t
            tables[repr(key[:2] if isinstance(key, tuple) else key)] += spent - nested.pop()
            if nested:
                nested[-1] += spent
            return out
        return plain_shared(self, key, timed)

    C.Context.shared = shared  # type: ignore[method-assign]
    ctx = C.Context(state, C.Target())
    wanted = {r for r in args.rules.split(",") if r}
    start = time.process_time()
    for rid, r in RULES.items():
        if wanted and rid not in wanted:
            continue
        nested.append(0.0)
        t = time.process_time()
        list(r.fn(ctx))
        rules[rid] = time.process_time() - t - nested.pop()
    total = time.process_time() - start
    print(f"{len(state.kind('Pod'))} pods: rules {total * 1000:.0f} ms CPU "
          f"(tables {sum(tables.values()) * 1000:.0f} ms, rule bodies "
          f"{sum(rules.values()) * 1000:.0f} ms)")
    for title, counts in (("tables", tables), ("rule bodies", rules)):
        print(f"-- {title}")
        for k, v in counts.most_common(20):
            if v >= 0.0005:
                print(f"{v * 1000:8.1f} ms  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
