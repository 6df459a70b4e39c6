"""service-selector-mismatch, service-no-endpoints, ingress-backend-missing."""

from __future__ import annotations

import pytest
from _services_objects import (
    NS,
    Obj,
    apply_patch,
    assert_reversible,
    at,
    container,
    deployment,
    endpoints,
    event,
    fire,
    meta,
    one,
    pod,
    replicaset,
    service,
    world,
)

from aiops.diagnose import diagnose
from aiops.model import ClusterState

REDIS_LABELS = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "todo",
                "app.kubernetes.io/version": "7.2"}
REDIS_MATCH = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "todo"}


def redis_world(*extra: Obj, selector: dict[str, str] | None = None) -> ClusterState:
    """todo-redis Service selecting app=todo-redis while the pods use the
    app.kubernetes.io/* convention; two other apps of the same product around."""
    redis = deployment("redis", REDIS_LABELS, [container("redis", "redis:7.2", port=6379)],
                       match=REDIS_MATCH)
    redis_rs = replicaset(redis, "5f7b9")
    backend = deployment("todo-backend", {"app.kubernetes.io/name": "todo-backend",
                                          "app.kubernetes.io/part-of": "todo"},
                         [container("api", port=8080)])
    backend_rs = replicaset(backend, "6c8d4")
    frontend = deployment("todo-frontend", {"app": "todo-frontend", "tier": "web"},
                          [container("web", port=80)])
    frontend_rs = replicaset(frontend, "84f2a")
    svc = service("todo-redis", selector or {"app": "todo-redis"}, port=6379, target=6379,
                  port_name="redis")
    return world(redis, redis_rs, pod("redis-5f7b9-x2k4p", owner=redis_rs, ip="10.244.0.21"),
                 backend, backend_rs, pod("todo-backend-6c8d4-aaaaa", owner=backend_rs,
                                          ip="10.244.0.22"),
                 frontend, frontend_rs, pod("todo-frontend-84f2a-bbbbb", owner=frontend_rs,
                                            ip="10.244.0.23"),
                 svc, endpoints("todo-redis", changed=240), *extra)


# -- service-selector-mismatch ------------------------------------------------------------

def test_selector_mismatch_finds_the_redis_pods_under_another_label_key() -> None:
    st = redis_world()
    f = one("service-selector-mismatch", st)
    assert (f.rule, f.severity, f.kind, f.namespace, f.name) == \
        ("service-selector-mismatch", "critical", "Service", NS, "todo-redis")
    assert f.owner == "Service/todo-redis"
    assert "todo-redis" in f.summary and "app=todo-redis" in f.summary
    assert "Deployment/todo/redis" in f.summary
    texts = [e.text for e in f.evidence]
    assert 'selector: {"app": "todo-redis"}' in texts
    ep = next(e for e in f.evidence if e.ref == "Endpoints todo/todo-redis")
    assert "subsets: <none>" in ep.text
    labels = [e for e in f.evidence if e.ref.endswith("metadata.labels")]
    assert labels[0].text.startswith("pod redis-5f7b9-x2k4p labels: ")
    assert '"app.kubernetes.io/name": "redis"' in labels[0].text
    assert "pod-template-hash" not in labels[0].text
    assert not any("todo-frontend" in e.text for e in labels)
    assert f.first_seen == at(240)
    assert f.confidence >= 0.85
    assert f.docs.startswith("https://kubernetes.io/docs/")
    cmds = f.remediation.commands
    assert cmds[0] == "kubectl get endpoints -n todo todo-redis -o yaml"
    assert any(c.startswith("kubectl patch service -n todo todo-redis --type=merge") and
               '"app": null' in c for c in cmds)


