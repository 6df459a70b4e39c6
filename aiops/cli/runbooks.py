"""`aiops runbooks`: one Markdown runbook per failure family (issue 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import _load, _phr_store, app, out
from aiops.errors import ParameterError


@app.command("runbooks")
def runbooks_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write them.")] = Path(
        "reports/runbooks"),
    history: Annotated[Path | None, typer.Option(
        "--history", help="PHR store for measured recovery times (e.g. history/prompts).")
    ] = None,
    source: Annotated[str | None, typer.Option(
        "--source", "-s", help="Also quote the remediations of this cluster's findings as "
        "examples (demo | snapshot path | kube[:context]).")] = None,
) -> None:
    """Write one Markdown runbook per failure family, and an index README.md."""
    from aiops.runbooks import generate

    store = None
    if history is not None:
        if not history.is_dir():
            raise ParameterError(f"PHR store {history} does not exist",
                                 "pass --history DIR of an existing audit trail")
        store = _phr_store(history)
    findings, label = None, ""
    if source:
        from aiops.diagnose import diagnose as run

        state = _load(source)
        findings, label = run(state).findings, state.source
    paths = generate(out_dir, store=store, findings=findings, source=label)
    out.print(f"wrote {len(paths) - 1} runbooks and {paths[-1]}", highlight=False)
