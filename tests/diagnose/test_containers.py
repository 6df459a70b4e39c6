"""Container family: oom-killed, crash-loop, bad-command, liveness/readiness probes,
evicted, init-container-failed."""

from __future__ import annotations

from typing import Any

import pytest
from _containers_objects import (
    NOW,
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
    terminated,
    texts,
    ts,
    waiting,
)

from aiops.diagnose.context import LOG_LINE_LIMIT, Context
from aiops.diagnose.engine import diagnose
from aiops.diagnose.registry import RULES, load_rules
from aiops.diagnose.rules import containers as rules
from aiops.model import ClusterState

IDS = ("oom-killed", "crash-loop", "bad-command", "liveness-probe-failed",
       "readiness-probe-failed", "evicted", "init-container-failed")
POD = "web-7d9c8b6f5d-x2x7q"
BACKOFF_NEW = f"Back-off restarting failed container app in pod {POD}_shop(uid-{POD})"
BACKOFF_OLD = "Back-off restarting failed container"


def run(rule_id: str, st: ClusterState, **target: Any) -> list:
    load_rules()
    from aiops.diagnose.context import Target

    return list(RULES[rule_id].fn(Context(st, Target(**target))))


def one(rule_id: str, st: ClusterState) -> Any:
    found = run(rule_id, st)
    assert len(found) == 1, found
    return found[0]


def web(limit: str | None = "128Mi", request: str | None = "128Mi", **extra: Any) -> dict:
    res: dict = {}
    if limit:
        res["limits"] = {"memory": limit, "cpu": "500m"}
    if request:
        res["requests"] = {"memory": request, "cpu": "100m"}
    return container(resources=res, **extra)


def world(p: dict, *extra: dict, deploy_containers: list | None = None, **kw: Any) -> ClusterState:
    d = deployment(containers=deploy_containers or p["spec"]["containers"])
    rs = replicaset("web-7d9c8b6f5d", containers=p["spec"]["containers"], ready=1)
    return state(d, rs, p, *extra, **kw)


def test_rules_registered_with_family_and_docs() -> None:
    load_rules()
    for rid in IDS:
        r = RULES[rid]
        assert r.family == "containers"
        assert r.docs.startswith("https://kubernetes.io/docs/")
    assert "crash-loop" in RULES["oom-killed"].supersedes
    assert "crash-loop" in RULES["bad-command"].supersedes
    assert "crash-loop" in RULES["liveness-probe-failed"].supersedes
    assert RULES["crash-loop"].rank > max(RULES[r].rank for r in IDS if r != "crash-loop")


# -- oom-killed ------------------------------------------------------------------

def oom_pod(limit: str | None = "128Mi", request: str | None = "128Mi", *,
            last: dict | None = None, restarts: int = 4) -> dict:
    last = last or terminated(137, "OOMKilled", started=6, finished=5)
    return pod(containers=[web(limit, request)],
               statuses=[waiting("app", "CrashLoopBackOff",
                                 "back-off 1m20s restarting failed container=app "
                                 f"pod={POD}_shop(uid-{POD})", restarts=restarts, last=last)])