def test_selector_mismatch_action_patches_the_selector_with_exact_inverse() -> None:
    st = redis_world()
    f = one("service-selector-mismatch", st)
    a = f.remediation.action
    assert a is not None
    assert (a.kind, a.tier) == ("patch", "medium")
    assert a.target == {"apiVersion": "v1", "kind": "Service", "namespace": NS,
                        "name": "todo-redis"}
    assert a.patch == [{"op": "replace", "path": "/spec/selector", "value": REDIS_MATCH}]
    assert a.inverse == [{"op": "replace", "path": "/spec/selector",
                          "value": {"app": "todo-redis"}}]
    svc = st.get("Service", NS, "todo-redis")
    patched = assert_reversible(a, svc)
    # the proposed selector really selects the redis pod and only it
    sel = patched["spec"]["selector"]
    chosen = [p["metadata"]["name"] for p in st.kind("Pod")
              if all(p["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    assert chosen == ["redis-5f7b9-x2k4p"]
    assert any("endpoints" in v for v in a.validate)


def test_selector_mismatch_typo_in_value_same_key() -> None:
    st = redis_world(selector={"app.kubernetes.io/name": "rediss",
                               "app.kubernetes.io/part-of": "todo"})
    f = one("service-selector-mismatch", st)
    assert "redis-5f7b9-x2k4p" in " ".join(e.text for e in f.evidence)
    assert f.remediation.action is not None
    assert f.remediation.action.patch[0]["value"] == REDIS_MATCH


def test_selector_mismatch_without_any_similar_pod_is_a_warning_without_patch() -> None:
    st = redis_world(service("payments", {"app": "payments-gateway"}),
                     endpoints("payments"))
    found = {f.name: f for f in fire("service-selector-mismatch", st)}
    f = found["payments"]
    assert f.severity == "warning"
    assert f.remediation.action is None
    assert "none is labelled similarly" in f.summary
    assert not [e for e in f.evidence if e.ref.endswith("metadata.labels")]


def test_selector_mismatch_silent_when_selector_matches() -> None:
    st = redis_world(selector=REDIS_MATCH)
    assert fire("service-selector-mismatch", st) == []


@pytest.mark.parametrize("svc", [
    service("external-db", None),  # selector-less: manual Endpoints
    {**service("legacy", {"app": "nothing"}), "spec": {"type": "ExternalName",
                                                       "externalName": "db.example.com",
                                                       "selector": {"app": "nothing"}}},
])
def test_selector_mismatch_ignores_selectorless_and_externalname(svc: Obj) -> None:
    st = redis_world(selector=REDIS_MATCH)
    st.objects["Service"].append(svc)
    assert fire("service-selector-mismatch", st) == []
    assert fire("service-no-endpoints", st) == []


def test_selector_mismatch_ignores_finished_pods_only_matching() -> None:
    # a selector matching only Succeeded job pods still routes nowhere
    st = redis_world()
    done = pod("migrate-abcde", labels={"app": "todo-redis"}, phase="Succeeded", ready=False)
    st.objects["Pod"].append(done)
    assert [f.name for f in fire("service-selector-mismatch", st)] == ["todo-redis"]


# -- service-no-endpoints ----------------------------------------------------------------

def notifier_world(*, ep: bool = True, slices: bool = False, ready: bool = False) -> ClusterState:
    dep = deployment("todo-notifier", {"app": "todo-notifier"}, [container("notifier")])
    rs = replicaset(dep, "9b7c6")
    p = pod("todo-notifier-9b7c6-q8w2e", owner=rs, ready=ready, ip="10.244.0.31")
    svc = service("todo-notifier", {"app": "todo-notifier"})
    probe = event(p, "Unhealthy",
                  "Readiness probe failed: HTTP probe failed with statuscode: 503",
                  count=42, first=85, field_path="spec.containers{notifier}")
    objs: list[Obj] = [dep, rs, p, svc, probe]
    if ep:
        objs.append(endpoints("todo-notifier", ready=[p] if ready else None,
                              not_ready=None if ready else [p]))
    if slices:
        objs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                     "metadata": meta("todo-notifier-abc12", labels={
                         "kubernetes.io/service-name": "todo-notifier"}),
                     "addressType": "IPv4",
                     "endpoints": [{"addresses": ["10.244.0.31"],
                                    "conditions": {"ready": ready, "serving": ready,
                                                   "terminating": False},
                                    "targetRef": {"kind": "Pod", "namespace": NS,
                                                  "name": p["metadata"]["name"]}}],
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    return world(*objs)


def test_no_endpoints_names_the_unready_pod_and_its_failing_probe() -> None:
    f = one("service-no-endpoints", notifier_world())
    assert (f.severity, f.kind, f.name, f.owner) == \
        ("critical", "Service", "todo-notifier", "Service/todo-notifier")
    assert "todo-notifier-9b7c6-q8w2e" in f.summary
    assert "statuscode: 503" in f.summary
    texts = " | ".join(e.text for e in f.evidence)
    assert "notReadyAddresses: 10.244.0.31 (todo-notifier-9b7c6-q8w2e)" in texts
    assert "addresses: none" in texts
    probe = next(e for e in f.evidence if e.source == "event")
    assert probe.text == "Unhealthy: Readiness probe failed: HTTP probe failed with " \
                         "statuscode: 503"
    assert probe.ref.startswith("event Unhealthy x42, last ")
    assert f.first_seen == at(90)  # Ready went False
    assert "kubectl describe pod -n todo todo-notifier-9b7c6-q8w2e" in \
        f.remediation.commands
    assert f.remediation.commands[0] == "kubectl get endpoints -n todo todo-notifier -o yaml"
    assert f.remediation.action is None


def test_no_endpoints_reads_endpointslices() -> None:
    f = one("service-no-endpoints", notifier_world(ep=False, slices=True))
    assert "EndpointSlices todo-notifier-abc12: ready endpoints: none; not ready: " \
           "10.244.0.31 (todo-notifier-9b7c6-q8w2e)" in [e.text for e in f.evidence]


def test_no_endpoints_from_pods_when_no_endpoint_object_was_captured() -> None:
    f = one("service-no-endpoints", notifier_world(ep=False))
    assert any(e.text.startswith("no Endpoints object captured") for e in f.evidence)


def test_no_endpoints_explains_pending_and_waiting_pods() -> None:
    st = notifier_world()
    p = st.get("Pod", NS, "todo-notifier-9b7c6-q8w2e")
    p["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 5m0s restarting failed container=notifier "
                               "pod=todo-notifier-9b7c6-q8w2e_todo(uid)"}}
    f = one("service-no-endpoints", st)
    assert "container notifier is waiting (CrashLoopBackOff)" in f.summary
    p["status"]["phase"] = "Pending"
    p["status"]["conditions"][0] = {
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes "
                   "are available: 1 No preemption victims found for incoming pod."}
    f = one("service-no-endpoints", st)
    assert "is Pending (Unschedulable: 0/1 nodes are available: 1 Insufficient memory" \
        in f.summary


@pytest.mark.parametrize("kw", [dict(ready=True), dict(ready=True, ep=False, slices=True),
                                dict(ready=True, ep=False)])
def test_no_endpoints_silent_when_a_pod_is_ready(kw: dict) -> None:
    assert fire("service-no-endpoints", notifier_world(**kw)) == []


def test_slice_endpoint_with_unknown_readiness_counts_as_ready() -> None:
    st = notifier_world(ep=False, slices=True)
    del st.kind("EndpointSlice")[0]["endpoints"][0]["conditions"]["ready"]
    assert fire("service-no-endpoints", st) == []


def test_no_endpoints_for_a_deployment_scaled_to_zero_proposes_scale_up() -> None:
    dep = deployment("todo-search", {"app": "todo-search"}, [container()], replicas=0)
    st = world(dep, service("todo-search", {"app": "todo-search"}), endpoints("todo-search"))
    assert fire("service-selector-mismatch", st) == []
    f = one("service-no-endpoints", st)
    assert f.severity == "warning"
    assert "scaled to 0 replicas" in f.summary
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("scale", "low")
    assert a.target["kind"] == "Deployment" and a.target["name"] == "todo-search"
    assert_reversible(a, dep)
    assert apply_patch(dep, a.patch)["spec"]["replicas"] == 1


def test_mismatch_supersedes_no_endpoints_in_the_engine() -> None:
    d = diagnose(redis_world(), namespace=NS)
    svc = [f.rule for f in d.findings if f.kind == "Service" and f.name == "todo-redis"]
    assert svc == ["service-selector-mismatch"]
    assert d.failures == []


# -- ingress-backend-missing -------------------------------------------------------------

def ingress(paths: list[tuple[str, str, int | str]], *, default: tuple[str, int] | None = None,
            host: str = "todo.example.com") -> Obj:
    def backend(svc: str, port: int | str) -> Obj:
        return {"service": {"name": svc, "port": {"number": port} if isinstance(port, int)
                            else {"name": port}}}

    spec: Obj = {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
        {"path": path, "pathType": "Prefix", "backend": backend(s, port)}
        for path, s, port in paths]}}]}
    if default:
        spec["defaultBackend"] = backend(*default)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": meta("todo"), "spec": spec}


