"""Operational runbooks, one Markdown file per failure family, from the rule
catalog, the runbook knowledge and (optionally) the audit trail and findings.

Each rule gets a section with a stable anchor (`<a id="<rule-id>">`, so
`runbooks/<family>.md#<rule-id>` links from findings keep working) and five
parts: symptoms, how to confirm, remediation, expected recovery time,
prevention; then its Kubernetes documentation link. The output is a pure
function of its inputs (sorted, no timestamps), so regenerating it in git shows
only real changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiops.atomic import write_text
from aiops.diagnose.registry import Rule, load_rules
from aiops.redact import mask_text
from aiops.runbooks.history import MttrStat, measured_mttr
from aiops.runbooks.knowledge import FAMILIES, RuleGuide, Step, guide

PARTS = ("Symptoms", "How to confirm", "Remediation", "Expected recovery time", "Prevention")
NO_MTTR = "no measured MTTR yet"
DEFAULT_TYPICAL_MINUTES = 30


def _doc(rule: Rule) -> str:
    """What the rule detects, in its author's words (the function's docstring)."""
    text = inspect.getdoc(rule.fn) or ""
    return " ".join(text.split("\n\n")[0].split())


def _fallback(rule: Rule) -> RuleGuide:
    """A rule added without runbook knowledge still gets a usable section."""
    return RuleGuide(
        signals=(rule.title,),
        confirm=("kubectl describe <kind> <name> -n <namespace>",
                 "kubectl get <kind> <name> -n <namespace> -o yaml",
                 "kubectl get events -n <namespace> --field-selector involvedObject.name=<name>"),
        steps=(Step("Run the diagnosis on the object: its finding's remediation names the "
                    "exact change.", ("aiops diagnose --namespace <namespace> --format "
                                      "markdown",)),),
        prevention=("Add runbook knowledge for this rule in aiops/runbooks/knowledge.py.",),
        typical_minutes=DEFAULT_TYPICAL_MINUTES)


def _fmt_minutes(m: float) -> str:
    if m < 90:
        return f"{m:.0f} min"
    return f"{m / 60:.1f} h"


def _recovery(rule: Rule, g: RuleGuide, stat: MttrStat | None) -> list[str]:
    if stat:
        return [f"Measured: median **{_fmt_minutes(stat.median_minutes)}** over "
                f"{stat.count} recovered episode{'s' if stat.count != 1 else ''} "
                f"(mean {_fmt_minutes(stat.mean_minutes)}, worst "
                f"{_fmt_minutes(stat.max_minutes)}), from detection (or the failure's start) "
                "to the passing validation in the audit trail."]
    return [f"No measured MTTR yet (no detection -> validation history for `{rule.id}` in "
            f"the audit trail). Typical: about {_fmt_minutes(g.typical_minutes)} once the "
            "cause is known; this is an estimate, not a measurement."]


def _code(commands: Iterable[str], indent: str = "") -> list[str]:
    cmds = list(commands)
    if not cmds:
        return []
    return [f"{indent}```bash", *(f"{indent}{c}" for c in cmds), f"{indent}```"]


def _example(rec: Mapping[str, Any], source: str) -> list[str]:
    """A finding of this rule seen on a real cluster, with its concrete commands."""
    ns = f"{rec.get('namespace')}/" if rec.get("namespace") else ""
    obj = f"{rec.get('kind')}/{ns}{rec.get('name')}"
    rem = rec.get("remediation") or {}
    out = ["", f"Example from `{source}`: `{obj}`: {rec.get('summary', '')}", "",
           f"> {rem.get('summary', '')}"]
    cmds = [str(c) for c in rem.get("commands") or []]
    if cmds:
        out += ["", *_code(cmds)]
    return out


def render_rule(rule: Rule, stat: MttrStat | None = None,
                example: Mapping[str, Any] | None = None, source: str = "") -> str:
    """One rule's section."""
    g = guide(rule.id) or _fallback(rule)
    out = [f'<a id="{rule.id}"></a>', "", f"## `{rule.id}`: {rule.title}", "",
           f"Severity: **{rule.severity}** · family `{rule.family}` · "
           f"[Kubernetes docs]({rule.docs})", ""]
    out += ["### Symptoms", ""]
    doc = _doc(rule)
    if doc:
        out += [doc, ""]
    out += [f"- {s}" for s in g.signals]
    out += ["", "### How to confirm", "", *_code(g.confirm),
            "", "Or let the rules do it: `aiops diagnose --namespace <namespace> "
            "--format markdown`.", ""]
    out += ["### Remediation", ""]
    for i, step in enumerate(g.steps, 1):
        out.append(f"{i}. {step.text}")
        if step.commands:
            out += ["", *_code(step.commands, "   ")]
        out.append("")
    out.append("A change the finding carries as an Action goes through the approval gate "
               "(`aiops execute ID` once approved), which validates it and rolls it back "
               "on failure.")
    if example:
        out += _example(example, source)
    out += ["", "### Expected recovery time", "", *_recovery(rule, g, stat), ""]
    out += ["### Prevention", "", *(f"- {p}" for p in g.prevention),
            f"- And the [{rule.family} family's prevention](#family-prevention)."]
    out += ["", "### References", "", f"- Kubernetes documentation: <{rule.docs}>", ""]
    return "\n".join(out)


