"""Pod Security Standards, restricted level: current pod hardening practice, on
top of every baseline control (pss_baseline.py holds those and the rules both
levels follow).

As in the Pod Security admission controller:
- runAsNonRoot and seccomp may be set on the pod for all containers, but a
  forbidden pod-level value fails the pod whatever the containers set;
- pods declaring `spec.os.name: windows` skip the Linux-only controls
  (privilege escalation, seccomp, capabilities), since v1.25;
- Volume Types re-checks hostPath too (admission's restricted check replaces
  the baseline one), so a hostPath volume fails both levels; a volume with no
  source passes, as the API defaults it to an emptyDir before admission.
"""

from __future__ import annotations

from typing import Any

from aiops.patches import Path
from aiops.security.check import Refs, Violation
from aiops.security.checks.pss_baseline import (
    PROFILE_TYPES_ALLOWED,
    as_dict,
    as_list,
    is_uid_zero,
    is_windows,
    listed,
    pod_sc,
    seccomp_type,
    sources,
    violation,
    who,
)
from aiops.security.fixes import REMOVE
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, Container, Workload

FAMILY = "pss-restricted"
LEVEL = "restricted"

VOLUME_TYPES_ALLOWED = frozenset(("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                  "persistentVolumeClaim", "projected", "secret"))
ALL = "ALL"
NET_BIND_SERVICE = "NET_BIND_SERVICE"


# -- Volume Types ----------------------------------------------------------------
@check("pss-volume-types", family=FAMILY, severity="warning", category="security",
       target="workload", title="Volume type outside the restricted set",
       rationale="Inline volume sources such as hostPath, nfs, iscsi or gitRepo reach "
                 "storage or hosts directly, around the PersistentVolume layer and its "
                 "access control.",
       refs=Refs(pss=LEVEL, pss_control="Volume Types"))
def volume_types(w: Workload, ctx: AuditContext) -> Violation | None:
    bad = []
    for i, v in enumerate(as_list(w.spec.get("volumes"))):
        if not isinstance(v, dict):
            continue
        kinds = [k for k in v if k != "name" and v[k] is not None]
        # no source at all: the API defaults the volume to an emptyDir before admission
        if not kinds or any(k in VOLUME_TYPES_ALLOWED for k in kinds):
            continue
        bad.append(f"{v.get('name') or '#' + str(i)} ({kinds[0]})")
    if not bad:
        return None
    return Violation(f"the pod uses volume types the restricted level forbids: {listed(bad)}",
                     fix_text="mount the storage through a PersistentVolumeClaim (or a CSI "
                              "volume); configMap, secret, emptyDir, projected, downwardAPI "
                              "and ephemeral volumes are allowed as they are")


# -- Privilege Escalation --------------------------------------------------------
@check("pss-privilege-escalation", family=FAMILY, severity="warning", category="security",
       target="container", title="Privilege escalation not disabled",
       rationale="Unless allowPrivilegeEscalation is false (no_new_privs), a setuid binary "
                 "in the image can gain privileges its parent process does not have.",
       refs=Refs(pss=LEVEL, pss_control="Privilege Escalation", checkov=("CKV_K8S_20",),
                 polaris="privilegeEscalationAllowed"))
def privilege_escalation(c: Container, ctx: AuditContext) -> Violation | None:
    value = c.security_context.get("allowPrivilegeEscalation")
    if value is False or is_windows(c.workload):
        return None
    state = "allows privilege escalation (allowPrivilegeEscalation: true)" if value is True \
        else "does not set allowPrivilegeEscalation: false (it defaults to true)"
    message = f"{who(c)} {state}"
    add = [str(x) for x in as_list(as_dict(c.security_context.get("capabilities")).get("add"))]
    if {"SYS_ADMIN", "CAP_SYS_ADMIN"} & set(add):
        # the API rejects allowPrivilegeEscalation false next to CAP_SYS_ADMIN
        return violation(c, message, fix_text="remove SYS_ADMIN from capabilities.add, then "
                                              "set allowPrivilegeEscalation: false")
    changes: dict[Path, Any] = {c.path("securityContext", "allowPrivilegeEscalation"): False}
    description = f"set allowPrivilegeEscalation false on {who(c)}"
    if c.security_context.get("privileged") is True:
        # ... and next to privileged: true
        changes[c.path("securityContext", "privileged")] = False
        description += " (and privileged false: the API rejects the pair otherwise)"
    return violation(c, message, changes, description)


# -- Running as Non-root ---------------------------------------------------------
@check("pss-run-as-non-root", family=FAMILY, severity="warning", category="security",
       target="container", title="Not required to run as non-root",
       rationale="Without runAsNonRoot: true nothing stops an image that runs as root "
                 "from starting, and root in a container is one kernel bug from root on "
                 "the node.",
       refs=Refs(pss=LEVEL, pss_control="Running as Non-root", checkov=("CKV_K8S_23",),
                 polaris="runAsRootAllowed"))
def run_as_non_root(c: Container, ctx: AuditContext) -> Violation | None:
    w = c.workload
    own, pod = c.security_context.get("runAsNonRoot"), pod_sc(c).get("runAsNonRoot")
    own_bad, pod_bad = own is False, pod is False
    unset = own is None and pod is not True
    if not (own_bad or pod_bad or unset):
        return None
    if own_bad or pod_bad:
        message = f"{who(c)} may run as root (runAsNonRoot: false {sources(own_bad, pod_bad)})"
    else:
        message = f"{who(c)} may run as root (neither it nor the pod sets runAsNonRoot: true)"
    user = c.security_context.get("runAsUser")
    if user is None:
        user = pod_sc(c).get("runAsUser")
    if is_uid_zero(user):
        return violation(c, message, fix_text="it runs as UID 0 (runAsUser: 0): choose a "
                                              "non-root UID first, then set runAsNonRoot: true")
    changes: dict[Path, Any] = {}
    if own is not True and not (pod_bad and own is None):
        changes[c.path("securityContext", "runAsNonRoot")] = True
    if pod_bad:
        changes[w.path("securityContext", "runAsNonRoot")] = True
    return violation(c, message, changes, f"require {who(c)} to run as non-root",
                     "the kubelet then refuses to start the container when its image runs "
                     "as root or as a user name rather than a UID: give the image a numeric "
                     "non-root USER or set runAsUser")


# -- Running as Non-root user ----------------------------------------------------
@check("pss-run-as-user", family=FAMILY, severity="danger", category="security",
       target="container", title="Runs as UID 0",
       rationale="runAsUser: 0 runs the container as root explicitly, whatever the image "
                 "declares.",
       refs=Refs(pss=LEVEL, pss_control="Running as Non-root user", checkov=("CKV_K8S_23",)))
def run_as_user(c: Container, ctx: AuditContext) -> Violation | None:
    own = is_uid_zero(c.security_context.get("runAsUser"))
    pod = is_uid_zero(pod_sc(c).get("runAsUser"))
    if not (own or pod):
        return None
    return violation(c, f"{who(c)} is set to run as root (runAsUser: 0 {sources(own, pod)})",
                     fix_text="set runAsUser to a non-zero UID the image works with (and "
                              "runAsNonRoot: true); give files the process writes to that "
                              "UID, or use fsGroup for volumes")


# -- Seccomp ---------------------------------------------------------------------
@check("pss-seccomp-restricted", family=FAMILY, severity="warning", category="security",
       target="container", title="Seccomp profile not set",
       rationale="Without an explicit RuntimeDefault or Localhost profile, most runtimes "
                 "run the container with no syscall filter at all.",
       refs=Refs(pss=LEVEL, pss_control="Seccomp", checkov=("CKV_K8S_31",),
                 kube_score="container-seccomp-profile"))
def seccomp_restricted(c: Container, ctx: AuditContext) -> Violation | None:
    w = c.workload
    if is_windows(w):
        return None
    (own_set, own), (pod_set, pod) = seccomp_type(c.security_context), seccomp_type(pod_sc(c))
    own_bad = own_set and own not in PROFILE_TYPES_ALLOWED
    pod_bad = pod_set and pod not in PROFILE_TYPES_ALLOWED
    unset = not own_set and not (pod_set and not pod_bad)
    if not (own_bad or pod_bad or unset):
        return None
    profile = {"type": "RuntimeDefault"}
    changes: dict[Path, Any] = {}
    if own_bad or (unset and not pod_bad):
        changes[c.path("securityContext", "seccompProfile")] = profile
    if pod_bad:
        changes[w.path("securityContext", "seccompProfile")] = profile
    if own_bad or pod_bad:
        value = own if own_bad else pod
        message = (f"{who(c)} runs with seccomp profile {value or '(no type)'} "
                   f"({sources(own_bad, pod_bad)})")
    else:
        message = f"{who(c)} has no seccomp profile (neither it nor the pod sets one)"
    return violation(c, message, changes, f"use the RuntimeDefault seccomp profile for {who(c)}",
                     "RuntimeDefault is the runtime's default filter; a Localhost profile "
                     "written for the application is stricter still")


# -- Capabilities ----------------------------------------------------------------
@check("pss-capabilities-restricted", family=FAMILY, severity="warning", category="security",
       target="container", title="Capabilities not dropped",
       rationale="The runtime's default set still grants capabilities such as NET_RAW "
                 "(packet spoofing) and CHOWN; dropping ALL leaves only what is added back.",
       refs=Refs(pss=LEVEL, pss_control="Capabilities", checkov=("CKV_K8S_37", "CKV_K8S_28"),
                 polaris="insecureCapabilities"))
def capabilities_restricted(c: Container, ctx: AuditContext) -> Violation | None:
    if is_windows(c.workload):
        return None
    caps = as_dict(c.security_context.get("capabilities"))
    drop = [str(x) for x in as_list(caps.get("drop"))]
    add = [str(x) for x in as_list(caps.get("add"))]
    missing_all = ALL not in drop
    extra = [x for x in add if x != NET_BIND_SERVICE]
    if not (missing_all or extra):
        return None
    found, changes = [], {}
    if missing_all:
        lower = " (the list has 'all': Pod Security admission only accepts ALL)" \
            if any(x.upper() == ALL for x in drop) else ""
        found.append(f"does not drop ALL{lower}")
        changes[c.path("securityContext", "capabilities", "drop")] = [ALL]
    if extra:
        found.append(f"adds {listed(extra)}")
        kept = [NET_BIND_SERVICE] if NET_BIND_SERVICE in add else []
        changes[c.path("securityContext", "capabilities", "add")] = kept if kept else REMOVE
    return violation(c, f"{who(c)} {' and '.join(found)} (restricted allows only "
                        f"drop: [ALL] and add: [{NET_BIND_SERVICE}])",
                     changes, f"drop ALL capabilities of {who(c)}"
                              + (f" and stop adding {listed(extra)}" if extra else ""),
                     "a process that binds a port below 1024 needs NET_BIND_SERVICE added "
                     "back; other needs should be designed out")
