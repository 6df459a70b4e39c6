"""Workloads family: rollout-stuck, replicas-unavailable, quota-exceeded, job-failed,
cronjob-failing."""

from __future__ import annotations

from typing import Any

import pytest
from _workloads_objects import (
    NS,
    ago,
    condition,
    container,
    cronjob,
    deployment,
    event,
    job,
    job_condition,
    meta,
    owner,
    pending_pod,
    replicaset,
    roundtrip,
    running_pod,
    state,
    terminated,
    ts,
    waiting,
)

from aiops.diagnose.context import Context, Target
from aiops.diagnose.engine import diagnose
from aiops.diagnose.finding import Finding
from aiops.diagnose.registry import RULES, load_rules
from aiops.diagnose.rules import workloads as rules

load_rules()
IDS = ("rollout-stuck", "replicas-unavailable", "quota-exceeded", "job-failed",
       "cronjob-failing")
OLD_IMG = "registry.example.com/shop/web:1.4.0"
NEW_IMG = "registry.example.com/shop/web:1.4.1"
PULL_MSG = (f'Back-off pulling image "{NEW_IMG}"')


def run(st: Any, rule_id: str, **target: Any) -> list[Finding]:
    return list(RULES[rule_id].fn(Context(st, Target(**target))))


def texts(f: Finding) -> str:
    return "\n".join(f"{e.source}|{e.ref}|{e.text}" for e in f.evidence)


def test_all_ids_registered_in_family() -> None:
    for rid in IDS:
        assert RULES[rid].family == "workloads"
        assert RULES[rid].docs.startswith("https://kubernetes.io/docs/")
    assert "replicas-unavailable" in RULES["rollout-stuck"].supersedes


# -- rollout-stuck -------------------------------------------------------------------------------
def rollout(*, deadline: bool = True, new_state: str = "ImagePullBackOff",
            extra_container: bool = False, young: bool = False) -> tuple[list[dict], dict]:
    """web: revision 1 (1.4.0) serves 2 pods; revision 2 (1.4.1) cannot start."""
    side = [container("proxy", "envoyproxy/envoy:v1.30.1")] if extra_container else []
    new_side = [container("proxy", "envoyproxy/envoy:v1.31.0")] if extra_container else []
    cs_old, cs_new = [container("app", OLD_IMG), *side], [container("app", NEW_IMG), *new_side]
    cond = (condition("Progressing", "False", "ProgressDeadlineExceeded",
                      'ReplicaSet "web-7c9d8f6b5" has timed out progressing.', 15)
            if deadline else condition("Progressing", "True", "ReplicaSetUpdated",
                                       'ReplicaSet "web-7c9d8f6b5" is progressing.', 25))
    dep = deployment("web", replicas=2, containers=cs_new, revision=2, available=2,
                     conditions=[condition("Available", "True", "MinimumReplicasAvailable",
                                           "Deployment has minimum availability.", 600), cond])
    dep["status"].update(replicas=3, updatedReplicas=1, unavailableReplicas=1)
    old = replicaset(dep, "5d4f8b7c6", revision=1, containers=cs_old, replicas=2, ready=2,
                     created=60 * 24)
    new = replicaset(dep, "7c9d8f6b5", revision=2, containers=cs_new, replicas=1, created=25)
    minutes = 2 if young else 25
    if new_state == "ContainerCreating":
        sts = [waiting("app", "ContainerCreating")]
    else:
        sts = [waiting("app", new_state, PULL_MSG)]
    bad = running_pod("web-7c9d8f6b5-xk2lp", owners=owner("ReplicaSet", "web-7c9d8f6b5"),
                      ready=False, containers=cs_new, statuses=sts, minutes=minutes,
                      phase="Pending", labels={"app": "web"})
    pull = event(bad, "Failed", f'Failed to pull image "{NEW_IMG}": rpc error: code = NotFound '
                 f'desc = failed to pull and unpack image "{NEW_IMG}": not found', count=7,
                 first=24, last=1)
    goods = [running_pod(f"web-5d4f8b7c6-{s}", owners=owner("ReplicaSet", "web-5d4f8b7c6"),
                         containers=cs_old, labels={"app": "web"}) for s in ("abcde", "fghij")]
    objs = [dep, old, new, bad, *goods]
    if new_state != "ContainerCreating":
        objs.append(pull)
    return objs, dep


