"""A deterministic four-week PHR history for the demo and the tests.

`write_demo_history(store, end)` records, through the real `PhrStore`, what a
team running the workbench would have produced over the 28 days before `end`:
detections, recommendations, proposals across the tiers (one emergency, one
approved past its SLA), approvals, a rejection, an expiry, executions (one by
hand), validations (one failed, then rolled back) and a change still waiting.

The store stamps every record with its own clock and cannot write past times,
so each record carries when it happened in `data.occurred_at` (the KPIs read
that first, see aiops/kpis/timeline.py). Approvals and rejections have the
front matter `aiops.approvals.workflow` writes; `workflow.changes(store)` folds
them into the states a test checks. Same `end`, same history (ids differ).

    python -m aiops.kpis.demo DIR [--end ISO-TIME]

creates DIR as its own git repository holding the history under
DIR/history/prompts (replacing an earlier demo history there, never anything
else) and prints the store path; `make demo` renders the operations report
from it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiops.approvals.phr import PhrStore, Record
from aiops.diagnose.finding import Action

AIOPS = {"name": "aiops", "email": "aiops@localhost"}
BOB = {"name": "Bob Operator", "email": "bob@example.com"}
ALICE = {"name": "Alice Approver", "email": "alice@example.com"}
SAM = {"name": "Sam Security", "email": "sam@example.com"}
ROLES = {BOB["email"]: ["approver"], ALICE["email"]: ["approver"],
         SAM["email"]: ["approver", "security"]}
MARKER = ".aiops-demo-history"


def _target(kind: str, ns: str, name: str) -> dict[str, str]:
    api = "v1" if kind in ("Pod", "ConfigMap", "Secret", "Service") else "apps/v1"
    if kind == "NetworkPolicy":
        api = "networking.k8s.io/v1"
    return {"apiVersion": api, "kind": kind, "namespace": ns, "name": name}


def _action(kind: str, target: dict[str, str], tier: str, what: str,
            path: str = "/spec/replicas", old: Any = 1, new: Any = 2) -> Action:
    return Action(kind=kind, target=target, description=what, tier=tier,
                  patch=[{"op": "replace", "path": path, "value": new}],
                  inverse=[{"op": "replace", "path": path, "value": old}],
                  validate=[f"{target['kind']}/{target['name']} ready"])


@dataclass
class Step:
    """One record to write: minutes after its story's start, and what it is."""

    minute: float
    type: str
    actor: dict[str, str]
    title: str
    key: str = ""
    after: str = ""  # key of the record this one follows (links.previous_step)
    data: dict[str, Any] = field(default_factory=dict)
    action: Action | None = None


@dataclass
class Story:
    """An incident or a change, `days` before the end, at `hour` UTC."""

    days: int
    hour: int
    steps: list[Step]
    action: Action | None = None
    failure_start: bool = False  # the story starts with the failure (minute 0)


def _change(tag: str, action: Action, *, proposer: dict[str, str], reason: str,
            approvals: list[tuple[float, dict[str, str]]], execute: float | None = None,
            validate: tuple[float, bool] | None = None, after: str = "",
            emergency: bool = False, executor: dict[str, str] = AIOPS,
            propose_at: float = 0.0, extra: dict[str, Any] | None = None) -> list[Step]:
    """The steps of one change: proposal, approvals, execution, validation."""
    t = action.target
    steps = [Step(propose_at, "proposal", proposer,
                  f"propose {action.kind} of {t['kind']}/{t['name']} "
                  f"({action.tier}{', emergency' if emergency else ''})",
                  key=f"{tag}.p", after=after, action=action,
                  data={"reason": reason, "emergency": emergency, **(extra or {})})]
    prev = f"{tag}.p"
    for i, (minute, who) in enumerate(approvals):
        steps.append(Step(propose_at + minute, "approval", who, f"approval of {tag}",
                          key=f"{tag}.a{i}", after=prev,
                          data={"justification": "checked the evidence and the inverse patch",
                                "roles": ROLES[who["email"]]}))
        prev = f"{tag}.a{i}"
    if execute is not None:
        steps.append(Step(propose_at + execute, "execution", executor,
                          f"execute {action.kind} of {t['kind']}/{t['name']}",
                          key=f"{tag}.x", after=prev,
                          data={"phase": "done", "automated": executor is AIOPS}))
        prev = f"{tag}.x"
    if validate is not None:
        minute, ok = validate
        steps.append(Step(propose_at + minute, "validation", AIOPS,
                          f"validate {t['kind']}/{t['name']}: {'passed' if ok else 'FAILED'}",
                          key=f"{tag}.v", after=prev, data={"passed": ok}))
    return steps


