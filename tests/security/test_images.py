"""The image family: moving tags, digest pinning, pull policy."""

from __future__ import annotations

import jsonpatch
import pytest

from aiops.model import ClusterState
from aiops.security import audit
from aiops.security.checks.images import split_image


def pod(image: str | None, policy: str | None = None) -> dict:
    c: dict = {"name": "app"}
    if image is not None:
        c["image"] = image
    if policy:
        c["imagePullPolicy"] = policy
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [c]}}


def verdict(check: str, obj: dict) -> bool:
    """True when the check passes on the object."""
    report = audit(ClusterState(source="t", objects={obj["kind"]: [obj]}), checks=[check])
    return not report.failures()


@pytest.mark.parametrize(("image", "parts"), [
    ("nginx", ("nginx", "", "")),
    ("nginx:1.27", ("nginx", "1.27", "")),
    ("registry:5000/team/app", ("registry:5000/team/app", "", "")),
    ("registry:5000/team/app:2", ("registry:5000/team/app", "2", "")),
    ("app@sha256:abc", ("app", "", "sha256:abc")),
    ("app:1@sha256:abc", ("app", "1", "sha256:abc")),
])
def test_split_image(image, parts):
    assert split_image(image) == parts


@pytest.mark.parametrize(("image", "ok"), [
    ("nginx", False), ("nginx:latest", False), ("registry:5000/app", False),
    ("nginx:1.27", True), ("nginx@sha256:abc", True), ("registry:5000/app:3", True),
])
def test_tag_latest(image, ok):
    assert verdict("image-tag-latest", pod(image)) is ok


def test_missing_image_is_not_judged():
    assert verdict("image-tag-latest", pod(None))
    assert verdict("image-pull-policy", pod("  "))


def test_digest_pinning():
    assert not verdict("image-digest-not-pinned", pod("nginx:1.27"))
    assert verdict("image-digest-not-pinned", pod("nginx:1.27@sha256:0123"))


@pytest.mark.parametrize(("image", "policy", "ok"), [
    ("nginx:1.27", None, False),  # defaults to IfNotPresent
    ("nginx:1.27", "IfNotPresent", False),
    ("nginx:1.27", "Never", False),
    ("nginx:1.27", "Always", True),
    ("nginx", None, True),  # the API defaults latest/untagged to Always
])
def test_pull_policy(image, policy, ok):
    assert verdict("image-pull-policy", pod(image, policy)) is ok


def test_pull_policy_fix_round_trip():
    obj = pod("nginx:1.27", "IfNotPresent")
    report = audit(ClusterState(source="t", objects={"Pod": [obj]}),
                   checks=["image-pull-policy"])
    [r] = report.failures()
    fixed = jsonpatch.apply_patch(obj, r.fix.patch)
    assert verdict("image-pull-policy", fixed)
    assert jsonpatch.apply_patch(fixed, r.fix.inverse) == obj
