"""The bundled demo cluster: a Todo Chatbot on Minikube with injected problems.

Its files are produced by `generator.py` (deterministic from a seed) and read
through the ordinary snapshot loader, so the demo exercises the same code path
as a real `kubectl cluster-info dump`.
"""

from __future__ import annotations

from pathlib import Path

from aiops.model import ClusterState

DATA_DIR = Path(__file__).parent / "data"


def load_demo() -> ClusterState:
    from aiops.sources.snapshot import load_snapshot

    return load_snapshot(DATA_DIR, source="demo")
