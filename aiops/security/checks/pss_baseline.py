"""Pod Security Standards, baseline level: the controls that stop known privilege
escalations (https://kubernetes.io/docs/concepts/security/pod-security-standards/).

One check per control of the PSS page (Host Namespaces split by namespace, so
a CNI can be exempted for hostNetwork alone), each evaluated the way the Pod
Security admission controller evaluates it (k8s.io/pod-security-admission,
policy "latest"). The level `score.pss_levels` derives from these results is
then the level `pod-security.kubernetes.io/enforce` would accept today:

- every container counts: init, regular and ephemeral ones;
- a field that exists at both pod and container level fails when either value
  is forbidden: admission rejects a forbidden pod-level value even when every
  container overrides it, so such a value fails each container of the pod;
- values compare exactly as admission compares them (capability names are
  case-sensitive and carry no CAP_ prefix).

Controls that hold per container are container checks, so results and
exemptions can name the container; the pod-only controls (host namespaces,
hostPath volumes, sysctls) are workload checks.

Not modelled: the cluster-wide opt-in (RelaxPolicyForUserNamespacePods) that
relaxes a few controls for pods with `hostUsers: false`; admission applies it
only when the administrator turns it on.
"""

from __future__ import annotations

from typing import Any

from aiops.diagnose.finding import Action
from aiops.patches import Path
from aiops.security.check import Refs, Violation
from aiops.security.fixes import REMOVE, patch, pod_patch
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, Container, Obj, Workload

FAMILY = "pss-baseline"
LEVEL = "baseline"

