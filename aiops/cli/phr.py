"""`aiops phr list | show | verify`: read and check the audit trail."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from aiops.cli._common import PhrStoreOpt, _phr_store, app, out
from aiops.errors import ParameterError

# -- aiops phr: the audit trail (Prompt History Records) ----------------------
phr_app = typer.Typer(help="The audit trail: Prompt History Records in git.",
                      no_args_is_help=True)
app.add_typer(phr_app, name="phr")


@phr_app.command("list")
def phr_list(
    store: PhrStoreOpt = None,
    rec_type: Annotated[str | None, typer.Option("--type", help="Only this record type.")] = None,
    since: Annotated[str | None, typer.Option(help="Only records newer than e.g. 7d, 24h.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """List the records, oldest first."""
    import pandas as pd

    from aiops.approvals.phr import RECORD_TYPES
    from aiops.durations import parse_duration

    if fmt not in ("table", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or json")
    if rec_type and rec_type not in RECORD_TYPES:
        raise ParameterError(f"unknown --type {rec_type!r}",
                             f"use one of {', '.join(RECORD_TYPES)}")
    cutoff = None
    if since:
        cutoff = (pd.Timestamp.now(tz="UTC") - parse_duration(since, "--since")).to_pydatetime()
    recs = _phr_store(store).records(rec_type, cutoff)
    if fmt == "json":
        docs = [r.meta.model_dump(mode="json") | {"hash": r.hash} for r in recs]
        sys.stdout.write(json.dumps(docs, indent=2) + "\n")
        return
    from rich.table import Table

    t = Table("seq", "id", "type", "created (UTC)", "actor", "tier", "object", "title")
    for r in recs:
        m, o = r.meta, r.meta.object
        obj = f"{o.kind}/{o.namespace + '/' if o.namespace else ''}{o.name}" if o else "-"
        t.add_row(str(m.seq), m.id, m.type, f"{m.created_at:%Y-%m-%d %H:%M:%S}", m.actor.name,
                  m.tier or "-", obj, m.title)
    out.print(t)
    out.print(f"{len(recs)} records", highlight=False)


@phr_app.command("show")
def phr_show(
    rec_id: Annotated[str, typer.Argument(metavar="ID", help="Record id (or a unique prefix).")],
    store: PhrStoreOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="markdown | json")] = "markdown",
) -> None:
    """Print one record."""
    if fmt not in ("markdown", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use markdown or json")
    rec = _phr_store(store).get(rec_id)
    if fmt == "json":
        sys.stdout.write(json.dumps(rec.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(rec.path.read_text(encoding="utf-8"))
        sys.stdout.write(f"\n<!-- {rec.path} {rec.hash} -->\n")


@phr_app.command("verify")
def phr_verify(
    store: PhrStoreOpt = None,
    full: Annotated[bool, typer.Option(help="Also validate every record's whole front "
                                       "matter against the schema (slower).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
) -> None:
    """Check the hash chain and git history. Exit 0: intact; 1: problems (listed)."""
    if fmt not in ("text", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use text or json")
    res = _phr_store(store).verify(full=full)
    if fmt == "json":
        sys.stdout.write(json.dumps(res.to_dict(), indent=2) + "\n")
    elif res.ok:
        out.print(f"ok: {res.records} records, chain intact, {res.commits} commits "
                  f"({res.root})", highlight=False)
    else:
        out.print(f"[red]{len(res.problems)} problems[/] in {res.root} ({res.records} records):",
                  highlight=False)
        for p in res.problems:
            out.print(f"  {p}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(0 if res.ok else 1)
