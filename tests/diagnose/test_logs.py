"""rbac-forbidden, dns-failure, dependency-unreachable, app-error (log rules)."""

from __future__ import annotations

import json

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
    ts,
    world,
)

from aiops.diagnose import diagnose
from aiops.diagnose.context import LOG_LINE_LIMIT
from aiops.diagnose.finding import Finding
from aiops.model import ClusterState

POD = "todo-chatbot-56dd955b56-vhwhn"

CHATBOT_PREVIOUS = """\
2025-06-02T11:50:01Z INFO  starting todo-chatbot 1.3.0
2025-06-02T11:50:01Z INFO  connecting to redis at todo-redis:6379
Traceback (most recent call last):
  File "/usr/local/lib/python3.12/site-packages/redis/connection.py", line 357, in connect
    sock = self.retry.call_with_retry(
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/local/lib/python3.12/site-packages/redis/connection.py", line 730, in _connect
    raise err
ConnectionRefusedError: [Errno 111] Connection refused

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/main.py", line 18, in <module>
    cache.ping()
  File "/usr/local/lib/python3.12/site-packages/redis/connection.py", line 363, in connect
    raise ConnectionError(self._error_message(e))
redis.exceptions.ConnectionError: Error 111 connecting to todo-redis:6379. Connection refused.
"""
DECISIVE_LINE = CHATBOT_PREVIOUS.splitlines().index(
    "redis.exceptions.ConnectionError: Error 111 connecting to todo-redis:6379. "
    "Connection refused.") + 1


def crashing(name: str = POD, *, restarts: int = 7) -> Obj:
    """A chatbot pod in CrashLoopBackOff whose last run exited 1."""
    p = pod(name, owner=CHATBOT_RS, ready=False, ip="10.244.0.64")
    p["status"]["containerStatuses"] = [{
        "name": "chatbot", "ready": False, "restartCount": restarts, "started": False,
        "image": "ghcr.io/acme/todo-chatbot:1.3.0",
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": f"back-off 5m0s restarting failed container=chatbot "
                                         f"pod={name}_todo(uid)"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                     "startedAt": ts(10), "finishedAt": ts(9.9)}}}]
    return p


def healthy(name: str = "todo-chatbot-56dd955b56-abcde", *, restarts: int = 0,
            last_finished: float | None = None) -> Obj:
    p = pod(name, owner=CHATBOT_RS, ip="10.244.0.65")
    s = p["status"]["containerStatuses"][0]
    s["restartCount"] = restarts
    if last_finished is not None:
        s["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                         "startedAt": ts(last_finished + 1),
                                         "finishedAt": ts(last_finished)}}
    return p


CHATBOT = deployment("todo-chatbot", {"app.kubernetes.io/name": "chatbot"},
                     [container("chatbot", "ghcr.io/acme/todo-chatbot:1.3.0", env=[
                         {"name": "REDIS_URL", "value": "redis://todo-redis:6379/0"},
                         {"name": "LOG_LEVEL", "value": "info"}])])
CHATBOT_RS = replicaset(CHATBOT, "56dd955b56")
REDIS = deployment("todo-redis", {"app.kubernetes.io/name": "redis"},
                   [container("redis", "redis:7.2", port=6379)])
REDIS_RS = replicaset(REDIS, "5759c4dd49")
REDIS_POD = pod("todo-redis-5759c4dd49-dbmsp", owner=REDIS_RS, ip="10.244.0.50")


def chat_world(*objs: Obj, prev: str | None = CHATBOT_PREVIOUS, cur: str | None = None,
               selector: dict[str, str] | None = None, name: str = POD,
               redis_port: int = 6379) -> ClusterState:
    """The demo's story: chatbot crash-loops on redis whose Service selects nothing."""
    p = crashing(name)
    svc = service("todo-redis", selector or {"app": "todo-redis"}, port=redis_port,
                  target=6379, cluster_ip="10.96.10.10", port_name="redis")
    ep = endpoints("todo-redis", ready=[REDIS_POD] if selector else None, changed=240)
    backoff = event(p, "BackOff", "Back-off restarting failed container chatbot in pod "
                    f"{name}_todo(uid)", count=30, first=25, field_path="spec.containers{chatbot}")
    logs = {(NS, name, "chatbot"): cur} if cur is not None else {}
    prevs = {(NS, name, "chatbot"): prev} if prev is not None else {}
    return world(CHATBOT, CHATBOT_RS, p, REDIS, REDIS_RS, REDIS_POD, svc, ep, backoff, *objs,
                 logs=logs, previous_logs=prevs)


