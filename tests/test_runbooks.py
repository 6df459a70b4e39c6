"""Runbooks: one Markdown file per failure family, a section per rule with the
five parts, measured MTTR from a real PHR store (git repository in tmp_path),
deterministic output, links from findings, and the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import git
import pytest

from aiops.approvals import PhrStore
from aiops.cli import main
from aiops.diagnose import diagnose
from aiops.diagnose import render as diag_render
from aiops.diagnose.registry import load_rules
from aiops.runbooks import generate, measured_mttr, runbook_html, runbook_path
from aiops.runbooks.generate import NO_MTTR, PARTS
from aiops.runbooks.knowledge import GUIDES
from aiops.sources import open_source

RULES = load_rules()
FAMILIES = sorted({r.family for r in RULES.values()})
ACTOR = {"name": "Olga Operator", "email": "olga@example.com"}
BOT = {"name": "aiops automation", "email": "aiops@example.com"}
POD = {"apiVersion": "v1", "kind": "Pod", "namespace": "todo", "name": "todo-worker-0"}
DEP = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "todo", "name": "todo-api"}
WORKER = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "todo",
          "name": "todo-worker"}


def sections(text: str) -> dict[str, str]:
    """{rule id: its section} from a family runbook, split on the explicit anchors."""
    parts = re.split(r'<a id="([a-z0-9-]+)"></a>', text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runbooks")
    generate(out)
    return out


def test_one_file_per_family_and_an_index(plain: Path) -> None:
    assert len(FAMILIES) == 10
    assert {p.name for p in plain.iterdir()} == {f"{f}.md" for f in FAMILIES} | {"README.md"}
    index = (plain / "README.md").read_text()
    for fam in FAMILIES:
        assert f"[{fam}]({fam}.md)" in index
    for rid, r in RULES.items():
        assert f"({r.family}.md#{rid})" in index


def test_every_rule_has_a_section_with_the_five_parts(plain: Path) -> None:
    for fam in FAMILIES:
        text = (plain / f"{fam}.md").read_text()
        secs = sections(text)
        expected = sorted(rid for rid, r in RULES.items() if r.family == fam)
        assert [k for k in secs if k != "family-prevention"] == expected  # sorted, complete
        for rid in expected:
            sec = secs[rid]
            heads = re.findall(r"^### (.+)$", sec, re.M)
            assert heads[:5] == list(PARTS), rid
            body = {h: sec.split(f"### {h}", 1)[1].split("\n### ", 1)[0] for h in PARTS}
            assert RULES[rid].title in sec and RULES[rid].docs in sec
            assert re.search(r"^kubectl (describe|get|logs|auth|top) ", body["How to confirm"],
                             re.M), rid
            assert re.search(r"^\s*```bash\n\s*(kubectl|aiops) ", body["Remediation"], re.M), rid
            assert re.search(r"^1\. ", body["Remediation"], re.M), rid
            assert NO_MTTR.lower() in body["Expected recovery time"].lower()
            assert "estimate, not a measurement" in body["Expected recovery time"]
            assert re.search(r"^- \S", body["Prevention"], re.M), rid


def test_confirm_commands_cover_describe_yaml_previous_logs_and_events(plain: Path) -> None:
    text = (plain / "containers.md").read_text()
    oom = sections(text)["oom-killed"]
    assert "kubectl describe pod <pod> -n <namespace>" in oom
    assert "kubectl logs <pod> -n <namespace> -c <container> --previous" in oom
    assert "--field-selector involvedObject.name=<pod>" in oom
    assert "kubectl set resources <workload>" in oom
    pvc = sections((plain / "storage.md").read_text())["pvc-pending"]
    assert "kubectl get pvc -n <namespace> <pvc> -o yaml" in pvc


def test_every_registered_rule_has_runbook_knowledge() -> None:
    assert set(GUIDES) == set(RULES)
    for rid, g in GUIDES.items():
        assert g.signals and all(isinstance(s, str) and len(s) > 3 for s in g.signals), rid
        assert any(step.commands for step in g.steps), rid
        assert g.typical_minutes > 0


def test_output_is_deterministic(plain: Path, tmp_path: Path) -> None:
    generate(tmp_path)
    for p in plain.iterdir():
        assert (tmp_path / p.name).read_bytes() == p.read_bytes(), p.name


# -- measured MTTR from the audit trail ----------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> PhrStore:
    repo = git.Repo.init(tmp_path / "repo")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Test Committer")
        cfg.set_value("user", "email", "committer@example.com")
    (tmp_path / "repo" / "README.md").write_text("x\n")
    repo.index.add(["README.md"])
    repo.index.commit("initial")
    return PhrStore(tmp_path / "repo" / "history" / "prompts", lock_timeout=5.0)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def fill_history(store: PhrStore) -> None:
    """oom-killed: detection (on the pod) -> proposal -> approval -> execution ->
    validation (on its Deployment: only the chain links them), 42 min from the failure's
    start; crash-loop: a detection and, unlinked, a passing validation
    on the same object 20 min later, after a failed one; rbac-forbidden: never recovered."""
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    det = store.record("detection", actor=BOT, title="oom-killed on todo-worker-0",
                       object=POD, data={"rule": "oom-killed", "failure_start": _iso(t0)})
    prop = store.record("proposal", actor=ACTOR, title="raise memory", object=WORKER,
                        previous_step=det.id)
    appr = store.record("approval", actor=ACTOR, title="ok", previous_step=prop.id)
    exe = store.record("execution", actor=ACTOR, title="applied", previous_step=appr.id,
                       data={"phase": "applied"})
    store.record("validation", actor=BOT, title="passed", object=WORKER, previous_step=exe.id,
                 data={"passed": True, "recovered_at": _iso(t0 + timedelta(minutes=42))})
    t1 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    store.record("detection", actor=BOT, title="crash-loop on todo-api", object=DEP,
                 data={"rule": "crash-loop", "failure_start": _iso(t1)})
    store.record("validation", actor=BOT, title="failed", object=DEP,
                 data={"passed": False, "recovered_at": _iso(t1 + timedelta(minutes=5))})
    store.record("validation", actor=BOT, title="passed", object=DEP,
                 data={"passed": True, "recovered_at": _iso(t1 + timedelta(minutes=20))})
    store.record("detection", actor=BOT, title="rbac-forbidden on todo-api", object=DEP,
                 data={"rule": "rbac-forbidden"})


def test_mttr_from_detection_to_validation(store: PhrStore) -> None:
    fill_history(store)
    stats = measured_mttr(store)
    assert set(stats) == {"oom-killed", "crash-loop"}
    assert stats["oom-killed"].count == 1 and stats["oom-killed"].median_minutes == 42
    assert stats["crash-loop"].median_minutes == 20


def test_runbook_quotes_measured_mttr_else_says_none_yet(store: PhrStore, tmp_path: Path
                                                          ) -> None:
    fill_history(store)
    out = tmp_path / "out"
    generate(out, store=store)
    containers = (out / "containers.md").read_text()
    secs = sections(containers)
    assert "Measured: median **42 min** over 1 recovered episode" in secs["oom-killed"]
    assert "Measured: median **20 min**" in secs["crash-loop"]
    assert NO_MTTR.lower() not in secs["oom-killed"].lower()
    assert "| 42 min (measured, n=1) |" in containers
    assert "No measured MTTR yet" in secs["evicted"]
    assert "No measured MTTR yet" in sections((out / "logs.md").read_text())["rbac-forbidden"]
    assert "for 2 of 36 rules" in (out / "README.md").read_text()


# -- links from findings ---------------------------------------------------------------------

def test_runbook_links_resolve_to_generated_anchors(plain: Path) -> None:
    assert runbook_path("oom-killed") == "runbooks/containers.md#oom-killed"
    assert runbook_path("oom-killed", base="../") == "../runbooks/containers.md#oom-killed"
    assert runbook_path("no-such-rule") is None
    assert runbook_html("pvc-pending") == \
        '<a href="../runbooks/storage.md#pvc-pending">runbook</a>'
    for rid in RULES:
        file, anchor = runbook_path(rid).removeprefix("runbooks/").split("#")
        assert f'<a id="{anchor}"></a>' in (plain / file).read_text()


def test_diagnosis_markdown_links_each_finding_to_its_runbook() -> None:
    diag = diagnose(open_source("demo"), namespace="todo")
    md = diag_render.to_markdown(diag)
    assert diag.findings
    for f in diag.findings:
        path = runbook_path(f.rule)
        assert f"Runbook: [{path}]({path})" in md
    assert md.count("Runbook: [") == len(diag.findings)


# -- CLI -------------------------------------------------------------------------------------

def test_cli_runbooks(store: PhrStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                      ) -> None:
    fill_history(store)
    out = tmp_path / "reports" / "runbooks"
    assert main(["runbooks", "--out", str(out), "--history", str(store.root)]) == 0
    assert "wrote 10 runbooks" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {f"{f}.md" for f in FAMILIES} | {"README.md"}
    assert "median **42 min**" in (out / "containers.md").read_text()
    assert main(["runbooks", "--out", str(out), "--history", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_runbooks_quotes_a_clusters_remediations(tmp_path: Path) -> None:
    out = tmp_path / "rb"
    assert main(["runbooks", "--out", str(out), "--source", "demo"]) == 0
    oom = sections((out / "containers.md").read_text())["oom-killed"]
    assert "Example from `demo`:" in oom
    assert re.search(r"^kubectl set resources deployment/\S+ -n todo ", oom, re.M)
    # the generic part is unchanged by the example
    assert "kubectl set resources <workload> -n <namespace>" in oom
