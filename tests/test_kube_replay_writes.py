"""The replay's write paths, driven by the official client as an executor would.

Each test checks three things: what the client got back, what the replay now
stores (what the next GET shows) and the exact request that was sent, so the
executor's tests can rely on all three.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client import ApiException

from aiops.sources.demo import DATA_DIR
from tests.support.kube_replay import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    USER,
    KubeReplay,
    Request,
    rollout_complete,
    rollout_stuck,
)

NS = "todo"
DEPLOY = "todo-backend"
DEPLOY_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOY}"
CM = "todo-config"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps/{CM}"
POD = "todo-postgres-0"


@pytest.fixture(scope="module", autouse=True)
def _no_proxy() -> Iterator[None]:
    """The client honours HTTP(S)_PROXY: keep 127.0.0.1 off any proxy of the host."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        yield


@pytest.fixture
def srv() -> Iterator[KubeReplay]:
    """A fresh replay per test: writes change its state."""
    with KubeReplay(DATA_DIR) as server:
        yield server


def api_client(server: KubeReplay, tmp_path: Path) -> client.ApiClient:
    """An ApiClient built the way a user's would be, from a kubeconfig."""
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    return config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)


@pytest.fixture
def apps(srv: KubeReplay, tmp_path: Path) -> client.AppsV1Api:
    return client.AppsV1Api(api_client(srv, tmp_path))


@pytest.fixture
def core(srv: KubeReplay, tmp_path: Path) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(srv, tmp_path))


def stored(srv: KubeReplay, kind: str, name: str) -> dict[str, Any]:
    obj = srv.state.get(kind, NS, name)
    assert obj is not None
    return obj


def snapshot(srv: KubeReplay, kind: str, name: str) -> str:
    return json.dumps(stored(srv, kind, name), sort_keys=True)


def last(srv: KubeReplay) -> Request:
    return srv.mutations()[-1]


def status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == exc.status
    return body


# -- PATCH ----------------------------------------------------------------------
def test_json_patch_is_stored_with_new_versions(srv: KubeReplay,
                                                apps: client.AppsV1Api) -> None:
    before = dict(stored(srv, "Deployment", DEPLOY)["metadata"])
    ops = [{"op": "test", "path": "/spec/replicas", "value": 2},
           {"op": "replace", "path": "/spec/replicas", "value": 3}]
    answer = apps.patch_namespaced_deployment(DEPLOY, NS, body=ops)
    now = stored(srv, "Deployment", DEPLOY)
    assert answer.spec.replicas == now["spec"]["replicas"] == 3
    assert int(now["metadata"]["resourceVersion"]) > int(before["resourceVersion"])
    assert answer.metadata.resource_version == now["metadata"]["resourceVersion"]
    assert now["metadata"]["generation"] == before["generation"] + 1
    assert now["metadata"]["uid"] == before["uid"]
    req = last(srv)
    assert (req.method, req.path, req.query, req.content_type, req.body) == (
        "PATCH", DEPLOY_PATH, {}, JSON_PATCH, ops)


def test_dry_run_json_patch_answers_but_stores_nothing(srv: KubeReplay,
                                                       apps: client.AppsV1Api) -> None:
    before = snapshot(srv, "Deployment", DEPLOY)
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 5}]
    answer = apps.patch_namespaced_deployment(DEPLOY, NS, body=ops, dry_run="All")
    old = json.loads(before)
    assert answer.spec.replicas == 5
    assert answer.metadata.generation == old["metadata"]["generation"] + 1
    assert answer.metadata.resource_version == old["metadata"]["resourceVersion"]
    assert snapshot(srv, "Deployment", DEPLOY) == before
    req = last(srv)
    assert (req.method, req.path, req.query, req.content_type, req.body) == (
        "PATCH", DEPLOY_PATH, {"dryRun": "All"}, JSON_PATCH, ops)


@pytest.mark.parametrize(("op", "cause"), [
    ({"op": "test", "path": "/spec/replicas", "value": 7},
     "testing value /spec/replicas failed: test failed"),
    ({"op": "replace", "path": "/spec/nothing/here", "value": 1},
     'replace operation does not apply: doc is missing path: "/spec/nothing/here"'),
    ({"op": "remove", "path": "/metadata/labels/absent"},
     'remove operation does not apply: doc is missing path: "/metadata/labels/absent"'),
])
@pytest.mark.parametrize("dry_run", [None, "All"])
def test_json_patch_that_does_not_apply_is_422(srv: KubeReplay, apps: client.AppsV1Api,
                                               op: dict[str, Any], cause: str,
                                               dry_run: str | None) -> None:
    before = snapshot(srv, "Deployment", DEPLOY)
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 4}, op]
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(DEPLOY, NS, body=ops, dry_run=dry_run)
    status = status_of(err.value)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["message"].startswith(cause)
    assert snapshot(srv, "Deployment", DEPLOY) == before  # the first op is not kept either


