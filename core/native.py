"""Compile C into a shared library, cache it, load it with cffi; and the native
host helper that speeds up host-side network construction.

Build cache (used by the cpu backend and the host helper): libraries live under
``$SPIKEFORGE_CACHE_DIR`` (default ``~/.cache/spikeforge``), named by a hash of
the source, the text of the headers it includes, the compiler's version, the
flags and (with -march=native) the CPU model. A build writes to a unique
temporary name and renames atomically, so concurrent builds of the same source
both succeed and nobody loads a half-written file.

The host helper (``host()``) is the C of ``HOST_SOURCE``, compiled once into
that cache: Philox words (the C of backends/cstyle/philox.h, vectorised over
blocks of counters), the uniforms of the initialisers' counters, and the
FixedTotalNumber / FixedProbability CSR builds. It does integer work and the
exact uniform ``(k + 1/2) 2**-23`` only; every transcendental stays a NumPy
ufunc, so its numbers are those of ``spikeforge.philox``, ``spikeforge.init``
and ``spikeforge.connectivity`` by construction (docs/host-init.md). It is
optional: ``host()`` returns None when there is no C compiler, when
``$SPIKEFORGE_NATIVE_HOST`` is ``0``, or when ``ENABLED`` is False, and callers
then run the NumPy code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import cffi
import numpy as np

# No fast-math and no contraction (results equal NumPy's); -fno-trapping-math only
# lets the compiler if-convert branches (it never changes a value).
BASE_FLAGS = ("-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-trapping-math", "-fwrapv",
              "-Werror=implicit-function-declaration")
WARNINGS = ("-Wall", "-Wextra")


class CompilerNotFound(RuntimeError):
    pass


def find_compiler(variable: str, names: tuple[str, ...], missing: str) -> str:
    """$variable if set and on PATH, else the first of ``names`` on PATH; else
    CompilerNotFound(``missing``)."""
    for name in (os.environ.get(variable), *names):
        if name and shutil.which(name):
            return shutil.which(name)
    raise CompilerNotFound(missing)


def compiler() -> str:
    """The C compiler: $CC, else cc, gcc or clang on PATH."""
    return find_compiler("CC", ("cc", "gcc", "clang"),
                         "cpu backend: no C compiler found; install one "
                         "(Debian/Ubuntu: apt-get install gcc) or set $CC")


@functools.cache
def compiler_version(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else cc


def _compiles(cc: str, flag: str, source: str, link: bool) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "probe.c")
        src.write_text(source)
        mode = ["-fPIC", "-shared"] if link else ["-c"]
        result = subprocess.run([cc, flag, *mode, str(src), "-o", str(Path(tmp, "probe.o"))],
                                capture_output=True, check=False)
    return result.returncode == 0


@functools.cache
def openmp_flags(cc: str) -> tuple[str, ...]:
    """('-fopenmp',) when the compiler builds and links an OpenMP program."""
    ok = _compiles(cc, "-fopenmp", "#include <omp.h>\nint f(void) { return omp_get_max_threads(); }\n",
                   link=True)
    return ("-fopenmp",) if ok else ()


@functools.cache
def native_flags(cc: str) -> tuple[str, ...]:
    """('-march=native',) when the compiler accepts it: vector instructions of this
    CPU (no fused multiply-add: -ffp-contract=off keeps results identical)."""
    ok = _compiles(cc, "-march=native", "int f(int x) { return x + 1; }\n", link=False)
    return ("-march=native",) if ok else ()


@functools.cache
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


def library_key(source: str, all_flags: tuple[str, ...], headers: tuple[str, ...] = (),
                cc: str | None = None) -> str:
    """Hash of source, header texts, compiler (default: the C compiler) version,
    flags and (-march=native) CPU."""
    digest = hashlib.sha256()
    machine = cpu_fingerprint() if "-march=native" in all_flags else ""
    for part in (source, *headers, compiler_version(cc or compiler()), " ".join(all_flags),
                 machine):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def build_library(source: str, all_flags: tuple[str, ...], include_dirs: tuple[Path, ...] = (),
                  headers: tuple[str, ...] = (), who: str = "cpu backend", cc: str | None = None,
                  prefix: str = "sf_", suffix: str = ".c") -> Path:
    """Compile ``source`` (cached; written atomically); returns the shared library's
    path. ``headers`` are the texts of the included headers (part of the cache key);
    ``cc`` the compiler (default: the C compiler), ``suffix`` the source's extension."""
    cc = cc or compiler()
    target = cache_dir() / f"{prefix}{library_key(source, all_flags, headers, cc)}.so"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        src = Path(tmp, "network" + suffix)
        src.write_text(source)
        out = Path(tmp, "network.so")
        cmd = [cc, *all_flags, *(f"-I{d}" for d in include_dirs), str(src), "-o", str(out), "-lm"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{who}: compiling generated code failed:\n{' '.join(cmd)}\n"
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


# ---------------------------------------------------------------- host helper

#: Set False (or $SPIKEFORGE_NATIVE_HOST=0) to run the NumPy host code only.
ENABLED = os.environ.get("SPIKEFORGE_NATIVE_HOST", "1") != "0"
#: Below this many elements the NumPy code is used (the call overhead dominates).
MIN_NATIVE = 1024
HOST_FLAGS = ("-O3", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
              "-fwrapv", "-Wall", "-Werror=implicit-function-declaration")


def philox_header() -> Path | None:
    """backends/cstyle/philox.h, located without importing spikeforge.backends."""
    spec = importlib.util.find_spec("spikeforge.backends")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location, "cstyle", "philox.h")
        if path.is_file():
            return path
    return None


