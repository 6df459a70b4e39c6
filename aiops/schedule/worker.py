"""One report attempt in its own process: `python -m aiops.schedule.worker REQ RES`.

A separate process is what lets the scheduler enforce a wall-clock timeout: a
hung kernel or a notebook stuck outside a cell cannot be stopped from a thread,
but a process tree can be killed. The request carries the report's spec and
notebooks directory, so the worker runs exactly the report the scheduler
resolved (including reports registered at run time, e.g. by plugins or tests).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    req_path, res_path = Path(argv[0]), Path(argv[1])
    req = json.loads(req_path.read_text(encoding="utf-8"))
    os.environ["AIOPS_NOTEBOOKS"] = req["notebooks"]
    from aiops.errors import AiopsError
    from aiops.reports.runner import REPORTS, ReportSpec, register_report, run_report

    spec = ReportSpec(**req["spec"])
    if REPORTS.get(spec.name) != spec:
        register_report(spec)
    try:
        res = run_report(spec.name, source=req["source"], out_dir=req["out_dir"],
                         parameters=req["parameters"], timeout=req["timeout"],
                         date=req["date"])
        out = {"ok": True, "html": str(res.html), "seconds": res.seconds,
               "parameters": res.parameters}
    except AiopsError as exc:
        out = {"ok": False, "error": exc.message, "hint": exc.hint or "",
               "kind": type(exc).__name__}
    tmp = res_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, default=str), encoding="utf-8")
    os.replace(tmp, res_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