def test_rollout_stuck_deadline_rolls_back_image() -> None:
    objs, dep = rollout()
    [f] = run(state(*objs), "rollout-stuck")
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "rollout-stuck", "warning", "Deployment", "web", "Deployment/web")
    assert "ProgressDeadlineExceeded" in f.summary
    assert "web-7c9d8f6b5 (revision 2, app=" + NEW_IMG in f.summary
    assert "ImagePullBackOff" in f.summary
    assert f"revision 1 (app={OLD_IMG}) still serves 2 pod(s)" in f.summary
    body = texts(f)
    assert 'ReplicaSet "web-7c9d8f6b5" has timed out progressing.' in body
    assert "pod web-7c9d8f6b5-xk2lp: container app waiting: ImagePullBackOff: " + PULL_MSG in body
    assert f"previous ReplicaSet web-5d4f8b7c6 (revision 1): app={OLD_IMG}; 2 available" in body
    assert f.first_seen == ago(24)  # the first pull failure, before the deadline
    assert "kubectl rollout undo deployment/web -n shop --to-revision=1" in \
        f.remediation.commands
    a = f.remediation.action
    assert (a.kind, a.tier) == ("rollout-undo", "low")
    patched = roundtrip(dep, a)
    assert patched["spec"]["template"]["spec"]["containers"][0]["image"] == OLD_IMG
    assert "deployment.kubernetes.io/revision advances past 2" in a.validate


def test_rollout_stuck_before_deadline_from_failing_new_pods() -> None:
    objs, _ = rollout(deadline=False, new_state="CrashLoopBackOff")
    [f] = run(state(*objs), "rollout-stuck")
    assert f.confidence < 0.95
    assert "ProgressDeadlineExceeded" not in f.summary
    assert "CrashLoopBackOff" in f.summary


def test_rollout_stuck_two_changed_images_undo_both() -> None:
    objs, dep = rollout(extra_container=True)
    [f] = run(state(*objs), "rollout-stuck")
    a = f.remediation.action
    assert len(a.patch) == 2 and a.kind == "rollout-undo"
    patched = roundtrip(dep, a)
    images = [c["image"] for c in patched["spec"]["template"]["spec"]["containers"]]
    assert images == [OLD_IMG, "envoyproxy/envoy:v1.30.1"]


def test_rollout_in_progress_is_quiet() -> None:
    objs, _ = rollout(deadline=False, new_state="ContainerCreating", young=True)
    st = state(*objs)
    assert run(st, "rollout-stuck") == []
    assert run(st, "replicas-unavailable") == []


def test_healthy_deployment_is_quiet() -> None:
    dep = deployment("web", replicas=2, available=2, conditions=[
        condition("Progressing", "True", "NewReplicaSetAvailable",
                  'ReplicaSet "web-5d4f8b7c6" has successfully progressed.')])
    rs = replicaset(dep, "5d4f8b7c6", revision=1, containers=[container()], replicas=2,
                    ready=2)
    st = state(dep, rs, *(running_pod(f"web-5d4f8b7c6-{s}", owners=owner(
        "ReplicaSet", "web-5d4f8b7c6")) for s in "ab"))
    for rid in IDS:
        assert run(st, rid) == [], rid


def test_rollout_stuck_supersedes_replicas_unavailable_in_engine() -> None:
    objs, dep = rollout()
    dep["status"].update(availableReplicas=1, unavailableReplicas=2)
    st = state(*objs)
    assert run(st, "replicas-unavailable"), "fires on its own"
    on_dep = [f.rule for f in diagnose(st).findings if (f.kind, f.name) == ("Deployment", "web")]
    assert "rollout-stuck" in on_dep and "replicas-unavailable" not in on_dep


