"""Resource request/limit checks: which containers they look at, LimitRange
defaults, and fixes taking the sibling value or the documented default."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from aiops.quantity import to_float
from aiops.security import audit, load_manifests
from aiops.security.checks.resources import DEFAULTS
from tests.security.test_network import (
    Obj,
    cronjob,
    deployment,
    failed,
    fix_roundtrip,
    one_failure,
)

CHECKS = {("requests", "cpu"): "resources-cpu-request-missing",
          ("limits", "cpu"): "resources-cpu-limit-missing",
          ("requests", "memory"): "resources-memory-request-missing",
          ("limits", "memory"): "resources-memory-limit-missing"}
FULL = {"requests": {"cpu": "200m", "memory": "256Mi"},
        "limits": {"cpu": "400m", "memory": "300Mi"}}


def with_resources(resources: Any, **container: Any) -> Obj:
    c: Obj = {"name": "app", "image": "app:1.0", **container}
    if resources != "absent":
        c["resources"] = resources
    return deployment("app", containers=[c])


@pytest.mark.parametrize("key", list(CHECKS))
def test_each_check_fails_on_its_missing_value_only(key: tuple[str, str]) -> None:
    kind, res = key
    res_spec = {k: dict(v) for k, v in FULL.items()}
    del res_spec[kind][res]
    objs = [with_resources(res_spec)]
    for other, cid in CHECKS.items():
        assert len(failed(objs, cid)) == (1 if other == key else 0), cid
    r = one_failure(objs, CHECKS[key])
    assert r.container == "app" and f"resources.{kind}.{res}" in r.message
    # the fix takes the sibling value
    assert r.fix is not None and r.fix.tier == "medium"
    sibling = "limits" if kind == "requests" else "requests"
    assert r.fix.patch[0]["value"] == FULL[sibling][res]
    fixed = fix_roundtrip(objs, CHECKS[key])
    got = fixed[0]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert got[kind][res] == FULL[sibling][res]


@pytest.mark.parametrize("resources", ["absent", None, {}, {"requests": None, "limits": None},
                                       {"requests": {"cpu": None, "memory": ""}}])
def test_missing_or_null_resources_fail_all_four_with_defaults(resources: Any) -> None:
    objs = [with_resources(resources)]
    for (kind, res), cid in CHECKS.items():
        r = one_failure(objs, cid)
        assert r.fix is not None
        assert DEFAULTS[(res, kind)] in r.fix.description and "default" in r.fix.description
        fixed = fix_roundtrip(objs, cid)  # including the exact rollback of a null
        got = fixed[0]["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert got[kind][res] == DEFAULTS[(res, kind)]


def test_defaults_keep_request_below_limit() -> None:
    for res in ("cpu", "memory"):
        assert to_float(DEFAULTS[(res, "requests")]) <= to_float(DEFAULTS[(res, "limits")])


def test_all_set_passes() -> None:
    objs = [with_resources(FULL)]
    for cid in CHECKS.values():
        assert failed(objs, cid) == []


def test_unusable_sibling_falls_back_to_default() -> None:
    objs = [with_resources({"limits": {"cpu": "0"}, "requests": {"memory": "lots"}})]
    r = one_failure(objs, "resources-cpu-request-missing")
    assert r.fix is not None and r.fix.patch[0]["value"] == DEFAULTS[("cpu", "requests")]
    r = one_failure(objs, "resources-memory-limit-missing")
    assert r.fix is not None and r.fix.patch[0]["value"] == DEFAULTS[("memory", "limits")]


def test_cpu_limit_is_info_and_says_why() -> None:
    r = one_failure([with_resources({"requests": {"cpu": "100m"}})],
                    "resources-cpu-limit-missing")
    assert r.severity == "info"
    assert "deliberately" in r.fix.description  # type: ignore[union-attr]
    assert "deliberately" in r.check.rationale or "on purpose" in r.check.rationale


def test_init_and_ephemeral_containers_are_skipped_native_sidecars_are_not() -> None:
    d = with_resources(FULL)
    pod = d["spec"]["template"]["spec"]
    pod["initContainers"] = [{"name": "migrate", "image": "m:1"},
                             {"name": "proxy", "image": "p:1", "restartPolicy": "Always"}]
    pod["ephemeralContainers"] = [{"name": "debug", "image": "busybox:1"}]
    for cid in CHECKS.values():
        r = one_failure([d], cid)
        assert r.container == "proxy"
    fixed = fix_roundtrip([d], "resources-memory-limit-missing")
    assert fixed[0]["spec"]["template"]["spec"]["initContainers"][1]["resources"] == {
        "limits": {"memory": DEFAULTS[("memory", "limits")]}}


def test_cronjob_containers_are_checked() -> None:
    cj = cronjob()
    r = one_failure([cj], "resources-memory-request-missing")
    assert r.kind == "CronJob"
    fixed = fix_roundtrip([cj], "resources-memory-request-missing")
    c = fixed[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["requests"]["memory"] == DEFAULTS[("memory", "requests")]


def limit_range(ns: str = "shop", **item: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": "defaults", "namespace": ns},
            "spec": {"limits": [{"type": "Container", **item}]}}


def test_limit_range_defaults_satisfy_the_checks() -> None:
    objs = [with_resources("absent"), limit_range(defaultRequest={"cpu": "100m"})]
    assert failed(objs, "resources-cpu-request-missing") == []
    assert len(failed(objs, "resources-cpu-limit-missing")) == 1
    # a default limit alone also becomes the request at admission
    objs = [with_resources("absent"), limit_range(default={"memory": "256Mi"})]
    assert failed(objs, "resources-memory-limit-missing") == []
    assert failed(objs, "resources-memory-request-missing") == []
    assert len(failed(objs, "resources-cpu-request-missing")) == 1
    # another namespace's LimitRange, or a Pod-type item, does not count
    other = limit_range("other", default={"memory": "256Mi"})
    assert len(failed([with_resources("absent"), other], "resources-memory-limit-missing")) == 1
    pod_type = limit_range(default={"memory": "256Mi"})
    pod_type["spec"]["limits"][0]["type"] = "Pod"
    assert len(failed([with_resources("absent"), pod_type],
                      "resources-memory-limit-missing")) == 1


def test_manifest_audit(tmp_path: Any) -> None:
    f = tmp_path / "d.yaml"
    f.write_text("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: api:1.0
          resources:
            limits: {cpu: 500m, memory: 1Gi}
""")
    state, origin = load_manifests(f)
    report = audit(state, origin=origin)
    got = {r.check.id: r for r in report.failures() if r.check.family == "resources"}
    assert set(got) == {"resources-cpu-request-missing", "resources-memory-request-missing"}
    fix = got["resources-memory-request-missing"].fix
    assert fix is not None
    patched = jsonpatch.apply_patch(state.kind("Deployment")[0], fix.patch)
    c = patched["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"limits": {"cpu": "500m", "memory": "1Gi"},
                              "requests": {"memory": "1Gi"}}
    assert got["resources-cpu-request-missing"].line == 1
