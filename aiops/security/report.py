"""The weekly security report's logic (notebooks/reports/security.ipynb only shows it).

`build_view` audits a state and derives what the page shows: score and trend
over earlier runs, PSS level per namespace, the top risks ranked by severity x
exposure, the failures of the RBAC and network check families, every failing
check with its fix, and the exemptions. Every table passes through the audit's
Redactor, so the page cannot show a value from a Secret-like field even if a
check quoted one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from aiops.model import ClusterState
from aiops.security import exemptions as ex
from aiops.security.engine import SEVERITY_ORDER, AuditReport, audit
from aiops.security.formats import Redactor, fix_text, relative, subject
from aiops.security.registry import load_checks
from aiops.security.score import FORMULA, PSS_LEVELS
from aiops.security.subjects import AuditContext, Workload, meta

NAME = "security"

# -- risk = severity x exposure ----------------------------------------------------------
SEVERITY_WEIGHT = {"danger": 3, "warning": 2, "info": 1}
EXPOSURE_BASE = 1  # reachable only from inside the cluster
EXTERNAL_WEIGHT = 2  # added when a NodePort/LoadBalancer Service or an Ingress reaches it
HOST_WEIGHT = 1  # added when it runs with host access (host namespaces, hostPath, ...)
EXTERNAL_SERVICE_TYPES = ("NodePort", "LoadBalancer")
RISK_FORMULA = (
    f"risk = severity x exposure; severity: danger {SEVERITY_WEIGHT['danger']}, warning "
    f"{SEVERITY_WEIGHT['warning']}, info {SEVERITY_WEIGHT['info']}; exposure: "
    f"{EXPOSURE_BASE} (cluster-internal), +{EXTERNAL_WEIGHT} when reachable from outside "
    f"(a NodePort or LoadBalancer Service, or an Ingress), +{HOST_WEIGHT} with host access "
    "(hostNetwork, hostPID, hostIPC, hostPath, hostPort or a privileged container)")

# the check families (aiops/security/checks/<family>.py) the RBAC and network sections show
RBAC_FAMILY = "rbac"
NETWORK_FAMILY = "network"
EXPOSURE_COLUMNS = ["namespace", "kind", "name", "external", "via", "host_access", "exposure"]
RESULT_COLUMNS = ["severity", "check", "title", "object", "message", "fix", "category",
                  "location"]


# -- exposure ------------------------------------------------------------------------------

def _matches(selector: Any, labels: Any) -> bool:
    if not isinstance(selector, dict) or not selector or not isinstance(labels, dict):
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def _host_access(w: Workload) -> list[str]:
    spec = w.spec
    out = [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    paths = [str(v["hostPath"].get("path", "")) for v in spec.get("volumes") or []
             if isinstance(v, dict) and isinstance(v.get("hostPath"), dict)]
    if paths:  # a control-plane pod mounts many: name three
        more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        out.append(f"hostPath {', '.join(paths[:3])}{more}")
    for c in w.containers:
        for p in c.spec.get("ports") or []:
            if isinstance(p, dict) and p.get("hostPort"):
                out.append(f"hostPort {p['hostPort']} ({c.name})")
        if c.security_context.get("privileged") is True:
            out.append(f"privileged ({c.name})")
    return out


def exposure(state: ClusterState) -> pd.DataFrame:
    """Every workload with how it is reachable from outside and its host access."""
    ctx = AuditContext(state)
    services = ctx.objects("Service")
    reach: dict[tuple[str, str], list[str]] = {}  # (namespace, service) -> how it's reached
    for s in services:
        spec = s.get("spec") or {}
        key = (str(meta(s).get("namespace") or "default"), str(meta(s).get("name")))
        if spec.get("type") in EXTERNAL_SERVICE_TYPES:
            reach.setdefault(key, []).append(f"Service/{key[1]} ({spec['type']})")
        elif spec.get("externalIPs"):
            reach.setdefault(key, []).append(f"Service/{key[1]} (externalIPs)")
    for ing in ctx.objects("Ingress"):
        ns = str(meta(ing).get("namespace") or "default")
        spec = ing.get("spec") or {}
        backends = [spec.get("defaultBackend")]
        hosts = []
        for rule in spec.get("rules") or []:
            if not isinstance(rule, dict):
                continue
            if rule.get("host"):
                hosts.append(str(rule["host"]))
            for path in ((rule.get("http") or {}).get("paths") or []):
                if isinstance(path, dict):
                    backends.append(path.get("backend"))
        label = f"Ingress/{meta(ing).get('name')}" + (f" ({', '.join(hosts)})" if hosts else "")
        for b in backends:
            svc = ((b or {}).get("service") or {}).get("name") if isinstance(b, dict) else None
            if svc and label not in reach.get((ns, svc), []):
                reach.setdefault((ns, svc), []).append(label)
    rows = []
    for w in ctx.workloads:
        labels = w.template_meta.get("labels")
        via = [how for s in services if str(meta(s).get("namespace") or "default") == w.namespace
               and _matches((s.get("spec") or {}).get("selector"), labels)
               for how in reach.get((w.namespace, str(meta(s).get("name"))), [])]
        host = _host_access(w)
        rows.append({"namespace": w.namespace, "kind": w.kind, "name": w.name,
                     "external": bool(via), "via": ", ".join(dict.fromkeys(via)),
                     "host_access": ", ".join(host),
                     "exposure": EXPOSURE_BASE + EXTERNAL_WEIGHT * bool(via)
                     + HOST_WEIGHT * bool(host)})
    return pd.DataFrame(rows, columns=EXPOSURE_COLUMNS)


def exposure_text(row: Any) -> str:
    parts = []
    if row is not None and row["external"]:
        parts.append(f"reachable from outside via {row['via']}")
    if row is not None and row["host_access"]:
        parts.append(f"host access: {row['host_access']}")
    return "; ".join(parts) or "cluster-internal"


# -- tables --------------------------------------------------------------------------------

def _rows(results: Iterable[Any], root: Path | None = None) -> pd.DataFrame:
    rows = [{"severity": r.severity, "check": r.check.id, "title": r.check.title,
             "object": subject(r), "message": r.message, "fix": fix_text(r),
             "category": r.category,
             "location": f"{relative(r.file, root)}:{r.line}" if r.file and r.line else "",
             "exempt_reason": r.exempt_reason} for r in results]
    return pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "exempt_reason"])


def top_risks(report: AuditReport, exposed: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """Unexempted failures ranked by severity x exposure of the workload they are on."""
    index = {(r.namespace, r.kind, r.name): r for r in exposed.itertuples(index=False)}
    rows = []
    for r in report.failures(include_exempt=False):
        e = index.get((r.namespace, r.kind, r.name))
        factor = int(e.exposure) if e is not None else EXPOSURE_BASE
        rows.append({"risk": SEVERITY_WEIGHT[r.severity] * factor, "severity": r.severity,
                     "check": r.check.id, "object": subject(r),
                     "exposure": exposure_text(e._asdict() if e is not None else None),
                     "message": r.message, "fix": fix_text(r),
                     "_order": SEVERITY_ORDER[r.severity]})
    df = pd.DataFrame(rows, columns=["risk", "severity", "check", "object", "exposure",
                                     "message", "fix", "_order"])
    df = df.sort_values(["risk", "_order", "object", "check"],
                        ascending=[False, True, True, True], kind="stable")
    return df.drop(columns="_order").head(n).reset_index(drop=True)


def family_checks(family: str) -> list[str]:
    """The ids of the registered checks of one family."""
    return sorted(cid for cid, c in load_checks().items() if c.family == family)


def family_counts(df: pd.DataFrame) -> str:
    """'3 failures: 2 check-a, 1 check-b', for a section's caption ('' when none)."""
    if df.empty:
        return ""
    counts = df["check"].value_counts()
    return (f"{len(df)} failure(s): "
            + ", ".join(f"{n} {cid}" for cid, n in sorted(counts.items(),
                                                          key=lambda kv: (-kv[1], kv[0]))))