def _detect(tag: str, rule: str, target: dict[str, str], minute: float,
            summary: str) -> list[Step]:
    return [Step(minute, "detection", AIOPS, f"{rule} on {target['kind']}/{target['name']}",
                 key=f"{tag}.d", data={"rule": rule, "summary": summary,
                                       "object": target})]


def _recommend(tag: str, minute: float, title: str, after: str = "",
               **data: Any) -> list[Step]:
    return [Step(minute, "recommendation", AIOPS, title, key=f"{tag}.r", after=after,
                 data=data)]


def stories() -> list[Story]:
    """The demo's four weeks, oldest first (see the module docstring)."""
    worker = _target("Deployment", "todo", "todo-worker")
    frontend = _target("Deployment", "todo", "todo-frontend")
    payments = _target("Deployment", "shop", "shop-payments")
    netpol = _target("NetworkPolicy", "shop", "shop-default-deny")
    search = _target("Deployment", "shop", "shop-search-indexer")
    embeddings = _target("Deployment", "todo", "todo-embeddings")
    chatbot = _target("Deployment", "todo", "todo-chatbot")
    checkout = _target("Deployment", "shop", "shop-checkout")
    storefront = _target("Pod", "shop", "shop-storefront-67bf6bcdfd-cm2tk")
    cart = _target("Deployment", "shop", "shop-cart")
    ads = _target("Deployment", "shop", "shop-ads")
    mem = "/spec/template/spec/containers/0/resources/limits/memory"
    cpu = "/spec/template/spec/containers/0/resources/requests/cpu"
    out: list[Story] = []

    # 1. week 1: an OOM kill, diagnosed in 4 minutes, memory raised (medium)
    a = _action("patch", worker, "medium", "raise memory limit to 768Mi", mem, "512Mi", "768Mi")
    out.append(Story(26, 9, [
        *_detect("s1", "oom-killed", worker, 4, "todo-worker OOM-killed 6 times"),
        *_recommend("s1", 5, "raise todo-worker memory to 768Mi", "s1.d", rule="oom-killed"),
        *_change("s1", a, proposer=BOB, reason="OOM kills", after="s1.r", propose_at=8,
                 approvals=[(12, ALICE)], execute=14, validate=(22, True))],
        failure_start=True))
    # 2. right-sizing the frontend's CPU request: 42.50 USD/month
    a = _action("patch", frontend, "medium", "CPU request 500m -> 150m", cpu, "500m", "150m")
    out.append(Story(24, 14, [
        *_recommend("s2", 0, "lower todo-frontend CPU request to 150m",
                    monthly_savings_usd=42.5),
        *_change("s2", a, proposer=BOB, reason="p95 + 30 % is 150m", after="s2.r",
                 propose_at=30, approvals=[(18, ALICE)], execute=20, validate=(30, True))]))
    # 3. week 2: a missing ConfigMap (low tier: the operator may approve it)
    a = _action("patch", payments, "low", "point the volume at payments-config",
                "/spec/template/spec/volumes/0/configMap/name", "payment-config",
                "payments-config")
    out.append(Story(21, 10, [
        *_detect("s3", "missing-configmap", payments, 6, "ConfigMap payment-config missing"),
        *_recommend("s3", 7, "fix the ConfigMap name in shop-payments", "s3.d",
                    rule="missing-configmap"),
        *_change("s3", a, proposer=BOB, reason="typo in the ConfigMap name", after="s3.r",
                 propose_at=10, approvals=[(3, BOB)], execute=5, validate=(11, True))],
        failure_start=True))
    # 4. a critical change from a security review: fails validation, rolled back
    a = _action("patch", netpol, "critical", "deny egress except DNS and the database",
                "/spec/egress", [], [{"to": [{"podSelector": {}}]}])
    out.append(Story(19, 13, [
        *_change("s4", a, proposer=BOB, reason="security review SR-12",
                 approvals=[(40, ALICE), (70, SAM)], execute=75, validate=(85, False)),
        Step(88, "rollback", AIOPS, "roll back shop-default-deny", key="s4.b", after="s4.v",
             data={"passed": True, "duration_s": 95, "reason": "checkout lost its database"})]))
    # 5. right-sizing approved 55 minutes after the proposal: past the 30-minute SLA
    a = _action("patch", search, "medium", "memory request 2Gi -> 768Mi",
                "/spec/template/spec/containers/0/resources/requests/memory", "2Gi", "768Mi")
    out.append(Story(17, 15, [
        *_recommend("s5", 0, "lower shop-search-indexer memory request to 768Mi",
                    monthly_savings_usd=120.0),
        *_change("s5", a, proposer=BOB, reason="peak + 30 % is 768Mi", after="s5.r",
                 propose_at=20, approvals=[(55, ALICE)], execute=60, validate=(70, True))]))
    # 6. a right-sizing proposal rejected
    a = _action("patch", embeddings, "medium", "CPU request 2 -> 1", cpu, "2", "1")
    out.append(Story(15, 11, [
        *_recommend("s6", 0, "lower todo-embeddings CPU request to 1 core",
                    monthly_savings_usd=60.0),
        *_change("s6", a, proposer=BOB, reason="p95 + 30 % is 1 core", after="s6.r",
                 propose_at=15, approvals=[]),
        Step(40, "rejection", ALICE, "rejection of s6", key="s6.j", after="s6.p",
             data={"justification": "model reindex next week needs the CPU",
                   "roles": ["approver"]})]))
    # 7. week 3: a crash loop handled on the emergency path (5-minute SLA)
    a = _action("rollout-undo", chatbot, "critical", "roll back to revision 41",
                "/spec/template/metadata/annotations/revision", "42", "41")
    out.append(Story(13, 3, [
        *_detect("s7", "crash-loop", chatbot, 3, "todo-chatbot crash-looping since rollout"),
        *_recommend("s7", 4, "undo the todo-chatbot rollout", "s7.d", rule="crash-loop"),
        *_change("s7", a, proposer=BOB, reason="checkout down", after="s7.r", propose_at=5,
                 emergency=True, approvals=[(2, ALICE), (4, SAM)], execute=6,
                 validate=(12, True))],
        failure_start=True))
    # 8. a right-sizing proposal nobody decided on: expired after 4 h
    a = _action("patch", checkout, "medium", "CPU request 1 -> 400m", cpu, "1", "400m")
    out.append(Story(11, 16, [
        *_recommend("s8", 0, "lower shop-checkout CPU request to 400m",
                    monthly_savings_usd=30.0),
        *_change("s8", a, proposer=BOB, reason="p95 + 30 % is 400m", after="s8.r",
                 propose_at=10, approvals=[]),
        Step(250, "expiry", AIOPS, "proposal s8 expired unapproved", key="s8.e", after="s8.p",
             data={"expired_at": "see occurred_at"})]))
    # 9. a missing Secret, fixed by hand (a manual execution)
    a = _action("patch", cart, "medium", "use secret cart-redis-auth",
                "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name",
                "redis-auth", "cart-redis-auth")
    out.append(Story(9, 8, [
        *_detect("s9", "missing-secret", cart, 5, "Secret redis-auth missing"),
        *_recommend("s9", 6, "point shop-cart at Secret cart-redis-auth", "s9.d",
                    rule="missing-secret"),
        *_change("s9", a, proposer=BOB, reason="Secret renamed", after="s9.r", propose_at=8,
                 approvals=[(25, ALICE)], execute=40, validate=(50, True), executor=BOB)],
        failure_start=True))
    # 10. week 4: HPA advice nobody acted on
    out.append(Story(6, 12, _recommend("s10", 0, "add an HPA to shop-ads on CPU 70 %")))
    # 11. an evicted pod deleted automatically (trivial: no approval)
    a = Action(kind="delete-pod", target=storefront, description="delete the evicted pod",
               tier="trivial", validate=["no evicted pods of shop-storefront"])
    out.append(Story(5, 2, [
        *_detect("s11", "evicted", storefront, 2, "pod evicted for ephemeral storage"),
        *_change("s11", a, proposer=AIOPS, reason="evicted pods are garbage", after="s11.d",
                 propose_at=3, approvals=[], execute=4, validate=(6, True))],
        failure_start=True))
    # 12. a missing ConfigMap key: executed, validation not recorded yet
    a = _action("patch", ads, "medium", "add key ADS_URL to ads-config",
                "/data/ADS_URL", None, "http://shop-ads:8080")
    out.append(Story(3, 10, [
        *_detect("s12", "missing-config-key", ads, 8, "key ADS_URL missing in ads-config"),
        *_recommend("s12", 9, "add key ADS_URL to ads-config", "s12.d",
                    rule="missing-config-key"),
        *_change("s12", a, proposer=BOB, reason="ads blank on the storefront", after="s12.r",
                 propose_at=12, approvals=[(10, ALICE)], execute=15)],
        failure_start=True))
    # 13. right-sizing advice not acted on
    out.append(Story(2, 9, _recommend("s13", 0, "lower shop-ads memory request to 256Mi",
                                      monthly_savings_usd=25.0)))
    # 14. another OOM kill: the proposal is waiting for an approver
    a = _action("patch", worker, "medium", "raise memory limit to 1Gi", mem, "768Mi", "1Gi")
    out.append(Story(1, 7, [
        *_detect("s14", "oom-killed", worker, 4, "todo-worker OOM-killed again"),
        *_recommend("s14", 5, "raise todo-worker memory to 1Gi", "s14.d", rule="oom-killed"),
        *_change("s14", a, proposer=BOB, reason="OOM kills at the new peak", after="s14.r",
                 propose_at=9, approvals=[])],
        failure_start=True))
    return out


