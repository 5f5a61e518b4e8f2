"""Bodies of the CUDA kernels of one step (GeNN-style; reference of every phase:
backends/numpy/simulation.py). Each function returns the C lines of one kernel
body over the per-element blocks of the shared emitter (backends/cstyle), with
buffers spelled ``S->b_<name>``; :class:`~.program.CudaProgram` turns a body into
an ``extern "C" __global__`` function and fixes its launch geometry.

Thread mapping (batch element ``b`` = ``blockIdx.y`` everywhere):

* neurons: thread ``i`` = neuron; spikes are compacted per block in shared
  memory (one global ``atomicAdd`` per block reserves the block's segment of the
  step's spike list), recorded spikes are one ``__ballot_sync`` word per warp;
* presynaptic span: block ``m`` (grid-stride) takes spike ``m`` of the list and its
  threads stride over the row, delivering with ``atomicAdd``; procedural rows are
  regenerated from Philox, one thread per spike;
* postsynaptic span, ``post_spike`` and synapse dynamics: thread ``j`` = target,
  looping over its incoming synapses (CSC) in ascending source order, so every
  float sum into target ``j`` has the reference's order;
* custom updates: thread ``e`` = element with the batch loop inside; reductions
  over the neurons run in one block (warp shuffles, then shared memory).

The order of the spike list depends on block scheduling; no consumer depends on
it: deliveries are atomic additions (integer ones are exact in any order) and a
synapse is touched by one thread per event round.
"""

from __future__ import annotations

import re

from spikeforge.backends.cstyle import kernels as K
from spikeforge.backends.cstyle.custom import _ref_binding, _size, identity
from spikeforge.backends.cstyle.elements import Binding, Element, indent
from spikeforge.backends.cstyle.layout import spike_depth
from spikeforge.lang.tree import names_assigned

WARP = 32


def multi_event(pop) -> bool:
    """Whether a population can emit more than one event per step (then its
    events run in rounds and are recorded as counts, not bits)."""
    return pop.model.native == "spike_source_array" or pop.model.parsed["threshold"] is None


def wrap_reads(prog, lines: list[str]) -> list[str]:
    """Fixed point: values summed with 32-bit atomics (input rings, extra inputs)
    hold the sum modulo 2^32; wrap them to the format's bits when read."""
    if prog.fixed is None:
        return lines
    pattern = re.compile(r"^(\s*(?:const )?int64_t (?:u_inp|acc_\w+)) = (S->b_\w+\[.*\]);$")
    return [pattern.sub(r"\1 = sf_wrap((int64_t)\2);", line) for line in lines]


def _slot(prog, pop: str, lag: str) -> str:
    return f"sf_mod(S->step - {lag}, {spike_depth(prog.network, pop)})"


# phase 6: neurons -------------------------------------------------------------------
def neurons(prog, pop, compact: bool, block: int) -> list[str]:
    """One thread per neuron i of batch element b: phases 1 and 5 (fused, as on
    cpu), the update, spike count, traces; then compaction and recording."""
    n = pop.size
    model = pop.model
    names = {**K.params(prog, pop.name), **K.builtins(prog),
             **K.vars_of(prog, pop.name, model.vars, n, "i", True)}
    for name in ("i_syn", *model.inputs):
        names[name] = Binding("float", f"acc_{name}")
    el = Element(prog, pop.name, names, c1="i")
    parsed = model.parsed
    body = K.block(el, [("sim", parsed["sim"])], [parsed["threshold"], parsed["events"],
                                                   parsed["reset"]])
    body += K.event_count(prog, pop, el)
    reset = el.code("reset", parsed["reset"])
    if reset:
        body += ["if (k > 0) {", *indent(reset), "}"]
    body += el.stores()
    base = f"({_slot(prog, pop.name, '0')} * {prog.batch} + b) * (int64_t){n}"
    body.append(f"{prog.ptr(f'spikes:{pop.name}')}[{base} + i] = k;")
    if pop.name in prog.record_spikes and multi_event(pop):
        rec = prog.ptr(f"rec_spikes:{pop.name}")
        body.append(f"{rec}[((int64_t)S->rec_row * {prog.batch} + b) * {n} + i] = (uint8_t)k;")
    inner = [*wrap_reads(prog, K.summed_inputs(prog, pop)), "{", *indent(body), "}"]
    for proj in prog.network.projections:
        for side in ("pre", "post"):
            if getattr(proj, side) == pop.name:
                inner += K.trace_block(prog, proj, side, pop)
    lines = ["const int32_t b = blockIdx.y;",
             f"const int32_t i = blockIdx.x * {block} + threadIdx.x;",
             "int32_t k = 0;", f"if (i < {n}) {{", *indent(inner), "}"]
    if pop.name in prog.record_spikes and not multi_event(pop):
        lines += record_bits(prog, pop)
    if compact:
        lines += compact_spikes(prog, pop, block, base)
    return lines