def texts(f: Finding) -> str:
    return " | ".join(e.text for e in f.evidence)


# -- dependency-unreachable ---------------------------------------------------------------

def test_dependency_unreachable_links_to_the_service_without_endpoints() -> None:
    st = chat_world()
    f = one("dependency-unreachable", st)
    assert (f.rule, f.severity, f.kind, f.namespace, f.name, f.owner) == \
        ("dependency-unreachable", "critical", "Pod", NS, POD, "Deployment/todo-chatbot")
    assert f.summary.startswith(f"Pod todo/{POD} cannot reach todo-redis:6379 "
                                "(connection refused)")
    assert "Service todo/todo-redis has no endpoints: its selector app=todo-redis matches " \
           "no pod" in f.summary
    log = f.evidence[0]
    assert log.source == "log"
    assert log.text == ("redis.exceptions.ConnectionError: Error 111 connecting to "
                        "todo-redis:6379. Connection refused.")
    assert log.ref == f"previous log of chatbot, line {DECISIVE_LINE}"
    link = next(e for e in f.evidence if e.source == "object")
    assert link.ref == "Service/todo/todo-redis"
    assert f.first_seen == at(25)  # lines of the traceback carry no time: the BackOff
    cmds = f.remediation.commands
    assert cmds[0] == f"kubectl logs -n todo {POD} -c chatbot --previous"
    assert "kubectl get endpoints -n todo todo-redis" in cmds
    assert cmds[-1].endswith("-- nc -zv -w 3 todo-redis 6379")
    a = f.remediation.action  # the root fix: the Service selector
    assert a is not None and (a.kind, a.tier) == ("patch", "medium")
    assert a.target["kind"] == "Service" and a.target["name"] == "todo-redis"
    patched = assert_reversible(a, st.get("Service", NS, "todo-redis"))
    assert patched["spec"]["selector"] == {"app.kubernetes.io/name": "redis"}
    assert f.confidence == pytest.approx(0.9)


def test_dependency_ranks_before_crash_loop_and_supersedes_app_error() -> None:
    st = chat_world()
    assert fire("app-error", st)  # the traceback alone would be an app error
    d = diagnose(st, namespace=NS)
    assert d.failures == []
    on_pod = [f.rule for f in d.findings if f.owner == "Deployment/todo-chatbot"
              and f.kind == "Pod"]
    assert "app-error" not in on_pod
    assert on_pod[0] == "dependency-unreachable"
    if "crash-loop" in on_pod:
        assert on_pod.index("dependency-unreachable") < on_pod.index("crash-loop")


def test_dependency_groups_pods_of_one_workload() -> None:
    other = "todo-chatbot-56dd955b56-zzzzz"
    st = chat_world()
    st.objects["Pod"].append(crashing(other))
    st.previous_logs[(NS, other, "chatbot")] = CHATBOT_PREVIOUS
    d = diagnose(st, namespace=NS)
    dep = [f for f in d.findings if f.rule == "dependency-unreachable"]
    assert len(dep) == 1
    assert (dep[0].kind, dep[0].name) == ("Deployment", "todo-chatbot")
    assert dep[0].pods == sorted([POD, other])


