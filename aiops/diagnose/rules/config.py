"""Configuration rules: a ConfigMap, Secret or key a pod needs is missing, or a
volume cannot be attached/mounted so the pod stays in ContainerCreating.

The kubelet reports missing configuration in two places: the container's
waiting state `CreateContainerConfigError` (env/envFrom) and `FailedMount`
events (volumes). Each report is checked against the snapshot: is the object
really absent from the namespace, or present but lacking the key (its keys are
listed; values are never read, let alone quoted).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiops.diagnose.actions import (
    manual,
    patch_field,
    pod_spec_of,
    pod_template_path,
    pointer,
    target_of,
)
from aiops.diagnose.context import (
    PENDING,
    Context,
    earliest,
    event_evidence,
    event_first_seen,
    event_signal,
    md,
    parse_time,
    status_evidence,
    waiting_signal,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import rule
from aiops.diagnose.rules._common import as_dict as _dict
from aiops.diagnose.rules._common import as_list as _list
from aiops.diagnose.rules._common import as_text as _text

Obj = dict[str, Any]
FAMILY = "config"
DOCS_CM = "https://kubernetes.io/docs/concepts/configuration/configmap/"
DOCS_SECRET = "https://kubernetes.io/docs/concepts/configuration/secret/"
DOCS_KEY = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-pod-configmap/"
DOCS_VOLUMES = "https://kubernetes.io/docs/concepts/storage/volumes/"
MAX_NAMES = 10
ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

_OBJ_NOT_FOUND = re.compile(r'\b(configmaps?|secrets?) "([^"]+)" not found', re.IGNORECASE)
_ENV_KEY = re.compile(r"couldn't find key (\S+) in (ConfigMap|Secret) ([^/\s]+)/([^\s,;]+)",
                      re.IGNORECASE)
_VOL_KEY = re.compile(r"(?:items ([^/\s]+)/(\S+) )?references non-existent (config|secret) "
                      r"key:? \"?([^\s\"]+)\"?", re.IGNORECASE)
_VOLUME = re.compile(r'for volume "([^"]+)"')
_UNMOUNTED = re.compile(r"unmounted volumes=\[([^\]]*)\]")
_GENERIC_TIMEOUT = re.compile(r"Unable to attach or mount volumes|timed out waiting for the "
                              r"condition|context deadline exceeded", re.IGNORECASE)
_MOUNT_REASONS = ("FailedMount", "FailedAttachVolume", "FailedMapVolume",
                  "FailedCreatePodSandBox")


# -- small, never-raising accessors ---------------------------------------------------


def _message(e: Obj) -> str:
    return _text(e.get("message")) or _text(e.get("note"))


def _clip(s: str, n: int = 300) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _where(pod: Obj) -> tuple[str, str]:
    m = md(pod)
    return _text(m.get("namespace")), _text(m.get("name"))


def _kind_of(word: str) -> str:
    return "Secret" if word.lower().startswith("secret") else "ConfigMap"


def _event_container(e: Obj) -> str | None:
    io = _dict(e.get("involvedObject") or e.get("regarding"))
    m = re.fullmatch(r"spec\.(?:initContainers|containers)\{(.+)\}", _text(io.get("fieldPath")))
    return m.group(1) if m else None


# -- what the kubelet reported missing --------------------------------------------------

@dataclass(frozen=True)
class Missing:
    """One ConfigMap/Secret (or one key of it) a pod could not get."""

    kind: str  # ConfigMap | Secret
    name: str
    key: str | None = None
    volume: str | None = None


def parse_missing(message: str, pod: Obj) -> list[Missing]:
    """What a CreateContainerConfigError message or a FailedMount event says is missing."""
    vol = _VOLUME.search(message)
    volume = vol.group(1) if vol else None
    out = [Missing(_kind_of(m.group(1)), m.group(2), None, volume)
           for m in _OBJ_NOT_FOUND.finditer(message)]
    for m in _ENV_KEY.finditer(message):
        out.append(Missing(_kind_of(m.group(2)), m.group(4).rstrip("."), m.group(1)))
    for m in _VOL_KEY.finditer(message):
        kind = "Secret" if m.group(3).lower() == "secret" else "ConfigMap"
        name = m.group(2) or _volume_source(pod, volume, kind)
        if name:
            out.append(Missing(kind, name, m.group(4), volume))
    return out


def _volume_source(pod: Obj, volume: str | None, kind: str) -> str:
    """The ConfigMap/Secret a pod volume projects (first one for a projected volume)."""
    for v in _list(_dict(pod.get("spec")).get("volumes")):
        if not isinstance(v, dict) or v.get("name") != volume:
            continue
        if kind == "ConfigMap" and _dict(v.get("configMap")).get("name"):
            return _text(v["configMap"]["name"])
        if kind == "Secret" and _dict(v.get("secret")).get("secretName"):
            return _text(v["secret"]["secretName"])
        for src in _list(_dict(v.get("projected")).get("sources")):
            ref = _dict(_dict(src).get("configMap" if kind == "ConfigMap" else "secret"))
            if ref.get("name"):
                return _text(ref["name"])
    return ""


@dataclass
class Report:
    """Everything one pod shows about one missing thing."""

    missing: Missing
    states: list[tuple[str, Obj]] = field(default_factory=list)  # (status path, waiting)
    events: list[Obj] = field(default_factory=list)


def missing_reports(ctx: Context, pod: Obj) -> list[Report]:
    """Every missing ConfigMap/Secret/key a pod's statuses and events report."""
    found: dict[Missing, Report] = {}

    def add(m: Missing) -> Report:
        key = Missing(m.kind, m.name, m.key)  # one report per object/key, any volume
        rep = found.setdefault(key, Report(m))
        if rep.missing.volume is None and m.volume:
            rep.missing = m
        return rep

    for c in ctx.containers(pod):
        if c.waiting.get("reason") == "CreateContainerConfigError":
            for m in parse_missing(_text(c.waiting.get("message")), pod):
                add(m).states.append((c.path, c.waiting))
    for e in ctx.events(pod, reason="Failed"):
        msg = _message(e)
        if msg.startswith("Error:"):
            for m in parse_missing(msg, pod):
                add(m).events.append(e)
    for e in ctx.events(pod, reason="FailedMount"):
        for m in parse_missing(_message(e), pod):
            add(m).events.append(e)
    if not found:
        for m, e in _silent_volume_gaps(ctx, pod):
            add(m).events.append(e)
    return list(found.values())