def ingress_world(ing: Obj, *, frontend_ready: bool = True) -> ClusterState:
    dep = deployment("todo-frontend", {"app": "todo-frontend"}, [container("web")])
    rs = replicaset(dep, "84f2a")
    p = pod("todo-frontend-84f2a-bbbbb", owner=rs, ready=frontend_ready, ip="10.244.0.23")
    api = deployment("todo-backend", {"app": "todo-backend"}, [container("api")])
    api_rs = replicaset(api, "6c8d4")
    q = pod("todo-backend-6c8d4-aaaaa", owner=api_rs, ip="10.244.0.22")
    return world(dep, rs, p, api, api_rs, q, ing,
                 service("todo-frontend", {"app": "todo-frontend"}),
                 endpoints("todo-frontend", ready=[p] if frontend_ready else None,
                           not_ready=None if frontend_ready else [p]),
                 service("todo-backend", {"app": "todo-backend"}, cluster_ip="10.96.10.11"),
                 endpoints("todo-backend", ready=[q]))


def test_ingress_healthy_is_silent() -> None:
    ing = ingress([("/", "todo-frontend", 80), ("/api", "todo-backend", "http")],
                  default=("todo-frontend", 80))
    assert fire("ingress-backend-missing", ingress_world(ing)) == []


def test_ingress_missing_service_with_close_name_gets_a_reversible_fix() -> None:
    ing = ingress([("/", "todo-frontend", 80), ("/api", "todo-backnd", 80)])
    st = ingress_world(ing)
    f = one("ingress-backend-missing", st)
    assert (f.severity, f.kind, f.name, f.owner) == ("critical", "Ingress", "todo",
                                                     "Ingress/todo")
    assert "Service todo/todo-backnd does not exist; did you mean todo-backend?" in f.summary
    ev = f.evidence[0]
    assert ev.ref == "Ingress/todo/todo spec.rules.0.http.paths.1.backend"
    assert ev.text.startswith("rule host=todo.example.com path=/api: ")
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("patch", "medium")
    assert a.target["kind"] == "Ingress" and a.target["apiVersion"] == "networking.k8s.io/v1"
    patched = assert_reversible(a, ing)
    assert patched["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["name"] == \
        "todo-backend"
    assert f.first_seen == at(600)  # no events: since the Ingress exists
    assert f.remediation.commands[0] == "kubectl describe ingress -n todo todo"


def test_ingress_port_the_service_does_not_expose() -> None:
    ing = ingress([("/", "todo-frontend", 8080)])
    f = one("ingress-backend-missing", ingress_world(ing))
    assert "does not expose port 8080 (it exposes 80 (http))" in f.summary
    a = f.remediation.action
    assert a is not None
    patched = assert_reversible(a, ing)
    assert patched["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == \
        {"number": 80}


def test_ingress_named_port_missing_and_default_backend_missing() -> None:
    ing = ingress([("/", "todo-frontend", "web")], default=("todo-default", 80))
    f = one("ingress-backend-missing", ingress_world(ing))
    texts = [e.text for e in f.evidence]
    assert "defaultBackend: Service todo/todo-default does not exist" in texts
    assert any("does not expose port web" in t for t in texts)
    assert f.remediation.action is None  # two problems: no single patch
    assert "(+1 more)" in f.summary


def test_ingress_backend_without_ready_endpoints_is_a_warning() -> None:
    ing = ingress([("/", "todo-frontend", 80)])
    st = ingress_world(ing, frontend_ready=False)
    st.objects["Event"] = [event(ing, "Sync", "Scheduled for sync", type="Normal",
                                 component="nginx-ingress-controller")]
    f = one("ingress-backend-missing", st)
    assert f.severity == "warning"
    assert "has no ready endpoints" in f.summary
    assert f.remediation.action is None


def test_ingress_v1beta1_fields_and_controller_events() -> None:
    ing: Obj = {"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress",
                "metadata": meta("legacy"),
                "spec": {"backend": {"serviceName": "todo-frontnd", "servicePort": 80}}}
    st = ingress_world(ing)
    warn = event(ing, "Translate", 'Translation failed: invalid ingress spec: could not find '
                 'service "todo/todo-frontnd"', component="loadbalancer-controller",
                 first=50, count=7)
    st.objects["Event"] = [warn]
    f = one("ingress-backend-missing", st)
    assert f.name == "legacy"
    assert any(e.source == "event" and "could not find service" in e.text for e in f.evidence)
    assert f.first_seen == at(50)
    a = f.remediation.action
    assert a is not None
    assert apply_patch(ing, a.patch)["spec"]["backend"]["serviceName"] == "todo-frontend"
    assert_reversible(a, ing)


def test_malformed_services_and_ingresses_do_not_raise() -> None:
    st = redis_world()
    st.objects["Service"].append({"kind": "Service", "metadata": {"name": "x", "namespace": NS},
                                  "spec": {"selector": ["not", "a", "map"], "ports": "80"}})
    st.objects["Ingress"] = [{"kind": "Ingress", "metadata": {"name": "y", "namespace": NS},
                              "spec": {"rules": [None, {"http": {"paths": [{"backend": 3}]}}],
                                       "defaultBackend": {"service": {"name": "nope",
                                                                      "port": None}}}}]
    st.objects["Endpoints"].append({"kind": "Endpoints", "metadata": {"name": "x",
                                                                      "namespace": NS},
                                    "subsets": [{"addresses": [None, "1.2.3.4"]}]})
    for rid in ("service-selector-mismatch", "service-no-endpoints", "ingress-backend-missing"):
        for f in fire(rid, st):
            f.to_dict()


def test_pod_target_scope_includes_the_service_of_the_pod() -> None:
    st = notifier_world()
    found = fire("service-no-endpoints", st, namespace=NS, pod="todo-notifier-9b7c6-q8w2e")
    assert [f.name for f in found] == ["todo-notifier"]


# -- demo cluster --------------------------------------------------------------------------

def test_demo_todo_redis_selector_mismatch() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.kind("Service"), "the bundled demo cluster has services"
    d = diagnose(st, namespace="todo")
    f = next(f for f in d.findings if f.rule == "service-selector-mismatch"
             and f.name == "todo-redis")
    assert f.severity == "critical"
    a = f.remediation.action
    assert a is not None and a.tier == "medium"
    assert_reversible(a, st.get("Service", "todo", "todo-redis"))
    assert not any(x.rule == "service-no-endpoints" and x.name == "todo-redis"
                   for x in d.findings)
