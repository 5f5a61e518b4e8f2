"""Compiling CUDA kernel text for the emulator: parsing kernels, g++ builds, cache.

The kernel text is compiled unchanged with ``g++ -x c++ -std=c++17 -include
sf_cuda_emu.h``; the emulator appends registration code after it (one
``SF_EMU_KERNEL(name)`` per ``__global__`` function, which exports a trampoline
and a type signature, and the definition of the dynamic shared memory area under
every name the text declares with ``extern __shared__``). Libraries are cached
under the cpu backend's cache directory (``$SPIKEFORGE_CACHE_DIR``), keyed by a
hash of the text, the headers, the compiler version and the flags, and built
under a temporary name that is renamed atomically.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spikeforge.backends.cstyle import INCLUDE_DIR
from spikeforge.native import CompilerNotFound, cache_dir, compiler_version, find_compiler  # noqa: F401 (re-exported)

HERE = Path(__file__).resolve().parent
HEADER = HERE / "sf_cuda_emu.h"
DYN_SHARED_BYTES = 227 * 1024 + 256  # SF_EMU_DYN_MAX + SF_EMU_REDZONE in the header
# The race-check build keeps the large area too: a TLS block above TSan's largest size
# class (128 KiB) is mmap'd per block thread and unmapped at its exit, so every block's
# shared memory is fresh to TSan (a smaller, recycled block gave false races).
TSAN_DYN_SHARED_BYTES = DYN_SHARED_BYTES

BASE_FLAGS = ("-x", "c++", "-std=c++17", "-fPIC", "-shared", "-fno-strict-aliasing", "-fwrapv",
              "-ffp-contract=off", "-fno-omit-frame-pointer", "-fstack-clash-protection")
OPT_FLAGS = ("-O1",)
TSAN_FLAGS = ("-O1", "-g", "-fsanitize=thread", "-DSF_EMU_TSAN=1")


def cxx() -> str:
    """The C++ compiler: $CXX, else g++ or c++ on PATH."""
    return find_compiler("CXX", ("g++", "c++"), "cuda emulator: no C++ compiler found; "
                         "install g++ (Debian/Ubuntu: apt-get install g++) or set $CXX")


# ---------------------------------------------------------------- parsing the kernel text
_COMMENT_RE = re.compile(r'("(?:\\.|[^"\\\n])*")|//[^\n]*|/\*.*?\*/', re.DOTALL)
_KERNEL_RE = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+"
                        r"(?:__launch_bounds__\s*\([^)]*\)\s*)?([A-Za-z_]\w*)\s*\(([^)]*)\)")
_DYN_SHARED_RE = re.compile(r"\bextern\s+__shared__\b[^;{}()]*?\b([A-Za-z_]\w*)\s*\[\s*\]\s*;")
_IDENT_RE = re.compile(r"[A-Za-z_]\w*")


def strip_comments(code: str) -> str:
    """The text with comments replaced by blanks (string literals kept)."""
    return _COMMENT_RE.sub(lambda m: m.group(1) or " ", code)


@dataclass(frozen=True)
class Param:
    """One kernel parameter as written in the source: its name and type text."""
    name: str
    type_text: str


def parse_kernels(code: str) -> dict[str, tuple[Param, ...]]:
    """``{kernel name: parameters}`` of every ``__global__ void name(...)`` in the text."""
    kernels: dict[str, tuple[Param, ...]] = {}
    for match in _KERNEL_RE.finditer(strip_comments(code)):
        name, plist = match.group(1), match.group(2).strip()
        params = []
        if plist and plist != "void":
            for i, text in enumerate(p.strip() for p in plist.split(",")):
                idents = _IDENT_RE.findall(text.split("=")[0])
                pname = idents[-1] if len(idents) > 1 else f"arg{i}"
                ptype = text[:text.rfind(pname)].strip() if len(idents) > 1 else text
                params.append(Param(pname, " ".join(ptype.split())))
        kernels[name] = tuple(params)
    return kernels


def dyn_shared_names(code: str) -> list[str]:
    """Names declared ``extern __shared__ T name[];`` (they all alias one area)."""
    return sorted(set(_DYN_SHARED_RE.findall(strip_comments(code))))


def registration(code: str, kernels, dyn_bytes: int = DYN_SHARED_BYTES) -> str:
    """The code appended after the kernel text (the text itself is not changed)."""
    names = ["sf_emu_dyn_shared", *dyn_shared_names(code)]
    lines = [".section .tbss,\\\"awT\\\",@nobits", ".balign 256"]
    for name in names:
        lines += [f".globl {name}", f".hidden {name}", f".type {name},@object",
                  f".size {name},{dyn_bytes}"]
    lines += [f"{name}:" for name in names] + [f".zero {dyn_bytes}", ".previous"]
    asm = "asm(\"" + "\\n".join(lines) + "\\n\");"
    return "\n".join(["", '#line 1 "<sf_emu_registration>"', asm,
                      *(f"SF_EMU_KERNEL({name})" for name in kernels), ""])


# ---------------------------------------------------------------- options and compiling
def translate_options(options) -> tuple[str, ...]:
    """Keep the nvcc/NVRTC options that mean the same to g++ (-D, -U, -I); drop the rest
    (architecture, fast math, line info: they do not apply to the emulation)."""
    out: list[str] = []
    opts = list(options or ())
    i = 0
    while i < len(opts):
        opt = str(opts[i])
        for long, short in (("--define-macro=", "-D"), ("--undefine-macro=", "-U"),
                            ("--include-path=", "-I")):
            if opt.startswith(long):
                opt = short + opt[len(long):]
        if opt in ("-D", "-U", "-I") and i + 1 < len(opts):
            out.append(opt + str(opts[i + 1]))
            i += 2
            continue
        if opt.startswith(("-D", "-U", "-I")):
            out.append(opt)
        i += 1
    return tuple(out)


def library_key(source: str, flags: tuple[str, ...], compiler: str) -> str:
    digest = hashlib.sha256()
    headers = "".join(p.read_text() for p in sorted(HERE.glob("sf_cuda_emu*.h")))
    for part in (source, headers, (INCLUDE_DIR / "philox.h").read_text(),
                 compiler_version(compiler), " ".join(flags)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def precompiled_header(flags: tuple[str, ...]) -> Path:
    """The emulation header with a precompiled ``.gch`` beside it (built once per flag set
    and cached): parsing the header is most of a small module's compile time. g++ uses
    the .gch when the command line is compatible and the text otherwise, so this never
    changes a result. Falls back to the header itself when precompiling fails. The key
    is recomputed from the headers on disk every time (never cached in the process), so
    a library is never built against a stale copy of an edited header."""
    compiler = cxx()
    key = library_key("pch", flags, compiler)
    folder = cache_dir() / f"sf_emu_pch_{key}"
    header = folder / HEADER.name
    if (folder / (HEADER.name + ".gch")).exists():
        return header
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        for part in HERE.glob("sf_cuda_emu*.h"):
            shutil.copy(part, Path(tmp, part.name))
        cmd = [compiler, *[f for f in flags if f not in ("-x", "c++", "-shared")], "-x",
               "c++-header", f"-I{INCLUDE_DIR}", str(Path(tmp, HEADER.name)), "-o",
               str(Path(tmp, HEADER.name + ".gch"))]
        if subprocess.run(cmd, capture_output=True, check=False).returncode != 0:
            return HEADER
        try:
            os.rename(tmp, folder)  # atomic; a concurrent build may have won the race
            os.mkdir(tmp)           # (TemporaryDirectory removes it again)
        except OSError:
            pass
    return header if (folder / (HEADER.name + ".gch")).exists() else HEADER


def build(source: str, flags: tuple[str, ...], tag: str = "emu") -> Path:
    """Compile the full translation unit (cached); returns the shared library's path.
    Normal builds are compiled (-fdata-sections) and linked in two steps so that every
    static __shared__ variable gets redzones (see padding_script); the layout of those
    redzones is saved beside the library (``.layout.json``)."""
    compiler = cxx()
    all_flags = (*BASE_FLAGS, *flags)
    target = cache_dir() / f"sf_{tag}_{library_key(source, all_flags, compiler)}.so"
    if target.exists():
        return target
    padded = tag == "emu"
    header = precompiled_header(all_flags) if padded else HEADER
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        src = Path(tmp, "kernels.cu")
        src.write_text(source)
        out = Path(tmp, "kernels.so")
        common = [f"-ffile-prefix-map={tmp}/=", "-include", str(header), f"-I{INCLUDE_DIR}",
                  f"-I{HERE}"]
        libs = ["-lm", "-ldl", "-lpthread", "-Wl,-Bsymbolic"]
        if not padded:
            _run([compiler, *all_flags, *common, str(src), "-o", str(out), *libs],
                 "compiling the kernel text with g++")
        else:
            obj, script = Path(tmp, "kernels.o"), Path(tmp, "shared.ld")
            _run([compiler, *(f for f in all_flags if f != "-shared"), "-fdata-sections", "-c",
                  *common, str(src), "-o", str(obj)], "compiling the kernel text with g++")
            script.write_text(padding_script(obj))
            _run([compiler, "-shared", "-fPIC", str(obj), "-o", str(out), f"-Wl,-T,{script}",
                  *libs], "linking the kernel library")
            Path(tmp, "layout.json").write_text(json.dumps(shared_layout(out)))
            os.replace(Path(tmp, "layout.json"), target.with_suffix(".layout.json"))
        os.replace(out, target)
    return target


def _run(cmd: list[str], what: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CompileError(f"cuda emulator: {what} failed:\n{' '.join(cmd)}\n"
                           f"{result.stderr[-6000:]}")
    return result.stdout


# ---------------------------------------------------------------- static shared redzones
SHARED_GAP = 256
_TBSS_RE = re.compile(r"\]\s+(\.tbss\.[\w.$]+)\s+NOBITS")


def padding_script(obj: Path) -> str:
    """A linker script (inserted before the default .tbss) that lays out every static
    __shared__ variable (-fdata-sections gives each its own .tbss.<name> section) with
    a 256-byte gap before the first and after each one; the dynamic shared area (plain
    .tbss) follows. The gaps are the variables' redzones."""
    sections = _TBSS_RE.findall(_run(["readelf", "-SW", str(obj)], "reading the object"))
    lines = ["SECTIONS {", "  .tbss.sf_shared : {", f"    . += {SHARED_GAP};"]
    lines += [f"    *({name}) . += {SHARED_GAP};" for name in sections]
    lines += ["    *(.tbss .tbss.* .gnu.linkonce.tb.*) *(.tcommon)", "  }", "} INSERT BEFORE .tbss;"]
    return "\n".join(lines) + "\n"