def record_bits(prog, pop) -> list[str]:
    """Recorded spikes as bits: word w of a step holds neurons 32w..32w+31 (bit
    i % 32), one ballot per warp (every lane reaches it: no early return)."""
    words = (pop.size + WARP - 1) // WARP
    rec = prog.ptr(f"rec_spikes:{pop.name}")
    return ["{", "    const uint32_t word = __ballot_sync(0xffffffffu, k > 0);",
            f"    if ((threadIdx.x & 31) == 0 && i < {pop.size})",
            f"        {rec}[((int64_t)S->rec_row * {prog.batch} + b) * {words} + (i >> 5)] = word;",
            "}"]


def compact_spikes(prog, pop, block: int, base: str) -> list[str]:
    """The block's spiking neurons go to shared memory, then one global atomicAdd
    reserves their segment of the step's list (spk_id); spk_n counts the list."""
    count = f"{prog.ptr(f'spk_n:{pop.name}')}[{_slot(prog, pop.name, '0')} * {prog.batch} + b]"
    ids = prog.ptr(f"spk_id:{pop.name}")
    return ["{", f"    __shared__ int32_t sh_ids[{block}];",
            "    __shared__ int32_t sh_n, sh_base;",
            "    if (threadIdx.x == 0) sh_n = 0;", "    __syncthreads();",
            "    if (k > 0) sh_ids[atomicAdd(&sh_n, 1)] = i;", "    __syncthreads();",
            f"    if (threadIdx.x == 0 && sh_n > 0) sh_base = atomicAdd(&{count}, sh_n);",
            "    __syncthreads();",
            (f"    if ((int32_t)threadIdx.x < sh_n) {ids}[{base} + sh_base + threadIdx.x] = "
             "sh_ids[threadIdx.x];"), "}"]


def clear_spike_counts(prog, pops) -> list[str]:
    """Zero this step's spike-list lengths before the neuron kernels append."""
    lines = []
    for pop in pops:
        count = prog.ptr(f"spk_n:{pop.name}")
        lines.append(f"for (int32_t b = threadIdx.x; b < {prog.batch}; b += blockDim.x) "
                     f"{count}[{_slot(prog, pop.name, '0')} * {prog.batch} + b] = 0;")
    return lines


# phases 2-4: synapses -----------------------------------------------------------------
def synapse_block(prog, proj, field: str, vi: str | None) -> list[str]:
    return K.synapse_block(prog, proj, field, "i", "pos", "j", vi)


def spike_list(prog, proj, declare_b: bool = True) -> list[str]:
    pre = prog.network.population(proj.pre)
    base = f"({_slot(prog, proj.pre, str(1 + proj.delay))} * {prog.batch} + b)"
    return ["const int32_t b = blockIdx.y;"] * declare_b + [
            f"const int32_t count = {prog.ptr(f'spk_n:{proj.pre}')}[{base}];",
            f"const int32_t *cnt = {prog.ptr(f'spikes:{proj.pre}')} + {base} * {pre.size}LL;",
            f"const int32_t *ids = {prog.ptr(f'spk_id:{proj.pre}')} + {base} * {pre.size}LL;"]


def presynaptic_span(prog, proj) -> list[str]:
    """Block m takes spiking row ids[m]; its threads stride over the row and run
    pre_spike once per event (deliveries are atomic)."""
    rp, post = (prog.ptr(f"{k}:{proj.name}") for k in ("rowptr", "post"))
    return [*spike_list(prog, proj),
            "for (int32_t m = blockIdx.x; m < count; m += gridDim.x) {",
            "    const int32_t i = ids[m];", "    const int32_t events = cnt[i];",
            f"    for (int64_t s = {rp}[i] + threadIdx.x; s < {rp}[i + 1]; s += blockDim.x) {{",
            f"        const int32_t j = {post}[s];",
            f"        const int64_t pos = s - {rp}[i];",
            f"        const int32_t vi = {K.var_index(prog, proj)};",
            "        (void)pos; (void)vi;",
            "        for (int32_t r = 0; r < events; r++) {",
            *indent(synapse_block(prog, proj, "pre_spike", "vi"), 3),
            "        }", "    }", "}"]


def procedural_span(prog, proj) -> list[str]:
    """One thread per spike regenerates its row from Philox (core/connectivity.py)."""
    n_post = prog.network.population(proj.post).size
    return [*spike_list(prog, proj), f"const int64_t lo = 0, hi = {n_post};",
            ("for (int32_t m = blockIdx.x * blockDim.x + threadIdx.x; m < count; "
             "m += gridDim.x * blockDim.x) {"),
            "    const int32_t i = ids[m];", "    const int32_t events = cnt[i];",
            "    for (int32_t r = 0; r < events; r++) {",
            *indent(K.procedural_row(prog, proj), 2), "    }", "}"]


