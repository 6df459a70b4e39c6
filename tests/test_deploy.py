"""deploy/: the image recipe and the in-cluster manifests.

Every manifest is valid against the Kubernetes 1.33 schemas, passes our own audit with
no danger-level finding, and keeps the promises the README makes: read-only reader,
executor rights only in its overlay, the seed plan's times, bounded runs, restricted
pods. The two shell helpers baked into the image are run for real.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cronsim import CronSim

from aiops.kinds import KINDS
from aiops.schedule.config import default_schedule, parse_schedule
from aiops.security import audit, load_manifests

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
BASE = K8S / "base"
EXECUTOR = K8S / "overlays" / "executor"
SCRIPTS = DEPLOY / "scripts"
SCHEMA_VERSION = "1.33.0"
Obj = dict[str, Any]

# Kinds the tool reads that the reader ClusterRole leaves out on purpose, with why.
NOT_READ = {"secrets": "every Secret of every namespace is a danger finding "
                       "(rbac-cluster-secrets-read); missing Secrets show in pod events"}
# The only exemptions our own deployment may carry: (kind, name, check).
EXEMPTIONS = {
    *(("CronJob", f"aiops-report-{n}", "automount-service-account-token")
      for n in ("health", "utilization", "cost", "security", "operations")),
    ("CronJob", "aiops-execute", "automount-service-account-token"),
    ("Deployment", "aiops-watch", "automount-service-account-token"),
    ("Deployment", "aiops-watch", "deployment-single-replica"),
}
POD_KINDS = ("CronJob", "Deployment", "Job", "StatefulSet", "DaemonSet", "Pod")


# -- rendering ------------------------------------------------------------------------
def _docs(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render(directory: Path) -> list[Obj]:
    """A kustomization's objects: its `resources`, directories followed recursively.

    Our kustomizations only list resources (no patches, no generators), so this is
    what `kubectl kustomize` prints; the test below compares the two when kubectl is
    installed.
    """
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kust) <= {"apiVersion", "kind", "resources"}, "only plain resources"
    out: list[Obj] = []
    for res in kust["resources"]:
        target = (directory / res).resolve()
        out.extend(render(target) if target.is_dir() else _docs(target))
    return out


def ident(o: Obj) -> tuple[str, str, str]:
    return o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]


@cache
def base() -> tuple[Obj, ...]:
    return tuple(render(BASE))


@cache
def executor() -> tuple[Obj, ...]:
    return tuple(render(EXECUTOR))


def everything() -> list[Obj]:
    """Every object of every overlay, once."""
    seen: dict[tuple[str, str, str], Obj] = {}
    for o in (*base(), *executor()):
        seen.setdefault(ident(o), o)
    return list(seen.values())


def named(kind: str, name: str, objs: tuple[Obj, ...] | list[Obj] | None = None) -> Obj:
    (o,) = [o for o in (objs or everything()) if o["kind"] == kind
            and o["metadata"]["name"] == name]
    return o


def pod_specs() -> Iterator[tuple[Obj, Obj]]:
    """(workload, pod spec) of every object that runs pods."""
    for o in everything():
        if o["kind"] == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif o["kind"] in POD_KINDS:
            yield o, o["spec"]["template"]["spec"]


def containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_manifest_file_is_part_of_an_overlay() -> None:
    files = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    listed: set[Path] = set()
    for kust in K8S.rglob("kustomization.yaml"):
        for res in yaml.safe_load(kust.read_text())["resources"]:
            listed.add((kust.parent / res).resolve())
    assert files - listed == set()
    assert len(everything()) == len({ident(o) for o in (*base(), *executor())})


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", [BASE, EXECUTOR], ids=["base", "executor"])
def test_kubectl_kustomize_renders_the_same_objects(overlay: Path) -> None:
    done = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True,
                          text=True, check=True, timeout=60)
    theirs = sorted(ident(o) for o in yaml.safe_load_all(done.stdout) if o)
    assert theirs == sorted(ident(o) for o in render(overlay))


# -- schemas ----------------------------------------------------------------------------
@cache
def _validator(kind: str, api_version: str) -> Any:
    """kubernetes-validate's strict 1.33 schema for a kind (as tests/test_demo_cluster.py)."""
    import jsonschema
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    v = SCHEMA_VERSION
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    root = f"kubernetes-json-schema/v{v}-local-strict"
    schema = schema_contents(f"{root}/{kind.lower()}-{api}.json", v)
    defs = schema_contents(f"{root}/_definitions.json", v)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def test_every_object_validates_against_the_1_33_schemas() -> None:
    errors = [f"{o['kind']} {o['metadata']['name']}: {list(e.absolute_path)} {e.message[:160]}"
              for o in everything()
              for e in _validator(o["kind"], o["apiVersion"]).iter_errors(o)]
    assert not errors, "\n".join(errors)
    assert len(everything()) >= 15


