"""Reports for a fleet: several clusters rendered in parallel, one report set each,
plus `fleet.html`, one row per cluster.

`aiops report all --source kube:prod,kube:staging,./snapshots/edge` runs every cluster
in its own `aiops report` process (a hung kernel or a crash stays with its cluster, as
in the scheduler), at most `workers` at a time, into `<out>/<cluster>/<date>/...` with
that cluster's own `index.html`. The summary page reads the summaries the reports
already write, so it needs nothing from the runs but their files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

from aiops.atomic import write_text
from aiops.errors import ParameterError
from aiops.reports.index import RunEntry

FLEET_PAGE = "fleet.html"


@dataclass(frozen=True)
class Member:
    """One cluster of the fleet: its source and the directory name of its reports."""

    source: str
    name: str


@dataclass
class MemberRun:
    member: Member
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def is_fleet(source: str) -> bool:
    """A comma-separated --source names several clusters."""
    return "," in source


def cluster_name(source: str) -> str:
    """`kube:prod` -> prod, `kube` -> kube, a path -> its last part, `demo` -> demo."""
    if source == "kube" or source.startswith("kube:"):
        raw = source.partition(":")[2] or "kube"
    else:
        raw = Path(source.rstrip("/")).name or source
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "cluster"
    return name


def parse_sources(source: str) -> list[Member]:
    """The clusters of a comma-separated --source; names must not collide, since each
    names a directory."""
    parts = [p.strip() for p in source.split(",")]
    if any(not p for p in parts):
        raise ParameterError(f"invalid --source {source!r}: an empty entry",
                             "separate sources with single commas, e.g. kube:a,kube:b")
    members: list[Member] = []
    seen: dict[str, str] = {}
    for p in dict.fromkeys(parts):
        name = cluster_name(p)
        if name in ("fleet", "index"):  # keep clear of the pages beside the clusters
            name = f"{name}-cluster"
        if name in seen:
            raise ParameterError(f"sources {seen[name]!r} and {p!r} would both write "
                                 f"reports/{name}/", "rename one snapshot directory or context")
        seen[name] = p
        members.append(Member(p, name))
    return members


def _run_member(member: Member, report: str, out_dir: Path, args: Sequence[str],
                env: dict[str, str]) -> MemberRun:
    cmd = [sys.executable, "-m", "aiops.cli", "report", report, "--source", member.source,
           "--out", str(out_dir / member.name), *args]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, check=False)
    return MemberRun(member, proc.returncode, (proc.stdout + proc.stderr).strip())


def run_fleet(members: Sequence[Member], report: str, out_dir: str | Path, args: Sequence[str],
              *, workers: int = 2,
              on_done: Callable[[MemberRun], None] | None = None) -> list[MemberRun]:
    """Render `report` (a name or `all`) for every member, `workers` at a time, then
    write the fleet page. `args` are the other `aiops report` options, passed as given.

    Bounded because each cluster's reports start their own kernels: on a small
    machine, more clusters at once only make every one of them slower.
    """
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("COLUMNS", "160")
    runs: list[MemberRun] = []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(members))),
                            thread_name_prefix="aiops-fleet") as pool:
        futures = [pool.submit(_run_member, m, report, out, args, env) for m in members]
        for fut in futures:
            run = fut.result()
            runs.append(run)
            if on_done is not None:
                on_done(run)
    write_fleet_page(out, members, runs)
    return runs


# -- the summary page ---------------------------------------------------------------

def _latest(cluster_dir: Path) -> dict[str, RunEntry]:
    """Newest successful run of each report of one cluster."""
    from aiops.reports.index import scan

    latest: dict[str, RunEntry] = {}
    for e in scan(cluster_dir):  # newest day first
        if e.ok and e.name not in latest:
            latest[e.name] = e
    return latest


def fleet_rows(out_dir: str | Path, members: Sequence[Member],
               runs: Sequence[MemberRun] = ()) -> list[dict[str, object]]:
    """One dict per cluster: health score/grade, security score/grade, monthly cost,
    status of the last fleet run, and the reports' links (relative to `out_dir`)."""
    root = Path(out_dir).expanduser().resolve()
    by_name = {r.member.name: r for r in runs}
    rows = []
    for m in members:
        latest = _latest(root / m.name)
        health, sec, cost = (latest[n].summary if n in latest else {}
                             for n in ("health", "security", "cost"))
        run = by_name.get(m.name)
        links = {name: e.html for name, e in sorted(latest.items())}
        rows.append({
            "cluster": m.name, "source": m.source,
            "status": "" if run is None else ("ok" if run.ok else "failed"),
            "health": health.get("score"), "health_grade": health.get("grade"),
            "security": sec.get("score"), "security_grade": sec.get("grade"),
            "dangers": sec.get("dangers"),
            "cost": cost.get("cluster_monthly"), "currency": cost.get("currency"),
            "day": max((e.day for e in latest.values()), default=""),
            "links": links,
        })
    return rows