_STATUS: dict[str, object] = {}


def host():
    """The loaded host helper (a ``HostLib``), or None when unavailable."""
    if not ENABLED:
        return None
    if "lib" not in _STATUS:
        try:
            _STATUS["lib"], _STATUS["reason"] = HostLib.open(), ""
        except (CompilerNotFound, RuntimeError, OSError) as exc:
            _STATUS["lib"], _STATUS["reason"] = None, str(exc)
    return _STATUS["lib"]


def host_status() -> tuple[bool, str]:
    """(available, reason) of the host helper (builds it on first call)."""
    lib = host()
    return lib is not None, str(_STATUS.get("reason", "disabled" if not ENABLED else ""))


def u32_array(x, name: str) -> np.ndarray:
    """Integer array ``x`` as contiguous uint32, checked to lie in [0, 2**32)."""
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer, got dtype {a.dtype}")
    if a.dtype != np.uint32 and a.size and (int(a.min()) < 0 or int(a.max()) >= 1 << 32):
        raise ValueError(f"{name} must lie in [0, {1 << 32:#x})")
    return np.ascontiguousarray(a, dtype=np.uint32)


HOST_SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "philox.h"

#define SF_BLOCK 64

/* Philox words of n <= SF_BLOCK counters, word j of counter i to w[j][i]: the
 * loop has no dependence between i, so the compiler vectorises it. */
static void philox_block(int n, const uint32_t *restrict c0, const uint32_t *restrict c1,
                         const uint32_t *restrict c2, const uint32_t *restrict c3,
                         const uint32_t *restrict k0, const uint32_t *restrict k1,
                         uint32_t w[4][SF_BLOCK])
{
    for (int i = 0; i < n; i++) {
        sf_words x = sf_philox(c0[i], c1[i], c2[i], c3[i], k0[i], k1[i]);
        w[0][i] = x.w[0]; w[1][i] = x.w[1]; w[2][i] = x.w[2]; w[3][i] = x.w[3];
    }
}

typedef struct { uint32_t c[6][SF_BLOCK]; uint32_t w[4][SF_BLOCK]; } sf_block;

static void fill(uint32_t *dst, uint32_t value, int n)
{
    for (int i = 0; i < n; i++) dst[i] = value;
}

/* Words of n counters; input j holds one value (stride 0) or n (stride 1). */
void sf_host_words(int64_t n, const uint32_t *const *in, const int64_t *stride, uint32_t *o0,
                   uint32_t *o1, uint32_t *o2, uint32_t *o3)
{
    sf_block b;
    uint32_t *out[4] = {o0, o1, o2, o3};
    for (int64_t start = 0; start < n; start += SF_BLOCK) {
        int m = n - start < SF_BLOCK ? (int)(n - start) : SF_BLOCK;
        for (int j = 0; j < 6; j++)
            for (int i = 0; i < m; i++) b.c[j][i] = in[j][(start + i) * stride[j]];
        philox_block(m, b.c[0], b.c[1], b.c[2], b.c[3], b.c[4], b.c[5], b.w);
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < m; i++) out[j][start + i] = b.w[j][i];
    }
}

