"""RawModule / RawKernel of the CUDA emulator (CuPy's calling convention).

``RawKernel.__call__(grid, block, args, shared_mem=0)``: grid and block are tuples
of 1-3 ints; each arg is an ``emulator.ndarray`` (passed as a pointer) or a NumPy
scalar whose dtype is exactly the parameter's type (``np.int32`` for ``int``,
``np.float32`` for ``float``, ...). Python ints/floats are rejected: CuPy would pass
them as 64-bit values, which is wrong for ``int``/``float`` parameters on a GPU.
Pointer arguments must match the pointee (float32 for ``float*``, an integer or
bool array of the same size for integer pointees; ``void*`` and 1-byte pointees
take anything). Launch limits are CUDA's: block x,y <= 1024, z <= 64, at most 1024
threads; grid y,z <= 65535; dynamic shared memory above 48 KiB needs
``kernel.max_dynamic_shared_size_bytes`` raised first, as on a GPU.
"""

from __future__ import annotations

import collections
import ctypes
import threading
from pathlib import Path

import numpy as np
from spikeforge.backends.cuda import emulator as _emu
from spikeforge.backends.cuda import emulator_build as _build

DEFAULT_SHARED_LIMIT = 48 * 1024
MAX_SHARED = 227 * 1024
_ERRLEN = 8192
_LAUNCH_LOCK = threading.Lock()  # a module's launch state is global: one launch at a time
#: libraries that hold thread stacks, most recently launched last (see _hold_stacks)
_STACK_HOLDERS: collections.OrderedDict = collections.OrderedDict()
MAX_STACK_HOLDERS = 4


def _hold_stacks(lib) -> None:
    """Mark ``lib`` as the latest to launch; release the stacks of the least recent one
    beyond MAX_STACK_HOLDERS (each library keeps one mapping per stack guard page and is
    never unloaded, so a long session would otherwise exhaust vm.max_map_count).
    Called with _LAUNCH_LOCK held."""
    _STACK_HOLDERS[id(lib)] = lib
    _STACK_HOLDERS.move_to_end(id(lib))
    while len(_STACK_HOLDERS) > MAX_STACK_HOLDERS:
        _, oldest = _STACK_HOLDERS.popitem(last=False)
        oldest.sf_emu_release_threads()


class RawModule:
    """Kernel text compiled for the emulator (lazily, on the first get_function/get_global)."""

    def __init__(self, code: str | None = None, path: str | None = None, options=(),
                 backend: str = "nvrtc", translate_cucomplex: bool = False,
                 enable_cooperative_groups: bool = False, name_expressions=None,
                 jitify: bool = False):
        if code is None:
            if path is None:
                raise TypeError("RawModule: give code= (kernel source text)")
            code = Path(path).read_text()
        for expr in name_expressions or ():
            if "<" in str(expr):
                raise NotImplementedError(f"cuda emulator: template kernel {expr!r} "
                                          "(name_expressions with template arguments)")
        self.code = code
        self.options = tuple(options)
        self.kernels = _build.parse_kernels(code)
        self._lib = None
        self._tsan_path = None
        self._globals: dict[str, int] = {}

    def _source(self, tsan: bool = False) -> str:
        dyn = _build.TSAN_DYN_SHARED_BYTES if tsan else _build.DYN_SHARED_BYTES
        return self.code + _build.registration(self.code, self.kernels, dyn)

    def _flags(self, tsan: bool = False) -> tuple[str, ...]:
        return (*(_build.TSAN_FLAGS if tsan else _build.OPT_FLAGS),
                *_build.translate_options(self.options))

    def compile(self, log_stream=None):
        """Build (or fetch from the cache) and load the library."""
        if self._lib is None:
            self.path = _build.build(self._source(), self._flags())
            self._lib = _build.load(self.path)
        return self._lib

    def tsan_library(self) -> Path:
        """The same text built with -fsanitize=thread (for race_check mode)."""
        if self._tsan_path is None:
            self._tsan_path = _build.build(self._source(tsan=True), self._flags(tsan=True),
                                           tag="emu_tsan")
        return self._tsan_path

    def get_function(self, name: str) -> RawKernel:
        if name not in self.kernels:
            raise LookupError(f"RawModule: no __global__ function named {name!r} "
                              f"(kernels: {sorted(self.kernels)})")
        return RawKernel._of(self, name)

    def get_global(self, name: str) -> _Global:
        """The address (``.ptr``) of a ``__device__``/``__constant__`` variable."""
        lib = self.compile()
        try:
            ptr = ctypes.addressof(ctypes.c_char.in_dll(lib, name))
        except ValueError:
            raise LookupError(f"RawModule: no global variable named {name!r} (it must be a "
                              "non-static __device__ or __constant__ variable)") from None
        self._globals[name] = ptr
        return _Global(ptr, name)

    def global_sizes(self) -> dict[str, int]:
        """Sizes of the fetched globals (from the library's symbol table)."""
        import subprocess
        out = subprocess.run(["readelf", "-sW", str(self.path)], capture_output=True, text=True,
                             check=True).stdout
        sizes = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 8 and parts[7] in self._globals and parts[3] == "OBJECT":
                sizes[parts[7]] = int(parts[2], 0)
        return sizes


