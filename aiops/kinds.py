"""The Kubernetes kinds the workbench reads, with their API coordinates.

One table shared by the snapshot reader (file names, list kinds), the live
source (API paths) and `aiops capture` (what to write where).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str  # resource name in API paths and snapshot file names
    api_version: str  # "v1" or "group/version"
    namespaced: bool = True
    in_dump: bool = False  # written by `kubectl cluster-info dump` itself

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0] if "/" in self.api_version else ""

    def path(self, namespace: str | None = None) -> str:
        """REST collection path, e.g. /apis/apps/v1/namespaces/ns/deployments."""
        base = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


KINDS: tuple[KindInfo, ...] = (
    KindInfo("Node", "nodes", "v1", namespaced=False, in_dump=True),
    KindInfo("Namespace", "namespaces", "v1", namespaced=False),
    KindInfo("Event", "events", "v1", in_dump=True),
    KindInfo("ReplicationController", "replicationcontrollers", "v1", in_dump=True),
    KindInfo("Service", "services", "v1", in_dump=True),
    KindInfo("DaemonSet", "daemonsets", "apps/v1", in_dump=True),
    KindInfo("Deployment", "deployments", "apps/v1", in_dump=True),
    KindInfo("ReplicaSet", "replicasets", "apps/v1", in_dump=True),
    KindInfo("Pod", "pods", "v1", in_dump=True),
    KindInfo("StatefulSet", "statefulsets", "apps/v1"),
    KindInfo("Job", "jobs", "batch/v1"),
    KindInfo("CronJob", "cronjobs", "batch/v1"),
    KindInfo("ConfigMap", "configmaps", "v1"),
    KindInfo("Secret", "secrets", "v1"),
    KindInfo("ServiceAccount", "serviceaccounts", "v1"),
    KindInfo("Endpoints", "endpoints", "v1"),
    KindInfo("PersistentVolumeClaim", "persistentvolumeclaims", "v1"),
    KindInfo("PersistentVolume", "persistentvolumes", "v1", namespaced=False),
    KindInfo("StorageClass", "storageclasses", "storage.k8s.io/v1", namespaced=False),
    KindInfo("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling/v2"),
    KindInfo("Ingress", "ingresses", "networking.k8s.io/v1"),
    KindInfo("NetworkPolicy", "networkpolicies", "networking.k8s.io/v1"),
    KindInfo("PodDisruptionBudget", "poddisruptionbudgets", "policy/v1"),
    KindInfo("ResourceQuota", "resourcequotas", "v1"),
    KindInfo("LimitRange", "limitranges", "v1"),
    KindInfo("Role", "roles", "rbac.authorization.k8s.io/v1"),
    KindInfo("RoleBinding", "rolebindings", "rbac.authorization.k8s.io/v1"),
    KindInfo("ClusterRole", "clusterroles", "rbac.authorization.k8s.io/v1", namespaced=False),
    KindInfo(
        "ClusterRoleBinding", "clusterrolebindings", "rbac.authorization.k8s.io/v1",
        namespaced=False,
    ),
    KindInfo("PodMetrics", "pods", "metrics.k8s.io/v1beta1"),
    KindInfo("NodeMetrics", "nodes", "metrics.k8s.io/v1beta1", namespaced=False),
)

BY_KIND: dict[str, KindInfo] = {k.kind: k for k in KINDS}

# Snapshot file stem -> kind. Metrics use their own stems so they do not
# collide with pods.json/nodes.json.
FILE_STEMS: dict[str, str] = {
    k.plural: k.kind for k in KINDS if k.group != "metrics.k8s.io"
} | {"podmetrics": "PodMetrics", "nodemetrics": "NodeMetrics",
     # kubectl cluster-info dump spells this one with a hyphen
     "replication-controllers": "ReplicationController"}


def snapshot_file(info: KindInfo) -> str:
    """The file name `aiops capture` writes a kind to (cluster-info dump style)."""
    if info.group == "metrics.k8s.io":
        return f"{info.kind.lower()}.json"
    if info.kind == "ReplicationController":
        return "replication-controllers.json"
    return f"{info.plural}.json"


def kind_of_list(list_kind: str | None) -> str | None:
    """'PodList' -> 'Pod'; the generic 'List' tells nothing."""
    if list_kind and list_kind.endswith("List") and list_kind != "List":
        return list_kind[: -len("List")]
    return None
