"""Reliability checks: probes, PDBs, spreading, replicas, the default namespace
and HPA sanity; fixes applied with jsonpatch, re-audited and rolled back."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from aiops.model import ClusterState
from aiops.security import audit, load_manifests
from aiops.security.registry import load_checks
from tests.security.test_network import (
    Obj,
    cronjob,
    deployment,
    failed,
    fix_roundtrip,
    netpol,
    one_failure,
    results,
)

PROBES = ("probe-liveness-missing", "probe-readiness-missing")


# -- probes -----------------------------------------------------------------------

@pytest.mark.parametrize("cid, field", [("probe-liveness-missing", "livenessProbe"),
                                        ("probe-readiness-missing", "readinessProbe")])
def test_probe_missing_fails_and_tcp_probe_fixes(cid: str, field: str) -> None:
    objs = [deployment()]
    r = one_failure(objs, cid)
    assert r.container == "web" and field in r.message
    assert r.fix is not None and r.fix.tier == "medium" and "8080" in r.fix.description
    fixed = fix_roundtrip(objs, cid)
    c = fixed[0]["spec"]["template"]["spec"]["containers"][0]
    assert c[field]["tcpSocket"] == {"port": 8080}


@pytest.mark.parametrize("cid, field", [("probe-liveness-missing", "livenessProbe"),
                                        ("probe-readiness-missing", "readinessProbe")])
def test_probe_null_is_missing_and_rollback_restores_the_null(cid: str, field: str) -> None:
    d = deployment(containers=[{"name": "web", "image": "w:1", field: None,
                                "ports": [{"containerPort": 80, "protocol": "TCP"}]}])
    fix_roundtrip([d], cid)


def test_probe_present_passes() -> None:
    probe = {"httpGet": {"path": "/healthz", "port": 8080}}
    d = deployment(containers=[{"name": "web", "image": "w:1", "livenessProbe": probe,
                                "readinessProbe": probe}])
    for cid in PROBES:
        assert failed([d], cid) == []


def test_probe_without_tcp_port_gives_words() -> None:
    d = deployment(containers=[{"name": "dns", "image": "d:1",
                                "ports": [{"containerPort": 53, "protocol": "UDP"}]}])
    for cid in PROBES:
        r = one_failure([d], cid)
        assert r.fix is None and "httpGet" in r.fix_text


def test_probes_not_required_for_init_containers_jobs_and_one_shot_pods() -> None:
    probe = {"exec": {"command": ["true"]}}
    d = deployment(containers=[{"name": "web", "image": "w:1", "livenessProbe": probe,
                                "readinessProbe": probe}],
                   pod_spec={"initContainers": [{"name": "migrate", "image": "m:1"}]})
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "s"},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "j", "image": "j:1"}]}}}}
    one_shot = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "s"},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "p", "image": "p:1"}]}}
    for cid in PROBES:
        assert failed([d, job, cronjob(), one_shot], cid) == []
    bare = copy.deepcopy(one_shot)
    del bare["spec"]["restartPolicy"]  # defaults to Always: a long-running pod
    for cid in PROBES:
        assert one_failure([bare], cid).kind == "Pod"


# -- PodDisruptionBudgets -------------------------------------------------------------

def pdb(name: str = "web", selector: Any = None, **spec: Any) -> Obj:
    s: Obj = dict(spec)
    if selector is not None:
        s["selector"] = selector
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "shop"}, "spec": s}


def test_pdb_missing_fails_for_replicated_and_create_fixes() -> None:
    objs = [deployment(replicas=3)]
    r = one_failure(objs, "pdb-missing")
    assert "3 replicas" in r.message
    assert r.fix is not None and r.fix.kind == "create" and r.fix.tier == "medium"
    created = r.fix.patch[0]["value"]
    assert created["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}
    fixed = fix_roundtrip(objs, "pdb-missing")
    assert failed(fixed, "pdb-no-disruptions") == []


def test_pdb_missing_statefulset_with_match_expressions() -> None:
    sel = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "shop"},
           "spec": {"replicas": 3, "selector": sel, "serviceName": "db",
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "db", "image": "pg:16"}]}}}}
    r = one_failure([sts], "pdb-missing")
    assert r.fix is not None and r.fix.patch[0]["value"]["spec"]["selector"] == sel
    fix_roundtrip([sts], "pdb-missing")
    ok = pdb("db", {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
             maxUnavailable=1)
    assert failed([sts, ok], "pdb-missing") == []


def test_pdb_missing_passes_single_replica_daemonsets_and_other_selectors() -> None:
    assert failed([deployment(replicas=1)], "pdb-missing") == []
    assert failed([deployment(replicas=None)], "pdb-missing") == []
    assert failed([deployment(replicas=2), pdb(selector={"matchLabels": {"app": "web"}},
                                               maxUnavailable=1)], "pdb-missing") == []
    # an empty selector covers every pod of the namespace; a null one none
    assert failed([deployment(replicas=2), pdb(selector={}, maxUnavailable=1)],
                  "pdb-missing") == []
    assert len(failed([deployment(replicas=2), pdb(maxUnavailable=1)], "pdb-missing")) == 1
    assert len(failed([deployment(replicas=2), pdb(selector={"matchLabels": {"app": "x"}},
                                                   maxUnavailable=1)], "pdb-missing")) == 1


def hpa(target: str = "web", kind: str = "Deployment", **spec: Any) -> Obj:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": target, "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
                     **spec}}


def test_pdb_missing_counts_the_hpa_floor() -> None:
    objs = [deployment(replicas=None), hpa(minReplicas=3, maxReplicas=6)]
    assert "3 replicas" in one_failure(objs, "pdb-missing").message


@pytest.mark.parametrize("spec, why", [
    ({"maxUnavailable": 0}, "maxUnavailable is 0"),
    ({"maxUnavailable": "0%"}, "maxUnavailable is 0%"),
    ({"minAvailable": "100%"}, "minAvailable is 100%"),
    ({"minAvailable": 3}, "minAvailable 3 >= the 3 replica(s)"),
    ({"minAvailable": 5}, "minAvailable 5 >= the 3 replica(s)"),
])
def test_pdb_allowing_no_disruption_fails(spec: Obj, why: str) -> None:
    objs = [deployment(replicas=3), pdb(selector={"matchLabels": {"app": "web"}}, **spec)]
    r = one_failure(objs, "pdb-no-disruptions")
    assert why in r.message
    fixed = fix_roundtrip(objs, "pdb-no-disruptions")
    assert fixed[1]["spec"] == {"selector": {"matchLabels": {"app": "web"}},
                                "maxUnavailable": 1}


@pytest.mark.parametrize("spec", [{"maxUnavailable": 1}, {"minAvailable": 2},
                                  {"minAvailable": "50%"}, {"maxUnavailable": "25%"}])
def test_pdb_allowing_disruption_passes(spec: Obj) -> None:
    objs = [deployment(replicas=3), pdb(selector={"matchLabels": {"app": "web"}}, **spec)]
    assert failed(objs, "pdb-no-disruptions") == []


def test_pdb_min_available_counts_replicas_of_every_selected_workload() -> None:
    sel = {"matchLabels": {"tier": "web"}}
    a = deployment("a", labels={"app": "a", "tier": "web"}, replicas=2)
    b = deployment("b", labels={"app": "b", "tier": "web"}, replicas=2)
    assert failed([a, b, pdb(selector=sel, minAvailable=3)], "pdb-no-disruptions") == []
    assert len(failed([a, b, pdb(selector=sel, minAvailable=4)], "pdb-no-disruptions")) == 1
    # selecting nothing we know: cannot tell, passes
    assert failed([pdb(selector=sel, minAvailable=4)], "pdb-no-disruptions") == []


# -- spreading and replicas ---------------------------------------------------------

def test_replicas_not_spread_fails_and_the_constraint_fixes() -> None:
    objs = [deployment(replicas=3)]
    r = one_failure(objs, "replicas-not-spread")
    assert r.fix is not None and r.fix.tier == "medium"
    fixed = fix_roundtrip(objs, "replicas-not-spread")
    (tsc,) = fixed[0]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert tsc["topologyKey"] == "kubernetes.io/hostname"
    assert tsc["whenUnsatisfiable"] == "ScheduleAnyway"
    assert tsc["labelSelector"] == {"matchLabels": {"app": "web"}}


@pytest.mark.parametrize("pod_spec", [
    {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                    "whenUnsatisfiable": "DoNotSchedule"}]},
    {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}},
    {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname"}]}}},
])
def test_spread_or_anti_affinity_passes(pod_spec: Obj) -> None:
    assert failed([deployment(replicas=3, pod_spec=pod_spec)], "replicas-not-spread") == []


def test_spread_edge_cases() -> None:
    assert failed([deployment(replicas=1)], "replicas-not-spread") == []
    empty = deployment(replicas=3, pod_spec={"topologySpreadConstraints": [],
                                             "affinity": {"podAntiAffinity": None}})
    fix_roundtrip([empty], "replicas-not-spread")


def test_single_replica_deployment() -> None:
    for replicas in (1, None):
        objs = [deployment(replicas=replicas)]
        r = one_failure(objs, "deployment-single-replica")
        assert ("not set, so 1" in r.message) is (replicas is None)
        fixed = fix_roundtrip(objs, "deployment-single-replica")
        assert fixed[0]["spec"]["replicas"] == 2
    assert failed([deployment(replicas=2)], "deployment-single-replica") == []
    assert failed([deployment(replicas=0)], "deployment-single-replica") == []
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "shop"},
           "spec": {"replicas": 1, "template": {"spec": {"containers": []}}}}
    assert failed([sts], "deployment-single-replica") == []


def test_single_replica_with_an_hpa_patches_the_hpa() -> None:
    objs = [deployment(replicas=1), hpa(minReplicas=1, maxReplicas=1)]
    r = one_failure(objs, "deployment-single-replica")
    assert r.fix is not None and r.fix.target["kind"] == "HorizontalPodAutoscaler"
    fixed = fix_roundtrip(objs, "deployment-single-replica")
    assert fixed[1]["spec"]["minReplicas"] == 2 and fixed[1]["spec"]["maxReplicas"] == 2
    assert failed([deployment(replicas=1), hpa(minReplicas=2, maxReplicas=4)],
                  "deployment-single-replica") == []


def test_default_namespace() -> None:
    named = deployment(ns="default")
    r = one_failure([named], "workload-default-namespace")
    assert "runs in the default namespace" in r.message and r.fix is None
    assert "dedicated namespace" in r.fix_text
    unset = deployment(ns=None)
    assert "no metadata.namespace" in one_failure([unset], "workload-default-namespace").message
    assert failed([deployment(ns="shop")], "workload-default-namespace") == []


# -- HPAs ---------------------------------------------------------------------------

def test_hpa_min_not_below_max() -> None:
    for spec in ({"minReplicas": 3, "maxReplicas": 3}, {"minReplicas": 4, "maxReplicas": 2},
                 {"maxReplicas": 1}):
        objs = [deployment(), hpa(**spec)]
        r = one_failure(objs, "hpa-replicas-range")
        fixed = fix_roundtrip(objs, "hpa-replicas-range")
        assert fixed[1]["spec"]["maxReplicas"] > fixed[1]["spec"].get("minReplicas", 1)
        assert "cannot scale" in r.message
    assert failed([hpa(minReplicas=2, maxReplicas=5)], "hpa-replicas-range") == []
    assert failed([hpa(minReplicas=2)], "hpa-replicas-range") == []  # max missing: no claim


def test_hpa_min_one_on_a_replicated_workload() -> None:
    objs = [deployment(replicas=3), hpa(minReplicas=1, maxReplicas=10)]
    r = one_failure(objs, "hpa-min-replicas-one")
    assert "3 replicas" in r.message
    fixed = fix_roundtrip(objs, "hpa-min-replicas-one")
    assert fixed[1]["spec"]["minReplicas"] == 3
    # minReplicas unset is 1; the floor is capped at maxReplicas
    objs = [deployment(replicas=4), hpa(maxReplicas=2)]
    assert fix_roundtrip(objs, "hpa-min-replicas-one")[1]["spec"]["minReplicas"] == 2
    assert failed([deployment(replicas=1), hpa(maxReplicas=5)], "hpa-min-replicas-one") == []
    assert failed([deployment(replicas=3), hpa(minReplicas=2, maxReplicas=5)],
                  "hpa-min-replicas-one") == []


def test_hpa_target_missing() -> None:
    r = one_failure([deployment("web"), hpa("api")], "hpa-target-missing")
    assert "Deployment api" in r.message and r.fix is None
    assert failed([deployment("web"), hpa("web")], "hpa-target-missing") == []
    # a custom resource target cannot be checked
    assert failed([hpa("r", kind="Rollout")], "hpa-target-missing") == []
    # a kind we could not read: cannot tell
    s = ClusterState(source="test", objects={"HorizontalPodAutoscaler": [hpa("api")]},
                     unavailable={"Deployment": "forbidden"})
    report = audit(s, checks=["hpa-target-missing"])
    assert [r for r in report.results if not r.passed] == []


CPU_UTIL = [{"type": "Resource", "resource": {"name": "cpu", "target": {
    "type": "Utilization", "averageUtilization": 70}}}]


@pytest.mark.parametrize("spec", [{"metrics": CPU_UTIL}, {}, {"metrics": None},
                                  {"targetCPUUtilizationPercentage": 60}])
def test_hpa_on_cpu_without_request_fails(spec: Obj) -> None:
    d = deployment(containers=[{"name": "web", "image": "w:1",
                                "resources": {"limits": {"cpu": "500m"}}},
                               {"name": "side", "image": "s:1",
                                "resources": {"requests": {"cpu": "50m"}}}])
    objs = [d, hpa(maxReplicas=5, **spec)]
    r = one_failure(objs, "hpa-cpu-no-request")
    assert r.severity == "danger" and "web" in r.message and "side" not in r.message
    assert r.fix is not None and r.fix.target["kind"] == "Deployment"
    fixed = fix_roundtrip(objs, "hpa-cpu-no-request")
    c = fixed[0]["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["requests"]["cpu"] == "500m"  # taken from the limit


def test_hpa_not_on_cpu_utilization_passes() -> None:
    d = deployment(containers=[{"name": "web", "image": "w:1"}])
    mem = [{"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "Utilization", "averageUtilization": 70}}}]
    avg = [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "AverageValue", "averageValue": "200m"}}}]
    for metrics in (mem, avg):
        assert failed([d, hpa(maxReplicas=3, metrics=metrics)], "hpa-cpu-no-request") == []
    ok = deployment(containers=[{"name": "web", "image": "w:1",
                                 "resources": {"requests": {"cpu": "100m"}}}])
    assert failed([ok, hpa(maxReplicas=3, metrics=CPU_UTIL)], "hpa-cpu-no-request") == []


def test_hpa_container_resource_metric_looks_at_that_container_only() -> None:
    d = deployment(containers=[{"name": "web", "image": "w:1",
                                "resources": {"requests": {"cpu": "100m"}}},
                               {"name": "side", "image": "s:1"}])
    metric = [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "web", "target": {"type": "Utilization",
                                                      "averageUtilization": 60}}}]
    assert failed([d, hpa(maxReplicas=3, metrics=metric)], "hpa-cpu-no-request") == []
    metric[0]["containerResource"]["container"] = "side"
    objs = [d, hpa(maxReplicas=3, metrics=metric)]
    assert "side" in one_failure(objs, "hpa-cpu-no-request").message
    fix_roundtrip(objs, "hpa-cpu-no-request")


# -- manifests, demo, performance ------------------------------------------------------

def test_manifests(tmp_path: Any) -> None:
    (tmp_path / "app.yaml").write_text("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1.0"}]
""")
    (tmp_path / "hpa.yaml").write_text("""\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 6
""")
    state, origin = load_manifests(tmp_path)
    report = audit(state, origin=origin)
    assert not report.check_failures
    got = {r.check.id: r for r in report.failures() if r.check.family == "reliability"}
    assert {"workload-default-namespace", "pdb-missing", "replicas-not-spread",
            "hpa-min-replicas-one", "hpa-cpu-no-request", "probe-liveness-missing"} <= set(got)
    assert got["hpa-min-replicas-one"].file.endswith("hpa.yaml")
    assert got["pdb-missing"].file.endswith("app.yaml") and got["pdb-missing"].line == 1
    assert "deployment-single-replica" not in got and "hpa-target-missing" not in got


