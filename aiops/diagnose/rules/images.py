"""Image pull rules: the image does not exist, the registry wants credentials, the
reference is malformed, or the node cannot reach the registry.

The kubelet's `Failed` event carries the runtime's error (containerd, CRI-O or
dockershim wording); the waiting message only says "Back-off pulling image"
before Kubernetes 1.30. An image is a property of the pod template, so pods of
one workload failing on one container fold into a single finding about the
workload: on a stuck Deployment that finding sits on the Deployment itself and,
with a low rank, is read before the rollout symptom.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiops.diagnose.actions import manual, pod_spec_of, pod_template_path, rollout_undo
from aiops.diagnose.context import (
    ContainerEntry,
    Context,
    earliest,
    event_evidence,
    event_first_seen,
    md,
    parse_time,
    status_evidence,
    waiting_signal,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import rule
from aiops.diagnose.rules._common import as_dict as _dict
from aiops.diagnose.rules._common import as_int as _int
from aiops.diagnose.rules._common import as_list as _list
from aiops.diagnose.rules._common import as_text as _text

Obj = dict[str, Any]
FAMILY = "images"
DOCS_IMAGES = "https://kubernetes.io/docs/concepts/containers/images/"
DOCS_AUTH = "https://kubernetes.io/docs/tasks/configure-pod-container/pull-image-private-registry/"
REVISION = "deployment.kubernetes.io/revision"
MAX_POD_NAMES = 5

_PULL_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_PULL_SIGNALS = tuple(waiting_signal(r) for r in sorted(_PULL_WAITING))
_PULL_EVENT_REASONS = ("Failed", "InspectFailed", "ErrImageNeverPull", "BackOff")
_DECISIVE_PREFIXES = ("failed to pull image", "failed to apply default image tag",
                      "failed to inspect image", "container image")

_INVALID = re.compile(r"couldn't parse image reference|invalid reference format"
                      r"|InvalidImageName|Failed to apply default image tag", re.IGNORECASE)
_NOT_FOUND = re.compile(r"manifest unknown|not ?found|name unknown|repository does not exist"
                        r"|no such image", re.IGNORECASE)
_AUTH = re.compile(r"unauthorized|authentication required|pull access denied|\bdenied\b"
                   r"|(?<![\w.:/-])40[13](?![\w.:/-])|\bforbidden\b|no basic auth credentials"
                   r"|insufficient_scope|failed to authorize", re.IGNORECASE)
_NETWORK = (
    (re.compile(r"no such host|server misbehaving|Temporary failure in name resolution",
                re.IGNORECASE), "the registry's host name does not resolve on the node"),
    (re.compile(r"connection refused", re.IGNORECASE), "the registry refuses connections"),
    (re.compile(r"x509:|certificate signed by unknown authority", re.IGNORECASE),
     "the registry's TLS certificate is not trusted by the node"),
    (re.compile(r"i/o timeout|TLS handshake timeout|context deadline exceeded"
                r"|Client\.Timeout exceeded|network is unreachable|no route to host"
                r"|connection reset by peer|dial tcp", re.IGNORECASE),
     "connections from the node to the registry fail or time out"),
)


# -- small, never-raising accessors --------------------------------------------------


def _message(e: Obj) -> str:
    return _text(e.get("message")) or _text(e.get("note"))


def _clip(s: str, n: int = 200) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def registry_of(image: str) -> str:
    """The registry host an image reference pulls from (docker.io when implicit)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


# -- classification -------------------------------------------------------------------

@dataclass(frozen=True)
class Cause:
    rule: str
    words: str
    confidence: float


def classify(reason: str, text: str) -> Cause | None:
    """Which pull failure a waiting reason plus the runtime's error text describe."""
    low = text.lower()
    if reason == "InvalidImageName" or _INVALID.search(text):
        return Cause("image-invalid-name", "the image reference is not a valid image name",
                     0.97)
    if reason == "ErrImageNeverPull" or "not present with pull policy of never" in low:
        return Cause("image-not-found", "the image is not on the node and imagePullPolicy "
                     "is Never", 0.9)
    if "pull access denied" in low or "may require" in low:
        return Cause("image-pull-auth", "the registry denied the pull: the repository does "
                     "not exist or needs credentials", 0.75)
    if _NOT_FOUND.search(text):
        return Cause("image-not-found", "the registry has no such image or tag", 0.95)
    if _AUTH.search(text):
        return Cause("image-pull-auth", "the registry refused the pull credentials "
                     "(unauthorized/denied)", 0.9)
    for pat, words in _NETWORK:
        if pat.search(text):
            return Cause("image-pull-network", words, 0.85)
    return None