def plan(end: datetime) -> list[tuple[datetime, Step, datetime | None]]:
    """Every step with its time (and its story's failure start), oldest first."""
    day0 = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for s in stories():
        base = day0 - timedelta(days=s.days) + timedelta(hours=s.hour)
        start = base if s.failure_start else None
        out.extend((base + timedelta(minutes=st.minute), st, start) for st in s.steps)
    out.sort(key=lambda x: x[0])
    return out


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_demo_history(store: PhrStore, end: datetime | None = None) -> dict[str, Record]:
    """Record the demo history into `store` (28 days up to `end`, default now);
    returns the records by step key (e.g. "s4.b": the rollback)."""
    end = end or datetime.now(UTC)
    written: dict[str, Record] = {}
    for at, st, start in plan(end):
        prev = written[st.after] if st.after else None
        data = {**st.data, "occurred_at": _iso(at)}
        fields: dict[str, Any] = {}
        if st.type == "detection":
            data["failure_start"] = _iso(start) if start else None
            fields["object"] = st.data["object"]
            data.pop("object")
        if st.type == "expiry":
            data["expired_at"] = _iso(at)
        owner = _proposal_of(written, st)
        if st.type not in ("detection", "recommendation", "proposal") and owner is not None:
            m = owner.meta
            fields.update(tier=m.tier, action_hash=m.action_hash,
                          object=m.object.model_dump() if m.object else None)
            if st.type in ("approval", "rejection"):
                st_title = f"{st.type} of {owner.id} ({m.tier})"
                data["within_sla"] = _within_sla(m, at)
                st = Step(st.minute, st.type, st.actor, st_title, st.key, st.after, st.data)
        rec = store.record(st.type, actor=st.actor, title=st.title,
                           body=data.get("justification") or data.get("reason") or "",
                           action=st.action, previous_step=prev.id if prev else None,
                           data=data, **fields)
        written[st.key] = rec
    return written