def test_workload_target_finds_the_rollout() -> None:
    objs, _ = rollout()
    [f] = run(state(*objs), "rollout-stuck", namespace=NS, workload=("Deployment", "web"))
    assert f.name == "web"


# -- replicas-unavailable --------------------------------------------------------------------------
def crashing(name: str, rs: str) -> dict:
    last = {"exitCode": 1, "reason": "Error", "startedAt": ts(3), "finishedAt": ts(2)}
    return running_pod(name, owners=owner("ReplicaSet", rs), ready=False, minutes=90,
                       statuses=[waiting("app", "CrashLoopBackOff", "back-off 5m0s restarting "
                                         "failed container=app", restarts=9, last=last)])


def test_replicas_unavailable_critical_when_none_available() -> None:
    dep = deployment("api", replicas=1, available=0, conditions=[
        condition("Available", "False", "MinimumReplicasUnavailable",
                  "Deployment does not have minimum availability.", 80)])
    rs = replicaset(dep, "66b8d9f7c4", revision=1, containers=[container()], replicas=1)
    pod = crashing("api-66b8d9f7c4-p9x2m", "api-66b8d9f7c4")
    [f] = run(state(dep, rs, pod), "replicas-unavailable")
    assert (f.severity, f.kind, f.name, f.owner) == ("critical", "Deployment", "api",
                                                      "Deployment/api")
    assert "0/1 replicas available" in f.summary and "CrashLoopBackOff" in f.summary
    body = texts(f)
    assert "conditions[Available]: False MinimumReplicasUnavailable" in body
    assert "pod api-66b8d9f7c4-p9x2m: container app waiting: CrashLoopBackOff" in body
    assert "(last exit code 1, Error)" in body
    assert f.first_seen == ago(80)
    assert f.remediation.commands[0] == "kubectl get pods -n shop -l app=api -o wide"


def test_replicas_unavailable_warning_when_some_serve_and_probe_quoted() -> None:
    dep = deployment("api", replicas=3, available=2)
    rs = replicaset(dep, "66b8d9f7c4", revision=1, containers=[container()], replicas=3,
                    ready=2)
    ok = [running_pod(f"api-66b8d9f7c4-{s}", owners=owner("ReplicaSet", "api-66b8d9f7c4"))
          for s in "ab"]
    slow = running_pod("api-66b8d9f7c4-c", owners=owner("ReplicaSet", "api-66b8d9f7c4"),
                       ready=False, minutes=30)
    probe = event(slow, "Unhealthy", "Readiness probe failed: HTTP probe failed with "
                  "statuscode: 503", count=170, first=29)
    probe["involvedObject"]["fieldPath"] = "spec.containers{app}"
    [f] = run(state(dep, rs, *ok, slow, probe), "replicas-unavailable")
    assert f.severity == "warning" and "2/3 replicas available" in f.summary
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in f.summary
    assert f.confidence >= 0.9


def test_statefulset_and_daemonset() -> None:
    sts = {"kind": "StatefulSet", "apiVersion": "apps/v1",
           "metadata": meta("db", created=600, labels={"app": "db"}),
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "db"}}},
           "status": {"replicas": 1, "readyReplicas": 0, "availableReplicas": 0}}
    pod = pending_pod("db-0", "0/1 nodes are available: pod has unbound immediate "
                      "PersistentVolumeClaims.", owners=owner("StatefulSet", "db"), minutes=50)
    ds = {"kind": "DaemonSet", "apiVersion": "apps/v1",
          "metadata": meta("agent", created=600),
          "spec": {"selector": {"matchLabels": {"app": "agent"}}},
          "status": {"desiredNumberScheduled": 3, "numberAvailable": 2, "numberReady": 2,
                     "numberUnavailable": 1}}
    found = {f.name: f for f in run(state(sts, pod, ds), "replicas-unavailable")}
    assert found["db"].severity == "critical"
    assert "db-0 Pending, Unschedulable" in found["db"].summary
    assert found["agent"].severity == "warning"
    assert "no pods of DaemonSet/agent exist" in texts(found["agent"])


