"""Plain-language questions answered from the rules, deterministically.

`ask(state, "why is the backend failing?")` recognises the common question
shapes, finds the object meant (fuzzy: "backend" finds todo-backend), runs the
diagnosis and answers from its findings. An LLM may rephrase the answer when an
OpenAI-compatible endpoint is configured; it never adds findings, and what is
sent to it is redacted first.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aiops.diagnose.engine import Diagnosis, diagnose
from aiops.model import ClusterState
from aiops.quantity import format_bytes, format_cores

_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job")
_STOP = {"why", "is", "the", "my", "a", "an", "what", "whats", "what's", "wrong", "with",
         "in", "failing", "crashing", "pending", "broken", "down", "not", "ready", "does",
         "do", "it", "safe", "to", "scale", "which", "pods", "pod", "restart", "restarts",
         "most", "namespace", "of", "for", "are", "there", "any", "problems", "up", "and",
         "keep", "keeps", "working", "cluster", "happening", "going", "on", "can", "i",
         "replicas", "service", "deployment", "workload", "app", "unhealthy", "starting",
         "start", "won't", "wont", "doesn't", "isn't", "issue", "issues", "error", "errors"}


@dataclass
class Answer:
    question: str
    # diagnose-target | diagnose-namespace | diagnose-cluster | top-restarts | scale-safety
    intent: str
    target: str | None
    text: str
    diagnosis: Diagnosis | None = None
    table: pd.DataFrame | None = None
    explanation: str | None = None  # optional LLM phrasing of `text`
    facts: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.explanation or self.text


def _candidates(state: ClusterState) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of everything a question may name."""
    out = []
    for kind in (*_WORKLOAD_KINDS, "Pod", "Service"):
        for o in state.kind(kind):
            m = o.get("metadata") or {}
            out.append((kind, m.get("namespace") or "", m.get("name") or ""))
    return out


def _score(word: str, name: str) -> float:
    if word == name:
        return 1.0
    parts = re.split(r"[-_.]", name)
    if word in parts:
        return 0.9 - 0.01 * len(parts)
    if len(word) >= 3 and word in name:
        return 0.75
    return difflib.SequenceMatcher(None, word, name).ratio() * 0.7


def match_object(state: ClusterState, question: str) -> tuple[str, str, str] | None:
    """The object a question names, preferring workloads over pods over services."""
    words = [w for w in re.findall(r"[a-z0-9][a-z0-9.\-_]*", question.lower())
             if w not in _STOP and len(w) > 1]
    if not words:
        return None
    pref = {"Deployment": 0.03, "StatefulSet": 0.03, "DaemonSet": 0.03, "CronJob": 0.02,
            "Job": 0.0, "Pod": 0.01, "Service": 0.0}
    best, best_score = None, 0.0
    for cand in _candidates(state):
        s = max(_score(w, cand[2]) for w in words) + pref.get(cand[0], 0)
        if s > best_score:
            best, best_score = cand, s
    return best if best_score >= 0.6 else None


def _namespace_in(state: ClusterState, q: str) -> str | None:
    m = re.search(r"(?:namespace|ns)\s+[\"'`]?([a-z0-9][a-z0-9-]*)", q.lower())
    if m and m.group(1) in state.namespaces:
        return m.group(1)
    m = re.search(r"\bin\s+[\"'`]?([a-z0-9][a-z0-9-]*)[\"'`]?\s*\??$", q.lower())
    return m.group(1) if m and m.group(1) in state.namespaces else None


def ask(state: ClusterState, question: str, *, explain: bool | None = None) -> Answer:
    """Answer a question about the cluster from the rules' findings."""
    q = question.strip()
    low = q.lower()
    if re.search(r"\brestart", low) and re.search(r"\b(most|top|which|often)\b", low):
        ans = _top_restarts(state, q)
    elif re.search(r"\bscale\b", low):
        ans = _scale_safety(state, q)
    elif (ns := _namespace_in(state, q)) and not match_object(state, low.replace(ns, "")):
        d = diagnose(state, namespace=ns)
        ans = Answer(q, "diagnose-namespace", ns, _summarise(d, f"namespace {ns}"), d)
    elif obj := match_object(state, q):
        kind, ns, name = obj
        if kind == "Pod":
            d = diagnose(state, namespace=ns, pod=name)
        elif kind == "Service":
            d = diagnose(state, namespace=ns)
            d.findings = [f for f in d.findings
                          if f.name == name or name in " ".join(e.text for e in f.evidence)]
        else:
            d = diagnose(state, namespace=ns, workload=(kind, name))
        ans = Answer(q, "diagnose-target", f"{kind}/{ns}/{name}",
                     _summarise(d, f"{kind} {ns}/{name}"), d)
    else:
        d = diagnose(state)
        ans = Answer(q, "diagnose-cluster", None, _summarise(d, "the cluster"), d)
    if explain is not False:
        from aiops.diagnose.llm import explain_answer, llm_configured

        if explain or llm_configured():
            ans.explanation = explain_answer(ans)
    return ans


