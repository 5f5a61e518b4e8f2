"""Host side of the cuda backend: device arrays, the module, kernel launches,
recordings pulled in chunks.

``xp`` is :mod:`cupy` on a GPU or :mod:`spikeforge.backends.cuda.emulator` (the
same kernel text compiled with g++ and run on the CPU), so both use this one code
path: ``xp.asarray``/``.get()``/``.set()`` for explicit push and pull,
``xp.RawModule(code=...).get_function(name)`` and
``kernel(grid, block, args)`` launches with NumPy scalars for by-value params.

State lives on the device; ``self.state`` is the host copy that ``get`` refreshes
(pull) and ``set``/``reset`` push. One step launches ``program.step_kernels`` in
order (phases 2-7 of docs/semantics.md) with the step's scalars; every
``program.chunk`` steps (or at the end of a run) the recorded rows are pulled.
"""

from __future__ import annotations

import numpy as np
from spikeforge import fixed as F
from spikeforge.backends.cstyle import INCLUDE_DIR
from spikeforge.backends.cstyle.layout import initial_values, run_buffers
from spikeforge.simulation import Simulation

from .compile import RTC_FLAGS
from .program import CudaProgram

SCALAR_TYPES = {"int64_t": np.int64, "uint32_t": np.uint32, "int32_t": np.int32,
                "float": np.float32, "double": np.float64}
CUPY_OPTIONS = (*RTC_FLAGS, f"-I{INCLUDE_DIR}")


class CudaSimulation(Simulation):
    """A network running as CUDA kernels through ``xp`` (cupy or the emulator).
    Options: ``span`` ({projection: "pre" | "post"}, overriding the cost model),
    ``block_size`` (threads per block, a multiple of 32)."""

    backend = "cuda"

    def __init__(self, network, record_spikes=None, record_vars=(), xp=None, span=None,
                 block_size=128, name="cuda", options=CUPY_OPTIONS):
        super().__init__(network, record_spikes, record_vars)
        self.xp, self.backend = xp, name
        self.span, self.block_size, self.options = span, block_size, tuple(options)
        self._load()

    # building ---------------------------------------------------------------------
    def _load(self):
        """Render, compile (the xp module caches), allocate and upload every buffer."""
        program = CudaProgram(self.prepared, self.record_spikes, self.record_vars, self.span,
                              self.block_size)
        self.program, self.source = program, program.render()
        self.module = self.xp.RawModule(code=self.source, options=self.options)
        self.functions = {k.name: self.module.get_function(k.name) for k in program.kernels}
        self.kernel_info = {k.name: k for k in program.kernels}
        self.cname_key = {b.cname: b.key for b in program.buffers}
        self.dev = {}
        self._upload(initial_values(self.prepared, program.buffers), everything=True)

    def _upload(self, arrays: dict, everything: bool) -> None:
        for key, array in arrays.items():
            if key.startswith("state:"):
                array = self.state[key[6:]]
            elif not everything:
                if key in self.dev:
                    self.dev[key].set(_padded(array))
                continue
            self.dev[key] = self.xp.asarray(_padded(array))

    def _rebuild(self):
        self._load()

    def _reset_buffers(self):
        self._upload(initial_values(self.prepared, run_buffers(self.program.buffers)),
                     everything=False)

    # state --------------------------------------------------------------------------
    def _pull(self, name: str) -> np.ndarray:
        host = self.state[name]
        host[...] = self.dev[f"state:{name}"].get().reshape(-1)[:host.size].reshape(host.shape)
        return host

    def _push(self, name: str) -> None:
        self.dev[f"state:{name}"].set(_padded(self.state[name]))

    # running ------------------------------------------------------------------------
    def _scalars(self, step: int, rec_row: int) -> dict:
        return {"step": step, "rng_step": (self.rng_step + step - self.step) & 0xFFFFFFFF,
                "seed": self.seed & 0xFFFFFFFF, "rec_row": rec_row, "t_now": self._time(step)}

    def _time(self, step: int):
        """t of ``step`` exactly as the reference computes it (float: step*dt in
        double, rounded to the format; fixed: rounded once, wrapped)."""
        t = step * self.network.dt
        fmt = self.prepared.fixed
        if fmt is None:
            return self.prepared.dtype(t)
        return int(F.wrap(np.rint(t * 2.0**fmt.frac), fmt.bits))

    def _launch(self, name: str, scalars: dict) -> None:
        kernel = self.kernel_info[name]
        args = tuple(self.dev[self.cname_key[p]] if t.endswith("*__restrict__")
                     else SCALAR_TYPES[t](scalars[p]) for t, p in kernel.params)
        self.functions[name](kernel.grid, kernel.block, args)

    def _advance(self, n: int) -> None:
        while n > 0:
            k = min(n, self.program.chunk)
            for row in range(k):
                scalars = self._scalars(self.step + row, row)
                for name in self.program.step_kernels:
                    self._launch(name, scalars)
            self._drain_recordings(k)
            self.step += k
            self.rng_step += k
            n -= k

    def _drain_recordings(self, k: int) -> None:
        """Pull the recorded rows of the last k steps (one copy per buffer)."""
        for pop in self.record_spikes:
            self._record_spike_block(pop, self.step, self._spike_counts(pop, k))
        if self.record_vars:
            blocks = {}
            for var in self.record_vars:
                blocks[var] = self.dev[f"rec_var:{var}"][:k].get()
            self._record_var_block(self.step, blocks)

    def _spike_counts(self, pop: str, k: int) -> np.ndarray:
        """(k, batch, n) uint8 event counts from the recording buffer (bits or counts)."""
        n = self.network.population(pop).size
        raw = self.dev[f"rec_spikes:{pop}"][:k].get()
        if raw.dtype == np.uint8:
            return raw
        bits = np.unpackbits(np.ascontiguousarray(raw.astype("<u4")).view(np.uint8), axis=-1,
                             bitorder="little")
        return np.ascontiguousarray(bits[..., :n])

    def _custom_update(self, cu) -> None:
        index = self.network.custom_updates.index(cu)
        self._launch(self.program.custom_kernels[index], self._scalars(self.step, 0))


def _padded(array: np.ndarray) -> np.ndarray:
    """Device arrays have at least one element (an empty buffer is never read)."""
    array = np.ascontiguousarray(array)
    return array if array.size else np.zeros(1, dtype=array.dtype)