@pytest.mark.parametrize("line,host,port", [
    ("dial tcp 10.96.10.10:6379: connect: connection refused", "10.96.10.10", 6379),
    ("Error: connect ECONNREFUSED 10.96.10.10:6379", "10.96.10.10", 6379),
    ("error: dial tcp todo-redis.todo:6379: connect: connection refused", "todo-redis.todo",
     6379),
    ("redis: connection pool: failed to dial after 5 attempts: dial tcp "
     "todo-redis.todo.svc.cluster.local:6379: connect: connection refused",
     "todo-redis.todo.svc.cluster.local", 6379),
    ("ERR Error 111 connecting to todo-redis.todo.svc:6379. Connection refused.",
     "todo-redis.todo.svc", 6379),
])
def test_dependency_host_forms_all_link_to_the_service(line: str, host: str, port: int) -> None:
    f = one("dependency-unreachable", chat_world(prev=line + "\n"))
    assert f"cannot reach {host}:{port}" in f.summary
    assert "Service todo/todo-redis has no endpoints" in f.summary


@pytest.mark.parametrize("text,target", [
    ('psycopg2.OperationalError: connection to server at "todo-db" (10.96.0.5), port 5432 '
     'failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP '
     'connections?', "todo-db:5432"),
    ('psql: could not connect to server: Connection refused\n\tIs the server running on host '
     '"todo-db" (10.96.0.5) and accepting\n\tTCP/IP connections on port 5432?', "todo-db:5432"),
    ("java.net.ConnectException: Connection refused (Connection refused)\n\tat "
     "java.base/sun.nio.ch.Net.connect0(Native Method)", "a dependency"),
    ("ERROR 2003 (HY000): Can't connect to MySQL server on 'todo-mysql:3306' (111)",
     "todo-mysql:3306"),
    ("requests.exceptions.ConnectionError: HTTPConnectionPool(host='todo-api', port=8080): Max "
     "retries exceeded with url: /v1 (Caused by NewConnectionError('<urllib3.connection."
     "HTTPConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] "
     "Connection refused'))", "todo-api:8080"),
])
def test_dependency_parses_client_library_wordings(text: str, target: str) -> None:
    f = one("dependency-unreachable", chat_world(prev=text + "\n"))
    assert f"cannot reach {target} (connection refused)" in f.summary


def test_dependency_port_not_exposed_by_service() -> None:
    st = chat_world(selector={"app.kubernetes.io/name": "redis"}, redis_port=6380)
    f = one("dependency-unreachable", st)
    assert "has ready endpoints" in f.summary
    assert "it exposes port(s) 6380, not 6379" in f.summary
    assert f.remediation.action is None


def test_dependency_localhost_and_timeouts() -> None:
    f = one("dependency-unreachable", chat_world(
        prev="Error: connect ECONNREFUSED 127.0.0.1:15000\n"))
    assert "127.0.0.1 is the pod itself" in f.summary
    f = one("dependency-unreachable", chat_world(
        prev='{"level":"error","msg":"smtp","error":"dial tcp 203.0.113.230:587: i/o '
             'timeout","time":"2025-06-02T11:51:02.118Z"}\n'))
    assert "cannot reach 203.0.113.230:587 (timeout)" in f.summary
    assert f.confidence < 0.8
    assert f.first_seen is not None  # the line's own timestamp
    assert f.first_seen.isoformat().startswith("2025-06-02T11:51:02.118")


def test_dependency_silent_on_healthy_container_with_an_old_transient_error() -> None:
    good = healthy()
    name = good["metadata"]["name"]
    log = "WARN dial tcp 10.96.10.10:6379: connect: connection refused, retrying\n" + \
        "".join(f"INFO served request {i}\n" for i in range(300))
    st = world(CHATBOT, CHATBOT_RS, good, logs={(NS, name, "chatbot"): log})
    assert fire("dependency-unreachable", st) == []
    # but a recent one on a healthy container is still reported, as a warning
    log += "ERROR dial tcp 10.96.10.10:6379: connect: connection refused\n"
    st = world(CHATBOT, CHATBOT_RS, good, logs={(NS, name, "chatbot"): log})
    f = one("dependency-unreachable", st)
    assert f.severity == "warning"
    assert f.evidence[0].ref == "log of chatbot, line 302"


