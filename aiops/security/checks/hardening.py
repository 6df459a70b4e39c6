"""Workload hardening: what a compromised container can do next. A writable root
filesystem lets it drop tools, a mounted service-account token lets it talk to
the API server, and a credential in plain env or a ConfigMap is readable by
anyone who can read the spec (it never needed the container at all)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiops.patches import pointer
from aiops.redact import credential_in_text, credential_reason
from aiops.security.check import Refs, Violation
from aiops.security.fixes import container_patch, pod_patch
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, Container, Workload, annotations, meta

FAMILY = "hardening"
MIRROR = "kubernetes.io/config.mirror"


@check("read-only-root-filesystem", family=FAMILY, severity="warning", category="security",
       target="container", title="Root filesystem is writable",
       rationale="A writable root filesystem lets an intruder drop binaries and alter the "
                 "image's files; read-only with emptyDir mounts where the app must write "
                 "closes that.",
       refs=Refs(checkov=("CKV_K8S_22",), polaris="notReadOnlyRootFilesystem",
                 kube_score="container-security-context-readonlyrootfilesystem"))
def read_only_root(c: Container, ctx: AuditContext) -> Violation | None:
    # ephemeral debug containers cannot be patched and exist to poke around
    if c.section == "ephemeralContainers":
        return None
    value = c.security_context.get("readOnlyRootFilesystem")
    if value is True:
        return None
    what = "false" if value is False else "not set"
    action = container_patch(c, {("securityContext", "readOnlyRootFilesystem"): True},
                             description=f"set readOnlyRootFilesystem true on container {c.name}")
    return Violation(
        f"container {c.name} has readOnlyRootFilesystem {what}",
        action,
        "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir on every "
        "path the app writes to (e.g. /tmp), or it will fail on its first write")


def _static(w: Workload) -> bool:
    """A kubelet static pod's mirror: it cannot use a ServiceAccount at all."""
    return w.kind == "Pod" and MIRROR in annotations(w.obj)


def _service_account(w: Workload) -> str:
    name = w.spec.get("serviceAccountName") or w.spec.get("serviceAccount")
    return name if isinstance(name, str) and name else "default"


@check("automount-service-account-token", family=FAMILY, severity="warning",
       category="security", target="workload", title="Service account token is mounted",
       rationale="Every container gets an API token it usually never uses; an intruder "
                 "uses it to read or change the cluster with the pod's RBAC rights.",
       refs=Refs(checkov=("CKV_K8S_38",), polaris="automountServiceAccountToken"))
def automount_token(w: Workload, ctx: AuditContext) -> Violation | None:
    if _static(w):
        return None
    pod = w.spec.get("automountServiceAccountToken")
    if pod is False:
        return None
    sa_name = _service_account(w)
    sa = ctx.get("ServiceAccount", w.namespace, sa_name)
    # the pod's own setting wins; unset, the ServiceAccount's applies (default true)
    if pod is None and sa is not None and sa.get("automountServiceAccountToken") is False:
        return None
    why = "true on the pod" if pod is True else "not disabled on the pod nor the account"
    action = pod_patch(w, {("automountServiceAccountToken",): False},
                       description=f"set automountServiceAccountToken false on {w.kind} {w.name}")
    return Violation(
        f"{w.kind} {w.name} mounts the API token of ServiceAccount {sa_name} "
        f"(automountServiceAccountToken {why})",
        action,
        "set automountServiceAccountToken: false on the pod spec (or on the ServiceAccount); "
        "if the app calls the API server, keep the token and exempt the workload instead")


@check("default-service-account", family=FAMILY, severity="warning", category="security",
       target="workload", title="Pods run as the default ServiceAccount",
       rationale="Every pod in the namespace shares the default ServiceAccount, so a role "
                 "granted to one of them is granted to all; a dedicated account keeps "
                 "rights per workload (CIS 5.1.5).")
def default_service_account(w: Workload, ctx: AuditContext) -> Violation | None:
    if _static(w) or _service_account(w) != "default":
        return None
    return Violation(
        f"{w.kind} {w.name} runs as the default ServiceAccount of namespace {w.namespace}",
        fix_text=f"create a ServiceAccount for {w.name} (`kubectl create serviceaccount "
                 f"{w.name} -n {w.namespace}`), set spec.serviceAccountName to it, and bind "
                 "to it only the roles this workload needs")