def shared_layout(lib: Path) -> dict:
    """The redzones of the static shared variables: ``{"gaps": [[offset, length], ...],
    "labels": [...]}``, offsets within the module's TLS block (all shared memory)."""
    symbols = []
    for line in _run(["readelf", "-sW", str(lib)], "reading the library").splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "TLS":
            symbols.append((int(parts[1], 16), int(parts[2], 0), parts[7]))
    dyn = min((v for v, _, n in symbols if n == "sf_emu_dyn_shared"), default=None)
    if dyn is None:
        return {"gaps": [], "labels": []}
    statics = sorted({(v, size, n) for v, size, n in symbols if v < dyn})
    names = _demangle([n for _, _, n in statics])
    gaps, labels, cursor, previous = [], [], 0, None
    for (value, size, _), name in zip(statics, names):
        if value > cursor:
            gaps.append([cursor, value - cursor])
            labels.append(f"past the end of __shared__ {previous}" if previous
                          else f"before the start of __shared__ {name}")
        cursor, previous = max(cursor, value + size), name
    if dyn > cursor and previous:
        gaps.append([cursor, dyn - cursor])
        labels.append(f"past the end of __shared__ {previous}")
    return {"gaps": gaps, "labels": labels}


def _demangle(names: list[str]) -> list[str]:
    """'_ZZ3twoE1a' -> "'a' (in two)"."""
    if not names:
        return []
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                             text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        out = names
    pretty = []
    for raw, text in zip(names, out):
        scope, _, var = text.rpartition("::")
        pretty.append(f"'{var}' (in {scope.split('(')[0]})" if scope else f"'{text or raw}'")
    return pretty


