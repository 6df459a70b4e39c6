"""What a runbook says about each rule beyond the registry: the signals it reads,
how to confirm it by hand, the remediation steps with their commands, prevention,
and a typical recovery time used until the audit trail has measured one.

The commands are the ones the rules themselves put in their findings'
remediations (aiops/diagnose/rules/*.py), with the object's names replaced by
placeholders (<namespace>, <pod>, <container>, <workload> = kind/name, <node>,
...). A rule without an entry here still gets a runbook section, built from its
registry entry and docstring; tests require an entry for every registered rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    text: str
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleGuide:
    signals: tuple[str, ...]  # the status / event / log signals the rule reads
    confirm: tuple[str, ...]  # read-only kubectl commands
    steps: tuple[Step, ...]
    prevention: tuple[str, ...]
    typical_minutes: int  # a typical time to recover, stated as such


@dataclass(frozen=True)
class FamilyGuide:
    about: str
    prevention: tuple[str, ...] = field(default_factory=tuple)


DESCRIBE_POD = "kubectl describe pod <pod> -n <namespace>"
POD_EVENTS = ("kubectl get events -n <namespace> --field-selector involvedObject.name=<pod> "
              "--sort-by=.lastTimestamp")
POD_YAML = "kubectl get pod <pod> -n <namespace> -o yaml"
LOGS_PREV = "kubectl logs <pod> -n <namespace> -c <container> --previous"
ROLLOUT_STATUS = "kubectl rollout status <workload> -n <namespace>"

FAMILIES: dict[str, FamilyGuide] = {
    "autoscaling": FamilyGuide(
        "HorizontalPodAutoscalers that cannot scale or have run out of room.",
        ("Keep metrics-server (or the custom metrics adapter) monitored like any "
         "critical add-on.",
         "Set CPU/memory requests on every container an HPA scales on.")),
    "config": FamilyGuide(
        "Pods stuck before their containers start: missing ConfigMaps, Secrets, keys or "
        "volumes.",
        ("Ship ConfigMaps and Secrets in the same release (Helm chart, Kustomization) as the "
         "workloads that use them, and apply them first.",
         "An admission policy (Kyverno, Gatekeeper) that rejects pods referencing missing "
         "ConfigMaps/Secrets in CI (`kubeconform`, `kubectl apply --dry-run=server`).")),
    "containers": FamilyGuide(
        "Containers that crash, are killed or never become healthy.",
        ("Requests and limits on every container, sized from measured usage "
         "(`aiops rightsize`).",
         "Liveness, readiness and startup probes that match the application's real "
         "start time and health endpoint.")),
    "images": FamilyGuide(
        "Images the kubelet cannot pull.",
        ("Pin images by immutable tag or digest and verify they exist in CI before deploy.",
         "An admission policy allowing only approved registries.")),
    "logs": FamilyGuide(
        "Failures the application states in its own logs: denied API calls, names that do "
        "not resolve, dependencies that refuse connections, tracebacks.",
        ("Readiness probes that check dependencies the app cannot work without, and "
         "retries with backoff on connect.",
         "Least-privilege RBAC written and tested with the application "
         "(`kubectl auth can-i --as=system:serviceaccount:<namespace>:<sa>`).")),
    "nodes": FamilyGuide(
        "Nodes that are down or under resource pressure.",
        ("Node problem detection and alerts on NotReady / pressure conditions.",
         "System and kube reservations (`--system-reserved`, `--kube-reserved`) and "
         "eviction thresholds on every node.")),
    "scheduling": FamilyGuide(
        "Pods the scheduler cannot place.",
        ("Capacity planning from requests (not usage) with headroom, or a cluster "
         "autoscaler.",
         "Validate nodeSelectors, affinities and tolerations against the node labels and "
         "taints of each environment.")),
    "services": FamilyGuide(
        "Services and Ingresses that route to nothing.",
        ("Generate Service selectors and pod labels from the same values (one Helm "
         "helper / Kustomize commonLabels).",
         "A smoke test after each deploy that calls the Service through its DNS name.")),
    "storage": FamilyGuide(
        "PersistentVolumeClaims that stay unbound.",
        ("A default StorageClass, and explicit storageClassName in every claim.",
         "Monitor the CSI provisioner and its quota at the storage backend.")),
    "workloads": FamilyGuide(
        "Controllers (Deployments, StatefulSets, Jobs, CronJobs) that do not reach their "
        "desired state.",
        ("`progressDeadlineSeconds` and a deploy pipeline that waits on `kubectl rollout "
         "status` and rolls back on failure.",
         "ResourceQuotas sized with headroom for a rolling update's surge.")),
}

G: dict[str, RuleGuide] = {}


def _g(rule_id: str, *, signals: tuple[str, ...] | str, confirm: tuple[str, ...],
       steps: tuple[tuple[str, list[str]], ...], prevention: tuple[str, ...],
       typical_minutes: int) -> None:
    if isinstance(signals, str):  # a one-signal rule written without the trailing comma
        signals = (signals,)
    G[rule_id] = RuleGuide(signals, confirm, tuple(Step(t, tuple(c)) for t, c in steps),
                           prevention, typical_minutes)


# -- containers ----------------------------------------------------------------------
_g("oom-killed",
   signals=("lastState.terminated.reason: OOMKilled, exit code 137",
            "restartCount rising; node event OOMKilling for the container's process",
            "memory usage at the container's limit just before the kill"),
   confirm=(DESCRIBE_POD, LOGS_PREV, "kubectl top pod <pod> -n <namespace> --containers",
            POD_EVENTS),
   steps=(("Measure the container's peak memory (kubectl top, the metrics history, "
           "`aiops rightsize`).", ["kubectl top pod <pod> -n <namespace> --containers"]),
          ("Raise the memory limit (and request) above the peak with a margin; the finding's "
           "Action holds the exact patch and its inverse.",
           ["kubectl set resources <workload> -n <namespace> -c <container> "
            "--limits=memory=<new-limit> --requests=memory=<new-request>"]),
          ("Watch the rollout and the restart count.", [ROLLOUT_STATUS]),
          ("If usage keeps growing after the raise, treat it as a leak: capture a heap "
           "profile and fix the application.", [])),
   prevention=("Memory request = limit = measured peak + 30 % (`aiops rightsize`).",
               "Alert on container memory above 90 % of its limit.",
               "Language runtimes told about the limit (JVM -XX:MaxRAMPercentage, "
               "GOMEMLIMIT, Node --max-old-space-size)."),
   typical_minutes=15)
_g("crash-loop",
   signals=("state.waiting.reason: CrashLoopBackOff", "lastState.terminated exit code and "
            "termination message", "the last lines of the previous container's log",
            "event BackOff \"Back-off restarting failed container\""),
   confirm=(DESCRIBE_POD, LOGS_PREV, POD_EVENTS),
   steps=(("Read the exit code and the previous log: they name the cause (see the exit "
           "code table in the finding).", [LOGS_PREV]),
          ("Fix the cause (configuration, dependency, code); if a recent rollout "
           "introduced it, roll back.",
           ["kubectl rollout history <workload> -n <namespace>",
            "kubectl rollout undo <workload> -n <namespace>"]),
          ("Confirm the container stays up.", [ROLLOUT_STATUS])),
   prevention=("Fail fast with a clear message on bad configuration at start-up.",
               "A startup probe for slow starters so the kubelet does not kill them.",
               "Canary or progressive rollouts that stop on a crash loop."),
   typical_minutes=30)
_g("bad-command",
   signals=("exit code 126/127 or StartError", "\"executable file not found in $PATH\" / "
            "\"no such file or directory\" in the termination message"),
   confirm=(DESCRIBE_POD, "kubectl get pod <pod> -n <namespace> -o "
            "jsonpath='{.spec.containers[*].command} {.spec.containers[*].args}'"),
   steps=(("Check that the command exists in the image.",
           ["kubectl run cmd-check -n <namespace> --rm -it --restart=Never --image=<image> "
            "--command -- sh -c 'command -v <binary>'"]),
          ("Correct `command`/`args` in the workload (or rebuild the image with the "
           "binary).", ["kubectl edit <workload> -n <namespace>"]),
          ("Watch the rollout.", [ROLLOUT_STATUS])),
   prevention=("Run the image's entrypoint in CI (a container structure test).",
               "Prefer the image's own ENTRYPOINT over a command override."),
   typical_minutes=15)
_g("liveness-probe-failed",
   signals=("event Unhealthy \"Liveness probe failed\"", "event Killing \"failed liveness "
            "probe, will be restarted\"", "exit code 137/143 after the probe failures"),
   confirm=(DESCRIBE_POD, POD_EVENTS, LOGS_PREV),
   steps=(("Call the probe's endpoint yourself to see what it answers.",
           ["kubectl port-forward pod/<pod> -n <namespace> <port>:<port> & "
            "curl -sv localhost:<port><path>"]),
          ("If the app is healthy but slow: raise initialDelaySeconds/timeoutSeconds/"
           "failureThreshold or add a startupProbe; if the endpoint is wrong, fix "
           "path/port.", ["kubectl edit <workload> -n <namespace>"]),
          ("Watch the restart count stop rising.", [ROLLOUT_STATUS])),
   prevention=("Liveness checks only the process itself (never a dependency).",
               "A startupProbe covering the slowest observed start."),
   typical_minutes=20)
_g("readiness-probe-failed",
   signals=("event Unhealthy \"Readiness probe failed\"", "condition Ready False while the "
            "container runs", "the pod missing from its Services' endpoints"),
   confirm=(DESCRIBE_POD, POD_EVENTS, "kubectl get endpoints -n <namespace> <service>"),
   steps=(("Call the readiness endpoint to see why it fails.",
           ["kubectl port-forward pod/<pod> -n <namespace> <port>:<port> & "
            "curl -sv localhost:<port><path>"]),
          ("Fix the dependency it reports, or the probe's path/port/timeouts.",
           ["kubectl edit <workload> -n <namespace>"]),
          ("Confirm the pod is back in the endpoints.",
           ["kubectl get endpoints -n <namespace> <service>"])),
   prevention=("Readiness reflects whether the pod can serve, with timeouts matching "
               "the endpoint's latency.",), typical_minutes=20)
_g("evicted",
   signals=("status.phase Failed, status.reason Evicted", "message \"The node was low on "
            "resource: memory/ephemeral-storage\"", "node condition MemoryPressure / "
            "DiskPressure"),
   confirm=(DESCRIBE_POD, "kubectl describe node <node>",
            "kubectl get pods -n <namespace> --field-selector=status.phase=Failed"),
   steps=(("Find what filled the node (memory or disk) and the pods using it.",
           ["kubectl describe node <node>", "kubectl top pods -A --sort-by=memory"]),
          ("Set requests (and ephemeral-storage limits) on the heavy pods so the "
           "scheduler accounts for them.", []),
          ("Delete the evicted pod records once the cause is fixed (the controller "
           "already replaced them).", ["kubectl delete pod <pod> -n <namespace>"])),
   prevention=("Requests = typical usage on every container (BestEffort pods go first).",
               "ephemeral-storage requests/limits for pods writing to local disk."),
   typical_minutes=30)
_g("init-container-failed",
   signals=("Init:CrashLoopBackOff / Init:Error in the pod status",
            "initContainerStatuses[].lastState.terminated with a non-zero exit code"),
   confirm=(DESCRIBE_POD, "kubectl logs <pod> -n <namespace> -c <init-container> --previous",
            POD_EVENTS),
   steps=(("Read the init container's log: it usually waits for or migrates something.",
           ["kubectl logs <pod> -n <namespace> -c <init-container> --previous"]),
          ("Fix what it waits for (a dependency, a migration, a permission), or its "
           "command.", ["kubectl edit <workload> -n <namespace>"]),
          ("Watch the pod reach Running.", [ROLLOUT_STATUS])),
   prevention=("Init containers that retry with a timeout and log what they wait for.",),
   typical_minutes=30)

# -- images ---------------------------------------------------------------------------
_IMG_CONFIRM = (DESCRIBE_POD, POD_EVENTS)
_g("image-not-found",
   signals=("state.waiting.reason ErrImagePull / ImagePullBackOff", "event Failed \"manifest "
            "unknown\" / \"not found\" from the registry"),
   confirm=(*_IMG_CONFIRM, "kubectl rollout history <workload> -n <namespace>"),
   steps=(("Check the image and tag exist (`docker manifest inspect <image>` or the "
           "registry UI).", []),
          ("Point the workload at an existing tag (the last one that ran is in the rollout "
           "history), or roll back.",
           ["kubectl set image <workload> -n <namespace> <container>=<good-image>",
            "kubectl rollout undo <workload> -n <namespace>"]),
          ("Watch the rollout.", [ROLLOUT_STATUS])),
   prevention=("CI pushes the image before the manifest that references it is applied.",
               "Immutable tags or digests; never reuse or delete a deployed tag."),
   typical_minutes=10)
_g("image-invalid-name",
   signals=("state.waiting.reason InvalidImageName", "event InspectFailed \"Failed to apply "
            "default image tag\" / \"invalid reference format\""),
   confirm=(*_IMG_CONFIRM, "kubectl get pod <pod> -n <namespace> -o "
            "jsonpath='{.spec.containers[*].image}'"),
   steps=(("Correct the reference (lowercase repository, no spaces, one ':' before the "
           "tag).", ["kubectl set image <workload> -n <namespace> <container>=<valid-image>"]),
          ("Watch the rollout.", [ROLLOUT_STATUS])),
   prevention=("Lint manifests in CI (`kubeconform`, `aiops audit --manifests`).",),
   typical_minutes=10)
_g("image-pull-auth",
   signals=("ErrImagePull with \"401 Unauthorized\", \"403 Forbidden\", \"denied\", "
            "\"pull access denied\""),
   confirm=(*_IMG_CONFIRM,
            "kubectl get pod <pod> -n <namespace> -o jsonpath='{.spec.imagePullSecrets}'",
            "kubectl get serviceaccount <serviceaccount> -n <namespace> -o "
            "jsonpath='{.imagePullSecrets}'"),
   steps=(("Create (or renew) the registry credential in the pod's namespace.",
           ["kubectl create secret docker-registry regcred -n <namespace> "
            "--docker-server=<registry> --docker-username=<user> --docker-password=<password>"]),
          ("Attach it to the pod's service account (or the pod spec).",
           ["kubectl patch serviceaccount <serviceaccount> -n <namespace> -p "
            "'{\"imagePullSecrets\": [{\"name\": \"regcred\"}]}'"]),
          ("Delete the stuck pod so it is recreated with the credential.",
           ["kubectl delete pod <pod> -n <namespace>"])),
   prevention=("Registry credentials managed by an operator (external-secrets) with expiry "
               "alerts.", "Workload identity / node IAM for cloud registries."),
   typical_minutes=20)
_g("image-pull-network",
   signals=("ErrImagePull with \"dial tcp\", \"i/o timeout\", \"no such host\", "
            "\"x509: certificate\" errors"),
   confirm=(*_IMG_CONFIRM, "kubectl describe node <node>"),
   steps=(("Test DNS and HTTPS from the node to the registry.",
           ["kubectl debug node/<node> -it --image=busybox:1.36 -- "
            "nslookup <registry>"]),
          ("Fix egress (proxy, firewall, NAT), DNS or the registry's CA on the nodes; or "
           "mirror the image to a reachable registry.", [])),
   prevention=("A pull-through cache / mirror inside the network.",
               "Monitoring of node egress to the registries."),
   typical_minutes=45)

# -- config ---------------------------------------------------------------------------
_CFG_CONFIRM = (DESCRIBE_POD, POD_EVENTS)
_g("missing-configmap",
   signals=("state.waiting.reason CreateContainerConfigError", "event Failed "
            "`configmap \"<name>\" not found`", "event FailedMount for a configMap volume"),
   confirm=(*_CFG_CONFIRM, "kubectl get configmaps -n <namespace>"),
   steps=(("Create the ConfigMap (from the release that owns it, or by hand).",
           ["kubectl create configmap <configmap> -n <namespace> --from-literal=<key>=<value>"]),
          ("Delete the stuck pod so it starts with it (or wait for the kubelet's retry).",
           ["kubectl delete pod <pod> -n <namespace>"])),
   prevention=("Mark optional references `optional: true`; apply config before "
               "workloads.",), typical_minutes=10)
_g("missing-secret",
   signals=("state.waiting.reason CreateContainerConfigError", "event Failed "
            "`secret \"<name>\" not found`", "event FailedMount for a secret volume"),
   confirm=(*_CFG_CONFIRM, "kubectl get secrets -n <namespace>"),
   steps=(("Create the Secret (from your secret manager; never paste values into "
           "tickets).", ["kubectl create secret generic <secret> -n <namespace> "
                         "--from-literal=<key>=<value>"]),
          ("Delete the stuck pod so it starts with it.",
           ["kubectl delete pod <pod> -n <namespace>"])),
   prevention=("Secrets delivered by an operator (external-secrets, sealed-secrets) in the "
               "same release as the workload.",), typical_minutes=15)
_g("missing-config-key",
   signals=("CreateContainerConfigError: couldn't find key <key> in ConfigMap/Secret",
            "FailedMount for a volume item naming a missing key"),
   confirm=(*_CFG_CONFIRM, "kubectl get configmap <configmap> -n <namespace> -o "
            "go-template='{{range $k, $v := .data}}{{$k}}{{\"\\n\"}}{{end}}'",
            "kubectl describe secret <secret> -n <namespace>"),
   steps=(("Add the key to the ConfigMap/Secret (or fix the key name the pod uses).",
           ["kubectl patch configmap <configmap> -n <namespace> --type merge -p "
            "'{\"data\": {\"<key>\": \"<value>\"}}'"]),
          ("Delete the stuck pod.", ["kubectl delete pod <pod> -n <namespace>"])),
   prevention=("Schema-check config objects in CI (the keys each workload needs).",),
   typical_minutes=10)
_g("volume-mount-failed",
   signals=("pod stuck in ContainerCreating", "events FailedMount / FailedAttachVolume / "
            "FailedCreatePodSandBox"),
   confirm=(DESCRIBE_POD, POD_EVENTS, "kubectl describe pvc <pvc> -n <namespace>",
            "kubectl get volumeattachments -o wide"),
   steps=(("Read the mount error: a volume still attached to another node, a CSI driver "
           "down, a missing object or a sandbox/CNI problem.",
           ["kubectl get csidrivers",
            "kubectl get pods -n kube-system -o wide --field-selector spec.nodeName=<node>"]),
          ("Fix the cause (detach the stale attachment, restart the CSI node plugin, "
           "create the missing object), then delete the pod.",
           ["kubectl delete pod <pod> -n <namespace>"])),
   prevention=("ReadWriteOnce volumes only on single-replica workloads (or StatefulSets).",
               "CSI and CNI daemonsets monitored on every node."),
   typical_minutes=30)

# -- scheduling -----------------------------------------------------------------------
_SCHED_CONFIRM = ("kubectl describe pod -n <namespace> <pod>",
                  "kubectl get events -n <namespace> --field-selector "
                  "involvedObject.name=<pod>,reason=FailedScheduling")
_g("unschedulable-resources",
   signals=("phase Pending, condition PodScheduled False reason Unschedulable",
            "event FailedScheduling \"0/N nodes are available: Insufficient cpu/memory\""),
   confirm=(*_SCHED_CONFIRM, "kubectl describe nodes", "kubectl top nodes"),
   steps=(("Compare the pod's requests with the nodes' allocatable minus what is already "
           "requested.", ["kubectl get pod -n <namespace> <pod> -o "
                          "jsonpath='{.spec.containers[*].resources}'"]),
          ("Lower over-sized requests (`aiops rightsize`) or add capacity (a node, the "
           "cluster autoscaler's max).",
           ["kubectl set resources <workload> -n <namespace> -c <container> "
            "--requests=cpu=<cpu>,memory=<memory>"]),
          ("Watch the pod get scheduled.", [ROLLOUT_STATUS])),
   prevention=("Requests from measured usage; headroom for a rolling update's surge.",
               "Cluster autoscaler, or alerts on allocatable requested > 85 %."),
   typical_minutes=20)
_g("unschedulable-node-selector",
   signals=("event FailedScheduling \"node(s) didn't match Pod's node affinity/selector\""),
   confirm=(*_SCHED_CONFIRM, "kubectl get nodes --show-labels",
            "kubectl get pod -n <namespace> <pod> -o jsonpath='{.spec.nodeSelector} "
            "{.spec.affinity}'"),
   steps=(("Fix the selector/affinity to labels that exist, or label the intended node.",
           ["kubectl edit <workload> -n <namespace>", "kubectl label node <node> <key>=<value>"]),
          ("Watch the rollout.", [ROLLOUT_STATUS])),
   prevention=("Node labels managed with the node pools (infrastructure as code).",),
   typical_minutes=15)
_g("unschedulable-taint",
   signals=("event FailedScheduling \"node(s) had untolerated taint {...}\"",
            "nodes cordoned (unschedulable) or tainted NoSchedule"),
   confirm=(*_SCHED_CONFIRM, "kubectl get nodes -o custom-columns=NAME:.metadata.name,"
            "TAINTS:.spec.taints,UNSCHEDULABLE:.spec.unschedulable"),
   steps=(("If a node was left cordoned after maintenance, uncordon it.",
           ["kubectl uncordon <node>"]),
          ("If the taint is stale, remove it; if it is intended, add the toleration to the "
           "workload.", ["kubectl taint nodes <node> <key>=<value>:<effect>-",
                         "kubectl edit <workload> -n <namespace>"])),
   prevention=("Maintenance runbooks that uncordon at the end; taints documented with their "
               "tolerations.",), typical_minutes=15)
_g("unschedulable-pvc",
   signals=("event FailedScheduling \"pod has unbound immediate PersistentVolumeClaims\" or "
            "\"persistentvolumeclaim not found\""),
   confirm=(*_SCHED_CONFIRM, "kubectl describe pvc -n <namespace> <pvc>",
            "kubectl get storageclass", "kubectl get pv"),
   steps=(("Create the missing claim or fix why it is unbound (see pvc-pending).",
           ["kubectl describe pvc -n <namespace> <pvc>"]),
          ("Watch the pod get scheduled.", [ROLLOUT_STATUS])),
   prevention=("Claims in the same release as their workloads; a default StorageClass.",),
   typical_minutes=20)

# -- storage --------------------------------------------------------------------------
_g("pvc-pending",
   signals=("PVC status.phase Pending", "events ProvisioningFailed / ExternalProvisioning / "
            "WaitForFirstConsumer", "no StorageClass, a missing provisioner, or no "
            "matching PV"),
   confirm=("kubectl describe pvc -n <namespace> <pvc>", "kubectl get storageclass",
            "kubectl get events -n <namespace> --field-selector involvedObject.name=<pvc>",
            "kubectl get pv"),
   steps=(("Find the provisioner's error in the claim's events; check its pods run.",
           ["kubectl get pods -A | grep -i -e provisioner -e csi"]),
          ("Fix the StorageClass name (a claim's class cannot be changed: recreate the "
           "claim) or the provisioner.",
           ["kubectl get pvc -n <namespace> <pvc> -o yaml > <pvc>.yaml",
            "kubectl delete pvc -n <namespace> <pvc> && kubectl apply -f <pvc>.yaml"]),
          ("Confirm the claim is Bound.", ["kubectl get pvc -n <namespace> <pvc>"])),
   prevention=("A default StorageClass; quota alerts at the storage backend.",),
   typical_minutes=30)

# -- workloads ------------------------------------------------------------------------
_g("rollout-stuck",
   signals=("Deployment condition Progressing False reason ProgressDeadlineExceeded",
            "the new ReplicaSet's pods failing while the old ones still serve"),
   confirm=("kubectl rollout status deployment/<name> -n <namespace> --timeout=10s",
            "kubectl rollout history deployment/<name> -n <namespace>",
            "kubectl describe pod -n <namespace> <pod>"),
   steps=(("Roll back to the last good revision (the finding names it).",
           ["kubectl rollout undo deployment/<name> -n <namespace> --to-revision=<revision>"]),
          ("Fix the failing revision (its pods' findings say why) before rolling forward "
           "again.", []),
          ("Confirm the rollout completes.",
           ["kubectl rollout status deployment/<name> -n <namespace>"])),
   prevention=("Deploy pipelines that wait on `kubectl rollout status` and roll back "
               "automatically.",), typical_minutes=10)
_g("replicas-unavailable",
   signals=("status.availableReplicas < spec.replicas", "condition Available False"),
   confirm=("kubectl get pods -n <namespace> -l <selector> -o wide",
            "kubectl describe <workload> -n <namespace>",
            "kubectl get events -n <namespace> --sort-by=.lastTimestamp"),
   steps=(("Diagnose the unavailable pods: their own findings name the cause.",
           ["aiops diagnose --workload <workload> -n <namespace>"]),
          ("Fix that cause, then confirm the replicas are available.", [ROLLOUT_STATUS])),
   prevention=("PodDisruptionBudgets and anti-affinity so one failure does not take all "
               "replicas.",), typical_minutes=30)
_g("quota-exceeded",
   signals=("ReplicaSet/Job event FailedCreate \"exceeded quota\" or \"forbidden: "
            "minimum/maximum ... LimitRange\""),
   confirm=("kubectl describe <workload> -n <namespace>",
            "kubectl describe resourcequota -n <namespace>",
            "kubectl describe limitrange -n <namespace>"),
   steps=(("Compare the pods' requests with the quota's remaining room and the "
           "LimitRange bounds.", ["kubectl get <workload> -n <namespace> -o "
                                  "jsonpath='{..resources}'"]),
          ("Lower the requests, scale something else down, or raise the quota (an "
           "approved change).", ["kubectl edit resourcequota <quota> -n <namespace>"])),
   prevention=("Quotas with headroom for surge; alerts at 80 % of quota.",),
   typical_minutes=20)
_g("job-failed",
   signals=("Job condition Failed reason BackoffLimitExceeded / DeadlineExceeded",
            "failed pods with their exit codes and logs"),
   confirm=("kubectl describe job -n <namespace> <job>",
            "kubectl logs -n <namespace> job/<job>"),
   steps=(("Read the failed pods' logs and fix the cause.",
           ["kubectl logs -n <namespace> <pod>"]),
          ("Re-run the Job (delete and re-apply it, or from its CronJob).",
           ["kubectl create job -n <namespace> <job>-manual --from=cronjob/<cronjob>"])),
   prevention=("Idempotent jobs with a sensible backoffLimit and activeDeadlineSeconds.",),
   typical_minutes=30)
_g("cronjob-failing",
   signals=("the CronJob's recent Jobs Failed", "spec.suspend true",
            "lastSuccessfulTime older than the schedule"),
   confirm=("kubectl describe cronjob -n <namespace> <cronjob>",
            "kubectl get jobs -n <namespace> --sort-by=.status.startTime"),
   steps=(("Diagnose the last failed Job (see job-failed).",
           ["kubectl logs -n <namespace> job/<job>"]),
          ("Fix it, then run one now to confirm.",
           ["kubectl create job -n <namespace> <cronjob>-manual --from=cronjob/<cronjob>"])),
   prevention=("Alerts on lastSuccessfulTime older than two schedule periods.",),
   typical_minutes=45)

# -- services -------------------------------------------------------------------------
_g("service-selector-mismatch",
   signals=("Service with a selector and no endpoints", "no pod in the namespace carries all "
            "the selector's labels (the closest pods differ by one label)"),
   confirm=("kubectl describe service -n <namespace> <service>",
            "kubectl get endpoints -n <namespace> <service> -o yaml",
            "kubectl get pods -n <namespace> --show-labels"),
   steps=(("Fix the selector to the pods' labels (the finding's Action holds the patch), or "
           "the pods' labels.",
           ["kubectl patch service -n <namespace> <service> --type=merge -p "
            "'{\"spec\": {\"selector\": {\"<key>\": \"<value>\"}}}'"]),
          ("Confirm the endpoints list ready addresses.",
           ["kubectl get endpoints -n <namespace> <service>"])),
   prevention=("Selectors and labels from one template helper.",), typical_minutes=10)
_g("service-no-endpoints",
   signals=("Service selector matches pods, but none is Ready",
            "EndpointSlices with only notReady addresses"),
   confirm=("kubectl get endpointslices -n <namespace> -l "
            "kubernetes.io/service-name=<service>",
            "kubectl get pods -n <namespace> -l <selector> -o wide",
            "kubectl describe pod -n <namespace> <pod>"),
   steps=(("Fix why the pods are not Ready (their own findings), or scale a workload at 0 "
           "replicas back up.", ["kubectl scale <workload> -n <namespace> --replicas=<n>"]),
          ("Confirm the endpoints.", ["kubectl get endpoints -n <namespace> <service>"])),
   prevention=("At least two replicas behind every Service, spread across nodes.",),
   typical_minutes=20)
_g("ingress-backend-missing",
   signals=("an Ingress path whose Service does not exist, lacks the port, or has no ready "
            "endpoints"),
   confirm=("kubectl describe ingress -n <namespace> <ingress>",
            "kubectl get service -n <namespace>",
            "kubectl get endpoints -n <namespace> <service>"),
   steps=(("Point the path at the right Service name and port, or create the Service.",
           ["kubectl edit ingress -n <namespace> <ingress>"]),
          ("Confirm the backend resolves.", ["kubectl describe ingress -n <namespace> "
                                             "<ingress>"])),
   prevention=("Ingress and Service in the same release; a post-deploy HTTP check.",),
   typical_minutes=15)

# -- autoscaling ----------------------------------------------------------------------
_g("hpa-metrics-unavailable",
   signals=("HPA condition ScalingActive False reason FailedGetResourceMetric / "
            "FailedGetExternalMetric", "\"missing request for cpu\" or \"unable to fetch "
            "metrics from resource metrics API\""),
   confirm=("kubectl describe hpa -n <namespace> <hpa>",
            "kubectl get hpa -n <namespace> <hpa> -o yaml",
            "kubectl get apiservice v1beta1.metrics.k8s.io"),
   steps=(("If requests are missing, set them on the target's containers.",
           ["kubectl set resources <workload> -n <namespace> --requests=cpu=<cpu>"]),
          ("If metrics-server is down, restore it.",
           ["kubectl get pods -n kube-system -l k8s-app=metrics-server",
            "kubectl top pods -n <namespace>"]),
          ("Confirm the HPA shows current metrics.", ["kubectl get hpa -n <namespace>"])),
   prevention=("Requests on every container an HPA scales on; metrics-server monitored.",),
   typical_minutes=20)
_g("hpa-at-max",
   signals=("currentReplicas == maxReplicas with the metric still above target",
            "condition ScalingLimited True reason TooManyReplicas"),
   confirm=("kubectl describe hpa -n <namespace> <hpa>", "kubectl top pods -n <namespace>"),
   steps=(("Check the load is real (not a retry storm or a slow dependency).",
           ["kubectl top pods -n <namespace>"]),
          ("Raise maxReplicas (an approved change) if the cluster has room, or make each "
           "replica handle more.",
           ["kubectl patch hpa <hpa> -n <namespace> --type=merge -p "
            "'{\"spec\": {\"maxReplicas\": <n>}}'"])),
   prevention=("maxReplicas from a load test with headroom; alert when pinned at max.",),
   typical_minutes=15)

# -- nodes ----------------------------------------------------------------------------
_g("node-not-ready",
   signals=("node condition Ready False/Unknown", "NodeNotReady events; the kubelet stopped "
            "posting status"),
   confirm=("kubectl describe node <node>",
            "kubectl get pods -A -o wide --field-selector spec.nodeName=<node>",
            "kubectl get events -A --field-selector involvedObject.kind=Node,"
            "involvedObject.name=<node>"),
   steps=(("Check the node itself (kubelet, container runtime, disk, network) from the "
           "cloud console or SSH.", []),
          ("If it will not recover quickly, move the workloads off and replace the node.",
           ["kubectl cordon <node>",
            "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data"])),
   prevention=("Node auto-repair / a node problem detector; enough spare capacity to lose "
               "one node.",), typical_minutes=30)
_g("node-pressure",
   signals=("node condition MemoryPressure / DiskPressure / PIDPressure True",
            "evictions on the node; taints node.kubernetes.io/*-pressure"),
   confirm=("kubectl describe node <node>", "kubectl top node <node>",
            "kubectl get pods -A -o wide --field-selector spec.nodeName=<node>"),
   steps=(("Find the pods using the resource.", ["kubectl top pods -A --sort-by=memory"]),
          ("Move workloads off, free disk (images, logs), set requests on BestEffort pods.",
           ["kubectl cordon <node>",
            "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data"])),
   prevention=("Requests on every pod; image garbage collection thresholds; log rotation.",),
   typical_minutes=30)

# -- logs -----------------------------------------------------------------------------
_g("rbac-forbidden",
   signals=("log lines `... is forbidden: User \"system:serviceaccount:<ns>:<sa>\" cannot "
            "<verb> resource ...`"),
   confirm=("kubectl auth can-i <verb> <resource> -n <namespace> "
            "--as=system:serviceaccount:<namespace>:<serviceaccount>",
            "kubectl get rolebindings -n <namespace> -o wide", LOGS_PREV),
   steps=(("Grant exactly the denied verb on the denied resource (least privilege).",
           ["kubectl create role <role> -n <namespace> --verb=<verb> --resource=<resource>",
            "kubectl create rolebinding <role> -n <namespace> --role=<role> "
            "--serviceaccount=<namespace>:<serviceaccount>"]),
          ("Confirm with can-i and the logs.",
           ["kubectl auth can-i <verb> <resource> -n <namespace> "
            "--as=system:serviceaccount:<namespace>:<serviceaccount>"])),
   prevention=("RBAC shipped with the application and tested with `kubectl auth can-i` in "
               "CI.",), typical_minutes=20)
_g("dns-failure",
   signals=("log lines \"no such host\", \"Name or service not known\", \"getaddrinfo "
            "ENOTFOUND\", \"Temporary failure in name resolution\""),
   confirm=(LOGS_PREV, "kubectl get service -n <namespace>",
            "kubectl run dnscheck -n <namespace> --rm -it --restart=Never "
            "--image=busybox:1.36 -- nslookup <name>"),
   steps=(("A wrong name: fix the host in the app's configuration (the finding names the "
           "closest existing Service).", ["kubectl edit <workload> -n <namespace>"]),
          ("Cluster DNS down: check CoreDNS.",
           ["kubectl get pods -n kube-system -l k8s-app=kube-dns",
            "kubectl logs -n kube-system -l k8s-app=kube-dns --tail=50"])),
   prevention=("Service names from configuration shared with the release; CoreDNS "
               "monitored and scaled.",), typical_minutes=20)
_g("dependency-unreachable",
   signals=("log lines \"connection refused\", \"ECONNREFUSED\", \"connect: timeout\" to "
            "host:port", "the Service behind that host without ready endpoints"),
   confirm=(LOGS_PREV, "kubectl get endpoints -n <namespace> <service>",
            "kubectl describe service -n <namespace> <service>",
            "kubectl run netcheck -n <namespace> --rm -it --restart=Never "
            "--image=busybox:1.36 -- nc -zv <host> <port>"),
   steps=(("Fix the dependency first (its own findings): the crash is its symptom.",
           ["aiops diagnose --namespace <namespace>"]),
          ("Then let the dependent pods restart or restart them.",
           ["kubectl rollout restart <workload> -n <namespace>"])),
   prevention=("Retries with backoff and a readiness probe instead of crashing on a "
               "missing dependency.",), typical_minutes=30)
_g("app-error",
   signals=("a traceback, panic, fatal or ERROR line in the (previous) container log",),
   confirm=(LOGS_PREV, "kubectl logs <pod> -n <namespace> -c <container> --tail=200",
            DESCRIBE_POD),
   steps=(("Read the quoted lines and their context; route to the owning team.", []),
          ("If the last rollout introduced it, roll back.",
           ["kubectl rollout undo <workload> -n <namespace>"])),
   prevention=("Error tracking and alerts on error rates per release.",),
   typical_minutes=60)

GUIDES = G


def guide(rule_id: str) -> RuleGuide | None:
    return GUIDES.get(rule_id)


__all__ = ["FAMILIES", "GUIDES", "FamilyGuide", "RuleGuide", "Step", "guide"]
