"""The minikube node, kube-system, the other built-in namespaces and the
cluster-scoped objects, as `minikube start` (v1.36, docker driver, kubeadm,
cri-dockerd) leaves them after six weeks of quiet running.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import _logs as L
from ._common import (
    CLUSTER_AGE,
    K8S_VERSION,
    MINIKUBE_COMMIT,
    MINIKUBE_VERSION,
    NODE_IP,
    Ctx,
    Obj,
    meta,
    owner_ref,
    safe_encode,
    ts,
)
from ._controllers import available as available_cond
from ._controllers import (
    configmap,
    daemonset,
    deployment,
    endpoints_for,
    progressing,
    replicaset,
    rule,
    service,
    service_account,
    subject,
    svc_port,
)
from ._pods import (
    PodPlan,
    Run,
    container,
    env,
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
)
from ._usage import SeriesSpec

REG = "registry.k8s.io"
IMAGES = {
    "etcd": f"{REG}/etcd:3.5.21-0",
    "kube-apiserver": f"{REG}/kube-apiserver:{K8S_VERSION}",
    "kube-controller-manager": f"{REG}/kube-controller-manager:{K8S_VERSION}",
    "kube-scheduler": f"{REG}/kube-scheduler:{K8S_VERSION}",
    "kube-proxy": f"{REG}/kube-proxy:{K8S_VERSION}",
    "coredns": f"{REG}/coredns/coredns:v1.12.0",
    "metrics-server": f"{REG}/metrics-server/metrics-server:v0.7.2",
    "storage-provisioner": "gcr.io/k8s-minikube/storage-provisioner:v5",
}
IMAGE_SIZES = {
    IMAGES["etcd"]: 150_965_278, IMAGES["kube-apiserver"]: 101_764_628,
    IMAGES["kube-controller-manager"]: 94_543_108, IMAGES["kube-scheduler"]: 73_416_484,
    IMAGES["kube-proxy"]: 97_891_284, IMAGES["coredns"]: 75_158_498,
    IMAGES["metrics-server"]: 66_863_110, IMAGES["storage-provisioner"]: 31_465_472,
    f"{REG}/pause:3.10": 736_455, "postgres:16.4": 431_582_119, "redis:latest": 137_864_301,
    "busybox:latest": 4_276_985,
}
SYS_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


@dataclass
class Cluster:
    """Handles the namespace builders need from the cluster-level objects."""

    node: Obj
    node_uid: str
    created: datetime
    dns_pod_ip: str


def fake_pem(ctx: Ctx, lines: int = 18) -> str:
    """A PEM-framed blob of random bytes: the shape of a CA cert, none of its meaning."""
    raw = base64.b64encode(bytes(ctx.rng.getrandbits(8) for _ in range(lines * 48))).decode()
    body = "\n".join(raw[i:i + 64] for i in range(0, len(raw), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


# -- node ---------------------------------------------------------------------------
def node(ctx: Ctx, name: str, index: int, created: datetime) -> Obj:
    ip = f"192.168.{49 + (index + 2) // 250}.{(index + 2) % 250}"
    ctx.node_ips[name] = ip
    labels = {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "minikube.k8s.io/commit": MINIKUBE_COMMIT, "minikube.k8s.io/name": "minikube",
        "minikube.k8s.io/primary": "true" if index == 0 else "false",
        "minikube.k8s.io/updated_at": f"{created + timedelta(seconds=37):%Y_%m_%dT%H_%M_%S}_0700",
        "minikube.k8s.io/version": MINIKUBE_VERSION,
    }
    if index == 0:
        labels |= {"node-role.kubernetes.io/control-plane": "",
                   "node.kubernetes.io/exclude-from-external-load-balancers": ""}
    ann = {"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/cri-dockerd.sock",
           "node.alpha.kubernetes.io/ttl": "0",
           "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    beat = ctx.now - timedelta(seconds=ctx.rng.randrange(20, 280))
    up = created + timedelta(seconds=13)
    capacity = {"cpu": "6", "ephemeral-storage": "102625208Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "8025424Ki", "pods": "110"}

    def cond(kind: str, status: str, reason: str, message: str) -> Obj:
        return {"type": kind, "status": status, "lastHeartbeatTime": ts(beat),
                "lastTransitionTime": ts(created if status == "False" else up),
                "reason": reason, "message": message}

    obj = {
        "metadata": meta(ctx, name, None, created, updated=beat, labels=labels, annotations=ann),
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                     "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": ip},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": ctx.hex(32), "systemUUID": ctx.uid(), "bootID": ctx.uid(),
                "kernelVersion": "6.8.0-87-generic", "osImage": "Ubuntu 22.04.5 LTS",
                "containerRuntimeVersion": "docker://28.1.1", "kubeletVersion": K8S_VERSION,
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
            "images": [],  # filled by node_images() once the pods exist
        },
    }
    return ctx.add("", "nodes", obj)


def namespace(ctx: Ctx, name: str, created: datetime) -> Obj:
    obj = {"metadata": meta(ctx, name, None, created,
                            labels={"kubernetes.io/metadata.name": name}),
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    return ctx.add("", "namespaces", obj)


def root_ca(ctx: Ctx, ns: str, created: datetime, pem: str) -> None:
    configmap(ctx, ns, "kube-root-ca.crt", {"ca.crt": pem}, created=created, annotations={
        "kubernetes.io/description": "Contains a CA bundle that can be used to verify the "
        "kube-apiserver when using internal endpoints such as the internal service IP or "
        "kubernetes.default.svc. No other usage is guaranteed across distributions of "
        "Kubernetes clusters."})


# -- static pods ----------------------------------------------------------------------
def _host_vol(name: str, path: str, kind: str = "DirectoryOrCreate") -> Obj:
    return {"name": name, "hostPath": {"path": path, "type": kind}}


def _https_probe(path: str, port_: int, *, host: str, initial: int | None, timeout: int,
                 failure: int, period: int = 10) -> Obj:
    """kubeadm's probes: HTTPS to the component's secure port (etcd's metrics port is HTTP)."""
    return ordered([("httpGet", {"path": path, "port": port_, "host": host,
                                 "scheme": "HTTP" if port_ == 2381 else "HTTPS"}),
                    ("initialDelaySeconds", initial), ("timeoutSeconds", timeout),
                    ("periodSeconds", period), ("successThreshold", 1),
                    ("failureThreshold", failure)])


def _static_specs() -> dict[str, tuple[list[str], Obj, list[Obj], list[Obj]]]:
    """command, resources, volumes, mounts of the four kubeadm static pods."""
    certs = "/var/lib/minikube/certs"
    api = [
        "kube-apiserver", f"--advertise-address={NODE_IP}", "--allow-privileged=true",
        "--authorization-mode=Node,RBAC", f"--client-ca-file={certs}/ca.crt",
        "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
        "DefaultStorageClass,DefaultTolerationSeconds,NodeRestriction,MutatingAdmissionWebhook,"
        "ValidatingAdmissionWebhook,ResourceQuota",
        "--enable-bootstrap-token-auth=true", f"--etcd-cafile={certs}/etcd/ca.crt",
        f"--etcd-certfile={certs}/apiserver-etcd-client.crt",
        f"--etcd-keyfile={certs}/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379", "--event-ttl=24h",
        f"--kubelet-client-certificate={certs}/apiserver-kubelet-client.crt",
        f"--kubelet-client-key={certs}/apiserver-kubelet-client.key",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        f"--proxy-client-cert-file={certs}/front-proxy-client.crt",
        f"--proxy-client-key-file={certs}/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        f"--requestheader-client-ca-file={certs}/front-proxy-ca.crt",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User", "--secure-port=8443",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={certs}/sa.pub",
        f"--service-account-signing-key-file={certs}/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12", f"--tls-cert-file={certs}/apiserver.crt",
        f"--tls-private-key-file={certs}/apiserver.key",
    ]
    cm = [
        "kube-controller-manager", "--allocate-node-cidrs=true",
        "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--bind-address=127.0.0.1", f"--client-ca-file={certs}/ca.crt",
        "--cluster-cidr=10.244.0.0/16", "--cluster-name=mk",
        f"--cluster-signing-cert-file={certs}/ca.crt",
        f"--cluster-signing-key-file={certs}/ca.key",
        "--controllers=*,bootstrapsigner,tokencleaner",
        "--kubeconfig=/etc/kubernetes/controller-manager.conf", "--leader-elect=false",
        f"--requestheader-client-ca-file={certs}/front-proxy-ca.crt",
        f"--root-ca-file={certs}/ca.crt",
        f"--service-account-private-key-file={certs}/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12", "--use-service-account-credentials=true",
    ]
    sched = ["kube-scheduler", "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
             "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
             "--bind-address=127.0.0.1", "--kubeconfig=/etc/kubernetes/scheduler.conf",
             "--leader-elect=false"]
    etcd = [
        "etcd", f"--advertise-client-urls=https://{NODE_IP}:2379",
        f"--cert-file={certs}/etcd/server.crt", "--client-cert-auth=true",
        "--data-dir=/var/lib/minikube/etcd", "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        f"--initial-advertise-peer-urls=https://{NODE_IP}:2380",
        f"--initial-cluster=minikube=https://{NODE_IP}:2380", f"--key-file={certs}/etcd/server.key",
        f"--listen-client-urls=https://127.0.0.1:2379,https://{NODE_IP}:2379",
        "--listen-metrics-urls=http://127.0.0.1:2381", f"--listen-peer-urls=https://{NODE_IP}:2380",
        "--name=minikube", f"--peer-cert-file={certs}/etcd/peer.crt",
        "--peer-client-cert-auth=true", f"--peer-key-file={certs}/etcd/peer.key",
        f"--peer-trusted-ca-file={certs}/etcd/ca.crt", "--proxy-refresh-interval=70000",
        "--snapshot-count=10000", f"--trusted-ca-file={certs}/etcd/ca.crt",
    ]
    k8s_vols = [_host_vol("ca-certs", "/etc/ssl/certs"),
                _host_vol("etc-ca-certificates", "/etc/ca-certificates"),
                _host_vol("k8s-certs", certs),
                _host_vol("usr-local-share-ca-certificates", "/usr/local/share/ca-certificates"),
                _host_vol("usr-share-ca-certificates", "/usr/share/ca-certificates")]
    k8s_mounts = [mount(v["name"], v["hostPath"]["path"], read_only=True) for v in k8s_vols]
    cm_vols = [*k8s_vols[:2],
               _host_vol("flexvolume-dir", "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"),
               k8s_vols[2], _host_vol("kubeconfig", "/etc/kubernetes/controller-manager.conf",
                                      "FileOrCreate"), *k8s_vols[3:]]
    cm_mounts = [mount(v["name"], v["hostPath"]["path"],
                       read_only=v["name"] not in ("flexvolume-dir",)) for v in cm_vols]
    return {
        "etcd": (etcd, resources({"cpu": "100m", "memory": "100Mi"}),
                 [_host_vol("etcd-certs", f"{certs}/etcd"),
                  _host_vol("etcd-data", "/var/lib/minikube/etcd")],
                 [mount("etcd-data", "/var/lib/minikube/etcd"),
                  mount("etcd-certs", f"{certs}/etcd")]),
        "kube-apiserver": (api, resources({"cpu": "250m"}), k8s_vols, k8s_mounts),
        "kube-controller-manager": (cm, resources({"cpu": "200m"}), cm_vols, cm_mounts),
        "kube-scheduler": (sched, resources({"cpu": "100m"}),
                           [_host_vol("kubeconfig", "/etc/kubernetes/scheduler.conf",
                                      "FileOrCreate")],
                           [mount("kubeconfig", "/etc/kubernetes/scheduler.conf",
                                  read_only=True)]),
    }


# component -> (probe port, host, liveness path, readiness path or None, startup path)
_PROBES = {
    "etcd": (2381, "127.0.0.1", "/livez", None, "/readyz"),
    "kube-apiserver": (8443, NODE_IP, "/livez", "/readyz", "/livez"),
    "kube-controller-manager": (10257, "127.0.0.1", "/healthz", None, "/healthz"),
    "kube-scheduler": (10259, "127.0.0.1", "/livez", "/readyz", "/livez"),
}


def static_pod(ctx: Ctx, cl: Cluster, comp: str, t: datetime) -> Obj:
    cmd, res, vols, mounts = _static_specs()[comp]
    p, host, live, ready, startup = _PROBES[comp]
    c = container(
        comp, IMAGES[comp], command=cmd, res=res, mounts=mounts,
        liveness=_https_probe(live, p, host=host, initial=10, timeout=15, failure=8),
        readiness=_https_probe(ready, p, host=host, initial=None, timeout=15, failure=3,
                               period=1) if ready else None,
        startup=_https_probe(startup, p, host=host, initial=10, timeout=15, failure=24))
    spec = pod_spec([c], volumes=vols, dns="ClusterFirst", host_network=True,
                    security={"seccompProfile": {"type": "RuntimeDefault"}},
                    priority_class="system-node-critical")
    spec |= {"nodeName": "minikube", "tolerations": [{"operator": "Exists",
                                                      "effect": "NoExecute"}],
             "priority": 2000001000, "enableServiceLinks": True,
             "preemptionPolicy": "PreemptLowerPriority"}
    order = ("volumes", "containers", "restartPolicy", "terminationGracePeriodSeconds",
             "dnsPolicy", "nodeName", "hostNetwork", "securityContext", "schedulerName",
             "tolerations", "priorityClassName", "priority", "enableServiceLinks",
             "preemptionPolicy")
    spec = {k: spec[k] for k in order if k in spec}
    config_hash = ctx.hex(32)
    ann = {"kubernetes.io/config.hash": config_hash, "kubernetes.io/config.mirror": config_hash,
           "kubernetes.io/config.seen": f"{t:%Y-%m-%dT%H:%M:%S}.{ctx.rng.randrange(10**9):09d}Z",
           "kubernetes.io/config.source": "file"}
    if comp == "etcd":
        ann["kubeadm.kubernetes.io/etcd.advertise-client-urls"] = f"https://{NODE_IP}:2379"
    if comp == "kube-apiserver":
        ann["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = f"{NODE_IP}:8443"
    plan = PodPlan(created=t + timedelta(seconds=6), host_network=True,
                   runs=[Run(running(t + timedelta(seconds=1)), ready=True)],
                   ready_at=t + timedelta(seconds=19))
    owner = {"apiVersion": "v1", "kind": "Node", "name": "minikube", "uid": cl.node_uid,
             "controller": True}
    return make_pod(ctx, "kube-system", f"{comp}-minikube", spec, plan,
                    labels={"component": comp, "tier": "control-plane"}, owner=owner,
                    annotations=ann)


# -- kube-system --------------------------------------------------------------------------
def build_cluster(ctx: Ctx, node_count: int = 1) -> Cluster:
    """Node(s), namespaces, kube-system, kube-public, kube-node-lease, default, cluster scope."""
    t0 = ctx.now - CLUSTER_AGE
    nodes = [node(ctx, "minikube" if i == 0 else f"minikube-m{i + 1:02d}", i, t0 + timedelta(
        minutes=3 * i)) for i in range(node_count)]
    ctx.nodes = [n["metadata"]["name"] for n in nodes]
    for i, name in enumerate(("default", "kube-node-lease", "kube-public", "kube-system")):
        namespace(ctx, name, t0 + timedelta(seconds=3 + i % 2))
    cl = Cluster(node=nodes[0], node_uid=nodes[0]["metadata"]["uid"], created=t0,
                 dns_pod_ip="10.244.0.2")
    pem = fake_pem(ctx)
    ctx.pem = pem
    for ns in ("default", "kube-node-lease", "kube-public", "kube-system"):
        root_ca(ctx, ns, t0 + timedelta(seconds=17), pem)
        service_account(ctx, ns, "default", created=t0 + timedelta(seconds=17))
    _kube_system(ctx, cl, t0)
    _kube_public(ctx, t0)
    _default_ns(ctx, cl, t0)
    _cluster_scope(ctx, t0)
    return cl


def _kube_system(ctx: Ctx, cl: Cluster, t0: datetime) -> None:
    ns = "kube-system"
    for i, comp in enumerate(("etcd", "kube-apiserver", "kube-controller-manager",
                              "kube-scheduler")):
        static_pod(ctx, cl, comp, t0 + timedelta(seconds=i))
    for comp, cpu, mem in (("etcd", (0.022, 0.045), (58, 30)),
                           ("kube-apiserver", (0.035, 0.11), (285, 55)),
                           ("kube-controller-manager", (0.012, 0.03), (52, 9)),
                           ("kube-scheduler", (0.002, 0.006), (24, 4))):
        ctx.series.append(SeriesSpec(ns, "Pod", f"{comp}-minikube", f"{comp}-minikube", comp,
                                     t0, cpu, mem))
    sa_names = (
        "attachdetach-controller", "bootstrap-signer", "certificate-controller",
        "clusterrole-aggregation-controller", "coredns", "cronjob-controller",
        "daemon-set-controller", "deployment-controller", "disruption-controller",
        "endpoint-controller", "endpointslice-controller", "endpointslicemirroring-controller",
        "ephemeral-volume-controller", "expand-controller", "generic-garbage-collector",
        "horizontal-pod-autoscaler", "job-controller", "kube-proxy",
        "legacy-service-account-token-cleaner", "metrics-server", "namespace-controller",
        "node-controller", "persistent-volume-binder", "pod-garbage-collector",
        "pv-protection-controller", "pvc-protection-controller", "replicaset-controller",
        "replication-controller", "resourcequota-controller", "root-ca-cert-publisher",
        "selinux-warning-controller", "service-account-controller",
        "service-cidrs-controller", "statefulset-controller", "storage-provisioner",
        "token-cleaner", "ttl-after-finished-controller", "ttl-controller",
        "validatingadmissionpolicy-status-controller",
        "volumeattributesclass-protection-controller",
    )
    for i, sa in enumerate(sa_names):
        extra = {"addonmanager.kubernetes.io/mode": "Reconcile"} if sa in (
            "metrics-server", "storage-provisioner") else None
        service_account(ctx, ns, sa, created=t0 + timedelta(seconds=14 + i % 7), labels=extra)
    _coredns(ctx, cl, t0)
    _kube_proxy(ctx, t0)
    _storage_provisioner(ctx, t0)
    _metrics_server(ctx, t0)
    _system_configmaps(ctx, t0)
    _system_rbac(ctx, t0)


def _coredns(ctx: Ctx, cl: Cluster, t0: datetime) -> None:
    ns = "kube-system"
    labels = {"k8s-app": "kube-dns"}
    c = container(
        "coredns", IMAGES["coredns"], args=["-conf", "/etc/coredns/Corefile"],
        ports=[port(53, "dns", "UDP"), port(53, "dns-tcp"), port(9153, "metrics")],
        res=resources({"cpu": "100m", "memory": "70Mi"}, {"memory": "170Mi"}),
        mounts=[mount("config-volume", "/etc/coredns", read_only=True)],
        liveness=ordered([("httpGet", {"path": "/health", "port": 8080, "scheme": "HTTP"}),
                          ("initialDelaySeconds", 60), ("timeoutSeconds", 5),
                          ("periodSeconds", 10), ("successThreshold", 1),
                          ("failureThreshold", 5)]),
        readiness=ordered([("httpGet", {"path": "/ready", "port": 8181, "scheme": "HTTP"}),
                           ("timeoutSeconds", 1), ("periodSeconds", 10),
                           ("successThreshold", 1), ("failureThreshold", 3)]),
        security={"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                  "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False})
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {
            "labelSelector": {"matchExpressions": [
                {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
            "topologyKey": "kubernetes.io/hostname"}}]}}
    spec = pod_spec([c], volumes=[{"name": "config-volume", "configMap": {
        "name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}],
        "defaultMode": 420}}], dns="Default", node_selector={"kubernetes.io/os": "linux"},
        service_account="coredns", affinity=affinity,
        tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists"},
                     {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        priority_class="system-cluster-critical")
    tmpl = template(labels, spec)
    created = t0 + timedelta(seconds=22)
    ready = created + timedelta(seconds=31)
    h = ctx.template_hash()
    # kubeadm creates two replicas, minikube scales to one: hence generation 2
    dep = deployment(ctx, ns, "coredns", created=created, updated=ready, labels=labels,
                     annotations={}, selector=labels, tmpl=tmpl, replicas=1, generation=2,
                     revision=1, counts={"replicas": 1, "updated": 1, "ready": 1,
                                         "available": 1},
                     conditions=[available_cond(True, ready),
                                 progressing(f"coredns-{h}", "done", ready, created)],
                     strategy={"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}})
    rs = replicaset(ctx, ns, dep, pod_hash=h, created=created + timedelta(seconds=8),
                    updated=created + timedelta(seconds=31), revision=1, replicas=1, ready=1,
                    available_=1, generation=2)
    pcreated = created + timedelta(seconds=8)
    pod = make_pod(ctx, ns, ctx.unique_name(f"coredns-{h}"),
                   pod_from_template(ctx, rs["spec"]["template"]["spec"], node="minikube"),
                   PodPlan(created=pcreated, ip=cl.dns_pod_ip, ready_at=created + timedelta(
                       seconds=31), runs=[Run(running(pcreated + timedelta(seconds=13)),
                                              ready=True)]),
                   labels=rs["spec"]["template"]["metadata"]["labels"],
                   owner=owner_ref(rs, kind="ReplicaSet", api_version="apps/v1"),
                   generate_name=f"coredns-{h}-")
    ctx.pod_ips.add(cl.dns_pod_ip)
    name = pod["metadata"]["name"]
    ctx.series.append(SeriesSpec(ns, "Deployment", "coredns", name, "coredns", t0,
                                 (0.002, 0.005), (17, 4)))
    svc = service(ctx, ns, "kube-dns", created=created, labels={
        "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
        "kubernetes.io/name": "CoreDNS"},
        annotations={"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        selector=labels, cluster_ip="10.96.0.10",
        ports=[svc_port("dns", 53, 53, "UDP"), svc_port("dns-tcp", 53, 53),
               svc_port("metrics", 9153, 9153)])
    ctx.svc_ips.add("10.96.0.10")
    endpoints_for(ctx, svc, [pod], changed=created + timedelta(seconds=31))


def _kube_proxy(ctx: Ctx, t0: datetime) -> None:
    ns = "kube-system"
    labels = {"k8s-app": "kube-proxy"}
    c = container("kube-proxy", IMAGES["kube-proxy"],
                  command=["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                           "--hostname-override=$(NODE_NAME)"],
                  env_vars=[env("NODE_NAME", field_path="spec.nodeName")],
                  mounts=[mount("kube-proxy", "/var/lib/kube-proxy"),
                          mount("xtables-lock", "/run/xtables.lock"),
                          mount("lib-modules", "/lib/modules", read_only=True)],
                  security={"privileged": True})
    spec = pod_spec([c], volumes=[
        {"name": "kube-proxy", "configMap": {"name": "kube-proxy", "defaultMode": 420}},
        _host_vol("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
        _host_vol("lib-modules", "/lib/modules", "")],
        node_selector={"kubernetes.io/os": "linux"}, service_account="kube-proxy",
        host_network=True, tolerations=[{"operator": "Exists"}],
        priority_class="system-node-critical")
    for v in spec["volumes"]:
        if v.get("hostPath", {}).get("type") == "":
            v["hostPath"]["type"] = ""
    created = t0 + timedelta(seconds=21)
    tmpl = template(labels, spec)
    ds = daemonset(ctx, ns, "kube-proxy", created=created, labels=labels,
                   annotations={"deprecated.daemonset.template.generation": "1"},
                   selector=labels, tmpl=tmpl, nodes=len(ctx.nodes))
    rev = safe_hash(ctx)
    ds_tol = [{"key": k, "operator": "Exists", "effect": e} for k, e in (
        ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable",
                                                         "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/network-unavailable", "NoSchedule"))]
    for node_name in ctx.nodes:
        pcreated = created + timedelta(seconds=9)
        aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                    "values": [node_name]}]}]}}}
        pod = make_pod(
            ctx, ns, ctx.unique_name("kube-proxy"),
            pod_from_template(ctx, spec, node=node_name, extra_tolerations=ds_tol, affinity=aff),
            PodPlan(created=pcreated, host_network=True, runs=[Run(running(
                pcreated + timedelta(seconds=2)), ready=True)]),
            labels={**labels, "controller-revision-hash": rev, "pod-template-generation": "1"},
            owner=owner_ref(ds, kind="DaemonSet", api_version="apps/v1"),
            generate_name="kube-proxy-")
        name = pod["metadata"]["name"]
        ctx.series.append(SeriesSpec(ns, "DaemonSet", "kube-proxy", name, "kube-proxy", t0,
                                     (0.0008, 0.0016), (19, 2)))
        if node_name == "minikube":
            ctx.logs[(ns, name)] = [("kube-proxy", L.join(L.klog_lines([
                (pcreated + timedelta(seconds=2, microseconds=401_223), "I",
                 "server_linux.go:66", '"Using iptables proxy"'),
                (pcreated + timedelta(seconds=2, microseconds=731_880), "I",
                 "server.go:715", f'"Successfully retrieved node IP(s)" IPs=["{NODE_IP}"]'),
                (pcreated + timedelta(seconds=2, microseconds=845_102), "I",
                 "server_linux.go:170", '"Using iptables Proxier"'),
                (pcreated + timedelta(seconds=2, microseconds=850_117), "I",
                 "proxier.go:250", '"Setting route_localnet=1 to allow node-ports on localhost;'
                 ' to change this either disable iptables.localhostNodePorts '
                 '(--iptables-localhost-nodeports) or set nodePortAddresses '
                 '(--nodeport-addresses) to filter loopback addresses" ipFamily="IPv4"'),
                (pcreated + timedelta(seconds=2, microseconds=866_904), "I",
                 "server.go:1083", '"Version info" version="v1.33.1"'),
                (pcreated + timedelta(seconds=2, microseconds=913_557), "I",
                 "config.go:199", '"Starting service config controller"'),
                (pcreated + timedelta(seconds=3, microseconds=14_228), "I",
                 "shared_informer.go:357", '"Caches are synced" controller="service config"'),
            ])))]


