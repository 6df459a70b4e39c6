"""Findings as text: a terminal table, Markdown for notebooks and tickets, JSON.

Everything that leaves here passes through `mask_text`, so a credential quoted
in a log line never reaches a screen or a file.
"""

from __future__ import annotations

import json

from aiops.diagnose.engine import Diagnosis
from aiops.redact import mask_text


def _runbook(rule_id: str) -> str | None:
    """The rule's runbook section (`aiops runbooks` writes them under reports/runbooks/)."""
    from aiops.runbooks.links import runbook_path

    return runbook_path(rule_id)


def to_json(diag: Diagnosis) -> str:
    return mask_text(json.dumps(diag.to_dicts(), indent=2, ensure_ascii=False))


def to_markdown(diag: Diagnosis) -> str:
    if not diag.findings:
        return "No problems found."
    out: list[str] = []
    for i, f in enumerate(diag.findings, 1):
        out.append(f"### {i}. `{f.rule}` ({f.severity}) {f.kind} {f.namespace}/{f.name}")
        out.append(f"**{f.summary}**  ")
        out.append(f"Owner: {f.owner}; confidence {f.confidence:.2f}; first seen "
                   f"{f.first_seen.isoformat() if f.first_seen else 'unknown'}\n")
        out.append("Evidence:")
        out.extend(f"- `{e.text}` ({e.source}: {e.ref})" for e in f.evidence)
        out.append(f"\nRemediation: {f.remediation.summary}")
        if f.remediation.commands:
            out.append("```bash\n" + "\n".join(f.remediation.commands) + "\n```")
        if a := f.remediation.action:
            out.append(f"Action: {a.kind} {a.target['kind']}/{a.target['name']} "
                       f"(tier {a.tier}): {a.description}")
        rb = _runbook(f.rule)
        out.append(f"Docs: {f.docs}" + (f"  \nRunbook: [{rb}]({rb})" if rb else "") + "\n")
    for fail in diag.failures:
        out.append(f"> rule `{fail.rule}` failed: {fail.error}")
    return mask_text("\n".join(out))


def print_table(diag: Diagnosis, console) -> None:
    from rich.table import Table

    if not diag.findings:
        console.print("[green]No problems found.[/]")
    else:
        t = Table("sev", "rule", "object", "summary / first evidence", show_lines=True)
        colors = {"critical": "red", "warning": "yellow", "info": "blue"}
        for f in diag.findings:
            ev = f.evidence[0].text if f.evidence else ""
            t.add_row(f"[{colors.get(f.severity, 'white')}]{f.severity}[/]", f.rule,
                      f"{f.kind}/{f.namespace}/{f.name}".replace("//", "/"),
                      mask_text(f"{f.summary}\n[dim]{ev}[/]"))
        console.print(t)
    for fail in diag.failures:
        console.print(f"[red]rule {fail.rule} failed:[/] {fail.error}")
    console.print(f"[dim]{len(diag.findings)} findings in {diag.elapsed_ms:.1f} ms[/]")
