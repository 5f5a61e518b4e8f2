"""A CuPy-shaped CUDA emulator: the subset of CuPy the cuda backend's runtime uses,
executing the unchanged kernel text on the CPU (see docs/cuda-emulator.md).

    from spikeforge.backends.cuda import emulator as xp
    mod = xp.RawModule(code=kernel_text)
    k = mod.get_function("reduce")
    out = xp.zeros(1, np.float32)
    k((blocks,), (128,), (x, out, np.int32(n)), shared_mem=0)

Arrays (``ndarray``) live in host memory that the emulator maps with a redzone and
a guard page before and after each allocation; every launch checks the redzones of
every live allocation, so a write past either end raises ``KernelError`` naming the
kernel and the array. ``configure(order=..., seed=...)`` sets the order in which
a block's threads run between barriers (``forward``, ``reverse``, seeded
``random``; also blocks are visited in that order); ``race_check()`` runs launches
under ThreadSanitizer (emulator_race.py); ``check_order_independent(fn)`` runs
``fn`` in every order and compares the results.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap as _mmap
import os
import weakref

import numpy as np
from spikeforge.backends.cuda import emulator_build as _build
from spikeforge.backends.cuda.emulator_build import CompileError, CompilerNotFound

__all__ = [
    "CompileError",
    "CompilerNotFound",
    "KernelError",
    "OrderDependenceError",
    "RawKernel",
    "RawModule",
    "asarray",
    "asnumpy",
    "available",
    "check_order_independent",
    "configure",
    "empty",
    "empty_like",
    "full",
    "memcpy_dtoh",
    "memcpy_htod",
    "ndarray",
    "ones",
    "race_check",
    "synchronize",
    "thread_order",
    "zeros",
    "zeros_like",
]

POISON = 0xFF        # empty() arrays and shared memory: NaN floats, -1 integers
REDZONE_BYTE = 0xFD
FRONT_REDZONE = 256
BACK_REDZONE = 256
ALIGN = 256


class KernelError(RuntimeError):
    """A kernel misbehaved: out-of-bounds write, divergent barrier, warp-op misuse,
    invalid memory access or a data race (the message names kernel, block, thread)."""


class OrderDependenceError(KernelError):
    """check_order_independent: results differ between thread orders."""


def available() -> tuple[bool, str]:
    """(True, '') when a C++ compiler for the emulator is installed."""
    try:
        _build.cxx()
    except CompilerNotFound as exc:
        return False, str(exc)
    return True, ""


# ---------------------------------------------------------------- configuration
_ORDERS = {"forward": 0, "reverse": 1, "random": 2}
_config = {"order": os.environ.get("SPIKEFORGE_EMU_ORDER", "forward"),
           "seed": int(os.environ.get("SPIKEFORGE_EMU_SEED", "0")),
           "race_check": False}
if _config["order"] not in _ORDERS:
    raise ValueError(f"SPIKEFORGE_EMU_ORDER={_config['order']!r}: expected one of {sorted(_ORDERS)}")


class _Restore(contextlib.AbstractContextManager):
    def __init__(self, previous):
        self.previous = previous

    def __exit__(self, *exc):
        _config.update(self.previous)
        return False


def configure(order: str | None = None, seed: int | None = None,
              race_check: bool | None = None) -> _Restore:
    """Set the thread order between barriers (forward | reverse | random), the random
    order's seed and the race-check mode; returns a context manager that restores the
    previous settings on exit (plain calls change them for good)."""
    previous = dict(_config)
    if order is not None:
        if order not in _ORDERS:
            raise ValueError(f"emulator.configure: order={order!r}, expected one of "
                             f"{sorted(_ORDERS)}")
        _config["order"] = order
    if seed is not None:
        _config["seed"] = int(seed)
    if race_check is not None:
        _config["race_check"] = bool(race_check)
    return _Restore(previous)


def thread_order(order: str, seed: int | None = None) -> _Restore:
    """``with thread_order("reverse"): ...``"""
    return configure(order=order, seed=seed)


def race_check(enabled: bool = True) -> _Restore:
    """``with race_check(): ...``: launches run under ThreadSanitizer in a subprocess."""
    return configure(race_check=enabled)


# ---------------------------------------------------------------- allocations
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_PAGE = _mmap.PAGESIZE


class _Registry:
    """Live allocations and the table of their redzones ((address, length) pairs)."""

    def __init__(self):
        self.live: dict[int, weakref.ref] = {}
        self._table = np.zeros(0, np.uint64)
        self._order: list[int] = []
        self.dirty = False

    def add(self, alloc):
        self.live[id(alloc)] = weakref.ref(alloc)
        self.dirty = True

    def remove(self, key):
        self.live.pop(key, None)
        self.dirty = True

    def table(self):
        if self.dirty:
            self._order = list(self.live)
            rows = []
            for key in self._order:
                a = self.live[key]()
                rows += [a.front, FRONT_REDZONE, a.back, a.back_len] if a else [0, 0, 0, 0]
            self._table = np.array(rows, np.uint64)
            self.dirty = False
        return self._table

    def allocation(self, index: int):
        return self.live[self._order[index]]()


_REGISTRY = _Registry()


def _map_count() -> int:
    """Memory mappings of this process (the kernel refuses more than vm.max_map_count)."""
    with open("/proc/self/maps", "rb") as maps:
        return sum(1 for _ in maps)


def _unmap(base, total, key):
    _REGISTRY.remove(key)
    _libc.munmap(base, total)


class _Allocation:
    """One mapping: [guard page][front redzone][data][back redzone][guard page]; the data
    start is 256-byte aligned and ends at most 511 bytes before the back guard page."""

    def __init__(self, nbytes: int):
        data_pages = -(-(FRONT_REDZONE + ALIGN + nbytes + BACK_REDZONE) // _PAGE) * _PAGE
        self.total = data_pages + 2 * _PAGE
        base = _libc.mmap(None, self.total, 0, _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS, -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise MemoryError(f"cuda emulator: cannot map {nbytes} bytes")
        self.base = base
        if _libc.mprotect(base + _PAGE, data_pages, _mmap.PROT_READ | _mmap.PROT_WRITE) != 0:
            errno = ctypes.get_errno()
            _libc.munmap(base, self.total)
            raise MemoryError(f"cuda emulator: mprotect failed for {nbytes} bytes "
                              f"(errno {errno}; {_map_count()} mappings)")
        end = base + _PAGE + data_pages
        self.ptr = (end - BACK_REDZONE - nbytes) & ~(ALIGN - 1)
        self.nbytes = nbytes
        self.front = self.ptr - FRONT_REDZONE
        self.back = self.ptr + nbytes
        self.back_len = end - self.back
        self.guards = ((base, base + _PAGE), (end, end + _PAGE))
        self.repoison()
        self.host = np.frombuffer((ctypes.c_ubyte * max(nbytes, 1)).from_address(self.ptr),
                                  np.uint8)[:nbytes]
        _REGISTRY.add(self)
        weakref.finalize(self, _unmap, base, self.total, id(self))

    def repoison(self):
        ctypes.memset(self.front, REDZONE_BYTE, FRONT_REDZONE)
        ctypes.memset(self.back, REDZONE_BYTE, self.back_len)


class _MemoryPointer:
    """``a.data``: ``.ptr`` is the device (here: host) address."""
    __slots__ = ("mem", "ptr")

    def __init__(self, ptr, mem):
        self.ptr = ptr
        self.mem = mem

    def __int__(self):
        return self.ptr


class ndarray:
    """A C-contiguous "device" array in emulator-owned memory (CuPy's ndarray subset)."""

    def __init__(self, shape, dtype=float, *, _alloc=None, _offset=0):
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self.size = int(np.prod(shape, dtype=np.int64))
        self.nbytes = self.size * self.dtype.itemsize
        self._alloc = _alloc if _alloc is not None else _Allocation(self.nbytes)
        self._offset = _offset
        self._ptr = self._alloc.ptr + _offset
        self.data = _MemoryPointer(self._ptr, self._alloc)

    # -- views and descriptions
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def strides(self):
        return np.empty(0, self.dtype).reshape((0,) + self.shape[1:]).strides if self.ndim else ()

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self):
        return f"emulator.ndarray({self.get()!r})"

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed (as in CuPy); "
                        "use .get() or emulator.asnumpy()")

    @property
    def _host(self) -> np.ndarray:
        raw = self._alloc.host[self._offset:self._offset + self.nbytes]
        return raw.view(self.dtype).reshape(self.shape)

    def _view(self, offset: int, shape, dtype=None) -> ndarray:
        return ndarray(shape, dtype or self.dtype, _alloc=self._alloc, _offset=offset)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not np.isscalar(shape[0]) else shape
        return self._view(self._offset, self._host.reshape(shape).shape)

    def ravel(self):
        return self._view(self._offset, (self.size,))

    def view(self, dtype):
        return self._view(self._offset, self._host.view(dtype).shape, dtype)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) and self.ndim:
            i = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"index {int(key)} is out of bounds for axis 0 with size "
                                 f"{self.shape[0]}")
            row = self.nbytes // self.shape[0] if self.shape[0] else 0
            return self._view(self._offset + i * row, self.shape[1:])
        result = self._host[key]
        if isinstance(result, np.ndarray) and np.shares_memory(result, self._alloc.host):
            if not result.flags.c_contiguous:
                raise NotImplementedError(
                    f"emulator.ndarray[{key!r}]: only C-contiguous views are supported")
            offset = result.ctypes.data - self._alloc.ptr if result.size else self._offset
            return self._view(offset, result.shape)
        out = empty(np.shape(result), self.dtype)
        out._host[...] = result
        return out

    def __setitem__(self, key, value):
        self._host[key] = value.get() if isinstance(value, ndarray) else value

    # -- transfers
    def get(self, stream=None, order="C", out=None):
        if out is not None:
            out[...] = self._host
            return out
        return self._host.copy()

    def set(self, arr, stream=None):
        arr = np.asarray(arr)
        if arr.dtype != self.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        self._host[...] = arr

    def fill(self, value):
        self._host.fill(value)

    def copy(self, order="C"):
        out = empty(self.shape, self.dtype)
        out._host[...] = self._host
        return out

    def astype(self, dtype, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        out = empty(self.shape, dtype)
        out._host[...] = self._host
        return out


# ---------------------------------------------------------------- array functions
def empty(shape, dtype=float) -> ndarray:
    """Uninitialised memory: filled with the poison byte 0xFF (NaN / -1), not zeros."""
    out = ndarray(shape, dtype)
    out._alloc.host[:] = POISON
    return out


def zeros(shape, dtype=float) -> ndarray:
    return ndarray(shape, dtype)  # fresh anonymous mappings are zero


def ones(shape, dtype=float) -> ndarray:
    return full(shape, 1, dtype)


def full(shape, fill_value, dtype=None) -> ndarray:
    out = ndarray(shape, dtype if dtype is not None else np.asarray(fill_value).dtype)
    out.fill(fill_value)
    return out


def zeros_like(a, dtype=None) -> ndarray:
    return zeros(a.shape, dtype or a.dtype)


def empty_like(a, dtype=None) -> ndarray:
    return empty(a.shape, dtype or a.dtype)


def asarray(a, dtype=None) -> ndarray:
    """A device copy of a host array (the array itself when it already is one)."""
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    host = np.ascontiguousarray(a, dtype=dtype)
    out = ndarray(host.shape, host.dtype)
    out._host[...] = host
    return out


array = asarray


def asnumpy(a, stream=None, out=None) -> np.ndarray:
    if isinstance(a, ndarray):
        return a.get(out=out)
    return np.asarray(a)


def synchronize() -> None:
    """Launches are synchronous in the emulator."""


def memcpy_htod(ptr, host) -> None:
    """Copy a host array's bytes to a device address (e.g. ``module.get_global(n).ptr``)."""
    host = np.ascontiguousarray(host)
    ctypes.memmove(int(ptr), host.ctypes.data, host.nbytes)


def memcpy_dtoh(host: np.ndarray, ptr) -> np.ndarray:
    """Copy ``host.nbytes`` bytes from a device address into ``host`` (C-contiguous)."""
    if not host.flags.c_contiguous:
        raise ValueError("memcpy_dtoh: host array must be C-contiguous")
    ctypes.memmove(host.ctypes.data, int(ptr), host.nbytes)
    return host


def check_order_independent(run_fn, orders=("forward", "reverse", "random"), seeds=(1, 2),
                            rtol: float = 0.0, atol: float = 0.0):
    """Run ``run_fn()`` (which builds fresh inputs, launches, and returns arrays: one,
    a tuple/list or a dict) once per thread order (random once per seed) and compare
    the results: bit-exact by default, within rtol/atol when given (float atomics
    round differently in different orders). Raises OrderDependenceError naming the
    orders and the first differing element; returns the forward-order result."""
    runs = [(o, None) for o in orders if o != "random"]
    runs += [("random", s) for s in seeds] if "random" in orders else []
    results = []
    for order, seed in runs:
        with configure(order=order, seed=seed if seed is not None else _config["seed"]):
            results.append(_flatten(run_fn()))
    ref_label = _label(*runs[0])
    for (order, seed), got in zip(runs[1:], results[1:]):
        for i, (a, b) in enumerate(zip(results[0], got)):
            bad = _first_difference(a, b, rtol, atol)
            if bad is not None:
                raise OrderDependenceError(
                    f"result {i} differs between thread orders {ref_label} and "
                    f"{_label(order, seed)}: {bad}")
    return results[0] if len(results[0]) != 1 else results[0][0]


def _label(order, seed):
    return order if seed is None else f"{order}(seed={seed})"


def _flatten(result) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [x for k in sorted(result) for x in _flatten(result[k])]
    if isinstance(result, (tuple, list)):
        return [x for r in result for x in _flatten(r)]
    return [asnumpy(result) if isinstance(result, ndarray) else np.asarray(result)]


def _first_difference(a: np.ndarray, b: np.ndarray, rtol, atol):
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"shape/dtype {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    if rtol or atol:
        same = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True) if a.dtype.kind in "fc" \
            else a == b
    else:
        if a.tobytes() == b.tobytes():
            return None
        rows = (a.size, a.dtype.itemsize)
        same = (np.frombuffer(a.tobytes(), np.uint8).reshape(rows)
                == np.frombuffer(b.tobytes(), np.uint8).reshape(rows)).all(1).reshape(a.shape)
    if np.all(same):
        return None
    idx = tuple(int(i) for i in np.argwhere(~np.asarray(same))[0])
    return f"element {list(idx)}: {a[idx]!r} vs {b[idx]!r}"


from spikeforge.backends.cuda.emulator_kernel import RawKernel, RawModule
