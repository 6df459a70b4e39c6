"""The fast pre-passes of the services family (`_suspicion`, `_plainly_routed`,
`_template_selected`) decide exactly what the plain definitions they stand for
decide, on hand-made cases and on generated, then malformed, Service worlds."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _services_objects import NS, container, deployment, endpoints, pod, replicaset, service, world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robustness import _mutate, _paths, junk

from aiops.diagnose.context import Context, Target
from aiops.diagnose.registry import RULES
from aiops.diagnose.rules import services as S
from aiops.model import ClusterState

RULE_IDS = ("service-selector-mismatch", "service-no-endpoints", "ingress-backend-missing")
Obj = dict[str, Any]


def _plain_flags(ctx: Context, svc: Obj) -> int:
    return ((S._UNMATCHED if S._unmatched(ctx, svc) else 0)
            | (S._NO_READY if S._without_ready(ctx, svc) else 0))


def _contexts(state: ClusterState) -> list[Context]:
    return [Context(state), Context(state, Target(namespace=NS))]


def _assert_same_as_plain(state: ClusterState) -> None:
    for ctx in _contexts(state):
        tests = {flag: S._suspects(ctx, flag) for flag in (S._UNMATCHED, S._NO_READY)}
        for svc in ctx.objects("Service"):
            plain = _plain_flags(ctx, svc)
            assert S._suspicion(ctx, svc) == plain, svc
            for flag, test in tests.items():
                assert test(svc) == bool(plain & flag), (flag, svc)
                assert S._suspicion(ctx, svc, flag) & flag == plain & flag
        for ing in ctx.objects("Ingress"):
            ns = S._s(S.md(ing).get("namespace"))
            broken = any(S._check_backend(ctx, ing, ns, be) is not None
                         for be in S._ingress_backends(ing))
            assert S._broken_ingress(ctx, ing) == broken, ing
            assert not (S._plainly_routed(ctx, ing, ns) and broken), ing
    for kind in S.WORKLOAD_KINDS:
        for w in state.kind(kind):
            for sel in ({}, {"app": "a"}, {"app": "a", "tier": "web"}, {"app": "b"}):
                labels = S._template_labels(w)
                assert S._template_selected(w, sel) == bool(
                    labels and all(labels.get(k) == v for k, v in sel.items())), (w, sel)


def _findings(state: ClusterState, **target: Any) -> list[dict[str, Any]]:
    ctx = Context(state, Target(**target))
    return [f.to_dict() for rid in RULE_IDS for f in RULES[rid].fn(ctx)]


def _assert_prepasses_let_through_find_the_same(state: ClusterState) -> None:
    fast = [_findings(copy.deepcopy(state)), _findings(copy.deepcopy(state), namespace=NS)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Context, "objects_where",
                   lambda self, kind, key, test: list(self.objects(kind)))
        slow = [_findings(copy.deepcopy(state)), _findings(copy.deepcopy(state), namespace=NS)]
    assert fast == slow


# -- hand-made cases -----------------------------------------------------------------------

def _healthy() -> tuple[Obj, Obj, Obj]:
    web = pod("web-1", labels={"app": "web", "tier": "front"})
    return web, service("web", {"app": "web"}), endpoints("web", ready=[web])


def test_a_service_listing_a_live_matching_pod_is_no_suspect() -> None:
    web, svc, ep = _healthy()
    st_ = world(web, svc, ep)
    ctx = Context(st_)
    assert S._suspicion(ctx, svc) == 0
    # settled from the Endpoints: no label index was built for the namespace
    assert not ctx._idx.labels
    _assert_same_as_plain(st_)


@pytest.mark.parametrize("change", ["relabelled", "succeeded", "deleted", "gone", "no-ref"])
def test_a_stale_endpoints_listing_is_no_witness(change: str) -> None:
    """Endpoints may name a pod the selector no longer matches (or that finished, is
    being deleted or is not in the snapshot): the label index decides then."""
    web, svc, ep = _healthy()
    objs: list[Obj] = [svc, ep]
    if change == "relabelled":
        web["metadata"]["labels"] = {"app": "web-v2"}
    elif change == "succeeded":
        web["status"]["phase"] = "Succeeded"
    elif change == "deleted":
        web["metadata"]["deletionTimestamp"] = "2025-06-02T11:59:00Z"
    elif change == "no-ref":
        del ep["subsets"][0]["addresses"][0]["targetRef"]
    if change != "gone":
        objs.append(web)
    st_ = world(*objs)
    ctx = Context(st_)
    unmatched = change != "no-ref"
    assert S._suspicion(ctx, svc) == (S._UNMATCHED if unmatched else 0)
    assert [f.name for f in RULES["service-selector-mismatch"].fn(ctx)] == \
        (["web"] if unmatched else [])
    _assert_same_as_plain(st_)


def test_a_not_ready_listing_is_a_witness_but_no_ready_backend() -> None:
    web, svc, _ = _healthy()
    web = pod("web-1", labels={"app": "web"}, ready=False)
    st_ = world(web, svc, endpoints("web", not_ready=[web]))
    ctx = Context(st_)
    assert S._suspicion(ctx, svc) == S._NO_READY
    assert [f.rule for f in RULES["service-no-endpoints"].fn(ctx)] == ["service-no-endpoints"]
    _assert_same_as_plain(st_)


def test_services_without_endpoints_object_take_the_plain_path() -> None:
    web = pod("web-1", labels={"app": "web"})
    redis = deployment("redis", {"app": "redis"}, [container("redis", port=6379)], replicas=0)
    st_ = world(web, service("web", {"app": "web"}), service("redis", {"app": "redis"}),
                service("ext", None), redis, replicaset(redis))
    ctx = Context(st_)
    flags = {S.md(s)["name"]: S._suspicion(ctx, s) for s in st_.kind("Service")}
    assert flags == {"web": 0, "redis": S._UNMATCHED | S._NO_READY, "ext": 0}
    _assert_same_as_plain(st_)


def _ingress(*backends: Obj) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"rules": [{"host": "web.local", "http": {"paths": [
                {"path": f"/{i}", "pathType": "Prefix", "backend": b}
                for i, b in enumerate(backends)]}}]}}


@pytest.mark.parametrize(("backend", "plain"), [
    ({"service": {"name": "web", "port": {"number": 80}}}, True),
    ({"service": {"name": "web", "port": {"name": "http"}}}, True),
    ({"service": {"name": "web"}}, True),
    ({"serviceName": "web", "servicePort": 80}, True),
    ({"resource": {"kind": "Bucket", "name": "static"}}, True),
    ({"service": {"name": "web", "port": {"number": 81}}}, False),
    ({"service": {"name": "missing", "port": {"number": 80}}}, False),
    ({"serviceName": "web", "servicePort": "80"}, False),  # the full check accepts it
])
def test_plainly_routed_ingresses_skip_the_full_check(backend: Obj, plain: bool) -> None:
    web, svc, ep = _healthy()
    st_ = world(web, svc, ep, _ingress(backend))
    ctx = Context(st_)
    assert S._plainly_routed(ctx, st_.kind("Ingress")[0], NS) is plain
    _assert_same_as_plain(st_)


def test_an_ingress_to_a_service_without_ready_backend_is_not_plain() -> None:
    web = pod("web-1", labels={"app": "web"}, ready=False)
    st_ = world(web, service("web", {"app": "web"}), endpoints("web", not_ready=[web]),
                _ingress({"service": {"name": "web", "port": {"number": 80}}}))
    ctx = Context(st_)
    ing = st_.kind("Ingress")[0]
    assert not S._plainly_routed(ctx, ing, NS)
    assert S._broken_ingress(ctx, ing)
    _assert_same_as_plain(st_)


# -- generated worlds ------------------------------------------------------------------------

LABELS = st.sampled_from([{}, {"app": "a"}, {"app": "b"}, {"app": "a", "tier": "web"},
                          {"tier": "web"}])
NAMES = ("p0", "p1", "p2", "ghost")


@st.composite
def service_world(draw: Any) -> ClusterState:
    """A namespace of a few pods, Services, their Endpoints (naming pods that may or
    may not exist, match or be live), a workload and an Ingress; then some junk."""
    pods = []
    for name in NAMES[:3]:
        p = pod(name, labels=draw(LABELS), ready=draw(st.booleans()),
                phase=draw(st.sampled_from(["Running", "Pending", "Succeeded", "Failed"])))
        if draw(st.booleans()) and draw(st.booleans()):
            p["metadata"]["deletionTimestamp"] = "2025-06-02T11:59:00Z"
        pods.append(p)
    objs: list[Obj] = [p for p in pods if draw(st.integers(0, 5))]
    by_name = {p["metadata"]["name"]: p for p in pods}
    for i in range(draw(st.integers(1, 3))):
        name = f"s{i}"
        sel = draw(st.sampled_from([None, {"app": "a"}, {"app": "b"}, {"tier": "web"},
                                    {"app": "a", "tier": "web"}, {"app": "c"}]))
        svc = service(name, sel)
        if draw(st.integers(0, 5)) == 0:
            svc["spec"]["type"] = "ExternalName"
        if draw(st.booleans()):
            svc["spec"]["ports"].append({"port": 8443, "name": "https"})
        objs.append(svc)
        if draw(st.integers(0, 4)):
            ready = [by_name[n] for n in draw(st.lists(st.sampled_from(NAMES[:3]), max_size=2))]
            not_ready = [by_name[n] for n in draw(st.lists(st.sampled_from(NAMES[:3]),
                                                           max_size=2))]
            ep = endpoints(name, ready=ready, not_ready=not_ready)
            if ep.get("subsets") and draw(st.booleans()):
                ep["subsets"][0].setdefault("addresses", []).append(
                    {"ip": "10.0.0.9", "targetRef": {"kind": "Pod", "name": "ghost"}})
            objs.append(ep)
    dep = deployment("d", draw(LABELS) or {"app": "x"}, [container()],
                     replicas=draw(st.integers(0, 2)))
    objs += [dep, replicaset(dep)]
    backends = draw(st.lists(st.sampled_from([
        {"service": {"name": "s0", "port": {"number": 80}}},
        {"service": {"name": "s1", "port": {"name": "https"}}},
        {"service": {"name": "s0", "port": {"number": 81}}},
        {"service": {"name": "s2"}},
        {"serviceName": "s1", "servicePort": 80},
        {"service": {"name": "gone", "port": {"number": 80}}},
    ]), min_size=1, max_size=3))
    ing = _ingress(*backends)
    if draw(st.booleans()):
        ing["spec"]["defaultBackend"] = draw(st.sampled_from(backends))
    objs.append(ing)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(objs) - 1))
        paths = [p for p in _paths(objs[i]) if p[:1] not in (("kind",), ("metadata",), ())]
        if paths:
            objs[i] = _mutate(objs[i], draw(st.sampled_from(paths)), draw(junk),
                              draw(st.booleans()))
    return world(*objs)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(service_world())
def test_generated_worlds_suspects_match_the_plain_definitions(state: ClusterState) -> None:
    _assert_same_as_plain(state)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(service_world())
def test_generated_worlds_find_the_same_with_the_prepasses_let_through(
        state: ClusterState) -> None:
    _assert_prepasses_let_through_find_the_same(state)
