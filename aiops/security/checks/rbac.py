"""RBAC: who can take over the cluster. cluster-admin where it does not belong,
wildcards that grant tomorrow's resources too, exec into pods, the verbs that
mint new rights (escalate, bind, impersonate) and cluster-wide Secret reads.

The built-in roles and bindings every cluster has (names starting `system:`,
the aggregated admin/edit/view roles, cluster-admin itself) are not audited as
roles, or a stock cluster would be flooded; a binding of them still is.
Every fix removes the rule, verbs, resources or subjects at fault with a JSON
patch whose inverse puts them back exactly; all are tier critical.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiops.diagnose.finding import Action
from aiops.security.check import Refs, Violation
from aiops.security.fixes import REMOVE, patch
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, meta

FAMILY = "rbac"
Obj = dict[str, Any]
ROLES = ("ClusterRole", "Role")
BINDINGS = ("ClusterRoleBinding", "RoleBinding")
DEFAULT_ROLES = frozenset({"admin", "edit", "view", "cluster-admin"})
# groups every cluster binds cluster-admin to (the API server's and kubeadm's)
ADMIN_GROUPS = frozenset({"system:masters", "kubeadm:cluster-admins"})
# subjects that mean everyone: any request, any credential, every pod
EVERYONE = {("Group", "system:unauthenticated"): "every unauthenticated request",
            ("User", "system:anonymous"): "anonymous requests",
            ("Group", "system:authenticated"): "every authenticated user and pod",
            ("Group", "system:serviceaccounts"): "every ServiceAccount in the cluster"}
# kubeadm's own binding of anonymous to read the cluster-info ConfigMap
STOCK_BINDINGS = frozenset({"kubeadm:bootstrap-signer-clusterinfo"})
ESCALATION_VERBS = ("escalate", "bind", "impersonate")
EXEC_RESOURCES = ("pods/exec", "pods/attach")


def _name(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def stock_role(obj: Obj) -> bool:
    name = _name(obj)
    return name.startswith("system:") or (obj.get("kind") == "ClusterRole"
                                          and name in DEFAULT_ROLES)


def stock_binding(obj: Obj) -> bool:
    return _name(obj).startswith("system:") or _name(obj) in STOCK_BINDINGS


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _rules(role: Obj) -> Iterator[tuple[int, Obj]]:
    for i, r in enumerate(_list(role.get("rules"))):
        if isinstance(r, dict):
            yield i, r


def _role_ref(binding: Obj) -> tuple[str, str]:
    ref = binding.get("roleRef")
    ref = ref if isinstance(ref, dict) else {}
    return str(ref.get("kind") or ""), str(ref.get("name") or "")


def _subjects(binding: Obj) -> Iterator[tuple[int, Obj]]:
    for i, s in enumerate(_list(binding.get("subjects"))):
        if isinstance(s, dict):
            yield i, s


def _who(s: Obj) -> str:
    """A subject as people write it, saying who it really is when it means everyone."""
    kind, name, ns = s.get("kind"), s.get("name"), s.get("namespace")
    who = f"{kind} {ns}/{name}" if kind == "ServiceAccount" and ns else f"{kind} {name}"
    everyone = EVERYONE.get((kind, name))
    return f"{who} ({everyone})" if everyone else who


def _remove_subjects(binding: Obj, indexes: list[int], what: str) -> Action:
    """Remove subjects (highest index first so the others keep their place)."""
    return patch(binding, {("subjects", i): REMOVE for i in sorted(indexes, reverse=True)},
                 description=f"remove {what} from {binding.get('kind')} {_name(binding)}",
                 tier="critical")


def _remove_from_rules(role: Obj, items: dict[int, tuple[str, list[str]]],
                       what: str) -> Action:
    """Per rule: remove some entries of one of its lists (`field`, `values`), or the
    whole rule when nothing else would be left in that list."""
    changes: dict[tuple[str | int, ...], Any] = {}
    for i in sorted(items, reverse=True):
        field, values = items[i]
        current = _list(role["rules"][i].get(field))
        keep = [v for v in current if v not in values]
        if not keep:
            changes[("rules", i)] = REMOVE
            continue
        for j in sorted((j for j, v in enumerate(current) if v in values), reverse=True):
            changes[("rules", i, field, j)] = REMOVE
    return patch(role, changes, description=f"remove {what} from {role.get('kind')} "
                                            f"{_name(role)}", tier="critical")


@check("rbac-cluster-admin-binding", family=FAMILY, severity="danger", category="security",
       target="object", kinds=BINDINGS, title="cluster-admin bound outside kube-system",
       rationale="cluster-admin can do anything, including reading every Secret and "
                 "granting itself more; outside the control plane's own accounts it turns "
                 "one compromised pod or user into a compromised cluster.",
       refs=Refs(polaris="clusterrolebindingClusterAdmin"))
def cluster_admin_binding(b: Obj, ctx: AuditContext) -> Violation | None:
    kind, name = _role_ref(b)
    if kind != "ClusterRole" or name != "cluster-admin":
        return None
    bad: list[int] = []
    for i, s in _subjects(b):
        sk, sn = s.get("kind"), s.get("name")
        if sk == "Group" and sn in ADMIN_GROUPS:
            continue
        if (sk == "ServiceAccount" and b.get("kind") == "ClusterRoleBinding"
                and s.get("namespace") == "kube-system"):
            continue
        bad.append(i)
    if not bad:
        return None
    subjects = _list(b.get("subjects"))
    whos = ", ".join(_who(subjects[i]) for i in bad)
    scope = "the whole cluster" if b.get("kind") == "ClusterRoleBinding" else \
        f"namespace {meta(b).get('namespace') or 'default'}"
    return Violation(
        f"{b.get('kind')} {_name(b)} grants cluster-admin over {scope} to {whos}",
        _remove_subjects(b, bad, whos),
        "remove these subjects and bind a role with only the rights they need; a person "
        "who needs cluster-admin should get it through an audited group")


@check("rbac-binding-to-everyone", family=FAMILY, severity="danger", category="security",
       target="object", kinds=BINDINGS, title="Role bound to all users or anonymous",
       rationale="system:authenticated, system:unauthenticated, system:anonymous and "
                 "system:serviceaccounts mean everyone (with any credential, or none): a "
                 "role bound to them is granted to the whole world that can reach the API.")
def binding_to_everyone(b: Obj, ctx: AuditContext) -> Violation | None:
    if stock_binding(b) or _role_ref(b) == ("ClusterRole", "cluster-admin"):
        return None  # cluster-admin is reported by rbac-cluster-admin-binding
    bad = [(i, _who(s)) for i, s in _subjects(b) if (s.get("kind"), s.get("name")) in EVERYONE]
    if not bad:
        return None
    kind, name = _role_ref(b)
    whos = ", ".join(who for _i, who in bad)
    return Violation(
        f"{b.get('kind')} {_name(b)} grants {kind} {name} to {whos}",
        _remove_subjects(b, [i for i, _w in bad], whos),
        "bind the role to the users, groups or ServiceAccounts that need it instead")


@check("rbac-wildcard", family=FAMILY, severity="warning", category="security",
       target="object", kinds=ROLES, title="Wildcard verbs or resources in a role",
       rationale="A `*` grants every verb or resource, including ones added later by CRDs "
                 "and API upgrades, so nobody can say what the role allows.",
       refs=Refs(checkov=("CKV_K8S_49",)))
def wildcard(role: Obj, ctx: AuditContext) -> Violation | None:
    if stock_role(role):
        return None
    bad = {i: r for i, r in _rules(role)
           if "*" in _list(r.get("verbs")) or "*" in _list(r.get("resources"))}
    if not bad:
        return None
    what = "; ".join(f"rule {i} (verbs {_list(r.get('verbs'))}, resources "
                     f"{_list(r.get('resources'))})" for i, r in bad.items())
    action = patch(role, {("rules", i): REMOVE for i in sorted(bad, reverse=True)},
                   description=f"remove the wildcard rules {sorted(bad)} from "
                               f"{role.get('kind')} {_name(role)}", tier="critical")
    return Violation(f"{role.get('kind')} {_name(role)} grants wildcards: {what}", action,
                     "replace each wildcard rule by the explicit verbs and resources the "
                     "subjects use (`kubectl auth can-i --list --as ...` or audit logs show "
                     "them); the patch removes the rules, which withdraws those rights")


@check("rbac-pod-exec-attach", family=FAMILY, severity="warning", category="security",
       target="object", kinds=ROLES, title="Role allows exec or attach into pods",
       rationale="Exec and attach run commands inside any pod the role covers, with that "
                 "pod's token, Secrets and network position.",
       refs=Refs(polaris="clusterrolePodExecAttach"))
def pod_exec_attach(role: Obj, ctx: AuditContext) -> Violation | None:
    if stock_role(role):
        return None
    bad: dict[int, tuple[str, list[str]]] = {}
    for i, r in _rules(role):
        groups = _list(r.get("apiGroups"))
        verbs = _list(r.get("verbs"))
        hit = [x for x in EXEC_RESOURCES if x in _list(r.get("resources"))]
        # get was enough through a WebSocket upgrade before Kubernetes 1.31
        if hit and ("" in groups or "*" in groups) and {"create", "get", "*"} & set(verbs):
            bad[i] = ("resources", hit)
    if not bad:
        return None
    what = "; ".join(f"rule {i}: {', '.join(h)}" for i, (_f, h) in bad.items())
    return Violation(f"{role.get('kind')} {_name(role)} allows {what}",
                     _remove_from_rules(role, bad, "pods/exec and pods/attach"),
                     "remove pods/exec and pods/attach; give break-glass access through a "
                     "separate, audited role when it is needed")


@check("rbac-escalation-verbs", family=FAMILY, severity="danger", category="security",
       target="object", kinds=ROLES, title="Role grants escalate, bind or impersonate",
       rationale="escalate and bind let a subject create roles or bindings with rights it "
                 "does not have, and impersonate lets it act as any user, group or "
                 "ServiceAccount: each is a path to cluster-admin.",
       refs=Refs(checkov=("CKV_K8S_157", "CKV_K8S_158")))
def escalation_verbs(role: Obj, ctx: AuditContext) -> Violation | None:
    if stock_role(role):
        return None
    bad: dict[int, tuple[str, list[str]]] = {}
    for i, r in _rules(role):
        hit = [v for v in ESCALATION_VERBS if v in _list(r.get("verbs"))]
        if hit:
            bad[i] = ("verbs", hit)
    if not bad:
        return None
    what = "; ".join(f"rule {i}: {', '.join(h)} on {_list(role['rules'][i].get('resources'))}"
                     for i, (_f, h) in bad.items())
    return Violation(f"{role.get('kind')} {_name(role)} grants {what}",
                     _remove_from_rules(role, bad, "escalate, bind and impersonate"),
                     "remove these verbs; controllers that manage RBAC (e.g. an operator) "
                     "should be exempted by name with the reason")


def _grants_secret_read(role: Obj | None, name: str) -> bool:
    if role is None:
        return name in ("admin", "edit")  # built-in roles, absent from manifests
    for _i, r in _rules(role):
        groups = _list(r.get("apiGroups"))
        resources = _list(r.get("resources"))
        verbs = _list(r.get("verbs"))
        if (("" in groups or "*" in groups) and ("secrets" in resources or "*" in resources)
                and {"get", "list", "watch", "*"} & set(verbs) and not r.get("resourceNames")):
            return True
    return False


@check("rbac-cluster-secrets-read", family=FAMILY, severity="danger", category="security",
       target="object", kinds=("ClusterRoleBinding",), title="Secrets readable cluster-wide",
       rationale="get, list or watch on secrets through a ClusterRoleBinding reads every "
                 "Secret of every namespace, kube-system's tokens and keys included.")
def cluster_secrets_read(b: Obj, ctx: AuditContext) -> Violation | None:
    kind, name = _role_ref(b)
    if stock_binding(b) or kind != "ClusterRole" or name == "cluster-admin":
        return None  # cluster-admin is reported by rbac-cluster-admin-binding
    if not _grants_secret_read(ctx.get("ClusterRole", "", name), name):
        return None
    bad = [i for i, s in _subjects(b)
           if not (s.get("kind") == "ServiceAccount" and s.get("namespace") == "kube-system")]
    if not bad:
        return None
    subjects = _list(b.get("subjects"))
    whos = ", ".join(_who(subjects[i]) for i in bad)
    return Violation(
        f"ClusterRoleBinding {_name(b)} lets {whos} read Secrets in every namespace "
        f"(through ClusterRole {name})",
        _remove_subjects(b, bad, whos),
        f"bind ClusterRole {name} with a RoleBinding in each namespace whose Secrets they "
        "need, then remove them from this ClusterRoleBinding")


@check("rbac-default-service-account-bound", family=FAMILY, severity="warning",
       category="security", target="object", kinds=BINDINGS,
       title="Role bound to a default ServiceAccount",
       rationale="Every pod that names no ServiceAccount runs as `default`, so a role bound "
                 "to it is silently granted to all of them.",
       refs=Refs(checkov=("CKV_K8S_42",)))
def default_sa_bound(b: Obj, ctx: AuditContext) -> Violation | None:
    if stock_binding(b):
        return None
    bad = [i for i, s in _subjects(b)
           if s.get("kind") == "ServiceAccount" and s.get("name") == "default"]
    if not bad:
        return None
    subjects = _list(b.get("subjects"))
    kind, name = _role_ref(b)
    whos = ", ".join(_who(subjects[i]) for i in bad)
    return Violation(
        f"{b.get('kind')} {_name(b)} grants {kind} {name} to {whos}",
        _remove_subjects(b, bad, whos),
        "create a dedicated ServiceAccount for the workload that needs the role, bind it "
        "instead and set serviceAccountName on that workload")