def safe_hash(ctx: Ctx) -> str:
    """A DaemonSet controller-revision-hash (a 9-10 digit hash, safe-encoded)."""
    return safe_encode(str(ctx.rng.randrange(100_000_000, 999_999_999)))


def _storage_provisioner(ctx: Ctx, t0: datetime) -> None:
    ns = "kube-system"
    labels = {"addonmanager.kubernetes.io/mode": "Reconcile",
              "integration-test": "storage-provisioner"}
    c = container("storage-provisioner", IMAGES["storage-provisioner"],
                  command=["/storage-provisioner"], mounts=[mount("tmp", "/tmp")])
    spec = pod_spec([c], volumes=[_host_vol("tmp", "/tmp", "Directory")],
                    service_account="storage-provisioner", host_network=True)
    created = t0 + timedelta(seconds=24)
    first = created + timedelta(seconds=3)
    crash = first + timedelta(seconds=30, milliseconds=611)
    restart = crash + timedelta(seconds=12)
    run = Run(running(restart), ready=True, restarts=1,
              last=terminated(1, "Error", first, crash, ctx.container_id()))
    ann = {"kubectl.kubernetes.io/last-applied-configuration": (
        '{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{},"labels":{'
        '"addonmanager.kubernetes.io/mode":"Reconcile","integration-test":'
        '"storage-provisioner"},"name":"storage-provisioner","namespace":"kube-system"},'
        '"spec":{"containers":[{"command":["/storage-provisioner"],"image":'
        '"gcr.io/k8s-minikube/storage-provisioner:v5","imagePullPolicy":"IfNotPresent",'
        '"name":"storage-provisioner","volumeMounts":[{"mountPath":"/tmp","name":"tmp"}]}],'
        '"hostNetwork":true,"serviceAccountName":"storage-provisioner","volumes":[{'
        '"hostPath":{"path":"/tmp","type":"Directory"},"name":"tmp"}]}}\n')}
    make_pod(ctx, ns, "storage-provisioner", pod_from_template(ctx, spec, node="minikube"),
             PodPlan(created=created, host_network=True, ready_at=restart + timedelta(
                 seconds=1), runs=[run]), labels=labels, annotations=ann)
    ctx.series.append(SeriesSpec(ns, "Pod", "storage-provisioner", "storage-provisioner",
                                 "storage-provisioner", t0, (0.0006, 0.0012), (9, 1)))
    prev = L.klog_lines([
        (first + timedelta(microseconds=512_331), "I", "storage_provisioner.go:116",
         "Initializing the minikube storage provisioner..."),
        (crash - timedelta(microseconds=1_207), "F", "main.go:39",
         'error getting server version: Get "https://10.96.0.1:443/version?timeout=32s": '
         "dial tcp 10.96.0.1:443: i/o timeout"),
    ])
    cur = L.klog_lines([
        (restart + timedelta(microseconds=201_551), "I", "storage_provisioner.go:116",
         "Initializing the minikube storage provisioner..."),
        (restart + timedelta(microseconds=223_017), "I", "storage_provisioner.go:141",
         "Storage provisioner initialized, now starting service!"),
        (restart + timedelta(microseconds=223_392), "I", "leaderelection.go:243",
         "attempting to acquire leader lease kube-system/k8s.io-minikube-hostpath..."),
        (restart + timedelta(seconds=17, microseconds=902_118), "I", "leaderelection.go:253",
         "successfully acquired lease kube-system/k8s.io-minikube-hostpath"),
        (restart + timedelta(seconds=17, microseconds=902_640), "I", "controller.go:835",
         "Starting provisioner controller k8s.io/minikube-hostpath_minikube_"
         f"{ctx.uid()}!"),
        (restart + timedelta(seconds=18, microseconds=3_311), "I", "controller.go:884",
         "Started provisioner controller k8s.io/minikube-hostpath_minikube_"
         f"{ctx.uid()}!"),
    ])
    ctx.logs[(ns, "storage-provisioner")] = [("storage-provisioner", L.join(cur))]
    ctx.prev_logs[(ns, "storage-provisioner")] = [("storage-provisioner", L.join(prev))]