def _summarise(d: Diagnosis, what: str) -> str:
    if not d.findings:
        return f"No problems found in {what}."
    lines = [f"{len(d.findings)} finding(s) in {what}; root cause first:"]
    for f in d.findings[:6]:
        lines.append(f"- [{f.severity}] {f.rule}: {f.summary}")
        if f.evidence:
            lines.append(f"  evidence: {f.evidence[0].text} ({f.evidence[0].ref})")
        lines.append(f"  fix: {f.remediation.summary}")
    if len(d.findings) > 6:
        lines.append(f"... and {len(d.findings) - 6} more (aiops diagnose for all).")
    return "\n".join(lines)


def _top_restarts(state: ClusterState, q: str) -> Answer:
    c = state.containers
    ns = _namespace_in(state, q)
    if ns:
        c = c[c["namespace"] == ns]
    top = (c[c["restarts"] > 0]
           .sort_values("restarts", ascending=False)
           [["namespace", "pod", "container", "restarts", "last_reason", "last_exit_code"]]
           .head(10).reset_index(drop=True))
    if top.empty:
        text = "No container has restarted."
    else:
        text = "Most restarts:\n" + "\n".join(
            f"- {r.namespace}/{r.pod} ({r.container}): {r.restarts} restarts, last "
            f"{r.last_reason or 'unknown'} (exit {r.last_exit_code})" for r in top.itertuples())
    return Answer(q, "top-restarts", ns, text, table=top)


def _scale_safety(state: ClusterState, q: str) -> Answer:
    obj = match_object(state, q)
    if obj is None or obj[0] not in ("Deployment", "StatefulSet"):
        return Answer(q, "scale-safety", None,
                      "Name a Deployment or StatefulSet to scale, e.g. "
                      "'is it safe to scale todo-backend to 4?'")
    kind, ns, name = obj
    w = state.get(kind, ns, name) or {}
    spec = w.get("spec") or {}
    current = int(spec.get("replicas", 1) or 0)
    m = re.search(r"\bto\s+(\d+)", q)
    wanted = int(m.group(1)) if m else current + 1
    facts, blockers = [], []
    d = diagnose(state, namespace=ns, workload=(kind, name))
    crit = [f for f in d.findings if f.severity == "critical"]
    if crit:
        blockers.append(f"it has critical findings ({', '.join(sorted({f.rule for f in crit}))}): "
                        "more replicas would fail the same way")
    for h in state.kind("HorizontalPodAutoscaler"):
        ref = (h.get("spec") or {}).get("scaleTargetRef") or {}
        if (h["metadata"].get("namespace"), ref.get("kind"), ref.get("name")) == (ns, kind, name):
            hs = h.get("spec") or {}
            blockers.append(f"HPA {h['metadata']['name']} manages its replicas "
                            f"({hs.get('minReplicas', 1)}-{hs.get('maxReplicas')}): "
                            "change the HPA's bounds instead")
    pods = state.pods
    mine = pods[(pods["namespace"] == ns) & (pods["workload"] == name)
                & (pods["workload_kind"] == kind)]
    per_pod_cpu = float(mine["cpu_request"].max()) if not mine.empty else 0.0
    per_pod_mem = float(mine["memory_request"].max()) if not mine.empty else 0.0
    extra = max(wanted - current, 0)
    nodes = state.nodes
    live = pods[~pods["phase"].isin(["Succeeded", "Failed"]) & (pods["node"] != "")]
    free_cpu = float(nodes["cpu_allocatable"].sum() - live["cpu_request"].sum())
    free_mem = float(nodes["memory_allocatable"].sum() - live["memory_request"].sum())
    need_cpu, need_mem = per_pod_cpu * extra, per_pod_mem * extra
    facts.append(f"{kind} {ns}/{name}: {current} -> {wanted} replicas; each pod requests "
                 f"{format_cores(per_pod_cpu)} CPU, {format_bytes(per_pod_mem)} memory")
    facts.append(f"free allocatable: {format_cores(free_cpu)} CPU, {format_bytes(free_mem)}")
    if extra and (need_cpu > free_cpu or need_mem > free_mem) and not math.isnan(need_mem):
        blockers.append(f"{extra} more pod(s) need {format_cores(need_cpu)} CPU / "
                        f"{format_bytes(need_mem)}, more than is free: they would stay Pending")
    verdict = "Not safe" if blockers else "Safe"
    text = f"{verdict} to scale {kind} {ns}/{name} to {wanted}.\n" + "\n".join(
        [f"- {b}" for b in blockers] + [f"- {f}" for f in facts])
    return Answer(q, "scale-safety", f"{kind}/{ns}/{name}", text, d, facts=facts)


def answer_dict(ans: Answer) -> dict[str, Any]:
    return {"question": ans.question, "intent": ans.intent, "target": ans.target,
            "answer": ans.text, "explanation": ans.explanation,
            "findings": ans.diagnosis.to_dicts() if ans.diagnosis else []}
