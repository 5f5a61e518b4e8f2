"""Compile generated C into a shared library and load it with cffi.

The generic part (compiler detection, flags, the hash-keyed build cache under
``$SPIKEFORGE_CACHE_DIR`` with atomic writes, loading) is ``spikeforge.native``;
this module adds the cpu backend's include directory and makes the shared
``philox.h`` part of every library's cache key.
"""

from __future__ import annotations

from pathlib import Path

from spikeforge import native
from spikeforge.backends.cstyle import INCLUDE_DIR
from spikeforge.native import (
    BASE_FLAGS,
    WARNINGS,
    CompilerNotFound,
    cache_dir,
    compiler,
    compiler_version,
    cpu_fingerprint,
    flags,
    load,
    native_flags,
    openmp_flags,
)

# Re-exported: the cpu backend's compile API (other backends import cache_dir from here).
__all__ = [
    "BASE_FLAGS",
    "INCLUDE_DIR",
    "WARNINGS",
    "CompilerNotFound",
    "build_library",
    "cache_dir",
    "compiler",
    "compiler_version",
    "cpu_fingerprint",
    "flags",
    "library_key",
    "load",
    "native_flags",
    "openmp_flags",
]


def _headers() -> tuple[str, ...]:
    return ((INCLUDE_DIR / "philox.h").read_text(),)


def library_key(source: str, all_flags: tuple[str, ...]) -> str:
    return native.library_key(source, all_flags, _headers())


def build_library(source: str, all_flags: tuple[str, ...]) -> Path:
    """Compile ``source`` (cached); returns the shared library's path."""
    return native.build_library(source, all_flags, (INCLUDE_DIR,), _headers(), who="cpu backend")