/* Uniforms u = sf_uniform(w) of words 0 (to u0) and 1 (to u1, unless NULL) of the
 * counters (0, c1, c2, c3) of elements first .. first + n - 1: (c1, c2) = (e, 0)
 * without row_ptr, else (row, position in row) of CSR row_ptr; row is the row of
 * element first. */
void sf_host_uniforms(uint32_t k0, uint32_t k1, uint32_t c3, const int64_t *row_ptr, int64_t row,
                      int64_t first, int64_t n, double *u0, double *u1)
{
    sf_block b;
    for (int64_t start = 0; start < n; start += SF_BLOCK) {
        int m = n - start < SF_BLOCK ? (int)(n - start) : SF_BLOCK;
        for (int i = 0; i < m; i++) {
            int64_t e = first + start + i;
            if (row_ptr) {
                while (e >= row_ptr[row + 1]) row++;
                b.c[1][i] = (uint32_t)row;
                b.c[2][i] = (uint32_t)(e - row_ptr[row]);
            } else {
                b.c[1][i] = (uint32_t)e;
                b.c[2][i] = 0u;
            }
        }
        fill(b.c[0], 0u, m); fill(b.c[3], c3, m); fill(b.c[4], k0, m); fill(b.c[5], k1, m);
        philox_block(m, b.c[0], b.c[1], b.c[2], b.c[3], b.c[4], b.c[5], b.w);
        for (int i = 0; i < m; i++) u0[start + i] = sf_uniform(b.w[0][i]);
        if (u1)
            for (int i = 0; i < m; i++) u1[start + i] = sf_uniform(b.w[1][i]);
    }
}

/* Words of the counters (0, c, 0, 0), c = first .. first + m - 1. */
static void row_words(sf_block *b, uint32_t first, int m, uint32_t k0, uint32_t k1, int dim)
{
    for (int i = 0; i < m; i++) {
        b->c[1][i] = dim == 1 ? first + (uint32_t)i : b->c[1][0];
        b->c[2][i] = dim == 2 ? first + (uint32_t)i : 0u;
    }
    fill(b->c[0], 0u, m); fill(b->c[3], 0u, m); fill(b->c[4], k0, m); fill(b->c[5], k1, m);
    philox_block(m, b->c[0], b->c[1], b->c[2], b->c[3], b->c[4], b->c[5], b->w);
}

/* FixedTotalNumber: pair k = (pre, post) from words 2(k%2), 2(k%2)+1 of counter
 * (0, k/2, 0, 0), placed by pre (counting sort; words drawn twice); sf_host_total
 * then sorts each row by post.
 * row_ptr (n_pre + 1) zeroed by the caller, cursor has n_pre entries. */
static void total_pass(int64_t n, uint64_t n_pre, uint64_t n_post, uint32_t k0, uint32_t k1,
                       int64_t *row_ptr, int32_t *post, int64_t *cursor)
{
    sf_block b;
    int64_t counters = (n + 1) / 2;
    for (int64_t start = 0; start < counters; start += SF_BLOCK) {
        int m = counters - start < SF_BLOCK ? (int)(counters - start) : SF_BLOCK;
        row_words(&b, (uint32_t)start, m, k0, k1, 1);
        int pairs = n - 2 * start < 2 * m ? (int)(n - 2 * start) : 2 * m;
        uint32_t pre[2 * SF_BLOCK];
        for (int k = 0; k < pairs; k++)
            pre[k] = (uint32_t)(((uint64_t)b.w[2 * (k & 1)][k >> 1] * n_pre) >> 32);
        if (!post) {
            for (int k = 0; k < pairs; k++) row_ptr[pre[k] + 1]++;
            continue;
        }
        for (int k = 0; k < pairs; k++)
            post[cursor[pre[k]]++] =
                (int32_t)(((uint64_t)b.w[2 * (k & 1) + 1][k >> 1] * n_post) >> 32);
    }
}

