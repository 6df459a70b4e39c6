"""Where a rule's runbook section lives, for every page that shows a finding.

Runbooks are written under `<reports>/runbooks/<family>.md`, one section per
rule with an explicit `<a id="<rule-id>">` anchor, so the link is stable
whatever the section's title says.
"""

from __future__ import annotations

from html import escape

RUNBOOK_DIR = "runbooks"


def family_of(rule_id: str) -> str | None:
    """The rule's failure family from the registry, None for an unknown rule."""
    from aiops.diagnose.registry import RULES, load_rules

    if rule_id not in RULES:
        load_rules()
    r = RULES.get(rule_id)
    return r.family if r else None


def runbook_path(rule_id: str, *, base: str = "") -> str | None:
    """`runbooks/<family>.md#<rule-id>`, relative to the reports directory.

    `base` is the way from the linking page to the reports directory: "" for
    pages at its top (index.html), "../" for report pages in `<date>/`.
    """
    fam = family_of(rule_id)
    return f"{base}{RUNBOOK_DIR}/{fam}.md#{rule_id}" if fam else None


def runbook_html(rule_id: str, *, base: str = "../", label: str = "runbook") -> str:
    """An escaped `<a>` to the rule's runbook section for report cells ("" if unknown)."""
    href = runbook_path(rule_id, base=base)
    if not href:
        return ""
    return f'<a href="{escape(href, quote=True)}">{escape(label)}</a>'


__all__ = ["RUNBOOK_DIR", "family_of", "runbook_html", "runbook_path"]
