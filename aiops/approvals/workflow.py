"""The approval gate: propose, approve, reject, expire and authorize changes.

A change's state is never stored apart from the audit trail: it is folded from
its PHRs (the proposal, then every record whose `previous_step` chain leads back
to it), so the trail and the state cannot disagree. The gate fails closed:
every refusal raises `ApprovalRefused` and is itself recorded.

States: proposed -> approved | rejected | expired -> executing -> executed ->
validated | failed -> rolled-back. Trivial changes need no approver (they are
approved by being proposed, and logged); low ones one approver, who may be the
proposer; medium and critical ones approvers other than the proposer, two
distinct ones for critical, one of them holding the security role (defaults in
aiops/approvals/tiers.py). An approval is bound to the Action's hash and
expires; an emergency proposal has the short emergency SLA and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from aiops.approvals.phr import Actor, PhrStore, Record
from aiops.approvals.tiers import Governance
from aiops.diagnose.finding import Action
from aiops.errors import AiopsError, ParameterError

STATES = ("proposed", "approved", "rejected", "expired", "executing", "executed",
          "validated", "failed", "rolled-back")
DECIDED = ("rejected", "expired")
# the record types a change is folded from, in the order they can happen
STEP_TYPES = ("proposal", "approval", "rejection", "expiry", "execution", "validation",
              "rollback", "refusal")


class ApprovalRefused(AiopsError):
    """The gate said no (the refusal is recorded before this is raised)."""

    exit_code = 4


@dataclass
class Change:
    """One proposed Action and everything that happened to it since."""

    proposal: Record
    steps: list[Record] = field(default_factory=list)  # later records, in chain order

    @property
    def id(self) -> str:
        return self.proposal.id

    @property
    def tier(self) -> str:
        return self.proposal.meta.tier or "medium"

    @property
    def action_hash(self) -> str:
        return self.proposal.meta.action_hash or ""

    @property
    def action(self) -> dict[str, Any]:
        """The proposed Action as recorded (secrets redacted: compare by hash)."""
        return dict(self.proposal.meta.data.get("action") or {})

    @property
    def proposer(self) -> Actor:
        return self.proposal.meta.actor

    @property
    def emergency(self) -> bool:
        return bool(self.proposal.meta.data.get("emergency"))

    @property
    def proposed_at(self) -> datetime:
        return self.proposal.meta.created_at

    def of(self, *types: str) -> list[Record]:
        return [r for r in self.steps if r.meta.type in types]

    @property
    def approvals(self) -> list[Record]:
        """Approvals of this exact Action, one per distinct approver (the first)."""
        seen: set[str] = set()
        out = []
        for r in self.of("approval"):
            who = r.meta.actor.email.lower()
            if r.meta.action_hash == self.action_hash and who not in seen:
                seen.add(who)
                out.append(r)
        return out

    def state(self, governance: Governance, now: datetime | None = None) -> str:
        """The state folded from the records (expiry is also read off the clock)."""
        last = {r.meta.type: r for r in self.steps}
        if "rollback" in last:
            return "rolled-back"
        if "validation" in last:
            ok = last["validation"].meta.data.get("passed")
            return "validated" if ok else "failed"
        if "execution" in last:
            phase = last["execution"].meta.data.get("phase")
            return {"started": "executing", "failed": "failed"}.get(phase, "executed")
        if "rejection" in last:
            return "rejected"
        if "expiry" in last:
            return "expired"
        if not self.missing(governance):
            return "approved"
        if self.expires_at(governance) <= (now or datetime.now(UTC)):
            return "expired"
        return "proposed"

    def missing(self, governance: Governance) -> list[str]:
        """What the tier still needs before this may run (empty: approved)."""
        policy = governance.policy(self.tier)
        approvals = self.approvals
        out = []
        if len(approvals) < policy.approvals:
            out.append(f"{policy.approvals - len(approvals)} more approval(s)")
        for role in policy.roles:
            holders = [a for a in approvals
                       if (ap := governance.approver(a.meta.actor.email)) and role in ap.roles]
            if not holders:
                out.append(f"an approver with the {role} role")
        return out

    def sla_deadline(self, governance: Governance) -> datetime | None:
        sla = governance.emergency_sla if self.emergency else governance.policy(self.tier).sla
        return None if sla is None else self.proposed_at + sla

    def expires_at(self, governance: Governance) -> datetime:
        """When the proposal, unapproved, lapses (never for a tier without expiry)."""
        ttl = governance.policy(self.tier).expires
        return datetime.max.replace(tzinfo=UTC) if ttl is None else self.proposed_at + ttl

    def approval_valid_until(self, governance: Governance) -> datetime | None:
        """Approvals expire: the earliest one counted lapses `expires` after it."""
        ttl = governance.policy(self.tier).expires
        approvals = self.approvals
        if not approvals or ttl is None:
            return None
        return min(a.meta.created_at for a in approvals) + ttl

    def summary(self, governance: Governance, now: datetime | None = None) -> dict[str, Any]:
        t = self.action.get("target") or {}
        deadline = self.sla_deadline(governance)
        return {"id": self.id, "state": self.state(governance, now), "tier": self.tier,
                "emergency": self.emergency,
                "object": f"{t.get('kind', '')}/{t.get('namespace', '')}/{t.get('name', '')}",
                "title": self.proposal.meta.title, "proposer": self.proposer.email,
                "approvals": [a.meta.actor.email for a in self.approvals],
                "missing": self.missing(governance),
                "proposed_at": self.proposed_at.isoformat(),
                "sla_deadline": deadline.isoformat() if deadline else None}


# -- reading -------------------------------------------------------------------------

def changes(store: PhrStore) -> dict[str, Change]:
    """Every change in the store, by proposal id, with its later steps attached."""
    records = [r for t in STEP_TYPES for r in store.records(type=t)]
    records.sort(key=lambda r: r.meta.seq)
    out: dict[str, Change] = {}
    owner: dict[str, str] = {}  # record id -> the proposal it belongs to
    for r in records:
        if r.meta.type == "proposal":
            out[r.id] = Change(r)
            owner[r.id] = r.id
            continue
        prev = r.meta.links.previous_step
        root = owner.get(prev or "")
        if root:
            owner[r.id] = root
            out[root].steps.append(r)
    return out


def change(store: PhrStore, proposal_id: str) -> Change:
    found = changes(store)
    hits = [c for cid, c in found.items() if cid.startswith(proposal_id.upper())]
    if len(hits) != 1:
        what = "no" if not hits else "more than one"
        raise ParameterError(f"{what} proposal with id {proposal_id} in {store.root}",
                             "see `aiops pending` for the open ones")
    return hits[0]


def pending(store: PhrStore, governance: Governance,
            now: datetime | None = None) -> list[Change]:
    """Proposals still waiting for a decision, oldest first."""
    return [c for c in changes(store).values() if c.state(governance, now) == "proposed"]


# -- deciding ------------------------------------------------------------------------

def propose(store: PhrStore, action: Action, *, actor: Actor, reason: str,
            emergency: bool = False, source: str | None = None,
            pre_metrics: dict[str, Any] | None = None,
            previous_step: str | None = None) -> Change:
    """Record a proposal of `action` (its tier decides who must approve it)."""
    data: dict[str, Any] = {"reason": reason, "emergency": emergency}
    if source:
        data["source"] = source
    t = action.target
    rec = store.record("proposal", actor=actor, action=action,
                       title=f"propose {action.kind} of {t.get('kind')}/{t.get('name')}"
                             f" ({action.tier}{', emergency' if emergency else ''})",
                       body=f"{action.description}\n\nReason: {reason}",
                       pre_metrics=pre_metrics or {}, data=data,
                       previous_step=previous_step)
    return Change(rec)


def approve(store: PhrStore, proposal_id: str, *, approver: Actor, justification: str,
            governance: Governance, action: Action | None = None,
            now: datetime | None = None) -> Change:
    """Approve a proposal, or record and raise why not."""
    return _decide(store, proposal_id, "approval", approver, justification, governance,
                   action, now)


def reject(store: PhrStore, proposal_id: str, *, approver: Actor, justification: str,
           governance: Governance, now: datetime | None = None) -> Change:
    return _decide(store, proposal_id, "rejection", approver, justification, governance,
                   None, now)


def _decide(store: PhrStore, proposal_id: str, kind: str, who: Actor, justification: str,
            governance: Governance, action: Action | None, now: datetime | None) -> Change:
    now = now or datetime.now(UTC)
    c = change(store, proposal_id)
    verb = "approve" if kind == "approval" else "reject"
    if not justification.strip():
        raise ParameterError(f"a justification is needed to {verb} {c.id}",
                             "say why, in one sentence (--justification)")
    state = c.state(governance, now)
    if state == "expired" and not c.of("expiry"):
        _record_expiry(store, c, now)
    approver = governance.approver(who.email)
    reason = None
    if state != "proposed":
        reason = f"proposal {c.id} is {state}, not awaiting a decision"
    elif approver is None:
        reason = f"{who.email} is not an approver in the governance file"
    elif (kind == "approval" and who.email.lower() == c.proposer.email.lower()
          and not governance.policy(c.tier).self_approval):
        reason = f"the proposer cannot approve their own {c.tier} change"
    elif kind == "approval" and any(a.meta.actor.email.lower() == who.email.lower()
                                    for a in c.approvals):
        reason = f"{who.email} already approved {c.id}; a second approver must be distinct"
    elif action is not None and action.hash() != c.action_hash:
        reason = (f"the Action shown ({action.hash()[:19]}...) is not the one proposed "
                  f"({c.action_hash[:19]}...): a changed Action needs a new proposal")
    if reason:
        refuse(store, c, who, f"{verb} refused: {reason}", {"attempt": kind})
    rec = store.record(kind, actor=who, title=f"{kind} of {c.id} ({c.tier})",
                       body=justification, tier=c.tier, action_hash=c.action_hash,
                       object=_object(c), previous_step=c.steps[-1].id if c.steps else c.id,
                       data={"justification": justification,
                             "roles": approver.roles if approver else [],
                             "within_sla": _within_sla(c, governance, now)})
    c.steps.append(rec)
    return c


def authorize(store: PhrStore, proposal_id: str, action: Action, *, actor: Actor,
              governance: Governance, now: datetime | None = None) -> Change:
    """The executor's gate: the exact approved Action, approvals complete and still
    valid, not run before. Anything else is refused, recorded and raised."""
    now = now or datetime.now(UTC)
    c = change(store, proposal_id)
    state = c.state(governance, now)
    valid_until = c.approval_valid_until(governance)
    reason = None
    if action.hash() != c.action_hash:
        reason = "the Action differs from the approved one (hash mismatch)"
    elif state != "approved":
        missing = c.missing(governance)
        reason = f"proposal {c.id} is {state}" + (
            f" (missing {', '.join(missing)})" if state == "proposed" and missing else "")
    elif valid_until is not None and valid_until <= now:
        reason = f"the approval expired at {valid_until.isoformat()}"
    if reason:
        refuse(store, c, actor, f"execution refused: {reason}", {"attempt": "execution"})
    return c


def refuse(store: PhrStore, c: Change, actor: Actor, reason: str,
           data: dict[str, Any]) -> NoReturn:
    """Record a refusal of `c`, then raise it: the gate fails closed and says why."""
    store.record("refusal", actor=actor, title=reason[:120], body=reason, tier=c.tier,
                 action_hash=c.action_hash, object=_object(c),
                 previous_step=c.steps[-1].id if c.steps else c.id,
                 data={**data, "reason": reason})
    raise ApprovalRefused(reason, "nothing was changed; the refusal is in the audit trail")


def _record_expiry(store: PhrStore, c: Change, now: datetime) -> None:
    rec = store.record("expiry", actor=Actor(name="aiops", email="aiops@localhost"),
                       title=f"proposal {c.id} expired unapproved", tier=c.tier,
                       action_hash=c.action_hash, object=_object(c),
                       previous_step=c.steps[-1].id if c.steps else c.id,
                       data={"expired_at": now.isoformat()})
    c.steps.append(rec)


def expire_overdue(store: PhrStore, governance: Governance,
                   now: datetime | None = None) -> list[Change]:
    """Record an expiry for every proposal past its expiry (run by the scheduler)."""
    now = now or datetime.now(UTC)
    out = []
    for c in changes(store).values():
        if c.state(governance, now) == "expired" and not c.of("expiry"):
            _record_expiry(store, c, now)
            out.append(c)
    return out


def _within_sla(c: Change, governance: Governance, now: datetime) -> bool | None:
    deadline = c.sla_deadline(governance)
    return None if deadline is None else now <= deadline


def _object(c: Change) -> dict[str, str] | None:
    t = c.action.get("target") or {}
    if not t.get("kind") or not t.get("name"):
        return None
    return {"apiVersion": t.get("apiVersion", ""), "kind": t["kind"],
            "namespace": t.get("namespace", ""), "name": t["name"]}


# -- who is deciding -----------------------------------------------------------------

def identity(name: str | None = None, email: str | None = None,
             repo: str | Path | None = None) -> Actor:
    """The person acting: explicit parameters, else git config (user.name/email)."""
    if not (name and email):
        import git

        try:  # the repository's config, which includes the user's global one
            reader = git.Repo(repo or ".", search_parent_directories=True).config_reader()
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            reader = git.GitConfigParser(
                [str(Path.home() / ".gitconfig")], read_only=True)
        name = name or _git_value(reader, "name")
        email = email or _git_value(reader, "email")
    if not name or not email:
        raise ParameterError("who is deciding is unknown: no name/email given and none in "
                             "git config", "pass --name and --email (or set git config "
                             "user.name and user.email)")
    return Actor(name=name, email=email)


def _git_value(reader: Any, key: str) -> str | None:
    try:
        value = reader.get_value("user", key)
    except Exception:
        return None
    return str(value) if value else None


def frame(changes_: Iterable[Change], governance: Governance,
          now: datetime | None = None) -> Any:
    """Changes as a DataFrame for notebooks (one row per change)."""
    import pandas as pd

    return pd.DataFrame([c.summary(governance, now) for c in changes_])


def sla_remaining(c: Change, governance: Governance,
                  now: datetime | None = None) -> timedelta | None:
    deadline = c.sla_deadline(governance)
    return None if deadline is None else deadline - (now or datetime.now(UTC))
