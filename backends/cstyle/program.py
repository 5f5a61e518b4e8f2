"""The kernel skeletons: one C-style translation unit per network.

The generated ``sf_step`` runs the phases of docs/semantics.md in order, with
loops that visit elements in the reference's order (batch, then neuron or
CSR synapse), so deliveries to one target are summed in the same order as
in NumPy. Dialects change spellings and loop annotations, not structure.
"""

from __future__ import annotations

import re

from spikeforge.lang.tree import names_read
from spikeforge.philox import stream_id

from spikeforge import fixed as FX

from . import kernels as K
from .fixed import FixedRenderer
from .fixed import helpers as fixed_helpers
from .fixed import tables as fixed_tables
from .render import Renderer
from .defer import block_end, deferrals, history_buffers
from .elements import indent
from .layout import (MAX_THREADS, dim_slots, identity_index, layout, near_slots, offset_delay,
                     param_slots, rings_outgrow_cache, rows_ascending, runtime_buffers,
                     spike_depth)
from .render import HELPERS

OPENMP = """\
#ifdef _OPENMP
#include <omp.h>
#define SF_OMP(x) _Pragma(#x)
#else
#define SF_OMP(x)
#endif"""
RANGE = f"""\
static inline int32_t sf_thread(void)
{{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}}

static inline int32_t sf_team(void)
{{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}}

/* Thread t of T owns [sf_lo(n, t, T), sf_lo(n, t + 1, T)) of any n elements. */
static inline int64_t sf_lo(int64_t n, int64_t t, int64_t threads) {{ return n * t / threads; }}

static inline void sf_range(int64_t n, int64_t *lo, int64_t *hi)
{{
    *lo = sf_lo(n, sf_thread(), sf_team());
    *hi = sf_lo(n, sf_thread() + 1, sf_team());
}}

/* First s in [a, e) with post[s] >= v (post ascending on [a, e)), else e. */
static inline int64_t sf_first_at_least(const int32_t *post, int64_t a, int64_t e, int64_t v)
{{
    while (a < e) {{
        const int64_t mid = a + (e - a) / 2;
        if (post[mid] < v) a = mid + 1;
        else e = mid;
    }}
    return a;
}}

static inline int32_t sf_max_threads(void)
{{
#ifdef _OPENMP
    const int32_t n = omp_get_max_threads();
    return n < {MAX_THREADS} ? n : {MAX_THREADS};
#else
    return 1;
#endif
}}"""

CTYPES = {"float32": "float", "float64": "double", "int8": "int8_t", "int16": "int16_t",
          "int32": "int32_t", "int64": "int64_t", "uint8": "uint8_t"}

STATE_FIELDS = ("uint32_t seed", "uint32_t rng_step", "int64_t step")
STEP_ARGS = ("int64_t step", "uint32_t rng_step", "int32_t rec_row")  # per-step, per-thread


