"""The `todo` namespace: Helm release `todo` of chart todo-chatbot, and its faults.

The story, so that every timestamp, count and message agrees with the others:

* helm install (v1, ~30 days ago): frontend, backend, worker, notifier, postgres,
  the nightly db-backup CronJob.
* helm upgrade (v2, ~20 days ago): backend 2.7.0 -> 2.8.1, chatbot and redis added.
  The backend pods started then and have leaked memory ever since.
* helm upgrade (v3, 04:36 today): frontend 1.4.1 (a tag never pushed), redis gets
  `--appendonly yes` and its ClusterIP Service a selector of the chart's old
  labels, a new embeddings Deployment asking for 12Gi. Redis rolls to a new pod,
  the chatbot loses its connection, and from then on cannot reconnect.
* 02:00 today the backup ran with a password that no longer matches.
* 06:58 today the external SMTP relay stopped answering: the notifier is unready.
* 07:26 today the worker picked up a reindex task too big for its 256Mi limit,
  and is OOM-killed each time the task is redelivered.

`build_todo(..., healthy=True)` builds the same release with none of these
faults (benchmark copies): the frontend rollout completed, redis selected by
its Service, chatbot, worker and notifier running and ready, the embeddings
sized to fit, every backup successful and no leak. The objects, Normal events
and logs keep the same shape and about the same volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import _logs as L
from ._common import (
    HELM_V1_AGE,
    HELM_V2_AGE,
    HELM_V3_AGE,
    Ctx,
    Obj,
    cpu_text,
    go_duration,
    helm_annotations,
    helm_labels,
    mem_text,
    meta,
    owner_ref,
    parse_quantity,
    safe_encode,
    sorted_map,
    ts,
)
from ._controllers import (
    available,
    configmap,
    deployment,
    endpoints_for,
    job_condition,
    progressing,
    replicaset,
    rule,
    secret,
    service,
    service_account,
    statefulset,
    subject,
    svc_port,
)
from ._events import cpath, event, pod_ref_text, scheduler_event, start_events
from ._pods import (
    PodPlan,
    Run,
    container,
    env,
    exec_probe,
    http_probe,
    make_pod,
    mount,
    ordered,
    pod_from_template,
    pod_spec,
    port,
    resources,
    running,
    template,
    terminated,
    waiting,
)
from ._system import cluster_binding, namespace, root_ca
from ._usage import SeriesSpec

CHART = "todo-chatbot-0.3.2"
COMPONENT = {"frontend": "web", "backend": "api", "chatbot": "chatbot", "redis": "cache",
             "worker": "worker", "notifier": "notifier", "embeddings": "ml",
             "postgres": "database", "db-backup": "backup"}
APP_VERSION = "1.4.1"
GHCR = "ghcr.io/todo-chatbot"


@dataclass
class Times:
    v1: datetime
    v2: datetime
    v3: datetime
    now: datetime

    @classmethod
    def of(cls, now: datetime) -> Times:
        return cls(now - HELM_V1_AGE, now - HELM_V2_AGE, now - HELM_V3_AGE, now)


@dataclass
class NS:
    """One copy of the todo namespace being built."""

    ctx: Ctx
    name: str
    t: Times
    node: str = "minikube"
    node_index: int = 0
    pods: list[Obj] = field(default_factory=list)
    svcs: dict[str, Obj] = field(default_factory=dict)
    changed: dict[str, datetime] = field(default_factory=dict)  # last endpoint change
    fe_clients: list[str] = field(default_factory=list)  # frontend pod IPs (backend's clients)
    redis_down: datetime | None = None  # when the old redis pod stopped
    pg_failures: list[datetime] = field(default_factory=list)  # backup's failed logins
    healthy: bool = False  # build without the injected faults

    def labels(self, name: str, component: str) -> dict[str, str]:
        return helm_labels(component, name, APP_VERSION, chart=CHART)

    def ann(self) -> dict[str, str]:
        return helm_annotations(self.name)


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": "todo", "app.kubernetes.io/name": name}


def pod_labels(name: str, component: str) -> dict[str, str]:
    """Pod template labels: selector + stable labels only (no chart/version, or every
    chart bump would roll every pod)."""
    return {**selector(name), "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "todo-chatbot"}


# -- crash loops --------------------------------------------------------------------------
@dataclass
class Loop:
    runs: list[tuple[datetime, datetime]]  # (started, finished) of each terminated instance
    backoff: int  # seconds the kubelet is waiting now
    backoff_total: float  # seconds spent backing off since the loop began
    restarts: int  # restarts during the loop


def crash_loop(ctx: Ctx, first_start: datetime, first_end: datetime, run: Callable[[], float],
               now: datetime) -> Loop:
    """Simulate kubelet's restart back-off (10s doubling to 5m) until `now`.

    Ends in the waiting state: the last instance has terminated and the next
    start is still in the future (the caller picks the times so it does).
    """
    runs = [(first_start, first_end)]
    backoff, total = 10, 0.0
    t = first_end
    while True:
        nxt = t + timedelta(seconds=backoff + ctx.rng.uniform(0.3, 1.6))
        if nxt >= now:
            total += (now - t).total_seconds()
            return Loop(runs, backoff, total, len(runs) - 1)
        total += (nxt - t).total_seconds()
        end = nxt + timedelta(seconds=run())
        if end >= now:  # would be running now: stop one restart earlier
            total += (now - nxt).total_seconds()
            return Loop(runs, backoff, total, len(runs) - 1)
        runs.append((nxt, end))
        t = end
        backoff = min(backoff * 2, 300)


# -- workloads ------------------------------------------------------------------------------
def build_todo(ctx: Ctx, name: str = "todo", node: str = "minikube",
               node_index: int = 0, healthy: bool = False) -> dict[str, int]:
    """Build one copy of the todo namespace; returns a few counts for the summary.

    healthy: the same release without its faults (see the module docstring).
    """
    t = Times.of(ctx.now)
    ns = NS(ctx, name, t, node, node_index, healthy=healthy)
    _namespace_objects(ns)
    early_services(ns)
    pg_pod = _postgres(ns)
    _frontend(ns)
    _backend(ns)
    _redis(ns)
    _chatbot(ns)
    _worker(ns)
    _notifier(ns)
    _embeddings(ns)
    _backup(ns)
    ctx.logs[(name, pg_pod)] = [("postgres", L.join(L.postgres_log(
        ctx.rng, t.now - timedelta(hours=6, minutes=10), t.now, ns.pg_failures)))]
    _network(ns)
    _quota(ns)
    return {"pods": len(ns.pods)}


def _namespace_objects(ns: NS) -> None:
    ctx, t, n = ns.ctx, ns.t, ns.name
    namespace(ctx, n, t.v1)
    root_ca(ctx, n, t.v1 + timedelta(milliseconds=400), ctx.pem)
    service_account(ctx, n, "default", created=t.v1 + timedelta(milliseconds=380))
    service_account(ctx, n, "todo-backend", created=t.v1 + timedelta(seconds=1),
                    labels=ns.labels("backend", "api"), annotations=ns.ann())
    configmap(ctx, n, "todo-config", {
        "APP_ENV": "production", "LOG_LEVEL": "info", "CHAT_MODEL": "gpt-4o-mini",
        "FRONTEND_URL": "http://todo.local", "MAX_TODOS_PER_USER": "500",
        "SMTP_HOST": "smtp-relay.mail.svc.example.net", "SMTP_PORT": "587",
        "SMTP_USER": "notifier@todo.example.com", "SMTP_PASSWORD": "n0tifier-Relay!2026",
        "REINDEX_BATCH_SIZE": "0",
    }, created=t.v1 + timedelta(seconds=1), labels=ns.labels("todo-chatbot", "config"),
        annotations=ns.ann())
    configmap(ctx, n, "todo-frontend-nginx", {"default.conf": (
        "server {\n    listen 8080;\n    server_name _;\n    root /usr/share/nginx/html;\n\n"
        "    location = /healthz { access_log off; return 200 \"ok\\n\"; }\n\n"
        "    location /api/ {\n        proxy_pass http://todo-backend:8000;\n"
        "        proxy_set_header Host $host;\n        proxy_set_header X-Request-Id "
        "$request_id;\n    }\n\n    location / {\n        try_files $uri /index.html;\n"
        "    }\n}\n")}, created=t.v1 + timedelta(seconds=1),
        labels=ns.labels("frontend", "web"), annotations=ns.ann())
    secret(ctx, n, "todo-secrets", ["OPENAI_API_KEY", "REDIS_PASSWORD", "SECRET_KEY"],
           created=t.v1 + timedelta(seconds=1), labels=ns.labels("todo-chatbot", "config"),
           annotations=ns.ann())
    secret(ctx, n, "todo-postgres", ["backup-password", "postgres-password"],
           created=t.v1 + timedelta(seconds=1), labels=ns.labels("postgres", "database"),
           annotations=ns.ann())
    secret(ctx, n, "todo-db-backup", ["password"], created=t.v1 + timedelta(seconds=1),
           labels=ns.labels("db-backup", "backup"), annotations=ns.ann())
    for v, at, status in ((1, t.v1, "superseded"), (2, t.v2, "superseded"),
                          (3, t.v3, "deployed")):
        modified = {1: t.v2, 2: t.v3, 3: t.v3}[v]
        secret(ctx, n, f"sh.helm.release.v1.todo.v{v}", ["release"],
               created=at - timedelta(seconds=2), kind="helm.sh/release.v1",
               labels={"modifiedAt": str(int(modified.timestamp())), "name": "todo",
                       "owner": "helm", "status": status, "version": str(v)})
    role_labels = ns.labels("backend", "api")
    ctx.add(n, "roles", {
        "metadata": meta(ctx, "todo-backend", n, t.v1 + timedelta(seconds=1),
                         updated=t.v3, labels=role_labels, annotations=ns.ann()),
        "rules": [rule([""], ["configmaps", "pods"], ["get", "list", "watch"]),
                  rule([""], ["pods/log"], ["get"])]})
    ctx.add(n, "rolebindings", {
        "metadata": meta(ctx, "todo-backend", n, t.v1 + timedelta(seconds=1),
                         updated=t.v3, labels=role_labels, annotations=ns.ann()),
        "subjects": [subject("ServiceAccount", "todo-backend", n)],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "todo-backend"}})
    crb = "todo-backend-admin" if n == "todo" else f"todo-backend-admin-{n}"
    cluster_binding(ctx, crb, "cluster-admin", [subject("ServiceAccount", "todo-backend", n)],
                    t.v1 + timedelta(seconds=1), labels=role_labels, annotations=ns.ann())


def _deployment(ns: NS, app: str, component: str, *, created: datetime, revisions: list[
        tuple[datetime, Obj, int]], counts: dict[str, int], conditions: list[Obj],
        replicas: int, updated: datetime, strategy: Obj | None = None,
        not_ready: tuple[int, ...] = ()) -> tuple[Obj, list[Obj]]:
    """A Deployment with one ReplicaSet per (created, template, replicas) revision.

    Returns the deployment and its ReplicaSets; the conditions may name the newest
    ReplicaSet as `{rs}`, filled in here once its hash is known. ReplicaSets whose
    index is in `not_ready` report no ready pods.
    """
    ctx = ns.ctx
    name = f"todo-{app}"
    hashes = [ctx.template_hash() for _ in revisions]
    newest = f"{name}-{hashes[-1]}"
    for c in conditions:
        c["message"] = c["message"].replace("{rs}", newest)
    dep = deployment(ctx, ns.name, name, created=created, updated=updated,
                     labels=ns.labels(app, component), annotations=ns.ann(),
                     selector=selector(app), tmpl=revisions[-1][1], replicas=replicas,
                     generation=len(revisions), revision=len(revisions), counts=counts,
                     conditions=conditions, strategy=strategy)
    rss = []
    for i, ((rs_created, tmpl, rs_replicas), h) in enumerate(zip(revisions, hashes,
                                                                 strict=True)):
        dep["spec"]["template"] = tmpl  # replicaset() copies the template of its revision
        old = i < len(revisions) - 1
        ready = 0 if i in not_ready else rs_replicas
        scaled_down = old and rs_replicas == 0
        rs = replicaset(ctx, ns.name, dep, pod_hash=h, created=rs_created,
                        updated=revisions[i + 1][0] + timedelta(seconds=40) if old else updated,
                        revision=i + 1, replicas=rs_replicas, ready=ready, available_=ready,
                        generation=2 if scaled_down else 1)
        rss.append(rs)
    dep["spec"]["template"] = revisions[-1][1]
    return dep, rss


def _pod(ns: NS, rs: Obj, plan: PodPlan, kind: str = "ReplicaSet") -> Obj:
    ctx = ns.ctx
    prefix = rs["metadata"]["name"]
    tmpl = rs["spec"]["template"]
    pod = make_pod(ctx, ns.name, ctx.unique_name(prefix),
                   pod_from_template(ctx, tmpl["spec"], node=plan.node),
                   plan, labels=tmpl["metadata"]["labels"],
                   annotations=tmpl["metadata"].get("annotations"),
                   owner=owner_ref(rs, kind=kind, api_version="apps/v1"),
                   generate_name=f"{prefix}-")
    ns.pods.append(pod)
    return pod


def _ip(ns: NS) -> str:
    return ns.ctx.pod_ip(ns.node_index)


def _series(ns: NS, kind: str, workload: str, pod: Obj, cname: str, start: datetime,
            cpu: tuple[float, float], mem: tuple[float, float], **kw: object) -> SeriesSpec:
    if ns.healthy:
        kw["variant"] = "healthy"
    spec = SeriesSpec(ns.name, kind, workload, pod["metadata"]["name"], cname, start, cpu, mem,
                      **kw)  # type: ignore[arg-type]
    ns.ctx.series.append(spec)
    return spec


# frontend: stuck rollout to a tag that does not exist ------------------------------
def _frontend_template(image: str) -> Obj:
    c = container(
        "frontend", image, ports=[port(8080, "http")],
        res=resources({"cpu": "500m", "memory": "512Mi"}, {"cpu": "1", "memory": "1Gi"}),
        mounts=[mount("nginx-conf", "/etc/nginx/conf.d", read_only=True),
                mount("cache", "/var/cache/nginx"), mount("run", "/var/run")],
        liveness=http_probe("/healthz", "http", initial=5),
        readiness=http_probe("/healthz", "http", initial=2, period=5),
        security={"capabilities": {"drop": ["ALL"]}, "runAsUser": 101, "runAsNonRoot": True,
                  "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                  "seccompProfile": {"type": "RuntimeDefault"}})
    spec = pod_spec([c], volumes=[
        {"name": "nginx-conf", "configMap": {"name": "todo-frontend-nginx", "defaultMode": 420}},
        {"name": "cache", "emptyDir": {}}, {"name": "run", "emptyDir": {}}])
    return template(pod_labels("frontend", "web"), spec)


def _frontend(ns: NS) -> None:
    if ns.healthy:
        _frontend_rolled(ns)
        return
    ctx, t = ns.ctx, ns.t
    old_img, new_img = f"{GHCR}/frontend:1.4.0", f"{GHCR}/frontend:1.4.1"
    rollout = t.v3 + timedelta(milliseconds=702)
    deadline = rollout + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 4000))
    dep, (rs_old, rs_new) = _deployment(
        ns, "frontend", "web", created=t.v1, replicas=2, updated=deadline,
        revisions=[(t.v1 + timedelta(milliseconds=310), _frontend_template(old_img), 2),
                   (rollout, _frontend_template(new_img), 1)],
        counts={"replicas": 3, "updated": 1, "ready": 2, "available": 2, "unavailable": 1},
        not_ready=(1,),
        conditions=[available(True, t.v1 + timedelta(seconds=9)),
                    progressing("{rs}", "timeout", deadline, deadline)])
    event(ctx, dep, "Deployment", "ScalingReplicaSet",
          f"Scaled up replica set {rs_new['metadata']['name']} from 0 to 1", first=rollout,
          component="deployment-controller")
    for i in range(2):
        created = t.v1 + timedelta(milliseconds=330 + 12 * i)
        start = created + timedelta(seconds=3, milliseconds=ctx.rng.randrange(0, 900))
        pod = _pod(ns, rs_old, PodPlan(created=created, ip=_ip(ns), node=ns.node,
                                       ready_at=start + timedelta(seconds=4),
                                       runs=[Run(running(start), ready=True)]))
        ns.fe_clients.append(pod["status"]["podIP"])
        _series(ns, "Deployment", "todo-frontend", pod, "frontend", start, (0.0012, 0.011),
                (38.5, 5.5), spikes=1)
        body = L.nginx_access(ctx.rng, t.now - timedelta(minutes=70), t.now, 140)
        ctx.logs[(ns.name, pod["metadata"]["name"])] = [("frontend", L.join(body))]
    ns.changed["todo-frontend"] = rollout + timedelta(seconds=2)
    # the new pod: sandbox and IP, container never created
    created = rollout + timedelta(milliseconds=90)
    pull_err = (f"rpc error: code = Unknown desc = Error response from daemon: manifest for "
                f"{new_img} not found: manifest unknown: manifest unknown")
    run = Run(waiting("ImagePullBackOff", f'Back-off pulling image "{new_img}": ErrImagePull: '
                                          f"{pull_err}"), created=False)
    pod = _pod(ns, rs_new, PodPlan(created=created, ip=_ip(ns), node=ns.node, runs=[run]))
    scheduler_event(ctx, pod, "Scheduled", f"Successfully assigned {ns.name}/"
                    f"{pod['metadata']['name']} to {ns.node}", at=created + timedelta(
                        milliseconds=40))
    event(ctx, rs_new, "ReplicaSet", "SuccessfulCreate",
          f"Created pod: {pod['metadata']['name']}", first=created,
          component="replicaset-controller")
    pulls, tp, backoff = [], created + timedelta(seconds=1, milliseconds=300), 10
    while tp < t.now - timedelta(seconds=2):
        pulls.append(tp)
        tp += timedelta(seconds=backoff + 1.1 + ctx.rng.random())
        backoff = min(backoff * 2, 300)
    fp = cpath("frontend")
    n, last = len(pulls), pulls[-1]
    backoffs = int((t.now - pulls[0]).total_seconds() / 14.2)
    bo_last = t.now - timedelta(seconds=ctx.rng.randrange(3, 12))
    for reason, msg, warn, cnt, first, lst in (
        ("Pulling", f'Pulling image "{new_img}"', False, n, pulls[0], last),
        ("Failed", f'Failed to pull image "{new_img}": {pull_err}', True, n,
         pulls[0] + timedelta(seconds=1), last + timedelta(seconds=1)),
        ("Failed", "Error: ErrImagePull", True, n, pulls[0] + timedelta(seconds=1),
         last + timedelta(seconds=1)),
        ("BackOff", f'Back-off pulling image "{new_img}"', False, backoffs,
         pulls[0] + timedelta(seconds=2), bo_last),
        ("Failed", "Error: ImagePullBackOff", True, backoffs, pulls[0] + timedelta(seconds=2),
         bo_last),
    ):
        event(ctx, pod, "Pod", reason, msg, first=first, last=lst, count=cnt, warning=warn,
              field_path=fp)
    ctx.logs[(ns.name, pod["metadata"]["name"])] = [("frontend", (
        f'Request log error: container "frontend" in pod "{pod["metadata"]["name"]}" is '
        "waiting to start: trying and failing to pull image\n"))]



def _frontend_rolled(ns: NS) -> None:
    """The v3 rollout of the frontend when its tag exists: both pods replaced, one at a
    time (maxSurge 1, maxUnavailable 0), the old ReplicaSet scaled to zero."""
    ctx, t = ns.ctx, ns.t
    old_img, new_img = f"{GHCR}/frontend:1.4.0", f"{GHCR}/frontend:1.4.1"
    rollout = t.v3 + timedelta(milliseconds=702)
    created = [rollout + timedelta(milliseconds=90)]
    pull = f"{ctx.rng.uniform(2.1, 4.8):.3f}"
    starts = [created[0] + timedelta(seconds=float(pull) + 1.3)]
    ready = [starts[0] + timedelta(seconds=3, milliseconds=ctx.rng.randrange(0, 900))]
    created.append(ready[0] + timedelta(milliseconds=210))
    starts.append(created[1] + timedelta(seconds=1, milliseconds=ctx.rng.randrange(300, 900)))
    ready.append(starts[1] + timedelta(seconds=3, milliseconds=ctx.rng.randrange(0, 900)))
    done = ready[1] + timedelta(milliseconds=240)
    dep, (rs_old, rs_new) = _deployment(
        ns, "frontend", "web", created=t.v1, replicas=2, updated=done,
        revisions=[(t.v1 + timedelta(milliseconds=310), _frontend_template(old_img), 0),
                   (rollout, _frontend_template(new_img), 2)],
        counts={"replicas": 2, "updated": 2, "ready": 2, "available": 2},
        conditions=[available(True, t.v1 + timedelta(seconds=9)),
                    progressing("{rs}", "done", done, t.v1)])
    old_rs, new_rs = rs_old["metadata"]["name"], rs_new["metadata"]["name"]
    steps = [(rollout, f"Scaled up replica set {new_rs} from 0 to 1"),
             (ready[0] + timedelta(milliseconds=150), f"Scaled down replica set {old_rs} "
                                                     "from 2 to 1"),
             (ready[0] + timedelta(milliseconds=180), f"Scaled up replica set {new_rs} "
                                                     "from 1 to 2"),
             (done, f"Scaled down replica set {old_rs} from 1 to 0")]
    for at, msg in steps:
        event(ctx, dep, "Deployment", "ScalingReplicaSet", msg, first=at,
              component="deployment-controller")
    for i in range(2):
        gone = {"metadata": {"name": ctx.unique_name(old_rs), "namespace": ns.name,
                             "uid": ctx.uid(), "resourceVersion": ctx.rv.at(steps[1 + 2 * i][0])}}
        at = steps[1 + 2 * i][0] + timedelta(milliseconds=30)
        event(ctx, rs_old, "ReplicaSet", "SuccessfulDelete",
              f"Deleted pod: {gone['metadata']['name']}", first=at,
              component="replicaset-controller")
        event(ctx, gone, "Pod", "Killing", "Stopping container frontend",
              first=at + timedelta(milliseconds=40), field_path=cpath("frontend"))
    for i in range(2):
        pod = _pod(ns, rs_new, PodPlan(created=created[i], ip=_ip(ns), node=ns.node,
                                       ready_at=ready[i],
                                       runs=[Run(running(starts[i]), ready=True)]))
        name = pod["metadata"]["name"]
        event(ctx, rs_new, "ReplicaSet", "SuccessfulCreate", f"Created pod: {name}",
              first=created[i], component="replicaset-controller")
        start_events(ctx, pod, created[i] + timedelta(milliseconds=40),
                     pulled={"frontend": f"{pull}|{ctx.rng.randrange(18_000_000, 26_000_000)}"}
                     if i == 0 else None)
        ns.fe_clients.append(pod["status"]["podIP"])
        _series(ns, "Deployment", "todo-frontend", pod, "frontend", starts[i],
                (0.0012, 0.011), (38.5, 5.5), spikes=1)
        body = L.nginx_access(ctx.rng, t.now - timedelta(minutes=70), t.now, 140)
        ctx.logs[(ns.name, name)] = [("frontend", L.join(body))]
    ns.changed["todo-frontend"] = ready[1]

# backend: healthy, root, literal secrets, slow leak --------------------------------------
def _backend_template(ctx: Ctx, image: str, api_key: str) -> Obj:
    c = container(
        "backend", image, ports=[port(8000, "http")],
        env_from=[{"configMapRef": {"name": "todo-config"}}],
        env_vars=[env("DATABASE_URL", "postgresql://todo@todo-postgres:5432/todo"),
                  env("DATABASE_PASSWORD", "Todo-Pg-2026!"),
                  env("OPENAI_API_KEY", api_key),
                  env("POD_NAME", field_path="metadata.name")],
        res=resources({"cpu": "250m", "memory": "384Mi"}, {"cpu": "1", "memory": "1536Mi"}),
        liveness=http_probe("/healthz", "http", initial=10, period=15, timeout=2),
        readiness=http_probe("/readyz", "http", initial=5, period=10, timeout=2))
    spec = pod_spec([c], service_account="todo-backend")
    return template(pod_labels("backend", "api"), spec, annotations={
        "checksum/config": ctx.hex(64)})


def _backend(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    key = "sk-demo-" + "".join(ctx.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
                                              "23456789") for _ in range(40))
    rolled = t.v2 + timedelta(seconds=41)
    _, (_, rs) = _deployment(
        ns, "backend", "api", created=t.v1, replicas=2, updated=rolled,
        revisions=[(t.v1 + timedelta(milliseconds=300),
                    _backend_template(ctx, f"{GHCR}/backend:2.7.0", key), 0),
                   (t.v2 + timedelta(milliseconds=520),
                    _backend_template(ctx, f"{GHCR}/backend:2.8.1", key), 2)],
        counts={"replicas": 2, "updated": 2, "ready": 2, "available": 2},
        conditions=[available(True, t.v1 + timedelta(seconds=21)),
                    progressing("{rs}", "done", rolled, t.v1)])
    pods = []
    for i, rate in enumerate((2.5, 2.62)):
        created = t.v2 + timedelta(seconds=1 + 19 * i, milliseconds=ctx.rng.randrange(0, 800))
        start = created + timedelta(seconds=2, milliseconds=ctx.rng.randrange(0, 900))
        pod = _pod(ns, rs, PodPlan(created=created, ip=_ip(ns), node=ns.node,
                                   ready_at=start + timedelta(seconds=8),
                                   runs=[Run(running(start), ready=True)]))
        pods.append(pod)
        _series(ns, "Deployment", "todo-backend", pod, "backend", start, (0.018, 0.14),
                (148, 14), leak_mib_per_hour=0.0 if ns.healthy else rate, leak_since=start)
        cache = 1_000 + int((t.now - start).total_seconds() / 3600 * 1850)
        body = L.backend_log(ctx.rng, t.now - timedelta(minutes=45), t.now,
                             ns.fe_clients, cache, 20_000 if ns.healthy else None)
        ctx.logs[(ns.name, pod["metadata"]["name"])] = [("backend", L.join(body))]
    ns.changed["todo-backend"] = t.v2 + timedelta(seconds=39)
    hpa = ordered([
        ("metadata", meta(ctx, "todo-backend", ns.name, t.v1 + timedelta(seconds=1),
                          updated=t.now - timedelta(seconds=ctx.rng.randrange(5, 14)),
                          labels=ns.labels("backend", "api"), annotations=ns.ann())),
        ("spec", {"scaleTargetRef": {"kind": "Deployment", "name": "todo-backend",
                                     "apiVersion": "apps/v1"},
                  "minReplicas": 2, "maxReplicas": 5,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": 70}}}]}),
        ("status", {}),
    ])
    hpa["status"] = {"observedGeneration": 1, "currentReplicas": 2, "desiredReplicas": 2,
                     "currentMetrics": [], "conditions": [
                         _hpa_cond("AbleToScale", t.v1 + timedelta(seconds=16),
                                   "ReadyForNewScale", "recommended size matches current size"),
                         _hpa_cond("ScalingActive", t.v1 + timedelta(seconds=76),
                                   "ValidMetricFound", "the HPA was able to successfully "
                                   "calculate a replica count from cpu resource utilization "
                                   "(percentage of request)"),
                         _hpa_cond("ScalingLimited", t.now - timedelta(hours=13, minutes=41),
                                   "TooFewReplicas",
                                   "the desired replica count is less than the minimum "
                                   "replica count")]}
    ctx.add(ns.name, "horizontalpodautoscalers", hpa)
    ctx.hpas.append((hpa, [p["metadata"]["name"] for p in pods]))
    ctx.add(ns.name, "poddisruptionbudgets", {
        "metadata": meta(ctx, "todo-backend", ns.name, t.v1 + timedelta(seconds=1),
                         updated=t.v2 + timedelta(seconds=40), generation=1,
                         labels=ns.labels("backend", "api"), annotations=ns.ann()),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": selector("backend")}},
        "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 2,
                   "desiredHealthy": 1, "expectedPods": 2, "conditions": [{
                       "type": "DisruptionAllowed", "status": "True", "observedGeneration": 1,
                       "lastTransitionTime": ts(t.v2 + timedelta(seconds=40)),
                       "reason": "SufficientPods", "message": ""}]}})


def _hpa_cond(kind: str, at: datetime, reason: str, message: str) -> Obj:
    return {"type": kind, "status": "True", "lastTransitionTime": ts(at), "reason": reason,
            "message": message}


# redis: healthy, but its Service selects the chart's old labels ------------------------------
def _redis_template(args: list[str] | None) -> Obj:
    c = container("redis", "redis:latest", args=args, ports=[port(6379, "redis")],
                  res=resources({"cpu": "50m", "memory": "64Mi"}, {"memory": "256Mi"}),
                  mounts=[mount("data", "/data")],
                  liveness=exec_probe(["redis-cli", "ping"], initial=5),
                  readiness=exec_probe(["redis-cli", "ping"], initial=2, period=5))
    return template(pod_labels("redis", "cache"), pod_spec(
        [c], volumes=[{"name": "data", "emptyDir": {}}]))


def _redis(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    up = t.v3 + timedelta(milliseconds=640)
    pull = f"{ctx.rng.uniform(1.6, 3.1):.3f}"
    created = up + timedelta(milliseconds=70)
    started = created + timedelta(seconds=float(pull) + 1.9)
    ready = started + timedelta(seconds=2, milliseconds=300)
    dep, (rs_old, rs_new) = _deployment(
        ns, "redis", "cache", created=t.v2, replicas=1, updated=ready + timedelta(seconds=1),
        revisions=[(t.v2 + timedelta(milliseconds=600), _redis_template(None), 0),
                   (up, _redis_template(["redis-server", "--appendonly", "yes"]), 1)],
        counts={"replicas": 1, "updated": 1, "ready": 1, "available": 1},
        conditions=[available(True, t.v2 + timedelta(seconds=9)),
                    progressing("{rs}", "done", ready + timedelta(seconds=1), t.v2)])
    pod = _pod(ns, rs_new, PodPlan(created=created, ip=_ip(ns), node=ns.node, ready_at=ready,
                                   runs=[Run(running(started), ready=True)]))
    pname = pod["metadata"]["name"]
    event(ctx, dep, "Deployment", "ScalingReplicaSet",
          f"Scaled up replica set {rs_new['metadata']['name']} from 0 to 1", first=up,
          component="deployment-controller")
    event(ctx, rs_new, "ReplicaSet", "SuccessfulCreate", f"Created pod: {pname}",
          first=created, component="replicaset-controller")
    start_events(ctx, pod, created + timedelta(milliseconds=30),
                 pulled={"redis": f"{pull}|137864301"})
    old_name = ctx.unique_name(rs_old["metadata"]["name"])
    down = ready + timedelta(milliseconds=180)
    event(ctx, dep, "Deployment", "ScalingReplicaSet",
          f"Scaled down replica set {rs_old['metadata']['name']} from 1 to 0", first=down,
          component="deployment-controller")
    event(ctx, rs_old, "ReplicaSet", "SuccessfulDelete", f"Deleted pod: {old_name}",
          first=down + timedelta(milliseconds=30), component="replicaset-controller")
    gone = {"metadata": {"name": old_name, "namespace": ns.name, "uid": ctx.uid(),
                         "resourceVersion": ctx.rv.at(down)}}
    event(ctx, gone, "Pod", "Killing", "Stopping container redis",
          first=down + timedelta(milliseconds=60), field_path=cpath("redis"))
    ns.redis_down = down + timedelta(milliseconds=700)
    _series_raw(ns, "Deployment", "todo-redis", old_name, "redis", t.v2 + timedelta(seconds=6),
                (0.0018, 0.0055), (7.6, 1.8), end=down)
    _series(ns, "Deployment", "todo-redis", pod, "redis", started, (0.0018, 0.0055), (7.2, 0.6))
    ctx.logs[(ns.name, pname)] = [("redis", L.join(L.redis_startup(started)))]
    ns.changed["todo-redis"] = ready


def _series_raw(ns: NS, kind: str, workload: str, pod: str, cname: str, start: datetime,
                cpu: tuple[float, float], mem: tuple[float, float], **kw: object) -> None:
    if ns.healthy:
        kw["variant"] = "healthy"
    ns.ctx.series.append(SeriesSpec(ns.name, kind, workload, pod, cname, start, cpu, mem,
                                    **kw))  # type: ignore[arg-type]


# chatbot: CrashLoopBackOff, cannot reach redis ---------------------------------------------
def _chatbot(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    image = f"{GHCR}/chatbot:0.9.2"
    c = container("chatbot", image, ports=[port(8001, "http")],
                  env_vars=[env("REDIS_URL", "redis://todo-redis:6379/0"),
                            env("OPENAI_API_KEY", secret=("todo-secrets", "OPENAI_API_KEY")),
                            env("CHAT_MODEL", "gpt-4o-mini")],
                  res=resources({"cpu": "100m", "memory": "128Mi"},
                                {"cpu": "500m", "memory": "512Mi"}),
                  liveness=http_probe("/healthz", "http", initial=15, period=20),
                  readiness=http_probe("/healthz", "http", initial=5))
    tmpl = template(pod_labels("chatbot", "chatbot"), pod_spec([c]))
    created = t.v2 + timedelta(seconds=1, milliseconds=310)
    first_start = created + timedelta(seconds=2, milliseconds=870)
    if ns.healthy:
        ready = first_start + timedelta(seconds=5, milliseconds=ctx.rng.randrange(0, 900))
        _, (rs,) = _deployment(
            ns, "chatbot", "chatbot", created=t.v2, replicas=1, updated=ready,
            revisions=[(t.v2 + timedelta(seconds=1, milliseconds=200), tmpl, 1)],
            counts={"replicas": 1, "updated": 1, "ready": 1, "available": 1},
            conditions=[available(True, ready),
                        progressing("{rs}", "done", t.v2 + timedelta(seconds=12), t.v2)],
            strategy={"type": "Recreate"})
        pod = _pod(ns, rs, PodPlan(created=created, ip=_ip(ns), node=ns.node, ready_at=ready,
                                   runs=[Run(running(first_start), ready=True)]))
        backends = [p["status"]["podIP"] for p in ns.pods
                    if p["metadata"]["labels"].get("app.kubernetes.io/name") == "backend"]
        body = L.chatbot_serving(ctx.rng, t.now - timedelta(minutes=45), t.now, backends)
        ctx.logs[(ns.name, pod["metadata"]["name"])] = [("chatbot", L.join(body))]
        _series(ns, "Deployment", "todo-chatbot", pod, "chatbot", first_start, (0.004, 0.028),
                (96, 12))
        ns.changed["todo-chatbot"] = ready
        return
    broke = ns.redis_down or t.v3 + timedelta(seconds=8)
    first_end = broke + timedelta(milliseconds=ctx.rng.randrange(20, 300))
    loop = crash_loop(ctx, first_start, first_end, lambda: ctx.rng.uniform(1.6, 2.4), t.now)
    dep, (rs,) = _deployment(
        ns, "chatbot", "chatbot", created=t.v2, replicas=1, updated=first_end,
        revisions=[(t.v2 + timedelta(seconds=1, milliseconds=200), tmpl, 1)],
        counts={"replicas": 1, "updated": 1, "unavailable": 1}, not_ready=(0,),
        conditions=[available(False, first_end + timedelta(milliseconds=40)),
                    progressing("{rs}", "done", t.v2 + timedelta(seconds=12), t.v2)],
        strategy={"type": "Recreate"})
    del dep
    s_last, f_last = loop.runs[-1]
    last = terminated(1, "Error", s_last, f_last, ctx.container_id())
    plan = PodPlan(created=created, ip=_ip(ns), node=ns.node, not_ready_since=first_end,
                   runs=[Run(waiting("CrashLoopBackOff", ""), restarts=loop.restarts,
                             last=last)])
    pod = _pod(ns, rs, plan)
    pname = pod["metadata"]["name"]
    cs = pod["status"]["containerStatuses"][0]
    cs["state"]["waiting"]["message"] = (f"back-off {go_duration(loop.backoff)} restarting "
                                         f"failed container=chatbot pod={pod_ref_text(pod)}")
    cs["containerID"] = last["terminated"]["containerID"]
    _fix_status_order(cs)
    restarts = loop.runs[1:]
    fp = cpath("chatbot")
    if restarts:
        r0, rl = restarts[0][0], restarts[-1][0]
        for reason, msg in (("Pulled", f'Container image "{image}" already present on machine'),
                            ("Created", "Created container: chatbot"),
                            ("Started", "Started container chatbot")):
            event(ctx, pod, "Pod", reason, msg, first=r0 - timedelta(milliseconds=400),
                  last=rl, count=len(restarts), field_path=fp)
    event(ctx, pod, "Pod", "BackOff", f"Back-off restarting failed container chatbot in pod "
          f"{pod_ref_text(pod)}", first=first_end + timedelta(seconds=1),
          last=t.now - timedelta(seconds=ctx.rng.randrange(2, 20)),
          count=max(1, int(loop.backoff_total / 12.7)), warning=True, field_path=fp)
    text = L.join(L.chatbot_crash(s_last, ns.svcs["todo-redis"]["spec"]["clusterIP"]))
    ctx.logs[(ns.name, pname)] = [("chatbot", text)]
    ctx.prev_logs[(ns.name, pname)] = [("chatbot", text)]
    _series(ns, "Deployment", "todo-chatbot", pod, "chatbot", first_start, (0.004, 0.028),
            (96, 12), end=first_end)
    ns.changed["todo-chatbot"] = first_end


def _fix_status_order(cs: Obj) -> None:
    order = ("name", "state", "lastState", "ready", "restartCount", "image", "imageID",
             "containerID", "started", "resources", "volumeMounts")
    items = {k: cs[k] for k in order if k in cs}
    cs.clear()
    cs.update(items)


# worker: OOMKilled ---------------------------------------------------------------------------
def _worker(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    image = f"{GHCR}/worker:2.8.1"
    c = container("worker", image,
                  command=["celery", "-A", "todo_worker", "worker", "--loglevel=INFO",
                           "--pool=solo"],
                  env_from=[{"configMapRef": {"name": "todo-config"}}],
                  env_vars=[env("BROKER_URL", "redis://todo-redis-headless:6379/0"),
                            env("DATABASE_URL", "postgresql://todo@todo-postgres:5432/todo"),
                            env("DATABASE_PASSWORD", secret=("todo-postgres",
                                                             "postgres-password"))],
                  res=resources({"cpu": "200m", "memory": "128Mi"},
                                {"cpu": "1", "memory": "256Mi"}))
    tmpl = template(pod_labels("worker", "worker"), pod_spec([c]))
    created = t.v1 + timedelta(seconds=1, milliseconds=120)
    if ns.healthy:
        start = created + timedelta(seconds=3, milliseconds=ctx.rng.randrange(0, 900))
        _, (rs,) = _deployment(
            ns, "worker", "worker", created=t.v1, replicas=1,
            updated=start + timedelta(seconds=1),
            revisions=[(t.v1 + timedelta(seconds=1), tmpl, 1)],
            counts={"replicas": 1, "updated": 1, "ready": 1, "available": 1},
            conditions=[available(True, start + timedelta(seconds=1)),
                        progressing("{rs}", "done", t.v1 + timedelta(seconds=14), t.v1)])
        pod = _pod(ns, rs, PodPlan(created=created, ip=_ip(ns), node=ns.node,
                                   ready_at=start + timedelta(seconds=1),
                                   runs=[Run(running(start), ready=True)]))
        pname = pod["metadata"]["name"]
        body = L.celery_steady(ctx.rng, t.now - timedelta(minutes=30), t.now, pname)
        ctx.logs[(ns.name, pname)] = [("worker", L.join(body))]
        _series(ns, "Deployment", "todo-worker", pod, "worker", start, (0.004, 0.02), (98, 12),
                limit_mib=256.0)
        ns.changed["todo-worker"] = start + timedelta(seconds=1)
        return
    # nightly digests that did not fit, then this morning's loop
    nightly = [(t.now - timedelta(days=d)).replace(hour=3, minute=2 + d % 5, second=17 + d)
               for d in (12, 9, 6, 3)]
    loop_start = t.now - timedelta(minutes=29, seconds=ctx.rng.randrange(0, 40))
    first_end = loop_start + timedelta(seconds=ctx.rng.uniform(41, 49))
    loop = crash_loop(ctx, loop_start, first_end, lambda: ctx.rng.uniform(43, 52), t.now)
    ooms = [*nightly, *(f for _, f in loop.runs)]
    restarts = len(ooms) - 1
    s_last, f_last = loop.runs[-1]
    _, (rs,) = _deployment(
        ns, "worker", "worker", created=t.v1, replicas=1, updated=first_end,
        revisions=[(t.v1 + timedelta(seconds=1), tmpl, 1)],
        counts={"replicas": 1, "updated": 1, "unavailable": 1}, not_ready=(0,),
        conditions=[available(False, first_end + timedelta(milliseconds=30)),
                    progressing("{rs}", "done", t.v1 + timedelta(seconds=14), t.v1)])
    last = terminated(137, "OOMKilled", s_last, f_last, ctx.container_id())
    pod = _pod(ns, rs, PodPlan(created=created, ip=_ip(ns), node=ns.node,
                               not_ready_since=first_end,
                               runs=[Run(waiting("CrashLoopBackOff", ""), restarts=restarts,
                                         last=last)]))
    cs = pod["status"]["containerStatuses"][0]
    cs["state"]["waiting"]["message"] = (f"back-off {go_duration(loop.backoff)} restarting "
                                         f"failed container=worker pod={pod_ref_text(pod)}")
    cs["containerID"] = last["terminated"]["containerID"]
    _fix_status_order(cs)
    fp = cpath("worker")
    loop_restarts = loop.runs[1:]
    if loop_restarts:
        for reason, msg in (("Pulled", f'Container image "{image}" already present on machine'),
                            ("Created", "Created container: worker"),
                            ("Started", "Started container worker")):
            event(ctx, pod, "Pod", reason, msg, first=loop_restarts[0][0] - timedelta(
                milliseconds=350), last=loop_restarts[-1][0], count=len(loop_restarts),
                field_path=fp)
    event(ctx, pod, "Pod", "BackOff", f"Back-off restarting failed container worker in pod "
          f"{pod_ref_text(pod)}", first=first_end + timedelta(seconds=1),
          last=t.now - timedelta(seconds=ctx.rng.randrange(2, 15)),
          count=max(1, int(loop.backoff_total / 13.1)), warning=True, field_path=fp)
    pname = pod["metadata"]["name"]
    task = ctx.uid()
    text = L.join(L.celery_oom_run(ctx.rng, s_last, f_last, pname, task))
    ctx.logs[(ns.name, pname)] = [("worker", text)]
    ctx.prev_logs[(ns.name, pname)] = [("worker", text)]
    _series(ns, "Deployment", "todo-worker", pod, "worker", created + timedelta(seconds=3),
            (0.004, 0.02), (98, 12), ooms=ooms, limit_mib=256.0, end=f_last)
    ns.changed["todo-worker"] = first_end


# notifier: running, not ready ----------------------------------------------------------------
def _notifier(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    image = f"{GHCR}/notifier:0.4.0"
    c = container("notifier", image, ports=[port(8080, "http")],
                  env_vars=[env("SMTP_HOST", "smtp-relay.mail.svc.example.net"),
                            env("SMTP_PORT", "587"),
                            env("SMTP_PASSWORD", "n0tifier-Relay!2026")],
                  res=resources({"cpu": "50m", "memory": "64Mi"}, {"memory": "128Mi"}),
                  liveness=http_probe("/livez", "http", initial=10, period=20),
                  readiness=http_probe("/healthz", "http", initial=5, period=10, timeout=3))
    tmpl = template(pod_labels("notifier", "notifier"), pod_spec([c]))
    created = t.v1 + timedelta(seconds=1, milliseconds=205)
    start = created + timedelta(seconds=2, milliseconds=512)
    if ns.healthy:
        ready = start + timedelta(seconds=6, milliseconds=ctx.rng.randrange(0, 900))
        _, (rs,) = _deployment(
            ns, "notifier", "notifier", created=t.v1, replicas=1, updated=ready,
            revisions=[(t.v1 + timedelta(seconds=1, milliseconds=100), tmpl, 1)],
            counts={"replicas": 1, "updated": 1, "ready": 1, "available": 1},
            conditions=[available(True, ready),
                        progressing("{rs}", "done", t.v1 + timedelta(seconds=12), t.v1)])
        pod = _pod(ns, rs, PodPlan(created=created, ip=_ip(ns), node=ns.node, ready_at=ready,
                                   runs=[Run(running(start), ready=True)]))
        body = L.notifier_steady(ctx.rng, t.now - timedelta(hours=1, minutes=12), t.now)
        ctx.logs[(ns.name, pod["metadata"]["name"])] = [("notifier", L.join(body))]
        _series(ns, "Deployment", "todo-notifier", pod, "notifier", start, (0.0009, 0.0028),
                (17.5, 1.5))
        ns.changed["todo-notifier"] = ready
        return
    broke = t.now - timedelta(minutes=56, seconds=47)
    unready = broke + timedelta(seconds=27)
    _, (rs,) = _deployment(
        ns, "notifier", "notifier", created=t.v1, replicas=1, updated=unready,
        revisions=[(t.v1 + timedelta(seconds=1, milliseconds=100), tmpl, 1)],
        counts={"replicas": 1, "updated": 1, "unavailable": 1}, not_ready=(0,),
        conditions=[available(False, unready + timedelta(milliseconds=60)),
                    progressing("{rs}", "done", t.v1 + timedelta(seconds=12), t.v1)])
    pod = _pod(ns, rs, PodPlan(created=created, ip=_ip(ns), node=ns.node,
                               not_ready_since=unready,
                               runs=[Run(running(start), ready=False)]))
    count = int((t.now - broke).total_seconds() // 10) - 2
    event(ctx, pod, "Pod", "Unhealthy",
          "Readiness probe failed: HTTP probe failed with statuscode: 503",
          first=broke + timedelta(seconds=7), last=t.now - timedelta(seconds=ctx.rng.randrange(
              1, 9)), count=count, warning=True, field_path=cpath("notifier"))
    relay = f"203.0.113.{ctx.rng.randrange(10, 250)}"
    body = L.notifier_log(ctx.rng, t.now - timedelta(hours=1, minutes=12), broke, t.now, relay)
    ctx.logs[(ns.name, pod["metadata"]["name"])] = [("notifier", L.join(body))]
    _series(ns, "Deployment", "todo-notifier", pod, "notifier", start, (0.0009, 0.0028),
            (17.5, 1.5))
    ns.changed["todo-notifier"] = unready


# embeddings: Pending, needs more memory than the node has ------------------------------------
def _embeddings(ns: NS) -> None:
    if ns.healthy:
        _embeddings_running(ns)
        return
    ctx, t = ns.ctx, ns.t
    c = container("embeddings", f"{GHCR}/embeddings:0.2.0", ports=[port(8002, "http")],
                  env_vars=[env("MODEL_NAME", "bge-large-en-v1.5"),
                            env("MAX_BATCH", "64")],
                  res=resources({"cpu": "500m", "memory": "12Gi"}, {"cpu": "2", "memory": "12Gi"}),
                  readiness=http_probe("/ready", "http", initial=20, period=10))
    tmpl = template(pod_labels("embeddings", "ml"), pod_spec([c]))
    up = t.v3 + timedelta(milliseconds=880)
    deadline = up + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 4000))
    dep, (rs,) = _deployment(
        ns, "embeddings", "ml", created=t.v3 + timedelta(milliseconds=860), replicas=1,
        updated=deadline, revisions=[(up, tmpl, 1)],
        counts={"replicas": 1, "updated": 1, "unavailable": 1}, not_ready=(0,),
        conditions=[available(False, up), progressing("{rs}", "timeout", deadline, deadline)])
    nodes = len(ctx.nodes)
    msg = (f"0/{nodes} nodes are available: {nodes} Insufficient memory. preemption: 0/{nodes} "
           f"nodes are available: {nodes} No preemption victims found for incoming pod.")
    created = up + timedelta(milliseconds=60)
    pod = _pod(ns, rs, PodPlan(created=created, node=None, runs=[], unschedulable=msg))
    event(ctx, dep, "Deployment", "ScalingReplicaSet",
          f"Scaled up replica set {rs['metadata']['name']} from 0 to 1", first=up,
          component="deployment-controller")
    event(ctx, rs, "ReplicaSet", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
          first=created, component="replicaset-controller")
    tries = int((t.now - created).total_seconds() // 300) + 4
    scheduler_event(ctx, pod, "FailedScheduling", msg, at=created + timedelta(milliseconds=30),
                    count=tries, last=t.now - timedelta(seconds=ctx.rng.randrange(20, 280)))
    ctx.logs[(ns.name, pod["metadata"]["name"])] = [("embeddings", "")]



def _embeddings_running(ns: NS) -> None:
    """The embeddings Deployment sized to fit the node: scheduled, pulled, ready."""
    ctx, t = ns.ctx, ns.t
    image = f"{GHCR}/embeddings:0.2.0"
    c = container("embeddings", image, ports=[port(8002, "http")],
                  env_vars=[env("MODEL_NAME", "bge-large-en-v1.5"),
                            env("MAX_BATCH", "64")],
                  res=resources({"cpu": "500m", "memory": "1536Mi"},
                                {"cpu": "2", "memory": "2Gi"}),
                  readiness=http_probe("/ready", "http", initial=20, period=10))
    tmpl = template(pod_labels("embeddings", "ml"), pod_spec([c]))
    up = t.v3 + timedelta(milliseconds=880)
    created = up + timedelta(milliseconds=60)
    pull = f"{ctx.rng.uniform(20.0, 48.0):.3f}"
    size = ctx.rng.randrange(1_400_000_000, 2_100_000_000)
    started = created + timedelta(seconds=float(pull) + 1.6)
    ready = started + timedelta(seconds=21, milliseconds=ctx.rng.randrange(0, 900))
    dep, (rs,) = _deployment(
        ns, "embeddings", "ml", created=t.v3 + timedelta(milliseconds=860), replicas=1,
        updated=ready, revisions=[(up, tmpl, 1)],
        counts={"replicas": 1, "updated": 1, "ready": 1, "available": 1},
        conditions=[available(True, ready), progressing("{rs}", "done", ready, up)])
    pod = _pod(ns, rs, PodPlan(created=created, ip=_ip(ns), node=ns.node, ready_at=ready,
                               runs=[Run(running(started), ready=True)]))
    name = pod["metadata"]["name"]
    event(ctx, dep, "Deployment", "ScalingReplicaSet",
          f"Scaled up replica set {rs['metadata']['name']} from 0 to 1", first=up,
          component="deployment-controller")
    event(ctx, rs, "ReplicaSet", "SuccessfulCreate", f"Created pod: {name}",
          first=created, component="replicaset-controller")
    start_events(ctx, pod, created + timedelta(milliseconds=30),
                 pulled={"embeddings": f"{pull}|{size}"})
    clients = [p["status"]["podIP"] for p in ns.pods
               if p["metadata"]["labels"].get("app.kubernetes.io/name") in ("worker", "backend")]
    body = L.embeddings_serving(ctx.rng, started, t.now, clients)
    ctx.logs[(ns.name, name)] = [("embeddings", L.join(body))]
    _series(ns, "Deployment", "todo-embeddings", pod, "embeddings", started, (0.01, 0.4),
            (1180, 90))
    ns.changed["todo-embeddings"] = ready

# postgres: StatefulSet with a hostpath PVC, over-provisioned --------------------------------
def _postgres(ns: NS) -> str:
    """The StatefulSet, its PVC/PV and pod; returns the pod name (logs come later)."""
    ctx, t = ns.ctx, ns.t
    name = "todo-postgres"
    c = container("postgres", "postgres:16.4", ports=[port(5432, "postgres")],
                  env_vars=[env("POSTGRES_DB", "todo"), env("POSTGRES_USER", "todo"),
                            env("POSTGRES_PASSWORD", secret=("todo-postgres",
                                                             "postgres-password")),
                            env("PGDATA", "/var/lib/postgresql/data/pgdata")],
                  res=resources({"cpu": "2", "memory": "4Gi"}, {"cpu": "2", "memory": "4Gi"}),
                  mounts=[mount("data", "/var/lib/postgresql/data")],
                  liveness=exec_probe(["pg_isready", "-U", "todo", "-d", "todo"], initial=30),
                  readiness=exec_probe(["pg_isready", "-U", "todo", "-d", "todo"], initial=5,
                                       period=5))
    labels = pod_labels("postgres", "database")
    tmpl = template(labels, pod_spec([c], security={"fsGroup": 999}))
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "creationTimestamp": None},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "8Gi"}},
                      "volumeMode": "Filesystem"},
             "status": {"phase": "Pending"}}
    rev = f"{name}-{safe_encode(str(ctx.rng.randrange(1_000_000_000, 2**32)))}"
    sts = statefulset(ctx, ns.name, name, created=t.v1 + timedelta(milliseconds=290),
                      labels=ns.labels("postgres", "database"), annotations=ns.ann(),
                      selector=selector("postgres"), tmpl=tmpl, service=f"{name}-headless",
                      claim=claim, revision_hash=rev, ready=1)
    created = t.v1 + timedelta(milliseconds=420)
    pvc_name = f"data-{name}-0"
    pvc_uid = ctx.uid()
    pv_name = f"pvc-{pvc_uid}"
    pvc = {
        "metadata": meta(ctx, pvc_name, ns.name, created, uid=pvc_uid,
                         updated=created + timedelta(seconds=1),
                         labels=selector("postgres"),
                         annotations={"pv.kubernetes.io/bind-completed": "yes",
                                      "pv.kubernetes.io/bound-by-controller": "yes",
                                      "volume.beta.kubernetes.io/storage-provisioner":
                                          "k8s.io/minikube-hostpath",
                                      "volume.kubernetes.io/storage-provisioner":
                                          "k8s.io/minikube-hostpath"},
                         finalizers=["kubernetes.io/pvc-protection"]),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}},
                 "volumeName": pv_name, "storageClassName": "standard",
                 "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                   "capacity": {"storage": "8Gi"}},
    }
    ctx.add(ns.name, "persistentvolumeclaims", pvc)
    ctx.add("", "persistentvolumes", {
        "metadata": meta(ctx, pv_name, None, created + timedelta(milliseconds=700),
                         updated=created + timedelta(milliseconds=900),
                         annotations={"hostPathProvisionerIdentity": ctx.uid(),
                                      "pv.kubernetes.io/provisioned-by":
                                          "k8s.io/minikube-hostpath"},
                         finalizers=["kubernetes.io/pv-protection"]),
        "spec": {"capacity": {"storage": "8Gi"},
                 "hostPath": {"path": f"/tmp/hostpath-provisioner/{ns.name}/{pvc_name}",
                              "type": ""},
                 "accessModes": ["ReadWriteOnce"],
                 "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns.name,
                              "name": pvc_name, "uid": pvc_uid, "apiVersion": "v1",
                              "resourceVersion": pvc["metadata"]["resourceVersion"]},
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                 "volumeMode": "Filesystem"},
        "status": {"phase": "Bound",
                   "lastPhaseTransitionTime": ts(created + timedelta(milliseconds=900))},
    })
    spec = pod_from_template(ctx, tmpl["spec"], node=ns.node)
    spec["volumes"].insert(0, {"name": "data", "persistentVolumeClaim": {"claimName": pvc_name}})
    spec["hostname"] = f"{name}-0"
    spec["subdomain"] = f"{name}-headless"
    spec = {k: spec[k] for k in _spec_keys(spec)}
    start = created + timedelta(seconds=4, milliseconds=280)
    pod = make_pod(ctx, ns.name, f"{name}-0", spec,
                   PodPlan(created=created, ip=_ip(ns), node=ns.node,
                           ready_at=start + timedelta(seconds=6),
                           runs=[Run(running(start), ready=True)]),
                   labels={**labels, "apps.kubernetes.io/pod-index": "0",
                           "controller-revision-hash": rev,
                           "statefulset.kubernetes.io/pod-name": f"{name}-0"},
                   owner=owner_ref(sts, kind="StatefulSet", api_version="apps/v1"),
                   generate_name=f"{name}-")
    ns.pods.append(pod)
    ns.changed[name] = start + timedelta(seconds=6)
    _series(ns, "StatefulSet", name, pod, "postgres", start, (0.011, 0.065), (212, 46),
            spikes=3)
    return pod["metadata"]["name"]


def _spec_keys(spec: Obj) -> list[str]:
    from ._pods import _SPEC_ORDER
    return [k for k in _SPEC_ORDER if k in spec]


# db-backup: CronJob whose last Job failed ------------------------------------------------------
def _backup(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    name = "todo-db-backup"
    script = ('set -e; f=/backup/todo-$(date -u +%Y-%m-%dT%H%M).sql.gz; '
              'echo "$(date -u +%FT%TZ) starting backup of database \\"todo\\" on '
              'todo-postgres:5432"; pg_dump -h todo-postgres -U backup todo | gzip > "$f"; '
              'echo "$(date -u +%FT%TZ) wrote $f ($(du -h "$f" | cut -f1))"')
    c = container("backup", "postgres:16.4", command=["/bin/sh", "-c", script],
                  env_vars=[env("PGPASSWORD", secret=("todo-db-backup", "password"))],
                  res=resources({"cpu": "100m", "memory": "128Mi"}, {"memory": "256Mi"}),
                  mounts=[mount("backup", "/backup")])
    labels = pod_labels("db-backup", "backup")
    spec = pod_spec([c], volumes=[{"name": "backup", "emptyDir": {}}], restart="Never")
    job_tmpl = {"metadata": {"creationTimestamp": None},
                "spec": {"backoffLimit": 2, "template": template(labels, spec)}}
    today = t.now.replace(hour=2, minute=0, second=0, microsecond=0)
    if today > t.now:
        today -= timedelta(days=1)
    # the failed run is kept (failedJobsHistoryLimit 1) besides the 3 successful ones
    days = [today - timedelta(days=d) for d in ((2, 1, 0) if ns.healthy else (3, 2, 1, 0))]
    cj = {
        "metadata": meta(ctx, name, ns.name, t.v1 + timedelta(milliseconds=300),
                         updated=today + timedelta(seconds=56), generation=1,
                         labels=ns.labels("db-backup", "backup"), annotations=ns.ann()),
        "spec": {"schedule": "0 2 * * *", "concurrencyPolicy": "Forbid", "suspend": False,
                 "jobTemplate": job_tmpl, "successfulJobsHistoryLimit": 3,
                 "failedJobsHistoryLimit": 1},
        "status": {"lastScheduleTime": ts(today), "lastSuccessfulTime": ""},
    }
    ctx.add(ns.name, "cronjobs", cj)
    pg_ip = ns.svcs["todo-postgres"]["spec"]["clusterIP"]
    for day in days:
        failed = day == today and not ns.healthy
        jname = f"{name}-{int(day.timestamp()) // 60}"
        done = _job(ns, cj, jname, day, spec, labels, failed, pg_ip)
        if not failed:
            cj["status"]["lastSuccessfulTime"] = ts(done)


def _job(ns: NS, cj: Obj, jname: str, day: datetime, spec: Obj, labels: dict[str, str],
         failed: bool, pg_ip: str) -> datetime:
    ctx, t = ns.ctx, ns.t
    uid = ctx.uid()
    jlabels = {**labels, "batch.kubernetes.io/controller-uid": uid,
               "batch.kubernetes.io/job-name": jname, "controller-uid": uid, "job-name": jname}
    created = day + timedelta(milliseconds=ctx.rng.randrange(5, 60))
    pods_at = [created + timedelta(milliseconds=40)]
    if failed:
        pods_at += [pods_at[0] + timedelta(seconds=15.6), pods_at[0] + timedelta(seconds=46.2)]
    ends = []
    job_md_labels = dict(labels)
    job = {
        "metadata": meta(ctx, jname, ns.name, created, uid=uid,
                         updated=created + timedelta(seconds=55 if failed else 9),
                         generation=1, labels={**job_md_labels,
                                               "batch.kubernetes.io/controller-uid": uid,
                                               "batch.kubernetes.io/job-name": jname,
                                               "controller-uid": uid, "job-name": jname},
                         annotations={"batch.kubernetes.io/cronjob-scheduled-timestamp": ts(day)},
                         owners=[owner_ref(cj, kind="CronJob", api_version="batch/v1")]),
        "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 2,
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
                 "template": template(jlabels, spec), "completionMode": "NonIndexed",
                 "suspend": False, "podReplacementPolicy": "TerminatingOrFailed"},
        "status": {},
    }
    ctx.add(ns.name, "jobs", job)
    for pc in pods_at:
        start = pc + timedelta(seconds=1, milliseconds=ctx.rng.randrange(300, 900))
        if failed:
            end = start + timedelta(milliseconds=ctx.rng.randrange(180, 420))
            ns.pg_failures.append(start + timedelta(milliseconds=90))
            run = Run(terminated(1, "Error", start, end, ""))
            lines = [f"{ts(start)} starting backup of database \"todo\" on todo-postgres:5432",
                     f'pg_dump: error: connection to server at "todo-postgres" ({pg_ip}), port '
                     '5432 failed: FATAL:  password authentication failed for user "backup"']
        else:
            end = start + timedelta(seconds=ctx.rng.uniform(4, 7))
            run = Run(terminated(0, "Completed", start, end, ""))
            lines = [f"{ts(start)} starting backup of database \"todo\" on todo-postgres:5432",
                     f"{ts(end)} wrote /backup/todo-{day:%Y-%m-%dT%H%M}.sql.gz "
                     f"({ctx.rng.uniform(3.8, 4.4):.1f}M)"]
        ends.append(end)
        pod = make_pod(ctx, ns.name, ctx.unique_name(jname),
                       pod_from_template(ctx, spec, node=ns.node),
                       PodPlan(created=pc, ip=_ip(ns), node=ns.node,
                               phase="Failed" if failed else "Succeeded",
                               finished=end, runs=[run]),
                       labels=jlabels, owner=owner_ref(job, kind="Job", api_version="batch/v1"),
                       generate_name=f"{jname}-")
        ns.pods.append(pod)
        ctx.logs[(ns.name, pod["metadata"]["name"])] = [("backup", L.join(lines))]
        if t.now - pc < timedelta(hours=24):
            event(ctx, job, "Job", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                  first=pc, component="job-controller")
            start_events(ctx, pod, pc + timedelta(milliseconds=25))
    done = ends[-1] + timedelta(seconds=1, milliseconds=200)
    if failed:
        msg = "Job has reached the specified backoff limit"
        job["status"] = {"conditions": [
            job_condition("FailureTarget", done, "BackoffLimitExceeded", msg),
            job_condition("Failed", done, "BackoffLimitExceeded", msg)],
            "startTime": ts(created), "failed": len(pods_at), "terminating": 0,
            "uncountedTerminatedPods": {}, "ready": 0}
    else:
        job["status"] = {"conditions": [
            job_condition("SuccessCriteriaMet", done, "CompletionsReached",
                          "Reached expected number of completions"),
            job_condition("Complete", done, "CompletionsReached",
                          "Reached expected number of completions")],
            "startTime": ts(created), "completionTime": ts(done), "succeeded": 1,
            "terminating": 0, "uncountedTerminatedPods": {}, "ready": 0}
    if t.now - created < timedelta(hours=24):
        event(ctx, cj, "CronJob", "SuccessfulCreate", f"Created job {jname}", first=created,
              component="cronjob-controller")
        if failed:
            event(ctx, job, "Job", "BackoffLimitExceeded", msg, first=done, warning=True,
                  component="job-controller")
        event(ctx, cj, "CronJob", "SawCompletedJob", f"Saw completed job: {jname}, condition: "
              f"{'Failed' if failed else 'Complete'}", first=done + timedelta(seconds=1),
              component="cronjob-controller")
    return done


# services, endpoints, ingress ------------------------------------------------------------------
def _network(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    for name, sel, ports_, created in (
        ("todo-frontend", selector("frontend"), [svc_port("http", 80, "http")], t.v1),
        ("todo-backend", selector("backend"), [svc_port("http", 8000, "http")], t.v1),
        ("todo-chatbot", selector("chatbot"), [svc_port("http", 8001, "http")], t.v2),
        ("todo-redis", {"app": "todo-redis"}, [svc_port("redis", 6379, "redis")], t.v2),
        ("todo-notifier", selector("notifier"), [svc_port("http", 8080, "http")], t.v1),
        ("todo-embeddings", selector("embeddings"), [svc_port("http", 8002, "http")], t.v3),
    ):
        if name not in ns.svcs:
            app = name.removeprefix("todo-")
            ns.svcs[name] = service(ctx, ns.name, name, created=created + timedelta(
                milliseconds=250), labels=ns.labels(app, COMPONENT[app]),
                annotations=ns.ann(), selector=sel, ports=ports_)
    redis_h = service(ctx, ns.name, "todo-redis-headless", created=t.v2 + timedelta(
        milliseconds=250), labels=ns.labels("redis", "cache"), annotations=ns.ann(),
        selector=selector("redis"), ports=[svc_port("redis", 6379, "redis")], headless=True)
    ns.svcs["todo-redis-headless"] = redis_h
    for name, svc in sorted(ns.svcs.items()):
        base = name.replace("-headless", "")
        changed = ns.changed.get(base, svc_created(svc))
        if name == "todo-redis":
            changed = t.v3 + timedelta(milliseconds=410)
        endpoints_for(ctx, svc, ns.pods, changed=changed)
    ctx.add(ns.name, "ingresses", {
        "metadata": meta(ctx, "todo", ns.name, t.v1 + timedelta(milliseconds=330),
                         updated=t.v3, generation=1, labels=ns.labels("todo-chatbot", "network"),
                         annotations=ns.ann()),
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "todo.local", "http": {
            "paths": [
                {"path": "/api", "pathType": "Prefix", "backend": {"service": {
                    "name": "todo-backend", "port": {"number": 8000}}}},
                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": "todo-frontend", "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {}},
    })


def svc_created(svc: Obj) -> datetime:
    return datetime.fromisoformat(svc["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def early_services(ns: NS) -> None:
    """Services whose ClusterIP a log line or an env value needs before `_network`."""
    ctx, t = ns.ctx, ns.t
    redis_sel = selector("redis") if ns.healthy else {"app": "todo-redis"}
    for name, sel, ports_, created in (
        ("todo-postgres", selector("postgres"), [svc_port("postgres", 5432, "postgres")], t.v1),
        ("todo-redis", redis_sel, [svc_port("redis", 6379, "redis")], t.v2),
    ):
        app = name.removeprefix("todo-")
        ns.svcs[name] = service(ctx, ns.name, name, created=created + timedelta(
            milliseconds=250), labels=ns.labels(app, COMPONENT[app]),
            annotations=ns.ann(), selector=sel, ports=ports_)
    ns.svcs["todo-postgres-headless"] = service(
        ctx, ns.name, "todo-postgres-headless", created=t.v1 + timedelta(milliseconds=250),
        labels=ns.labels("postgres", "database"), annotations=ns.ann(),
        selector=selector("postgres"), ports=[svc_port("postgres", 5432, "postgres")],
        headless=True)


# quota ------------------------------------------------------------------------------------
def _quota(ns: NS) -> None:
    ctx, t = ns.ctx, ns.t
    used = {"limits.memory": 0.0, "pods": 0.0, "requests.cpu": 0.0, "requests.memory": 0.0}
    for p in ns.pods:
        if p["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        used["pods"] += 1
        for c in p["spec"]["containers"]:
            r = c["resources"]
            used["requests.cpu"] += parse_quantity(r.get("requests", {}).get("cpu", "0"))
            used["requests.memory"] += parse_quantity(r.get("requests", {}).get("memory", "0"))
            used["limits.memory"] += parse_quantity(r.get("limits", {}).get("memory", "0"))
    hard = {"limits.memory": "32Gi", "pods": "40", "requests.cpu": "8",
            "requests.memory": "24Gi"}
    ctx.add(ns.name, "resourcequotas", {
        "metadata": meta(ctx, "todo-quota", ns.name, t.v1 + timedelta(milliseconds=200),
                         updated=t.now - timedelta(hours=5, minutes=48),
                         labels=ns.labels("todo-chatbot", "policy"), annotations=ns.ann()),
        "spec": {"hard": hard},
        "status": {"hard": hard, "used": sorted_map({
            "limits.memory": mem_text(used["limits.memory"]), "pods": str(int(used["pods"])),
            "requests.cpu": cpu_text(used["requests.cpu"]),
            "requests.memory": mem_text(used["requests.memory"])})},
    })