def test_strategic_merge_patch_merges_containers_by_name(srv: KubeReplay,
                                                         apps: client.AppsV1Api) -> None:
    image = stored(srv, "Deployment", DEPLOY)["spec"]["template"]["spec"]["containers"][0][
        "image"]
    resources = {"requests": {"cpu": "300m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    body = {"spec": {"template": {"spec": {"containers": [
        {"name": "backend", "resources": resources},
        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "1d"]}]}}}}
    apps.patch_namespaced_deployment(DEPLOY, NS, body=body)
    containers = stored(srv, "Deployment", DEPLOY)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["backend", "sidecar"]
    assert containers[0]["image"] == image  # merged, not replaced
    assert containers[0]["resources"] == {"requests": {"cpu": "300m", "memory": "512Mi"},
                                          "limits": {"cpu": "1", "memory": "1Gi"}}
    req = last(srv)
    assert (req.method, req.path, req.content_type, req.body) == (
        "PATCH", DEPLOY_PATH, STRATEGIC_PATCH, body)


@pytest.mark.parametrize(("body", "named"), [
    ({"spec": {"template": {"spec": {"tolerations": [{"key": "x", "operator": "Exists"}]}}}},
     "'tolerations'"),
    ({"spec": {"template": {"spec": {"containers": [
        {"name": "backend", "$patch": "delete"}]}}}}, "'$patch'"),
])
def test_strategic_merge_beyond_the_subset_is_415(srv: KubeReplay, apps: client.AppsV1Api,
                                                  body: dict[str, Any], named: str) -> None:
    before = snapshot(srv, "Deployment", DEPLOY)
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(DEPLOY, NS, body=body)
    status = status_of(err.value)
    assert err.value.status == 415 and status["reason"] == "UnsupportedMediaType"
    assert named in status["message"]
    assert snapshot(srv, "Deployment", DEPLOY) == before


