"""End to end on the bundled demo: every injected problem found under the right
rule id, root cause first; the CLI's JSON contract and exit codes."""

from __future__ import annotations

import json

import pytest

from aiops.cli import main
from aiops.diagnose import diagnose
from aiops.diagnose.finding import FINDING_FIELDS
from aiops.sources import open_source


@pytest.fixture(scope="module")
def demo():
    return open_source("demo")


def _by_owner(diag) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in diag.findings:
        out.setdefault(f.owner, []).append(f.rule)
    return out


def test_every_injected_problem_is_found(demo) -> None:
    diag = diagnose(demo)
    assert diag.failures == []
    owners = _by_owner(diag)
    # root cause first within each workload
    assert owners["Deployment/todo-chatbot"][0] == "dependency-unreachable"
    assert "crash-loop" in owners["Deployment/todo-chatbot"]
    assert owners["Deployment/todo-worker"][0] == "oom-killed"
    assert "crash-loop" not in owners["Deployment/todo-worker"]  # explained by the OOM kill
    assert owners["Deployment/todo-frontend"][0] == "image-not-found"
    assert "rollout-stuck" in owners["Deployment/todo-frontend"]
    assert owners["Deployment/todo-embeddings"][0] == "unschedulable-resources"
    assert "readiness-probe-failed" in owners["Deployment/todo-notifier"]
    assert owners["Service/todo-redis"] == ["service-selector-mismatch"]
    assert "cronjob-failing" in owners["CronJob/todo-db-backup"]
    assert "job-failed" in owners["CronJob/todo-db-backup"]


def test_chatbot_cause_links_the_service(demo) -> None:
    diag = diagnose(demo, namespace="todo", workload=("Deployment", "todo-chatbot"))
    top = diag.findings[0]
    assert top.rule == "dependency-unreachable"
    texts = " ".join(e.text for e in top.evidence)
    assert "todo-redis:6379" in texts and "Service todo/todo-redis" in texts
    assert any(e.source == "log" and "line" in e.ref for e in top.evidence)
    action = top.remediation.action
    assert action is not None and action.target["kind"] == "Service"
    assert action.tier == "medium" and action.inverse


def test_oom_action_raises_memory_with_exact_inverse(demo) -> None:
    diag = diagnose(demo, namespace="todo", workload=("Deployment", "todo-worker"))
    oom = diag.findings[0]
    assert oom.rule == "oom-killed"
    a = oom.remediation.action
    assert a and a.kind == "patch" and a.tier == "medium"
    assert a.target == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "todo",
                        "name": "todo-worker"}
    assert {op["op"] for op in a.inverse} <= {"replace", "remove", "add"}
    assert oom.first_seen is not None


def test_json_contract_and_exit_code(capsys) -> None:
    assert main(["diagnose", "--source", "demo", "--format", "json"]) == 1  # critical
    findings = json.loads(capsys.readouterr().out)
    assert findings and all(tuple(f) == FINDING_FIELDS for f in findings)
    for f in findings:
        assert f["severity"] in ("critical", "warning", "info")
        assert 0 <= f["confidence"] <= 1
        assert f["docs"].startswith("https://kubernetes.io/")
        assert f["evidence"] and all({"source", "text", "ref"} <= set(e) for e in f["evidence"])


def test_healthy_target_exits_zero(capsys) -> None:
    assert main(["diagnose", "--workload", "deployment/coredns", "-n", "kube-system"]) == 0
    assert "No problems found" in capsys.readouterr().out


def test_pod_target_and_markdown(demo, capsys) -> None:
    pod = next(p["metadata"]["name"] for p in demo.kind("Pod")
               if p["metadata"]["name"].startswith("todo-worker"))
    assert main(["diagnose", "--pod", pod, "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "`oom-killed`" in out and "kubectl" in out


def test_bad_target_is_a_clear_error(capsys) -> None:
    assert main(["diagnose", "--pod", "nope"]) == 2
    assert "no pod named 'nope'" in capsys.readouterr().err
    assert main(["diagnose", "--workload", "backend"]) == 2
    assert "KIND/NAME" in capsys.readouterr().err
    assert main(["diagnose", "--workload", "deployment/backend"]) == 2
    assert "todo-backend" in capsys.readouterr().err
