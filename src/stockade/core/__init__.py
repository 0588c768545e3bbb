"""The core: the resource, its deployments and keys, and inference on them. Knows nothing of HTTP."""

from stockade.core.resource import Resource

__all__ = ["Resource"]