def test_oom_killed_raises_limit_and_equal_request() -> None:
    p = oom_pod()
    st = world(p, event(p, "BackOff", BACKOFF_NEW, count=12, first=20, field_path=fp()))
    f = one("oom-killed", st)
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "oom-killed", "critical", "Pod", POD, "Deployment/web")
    ev = texts(f)
    assert "status.containerStatuses[app].lastState.terminated.reason|reason: OOMKilled" in ev
    assert "exitCode: 137" in ev
    assert "spec.containers[app].resources.limits.memory|limits.memory: 128Mi" in ev
    assert BACKOFF_NEW in ev
    assert f.first_seen == at(20)
    assert "128Mi" in f.summary and "shop/" + POD in f.summary
    cmds = f.remediation.commands
    assert cmds[0] == f"kubectl describe pod {POD} -n shop"
    assert f"kubectl logs {POD} -n shop -c app --previous" in cmds
    assert cmds[-1] == ("kubectl set resources deployment/web -n shop -c app "
                        "--limits=memory=192Mi --requests=memory=192Mi")
    a = f.remediation.action
    assert (a.kind, a.tier, a.target["kind"], a.target["name"]) == (
        "patch", "medium", "Deployment", "web")
    d = st.get("Deployment", "shop", "web")
    patched = assert_round_trip(a, d)
    res = patched["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["limits"]["memory"] == "192Mi" and res["requests"]["memory"] == "192Mi"
    assert res["limits"]["cpu"] == "500m"
    assert any("rollout status deployment/web" in v for v in a.validate)


def test_oom_killed_unequal_request_is_left_alone_and_rounds_up_to_mi() -> None:
    p = oom_pod("100M", "64Mi")
    f = one("oom-killed", world(p))
    a = f.remediation.action
    assert [op["path"] for op in a.patch] == [
        "/spec/template/spec/containers/0/resources/limits/memory"]
    assert a.patch[0]["value"] == "144Mi"  # 150e6 bytes = 143.05Mi -> 144Mi
    assert a.inverse[0] == {"op": "replace", "path": a.patch[0]["path"], "value": "100M"}


def test_oom_killed_without_limit_is_manual() -> None:
    f = one("oom-killed", world(oom_pod(None, None)))
    assert "no memory limit" in f.summary
    assert f.remediation.action.kind == "manual"
    assert "limits.memory: (none)" in texts(f)


def test_oom_killed_bare_pod_gets_manual_action() -> None:
    p = oom_pod()
    p["metadata"].pop("ownerReferences")
    f = one("oom-killed", state(p))
    assert f.owner == f"Pod/{POD}"
    assert f.remediation.action.kind == "manual"
    assert "192Mi" in f.remediation.action.description


def test_oom_killed_current_state_terminated_job_pod() -> None:
    p = pod(name="report-28912345-abcde", owner=("Job", "report-28912345"), phase="Failed",
            containers=[web()], statuses=[{"name": "app", "ready": False, "restartCount": 0,
                                           "state": {"terminated": terminated(137, "OOMKilled")}}])
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "report-28912345", "namespace": "shop"},
           "spec": {"template": {"spec": {"containers": [web()]}}}}
    f = one("oom-killed", state(job, p))
    assert f.severity == "critical" and f.owner == "Job/report-28912345"
    assert "state.terminated.reason" in texts(f)
    assert not any("rollout status" in v for v in f.remediation.action.validate)


def test_exit_137_needs_a_node_oom_event_close_in_time() -> None:
    last = terminated(137, "Error", started=6, finished=5)
    p = oom_pod(last=last)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}
    oom_ev = event(node, "OOMKilling", "Memory cgroup out of memory: Killed process 4242 "
                   "(gunicorn) total-vm:812340kB, anon-rss:131072kB, file-rss:0kB",
                   first=5.2, last=5.2, component="kernel-monitor")
    oom_ev["involvedObject"]["namespace"] = ""
    f = one("oom-killed", world(p, node, oom_ev))
    assert f.confidence == pytest.approx(0.85)
    assert "OOMKilling: Memory cgroup out of memory" in texts(f)
    # same exit code without the node event, or with one long before: not an OOM
    assert run("oom-killed", world(oom_pod(last=last), node)) == []
    far = event(node, "OOMKilling", "System OOM encountered, victim process: gunicorn",
                first=50, last=45)
    far["involvedObject"]["namespace"] = ""
    assert run("oom-killed", world(oom_pod(last=last), node, far)) == []


def test_oom_killed_not_on_healthy_or_other_exit() -> None:
    healthy = pod(containers=[web()], statuses=[running(restarts=0)])
    assert run("oom-killed", world(healthy)) == []
    err = oom_pod(last=terminated(1, "Error"))
    assert run("oom-killed", world(err)) == []


def test_engine_oom_supersedes_crash_loop() -> None:
    p = oom_pod()
    d = diagnose(world(p, event(p, "BackOff", BACKOFF_OLD, count=7, field_path=fp())))
    assert not d.failures
    fired = {f.rule for f in d.findings if f.kind == "Pod"}
    assert "oom-killed" in fired and "crash-loop" not in fired


# -- crash-loop ---------------------------------------------------------------------

