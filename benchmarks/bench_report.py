"""`make demo`'s core after setup: the health report executed and rendered.

Target (issue 2): under 20 s on the 2-core machine. Wall time of the whole
`aiops report health` command (process start, kernel start, papermill, nbconvert).
Run: .venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIOPS = Path(sys.executable).parent / "aiops"


def main(runs: int = 3) -> int:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            t = time.perf_counter()
            subprocess.run([str(AIOPS), "report", "health", "--source", "demo", "--out",
                            f"{tmp}/r{i}"], check=True, capture_output=True)
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"aiops report health --source demo: median {med:.1f} s over {runs} runs "
          f"(min {min(times):.1f} s, max {max(times):.1f} s); target < 20 s: "
          f"{'met' if med < 20 else 'MISSED'}")
    return 0 if med < 20 else 1


if __name__ == "__main__":
    sys.exit(main())