def column_loop(prog, proj, field: str, inner_check: list[str]) -> list[str]:
    """For target j: every incoming synapse s (ascending source row i)."""
    cp, cs, pre, rp = (prog.ptr(f"{k}:{proj.name}") for k in ("colptr", "colsyn", "pre", "rowptr"))
    return [f"for (int64_t c = {cp}[j]; c < {cp}[j + 1]; c++) {{",
            f"    const int32_t s = {cs}[c];", f"    const int32_t i = {pre}[s];",
            *indent(inner_check),
            f"    const int64_t pos = s - {rp}[i];", f"    const int32_t vi = {K.var_index(prog, proj)};",
            "    (void)pos; (void)vi;",
            *indent(synapse_block(prog, proj, field, "vi")), "}"]


def target_thread(prog, proj, block: int) -> list[str]:
    n_post = prog.network.population(proj.post).size
    return ["const int32_t b = blockIdx.y;",
            f"const int32_t j = blockIdx.x * {block} + threadIdx.x;",
            f"if (j >= {n_post}) return;"]


def postsynaptic_span(prog, proj, block: int) -> list[str]:
    """Thread j scans its column and runs pre_spike for synapses whose source
    spiked; event rounds outermost, as in the reference (max found in round 0)."""
    pre = prog.network.population(proj.pre)
    base = f"({_slot(prog, proj.pre, str(1 + proj.delay))} * {prog.batch} + b)"
    lines = [*target_thread(prog, proj, block),
             f"const int32_t *cnt = {prog.ptr(f'spikes:{proj.pre}')} + {base} * {pre.size}LL;"]
    if not multi_event(pre):
        return lines + column_loop(prog, proj, "pre_spike", ["if (cnt[i] == 0) continue;"])
    check = ["if (cnt[i] > rounds) rounds = cnt[i];", "if (cnt[i] <= r) continue;"]
    return lines + ["int32_t rounds = 1;", "for (int32_t r = 0; r < rounds; r++) {",
                    *indent(column_loop(prog, proj, "pre_spike", check)), "}"]


def dense_postsynaptic_span(prog, proj, block: int) -> list[str]:
    """Dense rows are complete and sorted, so synapse (i, j) is rowptr[i] + j:
    thread j walks the step's spike list; no atomics, reads coalesced over j."""
    rp = prog.ptr(f"rowptr:{proj.name}")
    return [*target_thread(prog, proj, block), *spike_list(prog, proj, False),
            "for (int32_t m = 0; m < count; m++) {",
            "    const int32_t i = ids[m];", "    const int32_t events = cnt[i];",
            f"    const int64_t s = {rp}[i] + j;", "    const int64_t pos = j;",
            f"    const int32_t vi = {K.var_index(prog, proj)};", "    (void)pos; (void)vi;",
            "    for (int32_t r = 0; r < events; r++) {",
            *indent(synapse_block(prog, proj, "pre_spike", "vi"), 2), "    }", "}"]


def postsynaptic_spikes(prog, proj, block: int) -> list[str]:
    """Thread j runs post_spike over its column once per event of j at step-1."""
    post = prog.network.population(proj.post)
    base = f"({_slot(prog, proj.post, '1')} * {prog.batch} + b)"
    events = f"{prog.ptr(f'spikes:{proj.post}')}[{base} * {post.size}LL + j]"
    return [*target_thread(prog, proj, block), f"const int32_t events = {events};",
            "for (int32_t r = 0; r < events; r++) {",
            *indent(column_loop(prog, proj, "post_spike", [])), "}"]


def synapse_dynamics(prog, proj, block: int) -> list[str]:
    """Thread j runs synapse_dynamics for every synapse of its column."""
    return [*target_thread(prog, proj, block),
            *column_loop(prog, proj, "synapse_dynamics", [])]


