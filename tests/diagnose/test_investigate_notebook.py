"""The investigation notebook runs under papermill for a workload, a pod and a
namespace, and shows the findings, the timeline and the proposed Action."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from aiops.reports.runner import ensure_kernel

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "investigate" / "diagnose.ipynb"


def _run(tmp_path: Path, **params) -> str:
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=params, kernel_name=ensure_kernel(),
                        progress_bar=False, execution_timeout=300)
    nb = nbformat.read(out, as_version=4)
    texts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            texts.append(data.get("text/html", "") + data.get("text/plain", "")
                         + o.get("text", ""))
    return "\n".join(texts)


def test_committed_without_outputs_and_parameterised() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_workload_investigation(tmp_path: Path) -> None:
    out = _run(tmp_path, workload="deployment/todo-chatbot", namespace="todo")
    assert "dependency-unreachable" in out and "todo-redis:6379" in out
    assert "plotly-graph-div" in out  # timeline chart
    assert "line 43" in out  # log excerpt around the quoted line
    actions = json.loads(out[out.index("[\n"):out.rindex("]") + 1])
    assert any(a["target"]["kind"] == "Service" and a["inverse"] for a in actions)


@pytest.mark.slow
def test_pod_and_namespace_targets(tmp_path: Path) -> None:
    out = _run(tmp_path, workload="", pod="", namespace="todo")
    assert "oom-killed" in out and "image-not-found" in out
    out = _run(tmp_path, workload="deployment/todo-worker", namespace="todo")
    assert "oom-killed" in out and "memory" in out


@pytest.mark.slow
def test_papermill_proposes_and_approves(tmp_path: Path) -> None:
    """propose=True and decision="approve": the proposal and the approval are in the
    store, bound to the Action the notebook shows; a self-approval would be refused."""
    import yaml

    from aiops.approvals.phr import PhrStore
    from tests.approvals.conftest import new_repo

    repo = new_repo(tmp_path / "repo")
    store = Path(repo.working_tree_dir) / "history" / "prompts"
    gov = tmp_path / "governance.yaml"
    gov.write_text(yaml.safe_dump({"approvers": [
        {"name": "Alice Approver", "email": "alice@example.com"}]}))
    out = _run(tmp_path, workload="deployment/todo-chatbot", namespace="todo", propose=True,
               decision="approve", justification="selector matches the redis pods",
               proposer_name="Pat Proposer", proposer_email="pat@example.com",
               approver_name="Alice Approver", approver_email="alice@example.com",
               store=str(store), governance=str(gov))
    phr = PhrStore(store)
    [proposal] = phr.records(type="proposal")
    [approval] = phr.records(type="approval")
    assert proposal.meta.actor.email == "pat@example.com"
    assert proposal.meta.object.kind == "Service" and proposal.meta.object.name == "todo-redis"
    assert proposal.meta.pre_metrics["observed"] == "Deployment/todo-chatbot"
    assert approval.meta.actor.email == "alice@example.com"
    assert approval.meta.action_hash == proposal.meta.action_hash
    assert approval.meta.links.previous_step == proposal.id
    assert not phr.records(type="refusal") and phr.verify().ok
    assert "Proposed change: patch of Service/todo/todo-redis" in out  # the review
    assert "-    app: todo-redis" in out  # its before/after diff
    assert f"approved: approved by alice@example.com; {proposal.id} is now approved" in out
    # the review survives nbconvert's static, code-free HTML (widgets do not)
    from aiops.reports.html import export_html

    page = export_html(nbformat.read(tmp_path / "out.ipynb", as_version=4))
    assert "Rollback plan" in page and "What the medium tier needs" in page