class CompileError(RuntimeError):
    """The kernel text does not compile against the emulation header."""


_LOADED: dict[str, ctypes.CDLL] = {}


def load(path: Path) -> ctypes.CDLL:
    """Load a built library once per process (never unloaded)."""
    key = str(path)
    if key not in _LOADED:
        lib = ctypes.CDLL(key)
        lib.sf_emu_launch.restype = ctypes.c_int
        lib.sf_emu_release_threads.restype = None
        lib.sf_emu_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
                                      ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                      ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64,
                                      ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64]
        layout_file = Path(key).with_suffix(".layout.json")
        if layout_file.exists():
            layout = json.loads(layout_file.read_text())
            gaps = np.array(layout["gaps"], np.uint64).reshape(-1)
            labels = b"".join(label.encode() + b"\0" for label in layout["labels"])
            lib._sf_layout = (gaps, labels)  # kept alive: the library keeps pointers to them
            lib.sf_emu_set_shared_redzones(ctypes.c_void_p(gaps.ctypes.data), labels,
                                           ctypes.c_uint64(len(layout["labels"])))
        _LOADED[key] = lib
    return _LOADED[key]


# ---------------------------------------------------------------- signatures
_SCALAR_DTYPES = {("f", 4): np.float32, ("f", 8): np.float64, ("i", 1): np.int8,
                  ("i", 2): np.int16, ("i", 4): np.int32, ("i", 8): np.int64,
                  ("u", 1): np.uint8, ("u", 2): np.uint16, ("u", 4): np.uint32,
                  ("u", 8): np.uint64, ("b", 1): np.bool_}