def test_previous_log_of_a_long_recovered_container_is_history() -> None:
    good = healthy(restarts=1, last_finished=180)
    name = good["metadata"]["name"]
    st = world(CHATBOT, CHATBOT_RS, good, previous_logs={(NS, name, "chatbot"): CHATBOT_PREVIOUS})
    assert fire("dependency-unreachable", st) == []
    assert fire("app-error", st) == []
    recent = healthy("todo-chatbot-56dd955b56-fresh", restarts=1, last_finished=5)
    st.objects["Pod"].append(recent)
    st.previous_logs[(NS, "todo-chatbot-56dd955b56-fresh", "chatbot")] = CHATBOT_PREVIOUS
    assert [f.name for f in fire("dependency-unreachable", st)] == \
        ["todo-chatbot-56dd955b56-fresh"]


# -- rbac-forbidden -----------------------------------------------------------------------

REFLECTOR = ('E0602 11:58:00.123456       1 reflector.go:147] k8s.io/client-go@v0.30.1/tools/'
             'cache/reflector.go:232: Failed to watch *v1.Pod: failed to list *v1.Pod: pods is '
             'forbidden: User "system:serviceaccount:todo:todo-chatbot" cannot {verb} resource '
             '"pods" in API group "" in the namespace "todo"')


def rbac_world(log: str, *extra: Obj) -> ClusterState:
    p = healthy("todo-chatbot-56dd955b56-rbac1")
    return world(CHATBOT, CHATBOT_RS, p, *extra,
                 logs={(NS, "todo-chatbot-56dd955b56-rbac1", "chatbot"): log})


def test_rbac_forbidden_gives_exact_role_and_rolebinding_commands() -> None:
    log = "INFO starting\n" + REFLECTOR.format(verb="list") + "\n" + \
        REFLECTOR.format(verb="watch") + "\n"
    f = one("rbac-forbidden", rbac_world(log))
    assert (f.severity, f.kind, f.owner) == ("critical", "Pod", "Deployment/todo-chatbot")
    assert 'system:serviceaccount:todo:todo-chatbot cannot list,watch pods in namespace todo' \
        in f.summary
    assert f.evidence[0].ref == "log of chatbot, line 2"
    assert 'cannot list resource "pods" in API group "" in the namespace "todo"' in \
        f.evidence[0].text
    cmds = f.remediation.commands
    assert "kubectl auth can-i list pods -n todo " \
           "--as=system:serviceaccount:todo:todo-chatbot" in cmds
    assert "kubectl create role todo-chatbot-pods -n todo --verb=list,watch --resource=pods" \
        in cmds
    assert "kubectl create rolebinding todo-chatbot-pods -n todo --role=todo-chatbot-pods " \
           "--serviceaccount=todo:todo-chatbot" in cmds
    assert cmds.index("kubectl create role todo-chatbot-pods -n todo --verb=list,watch "
                      "--resource=pods") > cmds.index(
        "kubectl auth can-i list pods -n todo --as=system:serviceaccount:todo:todo-chatbot")
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("manual", "critical")
    assert a.target == {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                        "namespace": NS, "name": "todo-chatbot-pods"}
    # klog lines carry no RFC 3339 time: first_seen is the start of the run
    assert f.first_seen == at(100)