# -- quota-exceeded ------------------------------------------------------------------------------
QUOTA_MSG = ('Error creating: pods "web-7c9d8f6b5-2xkqz" is forbidden: exceeded quota: '
             "compute-resources, requested: limits.memory=2Gi, used: limits.memory=3Gi, "
             "limited: limits.memory=4Gi")


def quota() -> dict:
    return {"kind": "ResourceQuota", "apiVersion": "v1",
            "metadata": meta("compute-resources"),
            "spec": {"hard": {"limits.memory": "4Gi", "requests.cpu": "4", "pods": "20"}},
            "status": {"hard": {"limits.memory": "4Gi", "requests.cpu": "4", "pods": "20"},
                       "used": {"limits.memory": "3Gi", "requests.cpu": "1", "pods": "6"}}}


def quota_rs() -> tuple[dict, dict, dict]:
    cs = [container("app", limits={"memory": "2Gi"}, requests={"memory": "1Gi"})]
    dep = deployment("web", replicas=1, available=0, containers=cs)
    rs = replicaset(dep, "7c9d8f6b5", revision=1, containers=cs, replicas=1, conditions=[
        {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": ts(40),
         "reason": "FailedCreate", "message": QUOTA_MSG}])
    ev = event(rs, "FailedCreate", QUOTA_MSG, count=19, first=40,
               component="replicaset-controller")
    return dep, rs, ev


def test_quota_exceeded_on_replicaset_quotes_quota() -> None:
    dep, rs, ev = quota_rs()
    st = state(dep, rs, ev, quota())
    [f] = run(st, "quota-exceeded")
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "quota-exceeded", "critical", "ReplicaSet", "web-7c9d8f6b5", "Deployment/web")
    assert "ResourceQuota compute-resources is exceeded" in f.summary
    body = texts(f)
    assert "limits.memory: used 3Gi of hard 4Gi" in body
    assert "requests.cpu" not in body  # only the resources the message names
    assert "FailedCreate: " + QUOTA_MSG in body and "x19" in body
    assert f.first_seen == ago(40)
    assert "kubectl describe resourcequota -n shop" in f.remediation.commands
    a = f.remediation.action
    assert a.kind == "manual" and a.target["kind"] == "Deployment"


def test_quota_found_from_deployment_target_with_no_pods() -> None:
    dep, rs, ev = quota_rs()
    st = state(dep, rs, ev, quota())
    [f] = run(st, "quota-exceeded", namespace=NS, workload=("Deployment", "web"))
    assert f.name == "web-7c9d8f6b5"


def test_limitrange_maximum_lowers_the_limit() -> None:
    msg = ('Error creating: pods "web-7c9d8f6b5-2xkqz" is forbidden: maximum memory usage per '
           "Container is 1Gi, but limit is 2Gi")
    dep, rs, _ = quota_rs()
    rs["status"].pop("conditions")
    ev = event(rs, "FailedCreate", msg, count=5, first=12, component="replicaset-controller")
    lr = {"kind": "LimitRange", "apiVersion": "v1", "metadata": meta("limits"),
          "spec": {"limits": [{"type": "Container", "max": {"memory": "1Gi"},
                               "default": {"memory": "512Mi"}}]}}
    [f] = run(state(dep, rs, ev, lr), "quota-exceeded")
    assert "a LimitRange rejects its pods" in f.summary
    assert "LimitRange limits: Container: max {'memory': '1Gi'}" in texts(f)
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "medium")
    patched = roundtrip(dep, a)
    assert patched["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": "1Gi"}