def _metrics_server(ctx: Ctx, t0: datetime) -> None:
    ns = "kube-system"
    labels = {"k8s-app": "metrics-server"}
    obj_labels = {**labels, "addonmanager.kubernetes.io/mode": "Reconcile",
                  "kubernetes.io/minikube-addons": "metrics-server"}
    image = IMAGES["metrics-server"]
    c = container(
        "metrics-server", image,
        args=["--cert-dir=/tmp", "--secure-port=4443",
              "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
              "--kubelet-use-node-status-port", "--metric-resolution=60s",
              "--kubelet-insecure-tls"],
        ports=[port(4443, "https")],
        res=resources({"cpu": "100m", "memory": "200Mi"}),
        mounts=[mount("tmp-dir", "/tmp")],
        liveness=ordered([("httpGet", {"path": "/livez", "port": "https", "scheme": "HTTPS"}),
                          ("timeoutSeconds", 1), ("periodSeconds", 10),
                          ("successThreshold", 1), ("failureThreshold", 3)]),
        readiness=ordered([("httpGet", {"path": "/readyz", "port": "https", "scheme": "HTTPS"}),
                           ("initialDelaySeconds", 20), ("timeoutSeconds", 1),
                           ("periodSeconds", 10), ("successThreshold", 1),
                           ("failureThreshold", 3)]),
        security={"runAsUser": 1000, "runAsNonRoot": True, "readOnlyRootFilesystem": True,
                  "allowPrivilegeEscalation": False})
    spec = pod_spec([c], volumes=[{"name": "tmp-dir", "emptyDir": {}}],
                    node_selector={"kubernetes.io/os": "linux"}, service_account="metrics-server",
                    priority_class="system-cluster-critical")
    created = t0 + timedelta(seconds=26)
    ready = created + timedelta(seconds=52)
    h = ctx.template_hash()
    dep = deployment(ctx, ns, "metrics-server", created=created, updated=ready, labels=obj_labels,
                     annotations={}, selector=labels, tmpl=template(labels, spec), replicas=1,
                     generation=1, revision=1, counts={"replicas": 1, "updated": 1, "ready": 1,
                                                       "available": 1},
                     conditions=[available_cond(True, ready),
                                 progressing(f"metrics-server-{h}", "done", ready, created)],
                     strategy={"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}})
    rs = replicaset(ctx, ns, dep, pod_hash=h, created=created, updated=ready, revision=1,
                    replicas=1, ready=1, available_=1)
    pod = make_pod(ctx, ns, ctx.unique_name(f"metrics-server-{h}"),
                   pod_from_template(ctx, rs["spec"]["template"]["spec"], node="minikube"),
                   PodPlan(created=created, ip=ctx.pod_ip(), ready_at=ready,
                           runs=[Run(running(created + timedelta(seconds=14)), ready=True)]),
                   labels=rs["spec"]["template"]["metadata"]["labels"],
                   owner=owner_ref(rs, kind="ReplicaSet", api_version="apps/v1"),
                   generate_name=f"metrics-server-{h}-")
    name = pod["metadata"]["name"]
    ctx.series.append(SeriesSpec(ns, "Deployment", "metrics-server", name, "metrics-server",
                                 t0, (0.003, 0.006), (21, 4)))
    svc = service(ctx, ns, "metrics-server", created=created, labels=obj_labels,
                  annotations=None, selector=labels, ports=[svc_port("https", 443, "https")])
    endpoints_for(ctx, svc, [pod], changed=ready)
    s = created + timedelta(seconds=14)
    ctx.logs[(ns, name)] = [("metrics-server", L.join(L.klog_lines([
        (s + timedelta(microseconds=611_204), "I", "serving.go:374",
         'Generated self-signed cert (/tmp/apiserver.crt, /tmp/apiserver.key)'),
        (s + timedelta(seconds=1, microseconds=102_778), "I", "handler.go:275",
         "Adding GroupVersion metrics.k8s.io v1beta1 to ResourceManager"),
        (s + timedelta(seconds=1, microseconds=260_101), "I", "secure_serving.go:213",
         "Serving securely on [::]:4443"),
        (s + timedelta(seconds=1, microseconds=260_552), "I", "dynamic_serving_content.go:132",
         '"Starting controller" name="serving-cert::/tmp/apiserver.crt::/tmp/apiserver.key"'),
        (s + timedelta(seconds=1, microseconds=261_020), "I", "tlsconfig.go:243",
         '"Starting DynamicServingCertificateController"'),
    ])))]


def _system_configmaps(ctx: Ctx, t0: datetime) -> None:
    ns = "kube-system"
    corefile = (
        ".:53 {\n    log\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n"
        "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n"
        "       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n"
        "    prometheus :9153\n    hosts {\n       192.168.49.1 host.minikube.internal\n"
        "       fallthrough\n    }\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n"
        "    }\n    cache 30 {\n       disable success cluster.local\n"
        "       disable denial cluster.local\n    }\n    loop\n    reload\n    loadbalance\n}\n")
    configmap(ctx, ns, "coredns", {"Corefile": corefile}, created=t0 + timedelta(seconds=10))
    configmap(ctx, ns, "extension-apiserver-authentication", {
        "client-ca-file": fake_pem(ctx),
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-client-ca-file": fake_pem(ctx),
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-username-headers": '["X-Remote-User"]',
    }, created=t0 + timedelta(seconds=2))
    configmap(ctx, ns, "kube-apiserver-legacy-service-account-token-tracking",
              {"since": f"{t0 + timedelta(seconds=2):%Y-%m-%d}"}, created=t0 + timedelta(
                  seconds=2))
    configmap(ctx, ns, "kube-proxy", {
        "config.conf": (
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nbindAddress: 0.0.0.0\n"
            "clientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"
            "clusterCIDR: 10.244.0.0/16\nconntrack:\n  maxPerCore: 0\n"
            "  tcpCloseWaitTimeout: 0s\n  tcpEstablishedTimeout: 0s\n"
            "kind: KubeProxyConfiguration\nmetricsBindAddress: 0.0.0.0:10249\nmode: \"\"\n"),
        "kubeconfig.conf": (
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
            "    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n"
            "    server: https://control-plane.minikube.internal:8443\n  name: default\n"
            "contexts:\n- context:\n    cluster: default\n    namespace: default\n"
            "    user: default\n  name: default\ncurrent-context: default\nusers:\n"
            "- name: default\n  user:\n"
            "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n"),
    }, created=t0 + timedelta(seconds=12), labels={"app": "kube-proxy"})
    configmap(ctx, ns, "kubeadm-config", {"ClusterConfiguration": (
        "apiServer:\n  certSANs:\n  - 127.0.0.1\n  - localhost\n  - 192.168.49.2\n"
        "  extraArgs:\n  - name: enable-admission-plugins\n    value: NamespaceLifecycle,"
        "LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,"
        "NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota\n"
        "  - name: event-ttl\n    value: 24h\n"
        "apiVersion: kubeadm.k8s.io/v1beta4\ncaCertificateValidityPeriod: 87600h0m0s\n"
        "certificateValidityPeriod: 8760h0m0s\ncertificatesDir: /var/lib/minikube/certs\n"
        "clusterName: mk\ncontrolPlaneEndpoint: control-plane.minikube.internal:8443\n"
        "controllerManager:\n  extraArgs:\n  - name: allocate-node-cidrs\n    value: \"true\"\n"
        "  - name: leader-elect\n    value: \"false\"\ndns: {}\nencryptionAlgorithm: RSA-2048\n"
        "etcd:\n  local:\n    dataDir: /var/lib/minikube/etcd\nimageRepository: "
        f"registry.k8s.io\nkind: ClusterConfiguration\nkubernetesVersion: {K8S_VERSION}\n"
        "networking:\n  dnsDomain: cluster.local\n  podSubnet: 10.244.0.0/16\n"
        "  serviceSubnet: 10.96.0.0/12\nproxy: {}\nscheduler:\n  extraArgs:\n"
        "  - name: leader-elect\n    value: \"false\"\n")}, created=t0 + timedelta(seconds=9))
    configmap(ctx, ns, "kubelet-config", {"kubelet": (
        "apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n"
        "    enabled: false\n  webhook:\n    cacheTTL: 0s\n    enabled: true\n  x509:\n"
        "    clientCAFile: /var/lib/minikube/certs/ca.crt\nauthorization:\n  mode: Webhook\n"
        "cgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\nclusterDomain: cluster.local\n"
        "containerRuntimeEndpoint: unix:///var/run/cri-dockerd.sock\nevictionHard:\n"
        "  imagefs.available: 0%\n  nodefs.available: 0%\n  nodefs.inodesFree: 0%\n"
        "failSwapOn: false\nhairpinMode: hairpin-veth\nkind: KubeletConfiguration\n"
        "staticPodPath: /etc/kubernetes/manifests\n")}, created=t0 + timedelta(seconds=9))


def _system_rbac(ctx: Ctx, t0: datetime) -> None:
    ns = "kube-system"
    for name, rules in (
        ("extension-apiserver-authentication-reader", [rule([""], ["configmaps"], ["get", "list",
                                                                                   "watch"])]),
        ("kube-proxy", [rule([""], ["configmaps"], ["get"])]),
        ("kubeadm:kubelet-config", [rule([""], ["configmaps"], ["get"])]),
        ("kubeadm:nodes-kubeadm-config", [rule([""], ["configmaps"], ["get"])]),
        ("system::leader-locking-kube-controller-manager",
         [rule([""], ["configmaps"], ["watch"]),
          rule(["coordination.k8s.io"], ["leases"], ["get", "update"])]),
        ("system::leader-locking-kube-scheduler",
         [rule([""], ["configmaps"], ["watch"]),
          rule(["coordination.k8s.io"], ["leases"], ["get", "update"])]),
        ("system:persistent-volume-provisioner",
         [rule([""], ["endpoints"], ["watch", "create"]),
          rule([""], ["endpoints"], ["get", "update", "patch"])]),
    ):
        boot = name.startswith(("system", "extension"))
        ctx.add(ns, "roles", {
            "metadata": meta(ctx, name, ns, t0 + timedelta(seconds=2 if boot else 11),
                             labels=SYS_LABELS if boot else None,
                             annotations=AUTOUPDATE if boot else None),
            "rules": rules})
    for name, role, subj in (
        ("kube-proxy", "kube-proxy", subject("Group", "system:bootstrappers:kubeadm:default-"
                                                     "node-token")),
        ("kubeadm:kubelet-config", "kubeadm:kubelet-config",
         subject("Group", "system:nodes")),
        ("kubeadm:nodes-kubeadm-config", "kubeadm:nodes-kubeadm-config",
         subject("Group", "system:nodes")),
        ("system::extension-apiserver-authentication-reader",
         "extension-apiserver-authentication-reader",
         subject("User", "system:kube-controller-manager")),
        ("system:persistent-volume-provisioner", "system:persistent-volume-provisioner",
         subject("ServiceAccount", "storage-provisioner", ns)),
    ):
        ctx.add(ns, "rolebindings", {
            "metadata": meta(ctx, name, ns, t0 + timedelta(seconds=11)),
            "subjects": [subj],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}})


def _kube_public(ctx: Ctx, t0: datetime) -> None:
    ns = "kube-public"
    kubeconfig = ("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: "
                  f"{base64.b64encode(ctx.pem.encode()).decode()[:88]}\n"
                  "    server: https://control-plane.minikube.internal:8443\n  name: \"\"\n"
                  "contexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {}\n"
                  "users: null\n")
    configmap(ctx, ns, "cluster-info", {"kubeconfig": kubeconfig},
              created=t0 + timedelta(seconds=11))
    ctx.add(ns, "roles", {
        "metadata": meta(ctx, "kubeadm:bootstrap-signer-clusterinfo", ns,
                         t0 + timedelta(seconds=11)),
        "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
                   "resourceNames": ["cluster-info"]}]})
    ctx.add(ns, "rolebindings", {
        "metadata": meta(ctx, "kubeadm:bootstrap-signer-clusterinfo", ns,
                         t0 + timedelta(seconds=11)),
        "subjects": [subject("User", "system:anonymous")],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "kubeadm:bootstrap-signer-clusterinfo"}})


