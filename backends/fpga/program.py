"""The per-network HLS accelerator: one top function ``sf_top`` (pure rendering).

The phase bodies are the shared C-style emitter's (backends/cstyle), rendered
in the ``fpga`` dialect as functions over pointer parameters, so the
accelerator computes exactly what the cpu backend and the NumPy reference
compute. The top function::

    extern "C" void sf_top(<one pointer per buffer>, int32_t mode, int32_t n_steps,
                           int64_t step, uint32_t rng_step, uint32_t seed)

* every buffer of the layout (backends/cstyle/layout.py) is an ``m_axi`` port
  (``offset=slave``) whose address sits in the ``s_axilite`` bundle
  ``control``, as do the scalars and ``return`` (``ap_ctrl_hs``); arrays used in
  one phase at once get separate AXI bundles (state, connectivity, synapse vars,
  spike/input rings, spike-source input, recordings);
* buffers in ``onchip`` are copied into static on-chip arrays
  (``BIND_STORAGE`` BRAM or URAM) at the start of a call, used by every step of
  the call, and copied back at the end (read-only ones are not copied back);
  recordings are always written straight to DDR;
* ``mode == 0`` runs ``min(n_steps, steps_per_call)`` timesteps: step ``k`` of
  the call is global step ``step + k`` with Philox counter word
  ``rng_step + k``, and writes recording row ``k`` (input spikes come from the
  spike-source schedule ports, recorded spikes/vars go out through the
  recording ports); ``mode == m > 0`` runs host custom update ``m - 1`` once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from spikeforge.backends.cstyle import kernels as K
from spikeforge.backends.cstyle.elements import indent
from spikeforge.backends.cstyle.program import CTYPES, Program
from spikeforge.backends.cstyle.render import HELPERS
from spikeforge.hls import headers

from . import dialect as D
from . import synth_check

TOP = "sf_top"
SCALARS = (("mode", "int32_t"), ("n_steps", "int32_t"), ("step", "int64_t"),
           ("rng_step", "uint32_t"), ("seed", "uint32_t"))
BUNDLES = {"state": "gmem_state", "input": "gmem_ring", "inring": "gmem_ring",
           "spikes": "gmem_spk", "spk_id": "gmem_spk", "spk_n": "gmem_spk", "spk_t": "gmem_spk",
           "rowptr": "gmem_csr", "post": "gmem_csr", "vidx": "gmem_csr", "colptr": "gmem_csc",
           "colsyn": "gmem_csc", "pre": "gmem_csc", "ssa_off": "gmem_in", "ssa_steps": "gmem_in",
           "ssa_next": "gmem_in", "rec_spikes": "gmem_rec", "rec_var": "gmem_rec"}
READ_ONLY = ("rowptr", "post", "vidx", "colptr", "colsyn", "pre", "ssa_off", "ssa_steps")
URAM_MIN_BYTES = 32 << 10  # arrays this large go to URAM on boards that have it
LUTRAM_MAX_BYTES = 256  # arrays this small go to distributed (LUT) RAM


@dataclass(frozen=True)
class Port:
    """One argument of ``sf_top``: an ``m_axi`` array or an ``s_axilite`` scalar."""

    name: str
    kind: str  # "m_axi" | "scalar"
    ctype: str
    shape: tuple
    bundle: str | None
    role: str  # "in" | "out" | "inout"
    key: str | None  # the cstyle layout buffer key (None for scalars)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def bits(self) -> int:
        """Width of the s_axilite data register: 64 for pointers and 64-bit scalars."""
        return 64 if self.kind == "m_axi" or "64" in self.ctype else 32


def role_of(key: str) -> str:
    kind = key.split(":")[0]
    if kind in ("rec_spikes", "rec_var"):
        return "out"
    return "in" if kind in READ_ONLY else "inout"


def is_weight(key: str, network) -> bool:
    """Connectivity and per-synapse vars: what "off-chip weights" moves to DDR."""
    kind, _, name = key.partition(":")
    if kind in ("rowptr", "post", "vidx", "colptr", "colsyn", "pre"):
        return True
    node = name.split(".")[0]
    if kind == "state" and node in {p.name for p in network.projections}:
        var = name.split(".")[1]
        proj = network.projection(node)
        return var in {v.name for v in proj.weight_update.vars}
    return False


class FpgaProgram(Program):
    """Renders ``sf_top`` for a prepared network (pure: IR -> text).

    ``onchip``: ``"all"`` (default: every buffer except recordings), ``"state"``
    (connectivity and synapse vars stay in DDR: "off-chip weights"), ``"auto"``
    ("all" if that fits ``board``, else "state"), ``"none"``, or an explicit
    collection of layout keys. ``board`` (a boards.Board) only
    chooses URAM for large on-chip arrays when the board has URAM.
    ``steps_per_call`` caps the steps of one call (default: the recording chunk)."""

    top = TOP

    def __init__(self, prepared, record_spikes=(), record_vars=(), steps_per_call=None,
                 onchip="all", board=None):
        super().__init__(prepared, D.FpgaDialect(), record_spikes, record_vars)
        if steps_per_call is not None:
            if not isinstance(steps_per_call, int) or steps_per_call < 1:
                raise ValueError(f"fpga: steps_per_call must be a positive int, got "
                                 f"{steps_per_call!r}")
            if self.record_spikes or self.record_vars:
                steps_per_call = min(steps_per_call, self.chunk)
            self.chunk = steps_per_call
        self.steps_per_call = self.chunk
        self.board = board
        self.onchip = self._onchip(onchip)
        self._calls: dict[str, tuple[list[str], list[str]]] = {}
        self._source = None

    # what lives where -------------------------------------------------------------
    def _onchip(self, onchip) -> frozenset:
        keys = [b.key for b in self.buffers if role_of(b.key) != "out"]
        if onchip == "all":
            return frozenset(keys)
        if onchip == "state":
            return frozenset(k for k in keys if not is_weight(k, self.network))
        if onchip == "none":
            return frozenset()
        if onchip == "auto":  # everything if that fits the board, else off-chip weights
            from .estimate import estimate

            full = FpgaProgram(self.prepared, self.record_spikes, self.record_vars,
                               self.steps_per_call, "all", self.board)
            fits = self.board is None or estimate(full, self.board).fits
            return self._onchip("all" if fits else "state")
        if isinstance(onchip, str):
            raise ValueError(f"fpga: onchip must be 'all', 'state', 'auto', 'none' or a set of "
                             f"buffer keys, got {onchip!r}")
        chosen = frozenset(onchip)
        unknown = sorted(chosen - set(keys))
        if unknown:
            raise ValueError(f"fpga: onchip names unknown or recording buffers {unknown}; "
                             f"known: {keys}")
        return chosen

    def storage(self, key: str, board=None) -> str:
        """Where buffer ``key`` lives: 'ddr' (not on chip), 'lutram' (at most
        LUTRAM_MAX_BYTES), 'uram' (at least URAM_MIN_BYTES on a board with URAM;
        ``board`` defaults to the program's) or 'bram'."""
        if key not in self.onchip:
            return "ddr"
        board = board if board is not None else self.board
        buf = self.by_key[key]
        nbytes = int(np.prod(buf.shape, dtype=np.int64)) * buf.dtype.itemsize
        if nbytes <= LUTRAM_MAX_BYTES:
            return "lutram"
        if board is not None and board.uram > 0 and nbytes >= URAM_MIN_BYTES:
            return "uram"
        return "bram"

    @property
    def ports(self) -> tuple[Port, ...]:
        arrays = tuple(Port(b.cname, "m_axi", CTYPES[b.dtype.name], tuple(b.shape),
                            BUNDLES[b.key.split(":")[0]], role_of(b.key), b.key)
                       for b in self.buffers)
        return arrays + tuple(Port(n, "scalar", t, (), None, "in", None) for n, t in SCALARS)

    # emitter hooks ----------------------------------------------------------------
    def fixed_draw(self, call, args, counter: str):
        text, kind = super().fixed_draw(call, args, counter)
        m = re.match(r"sf_fx_count\((.*), (sf_poisson_\d+), (\d+)\)$", text)
        if m and int(m.group(3)) == 0:  # no threshold reachable: always 0 events
            text = "((int32_t)0)"
        elif m:  # the bounded, unrolled count of hls/sf_hls_fixed.h
            text = f"sf_fx_count_n<{int(m.group(3))}>({m.group(1)}, {m.group(2)})"
        return text, kind

    def fixed_prelude(self) -> list[str]:
        out = super().fixed_prelude()
        if out:  # drop the cpu's while-loop count (replaced by sf_fx_count_n)
            out[0] = re.sub(r"static inline int32_t sf_fx_count\(.*?\n}\n", "", out[0],
                            flags=re.DOTALL)
        return out

    def function(self, qualifier: str, name: str, body: list[str]) -> str:
        """A phase function over the buffers it uses (restrict pointers) and the
        scalars it reads; remembers its arguments for the top function."""
        text, used, scalars, params = self.parameters(body)
        trips, default, independent = self.loop_bounds(name)
        lines = D.annotate(text.split("\n"), trips, default, self.dialect, independent)
        self._calls[name] = (used, scalars)
        return "\n".join([f"static void {name}({', '.join(params) or 'void'})", "{",
                          *indent(lines), "}"])

    def loop_bounds(self, name: str):
        """(trip counts by loop variable, default, independent arrays by loop var)."""
        net = self.network
        m = re.match(r"(sf_[a-z]+)_(\d+)", name)
        kind, index = (m.group(1), int(m.group(2))) if m else (name, -1)
        sizes = [p.size for p in net.populations]
        trips = {"t": 1, "b": self.batch, "r": 255, "i<i1": K.COMPACT_BLOCK}
        independent: dict = {}
        if kind in ("sf_pre", "sf_post", "sf_dyn"):
            proj = net.projections[index]
            rows, cols = self.row_lengths(proj)
            pre, post = net.population(proj.pre), net.population(proj.post)
            trips.update(s=rows, c=cols, m=post.size if kind == "sf_post" else pre.size,
                         r=self.max_events(post if kind == "sf_post" else pre))
        elif kind == "sf_neurons":
            pop = net.populations[index]
            trips.update(i=pop.size, i0=-(-pop.size // K.COMPACT_BLOCK), p=self.max_ssa(pop))
            # the update loop touches element i only; the spike-list loop (i < i1) is
            # not claimed
            independent = {"i": [b.cname for b in self.buffers], "i<i1": ()}
        return trips, max(sizes + [1]), independent

    def row_lengths(self, proj) -> tuple[int, int]:
        syn = self.prepared.synapses.get(proj.name)
        if syn is None:  # procedural: bounded by the target population
            return self.network.population(proj.post).size, 1
        rows = int(np.diff(syn.row_ptr).max(initial=0))
        cols = int(np.bincount(syn.post).max(initial=0)) if len(syn.post) else 0
        return max(rows, 1), max(cols, 1)

    def max_events(self, pop) -> int:
        model = pop.model
        return 255 if model.parsed.get("events") is not None or \
            model.native == "spike_source_array" else 1

    def max_ssa(self, pop) -> int:
        if pop.name not in self.prepared.spike_steps:
            return 1
        offsets, _ = self.prepared.spike_steps[pop.name]
        return max(int(np.diff(offsets).max(initial=0)), 1)

    # the source ---------------------------------------------------------------------
    def render(self) -> str:
        """The complete HLS C++ source; checked by synth_check (raises
        NotSynthesizable naming every violation)."""
        if self._source is None:
            source = self._render()
            synth_check.check(source, TOP, headers())
            self._source = source
        return self._source

    def _render(self) -> str:
        d = self.dialect
        parts = [f"/* spikeforge accelerator: top function {TOP} (generated; do not edit). */",
                 d.prelude,
                 f"{d.fn_qualifier} double sf_normal_words(sf_words w) "
                 "{ return sf_normal(w.w[0], w.w[1]); }",
                 HELPERS.format(q=d.fn_qualifier).rstrip()]
        phases, bodies = [], []
        for item in self.functions():
            if item is None:
                continue
            name, body = item
            if body is not None:
                bodies.append(self.function("static ", name, body))
            phases.append(name)
        for index, cu in enumerate(self.network.custom_updates):
            bodies.append(self.function("static ", f"sf_cu_{index}_at", K.custom_update(self, cu)))
        if self.record_vars:
            bodies.append(self.function("static ", "sf_record_vars", K.record_vars(self)))
        parts += self.fixed_prelude() + bodies + [self.top_function(phases)]
        return "\n\n".join(parts) + "\n"

    def call(self, name: str, scalars: dict) -> str:
        used, wanted = self._calls[name]
        args = [("l_" + n) if self.by_key_cname(n) in self.onchip else n for n in used]
        return f"{name}({', '.join(args + [scalars[s] for s in wanted])});"

    def by_key_cname(self, cname: str) -> str:
        return next(b.key for b in self.buffers if b.cname == cname)

    @property
    def pragmas(self) -> list[str]:
        """The interface and storage pragmas of the top function."""
        out = []
        for port in self.ports:
            if port.kind == "m_axi":
                out.append(f"#pragma HLS INTERFACE m_axi port={port.name} offset=slave "
                           f"bundle={port.bundle} depth={max(port.size, 1)}")
            out.append(f"#pragma HLS INTERFACE s_axilite port={port.name} bundle=control")
        out += ["#pragma HLS INTERFACE s_axilite port=return bundle=control",
                "#pragma HLS INTERFACE ap_ctrl_hs port=return"]
        return out

    def top_function(self, phases: list[str]) -> str:
        params = [f"{p.ctype} *{p.name}" if p.kind == "m_axi" else f"{p.ctype} {p.name}"
                  for p in self.ports]
        local, load, store = [], [], []
        used = set().union(*(names for names, _ in self._calls.values()))
        for buf in self.buffers:
            if buf.cname not in used:  # e.g. vidx when var index = synapse index
                load.append(f"(void){buf.cname};")
                continue
            if buf.key not in self.onchip:
                continue
            n, ctype = int(np.prod(buf.shape, dtype=np.int64)), CTYPES[buf.dtype.name]
            local += [f"static {ctype} l_{buf.cname}[{max(n, 1)}];",
                      f"#pragma HLS BIND_STORAGE variable=l_{buf.cname} type=ram_2p "
                      f"impl={self.storage(buf.key)}"]
            if n == 0:  # an empty buffer (no synapses): nothing to copy
                load.append(f"(void){buf.cname};")
                continue
            load.append(f"sf_load<{ctype}, {n}>(l_{buf.cname}, {buf.cname});")
            if role_of(buf.key) != "in":
                store.append(f"sf_store<{ctype}, {n}>({buf.cname}, l_{buf.cname});")
        per_step = {"seed": "seed", "step": "step_k", "rng_step": "rng_k", "rec_row": "k"}
        steps = [self.call(name, per_step) for name in phases]
        if self.record_vars:
            steps.append(self.call("sf_record_vars", per_step))
        host = {"seed": "seed", "step": "step", "rng_step": "rng_step", "rec_row": "0"}
        modes = [f"}} else if (mode == {i + 1}) {{\n    " + self.call(f"sf_cu_{i}_at", host)
                 for i, _ in enumerate(self.network.custom_updates)]
        chunk = self.steps_per_call
        body = [*self.pragmas, "", *local, *load,
                f"const int32_t n = n_steps < 0 ? 0 : (n_steps > {chunk} ? {chunk} : n_steps);",
                "(void)n;", "if (mode == 0) {",
                "    for (int32_t k = 0; k < n; k++) {",
                f"#pragma HLS LOOP_TRIPCOUNT min=1 max={chunk}",
                "        const int64_t step_k = step + k;",
                "        const uint32_t rng_k = rng_step + (uint32_t)k;",
                "        (void)step_k; (void)rng_k;",
                *indent(steps, 2), "    }", *"\n".join(modes).split("\n"), "}",
                "(void)seed;", *store]
        return "\n".join([f'extern "C" void {TOP}({", ".join(params)})', "{",
                          *indent(body), "}"])

    # the register map -------------------------------------------------------------
    def register_map(self) -> list[tuple[str, int, int]]:
        """(argument, byte offset, bits) of every s_axilite data register, laid out
        as Vitis HLS does: 0x10 onwards in argument order, 32-bit arguments take
        one data word, 64-bit ones (pointers) two, each followed by a reserved word."""
        out, offset = [], 0x10
        for port in self.ports:
            out.append((port.name, offset, port.bits))
            offset += 4 * (port.bits // 32 + 1)
        return out

    def register_header(self) -> str:
        """``xsf_top_hw.h`` in Vitis HLS's format for the s_axilite bundle ``control``."""
        p = "XSF_TOP_CONTROL"
        lines = ["// spikeforge: register map of sf_top (s_axilite bundle 'control'),",
                 "// laid out as Vitis HLS generates it.",
                 "// 0x00 : Control signals (bit 0 ap_start, 1 ap_done, 2 ap_idle, 3 ap_ready,",
                 "//        7 auto_restart, 9 interrupt)",
                 "// 0x04 : Global Interrupt Enable Register", "// 0x08 : IP Interrupt Enable "
                 "Register", "// 0x0c : IP Interrupt Status Register"]
        for name, offset, bits in self.register_map():
            lines.append(f"// 0x{offset:02x} : Data signal of {name} ({bits} bits)")
        lines += ["", f"#define {p}_ADDR_AP_CTRL 0x00", f"#define {p}_ADDR_GIE     0x04",
                  f"#define {p}_ADDR_IER     0x08", f"#define {p}_ADDR_ISR     0x0c"]
        for name, offset, bits in self.register_map():
            lines += [f"#define {p}_ADDR_{name.upper()}_DATA 0x{offset:02x}",
                      f"#define {p}_BITS_{name.upper()}_DATA {bits}"]
        return "\n".join(lines) + "\n"


__all__ = ["SCALARS", "TOP", "FpgaProgram", "Port"]
