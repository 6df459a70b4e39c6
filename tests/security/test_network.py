"""Network checks: label-selector matching, namespaces and pods without
NetworkPolicy, NodePort/LoadBalancer exposure, Ingress TLS; every fix applied
with the jsonpatch library, re-audited and (patches) rolled back exactly.

The helpers at the top are shared with the reliability and resources tests.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from aiops.diagnose.finding import Action
from aiops.model import ClusterState
from aiops.security import audit, load_manifests
from aiops.security.check import Result
from aiops.security.checks.network import host_covered, selector_matches

Obj = dict[str, Any]


# -- shared helpers -----------------------------------------------------------

def state_of(objs: list[Obj]) -> ClusterState:
    s = ClusterState(source="test")
    s.add(copy.deepcopy(objs))
    return s


def results(objs: list[Obj], check: str) -> list[Result]:
    """Every result of one check; a check that raised fails the test."""
    report = audit(state_of(objs), checks=[check])
    assert not report.check_failures, report.check_failures
    return [r for r in report.results if r.check.id == check]


def failed(objs: list[Obj], check: str) -> list[Result]:
    return [r for r in results(objs, check) if not r.passed]


def one_failure(objs: list[Obj], check: str) -> Result:
    out = failed(objs, check)
    assert len(out) == 1, [r.message for r in out]
    return out[0]


def fix_roundtrip(objs: list[Obj], check: str, *, name: str | None = None) -> list[Obj]:
    """Apply the fix of the (only, or `name`d) failure with jsonpatch, re-audit and
    see the subject pass; a patch's inverse must give the original back exactly.
    Returns the fixed objects."""
    fails = [r for r in failed(objs, check) if name is None or r.name == name]
    assert len(fails) == 1, [r.message for r in fails]
    r = fails[0]
    action = r.fix
    assert isinstance(action, Action)
    if action.kind == "create":
        created = jsonpatch.apply_patch({}, action.patch)
        assert created["metadata"]["namespace"] == action.target["namespace"]
        fixed = [*objs, created]
    else:
        t = action.target
        orig = next(o for o in objs if o["kind"] == t["kind"]
                    and o["metadata"]["name"] == t["name"]
                    and o["metadata"].get("namespace", "default") == t["namespace"])
        before = copy.deepcopy(orig)
        patched = jsonpatch.apply_patch(orig, action.patch)
        assert orig == before  # the patch is applied to a copy
        assert patched != orig
        assert jsonpatch.apply_patch(patched, action.inverse) == orig
        fixed = [patched if o is orig else o for o in objs]
    again = [x for x in failed(fixed, check) if (x.namespace, x.kind, x.name, x.container)
             == (r.namespace, r.kind, r.name, r.container)]
    assert again == [], [x.message for x in again]
    return fixed


def deployment(name: str = "web", ns: str | None = "shop", *, replicas: Any = 2,
               labels: Any = None, containers: list[Obj] | None = None,
               pod_spec: Obj | None = None) -> Obj:
    labels = {"app": name} if labels is None else labels
    md: Obj = {"name": name}
    if ns is not None:
        md["namespace"] = ns
    spec: Obj = {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": containers or [
                                  {"name": name, "image": "web:1.0",
                                   "ports": [{"containerPort": 8080}]}],
                                  **(pod_spec or {})}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md, "spec": spec}


def cronjob(name: str = "backup", ns: str = "shop", labels: Obj | None = None,
            containers: list[Obj] | None = None) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
                "metadata": {"labels": labels or {"app": name}},
                "spec": {"restartPolicy": "OnFailure", "containers": containers or [
                    {"name": name, "image": "backup:1.0"}]}}}}}}


def netpol(name: str, ns: str = "shop", selector: Any = None) -> Obj:
    spec: Obj = {"policyTypes": ["Ingress"]}
    if selector is not None:
        spec["podSelector"] = selector
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


# -- label selectors ------------------------------------------------------------

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize("selector, expected", [
    ({}, True),  # empty selects everything
    (None, False),  # null selects nothing
    ({"matchLabels": {"app": "web"}}, True),
    ({"matchLabels": {"app": "web", "tier": "back"}}, False),
    ({"matchLabels": {"missing": "x"}}, False),
    ({"matchLabels": None}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}, False),
    ({"matchExpressions": [{"key": "nope", "operator": "In", "values": ["front"]}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
    ({"matchExpressions": [{"key": "nope", "operator": "NotIn", "values": ["a"]}]}, True),
    ({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "nope", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "nope", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, False),
    ({"matchExpressions": [{"key": "env", "operator": "Gt", "values": ["1"]}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": None}]}, False),
    ({"matchExpressions": None}, True),
    ({"matchLabels": {"app": "web"},  # all terms must hold
      "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]},
                           {"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]},
                           {"key": "canary", "operator": "DoesNotExist"}]}, True),
])
def test_selector_matches(selector: Any, expected: bool) -> None:
    assert selector_matches(selector, LABELS) is expected


def test_selector_on_no_labels() -> None:
    assert selector_matches({}, {})
    assert not selector_matches({"matchLabels": {"a": "b"}}, {})
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {})


# -- namespace without NetworkPolicy ------------------------------------------------

def test_namespace_without_policy_fails_and_default_deny_fixes_it() -> None:
    objs = [deployment()]
    r = one_failure(objs, "network-namespace-no-policy")
    assert (r.kind, r.name, r.namespace) == ("Namespace", "shop", "shop")
    assert "shop" in r.message and "1 workload" in r.message
    assert r.fix is not None and r.fix.kind == "create" and r.fix.tier == "critical"
    assert "cuts ALL ingress" in r.fix.description and "cuts ALL ingress" in r.fix_text
    policy = r.fix.patch[0]["value"]
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    fixed = fix_roundtrip(objs, "network-namespace-no-policy")
    # the same default-deny isolates the workload's pods too
    assert failed(fixed, "network-pod-not-selected") == []


def test_namespace_with_any_policy_passes() -> None:
    objs = [deployment(), netpol("other", selector={"matchLabels": {"app": "other"}})]
    assert failed(objs, "network-namespace-no-policy") == []


def test_namespace_without_workloads_passes() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "empty"}}
    rs = results([ns, deployment()], "network-namespace-no-policy")
    by_ns = {r.name: r.passed for r in rs}
    assert by_ns == {"empty": True, "shop": False}


def test_policy_in_another_namespace_does_not_count() -> None:
    objs = [deployment(), netpol("deny", ns="other", selector={})]
    assert len(failed(objs, "network-namespace-no-policy")) == 1


def test_system_namespaces_are_reported_at_info_not_warning() -> None:
    objs = [deployment("coredns", "kube-system"), deployment("web", "shop")]
    assert [r.name for r in failed(objs, "network-namespace-no-policy")] == ["shop"]
    info = one_failure(objs, "network-system-namespace-no-policy")
    assert info.name == "kube-system" and info.severity == "info"
    assert info.fix is not None and info.fix.tier == "critical"
    # workloads there are left to the namespace-level info finding
    assert [r.namespace for r in failed(objs, "network-pod-not-selected")] == ["shop"]
    fix_roundtrip(objs, "network-system-namespace-no-policy")


# -- pods no policy selects -------------------------------------------------------

def test_pod_not_selected_when_policies_select_others() -> None:
    objs = [deployment("web"), deployment("db", labels={"app": "db"}),
            netpol("db-only", selector={"matchLabels": {"app": "db"}})]
    r = one_failure(objs, "network-pod-not-selected")
    assert r.name == "web" and "app=web" in r.message and "none of the 1" in r.message
    assert r.fix is not None and r.fix.kind == "create" and r.fix.tier == "critical"
    assert "other namespaces" in r.fix.description
    fix_roundtrip(objs, "network-pod-not-selected")


def test_pod_selected_by_match_expressions() -> None:
    sel = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]},
                                {"key": "canary", "operator": "DoesNotExist"}]}
    objs = [deployment("web"), netpol("p", selector=sel)]
    assert failed(objs, "network-pod-not-selected") == []
    canary = deployment("web", labels={"app": "web", "canary": "true"})
    assert len(failed([canary, netpol("p", selector=sel)], "network-pod-not-selected")) == 1


def test_policy_without_pod_selector_selects_the_namespace() -> None:
    objs = [deployment("web"), netpol("all")]  # podSelector omitted: read as {}
    assert failed(objs, "network-pod-not-selected") == []


def test_cronjob_template_labels_are_matched() -> None:
    cj = cronjob(labels={"app": "backup", "role": "batch"})
    sel = {"matchLabels": {"role": "batch"}}
    assert failed([cj, netpol("batch", selector=sel)], "network-pod-not-selected") == []
    r = one_failure([cj, netpol("x", selector={"matchLabels": {"role": "web"}})],
                    "network-pod-not-selected")
    assert r.kind == "CronJob"
    fix_roundtrip([cj, netpol("x", selector={"matchLabels": {"role": "web"}})],
                  "network-pod-not-selected")


def test_pods_without_labels_get_words_not_a_policy() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
           "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    r = one_failure([pod, netpol("x", selector={"matchLabels": {"a": "b"}})],
                    "network-pod-not-selected")
    assert r.fix is None and "label the pods" in r.fix_text
    # null labels in a template are no labels
    d = deployment(labels={})
    d["spec"]["template"]["metadata"]["labels"] = None
    assert one_failure([d, netpol("x", selector={"matchLabels": {"a": "b"}})],
                       "network-pod-not-selected").fix is None
    # ... and an empty podSelector still selects them
    assert failed([d, netpol("all", selector={})], "network-pod-not-selected") == []


def test_host_network_pods_are_left_to_the_pss_check() -> None:
    d = deployment(pod_spec={"hostNetwork": True})
    assert failed([d, netpol("x", selector={"matchLabels": {"a": "b"}})],
                  "network-pod-not-selected") == []


# -- Services -------------------------------------------------------------------

def service(name: str = "web", type_: str | None = "ClusterIP", **spec: Any) -> Obj:
    s: Obj = {"selector": {"app": name},
              "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if type_ is not None:
        s["type"] = type_
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"}, "spec": s}


def test_nodeport_fails_and_the_patch_makes_it_clusterip() -> None:
    svc = service(type_="NodePort", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080},
                         {"name": "metrics", "port": 9090}])
    r = one_failure([svc], "network-service-nodeport")
    assert "30080" in r.message and "NodePort" in r.message
    assert r.fix is not None and r.fix.tier == "critical"
    assert "lose access" in r.fix.description
    fixed = fix_roundtrip([svc], "network-service-nodeport")
    spec = fixed[0]["spec"]
    assert spec["type"] == "ClusterIP" and "externalTrafficPolicy" not in spec
    assert all("nodePort" not in p for p in spec["ports"])


@pytest.mark.parametrize("type_", ["ClusterIP", None, "ExternalName"])
def test_other_service_types_pass_the_nodeport_check(type_: str | None) -> None:
    assert failed([service(type_=type_)], "network-service-nodeport") == []


def test_open_loadbalancer_is_danger_without_a_patch() -> None:
    for extra in ({}, {"loadBalancerSourceRanges": None}, {"loadBalancerSourceRanges": []}):
        r = one_failure([service(type_="LoadBalancer", **extra)], "network-loadbalancer-open")
        assert r.severity == "danger" and r.fix is None
        assert "loadBalancerSourceRanges" in r.fix_text
        assert failed([service(type_="LoadBalancer", **extra)],
                      "network-loadbalancer-exposed") == []


def test_restricted_or_internal_loadbalancer_is_info() -> None:
    ranged = service(type_="LoadBalancer", loadBalancerSourceRanges=["10.0.0.0/8"])
    assert failed([ranged], "network-loadbalancer-open") == []
    r = one_failure([ranged], "network-loadbalancer-exposed")
    assert r.severity == "info" and "10.0.0.0/8" in r.message
    internal = service(type_="LoadBalancer")
    internal["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    assert failed([internal], "network-loadbalancer-open") == []
    assert "internal" in one_failure([internal], "network-loadbalancer-exposed").message
    not_internal = copy.deepcopy(internal)
    not_internal["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/aws-load-balancer-internal": "false"}
    assert len(failed([not_internal], "network-loadbalancer-open")) == 1
    assert failed([service()], "network-loadbalancer-exposed") == []


# -- Ingress TLS ------------------------------------------------------------------

def ingress(hosts: list[str | None], tls: Any = "absent") -> Obj:
    rules = [({"host": h} if h else {}) | {"http": {"paths": [
        {"path": "/", "pathType": "Prefix",
         "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}} for h in hosts]
    spec: Obj = {"rules": rules}
    if tls != "absent":
        spec["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}


@pytest.mark.parametrize("tls", ["absent", None, []])
def test_ingress_without_tls_fails(tls: Any) -> None:
    r = one_failure([ingress(["shop.example.com"], tls)], "network-ingress-no-tls")
    assert "shop.example.com" in r.message and r.fix is None
    assert "secretName" in r.fix_text


def test_ingress_tls_host_coverage() -> None:
    ok = ingress(["a.example.com", "b.example.com"],
                 [{"hosts": ["a.example.com"], "secretName": "a"},
                  {"hosts": ["*.example.com"], "secretName": "wild"}])
    assert failed([ok], "network-ingress-no-tls") == []
    partial = ingress(["a.example.com", "deep.b.example.com"],
                      [{"hosts": ["*.example.com"], "secretName": "wild"}])
    r = one_failure([partial], "network-ingress-no-tls")
    assert "deep.b.example.com" in r.message and "a.example.com," not in r.message
    # a tls entry without hosts is the controller's default certificate: covers all
    assert failed([ingress(["x.example.com"], [{"secretName": "default"}])],
                  "network-ingress-no-tls") == []
    # a rule without host is covered by any tls entry
    assert failed([ingress([None], [{"hosts": ["a.example.com"], "secretName": "a"}])],
                  "network-ingress-no-tls") == []


def test_host_covered() -> None:
    assert host_covered("a.example.com", ["*.example.com"])
    assert not host_covered("example.com", ["*.example.com"])
    assert not host_covered("a.b.example.com", ["*.example.com"])
    assert host_covered("a.example.com", ["a.example.com"])
    assert not host_covered("a.example.com", [])


# -- manifests and the demo ---------------------------------------------------------

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: web:1.0
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: NodePort
  selector: {app: web}
  ports:
    - port: 80
      nodePort: 30080
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  rules:
    - host: shop.example.com
"""