class _Global:
    __slots__ = ("name", "ptr")

    def __init__(self, ptr: int, name: str):
        self.ptr = ptr
        self.name = name

    def __int__(self):
        return self.ptr


class RawKernel:
    """One ``__global__`` function; ``RawKernel(code, name, options)`` as in CuPy."""

    def __init__(self, code: str, name: str, options=(), backend: str = "nvrtc",
                 translate_cucomplex: bool = False, enable_cooperative_groups: bool = False,
                 jitify: bool = False):
        self._init(RawModule(code=code, options=options), name)

    @classmethod
    def _of(cls, module: RawModule, name: str) -> RawKernel:
        self = cls.__new__(cls)
        self._init(module, name)
        return self

    def _init(self, module: RawModule, name: str):
        if name not in module.kernels:
            raise LookupError(f"RawKernel: no __global__ function named {name!r} "
                              f"(kernels: {sorted(module.kernels)})")
        self.module = module
        self.name = name
        self.max_dynamic_shared_size_bytes = DEFAULT_SHARED_LIMIT
        self.preferred_shared_memory_carveout = -1
        self._specs = None

    @property
    def attributes(self) -> dict:
        return {"max_dynamic_shared_size_bytes": self.max_dynamic_shared_size_bytes,
                "max_threads_per_block": 1024, "num_regs": 0, "local_size_bytes": 0}

    def compile(self, log_stream=None):
        self._bind()

    def _bind(self):
        if self._specs is not None:
            return
        lib = self.module.compile()
        self._library = lib
        sig = getattr(lib, f"sf_emu_sig_{self.name}")
        sig.restype = ctypes.c_char_p
        self._specs = _build.parse_signature(sig().decode(), self.module.kernels[self.name])
        for spec in self._specs:
            if not spec.pointer and spec.dtype is None:
                raise TypeError(f"kernel '{self.name}' {spec.describe()}: parameters of this "
                                "type are not supported by the emulator launcher (pass scalars "
                                "of fixed-size integer/float types or pointers)")
        self._tramp = ctypes.cast(getattr(lib, f"sf_emu_tramp_{self.name}"), ctypes.c_void_p).value
        self._launch = lib.sf_emu_launch
        self._slots = np.zeros(max(len(self._specs), 1), np.uint64)
        raw = self._slots.view(np.uint8)
        self._views = [None if s.pointer else raw[8 * s.index:8 * s.index + s.size].view(s.dtype)
                       for s in self._specs]
        self._dims = np.zeros(6, np.uint32)
        self._info = np.zeros(3, np.int64)
        self._slots_ptr, self._dims_ptr = self._slots.ctypes.data, self._dims.ctypes.data
        self._info_ptr = self._info.ctypes.data
        self._dims_cache = {}
        self._err = ctypes.create_string_buffer(_ERRLEN)
        self._cname = self.name.encode()

    # ---------------------------------------------------------------- launching
    def __call__(self, grid, block, args, *, shared_mem: int = 0, stream=None,
                 enable_cooperative_groups: bool = False):
        self._bind()
        try:
            dims = self._dims_cache[(grid, block)]
        except (KeyError, TypeError):
            dims = _launch_dims(self.name, grid, block)
            if isinstance(grid, tuple) and isinstance(block, tuple) and len(self._dims_cache) < 64:
                self._dims_cache[(grid, block)] = dims
        shared_mem = int(shared_mem)
        limit = min(int(self.max_dynamic_shared_size_bytes), MAX_SHARED)
        if not 0 <= shared_mem <= limit:
            raise ValueError(f"kernel '{self.name}': shared_mem={shared_mem} bytes exceeds the "
                             f"limit of {limit} (raise max_dynamic_shared_size_bytes, up to "
                             f"{MAX_SHARED}, as on a GPU)")
        config = _emu._config
        with _LAUNCH_LOCK:
            self._marshal(args)
            if config["race_check"]:
                from spikeforge.backends.cuda import emulator_race
                return emulator_race.launch(self, dims, shared_mem, args)
            self._dims[:] = dims
            _hold_stacks(self._library)
            table = _emu._REGISTRY.table()
            rc = self._launch(self._tramp, self._slots_ptr, self._cname, self._dims_ptr,
                              shared_mem, _emu._ORDERS[config["order"]], config["seed"],
                              table.ctypes.data, table.size // 2, self._info_ptr,
                              self._err, _ERRLEN)
        if rc:
            self._raise(rc, args)

    def _marshal(self, args):
        specs = self._specs
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"kernel '{self.name}': args must be a tuple, got "
                            f"{type(args).__name__}")
        if len(args) != len(specs):
            raise TypeError(f"kernel '{self.name}' takes {len(specs)} arguments "
                            f"({self.signature()}), got {len(args)}")
        for spec, arg in zip(specs, args):
            if spec.pointer:
                if type(arg) is not _emu.ndarray:
                    raise TypeError(f"kernel '{self.name}' {spec.describe()}: expected an "
                                    f"emulator.ndarray, got {_describe(arg)}")
                if not spec.accepts_array(arg.dtype):
                    raise TypeError(f"kernel '{self.name}' {spec.describe()}: array of dtype "
                                    f"{arg.dtype} does not match the pointee type")
                self._slots[spec.index] = arg._ptr
            else:
                if not isinstance(arg, np.generic) or arg.dtype != spec.dtype:
                    raise TypeError(f"kernel '{self.name}' {spec.describe()}: expected a "
                                    f"numpy.{spec.dtype.name} scalar, got {_describe(arg)}")
                self._views[spec.index][0] = arg

    def signature(self) -> str:
        return ", ".join(f"{s.type_text} {s.name}".strip() for s in self._specs)

    def _raise(self, rc: int, args):
        message = self._err.value.decode(errors="replace")
        if rc == 2:
            alloc = _emu._REGISTRY.allocation(int(self._info[0]) // 2)
            where = "before the start" if int(self._info[0]) % 2 == 0 else "past the end"
            offset = int(self._info[1]) - (_emu.FRONT_REDZONE if where == "before the start" else 0)
            alloc.repoison()
            raise _emu.KernelError(f"kernel '{self.name}': out-of-bounds write {where} of "
                                   f"{self._name_allocation(alloc, args)} (byte offset "
                                   f"{offset:+d} from its {'start' if offset < 0 else 'end'})")
        if rc == 3:
            addr = int(self._info[2])
            for ref in list(_emu._REGISTRY.live.values()):
                alloc = ref()
                if alloc and any(lo <= addr < hi for lo, hi in alloc.guards):
                    message += (f" (in the guard page of {self._name_allocation(alloc, args)}: "
                                "an out-of-bounds access)")
            raise _emu.KernelError(message)
        raise _emu.KernelError(message)

    def _name_allocation(self, alloc, args) -> str:
        for spec, arg in zip(self._specs, args):
            if spec.pointer and arg._alloc is alloc:
                return f"{spec.describe()} [{alloc.nbytes} bytes]"
        return f"an allocation of {alloc.nbytes} bytes not passed to this kernel"


def _describe(arg) -> str:
    if isinstance(arg, np.generic):
        return f"numpy.{arg.dtype.name} scalar"
    if isinstance(arg, bool):
        return "Python bool"
    if isinstance(arg, int):
        return "Python int (wrap it, e.g. numpy.int32(x))"
    if isinstance(arg, float):
        return "Python float (wrap it, e.g. numpy.float32(x))"
    if isinstance(arg, np.ndarray):
        return "a host numpy.ndarray (copy it to the device with emulator.asarray)"
    return type(arg).__name__


_LIMITS = {"grid": (2 ** 31 - 1, 65535, 65535), "block": (1024, 1024, 64)}


def _launch_dims(name: str, grid, block) -> tuple[int, ...]:
    dims = []
    for what, value in (("grid", grid), ("block", block)):
        value = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
        if not 1 <= len(value) <= 3:
            raise ValueError(f"kernel '{name}': {what} must have 1 to 3 dimensions, got {value}")
        value = tuple(int(v) for v in value) + (1,) * (3 - len(value))
        for v, limit, axis in zip(value, _LIMITS[what], "xyz"):
            if not 1 <= v <= limit:
                raise ValueError(f"kernel '{name}': {what}.{axis}={v} is outside 1..{limit} "
                                 "(invalid launch configuration on a GPU)")
        dims += value
    if dims[0] * dims[1] * dims[2] >= 2 ** 32:
        raise ValueError(f"kernel '{name}': grid {tuple(dims[:3])} has 2^32 or more blocks "
                         "(more than the emulator can enumerate)")
    if dims[3] * dims[4] * dims[5] > 1024:
        raise ValueError(f"kernel '{name}': block {tuple(dims[3:])} has more than 1024 threads")
    return tuple(dims)