TRACEBACK = """INFO:     Started server process [1]
INFO:     Waiting for application startup.
2025-06-02 11:58:01,120 INFO chatbot.main connecting to redis at redis://todo-redis:6379/0
ERROR:    Traceback (most recent call last):
  File "/usr/local/lib/python3.12/site-packages/redis/asyncio/connection.py", line 275, in connect
    raise OSError(err, f'Connect call failed {address}')
ConnectionRefusedError: [Errno 111] Connect call failed ('10.96.14.2', 6379)

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/chatbot/main.py", line 38, in lifespan
    await app.state.redis.ping()
    raise ConnectionError(self._error_message(e))
redis.exceptions.ConnectionError: Error 111 connecting to todo-redis:6379. Connection refused.

ERROR:    Application startup failed. Exiting.
"""


def crash_pod(code: int = 1, reason: str = "Error", restarts: int = 6, **kw: Any) -> dict:
    return pod(statuses=[waiting("app", "CrashLoopBackOff",
                                 f"back-off 5m0s restarting failed container=app pod={POD}",
                                 restarts=restarts, last=terminated(code, reason, **kw))])


def test_crash_loop_quotes_exit_code_and_decisive_traceback_line() -> None:
    p = crash_pod()
    st = world(p, event(p, "BackOff", BACKOFF_NEW, count=30, first=42, field_path=fp()),
               previous_logs={("shop", POD, "app"): TRACEBACK})
    f = one("crash-loop", st)
    assert (f.severity, f.owner) == ("critical", "Deployment/web")
    assert "exits 1 (application error)" in f.summary
    assert "redis.exceptions.ConnectionError: Error 111 connecting to todo-redis:6379" \
        in f.summary
    assert f.summary.endswith("Connection refused.") and ".." not in f.summary
    logs = [e for e in f.evidence if e.source == "log"]
    assert [e.ref for e in logs] == ["previous log of app, line 11",
                                     "previous log of app, line 15",
                                     "previous log of app, line 17"]
    assert logs[1].text.startswith("redis.exceptions.ConnectionError")
    assert "waiting.reason|reason: CrashLoopBackOff" in texts(f)
    assert f.first_seen == at(42)
    assert f.remediation.commands[1] == f"kubectl logs {POD} -n shop -c app --previous"
    assert f.remediation.action is None
    assert f.confidence >= 0.9


def test_crash_loop_go_panic_and_older_backoff_wording() -> None:
    log = ("starting api on :8080\npanic: runtime error: invalid memory address or nil "
           "pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0]\n\n"
           "goroutine 1 [running]:\nmain.(*Server).handleError(...)\n\t/src/main.go:42 +0x1d\n")
    p = crash_pod(2)
    f = one("crash-loop", world(p, event(p, "BackOff", BACKOFF_OLD, count=5, first=15),
                                previous_logs={("shop", POD, "app"): log}))
    assert "panic: runtime error: invalid memory address" in f.summary
    assert "exits 2 (misuse of a shell builtin" in f.summary
    assert f.first_seen == at(15)
    assert any(e.ref == "previous log of app, line 2" for e in f.evidence)


@pytest.mark.parametrize(("code", "words"), [
    (0, "main process finished"), (137, "SIGKILL"), (139, "segmentation fault"),
    (143, "SIGTERM"), (134, "SIGABRT"), (42, "application-defined"),
])
def test_crash_loop_exit_code_meanings(code: int, words: str) -> None:
    f = one("crash-loop", world(crash_pod(code, "Completed" if code == 0 else "Error")))
    assert words in f.summary
    assert f.confidence < 0.9  # no log to quote


def test_crash_loop_termination_message_is_quoted() -> None:
    p = crash_pod(message="config error: DATABASE_URL is not set\n")
    f = one("crash-loop", world(p))
    assert "message: config error: DATABASE_URL is not set" in texts(f)
    assert "DATABASE_URL is not set" in f.summary


def test_crash_loop_repeated_exits_while_running_is_a_warning() -> None:
    p = pod(statuses=[running(restarts=5, last=terminated(1))])
    f = one("crash-loop", world(p))
    assert f.severity == "warning"


