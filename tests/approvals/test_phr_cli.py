"""`aiops phr list/show/verify` on a store given with --store or AIOPS_HISTORY."""

from __future__ import annotations

import json

from aiops.cli import main

from .conftest import fill, set_field


def _run(capsys, *args):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_list_table_and_json(store, capsys):
    recs = fill(store, 4)
    code, out, _ = _run(capsys, "phr", "list", "--store", str(store.root))
    assert code == 0 and all(r.id in out for r in recs) and "4 records" in out
    code, out, _ = _run(capsys, "phr", "list", "--store", str(store.root), "--type",
                        "approval", "--since", "1h", "--format", "json")
    docs = json.loads(out)
    assert code == 0 and [d["id"] for d in docs] == [recs[1].id, recs[3].id]
    assert docs[0]["hash"] == recs[1].hash and docs[0]["links"]["previous_step"] == recs[0].id


def test_list_rejects_bad_options(store, capsys):
    code, _, err = _run(capsys, "phr", "list", "--store", str(store.root), "--type", "nope")
    assert code == 2 and "--type" in err
    code, _, err = _run(capsys, "phr", "list", "--store", str(store.root), "--since", "soon")
    assert code == 2 and "--since" in err


def test_show_by_id_and_json(store, capsys, monkeypatch):
    recs = fill(store, 2)
    monkeypatch.setenv("AIOPS_HISTORY", str(store.root))
    code, out, _ = _run(capsys, "phr", "show", recs[0].id)
    assert code == 0 and out.startswith("---\n") and "# Raise memory of todo-backend" in out
    code, out, _ = _run(capsys, "phr", "show", recs[1].id, "--format", "json")
    assert code == 0 and json.loads(out)["seq"] == 2
    code, _, err = _run(capsys, "phr", "show", "0" * 26)
    assert code == 2 and "no record" in err


def test_verify_exit_codes(store, capsys):
    recs = fill(store, 3)
    code, out, _ = _run(capsys, "phr", "verify", "--store", str(store.root))
    assert code == 0 and "ok: 3 records" in out
    set_field(recs[1].path, "tier", "trivial")
    code, out, _ = _run(capsys, "phr", "verify", "--store", str(store.root))
    assert code == 1 and f"edited: {recs[1].id}" in out and "broken-link" in out
    code, out, _ = _run(capsys, "phr", "verify", "--store", str(store.root), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False
    assert {"edited", "broken-link"} == {p["kind"] for p in doc["problems"]}


def test_no_git_repository_is_exit_2(tmp_path, capsys):
    code, _, err = _run(capsys, "phr", "list", "--store", str(tmp_path / "h"))
    assert code == 2 and "not in a git repository" in err