def pss_table(report: AuditReport) -> pd.DataFrame:
    """Level each namespace passes today, the enforce label, and whether they clash."""
    rows = []
    for ns, level in report.pss_levels().items():
        enforced = report.enforced.get(ns, "")
        if not enforced:
            note = "no enforce label: any pod is admitted"
        elif enforced in PSS_LEVELS and PSS_LEVELS.index(level) < PSS_LEVELS.index(enforced):
            note = f"workloads fail the enforced {enforced} level: their new pods are rejected"
        else:
            note = "the workloads meet the enforced level"
        rows.append({"namespace": ns, "level": level, "enforced": enforced or "–",
                     "note": note})
    return pd.DataFrame(rows, columns=["namespace", "level", "enforced", "note"])


# -- summaries and trend ---------------------------------------------------------------------

def summary(report: AuditReport, day: str) -> dict[str, Any]:
    """What the next run compares with (no messages: names and numbers only)."""
    s = report.summary()
    return {"report": NAME, "date": day, "source": report.source, "score": s["score"],
            "grade": s["grade"], "score_without_exemptions": s["score_without_exemptions"],
            "exempted": s["exempted"], "passed": s["passed"], "warnings": s["warnings"],
            "dangers": s["dangers"], "checks_run": s["checks_run"], "formula": FORMULA,
            "categories": {k: v["score"] for k, v in s["categories"].items()},
            "pss": s["pss"], "pss_enforced": s["pss_enforced"],
            "failing": sorted({f"{r.check.id} {subject(r)}"
                               for r in report.failures(include_exempt=False)})}