def _silent_volume_gaps(ctx: Context, pod: Obj) -> Iterator[tuple[Missing, Obj]]:
    """A generic mount timeout naming a configMap/secret volume whose object the
    snapshot shows absent (the specific SetUp events may have expired)."""
    ns, _ = _where(pod)
    volumes = {_text(v.get("name")): v for v in _list(_dict(pod.get("spec")).get("volumes"))
               if isinstance(v, dict)}
    for e in ctx.events(pod, reason="FailedMount"):
        m = _UNMOUNTED.search(_message(e))
        for name in (m.group(1).split() if m else []):
            v = volumes.get(name, {})
            for kind, ref, key in (("ConfigMap", _dict(v.get("configMap")), "name"),
                                   ("Secret", _dict(v.get("secret")), "secretName")):
                obj_name = _text(ref.get(key))
                if obj_name and ref.get("optional") is not True \
                        and _lookup(ctx, kind, ns, obj_name)[0] == "absent":
                    yield Missing(kind, obj_name, None, name), e


# -- the snapshot's view ------------------------------------------------------------------

def _lookup(ctx: Context, kind: str, ns: str, name: str) -> tuple[str, Obj | None]:
    """("present", obj) / ("absent", None) / ("unknown", None) when the snapshot
    holds no objects of that kind (not collected, or forbidden)."""
    obj = ctx.get(kind, ns, name)
    if obj is not None:
        return "present", obj
    if not ctx.state.is_available(kind) or kind not in ctx.state.objects:
        return "unknown", None
    return "absent", None


