"""The `aiops` command: subcommands listed, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aiops.cli import main

BIN = Path(sys.executable).parent / "aiops"


def test_console_script_lists_subcommands() -> None:
    res = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for cmd in ("info", "health", "capture", "report", "demo"):
        assert cmd in res.stdout


def test_missing_snapshot_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["info", "--source", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "missing does not exist" in err and "fix:" in err
    assert "Traceback" not in err


def test_bad_parameter_exit_2(capsys) -> None:
    assert main(["health", "--window", "soon"]) == 2
    assert "invalid time window 'soon'" in capsys.readouterr().err
    assert main(["health", "--format", "xml"]) == 2
    assert main(["no-such-command"]) == 2


def test_truncated_file_named_but_rest_used(tmp_path: Path, capsys) -> None:
    (tmp_path / "pods.json").write_text(json.dumps({"kind": "PodList", "items": [
        {"metadata": {"name": "p", "namespace": "a"}, "status": {"phase": "Running"}}]}))
    (tmp_path / "events.json").write_text('{"kind": "EventList", "items": [')
    assert main(["info", "--source", str(tmp_path)]) == 2
    cap = capsys.readouterr()
    assert "events.json: invalid or truncated JSON" in cap.err
    assert "Pod" in cap.out


def test_kubeconfig_pointing_nowhere(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["info", "--source", "kube"]) == 2
    err = capsys.readouterr().err
    assert "no-such-kubeconfig" in err and "Traceback" not in err


def test_capture_command_round_trips(tmp_path: Path, capsys) -> None:
    out = tmp_path / "snap"
    assert main(["capture", "--source", "demo", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (out / "manifest.json").exists() and (out / "nodes.json").exists()
    assert main(["info", "--source", str(out)]) == 0
    assert main(["capture", "--source", "demo", str(out)]) == 2  # not empty: refused
    assert "overwrite" in capsys.readouterr().err


def test_rightsize_json_contract(capsys) -> None:
    from aiops.rightsizing import REC_FIELDS

    assert main(["rightsize", "--format", "json", "--namespaces", "todo"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs and all(tuple(r) == REC_FIELDS for r in recs)
    front = next(r for r in recs if r["workload"] == "todo-frontend")
    assert front["status"] == "ok"
    assert front["cpu_request_recommended"] < front["cpu_request_current"]
    assert front["action"]["tier"] == "medium" and front["action"]["inverse"]
    assert "cpu_over_request_pct" in front["backtest"]
    assert main(["rightsize", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("namespace,workload_kind,workload,container")


def test_rightsize_needs_history(tmp_path: Path, capsys) -> None:
    assert main(["capture", "--source", "demo", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert main(["rightsize", "--source", str(tmp_path / "s")]) == 2
    assert "has no usage history" in capsys.readouterr().err
    assert main(["rightsize", "--history", "soon"]) == 2
    assert main(["rightsize", "--margin", "-1"]) == 2


def test_cost_by_namespace(capsys) -> None:
    assert main(["cost", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["namespace"] for r in rows}
    assert {"todo", "kube-system", "__idle__"} <= names