def test_crash_loop_near_misses() -> None:
    assert run("crash-loop", world(pod(statuses=[running(restarts=1,
                                                         last=terminated(1))]))) == []
    assert run("crash-loop", world(pod(statuses=[running(restarts=9,
                                                         last=terminated(0, "Completed"))]))) == []
    assert run("crash-loop", world(pod())) == []


def test_crash_loop_line_numbers_count_from_the_start_of_a_huge_log() -> None:
    lines = [f"INFO tick {i}" for i in range(LOG_LINE_LIMIT + 500)]
    lines.append("Exception in thread \"main\" java.lang.IllegalStateException: boom")
    lines.append("\tat com.acme.Main.main(Main.java:12)")
    f = one("crash-loop", world(crash_pod(), previous_logs={
        ("shop", POD, "app"): "\n".join(lines) + "\n"}))
    log = [e for e in f.evidence if e.source == "log"]
    assert log[0].ref == f"previous log of app, line {LOG_LINE_LIMIT + 501}"
    assert "IllegalStateException: boom" in log[0].text


def test_crash_loop_masks_secrets_in_quoted_lines() -> None:
    log = "ERROR: cannot connect postgres://app:hunter2@db:5432/app password=hunter2\n"
    f = one("crash-loop", world(crash_pod(), previous_logs={("shop", POD, "app"): log}))
    assert "hunter2" not in texts(f) and "hunter2" not in f.summary


def test_decisive_lines_prefers_panic_then_exception_then_error() -> None:
    assert rules.decisive_lines(["a", "ERROR x", "ValueError: bad", "b"]) == ([2], "exception")
    assert rules.decisive_lines(["panic: boom", "ValueError: bad"]) == ([0], "panic")
    assert rules.decisive_lines(['{"level":"error","msg":"db down"}', "ok"]) == ([0], "error")
    assert rules.decisive_lines(["    raise ValueError(x)", "fine"]) == ([], "")


# -- bad-command ---------------------------------------------------------------------

CONTAINERD_EXEC = ('failed to create containerd task: failed to create shim task: OCI runtime '
                   'create failed: runc create failed: unable to start container process: '
                   'exec: "pythn": executable file not found in $PATH: unknown')
DOCKER_EXEC = ('OCI runtime create failed: container_linux.go:349: starting container process '
               'caused "exec: \\"/app/start.sh\\": stat /app/start.sh: no such file or '
               'directory": unknown')


def test_bad_command_run_container_error() -> None:
    c = web(command=["pythn", "app.py"])
    p = pod(containers=[c], statuses=[waiting("app", "RunContainerError", CONTAINERD_EXEC,
                                              restarts=3,
                                              last=terminated(128, "StartError",
                                                              message=CONTAINERD_EXEC))])
    ev = event(p, "Failed", "Error: " + CONTAINERD_EXEC, count=4, first=8, field_path=fp())
    f = one("bad-command", world(p, ev))
    assert (f.severity, f.owner) == ("critical", "Deployment/web")
    assert "'pythn'" in f.summary and "not in the image" in f.summary
    t = texts(f)
    assert "waiting.reason|reason: RunContainerError" in t
    assert 'spec.containers[app].command|command: ["pythn", "app.py"]' in t
    assert f.first_seen == at(8)
    assert f.remediation.action.kind == "manual"
    assert any("command -v pythn" in c for c in f.remediation.commands)


def test_bad_command_docker_wording_no_such_file() -> None:
    p = pod(statuses=[waiting("app", "CrashLoopBackOff", restarts=2,
                              last=terminated(127, "ContainerCannotRun", message=DOCKER_EXEC))])
    f = one("bad-command", world(p))
    assert "'/app/start.sh'" in f.summary
    assert "command: (not set" in texts(f)


def test_bad_command_exit_127_quotes_shell_log_line() -> None:
    p = pod(containers=[web(command=["sh", "-c", "migrate && serve"])],
            statuses=[waiting("app", "CrashLoopBackOff", restarts=4, last=terminated(127))])
    log = "starting\n/bin/sh: 1: migrate: not found\n"
    f = one("bad-command", world(p, previous_logs={("shop", POD, "app"): log}))
    assert "'migrate'" in f.summary
    assert "log|previous log of app, line 2|/bin/sh: 1: migrate: not found" in texts(f)