class Program:
    """Renders the translation unit of a prepared network (pure: no I/O)."""

    def __init__(self, prepared, dialect, record_spikes=(), record_vars=()):
        self.prepared, self.network = prepared, prepared.network
        self.dialect = dialect
        self.precision = self.network.precision
        self.batch = self.network.batch_size
        self.record_spikes, self.record_vars = tuple(record_spikes), tuple(record_vars)
        self.fused = dialect.fuse_phases and phases_fuse(self.network)
        self.near = split_rings(prepared) if dialect.split_rings else {}
        self.ascending = ascending_rows(prepared) if dialect.split_sorted_rows else set()
        self.offsets = offset_rows(prepared) if dialect.ring_offsets else {}
        self.buffers, self.chunk = layout(prepared, self.record_spikes, self.record_vars,
                                          int(self.fused), self.near, self.offsets)
        big = rings_outgrow_cache(self.buffers)
        self.prefetch_distance = dialect.prefetch_distance if big else 0
        self.runtime = dialect.runtime_params and prepared.fixed is None  # fixed: folded
        if self.runtime:
            self.buffers = self.buffers + runtime_buffers(prepared)
            self.param_slot, self.dim_slot = param_slots(prepared), dim_slots(prepared)
        self.deferred = deferrals(self.network, dialect.defer_block, self.record_vars)
        self.buffers = self.buffers + history_buffers(prepared, self.deferred,
                                                      dialect.defer_block)
        self.by_key = {b.key: b for b in self.buffers}
        self.tables, self.poisson = set(), {}  # fixed point: draw tables in use

    # spellings --------------------------------------------------------------------
    def ctype(self, kind: str) -> str:
        scalar = "int64_t" if self.fixed is not None else self.dialect.float_type(self.precision)
        return {"float": scalar, "int": "int32_t",
                "bool": "int"}[kind]

    @property
    def fixed(self):
        return self.prepared.fixed

    def literal(self, value: float) -> str:
        if self.fixed is not None:
            return f"INT64_C({int(FX.to_fixed(value, self.fixed, 'constant'))})"
        return self.dialect.float_literal(value, self.precision)

    def renderer(self, node: str, types: dict, draw, deliver):
        if self.fixed is None:
            return Renderer(self.dialect, self.precision, types, draw, deliver)
        constants = {**self.prepared.params.get(node, {}),
                     **self.prepared.ps_params.get(node, {}), "dt": self.network.dt}
        return FixedRenderer(self.dialect, self.fixed, types, draw, deliver, constants)

    def load(self, bind) -> str:
        """C expression reading a binding in the compute representation."""
        if bind.fmt is None:
            return bind.load
        return f"sf_fx_load({bind.load}, {self.fixed.frac - bind.fmt[0].frac})"

    def store(self, bind, value: str) -> str:
        if bind.fmt is None:
            return f"{bind.load} = {value};"
        fmt, saturate = bind.fmt
        ctype = f"int{fmt.container}_t"
        return (f"{bind.load} = ({ctype})sf_fx_store({value}, {fmt.frac - self.fixed.frac}, "
                f"{fmt.bits}, {int(saturate)});")

    def accumulate(self, target: str, value: str) -> str:
        """target += value (wrapping in fixed point)."""
        if self.fixed is None:
            return f"{target} += {value};"
        return f"{target} = (int32_t)sf_wrap((int64_t){target} + {value});"

    def param(self, table: str, node: str, name: str) -> str:
        """C expression of a float param: a buffer read when params are runtime
        values, else the literal."""
        if self.runtime:
            return f"{self.ptr('params')}[{self.param_slot[(table, node, name)]}]"
        return self.literal(getattr(self.prepared, table)[node][name])

    def identity_var_index(self, proj: str) -> bool:
        """True when a stored projection's var index of synapse s is s."""
        return f"vidx:{proj}" not in self.by_key

    def synapse_count(self, proj: str) -> str:
        """C expression of a stored projection's synapse-var count n_var."""
        if self.runtime:
            return f"{self.ptr('dims')}[{self.dim_slot[proj]}]"
        return str(self.prepared.synapses[proj].n_var)

    def ptr(self, key: str) -> str:
        return f"S->{self.by_key[key].cname}"

    def spike_depth(self, pop: str) -> int:
        return spike_depth(self.network, pop, int(self.fused))

    def ring_slots(self, proj: str) -> tuple[int, int]:
        """(near, far) slots of the input ring ``proj`` delivers to (far 0: not split)."""
        leader = self.network.postsynaptic_leader[proj]
        depth = self.network.ring_depth(leader)
        near = self.near.get(leader, depth)
        return near, depth - near

    def draw(self, call, args, counter: str):
        if self.fixed is not None:
            return self.fixed_draw(call, args, counter)
        scalar = self.ctype("float")
        if call.func == "uniform":
            return f"(({scalar})sf_uniform({counter}.w[0]))", "float"
        if call.func == "normal":
            return f"(({scalar})sf_normal_words({counter}))", "float"
        if call.func == "exponential":
            return f"(({scalar})sf_exponential({counter}.w[0]))", "float"
        lam = f"(double)({args[0][0]})"
        return f"sf_poisson({counter}.w[0], {lam})", "int"

    def fixed_draw(self, call, args, counter: str):
        word = f"{counter}.w[0]"
        if call.func == "uniform":
            return f"((int64_t)({word} >> {FX.uniform_shift(self.fixed)}))", "float"
        if call.func in ("normal", "exponential"):
            self.tables.add(call.func)
            return f"sf_{call.func}_table[{word} >> {32 - FX.TABLE_BITS}]", "float"
        thresholds = FX.poisson_thresholds(args[0][0])
        name = self.poisson.setdefault(thresholds, f"sf_poisson_{len(self.poisson)}")
        return f"sf_fx_count({word}, {name}, {len(thresholds)})", "int"

    def fixed_prelude(self) -> list[str]:
        if self.fixed is None:
            return []
        out = [fixed_helpers(self.dialect.fn_qualifier, self.fixed)]
        tables = fixed_tables(self.fixed).splitlines()
        out += [t for t in tables if any(f"sf_{name}_table" in t for name in self.tables)]
        for values, name in self.poisson.items():
            body = ",".join(f"{v}ULL" for v in values) or "0ULL"
            out.append(f"static const uint64_t {name}[{max(len(values), 1)}] = {{{body}}};")
        return out

    # the unit ---------------------------------------------------------------------
    def struct(self) -> list[str]:
        ctypes = CTYPES
        lines = ["typedef struct {"] + [f"    {f};" for f in STATE_FIELDS]
        for buf in self.buffers:
            shape = "" if self.runtime else f" {buf.shape}"  # runtime: sizes not baked
            lines.append(f"    {ctypes[buf.dtype.name]} *{buf.cname};  /* {buf.key}{shape} */")
        return lines + ["} sf_state;"]

    def render(self) -> str:
        d = self.dialect
        parts = [d.prelude, OPENMP, '#include "philox.h"',
                 f"{d.fn_qualifier} double sf_normal_words(sf_words w) "
                 "{ return sf_normal(w.w[0], w.w[1]); }",
                 HELPERS.format(q=d.fn_qualifier),
                 f"{d.fn_qualifier} int64_t sf_mod(int64_t a, int64_t n) "
                 "{ int64_t r = a % n; return r < 0 ? r + n : r; }", RANGE,
                 "\n".join(self.struct()),
                 "\n".join(f"static void sf_cu_{i}_at(sf_state *S, {', '.join(STEP_ARGS)});"
                           for i, _ in enumerate(self.network.custom_updates))]
        steps = []
        for item in self.functions():
            if item is None:
                steps.append(None)
                continue
            name, body = item
            if body is not None:
                parts.append(self.function("static ", name, body))
            steps.append(name)
        sweeps = {f"sf_defer_{i}": p for i, p in enumerate(self.network.projections)
                  if p.name in self.deferred}
        parts += [self.function("static ", name, K.deferred_sweep(self, proj))
                  for name, proj in sweeps.items()]
        parts.append(self.step_function(steps, tuple(sweeps)))
        parts += [self.custom_update_function(cu) for cu in self.network.custom_updates]
        at = parts.index(RANGE) + 1
        parts[at:at] = self.fixed_prelude()  # tables known only after rendering the code
        return "\n\n".join(parts) + "\n"

    def functions(self):
        """(name, body lines) of every phase function, in step order; None marks a
        barrier. Phases 2-4 give every synapse to the thread owning its target;
        then one loop per population runs, per neuron, its current sources
        (phase 1), the postsynaptic models of its incoming projections (phase 5)
        and its update (phase 6), which touch only that neuron, and each thread
        lists the spikes of its own neurons (no serial section). Two barriers per
        step, or one when ``fused`` (see phases_fuse)."""
        net = self.network
        for stage, render in (("pre", K.presynaptic), ("post", K.postsynaptic_spikes),
                              ("dyn", K.synapse_dynamics)):
            for index, proj in enumerate(net.projections):
                body = render(self, proj)
                if body:
                    yield f"sf_{stage}_{index}", body
        if not self.fused:
            yield None
        for index, pop in enumerate(net.populations):
            yield f"sf_neurons_{index}", K.neurons(self, pop)
        yield None
        for index, cu in enumerate(net.custom_updates):
            if cu.every_step:
                yield f"sf_cu_{index}_at", None  # defined below; sf_cu_{index} for the host

    def step_function(self, phases, sweeps=()) -> str:
        """sf_run: the phases of every step; the deferred sweeps (defer.py) after the
        last step of each block, then a barrier (the next step writes the history)."""
        call = "(S, step, rng_step, k)"
        body = ["SF_OMP(omp barrier)" if name is None else f"{name}{call};" for name in phases]
        if sweeps:
            body += [f"if {block_end(self)} {{", *(f"    {name}{call};" for name in sweeps),
                     "    SF_OMP(omp barrier)", "}"]
        if self.record_vars:
            body += ["SF_OMP(omp single)", f"sf_record_vars{call};"]
        parts = [
            "void sf_set_threads(int32_t n)", "{", "#ifdef _OPENMP",
            "    if (n > 0) omp_set_num_threads(n);", "#else", "    (void)n;", "#endif", "}", "",
            *([self.function("static ", "sf_record_vars", K.record_vars(self)), ""]
              if self.record_vars else []),
            "/* Runs n_steps steps (at most the recording chunk) in one parallel region:",
            f"   every thread counts the steps itself; {2 - self.fused} barrier(s) per step. */",
            "int32_t sf_run(sf_state *S, int32_t n_steps)", "{",
            "    const int64_t step0 = S->step;", "    const uint32_t rng0 = S->rng_step;",
            "    SF_OMP(omp parallel num_threads(sf_max_threads()))",
            "    for (int32_t k = 0; k < n_steps; k++) {",
            "        const int64_t step = step0 + k;",
            "        const uint32_t rng_step = rng0 + (uint32_t)k;",
            *indent(body, 2), "    }",
            "    S->step = step0 + n_steps;", "    S->rng_step = rng0 + (uint32_t)n_steps;",
            "    return n_steps;", "}"]
        return "\n".join(parts)

    def function(self, qualifier: str, name: str, body: list[str]) -> str:
        """A phase function whose body gets the buffers it uses as restrict-qualified
        parameters (every buffer is a distinct allocation: saying so lets the
        compiler vectorise element loops; gcc does not for restrict locals), the
        seed, and the step counters that each thread keeps itself."""
        text, used, scalars, params = self.parameters(body)
        args = ", ".join([*(f"S->{n}" for n in used), *(f if f != "seed" else "S->seed"
                                                         for f in scalars)])
        unused = [f"(void){a.split()[-1]};" for a in STEP_ARGS if a.split()[-1] not in scalars]
        inner = f"static void {name}_body({', '.join(params) or 'void'})"
        return "\n".join([inner, "{", *indent(text.split("\n")), "}", "",
                          f"{qualifier}void {name}(sf_state *S, {', '.join(STEP_ARGS)})", "{",
                          *indent(unused + ([] if used or "seed" in scalars else ["(void)S;"])),
                          f"    {name}_body({args});", "}"])

    def parameters(self, body: list[str]):
        """(text, buffers used, scalars read, parameter list) of a phase body: every
        ``S->field`` it reads becomes a parameter (buffers as restrict pointers)
        and the body refers to the parameter instead."""
        text = "\n".join(body)
        used = sorted(set(re.findall(r"S->(b_\w+)", text)))
        ctypes = {b.cname: CTYPES[b.dtype.name] for b in self.buffers}
        scalars = [f for f in ("seed", "rng_step", "step", "rec_row") if f"S->{f}" in text]
        types = {f.split()[-1]: f.rsplit(" ", 1)[0] for f in (*STATE_FIELDS, *STEP_ARGS)}
        params = [f"{ctypes[n]} *{self.dialect.restrict} {n}" for n in used]
        params += [f"const {types[f]} {f}" for f in scalars]
        text = re.sub(r"S->(b_\w+|seed|rng_step|step|rec_row)\b", r"\1", text)
        return text, used, scalars, params

    def custom_update_function(self, cu) -> str:
        index = self.network.custom_updates.index(cu)
        name = f"sf_cu_{index}"
        return "\n".join([self.function("static ", f"{name}_at", K.custom_update(self, cu)), "",
                          f"void {name}(sf_state *S)", "{",
                          f"    {name}_at(S, S->step, S->rng_step, 0);", "}"])

    def exports(self) -> str:
        """Declarations the runtime hands to cffi."""
        lines = self.struct()
        lines.append("int32_t sf_run(sf_state *S, int32_t n_steps);")
        lines.append("void sf_set_threads(int32_t n);")
        lines += [f"void sf_cu_{i}(sf_state *S);" for i, _ in enumerate(self.network.custom_updates)]
        return "\n".join(lines)