def test_the_schema_check_catches_a_typo() -> None:
    cron = named("CronJob", "aiops-report-health")
    bad = {**cron, "spec": {**cron["spec"], "concurrencyPolcy": "Forbid"}}
    assert list(_validator("CronJob", "batch/v1").iter_errors(bad))


# -- our own audit ---------------------------------------------------------------------
@cache
def audited() -> Any:
    state, origin = load_manifests(K8S)
    return state, audit(state, origin=origin)


def test_the_loader_reads_every_object() -> None:
    state, _ = audited()
    loaded = {ident(o) for objs in state.objects.values() for o in objs}
    assert loaded == {ident(o) for o in everything()}
    # the only documents it cannot audit are the two kustomization files
    assert sorted(Path(p.where).name for p in state.problems) == ["kustomization.yaml"] * 2


def test_our_deployment_passes_our_audit_with_no_danger() -> None:
    _, rep = audited()
    assert [f"{r.check.id} {r.kind}/{r.name} {r.message}" for r in rep.dangers()] == []
    assert all(r.severity != "danger" for r in rep.exempted()), "no danger is exempted"
    assert rep.score.value >= 95


def test_exemptions_are_the_listed_ones_each_with_a_reason() -> None:
    _, rep = audited()
    assert {(r.kind, r.name, r.check.id) for r in rep.exempted()} == EXEMPTIONS
    for r in rep.exempted():
        assert len(r.exempt_reason) > 20, r
    # nothing fails outside the exemptions but info-level notes (digest pinning, ...)
    assert {r.severity for r in rep.failures(include_exempt=False)} <= {"info"}


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    _, rep = audited()
    assert rep.pss_levels() == {"aiops": "restricted"}
    ns = named("Namespace", "aiops")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- RBAC --------------------------------------------------------------------------------
def _rules(role: Obj) -> list[Obj]:
    return role["rules"]


def test_reader_cluster_role_is_read_only_and_matches_the_kinds_we_read() -> None:
    role = named("ClusterRole", "aiops-read")
    granted: set[tuple[str, str]] = set()
    for r in _rules(role):
        assert "resourceNames" not in r
        if r["resources"] == ["pods/log"]:
            assert r["verbs"] == ["get"], "logs: get only"
            continue
        assert sorted(r["verbs"]) == ["get", "list", "watch"]
        granted |= {(g, res) for g in r["apiGroups"] for res in r["resources"]}
    wanted = {(k.group, k.plural) for k in KINDS if k.plural not in NOT_READ}
    assert granted == wanted
    assert not any(res in NOT_READ for _g, res in granted)


def test_only_the_reader_is_bound_cluster_wide() -> None:
    bindings = [o for o in everything() if o["kind"] == "ClusterRoleBinding"]
    assert [(b["roleRef"]["name"], b["subjects"]) for b in bindings] == [
        ("aiops-read", [{"kind": "ServiceAccount", "name": "aiops-reader",
                         "namespace": "aiops"}])]