@pytest.mark.parametrize("line,resource_arg,scope_cmd", [
    ('deployments.apps "todo-worker" is forbidden: User "system:serviceaccount:todo:default" '
     'cannot patch resource "deployments" in API group "apps" in the namespace "todo"',
     "--resource=deployments.apps", "kubectl create role default-deployments-patch -n todo"),
    ('nodes is forbidden: User "system:serviceaccount:todo:default" cannot list resource '
     '"nodes" in API group "" at the cluster scope', "--resource=nodes",
     "kubectl create clusterrole default-nodes-list"),
    ('pods "x" is forbidden: User "system:serviceaccount:todo:default" cannot create resource '
     '"pods/exec" in API group "" in the namespace "todo"', "--resource=pods/exec",
     "kubectl create role default-pods-exec-create -n todo"),
    # before Kubernetes 1.14
    ('User "system:serviceaccount:todo:default" cannot list pods in the namespace "todo"',
     "--resource=pods", "kubectl create role default-pods-list -n todo"),
    ('User "system:serviceaccount:todo:default" cannot list deployments.extensions in the '
     'namespace "todo"', "--resource=deployments.extensions",
     "kubectl create role default-deployments-list -n todo"),
    # the Python client quotes the Status body as JSON
    ('kubernetes.client.exceptions.ApiException: (403)\nReason: Forbidden\nHTTP response '
     'body: {"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps is '
     'forbidden: User \\"system:serviceaccount:todo:default\\" cannot get resource '
     '\\"configmaps\\" in API group \\"\\" in the namespace \\"todo\\"","reason":"Forbidden",'
     '"code":403}', "--resource=configmaps", "kubectl create role default-configmaps-get -n todo"),
])
def test_rbac_wordings(line: str, resource_arg: str, scope_cmd: str) -> None:
    f = one("rbac-forbidden", rbac_world(line + "\n"))
    create = [c for c in f.remediation.commands if c.startswith("kubectl create ")]
    assert create[0].startswith(scope_cmd) and create[0].endswith(resource_arg)
    assert "binding" in create[1]
    assert "--serviceaccount=todo:default" in create[1]


def test_rbac_names_the_role_already_bound_with_its_grants() -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": meta("chatbot-reader"),
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
    rb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
          "metadata": meta("chatbot-reader"),
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                      "name": "chatbot-reader"},
          "subjects": [{"kind": "ServiceAccount", "name": "todo-chatbot", "namespace": NS}]}
    f = one("rbac-forbidden", rbac_world(REFLECTOR.format(verb="list") + "\n", role, rb))
    assert "RoleBinding todo/chatbot-reader binds Role chatbot-reader granting: get,list on " \
           "configmaps" in texts(f)


def test_rbac_supersedes_the_traceback_it_causes() -> None:
    log = ("Traceback (most recent call last):\n  File \"/app/main.py\", line 9, in <module>\n"
           "    v1.list_namespaced_pod(\"todo\")\n"
           "kubernetes.client.exceptions.ApiException: (403)\nReason: Forbidden\n"
           'HTTP response body: {"message":"pods is forbidden: User \\"system:serviceaccount:'
           'todo:default\\" cannot list resource \\"pods\\" in API group \\"\\" in the '
           'namespace \\"todo\\""}\n')
    st = chat_world(prev=log)
    assert fire("app-error", st)
    rules = {f.rule for f in diagnose(st, namespace=NS).findings
             if f.owner == "Deployment/todo-chatbot"}
    assert "rbac-forbidden" in rules and "app-error" not in rules


def test_rbac_near_miss_is_silent() -> None:
    st = rbac_world('WARN login: User "bob" cannot be found\nINFO User alice cannot '
                    'list items: quota\n')
    assert fire("rbac-forbidden", st) == []


# -- dns-failure --------------------------------------------------------------------------