def keys_of(obj: Obj) -> list[str]:
    """Key names of a ConfigMap (data, binaryData) or Secret (data, stringData); never values."""
    sections = ("data", "stringData") if obj.get("kind") == "Secret" else ("data", "binaryData")
    keys: list[str] = []
    for s in sections:
        keys += [k for k in _dict(obj.get(s)) if isinstance(k, str)]
    return sorted(set(keys))


def _names_in(ctx: Context, kind: str, ns: str) -> list[str]:
    return sorted(_text(md(o).get("name")) for o in ctx.in_namespace(kind, ns))


def _names_text(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES]) + (" …" if len(names) > MAX_NAMES else "")
    return shown or "none"


# -- references in the pod spec -----------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """Where a pod spec names a ConfigMap/Secret (or one of its keys)."""

    path: tuple[str | int, ...]  # JSON path inside the pod spec, to the name/key field
    text: str  # readable path, e.g. spec.containers[api].env[DB_URL].valueFrom.secretKeyRef


def references(spec: Obj, kind: str, name: str, key: str | None = None) -> list[Ref]:
    """The fields of a pod spec that name `kind/name` (for `key`: that key's fields)."""
    cm = kind == "ConfigMap"
    key_ref, from_ref = ("configMapKeyRef", "configMapRef") if cm else ("secretKeyRef",
                                                                       "secretRef")
    out: list[Ref] = []
    for section in ("initContainers", "containers"):
        for i, c in enumerate(_list(spec.get(section))):
            if not isinstance(c, dict):
                continue
            base = f"spec.{section}[{c.get('name')}]"
            for j, env in enumerate(_list(c.get("env"))):
                ref = _dict(_dict(_dict(env).get("valueFrom")).get(key_ref))
                if ref.get("name") == name and (key is None or ref.get("key") == key):
                    field_ = "key" if key else "name"
                    out.append(Ref((section, i, "env", j, "valueFrom", key_ref, field_),
                                   f"{base}.env[{_dict(env).get('name')}].valueFrom.{key_ref}: "
                                   f"name={name} key={ref.get('key')}"))
            for j, src in enumerate(_list(c.get("envFrom"))):
                ref = _dict(_dict(src).get(from_ref))
                if key is None and ref.get("name") == name:
                    out.append(Ref((section, i, "envFrom", j, from_ref, "name"),
                                   f"{base}.envFrom[{j}].{from_ref}: name={name}"))
    out += _volume_refs(spec, kind, name, key)
    return out


def _volume_refs(spec: Obj, kind: str, name: str, key: str | None) -> list[Ref]:
    cm = kind == "ConfigMap"
    out: list[Ref] = []
    for i, v in enumerate(_list(spec.get("volumes"))):
        if not isinstance(v, dict):
            continue
        vname = v.get("name")
        src_key, name_field = ("configMap", "name") if cm else ("secret", "secretName")
        direct = _dict(v.get(src_key))
        candidates: list[tuple[tuple[str | int, ...], Obj, str]] = []
        if direct.get(name_field) == name:
            candidates.append((("volumes", i, src_key), direct, name_field))
        for j, src in enumerate(_list(_dict(v.get("projected")).get("sources"))):
            ref = _dict(_dict(src).get("configMap" if cm else "secret"))
            if ref.get("name") == name:
                candidates.append((("volumes", i, "projected", "sources", j,
                                    "configMap" if cm else "secret"), ref, "name"))
        for path, ref, nf in candidates:
            if key is None:
                out.append(Ref((*path, nf), f"spec.volumes[{vname}].{'.'.join(map(str, path[2:]))}"
                               f": {nf}={name}"))
                continue
            for k, item in enumerate(_list(ref.get("items"))):
                if _dict(item).get("key") == key:
                    out.append(Ref((*path, "items", k, "key"),
                                   f"spec.volumes[{vname}].{'.'.join(map(str, path[2:]))}"
                                   f".items[{k}]: key={key}"))
    return out


