"""The rollout guard against the Kubernetes API replay server, through the official
client: what each poll reads, the recommendation and proposal PHRs, nothing
mutating without an approval, and after one the exact requests (dry run, then
the change); the CLI through `aiops.cli.main`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from aiops.approvals import PhrStore
from aiops.approvals.phr import Actor
from aiops.approvals.tiers import Approver, Governance
from aiops.approvals.workflow import approve, change, changes, reject
from aiops.cli import main
from aiops.rollout.watch import LivePoller, watch
from aiops.sources.demo import DATA_DIR
from tests.support.kube_replay import JSON_PATCH, KubeReplay, rollout_complete

NS, NAME = "todo", "todo-frontend"
PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"
NEW_POD = "todo-frontend-5b7fbf96c7-j7k47"
OLD_PODS = ("todo-frontend-6fb6c94f6f-s2l6t", "todo-frontend-6fb6c94f6f-vwt5x")
PAT = Actor(name="Pat Proposer", email="pat@example.com")
ALICE = Actor(name="Alice Approver", email="alice@example.com")
GOV = Governance(approvers=[Approver(name=ALICE.name, email=ALICE.email),
                            Approver(name=PAT.name, email=PAT.email)])
UNDO = [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
         "value": "ghcr.io/todo-chatbot/frontend:1.4.0"}]
PAUSE = [{"op": "add", "path": "/spec/paused", "value": True}]


@pytest.fixture(autouse=True)
def _env(monkeypatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("AIOPS_GOVERNANCE", raising=False)
    monkeypatch.delenv("AIOPS_HISTORY", raising=False)


@pytest.fixture
def srv(tmp_path: Path, monkeypatch) -> Iterator[KubeReplay]:
    with KubeReplay(DATA_DIR) as server:
        monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        yield server


@pytest.fixture
def store(tmp_path: Path) -> PhrStore:
    repo = git.Repo.init(tmp_path / "repo")
    with repo.config_writer() as cfg:  # who runs the watch: the proposer
        cfg.set_value("user", "name", PAT.name)
        cfg.set_value("user", "email", PAT.email)
    repo.index.commit("initial")
    return PhrStore(tmp_path / "repo" / "history" / "prompts", lock_timeout=5.0)


@pytest.fixture
def gov_file(tmp_path: Path) -> Path:
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump({"approvers": [
        {"name": ALICE.name, "email": ALICE.email}, {"name": PAT.name, "email": PAT.email}]}))
    return path


def cli(store: PhrStore, gov_file: Path, *extra: str, name: str = NAME) -> int:
    return main(["rollout", "watch", f"deploy/{name}", "--source", "kube:replay",
                 "--namespace", NS, "--every", "0.2s", "--store", str(store.root),
                 "--governance", str(gov_file), *extra])


def sent(srv: KubeReplay) -> list[tuple[str, str, dict[str, str], str | None, Any]]:
    return [(r.method, r.path, dict(r.query), r.content_type, r.body) for r in srv.mutations()]


def types(store: PhrStore) -> list[str]:
    return [r.meta.type for r in store.records()]


# -- what the controllers do, played on the replay's state ---------------------------

def pod(srv: KubeReplay, name: str) -> dict[str, Any]:
    return srv.state.get("Pod", NS, name)


def new_pod_running(srv: KubeReplay, restarts: int = 0) -> None:
    """The new revision's image exists after all: its pod runs (and maybe restarts)."""
    p = pod(srv, NEW_POD)
    cs = p["status"]["containerStatuses"][0]
    cs.update(ready=True, started=True, restartCount=restarts,
              state={"running": {"startedAt": "2026-11-23T04:40:00Z"}},
              lastState={"terminated": {"reason": "Error", "exitCode": 1}} if restarts else {})
    for c in p["status"]["conditions"]:
        if c["type"] in ("Ready", "ContainersReady"):
            c.update(status="True")
            c.pop("reason", None)
    dep = srv.state.get("Deployment", NS, NAME)
    dep["status"]["conditions"] = [c for c in dep["status"]["conditions"]
                                   if c["type"] != "Progressing"]
    dep["status"]["readyReplicas"] = dep["status"]["availableReplicas"] = 3


