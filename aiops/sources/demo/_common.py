"""Shared state and small helpers for the demo-cluster generator.

Everything random goes through one `random.Random(seed)` held by `Ctx`, and
every object is built in the order the generator calls these helpers, so a
seed always gives the same bytes. Dicts are filled in the field order of the
Go structs in k8s.io/api: kubectl prints typed objects in that order, and a
dump that looks machine-made in its key order would not pass for a real one.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]

# utilrand's alphabet: no vowels (no accidental words), no 0/1/3 (look-alikes).
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

K8S_VERSION = "v1.33.1"
MINIKUBE_VERSION = "v1.36.0"
MINIKUBE_COMMIT = "f8f52f5de11fc6ad8244afac475e1d0f96841df1-dirty"
NODE_IP = "192.168.49.2"
DEFAULT_NOW = datetime(2026, 11, 23, 7, 55, 0, tzinfo=UTC)

# The story's fixed moments, as offsets back from the capture time.
CLUSTER_AGE = timedelta(days=41, hours=23, minutes=24)  # `minikube start`
HELM_V1_AGE = timedelta(days=29, hours=18, minutes=52, seconds=19)  # helm install
HELM_V2_AGE = timedelta(days=19, hours=21, minutes=37, seconds=16)  # chatbot added
HELM_V3_AGE = timedelta(hours=3, minutes=18, seconds=47)  # the bad upgrade

CPU, MEM = "cpu", "memory"
MI = 1024 * 1024


def ts(t: datetime) -> str:
    """metav1.Time: RFC 3339, whole seconds, Z."""
    return t.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def mts(t: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with six fractional digits."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_duration(seconds: int) -> str:
    """time.Duration.String() for whole seconds: 10s, 2m40s, 5m0s."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


def safe_encode(text: str) -> str:
    """apimachinery's rand.SafeEncodeString: every byte mapped into ALPHABET.

    pod-template-hash and controller-revision-hash are this applied to the
    decimal string of a 32-bit FNV hash, which is why real ones only use the
    ten characters 4-9, b, c, d, f.
    """
    return "".join(ALPHABET[ord(c) % len(ALPHABET)] for c in text)


class RVClock:
    """Hands out etcd-like resourceVersions that grow with the object's time.

    One etcd revision per write: an object last written earlier gets a smaller
    number, and no two writes share one.
    """

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        # rv -> a candidate for the next free rv at or after it (union-find with path
        # halving), so that thousands of writes at one instant stay linear
        self.next: dict[int, int] = {}

    def _free(self, rv: int) -> int:
        nxt = self.next
        while rv in nxt:
            up = nxt[rv]
            nxt[rv] = nxt.get(up, up)
            rv = up
        return rv

    def at(self, t: datetime) -> str:
        rv = self._free(412 + int((t - self.origin).total_seconds() * 0.61))
        self.next[rv] = rv + 1
        return str(rv)