# the PSS page's allowed values, "latest" policy
CAPABILITIES_ALLOWED = frozenset((
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"))
SELINUX_TYPES_ALLOWED = frozenset(("", "container_t", "container_init_t", "container_kvm_t",
                                   "container_engine_t"))  # container_engine_t: v1.31+
SYSCTLS_ALLOWED = frozenset((
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",  # v1.27+
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",  # v1.29+
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"))  # v1.29+
PROFILE_TYPES_ALLOWED = frozenset(("RuntimeDefault", "Localhost"))  # seccomp and AppArmor
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HOOKS = ("postStart", "preStop")

EPHEMERAL_FIX = ("an ephemeral container cannot be changed once added: attach a new one "
                 "with a compliant profile (kubectl debug --profile=baseline or restricted)")


# -- shared with pss_restricted ------------------------------------------------
def as_dict(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def who(c: Container) -> str:
    """'container web', 'init container migrate' or 'ephemeral container debugger'."""
    kind = {"initContainers": "init container",
            "ephemeralContainers": "ephemeral container"}.get(c.section, "container")
    return f"{kind} {c.name}"


def pod_sc(c: Container) -> Obj:
    return c.workload.pod_security_context


def is_windows(w: Workload) -> bool:
    """A pod declaring spec.os.name windows: the Linux-only restricted controls skip it."""
    return as_dict(w.spec.get("os")).get("name") == "windows"


def is_uid_zero(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v == 0


def listed(items: list[str]) -> str:
    return ", ".join(items)


def container_action(c: Container, changes: dict[Path, Any],
                     description: str) -> Action | None:
    """One Action over absolute paths of the workload object; None for an ephemeral
    container (immutable once added) or when there is nothing to change."""
    if c.section == "ephemeralContainers" or not changes:
        return None
    return patch(c.workload.obj, changes, description=description)


def violation(c: Container, message: str, changes: dict[Path, Any] | None = None,
              description: str = "", fix_text: str = "") -> Violation:
    """A container's failure with its fix; ephemeral containers get the words only."""
    action = container_action(c, changes or {}, description) if changes else None
    if c.section == "ephemeralContainers":
        fix_text = f"{fix_text}; {EPHEMERAL_FIX}" if fix_text else EPHEMERAL_FIX
    return Violation(message, action, fix_text)


def sources(own_bad: bool, pod_bad: bool) -> str:
    """Where a forbidden value comes from, for messages."""
    if own_bad and pod_bad:
        return "set on the container and on the pod"
    return "set on the container" if own_bad else "set on the pod"


# -- HostProcess ----------------------------------------------------------------
@check("pss-host-process", family=FAMILY, severity="danger", category="security",
       target="container", title="Windows HostProcess container",
       rationale="A HostProcess container runs directly on the Windows node with the "
                 "node's privileges: no container isolation at all.",
       refs=Refs(pss=LEVEL, pss_control="HostProcess"))
def host_process(c: Container, ctx: AuditContext) -> Violation | None:
    own = as_dict(c.security_context.get("windowsOptions")).get("hostProcess") is True
    pod = as_dict(pod_sc(c).get("windowsOptions")).get("hostProcess") is True
    if not (own or pod):
        return None
    return violation(
        c, f"{who(c)} runs as a Windows HostProcess container "
           f"(windowsOptions.hostProcess: true {sources(own, pod)})",
        fix_text="HostProcess containers administer the node: keep them in a namespace "
                 "labelled pod-security.kubernetes.io/enforce=privileged, or exempt this "
                 "workload with the reason")


# -- Host Namespaces -------------------------------------------------------------
def _host_namespace(w: Workload, field: str, what: str, consequence: str) -> Violation | None:
    if w.spec.get(field) is not True:
        return None
    return Violation(
        f"the pod spec sets {field}: true, so its containers share the node's {what}",
        pod_patch(w, {(field,): REMOVE},
                  description=f"remove {field} from {w.kind} {w.name}"),
        fix_text=f"without it the pods {consequence}; node agents that need it belong in a "
                 "privileged namespace or need an exemption")


@check("pss-host-network", family=FAMILY, severity="danger", category="security",
       target="workload", title="Pod shares the node's network namespace",
       rationale="With hostNetwork a pod sees every interface of the node, can sniff its "
                 "traffic and reach services bound to localhost, and bypasses "
                 "NetworkPolicies.",
       refs=Refs(pss=LEVEL, pss_control="Host Namespaces", checkov=("CKV_K8S_19",),
                 polaris="hostNetworkSet"))
def host_network(w: Workload, ctx: AuditContext) -> Violation | None:
    return _host_namespace(w, "hostNetwork", "network namespace",
                           "get their own IP and are reached through Services")


@check("pss-host-pid", family=FAMILY, severity="danger", category="security",
       target="workload", title="Pod shares the node's PID namespace",
       rationale="With hostPID a pod sees and can signal every process of the node, and "
                 "read their environment and memory when it runs as root.",
       refs=Refs(pss=LEVEL, pss_control="Host Namespaces", checkov=("CKV_K8S_17",),
                 polaris="hostPIDSet"))
def host_pid(w: Workload, ctx: AuditContext) -> Violation | None:
    return _host_namespace(w, "hostPID", "process (PID) namespace",
                           "see only their own processes")


@check("pss-host-ipc", family=FAMILY, severity="danger", category="security",
       target="workload", title="Pod shares the node's IPC namespace",
       rationale="With hostIPC a pod can read and write the shared memory of every "
                 "process on the node.",
       refs=Refs(pss=LEVEL, pss_control="Host Namespaces", checkov=("CKV_K8S_18",),
                 polaris="hostIPCSet"))
def host_ipc(w: Workload, ctx: AuditContext) -> Violation | None:
    return _host_namespace(w, "hostIPC", "IPC namespace",
                           "share memory only among their own containers")


# -- Privileged Containers -------------------------------------------------------
@check("pss-privileged", family=FAMILY, severity="danger", category="security",
       target="container", title="Privileged container",
       rationale="A privileged container has every capability and every device of the "
                 "node: escaping to the host is a mount away.",
       refs=Refs(pss=LEVEL, pss_control="Privileged Containers", checkov=("CKV_K8S_16",),
                 polaris="runAsPrivileged", kube_score="container-security-context-privileged"))
def privileged(c: Container, ctx: AuditContext) -> Violation | None:
    if c.security_context.get("privileged") is not True:
        return None
    return violation(c, f"{who(c)} runs privileged (securityContext.privileged: true)",
                     {c.path("securityContext", "privileged"): False},
                     f"set privileged false on {who(c)}",
                     "add only the capabilities it needs instead (capabilities.add)")


# -- Capabilities ----------------------------------------------------------------
@check("pss-capabilities-baseline", family=FAMILY, severity="danger", category="security",
       target="container", title="Capability beyond the default set added",
       rationale="Capabilities outside the container runtime's default set (SYS_ADMIN, "
                 "NET_ADMIN, SYS_PTRACE, NET_RAW, ...) are the usual steps of a container "
                 "escape or of attacks on the node's network.",
       refs=Refs(pss=LEVEL, pss_control="Capabilities", checkov=("CKV_K8S_25", "CKV_K8S_39"),
                 polaris="dangerousCapabilities"))
def capabilities_baseline(c: Container, ctx: AuditContext) -> Violation | None:
    add = [str(x) for x in as_list(as_dict(c.security_context.get("capabilities")).get("add"))]
    bad = [x for x in add if x not in CAPABILITIES_ALLOWED]
    if not bad:
        return None
    # CAP_CHOWN means CHOWN to the runtime, but admission compares the exact name
    kept: list[str] = []
    for x in add:
        name = x if x in CAPABILITIES_ALLOWED else (
            x[4:] if x.startswith("CAP_") and x[4:] in CAPABILITIES_ALLOWED else None)
        if name and name not in kept:
            kept.append(name)
    prefixed = [x for x in bad if x.startswith("CAP_") and x[4:] in CAPABILITIES_ALLOWED]
    hint = f" ({listed(prefixed)}: write the name without CAP_)" if prefixed else ""
    path = c.path("securityContext", "capabilities", "add")
    return violation(
        c, f"{who(c)} adds capabilities outside the baseline set: {listed(bad)}{hint}",
        {path: kept if kept else REMOVE},
        f"drop {listed(bad)} from capabilities.add of {who(c)}",
        "check what the process needs the capability for; a node agent that needs it "
        "belongs in a privileged namespace")


# -- HostPath Volumes ------------------------------------------------------------
@check("pss-host-path", family=FAMILY, severity="danger", category="security",
       target="workload", title="hostPath volume",
       rationale="A hostPath volume exposes the node's filesystem: the container runtime "
                 "socket, kubelet credentials, other pods' data.",
       refs=Refs(pss=LEVEL, pss_control="HostPath Volumes"))
def host_path(w: Workload, ctx: AuditContext) -> Violation | None:
    bad = [f"{v.get('name') or '#' + str(i)} ({as_dict(v['hostPath']).get('path') or '?'})"
           for i, v in enumerate(as_list(w.spec.get("volumes")))
           if isinstance(v, dict) and v.get("hostPath") is not None]
    if not bad:
        return None
    return Violation(f"the pod mounts the node's filesystem through hostPath volumes: "
                     f"{listed(bad)}",
                     fix_text="use a PersistentVolumeClaim, emptyDir, configMap, secret or CSI "
                              "volume instead; node agents that must read the host belong in "
                              "a privileged namespace or need an exemption")


# -- Host Ports ------------------------------------------------------------------
@check("pss-host-ports", family=FAMILY, severity="warning", category="security",
       target="container", title="Container binds a host port",
       rationale="A hostPort opens the port on the node's own address, around Services and "
                 "NetworkPolicies, and pins the pod to nodes where the port is free.",
       refs=Refs(pss=LEVEL, pss_control="Host Ports", checkov=("CKV_K8S_26",),
                 polaris="hostPortSet"))
def host_ports(c: Container, ctx: AuditContext) -> Violation | None:
    bad = [(i, p) for i, p in enumerate(as_list(c.spec.get("ports")))
           if isinstance(p, dict) and isinstance(p.get("hostPort"), int)
           and not isinstance(p.get("hostPort"), bool) and p["hostPort"] != 0]
    if not bad:
        return None
    shown = listed([f"{p['hostPort']} (container port {p.get('containerPort', '?')})"
                    for _, p in bad])
    return violation(c, f"{who(c)} binds host ports {shown}",
                     {c.path("ports", i, "hostPort"): REMOVE for i, _ in bad},
                     f"remove the hostPort of {who(c)}",
                     "reach the port through a Service (NodePort or LoadBalancer when it must "
                     "be reachable from outside the cluster)")


# -- Host Probes / Lifecycle Hooks -----------------------------------------------
@check("pss-host-probes", family=FAMILY, severity="warning", category="security",
       target="container", title="Probe or lifecycle hook targets another host",
       rationale="The kubelet runs probes and hooks from the node: a host field makes the "
                 "node connect to any address the pod spec names (v1.34+ policy).",
       refs=Refs(pss=LEVEL, pss_control="Host Probes / Lifecycle Hooks"))
def host_probes(c: Container, ctx: AuditContext) -> Violation | None:
    bad: list[tuple[Path, str, str]] = []
    handlers = [((p,), as_dict(c.spec.get(p))) for p in PROBES]
    lifecycle = as_dict(c.spec.get("lifecycle"))
    handlers += [(("lifecycle", h), as_dict(lifecycle.get(h))) for h in HOOKS]
    for where, handler in handlers:
        for kind in ("httpGet", "tcpSocket"):
            host = as_dict(handler.get(kind)).get("host")
            if isinstance(host, str) and host:
                bad.append(((*where, kind, "host"), ".".join(map(str, (*where, kind))), host))
    if not bad:
        return None
    shown = listed([f"{field}.host {host}" for _, field, host in bad])
    message = f"{who(c)} has probes or hooks aimed at another host: {shown}"
    if c.workload.spec.get("hostNetwork") is True:
        # the pod's IP is the node's: without the host the kubelet would probe another
        # address of the same node, where the process may not listen
        return violation(c, message, fix_text="the pod uses the node's network, so the host "
                                              "is the node itself: make the process listen "
                                              "on the pod IP, then remove the host fields")
    return violation(c, message, {c.path(*p): REMOVE for p, _, _ in bad},
                     f"remove the host of the probes and hooks of {who(c)} (they then target "
                     "the pod's own IP)",
                     "to check a dependency, probe an endpoint of the application that "
                     "checks it")


# -- AppArmor --------------------------------------------------------------------
def _apparmor_bad(sc: Obj) -> str | None:
    prof = sc.get("appArmorProfile")
    if not isinstance(prof, dict):
        return None
    t = prof.get("type")
    return None if t in PROFILE_TYPES_ALLOWED else str(t or "(no type)")


def _annotation_ok(value: Any) -> bool:
    return not value or value == "runtime/default" or (
        isinstance(value, str) and value.startswith("localhost/"))


@check("pss-apparmor", family=FAMILY, severity="danger", category="security",
       target="container", title="AppArmor profile disabled or overridden",
       rationale="The runtime's default AppArmor profile blocks writes to /proc and /sys "
                 "and mounts; Unconfined removes that layer.",
       refs=Refs(pss=LEVEL, pss_control="AppArmor"))
def apparmor(c: Container, ctx: AuditContext) -> Violation | None:
    w = c.workload
    own, pod = _apparmor_bad(c.security_context), _apparmor_bad(pod_sc(c))
    ann = as_dict(w.template_meta.get("annotations"))
    names = {x.name for x in w.containers}
    # an annotation names its container; one naming no container still fails the pod
    bad_ann = {k: v for k, v in ann.items() if isinstance(k, str)
               and k.startswith(APPARMOR_ANNOTATION) and not _annotation_ok(v)
               and (k[len(APPARMOR_ANNOTATION):] == c.name
                    or k[len(APPARMOR_ANNOTATION):] not in names)}
    if not (own or pod or bad_ann):
        return None
    found, changes = [], {}
    profile = {"type": "RuntimeDefault"}
    if own:
        found.append(f"appArmorProfile.type {own} on the container")
        changes[c.path("securityContext", "appArmorProfile")] = profile
    if pod:
        found.append(f"appArmorProfile.type {pod} on the pod")
        changes[w.path("securityContext", "appArmorProfile")] = profile
    for k, v in sorted(bad_ann.items()):
        found.append(f"annotation {k}={v}")
        changes[(*w.spec_path[:-1], "metadata", "annotations", k)] = "runtime/default"
    return violation(c, f"{who(c)} runs without the default AppArmor confinement "
                        f"({'; '.join(found)})",
                     changes, f"use the RuntimeDefault AppArmor profile for {who(c)}",
                     "or a Localhost profile written for the application")


# -- SELinux ---------------------------------------------------------------------
def _selinux_bad(sc: Obj) -> list[str]:
    opts = sc.get("seLinuxOptions")
    if not isinstance(opts, dict):
        return []
    out = []
    if (opts.get("type") or "") not in SELINUX_TYPES_ALLOWED:
        out.append(f"type {opts.get('type')}")
    out += [f"{k} {opts[k]}" for k in ("user", "role") if opts.get(k)]
    return out


@check("pss-selinux", family=FAMILY, severity="danger", category="security",
       target="container", title="Custom SELinux type, user or role",
       rationale="A custom SELinux type, user or role can give the container the access "
                 "of a host process (spc_t, unconfined_t).",
       refs=Refs(pss=LEVEL, pss_control="SELinux"))
def selinux(c: Container, ctx: AuditContext) -> Violation | None:
    own, pod = _selinux_bad(c.security_context), _selinux_bad(pod_sc(c))
    if not (own or pod):
        return None
    found = ([f"{x} on the container" for x in own] + [f"{x} on the pod" for x in pod])
    return violation(c, f"{who(c)} sets forbidden seLinuxOptions: {listed(found)}",
                     fix_text="remove seLinuxOptions.user and .role and use type container_t "
                              "(or no type); only the level (MCS categories) is free")


# -- /proc Mount Type ------------------------------------------------------------
@check("pss-proc-mount", family=FAMILY, severity="danger", category="security",
       target="container", title="/proc mounted unmasked",
       rationale="The default /proc mount masks kernel interfaces (/proc/kcore, "
                 "/proc/sysrq-trigger, ...); Unmasked exposes them to the container.",
       refs=Refs(pss=LEVEL, pss_control="/proc Mount Type"))
def proc_mount(c: Container, ctx: AuditContext) -> Violation | None:
    value = c.security_context.get("procMount")
    if value is None or value == "Default":
        return None
    return violation(c, f"{who(c)} mounts /proc with procMount {value}",
                     {c.path("securityContext", "procMount"): "Default"},
                     f"set procMount Default on {who(c)}")


# -- Seccomp ---------------------------------------------------------------------
def seccomp_type(sc: Obj) -> tuple[bool, Any]:
    """(set, type) of a securityContext's seccompProfile."""
    prof = sc.get("seccompProfile")
    return (True, prof.get("type")) if isinstance(prof, dict) else (False, None)


@check("pss-seccomp-baseline", family=FAMILY, severity="danger", category="security",
       target="container", title="Seccomp profile Unconfined",
       rationale="Unconfined turns off syscall filtering, including the runtime default's "
                 "blocks on unshare, mount, keyctl and other escape primitives.",
       refs=Refs(pss=LEVEL, pss_control="Seccomp"))
def seccomp_baseline(c: Container, ctx: AuditContext) -> Violation | None:
    w = c.workload
    (own_set, own), (pod_set, pod) = seccomp_type(c.security_context), seccomp_type(pod_sc(c))
    own_bad = own_set and own not in PROFILE_TYPES_ALLOWED
    pod_bad = pod_set and pod not in PROFILE_TYPES_ALLOWED
    if not (own_bad or pod_bad):
        return None
    value = own if own_bad else pod
    changes: dict[Path, Any] = {}
    if own_bad:
        changes[c.path("securityContext", "seccompProfile")] = {"type": "RuntimeDefault"}
    if pod_bad:
        changes[w.path("securityContext", "seccompProfile")] = {"type": "RuntimeDefault"}
    return violation(c, f"{who(c)} runs with seccomp profile {value or '(no type)'} "
                        f"({sources(own_bad, pod_bad)})",
                     changes, f"use the RuntimeDefault seccomp profile for {who(c)}",
                     "or a Localhost profile written for the application")


# -- Sysctls ---------------------------------------------------------------------
@check("pss-sysctls", family=FAMILY, severity="danger", category="security",
       target="workload", title="Unsafe sysctl",
       rationale="Sysctls outside the safe, namespaced set change the kernel of the whole "
                 "node, for every pod on it.",
       refs=Refs(pss=LEVEL, pss_control="Sysctls"))
def sysctls(w: Workload, ctx: AuditContext) -> Violation | None:
    items = [s for s in as_list(w.pod_security_context.get("sysctls")) if isinstance(s, dict)]
    bad = [str(s.get("name")) for s in items if s.get("name") not in SYSCTLS_ALLOWED]
    if not bad:
        return None
    kept = [s for s in items if s.get("name") in SYSCTLS_ALLOWED]
    return Violation(
        f"the pod sets sysctls outside the safe set: {listed(bad)}",
        pod_patch(w, {("securityContext", "sysctls"): kept if kept else REMOVE},
                  description=f"remove the sysctls {listed(bad)} from {w.kind} {w.name}"),
        fix_text="tune the node instead (a node pool with that kernel setting), and check "
                 "the application runs without it")
