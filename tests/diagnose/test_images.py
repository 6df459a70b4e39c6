"""Image family: image-not-found, image-pull-auth, image-invalid-name, image-pull-network."""

from __future__ import annotations

from typing import Any

import pytest
from _containers_objects import (
    assert_round_trip,
    at,
    container,
    deployment,
    event,
    fp,
    pod,
    replicaset,
    running,
    state,
    texts,
    waiting,
)

from aiops.diagnose.context import Context, Target
from aiops.diagnose.engine import diagnose
from aiops.diagnose.finding import Finding
from aiops.diagnose.registry import RULES, load_rules
from aiops.diagnose.rules.images import classify, registry_of
from aiops.model import ClusterState

IDS = ("image-not-found", "image-pull-auth", "image-invalid-name", "image-pull-network")
GOOD = "ghcr.io/acme/web:1.4.0"
BAD = "ghcr.io/acme/web:1.4.1"
NEW_POD = "web-6b7c9d8f4c-q8w2e"

NOT_FOUND_CONTAINERD = (
    f'Failed to pull image "{BAD}": rpc error: code = NotFound desc = failed to pull and '
    f'unpack image "{BAD}": failed to resolve reference "{BAD}": {BAD}: not found')
NOT_FOUND_DOCKER = (
    f'Failed to pull image "{BAD}": rpc error: code = Unknown desc = Error response from '
    f"daemon: manifest for {BAD} not found: manifest unknown: manifest unknown")
AUTH_CONTAINERD = (
    f'Failed to pull image "{BAD}": failed to pull and unpack image "{BAD}": failed to '
    f'resolve reference "{BAD}": failed to authorize: failed to fetch anonymous token: '
    "unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aacme%2F"
    "web%3Apull&service=ghcr.io: 401 Unauthorized")
AUTH_DOCKER = (
    'Failed to pull image "acme/private:2.0": rpc error: code = Unknown desc = Error response '
    "from daemon: pull access denied for acme/private, repository does not exist or may "
    "require 'docker login': denied: requested access to the resource is denied")
AUTH_403 = (
    f'Failed to pull image "{BAD}": rpc error: code = Unknown desc = failed to pull and unpack '
    f'image "{BAD}": failed to resolve reference "{BAD}": pulling from host ghcr.io failed '
    "with status code [manifests 1.4.1]: 403 Forbidden")
NET_TIMEOUT = (
    'Failed to pull image "registry.internal:5000/web:1.4.1": rpc error: code = Unknown desc = '
    'failed to pull and unpack image "registry.internal:5000/web:1.4.1": failed to resolve '
    'reference "registry.internal:5000/web:1.4.1": failed to do request: Head '
    '"https://registry.internal:5000/v2/web/manifests/1.4.1": dial tcp 10.20.0.7:5000: '
    "i/o timeout")
NET_DNS = (
    'Failed to pull image "registry.internal:5000/web:1.4.1": rpc error: code = Unknown desc = '
    "Error response from daemon: Get https://registry.internal:5000/v2/: dial tcp: lookup "
    "registry.internal on 10.96.0.10:53: no such host")
NET_TLS = ('Failed to pull image "quay.io/acme/web:1": rpc error: code = Unknown desc = '
           "Error response from daemon: Get https://quay.io/v2/: net/http: TLS handshake "
           "timeout")
NET_REFUSED = ('Failed to pull image "localhost:5000/web:1": rpc error: code = Unknown desc = '
               'failed to do request: Head "http://localhost:5000/v2/web/manifests/1": dial '
               "tcp 127.0.0.1:5000: connect: connection refused")
INVALID_EVENT = ('Failed to apply default image tag "ghcr.io/Acme/Web:1.4.1": couldn\'t parse '
                 'image reference "ghcr.io/Acme/Web:1.4.1": invalid reference format: '
                 "repository name must be lowercase")


def run(rule_id: str, st: ClusterState, **target: Any) -> list[Finding]:
    load_rules()
    return list(RULES[rule_id].fn(Context(st, Target(**target))))


def one(rule_id: str, st: ClusterState) -> Finding:
    found = run(rule_id, st)
    assert len(found) == 1, found
    return found[0]