@dataclass
class Hit:
    """One container of one pod that cannot get its image."""

    pod: Obj
    c: ContainerEntry
    cause: Cause
    image: str
    events: list[Obj]  # pull events about this container, oldest first
    decisive: Obj | None  # the latest event carrying the runtime's error


def _events_for(ctx: Context, pod: Obj, c: ContainerEntry) -> list[Obj]:
    """Pull-related events about container `c` (by fieldPath, else by its image)."""
    image = _text(c.spec.get("image"))
    out = []
    for reason in _PULL_EVENT_REASONS:
        for e in ctx.events(pod, reason=reason):
            io = _dict(e.get("involvedObject") or e.get("regarding"))
            fp = _text(io.get("fieldPath"))
            named = re.fullmatch(r"spec\.(?:initContainers|containers)\{(.+)\}", fp)
            msg = _message(e)
            if named and named.group(1) != c.name:
                continue
            if not named and not (image and image in msg):
                continue
            if reason == "BackOff" and "pulling image" not in msg.lower():
                continue
            out.append(e)
    return sorted(out, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def _hit(ctx: Context, pod: Obj, c: ContainerEntry) -> Hit | None:
    reason = _text(c.waiting.get("reason"))
    if reason not in _PULL_WAITING:
        return None
    events = _events_for(ctx, pod, c)
    decisive = next((e for e in reversed(events)
                     if _message(e).lower().startswith(_DECISIVE_PREFIXES)), None)
    text = _message(decisive) if decisive else ""
    cause = classify(reason, text) if text else None
    if cause is None:
        cause = classify(reason, _text(c.waiting.get("message")))
    if cause is None:
        return None
    return Hit(pod, c, cause, _text(c.spec.get("image")), events, decisive)


def _hits(ctx: Context, pod: Obj) -> list[Hit | None]:
    """`_hit` of each container, once per pod and state (four rules ask)."""
    table: dict[int, tuple[Obj, list[Hit | None]]] = ctx.shared(("images", "hits"), dict)
    found = table.get(id(pod))
    if found is None or found[0] is not pod:
        found = table[id(pod)] = (pod, [_hit(ctx, pod, c) for c in ctx.containers(pod)])
    return found[1]


@dataclass
class Group:
    """Hits of one rule on one container of one workload (or one bare pod)."""

    obj: Obj  # the workload, or the bare pod
    owner: Obj | None
    hits: list[Hit] = field(default_factory=list)

    @property
    def head(self) -> Hit:
        with_event = [h for h in self.hits if h.decisive is not None]
        return (with_event or self.hits)[0]


def _groups(ctx: Context, rule_id: str) -> list[Group]:
    groups: dict[tuple[str, ...], Group] = {}
    for pod in ctx.pods_with(*_PULL_SIGNALS):  # `_hit` needs one of these waiting reasons
        for c, h in zip(ctx.containers(pod), _hits(ctx, pod), strict=True):
            if h is None or h.cause.rule != rule_id:
                continue
            owner = ctx.owner_object(pod)
            obj = owner or pod
            m = md(obj)
            key = (_text(m.get("namespace")), _text(obj.get("kind")), _text(m.get("name")),
                   c.name, h.image)
            groups.setdefault(key, Group(obj, owner)).hits.append(h)
    return list(groups.values())


# -- evidence and findings ------------------------------------------------------------

def _spec_ref(g: Group, c: ContainerEntry) -> str:
    kind = _text(g.obj.get("kind"))
    section = "initContainers" if c.init else "containers"
    return ".".join(pod_template_path(kind)) + f".{section}[{c.name}].image"


def _evidence(g: Group) -> list[Evidence]:
    h = g.head
    c = h.c
    ev = [status_evidence(f"{c.path}.state.waiting.reason", c.waiting.get("reason"))]
    if _text(c.waiting.get("message")):
        ev.append(status_evidence(f"{c.path}.state.waiting.message",
                                  _clip(c.waiting["message"], 500)))
    ev.append(Evidence("spec", f"image: {h.image}", _spec_ref(g, c)))
    if h.decisive is not None:
        ev.append(event_evidence(h.decisive))
    backoff = [e for e in h.events if e.get("reason") == "BackOff"]
    ev += [event_evidence(e) for e in backoff[-1:]]
    if _still_serving(g.owner):
        key = "numberAvailable" if _dict(g.owner).get("kind") == "DaemonSet" \
            else "availableReplicas"
        ev.append(status_evidence(f"status.{key}",
                                  _dict(_dict(g.owner).get("status")).get(key)))
    if len(g.hits) > 1:
        names = sorted(_text(md(x.pod).get("name")) for x in g.hits)
        shown = ", ".join(names[:MAX_POD_NAMES]) + (" …" if len(names) > MAX_POD_NAMES else "")
        ev.append(Evidence("object", f"{len(names)} pods cannot pull it: {shown}",
                           f"{g.obj.get('kind')}/{_text(md(g.obj).get('name'))}"))
    return ev


def _where(g: Group) -> tuple[str, str, str]:
    m = md(g.obj)
    return _text(m.get("namespace")), _text(g.obj.get("kind")), _text(m.get("name"))


def _finding(ctx: Context, rule_id: str, g: Group, summary: str, ev: list[Evidence],
             remediation: Remediation) -> Finding:
    f = ctx.finding(rule_id, g.obj, summary, ev, remediation,
                    confidence=g.head.cause.confidence,
                    first_seen=event_first_seen([e for h in g.hits for e in h.events])
                    or earliest(*(parse_time(_dict(h.pod.get("status")).get("startTime"))
                                  for h in g.hits)),
                    severity="warning" if _still_serving(g.owner) else None)
    f.pods = sorted(_text(md(h.pod).get("name")) for h in g.hits)
    return f


def _still_serving(owner: Obj | None) -> bool:
    """Older pods of the workload still serve (a stuck rollout, not an outage)."""
    status = _dict(_dict(owner).get("status"))
    key = "numberAvailable" if _dict(owner).get("kind") == "DaemonSet" else "availableReplicas"
    return (_int(status.get(key)) or 0) > 0


def _subject(g: Group) -> str:
    ns, kind, name = _where(g)
    h = g.head
    if g.owner is None:
        return f"Pod {ns}/{name}"
    pod = _text(md(h.pod).get("name"))
    more = f" and {len(g.hits) - 1} more" if len(g.hits) > 1 else ""
    return f"{kind} {ns}/{name} (pod {pod}{more})"


def _read_cmds(g: Group) -> list[str]:
    h = g.head
    ns = _text(md(h.pod).get("namespace"))
    pod = _text(md(h.pod).get("name"))
    return [f"kubectl describe pod {pod} -n {ns}",
            f"kubectl get events -n {ns} --field-selector involvedObject.name={pod} "
            "--sort-by=.lastTimestamp"]


# -- rollback target --------------------------------------------------------------------

def _revision(obj: Obj) -> int | None:
    return _int(_dict(md(obj).get("annotations")).get(REVISION))


def _image_in(obj: Obj, container: str) -> str:
    spec = pod_spec_of(obj)
    for section in ("containers", "initContainers"):
        for c in _list(spec.get(section)):
            if isinstance(c, dict) and c.get("name") == container:
                return _text(c.get("image"))
    return ""


def _owned_by(obj: Obj, owner: Obj) -> bool:
    om = md(owner)
    for ref in _list(md(obj).get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("kind") == owner.get("kind") \
                and ref.get("name") == om.get("name"):
            uid, ouid = ref.get("uid"), om.get("uid")
            return not (uid and ouid and uid != ouid)
    return False


@dataclass(frozen=True)
class GoodRevision:
    replicaset: Obj
    revision: int
    image: str
    ready: int


def previous_good(ctx: Context, deployment: Obj, container: str,
                  bad_image: str) -> GoodRevision | None:
    """The newest older ReplicaSet of a Deployment that ran another image for the
    container, preferring one that still has ready pods."""
    ns = _text(md(deployment).get("namespace"))
    rsets = [rs for rs in ctx.in_namespace("ReplicaSet", ns) if _owned_by(rs, deployment)]
    bad_rev = max((r for rs in rsets if _image_in(rs, container) == bad_image
                   and (r := _revision(rs)) is not None), default=_revision(deployment))
    best: GoodRevision | None = None
    for rs in rsets:
        rev, image = _revision(rs), _image_in(rs, container)
        if rev is None or not image or image == bad_image or (bad_rev is not None
                                                              and rev >= bad_rev):
            continue
        status = _dict(rs.get("status"))
        ready = max(_int(status.get("readyReplicas")) or 0,
                    _int(status.get("availableReplicas")) or 0)
        cand = GoodRevision(rs, rev, image, ready)
        if best is None or (ready > 0, rev) > (best.ready > 0, best.revision):
            best = cand
    return best


def _undo(ctx: Context, g: Group) -> tuple[Action | None, list[Evidence], list[str]]:
    """Roll the Deployment's image back to its last good ReplicaSet, if it has one."""
    owner, h = g.owner, g.head
    if owner is None or owner.get("kind") != "Deployment" \
            or _image_in(owner, h.c.name) != h.image:
        return None, [], []
    good = previous_good(ctx, owner, h.c.name, h.image)
    if good is None:
        return None, [], []
    ns, _, name = _where(g)
    rs_name = _text(md(good.replicaset).get("name"))
    ev = [Evidence("object", f"ReplicaSet {rs_name} (revision {good.revision}) ran image "
                   f"{good.image}; {good.ready} ready pods now",
                   f"ReplicaSet/{ns}/{rs_name}")]
    cur = _revision(owner)
    desc = (f"Roll Deployment {ns}/{name} container '{h.c.name}' back to image {good.image} "
            f"(revision {good.revision}) from {h.image}")
    action = rollout_undo(owner, h.c.name, good.image, str(cur) if cur is not None else None,
                          description=desc)
    cmds = [f"kubectl rollout history deployment/{name} -n {ns}",
            f"kubectl set image deployment/{name} -n {ns} {h.c.name}={good.image}"]
    return action, ev, cmds


def _fallback_action(g: Group, desc: str, tier: str = "medium") -> Action:
    return manual(g.owner or g.head.pod, desc, tier=tier)


# =============================================================================
# rules
# =============================================================================

@rule("image-not-found", family=FAMILY, title="Image or tag does not exist in the registry",
      severity="critical", docs=DOCS_IMAGES, rank=10)
def image_not_found(ctx: Context) -> Iterable[Finding]:
    """ErrImagePull/ImagePullBackOff because the registry has no such image or tag."""
    for g in _groups(ctx, "image-not-found"):
        h = g.head
        action, undo_ev, undo_cmds = _undo(ctx, g)
        ns, kind, name = _where(g)
        summary = (f"{_subject(g)} cannot start '{h.c.name}': image {h.image} "
                   f"was not found ({h.cause.words})"
                   + ("; roll back to the previous image." if action
                      else "; fix the tag or push the image."))
        words = ("Roll the image back to the last one that ran (below), then fix the tag in "
                 "the manifest or push the missing image." if action else
                 "Correct the image tag in the manifest, or push the image to the registry.")
        cmds = [*_read_cmds(g), f"docker manifest inspect {h.image}", *undo_cmds]
        if not action and g.owner is not None:
            cmds.append(f"kubectl set image {kind.lower()}/{name} -n {ns} "
                        f"{h.c.name}=<existing image>")
        yield _finding(ctx, "image-not-found", g, summary, _evidence(g) + undo_ev,
                       Remediation(words, tuple(cmds), action or _fallback_action(
                           g, f"Push image {h.image} or point '{h.c.name}' at an "
                           "existing tag")))


@rule("image-invalid-name", family=FAMILY, title="Image reference is not a valid name",
      severity="critical", docs=DOCS_IMAGES, rank=10)
def image_invalid_name(ctx: Context) -> Iterable[Finding]:
    """InvalidImageName: the reference cannot even be parsed (uppercase, spaces, '::')."""
    for g in _groups(ctx, "image-invalid-name"):
        h = g.head
        action, undo_ev, undo_cmds = _undo(ctx, g)
        ns, kind, name = _where(g)
        summary = (f"{_subject(g)} cannot start '{h.c.name}': the image reference "
                   f"{h.image!r} is not a valid image name (lowercase repository, "
                   "optional :tag or @sha256 digest).")
        cmds = _read_cmds(g) + undo_cmds
        if not action and g.owner is not None:
            cmds.append(f"kubectl set image {kind.lower()}/{name} -n {ns} "
                        f"{h.c.name}=<registry/repository:tag>")
        yield _finding(ctx, "image-invalid-name", g, summary, _evidence(g) + undo_ev,
                       Remediation("Write the image as [registry/]repository[:tag|@digest] "
                                   "in lowercase, without spaces or a scheme.",
                                   tuple(cmds), action or _fallback_action(
                                       g, f"Correct the image reference of '{h.c.name}'")))


@rule("image-pull-auth", family=FAMILY, title="Registry refuses to serve the image",
      severity="critical", docs=DOCS_AUTH, rank=12)
def image_pull_auth(ctx: Context) -> Iterable[Finding]:
    """The registry answered 401/403/denied: missing or wrong imagePullSecrets."""
    for g in _groups(ctx, "image-pull-auth"):
        h = g.head
        ns, _, _ = _where(g)
        reg = registry_of(h.image)
        secrets_ev, secret_names, sa = _pull_secret_evidence(ctx, h.pod)
        summary = (f"{_subject(g)} cannot pull {h.image} for '{h.c.name}': {h.cause.words}"
                   + (f"; its imagePullSecrets ({', '.join(secret_names)}) do not grant "
                      f"access to {reg}." if secret_names
                      else f"; it has no imagePullSecrets for {reg}."))
        pod = _text(md(h.pod).get("name"))
        cmds = [*_read_cmds(g),
                f"kubectl get pod {pod} -n {ns} -o jsonpath='{{.spec.imagePullSecrets}}'",
                f"kubectl get serviceaccount {sa} -n {ns} -o jsonpath='{{.imagePullSecrets}}'"]
        cmds += [f"kubectl describe secret {s} -n {ns}" for s in secret_names]
        cmds += [f"kubectl create secret docker-registry regcred -n {ns} "
                 f"--docker-server={reg} --docker-username=<user> --docker-password=<token>",
                 f"kubectl patch serviceaccount {sa} -n {ns} -p "
                 "'{\"imagePullSecrets\":[{\"name\":\"regcred\"}]}'"]
        words = (f"Give the pod credentials for {reg}: a docker-registry Secret in {ns} "
                 "referenced from imagePullSecrets (or its ServiceAccount); check the "
                 "repository name too, since registries answer 'denied' for missing ones.")
        yield _finding(ctx, "image-pull-auth", g, summary, _evidence(g) + secrets_ev,
                       Remediation(words, tuple(cmds), _fallback_action(
                           g, f"Create/fix the pull Secret for {reg} and reference it",
                           tier="critical")))


def _pull_secret_evidence(ctx: Context, pod: Obj) -> tuple[list[Evidence], list[str], str]:
    """The pod's imagePullSecrets and its ServiceAccount's, and whether each exists."""
    ns = _text(md(pod).get("namespace"))
    spec = _dict(pod.get("spec"))
    sa = _text(spec.get("serviceAccountName")) or "default"
    names = [_text(_dict(r).get("name")) for r in _list(spec.get("imagePullSecrets"))]
    account = ctx.get("ServiceAccount", ns, sa)
    names += [_text(_dict(r).get("name")) for r in
              _list(_dict(account).get("imagePullSecrets"))]
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        return [Evidence("spec", "imagePullSecrets: (none)", "spec.imagePullSecrets")], [], sa
    known = "Secret" in ctx.state.objects and ctx.state.is_available("Secret")
    ev = []
    for n in names:
        exists = ctx.get("Secret", ns, n) is not None
        state = "exists" if exists else "is missing" if known else "not in snapshot"
        ev.append(Evidence("spec", f"imagePullSecrets: {n} ({state})",
                           "spec.imagePullSecrets"))
    return ev, names, sa


@rule("image-pull-network", family=FAMILY, title="Node cannot reach the image registry",
      severity="critical", docs=DOCS_IMAGES, rank=14)
def image_pull_network(ctx: Context) -> Iterable[Finding]:
    """DNS, TCP or TLS failures between the node and the registry."""
    for g in _groups(ctx, "image-pull-network"):
        h = g.head
        reg = registry_of(h.image)
        node = _text(_dict(h.pod.get("spec")).get("nodeName"))
        summary = (f"{_subject(g)} cannot pull {h.image} for '{h.c.name}': "
                   f"{h.cause.words} ({reg}"
                   + (f", node {node}" if node else "") + ").")
        cmds = _read_cmds(g)
        if node:
            cmds += [f"kubectl describe node {node}",
                     f"kubectl debug node/{node} -it --image=busybox:1.36 -- "
                     f"nslookup {reg.split(':')[0]}"]
        words = (f"Restore the node's access to {reg}: DNS, egress firewall, proxy "
                 "settings of the container runtime, or the registry's certificate; or use "
                 "a mirror the nodes can reach.")
        yield _finding(ctx, "image-pull-network", g, summary, _evidence(g),
                       Remediation(words, tuple(cmds), _fallback_action(
                           g, f"Restore node access to registry {reg}")))