def finish_rollout(srv: KubeReplay) -> None:
    """The controller scales the new ReplicaSet up and the old one down."""
    import copy

    second = copy.deepcopy(pod(srv, NEW_POD))
    second["metadata"]["name"] = NEW_POD[:-5] + "zz9zz"
    second["metadata"]["uid"] = "second-new-pod"
    pods = srv.state.objects["Pod"]
    pods[:] = [p for p in pods if p["metadata"]["name"] not in OLD_PODS]
    srv.state.add([second])
    rollout_complete(srv.state.get("Deployment", NS, NAME))


# -- the loop, with the controllers acting between polls -----------------------------

def test_healthy_rollout_is_followed_to_completion_and_nothing_is_written(srv, store):
    new_pod_running(srv)
    polls: list[int] = []

    def controllers_act(_seconds: float) -> None:
        polls.append(len(srv.requests))
        finish_rollout(srv)

    lines: list[str] = []
    poller = LivePoller("replay", NS, NAME)
    result = watch(poller, NS, NAME, store=store, actor=PAT, governance=GOV, every=0.01,
                   timeout=30, say=lines.append, sleep=controllers_act)
    assert (result.outcome, result.exit_code) == ("completed", 0)
    assert [(s.verdict, s.complete) for s in result.samples] == [("continue", False),
                                                                ("continue", True)]
    assert (result.samples[0].new["ready"], result.samples[0].old["ready"]) == (1, 2)
    assert result.samples[1].old["pods"] == 2, "the old pods' baseline stands in"
    assert srv.mutations() == []
    assert types(store) == ["recommendation", "recommendation"]
    last = store.records()[-1]
    assert last.meta.title.startswith("rollout continue (complete)")
    assert last.meta.pre_metrics["new"]["ready"] == 2
    # each poll reads only its namespace, and logs only of this Deployment's pods;
    # the old pods' logs once, the new pods' logs on every poll
    paths = [r.path for r in srv.requests]
    assert all(p in ("/version", "/api", "/apis") or p.startswith((
        f"/api/v1/namespaces/{NS}/", f"/apis/apps/v1/namespaces/{NS}/",
        f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/")) for p in paths)
    assert {p.split("/")[-1] for p in paths if "/namespaces/" in p and not p.endswith("/log")} \
        == {"deployments", "replicasets", "pods", "events"}  # pods: also PodMetrics
    logs = [p.split("/")[6] for p in paths if p.endswith("/log")]
    assert sorted(set(logs)) == sorted([*OLD_PODS, NEW_POD, NEW_POD[:-5] + "zz9zz"])
    assert all(logs.count(p) == 1 for p in OLD_PODS)
    assert logs.count(NEW_POD) == 2
    assert polls and lines[-1].startswith("rollout of todo/todo-frontend complete")


def test_an_api_blip_mid_watch_is_retried_on_the_next_tick(srv, store):
    new_pod_running(srv)
    down = {"now": False}
    srv.fail_when = lambda _req: down["now"]
    ticks: list[float] = []

    def between_polls(_seconds: float) -> None:
        ticks.append(_seconds)
        if len(ticks) == 1:
            down["now"] = True  # the API goes away after the first poll
        else:
            down["now"] = False
            finish_rollout(srv)

    lines: list[str] = []
    result = watch(LivePoller("replay", NS, NAME), NS, NAME, store=store, actor=PAT,
                   governance=GOV, every=0.01, timeout=30, say=lines.append,
                   sleep=between_polls)
    assert (result.outcome, result.exit_code) == ("completed", 0)
    assert len(result.samples) == 2 and len(ticks) == 2
    assert any(line.startswith("poll failed:") and "not healthy" in line for line in lines)
    assert srv.mutations() == []


def test_the_stuck_rollout_is_an_undo_proposal_and_nothing_is_sent(srv, store):
    result = watch(LivePoller("replay", NS, NAME), NS, NAME, store=store, actor=PAT,
                   governance=GOV, every=0.01, timeout=5, say=lambda _l: None)
    assert (result.outcome, result.exit_code) == ("recommended", 1)
    assert srv.mutations() == []
    assert types(store) == ["recommendation", "proposal"]
    c = change(store, result.proposal)
    assert c.state(GOV) == "proposed" and c.tier == "low"
    assert c.action["kind"] == "rollout-undo" and c.action["patch"] == UNDO
    assert c.proposal.meta.links.previous_step == result.recommendations[0]
    assert c.proposal.meta.pre_metrics["old"]["ready"] == 2


# -- the CLI -------------------------------------------------------------------------

def test_cli_completed_rollout_exits_0_without_writing(srv, store, gov_file, capsys):
    assert cli(store, gov_file, "--timeout", "10s", name="todo-redis") == 0
    assert srv.mutations() == []
    assert "complete" in capsys.readouterr().out
    assert types(store) == ["recommendation"]


def test_cli_degrading_rollout_proposes_a_pause_and_sends_nothing(srv, store, gov_file,
                                                                  capsys):
    new_pod_running(srv, restarts=2)
    assert cli(store, gov_file, "--timeout", "10s") == 1
    assert srv.mutations() == []
    assert types(store) == ["recommendation", "proposal"]
    (c,) = changes(store).values()
    assert c.action["patch"] == PAUSE and c.action["inverse"] == [
        {"op": "remove", "path": "/spec/paused"}]
    rec = store.records(type="recommendation")[0]
    assert rec.meta.data["rollout_guard"]["verdict"] == "pause"
    assert rec.meta.pre_metrics["new"]["restarts_per_pod"] == 2
    out = capsys.readouterr().out
    assert f"aiops approve {c.id}" in out and "restarts per pod" in out
    # run again: the same open proposal is reused, not proposed twice
    assert cli(store, gov_file, "--timeout", "10s") == 1
    assert len(changes(store)) == 1 and srv.mutations() == []


def test_cli_execute_waits_for_an_approval_and_without_one_sends_nothing(srv, store,
                                                                        gov_file):
    assert cli(store, gov_file, "--timeout", "1s", "--execute") == 1
    assert srv.mutations() == []
    (c,) = changes(store).values()
    assert c.state(GOV) == "proposed" and not c.of("execution")


def test_cli_execute_after_approval_undoes_with_exact_requests(srv, store, gov_file):
    srv.on_write("Deployment", rollout_complete)
    assert cli(store, gov_file, "--timeout", "5s") == 1
    (c,) = changes(store).values()
    approve(store, c.id, approver=ALICE, justification="image 1.4.1 was never pushed",
            governance=GOV)
    assert srv.mutations() == []
    assert cli(store, gov_file, "--timeout", "10s", "--execute") == 1
    assert sent(srv) == [("PATCH", PATH, {"dryRun": "All"}, JSON_PATCH, UNDO),
                         ("PATCH", PATH, {}, JSON_PATCH, UNDO)]
    image = srv.state.get("Deployment", NS, NAME)["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "ghcr.io/todo-chatbot/frontend:1.4.0"
    c = change(store, c.id)
    assert c.state(GOV) == "validated"
    assert [r.meta.type for r in c.steps] == ["approval", "execution", "execution",
                                               "validation"]
    assert c.steps[1].meta.actor.email == PAT.email


def test_cli_execute_after_approval_pauses_with_exact_requests(srv, store, gov_file):
    writes: list[dict[str, Any]] = []

    def controller(obj: dict[str, Any]) -> None:
        writes.append(obj)
        if obj["spec"].get("paused"):  # paused: the controller stops where it is
            obj["status"]["observedGeneration"] = obj["metadata"]["generation"]
        else:  # resumed: the healthy-enough new pods roll out
            rollout_complete(obj)

    srv.on_write("Deployment", controller)
    new_pod_running(srv, restarts=2)
    assert cli(store, gov_file, "--timeout", "5s") == 1
    (c,) = changes(store).values()
    approve(store, c.id, approver=ALICE, justification="restarts on the new revision",
            governance=GOV)
    assert cli(store, gov_file, "--timeout", "1s", "--execute") == 1
    # exactly the dry run and the pause; a paused rollout is validated as paused (it
    # never completes), so the pause stays
    assert sent(srv) == [("PATCH", PATH, {"dryRun": "All"}, JSON_PATCH, PAUSE),
                         ("PATCH", PATH, {}, JSON_PATCH, PAUSE)]
    c = change(store, c.id)
    assert c.state(GOV) == "validated"
    checks = {x["check"]: x["passed"] for x in c.of("validation")[0].meta.data["checks"]}
    assert checks["rollout paused where it stood"] is True
    assert "rollout complete, pods ready" not in checks


def test_cli_rejected_or_expired_approval_is_refused_and_sends_nothing(srv, store, gov_file,
                                                                      tmp_path):
    assert cli(store, gov_file, "--timeout", "5s") == 1
    (c,) = changes(store).values()
    reject(store, c.id, approver=ALICE, justification="we fix forward", governance=GOV)
    assert cli(store, gov_file, "--timeout", "5s", "--execute") == 4
    assert srv.mutations() == []
    assert len(changes(store)) == 1, "a rejected Action is not proposed again"
    # a new proposal whose approval has lapsed: the gate refuses at execution
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump({"tiers": {"low": {"expires": "1s"}}, "approvers": [
        {"name": ALICE.name, "email": ALICE.email}]}))
    new_pod_running(srv, restarts=2)  # now a pause: another Action, another proposal
    assert cli(store, short, "--timeout", "5s") == 1
    pause = next(x for x in changes(store).values() if x.action["patch"] == PAUSE)
    approve(store, pause.id, approver=ALICE, justification="ok",
            governance=Governance(approvers=[Approver(name=ALICE.name, email=ALICE.email)],
                                  tiers={"low": {"expires": "1s"}}))
    import time

    time.sleep(1.2)
    assert cli(store, short, "--timeout", "5s", "--execute") == 4
    assert srv.mutations() == []
    assert "approval expired" in store.records(type="refusal")[-1].meta.title


def test_cli_bad_input_exits_2(store, gov_file):
    assert main(["rollout", "watch", "sts/todo-postgres", "--source", "demo",
                 "--store", str(store.root)]) == 2
    assert main(["rollout", "watch", "deploy/todo-frontend", "--source", "demo",
                 "--store", str(store.root), "--execute"]) == 2
    assert main(["rollout", "watch", "deploy/nope", "--source", "demo",
                 "--store", str(store.root)]) == 2
    assert main(["rollout", "watch", "deploy/todo-frontend", "--every", "soon",
                 "--store", str(store.root)]) == 2


def test_cli_demo_source_recommends_the_undo_offline(store, gov_file, capsys):
    assert main(["rollout", "watch", "deploy/todo-frontend", "--source", "demo",
                 "--store", str(store.root), "--governance", str(gov_file)]) == 1
    out = capsys.readouterr().out
    assert "ImagePullBackOff" in out and "undo" in out
    (c,) = changes(store).values()
    assert c.action["patch"] == UNDO


# -- the notebook --------------------------------------------------------------------

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "investigate" / "rollout.ipynb"


def test_notebook_committed_without_outputs_and_parameterised():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert all(f"{p} =" in params[0].source for p in ("source", "workload", "namespace",
                                                       "store"))
    assert all(not c.get("outputs") and not c.get("execution_count")
               for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_notebook_on_the_demo_records_and_proposes_the_undo(store, tmp_path):
    import nbformat
    import papermill as pm

    from aiops.reports.runner import ensure_kernel

    out = tmp_path / "rollout.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name=ensure_kernel(),
                        parameters={"source": "demo", "workload": "deployment/todo-frontend",
                                    "namespace": "todo", "store": str(store.root)},
                        cwd=str(store.root.parents[1]), progress_bar=False,
                        execution_timeout=300)
    texts = []
    for c in nbformat.read(out, as_version=4).cells:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            texts.append(data.get("text/html", "") + data.get("text/plain", "")
                         + o.get("text", ""))
    text = "\n".join(texts)
    assert "ImagePullBackOff x1" in text and "ready share" in text  # the comparison table
    assert "plotly-graph-div" in text  # the samples chart
    assert "UNDO (confidence 90%)" in text
    assert "ghcr.io/todo-chatbot/frontend:1.4.0" in text  # the Action's patch
    (c,) = changes(store).values()
    assert c.action["patch"] == UNDO and c.proposer.email == PAT.email
    assert c.id in text  # the proposal, with how to approve it
    assert types(store) == ["recommendation", "proposal"]