def load_history(reports_dir: str | Path, before: str, window: str = "90d") -> list[dict]:
    """Saved summaries of earlier security reports, oldest first, dated within
    `window` before `before` (YYYY-MM-DD); unreadable ones are skipped."""
    from aiops.durations import parse_duration

    root = Path(reports_dir)
    if not root.is_dir():
        return []
    start = (pd.Timestamp(before) - parse_duration(window, "trend window")).date().isoformat()
    out = []
    for p in sorted(root.glob(f"*/{NAME}.summary.json")):
        if not start <= p.parent.name < before:
            continue
        try:
            doc = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("score"), int | float):
            out.append(doc | {"date": p.parent.name})
    return out


def trend_frame(history: list[dict], current: dict) -> pd.DataFrame:
    rows = [*history, current]
    return pd.DataFrame([{"date": d["date"], "score": d["score"], "grade": d.get("grade", ""),
                          "score_without_exemptions": d.get("score_without_exemptions"),
                          "dangers": d.get("dangers"), "warnings": d.get("warnings"),
                          "exempted": d.get("exempted")} for d in rows],
                        columns=["date", "score", "grade", "score_without_exemptions",
                                 "dangers", "warnings", "exempted"])


def trend_figure(trend: pd.DataFrame) -> go.Figure:
    """Score per run (and without exemptions, dotted), grade floors as guides."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=trend["date"], y=trend["score"], mode="lines+markers+text",
                             name="score", text=trend["grade"], textposition="top center"))
    fig.add_trace(go.Scatter(x=trend["date"], y=trend["score_without_exemptions"],
                             mode="lines+markers", name="without exemptions",
                             line={"dash": "dot"}))
    fig.update_layout(title="Security score by report", height=320,
                      yaxis={"range": [0, 105], "title": "score"},
                      xaxis={"type": "category", "title": "report date"},
                      margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return fig


def changes(previous: dict | None, current: dict) -> pd.DataFrame | None:
    """Failures new since the previous report and those resolved; None without one."""
    if previous is None:
        return None
    before, now = set(previous.get("failing") or []), set(current["failing"])
    rows = [("new", *f.partition(" ")[::2]) for f in sorted(now - before)]
    rows += [("resolved", *f.partition(" ")[::2]) for f in sorted(before - now)]
    return pd.DataFrame(rows, columns=["change", "check", "object"])


# -- the view the notebook shows ----------------------------------------------------------------

@dataclass
class SecurityView:
    report: AuditReport
    summary: dict[str, Any]
    previous: dict[str, Any] | None
    trend: pd.DataFrame
    changes: pd.DataFrame | None
    pss: pd.DataFrame
    exposure: pd.DataFrame
    risks: pd.DataFrame
    rbac: pd.DataFrame
    network: pd.DataFrame
    failing: pd.DataFrame
    exempted: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    rbac_checks: list[str] = field(default_factory=list)  # the ids of the family's checks
    network_checks: list[str] = field(default_factory=list)


def load_state(source: str, manifests: str = "") -> tuple[ClusterState, dict | None]:
    """The state to audit: manifests when given, else the source."""
    if manifests:
        from aiops.security.manifests import load_manifests

        return load_manifests(manifests)
    from aiops.sources import open_source

    return open_source(source), None


def _scoped(rep: AuditReport, namespaces: list[str] | None) -> AuditReport:
    if not namespaces:
        return rep
    keep = set(namespaces)
    return AuditReport([r for r in rep.results if r.namespace in keep],
                       [n for n in rep.namespaces if n in keep], rep.problems,
                       rep.check_failures, {k: v for k, v in rep.enforced.items() if k in keep},
                       rep.source, rep.elapsed_ms)


def _redact(df: pd.DataFrame, red: Redactor) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: red.text(v) if isinstance(v, str) else v)
    return out


def build_view(state: ClusterState, *, origin: dict | None = None, day: str,
               namespaces: list[str] | None = None, exemptions: str | Path | None = None,
               reports_dir: str | Path = "reports", window: str = "90d",
               previous: dict | None = None, root: Path | None = None) -> SecurityView:
    """Audit `state` and compute every section of the report."""
    rep = _scoped(audit(state, origin=origin, exemptions=ex.load_config(exemptions)),
                  namespaces)
    red = Redactor.from_state(state)
    history = load_history(reports_dir, day, window)
    current = summary(rep, day)
    if previous is None and history:
        previous = history[-1]
    exposed = exposure(state)
    if namespaces:
        exposed = exposed[exposed["namespace"].isin(namespaces)].reset_index(drop=True)
    failures = rep.failures(include_exempt=False)
    rbac = [r for r in failures if r.check.family == RBAC_FAMILY]
    network = [r for r in failures if r.check.family == NETWORK_FAMILY]
    ch = changes(previous, current)
    return SecurityView(
        report=rep, summary=current, previous=previous,
        trend=trend_frame(history, current),
        changes=None if ch is None else _redact(ch, red),
        pss=pss_table(rep),
        exposure=_redact(exposed[exposed["external"] | (exposed["host_access"] != "")]
                         .reset_index(drop=True), red),
        risks=_redact(top_risks(rep, exposed), red),
        rbac=_redact(_rows(rbac, root), red), network=_redact(_rows(network, root), red),
        failing=_redact(_rows(failures, root), red),
        exempted=_redact(_rows(rep.exempted(), root), red),
        problems=[red.text(f"{relative(p.where, root)}: {p.message}") for p in rep.problems]
        + [red.text(f"check {f.check} could not run: {f.error}") for f in rep.check_failures],
        rbac_checks=family_checks(RBAC_FAMILY), network_checks=family_checks(NETWORK_FAMILY))


def save_summary(view: SecurityView, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(view.summary, indent=2, sort_keys=True))
    tmp.replace(p)
    return p


__all__ = ["RISK_FORMULA", "SecurityView", "build_view", "changes", "exposure", "family_counts",
           "load_history", "load_state", "pss_table", "save_summary", "summary", "top_risks",
           "trend_figure"]