# =============================================================================
# missing-configmap / missing-secret / missing-config-key
# =============================================================================

@dataclass(frozen=True)
class Verdict:
    """A report checked against the snapshot."""

    rule: str
    status: str  # confirmed | unknown | resolved
    obj: Obj | None


def _verdict(ctx: Context, ns: str, m: Missing) -> Verdict:
    state, obj = _lookup(ctx, m.kind, ns, m.name)
    plain = "missing-configmap" if m.kind == "ConfigMap" else "missing-secret"
    if m.key is None:
        return Verdict(plain, {"absent": "confirmed", "unknown": "unknown"}.get(state,
                                                                                "resolved"), obj)
    if state == "absent":  # the key report is stale: now the whole object is gone
        return Verdict(plain, "confirmed", None)
    if state == "unknown":
        return Verdict("missing-config-key", "unknown", None)
    has_key = m.key in keys_of(obj or {})
    return Verdict("missing-config-key", "resolved" if has_key else "confirmed", obj)


# what `missing_reports` reads: a container waiting for its config, Failed or
# FailedMount events
_REPORTED = (waiting_signal("CreateContainerConfigError"), event_signal("Failed"),
             event_signal("FailedMount"))


def _config_findings(ctx: Context, rule_id: str) -> Iterator[Finding]:
    for pod in ctx.pods_with(*_REPORTED):
        ns, _ = _where(pod)
        for rep in missing_reports(ctx, pod):
            v = _verdict(ctx, ns, rep.missing)
            if v.rule == rule_id:
                yield _config_finding(ctx, pod, rep, v)


@rule("missing-configmap", family=FAMILY, title="Pod references a ConfigMap that does not "
      "exist", severity="critical", docs=DOCS_CM, rank=10, supersedes=("volume-mount-failed",))
def missing_configmap(ctx: Context) -> Iterable[Finding]:
    """`configmap "x" not found`: the container cannot be created until it exists."""
    return _config_findings(ctx, "missing-configmap")


@rule("missing-secret", family=FAMILY, title="Pod references a Secret that does not exist",
      severity="critical", docs=DOCS_SECRET, rank=10, supersedes=("volume-mount-failed",))
def missing_secret(ctx: Context) -> Iterable[Finding]:
    """`secret "x" not found`: the container cannot be created until it exists."""
    return _config_findings(ctx, "missing-secret")


@rule("missing-config-key", family=FAMILY, title="ConfigMap or Secret lacks a key the pod "
      "needs", severity="critical", docs=DOCS_KEY, rank=10, supersedes=("volume-mount-failed",))
def missing_config_key(ctx: Context) -> Iterable[Finding]:
    """The object exists but not the key an env var or volume item names."""
    return _config_findings(ctx, "missing-config-key")