def stuck_rollout(message: str = NOT_FOUND_CONTAINERD, *, image: str = BAD,
                  waiting_reason: str = "ImagePullBackOff",
                  waiting_message: str | None = None, n_pods: int = 1,
                  old_ready: int = 2, extra_events: bool = True) -> ClusterState:
    """Deployment web rolled from GOOD (revision 1) to `image` (revision 2); the new
    ReplicaSet's pods cannot pull, the old ReplicaSet still serves."""
    d = deployment(containers=[container(image=image)], revision=2, available=old_ready)
    old = replicaset("web-5f8d7c6b9a", containers=[container(image=GOOD)], revision=1,
                     ready=old_ready, replicas=old_ready)
    new = replicaset("web-6b7c9d8f4c", containers=[container(image=image)], revision=2,
                     ready=0, replicas=n_pods)
    objs: list[dict] = [d, old, new]
    for i in range(n_pods):
        name = NEW_POD if i == 0 else f"web-6b7c9d8f4c-p{i}"
        p = pod(name, containers=[container(image=image)], owner=("ReplicaSet", new["metadata"][
            "name"]), phase="Pending", statuses=[waiting(
                "app", waiting_reason,
                waiting_message if waiting_message is not None
                else f'Back-off pulling image "{image}"', image=image)])
        objs.append(p)
        if extra_events:
            objs += [event(p, "Pulling", f'Pulling image "{image}"', type="Normal", count=6,
                           first=30 - i, field_path=fp()),
                     event(p, "Failed", message, count=6, first=30 - i, last=2, field_path=fp()),
                     event(p, "Failed", "Error: ErrImagePull", count=6, first=30 - i,
                           field_path=fp()),
                     event(p, "BackOff", f'Back-off pulling image "{image}"', type="Normal",
                           count=90, first=29 - i, field_path=fp()),
                     event(p, "Failed", "Error: ImagePullBackOff", count=90, first=29 - i,
                           field_path=fp())]
    for i in range(old_ready):
        objs.append(pod(f"web-5f8d7c6b9a-ok{i}", containers=[container(image=GOOD)],
                        owner=("ReplicaSet", "web-5f8d7c6b9a"),
                        statuses=[running(image=GOOD)]))
    return state(*objs)


def test_rules_registered() -> None:
    load_rules()
    for rid in IDS:
        assert RULES[rid].family == "images"
        assert RULES[rid].rank <= 15


# -- image-not-found ------------------------------------------------------------------

def test_image_not_found_rolls_back_the_stuck_deployment() -> None:
    st = stuck_rollout()
    f = one("image-not-found", st)
    # the previous revision still serves: a stuck rollout, not an outage
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "image-not-found", "warning", "Deployment", "web", "Deployment/web")
    assert f.pods == [NEW_POD]
    assert BAD in f.summary and "roll back" in f.summary
    t = texts(f)
    assert f"spec.template.spec.containers[app].image|image: {BAD}" in t
    assert "event|event Failed x6, last " in t and NOT_FOUND_CONTAINERD in t
    assert "waiting.reason|reason: ImagePullBackOff" in t
    assert f'waiting.message|message: Back-off pulling image "{BAD}"' in t
    assert f"ReplicaSet web-5f8d7c6b9a (revision 1) ran image {GOOD}; 2 ready pods" in t
    assert "status|status.availableReplicas|availableReplicas: 2" in t
    assert f.first_seen == at(30)
    assert f.confidence >= 0.9
    cmds = f.remediation.commands
    assert cmds[0] == f"kubectl describe pod {NEW_POD} -n shop"
    assert "kubectl rollout history deployment/web -n shop" in cmds
    assert cmds[-1] == f"kubectl set image deployment/web -n shop app={GOOD}"
    a = f.remediation.action
    assert (a.kind, a.tier, a.target) == ("rollout-undo", "low", {
        "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"})
    assert a.patch == [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                        "value": GOOD}]
    assert_round_trip(a, st.get("Deployment", "shop", "web"))
    assert any("revision advances past 2" in v for v in a.validate)


def test_image_not_found_docker_wording_and_many_pods_fold_into_one() -> None:
    f = one("image-not-found", stuck_rollout(NOT_FOUND_DOCKER, n_pods=3))
    assert len(f.pods) == 3
    assert "3 pods cannot pull it" in texts(f)
    assert "and 2 more" in f.summary
    assert f.first_seen == at(30)


def test_image_not_found_modern_waiting_message_without_events() -> None:
    msg = (f'Back-off pulling image "{BAD}": ErrImagePull: failed to pull and unpack image '
           f'"{BAD}": failed to resolve reference "{BAD}": {BAD}: not found')
    f = one("image-not-found", stuck_rollout(waiting_message=msg, extra_events=False))
    assert f"waiting.message|message: {msg}" in texts(f)
    assert f.first_seen == at(60)  # no events: since the pod started


def test_image_not_found_without_good_revision_is_manual() -> None:
    st = stuck_rollout(old_ready=0)
    # drop the old ReplicaSet: nothing to roll back to
    st.objects["ReplicaSet"] = [rs for rs in st.objects["ReplicaSet"]
                                if rs["metadata"]["name"] != "web-5f8d7c6b9a"]
    st.__dict__.pop("_index", None)
    st.__dict__.pop("_diagnose_index", None)
    f = one("image-not-found", st)
    assert f.severity == "critical"  # nothing serves any more
    assert f.remediation.action.kind == "manual"
    assert "fix the tag" in f.summary


