"""aiops: an evidence-based AIOps workbench for Kubernetes.

The facade: `open_source` loads a cluster (demo, snapshot path, kube[:ctx])
into a `ClusterState`; analyses live in submodules.
"""

from aiops.errors import AiopsError
from aiops.model import ClusterState, LoadProblem
from aiops.sources import open_source

__version__ = "0.1.0"
__all__ = ["AiopsError", "ClusterState", "LoadProblem", "__version__", "open_source"]