def test_dns_failure_on_a_misspelt_service_proposes_the_env_fix() -> None:
    chatbot = json.loads(json.dumps(CHATBOT))
    chatbot["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = \
        "redis://todo-rediss:6379/0"
    line = ("2025-06-02T11:55:00Z ERROR cache: dial tcp: lookup todo-rediss on "
            "10.96.0.10:53: no such host")
    st = chat_world(prev=line + "\n", selector={"app.kubernetes.io/name": "redis"})
    st.objects["Deployment"][0] = chatbot
    f = one("dns-failure", st)
    assert (f.severity, f.kind, f.owner) == ("critical", "Pod", "Deployment/todo-chatbot")
    assert f.summary == (f"Pod todo/{POD} cannot resolve todo-rediss: no Service named "
                         "todo-rediss exists in namespace todo (did you mean todo-redis?).")
    assert f.evidence[0].text == line
    assert f.evidence[0].ref == "previous log of chatbot, line 1"
    assert f.first_seen == at(5)
    assert "no Service todo/todo-rediss; Services in todo: todo-redis" in texts(f)
    assert any(c.endswith("nslookup todo-rediss") for c in f.remediation.commands)
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("patch", "medium")
    assert a.target["kind"] == "Deployment" and a.target["name"] == "todo-chatbot"
    assert a.patch == [{"op": "replace",
                        "path": "/spec/template/spec/containers/0/env/0/value",
                        "value": "redis://todo-redis:6379/0"}]
    assert_reversible(a, chatbot)


@pytest.mark.parametrize("line,host", [
    ('psycopg2.OperationalError: could not translate host name "todo-redis" to address: '
     'Name or service not known', "todo-redis"),
    ("java.net.UnknownHostException: todo-redis.todo.svc.cluster.local: Name or service not "
     "known", "todo-redis.todo.svc.cluster.local"),
    ("redis.exceptions.ConnectionError: Error -3 connecting to todo-redis:6379. Temporary "
     "failure in name resolution.", "todo-redis"),
    ("** server can't find todo-redis.todo.svc.cluster.local: NXDOMAIN",
     "todo-redis.todo.svc.cluster.local"),
    ("urllib3.exceptions.NameResolutionError: <urllib3.connection.HTTPConnection object at "
     "0x7f3>: Failed to resolve 'todo-redis' ([Errno -2] Name or service not known)",
     "todo-redis"),
])
def test_dns_failure_with_an_existing_service_blames_cluster_dns(line: str, host: str) -> None:
    coredns = pod("coredns-7476b7d767-6wnp5", ns="kube-system", ready=False,
                  labels={"k8s-app": "kube-dns"})
    st = chat_world(coredns, prev=line + "\n")
    f = one("dns-failure", st)
    assert f"cannot resolve {host}: Service todo/todo-redis exists (ClusterIP 10.96.10.10), " \
           "so cluster DNS is failing" in f.summary
    assert "CoreDNS: 0/1 pod(s) Ready" in texts(f)
    assert "kubectl get pods -n kube-system -l k8s-app=kube-dns" in f.remediation.commands


def test_dns_external_host_and_dns_timeout() -> None:
    f = one("dns-failure", chat_world(prev="Error: getaddrinfo ENOTFOUND api.openai.com\n"))
    assert "cannot resolve api.openai.com: api.openai.com is an external name" in f.summary
    line = ("dial tcp: lookup todo-redis on 10.96.0.10:53: read udp 10.244.0.64:41234->"
            "10.96.0.10:53: i/o timeout")
    st = chat_world(prev=line + "\n")
    f = one("dns-failure", st)
    assert "cannot resolve todo-redis (the DNS server did not answer)" in f.summary
    assert fire("dependency-unreachable", st) == []  # a DNS timeout, not the dependency


def test_dns_ignores_coredns_query_logs() -> None:
    coredns = pod("coredns-7476b7d767-6wnp5", ns="kube-system", labels={"k8s-app": "kube-dns"},
                  containers=[container("coredns", "registry.k8s.io/coredns/coredns:v1.11.1")])
    log = ('[INFO] 10.244.0.64:45123 - 33797 "A IN todo-rediss.todo.svc.cluster.local. udp 52 '
           'false 512" NXDOMAIN qr,aa,rd 145 0.000090s\n'
           '[INFO] 127.0.0.1:59867 - 41536 "HINFO IN 6544401706717975060.1695906567327267950. '
           'udp 57 false 512" NXDOMAIN qr,rd,ra 57 0.012274712s\n')
    st = world(coredns, logs={("kube-system", "coredns-7476b7d767-6wnp5", "coredns"): log})
    assert fire("dns-failure", st) == []


def test_dns_supersedes_app_error_on_the_same_pod() -> None:
    log = ("Traceback (most recent call last):\n  File \"/app/main.py\", line 3\n"
           "socket.gaierror: [Errno -2] Name or service not known\n")
    st = chat_world(prev=log)
    f = one("dns-failure", st)
    assert "the log does not name the host" in f.summary
    rules = {x.rule for x in diagnose(st, namespace=NS).findings
             if x.owner == "Deployment/todo-chatbot"}
    assert "dns-failure" in rules and "app-error" not in rules


# -- app-error ----------------------------------------------------------------------------

def test_app_error_quotes_the_last_line_of_a_python_traceback() -> None:
    log = ("INFO computing ratio\nTraceback (most recent call last):\n"
           '  File "/app/main.py", line 4, in <module>\n    print(total / count)\n'
           "          ~~~~~~^~~~~~~\nZeroDivisionError: division by zero\n")
    f = one("app-error", chat_world(prev=log))
    assert (f.severity, f.kind, f.owner) == ("critical", "Pod", "Deployment/todo-chatbot")
    assert f.evidence[0].text == "ZeroDivisionError: division by zero"
    assert f.evidence[0].ref == "previous log of chatbot, line 6"
    assert "Python traceback: ZeroDivisionError: division by zero" in texts(f)
    assert "at line 6 of its previous log" in f.summary
    assert f.confidence < 0.85
    assert f.remediation.commands[0] == \
        f"kubectl logs -n todo {POD} -c chatbot --previous | sed -n '1,11p'"
    assert f.remediation.action is None


def test_app_error_chained_traceback_keeps_the_final_exception() -> None:
    f = one("app-error", chat_world(prev=CHATBOT_PREVIOUS))
    assert f.evidence[0].ref == f"previous log of chatbot, line {DECISIVE_LINE}"
    assert f.evidence[0].text.startswith("redis.exceptions.ConnectionError")


@pytest.mark.parametrize("log,decisive,line_no", [
    ("starting\npanic: runtime error: invalid memory address or nil pointer dereference\n"
     "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4b1c2a]\n\n"
     "goroutine 1 [running]:\nmain.main()\n\t/src/main.go:12 +0x2a\n",
     "panic: runtime error: invalid memory address or nil pointer dereference", 2),
    ('Exception in thread "main" java.lang.IllegalStateException: cannot start\n'
     "\tat com.acme.App.main(App.java:12)\n"
     "Caused by: java.io.FileNotFoundException: /config/app.yaml (No such file or directory)\n"
     "\tat java.base/java.io.FileInputStream.open0(Native Method)\n",
     "Caused by: java.io.FileNotFoundException: /config/app.yaml (No such file or directory)", 3),
    ("/app/server.js:14\n    const id = req.user.id;\n                        ^\n\n"
     "TypeError: Cannot read properties of undefined (reading 'id')\n"
     "    at /app/server.js:14:25\n",
     "TypeError: Cannot read properties of undefined (reading 'id')", 5),
    ('2025-06-02 11:58:01.123 UTC [1] FATAL:  password authentication failed for user "todo"\n',
     '2025-06-02 11:58:01.123 UTC [1] FATAL:  password authentication failed for user "todo"',
     1),
    ("psql:/init.sql:3: ERROR:  division by zero\n",
     "psql:/init.sql:3: ERROR:  division by zero", 1),
])
def test_app_error_decisive_lines_of_other_runtimes(log: str, decisive: str,
                                                     line_no: int) -> None:
    f = one("app-error", chat_world(prev=log))
    assert f.evidence[0].text == decisive
    assert f.evidence[0].ref == f"previous log of chatbot, line {line_no}"


def test_app_error_silent_on_a_healthy_container_with_handled_errors() -> None:
    good = healthy()
    name = good["metadata"]["name"]
    log = ("INFO GET /exceptions 200\nINFO errors=0 warnings=0\n"
           "WARN retrying after ValueError: bad input from client\n"
           "INFO stats: Exception count 0\n")
    st = world(CHATBOT, CHATBOT_RS, good, logs={(NS, name, "chatbot"): log})
    assert fire("app-error", st) == []
    log += "Traceback (most recent call last):\n  File \"/app/x.py\", line 1\nKeyError: 'user'\n"
    st = world(CHATBOT, CHATBOT_RS, good, logs={(NS, name, "chatbot"): log})
    f = one("app-error", st)
    assert f.severity == "warning"
    assert f.evidence[0].text == "KeyError: 'user'"


# -- robustness ----------------------------------------------------------------------------

def test_logs_binary_non_utf8_and_huge_are_safe() -> None:
    junk = "\x00\x01\udcff\udcfe\x1b[31mERROR\x1b[0m dial tcp 10.96.10.10:6379: connect: " \
           "connection refused\x07\n"
    st = chat_world(prev=junk)
    st.logs[(NS, POD, "chatbot")] = b"\xff\xfe binary \x00 panic: no"  # type: ignore[assignment]
    f = one("dependency-unreachable", st)
    text = json.dumps(f.to_dict(), ensure_ascii=False).encode("utf-8")
    assert b"\\u001b" not in text and "\x1b" not in f.evidence[0].text
    assert "ERROR dial tcp 10.96.10.10:6379" in f.evidence[0].text
    # one enormous line is cut, not scanned whole
    st = chat_world(prev="x" * 5_000_000 + " connection refused\n")
    assert fire("dependency-unreachable", st) == []
    for rid in ("rbac-forbidden", "dns-failure", "app-error"):
        assert fire(rid, st) == []


def test_line_numbers_count_from_the_start_of_a_huge_log() -> None:
    lines = [f"INFO tick {i}" for i in range(LOG_LINE_LIMIT + 500)]
    lines.append("ERROR dial tcp 10.96.10.10:6379: connect: connection refused")
    f = one("dependency-unreachable", chat_world(prev="\n".join(lines) + "\n"))
    assert f.evidence[0].ref == f"previous log of chatbot, line {LOG_LINE_LIMIT + 501}"


def test_log_rules_respect_the_target_scope() -> None:
    st = chat_world()
    assert fire("dependency-unreachable", st, namespace="other") == []
    assert len(fire("dependency-unreachable", st, namespace=NS, pod=POD)) == 1


def test_malformed_pods_and_logs_do_not_raise() -> None:
    st = chat_world()
    st.objects["Pod"].append({"kind": "Pod", "metadata": {"name": "weird", "namespace": NS},
                              "spec": {"containers": [{"name": "c"}, None, "x"]},
                              "status": {"containerStatuses": [None, {"name": "c",
                                                                      "lastState": None}]}})
    st.previous_logs[(NS, "weird", "c")] = None  # type: ignore[assignment]
    st.logs[(NS, "weird", "c")] = "User \"x\" cannot list pods in the namespace \"\udcff\"\n"
    for rid in ("rbac-forbidden", "dns-failure", "dependency-unreachable", "app-error"):
        for f in fire(rid, st):
            json.dumps(f.to_dict())


# -- demo cluster --------------------------------------------------------------------------

def test_demo_chatbot_cannot_reach_redis() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.previous_logs, "the bundled demo cluster has logs"
    d = diagnose(st, namespace="todo")
    chat = [f for f in d.findings if f.owner == "Deployment/todo-chatbot" and f.kind == "Pod"]
    rules = [f.rule for f in chat]
    assert rules[0] == "dependency-unreachable"
    assert "app-error" not in rules
    f = chat[0]
    assert "todo-redis:6379" in f.summary and "Service todo/todo-redis has no endpoints" \
        in f.summary
    assert f.evidence[0].text.startswith("redis.exceptions.ConnectionError: Error 111 "
                                         "connecting to todo-redis:6379")
    a = f.remediation.action
    assert a is not None and a.target["name"] == "todo-redis"
    assert apply_patch(st.get("Service", "todo", "todo-redis"), a.patch)["spec"]["selector"]
    # no false alarms from the system pods' ordinary logs
    sys_findings = [x for x in diagnose(st, namespace="kube-system").findings
                    if x.rule in ("dns-failure", "dependency-unreachable", "app-error",
                                  "rbac-forbidden")]
    assert sys_findings == []