def test_quota_must_specify_on_job_is_manual() -> None:
    msg = ('Error creating: pods "report-x7" is forbidden: failed quota: compute-resources: '
           "must specify limits.cpu for: report; limits.memory for: report")
    j = job("report")
    ev = event(j, "FailedCreate", msg, first=9, component="job-controller")
    [f] = run(state(j, ev, quota()), "quota-exceeded")
    assert "requires requests/limits the pods lack" in f.summary
    assert f.remediation.action.kind == "manual"


def test_other_failed_create_is_not_quota() -> None:
    dep, rs, _ = quota_rs()
    rs["status"].pop("conditions")
    ev = event(rs, "FailedCreate", 'Error creating: pods "web-x" is forbidden: violates '
               'PodSecurity "restricted:latest": privileged', component="replicaset-controller")
    assert run(state(dep, rs, ev, quota()), "quota-exceeded") == []


# -- job-failed / cronjob-failing ------------------------------------------------------------------
LOG = "\n".join([f"2026-11-23T07:{i:02d}:00Z step {i}" for i in range(12)]
                + ["pg_dump: error: connection to server failed: FATAL:  password "
                   "authentication failed for user \"backup\"", ""])


def backup(*, reason: str = "BackoffLimitExceeded",
           message: str = "Job has reached the specified backoff limit",
           created: float = 60, name: str = "db-backup-29923320") -> tuple[list[dict], dict]:
    cj = cronjob("db-backup", last_schedule=created, last_success=created + 60 * 24)
    j = job(name, owners=owner("CronJob", "db-backup"), failed=3, created=created,
            conditions=[job_condition("FailureTarget", reason, message, created - 3),
                        job_condition("Failed", reason, message, created - 3)])
    pods = []
    for i, s in enumerate(("4ftdn", "65k4w", "c2xxz")):
        p = running_pod(f"{name}-{s}", owners=owner("Job", name), ready=False, phase="Failed",
                        containers=[container("backup", "postgres:16")],
                        statuses=[terminated("backup", 1, finished=created - i, started=
                                             created - i - 0.5)], minutes=created)
        pods.append(p)
    ev = event(j, "BackoffLimitExceeded", message, first=created - 3,
               component="job-controller")
    return [cj, j, *pods, ev], j


def test_job_failed_quotes_exit_codes_and_last_log_lines() -> None:
    objs, _ = backup()
    logs = {(NS, "db-backup-29923320-c2xxz", "backup"): LOG}
    [f] = run(state(*objs, logs=logs), "job-failed")
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "job-failed", "critical", "Job", "db-backup-29923320", "CronJob/db-backup")
    assert "BackoffLimitExceeded" in f.summary and "last exit code 1" in f.summary
    assert "password authentication failed" in f.summary
    body = texts(f)
    assert "conditions[Failed]: True BackoffLimitExceeded: Job has reached the specified " \
           "backoff limit" in body
    assert "pod db-backup-29923320-4ftdn container backup: exit code 1 (Error)" in body
    logs_ev = [e for e in f.evidence if e.source == "log"]
    assert len(logs_ev) == 5
    assert logs_ev[-1].ref == "log of backup, line 13"
    assert logs_ev[0].text == "2026-11-23T07:08:00Z step 8"
    assert f.first_seen == ago(60)  # the first pod's failure
    assert "kubectl logs -n shop db-backup-29923320-c2xxz" in f.remediation.commands
    assert "kubectl create job -n shop db-backup-manual --from=cronjob/db-backup" in \
        f.remediation.commands


@pytest.mark.parametrize(("reason", "message"), [
    ("DeadlineExceeded", "Job was active longer than specified deadline"),
    ("PodFailurePolicy", "Container backup for pod shop/db-backup-29923320-c2xxz failed with "
                         "exit code 42 matching FailJob rule at index 0"),
])
def test_job_failed_other_reasons(reason: str, message: str) -> None:
    objs, _ = backup(reason=reason, message=message)
    [f] = run(state(*objs), "job-failed")
    assert reason in f.summary and message in texts(f)


