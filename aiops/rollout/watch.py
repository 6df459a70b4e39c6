"""Follow a rolling update until it completes, times out, or a pause or undo is
recommended; every decision is a PHR and every change goes through the gate.

Each poll reads only what the comparison needs, from one namespace: the
Deployment, ReplicaSets, Pods, Events and PodMetrics, plus the logs of the new
pods (the old pods' logs once each: they do not change the verdict later). A
pause or undo is `workflow.propose`d (an open proposal of the same Action is
reused, so repeated runs never pile up proposals). Nothing is ever approved
here: with `execute`, the watch waits for a person's approval in the store and
then runs the Action through `executor.execute` (the gate, dry run, change,
validation); without, it prints how to approve and stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiops.approvals import executor, workflow
from aiops.approvals.kube_writer import KubeWriter
from aiops.approvals.phr import Actor, PhrStore
from aiops.approvals.tiers import Governance
from aiops.diagnose.finding import Action
from aiops.errors import LiveClusterError, ParameterError
from aiops.model import ClusterState, LogKey
from aiops.rollout.compare import Comparison, Side, compare, find_rollout, pods_of
from aiops.rollout.decide import Decision, Thresholds, decide
from aiops.sources.live import KubeconfigError

ROLLOUT_KINDS = ("Deployment", "ReplicaSet", "Pod", "Event", "PodMetrics")
LOG_TAIL_LINES = 500

# exit codes of `aiops rollout watch`
COMPLETED, ACTED, BAD_INPUT, UNFINISHED, REFUSED = 0, 1, 2, 3, 4
Say = Callable[[str], None]


# -- reading the cluster -------------------------------------------------------------

class LivePoller:
    """One light, read-only load of a live cluster per call (see the module docstring)."""

    one_shot = False

    def __init__(self, context: str | None, namespace: str, name: str, *,
                 kubeconfig: str | None = None, timeout: float = 15.0,
                 tail_lines: int = LOG_TAIL_LINES) -> None:
        self.context, self.namespace, self.name = context, namespace, name
        self.kubeconfig, self.timeout, self.tail_lines = kubeconfig, timeout, tail_lines
        self._old_logs: dict[tuple[bool, LogKey], str] = {}

    def __call__(self) -> ClusterState:
        from aiops.sources.live import LiveSession

        with LiveSession(self.context, kubeconfig=self.kubeconfig,
                         timeout=self.timeout) as session:
            state = session.load(ROLLOUT_KINDS, [self.namespace])
            self._logs(session, state)
        return state

    def _logs(self, session: Any, state: ClusterState) -> None:
        try:
            r = find_rollout(state, self.namespace, self.name)
        except ParameterError:  # no Deployment: compare() says so, naming those there are
            return
        new = {p["metadata"]["name"] for p in (pods_of(state, r.new_rs) if r.new_rs else [])}
        old = {p["metadata"]["name"] for rs in r.old_rs for p in pods_of(state, rs)}
        for key, previous in session.log_targets(state):
            if key[1] in new:
                text = session.log(state, key, previous, self.tail_lines)
            elif key[1] in old:
                if (previous, key) not in self._old_logs:
                    self._old_logs[(previous, key)] = session.log(state, key, previous,
                                                                  self.tail_lines)
                text = self._old_logs[(previous, key)]
            else:
                continue
            (state.previous_logs if previous else state.logs)[key] = text

    def writer(self) -> KubeWriter:
        from aiops.sources.live import connect

        client, _server, _ctx = connect(self.context, kubeconfig=self.kubeconfig,
                                        timeout=self.timeout)
        return KubeWriter(client, timeout=self.timeout)


class SnapshotPoller:
    """A snapshot (or the demo) is one moment: one comparison, no execution."""

    one_shot = True

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def __call__(self) -> ClusterState:
        return self.state

    def writer(self) -> KubeWriter:
        raise ParameterError(f"--execute changes a live cluster; {self.state.source} is a "
                             "snapshot", "watch with --source kube[:context] to execute")


# -- the loop ------------------------------------------------------------------------

@dataclass
class Sample:
    """One poll, for the readiness/restarts chart."""

    at: datetime
    verdict: str
    complete: bool
    new: dict[str, Any]
    old: dict[str, Any]


@dataclass
class WatchResult:
    outcome: str  # completed | recommended | paused | undone | awaiting-approval | rejected
    #               | expired | refused | failed | rolled-back | in-progress | timeout
    exit_code: int
    decision: Decision | None = None
    samples: list[Sample] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)  # PHR ids
    proposal: str | None = None
    execution: str | None = None  # the executor's final state


def watch(poll: Callable[[], ClusterState], namespace: str, name: str, *, store: PhrStore,
          actor: Actor, governance: Governance, every: float = 10.0, timeout: float = 600.0,
          execute: bool = False, writer: Callable[[], KubeWriter] | None = None,
          thresholds: Thresholds | None = None, one_shot: bool = False,
          say: Say = print, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> WatchResult:
    """Poll, compare, decide; see the module docstring. `sleep` is where the
    controllers act between polls (tests play them there)."""
    deadline = clock() + timeout
    result = WatchResult("in-progress", UNFINISHED)
    baseline: Side | None = None
    last: tuple[str, bool] | None = None
    while True:
        try:
            state = poll()
        except KubeconfigError:
            raise
        except LiveClusterError as exc:  # a blip mid-watch: say so, try the next tick
            if not result.samples or clock() >= deadline:
                raise
            say(f"poll failed: {exc.message}; retrying in {every:g}s")
            sleep(min(every, max(deadline - clock(), 0.0)))
            continue
        cmp = compare(state, namespace, name, baseline)
        if baseline is None and cmp.old.pods and cmp.old.label == "old":
            baseline = cmp.old
        d = decide(cmp, thresholds)
        result.decision = d
        result.samples.append(Sample(cmp.at, d.verdict, cmp.rollout.complete,
                                     cmp.new.numbers(), cmp.old.numbers()))
        say(_line(cmp, d))
        rec_id = None
        if last != (d.verdict, d.completed):
            rec_id = recommend(store, d, actor, source=state.source)
            result.recommendations.append(rec_id)
            last = (d.verdict, d.completed)
        if d.verdict in ("pause", "undo"):
            return _act(result, store, d, actor, governance, rec_id, state.source,
                        execute=execute, writer=writer, every=every, deadline=deadline,
                        say=say, sleep=sleep, clock=clock)
        if d.completed:
            result.outcome, result.exit_code = "completed", COMPLETED
            say(f"rollout of {namespace}/{name} complete, new pods healthy")
            return result
        if one_shot:
            return result
        remaining = deadline - clock()
        if remaining <= 0:
            result.outcome = "timeout"
            say(f"timed out after {timeout:g}s; the rollout is still in progress")
            return result
        sleep(min(every, remaining))


def recommend(store: PhrStore, d: Decision, actor: Actor, source: str | None = None) -> str:
    """Record a decision as a `recommendation` PHR; returns its id."""
    r = d.comparison.rollout
    body = "\n".join([d.summary, "", "Evidence:", *(f"- {e.text} ({e.ref})" for e in d.evidence),
                      *(["", "Notes:", *(f"- {n}" for n in d.comparison.notes)]
                        if d.comparison.notes else [])])
    fields: dict[str, Any] = {
        "pre_metrics": {"new": d.comparison.new.numbers(), "old": d.comparison.old.numbers()},
        "data": {"rollout_guard": {k: v for k, v in d.to_dict().items() if k != "action"},
                 "source": source, "automated": True}}
    if d.action is None:
        fields["object"] = {"apiVersion": "apps/v1", "kind": "Deployment",
                            "namespace": r.namespace, "name": r.name}
    done = " (complete)" if d.completed else ""
    rec = store.record("recommendation", actor=actor, action=d.action,
                       title=f"rollout {d.verdict}{done}: Deployment/{r.namespace}/{r.name} "
                             f"revision {r.revision}", body=body, **fields)
    return rec.id


def latest_change(store: PhrStore, action: Action) -> workflow.Change | None:
    """The newest proposal of exactly this Action, whatever became of it."""
    found = [c for c in workflow.changes(store).values() if c.action_hash == action.hash()]
    return max(found, key=lambda c: c.proposal.meta.seq) if found else None


def _act(result: WatchResult, store: PhrStore, d: Decision, actor: Actor,
         governance: Governance, rec_id: str | None, source: str, *, execute: bool,
         writer: Callable[[], KubeWriter] | None, every: float, deadline: float, say: Say,
         sleep: Callable[[float], None], clock: Callable[[], float]) -> WatchResult:
    """Propose the pause/undo (or find it proposed), then wait for a person's
    approval and execute it through the gate when asked to."""
    result.exit_code = ACTED
    if d.action is None:
        result.outcome = "paused"
        say(f"{d.verdict} recommended; the rollout is already paused, nothing to propose")
        return result
    action = d.action
    c = latest_change(store, action)
    state = c.state(governance) if c is not None else None
    if c is not None and state == "rejected":  # a person said no to this very change
        result.proposal, result.outcome, result.exit_code = c.id, "rejected", REFUSED
        say(f"{action.description}: this Action was rejected ({c.id}); not proposing it "
            "again")
        return result
    if c is None or state not in ("proposed", "approved"):
        c = workflow.propose(store, action, actor=actor, reason=d.summary, source=source,
                             pre_metrics={"new": d.comparison.new.numbers(),
                                          "old": d.comparison.old.numbers()},
                             previous_step=rec_id)
        say(f"proposed {c.id} ({action.tier}): {action.description}")
    else:
        say(f"already proposed as {c.id} ({state})")
    result.proposal = c.id
    say(f"approve it with: aiops approve {c.id} --justification '...'  "
        f"(then run this watch again with --execute)" if not execute else
        f"waiting for an approval of {c.id} (aiops approve {c.id} --justification '...')")
    if not execute:
        result.outcome = "recommended"
        return result
    while True:
        c = workflow.change(store, c.id)
        state = c.state(governance)
        if state == "approved":
            break
        if state in ("rejected", "expired"):
            result.outcome, result.exit_code = state, REFUSED
            say(f"{c.id} was {state}: nothing changed")
            return result
        if state != "proposed":
            result.outcome = result.execution = state
            say(f"{c.id} is already {state}")
            return result
        remaining = deadline - clock()
        if remaining <= 0:
            result.outcome = "awaiting-approval"
            say(f"no approval of {c.id} before the timeout: nothing changed")
            return result
        sleep(min(every, remaining))
    if writer is None:
        raise RuntimeError("execute needs a writer")
    w = writer()
    try:
        run = executor.execute(store, c.id, action, writer=w, governance=governance,
                               actor=actor, timeout=max(deadline - clock(), every),
                               poll=min(every, 2.0))
    except workflow.ApprovalRefused as exc:
        result.outcome, result.exit_code = "refused", REFUSED
        say(f"refused by the gate: {exc.message}")
        return result
    except executor.ExecutionFailed as exc:
        result.outcome = result.execution = "failed"
        say(f"execution failed: {exc.message}")
        return result
    finally:
        w.client.close()
    result.execution = run.state
    result.outcome = {"validated": "undone" if d.verdict == "undo" else "paused"}.get(
        run.state, run.state)
    say(f"{c.id}: {run.state}")
    return result


def _line(cmp: Comparison, d: Decision) -> str:
    r, n, o = cmp.rollout, cmp.new, cmp.old
    return (f"{cmp.at:%H:%M:%S} {r.namespace}/{r.name} rev {r.revision}: updated "
            f"{r.updated}/{r.desired}, new {n.ready}/{n.count} ready {n.restarts} restarts "
            f"{n.error_lines} errors | {o.label} {o.ready}/{o.count} ready {o.restarts} "
            f"restarts {o.error_lines} errors -> {d.verdict}")
