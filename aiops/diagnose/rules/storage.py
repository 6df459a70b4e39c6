"""Storage rules: claims that never bind.

A PersistentVolumeClaim stays Pending when its StorageClass does not exist,
when none is named and the cluster has no default, when its provisioner
fails or never answers, or (by design) while a WaitForFirstConsumer class
waits for a pod to be placed. Each case needs a different fix, so the rule
tells them apart from the claim, the StorageClasses and the claim's events.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aiops.diagnose.actions import manual, patch_field
from aiops.diagnose.context import (
    Context,
    Obj,
    event_evidence,
    event_first_seen,
    md,
    parse_time,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import rule

FAMILY = "storage"
DEFAULT_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                       "storageclass.beta.kubernetes.io/is-default-class")
SLOW_PROVISIONING_S = 300  # an external provisioner silent this long is not coming


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _name(o: Obj) -> str:
    return md(o).get("name") or ""


def storage_classes(ctx: Context) -> list[Obj]:
    """All StorageClasses (cluster-scoped: a pod or namespace target has none in scope)."""
    return [o for o in ctx.state.kind("StorageClass") if isinstance(o, dict)]


def is_default(sc: Obj) -> bool:
    ann = _d(md(sc).get("annotations"))
    return any(str(ann.get(a)).lower() == "true" for a in DEFAULT_ANNOTATIONS)


def _classes_text(classes: list[Obj]) -> str:
    if not classes:
        return "no StorageClass exists in the snapshot"
    return "StorageClasses present: " + ", ".join(
        f"{_name(c)}{' (default)' if is_default(c) else ''}" for c in classes)


def _consumers(ctx: Context, pvc: Obj) -> list[Obj]:
    """Pods that mount the claim (generic ephemeral volumes included)."""
    ns, name = md(pvc).get("namespace") or "", _name(pvc)
    out = []
    for p in ctx.in_namespace("Pod", ns):
        for v in _l(_d(p.get("spec")).get("volumes")):
            if not isinstance(v, dict):
                continue
            claim = _d(v.get("persistentVolumeClaim")).get("claimName")
            if claim == name or (isinstance(v.get("ephemeral"), dict)
                                 and f"{_name(p)}-{v.get('name')}" == name):
                out.append(p)
                break
    return out


class _Case:
    """One diagnosis of a Pending claim: what is wrong, how sure, what to do."""

    def __init__(self, severity: str, cause: str, words: str, confidence: float) -> None:
        self.severity, self.cause, self.words, self.confidence = \
            severity, cause, words, confidence
        self.evidence: list[Evidence] = []
        self.commands: list[str] = []
        self.action: Action | None = None


@rule("pvc-pending", family=FAMILY, title="PersistentVolumeClaim stays Pending (not bound)",
      severity="critical", rank=10,
      docs="https://kubernetes.io/docs/concepts/storage/dynamic-provisioning/")
def pvc_pending(ctx: Context) -> Iterator[Finding]:
    """A Pending claim blocks every pod that mounts it."""
    classes: list[Obj] | None = None
    for pvc in ctx.objects("PersistentVolumeClaim"):
        if not isinstance(pvc, dict) or _d(pvc.get("status")).get("phase") != "Pending":
            continue
        classes = classes if classes is not None else storage_classes(ctx)
        found = _finding(ctx, pvc, classes)
        if found is not None:
            yield found


def _finding(ctx: Context, pvc: Obj, classes: list[Obj]) -> Finding | None:
    ns, name = md(pvc).get("namespace") or "", _name(pvc)
    spec = _d(pvc.get("spec"))
    sc_name = spec.get("storageClassName")
    failed = ctx.events(pvc, reason="ProvisioningFailed")
    binding = ctx.events(pvc, reason="FailedBinding")
    case = _classify(ctx, pvc, sc_name, classes, failed)
    if case is None:
        return None
    ev = [Evidence("status", "phase: Pending", "status.phase"),
          Evidence("spec", f"storageClassName: {sc_name if sc_name is not None else '<unset>'}",
                   "spec.storageClassName")]
    ev.extend(case.evidence)
    users = _consumers(ctx, pvc)
    if users:
        ev.append(Evidence("object", "mounted by " + ", ".join(
            f"Pod/{_name(p)} ({_d(p.get('status')).get('phase') or '?'})" for p in users[:5]),
            f"Pod/* spec.volumes[].persistentVolumeClaim.claimName={name}"))
    first = event_first_seen(failed or binding) \
        or parse_time(md(pvc).get("creationTimestamp"))
    commands = (f"kubectl describe pvc -n {ns} {name}", "kubectl get storageclass",
                f"kubectl get events -n {ns} --field-selector involvedObject.name={name}",
                *case.commands)
    target = users[0] if users else pvc
    owner_ref = "" if target is pvc else f" (used by {ctx.owner(target)[0]}/" \
                                         f"{ctx.owner(target)[1]})"
    return ctx.finding(
        "pvc-pending", pvc, f"PersistentVolumeClaim {ns}/{name}{owner_ref} is Pending: "
        f"{case.cause}.", ev, Remediation(case.words, commands, case.action),
        confidence=case.confidence, first_seen=first, severity=case.severity)


def _classify(ctx: Context, pvc: Obj, sc_name: Any, classes: list[Obj],
              failed: list[Obj]) -> _Case | None:
    defaults = [c for c in classes if is_default(c)]
    known = ctx.state.is_available("StorageClass") and "StorageClass" in ctx.state.objects
    sc = ctx.get("StorageClass", None, sc_name) if isinstance(sc_name, str) and sc_name \
        else None
    if isinstance(sc_name, str) and sc_name and sc is None:
        return _missing_class(pvc, sc_name, classes, defaults, failed, known)
    if sc_name is None:
        return _no_class(ctx, pvc, classes, defaults, failed)
    if sc_name == "":
        case = _Case("warning", "it sets storageClassName \"\" (static binding) and no "
                     "PersistentVolume matches it",
                     "Create a PersistentVolume that matches the claim's size, access "
                     "modes and selector, or set a StorageClass so one is provisioned.", 0.7)
        case.evidence.extend(event_evidence(e) for e in ctx.events(pvc, reason="FailedBinding")
                             [-2:])
        case.commands.append("kubectl get pv")
        case.action = manual(pvc, case.words)
        return case
    if sc is None:  # a malformed storageClassName
        case = _Case("warning", f"its storageClassName {sc_name!r} is not a valid name",
                     "Recreate the claim with a valid storageClassName.", 0.5)
        case.action = manual(pvc, case.words)
        return case
    if failed:
        return _provisioning_failed(pvc, sc, failed)
    if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
        case = _Case("info", f"StorageClass {sc_name} binds on first consumer "
                     "(WaitForFirstConsumer), so the claim waits until a pod using it is "
                     "scheduled; this is not a failure",
                     "Nothing to fix on the claim; if a pod using it is Pending, diagnose "
                     "that pod's scheduling.", 0.6)
        case.evidence.append(Evidence("object", "volumeBindingMode: WaitForFirstConsumer",
                                      f"StorageClass/{sc_name} volumeBindingMode"))
        for reason in ("WaitForFirstConsumer", "WaitForPodScheduled"):
            case.evidence.extend(event_evidence(e) for e in ctx.events(pvc, reason=reason)[-1:])
        return case
    return _slow_provisioner(ctx, pvc, sc)


def _missing_class(pvc: Obj, sc_name: str, classes: list[Obj], defaults: list[Obj],
                   failed: list[Obj], known: bool) -> _Case:
    ns, name = md(pvc).get("namespace") or "", _name(pvc)
    alt = _name(defaults[0]) if defaults else (_name(classes[0]) if classes else None)
    words = (f"StorageClass {sc_name} does not exist. storageClassName is immutable: "
             f"recreate the claim with an existing class"
             + (f" (e.g. {alt})" if alt else "")
             + f", or create StorageClass {sc_name} if it was meant to exist.")
    case = _Case("critical", f"its StorageClass {sc_name} does not exist", words,
                 0.95 if (failed or known) else 0.75)
    case.evidence.extend(event_evidence(e) for e in failed[-2:])
    case.evidence.append(Evidence("object", f"StorageClass {sc_name} not found; "
                                  + _classes_text(classes), f"StorageClass/{sc_name}"))
    case.commands += [f"kubectl get pvc -n {ns} {name} -o yaml > {name}.yaml",
                      f"# edit spec.storageClassName in {name}.yaml"
                      + (f" to {alt}" if alt else ""),
                      f"kubectl delete pvc -n {ns} {name} && kubectl apply -f {name}.yaml"]
    case.action = manual(pvc, f"recreate PVC {name} with an existing StorageClass"
                         + (f" ({alt})" if alt else "") + f" or create StorageClass {sc_name}")
    return case


def _no_class(ctx: Context, pvc: Obj, classes: list[Obj], defaults: list[Obj],
              failed: list[Obj]) -> _Case:
    name = _name(pvc)
    binding = ctx.events(pvc, reason="FailedBinding")
    if defaults:
        case = _Case("warning", f"it names no StorageClass and the default "
                     f"{_name(defaults[0])} has not provisioned it yet",
                     "Check the default StorageClass's provisioner.", 0.5)
        case.evidence.extend(event_evidence(e) for e in (failed or binding)[-2:])
        return case
    case = _Case("critical", "it names no StorageClass and the cluster has no default "
                 "StorageClass", "Set spec.storageClassName on the claim (allowed once while "
                 "it is unset), or mark a StorageClass as the default.", 0.9)
    case.evidence.extend(event_evidence(e) for e in (failed or binding)[-2:])
    case.evidence.append(Evidence("object", _classes_text(classes) + "; none is annotated "
                                  f"{DEFAULT_ANNOTATIONS[0]}=true",
                                  "StorageClass/* metadata.annotations"))
    if len(classes) == 1:
        only = _name(classes[0])
        case.action = patch_field(
            pvc, ("spec", "storageClassName"), only, tier="medium",
            description=f"set storageClassName of PVC {name} to {only}, the only StorageClass",
            validate=[f"PVC {name} reaches phase Bound", "the pods using it get scheduled"])
        case.commands.append(f"kubectl patch pvc -n {md(pvc).get('namespace')} {name} "
                             f"-p '{{\"spec\":{{\"storageClassName\":\"{only}\"}}}}'")
    else:
        case.action = manual(pvc, case.words)
    return case


def _provisioning_failed(pvc: Obj, sc: Obj, failed: list[Obj]) -> _Case:
    prov = sc.get("provisioner") or "?"
    last = failed[-1].get("message") or failed[-1].get("note") or ""
    case = _Case("critical", f"provisioner {prov} of StorageClass {_name(sc)} fails: {last}",
                 f"Fix what the provisioner reports (quota, parameters, credentials) or "
                 f"check that provisioner {prov} is running.", 0.9)
    case.evidence.extend(event_evidence(e) for e in failed[-2:])
    case.evidence.append(Evidence("object", f"provisioner: {prov}",
                                  f"StorageClass/{_name(sc)} provisioner"))
    case.commands.append("kubectl get pods -A | grep -i -e provisioner -e csi")
    case.action = manual(pvc, case.words)
    return case


def _slow_provisioner(ctx: Context, pvc: Obj, sc: Obj) -> _Case | None:
    """An Immediate claim still waiting for its volume: a problem only once it is old."""
    prov = sc.get("provisioner") or "?"
    waiting = ctx.events(pvc, reason="ExternalProvisioning")
    created = parse_time(md(pvc).get("creationTimestamp"))
    age = (ctx.now - created).total_seconds() if isinstance(created, datetime) else None
    if age is None or age <= SLOW_PROVISIONING_S:
        return None
    case = _Case("warning",
                 f"provisioner {prov} of StorageClass {_name(sc)} has not created a volume"
                 f" in {int(age // 60)} min",
                 f"Check that provisioner {prov} is running and registered.",
                 0.6 if waiting else 0.5)
    case.evidence.extend(event_evidence(e) for e in waiting[-1:])
    case.evidence.append(Evidence("object", f"provisioner: {prov}",
                                  f"StorageClass/{_name(sc)} provisioner"))
    case.commands.append("kubectl get pods -A | grep -i -e provisioner -e csi")
    return case