def _default_ns(ctx: Ctx, cl: Cluster, t0: datetime) -> None:
    ns = "default"
    svc = service(ctx, ns, "kubernetes", created=t0 + timedelta(seconds=2),
                  labels={"component": "apiserver", "provider": "kubernetes"}, annotations=None,
                  selector=None, cluster_ip="10.96.0.1", ports=[svc_port("https", 443, 8443)])
    ctx.svc_ips.add("10.96.0.1")
    ctx.add(ns, "endpoints", {
        "metadata": meta(ctx, "kubernetes", ns, t0 + timedelta(seconds=2),
                         updated=t0 + timedelta(seconds=3), labels={
                             "endpointslice.kubernetes.io/skip-mirror": "true"}),
        "subsets": [{"addresses": [{"ip": NODE_IP}],
                     "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}]}]})
    del svc
    created = ctx.now - timedelta(days=6, hours=2, minutes=13, seconds=8)
    c = container("debug-shell", "busybox:latest", command=["sleep", "1209600"],
                  security={"privileged": True})
    spec = pod_spec([c], host_network=True)
    started = created + timedelta(seconds=4)
    make_pod(ctx, ns, "debug-shell", pod_from_template(ctx, spec, node="minikube"),
             PodPlan(created=created, host_network=True, ready_at=started + timedelta(
                 milliseconds=400), runs=[Run(running(started), ready=True)]),
             labels={"run": "debug-shell"})
    ctx.series.append(SeriesSpec(ns, "Pod", "debug-shell", "debug-shell", "debug-shell",
                                 created, (0.0, 0.0), (0.4, 0.0)))
    ctx.logs[(ns, "debug-shell")] = [("debug-shell", "")]


# -- cluster scope ---------------------------------------------------------------------------
def _cluster_role(ctx: Ctx, name: str, rules: list[Obj], t: datetime, *,
                  labels: dict[str, str] | None = None, aggregate: list[str] | None = None,
                  annotations: dict[str, str] | None = None) -> None:
    obj: Obj = {"metadata": meta(ctx, name, None, t, labels=labels, annotations=annotations),
                "rules": rules}
    if aggregate:
        obj["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {k: "true"}} for k in aggregate]}
    ctx.add("", "clusterroles", obj)


def cluster_binding(ctx: Ctx, name: str, role: str, subjects: list[Obj], t: datetime, *,
                    labels: dict[str, str] | None = None,
                    annotations: dict[str, str] | None = None) -> Obj:
    return ctx.add("", "clusterrolebindings", {
        "metadata": meta(ctx, name, None, t, labels=labels, annotations=annotations),
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role}})


def _cluster_scope(ctx: Ctx, t0: datetime) -> None:
    t = t0 + timedelta(seconds=2)
    ro = ["get", "list", "watch"]
    _cluster_role(ctx, "cluster-admin", [{"verbs": ["*"], "apiGroups": ["*"],
                                          "resources": ["*"]},
                                         {"verbs": ["*"], "nonResourceURLs": ["*"]}], t,
                  labels=SYS_LABELS, annotations=AUTOUPDATE)
    _cluster_role(ctx, "admin", [
        rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                    "services/proxy"], ro),
        rule([""], ["serviceaccounts"], ["impersonate"]),
        rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
             ["create", "delete", "deletecollection", "patch", "update"]),
        rule(["apps"], ["daemonsets", "deployments", "deployments/rollback",
                        "deployments/scale", "replicasets", "replicasets/scale", "statefulsets",
                        "statefulsets/scale"],
             ["create", "delete", "deletecollection", "patch", "update"]),
        rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"],
             ["create", "delete", "deletecollection", "get", "list", "patch", "update",
              "watch"]),
    ], t, labels=SYS_LABELS, annotations=AUTOUPDATE, aggregate=[
        "rbac.authorization.k8s.io/aggregate-to-admin"])
    _cluster_role(ctx, "edit", [
        rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                    "services/proxy"], ro),
        rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                    "secrets", "serviceaccounts", "services"],
             ["create", "delete", "deletecollection", "patch", "update"]),
    ], t, labels={**SYS_LABELS, "rbac.authorization.k8s.io/aggregate-to-admin": "true"},
        annotations=AUTOUPDATE, aggregate=["rbac.authorization.k8s.io/aggregate-to-edit"])
    _cluster_role(ctx, "view", [
        rule([""], ["configmaps", "endpoints", "persistentvolumeclaims", "pods",
                    "replicationcontrollers", "serviceaccounts", "services"], ro),
        rule(["apps"], ["daemonsets", "deployments", "replicasets", "statefulsets"], ro),
    ], t, labels={**SYS_LABELS, "rbac.authorization.k8s.io/aggregate-to-edit": "true"},
        annotations=AUTOUPDATE, aggregate=["rbac.authorization.k8s.io/aggregate-to-view"])
    _cluster_role(ctx, "system:coredns", [
        rule([""], ["endpoints", "services", "pods", "namespaces"], ["list", "watch"]),
        rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"])],
        t0 + timedelta(seconds=10))
    _cluster_role(ctx, "system:metrics-server", [
        rule([""], ["nodes/metrics"], ["get"]),
        rule([""], ["pods", "nodes"], ro)], t0 + timedelta(seconds=26), labels={
        "addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "metrics-server",
        "kubernetes.io/minikube-addons": "metrics-server"})
    _cluster_role(ctx, "system:aggregated-metrics-reader", [
        rule(["metrics.k8s.io"], ["pods", "nodes"], ro)], t0 + timedelta(seconds=26), labels={
        "addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "metrics-server",
        "rbac.authorization.k8s.io/aggregate-to-admin": "true",
        "rbac.authorization.k8s.io/aggregate-to-edit": "true",
        "rbac.authorization.k8s.io/aggregate-to-view": "true"})
    cluster_binding(ctx, "cluster-admin", "cluster-admin",
                    [subject("Group", "system:masters")], t, labels=SYS_LABELS,
                    annotations=AUTOUPDATE)
    cluster_binding(ctx, "kubeadm:cluster-admins", "cluster-admin",
                    [subject("Group", "kubeadm:cluster-admins")], t0 + timedelta(seconds=9))
    cluster_binding(ctx, "kubeadm:node-proxier", "system:node-proxier",
                    [subject("ServiceAccount", "kube-proxy", "kube-system")],
                    t0 + timedelta(seconds=12))
    cluster_binding(ctx, "minikube-rbac", "cluster-admin",
                    [subject("ServiceAccount", "default", "kube-system")],
                    t0 + timedelta(seconds=13))
    cluster_binding(ctx, "storage-provisioner", "system:persistent-volume-provisioner",
                    [subject("ServiceAccount", "storage-provisioner", "kube-system")],
                    t0 + timedelta(seconds=24), labels={
                        "addonmanager.kubernetes.io/mode": "EnsureExists"})
    cluster_binding(ctx, "system:coredns", "system:coredns",
                    [subject("ServiceAccount", "coredns", "kube-system")],
                    t0 + timedelta(seconds=10))
    cluster_binding(ctx, "system:metrics-server", "system:metrics-server",
                    [subject("ServiceAccount", "metrics-server", "kube-system")],
                    t0 + timedelta(seconds=26), labels={
                        "addonmanager.kubernetes.io/mode": "Reconcile",
                        "k8s-app": "metrics-server"})
    ctx.add("", "storageclasses", {
        "metadata": meta(ctx, "standard", None, t0 + timedelta(seconds=24), labels={
            "addonmanager.kubernetes.io/mode": "EnsureExists"}, annotations={
            "kubectl.kubernetes.io/last-applied-configuration": (
                '{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{'
                '"annotations":{"storageclass.kubernetes.io/is-default-class":"true"},'
                '"labels":{"addonmanager.kubernetes.io/mode":"EnsureExists"},"name":'
                '"standard"},"provisioner":"k8s.io/minikube-hostpath"}\n'),
            "storageclass.kubernetes.io/is-default-class": "true"}),
        "provisioner": "k8s.io/minikube-hostpath",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    })



# -- logs that depend on the application namespace ---------------------------------------
def late_logs(ctx: Ctx, app_ns: str = "todo") -> None:
    """Control-plane and CoreDNS logs, written after the application exists.

    The controller-manager and scheduler lines are derived from the events of
    `app_ns`, so logs and events tell the same story to the second.
    """
    pods = {p["metadata"]["name"]: p for p in ctx.objects.get(("kube-system", "pods"), [])}
    events = sorted(ctx.objects.get((app_ns, "events"), []),
                    key=lambda e: e["firstTimestamp"] or e["eventTime"])
    since = ctx.now - timedelta(hours=6, minutes=20)
    cm, sched = [], []
    for e in events:
        first = _utc(e["firstTimestamp"] or e["eventTime"])
        if first < since:
            continue
        t = first + timedelta(microseconds=ctx.rng.randrange(1000, 999_000)) if (
            e["firstTimestamp"]) else first + timedelta(microseconds=ctx.rng.randrange(200, 900))
        io = e["involvedObject"]
        comp = e["source"].get("component") or e["reportingComponent"]
        if comp.endswith("-controller"):
            cm.append((t, "I", "event.go:389", (
                f'"Event occurred" object="{io["namespace"]}/{io["name"]}" fieldPath="" '
                f'kind="{io["kind"]}" apiVersion="{io["apiVersion"]}" type="{e["type"]}" '
                f'reason="{e["reason"]}" message="{_q(e["message"])}"')))
        elif e["reason"] == "FailedScheduling":
            last = _utc(e["series"]["lastObservedTime"]) if e.get("series") else first
            step = (last - first) / max(e.get("series", {}).get("count", 1) - 1, 1)
            for k in range(e.get("series", {}).get("count", 1)):
                at = first + step * k + timedelta(microseconds=ctx.rng.randrange(100, 9000))
                if at >= ctx.now - timedelta(hours=1):
                    sched.append((at, "I", "schedule_one.go:1072", (
                        f'"Unable to schedule pod; no fit; waiting" pod="{io["namespace"]}/'
                        f'{io["name"]}" err="{_q(e["message"])}"')))
    t0 = ctx.now - CLUSTER_AGE
    cm_start = [(t0 + timedelta(seconds=3, microseconds=112_300), "I", "serving.go:386",
                 "Generated self-signed cert in-memory"),
                (t0 + timedelta(seconds=3, microseconds=802_711), "I",
                 "controllermanager.go:203", f'"Starting" version="{K8S_VERSION}"'),
                (t0 + timedelta(seconds=3, microseconds=811_090), "I",
                 "secure_serving.go:211", "Serving securely on 127.0.0.1:10257")]
    sched_start = [(t0 + timedelta(seconds=4, microseconds=20_118), "I", "serving.go:386",
                    "Generated self-signed cert in-memory"),
                   (t0 + timedelta(seconds=4, microseconds=611_937), "I", "server.go:171",
                    f'"Starting Kubernetes Scheduler" version="{K8S_VERSION}"'),
                   (t0 + timedelta(seconds=4, microseconds=629_450), "I",
                    "secure_serving.go:211", "Serving securely on 127.0.0.1:10259")]
    for comp, lines in (("kube-controller-manager", cm_start + cm),
                        ("kube-scheduler", sched_start + sched)):
        if f"{comp}-minikube" in pods:
            ctx.logs[("kube-system", f"{comp}-minikube")] = [(comp, L.join(L.klog_lines(lines)))]
    ctx.logs[("kube-system", "etcd-minikube")] = [("etcd", L.join(L.etcd_log(
        ctx.rng, ctx.now - timedelta(minutes=58), ctx.now,
        int(ctx.rv.at(ctx.now - timedelta(minutes=1))))))]
    api = [(t0 + timedelta(seconds=2, microseconds=504_227), "I", "options.go:249",
            "external host was not specified, using 192.168.49.2"),
           (t0 + timedelta(seconds=2, microseconds=517_613), "I", "server.go:160",
            f'"Version info" version="{K8S_VERSION}"'),
           (t0 + timedelta(seconds=4, microseconds=93_774), "I", "secure_serving.go:211",
            "Serving securely on [::]:8443")]
    for svc in ctx.objects.get((app_ns, "services"), []):
        created = _utc(svc["metadata"]["creationTimestamp"])
        ip = svc["spec"]["clusterIP"]
        if created >= since and ip != "None":
            api.append((created + timedelta(microseconds=ctx.rng.randrange(1000, 90_000)), "I",
                        "alloc.go:328", f'"allocated clusterIPs" service="{app_ns}/'
                        f'{svc["metadata"]["name"]}" clusterIPs={{"IPv4":"{ip}"}}'))
    ctx.logs[("kube-system", "kube-apiserver-minikube")] = [
        ("kube-apiserver", L.join(L.klog_lines(api)))]
    clients = [p["status"]["podIP"] for p in ctx.objects.get((app_ns, "pods"), [])
               if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
    dns = next((n for n in pods if n.startswith("coredns-")), None)
    if dns and clients:
        names = [f"{n}.{app_ns}.svc.cluster.local." for n in (
            "todo-postgres", "todo-redis", "todo-redis-headless", "todo-backend")]
        ctx.logs[("kube-system", dns)] = [("coredns", L.join(L.coredns_log(
            ctx.rng, ctx.now - timedelta(minutes=50), ctx.now, clients,
            [*names, "api.openai.com.", "smtp-relay.mail.svc.example.net."])))]


def _utc(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def node_images(ctx: Ctx) -> None:
    """status.images: what the pods on each node pulled, biggest first, at most 50.

    Sizes of the well-known images are fixed (redis's matches its pull event);
    the application's are drawn once per image.
    """
    per_node: dict[str, set[str]] = {n: {f"{REG}/pause:3.10"} for n in ctx.nodes}
    for (_, stem), pods in ctx.objects.items():
        if stem != "pods":
            continue
        for pod in pods:
            node_name = pod["spec"].get("nodeName")
            for cs in pod["status"].get("containerStatuses", []):
                if node_name and cs.get("imageID"):
                    per_node[node_name].add(cs["image"])
    sizes = dict(IMAGE_SIZES)
    for n in ctx.objects[("", "nodes")]:
        images = []
        for img in sorted(per_node[n["metadata"]["name"]]):
            if img not in sizes:
                sizes[img] = ctx.rng.randrange(20_000_000, 450_000_000)
            digest = ctx.image_id(img).removeprefix("docker-pullable://")
            images.append({"names": [digest, img], "sizeBytes": sizes[img]})
        n["status"]["images"] = sorted(images, key=lambda i: -i["sizeBytes"])[:50]
