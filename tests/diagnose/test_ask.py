"""Plain-language questions: shapes, fuzzy names, and the optional LLM that only
rephrases and never sees a secret."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from aiops.cli import main
from aiops.diagnose.ask import ask, match_object
from aiops.sources import open_source


@pytest.fixture
def demo():
    return open_source("demo")


def test_fuzzy_names(demo) -> None:
    assert match_object(demo, "why is the backend failing?")[2] == "todo-backend"
    assert match_object(demo, "what's up with chatbot")[:3:2] == ("Deployment", "todo-chatbot")
    assert match_object(demo, "why is redis broken") is not None
    assert match_object(demo, "why is zzzz failing?") is None


def test_why_is_x_failing(demo, monkeypatch) -> None:
    monkeypatch.delenv("AIOPS_LLM_URL", raising=False)
    ans = ask(demo, "why is the chatbot crashing?")
    assert ans.intent == "diagnose-target" and ans.target == "Deployment/todo/todo-chatbot"
    assert ans.diagnosis.findings[0].rule == "dependency-unreachable"
    assert "todo-redis" in ans.text and ans.explanation is None


def test_namespace_and_cluster_questions(demo) -> None:
    ans = ask(demo, "what is wrong in namespace todo?", explain=False)
    assert ans.intent == "diagnose-namespace" and ans.target == "todo"
    assert {"oom-killed", "image-not-found"} <= ans.diagnosis.rules_fired()
    ans = ask(demo, "anything wrong?", explain=False)
    assert ans.intent == "diagnose-cluster" and ans.diagnosis.findings


def test_which_pods_restart_most(demo) -> None:
    ans = ask(demo, "which pods restart most?", explain=False)
    assert ans.intent == "top-restarts"
    assert ans.table.iloc[0]["pod"].startswith("todo-chatbot")
    assert list(ans.table["restarts"]) == sorted(ans.table["restarts"], reverse=True)


def test_is_it_safe_to_scale(demo) -> None:
    ans = ask(demo, "is it safe to scale todo-chatbot to 3?", explain=False)
    assert ans.text.startswith("Not safe") and "critical findings" in ans.text
    ans = ask(demo, "is it safe to scale the backend to 4?", explain=False)
    assert "HPA" in ans.text  # the HPA owns its replica count
    ans = ask(demo, "is it safe to scale coredns to 2?", explain=False)
    assert ans.text.startswith("Safe"), ans.text


class _Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        _Recorder.bodies.append(self.rfile.read(n))
        reply = {"choices": [{"message": {"content": "The chatbot cannot reach Redis."}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_llm_rephrases_and_sees_no_secret(demo, monkeypatch) -> None:
    planted = ["hunter2-planted-pw", "sk-planted0123456789abcdef", "tok-planted-99887766"]
    key = ("todo", next(p["metadata"]["name"] for p in demo.kind("Pod")
                        if p["metadata"]["name"].startswith("todo-chatbot")), "chatbot")
    demo.previous_logs[key] += (
        f"\nconnecting with password={planted[0]} api_key={planted[1]}\n"
        f"Authorization: Bearer {planted[2]}\n"
        "redis.exceptions.ConnectionError: Error 111 connecting to todo-redis:6379. "
        f"Connection refused. password={planted[0]}")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AIOPS_LLM_URL", f"http://127.0.0.1:{server.server_port}/v1")
        monkeypatch.setenv("AIOPS_LLM_API_KEY", "llm-key-not-a-cluster-secret")
        _Recorder.bodies.clear()
        ans = ask(demo, "why is the chatbot failing?")
    finally:
        server.shutdown()
    assert ans.explanation == "The chatbot cannot reach Redis."
    assert ans.diagnosis.findings[0].rule == "dependency-unreachable"  # findings unchanged
    body = b"".join(_Recorder.bodies).decode()
    assert "todo-redis" in body  # the findings were sent...
    for secret in planted:
        assert secret not in body  # ...and nothing secret


def test_llm_unreachable_loses_nothing(demo, monkeypatch) -> None:
    monkeypatch.setenv("AIOPS_LLM_URL", "http://127.0.0.1:9/v1")
    ans = ask(demo, "why is the worker failing?")
    assert ans.explanation is None and "oom-killed" in ans.text
    assert str(ans) == ans.text


def test_ask_cli(capsys, monkeypatch) -> None:
    monkeypatch.delenv("AIOPS_LLM_URL", raising=False)
    assert main(["ask", "why is the frontend failing?"]) == 0
    assert "image-not-found" in capsys.readouterr().out
    assert main(["ask", "which pods restart most?", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["intent"] == "top-restarts"