def test_image_not_found_bare_pod_and_never_pull() -> None:
    p = pod("debug", owner=None, phase="Pending", containers=[container(
        image="local/tool:dev", imagePullPolicy="Never")], statuses=[waiting(
            "app", "ErrImageNeverPull",
            'Container image "local/tool:dev" is not present with pull policy of Never')])
    ev = event(p, "ErrImageNeverPull",
               'Container image "local/tool:dev" is not present with pull policy of Never',
               field_path=fp())
    f = one("image-not-found", state(p, ev))
    assert (f.kind, f.name, f.owner) == ("Pod", "debug", "Pod/debug")
    assert "pull policy of Never" in texts(f)
    assert f.remediation.action.kind == "manual"


def test_engine_orders_image_cause_first_on_the_deployment() -> None:
    d = diagnose(stuck_rollout())
    assert not d.failures
    on_deploy = [f for f in d.findings if (f.kind, f.name) == ("Deployment", "web")]
    assert on_deploy[0].rule == "image-not-found"
    assert not any(f.rule.startswith("image-") and f.kind == "Pod" for f in d.findings)


# -- image-pull-auth ------------------------------------------------------------------------

@pytest.mark.parametrize("message", [AUTH_CONTAINERD, AUTH_403])
def test_image_pull_auth(message: str) -> None:
    st = stuck_rollout(message)
    f = one("image-pull-auth", st)
    assert (f.severity, f.owner) == ("warning", "Deployment/web")
    assert "no imagePullSecrets for ghcr.io" in f.summary
    # event text goes through the core's redactor ("token: ..." is masked)
    assert f'Failed: Failed to pull image "{BAD}"' in texts(f)
    assert message.rsplit(": ", 1)[-1] in texts(f)
    assert "imagePullSecrets: (none)" in texts(f)
    a = f.remediation.action
    assert (a.kind, a.tier) == ("manual", "critical")
    assert any(c.startswith("kubectl create secret docker-registry regcred -n shop "
                            "--docker-server=ghcr.io") for c in f.remediation.commands)
    assert run("image-not-found", st) == []


def test_image_pull_auth_docker_hub_ambiguity_and_missing_secret() -> None:
    p = pod("api", owner=None, phase="Pending",
            containers=[container(image="acme/private:2.0")],
            statuses=[waiting("app", "ErrImagePull", "pull access denied", image="x")],
            spec_extra={"imagePullSecrets": [{"name": "hub-creds"}]})
    other = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
             "metadata": {"name": "unrelated", "namespace": "shop"}, "data": {"k": ""}}
    f = one("image-pull-auth", state(p, other, event(p, "Failed", AUTH_DOCKER,
                                                     field_path=fp())))
    assert "does not exist or needs credentials" in f.summary
    assert "hub-creds" in f.summary and "docker.io" in f.summary
    assert "imagePullSecrets: hub-creds (is missing)" in texts(f)
    assert f.confidence < 0.9


# -- image-invalid-name ---------------------------------------------------------------------

def test_image_invalid_name() -> None:
    bad = "ghcr.io/Acme/Web:1.4.1"
    st = stuck_rollout(INVALID_EVENT, image=bad, waiting_reason="InvalidImageName",
                       waiting_message=f'Failed to apply default image tag "{bad}": couldn\'t '
                       f'parse image reference "{bad}": invalid reference format: repository '
                       "name must be lowercase", extra_events=False)
    p = st.get("Pod", "shop", NEW_POD)
    st.add([event(p, "InspectFailed", INVALID_EVENT, count=40, first=12, field_path=fp()),
            event(p, "Failed", "Error: InvalidImageName", count=40, first=12,
                  field_path=fp())])
    st.__dict__.pop("events_by_object", None)
    f = one("image-invalid-name", st)
    assert (f.kind, f.name) == ("Deployment", "web")
    assert repr(bad) in f.summary
    assert "InspectFailed: " + INVALID_EVENT in texts(f)
    assert f.first_seen == at(12)
    a = f.remediation.action
    assert a.kind == "rollout-undo" and a.patch[0]["value"] == GOOD
    assert_round_trip(a, st.get("Deployment", "shop", "web"))
    for rid in ("image-not-found", "image-pull-auth", "image-pull-network"):
        assert run(rid, st) == []


# -- image-pull-network ---------------------------------------------------------------------

@pytest.mark.parametrize(("message", "words"), [
    (NET_TIMEOUT, "time out"), (NET_DNS, "does not resolve"), (NET_TLS, "time out"),
    (NET_REFUSED, "refuses connections"),
])
def test_image_pull_network(message: str, words: str) -> None:
    f = one("image-pull-network", stuck_rollout(message))
    assert words in f.summary and "node node-a" in f.summary
    assert message in texts(f)
    assert any(c.startswith("kubectl debug node/node-a") for c in f.remediation.commands)
    assert f.remediation.action.kind == "manual"


