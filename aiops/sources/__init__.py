"""Cluster sources: `demo`, a snapshot path, or `kube[:context]`, all giving a
`ClusterState`.

`open_source` dispatches on the spec through a small registry so a new kind
of source is one function plus one `register_source` call.
"""

from __future__ import annotations

from collections.abc import Callable

from aiops.errors import SourceError
from aiops.model import ClusterState

Opener = Callable[[str], ClusterState]
_OPENERS: dict[str, Opener] = {}


def register_source(scheme: str) -> Callable[[Opener], Opener]:
    """Register an opener for specs `scheme` or `scheme:argument`."""

    def deco(fn: Opener) -> Opener:
        _OPENERS[scheme] = fn
        return fn

    return deco


def open_source(spec: str = "demo") -> ClusterState:
    """Open `demo`, `kube`, `kube:CONTEXT` or a filesystem path."""
    spec = (spec or "demo").strip()
    scheme, _, arg = spec.partition(":")
    if scheme in _OPENERS and (arg or scheme == spec):
        return _OPENERS[scheme](arg)
    from aiops.sources.snapshot import load_snapshot

    if len(scheme) > 1 and scheme.isalpha() and arg and scheme not in _OPENERS:
        known = ", ".join(sorted(_OPENERS))
        raise SourceError(f"unknown source scheme {scheme!r} in --source {spec}",
                          f"use one of: {known}, or a snapshot path")
    return load_snapshot(spec)


@register_source("demo")
def _demo(arg: str) -> ClusterState:
    from aiops.sources.demo import load_demo

    return load_demo()


@register_source("kube")
def _kube(arg: str) -> ClusterState:
    from aiops.sources.live import load_live

    return load_live(context=arg or None)


__all__ = ["open_source", "register_source"]
