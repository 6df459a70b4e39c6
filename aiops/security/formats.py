"""What `aiops audit` writes: a table for people, JSON for scripts, SARIF 2.1.0 for
code-scanning UIs and JUnit XML for CI test tabs, plus the exit code CI gates on.

Every writer takes the AuditReport and a `Redactor`, so a value that a check
quoted from a Secret-like field (an env var named *PASSWORD*, a ConfigMap key,
a last-applied annotation) never reaches an output, whatever the checks say.
Load problems (invalid YAML, unknown kinds, CRDs) are listed, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiops.model import ClusterState, LoadProblem
from aiops.redact import REDACTED, is_sensitive_key, mask_text
from aiops.security import score as sc
from aiops.security.check import Check, Result
from aiops.security.engine import AuditReport
from aiops.security.registry import load_checks

FORMATS = ("table", "json", "sarif", "junit")
SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")
SARIF_LEVEL = {"danger": "error", "warning": "warning", "info": "note"}
# GitHub code scanning ranks security rules by this (CVSS-like, as a string)
SECURITY_SEVERITY = {"danger": "8.0", "warning": "5.0", "info": "2.0"}
LOAD_PROBLEM = "load-problem"  # the pseudo check of a manifest that was not audited
EXIT_OK, EXIT_GATE = 0, 3
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MIN_SECRET_LEN = 4  # shorter values ("on", "1") would mangle ordinary words


# -- keeping secrets out -------------------------------------------------------------

@dataclass
class Redactor:
    """Replaces every known sensitive value of the audited state in output text.

    The values are collected from the state itself (so a check quoting one in a
    message or a patch cannot leak it), then `mask_text` catches credential
    shapes (key=value, bearer tokens, URLs with passwords) in what is left.
    """

    values: set[str] = field(default_factory=set)

    @classmethod
    def from_state(cls, state: ClusterState) -> Redactor:
        found: set[str] = set()
        for objs in state.objects.values():
            for obj in objs:
                if isinstance(obj, dict):
                    _collect(obj, found)
        return cls({v for v in found if len(v) >= MIN_SECRET_LEN})

    def text(self, value: str) -> str:
        for secret in sorted(self.values, key=len, reverse=True):  # longest first
            if secret in value:
                value = value.replace(secret, REDACTED)
        return mask_text(value)

    def data(self, value: Any) -> Any:
        """A JSON-like structure with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _collect(obj: dict[str, Any], out: set[str]) -> None:
    """Sensitive values of one object: Secret data, ConfigMap values under
    credential-like keys, credential-like env values, last-applied copies."""
    kind = obj.get("kind")
    if kind == "Secret":
        for key in ("data", "stringData"):
            data = obj.get(key)
            if isinstance(data, dict):
                out.update(v for v in data.values() if isinstance(v, str) and v)
    if kind == "ConfigMap":
        data = obj.get("data")
        if isinstance(data, dict):
            out.update(v for k, v in data.items()
                       if isinstance(v, str) and v and is_sensitive_key(k))
    ann = (obj.get("metadata") or {}).get("annotations")
    if isinstance(ann, dict):
        applied = ann.get(LAST_APPLIED)
        if isinstance(applied, str) and applied and applied != REDACTED:
            out.add(applied)
            try:
                inner = json.loads(applied)
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                _collect(inner, out)
    _walk_env(obj, out)


def _walk_env(value: Any, out: set[str]) -> None:
    """`env: [{name, value}]` anywhere in an object (every pod-spec holder)."""
    if isinstance(value, dict):
        env = value.get("env")
        if isinstance(env, list):
            for e in env:
                if (isinstance(e, dict) and isinstance(e.get("value"), str) and e["value"]
                        and is_sensitive_key(str(e.get("name") or ""))):
                    out.add(e["value"])
        for v in value.values():
            _walk_env(v, out)
    elif isinstance(value, list):
        for v in value:
            _walk_env(v, out)


# -- shared pieces --------------------------------------------------------------------

