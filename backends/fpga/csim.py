"""C simulation of the accelerator: the generated HLS C++ built with g++ into a
shared library (cached like the cpu backend's, keyed by a hash of the source,
the HLS headers, the compiler and the flags) and called through cffi.

``CSimLibrary(program).call(arrays, scalars)`` runs ``sf_top`` once; arrays are
keyed by ``Port.name`` and must be C-contiguous with the port's ctype and shape.
"""

from __future__ import annotations

from pathlib import Path

import cffi
import numpy as np
from spikeforge.hls import headers, include_dirs
from spikeforge.native import CompilerNotFound, build_library, find_compiler  # noqa: F401 (re-exported)

# Same numerics as the cpu backend: no fast-math, no contraction, wrapping ints.
# gnu++14: Vitis HLS's default language level (hex float literals as an extension).
FLAGS = ("-std=gnu++14", "-fPIC", "-shared", "-ffp-contract=off", "-fno-trapping-math",
         "-fwrapv", "-Wno-unknown-pragmas")
NUMPY = {"float": np.float32, "double": np.float64, "int8_t": np.int8, "int16_t": np.int16,
         "int32_t": np.int32, "int64_t": np.int64, "uint8_t": np.uint8, "uint32_t": np.uint32}


def compiler() -> str:
    """The C++ compiler: $CXX, else g++ or clang++ on PATH."""
    return find_compiler("CXX", ("g++", "c++", "clang++"),
                         "fpga backend (C simulation): no C++ compiler found; install g++ "
                         "(Debian/Ubuntu: apt-get install g++) or set $CXX")


def build(source: str, flags: tuple) -> Path:
    """Compile ``source`` into a cached shared library; returns its path."""
    texts = tuple(f"{k}\n{v}" for k, v in sorted(headers().items()))
    return build_library(source, flags, tuple(include_dirs()), texts,
                         "fpga backend (the generated HLS C++)", compiler(), "sf_hls_", ".cpp")


_LOADED: dict[str, tuple] = {}


def declaration(program) -> str:
    params = [f"{p.ctype} *{p.name}" if p.kind == "m_axi" else f"{p.ctype} {p.name}"
              for p in program.ports]
    return f"void {program.top}({', '.join(params)});"


class CSimLibrary:
    """The accelerator of ``program`` compiled for C simulation."""

    def __init__(self, program, opt: str = "-O1", extra_flags=()):
        self.program = program
        self.source = program.render()
        self.flags = (opt, *FLAGS, *extra_flags)
        self.path = build(self.source, self.flags)
        key = (str(self.path), declaration(program))
        if key not in _LOADED:  # loaded once per process, never unloaded
            ffi = cffi.FFI()
            ffi.cdef(declaration(program))
            _LOADED[key] = (ffi, ffi.dlopen(str(self.path)))
        self.ffi, self.lib = _LOADED[key]
        self.ports = program.ports

    def call(self, arrays: dict, scalars: dict) -> None:
        """Run ``sf_top`` once (see FpgaProgram for the meaning of the scalars;
        ``mode`` defaults to 0)."""
        args = []
        for port in self.ports:
            if port.kind == "m_axi":
                args.append(self._pointer(port, arrays))
            elif port.name == "mode" and "mode" not in scalars:
                args.append(0)
            elif port.name not in scalars:
                raise KeyError(f"fpga csim: scalar {port.name!r} missing")
            else:
                args.append(int(scalars[port.name]))
        getattr(self.lib, self.program.top)(*args)

    def _pointer(self, port, arrays):
        if port.name not in arrays:
            raise KeyError(f"fpga csim: array for port {port.name!r} ({port.key}) missing")
        array = arrays[port.name]
        if not isinstance(array, np.ndarray) or array.dtype != NUMPY[port.ctype] or \
                tuple(array.shape) != tuple(port.shape) or not array.flags.c_contiguous:
            got = (getattr(array, "dtype", type(array)), getattr(array, "shape", None))
            raise ValueError(f"fpga csim: port {port.name!r} ({port.key}) needs a C-contiguous "
                             f"{port.ctype} array of shape {port.shape}, got {got}")
        return self.ffi.cast(f"{port.ctype} *", array.ctypes.data)