def _config_finding(ctx: Context, pod: Obj, rep: Report, v: Verdict) -> Finding:
    ns, name = _where(pod)
    m = rep.missing
    ev: list[Evidence] = []
    for path, w in rep.states[:2]:
        ev.append(status_evidence(f"{path}.state.waiting.reason", w.get("reason")))
        ev.append(status_evidence(f"{path}.state.waiting.message",
                                  _clip(_text(w.get("message")))))
    ev += [event_evidence(e) for e in rep.events[-2:]]
    spec = _dict(pod.get("spec"))
    refs = references(spec, m.kind, m.name, m.key if v.rule == "missing-config-key" else None)
    ev += [Evidence("spec", r.text.split(": ", 1)[1], r.text.split(": ", 1)[0])
           for r in refs[:4]]
    ev.append(_snapshot_evidence(ctx, ns, m, v))
    what = (f"key '{m.key}' of {m.kind} {ns}/{m.name}" if v.rule == "missing-config-key"
            else f"{m.kind} {ns}/{m.name}")
    where = "volume " + repr(m.volume) if m.volume else "its environment"
    if v.status == "resolved":
        summary = (f"Pod {ns}/{name} could not start because {what} was missing (for "
                   f"{where}); it exists now, so the pod should recover on the next retry.")
    else:
        summary = (f"Pod {ns}/{name} cannot start: {what}, needed for {where}, "
                   + ("does not exist" if v.status == "confirmed" else "is reported missing")
                   + "; create it or fix the reference.")
    first = earliest(event_first_seen(rep.events),
                     *(parse_time(_dict(c).get("lastTransitionTime"))
                       for c in _list(_dict(pod.get("status")).get("conditions"))
                       if _dict(c).get("type") == "ContainersReady"
                       and _dict(c).get("status") == "False"))
    return ctx.finding(
        v.rule, pod, summary, ev, _config_remediation(ctx, pod, m, v, refs),
        confidence={"confirmed": 0.97, "unknown": 0.85}.get(v.status, 0.5),
        first_seen=first or parse_time(_dict(pod.get("status")).get("startTime")),
        severity="warning" if v.status == "resolved" else None)


def _snapshot_evidence(ctx: Context, ns: str, m: Missing, v: Verdict) -> Evidence:
    ref = f"{m.kind}/{ns}/{m.name}"
    if v.status == "unknown":
        return Evidence("object", f"{m.kind}s of {ns} are not in the snapshot: absence not "
                        "confirmed", ref)
    if v.obj is None:
        return Evidence("object", f"no {m.kind} named {m.name} in namespace {ns} ({m.kind}s "
                        f"there: {_names_text(_names_in(ctx, m.kind, ns))})", ref)
    keys = keys_of(v.obj)
    state = "has" if m.key and m.key in keys else "lacks" if m.key else "exists now;"
    return Evidence("object", f"{m.kind} {m.name} {state}"
                    + (f" key {m.key}" if m.key else "")
                    + f" (keys: {_names_text(keys)})", f"{ref} keys")


def _config_remediation(ctx: Context, pod: Obj, m: Missing, v: Verdict,
                        refs: list[Ref]) -> Remediation:
    ns, name = _where(pod)
    secret = m.kind == "Secret"
    res = "secret" if secret else "configmap"
    tier = "critical" if secret else "medium"
    cmds = [f"kubectl describe pod {name} -n {ns}", f"kubectl get {res}s -n {ns}"]
    if v.status == "resolved":
        return Remediation("The object now has what the pod needs; if the pod is still "
                           "stuck, delete it so its controller recreates it.",
                           (*cmds, f"kubectl delete pod {name} -n {ns}"))
    typo = _typo_fix(ctx, pod, m, v, refs)
    if v.rule == "missing-config-key":
        show = (f"kubectl describe secret {m.name} -n {ns}" if secret else
                f"kubectl get configmap {m.name} -n {ns} -o go-template="
                "'{{range $k, $v := .data}}{{$k}}{{\"\\n\"}}{{end}}'")
        section = "stringData" if secret else "data"
        cmds += [show, f"kubectl patch {res} {m.name} -n {ns} --type merge -p "
                       f"'{{\"{section}\":{{\"{m.key}\":\"<value>\"}}}}'"]
        words = (f"Add key '{m.key}' to {m.kind} {m.name}, or reference a key it has "
                 "(the kubelet retries on its own).")
        fallback = manual(_stub(m, ns), f"Add key '{m.key}' to {m.kind} {ns}/{m.name}", tier)
    else:
        create = (f"kubectl create secret generic {m.name} -n {ns} --from-literal=<key>=<value>"
                  if secret else
                  f"kubectl create configmap {m.name} -n {ns} --from-literal=<key>=<value>")
        cmds.append(create)
        words = (f"Create {m.kind} {m.name} in {ns} (apply it from the release that ships "
                 "the workload), or point the pod at an existing one; the kubelet retries "
                 "on its own.")
        fallback = manual(_stub(m, ns), f"Create {m.kind} {ns}/{m.name} with the keys the "
                          "pod reads", tier)
    if typo is not None:
        words = f"{typo.description}. " + words
    return Remediation(words, tuple(cmds), typo or fallback)