/* Sort a[0..m) (values in [0, 2^bits)) ascending: insertion sort for short rows,
 * else least-significant-digit radix sort through tmp (m entries). */
static void sort_row(int32_t *a, int32_t *tmp, int64_t m, int bits)
{
    if (m < 48) {
        for (int64_t k = 1; k < m; k++) {
            int32_t v = a[k];
            int64_t j = k;
            for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
            a[j] = v;
        }
        return;
    }
    int passes = (bits + 10) / 11, digit = (bits + passes - 1) / passes;
    int32_t *src = a, *dst = tmp;
    int64_t start[2048];
    const uint32_t mask = (1u << digit) - 1u;
    for (int shift = 0; shift < bits; shift += digit) {
        memset(start, 0, (mask + 1) * sizeof *start);
        for (int64_t k = 0; k < m; k++) start[((uint32_t)src[k] >> shift) & mask]++;
        for (int64_t d = 0, sum = 0; d <= (int64_t)mask; d++) {
            int64_t c = start[d];
            start[d] = sum;
            sum += c;
        }
        for (int64_t k = 0; k < m; k++) dst[start[((uint32_t)src[k] >> shift) & mask]++] = src[k];
        int32_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != a) memcpy(a, src, (size_t)m * sizeof *a);
}

/* FixedTotalNumber: the pairs sorted by (pre, post); returns 0, or -1 when out of
 * memory for the sort's scratch row. */
int sf_host_total(int64_t n, uint64_t n_pre, uint64_t n_post, uint32_t k0, uint32_t k1,
                  int64_t *row_ptr, int32_t *post, int64_t *cursor)
{
    total_pass(n, n_pre, n_post, k0, k1, row_ptr, 0, cursor);
    int64_t longest = 0;
    for (uint64_t i = 0; i < n_pre; i++) {
        longest = row_ptr[i + 1] > longest ? row_ptr[i + 1] : longest;
        row_ptr[i + 1] += row_ptr[i];
        cursor[i] = row_ptr[i];
    }
    total_pass(n, n_pre, n_post, k0, k1, row_ptr, post, cursor);
    int32_t *tmp = malloc((size_t)(longest > 0 ? longest : 1) * sizeof *tmp);
    if (!tmp) return -1;
    int bits = 1;
    while (bits < 31 && (1ull << bits) < n_post) bits++;
    for (uint64_t i = 0; i < n_pre; i++)
        sort_row(post + row_ptr[i], tmp, row_ptr[i + 1] - row_ptr[i], bits);
    free(tmp);
    return 0;
}

/* FixedProbability rows: target j of row r kept when word j%4 of counter
 * (0, r, j/4, 0) < threshold, and j != r when no_autapse. Stops before a row that
 * might not fit in capacity; returns the number of rows done. */
int64_t sf_host_probability(const int64_t *rows, int64_t n_rows, int64_t n_post,
                            uint64_t threshold, int no_autapse, uint32_t k0, uint32_t k1,
                            int64_t *counts, int32_t *post, int64_t capacity)
{
    sf_block b;
    int64_t used = 0, blocks = (n_post + 3) / 4;
    for (int64_t r = 0; r < n_rows; r++) {
        if (capacity - used < n_post) return r;
        int64_t start = used, skip = no_autapse ? rows[r] : -1;
        b.c[1][0] = (uint32_t)rows[r];
        for (int64_t first = 0; first < blocks; first += SF_BLOCK) {
            int m = blocks - first < SF_BLOCK ? (int)(blocks - first) : SF_BLOCK;
            row_words(&b, (uint32_t)first, m, k0, k1, 2);
            for (int64_t j = 4 * first; j < 4 * (first + m) && j < n_post; j++)
                if (b.w[j % 4][j / 4 - first] < threshold && j != skip) post[used++] = (int32_t)j;
        }
        counts[r] = used - start;
    }
    return n_rows;
}
"""

HOST_CDEF = """
void sf_host_words(int64_t, const uint32_t *const *, const int64_t *, uint32_t *, uint32_t *,
                   uint32_t *, uint32_t *);
void sf_host_uniforms(uint32_t, uint32_t, uint32_t, const int64_t *, int64_t, int64_t, int64_t,
                      double *, double *);