def exit_code(report: AuditReport, min_score: float | None = None) -> int:
    """3 when a non-exempt danger fails or the score is below `min_score`, else 0."""
    if report.dangers():
        return EXIT_GATE
    if min_score is not None and report.score.value < min_score:
        return EXIT_GATE
    return EXIT_OK


def subject(r: Result) -> str:
    """namespace/Kind/name[/container]: how every output names what failed."""
    ns = r.namespace or sc.CLUSTER
    return f"{ns}/{r.kind}/{r.name}" + (f"/{r.container}" if r.container else "")


def fix_text(r: Result) -> str:
    return r.fix_text or (r.fix.description if r.fix is not None else "")


def relative(file: str, root: Path | None) -> str:
    """A manifest's path relative to the scanned root, with forward slashes."""
    if not file or root is None:
        return file
    try:
        return Path(os.path.relpath(file, root)).as_posix()
    except ValueError:  # another drive
        return Path(file).as_posix()


def scan_root(manifests: str | os.PathLike[str] | None) -> Path | None:
    """What SARIF URIs are relative to: the directory scanned, or a file's folder."""
    if manifests is None or str(manifests) == "-":
        return None
    p = Path(manifests).resolve()
    return p if p.is_dir() else p.parent


_SOURCE_COMMENT = re.compile(r"^#\s*Source:\s*(\S.*?)\s*$")


def helm_source(file: str, line: int | None, _cache: dict[str, list[str]] | None = None
                ) -> str:
    """The `# Source: chart/templates/x.yaml` comment `helm template` writes above the
    document starting at `line`, so a finding points at the template to edit."""
    if not file or not line:
        return ""
    cache = _cache if _cache is not None else {}
    if file not in cache:
        try:
            cache[file] = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            cache[file] = []
    lines = cache[file]
    for text in reversed(lines[:max(line - 1, 0)]):
        if text.strip() == "---":
            break
        m = _SOURCE_COMMENT.match(text.strip())
        if m:
            return m.group(1)
    return ""


def problem_record(p: LoadProblem, root: Path | None) -> dict[str, Any]:
    """A load problem in the shape of a result (severity info, never gating)."""
    return {"check": LOAD_PROBLEM, "title": "Not audited", "severity": "info",
            "category": "input", "namespace": "", "kind": "", "name": "", "container": "",
            "message": p.message,
            "fix": {"description": "fix or remove the document, or audit a rendered "
                                   "manifest (helm template / kustomize build)"},
            "refs": {}, "exempt": False, "exempt_reason": "",
            "file": relative(p.where, root), "line": None}


# -- JSON -----------------------------------------------------------------------------

def to_json(report: AuditReport, redactor: Redactor | None = None,
            root: Path | None = None) -> list[dict[str, Any]]:
    """The failed results (worst first, exempted ones marked), then one record per
    load problem with check `load-problem`; files relative to the scanned root."""
    red = redactor or Redactor()
    out = []
    for d in report.to_json():
        d["file"] = relative(d["file"], root)
        out.append(d)
    out += [problem_record(p, root) for p in report.problems]
    return red.data(out)


# -- SARIF 2.1.0 ----------------------------------------------------------------------

