"""The backend registry: name -> backend class.

Backends register through the ``spikeforge.backends`` entry-point group (see
pyproject.toml) or, for test-only backends, :func:`register_backend`; core/
never imports backends/ directly. A backend class provides ``name``,
``availability() -> (ok, reason)`` and ``build(network, **options) -> Simulation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

_BACKENDS: dict[str, type] = {}
_LOADED = False


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    reason: str

    def __str__(self):
        return f"{self.name}: {'available' if self.available else 'unavailable'}" + (
            f" ({self.reason})" if self.reason else "")


def register_backend(name: str, backend: type) -> None:
    _BACKENDS[name] = backend


def unregister_backend(name: str) -> None:
    _BACKENDS.pop(name, None)


def _unloadable(name: str, error: Exception) -> type:
    """Stand-in for a registered backend whose module fails to import: listed as
    unavailable with the import error as the reason, so one broken optional
    backend never hides the others."""
    reason = f"its module failed to import: {type(error).__name__}: {error}"

    class Unloadable:
        verification: dict = {}

        @staticmethod
        def availability() -> tuple[bool, str]:
            return False, reason

        @staticmethod
        def build(network, **options):
            raise RuntimeError(f"backend {name!r} cannot run here: {reason}")

    Unloadable.name = name
    return Unloadable


def backends() -> dict[str, type]:
    global _LOADED
    if not _LOADED:
        for ep in entry_points(group="spikeforge.backends"):
            if ep.name not in _BACKENDS:
                try:
                    _BACKENDS[ep.name] = ep.load()
                except Exception as error:  # noqa: BLE001 - reported as unavailability
                    _BACKENDS[ep.name] = _unloadable(ep.name, error)
        _LOADED = True
    return dict(_BACKENDS)


def get_backend(name: str) -> type:
    known = backends()
    if name not in known:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(sorted(known))}")
    return known[name]


def available() -> list[BackendStatus]:
    """Every registered backend with whether it can run here and, if not, why."""
    out = []
    for name, backend in sorted(backends().items()):
        ok, reason = backend.availability()
        out.append(BackendStatus(name, ok, reason))
    return out


def build(network, backend: str = "numpy", **options):
    cls = get_backend(backend)
    ok, reason = cls.availability()
    if not ok:
        raise RuntimeError(f"backend {backend!r} cannot run here: {reason}")
    return cls.build(network, **options)