int sf_host_total(int64_t, uint64_t, uint64_t, uint32_t, uint32_t, int64_t *, int32_t *,
                  int64_t *);
int64_t sf_host_probability(const int64_t *, int64_t, int64_t, uint64_t, int, uint32_t, uint32_t,
                            int64_t *, int32_t *, int64_t);
"""


class HostLib:
    """The compiled host helper; see ``HOST_SOURCE`` for what each entry computes."""

    def __init__(self, ffi, lib):
        self.ffi, self.lib = ffi, lib

    @classmethod
    def open(cls) -> HostLib:
        header = philox_header()
        if header is None:
            raise RuntimeError("native host helper: backends/cstyle/philox.h not found")
        headers = (header.read_text(),)
        try:  # -march=native: vectorised Philox (integer only: no effect on any value)
            path = build_library(HOST_SOURCE, HOST_FLAGS + ("-march=native",), (header.parent,),
                                 headers, who="native host helper")
        except RuntimeError:
            path = build_library(HOST_SOURCE, HOST_FLAGS, (header.parent,), headers,
                                 who="native host helper")
        return cls(*load(path, HOST_CDEF))

    def ptr(self, array: np.ndarray | None, ctype: str):
        return self.ffi.NULL if array is None else self.ffi.cast(f"{ctype} *", array.ctypes.data)

    def words(self, args: list[np.ndarray], size: int) -> tuple[np.ndarray, ...]:
        """Philox words of ``size`` counters; each of the six contiguous uint32 arrays
        holds one value (broadcast) or ``size`` values."""
        out = [np.empty(size, dtype=np.uint32) for _ in range(4)]
        inputs = self.ffi.new("const uint32_t *[6]", [self.ptr(a, "uint32_t") for a in args])
        strides = self.ffi.new("int64_t[6]", [0 if a.size == 1 else 1 for a in args])
        self.lib.sf_host_words(size, inputs, strides, *(self.ptr(o, "uint32_t") for o in out))
        return tuple(out)

    def uniforms(self, key: tuple[int, int], c3: int, row_ptr: np.ndarray | None, row: int,
                 first: int, u0: np.ndarray, u1: np.ndarray | None) -> None:
        """Fill ``u0`` (and ``u1``) with the uniforms of words 0 (and 1) of elements
        ``first ..`` (see ``sf_host_uniforms``); row_ptr must be contiguous int64."""
        self.lib.sf_host_uniforms(*key, c3, self.ptr(row_ptr, "int64_t"), row, first, len(u0),
                                  self.ptr(u0, "double"), self.ptr(u1, "double"))

    def total(self, n: int, n_pre: int, n_post: int, key: tuple[int, int]):
        """FixedTotalNumber's (row_ptr int64, post int32), rows sorted by target."""
        row_ptr = np.zeros(n_pre + 1, dtype=np.int64)
        post = np.empty(n, dtype=np.int32)
        cursor = np.empty(n_pre, dtype=np.int64)
        if self.lib.sf_host_total(n, n_pre, n_post, *key, self.ptr(row_ptr, "int64_t"),
                                  self.ptr(post, "int32_t"), self.ptr(cursor, "int64_t")):
            raise MemoryError("FixedTotalNumber: no memory for the scratch row of the target sort")
        return row_ptr, post

    def probability(self, rows: np.ndarray, n_post: int, threshold: int, no_autapse: bool,
                    key: tuple[int, int], expected: float):
        """FixedProbability's (counts per row int64, post int32), grown as needed."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        counts = np.zeros(len(rows), dtype=np.int64)
        capacity = int(expected + 8 * expected**0.5) + n_post + 1024
        post, done, used = np.empty(capacity, dtype=np.int32), 0, 0
        while done < len(rows):
            if capacity - used < n_post:
                capacity = max(2 * capacity, used + n_post)
                post = np.resize(post, capacity)
            step = self.lib.sf_host_probability(
                self.ptr(rows[done:], "int64_t"), len(rows) - done, n_post, threshold, no_autapse,
                *key, self.ptr(counts[done:], "int64_t"),
                self.ptr(post[used:], "int32_t"), capacity - used)
            used += int(counts[done:done + step].sum())
            done += step
        return counts, post[:used] if capacity - used < used // 8 else post[:used].copy()