@dataclass(frozen=True)
class ArgSpec:
    """How one parameter is passed: a pointer (pointee class/size) or a scalar (dtype)."""
    index: int
    name: str
    type_text: str
    pointer: bool
    cls: str          # f, i, u, b, v (void), p (pointer), o (other)
    size: int
    dtype: np.dtype | None  # the scalar's dtype (None for pointers / unsupported)

    def accepts_array(self, dtype: np.dtype) -> bool:
        """A pointer to float takes float32 arrays, to double float64; integer pointees
        take integer/bool arrays of the same size (signedness may differ); void and
        1-byte pointees take any array."""
        if self.cls == "v" or (self.size == 1 and self.cls in "iub"):
            return True
        if self.cls == "f":
            return dtype.kind == "f" and dtype.itemsize == self.size
        if self.cls in "iub":
            return dtype.kind in "iub" and dtype.itemsize == self.size
        return False

    def describe(self) -> str:
        return f"argument {self.index} ('{self.name}', {self.type_text or '?'})"


@functools.cache
def parse_signature(sig: str, params: tuple[Param, ...]) -> tuple[ArgSpec, ...]:
    """Combine the compiler's signature ("p" pointer / "s" scalar, class, size per
    parameter) with the names parsed from the source."""
    codes = [c for c in sig.split(",") if c]
    named = params if len(params) == len(codes) else tuple(Param(f"arg{i}", "") for i in range(len(codes)))
    specs = []
    for i, (code, param) in enumerate(zip(codes, named)):
        pointer, cls, size = code[0] == "p", code[1], int(code[2:])
        dtype = None if pointer else _SCALAR_DTYPES.get((cls, size))
        specs.append(ArgSpec(i, param.name, param.type_text, pointer, cls, size,
                             None if dtype is None else np.dtype(dtype)))
    return tuple(specs)