def _rule_name(check_id: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", check_id) if part)


def _refs_text(chk: Check) -> str:
    refs = chk.refs.to_dict()
    parts = []
    if "pss" in refs:
        parts.append(f"Pod Security Standards {refs['pss']}"
                     + (f" ({refs['pss_control']})" if "pss_control" in refs else ""))
    if "checkov" in refs:
        parts.append("Checkov " + ", ".join(refs["checkov"]))
    if "polaris" in refs:
        parts.append(f"Polaris {refs['polaris']}")
    if "kube_score" in refs:
        parts.append(f"kube-score {refs['kube_score']}")
    return "; ".join(parts)


def _rule(chk: Check, failed: list[Result]) -> dict[str, Any]:
    fixes = list(dict.fromkeys(f for f in (fix_text(r) for r in failed) if f))
    if not fixes:
        help_text = "No subject failed this check in this run."
    elif len(fixes) == 1:
        help_text = f"How to fix: {fixes[0]}"
    else:
        help_text = (f"How to fix, e.g.: {fixes[0]} (each result's properties.fix names the "
                     f"fix for its own subject; {len(fixes)} distinct fixes in this run)")
    refs = _refs_text(chk)
    if refs:
        help_text = help_text.rstrip(".") + f". Same control in: {refs}."
    props: dict[str, Any] = {"category": chk.category, "family": chk.family,
                             "severity": chk.severity, "refs": chk.refs.to_dict(),
                             "tags": list(dict.fromkeys([chk.category, chk.family, "kubernetes"]))}
    if chk.category == "security":
        props["security-severity"] = SECURITY_SEVERITY[chk.severity]
    return {"id": chk.id, "name": _rule_name(chk.id),
            "shortDescription": {"text": chk.title},
            "fullDescription": {"text": chk.rationale},
            "help": {"text": help_text},
            "defaultConfiguration": {"level": SARIF_LEVEL[chk.severity]},
            "properties": props}


def _logical(r: Result) -> dict[str, Any]:
    return {"name": r.container or r.name, "fullyQualifiedName": subject(r),
            "kind": "object" if r.container else "resource"}


def _fingerprint(r: Result) -> str:
    key = "|".join((r.check.id, r.namespace, r.kind, r.name, r.container))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def namespace_anchors(report: AuditReport) -> dict[str, tuple[str, int | None]]:
    """The first workload (by file path, then line) of each namespace: where a manifest
    scan shows a finding on a namespace that has no Namespace document of its own (it
    exists only because its workloads name it)."""
    out: dict[str, tuple[str, int]] = {}
    for r in report.results:
        if r.check.target in ("workload", "container") and r.file and r.file != "<stdin>":
            here = (r.file, r.line or 0)
            if r.namespace not in out or here < out[r.namespace]:
                out[r.namespace] = here
    return {ns: (f, line or None) for ns, (f, line) in out.items()}


def _sarif_result(r: Result, index: int, root: Path | None, manifests: bool,
                  cache: dict[str, list[str]],
                  anchors: dict[str, tuple[str, int | None]]) -> dict[str, Any]:
    location: dict[str, Any] = {"logicalLocations": [_logical(r)]}
    props: dict[str, Any] = {"namespace": r.namespace, "kind": r.kind, "name": r.name,
                             "container": r.container, "category": r.category,
                             "severity": r.severity, "fix": fix_text(r)}
    if r.fix is not None:
        props["action"] = r.fix.to_dict()
    file, line = r.file, r.line
    if manifests and not file and r.kind == "Namespace" and r.namespace in anchors:
        # code scanning shows no result without a file: point at the namespace's first
        # workload, and say so
        file, line = anchors[r.namespace]
        props["locationNote"] = (f"namespace {r.namespace} has no Namespace manifest; "
                                 "shown at its first workload")
    if manifests and file and file != "<stdin>":
        phys: dict[str, Any] = {"artifactLocation": {"uri": relative(file, root),
                                                     "uriBaseId": "SRCROOT"}}
        if line:
            phys["region"] = {"startLine": line}
        location["physicalLocation"] = phys
        template = helm_source(file, line, cache)
        if template:
            props["helmTemplate"] = template
    out: dict[str, Any] = {
        "ruleId": r.check.id, "ruleIndex": index, "level": SARIF_LEVEL[r.severity],
        "message": {"text": r.message}, "locations": [location],
        "partialFingerprints": {"aiopsSubject/v1": _fingerprint(r)},
        "properties": props,
    }
    if r.exempt:
        out["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": r.exempt_reason or "exempted"}]
    return out


def _notification(p: LoadProblem, root: Path | None) -> dict[str, Any]:
    n: dict[str, Any] = {"level": "warning", "message": {"text": str(p.message)},
                         "descriptor": {"id": LOAD_PROBLEM}}
    if p.where and p.where != "<stdin>":
        n["locations"] = [{"physicalLocation": {"artifactLocation": {
            "uri": relative(p.where, root), "uriBaseId": "SRCROOT"}}}]
    return n


