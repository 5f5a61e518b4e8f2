"""The cpu backend's runtime: host arrays, the compiled step, recordings.

All arrays (state, scratch, connectivity, recording buffers) are NumPy arrays
owned here and passed to the generated code by pointer; ``self.state``
entries are the very arrays the C code updates, so get/set need no copies.
"""

from __future__ import annotations

import os

import numpy as np

from spikeforge.backends.cstyle.layout import (fill_ring_offsets, initial_values, run_buffers,
                                               shared_arrays)
from spikeforge.backends.cstyle.program import Program
from spikeforge.simulation import Simulation

from . import runtime
from .dialect import CpuDialect

CTYPES = {"float32": "float", "float64": "double", "int8": "int8_t", "int16": "int16_t",
          "int32": "int32_t", "int64": "int64_t", "uint8": "uint8_t"}


# Appended to every cpu translation unit: the drain's scan of the recorded event
# counts (mostly zero), 8 bytes at a time, in C instead of NumPy (4-5x faster).
SCAN_EVENTS = """
int64_t sf_scan_events(const uint8_t *counts, int64_t n, int64_t *out)
{
    int64_t m = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, counts + i, 8);
        if (word == 0) continue;
        for (int64_t j = i; j < i + 8; j++) if (counts[j]) out[m++] = j;
    }
    for (; i < n; i++) if (counts[i]) out[m++] = i;
    return m;
}
"""
SCAN_EXPORT = "int64_t sf_scan_events(const uint8_t *counts, int64_t n, int64_t *out);"


class CpuSimulation(Simulation):
    backend = "cpu"

    def __init__(self, network, record_spikes=None, record_vars=(), opt="-O3", openmp=True,
                 extra_flags=(), threads=None, native=True, parallel_grain=None):
        super().__init__(network, record_spikes, record_vars)
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"cpu backend: threads must be a positive int, got {threads!r}")
        grain = default_grain() if parallel_grain is None else parallel_grain
        if isinstance(grain, bool) or not isinstance(grain, int) or grain < 0:
            raise ValueError(f"cpu backend: parallel_grain must be an int >= 0, got {grain!r}")
        self.threads = threads or default_threads()
        self.team = team_size(self.threads, network, grain)
        self.flags = runtime.flags(opt, openmp, tuple(extra_flags), native)
        self._load()

    def _load(self):
        """Render, compile (cached), load, and bind every buffer."""
        program = Program(self.prepared, CpuDialect(), self.record_spikes, self.record_vars)
        self.program, self.source = program, program.render() + SCAN_EVENTS
        self.library_path = runtime.build_library(self.source, self.flags)
        self.ffi, self.lib = runtime.load(self.library_path, program.exports() + "\n" + SCAN_EXPORT)
        self._hits = np.empty(0, np.int64)
        self.buffers = initial_values(self.prepared, program.buffers,
                                      shared_arrays(self.prepared, program.buffers, self.state))
        self.c = self.ffi.new("sf_state *")
        for buf in program.buffers:
            array = self.buffers[buf.key]
            assert array.flags.c_contiguous and array.dtype == buf.dtype, (buf, array.shape, array.dtype, array.flags)
            setattr(self.c, buf.cname, self.ffi.cast(CTYPES[buf.dtype.name] + " *",
                                                     array.ctypes.data))
        self.c.seed = self.seed

    def _shared_vars(self) -> set[str]:
        """Synapse vars that no synapse code assigns and no custom update references:
        the generated code only reads them (weights and delays of static synapses,
        8 bytes per synapse in the microcircuit), so one array serves as initial
        and live value until ``set`` writes the var."""
        net = self.network
        referenced = {ref for cu in net.custom_updates for ref in cu.var_refs.values()}
        return {key for proj in net.projections
                for var in proj.weight_update.vars
                if var.name not in proj.written_synapse_vars()
                and (key := f"{proj.name}.{var.name}") not in referenced
                and key in self.prepared.state}

    def _reset_buffers(self):
        """Restore what a run changes (state is reset by the base class); the
        connectivity and params never change, so they are not rebuilt."""
        for key, fresh in initial_values(self.prepared, run_buffers(self.program.buffers)).items():
            self.buffers[key][...] = fresh

    def _rebuild(self):
        self._load()

    def _push(self, name: str) -> None:
        """A var was set: recompute the stored ring offsets that derive from it."""
        proj, _, var = name.partition(".")
        if self.program.offsets.get(proj) == var:
            fill_ring_offsets(self.prepared, proj, self.buffers[f"ringoff:{proj}"],
                              self.state[name])

    def _advance(self, n: int) -> None:
        while n > 0:
            self.c.step, self.c.rng_step = self.step, self.rng_step
            self.lib.sf_set_threads(self.team)
            k = self.lib.sf_run(self.c, min(n, self.program.chunk))
            self._drain_recordings(k)
            self.step += k
            self.rng_step += k
            n -= k

    def _drain_recordings(self, k: int) -> None:
        """Hand the recorded rows of the last k steps to the logs."""
        for pop in self.record_spikes:
            block = self.buffers[f"rec_spikes:{pop}"][:k]
            self._record_spike_block(pop, self.step, block, self._nonzero(block))
        if self.record_vars:
            self._record_var_block(self.step, {v: self.buffers[f"rec_var:{v}"][:k]
                                               for v in self.record_vars})

    def _nonzero(self, block: np.ndarray):
        """np.nonzero of a recorded block of event counts, scanned in C."""
        if len(self._hits) < block.size:
            self._hits = np.empty(block.size, np.int64)
        found = self.lib.sf_scan_events(self.ffi.cast("const uint8_t *", block.ctypes.data),
                                        block.size,
                                        self.ffi.cast("int64_t *", self._hits.ctypes.data))
        return np.unravel_index(self._hits[:found].copy(), block.shape)

    def _custom_update(self, cu) -> None:
        self.c.step, self.c.rng_step = self.step, self.rng_step
        getattr(self.lib, f"sf_cu_{self.network.custom_updates.index(cu)}")(self.c)


PARALLEL_GRAIN = 8_000


def default_grain() -> int:
    value = os.environ.get("SPIKEFORGE_PARALLEL_GRAIN", "").strip()
    return int(value) if value.isdigit() else PARALLEL_GRAIN


def team_size(threads: int, network, grain: int) -> int:
    """Threads that run the steps: at most ``threads``, and at most one per
    ``grain`` neurons x batch (at least 1; grain 0: all). A step's work is about
    a nanosecond per neuron plus a few per delivered event, and handing it to
    another core costs microseconds per step (a barrier, spike lists crossing
    caches): on the 2-core machine of BENCHMARKS.md, CUBA's 4,000 neurons ran
    1.9x slower on 2 threads than on 1, and the microcircuit at scale 0.1
    (7,717 neurons) gained nothing, while at 0.25 (19,290) and above, where the
    threads split each row (``Dialect.split_sorted_rows``), 2 threads ran
    1.2-1.7x faster than 1 (medians, BENCHMARKS.md session 5).
    Results never depend on it (every sum has one order whatever the team)."""
    if grain == 0:
        return threads
    work = network.batch_size * sum(p.size for p in network.populations)
    return max(1, min(threads, work // grain))


def default_threads() -> int:
    """OMP_NUM_THREADS if set, else 1. One thread by default: OpenMP threads that
    spin at barriers collapse (10-100x) whenever another process holds a core,
    which is the common case on shared machines; ask for more explicitly."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1