def test_bad_command_exit_126_not_executable() -> None:
    p = pod(statuses=[waiting("app", "CrashLoopBackOff", restarts=4, last=terminated(126))])
    f = one("bad-command", world(p))
    assert "not executable" in f.summary


def test_bad_command_near_misses() -> None:
    other = pod(statuses=[waiting("app", "CreateContainerError",
                                  'Error: failed to reserve container name "app_web": name '
                                  'is reserved')])
    assert run("bad-command", world(other)) == []
    exit1 = pod(statuses=[waiting("app", "CrashLoopBackOff", restarts=3, last=terminated(1))])
    assert run("bad-command", world(exit1, previous_logs={
        ("shop", POD, "app"): "file not found: /etc/app.yaml\n"})) == []


def test_engine_bad_command_supersedes_crash_loop() -> None:
    p = pod(statuses=[waiting("app", "CrashLoopBackOff", restarts=4, last=terminated(127))])
    fired = diagnose(world(p)).rules_fired()
    assert "bad-command" in fired and "crash-loop" not in fired


# -- probes ----------------------------------------------------------------------------

def probe(path: str = "/healthz", port: int = 8080) -> dict:
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
            "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 1,
            "failureThreshold": 3}


def live_pod(port: int = 8080, *, looping: bool = True) -> dict:
    c = web(livenessProbe=probe(port=port), ports=[{"containerPort": 8080,
                                                    "protocol": "TCP"}])
    last = terminated(137, "Error", started=4, finished=3)
    status = (waiting("app", "CrashLoopBackOff", restarts=5, last=last) if looping
              else running(restarts=2, last=last))
    return pod(containers=[c], statuses=[status])


def test_liveness_probe_404_restarts_container() -> None:
    p = live_pod()
    evs = [event(p, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 404",
                 count=15, first=25, field_path=fp()),
           event(p, "Killing", "Container app failed liveness probe, will be restarted",
                 type="Normal", count=5, first=24, field_path=fp())]
    f = one("liveness-probe-failed", world(p, *evs))
    assert (f.severity, f.owner) == ("critical", "Deployment/web")
    assert "404" in f.summary and "path /healthz" in f.summary
    t = texts(f)
    assert ("spec.containers[app].livenessProbe|livenessProbe: httpGet HTTP port 8080 path "
            "/healthz (initialDelaySeconds=5, periodSeconds=10, timeoutSeconds=1, "
            "failureThreshold=3)") in t
    assert "Killing: Container app failed liveness probe, will be restarted" in t
    assert f.first_seen == at(25)
    assert f.remediation.action is None
    assert any("curl -i http://127.0.0.1:8080/healthz" in c for c in f.remediation.commands)
    fired = diagnose(world(p, *evs)).rules_fired()
    assert "liveness-probe-failed" in fired and "crash-loop" not in fired


def test_liveness_older_killing_wording_and_running_is_warning() -> None:
    p = live_pod(looping=False)
    evs = [event(p, "Unhealthy", "Liveness probe failed: Get http://10.244.0.5:8080/healthz: "
                 "net/http: request canceled (Client.Timeout exceeded while awaiting headers)",
                 count=6, field_path=fp()),
           event(p, "Killing", "Killing container with id docker://app:Container failed "
                 "liveness probe.. Container will be killed and recreated.", type="Normal")]
    f = one("liveness-probe-failed", world(p, *evs))
    assert f.severity == "warning"
    assert "slower than timeoutSeconds" in f.summary


def test_liveness_clearly_wrong_port_gets_a_patch() -> None:
    p = live_pod(port=8081)
    ev = event(p, "Unhealthy", 'Liveness probe failed: Get "http://10.244.0.5:8081/healthz": '
               "dial tcp 10.244.0.5:8081: connect: connection refused", count=9,
               field_path=fp())
    st = world(p, ev)
    f = one("liveness-probe-failed", st)
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "medium")
    patched = assert_round_trip(a, st.get("Deployment", "shop", "web"))
    assert patched["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"][
        "port"] == 8080