def to_sarif(report: AuditReport, redactor: Redactor | None = None,
             root: Path | None = None, *, manifests: bool = False) -> dict[str, Any]:
    """One SARIF run: a rule per registered check, a result per failure (exempted
    ones suppressed, with the reason), load problems as tool notifications."""
    red = redactor or Redactor()
    checks = dict(load_checks())
    for r in report.results:  # a check registered after the audit still gets its rule
        checks.setdefault(r.check.id, r.check)
    ids = sorted(checks)
    index = {cid: i for i, cid in enumerate(ids)}
    failures = report.failures()
    by_check: dict[str, list[Result]] = defaultdict(list)
    for r in failures:
        by_check[r.check.id].append(r)
    cache: dict[str, list[str]] = {}
    anchors = namespace_anchors(report) if manifests else {}
    notes = [_notification(p, root) for p in report.problems]
    notes += [{"level": "error", "message": {"text": f"check {f.check} failed: {f.error}"},
               "descriptor": {"id": f.check}} for f in report.check_failures]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "aiops", "version": _version(),
                            "rules": [_rule(checks[c], by_check.get(c, [])) for c in ids]}},
        "invocations": [{"executionSuccessful": True,
                         "toolExecutionNotifications": notes}],
        "results": [_sarif_result(r, index[r.check.id], root, manifests, cache, anchors)
                    for r in failures],
        "columnKind": "unicodeCodePoints",
        "properties": {"source": report.source, "summary": _short_summary(report)},
    }
    if manifests and root is not None:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": root.as_uri() + "/"}}
    return red.data({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]})


def _short_summary(report: AuditReport) -> dict[str, Any]:
    s = report.summary()
    return {k: s[k] for k in ("score", "grade", "formula", "score_without_exemptions",
                              "exempted", "categories", "pss", "pss_enforced")}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aiops-workbench")
    except PackageNotFoundError:
        return "0"


# -- JUnit XML --------------------------------------------------------------------------