def test_server_side_apply_is_415(srv: KubeReplay, core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(CM, NS, body={"data": {"A": "1"}}, field_manager="t",
                                         _content_type="application/apply-patch+yaml")
    assert err.value.status == 415
    assert "application/apply-patch+yaml" in status_of(err.value)["message"]


@pytest.mark.parametrize("dry_run", [None, "All"])
def test_merge_patch_of_a_config_map(srv: KubeReplay, core: client.CoreV1Api,
                                     dry_run: str | None) -> None:
    before = json.loads(snapshot(srv, "ConfigMap", CM))
    body = {"data": {"LOG_LEVEL": "debug", "SMTP_PORT": None, "NEW": "x"}}
    answer = core.patch_namespaced_config_map(CM, NS, body=body, dry_run=dry_run,
                                              _content_type=MERGE_PATCH)
    expected = {k: v for k, v in before["data"].items() if k != "SMTP_PORT"} | {
        "LOG_LEVEL": "debug", "NEW": "x"}
    assert answer.data == expected
    now = stored(srv, "ConfigMap", CM)
    assert now["data"] == (before["data"] if dry_run else expected)
    assert "generation" not in now["metadata"]  # configmaps do not count generations
    req = last(srv)
    assert (req.method, req.path, req.content_type, req.body) == (
        "PATCH", CM_PATH, MERGE_PATCH, body)
    assert req.query == ({"dryRun": "All"} if dry_run else {})


def test_patch_with_a_stale_resource_version_is_409(srv: KubeReplay,
                                                    core: client.CoreV1Api) -> None:
    body = {"metadata": {"resourceVersion": "1"}, "data": {"LOG_LEVEL": "debug"}}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(CM, NS, body=body, _content_type=MERGE_PATCH)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"
    assert stored(srv, "ConfigMap", CM)["data"]["LOG_LEVEL"] == "info"


# -- /scale ---------------------------------------------------------------------
@pytest.mark.parametrize("dry_run", [None, "All"])
def test_patch_deployment_scale(srv: KubeReplay, apps: client.AppsV1Api,
                                dry_run: str | None) -> None:
    generation = stored(srv, "Deployment", DEPLOY)["metadata"]["generation"]
    answer = apps.patch_namespaced_deployment_scale(DEPLOY, NS, body={"spec": {"replicas": 5}},
                                                    dry_run=dry_run)
    assert (answer.kind, answer.api_version, answer.spec.replicas) == (
        "Scale", "autoscaling/v1", 5)
    assert answer.status.selector == (
        "app.kubernetes.io/instance=todo,app.kubernetes.io/name=backend")
    now = stored(srv, "Deployment", DEPLOY)
    assert now["spec"]["replicas"] == (2 if dry_run else 5)
    assert now["metadata"]["generation"] == generation + (0 if dry_run else 1)
    req = last(srv)
    assert (req.method, req.path, req.content_type, req.body) == (
        "PATCH", f"{DEPLOY_PATH}/scale", STRATEGIC_PATCH, {"spec": {"replicas": 5}})
    assert req.query == ({"dryRun": "All"} if dry_run else {})


def test_replace_statefulset_scale_and_stale_version(srv: KubeReplay,
                                                     apps: client.AppsV1Api) -> None:
    name, path = "todo-postgres", f"/apis/apps/v1/namespaces/{NS}/statefulsets/todo-postgres/scale"
    scale = apps.read_namespaced_stateful_set_scale(name, NS)
    assert scale.spec.replicas == 1
    scale.spec.replicas = 2
    answer = apps.replace_namespaced_stateful_set_scale(name, NS, body=scale)
    assert answer.spec.replicas == stored(srv, "StatefulSet", name)["spec"]["replicas"] == 2
    req = last(srv)
    # the client sends POST/PUT bodies without a Content-Type (the API takes it as JSON)
    assert (req.method, req.path, req.content_type) == ("PUT", path, None)
    assert req.body["spec"] == {"replicas": 2}
    assert req.body["metadata"]["resourceVersion"] == scale.metadata.resource_version
    scale.spec.replicas = 3  # still carries the resourceVersion read before the write
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_stateful_set_scale(name, NS, body=scale)
    assert err.value.status == 409
    assert status_of(err.value)["message"].startswith(
        'Operation cannot be fulfilled on statefulsets.apps "todo-postgres": '
        "the object has been modified")
    assert stored(srv, "StatefulSet", name)["spec"]["replicas"] == 2


def test_negative_replicas_are_invalid(srv: KubeReplay, apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale(DEPLOY, NS, body={"spec": {"replicas": -1}})
    assert err.value.status == 422 and "spec.replicas" in status_of(err.value)["message"]
    assert stored(srv, "Deployment", DEPLOY)["spec"]["replicas"] == 2


# -- POST, PUT, DELETE ------------------------------------------------------------
def new_config_map(name: str = "todo-flags") -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"ON": "1"})


@pytest.mark.parametrize("dry_run", [None, "All"])
def test_create_config_map(srv: KubeReplay, core: client.CoreV1Api,
                           dry_run: str | None) -> None:
    answer = core.create_namespaced_config_map(NS, new_config_map(), dry_run=dry_run)
    assert answer.metadata.namespace == NS and answer.metadata.uid
    assert (answer.metadata.resource_version is None) == bool(dry_run)
    assert (srv.state.get("ConfigMap", NS, "todo-flags") is None) == bool(dry_run)
    req = last(srv)
    assert (req.method, req.path, req.content_type) == (
        "POST", f"/api/v1/namespaces/{NS}/configmaps", None)
    assert req.body == {"metadata": {"name": "todo-flags"}, "data": {"ON": "1"}}
    assert req.query == ({"dryRun": "All"} if dry_run else {})