def test_executor_role_is_namespaced_without_secrets_or_rbac() -> None:
    role = named("Role", "aiops-executor", executor())
    assert role["metadata"]["namespace"]
    write = {"patch", "create", "delete"}
    targets: set[str] = set()
    for r in _rules(role):
        assert "rbac.authorization.k8s.io" not in r["apiGroups"] and "*" not in r["apiGroups"]
        assert not {"secrets", "*"} & set(r["resources"])
        assert not {"escalate", "bind", "impersonate", "*"} & set(r["verbs"])
        if write & set(r["verbs"]):
            targets |= set(r["resources"])
    assert targets == {"deployments", "statefulsets", "configmaps", "pods",
                       "horizontalpodautoscalers"}


def test_executor_rights_exist_only_in_its_overlay() -> None:
    def executor_bindings(objs: tuple[Obj, ...]) -> list[Obj]:
        return [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
                and any(s["name"] == "aiops-executor" for s in o["subjects"])]

    assert not [o for o in base() if o["kind"] == "Role"]
    assert executor_bindings(base()) == []
    bound = executor_bindings(executor())
    assert {(b["kind"], b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bound} == {
        ("RoleBinding", "Role", "aiops-executor"), ("RoleBinding", "ClusterRole", "aiops-read")}
    assert {b["metadata"]["namespace"] for b in bound} == {
        named("Role", "aiops-executor", executor())["metadata"]["namespace"]}
    users = {o["metadata"]["name"] for o, spec in pod_specs()
             if spec["serviceAccountName"] == "aiops-executor"}
    assert users == {"aiops-execute"}
    assert "aiops-execute" not in {o["metadata"]["name"] for o in base()}


def test_tokens_are_mounted_only_by_pods_that_use_the_api() -> None:
    for sa in (o for o in everything() if o["kind"] == "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]
    for o, spec in pod_specs():
        assert spec["serviceAccountName"] in ("aiops-reader", "aiops-executor")
        assert "automountServiceAccountToken" in spec, o["metadata"]["name"]


# -- CronJobs -----------------------------------------------------------------------
def cronjobs() -> dict[str, Obj]:
    return {o["metadata"]["labels"]["aiops.io/report"]: o for o in base()
            if o["kind"] == "CronJob"}


def configmap_schedule() -> Any:
    cm = named("ConfigMap", "aiops-schedule")
    return parse_schedule(yaml.safe_load(cm["data"]["schedules.yaml"]), "aiops-schedule")


def test_cronjobs_follow_the_seed_plan() -> None:
    seed = default_schedule().reports
    jobs = cronjobs()
    assert set(jobs) == set(seed)
    plan = configmap_schedule().reports
    for name, job in jobs.items():
        assert job["spec"]["schedule"] == seed[name].cron == plan[name].cron, name
        assert job["spec"]["timeZone"] == "Etc/UTC" and plan[name].timezone == "UTC"
        assert plan[name].source == "kube", "in the cluster, the reports read the cluster"
        args = " ".join(job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                        ["containers"][0]["args"])
        assert f"aiops schedule once --only {name} " in args
        assert "aiops-history push" in args


def test_cronjobs_are_bounded_and_never_overlap() -> None:
    plan = configmap_schedule().reports
    fires: list[tuple[datetime, str]] = []
    start = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
    for name, job in cronjobs().items():
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert 0 < spec["startingDeadlineSeconds"] <= 3600
        assert 0 < spec["successfulJobsHistoryLimit"] <= 5
        assert 0 < spec["failedJobsHistoryLimit"] <= 5
        deadline = spec["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        r = plan[name]
        worst = r.wall_timeout * (r.retries + 1) + sum(r.backoff * 2**i for i in range(r.retries))
        assert worst < deadline, f"{name}: `once` may need {worst}s, the Job ends at {deadline}s"
        it = CronSim(spec["schedule"], start)
        fires += [(next(it), name) for _ in range(8)]
    # the reports volume is ReadWriteOnce: each run's deadline ends before the next starts
    deadlines = {n: c["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
                 for n, c in cronjobs().items()}
    fires.sort()
    for (t1, n1), (t2, n2) in itertools.pairwise(fires):
        assert t1 + timedelta(seconds=deadlines[n1]) <= t2, (n1, t1, n2, t2)


def test_every_container_has_requests_limits_and_a_restricted_context() -> None:
    seen = 0
    for o, spec in pod_specs():
        name = o["metadata"]["name"]
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0, name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in containers(spec):
            seen += 1
            res = c["resources"]
            assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory"}, name
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts.get("/tmp") in tmp, f"{name}/{c['name']}: /tmp is not an emptyDir"
            assert ":latest" not in c["image"] and ":" in c["image"]
    assert seen >= 12


def test_reports_land_on_the_pvc_and_credentials_only_come_from_secrets() -> None:
    assert named("PersistentVolumeClaim", "aiops-reports")
    assert not [o for o in everything() if o["kind"] == "Secret"], "no Secret in the repository"
    for name, job in cronjobs().items():
        spec = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in spec["volumes"]}
        assert vols["data"]["persistentVolumeClaim"]["claimName"] == "aiops-reports", name
        assert vols["git-remote"]["secret"]["secretName"] == "aiops-history-remote", name
        for c in containers(spec):
            for e in c.get("env", []):
                assert not re.search(r"TOKEN|PASSWORD|SECRET|KEY|URL", e["name"]), e


def test_watcher_is_one_replica_with_exec_probes() -> None:
    dep = named("Deployment", "aiops-watch")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["args"][:2] == ["aiops", "watch"]
    beat = c["args"][c["args"].index("--heartbeat") + 1]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        cmd = c[probe]["exec"]["command"]
        assert cmd[:2] == ["aiops-heartbeat-fresh", beat], probe
    assert beat.startswith("/tmp/")


def test_network_policy_denies_ingress_and_limits_egress() -> None:
    np = named("NetworkPolicy", "aiops-egress-only")
    assert np["spec"]["ingress"] == [] and set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ports = {(p["protocol"], p["port"]) for rule in np["spec"]["egress"] for p in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443), ("TCP", 22)}
    labels = np["spec"]["podSelector"]["matchLabels"]
    for o, _spec in pod_specs():
        tmpl = (o["spec"]["jobTemplate"]["spec"]["template"] if o["kind"] == "CronJob"
                else o["spec"]["template"])
        assert labels.items() <= tmpl["metadata"]["labels"].items(), o["metadata"]["name"]


# -- the image -----------------------------------------------------------------------------
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_builds_a_non_root_runtime_image_with_the_kernel() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [a for i, a in steps if i == "USER"]
    assert users, "USER is set"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "the last USER is a numeric non-root uid"
    runs = " && ".join(a for i, a in steps if i == "RUN")
    assert "python -m ipykernel install --sys-prefix" in runs
    assert re.search(r"pip install \.(\s|$)", runs), "runtime only: no [lab] or [test] extras"
    assert "[lab]" not in runs and "[test]" not in runs
    uid_in_manifests = {spec["securityContext"]["runAsUser"] for _o, spec in pod_specs()}
    assert uid_in_manifests == {int(uid)}


def test_dockerfile_has_no_secrets_and_copies_what_the_manifests_run() -> None:
    steps = dockerfile()
    for instr, args in steps:
        if instr in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(TOKEN|PASSWORD|SECRET|API_KEY|PRIVATE)", args, re.I), args
        if instr in ("COPY", "ADD"):
            assert not re.search(r"kubeconfig|\.kube|id_rsa|\.pem|\.env\b", args), args
    copied = " ".join(a for i, a in steps if i == "COPY")
    used = {c["command"][0] for _o, spec in pod_specs() for c in containers(spec)
            if c.get("command") and not c["command"][0].startswith("/")}
    used |= {"aiops-heartbeat-fresh"}
    for tool in used:
        assert f"deploy/scripts/{tool} /usr/local/bin/{tool}" in copied, tool
        assert (SCRIPTS / tool).is_file()
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("**") if "**" in ignore else 0] == "**", "allow-list context"
    for needed in ("pyproject.toml", "aiops/**", "notebooks/reports/**", "deploy/scripts/**"):
        assert f"!{needed}" in ignore


# -- the helpers baked into the image ----------------------------------------------------
def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return env


def test_history_script_inits_then_pushes_to_the_remote_from_the_secret(
        tmp_path: Path, git_env: dict[str, str]) -> None:
    script = str(SCRIPTS / "aiops-history")
    secret, work, remote = tmp_path / "secret", tmp_path / "work", tmp_path / "remote.git"
    secret.mkdir()
    env = {**git_env, "AIOPS_GIT_SECRET_DIR": str(secret)}
    # no Secret: a local repository, and push says the history stays on the volume
    subprocess.run([script, "prepare", str(work)], env=env, check=True, capture_output=True)
    assert (work / ".git").is_dir()
    (work / "history").mkdir()
    (work / "history" / "r.md").write_text("record\n")
    _git("add", ".", cwd=work)
    subprocess.run(["git", "commit", "-qm", "phr"], cwd=work, env=env, check=True)
    done = subprocess.run([script, "push", str(work)], env=env, check=True,
                          capture_output=True, text=True)
    assert "stays on the volume" in done.stdout
    # with the Secret's url: pushed to the remote's branch
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    (secret / "url").write_text(f"file://{remote}\n")
    subprocess.run([script, "push", str(work)], env=env, check=True, capture_output=True)
    assert _git("rev-parse", "main", cwd=remote) == _git("rev-parse", "HEAD", cwd=work)
    # a fresh volume clones the trail back
    again = tmp_path / "again"
    subprocess.run([script, "prepare", str(again)], env=env, check=True, capture_output=True)
    assert (again / "history" / "r.md").read_text() == "record\n"
    # an ssh key without known_hosts is refused rather than trusting any host
    (secret / "ssh-privatekey").write_text("not a key\n")
    bad = subprocess.run([script, "push", str(work)], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "known_hosts" in bad.stderr


def test_heartbeat_probe_fails_on_a_stale_or_missing_file(tmp_path: Path) -> None:
    script = str(SCRIPTS / "aiops-heartbeat-fresh")
    beat = tmp_path / "heartbeat"
    assert subprocess.run([script, str(beat), "60"], capture_output=True).returncode == 1
    beat.touch()
    assert subprocess.run([script, str(beat), "60"], capture_output=True).returncode == 0
    old = time.time() - 120
    os.utime(beat, (old, old))
    stale = subprocess.run([script, str(beat), "60"], capture_output=True, text=True)
    assert stale.returncode == 1 and "old" in stale.stderr


def test_every_aiops_command_in_the_manifests_parses() -> None:
    """The containers' `aiops ...` commands (also inside shell scripts) name real
    commands and options: a renamed option must not break the deployment silently."""
    import re
    import shlex

    import typer

    from aiops.cli import app

    root = typer.main.get_command(app)
    checked = 0
    for _w, spec in pod_specs():
        for c in spec.get("containers") or []:
            text = " ".join(str(x) for x in [*(c.get("command") or []), *(c.get("args") or [])])
            text = re.sub(r'"?\$\([^)]*\)"?', "ID", text)  # $(cat ...) gives an id
            for m in re.finditer(r"(?:^|[\s;&|])aiops\s+([^;&|\n]+)", text):
                args = shlex.split(m.group(1))
                cmd = root  # typer's own click: groups are what have subcommands
                while hasattr(cmd, "commands") and args and args[0] in cmd.commands:
                    cmd, args = cmd.commands[args[0]], args[1:]
                assert not hasattr(cmd, "commands"), f"no such command: {m.group(0)}"
                cmd.make_context(cmd.name, list(args))  # raises on an unknown option
                checked += 1
    assert checked >= 6