def _literal_env(c: Container) -> Iterator[tuple[int, str, str]]:
    env = c.spec.get("env")
    for i, e in enumerate(env if isinstance(env, list) else []):
        if isinstance(e, dict) and isinstance(e.get("value"), str) and e.get("valueFrom") is None:
            yield i, str(e.get("name") or f"#{i}"), e["value"]


@check("secret-in-env", family=FAMILY, severity="danger", category="security",
       target="container", title="Credential in a literal environment variable",
       rationale="A literal env value is stored in the object, shown by `kubectl get -o "
                 "yaml` and `describe` to anyone who can read the workload, and kept in "
                 "every ReplicaSet revision; a Secret has its own RBAC and encryption at rest.",
       refs=Refs(polaris="sensitiveContainerEnvVar"))
def secret_in_env(c: Container, ctx: AuditContext) -> Iterator[Violation]:
    for _i, name, value in _literal_env(c):
        why = credential_reason(name, value)
        if why is None:
            continue
        secret = f"{c.workload.name}-env"
        # no patch: its inverse would have to carry the credential itself
        yield Violation(
            f"container {c.name} sets env {name} to a literal value ({why})",
            fix_text=f"move the value into a Secret (`kubectl create secret generic {secret} "
                     f"-n {c.workload.namespace} --from-literal={name}=<value>`), replace the "
                     f"env entry by valueFrom.secretKeyRef {{name: {secret}, key: {name}}}, "
                     "then rotate the credential: it has been readable in the spec")


@check("secret-as-env", family=FAMILY, severity="info", category="security",
       target="container", title="Secret exposed as environment variables",
       rationale="Env vars leak into child processes, crash dumps and debug endpoints and "
                 "cannot be rotated without a restart; a Secret mounted as a file can.",
       refs=Refs(checkov=("CKV_K8S_35",)))
def secret_as_env(c: Container, ctx: AuditContext) -> Iterator[Violation]:
    env = c.spec.get("env")
    for e in env if isinstance(env, list) else []:
        ref = ((e.get("valueFrom") or {}).get("secretKeyRef") or {}) if isinstance(e, dict) else {}
        if isinstance(ref, dict) and ref.get("name"):
            yield Violation(
                f"container {c.name} reads Secret {ref.get('name')} key {ref.get('key')} "
                f"into env {e.get('name')}",
                fix_text="mount the Secret as a volume and have the app read the file "
                         "(e.g. via a *_FILE variable)")
    env_from = c.spec.get("envFrom")
    for e in env_from if isinstance(env_from, list) else []:
        ref = (e.get("secretRef") or {}) if isinstance(e, dict) else {}
        if isinstance(ref, dict) and ref.get("name"):
            yield Violation(
                f"container {c.name} loads every key of Secret {ref.get('name')} into its env",
                fix_text="mount the Secret as a volume and have the app read the files")


@check("secret-in-configmap", family=FAMILY, severity="danger", category="security",
       target="object", kinds=("ConfigMap",), title="Credential in a ConfigMap",
       rationale="ConfigMaps are readable by every role that can view a namespace (the "
                 "built-in view role included) and are never encrypted at rest; credentials "
                 "belong in Secrets.")
def secret_in_configmap(cm: dict[str, Any], ctx: AuditContext) -> Iterator[Violation]:
    name = meta(cm).get("name")
    data = cm.get("data")
    for key, value in (data.items() if isinstance(data, dict) else []):
        if not isinstance(value, str):
            continue
        why = credential_in_text(value) if "\n" in value.strip() else None
        why = why or credential_reason(str(key), value)
        if why is None:
            continue
        yield Violation(
            f"ConfigMap {name} key {key} holds a credential ({why})",
            fix_text=f"move key {key} into a Secret, point the workloads at it (secretKeyRef "
                     f"or a secret volume), delete the key from ConfigMap {name} (`kubectl "
                     f"patch configmap {name} --type=json -p "
                     f"'[{{\"op\":\"remove\",\"path\":\"{pointer('data', str(key))}\"}}]'`) "
                     "and rotate the credential")
    binary = cm.get("binaryData")
    for key in (binary if isinstance(binary, dict) else {}):
        if credential_reason(str(key), "binary") is not None:
            yield Violation(f"ConfigMap {name} binaryData key {key} is named like a credential",
                            fix_text=f"move binaryData key {key} into a Secret")
