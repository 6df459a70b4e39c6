"""Image references: a tag that moves (latest or none), no digest pin, and a pull
policy that lets a node run a stale or unverified copy."""

from __future__ import annotations

from aiops.security.check import Refs, Violation
from aiops.security.fixes import container_patch
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, Container

FAMILY = "images"


def split_image(image: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag."""
    ref, _, digest = image.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:], digest
    return ref, "", digest


def _image(c: Container) -> str | None:
    image = c.spec.get("image")
    return image.strip() if isinstance(image, str) and image.strip() else None


@check("image-tag-latest", family=FAMILY, severity="danger", category="reliability",
       target="container", title="Image tag is latest or missing",
       rationale="A moving tag makes a rollout non-reproducible: two nodes can run "
                 "different code under one spec, and a rollback does not go back.",
       refs=Refs(checkov=("CKV_K8S_14",), polaris="tagNotSpecified",
                 kube_score="container-image-tag"))
def tag_latest(c: Container, ctx: AuditContext) -> Violation | None:
    image = _image(c)
    if image is None:
        return None
    _repo, tag, digest = split_image(image)
    if digest or (tag and tag != "latest"):
        return None
    what = "the tag latest" if tag else "no tag (so latest)"
    return Violation(f"container {c.name} runs image {image} with {what}",
                     fix_text="pin a released version tag (better: a digest) of the image, "
                              "e.g. repo:1.4.2 or repo@sha256:...")


@check("image-digest-not-pinned", family=FAMILY, severity="info", category="security",
       target="container", title="Image not pinned by digest",
       rationale="A tag can be re-pushed; only a digest names exactly the bytes that "
                 "were scanned and approved.",
       refs=Refs(checkov=("CKV_K8S_43",)))
def digest_not_pinned(c: Container, ctx: AuditContext) -> Violation | None:
    image = _image(c)
    if image is None or split_image(image)[2]:
        return None
    return Violation(f"container {c.name} image {image} is not pinned by digest",
                     fix_text="reference the image as repo@sha256:<digest> "
                              "(`crane digest` or `docker buildx imagetools inspect` print it)")


@check("image-pull-policy", family=FAMILY, severity="warning", category="security",
       target="container", title="Image pull policy is not Always",
       rationale="With IfNotPresent, any pod on the node may start from a cached copy "
                 "of a private image without the registry checking its credentials.",
       refs=Refs(checkov=("CKV_K8S_15",), polaris="pullPolicyNotAlways"))
def pull_policy(c: Container, ctx: AuditContext) -> Violation | None:
    image = _image(c)
    if image is None:
        return None
    policy = c.spec.get("imagePullPolicy")
    _repo, tag, digest = split_image(image)
    # the API defaults the policy to Always for latest/untagged images
    effective = policy or ("Always" if not digest and tag in ("", "latest") else "IfNotPresent")
    if effective == "Always":
        return None
    return Violation(
        f"container {c.name} pulls with imagePullPolicy {effective}"
        + ("" if policy else " (the default for a tagged image)"),
        container_patch(c, {("imagePullPolicy",): "Always"},
                        description=f"set imagePullPolicy Always on container {c.name}"))
