"""`aiops rightsize | cost`: recommendations from usage history and prices."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import (
    NamespacesOpt,
    RecordOpt,
    RecordStoreOpt,
    SourceOpt,
    _load,
    _record,
    app,
    err,
    out,
)
from aiops.errors import ParameterError

PromOpt = Annotated[str | None, typer.Option(
    "--prometheus", help="Prometheus-compatible URL for usage history.",
    envvar="AIOPS_PROMETHEUS_URL")]
PromTokenOpt = Annotated[Path | None, typer.Option(
    "--prometheus-token-file", help="File holding a bearer token for Prometheus.")]
PromHeaderOpt = Annotated[list[str] | None, typer.Option(
    "--prometheus-header", help="Extra HTTP header NAME=VALUE (repeatable).")]
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="Local metrics store written by `aiops metrics sample`.",
    envvar="AIOPS_METRICS_STORE")]


def _history(state, prometheus: str | None, token_file: Path | None,
             headers: list[str] | None, store: Path | None):
    """Parse the history options, then let `open_history` choose the source."""
    from aiops.usage import open_history

    hdrs = {}
    for h in headers or []:
        key, sep, value = h.partition("=")
        if not sep or not key:
            raise ParameterError(f"invalid --prometheus-header {h!r}", "use NAME=VALUE")
        hdrs[key] = value
    return open_history(state, prometheus=prometheus, token_file=token_file, headers=hdrs,
                        store=store)


@app.command()
def rightsize(
    source: SourceOpt = "demo",
    prometheus: PromOpt = None,
    prometheus_token_file: PromTokenOpt = None,
    prometheus_header: PromHeaderOpt = None,
    store: StoreOpt = None,
    history: Annotated[str, typer.Option("--history", help="History window, e.g. 14d.")] = "14d",
    namespaces: NamespacesOpt = "",
    percentile: Annotated[float, typer.Option(help="CPU request percentile.")] = 0.95,
    margin: Annotated[float, typer.Option(help="Safety margin over the percentile/peak.")] = 0.30,
    strategy: Annotated[str, typer.Option(help="percentile | krr-simple")] = "percentile",
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    record: RecordOpt = False,
    phr_store: RecordStoreOpt = None,
) -> None:
    """Right-size requests and limits from usage history, back-tested, with savings."""
    from aiops.durations import parse_duration
    from aiops.rightsizing import RightsizeConfig, recommend, to_json_records

    if fmt not in ("table", "json", "csv"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table, json or csv")
    parse_duration(history, "history window")
    try:
        cfg = RightsizeConfig(strategy=strategy, percentile=percentile, margin=margin)
    except ValueError as exc:
        raise ParameterError(f"invalid right-sizing setting: {exc}".splitlines()[0],
                             "see `aiops rightsize --help`") from None
    state = _load(source)
    hist = _history(state, prometheus, prometheus_token_file, prometheus_header, store)
    ns = [n for n in namespaces.split(",") if n] or None
    with err.status("computing recommendations ..."):
        recs = recommend(state, hist, cfg, window=history, namespaces=ns)
    records = to_json_records(recs)
    if fmt == "json":
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    elif fmt == "csv":
        import pandas as pd

        flat = pd.DataFrame(records).drop(columns=["action"])
        flat["backtest"] = flat["backtest"].map(json.dumps)
        sys.stdout.write(flat.to_csv(index=False))
    else:
        _print_recommendations(recs)
    if record:
        from aiops.approvals.recommend import from_rightsizing

        _record(from_rightsizing(recs), phr_store)


def _print_recommendations(recs) -> None:
    from rich.table import Table

    from aiops.quantity import format_bytes, format_cores

    t = Table("workload", "container", "cpu req", "mem req", "mem limit", "status",
              "back-test", "$/month saved")
    for r in recs.itertuples():
        bt = r.backtest if isinstance(r.backtest, dict) else {}
        t.add_row(f"{r.namespace}/{r.workload_kind}/{r.workload}", r.container,
                  f"{format_cores(r.cpu_request_current)} -> "
                  f"{format_cores(r.cpu_request_recommended)}",
                  f"{format_bytes(r.memory_request_current)} -> "
                  f"{format_bytes(r.memory_request_recommended)}",
                  f"{format_bytes(r.memory_limit_current)} -> "
                  f"{format_bytes(r.memory_limit_recommended)}",
                  r.status,
                  f"cpu>req {bt.get('cpu_over_request_pct', '-')}%, "
                  f"throttle {bt.get('cpu_throttle_risk_pct', '-')}%, "
                  f"mem>limit {bt.get('memory_over_limit', '-')}x" if bt else "-",
                  f"{r.monthly_savings_usd:.2f}" if r.monthly_savings_usd == r.monthly_savings_usd
                  else "-")
    out.print(t)
    total = recs["monthly_savings_usd"].sum()
    out.print(f"total: {total:.2f} USD/month (p95 + margin; savings become real once nodes "
              "shrink)")


@app.command()
def cost(
    source: SourceOpt = "demo",
    by: Annotated[str, typer.Option(help="namespace | workload | node | label:KEY")] = "namespace",
    pricing: Annotated[Path | None, typer.Option(help="Pricing file (JSON/YAML).")] = None,
    store: StoreOpt = None,
    history: Annotated[str | None, typer.Option(
        "--history", help="Usage window for the average, e.g. 7d (default: all).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Monthly cost by namespace/workload/label (OpenCost model), with idle cost."""
    from aiops.cost import aggregate, cost_report, default_prices, load_prices

    if fmt not in ("table", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or json")
    if history:
        from aiops.durations import parse_duration

        parse_duration(history, "history window")
    prices = load_prices(pricing) if pricing else default_prices()
    state = _load(source)
    usage = state.history
    if store is not None:  # else the source's own history, as before
        usage = _history(state, None, None, None, store).samples(window=history)
    rep = cost_report(state, usage, prices, window=history)
    df = aggregate(rep, by)
    if fmt == "json":
        sys.stdout.write(df.to_json(orient="records", indent=2) + "\n")
    else:
        out.print(df.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
        out.print(f"USD per month (730 h); prices: CPU {prices.default.cpu_core_hour}/core-h, "
                  f"RAM {prices.default.ram_gib_hour}/GiB-h; idle = node cost - allocated",
                  highlight=False)