@pytest.mark.parametrize("dry_run", [None, "All"])
def test_create_existing_is_409_already_exists(srv: KubeReplay, core: client.CoreV1Api,
                                               dry_run: str | None) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, new_config_map(CM), dry_run=dry_run)
    status = status_of(err.value)
    assert (err.value.status, status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == f'configmaps "{CM}" already exists'
    assert status["details"] == {"name": CM, "kind": "configmaps"}


def test_replace_config_map_then_stale_replace_is_409(srv: KubeReplay,
                                                      core: client.CoreV1Api) -> None:
    cm = core.read_namespaced_config_map(CM, NS)
    read_version = cm.metadata.resource_version
    cm.data["LOG_LEVEL"] = "warn"
    dry = core.replace_namespaced_config_map(CM, NS, cm, dry_run="All")
    assert dry.data["LOG_LEVEL"] == "warn" and dry.metadata.resource_version == read_version
    assert stored(srv, "ConfigMap", CM)["data"]["LOG_LEVEL"] == "info"
    done = core.replace_namespaced_config_map(CM, NS, cm)
    assert int(done.metadata.resource_version) > int(read_version)
    assert stored(srv, "ConfigMap", CM)["data"]["LOG_LEVEL"] == "warn"
    req = last(srv)
    assert (req.method, req.path, req.content_type) == ("PUT", CM_PATH, None)
    assert req.body["metadata"]["resourceVersion"] == read_version
    cm.data["LOG_LEVEL"] = "error"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map(CM, NS, cm)  # still the version read first
    status = status_of(err.value)
    assert (err.value.status, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        f'Operation cannot be fulfilled on configmaps "{CM}": the object has been modified; '
        "please apply your changes to the latest version and try again")
    assert stored(srv, "ConfigMap", CM)["data"]["LOG_LEVEL"] == "warn"


def test_replace_with_another_name_is_400(srv: KubeReplay, core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map(CM, NS, new_config_map("other"))
    assert err.value.status == 400 and "does not match the name on the URL" in err.value.body


@pytest.mark.parametrize("dry_run", [None, "All"])
def test_delete_pod_answers_the_pod(srv: KubeReplay, core: client.CoreV1Api,
                                    dry_run: str | None) -> None:
    pod = core.delete_namespaced_pod(POD, NS, dry_run=dry_run)
    assert pod.metadata.name == POD and pod.metadata.deletion_timestamp is not None
    assert (srv.state.get("Pod", NS, POD) is None) == (dry_run is None)
    req = last(srv)
    assert (req.method, req.path, req.body) == (
        "DELETE", f"/api/v1/namespaces/{NS}/pods/{POD}", None)
    assert req.query == ({"dryRun": "All"} if dry_run else {})
    if dry_run is None:
        with pytest.raises(ApiException) as err:
            core.read_namespaced_pod(POD, NS)
        assert err.value.status == 404


def test_delete_config_map_answers_a_status(srv: KubeReplay, core: client.CoreV1Api) -> None:
    uid = stored(srv, "ConfigMap", CM)["metadata"]["uid"]
    answer = core.delete_namespaced_config_map(CM, NS)
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": CM, "kind": "configmaps", "uid": uid}}
    assert srv.state.get("ConfigMap", NS, CM) is None


def test_delete_absent_is_404(srv: KubeReplay, apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as err:
        apps.delete_namespaced_deployment("nope", NS)
    status = status_of(err.value)
    assert (err.value.status, status["reason"]) == (404, "NotFound")
    assert status["message"] == 'deployments.apps "nope" not found'


def test_delete_with_a_stale_precondition_is_409(srv: KubeReplay,
                                                 core: client.CoreV1Api) -> None:
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_pod(POD, NS, body=options)
    assert err.value.status == 409 and "Precondition failed" in status_of(err.value)["message"]
    assert last(srv).body == {"preconditions": {"resourceVersion": "1"}}
    assert srv.state.get("Pod", NS, POD) is not None


# -- RBAC -------------------------------------------------------------------------
def test_forbidden_verbs_answer_the_api_message(tmp_path: Path) -> None:
    denied = {"Deployment": {"patch"}, "Deployment/scale": {"update"}, "ConfigMap": {"create"}}
    with KubeReplay(DATA_DIR, forbidden_verbs=denied) as server:
        api = api_client(server, tmp_path)
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        with pytest.raises(ApiException) as err:
            apps.patch_namespaced_deployment(DEPLOY, NS, body=[], dry_run="All")
        assert err.value.status == 403
        status = status_of(err.value)
        assert status["reason"] == "Forbidden"
        assert status["message"] == (
            f'deployments.apps "{DEPLOY}" is forbidden: User "{USER}" cannot patch resource '
            f'"deployments" in API group "apps" in the namespace "{NS}"')
        assert status["details"] == {"name": DEPLOY, "group": "apps", "kind": "deployments"}
        with pytest.raises(ApiException) as err:
            core.create_namespaced_config_map(NS, new_config_map())
        assert status_of(err.value)["message"] == (
            f'configmaps is forbidden: User "{USER}" cannot create resource "configmaps" '
            f'in API group "" in the namespace "{NS}"')
        scale = apps.read_namespaced_deployment_scale(DEPLOY, NS)
        with pytest.raises(ApiException) as err:
            apps.replace_namespaced_deployment_scale(DEPLOY, NS, scale)
        assert 'cannot update resource "deployments/scale"' in status_of(err.value)["message"]
        # the subresource is its own RBAC resource: patching the scale is allowed
        assert apps.patch_namespaced_deployment_scale(
            DEPLOY, NS, {"spec": {"replicas": 3}}).spec.replicas == 3
        assert apps.read_namespaced_deployment(DEPLOY, NS).spec.replicas == 3
        assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in server.mutations()] == [
            ("PATCH", DEPLOY), ("POST", "configmaps"), ("PUT", "scale"), ("PATCH", "scale")]


def test_forbidden_verbs_only_takes_write_verbs_of_known_kinds() -> None:
    with pytest.raises(ValueError, match="'list'"):
        KubeReplay(DATA_DIR, forbidden_verbs={"Secret": {"list"}})
    with pytest.raises(ValueError, match="'deployments'"):
        KubeReplay(DATA_DIR, forbidden_verbs={"deployments": {"patch"}})


def test_forbidden_kind_denies_writes_too(tmp_path: Path) -> None:
    with KubeReplay(DATA_DIR, forbidden={"ConfigMap"}) as server:
        core = client.CoreV1Api(api_client(server, tmp_path))
        with pytest.raises(ApiException) as err:
            core.delete_namespaced_config_map(CM, NS)
        assert 'cannot delete resource "configmaps"' in status_of(err.value)["message"]
        assert server.state.get("ConfigMap", NS, CM) is not None


# -- recording ----------------------------------------------------------------------
def test_mutations_are_the_non_get_requests_in_order(srv: KubeReplay,
                                                     apps: client.AppsV1Api) -> None:
    apps.read_namespaced_deployment(DEPLOY, NS)
    apps.list_namespaced_deployment(NS)
    assert srv.mutations() == [] and len(srv.requests) == 2
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    apps.patch_namespaced_deployment(DEPLOY, NS, body=ops, dry_run="All")
    apps.patch_namespaced_deployment(DEPLOY, NS, body=ops)
    apps.read_namespaced_deployment(DEPLOY, NS)
    assert [(r.method, r.query) for r in srv.mutations()] == [
        ("PATCH", {"dryRun": "All"}), ("PATCH", {})]
    times = [r.time for r in srv.requests]
    assert times == sorted(times) and len(srv.requests) == 5


# -- controllers played by hooks --------------------------------------------------------
def test_on_write_completes_the_rollout_after_the_answer(srv: KubeReplay,
                                                         apps: client.AppsV1Api) -> None:
    srv.on_write("Deployment", rollout_complete)
    before = stored(srv, "Deployment", DEPLOY)["status"]["observedGeneration"]
    answer = apps.patch_namespaced_deployment_scale(DEPLOY, NS, {"spec": {"replicas": 4}},
                                                    dry_run="All")
    assert stored(srv, "Deployment", DEPLOY)["status"]["observedGeneration"] == before
    patched = apps.patch_namespaced_deployment(
        DEPLOY, NS, [{"op": "replace", "path": "/spec/replicas", "value": 4}])
    assert patched.status.observed_generation == before  # the controller acts afterwards
    now = apps.read_namespaced_deployment(DEPLOY, NS)
    assert now.status.observed_generation == now.metadata.generation == before + 1
    assert now.status.ready_replicas == now.status.updated_replicas == 4
    assert int(now.metadata.resource_version) > int(patched.metadata.resource_version)
    assert answer.spec.replicas == 4


def test_on_write_can_leave_the_rollout_stuck(srv: KubeReplay,
                                              apps: client.AppsV1Api) -> None:
    srv.on_write("Deployment", rollout_stuck)
    apps.patch_namespaced_deployment(
        DEPLOY, NS, {"spec": {"template": {"spec": {"containers": [
            {"name": "backend", "image": "todo-backend:broken"}]}}}})
    now = apps.read_namespaced_deployment(DEPLOY, NS)
    assert now.status.observed_generation == now.metadata.generation
    assert now.status.updated_replicas == 1 and now.status.unavailable_replicas == 1
    progressing = next(c for c in now.status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")


def test_on_write_hooks_see_only_their_kind(srv: KubeReplay, core: client.CoreV1Api) -> None:
    seen: list[str] = []
    srv.on_write("ConfigMap", lambda obj: seen.append(obj["metadata"]["name"]))
    srv.on_write("Deployment", lambda obj: seen.append("deployment"))
    core.create_namespaced_config_map(NS, new_config_map(), dry_run="All")
    core.create_namespaced_config_map(NS, new_config_map())
    core.patch_namespaced_config_map(CM, NS, {"data": {"A": "1"}}, _content_type=MERGE_PATCH)
    assert seen == ["todo-flags", CM]
    with pytest.raises(ValueError, match="'Deploy'"):
        srv.on_write("Deploy", rollout_complete)