def _score(value: object, grade: object) -> str:
    if not isinstance(value, int | float):
        return '<span class="missing">no report</span>'
    g = f' <span class="grade">{escape(str(grade))}</span>' if grade else ""
    return f"{value:.0f}{g}"


def render_fleet(out_dir: str | Path, members: Sequence[Member],
                 runs: Sequence[MemberRun] = ()) -> str:
    """The fleet page: static HTML with the index's style, no script, no network."""
    from aiops.reports.index import _CSS

    root = Path(out_dir).expanduser().resolve()
    rows = fleet_rows(root, members, runs)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>aiops fleet</title><style>{_CSS} .missing {{ color: #6b7280; }}</style>"
           "</head><body>", "<h1>aiops fleet</h1>",
           f'<p class="meta">{len(rows)} clusters · updated {escape(now)}</p>',
           "<table><thead><tr><th>cluster</th><th>health</th><th>security</th>"
           "<th>cost / month</th><th>reports</th></tr></thead><tbody>"]
    for r in rows:
        idx = quote(f"{r['cluster']}/index.html")
        name = f'<a href="{escape(idx, quote=True)}">{escape(str(r["cluster"]))}</a>'
        if r["status"] == "failed":
            name += ' <span class="failed">(last run failed)</span>'
        name += f'<br><span class="missing">{escape(str(r["source"]))}</span>'
        cost = r["cost"]
        cost_txt = (f"{cost:,.2f} {escape(str(r['currency'] or ''))}".strip()
                    if isinstance(cost, int | float) else '<span class="missing">no report</span>')
        links = r["links"]
        assert isinstance(links, dict)
        link_txt = " · ".join(
            f'<a href="{escape(quote(Path(p).relative_to(root).as_posix()), quote=True)}">'
            f"{escape(n)}</a>" for n, p in links.items()) or '<span class="missing">none</span>'
        dangers = r["dangers"]
        sec = _score(r["security"], r["security_grade"])
        if isinstance(dangers, int) and dangers:
            sec += f' <span class="failed">({dangers} danger)</span>'
        out.append(f"<tr><td>{name}</td><td class=\"num\">{_score(r['health'], r['health_grade'])}"
                   f"</td><td class=\"num\">{sec}</td><td class=\"num\">{cost_txt}</td>"
                   f"<td>{link_txt}</td></tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out) + "\n"


def write_fleet_page(out_dir: str | Path, members: Sequence[Member],
                     runs: Sequence[MemberRun] = ()) -> Path:
    """Write `<out_dir>/fleet.html` atomically (a reader never sees half a page)."""
    root = Path(out_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    page = render_fleet(root, members, runs)
    write_text(root / FLEET_PAGE, page, mode=0o644)
    return root / FLEET_PAGE


__all__ = ["FLEET_PAGE", "Member", "MemberRun", "cluster_name", "fleet_rows", "is_fleet",
           "parse_sources", "render_fleet", "run_fleet", "write_fleet_page"]
