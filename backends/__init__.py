"""Backends: one folder each; each registers itself through the
``spikeforge.backends`` entry-point group (pyproject.toml)."""

from spikeforge.registry import BackendStatus, available, backends, get_backend

__all__ = ["BackendStatus", "available", "backends", "get_backend"]
