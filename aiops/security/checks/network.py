"""Network exposure: pods no NetworkPolicy isolates, Services opened on every node
or to the internet, Ingresses serving plain HTTP.

Without any NetworkPolicy every pod accepts connections from every other pod in
the cluster, so one compromised pod reaches the database next door.

System namespaces (kube-system, kube-public, kube-node-lease) are not skipped:
a missing policy there is reported by its own check,
`network-system-namespace-no-policy`, at info severity (their components are
usually installed by the platform and often need host or API-server traffic a
default-deny would cut), while `network-namespace-no-policy` (warning) covers
every other namespace. In a system namespace without any policy,
`network-pod-not-selected` leaves the workloads to that info finding instead of
raising a warning per workload.

Label-selector matching (`selector_matches`) and the per-audit memo (`memo`)
live here and are shared by the reliability and resources families.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from aiops.security.check import Refs, Violation
from aiops.security.fixes import REMOVE, create, patch
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, Workload, meta, namespace_of

FAMILY = "network"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
Obj = dict[str, Any]
T = TypeVar("T")

# cloud annotations that make a LoadBalancer internal (reachable only from the VPC)
INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": None,  # any true-ish value
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
    "cloud.google.com/load-balancer-type": "Internal",
}


def memo(ctx: AuditContext, key: str, build: Callable[[], T]) -> T:
    """A value computed once per audit (see AuditContext.memo)."""
    return ctx.memo(key, build)


def selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    """Whether a metav1.LabelSelector selects an object with `labels`.

    An empty selector ({}) selects everything, a null one nothing (as the API
    server reads them); matchLabels and every matchExpression must all hold;
    an unknown operator selects nothing (the API would reject it)."""
    if not isinstance(selector, dict):
        return False
    ml = selector.get("matchLabels")
    if isinstance(ml, dict):
        for k, v in ml.items():
            if labels.get(k) != v:
                return False
    exprs = selector.get("matchExpressions")
    for e in exprs if isinstance(exprs, list) else []:
        if not isinstance(e, dict):
            return False
        key, op = e.get("key"), e.get("operator")
        values = e.get("values") if isinstance(e.get("values"), list) else []
        present = key in labels
        if op == "In":
            ok = present and labels[key] in values
        elif op == "NotIn":
            ok = not present or labels[key] not in values
        elif op == "Exists":
            ok = present
        elif op == "DoesNotExist":
            ok = not present
        else:
            return False
        if not ok:
            return False
    return True


def pod_labels(w: Workload) -> dict[str, Any]:
    labels = w.template_meta.get("labels")
    return labels if isinstance(labels, dict) else {}


def _policy_selectors(ctx: AuditContext) -> dict[str, list[Obj]]:
    """namespace -> the pod selectors of its NetworkPolicies (a missing selector
    is read as {}: every pod of the namespace)."""
    def build() -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for p in ctx.objects("NetworkPolicy"):
            spec = p.get("spec") if isinstance(p.get("spec"), dict) else {}
            sel = spec.get("podSelector")
            out.setdefault(namespace_of(p), []).append(sel if isinstance(sel, dict) else {})
        return out
    return memo(ctx, "network.policy_selectors", build)


def _namespaces_with_workloads(ctx: AuditContext) -> dict[str, int]:
    def build() -> dict[str, int]:
        out: dict[str, int] = {}
        for w in ctx.workloads:
            out[w.namespace] = out.get(w.namespace, 0) + 1
        return out
    return memo(ctx, "network.workloads_per_ns", build)


def default_deny_ingress(namespace: str) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny-ingress", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


DENY_WARNING = ("this default-deny policy cuts ALL ingress traffic to every pod of the "
                "namespace (including from Services, Ingress controllers and monitoring) "
                "until NetworkPolicies allowing the needed traffic exist: create those first")


def _no_policy(ns: str, ctx: AuditContext) -> Violation | None:
    count = _namespaces_with_workloads(ctx).get(ns, 0)
    if not count or _policy_selectors(ctx).get(ns):
        return None
    return Violation(
        f"namespace {ns} runs {count} workload(s) and has no NetworkPolicy, so every pod "
        "in the cluster can connect to them",
        create(default_deny_ingress(ns), tier="critical",
               description=f"create NetworkPolicy default-deny-ingress in {ns}; {DENY_WARNING}"),
        fix_text=f"add allow rules for the traffic {ns} needs, then the default-deny-ingress "
                 f"NetworkPolicy; {DENY_WARNING}")


@check("network-namespace-no-policy", family=FAMILY, severity="warning", category="security",
       target="namespace", title="Namespace has no NetworkPolicy",
       rationale="Without a NetworkPolicy every pod of the cluster can connect to every pod "
                 "of the namespace; a default-deny ingress policy makes access explicit.",
       refs=Refs(polaris="missingNetworkPolicy"))
def namespace_no_policy(ns: str, ctx: AuditContext) -> Violation | None:
    if ns in SYSTEM_NAMESPACES:
        return None  # network-system-namespace-no-policy reports these, at info
    return _no_policy(ns, ctx)


@check("network-system-namespace-no-policy", family=FAMILY, severity="info",
       category="security", target="namespace",
       title="System namespace has no NetworkPolicy",
       rationale="kube-system and the other system namespaces are open to every pod too, "
                 "but their components often need traffic a blanket deny would cut: review "
                 "before restricting.")
def system_namespace_no_policy(ns: str, ctx: AuditContext) -> Violation | None:
    if ns not in SYSTEM_NAMESPACES:
        return None
    return _no_policy(ns, ctx)


def _short_labels(labels: dict[str, Any]) -> str:
    items = [f"{k}={v}" for k, v in sorted(labels.items())]
    return ",".join(items[:3]) + (",..." if len(items) > 3 else "") if items else "none"


@check("network-pod-not-selected", family=FAMILY, severity="warning", category="security",
       target="workload", title="No NetworkPolicy selects the workload's pods",
       rationale="Pods no NetworkPolicy selects accept connections from anywhere in the "
                 "cluster, even in a namespace whose other pods are isolated.",
       refs=Refs(kube_score="pod-networkpolicy"))
def pod_not_selected(w: Workload, ctx: AuditContext) -> Violation | None:
    if w.spec.get("hostNetwork") is True:
        return None  # NetworkPolicy does not apply to host-network pods (a PSS check flags them)
    labels = pod_labels(w)
    selectors = _policy_selectors(ctx).get(w.namespace, [])
    if not selectors and w.namespace in SYSTEM_NAMESPACES:
        return None  # network-system-namespace-no-policy reports the namespace, at info
    if any(selector_matches(s, labels) for s in selectors):
        return None
    where = ("its namespace has no NetworkPolicy at all" if not selectors
             else f"none of the {len(selectors)} NetworkPolicies of {w.namespace} selects them")
    msg = f"{w.kind} {w.name}: its pods (labels {_short_labels(labels)}) are not isolated, {where}"
    text = (f"write a NetworkPolicy selecting {_short_labels(labels)} that allows exactly the "
            "callers the pods need")
    if not labels:
        return Violation(msg, fix_text=text + " (label the pods first: without labels only an "
                         "empty podSelector, i.e. the whole namespace, selects them)")
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": f"{w.name}-ingress", "namespace": w.namespace},
              "spec": {"podSelector": {"matchLabels": dict(labels)},
                       "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {}}]}]}}
    warning = ("it admits traffic from pods of the same namespace only: callers in other "
               "namespaces (Ingress controllers, monitoring) are cut until allowed")
    return Violation(msg, create(policy, tier="critical",
                                 description=f"create NetworkPolicy {w.name}-ingress; {warning}"),
                     fix_text=f"{text}; the proposed policy is a starting point: {warning}")


def _service_spec(svc: Obj) -> Obj:
    spec = svc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _name(obj: Obj) -> str:
    return f"{namespace_of(obj)}/{meta(obj).get('name')}"


@check("network-service-nodeport", family=FAMILY, severity="warning", category="security",
       target="object", kinds=("Service",), title="Service of type NodePort",
       rationale="A NodePort opens the same port on every node, outside what NetworkPolicies "
                 "and most cloud firewalls in front of the cluster are set up to filter.",
       refs=Refs(kube_score="service-type"))
def service_nodeport(svc: Obj, ctx: AuditContext) -> Violation | None:
    spec = _service_spec(svc)
    if spec.get("type") != "NodePort":
        return None
    ports = spec.get("ports") if isinstance(spec.get("ports"), list) else []
    numbers = [str(p["nodePort"]) for p in ports if isinstance(p, dict) and p.get("nodePort")]
    changes: dict[tuple[str | int, ...], Any] = {("spec", "type"): "ClusterIP"}
    for i, p in enumerate(ports):
        if isinstance(p, dict) and "nodePort" in p:
            changes[("spec", "ports", i, "nodePort")] = REMOVE
    for field in ("externalTrafficPolicy", "healthCheckNodePort"):
        if field in spec:
            changes[("spec", field)] = REMOVE
    warning = ("clients reaching it through node ports lose access: put an Ingress or Gateway "
               "in front first")
    return Violation(
        f"Service {_name(svc)} is of type NodePort"
        + (f" (node ports {', '.join(numbers)})" if numbers else "")
        + ", reachable on every node's address",
        patch(svc, changes, tier="critical",
              description=f"change Service {_name(svc)} to ClusterIP; {warning}"),
        fix_text=f"make the Service ClusterIP and expose it through an Ingress; {warning}")


def _internal_lb(svc: Obj) -> bool:
    ann = meta(svc).get("annotations")
    if not isinstance(ann, dict):
        return False
    for key, want in INTERNAL_LB_ANNOTATIONS.items():
        v = ann.get(key)
        if isinstance(v, str) and (v == want if want else v.lower() not in ("", "false")):
            return True
    return False


def _load_balancer(svc: Obj) -> tuple[bool, list[str]]:
    """(is a LoadBalancer, its source ranges)."""
    spec = _service_spec(svc)
    if spec.get("type") != "LoadBalancer":
        return False, []
    ranges = spec.get("loadBalancerSourceRanges")
    return True, [r for r in ranges if isinstance(r, str)] if isinstance(ranges, list) else []


@check("network-loadbalancer-open", family=FAMILY, severity="danger", category="security",
       target="object", kinds=("Service",),
       title="LoadBalancer Service open to any address",
       rationale="A LoadBalancer without loadBalancerSourceRanges (and not internal) gets a "
                 "public address that accepts connections from the whole internet.")
def loadbalancer_open(svc: Obj, ctx: AuditContext) -> Violation | None:
    is_lb, ranges = _load_balancer(svc)
    if not is_lb or ranges or _internal_lb(svc):
        return None
    return Violation(
        f"Service {_name(svc)} is a LoadBalancer without loadBalancerSourceRanges, "
        "reachable from any address",
        fix_text="set spec.loadBalancerSourceRanges to the client CIDRs that need it (only "
                 "the owner knows them), or make the load balancer internal with the cloud's "
                 "annotation; if it is public on purpose (an Ingress controller), exempt it "
                 "with the reason")


@check("network-loadbalancer-exposed", family=FAMILY, severity="info", category="security",
       target="object", kinds=("Service",), title="LoadBalancer Service (restricted)",
       rationale="A LoadBalancer restricted to source ranges, or internal, is still reachable "
                 "from outside the cluster: listed so exposure stays a reviewed decision.")
def loadbalancer_exposed(svc: Obj, ctx: AuditContext) -> Violation | None:
    is_lb, ranges = _load_balancer(svc)
    if not is_lb or not (ranges or _internal_lb(svc)):
        return None
    what = (f"source ranges {', '.join(ranges)}" if ranges else "an internal load balancer")
    return Violation(f"Service {_name(svc)} is a LoadBalancer reachable from {what}",
                     fix_text="confirm the exposure is intended; keep the ranges as narrow as "
                              "the clients allow")


def _hosts(ingress: Obj) -> Iterator[str]:
    spec = ingress.get("spec") if isinstance(ingress.get("spec"), dict) else {}
    rules = spec.get("rules") if isinstance(spec.get("rules"), list) else []
    for r in rules:
        if isinstance(r, dict) and isinstance(r.get("host"), str) and r["host"]:
            yield r["host"]


def host_covered(host: str, patterns: list[str]) -> bool:
    """Whether a TLS host list covers `host`; `*.example.com` covers exactly one label."""
    for p in patterns:
        if p == host:
            return True
        if p.startswith("*.") and "." in host and host.split(".", 1)[1] == p[2:]:
            return True
    return False


@check("network-ingress-no-tls", family=FAMILY, severity="warning", category="security",
       target="object", kinds=("Ingress",), title="Ingress without TLS",
       rationale="Without TLS, credentials and session cookies cross the network in clear "
                 "text between the client and the Ingress controller.",
       refs=Refs(polaris="tlsSettingsMissing"))
def ingress_no_tls(ing: Obj, ctx: AuditContext) -> Violation | None:
    spec = ing.get("spec") if isinstance(ing.get("spec"), dict) else {}
    tls = [t for t in spec.get("tls") or [] if isinstance(t, dict)] \
        if isinstance(spec.get("tls"), list) else []
    hosts = list(dict.fromkeys(_hosts(ing)))
    if not tls:
        shown = f" for {', '.join(hosts)}" if hosts else ""
        return Violation(f"Ingress {_name(ing)} serves plain HTTP{shown}: spec.tls is not set",
                         fix_text=_tls_fix(hosts))
    # a tls entry without hosts covers the controller's default (wildcard) host
    if any(not t.get("hosts") for t in tls):
        return None
    patterns = [h for t in tls for h in t.get("hosts") or [] if isinstance(h, str)]
    uncovered = [h for h in hosts if not host_covered(h, patterns)]
    if not uncovered:
        return None
    return Violation(f"Ingress {_name(ing)}: host(s) {', '.join(uncovered)} are not covered by "
                     "spec.tls and are served over plain HTTP", fix_text=_tls_fix(uncovered))


def _tls_fix(hosts: list[str]) -> str:
    which = f"hosts {hosts}" if hosts else "the served hosts"
    return (f"add a spec.tls entry with {which} and a secretName holding their certificate "
            "(cert-manager can issue and renew it: annotate the Ingress with its issuer)")