def to_junit(report: AuditReport, redactor: Redactor | None = None,
             root: Path | None = None) -> str:
    """A testsuite per check and a testcase per subject it audited: failed when the
    subject fails it, skipped when that failure is exempted (so CI shows both).
    Documents that could not be audited are skipped testcases of `load-problem`."""
    red = redactor or Redactor()
    cases: dict[str, dict[tuple[str, str, str, str], list[Result]]] = defaultdict(dict)
    for r in report.results:
        cases[r.check.id].setdefault((r.namespace, r.kind, r.name, r.container), []).append(r)
    suites = ET.Element("testsuites", name="aiops audit")
    totals = defaultdict(int)
    for cid in sorted(cases):
        suite = ET.SubElement(suites, "testsuite", name=cid)
        counts = defaultdict(int)
        for results in cases[cid].values():
            first = results[0]
            case = ET.SubElement(suite, "testcase", name=red.text(subject(first)),
                                 classname=f"aiops.{cid}")
            if first.file:
                case.set("file", relative(first.file, root))
                if first.line:
                    case.set("line", str(first.line))
            counts["tests"] += 1
            failed = [r for r in results if not r.passed]
            if not failed:
                continue
            text = "\n".join(red.text(f"{r.message}\nfix: {fix_text(r) or '-'}")
                             for r in failed)
            if first.exempt:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped",
                              message=red.text(f"exempt: {first.exempt_reason}")).text = text
            else:
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=red.text(failed[0].message),
                              type=first.severity).text = text
        _counts(suite, counts, totals)
    for f in report.check_failures:
        suite = ET.SubElement(suites, "testsuite", name=f.check)
        case = ET.SubElement(suite, "testcase", name="(check raised)", classname=f"aiops.{f.check}")
        ET.SubElement(case, "error", message=red.text(f.error))
        _counts(suite, {"tests": 1, "errors": 1}, totals)
    if report.problems:
        suite = ET.SubElement(suites, "testsuite", name=LOAD_PROBLEM)
        for p in report.problems:
            case = ET.SubElement(suite, "testcase", name=relative(p.where, root),
                                 classname=f"aiops.{LOAD_PROBLEM}")
            ET.SubElement(case, "skipped", message=red.text(p.message))
        n = len(report.problems)
        _counts(suite, {"tests": n, "skipped": n}, totals)
    for key in ("tests", "failures", "errors", "skipped"):
        suites.set(key, str(totals[key]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _counts(suite: ET.Element, counts: dict[str, int], totals: dict[str, int]) -> None:
    for key in ("tests", "failures", "errors", "skipped"):
        suite.set(key, str(counts.get(key, 0)))
        totals[key] += counts.get(key, 0)


# -- table ------------------------------------------------------------------------------

def score_lines(report: AuditReport) -> list[str]:
    """The score line and what it is made of, as the table output prints it."""
    s, raw = report.score, report.score_without_exemptions
    cats = ", ".join(f"{k} {v.value:.0f} ({v.grade})" for k, v in report.scores("category").items())
    pss = ", ".join(f"{ns} {level}" + (f" (enforce: {report.enforced[ns]})"
                                       if ns in report.enforced else "")
                    for ns, level in report.pss_levels().items())
    exempted = len(report.exempted())
    return [
        f"Score {s.value:.0f}/100, grade {s.grade}  ({s.passed} passed, {s.warnings} warnings, "
        f"{s.dangers} dangers failed)",
        sc.FORMULA,
        f"by category: {cats or '-'}",
        f"PSS level per namespace: {pss or '-'}",
        f"exempted: {exempted} failure(s); score without exemptions {raw.value:.0f}/100, "
        f"grade {raw.grade}",
    ]


def render_table(report: AuditReport, console: Any, redactor: Redactor | None = None,
                 root: Path | None = None) -> None:
    """Failed checks worst first (exempted ones marked, not hidden), then the score."""
    from rich.markup import escape
    from rich.table import Table

    red = redactor or Redactor()
    t = Table("severity", "check", "object", "message", "fix", "exempt", show_lines=False)
    style = {"danger": "red", "warning": "yellow", "info": "dim"}
    for r in report.failures():
        where = f"{relative(r.file, root)}:{r.line}" if r.file and r.line else ""
        obj = subject(r) + (f"\n{where}" if where else "")
        t.add_row(f"[{style[r.severity]}]{r.severity}[/]", r.check.id, escape(red.text(obj)),
                  escape(red.text(r.message)), escape(red.text(fix_text(r))),
                  escape(red.text(r.exempt_reason)) if r.exempt else "")
    if report.failures():
        console.print(t)
    else:
        console.print("No check failed.")
    for f in report.check_failures:
        console.print(f"[red]check {escape(f.check)} could not run:[/] {escape(red.text(f.error))}")
    for i, line in enumerate(score_lines(report)):
        console.print(f"[bold]{escape(line)}[/]" if i == 0 else escape(line), highlight=False)


def render_text(report: AuditReport, fmt: str, redactor: Redactor | None = None,
                root: Path | None = None, *, manifests: bool = False,
                width: int = 160) -> str:
    """The whole output of one format as text (the table without colours)."""
    if fmt == "json":
        return json.dumps(to_json(report, redactor, root), indent=2, default=str) + "\n"
    if fmt == "sarif":
        return json.dumps(to_sarif(report, redactor, root, manifests=manifests),
                          indent=2, default=str) + "\n"
    if fmt == "junit":
        return to_junit(report, redactor, root)
    import io

    from rich.console import Console

    buf = io.StringIO()
    render_table(report, Console(file=buf, width=width, no_color=True, highlight=False,
                                 force_terminal=False), redactor, root)
    return buf.getvalue()


def problems_text(problems: Iterable[LoadProblem], root: Path | None) -> list[str]:
    """Load problems as the warning lines printed on stderr."""
    return [f"{relative(p.where, root)}: {p.message}" for p in problems]


__all__ = ["FORMATS", "LOAD_PROBLEM", "SARIF_LEVEL", "Redactor", "exit_code", "helm_source",
           "render_table", "render_text", "scan_root", "score_lines", "to_json", "to_junit",
           "to_sarif"]
