"""Escalation through a webhook, against a real HTTP receiver on 127.0.0.1.

The receiver records every request (path, headers, body, arrival time) and
answers from a script (500s, a 429 with Retry-After, a slow answer, a 400)
before falling back to 200, so retries, backoff and refusals are observed on
the wire, not assumed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aiops.cli import main
from aiops.diagnose.finding import FINDING_FIELDS, Evidence, Finding, Remediation
from aiops.errors import ReportError
from aiops.notify import Notifier, NotifyError, escalate, mask_url, notify_report_failure
from aiops.notify.message import episode_key
from aiops.reports.runner import ReportResult

TOKEN = "T0AAA1111/B0BBB2222/xoxbSecretWebhookTok3n"
GH_TOKEN = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3h"  # token-like env value
PASSWORD = "Hunter2-Sup3rSecret"
HIGH_ENTROPY = "Zk4mQ9xV2bN7cR1tY6uW3eP8aS5dF0gHjL2kM9nB"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver: answers `script` in order, then 200."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with owner.lock:
                    owner.hits.append(Hit(self.path, dict(self.headers), body, time.monotonic()))
                    ans = owner.script.pop(0) if owner.script else Answer()
                if ans.delay:
                    time.sleep(ans.delay)
                try:
                    self.send_response(ans.status)
                    for k, v in ans.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(ans.body)))
                    self.end_headers()
                    self.wfile.write(ans.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/services/{TOKEN}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _finding(rule: str = "oom-killed", severity: str = "critical", name: str = "api-0",
             first_seen: datetime | None = None) -> Finding:
    t = first_seen or datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    return Finding(
        rule=rule, severity=severity, namespace="shop", kind="Pod", name=name,
        owner="Deployment/api",
        summary=f"Container 'api' of pod shop/{name} was OOMKilled (limit 256Mi).",
        evidence=[
            Evidence("status", "lastState.terminated: OOMKilled (exit code 137)",
                     "status.containerStatuses[api].lastState", t),
            Evidence("spec", f"env GITHUB_TOKEN={GH_TOKEN}", "spec.containers[api].env"),
            Evidence("log", f"2026-11-20 db connect failed user=app password={PASSWORD}",
                     "logs-previous api line 12"),
            Evidence("spec", f"env SIGNING_KEY value {HIGH_ENTROPY}", "spec.containers[api].env"),
        ],
        confidence=0.95, first_seen=t,
        remediation=Remediation("Raise the memory limit above the measured peak.",
                                ("kubectl describe pod api-0 -n shop",
                                 "kubectl set resources deployment/api -n shop -c api "
                                 "--limits=memory=512Mi")),
        docs="https://kubernetes.io/docs/tasks/configure-pod-container/assign-memory-resource/")


def _no_secret(raw: bytes | str) -> None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    for secret in (GH_TOKEN, PASSWORD, HIGH_ENTROPY, TOKEN, "xoxbSecretWebhookTok3n"):
        assert secret not in text


# -- bodies -------------------------------------------------------------------------

def test_slack_body_has_text_and_blocks(receiver: Receiver, tmp_path: Path) -> None:
    n = Notifier(receiver.url, format="slack", backoff=0.01)
    res = escalate([_finding()], n, state_file=tmp_path / "state.json", source="demo",
                   cluster="minikube", site_url="https://reports.example.com/aiops")
    assert res.sent and res.ok
    [hit] = receiver.hits
    assert hit.path == f"/services/{TOKEN}"
    assert hit.headers["Content-Type"].startswith("application/json")
    body = hit.json()
    assert body["text"].startswith("[critical] oom-killed: Pod/shop/api-0")
    types = [b["type"] for b in body["blocks"]]
    assert types[0] == "header" and types[-1] == "context"
    assert body["blocks"][0]["text"] == {"type": "plain_text", "emoji": True,
                                         "text": "CRITICAL oom-killed Pod/shop/api-0"}
    flat = json.dumps(body)
    assert "was OOMKilled (limit 256Mi)" in flat  # the summary
    assert "`Pod/shop/api-0`" in flat and "*Severity*\\ncritical" in flat
    assert "lastState.terminated: OOMKilled (exit code 137)" in flat  # evidence line
    assert "kubectl describe pod api-0 -n shop" in flat  # the first command only
    assert "kubectl set resources" not in flat
    ctx = " ".join(e["text"] for e in body["blocks"][-1]["elements"])
    assert ("<https://reports.example.com/aiops/runbooks/containers.md#oom-killed|Runbook>"
            in ctx)
    assert "<https://reports.example.com/aiops/index.html|Report>" in ctx
    assert "minikube" in ctx and "demo" in ctx
    for b in body["blocks"]:
        text = b.get("text", {}).get("text", "")
        assert len(text) <= (150 if b["type"] == "header" else 3000)


def test_plain_json_body_is_the_finding_plus_context(receiver: Receiver, tmp_path: Path
                                                     ) -> None:
    n = Notifier(receiver.url, format="json", backoff=0.01)
    f = _finding()
    now = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    escalate([f], n, state_file=tmp_path / "state.json", source="demo", cluster="minikube",
             now=now)
    body = receiver.hits[0].json()
    assert set(FINDING_FIELDS) <= set(body)
    ref = f.to_dict()
    for k in ("rule", "severity", "namespace", "kind", "name", "owner", "summary",
              "confidence", "first_seen", "docs"):
        assert body[k] == ref[k]
    assert body["remediation"]["commands"] == ref["remediation"]["commands"]
    assert body["evidence"][0] == ref["evidence"][0]
    assert body["event"] == "finding" and body["source"] == "demo"
    assert body["cluster"] == "minikube" and body["time"] == "2026-11-20T09:30:00Z"
    assert body["runbook"] == "runbooks/containers.md#oom-killed"
    assert body["episode"] == episode_key(f)


@pytest.mark.parametrize("fmt", ["slack", "json"])
def test_planted_secrets_never_leave(receiver: Receiver, tmp_path: Path, fmt: str,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", GH_TOKEN)
    n = Notifier(receiver.url, format=fmt, backoff=0.01)
    escalate([_finding()], n, state_file=tmp_path / "state.json", source="demo")
    failed = ReportResult("health", "2026-11-20", False, {"source": "demo"},
                          error=ReportError(f"cell 4 failed: psycopg2 password={PASSWORD} "
                                            f"rejected; token {GH_TOKEN}"),
                          failed_notebook=Path("reports/2026-11-20/health.failed.ipynb"))
    assert notify_report_failure(failed, n, source="demo") is not None
    assert len(receiver.hits) == 2
    for hit in receiver.hits:
        _no_secret(hit.body)
        assert "<redacted>" in hit.body.decode() or "&lt;redacted&gt;" in hit.body.decode()
    # what the evidence said apart from the secrets is still there
    assert "OOMKilled (exit code 137)" in receiver.hits[0].body.decode()
    assert "health" in receiver.hits[1].body.decode()
    state = (tmp_path / "state.json").read_text()
    _no_secret(state)
    _no_secret(capsys.readouterr().err)


def test_report_failure_bodies(receiver: Receiver) -> None:
    ok = ReportResult("cost", "2026-11-20", True, {})
    slack = Notifier(receiver.url, backoff=0.01)
    assert notify_report_failure(ok, slack) is None
    assert receiver.hits == []
    bad = ReportResult("cost", "2026-11-20", False, {"source": "demo"},
                       error=ReportError("cell 3 raised KeyError: 'node'"))
    notify_report_failure(bad, slack, cluster="prod",
                          site_url="https://reports.example.com/")
    notify_report_failure(bad, Notifier(receiver.url, format="json", backoff=0.01))
    s, j = receiver.hits[0].json(), receiver.hits[1].json()
    assert s["text"].startswith("[report failed] cost (2026-11-20)")
    assert s["blocks"][0]["text"]["text"] == "REPORT FAILED cost 2026-11-20"
    assert "<https://reports.example.com/index.html|Reports>" in json.dumps(s)
    assert j["event"] == "report-failed" and j["report_name"] == "cost"
    assert "KeyError" in j["error"] and j["source"] == "demo"


# -- retries ------------------------------------------------------------------------

def test_retries_5xx_with_exponential_backoff(receiver: Receiver) -> None:
    receiver.script = [Answer(500), Answer(502), Answer(503)]
    n = Notifier(receiver.url, format="json", retries=3, backoff=0.1)
    d = n.send({"hello": "world"})
    assert d.status == 200 and d.attempts == 4
    assert len(receiver.hits) == 4
    assert {h.body for h in receiver.hits} == {b'{"hello":"world"}'}
    gaps = [b.at - a.at for a, b in zip(receiver.hits, receiver.hits[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4  # 0.1, 0.2, 0.4


def test_429_honours_retry_after(receiver: Receiver) -> None:
    receiver.script = [Answer(429, {"Retry-After": "1"}, b"rate limited")]
    n = Notifier(receiver.url, retries=2, backoff=0.01)
    d = n.send({"text": "x"})
    assert d.attempts == 2
    assert receiver.hits[1].at - receiver.hits[0].at >= 0.95


def test_no_retry_on_400(receiver: Receiver) -> None:
    receiver.script = [Answer(400, body=b"invalid_payload")]
    n = Notifier(receiver.url, retries=3, backoff=0.01)
    with pytest.raises(NotifyError) as ei:
        n.send({"text": "x"})
    assert len(receiver.hits) == 1
    assert ei.value.status == 400 and ei.value.attempts == 1
    assert "invalid_payload" in str(ei.value)
    assert TOKEN not in str(ei.value) and "127.0.0.1" in str(ei.value)


def test_gives_up_after_retries_and_masks_echoed_path(receiver: Receiver) -> None:
    receiver.script = [Answer(503, body=f"no route for /services/{TOKEN}".encode())] * 3
    n = Notifier(receiver.url, retries=2, backoff=0.01)
    with pytest.raises(NotifyError) as ei:
        n.send({"text": "x"})
    assert len(receiver.hits) == 3 and ei.value.attempts == 3
    msg = str(ei.value)
    assert "HTTP 503" in msg and "xoxbSecretWebhookTok3n" not in msg and TOKEN not in msg


def test_timeout_is_retried(receiver: Receiver) -> None:
    receiver.script = [Answer(200, delay=1.0)]
    n = Notifier(receiver.url, timeout=0.3, retries=1, backoff=0.01)
    d = n.send({"text": "x"})
    assert d.attempts == 2 and len(receiver.hits) == 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retried_and_the_url_masked() -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}/hooks/{TOKEN}?token=abc123secretvalue"
    n = Notifier(url, retries=2, backoff=0.01)
    with pytest.raises(NotifyError) as ei:
        n.send({"text": "x"})
    msg = str(ei.value)
    assert ei.value.attempts == 3 and "failed after 3 attempts" in msg
    assert TOKEN not in msg and "abc123secretvalue" not in msg
    assert f"http://127.0.0.1:{port}/<redacted>" in msg
    assert TOKEN not in repr(n)


def test_mask_url_keeps_only_where() -> None:
    assert mask_url(f"https://hooks.slack.com/services/{TOKEN}") == \
        "https://hooks.slack.com/<redacted>"
    assert mask_url("https://user:pw@example.com:8443/x?y=1") == \
        "https://example.com:8443/<redacted>"
    assert mask_url("https://example.com/") == "https://example.com/"
    assert mask_url("not a url") == "<redacted>"


def test_invalid_settings_are_refused_without_the_token() -> None:
    from aiops.errors import ParameterError

    with pytest.raises(ParameterError) as ei:
        Notifier(f"ftp://example.com/{TOKEN}")
    assert TOKEN not in str(ei.value)
    with pytest.raises(ParameterError):
        Notifier("https://example.com/x", format="teams")


# -- dedup ----------------------------------------------------------------------------

def test_same_episode_is_sent_once_within_the_window(receiver: Receiver, tmp_path: Path
                                                     ) -> None:
    n = Notifier(receiver.url, format="json", backoff=0.01)
    state = tmp_path / "state.json"
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    crit, warn = _finding(), _finding("readiness-probe-failed", "warning", name="api-1")
    first = escalate([crit, warn], n, state_file=state, now=now)
    assert len(first.sent) == 1 and first.below == 1
    again = escalate([crit, warn], n, state_file=state, now=now + timedelta(hours=1))
    assert again.sent == [] and again.duplicates == [episode_key(crit)]
    assert len(receiver.hits) == 1
    # a new episode of the same rule on the same object (it recovered, failed again)
    relapse = _finding(first_seen=datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    assert len(escalate([relapse], n, state_file=state, now=now + timedelta(hours=2)).sent) == 1
    # past the window the old episode is sent again
    later = escalate([crit], n, state_file=state, now=now + timedelta(hours=25))
    assert len(later.sent) == 1 and len(receiver.hits) == 3
    # duplicates inside one batch (two runs folded together) are sent once
    twice = escalate([_finding(name="api-9")] * 2, n, state_file=state, now=now)
    assert len(twice.sent) == 1 and len(twice.duplicates) == 1
    assert escalate([warn], n, state_file=state, min_severity="warning", now=now).sent


def test_a_failed_send_is_not_remembered(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [Answer(404, body=b"no_service")]
    n = Notifier(receiver.url, backoff=0.01)
    state = tmp_path / "state.json"
    res = escalate([_finding()], n, state_file=state)
    assert not res.ok and res.sent == []
    assert "HTTP 404" in next(iter(res.failed.values()))
    assert escalate([_finding()], n, state_file=state).sent
    assert len(receiver.hits) == 2


# -- CLI --------------------------------------------------------------------------------

def test_cli_notify_test(receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "test", "--url", receiver.url, "--format", "json"]) == 0
    body = receiver.hits[0].json()
    assert body["rule"] == "oom-killed" and "TEST MESSAGE" in body["summary"]
    out = capsys.readouterr().out
    assert "HTTP 200" in out and TOKEN not in out and "/<redacted>" in out


def test_cli_notify_test_failure_masks_the_url(receiver: Receiver,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    receiver.script = [Answer(403, body=b"invalid_token")]
    monkeypatch.setenv("AIOPS_WEBHOOK_URL", receiver.url)
    assert main(["notify", "test"]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "invalid_token" in err and TOKEN not in err
    monkeypatch.delenv("AIOPS_WEBHOOK_URL")
    assert main(["notify", "test"]) == 2
    assert "AIOPS_WEBHOOK_URL" in capsys.readouterr().err


def test_cli_diagnose_notify_escalates_critical_findings_once(
        receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIOPS_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("AIOPS_WEBHOOK_FORMAT", "json")
    monkeypatch.setenv("AIOPS_NOTIFY_STATE", str(tmp_path / "state.json"))
    monkeypatch.delenv("AIOPS_REPORTS_URL", raising=False)
    assert main(["diagnose", "--namespace", "todo", "--format", "json", "--notify"]) == 1
    printed = json.loads(capsys.readouterr().out)
    critical = [f for f in printed if f["severity"] == "critical"]
    assert critical and len(receiver.hits) == len(critical)
    sent = sorted((h.json()["rule"], h.json()["name"]) for h in receiver.hits)
    assert sent == sorted((f["rule"], f["name"]) for f in critical)
    assert all(h.json()["source"] == "demo" for h in receiver.hits)
    assert main(["diagnose", "--namespace", "todo", "--format", "json", "--notify"]) == 1
    assert len(receiver.hits) == len(critical)  # the same episodes: not re-sent
    assert f"0 sent, {len(critical)} already sent" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_report_notifies_a_failed_report(receiver: Receiver, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIOPS_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("AIOPS_WEBHOOK_FORMAT", "json")
    code = main(["report", "cost", "--source", "demo", "-p", "window=banana", "--out",
                 str(tmp_path), "--no-record", "--notify"])
    assert code != 0
    [hit] = receiver.hits
    body = hit.json()
    assert "cost" in json.dumps(body) and "banana" in json.dumps(body)
    assert "failure sent" in capsys.readouterr().err
    monkeypatch.delenv("AIOPS_WEBHOOK_URL")
    assert main(["report", "cost", "--source", "demo", "--out", str(tmp_path),
                 "--notify"]) == 2, "no webhook: bad input, before any work"