def _proposal_of(written: dict[str, Record], st: Step) -> Record | None:
    tag = st.key.split(".", 1)[0]
    return written.get(f"{tag}.p")


def _within_sla(proposal: Any, at: datetime) -> bool | None:
    from aiops.approvals.tiers import Governance

    gov = Governance()
    sla = gov.emergency_sla if proposal.data.get("emergency") else gov.policy(
        proposal.tier or "medium").sla
    if sla is None:
        return None
    proposed = datetime.fromisoformat(proposal.data["occurred_at"].replace("Z", "+00:00"))
    return at <= proposed + sla


def create_demo_store(directory: str | Path, end: datetime | None = None) -> PhrStore:
    """DIR as a fresh git repository with the demo history in DIR/history/prompts.

    Refuses a non-empty DIR that is not an earlier demo history (it has no
    marker file), so it can never replace someone's real audit trail.
    """
    import git

    root = Path(directory).expanduser().absolute()
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise SystemExit(f"{root} exists and is not a demo history; choose another "
                             "directory")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    repo = git.Repo.init(root)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "aiops demo")
        cfg.set_value("user", "email", "demo@localhost")
    (root / MARKER).write_text("a demo PHR history written by `python -m aiops.kpis.demo`; "
                               "safe to delete\n")
    repo.index.add([MARKER])
    repo.index.commit("demo history")
    store = PhrStore(root / "history" / "prompts")
    write_demo_history(store, end)
    return store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aiops.kpis.demo",
                                 description="Write the demo PHR history into DIR.")
    ap.add_argument("directory")
    ap.add_argument("--end", help="end of the history, ISO time (default: now)")
    args = ap.parse_args(argv)
    end = datetime.fromisoformat(args.end) if args.end else None
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    store = create_demo_store(args.directory, end)
    print(store.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
