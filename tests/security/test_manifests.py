"""Manifests as audit input: multi-document YAML and JSON, helm/kustomize output,
and bad documents reported by file and document index while the rest is audited."""

from __future__ import annotations

import json

import pytest

from aiops.errors import SourceError
from aiops.security import audit, load_manifests

HELM = """\
---
# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: shop/web:latest
---
# Source: shop/templates/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
---
kind: ConfigMap
apiVersion: v1
metadata: {}
data: {a: b}
---
- just
- a list
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: shop-web, namespace: shop}
    spec: {selector: {app: web}, ports: [{port: 80}]}
"""


def test_helm_output_with_bad_documents(tmp_path):
    f = tmp_path / "rendered.yaml"
    f.write_text(HELM)
    state, origin = load_manifests(f)
    assert [d["metadata"]["name"] for d in state.kind("Deployment")] == ["shop-web"]
    assert [s["metadata"]["name"] for s in state.kind("Service")] == ["shop-web"]
    problems = [str(p) for p in state.problems]
    assert any("document 1: kind CustomResourceDefinition" in p for p in problems)
    assert any("document 2: kind Widget (example.com/v1)" in p for p in problems)
    assert any("document 3: ConfigMap without metadata.name" in p for p in problems)
    assert any("document 4: not a Kubernetes object" in p for p in problems)
    assert all(p.startswith(str(f)) for p in problems)
    # the Deployment's first line of content (after the '---' and the comment)
    deployment = state.kind("Deployment")[0]
    assert origin[id(deployment)] == (str(f), 3)
    report = audit(state, checks=["image-tag-latest"], origin=origin)
    [r] = report.failures()
    assert (r.namespace, r.name, r.file, r.line) == ("default", "shop-web", str(f), 3)


def test_invalid_yaml_keeps_the_documents_before_it(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: x}\n"
                 "---\nkind: [unclosed\n")
    state, _ = load_manifests(f)
    assert [o["metadata"]["name"] for o in state.kind("ServiceAccount")] == ["a"]
    [p] = state.problems
    assert "document 1: invalid YAML at line" in p.message


def test_directory_of_yaml_and_json(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pod.json").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{"name": "c", "image": "img"}]}}))
    (tmp_path / "b.yml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n")
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "README.md").write_text("not a manifest")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("kind: [")
    state, origin = load_manifests(tmp_path)
    assert len(state.kind("Pod")) == 1 and len(state.kind("Namespace")) == 1
    assert [p.where for p in state.problems] == [str(tmp_path / "bad.json")]
    assert origin[id(state.kind("Pod")[0])] == (str(tmp_path / "a" / "pod.json"), 1)


def test_secret_values_are_dropped_on_load(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
                 "stringData: {password: hunter2-planted}\n")
    state, _ = load_manifests(f)
    assert "hunter2-planted" not in json.dumps(state.kind("Secret"))


@pytest.mark.parametrize("setup", ["missing", "empty"])
def test_unusable_path_is_a_clear_error(tmp_path, setup):
    path = tmp_path / "nothing" if setup == "missing" else tmp_path
    with pytest.raises(SourceError) as err:
        load_manifests(path)
    assert str(path) in str(err.value)
