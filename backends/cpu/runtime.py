"""Compile generated C into a shared library and load it with cffi.

Libraries are cached under ``$SPIKEFORGE_CACHE_DIR`` (default
``~/.cache/spikeforge``), keyed by a hash of the source, the shared headers,
the compiler's version and the flags. A build writes to a unique temporary
name and renames atomically, so concurrent builds of the same network both
succeed and nobody loads a half-written file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import cffi

from spikeforge.backends.cstyle import INCLUDE_DIR

# No fast-math and no contraction (results equal NumPy's); -fno-trapping-math only
# lets the compiler if-convert branches (it never changes a value).
BASE_FLAGS = ("-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-trapping-math", "-fwrapv",
              "-Werror=implicit-function-declaration")
WARNINGS = ("-Wall", "-Wextra")


class CompilerNotFound(RuntimeError):
    pass


def compiler() -> str:
    """The C compiler: $CC, else cc, gcc or clang on PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise CompilerNotFound("cpu backend: no C compiler found; install one "
                           "(Debian/Ubuntu: apt-get install gcc) or set $CC")


@functools.lru_cache(maxsize=None)
def compiler_version(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else cc


@functools.lru_cache(maxsize=None)
def openmp_flags(cc: str) -> tuple[str, ...]:
    """('-fopenmp',) when the compiler builds and links an OpenMP program."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "omp.c")
        src.write_text("#include <omp.h>\nint f(void) { return omp_get_max_threads(); }\n")
        result = subprocess.run([cc, "-fopenmp", "-fPIC", "-shared", str(src), "-o",
                                 str(Path(tmp, "omp.so"))], capture_output=True, check=False)
    return ("-fopenmp",) if result.returncode == 0 else ()


@functools.lru_cache(maxsize=None)
def native_flags(cc: str) -> tuple[str, ...]:
    """('-march=native',) when the compiler accepts it: vector instructions of this
    CPU (no fused multiply-add: -ffp-contract=off keeps results identical)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "n.c")
        src.write_text("int f(int x) { return x + 1; }\n")
        result = subprocess.run([cc, "-march=native", "-c", str(src), "-o", str(Path(tmp, "n.o"))],
                                capture_output=True, check=False)
    return ("-march=native",) if result.returncode == 0 else ()


@functools.lru_cache(maxsize=None)
def cpu_fingerprint() -> str:
    """What -march=native depends on: the CPU model and feature flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine() + platform.processor()
    keep = [line for line in lines if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(keep)))


def cache_dir() -> Path:
    path = Path(os.environ.get("SPIKEFORGE_CACHE_DIR") or Path.home() / ".cache" / "spikeforge")
    path.mkdir(parents=True, exist_ok=True)
    return path


def flags(opt: str = "-O3", openmp: bool = True, extra: tuple = (),
          native: bool = True) -> tuple[str, ...]:
    cc = compiler()
    return (opt, *BASE_FLAGS, *(native_flags(cc) if native else ()),
            *(openmp_flags(cc) if openmp else ()), *extra)


def library_key(source: str, all_flags: tuple[str, ...]) -> str:
    cc = compiler()
    digest = hashlib.sha256()
    machine = cpu_fingerprint() if "-march=native" in all_flags else ""
    for part in (source, (INCLUDE_DIR / "philox.h").read_text(), compiler_version(cc),
                 " ".join(all_flags), machine):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def build_library(source: str, all_flags: tuple[str, ...]) -> Path:
    """Compile ``source`` (cached); returns the shared library's path."""
    target = cache_dir() / f"sf_{library_key(source, all_flags)}.so"
    if target.exists():
        return target
    cc = compiler()
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        src = Path(tmp, "network.c")
        src.write_text(source)
        out = Path(tmp, "network.so")
        cmd = [cc, *all_flags, f"-I{INCLUDE_DIR}", str(src), "-o", str(out), "-lm"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"cpu backend: compiling generated C failed:\n{' '.join(cmd)}\n"
                               f"{result.stderr[-4000:]}")
        os.replace(out, target)
    return target


_LOADED: dict[str, tuple] = {}


def load(path: Path, declarations: str):
    """Load a built library once per process and keep it loaded: unloading a
    library can unload libgomp under its sleeping worker threads, which then
    crash the process when they wake."""
    key = str(path)
    if key not in _LOADED:
        ffi = cffi.FFI()
        ffi.cdef(declarations)
        _LOADED[key] = (ffi, ffi.dlopen(key))
    return _LOADED[key]
