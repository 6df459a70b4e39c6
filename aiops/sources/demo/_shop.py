"""The `shop` namespace: Helm release `shop` of chart shop-0.5.0, and its faults.

A second, small release installed three days ago and upgraded this morning,
built only for the base cluster (not for the scaled benchmark copies). Each
workload carries one fault, with the status fields and event wording the
kubelet, scheduler and controllers really write:

* storefront (2 replicas): runs, but resolves `shop-search`, a Service that was
  never created (dns-failure); its HPA cannot compute cpu utilization because
  the container has no cpu request (hpa-metrics-unavailable); an older pod was
  evicted when the node ran low on ephemeral-storage (evicted).
* payments: its ConfigMap `shop-payments-config` does not exist (missing-configmap).
* inventory: runs under ServiceAccount `inventory`, which may not list pods
  (rbac-forbidden).
* search-indexer: the image has no `search-indexer` binary (bad-command, exit 127).
* cart: its /healthz answers 500, the kubelet restarts it (liveness-probe-failed).
* checkout: the `migrate` init container exits 1 (init-container-failed).
* reports: its claim names StorageClass `fast-ssd`, which does not exist
  (pvc-pending, unschedulable-pvc).
* fraud-check: its image is in a private registry without pull credentials
  (image-pull-auth).
* ads: its pods would exceed the namespace quota (quota-exceeded).
* Ingress `shop` routes /api/search to the missing Service (ingress-backend-missing).

The module draws from its own `random.Random`, so the objects built before and
after it (the todo namespace, metrics) do not change.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from ._common import Ctx, Obj, meta, owner_ref, sorted_map, ts
from ._controllers import (
    available,
    dep_condition,
    deployment,
    endpoints_for,
    progressing,
    replicaset,
    rule,
    secret,
    service,
    service_account,
    subject,
    svc_port,
)
from ._events import cpath, event, pod_ref_text, scheduler_event, start_events
from ._pods import (
    PodPlan,
    Run,
    condition,
    container,
    container_status,
    env,
    http_probe,
    make_pod,
    pod_from_template,
    pod_spec,
    port,
    resources,
    running,
    template,
    terminated,
    waiting,
)
from ._system import namespace, root_ca

NS_NAME = "shop"
RELEASE = "shop"
CHART = "shop-0.5.0"
VERSION = "2.3.0"
REG = "ghcr.io/acme-shop"
PRIVATE = "registry.acme-shop.example.com"
INSTALL_AGE = timedelta(days=3, hours=4, minutes=12)
UPGRADE_AGE = timedelta(hours=2, minutes=47)


def _labels(name: str, component: str) -> dict[str, str]:
    return sorted_map({
        "app.kubernetes.io/component": component, "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/version": VERSION,
        "helm.sh/chart": CHART})


def _ann() -> dict[str, str]:
    return {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NS_NAME}


def _selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": name}


def _pod_labels(name: str, component: str) -> dict[str, str]:
    return {**_selector(name), "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "shop"}


class Shop:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.now = ctx.now
        self.v1 = ctx.now - INSTALL_AGE
        self.v2 = ctx.now - UPGRADE_AGE
        self.pods: list[Obj] = []
        self.node = ctx.nodes[0]

    # -- helpers ---------------------------------------------------------------------
    def deploy(self, app: str, component: str, tmpl: Obj, *, replicas: int, rs_replicas: int,
               ready: int, created: datetime, conditions: list[Obj],
               counts: dict[str, int]) -> tuple[Obj, Obj]:
        ctx = self.ctx
        name = f"shop-{app}"
        h = ctx.template_hash()
        for c in conditions:
            c["message"] = c["message"].replace("{rs}", f"{name}-{h}")
        dep = deployment(ctx, NS_NAME, name, created=created, updated=created + timedelta(
            seconds=30), labels=_labels(app, component), annotations=_ann(),
            selector=_selector(app), tmpl=tmpl, replicas=replicas, generation=1, revision=1,
            counts=counts, conditions=conditions)
        rs = replicaset(ctx, NS_NAME, dep, pod_hash=h, created=created + timedelta(
            milliseconds=40), updated=created + timedelta(seconds=30), revision=1,
            replicas=rs_replicas, ready=ready, available_=ready)
        event(ctx, dep, "Deployment", "ScalingReplicaSet",
              f"Scaled up replica set {rs['metadata']['name']} from 0 to {replicas}",
              first=created + timedelta(milliseconds=40), component="deployment-controller")
        return dep, rs

    def pod(self, rs: Obj, plan: PodPlan, *, spec: Obj | None = None) -> Obj:
        ctx = self.ctx
        prefix = rs["metadata"]["name"]
        tmpl = rs["spec"]["template"]
        pod = make_pod(ctx, NS_NAME, ctx.unique_name(prefix),
                       spec or pod_from_template(ctx, tmpl["spec"], node=plan.node),
                       plan, labels=tmpl["metadata"]["labels"],
                       owner=owner_ref(rs, kind="ReplicaSet", api_version="apps/v1"),
                       generate_name=f"{prefix}-")
        self.pods.append(pod)
        event(ctx, rs, "ReplicaSet", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
              first=plan.created, component="replicaset-controller")
        if plan.node:
            scheduler_event(ctx, pod, "Scheduled", f"Successfully assigned {NS_NAME}/"
                            f"{pod['metadata']['name']} to {plan.node}",
                            at=plan.created + timedelta(milliseconds=35))
        return pod

    def log(self, pod: Obj, entries: list[tuple[str, str]],
            previous: list[tuple[str, str]] | None = None) -> None:
        key = (NS_NAME, pod["metadata"]["name"])
        self.ctx.logs[key] = entries
        if previous is not None:
            self.ctx.prev_logs[key] = previous

    def ip(self) -> str:
        return self.ctx.pod_ip(0)


def _res(cpu: str | None, mem: str, limit_mem: str) -> Obj:
    req = {"memory": mem} if cpu is None else {"cpu": cpu, "memory": mem}
    return resources(req, {"memory": limit_mem})


def _line(t: datetime, level: str, msg: str) -> str:
    return f"{t.strftime('%Y-%m-%dT%H:%M:%S.')}{t.microsecond // 1000:03d}Z {level} {msg}\n"


# -- the release --------------------------------------------------------------------------------
def build_shop(ctx: Ctx) -> dict[str, int]:
    """Build the shop namespace with its own randomness; returns a few counts."""
    saved = ctx.rng
    ctx.rng = random.Random(f"shop-{ctx.seed}")
    try:
        s = Shop(ctx)
        _namespace_objects(s)
        search_host = f"shop-search.{NS_NAME}.svc.cluster.local"
        _storefront(s, search_host)
        _payments(s)
        _inventory(s)
        _search_indexer(s)
        _cart(s)
        _checkout(s)
        _reports(s)
        _fraud_check(s)
        _ads(s)
        _network(s)
        _quota(s)
        _images(s)
        _event_ttl(s)
        return {"pods": len(s.pods)}
    finally:
        ctx.rng = saved


def _namespace_objects(s: Shop) -> None:
    ctx, n, t = s.ctx, NS_NAME, s.v1
    namespace(ctx, n, t - timedelta(seconds=3))
    root_ca(ctx, n, t - timedelta(seconds=2, milliseconds=600), ctx.pem)
    service_account(ctx, n, "default", created=t - timedelta(seconds=2, milliseconds=620))
    service_account(ctx, n, "inventory", created=t + timedelta(seconds=1),
                    labels=_labels("inventory", "stock"), annotations=_ann())
    secret(ctx, n, "shop-payments", ["STRIPE_API_KEY", "WEBHOOK_SECRET"],
           created=t + timedelta(seconds=1), labels=_labels("payments", "payments"),
           annotations=_ann())
    for v, at, status in ((1, s.v1, "superseded"), (2, s.v2, "deployed")):
        secret(ctx, n, f"sh.helm.release.v1.shop.v{v}", ["release"],
               created=at - timedelta(seconds=2), kind="helm.sh/release.v1",
               labels={"modifiedAt": str(int(s.v2.timestamp())), "name": RELEASE,
                       "owner": "helm", "status": status, "version": str(v)})
    # the chart's Role lets inventory read its config, not list pods
    ctx.add(n, "roles", {
        "metadata": meta(ctx, "shop-inventory", n, t + timedelta(seconds=1),
                         labels=_labels("inventory", "stock"), annotations=_ann()),
        "rules": [rule([""], ["configmaps"], ["get", "list", "watch"])]})
    ctx.add(n, "rolebindings", {
        "metadata": meta(ctx, "shop-inventory", n, t + timedelta(seconds=1),
                         labels=_labels("inventory", "stock"), annotations=_ann()),
        "subjects": [subject("ServiceAccount", "inventory", n)],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "shop-inventory"}})


def _running_pod(s: Shop, rs: Obj, created: datetime, restarts: int = 0,
                 last: Obj | None = None, started: datetime | None = None) -> Obj:
    start = started or created + timedelta(seconds=3, milliseconds=s.ctx.rng.randrange(900))
    pod = s.pod(rs, PodPlan(created=created, ip=s.ip(), node=s.node,
                            ready_at=start + timedelta(seconds=5),
                            runs=[Run(running(start), ready=True, restarts=restarts,
                                      last=last or {})]))
    start_events(s.ctx, pod, created + timedelta(seconds=1), scheduled=False)
    return pod


# storefront: resolves a Service that does not exist; HPA without cpu requests; one eviction
def _storefront(s: Shop, search_host: str) -> None:
    ctx = s.ctx
    c = container("storefront", f"{REG}/storefront:{VERSION}", ports=[port(3000, "http")],
                  env_vars=[env("SEARCH_URL", f"http://{search_host}:8080"),
                            env("NODE_ENV", "production")],
                  res=_res(None, "64Mi", "512Mi"),
                  readiness=http_probe("/ready", "http", initial=5, period=10))
    tmpl = template(_pod_labels("storefront", "web"), pod_spec([c]))
    created = s.v1
    _, rs = s.deploy("storefront", "web", tmpl, replicas=2, rs_replicas=2, ready=2,
                     created=created, counts={"replicas": 2, "updated": 2, "ready": 2,
                                              "available": 2},
                     conditions=[available(True, created + timedelta(seconds=12)),
                                 progressing("{rs}", "done", created + timedelta(seconds=12),
                                             created)])
    # the evicted pod: ran since the install, evicted 5h ago, replaced then
    ev_at = s.now - timedelta(hours=5, minutes=12, seconds=ctx.rng.randrange(60))
    old_created = created + timedelta(milliseconds=90)
    old_start = old_created + timedelta(seconds=4)
    msg = ("The node was low on resource: ephemeral-storage. Threshold quantity: 5291389440, "
           "available: 5120304Ki. Container storefront was using 6204876Ki, request is 0, "
           "has larger consumption of ephemeral-storage. ")
    spec = pod_from_template(ctx, rs["spec"]["template"]["spec"], node=s.node)
    run = Run(terminated(137, "Error", old_start, ev_at, ""), restarts=0)
    plan = PodPlan(created=old_created, ip=s.ip(), node=s.node, phase="Failed", finished=ev_at,
                   runs=[run])
    evicted = s.pod(rs, plan, spec=spec)
    start_events(ctx, evicted, old_created + timedelta(seconds=1), scheduled=False)
    st = evicted["status"]
    st["message"] = msg
    st["reason"] = "Evicted"
    st["conditions"].insert(0, condition("DisruptionTarget", True, ev_at, "TerminationByKubelet",
                                         msg.strip()))
    # kubectl status order: phase, conditions, message, reason
    order = ["phase", "conditions", "message", "reason", "hostIP", "hostIPs", "podIP",
             "podIPs", "startTime",
             "containerStatuses", "qosClass"]
    evicted["status"] = {k: st[k] for k in order if k in st}
    event(ctx, evicted, "Pod", "Evicted", msg.strip(), first=ev_at, warning=True)
    event(ctx, evicted, "Pod", "Killing", "Stopping container storefront", first=ev_at,
          field_path=cpath("storefront"))
    s.log(evicted, [("storefront", "")])
    hosts = []
    for i in range(2):
        pc = (created + timedelta(milliseconds=95)) if i == 0 else ev_at + timedelta(
            milliseconds=60)
        pod = _running_pod(s, rs, pc)
        hosts.append(pod)
        start = pc + timedelta(seconds=4)
        lines = [_line(start, "info", "storefront listening on :3000")]
        t = s.now - timedelta(minutes=40)
        while t < s.now:
            lines.append(_line(t, "info", "GET /products 200 42ms"))
            lines.append(_line(t + timedelta(milliseconds=43), "error",
                               f"search request failed: Error: getaddrinfo ENOTFOUND "
                               f"{search_host}"))
            t += timedelta(seconds=ctx.rng.randrange(60, 240))
        s.log(pod, [("storefront", "".join(lines))])
    # HPA: the container has no cpu request, so utilization cannot be computed
    p0 = hosts[0]["metadata"]["name"]
    why = (f"failed to get cpu utilization: missing request for cpu in container storefront "
           f"of Pod {p0}")
    hpa_created = created + timedelta(seconds=1)
    hpa = {
        "metadata": meta(ctx, "shop-storefront", NS_NAME, hpa_created,
                         updated=s.now - timedelta(seconds=ctx.rng.randrange(5, 14)),
                         labels=_labels("storefront", "web"), annotations=_ann()),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "shop-storefront",
                                    "apiVersion": "apps/v1"},
                 "minReplicas": 2, "maxReplicas": 6,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 70}}}]},
        "status": {"currentReplicas": 2, "desiredReplicas": 2, "conditions": [
            {"type": "AbleToScale", "status": "True",
             "lastTransitionTime": ts(hpa_created + timedelta(seconds=15)),
             "reason": "SucceededGetScale",
             "message": "the HPA controller was able to get the target's current scale"},
            {"type": "ScalingActive", "status": "False",
             "lastTransitionTime": ts(hpa_created + timedelta(seconds=15)),
             "reason": "FailedGetResourceMetric",
             "message": f"the HPA was unable to compute the replica count: {why}"}]},
    }
    ctx.add(NS_NAME, "horizontalpodautoscalers", hpa)
    tries = int((s.now - hpa_created).total_seconds() // 15)
    last = s.now - timedelta(seconds=ctx.rng.randrange(2, 14))
    event(ctx, hpa, "HorizontalPodAutoscaler", "FailedGetResourceMetric", why,
          first=hpa_created + timedelta(seconds=15), last=last, count=tries, warning=True,
          component="horizontal-pod-autoscaler")
    event(ctx, hpa, "HorizontalPodAutoscaler", "FailedComputeMetricsReplicas",
          f"invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource "
          f"metric value: {why}", first=hpa_created + timedelta(seconds=15), last=last,
          count=tries, warning=True, component="horizontal-pod-autoscaler")


# payments: envFrom a ConfigMap that was never created -----------------------------------------
def _payments(s: Shop) -> None:
    ctx = s.ctx
    c = container("payments", f"{REG}/payments:{VERSION}", ports=[port(8080, "http")],
                  env_from=[{"configMapRef": {"name": "shop-payments-config"}},
                            {"secretRef": {"name": "shop-payments"}}],
                  res=_res("25m", "32Mi", "512Mi"),
                  readiness=http_probe("/healthz", "http", initial=5))
    tmpl = template(_pod_labels("payments", "payments"), pod_spec([c]))
    created = s.v2
    deadline = created + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 3000))
    _, rs = s.deploy("payments", "payments", tmpl, replicas=1, rs_replicas=1, ready=0,
                     created=created, counts={"replicas": 1, "updated": 1, "unavailable": 1},
                     conditions=[available(False, created),
                                 progressing("{rs}", "timeout", deadline, deadline)])
    pc = created + timedelta(milliseconds=70)
    msg = 'configmap "shop-payments-config" not found'
    run = Run(waiting("CreateContainerConfigError", msg), created=False)
    pod = s.pod(rs, PodPlan(created=pc, ip=s.ip(), node=s.node, phase="Pending", runs=[run]))
    fp = cpath("payments")
    first = pc + timedelta(seconds=2)
    n = int((s.now - first).total_seconds() // 12)
    last = s.now - timedelta(seconds=ctx.rng.randrange(3, 12))
    event(ctx, pod, "Pod", "Pulled", f'Container image "{c["image"]}" already present on '
          "machine", first=first, last=last, count=n, field_path=fp)
    event(ctx, pod, "Pod", "Failed", f"Error: {msg}", first=first, last=last, count=n,
          warning=True, field_path=fp)
    s.log(pod, [("payments", "")])


# inventory: its ServiceAccount may not list pods ---------------------------------------------
def _inventory(s: Shop) -> None:
    ctx = s.ctx
    c = container("inventory", f"{REG}/inventory:{VERSION}", ports=[port(8081, "http")],
                  res=_res("25m", "48Mi", "256Mi"))
    tmpl = template(_pod_labels("inventory", "stock"), pod_spec([c], service_account="inventory"))
    created = s.v1
    _, rs = s.deploy("inventory", "stock", tmpl, replicas=1, rs_replicas=1, ready=1,
                     created=created, counts={"replicas": 1, "updated": 1, "ready": 1,
                                              "available": 1},
                     conditions=[available(True, created + timedelta(seconds=9)),
                                 progressing("{rs}", "done", created + timedelta(seconds=9),
                                             created)])
    pod = _running_pod(s, rs, created + timedelta(milliseconds=80))
    denied = ('pods is forbidden: User "system:serviceaccount:shop:inventory" cannot list '
              'resource "pods" in API group "" in the namespace "shop"')
    lines = []
    t = s.now - timedelta(minutes=30)
    while t < s.now:
        lines.append(_line(t, "info", "stock sync: 1284 items reconciled"))
        lines.append(_line(t + timedelta(milliseconds=12), "error",
                           f"peer discovery failed: {denied}"))
        t += timedelta(seconds=ctx.rng.randrange(90, 300))
    s.log(pod, [("inventory", "".join(lines))])


# search-indexer: the command is not in the image ----------------------------------------------
def _search_indexer(s: Shop) -> None:
    ctx = s.ctx
    c = container("search-indexer", f"{REG}/search:{VERSION}", command=["search-indexer"],
                  args=["--watch", "--interval=60s"], res=_res("25m", "16Mi", "256Mi"))
    tmpl = template(_pod_labels("search-indexer", "search"), pod_spec([c]))
    created = s.v2
    deadline = created + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 3000))
    _, rs = s.deploy("search-indexer", "search", tmpl, replicas=1, rs_replicas=1, ready=0,
                     created=created, counts={"replicas": 1, "updated": 1, "unavailable": 1},
                     conditions=[available(False, created),
                                 progressing("{rs}", "timeout", deadline, deadline)])
    pc = created + timedelta(milliseconds=110)
    err = ("failed to create task for container: failed to create shim task: OCI runtime "
           "create failed: runc create failed: unable to start container process: exec: "
           '"search-indexer": executable file not found in $PATH: unknown')
    restarts = 34
    lf = s.now - timedelta(minutes=2, seconds=ctx.rng.randrange(10, 50))
    last = terminated(127, "ContainerCannotRun", lf, lf, "", message=err)
    run = Run(waiting("RunContainerError", f"failed to start container \"search-indexer\": "
                                           f"Error response from daemon: {err}"),
              restarts=restarts, last=last)
    pod = s.pod(rs, PodPlan(created=pc, ip=s.ip(), node=s.node, phase="Running", runs=[run]))
    fp = cpath("search-indexer")
    first = pc + timedelta(seconds=2)
    event(ctx, pod, "Pod", "Pulled", f'Container image "{c["image"]}" already present on '
          "machine", first=first, last=lf, count=restarts + 1, field_path=fp)
    event(ctx, pod, "Pod", "Created", "Created container: search-indexer", first=first,
          last=lf, count=restarts + 1, field_path=fp)
    event(ctx, pod, "Pod", "Failed", f"Error: failed to start container \"search-indexer\": "
          f"Error response from daemon: {err}", first=first, last=lf, count=restarts + 1,
          warning=True, field_path=fp)
    event(ctx, pod, "Pod", "BackOff", f"Back-off restarting failed container search-indexer in "
          f"pod {pod_ref_text(pod)}", first=first + timedelta(seconds=1),
          last=s.now - timedelta(seconds=ctx.rng.randrange(3, 20)), count=restarts * 3,
          warning=True, field_path=fp)
    s.log(pod, [("search-indexer", "")], [("search-indexer", "")])


# cart: /healthz answers 500, the liveness probe restarts it ------------------------------------
def _cart(s: Shop) -> None:
    ctx = s.ctx
    c = container("cart", f"{REG}/cart:{VERSION}", ports=[port(8082, "http")],
                  res=_res("25m", "64Mi", "512Mi"),
                  liveness=http_probe("/healthz", "http", initial=10, period=10))
    tmpl = template(_pod_labels("cart", "cart"), pod_spec([c]))
    created = s.v2
    _, rs = s.deploy("cart", "cart", tmpl, replicas=1, rs_replicas=1, ready=1,
                     created=created, counts={"replicas": 1, "updated": 1, "ready": 1,
                                              "available": 1},
                     conditions=[available(True, created + timedelta(seconds=14)),
                                 progressing("{rs}", "done", created + timedelta(seconds=14),
                                             created)])
    pc = created + timedelta(milliseconds=130)
    restarts = 7
    started = s.now - timedelta(minutes=9, seconds=ctx.rng.randrange(0, 50))
    prev_start = started - timedelta(minutes=21, seconds=10)
    prev_end = started - timedelta(seconds=1)
    last = terminated(137, "Error", prev_start, prev_end, "")
    pod = _running_pod(s, rs, pc, restarts=restarts, last=last, started=started)
    fp = cpath("cart")
    first_fail = pc + timedelta(minutes=16)
    event(ctx, pod, "Pod", "Unhealthy",
          "Liveness probe failed: HTTP probe failed with statuscode: 500", first=first_fail,
          last=s.now - timedelta(seconds=ctx.rng.randrange(2, 9)), count=restarts * 3 + 2,
          warning=True, field_path=fp)
    event(ctx, pod, "Pod", "Killing", "Container cart failed liveness probe, will be restarted",
          first=first_fail + timedelta(seconds=20), last=prev_end, count=restarts,
          field_path=fp)

    def body(a: datetime, b: datetime) -> str:
        lines = [_line(a, "info", "cart service listening on :8082")]
        t = a + timedelta(minutes=3)
        while t < b:
            lines.append(_line(t, "warn", "redis pool exhausted (50/50 connections in use)"))
            lines.append(_line(t + timedelta(milliseconds=4), "error",
                               "GET /healthz 500: session store unavailable"))
            t += timedelta(seconds=10)
        return "".join(lines)

    s.log(pod, [("cart", body(started, s.now))], [("cart", body(prev_start, prev_end))])


# checkout: the migrate init container exits 1 ------------------------------------------------
def _checkout(s: Shop) -> None:
    ctx = s.ctx
    init = container("migrate", f"{REG}/checkout:{VERSION}", command=["./migrate"],
                     args=["up"], res=_res("25m", "32Mi", "256Mi"),
                     env_vars=[env("DATABASE_URL", "postgres://checkout@shop-db:5432/checkout")])
    c = container("checkout", f"{REG}/checkout:{VERSION}", ports=[port(8083, "http")],
                  res=_res("25m", "32Mi", "256Mi"))
    spec = pod_spec([c])
    spec = {"initContainers": [init], **spec}
    tmpl = template(_pod_labels("checkout", "checkout"), spec)
    created = s.v2
    deadline = created + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 3000))
    _, rs = s.deploy("checkout", "checkout", tmpl, replicas=1, rs_replicas=1, ready=0,
                     created=created, counts={"replicas": 1, "updated": 1, "unavailable": 1},
                     conditions=[available(False, created),
                                 progressing("{rs}", "timeout", deadline, deadline)])
    pc = created + timedelta(milliseconds=150)
    pspec = pod_from_template(ctx, rs["spec"]["template"]["spec"], node=s.node)
    token = next(v["name"] for v in pspec["volumes"] if v["name"].startswith("kube-api-access"))
    pspec["initContainers"][0]["volumeMounts"] = [
        {"name": token, "readOnly": True,
         "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    order = ["volumes", "initContainers", "containers"]
    pspec = {**{k: pspec[k] for k in order if k in pspec},
             **{k: v for k, v in pspec.items() if k not in order}}
    plan = PodPlan(created=pc, ip=s.ip(), node=s.node, phase="Pending",
                   runs=[Run(waiting("PodInitializing"), created=False)])
    pod = s.pod(rs, plan, spec=pspec)
    restarts = 31
    lf = s.now - timedelta(minutes=1, seconds=ctx.rng.randrange(5, 50))
    ls = lf - timedelta(seconds=2, milliseconds=ctx.rng.randrange(100, 900))
    init_st = container_status(ctx, pspec["initContainers"][0], Run(
        waiting("CrashLoopBackOff", f"back-off 5m0s restarting failed container=migrate "
                                    f"pod={pod['metadata']['name']}_{NS_NAME}"
                                    f"({pod['metadata']['uid']})"),
        restarts=restarts, last=terminated(1, "Error", ls, lf, "")))
    init_st["started"] = False
    st = pod["status"]
    sandbox = pc + timedelta(seconds=2)
    st["conditions"] = [
        condition("PodReadyToStartContainers", True, sandbox),
        condition("Initialized", False, pc + timedelta(seconds=1), "ContainersNotInitialized",
                  "containers with incomplete status: [migrate]"),
        condition("Ready", False, pc + timedelta(seconds=1), "ContainersNotReady",
                  "containers with unready status: [checkout]"),
        condition("ContainersReady", False, pc + timedelta(seconds=1), "ContainersNotReady",
                  "containers with unready status: [checkout]"),
        condition("PodScheduled", True, pc)]
    order = ["phase", "conditions", "hostIP", "hostIPs", "podIP", "podIPs", "startTime"]
    new = {k: st[k] for k in order if k in st}
    new["initContainerStatuses"] = [init_st]
    new["containerStatuses"] = st["containerStatuses"]
    new["qosClass"] = st["qosClass"]
    pod["status"] = new
    fp = "spec.initContainers{migrate}"
    first = pc + timedelta(seconds=2)
    event(ctx, pod, "Pod", "Pulled", f'Container image "{init["image"]}" already present on '
          "machine", first=first, last=ls, count=restarts + 1, field_path=fp)
    event(ctx, pod, "Pod", "Created", "Created container: migrate", first=first, last=ls,
          count=restarts + 1, field_path=fp)
    event(ctx, pod, "Pod", "Started", "Started container migrate", first=first, last=ls,
          count=restarts + 1, field_path=fp)
    event(ctx, pod, "Pod", "BackOff", f"Back-off restarting failed container migrate in pod "
          f"{pod_ref_text(pod)}", first=first + timedelta(seconds=4),
          last=s.now - timedelta(seconds=ctx.rng.randrange(3, 20)), count=restarts * 4,
          warning=True, field_path=fp)

    def body(t: datetime) -> str:
        return "".join([
            _line(t, "info", "migrate: connecting to shop-db:5432/checkout"),
            _line(t + timedelta(milliseconds=800), "info",
                  "migrate: applying 0007_add_order_discounts.up.sql"),
            _line(t + timedelta(seconds=1, milliseconds=400), "error",
                  'migrate: error: pq: column "discount_cents" of relation "orders" already '
                  "exists in line 3: ALTER TABLE orders ADD COLUMN discount_cents integer"),
        ])

    s.log(pod, [("migrate", body(ls)), ("checkout", "")],
          [("migrate", body(ls - timedelta(minutes=5, seconds=3)))])


# reports: the claim's StorageClass does not exist ----------------------------------------------
def _reports(s: Shop) -> None:
    ctx = s.ctx
    created = s.v1
    pvc_name = "shop-reports-data"
    pvc = {
        "metadata": meta(ctx, pvc_name, NS_NAME, created + timedelta(milliseconds=20),
                         labels=_labels("reports", "reporting"), annotations=_ann(),
                         finalizers=["kubernetes.io/pvc-protection"]),
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "20Gi"}},
                 "storageClassName": "fast-ssd", "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"},
    }
    ctx.add(NS_NAME, "persistentvolumeclaims", pvc)
    tries = int((s.now - created).total_seconds() // 900) + 8
    event(ctx, pvc, "PersistentVolumeClaim", "ProvisioningFailed",
          'storageclass.storage.k8s.io "fast-ssd" not found',
          first=created + timedelta(milliseconds=60),
          last=s.now - timedelta(seconds=ctx.rng.randrange(30, 600)), count=tries, warning=True,
          component="persistentvolume-controller")
    c = container("reports", f"{REG}/reports:{VERSION}", args=["serve", "--data=/data"],
                  res=_res("50m", "128Mi", "512Mi"),
                  mounts=[{"name": "data", "mountPath": "/data"}])
    spec = pod_spec([c], volumes=[{"name": "data",
                                   "persistentVolumeClaim": {"claimName": pvc_name}}])
    tmpl = template(_pod_labels("reports", "reporting"), spec)
    deadline = created + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 3000))
    _, rs = s.deploy("reports", "reporting", tmpl, replicas=1, rs_replicas=1, ready=0,
                     created=created, counts={"replicas": 1, "updated": 1, "unavailable": 1},
                     conditions=[available(False, created),
                                 progressing("{rs}", "timeout", deadline, deadline)])
    nodes = len(ctx.nodes)
    msg = (f"0/{nodes} nodes are available: pod has unbound immediate PersistentVolumeClaims. "
           f"preemption: 0/{nodes} nodes are available: {nodes} Preemption is not helpful for "
           "scheduling.")
    pc = created + timedelta(milliseconds=70)
    pod = s.pod(rs, PodPlan(created=pc, node=None, runs=[], unschedulable=msg))
    scheduler_event(ctx, pod, "FailedScheduling", msg, at=pc + timedelta(milliseconds=30),
                    count=int((s.now - pc).total_seconds() // 300) + 3,
                    last=s.now - timedelta(seconds=ctx.rng.randrange(20, 280)))
    s.log(pod, [("reports", "")])


# fraud-check: private registry, no pull secret ------------------------------------------------
def _fraud_check(s: Shop) -> None:
    ctx = s.ctx
    image = f"{PRIVATE}/shop/fraud-check:1.2.0"
    c = container("fraud-check", image, ports=[port(8084, "http")],
                  res=_res("25m", "32Mi", "256Mi"))
    tmpl = template(_pod_labels("fraud-check", "payments"), pod_spec([c]))
    created = s.v2
    deadline = created + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 3000))
    _, rs = s.deploy("fraud-check", "payments", tmpl, replicas=1, rs_replicas=1, ready=0,
                     created=created, counts={"replicas": 1, "updated": 1, "unavailable": 1},
                     conditions=[available(False, created),
                                 progressing("{rs}", "timeout", deadline, deadline)])
    pc = created + timedelta(milliseconds=160)
    err = (f"Error response from daemon: pull access denied for {PRIVATE}/shop/fraud-check, "
           "repository does not exist or may require 'docker login': denied: "
           "authorization failed: unauthorized")
    run = Run(waiting("ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: '
                                          f"{err}"), created=False)
    pod = s.pod(rs, PodPlan(created=pc, ip=s.ip(), node=s.node, phase="Pending", runs=[run]))
    fp = cpath("fraud-check")
    first = pc + timedelta(seconds=1, milliseconds=200)
    n = int((s.now - first).total_seconds() // 300) + 4
    last = s.now - timedelta(seconds=ctx.rng.randrange(20, 280))
    backoffs = int((s.now - first).total_seconds() / 14.2)
    bo_last = s.now - timedelta(seconds=ctx.rng.randrange(3, 12))
    for reason, msg, warn, cnt, lst in (
        ("Pulling", f'Pulling image "{image}"', False, n, last),
        ("Failed", f'Failed to pull image "{image}": {err}', True, n, last),
        ("Failed", "Error: ErrImagePull", True, n, last),
        ("BackOff", f'Back-off pulling image "{image}"', False, backoffs, bo_last),
        ("Failed", "Error: ImagePullBackOff", True, backoffs, bo_last),
    ):
        event(ctx, pod, "Pod", reason, msg, first=first, last=lst, count=cnt, warning=warn,
              field_path=fp)
    s.log(pod, [("fraud-check", "")])


# ads: admission rejects its pods (quota) ---------------------------------------
def _ads(s: Shop) -> None:
    ctx = s.ctx
    c = container("ads", f"{REG}/ads:{VERSION}",
                  ports=[port(8085, "http")], res=_res("100m", "512Mi", "1Gi"))
    tmpl = template(_pod_labels("ads", "ads"), pod_spec([c]))
    created = s.v2
    h = ctx.template_hash()
    msg = (f'pods "shop-ads-{h}-" is forbidden: exceeded quota: shop-quota, '
           "requested: limits.memory=1Gi, used: limits.memory=3584Mi, limited: "
           "limits.memory=4Gi")
    fail_at = created + timedelta(milliseconds=90)
    deadline = created + timedelta(seconds=600, milliseconds=ctx.rng.randrange(100, 3000))
    conds = [available(False, created), dep_condition(
        "ReplicaFailure", True, fail_at, fail_at, "FailedCreate", msg),
        progressing(f"shop-ads-{h}", "timeout", deadline, deadline)]
    dep = deployment(ctx, NS_NAME, "shop-ads", created=created,
                     updated=deadline, labels=_labels("ads", "ads"),
                     annotations=_ann(), selector=_selector("ads"), tmpl=tmpl,
                     replicas=1, generation=1, revision=1,
                     counts={"unavailable": 1}, conditions=conds)
    rs = replicaset(ctx, NS_NAME, dep, pod_hash=h, created=created + timedelta(milliseconds=40),
                    updated=fail_at, revision=1, replicas=0, ready=0, available_=0)
    rs["spec"]["replicas"] = 1
    rs["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True",
                                   "lastTransitionTime": ts(fail_at), "reason": "FailedCreate",
                                   "message": msg}]
    event(ctx, dep, "Deployment", "ScalingReplicaSet",
          f"Scaled up replica set {rs['metadata']['name']} from 0 to 1",
          first=created + timedelta(milliseconds=40), component="deployment-controller")
    event(ctx, rs, "ReplicaSet", "FailedCreate", f"Error creating: {msg}", first=fail_at,
          last=s.now - timedelta(minutes=ctx.rng.randrange(1, 9)), count=17, warning=True,
          component="replicaset-controller")


# services, endpoints, ingress, quota ---------------------------------------------------------
def _network(s: Shop) -> None:
    ctx = s.ctx
    svcs = []
    for app, component, number, created in (
            ("storefront", "web", 80, s.v1), ("payments", "payments", 8080, s.v2),
            ("inventory", "stock", 8081, s.v1), ("cart", "cart", 8082, s.v2),
            ("checkout", "checkout", 8083, s.v2)):
        svcs.append(service(ctx, NS_NAME, f"shop-{app}", created=created + timedelta(
            milliseconds=20), labels=_labels(app, component), annotations=_ann(),
            selector=_selector(app), ports=[svc_port("http", number, "http")]))
    for svc in svcs:
        created = datetime.fromisoformat(svc["metadata"]["creationTimestamp"].replace(
            "Z", "+00:00"))
        endpoints_for(ctx, svc, s.pods, changed=created + timedelta(seconds=20))
    ctx.add(NS_NAME, "ingresses", {
        "metadata": meta(ctx, "shop", NS_NAME, s.v1 + timedelta(milliseconds=30),
                         updated=s.v2, generation=2, labels=_labels("shop", "network"),
                         annotations=_ann()),
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "shop.local", "http": {
            "paths": [
                {"path": "/api/search", "pathType": "Prefix", "backend": {"service": {
                    "name": "shop-search", "port": {"number": 8080}}}},
                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": "shop-storefront", "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {}},
    })


def _quota(s: Shop) -> None:
    ctx = s.ctx
    live = [p for p in s.pods if p["status"]["phase"] not in ("Succeeded", "Failed")]
    used = 0
    for p in live:
        for c in p["spec"]["containers"]:
            q = c["resources"]["limits"]["memory"]
            used += int(q[:-2]) * (1024 if q.endswith("Gi") else 1)
    hard = {"limits.memory": "4Gi", "pods": "20"}
    ctx.add(NS_NAME, "resourcequotas", {
        "metadata": meta(ctx, "shop-quota", NS_NAME, s.v1 - timedelta(seconds=1),
                         updated=s.now - timedelta(hours=2, minutes=44),
                         labels=_labels("shop", "policy"), annotations=_ann()),
        "spec": {"hard": hard},
        "status": {"hard": hard, "used": {"limits.memory": f"{used}Mi",
                                          "pods": str(len(live))}},
    })


def _images(s: Shop) -> None:
    """Add the images the shop pods pulled to the node's status.images."""
    ctx = s.ctx
    node = next(n for n in ctx.objects[("", "nodes")] if n["metadata"]["name"] == s.node)
    have = {name for img in node["status"]["images"] for name in img["names"]}
    images = list(node["status"]["images"])
    for img in sorted({cs["image"] for p in s.pods for cs in [
            *p["status"].get("initContainerStatuses", []),
            *p["status"].get("containerStatuses", [])] if cs.get("imageID")}):
        if img in have:
            continue
        digest = ctx.image_id(img).removeprefix("docker-pullable://")
        images.append({"names": [digest, img], "sizeBytes": ctx.rng.randrange(
            40_000_000, 300_000_000)})
    node["status"]["images"] = sorted(images, key=lambda i: -i["sizeBytes"])[:50]


def _event_ttl(s: Shop) -> None:
    """The apiserver's --event-ttl=24h: events last seen before then are gone."""
    def last(e: Obj) -> str:
        if e.get("lastTimestamp"):
            return e["lastTimestamp"]
        return (e.get("series") or {}).get("lastObservedTime") or e["eventTime"]

    cutoff = s.now - timedelta(hours=24)
    events = s.ctx.objects[(NS_NAME, "events")]
    events[:] = [e for e in events if datetime.fromisoformat(
        last(e).replace("Z", "+00:00")) >= cutoff]
