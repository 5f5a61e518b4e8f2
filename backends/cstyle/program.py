"""The kernel skeletons: one C-style translation unit per network.

The generated ``sf_step`` runs the phases of docs/semantics.md in order, with
loops that visit elements in the reference's order (batch, then neuron or
CSR synapse), so deliveries to one target are summed in the same order as
in NumPy. Dialects change spellings and loop annotations, not structure.
"""

from __future__ import annotations

import re

from spikeforge.philox import stream_id

from spikeforge import fixed as FX

from . import kernels as K
from .fixed import FixedRenderer
from .fixed import helpers as fixed_helpers
from .fixed import tables as fixed_tables
from .render import Renderer
from .elements import indent
from .layout import layout
from .render import HELPERS

OPENMP = """\
#ifdef _OPENMP
#include <omp.h>
#define SF_OMP(x) _Pragma(#x)
#else
#define SF_OMP(x)
#endif"""
RANGE = """\
static inline void sf_range(int64_t n, int64_t *lo, int64_t *hi)
{
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
#else
    const int64_t t = 0, threads = 1;
#endif
    *lo = n * t / threads;
    *hi = n * (t + 1) / threads;
}"""

CTYPES = {"float32": "float", "float64": "double", "int8": "int8_t", "int16": "int16_t",
          "int32": "int32_t", "int64": "int64_t", "uint8": "uint8_t"}

STATE_FIELDS = ("uint32_t seed", "uint32_t rng_step", "int64_t step", "int32_t rec_row",
                "int32_t n_steps", "int32_t done")


class Program:
    """Renders the translation unit of a prepared network (pure: no I/O)."""

    def __init__(self, prepared, dialect, record_spikes=(), record_vars=()):
        self.prepared, self.network = prepared, prepared.network
        self.dialect = dialect
        self.precision = self.network.precision
        self.batch = self.network.batch_size
        self.record_spikes, self.record_vars = tuple(record_spikes), tuple(record_vars)
        self.buffers, self.chunk = layout(prepared, self.record_spikes, self.record_vars)
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
        ctype = f"int{fmt.bits}_t"
        return (f"{bind.load} = ({ctype})sf_fx_store({value}, {fmt.frac - self.fixed.frac}, "
                f"{fmt.bits}, {int(saturate)});")

    def accumulate(self, target: str, value: str) -> str:
        """target += value (wrapping in fixed point)."""
        if self.fixed is None:
            return f"{target} += {value};"
        return f"{target} = (int32_t)sf_wrap((int64_t){target} + {value});"

    def ptr(self, key: str) -> str:
        return f"S->{self.by_key[key].cname}"

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
            lines.append(f"    {ctypes[buf.dtype.name]} *{buf.cname};  /* {buf.key} {buf.shape} */")
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
                 "\n".join(f"void sf_cu_{i}(sf_state *S);"
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
        parts.append(self.step_function(steps))
        parts += [self.custom_update_function(cu) for cu in self.network.custom_updates]
        at = parts.index(RANGE) + 1
        parts[at:at] = self.fixed_prelude()  # tables known only after rendering the code
        return "\n\n".join(parts) + "\n"

    def functions(self):
        """(name, body lines) of every phase function, in step order; None marks a
        barrier. Three per step: phases 2-4 give every synapse to the thread owning
        its target; one loop per population then runs, per neuron, its current
        sources (phase 1), the postsynaptic models of its incoming projections
        (phase 5) and its update (phase 6), which touch only that neuron; the serial
        end of the step (spike lists, recording, counters) follows a barrier and
        ends in one."""
        net = self.network
        for stage, render in (("pre", K.presynaptic), ("post", K.postsynaptic_spikes),
                              ("dyn", K.synapse_dynamics)):
            for index, proj in enumerate(net.projections):
                body = render(self, proj)
                if body:
                    yield f"sf_{stage}_{index}", body
        yield None
        for index, pop in enumerate(net.populations):
            yield f"sf_neurons_{index}", K.neurons(self, pop)
        yield None
        for index, cu in enumerate(net.custom_updates):
            if cu.every_step:
                yield f"sf_cu_{index}", None  # defined below, also called by the host

    def end_of_step(self) -> list[str]:
        return ["sf_compact(S);", "S->step++;", "S->rng_step++;", "S->rec_row++;",
                f"S->done = S->rec_row >= S->n_steps || !({K.room_for_next_step(self)});"]

    def step_function(self, phases) -> str:
        body = ["SF_OMP(omp barrier)" if name is None else f"{name}(S);" for name in phases]
        parts = [
            "void sf_set_threads(int32_t n)", "{", "#ifdef _OPENMP",
            "    if (n > 0) omp_set_num_threads(n);", "#else", "    (void)n;", "#endif", "}", "",
            self.function("static ", "sf_compact", [*K.compact_spikes(self),
                                                   *K.record_vars(self)]), "",
            "static void sf_end_of_step(sf_state *S)", "{", *indent(self.end_of_step()), "}", "",
            "/* Runs up to n_steps steps in one parallel region; stops early when a",
            "   recording buffer could overflow. Returns the number of steps run. */",
            "int32_t sf_run(sf_state *S, int32_t n_steps)", "{",
            "    S->rec_row = 0;", "    S->n_steps = n_steps;",
            "    S->done = n_steps <= 0;",
            "    SF_OMP(omp parallel)", "    while (!S->done) {",
            *indent(body, 2), "        SF_OMP(omp barrier)", "        SF_OMP(omp single)",
            "        sf_end_of_step(S);", "    }", "    return S->rec_row;", "}"]
        return "\n".join(parts)

    def function(self, qualifier: str, name: str, body: list[str]) -> str:
        """A phase function whose body gets the buffers it uses as restrict-qualified
        parameters (every buffer is a distinct allocation: saying so lets the
        compiler vectorise element loops; gcc does not for restrict locals) and
        the scalar fields of S as constants."""
        text = "\n".join(body)
        used = sorted(set(re.findall(r"S->(b_\w+)", text)))
        ctypes = {b.cname: CTYPES[b.dtype.name] for b in self.buffers}
        scalars = [f for f in ("seed", "rng_step", "step", "rec_row") if f"S->{f}" in text]
        types = {f.split()[-1]: f.rsplit(" ", 1)[0] for f in STATE_FIELDS}
        params = [f"{ctypes[n]} *{self.dialect.restrict} {n}" for n in used]
        params += [f"const {types[f]} {f}" for f in scalars]
        text = re.sub(r"S->(b_\w+|seed|rng_step|step|rec_row)\b", r"\1", text)
        args = ", ".join(f"S->{n}" for n in (*used, *scalars)) or ""
        inner = f"static void {name}_body({', '.join(params) or 'void'})"
        return "\n".join([inner, "{", *indent(text.split("\n")), "}", "",
                          f"{qualifier}void {name}(sf_state *S)", "{",
                          f"    {name}_body({args});" if args else f"    (void)S;\n    {name}_body();",
                          "}"])

    def custom_update_function(self, cu) -> str:
        index = self.network.custom_updates.index(cu)
        return self.function("", f"sf_cu_{index}", K.custom_update(self, cu))

    def exports(self) -> str:
        """Declarations the runtime hands to cffi."""
        lines = self.struct()
        lines.append("int32_t sf_run(sf_state *S, int32_t n_steps);")
        lines.append("void sf_set_threads(int32_t n);")
        lines += [f"void sf_cu_{i}(sf_state *S);" for i, _ in enumerate(self.network.custom_updates)]
        return "\n".join(lines)


def stream_literal(name: str) -> str:
    return f"0x{stream_id(name):08x}u"