@dataclass
class Ctx:
    """The generator's state: clock, randomness, and everything built so far."""

    seed: int
    now: datetime
    rng: random.Random = field(init=False)
    rv: RVClock = field(init=False)
    # (namespace or "" for cluster scope, file stem) -> list items
    objects: dict[tuple[str, str], list[Obj]] = field(default_factory=lambda: defaultdict(list))
    # (namespace, pod) -> [(container, text)] for logs.txt / logs-previous.txt
    logs: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    prev_logs: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    pod_ips: set[str] = field(default_factory=set)
    svc_ips: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    nodes: list[str] = field(default_factory=lambda: ["minikube"])
    node_ips: dict[str, str] = field(default_factory=lambda: {"minikube": NODE_IP})
    # usage series: filled by the namespace builders, rendered by _usage
    series: list[Any] = field(default_factory=list)
    pem: str = ""  # the cluster CA, shared by every kube-root-ca.crt
    hpas: list[tuple[Obj, list[str]]] = field(default_factory=list)  # filled after usage

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.rv = RVClock(self.now - CLUSTER_AGE - timedelta(minutes=2))

    # -- time ------------------------------------------------------------

    # -- identifiers -----------------------------------------------------
    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice(ALPHABET) for _ in range(n))

    def template_hash(self) -> str:
        """A 10-character pod-template-hash (a 10-digit uint32, safe-encoded)."""
        return safe_encode(str(self.rng.randrange(1_000_000_000, 2**32)))

    def unique_name(self, prefix: str, n: int = 5) -> str:
        while True:
            name = f"{prefix}-{self.suffix(n)}"
            if name not in self.names:
                self.names.add(name)
                return name

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def container_id(self) -> str:
        return f"docker://{self.hex(64)}"

    def image_id(self, image: str) -> str:
        """docker-pullable://repo@sha256:... the same digest for the same image."""
        if image not in self.digests:
            self.digests[image] = self.hex(64)
        repo = image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
        return f"docker-pullable://{repo}@sha256:{self.digests[image]}"

    def pod_ip(self, node_index: int = 0) -> str:
        base = node_index
        while True:
            ip = f"10.244.{base}.{self.rng.randrange(2, 255)}"
            if ip not in self.pod_ips:
                self.pod_ips.add(ip)
                return ip

    def service_ip(self) -> str:
        """An address in minikube's service CIDR 10.96.0.0/12."""
        while True:
            ip = (f"10.{self.rng.randrange(96, 112)}.{self.rng.randrange(0, 256)}."
                  f"{self.rng.randrange(1, 255)}")
            if ip not in self.svc_ips:
                self.svc_ips.add(ip)
                return ip

    # -- output ----------------------------------------------------------
    def add(self, namespace: str, stem: str, obj: Obj) -> Obj:
        self.objects[(namespace, stem)].append(obj)
        return obj


def meta(
    ctx: Ctx,
    name: str,
    namespace: str | None,
    created: datetime,
    *,
    updated: datetime | None = None,
    generate_name: str | None = None,
    uid: str | None = None,
    generation: int | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owners: list[Obj] | None = None,
    finalizers: list[str] | None = None,
) -> Obj:
    """metav1.ObjectMeta in Go field order; empty fields left out (omitempty)."""
    md: Obj = {"name": name}
    if generate_name:
        md["generateName"] = generate_name
    if namespace:
        md["namespace"] = namespace
    md["uid"] = uid or ctx.uid()
    md["resourceVersion"] = ctx.rv.at(max(updated or created, created))
    if generation is not None:
        md["generation"] = generation
    md["creationTimestamp"] = ts(created)
    if labels:
        md["labels"] = sorted_map(labels)
    if annotations:
        md["annotations"] = sorted_map(annotations)
    if owners:
        md["ownerReferences"] = owners
    if finalizers:
        md["finalizers"] = finalizers
    return md


def owner_ref(obj: Obj, *, kind: str, api_version: str, block: bool = True) -> Obj:
    """A controller ownerReference to `obj` (as controllers set it)."""
    ref: Obj = {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def helm_labels(component: str, name: str, version: str, *, chart: str = "todo-chatbot-0.3.2",
                release: str = "todo") -> dict[str, str]:
    """The label set of the chart's `_helpers.tpl` (sorted, as the API returns maps)."""
    return dict(sorted({
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "todo-chatbot",
        "app.kubernetes.io/version": version,
        "helm.sh/chart": chart,
    }.items()))


def helm_annotations(namespace: str, release: str = "todo") -> dict[str, str]:
    return {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}


def sorted_map(d: dict[str, str]) -> dict[str, str]:
    """Go marshals map keys sorted; labels/annotations/data come back that way."""
    return dict(sorted(d.items()))


_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3, "k": 1e3,
           "M": 1e6, "G": 1e9}


def parse_quantity(q: str) -> float:
    """'250m' -> 0.25, '1536Mi' -> bytes; enough of resource.Quantity for this generator."""
    for suf in ("Ki", "Mi", "Gi", "Ti", "m", "k", "M", "G"):
        if q.endswith(suf):
            return float(q[: -len(suf)]) * _SUFFIX[suf]
    return float(q)


def cpu_text(cores: float) -> str:
    """Canonical CPU quantity: whole cores as '2', else millicores '4850m'."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def mem_text(nbytes: float) -> str:
    """Canonical binary quantity: the largest of Gi/Mi/Ki that divides exactly."""
    n = int(nbytes)
    for suf, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n and n % size == 0:
            return f"{n // size}{suf}"
    return str(n)
