"""Instructions a first whole-cluster triage executes, counted by valgrind's
callgrind, per thread: the main thread (the rules) and any worker (the log sweep
of logs the load did not sweep already). Wall-clock figures on a shared VM swing by
up to 2x within minutes; an instruction count does not, so two versions of a rule
can be compared by one run each. Only the triage is counted (the load runs
uninstrumented, but under valgrind: expect about a minute for 2,500 pods). Needs
valgrind (Debian package `valgrind`); not part of `make bench`.
Run: .venv/bin/python benchmarks/count_diagnose.py [--pods N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def _triage(pods: int) -> None:
    """Inside valgrind: load uninstrumented, then count the first triage only."""
    from _cluster import scaled_cluster

    from aiops.diagnose import diagnose
    from aiops.diagnose.registry import load_rules
    from aiops.sources.snapshot import load_snapshot

    state = load_snapshot(scaled_cluster(pods=pods, events=pods * 10, broken_every=10))
    load_rules()

    def instrument(on: str) -> None:
        subprocess.run(["callgrind_control", "-i", on, str(os.getpid())], check=True,
                       capture_output=True)

    # threads switch only when one waits (the main thread, for the log sweep's result):
    # how they interleave under valgrind would otherwise move the counts by ~2 %
    sys.setswitchinterval(1e3)
    instrument("on")
    found = diagnose(state)
    instrument("off")
    print(f"{len(found.findings)} findings")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=2_500)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        _triage(args.pods)
        return 0
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("valgrind is not installed (Debian package `valgrind`): nothing counted")
        return 1
    from _cluster import scaled_cluster

    scaled_cluster(pods=args.pods, events=args.pods * 10, broken_every=10)  # made outside
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
             f"--callgrind-out-file={tmp}/cg.%p", sys.executable, __file__, "--inner",
             "--pods", str(args.pods)], capture_output=True, text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"})  # the same dict and set layouts
        if out.returncode != 0:
            print(out.stderr[-2000:])
            return out.returncode
        counts = []
        for f in sorted(Path(tmp).glob("cg.*-*")):
            text = f.read_text(errors="replace")
            thread = re.search(r"^thread: (\d+)", text, re.M)
            total = re.search(r"^totals: (\d+)", text, re.M)
            if thread and total and int(total.group(1)):
                counts.append((int(thread.group(1)), int(total.group(1))))
    print(f"first whole-cluster triage of {args.pods} pods: {out.stdout.strip()}")
    for thread, total in counts:
        role = "main thread (the rules)" if thread == 1 else \
            f"thread {thread} (a worker: a log sweep runs in one)"
        print(f"  {role}: {total / 1e6:,.1f} M instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