def _stub(m: Missing, ns: str) -> Obj:
    return {"apiVersion": "v1", "kind": m.kind, "metadata": {"namespace": ns, "name": m.name}}


def _typo_fix(ctx: Context, pod: Obj, m: Missing, v: Verdict, refs: list[Ref]) -> Action | None:
    """A clearly fixable typo: exactly one existing object (or key) with a close name,
    which has what the pod needs; patch the workload's references to it."""
    ns, _ = _where(pod)
    owner = ctx.owner_object(pod)
    if owner is None or not refs:
        return None
    if v.rule == "missing-config-key":
        pool = keys_of(v.obj or {})
        wrong = m.key or ""
    else:
        pool = [n for n in _names_in(ctx, m.kind, ns)
                if m.key is None or m.key in keys_of(ctx.get(m.kind, ns, n) or {})]
        wrong = m.name
    close = difflib.get_close_matches(wrong, pool, n=2, cutoff=0.8)
    if len(close) != 1:
        return None
    spec = pod_spec_of(owner)
    field_refs = references(spec, m.kind, m.name,
                            m.key if v.rule == "missing-config-key" else None)
    if not field_refs:
        return None
    base = pod_template_path(_text(owner.get("kind")))
    ops = [{"op": "replace", "path": pointer(*base, *r.path), "value": close[0]}
           for r in field_refs]
    inverse = [{"op": "replace", "path": pointer(*base, *r.path), "value": wrong}
               for r in reversed(field_refs)]
    what = "key" if v.rule == "missing-config-key" else m.kind
    kind, oname = ctx.owner(pod)
    desc = (f"Point {kind}/{oname} at existing {what} '{close[0]}' instead of '{wrong}' "
            "(a likely typo)")
    return Action("patch", target_of(owner), desc, "critical" if m.kind == "Secret"
                  else "medium", ops, inverse, _validate(owner))


def _validate(owner: Obj) -> list[str]:
    kind, m = _text(owner.get("kind")), md(owner)
    head = ([f"kubectl rollout status {kind.lower()}/{_text(m.get('name'))} -n "
             f"{_text(m.get('namespace'))} --timeout=300s succeeds"]
            if kind in ROLLOUT_KINDS else [])
    return [*head, "no new CreateContainerConfigError or FailedMount events for the pods"]


# =============================================================================
# volume-mount-failed
# =============================================================================

def _stuck_creating(pod: Obj) -> bool:
    """Scheduled, Pending, and no container ever started."""
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    if status.get("phase") not in ("Pending", None) or not spec.get("nodeName") \
            or md(pod).get("deletionTimestamp"):
        return False
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in _list(status.get(key)):
            st = _dict(_dict(cs).get("state"))
            if st.get("running") or st.get("terminated"):
                return False
            reason = _dict(st.get("waiting")).get("reason")
            if reason not in (None, "", "ContainerCreating", "PodInitializing"):
                return False
    return True


def mount_cause(message: str) -> str:
    """What a FailedMount/FailedAttachVolume/FailedCreatePodSandBox message means."""
    low = message.lower()
    if "multi-attach error" in low:
        return ("the volume is still attached to another node (ReadWriteOnce); a pod "
                "elsewhere holds it")
    m = re.search(r"driver name (\S+) not found in the list of registered CSI drivers", message)
    if m:
        return f"CSI driver {m.group(1)} is not registered on the node"
    if "failed to setup network for sandbox" in low or "cni" in low:
        return "the CNI network plugin could not set up the pod network"
    if "failedcreatepodsandbox" in low or "failed to create pod sandbox" in low:
        return "the container runtime could not create the pod sandbox"
    if "failed to sync configmap cache" in low or "failed to sync secret cache" in low:
        return "the kubelet could not read ConfigMaps/Secrets from the API server"
    if "attachvolume.attach failed" in low:
        return "the volume could not be attached to the node"
    if "newmounter initialization failed" in low or "hostpath type check failed" in low:
        return "the hostPath does not exist (or has the wrong type) on the node"
    if "mountdevice failed" in low or "setup failed" in low or "mount failed" in low:
        return "mounting the volume on the node failed"
    if _GENERIC_TIMEOUT.search(message):
        return "mounting the pod's volumes timed out"
    return "a volume could not be attached or mounted"