def test_manifests_are_audited_with_file_and_line(tmp_path: Any) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(MANIFEST)
    state, origin = load_manifests(f)
    report = audit(state, origin=origin)
    assert not report.check_failures
    got = {(r.check.id, r.name): r for r in report.failures() if r.check.family == "network"}
    lines = MANIFEST.splitlines()

    def start(kind: str) -> int:  # the document's first line (apiVersion), 1-based
        return lines.index(f"kind: {kind}")

    assert got[("network-service-nodeport", "web")].line == start("Service")
    assert got[("network-service-nodeport", "web")].file == str(f)
    assert got[("network-ingress-no-tls", "web")].line == start("Ingress")
    assert got[("network-pod-not-selected", "web")].line == start("Deployment")
    assert ("network-namespace-no-policy", "shop") in got
    # adding the proposed default-deny to the manifests fixes both policy checks
    fix = got[("network-namespace-no-policy", "shop")].fix
    assert fix is not None
    import yaml
    f.write_text(MANIFEST + "---\n" + yaml.safe_dump(fix.patch[0]["value"]))
    state, origin = load_manifests(f)
    ids = {r.check.id for r in audit(state, origin=origin).failures()}
    assert not {"network-namespace-no-policy", "network-pod-not-selected"} & ids


def test_demo_cluster_network_findings() -> None:
    from aiops.sources import open_source

    report = audit(open_source("demo"))
    assert not report.check_failures
    fails = {(r.check.id, r.namespace, r.name) for r in report.failures()}
    assert ("network-namespace-no-policy", "todo", "todo") in fails
    assert ("network-ingress-no-tls", "shop", "shop") in fails
    assert ("network-system-namespace-no-policy", "kube-system", "kube-system") in fails
    assert not any(f[0] == "network-namespace-no-policy" and f[1] == "kube-system"
                   for f in fails)