def render_family(family: str, rules: list[Rule], mttr: Mapping[str, MttrStat] | None = None,
                  examples: Mapping[str, Mapping[str, Any]] | None = None,
                  source: str = "") -> str:
    """The runbook of one family: a table of its rules, then a section per rule."""
    mttr, examples = mttr or {}, examples or {}
    rules = sorted(rules, key=lambda r: r.id)
    fam = FAMILIES.get(family)
    out = [f"# Runbook: {family}", ""]
    if fam:
        out += [fam.about, ""]
    out += ["Generated by `aiops runbooks` from the rule catalog"
            + (" and the audit trail" if mttr else "") + "; do not edit by hand.", "",
            "| rule | severity | what it detects | expected recovery |", "|---|---|---|---|"]
    for r in rules:
        stat = mttr.get(r.id)
        rec = (f"{_fmt_minutes(stat.median_minutes)} (measured, n={stat.count})" if stat
               else NO_MTTR)
        out.append(f"| [`{r.id}`](#{r.id}) | {r.severity} | {r.title} | {rec} |")
    out.append("")
    if fam and fam.prevention:
        out += ['<a id="family-prevention"></a>', "", "## Prevention for the whole family",
                "", *(f"- {p}" for p in fam.prevention), ""]
    for r in rules:
        out += ["---", "", render_rule(r, mttr.get(r.id), examples.get(r.id), source)]
    return mask_text("\n".join(out).rstrip() + "\n")


def render_index(by_family: Mapping[str, list[Rule]],
                 mttr: Mapping[str, MttrStat] | None = None) -> str:
    mttr = mttr or {}
    out = ["# Runbooks", "",
           "One runbook per failure family of `aiops diagnose`. Every finding links to its "
           "rule's section: `runbooks/<family>.md#<rule-id>`.", "",
           "| family | rules | what it covers |", "|---|---|---|"]
    for fam in sorted(by_family):
        ids = ", ".join(f"[`{r.id}`]({fam}.md#{r.id})"
                        for r in sorted(by_family[fam], key=lambda r: r.id))
        about = FAMILIES[fam].about if fam in FAMILIES else ""
        out.append(f"| [{fam}]({fam}.md) | {ids} | {about} |")
    measured = sum(1 for _ in mttr)
    out += ["", f"Recovery times measured from the audit trail for {measured} of "
            f"{sum(len(v) for v in by_family.values())} rules; the others state a typical "
            "value as such.", ""]
    return "\n".join(out)


def examples_from(findings: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """One finding per rule (the first by object, so the choice is stable)."""
    recs = [f.to_dict() if hasattr(f, "to_dict") else dict(f) for f in findings]
    recs.sort(key=lambda r: (r.get("rule", ""), r.get("namespace", ""), r.get("kind", ""),
                             r.get("name", "")))
    out: dict[str, dict[str, Any]] = {}
    for r in recs:
        out.setdefault(str(r.get("rule")), r)
    return out


def generate(out_dir: str | Path, *, store: Any = None, findings: Iterable[Any] | None = None,
             source: str = "") -> list[Path]:
    """Write `<out_dir>/<family>.md` for every family and `README.md`; return the paths.

    `store`: a PhrStore (or its records) for measured MTTR; `findings`: findings of
    a cluster (`source` names it) whose concrete remediations are quoted as examples.
    """
    rules = load_rules()
    by_family: dict[str, list[Rule]] = {}
    for r in rules.values():
        by_family.setdefault(r.family, []).append(r)
    mttr = measured_mttr(store) if store is not None else {}
    mttr = {k: v for k, v in mttr.items() if k in rules}
    examples = examples_from(findings) if findings is not None else {}
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for fam in sorted(by_family):
        path = root / f"{fam}.md"
        write_text(path, render_family(fam, by_family[fam], mttr, examples, source),
                   mode=0o644)
        written.append(path)
    index = root / "README.md"
    write_text(index, render_index(by_family, mttr), mode=0o644)
    return [*written, index]


__all__ = ["NO_MTTR", "PARTS", "examples_from", "generate", "render_family", "render_index",
           "render_rule"]