def test_liveness_near_misses() -> None:
    p = pod(containers=[web(livenessProbe=probe())], statuses=[running()])
    once = event(p, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500",
                 field_path=fp())
    assert run("liveness-probe-failed", world(p, once)) == []
    ready_only = event(p, "Unhealthy", "Readiness probe failed: HTTP probe failed with "
                       "statuscode: 503", count=40, field_path=fp())
    assert run("liveness-probe-failed", world(live_pod(), ready_only)) == []


def ready_pod(ready: bool = False, phase: str = "Running") -> dict:
    cond = {"type": "Ready", "status": "True" if ready else "False",
            "reason": None if ready else "ContainersNotReady",
            "message": None if ready else "containers with unready status: [app]",
            "lastTransitionTime": ts(33)}
    return pod(containers=[web(readinessProbe=probe("/ready"))],
               statuses=[running(ready=ready)], phase=phase,
               status_extra={"conditions": [cond]})


def test_readiness_probe_503() -> None:
    p = ready_pod()
    ev = event(p, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
               count=200, first=30, field_path=fp())
    f = one("readiness-probe-failed", world(p, ev))
    assert (f.severity, f.kind, f.owner) == ("warning", "Pod", "Deployment/web")
    assert "not Ready" in f.summary and "HTTP 503" in f.summary
    t = texts(f)
    assert "status.containerStatuses[app].ready|ready: False" in t
    assert "status.conditions[Ready]|Ready=False reason=ContainersNotReady" in t
    assert "readinessProbe: httpGet HTTP port 8080 path /ready" in t
    assert f.first_seen == at(33)


def test_readiness_named_port_is_resolved_for_the_check_command() -> None:
    p = ready_pod()
    c = p["spec"]["containers"][0]
    c["ports"] = [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    c["readinessProbe"]["httpGet"]["port"] = "http"
    ev = event(p, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
               field_path=fp())
    f = one("readiness-probe-failed", world(p, ev))
    assert "port http path /ready" in f.summary
    assert any(c.endswith("8000:8000 & curl -i http://127.0.0.1:8000/ready")
               for c in f.remediation.commands)


def test_readiness_connection_refused_wording() -> None:
    p = ready_pod()
    ev = event(p, "Unhealthy", 'Readiness probe failed: Get "http://10.244.0.5:8080/healthz": '
               "dial tcp 10.244.0.5:8080: connect: connection refused", field_path=fp())
    f = one("readiness-probe-failed", world(p, ev))
    assert "connection refused" in f.summary


def test_readiness_near_misses() -> None:
    msg = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    healthy = ready_pod(ready=True)
    assert run("readiness-probe-failed", world(healthy, event(healthy, "Unhealthy", msg,
                                                              field_path=fp()))) == []
    pending = ready_pod(phase="Pending")
    assert run("readiness-probe-failed", world(pending, event(pending, "Unhealthy", msg,
                                                              field_path=fp()))) == []
    assert run("readiness-probe-failed", world(ready_pod())) == []


# -- evicted ---------------------------------------------------------------------------

MEM_EVICT = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: "
             "91572Ki. Container app was using 1215324Ki, request is 0, has larger "
             "consumption of memory. ")


RS_OWNER = ("ReplicaSet", "web-7d9c8b6f5d")


def evicted_pod(message: str = MEM_EVICT, owner: tuple[str, str] | None = RS_OWNER) -> dict:
    return pod(owner=owner, phase="Failed", statuses=[], status_extra={
        "reason": "Evicted", "message": message,
        "conditions": [{"type": "DisruptionTarget", "status": "True",
                        "reason": "TerminationByKubelet", "lastTransitionTime": ts(44)}]})


def test_evicted_for_memory_with_delete_action() -> None:
    p = evicted_pod()
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "True",
                                       "reason": "KubeletHasInsufficientMemory",
                                       "message": "kubelet has insufficient memory available",
                                       "lastTransitionTime": ts(50)}]}}
    ev = event(p, "Evicted", MEM_EVICT.strip(), first=45, last=45)
    f = one("evicted", world(p, node, ev))
    assert (f.severity, f.owner) == ("warning", "Deployment/web")
    assert "low on memory" in f.summary and "was using 1215324Ki" in f.summary
    t = texts(f)
    assert "status.reason|reason: Evicted" in t
    assert "MemoryPressure=True" in t
    assert f.first_seen == at(45)
    a = f.remediation.action
    assert (a.kind, a.tier, a.target["kind"], a.target["name"]) == (
        "delete-pod", "trivial", "Pod", POD)
    assert f.remediation.commands[0] == "kubectl describe node node-a"