# -- near misses and classification ------------------------------------------------------------

def test_no_image_rule_on_healthy_or_pulling_pods() -> None:
    healthy = state(deployment(), replicaset("web-7d9c8b6f5d", ready=2), pod())
    creating = pod(phase="Pending", statuses=[waiting("app", "ContainerCreating")])
    for rid in IDS:
        assert run(rid, healthy) == []
        assert run(rid, state(creating, event(creating, "Failed", NOT_FOUND_CONTAINERD,
                                              field_path=fp()))) == []


def test_back_off_without_any_cause_is_not_classified() -> None:
    st = stuck_rollout(extra_events=False)
    for rid in IDS:
        assert run(rid, st) == []


def test_events_of_another_container_are_not_used() -> None:
    p = pod(phase="Pending", containers=[container("app", BAD), container("sidecar", GOOD)],
            statuses=[waiting("app", "ImagePullBackOff", image=BAD), running("sidecar")])
    ev = event(p, "Failed", AUTH_CONTAINERD.replace(BAD, GOOD), field_path=fp("sidecar"))
    assert all(run(rid, state(p, ev)) == [] for rid in IDS)


@pytest.mark.parametrize(("text", "rule"), [
    (NOT_FOUND_CONTAINERD, "image-not-found"), (NOT_FOUND_DOCKER, "image-not-found"),
    ("Failed to pull image \"x\": name unknown: repository name not known to registry",
     "image-not-found"),
    (AUTH_CONTAINERD, "image-pull-auth"), (AUTH_DOCKER, "image-pull-auth"),
    (AUTH_403, "image-pull-auth"),
    ("Failed to pull image \"x\": unauthorized: authentication required", "image-pull-auth"),
    (NET_TIMEOUT, "image-pull-network"), (NET_DNS, "image-pull-network"),
    (NET_TLS, "image-pull-network"), (NET_REFUSED, "image-pull-network"),
    (INVALID_EVENT, "image-invalid-name"),
    ("Failed to pull image \"x@sha256:401ab\": dial tcp 10.0.4.1:443: i/o timeout",
     "image-pull-network"),
])
def test_classify(text: str, rule: str) -> None:
    cause = classify("ErrImagePull", text)
    assert cause is not None and cause.rule == rule


def test_registry_of() -> None:
    assert registry_of("nginx:1.27") == "docker.io"
    assert registry_of("acme/web:1") == "docker.io"
    assert registry_of("ghcr.io/acme/web:1") == "ghcr.io"
    assert registry_of("localhost:5000/web") == "localhost:5000"


def test_rules_never_raise_on_malformed_objects() -> None:
    objs = [
        {"kind": "Pod", "metadata": {"name": "a", "namespace": "shop",
                                     "ownerReferences": [{"kind": "ReplicaSet", "name": "zz",
                                                          "controller": True}]},
         "spec": {"containers": [{"name": "app", "image": None}], "imagePullSecrets": "x"},
         "status": {"containerStatuses": [{"name": "app", "state": {"waiting": {
             "reason": "ErrImagePull", "message": None}}}]}},
        {"kind": "Pod", "metadata": {"name": "b", "namespace": "shop"},
         "spec": {"containers": [{"name": "app", "image": "x:1"}],
                  "imagePullSecrets": [None, {"name": 3}]},
         "status": {"containerStatuses": [{"name": "app", "state": {"waiting": {
             "reason": "ErrImagePull", "message": "unauthorized"}}}]}},
        {"kind": "Event", "metadata": {"name": "e", "namespace": "shop"},
         "involvedObject": {"kind": "Pod", "name": "a", "namespace": "shop"},
         "reason": "Failed", "message": 7},
        {"kind": "ReplicaSet", "metadata": {"name": "zz", "namespace": "shop",
                                            "annotations": {"deployment.kubernetes.io/revision":
                                                            "x"}},
         "spec": None},
    ]
    d = diagnose(state(*objs), rules=list(IDS))
    assert d.failures == []
    assert [f.rule for f in d.findings] == ["image-pull-auth"]


# -- demo cluster ---------------------------------------------------------------------------

def test_demo_cluster_frontend_image() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.kind("Pod"), "the bundled demo cluster has pods"
    d = diagnose(st, namespace="todo")
    f = next(f for f in d.findings if f.rule == "image-not-found")
    assert f.owner == "Deployment/todo-frontend" and "1.4.1" in f.summary
    assert f.remediation.action is not None and f.remediation.action.kind == "rollout-undo"
    on_deploy = [x for x in d.findings if (x.kind, x.name) == ("Deployment", "todo-frontend")]
    assert on_deploy[0].rule == "image-not-found"
