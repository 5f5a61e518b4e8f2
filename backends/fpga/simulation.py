"""The Simulation API on top of an accelerator executor (C simulation or a board).

An executor runs one ``FpgaProgram``'s ``sf_top``:

* ``allocate(shape, dtype) -> numpy.ndarray`` (device-visible host memory:
  plain NumPy for C simulation, ``pynq.allocate`` on a board);
* ``call(arrays, scalars)``: arrays keyed by ``Port.name``; scalars ``mode``,
  ``n_steps``, ``step``, ``rng_step``, ``seed``;
* ``sync_to_device(arrays)`` / ``sync_from_device(arrays)`` (dicts name ->
  array; no-ops in C simulation).

``FpgaSimulation(network, record_spikes, record_vars, executor)`` takes an
executor *factory* ``executor(program) -> executor`` (the program depends on
the prepared network, which the Simulation base class makes): ``CSimExecutor``
itself, or e.g. ``functools.partial(PynqExecutor, bitstream=path)``. Every
state array in ``self.state`` *is* the executor's buffer, so ``get``/``set``
need no copies; buffers are synced before and after every call.
"""

from __future__ import annotations

import numpy as np
from spikeforge.backends.cstyle.layout import initial_values, run_buffers
from spikeforge.simulation import Simulation

from .csim import CSimLibrary
from .program import FpgaProgram

U32 = 0xFFFFFFFF


class CSimExecutor:
    """Runs ``program`` as C simulation (g++ shared library)."""

    def __init__(self, program, opt: str = "-O1", extra_flags=()):
        self.program = program
        self.library = CSimLibrary(program, opt, extra_flags)

    @staticmethod
    def allocate(shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def call(self, arrays: dict, scalars: dict) -> None:
        self.library.call(arrays, scalars)

    def sync_to_device(self, arrays) -> None:
        pass

    def sync_from_device(self, arrays) -> None:
        pass


class FpgaSimulation(Simulation):
    backend = "fpga"

    def __init__(self, network, record_spikes=None, record_vars=(), executor=CSimExecutor,
                 **program_options):
        super().__init__(network, record_spikes, record_vars)
        self.make_executor, self.program_options = executor, dict(program_options)
        self._load()

    def _load(self):
        """Render the accelerator, start its executor, allocate and fill every port."""
        program = FpgaProgram(self.prepared, self.record_spikes, self.record_vars,
                              **self.program_options)
        if program.board is not None:  # fail early, before compiling
            from .estimate import check, estimate

            check(estimate(program, program.board))
        self.program, self.source = program, program.render()
        self.executor = self.make_executor(program)
        initial = initial_values(self.prepared, program.buffers)
        self.arrays, self.by_key = {}, {}
        for port in program.ports:
            if port.kind != "m_axi":
                continue
            array = self.executor.allocate(port.shape, initial[port.key].dtype)
            array[...] = initial[port.key]
            self.arrays[port.name], self.by_key[port.key] = array, array
            kind, _, name = port.key.partition(":")
            if kind == "state":
                self.state[name] = array
        self._inputs = {p.name: self.arrays[p.name] for p in program.ports
                        if p.kind == "m_axi" and p.role != "out"}
        self._outputs = {p.name: self.arrays[p.name] for p in program.ports
                         if p.kind == "m_axi" and p.role != "in"}

    def _run(self, mode: int, n_steps: int) -> None:
        self.executor.sync_to_device(self._inputs)
        self.executor.call(self.arrays, {"mode": mode, "n_steps": n_steps, "step": self.step,
                                         "rng_step": self.rng_step & U32,
                                         "seed": self.seed & U32})
        self.executor.sync_from_device(self._outputs)

    def _advance(self, n: int) -> None:
        while n > 0:
            k = min(n, self.program.steps_per_call)
            self._run(0, k)
            self._drain_recordings(k)
            self.step += k
            self.rng_step += k
            n -= k

    def _drain_recordings(self, k: int) -> None:
        for pop in self.record_spikes:
            self._record_spike_block(pop, self.step,
                                     np.asarray(self.by_key[f"rec_spikes:{pop}"][:k]))
        if self.record_vars:
            self._record_var_block(self.step, {v: np.array(self.by_key[f"rec_var:{v}"][:k])
                                               for v in self.record_vars})

    def _custom_update(self, cu) -> None:
        self._run(self.network.custom_updates.index(cu) + 1, 0)

    def _reset_buffers(self) -> None:
        for key, fresh in initial_values(self.prepared, run_buffers(self.program.buffers)).items():
            self.by_key[key][...] = fresh

    def _rebuild(self) -> None:
        self._load()