@pytest.mark.parametrize("message", [
    "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi. ",
    "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: "
    "512Mi. Container app was using 6Gi, which exceeds its request of 0. ",
    'Usage of EmptyDir volume "cache" exceeds the limit "1Gi". ',
])
def test_evicted_for_storage(message: str) -> None:
    f = one("evicted", world(evicted_pod(message)))
    assert "ephemeral-storage" in f.summary


def test_evicted_without_events_dates_from_the_killed_containers() -> None:
    p = evicted_pod()
    p["status"]["conditions"] = []
    p["status"]["containerStatuses"] = [{"name": "app", "ready": False, "restartCount": 0,
                                         "state": {"terminated": terminated(
                                             137, "Error", started=50, finished=47)}}]
    assert one("evicted", world(p)).first_seen == at(47)


def test_evicted_bare_pod_and_near_miss() -> None:
    f = one("evicted", state(evicted_pod(owner=None)))
    assert f.remediation.action.kind == "manual"
    failed = pod(phase="Failed", status_extra={"reason": "DeadlineExceeded"})
    assert run("evicted", world(failed)) == []


# -- init-container-failed ---------------------------------------------------------------

def init_pod(init_status: dict, phase: str = "Pending", restart: str = "Always",
             init_spec: dict | None = None) -> dict:
    p = pod(init=[init_spec or container("migrate", "ghcr.io/acme/web:1.2.0",
                                         command=["python", "manage.py", "migrate"])],
            init_statuses=[init_status], phase=phase,
            statuses=[waiting("app", "PodInitializing")])
    p["spec"]["restartPolicy"] = restart
    return p


def test_init_container_crash_loop_quotes_its_log() -> None:
    st_ = waiting("migrate", "CrashLoopBackOff", restarts=4, last=terminated(1))
    p = init_pod(st_)
    log = ("Operations to perform:\n  Apply all migrations\n"
           "django.db.utils.OperationalError: connection to server at \"db\" (10.96.3.4), "
           "port 5432 failed: Connection refused\n")
    ev = event(p, "BackOff", "Back-off restarting failed container migrate in pod "
               f"{POD}_shop(uid-{POD})", count=9, first=18, field_path=fp("migrate", True))
    f = one("init-container-failed", world(p, ev, previous_logs={("shop", POD, "migrate"): log}))
    assert (f.severity, f.owner) == ("critical", "Deployment/web")
    assert "Init container 'migrate'" in f.summary and "exits 1" in f.summary
    assert "OperationalError" in f.summary
    t = texts(f)
    assert "status.initContainerStatuses[migrate].lastState.terminated.exitCode" in t
    assert "log|previous log of migrate, line 3|django.db.utils.OperationalError" in t
    assert f.first_seen == at(18)
    assert f"kubectl logs {POD} -n shop -c migrate --previous" in f.remediation.commands
    # the app container waiting PodInitializing is not a crash loop
    assert run("crash-loop", world(p, ev)) == []


def test_init_container_failed_restart_never_uses_current_log() -> None:
    st_ = {"name": "migrate", "ready": False, "restartCount": 0,
           "state": {"terminated": terminated(2)}}
    p = init_pod(st_, phase="Failed", restart="Never")
    f = one("init-container-failed", world(p, logs={("shop", POD, "migrate"):
                                                    "usage: manage.py [-h]\nError: unknown "
                                                    "command 'migrat'\n"}))
    assert "log|log of migrate, line 2|Error: unknown command 'migrat'" in texts(f)


def test_init_container_near_misses() -> None:
    done = {"name": "migrate", "ready": True, "restartCount": 0,
            "state": {"terminated": terminated(0, "Completed")}}
    assert run("init-container-failed", world(init_pod(done, phase="Running"))) == []
    sidecar = container("proxy", restartPolicy="Always")
    crashing = waiting("proxy", "CrashLoopBackOff", restarts=3, last=terminated(1))
    assert run("init-container-failed", world(init_pod(crashing, init_spec=sidecar))) == []


