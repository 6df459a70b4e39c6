"""`aiops audit`: security and reliability posture (issue 5)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import _input_problems, _load, app, err, out
from aiops.errors import ParameterError


@app.command()
def audit(
    source: Annotated[str | None, typer.Option(
        "--source", "-s", help="demo | snapshot path | kube[:context] (default: demo)",
        envvar="AIOPS_SOURCE")] = None,
    manifests: Annotated[str | None, typer.Option(
        "--manifests", help="YAML/JSON manifests: a file, a directory, or - for stdin.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | sarif | junit")] = "table",
    min_score: Annotated[float | None, typer.Option(
        "--min-score", help="Exit 3 when the score is below this (0-100).")] = None,
    exemptions: Annotated[Path | None, typer.Option(
        "--exemptions", help="YAML file of exemptions (each with a reason).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the output to this file instead of stdout.")] = None,
) -> None:
    """Audit security and reliability posture (Pod Security Standards, images, ...).

    Exit code 0: passed; 3: a non-exempt danger-level check failed or the score is
    below --min-score; 2: bad input. Manifests that cannot be audited (invalid YAML,
    custom resources) are warned about and listed, never fatal.
    """
    from rich.markup import escape

    from aiops.security import audit as run_audit
    from aiops.security import load_manifests
    from aiops.security.exemptions import load_config
    from aiops.security.formats import (
        FORMATS,
        Redactor,
        exit_code,
        problems_text,
        render_table,
        render_text,
        scan_root,
    )

    if fmt not in FORMATS:
        raise ParameterError(f"unknown --format {fmt!r}", f"use {', '.join(FORMATS)}")
    if min_score is not None and not 0 <= min_score <= 100:
        raise ParameterError(f"invalid --min-score {min_score:g}", "use a number from 0 to 100")
    if manifests and source and source != os.environ.get("AIOPS_SOURCE"):
        raise ParameterError("--source and --manifests are exclusive", "give one of them")
    if output is not None and not output.parent.is_dir():
        raise ParameterError(f"--output {output}: directory {output.parent} does not exist",
                             "create it or write elsewhere")
    config = load_config(exemptions)  # a bad file fails before anything is loaded
    root = None
    if manifests:
        state, origin = load_manifests(manifests)
        root = scan_root(manifests)
        for line in problems_text(state.problems, root):
            err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
    else:
        state, origin = _load(source or "demo"), None
    with err.status("auditing ..."):
        rep = run_audit(state, exemptions=config, origin=origin)
    redactor = Redactor.from_state(state)
    if output is None and fmt == "table":
        render_table(rep, out, redactor, root)
    else:
        text = render_text(rep, fmt, redactor, root, manifests=bool(manifests))
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            err.print(f"wrote {output}", highlight=False)
    code = exit_code(rep, min_score)
    if code == 0 and not manifests and _input_problems(state):
        code = 2
    raise typer.Exit(code)