def test_job_failed_is_warning_once_a_later_run_succeeded_and_complete_job_quiet() -> None:
    objs, _ = backup(created=120, name="db-backup-29923260")
    ok = job("db-backup-29923320", owners=owner("CronJob", "db-backup"), succeeded=1,
             created=60, conditions=[job_condition("Complete", "CompletionsReached",
                                                   "Reached expected number of succeeded pods",
                                                   59)])
    st = state(*objs, ok)
    [f] = run(st, "job-failed")
    assert f.name == "db-backup-29923260" and f.severity == "warning"
    assert run(st, "cronjob-failing") == []


def test_cronjob_failing_links_job() -> None:
    objs, _ = backup()
    saw = event(objs[0], "SawCompletedJob", "Saw completed job: db-backup-29923320, "
                "condition: Failed", type="Normal", first=57, component="cronjob-controller")
    st = state(*objs, saw)
    [f] = run(st, "cronjob-failing")
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "cronjob-failing", "critical", "CronJob", "db-backup", "CronJob/db-backup")
    assert "its last Job failed, newest db-backup-29923320 (BackoffLimitExceeded)" in f.summary
    body = texts(f)
    assert "see job-failed on Job/shop/db-backup-29923320" in body
    assert "Saw completed job: db-backup-29923320, condition: Failed" in body
    assert f"lastSuccessfulTime: {ts(60 + 60 * 24)}" in body
    assert f.first_seen == ago(57)
    diag = diagnose(st)
    assert {("job-failed", "Job"), ("cronjob-failing", "CronJob")} <= {
        (x.rule, x.kind) for x in diag.findings}


def test_cronjob_suspended_is_info_with_resume_patch() -> None:
    cj = cronjob("report", suspend=True)
    [f] = run(state(cj), "cronjob-failing")
    assert f.severity == "info" and "suspended" in f.summary
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "low")
    assert roundtrip(cj, a)["spec"]["suspend"] is False


def test_cronjob_stale_success_without_jobs_and_active_run_quiet() -> None:
    [f] = run(state(cronjob("report", last_schedule=30, last_success=60 * 25)),
              "cronjob-failing")
    assert f.severity == "warning" and "did not succeed" in f.summary
    running = cronjob("report", last_schedule=2, last_success=60 * 25,
                      active=[{"kind": "Job", "name": "report-1", "namespace": NS}])
    assert run(state(running), "cronjob-failing") == []
    assert run(state(cronjob("report", last_schedule=30, last_success=29)),
               "cronjob-failing") == []


# -- helpers and the demo cluster -----------------------------------------------------------------
def test_pod_state_prefers_the_failing_container() -> None:
    pod = running_pod("x", ready=False, containers=[container("a"), container("b")],
                      statuses=[{"name": "a", "ready": False, "restartCount": 0,
                                 "state": {"running": {"startedAt": ts(5)}}},
                                waiting("b", "CreateContainerConfigError",
                                        'configmap "cfg" not found')])
    s = rules.pod_state(Context(state(pod)), pod)
    assert s.failing and 'configmap "cfg" not found' in s.text


def test_demo_cluster_workload_problems() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.kind("Pod"), "the bundled demo cluster has pods"
    diag = diagnose(st, namespace="todo")
    by = {(f.rule, f.owner): f for f in diag.findings}
    stuck = by[("rollout-stuck", "Deployment/todo-frontend")]
    assert "1.4.1" in stuck.summary and stuck.remediation.action.kind == "rollout-undo"
    assert "ImagePullBackOff" in stuck.summary
    assert ("cronjob-failing", "CronJob/todo-db-backup") in by
    failed = by[("job-failed", "CronJob/todo-db-backup")]
    assert "BackoffLimitExceeded" in failed.summary
    assert any(e.source == "log" for e in failed.evidence)