def test_engine_bad_command_supersedes_init_container_failed() -> None:
    p = init_pod(waiting("migrate", "CrashLoopBackOff", restarts=3, last=terminated(127)))
    fired = diagnose(world(p)).rules_fired()
    assert "bad-command" in fired and "init-container-failed" not in fired


# -- robustness --------------------------------------------------------------------------

def malformed() -> list[dict]:
    return [
        {"kind": "Pod", "metadata": {"name": "a", "namespace": "shop"}},
        {"kind": "Pod", "metadata": {"name": "b", "namespace": "shop"}, "status": None,
         "spec": None},
        {"kind": "Pod", "metadata": {"name": "c", "namespace": "shop"},
         "spec": {"containers": ["x", None, {"name": None}], "initContainers": "y"},
         "status": {"containerStatuses": "nope", "initContainerStatuses": [None, 3],
                    "reason": "Evicted", "message": 12, "phase": 5}},
        {"kind": "Pod", "metadata": {"name": "d", "namespace": "shop"},
         "spec": {"containers": [{"name": "app", "resources": "big",
                                  "livenessProbe": "yes", "command": "sh"}]},
         "status": {"phase": "Running", "containerStatuses": [
             {"name": "app", "restartCount": "many", "ready": "no",
              "state": {"waiting": {"reason": "CrashLoopBackOff", "message": None},
                        "running": None},
              "lastState": {"terminated": {"exitCode": "137", "reason": "OOMKilled",
                                           "finishedAt": 7, "message": b"\x00\xff"}}}],
                    "conditions": [None, "Ready"]}},
        {"kind": "Event", "metadata": {"name": "e1", "namespace": "shop"}, "reason": "Unhealthy",
         "message": None},
        {"kind": "Event", "metadata": {"name": "e2", "namespace": "shop"},
         "involvedObject": {"kind": "Pod", "name": "d", "namespace": "shop",
                            "fieldPath": 4},
         "reason": "Unhealthy", "message": "Liveness probe failed: ", "count": "x",
         "series": "bad"},
        {"kind": "Event", "metadata": {"name": "e3", "namespace": "shop"},
         "involvedObject": {"kind": "Pod", "name": "d", "namespace": "shop"},
         "reason": "Killing", "message": None, "lastTimestamp": 5},
    ]


def test_rules_never_raise_on_malformed_objects() -> None:
    st = state(*malformed(), previous_logs={("shop", "d", "app"): "\x00\xff" * 10000 + "\n"
                                            + "x" * 300000})
    d = diagnose(st, rules=list(IDS))
    assert d.failures == []
    oom = [f for f in d.findings if f.rule == "oom-killed"]
    assert oom and oom[0].name == "d"


def test_target_scoping_only_looks_at_the_target_pod() -> None:
    p = crash_pod()
    other = pod(name="api-5f6d7c8b9-abcde", owner=None,
                statuses=[waiting("app", "CrashLoopBackOff", restarts=3, last=terminated(1))])
    st = world(p, other)
    assert [f.name for f in run("crash-loop", st, namespace="shop", pod=POD)] == [POD]


def test_captured_at_is_not_used_as_now_for_first_seen() -> None:
    # first_seen comes from the data, never from the capture time
    f = one("crash-loop", world(crash_pod()))
    assert f.first_seen is not None and f.first_seen < NOW


# -- demo cluster --------------------------------------------------------------------------

def test_demo_cluster_container_problems() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.kind("Pod"), "the bundled demo cluster has pods"
    d = diagnose(st, namespace="todo")
    owners = {(f.rule, f.owner) for f in d.findings}
    assert ("crash-loop", "Deployment/todo-chatbot") in owners
    chatbot = next(f for f in d.findings if f.rule == "crash-loop"
                   and f.owner == "Deployment/todo-chatbot")
    assert "redis.exceptions.ConnectionError: Error 111 connecting to todo-redis:6379" in \
        " ".join(e.text for e in chatbot.evidence)
    assert ("oom-killed", "Deployment/todo-worker") in owners
    assert not any(r == "crash-loop" and o == "Deployment/todo-worker" for r, o in owners)
    assert any(r == "readiness-probe-failed" and "todo-notifier" in o for r, o in owners)
