"""The CUDA translation unit of a network: one ``extern "C" __global__`` kernel per
phase and node, their parameters and launch geometry (pure: no I/O).

:class:`CudaProgram` is the cstyle :class:`Program` with CUDA spellings: deliveries
to shared targets are atomic (``accumulate``), ``t`` is a kernel argument computed
on the host (``time_now``: no double precision in float32 kernels), and float32
draws use float paths. Layout changes against the cpu layout: a step's spike
list is one array with a length per (slot, batch) (``spk_n``), recorded spikes of
threshold populations are bits (uint32 words), and projections whose synapses are
visited per target get a CSC view (``colptr``/``colsyn``/``pre``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spikeforge.backends.cstyle.layout import Buffer, spike_depth
from spikeforge.backends.cstyle.program import CTYPES, Program
from spikeforge.backends.cstyle.render import HELPERS
from spikeforge.connectivity import Dense

from . import kernels as K
from .dialect import CudaDialect

SCALARS = ("step", "rng_step", "seed", "rec_row", "t_now")
SPANS = ("pre", "post")
FLOAT_HELPERS = Path(__file__).with_name("sf_float.cuh")  # pasted into float32 sources
ASSUMED_RATE_HZ = 20.0  # firing rate the cost model assumes
ATOMIC_COST = 8.0  # an atomic add into global memory, in units of one coalesced read
MAX_ROW_BLOCKS = 4096  # blocks of a presynaptic-span kernel (grid-stride over spikes)

FLOAT_DRAWS = "SF_FN float sf_uniform_f(uint32_t w) { return ((float)(w >> 9) + 0.5f) * 0x1p-23f; }"


@dataclass(frozen=True)
class Kernel:
    """One generated kernel: its parameters (C type, name) in order, the launch
    geometry, and what it is for (``kind``: neurons, presynaptic, postsynaptic,
    post_spike, dynamics, clear, record, custom; ``node``: population/projection/
    custom update)."""

    name: str
    kind: str
    node: str
    params: tuple
    grid: tuple
    block: tuple
    source: str

    @property
    def buffers(self) -> tuple:
        return tuple(n for t, n in self.params if t.endswith("*__restrict__"))


def choose_span(prepared, proj, dt: float) -> str:
    """Cost model (per step, in coalesced-read units): presynaptic span costs
    f nnz ATOMIC_COST c, where f = expected events per neuron and step and
    c = max(1, f fan_in) the expected number of atomics colliding on one target;
    postsynaptic span costs f nnz for Dense (a thread per target walks the spike
    list) and nnz for other connectivity (every column scanned). Procedural
    connectivity is always presynaptic (no columns are stored)."""
    if proj.connectivity.procedural:
        return "pre"
    syn = prepared.synapses[proj.name]
    nnz = len(syn.post)
    if nnz == 0:
        return "pre"
    n_post = prepared.network.population(proj.post).size
    f = min(1.0, ASSUMED_RATE_HZ * dt / 1000.0)
    pre_cost = f * nnz * ATOMIC_COST * max(1.0, f * nnz / n_post)
    post_cost = f * nnz if isinstance(proj.connectivity, Dense) else float(nnz)
    return "post" if post_cost < pre_cost else "pre"


def spans(prepared, overrides: dict | None) -> dict:
    """Strategy per projection with pre_spike code: the cost model's choice unless
    ``overrides`` (projection name -> "pre" | "post") says otherwise."""
    net = prepared.network
    overrides = dict(overrides or {})
    names = {p.name for p in net.projections}
    for name, value in overrides.items():
        if name not in names:
            raise ValueError(f"cuda backend: span= names unknown projection {name!r} "
                             f"(projections: {sorted(names)})")
        if value not in SPANS:
            raise ValueError(f"cuda backend: span of projection {name!r} must be 'pre' or "
                             f"'post', got {value!r}")
        if value == "post" and net.projection(name).connectivity.procedural:
            raise ValueError(f"cuda backend: projection {name!r} has procedural connectivity, "
                             "which supports only span='pre' (no stored columns)")
    return {p.name: overrides.get(p.name) or choose_span(prepared, p, net.dt)
            for p in net.projections if p.weight_update.parsed["pre_spike"]}


class CudaProgram(Program):
    """Renders the kernels of a prepared network; ``kernels`` lists them after
    :meth:`render`, ``step_kernels`` are launched in order every step and
    ``custom_kernels[i]`` runs custom update i."""

    time_now = "S->t_now"

    def __init__(self, prepared, record_spikes=(), record_vars=(), span=None, block_size=128):
        super().__init__(prepared, CudaDialect(), record_spikes, record_vars)
        if not isinstance(block_size, int) or block_size % 32 or not 32 <= block_size <= 1024:
            raise ValueError(f"cuda backend: block_size must be a multiple of 32 in [32, 1024], "
                             f"got {block_size!r}")
        self.block = block_size
        self.spans = spans(prepared, span)
        self.buffers = self._cuda_layout()
        self.by_key = {b.key: b for b in self.buffers}
        self.kernels: list[Kernel] = []

    # layout ------------------------------------------------------------------------
    def _cuda_layout(self) -> list[Buffer]:
        net, batch = self.network, self.batch
        out = [b for b in self.buffers
               if not b.key.startswith(("spk_t:", "spk_n:", "rec_spikes:"))]
        out += [Buffer(f"spk_n:{p.name}", np.dtype(np.int32), (spike_depth(net, p.name), batch))
                for p in net.populations]
        for name in self.record_spikes:
            pop = net.population(name)
            if K.multi_event(pop):
                out.append(Buffer(f"rec_spikes:{name}", np.dtype(np.uint8),
                                  (self.chunk, batch, pop.size)))
            else:
                out.append(Buffer(f"rec_spikes:{name}", np.dtype(np.uint32),
                                  (self.chunk, batch, (pop.size + 31) // 32)))
        have = {b.key for b in out}
        for proj in net.projections:
            if self._needs_columns(proj) and f"colptr:{proj.name}" not in have:
                syn = self.prepared.synapses[proj.name]
                n_post = net.population(proj.post).size
                out += [Buffer(f"colptr:{proj.name}", np.dtype(np.int64), (n_post + 1,)),
                        Buffer(f"colsyn:{proj.name}", np.dtype(np.int32), syn.post.shape),
                        Buffer(f"pre:{proj.name}", np.dtype(np.int32), syn.post.shape)]
        return out

    def _needs_columns(self, proj) -> bool:
        parsed = proj.weight_update.parsed
        column_span = (self.spans.get(proj.name) == "post"
                       and not isinstance(proj.connectivity, Dense))
        return bool(column_span or parsed["post_spike"] or parsed["synapse_dynamics"])

    def compacts(self, pop) -> bool:
        """Whether the neuron kernel of ``pop`` lists its spikes (some projection
        from it walks the spike list)."""
        return any(p.pre == pop.name and self._walks_list(p) for p in self.network.projections)

    def _walks_list(self, proj) -> bool:
        span = self.spans.get(proj.name)
        return span == "pre" or (span == "post" and isinstance(proj.connectivity, Dense))

    # spellings -----------------------------------------------------------------------
    def accumulate(self, target: str, value: str) -> str:
        """Locals (acc_*) add plainly; shared targets atomically. Fixed point adds
        the value's 32-bit pattern: the sum mod 2^32 is the same in any order and
        readers wrap it to the format (kernels.wrap_reads)."""
        if target.startswith("acc_"):
            return super().accumulate(target, value)
        if self.fixed is None:
            return f"atomicAdd(&{target}, {value});"
        return f"atomicAdd((unsigned int *)&{target}, (unsigned int)(uint32_t)({value}));"

    def draw(self, call, args, counter: str):
        if self.fixed is not None or self.precision != "float32":
            return super().draw(call, args, counter)
        if call.func == "uniform":
            return f"sf_uniform_f({counter}.w[0])", "float"
        if call.func == "normal":
            return f"sf_normal_f({counter})", "float"
        if call.func == "exponential":
            return f"sf_exponential_f({counter}.w[0])", "float"
        return f"sf_poisson_f({counter}.w[0], (float)({args[0][0]}))", "int"

    # kernels ---------------------------------------------------------------------------
    def _grid(self, n: int, y: int | None = None) -> tuple:
        return (max(1, -(-n // self.block)), self.batch if y is None else y, 1)

    def _add(self, name, kind, node, body, grid, block) -> str:
        text = "\n".join(body)
        used = sorted(set(re.findall(r"S->(b_\w+)", text)))
        ctypes = {b.cname: {**CTYPES, "uint32": "uint32_t"}[b.dtype.name] for b in self.buffers}
        kinds = {"step": "int64_t", "rng_step": "uint32_t", "seed": "uint32_t",
                 "rec_row": "int32_t", "t_now": self.ctype("float")}
        params = [(f"{ctypes[n]} *__restrict__", n) for n in used]
        params += [(kinds[f], f) for f in SCALARS if re.search(rf"S->{f}\b", text)]
        text = re.sub(r"S->(b_\w+|seed|rng_step|step|rec_row|t_now)\b", r"\1", text)
        if self.fixed is None and self.precision == "float32":
            text = text.replace("sf_init_", "sf_initf_")
        signature = ", ".join(f"{t} {n}" for t, n in params) or "void"
        source = "\n".join([f'{self.dialect.kernel_qualifier} void {name}({signature})', "{",
                            *K.indent(text.split("\n")), "}"])
        self.kernels.append(Kernel(name, kind, node, tuple(params), grid,
                                   (block, 1, 1), source))
        return name

    def _synapse_kernels(self) -> list[str]:
        net, names = self.network, []
        for index, proj in enumerate(net.projections):
            if proj.name not in self.spans:
                continue
            n_pre = net.population(proj.pre).size
            n_post = net.population(proj.post).size
            if proj.connectivity.procedural:
                body, grid, block = K.procedural_span(self, proj), self._grid(n_pre), self.block
            elif self.spans[proj.name] == "pre":
                rows = np.diff(self.prepared.synapses[proj.name].row_ptr)
                longest = int(rows.max()) if len(rows) else 0
                block = min(self.block, max(32, -(-longest // 32) * 32))
                body, grid = K.presynaptic_span(self, proj), (min(n_pre, MAX_ROW_BLOCKS),
                                                              self.batch, 1)
            elif isinstance(proj.connectivity, Dense):
                body, grid, block = K.dense_postsynaptic_span(self, proj, self.block), \
                    self._grid(n_post), self.block
            else:
                body, grid, block = K.postsynaptic_span(self, proj, self.block), \
                    self._grid(n_post), self.block
            kind = "presynaptic" if self.spans[proj.name] == "pre" else "postsynaptic"
            names.append(self._add(f"sf_pre_{index}", kind, proj.name, body, grid, block))
        for stage, render in (("post", K.postsynaptic_spikes), ("dyn", K.synapse_dynamics)):
            field = {"post": "post_spike", "dyn": "synapse_dynamics"}[stage]
            for index, proj in enumerate(net.projections):
                if proj.weight_update.parsed[field]:
                    n_post = net.population(proj.post).size
                    names.append(self._add(f"sf_{stage}_{index}", {"post": "post_spike",
                                                                   "dyn": "dynamics"}[stage],
                                           proj.name, render(self, proj, self.block),
                                           self._grid(n_post), self.block))
        return names

    def _neuron_kernels(self) -> list[str]:
        net, names = self.network, []
        listing = [p for p in net.populations if self.compacts(p)]
        if listing:
            names.append(self._add("sf_clear", "clear", "", K.clear_spike_counts(self, listing),
                                   (1, 1, 1), 32))
        for index, pop in enumerate(net.populations):
            body = K.neurons(self, pop, self.compacts(pop), self.block)
            names.append(self._add(f"sf_neurons_{index}", "neurons", pop.name, body,
                                   self._grid(pop.size), self.block))
        return names

    def _custom_kernel(self, index, cu) -> str:
        body = K.custom_update(self, cu, self.block)
        n = K._size(self, cu)
        if any(red.over == "neurons" for red in cu.reductions.values()):
            grid, block = (1, 1, 1), max(self.block, 256)
        else:
            grid, block = self._grid(int(n), 1), self.block
        return self._add(f"sf_cu_{index}", "custom", cu.name, body, grid, block)

    def render(self) -> str:
        self.kernels = []
        self.step_kernels = self._synapse_kernels() + self._neuron_kernels()
        self.custom_kernels = {i: self._custom_kernel(i, cu)
                               for i, cu in enumerate(self.network.custom_updates)}
        self.step_kernels += [self.custom_kernels[i]
                              for i, cu in enumerate(self.network.custom_updates)
                              if cu.every_step]
        if self.record_vars:
            size = max(self.prepared.state[v].size for v in self.record_vars)
            self.step_kernels.append(self._add("sf_record", "record", "", K.record_vars(self),
                                               self._grid(size, 1), self.block))
        return "\n\n".join(self._prelude() + [k.source for k in self.kernels]) + "\n"

    def _prelude(self) -> list[str]:
        d = self.dialect
        q = d.fn_qualifier
        parts = [d.prelude, '#include "philox.h"']
        if self.fixed is None and self.precision == "float32":
            parts.append(FLOAT_DRAWS)
            if any(re.search(r"sf_(normal|exponential|poisson)_f|sf_initf_", k.source)
                   for k in self.kernels):
                parts.append(FLOAT_HELPERS.read_text().strip())
        else:
            parts.append(f"{q} double sf_normal_words(sf_words w) "
                         "{ return sf_normal(w.w[0], w.w[1]); }")
        parts += [HELPERS.format(q=q),
                  (f"{q} int64_t sf_mod(int64_t a, int64_t n) "
                   "{ int64_t r = a % n; return r < 0 ? r + n : r; }")]
        parts += [line.replace("static const ", f"{d.global_qualifier} const ")
                  for line in self.fixed_prelude()]
        if any("sf_block_" in k.source for k in self.kernels):
            parts.append(K.block_reduce_helpers(self, q))
        return parts