def split_rings(prepared) -> dict[str, int]:
    """Leader -> near slots, for the input rings worth splitting (layout.near_slots)."""
    net = prepared.network
    near = {}
    for proj in net.projections:
        if net.postsynaptic_leader[proj.name] == proj.name:
            slots = near_slots(prepared, proj.name)
            if slots < net.ring_depth(proj.name):
                near[proj.name] = slots
    return near


def ascending_rows(prepared) -> set[str]:
    """Stored sparse projections whose rows list their targets in ascending order."""
    return {name for name, syn in prepared.synapses.items()
            if type(prepared.network.projection(name).connectivity).__name__ != "Dense"
            and rows_ascending(syn)}


def offset_rows(prepared) -> dict[str, str]:
    """Stored projections whose ring offsets are stored (layout.offset_delay) ->
    their delay var."""
    net, out = prepared.network, {}
    for name, syn in prepared.synapses.items():
        var = offset_delay(net, net.projection(name))
        if var is not None and identity_index(syn.var_index):
            out[name] = var
    return out


def phases_fuse(network) -> bool:
    """True when a thread may run the neuron phase right after its own synapse
    phases, with no barrier between: the synapse phases of a step then touch
    only state of the targets the thread owns (the same range in both phases)
    and spike lists of earlier steps (one spare ring slot keeps them apart from
    the slot being written). Not so when a synapse code reads a presynaptic
    neuron var (``x_pre``) or presynaptic trace, which the source's owner
    updates in the neuron phase, or delivers to the source (``deliver_pre``)."""
    for proj in network.projections:
        wu = proj.weight_update
        pre = network.population(proj.pre)
        read = set().union(*(names_read(wu.parsed[f]) for f in wu.SYNAPSE_FIELDS))
        pre_side = {v.name for v in wu.pre_vars} | {f"{v.name}_pre" for v in pre.model.vars}
        if proj.uses("deliver_pre") or read & pre_side:
            return False
    return True


def stream_literal(name: str) -> str:
    return f"0x{stream_id(name):08x}u"
