"""Pod Security Standards, baseline family: each control decided as Pod Security
admission decides it (the cases follow k8s.io/pod-security-admission/policy),
every fix checked end to end (the patch applies, the check then passes, the
patched object validates against the strict 1.33 schema, the inverse restores
the object), and the PSS level per namespace the engine derives from them.

The helpers here are shared with test_pss_restricted.py.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonpatch import apply_patch

from aiops.model import ClusterState
from aiops.security import audit, load_checks, load_manifests
from aiops.security.check import Result
from aiops.security.checks import pss_baseline as pb
from aiops.security.exemptions import Config

Obj = dict[str, Any]
SCHEMA_VERSION = "1.33.0"
IMAGE = "ghcr.io/acme/web:1.4.0"
BASELINE = ("pss-host-process", "pss-host-network", "pss-host-pid", "pss-host-ipc",
            "pss-privileged", "pss-capabilities-baseline", "pss-host-path", "pss-host-ports",
            "pss-host-probes", "pss-apparmor", "pss-selinux", "pss-proc-mount",
            "pss-seccomp-baseline", "pss-sysctls")
RESTRICTED = ("pss-volume-types", "pss-privilege-escalation", "pss-run-as-non-root",
              "pss-run-as-user", "pss-seccomp-restricted", "pss-capabilities-restricted")
# the controls of https://kubernetes.io/docs/concepts/security/pod-security-standards/
BASELINE_CONTROLS = {"HostProcess", "Host Namespaces", "Privileged Containers", "Capabilities",
                     "HostPath Volumes", "Host Ports", "Host Probes / Lifecycle Hooks",
                     "AppArmor", "SELinux", "/proc Mount Type", "Seccomp", "Sysctls"}


# -- objects ---------------------------------------------------------------------
def ctr(name: str = "app", **sc: Any) -> Obj:
    """A container; keyword arguments become its securityContext."""
    c: Obj = {"name": name, "image": IMAGE}
    if sc:
        c["securityContext"] = sc
    return c


def pod(*containers: Obj, name: str = "web", namespace: str = "shop", sc: Obj | None = None,
        init: tuple[Obj, ...] = (), ephemeral: tuple[Obj, ...] = (),
        annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    """A Pod; extra keyword arguments are pod spec fields."""
    s: Obj = {}
    if init:
        s["initContainers"] = list(init)
    s["containers"] = list(containers) or [ctr()]
    if ephemeral:
        s["ephemeralContainers"] = list(ephemeral)
    if sc is not None:
        s["securityContext"] = sc
    s.update(spec)
    md: Obj = {"name": name, "namespace": namespace}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": s}


def deployment(p: Obj, name: str = "web") -> Obj:
    """The Deployment whose template is pod `p` (its annotations go on the template)."""
    labels = {"app": name}
    tmd: Obj = {"labels": labels}
    if p["metadata"].get("annotations"):
        tmd["annotations"] = p["metadata"]["annotations"]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": p["metadata"]["namespace"]},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": tmd, "spec": copy.deepcopy(p["spec"])}}}


def restricted_pod(**kw: Any) -> Obj:
    """The restricted-compliant pod of the PSS page: passes every PSS check."""
    c = ctr(allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"]})
    return pod(c, sc={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}, **kw)


def state(*objs: Obj) -> ClusterState:
    s = ClusterState(source="test")
    s.add(objs)
    return s


# -- running checks --------------------------------------------------------------
def results(objs: Obj | list[Obj], check_id: str) -> list[Result]:
    objs = objs if isinstance(objs, list) else [objs]
    report = audit(state(*objs), checks=[check_id])
    assert not report.check_failures, report.check_failures
    return report.results


def failed(objs: Obj | list[Obj], check_id: str) -> list[Result]:
    return [r for r in results(objs, check_id) if not r.passed]


def failing(obj: Obj, check_id: str) -> list[str]:
    """Who fails: container names (container checks) or "" (workload checks)."""
    return [r.container for r in failed(obj, check_id)]


def passes(obj: Obj, check_id: str) -> bool:
    rs = results(obj, check_id)
    assert rs, f"{check_id} saw no subject"
    return all(r.passed for r in rs)


def only(obj: Obj, check_id: str) -> Result:
    rs = failed(obj, check_id)
    assert len(rs) == 1, [r.message for r in rs]
    return rs[0]


def assert_fix(obj: Obj, check_id: str, container: str | None = None) -> Obj:
    """Apply the fix of a failure: the inverse restores the object, the patched object
    passes the check (for that subject) and validates; returns the patched object."""
    r = next(r for r in failed(obj, check_id) if container is None or r.container == container)
    assert r.fix is not None, f"{check_id}: no Action ({r.fix_text})"
    a = r.fix
    assert a.kind == "patch" and a.tier == "medium"
    assert (a.target["kind"], a.target["name"]) == (obj["kind"], obj["metadata"]["name"])
    fixed = apply_patch(obj, a.patch)
    assert apply_patch(fixed, a.inverse) == obj
    assert not [x for x in failed(fixed, check_id) if x.container == r.container], \
        f"{check_id} still fails after its fix"
    assert_valid(fixed)
    assert r.to_dict()["fix"]["action"]["hash"].startswith("sha256:")
    return fixed


@cache
def _validator(kind: str, api_version: str) -> Any:
    import jsonschema
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    root = f"kubernetes-json-schema/v{SCHEMA_VERSION}-local-strict"
    schema = schema_contents(f"{root}/{kind.lower()}-{api}.json", SCHEMA_VERSION)
    defs = schema_contents(f"{root}/_definitions.json", SCHEMA_VERSION)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def assert_valid(obj: Obj) -> None:
    errors = [f"{list(e.absolute_path)} {e.message[:160]}"
              for e in _validator(obj["kind"], obj["apiVersion"]).iter_errors(obj)]
    assert not errors, "\n".join(errors)


# -- the family ------------------------------------------------------------------
def test_the_baseline_checks_are_registered_with_their_pss_control() -> None:
    checks = {c.id: c for c in load_checks().values() if c.family == "pss-baseline"}
    assert set(checks) == set(BASELINE)
    assert {c.refs.pss_control for c in checks.values()} == BASELINE_CONTROLS
    for c in checks.values():
        assert c.refs.pss == "baseline" and c.category == "security"
        assert c.target in ("container", "workload") and c.title and c.rationale
        assert c.refs.to_dict()["pss"] == "baseline"


def test_the_test_objects_are_valid_and_the_restricted_pod_passes_every_pss_check() -> None:
    for obj in (pod(), restricted_pod(), deployment(restricted_pod())):
        assert_valid(obj)
    for cid in BASELINE + RESTRICTED:
        assert passes(restricted_pod(), cid), cid
        assert passes(deployment(restricted_pod()), cid), cid


def test_a_pod_without_security_settings_passes_baseline() -> None:
    for cid in BASELINE:
        assert passes(pod(), cid), cid


# -- HostProcess -----------------------------------------------------------------
def test_host_process_on_the_container_or_the_pod() -> None:
    win = {"hostProcess": True}
    assert failing(pod(ctr(windowsOptions=win), ctr("b")), "pss-host-process") == ["app"]
    both = pod(ctr("a"), ctr("b"), sc={"windowsOptions": win})
    assert failing(both, "pss-host-process") == ["a", "b"]
    assert "set on the pod" in only(pod(sc={"windowsOptions": win}), "pss-host-process").message
    assert passes(pod(ctr(windowsOptions={"hostProcess": False})), "pss-host-process")
    r = only(pod(ctr(windowsOptions=win)), "pss-host-process")
    assert r.fix is None and "privileged" in r.fix_text


# -- Host Namespaces -------------------------------------------------------------
@pytest.mark.parametrize(("field", "check_id"), [("hostNetwork", "pss-host-network"),
                                                 ("hostPID", "pss-host-pid"),
                                                 ("hostIPC", "pss-host-ipc")])
def test_host_namespaces(field: str, check_id: str) -> None:
    obj = deployment(pod(**{field: True}))
    r = only(obj, check_id)
    assert r.container == "" and r.kind == "Deployment" and f"{field}: true" in r.message
    fixed = assert_fix(obj, check_id)
    assert field not in fixed["spec"]["template"]["spec"]
    assert passes(pod(**{field: False}), check_id)
    others = [c for c in ("pss-host-network", "pss-host-pid", "pss-host-ipc") if c != check_id]
    assert all(passes(obj, c) for c in others)


# -- Privileged ------------------------------------------------------------------
def test_privileged_in_every_kind_of_container() -> None:
    p = pod(ctr("a", privileged=True), ctr("b", privileged=False), ctr("c"),
            init=(ctr("setup", privileged=True),))
    assert sorted(failing(p, "pss-privileged")) == ["a", "setup"]
    assert "init container setup runs privileged" in {r.message.split(" (")[0]
                                                      for r in failed(p, "pss-privileged")}
    fixed = assert_fix(deployment(p), "pss-privileged", "setup")
    assert fixed["spec"]["template"]["spec"]["initContainers"][0]["securityContext"] == {
        "privileged": False}


def test_an_ephemeral_container_is_checked_but_gets_words_not_a_patch() -> None:
    dbg = {"name": "debugger", "image": "busybox:1.36", "targetContainerName": "app",
           "securityContext": {"privileged": True}}
    p = pod(ephemeral=(dbg,))
    assert_valid(p)
    r = only(p, "pss-privileged")
    assert r.container == "debugger" and r.message.startswith("ephemeral container debugger")
    assert r.fix is None and "kubectl debug --profile" in r.fix_text


# -- Capabilities ----------------------------------------------------------------
@pytest.mark.parametrize(("add", "ok"), [
    ([], True), (["NET_BIND_SERVICE", "CHOWN", "SYS_CHROOT", "AUDIT_WRITE"], True),
    (sorted(pb.CAPABILITIES_ALLOWED), True),
    (["SYS_ADMIN"], False), (["NET_RAW"], False), (["ALL"], False), (["NET_ADMIN"], False),
    (["chown"], False),  # admission compares exact names
    (["CAP_CHOWN"], False)])
def test_capabilities_baseline_allowed_set(add: list[str], ok: bool) -> None:
    obj = pod(ctr(capabilities={"add": add, "drop": ["NET_RAW"]}))
    assert passes(obj, "pss-capabilities-baseline") is ok


def test_capabilities_baseline_fix_keeps_the_allowed_ones() -> None:
    obj = deployment(pod(ctr(capabilities={"add": ["NET_ADMIN", "CHOWN", "CAP_SETUID"]})))
    r = only(obj, "pss-capabilities-baseline")
    assert "NET_ADMIN, CAP_SETUID" in r.message and "without CAP_" in r.message
    fixed = assert_fix(obj, "pss-capabilities-baseline")
    caps = fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]
    assert caps == {"add": ["CHOWN", "SETUID"]}
    only_bad = deployment(pod(ctr(capabilities={"add": ["SYS_ADMIN"], "drop": ["ALL"]})))
    fixed = assert_fix(only_bad, "pss-capabilities-baseline")
    assert fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {
        "capabilities": {"drop": ["ALL"]}}


# -- HostPath Volumes ------------------------------------------------------------
def test_host_path_volumes() -> None:
    vols = [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}},
            {"name": "cache", "emptyDir": {}}]
    r = only(pod(volumes=vols), "pss-host-path")
    assert r.container == "" and "sock (/var/run/docker.sock)" in r.message
    assert "cache" not in r.message and r.fix is None and "PersistentVolumeClaim" in r.fix_text
    assert passes(pod(volumes=vols[1:]), "pss-host-path")


# -- Host Ports ------------------------------------------------------------------
def test_host_ports() -> None:
    ports = [{"containerPort": 8080, "hostPort": 80}, {"containerPort": 9090},
             {"containerPort": 9091, "hostPort": 0}]
    obj = deployment(pod({**ctr(), "ports": ports}))
    r = only(obj, "pss-host-ports")
    assert "80 (container port 8080)" in r.message and "9090" not in r.message
    assert r.severity == "warning"
    fixed = assert_fix(obj, "pss-host-ports")
    assert fixed["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 8080}, {"containerPort": 9090}, {"containerPort": 9091, "hostPort": 0}]


# -- Host Probes / Lifecycle Hooks -----------------------------------------------
def test_host_probes_and_hooks() -> None:
    c = {**ctr(),
         "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "host": "10.0.0.9"}},
         "readinessProbe": {"tcpSocket": {"port": 8080, "host": "db.internal"}},
         "startupProbe": {"httpGet": {"path": "/", "port": 8080, "host": ""}},
         "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": 8080,
                                                 "host": "169.254.169.254"}}}}
    obj = deployment(pod(c))
    r = only(obj, "pss-host-probes")
    assert "livenessProbe.httpGet.host 10.0.0.9" in r.message
    assert "readinessProbe.tcpSocket.host db.internal" in r.message
    assert "lifecycle.preStop.httpGet.host 169.254.169.254" in r.message
    assert "startupProbe" not in r.message
    fixed = assert_fix(obj, "pss-host-probes")
    spec = fixed["spec"]["template"]["spec"]["containers"][0]
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert spec["startupProbe"]["httpGet"]["host"] == ""  # "" is allowed: left alone
    probe_less = {**ctr(), "livenessProbe": {"httpGet": {"path": "/", "port": 80}}}
    assert passes(pod(probe_less), "pss-host-probes")


def test_host_probes_on_the_node_network_get_no_patch() -> None:
    """On hostNetwork the pod IP is the node's: dropping host: 127.0.0.1 would probe an
    address the process may not listen on (the control plane's static pods)."""
    c = {**ctr(), "livenessProbe": {"httpGet": {"path": "/health", "port": 2381,
                                                "host": "127.0.0.1"}}}
    r = only(pod(c, hostNetwork=True), "pss-host-probes")
    assert r.fix is None and "listen on the pod IP" in r.fix_text


# -- AppArmor --------------------------------------------------------------------
ANN = pb.APPARMOR_ANNOTATION


@pytest.mark.parametrize(("container_type", "pod_type", "expected"), [
    (None, None, []), ("RuntimeDefault", None, []), ("Localhost", "RuntimeDefault", []),
    ("Unconfined", None, ["a"]), (None, "Unconfined", ["a", "b"]),
    ("RuntimeDefault", "Unconfined", ["a", "b"])])  # a forbidden pod value fails the pod
def test_apparmor_profile_fields(container_type: str | None, pod_type: str | None,
                                 expected: list[str]) -> None:
    a = ctr("a", appArmorProfile={"type": container_type}) if container_type else ctr("a")
    sc = {"appArmorProfile": {"type": pod_type}} if pod_type else None
    assert failing(pod(a, ctr("b"), sc=sc), "pss-apparmor") == expected


@pytest.mark.parametrize(("value", "ok"), [("runtime/default", True), ("localhost/web", True),
                                           ("", True), ("unconfined", False),
                                           ("docker/default", False)])
def test_apparmor_annotations(value: str, ok: bool) -> None:
    obj = pod(ctr("a"), ctr("b"), annotations={ANN + "a": value})
    assert failing(obj, "pss-apparmor") == ([] if ok else ["a"])


def test_apparmor_annotation_for_no_container_fails_every_container() -> None:
    obj = pod(ctr("a"), ctr("b"), annotations={ANN + "gone": "unconfined"})
    assert failing(obj, "pss-apparmor") == ["a", "b"]


def test_apparmor_fix_sets_runtime_default_everywhere_it_is_forbidden() -> None:
    obj = deployment(pod(ctr("a", appArmorProfile={"type": "Unconfined"}),
                         annotations={ANN + "a": "unconfined"},
                         sc={"appArmorProfile": {"type": "Unconfined"}}))
    r = only(obj, "pss-apparmor")
    assert "on the container" in r.message and "on the pod" in r.message
    assert f"annotation {ANN}a=unconfined" in r.message
    fixed = assert_fix(obj, "pss-apparmor")
    tmpl = fixed["spec"]["template"]
    assert tmpl["metadata"]["annotations"][ANN + "a"] == "runtime/default"
    assert tmpl["spec"]["securityContext"]["appArmorProfile"] == {"type": "RuntimeDefault"}


def test_apparmor_annotation_fix_on_a_bare_pod() -> None:
    obj = pod(annotations={ANN + "app": "unconfined"})
    fixed = assert_fix(obj, "pss-apparmor")
    assert fixed["metadata"]["annotations"][ANN + "app"] == "runtime/default"


# -- SELinux ---------------------------------------------------------------------
@pytest.mark.parametrize(("opts", "ok"), [
    ({}, True), ({"type": ""}, True), ({"type": "container_t"}, True),
    ({"type": "container_init_t"}, True), ({"type": "container_kvm_t"}, True),
    ({"type": "container_engine_t"}, True), ({"level": "s0:c123,c456"}, True),
    ({"type": "spc_t"}, False), ({"type": "unconfined_t"}, False),
    ({"user": "system_u"}, False), ({"role": "system_r"}, False)])
def test_selinux_options(opts: Obj, ok: bool) -> None:
    assert passes(pod(ctr(seLinuxOptions=opts)), "pss-selinux") is ok
    assert passes(pod(ctr("a"), ctr("b"), sc={"seLinuxOptions": opts}), "pss-selinux") is ok


def test_selinux_failure_is_explained_not_patched() -> None:
    r = only(pod(ctr(seLinuxOptions={"type": "spc_t", "user": "system_u"})), "pss-selinux")
    assert "type spc_t on the container" in r.message and "user system_u" in r.message
    assert r.fix is None and "container_t" in r.fix_text


# -- /proc Mount Type ------------------------------------------------------------
def test_proc_mount() -> None:
    assert passes(pod(ctr(procMount="Default")), "pss-proc-mount")
    obj = deployment(pod(ctr(procMount="Unmasked")))
    assert "procMount Unmasked" in only(obj, "pss-proc-mount").message
    assert_fix(obj, "pss-proc-mount")


# -- Seccomp ---------------------------------------------------------------------
@pytest.mark.parametrize(("container_type", "pod_type", "expected"), [
    (None, None, []),  # baseline allows no profile
    ("RuntimeDefault", None, []), ("Localhost", "RuntimeDefault", []),
    ("Unconfined", None, ["a"]), (None, "Unconfined", ["a", "b"]),
    ("RuntimeDefault", "Unconfined", ["a", "b"])])
def test_seccomp_baseline(container_type: str | None, pod_type: str | None,
                          expected: list[str]) -> None:
    def prof(t: str) -> Obj:
        return {"type": t, "localhostProfile": "web.json"} if t == "Localhost" else {"type": t}
    a = ctr("a", seccompProfile=prof(container_type)) if container_type else ctr("a")
    sc = {"seccompProfile": prof(pod_type)} if pod_type else None
    assert failing(pod(a, ctr("b"), sc=sc), "pss-seccomp-baseline") == expected


def test_seccomp_baseline_fix_covers_both_levels() -> None:
    obj = deployment(pod(ctr(seccompProfile={"type": "Unconfined"}),
                         sc={"seccompProfile": {"type": "Unconfined"}}))
    assert "set on the container and on the pod" in only(obj, "pss-seccomp-baseline").message
    fixed = assert_fix(obj, "pss-seccomp-baseline")
    spec = fixed["spec"]["template"]["spec"]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["containers"][0]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


# -- Sysctls ---------------------------------------------------------------------
def test_every_safe_sysctl_passes() -> None:
    # the PSS page's list: five since v1.0, one since v1.27, four since v1.29
    page = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
            "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
            "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
            "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
    assert page == pb.SYSCTLS_ALLOWED
    safe = [{"name": n, "value": "1"} for n in sorted(pb.SYSCTLS_ALLOWED)]
    assert passes(pod(sc={"sysctls": safe}), "pss-sysctls")


def test_unsafe_sysctls_are_removed_and_safe_ones_kept() -> None:
    sysctls = [{"name": "net.core.somaxconn", "value": "1024"},
               {"name": "net.ipv4.tcp_syncookies", "value": "1"},
               {"name": "kernel.msgmax", "value": "65536"}]
    obj = deployment(pod(sc={"sysctls": sysctls}))
    r = only(obj, "pss-sysctls")
    assert r.container == "" and "net.core.somaxconn, kernel.msgmax" in r.message
    fixed = assert_fix(obj, "pss-sysctls")
    assert fixed["spec"]["template"]["spec"]["securityContext"]["sysctls"] == [sysctls[1]]
    fixed = assert_fix(deployment(pod(sc={"sysctls": [sysctls[0]]})), "pss-sysctls")
    assert fixed["spec"]["template"]["spec"]["securityContext"] == {}


# -- through the engine ----------------------------------------------------------
def test_pss_level_per_namespace() -> None:
    objs = [restricted_pod(name="r", namespace="hardened"),
            pod(name="plain", namespace="apps"),
            pod(ctr(privileged=True), name="priv", namespace="node-agents")]
    report = audit(state(*objs))
    assert not report.check_failures
    assert report.pss_levels() == {"apps": "baseline", "hardened": "restricted",
                                   "node-agents": "privileged"}


def test_an_exempted_baseline_failure_no_longer_lowers_the_level() -> None:
    ann = {"aiops.io/exempt": "pss-privileged", "aiops.io/exempt-reason": "CNI plugin"}
    p = pod(ctr(privileged=True), name="cni", namespace="kube-system", annotations=ann)
    report = audit(state(p))
    priv = next(r for r in report.failures() if r.check.id == "pss-privileged")
    assert priv.exempt and priv.exempt_reason == "CNI plugin"
    assert report.pss_levels()["kube-system"] == "baseline"  # restricted checks still fail


def test_an_exemptions_file_can_name_one_container() -> None:
    p = pod(ctr("app"), ctr("sidecar", capabilities={"add": ["NET_ADMIN"]}),
            init=(ctr("iptables", capabilities={"add": ["NET_ADMIN", "NET_RAW"]}),))
    cfg = Config.model_validate({"exemptions": [{
        "checks": ["pss-capabilities-baseline"], "workloads": ["Pod/*"],
        "containers": ["iptables"], "reason": "mesh init rewrites iptables"}]})
    fails = {r.container: r for r in audit(state(p), exemptions=cfg).failures()
             if r.check.id == "pss-capabilities-baseline"}
    assert set(fails) == {"iptables", "sidecar"}
    assert fails["iptables"].exempt and not fails["sidecar"].exempt


def test_manifests_keep_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\n"
                 "---\n"
                 "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                 "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n"
                 "    metadata: {labels: {app: web}}\n    spec:\n      hostPID: true\n"
                 "      containers:\n      - name: app\n        image: " + IMAGE + "\n"
                 "        securityContext: {privileged: true}\n", encoding="utf-8")
    st, origin = load_manifests(f)
    report = audit(st, origin=origin)
    got = {(r.check.id, r.container, r.namespace, r.file, r.line) for r in report.failures()
           if r.check.family == "pss-baseline"}
    assert got == {("pss-host-pid", "", "default", str(f), 5),
                   ("pss-privileged", "app", "default", str(f), 5)}


def test_the_demo_cluster_audits_cleanly_and_every_pss_fix_round_trips() -> None:
    from aiops.sources.demo import load_demo

    st = load_demo()
    report = audit(st)
    assert not report.check_failures
    pss = [r for r in report.failures() if r.check.id.startswith("pss-")]
    assert pss
    for r in pss:
        assert r.message and (r.fix is not None or r.fix_text), r.check.id
        if r.fix is None:
            continue
        t = r.fix.target
        obj = st.get(t["kind"], t["namespace"], t["name"])
        assert obj is not None, t
        assert apply_patch(apply_patch(obj, r.fix.patch), r.fix.inverse) == obj
    levels = report.pss_levels()
    assert levels["kube-system"] == "privileged"  # kube-proxy runs privileged


def test_every_pss_check_is_registered_once() -> None:
    ids = [c for c in load_checks() if c.startswith("pss-")]
    assert sorted(ids) == sorted(BASELINE + RESTRICTED)