def test_demo_cluster() -> None:
    from aiops.sources import open_source

    report = audit(open_source("demo"))
    assert not report.check_failures
    fails = {(r.check.id, r.namespace, r.name) for r in report.failures()}
    # the demo's storefront HPA scales on CPU while the container has no CPU request
    assert ("hpa-cpu-no-request", "shop", "shop-storefront") in fails
    # todo-backend has a PDB (minAvailable 1), the frontend (2 replicas) has none
    assert ("pdb-missing", "todo", "todo-frontend") in fails
    assert ("pdb-missing", "todo", "todo-backend") not in fails
    assert ("workload-default-namespace", "default", "debug-shell") in fails


def test_ten_thousand_pods_audit_fast() -> None:
    """10,000 pods' worth of workloads (2,000 Deployments x 5 replicas in 100
    namespaces, with NetworkPolicies, PDBs and HPAs), the worst case where nearly
    every check fails and builds its fix: the network, reliability and resources
    families together take under 2.5 s of CPU (about 1.5 s measured), inside the
    3 s budget of the whole audit. CPU time, not wall time: the machine is shared."""
    objs: list[Obj] = []
    for n in range(100):
        ns = f"ns{n}"
        for i in range(20):
            d = deployment(f"app{i}", ns, replicas=5)
            objs.append(d)
            objs.append(hpa(f"app{i}", minReplicas=2, maxReplicas=10) | {
                "metadata": {"name": f"app{i}", "namespace": ns}})
            objs.append(pdb(f"app{i}", {"matchLabels": {"app": f"app{i}"}}, minAvailable=2)
                        | {"metadata": {"name": f"app{i}", "namespace": ns}})
        objs.extend(netpol(f"p{j}", ns, {"matchLabels": {"app": f"app{j}"}}) for j in range(10))
    state = ClusterState(source="bench")
    state.add(objs)
    ids = [c.id for c in load_checks().values()
           if c.family in ("network", "reliability", "resources")]
    audit(state, checks=ids[:1])  # warm imports
    start = time.process_time()
    report = audit(state, checks=ids)
    elapsed = time.process_time() - start
    assert not report.check_failures
    assert len(results(objs[:3], "pdb-missing")) == 1
    assert len(report.failures()) > 15_000
    assert elapsed < 2.5, f"{elapsed:.2f}s"
