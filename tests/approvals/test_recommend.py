"""Recommendations enter the audit trail from the CLI (diagnose, rightsize) and a
proposal made from one links back to it."""

from __future__ import annotations

from aiops.approvals.phr import Actor
from aiops.approvals.recommend import from_findings, from_rightsizing, record
from aiops.approvals.workflow import propose
from aiops.cli import main
from aiops.diagnose import diagnose
from aiops.rightsizing import recommend
from aiops.sources import open_source


def test_diagnose_record_writes_one_recommendation_per_action(store, capsys):
    assert main(["diagnose", "--source", "demo", "--record", "--phr-store",
                 str(store.root), "--format", "json"]) == 1
    recs = store.records(type="recommendation")
    expected = from_findings(diagnose(open_source("demo")).findings)
    # one record per distinct Action (two findings may propose the same change)
    assert {r.meta.action_hash for r in recs} == {e.action.hash() for e in expected}
    assert len(recs) == len({e.action.hash() for e in expected}) > 5
    first = recs[0]
    assert first.meta.actor.email == "aiops@localhost" and first.meta.data["automated"]
    assert first.meta.data["source"] == "diagnose" and first.meta.data["rule"]
    assert "recorded" in capsys.readouterr().err
    # the same open recommendations are not recorded twice
    main(["diagnose", "--source", "demo", "--record", "--phr-store", str(store.root)])
    assert len(store.records(type="recommendation")) == len(recs)
    assert store.verify().ok


def test_rightsize_record_carries_the_savings(store):
    assert main(["rightsize", "--source", "demo", "--record", "--phr-store",
                 str(store.root), "--format", "json"]) == 0
    recs = store.records(type="recommendation")
    state = open_source("demo")
    expected = from_rightsizing(recommend(state, None))
    assert len(recs) == len({e.action.hash() for e in expected}) > 3
    assert all(r.meta.tier == "medium" and r.meta.data["source"] == "rightsize" for r in recs)
    assert any(r.meta.data.get("monthly_savings_usd", 0) > 0 for r in recs)


def test_a_proposal_links_to_its_recommendation(store):
    items = from_findings(diagnose(open_source("demo")).findings)
    [rec] = record(store, items[:1])
    c = propose(store, items[0].action, actor=Actor(name="P", email="p@x.io"),
                reason="from the recommendation", previous_step=rec.id)
    assert c.proposal.meta.links.previous_step == rec.id
    assert c.action_hash == rec.meta.action_hash