def _relevant_mount_events(ctx: Context, pod: Obj) -> list[Obj]:
    """Mount/attach/sandbox events not explained by a missing ConfigMap/Secret/key."""
    explained = bool(missing_reports(ctx, pod))
    out = []
    for reason in _MOUNT_REASONS:
        for e in ctx.events(pod, reason=reason):
            msg = _message(e)
            if parse_missing(msg, pod):
                continue
            if explained and reason == "FailedMount" and _GENERIC_TIMEOUT.search(msg):
                continue
            out.append(e)
    return sorted(out, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


@rule("volume-mount-failed", family=FAMILY, title="Volume cannot be attached or mounted: pod "
      "stuck in ContainerCreating", severity="critical", docs=DOCS_VOLUMES, rank=20)
def volume_mount_failed(ctx: Context) -> Iterable[Finding]:
    """A pod stuck before its containers start because of volumes or its sandbox."""
    for pod in ctx.pods_with(PENDING):
        if not _stuck_creating(pod):
            continue
        events = _relevant_mount_events(ctx, pod)
        if events:
            yield _mount_finding(ctx, pod, events)


def _mount_finding(ctx: Context, pod: Obj, events: list[Obj]) -> Finding:
    ns, name = _where(pod)
    specific = [e for e in events if not _GENERIC_TIMEOUT.search(_message(e))] or events
    head = specific[-1]
    cause = mount_cause(_message(head))
    volumes = _volumes_named(events)
    ev = [event_evidence(head)]
    ev += [event_evidence(e) for e in events[-2:] if e is not head][:1]
    for c in _list(_dict(pod.get("status")).get("containerStatuses"))[:1]:
        reason = _dict(_dict(_dict(c).get("state")).get("waiting")).get("reason")
        if reason:
            ev.append(status_evidence(f"status.containerStatuses[{_dict(c).get('name')}]"
                                      ".state.waiting.reason", reason))
    ev += _volume_evidence(ctx, pod, volumes)
    vol_text = f" (volume {', '.join(volumes)})" if volumes else ""
    summary = f"Pod {ns}/{name} is stuck in ContainerCreating: {cause}{vol_text}."
    return ctx.finding(
        "volume-mount-failed", pod, summary, ev,
        _mount_remediation(ctx, pod, head, cause, volumes),
        confidence=0.9 if specific is not events or not _GENERIC_TIMEOUT.search(
            _message(head)) else 0.7,
        first_seen=event_first_seen(events))


def _volumes_named(events: list[Obj]) -> list[str]:
    names: list[str] = []
    for e in events:
        msg = _message(e)
        names += _VOLUME.findall(msg)
        m = _UNMOUNTED.search(msg)
        if m:
            names += m.group(1).split()
    return [n for n in dict.fromkeys(names) if not n.startswith("kube-api-access-")] or \
        list(dict.fromkeys(names))[:1]


def _volume_evidence(ctx: Context, pod: Obj, volumes: list[str]) -> list[Evidence]:
    ns, _ = _where(pod)
    out = []
    by_name = {_text(v.get("name")): v for v in _list(_dict(pod.get("spec")).get("volumes"))
               if isinstance(v, dict)}
    for vname in volumes[:3]:
        v = by_name.get(vname)
        if v is None:
            continue
        src = next((k for k in v if k != "name"), "")
        detail = _dict(v.get(src))
        out.append(Evidence("spec", f"{src}: " + ", ".join(
            f"{k}={val}" for k, val in detail.items() if isinstance(val, str | int | bool)),
            f"spec.volumes[{vname}]"))
        claim = _text(detail.get("claimName")) if src == "persistentVolumeClaim" else ""
        pvc = ctx.get("PersistentVolumeClaim", ns, claim) if claim else None
        if pvc is not None:
            st = _dict(pvc.get("status"))
            modes = ",".join(map(str, _list(_dict(pvc.get("spec")).get("accessModes"))))
            out.append(Evidence("object", f"PVC {claim}: phase={st.get('phase')} "
                                f"accessModes={modes} volume="
                                f"{_dict(pvc.get('spec')).get('volumeName')}",
                                f"PersistentVolumeClaim/{ns}/{claim}"))
    return out


def _mount_remediation(ctx: Context, pod: Obj, head: Obj, cause: str,
                       volumes: list[str]) -> Remediation:
    ns, name = _where(pod)
    node = _text(_dict(pod.get("spec")).get("nodeName"))
    cmds = [f"kubectl describe pod {name} -n {ns}",
            f"kubectl get events -n {ns} --field-selector involvedObject.name={name} "
            "--sort-by=.lastTimestamp"]
    claims = _claims(pod, volumes)
    cmds += [f"kubectl describe pvc {c} -n {ns}" for c in claims]
    action: Action | None = None
    if "another node" in cause:
        cmds.append("kubectl get volumeattachments -o wide")
        words = ("Only one node can attach a ReadWriteOnce volume: wait for or delete the old "
                 "pod still holding it; for a single-replica Deployment use the Recreate "
                 "strategy (or a StatefulSet) so rollouts release the volume first.")
        action = _recreate_strategy(ctx, pod, claims)
    elif "CSI driver" in cause:
        cmds += ["kubectl get csidrivers", f"kubectl get pods -n kube-system -o wide "
                 f"--field-selector spec.nodeName={node}"]
        words = "Install or repair the CSI driver's node plugin on the node."
    elif "sandbox" in cause or "CNI" in cause:
        cmds += [f"kubectl describe node {node}",
                 f"kubectl get pods -n kube-system -o wide --field-selector spec.nodeName={node}"]
        words = ("Check the network plugin (CNI) and container runtime on the node: their "
                 "pods in kube-system, IP address exhaustion, and the runtime's logs.")
    else:
        if node:
            cmds.append(f"kubectl describe node {node}")
        words = ("Read the mount error: fix the volume source (server reachable, path "
                 "present, permissions, driver), then the kubelet retries on its own.")
    return Remediation(words, tuple(cmds), action)


def _claims(pod: Obj, volumes: list[str]) -> list[str]:
    out = []
    for v in _list(_dict(pod.get("spec")).get("volumes")):
        claim = _text(_dict(_dict(v).get("persistentVolumeClaim")).get("claimName"))
        if claim and (not volumes or _dict(v).get("name") in volumes):
            out.append(claim)
    return out


def _recreate_strategy(ctx: Context, pod: Obj, claims: list[str]) -> Action | None:
    """Multi-Attach on a one-replica RollingUpdate Deployment with a PVC: Recreate."""
    owner = ctx.owner_object(pod)
    if owner is None or owner.get("kind") != "Deployment" or not claims:
        return None
    spec = _dict(owner.get("spec"))
    if spec.get("replicas", 1) != 1 or _dict(spec.get("strategy")).get("type") == "Recreate":
        return None
    name = _text(md(owner).get("name"))
    return patch_field(owner, ("spec", "strategy"), {"type": "Recreate"},
                       description=f"Use the Recreate strategy for Deployment {name} so the "
                       "old pod releases its ReadWriteOnce volume before the new one starts",
                       tier="medium", validate=_validate(owner))