# phase 7 / host: custom updates ---------------------------------------------------------
def custom_update(prog, cu, block: int) -> list[str]:
    """Thread e = element, batch loop inside (a shared var written by the code
    takes batch element 0's value, as in the reference). Reductions over the batch
    fold in the thread; over the neurons, each thread folds its elements into
    per-batch partials that the block then reduces (one block, grid-stride)."""
    n = _size(prog, cu)
    over_neurons = [name for name, red in cu.reductions.items() if red.over == "neurons"]
    body, shared = _custom_body(prog, cu, n, over_neurons)
    scalar = prog.ctype("float")
    loop = [f"{scalar} sh_{x} = 0;" for x, _ in shared]
    loop += [_init_batch_out(prog, cu, name) for name, red in cu.reductions.items()
             if red.over == "batch"]
    loop += [f"for (int32_t b = 0; b < {prog.batch}; b++) {{", "    {", *indent(body, 2),
             "    }", "}"]
    loop += [prog.store(bind, f"sh_{x}") for x, bind in shared]
    if not over_neurons:
        return ["const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;",
                f"if (e >= {n}) return;", *loop]
    lines = [f"__shared__ {scalar} sh_part[32];"]
    lines += [f"{scalar} part_{x}[{prog.batch}];" for x in over_neurons]
    lines += [f"for (int32_t b = 0; b < {prog.batch}; b++) part_{x}[b] = "
              f"{identity(prog, cu.reductions[x].op)};" for x in over_neurons]
    lines += [f"for (int64_t e = threadIdx.x; e < {n}; e += blockDim.x) {{", *indent(loop), "}"]
    for x in over_neurons:
        op = cu.reductions[x].op
        out = prog.ptr(f"state:{cu.name}.{x}")
        lines += [f"for (int32_t b = 0; b < {prog.batch}; b++) {{",
                  f"    const {scalar} v = sf_block_{op}(part_{x}[b], sh_part);",
                  f"    if (threadIdx.x == 0) {out}[b] = v;", "}"]
    return lines


def _custom_body(prog, cu, n, over_neurons):
    written = names_assigned(cu.parsed)
    names = {**K.params(prog, cu.name), **K.builtins(prog)}
    shared = []
    for local, ref in cu.var_refs.items():
        names[local] = _ref_binding(prog, cu, ref, n, local in written)
        if local in written and not names[local].store:
            bind = names[local]
            shared.append((local, Binding(bind.kind, bind.load, fmt=bind.fmt)))
            names[local] = Binding(bind.kind, bind.load, mutable=True, fmt=bind.fmt)
    for name, red in cu.reductions.items():
        names[name] = Binding("float", identity(prog, red.op), mutable=True)
    el = Element(prog, cu.name, names, c1="e")
    body = el.declare([cu.parsed]) + el.code("code", cu.parsed) + el.stores()
    body += [f"if (b == 0) sh_{x} = u_{x};" for x, _ in shared]
    for name, red in cu.reductions.items():
        target = (f"part_{name}[b]" if name in over_neurons else
                  f"{prog.ptr(f'state:{cu.name}.{name}')}[e]")
        body.append(f"{target} = {fold(prog, red.op, target, f'u_{name}')};")
    return body, shared


def _init_batch_out(prog, cu, name) -> str:
    return (f"{prog.ptr(f'state:{cu.name}.{name}')}[e] = "
            f"{identity(prog, cu.reductions[name].op)};")


def fold(prog, op: str, a: str, b: str) -> str:
    """a (+ or max) b in the compute representation (sums wrap in fixed point)."""
    if op == "sum":
        return f"{a} + {b}" if prog.fixed is None else f"sf_wrap({a} + {b})"
    suffix = "l" if prog.fixed is not None else ("f" if prog.precision == "float32" else "d")
    return f"sf_max_{suffix}({a}, {b})"


def block_reduce_helpers(prog, qualifier: str) -> str:
    """sf_block_sum / sf_block_max: reduce one value over the block (blockDim.x a
    multiple of 32, at most 1024): warp shuffles, then warp 0 over the warps'
    results in the kernel's shared ``sh_part[32]``. Every thread must call;
    thread 0 gets the result."""
    scalar = prog.ctype("float")
    cast = "(long long)" if prog.fixed is not None else ""
    out = []
    for op in ("sum", "max"):
        combine = fold(prog, op, "v", f"({scalar})__shfl_down_sync(0xffffffffu, {cast}v, o)")
        out.append(f"""\
{qualifier} {scalar} sf_block_{op}({scalar} v, {scalar} *sh_part)
{{
    for (int o = 16; o > 0; o >>= 1) v = {combine};
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh_part[threadIdx.x >> 5] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? sh_part[threadIdx.x] : {identity(prog, op)};
    if (threadIdx.x < 32)
        for (int o = 16; o > 0; o >>= 1) v = {combine};
    return v;
}}""")
    return "\n\n".join(out)


def record_vars(prog) -> list[str]:
    """Copy each recorded var into this step's row of its recording buffer."""
    lines = ["const int64_t x = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;"]
    for var in prog.record_vars:
        size = prog.prepared.state[var].size
        src, dst = prog.ptr(f"state:{var}"), prog.ptr(f"rec_var:{var}")
        lines.append(f"if (x < {size}) {dst}[(int64_t)S->rec_row * {size} + x] = {src}[x];")
    return lines
