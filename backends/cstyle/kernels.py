"""Phase bodies of the generated step (see backends/numpy/simulation.py for the
reference of each phase). Each function returns C lines for the body of one
phase function, or [] when the phase has no work."""

from __future__ import annotations

from dataclasses import replace

from spikeforge.init import Constant, Exponential, Normal, NormalClipped, Uniform
from spikeforge.network import Population
from spikeforge.lang.tree import Name, calls, walk
from spikeforge.philox import stream_id

from .elements import Binding, Element, indent
from . import defer as D
from . import layout
from .layout import MAX_THREADS, needs_columns


# bindings -------------------------------------------------------------------------
def params(prog, node: str, table: str = "params") -> dict:
    """Bindings of a node's params ("params") or postsynaptic params ("ps_params")."""
    values = getattr(prog.prepared, table)[node]
    return {k: Binding("float", prog.param(table, node, k)) for k in values}


def builtins(prog, batch: str = "b") -> dict:
    dt = prog.network.dt
    scalar = prog.ctype("float")
    t = f"(({scalar})((double)S->step * {float(dt).hex()}))"
    if prog.fixed is not None:  # rounded once (ties to even), wraps like any value
        t = f"sf_wrap((int64_t)nearbyint((double)S->step * {float(dt * 2.0**prog.fixed.frac).hex()}))"
    t = getattr(prog, "time_now", None) or t  # a dialect may pass t in (e.g. as a kernel argument)
    return {"t": Binding("float", t),
            "dt": Binding("float", prog.literal(dt)),
            "step": Binding("int", "(int32_t)S->step"),
            "batch": Binding("int", batch)}


def var_ref(prog, key: str, var, n: int, index: str, batch: str = "b", store: bool = False):
    ptr = prog.ptr(f"state:{key}")
    where = f"{ptr}[(int64_t){batch} * {n} + {index}]" if var.batched else f"{ptr}[{index}]"
    return Binding(var.type, where, store, fmt=prog.prepared.formats.get(key))


def vars_of(prog, owner: str, variables, n: int, index: str, store: bool, suffix: str = "",
            batch: str = "b") -> dict:
    return {v.name + suffix: var_ref(prog, f"{owner}.{v.name}", v, n, index, batch, store)
            for v in variables}


def batch_loop(prog, n: int, body: list[str], index: str = "i", parallel: bool = True):
    """Loop over batch x elements; ``parallel`` when iterations touch only their own
    element: each thread takes the fixed range [lo, hi) of sf_range (declared by
    the caller), inside the batch loop so it vectorises, with no barrier (the
    step places them between phases)."""
    if not parallel:
        return [f"for (int32_t b = 0; b < {prog.batch}; b++) {{",
                f"    for (int32_t {index} = 0; {index} < {n}; {index}++) {{",
                *indent(body, 2), "    }", "}"]
    def loop(first, last):
        return [f"for (int32_t b = 0; b < {prog.batch}; b++) {{",
                f"    for (int32_t {index} = {first}; {index} < {last}; {index}++) {{",
                *indent(body, 2), "    }", "}"]

    # one thread: constant bounds let the compiler unroll and skip remainder checks
    return ["if (lo == 0 && hi == " + str(n) + ") {", *indent(loop(0, n)), "} else {",
            *indent(loop("(int32_t)lo", "(int32_t)hi")), "}"]


def block(element: Element, fields: list[tuple[str, tuple]], extra_trees=()) -> list[str]:
    lines = element.declare([t for _, t in fields] + list(extra_trees))
    for name, stmts in fields:
        lines += element.code(name, stmts)
    return lines


# phase 1 --------------------------------------------------------------------------
def current_source_block(prog, source, pop) -> list[str]:
    """Phase 1 for one element of the target: the source adds its current to
    the element's i_syn accumulator (fused into the neuron loop: nothing in
    phases 2-5 reads what a current source computes)."""
    model = source.model
    names = {**params(prog, source.name), **builtins(prog),
             **vars_of(prog, source.name, model.vars, pop.size, "i", True)}
    el = Element(prog, source.name, names, c1="i")
    current = model.parsed["current"]
    body = block(el, [("code", model.parsed["code"])], [current])
    body.append(prog.accumulate("acc_i_syn", el.expr("current", current, "float")))
    return ["{", *indent(body + el.stores()), "}"]


# phases 2-4: synapses -------------------------------------------------------------
def owned(prog, proj, body: list[str], target: str) -> list[str]:
    """Run ``body`` on every thread, each owning a fixed range [lo, hi) of the
    targets; code that writes to the source (deliver_pre) runs on one thread.
    Every target's sum therefore has one order, whatever the thread count."""
    n_post = prog.network.population(proj.post).size
    if proj.uses("deliver_pre"):
        return ["SF_OMP(omp single)", "{", f"    const int64_t lo = 0, hi = {n_post};",
                *indent(body), "}"]
    return ["int64_t lo, hi;", f"sf_range({n_post}, &lo, &hi);", *body]


OWN = "    if ({j} < lo || {j} >= hi) continue;"


def synapse_names(prog, proj, row: str, post: str, vi: str | None) -> dict:
    net = prog.network
    wu = proj.weight_update
    pre, tgt = net.population(proj.pre), net.population(proj.post)
    names = {**params(prog, proj.name), **builtins(prog)}
    if vi is not None:
        n_var = prog.synapse_count(proj.name)
        names.update(vars_of(prog, proj.name, wu.vars, n_var, vi, True))
        delay = prog.offsets.get(proj.name)
        if delay is not None and read_only_as_delay(proj, delay):  # see offset_delivery
            names[delay] = replace(names[delay], lazy=True)
    else:
        names.update(procedural_vars(prog, proj, row))
    names.update(vars_of(prog, proj.name, wu.pre_vars, pre.size, row, False))
    names.update(vars_of(prog, proj.name, wu.post_vars, tgt.size, post, False))
    names.update(vars_of(prog, proj.pre, pre.model.vars, pre.size, row, False, "_pre"))
    names.update(vars_of(prog, proj.post, tgt.model.vars, tgt.size, post, False, "_post"))
    return names


def read_only_as_delay(proj, name: str) -> bool:
    """True when the synapse codes of ``proj`` read var ``name`` only as the delay
    of ``deliver_delayed`` (never assign it)."""
    wu = proj.weight_update
    trees = [wu.parsed[f] for f in wu.SYNAPSE_FIELDS]
    reads = sum(isinstance(n, Name) and n.id == name for t in trees for n in walk(t))
    delays = sum(layout.delay_name(c) == name
                 for t in trees for c in calls(t, "deliver_delayed"))
    return reads == delays and name not in proj.written_synapse_vars()


def ring_entry(prog, proj, slot: str, post: str) -> str:
    """The input-ring entry of target ``post`` in ring slot ``slot`` (batch b)."""
    ring = prog.ptr(f"inring:{prog.network.postsynaptic_leader[proj.name]}")
    n_post = prog.network.population(proj.post).size
    return f"{ring}[({slot} * {prog.batch} + b) * (int64_t){n_post} + {post}]"


def offset_entry(prog, proj, offset: str) -> str:
    """The input-ring entry that a synapse with stored ring offset ``offset``
    (layout.ring_offsets, near part) adds to at this step (batch b)."""
    ring = prog.ptr(f"inring:{prog.network.postsynaptic_leader[proj.name]}")
    n_post = prog.network.population(proj.post).size
    depth, _ = prog.ring_slots(proj.name)
    stride = layout.ring_stride(prog.network, proj)
    slot = f"sf_mod(S->step, {depth}) * {stride}LL"  # loop-invariant: hoisted
    batch = f" + (int64_t)b * {n_post}" if prog.batch > 1 else ""
    return f"{ring}[{wrapped(f'({slot} + {offset})', depth * stride)}{batch}]"


def clipped_delay(proj, delay: str) -> str:
    return f"sf_min_i(sf_max_i({delay}, 0), {proj.max_dendritic_delay})"


def delivery(prog, proj, row: str, post: str, vi: str | None = None):
    n_pre = prog.network.population(proj.pre).size
    depth, far = prog.ring_slots(proj.name)  # far > 0: split (layout.near_slots)
    scalar = prog.ctype("float")
    offset_var = prog.offsets.get(proj.name) if vi is not None else None  # stored offsets

    def add(slot: str, value: str) -> str:
        return prog.accumulate(ring_entry(prog, proj, slot, post), value)

    def deliver(call, args):
        value = f"(({scalar})({args[0][0]}))" if args[0][1] == "float" or prog.fixed is None \
            else f"sf_fx_from_int({args[0][0]})"
        if call.func == "deliver_pre":
            target = prog.ptr(f"input:{proj.pre}.{proj.weight_update.pre_target}")
            return prog.accumulate(f"{target}[(int64_t)b * {n_pre} + {row}]", value)
        slot = f"sf_mod(S->step, {depth})"  # loop-invariant: hoisted by the compiler
        if call.func != "deliver_delayed":
            return add(slot, value)
        if offset_var is not None and layout.delay_name(call) == offset_var:
            return offset_delivery(prog, proj, vi, value)
        delay = clipped_delay(proj, args[1][0])
        if not far:  # 0 <= delay < depth: one conditional subtraction
            return add(wrapped(f"({slot} + {delay})", depth), value)
        return (f"{{ const int32_t sf_d = {delay}; if (sf_d < {depth}) {{ "
                f"{add(wrapped(f'({slot} + sf_d)', depth), value)} }} else {{ "
                f"{far_delivery(prog, proj, post, value)} }} }}")

    return deliver


def offset_delivery(prog, proj, vi: str, value: str) -> str:
    """``deliver_delayed(value, d)`` of synapse ``vi`` through its stored ring offset
    o = d x stride + target (layout.ring_offsets; stride = batch x n_post). With a
    split ring, o >= depth x stride (the near part) is a far event, whose delay and
    target are decoded from o (a division by a constant): an event loads neither
    the delay var nor the target, whose lines the row loop no longer streams in."""
    offset = f"{prog.ptr(f'ringoff:{proj.name}')}[{vi}]"
    depth, far = prog.ring_slots(proj.name)
    if not far:
        return prog.accumulate(offset_entry(prog, proj, offset), value)
    stride = layout.ring_stride(prog.network, proj)
    return (f"{{ const int32_t sf_o = {offset}; "
            f"if (__builtin_expect(sf_o < {depth * stride}, 1)) {{ "
            f"{prog.accumulate(offset_entry(prog, proj, 'sf_o'), value)} }} else {{ "
            f"const int32_t sf_d = sf_o / {stride}, sf_t = sf_o - sf_d * {stride}; "
            f"{far_delivery(prog, proj, 'sf_t', value)} }} }}")


def far_delivery(prog, proj, post: str, value: str) -> str:
    """The far-ring add of an event with delay ``sf_d`` >= the near slots."""
    depth, far = prog.ring_slots(proj.name)
    later = f"sf_mod(S->step + {depth}, {far})"  # far slot of step + near depth
    far_slot = wrapped(f"({later} + sf_d - {depth})", far)
    leader = prog.network.postsynaptic_leader[proj.name]
    return far_add(prog, leader, prog.network.population(proj.post).size, far_slot, post, value)


def far_add(prog, leader: str, n_post: int, slot: str, post: str, value: str) -> str:
    """Add to the far ring and, the first time target ``post`` gets a value for
    that step, list it (in this thread's part [lo, hi) of the slot's list) so
    that the neuron phase hands on only what is there."""
    ring, flag, listed, count = (prog.ptr(f"{k}:{leader}")
                                 for k in ("farring", "farflag", "farlist", "farcnt"))
    row = f"({slot} * {prog.batch} + b)"
    counter = f"{count}[{row} * {MAX_THREADS} + sf_thread()]"
    return (f"const int64_t sf_e = {row} * (int64_t){n_post} + {post}; "
            f"{prog.accumulate(f'{ring}[sf_e]', value)} "
            f"if (!{flag}[sf_e]) {{ {flag}[sf_e] = 1; "
            f"{listed}[{row} * (int64_t){n_post} + lo + {counter}++] = {post}; }}")


def ring_prefetch(prog, proj, ahead: str, last: str) -> list[str]:
    """Prefetch (for writing) the ring entry that synapse ``ahead`` of the row will
    add to, when ``ahead`` < ``last``: a row's scattered read-modify-writes miss
    the cache when the rings outgrow it (``Program.prefetch_distance``, see
    layout.PREFETCH_FROM), and a miss issued early overlaps with the adds before
    it. Only for rows whose pre_spike code delivers with no delay or with one int
    synapse var as its delay (the entry is then known from two loads, or one
    stored ring offset)."""
    found = calls(proj.weight_update.parsed["pre_spike"])
    delayed = {layout.delay_name(c) for c in found if c.func == "deliver_delayed"}
    plain = any(c.func == "deliver" for c in found)
    if (not prog.prefetch_distance or not prog.identity_var_index(proj.name)
            or any(c.func == "deliver_pre" for c in found)
            or layout.delay_vars(proj) is None or len(delayed) + plain != 1):
        return []
    depth, far = prog.ring_slots(proj.name)
    if delayed == {prog.offsets.get(proj.name)}:  # from the stored ring offset
        near_size = depth * layout.ring_stride(prog.network, proj)
        guard = f"if (sf_po < {near_size}) " if far else ""
        return [f"if ({ahead} < {last}) {{",
                f"    const int32_t sf_po = {prog.ptr(f'ringoff:{proj.name}')}[{ahead}];",
                f"    {guard}__builtin_prefetch(&{offset_entry(prog, proj, 'sf_po')}, 1, 3);", "}"]
    post = prog.ptr(f"post:{proj.name}")
    slot = f"sf_mod(S->step, {depth})"
    lines = [f"if ({ahead} < {last}) {{", f"    const int32_t sf_pj = {post}[{ahead}];"]
    guard = ""  # a far event (split ring) is not prefetched
    if delayed:
        var = next(v for v in proj.weight_update.vars if v.name in delayed)
        load = var_ref(prog, f"{proj.name}.{var.name}", var, prog.synapse_count(proj.name),
                       ahead).load
        lines.append(f"    const int32_t sf_pd = {clipped_delay(proj, load)};")
        slot = wrapped(f"({slot} + sf_pd)", depth)
        guard = f"if (sf_pd < {depth}) " if far else ""
    lines.append(f"    {guard}__builtin_prefetch(&{ring_entry(prog, proj, slot, 'sf_pj')}, 1, 3);")
    return lines + ["}"]


def wrapped(late: str, depth: int) -> str:
    """``late`` mod depth for 0 <= late < 2 depth."""
    return f"({late} >= {depth} ? {late} - {depth} : {late})"


def synapse_block(prog, proj, field: str, row: str, pos: str, post: str, vi: str | None,
                  stmts=None, deferred=None):
    """One synapse running ``field`` (or the statements ``stmts`` of it); with
    ``deferred``, the neuron vars it reads come from the block history (defer.py)."""
    names = synapse_names(prog, proj, row, post, vi)
    if deferred is not None:
        names.update(D.history_names(prog, proj, deferred, row, post))
    el = Element(prog, proj.name, names, c1=row, c2=pos,
                 deliver=delivery(prog, proj, row, post, vi))
    stmts = proj.weight_update.parsed[field] if stmts is None else stmts
    body = block(el, [(field, stmts)])
    return ["{", *indent(body + el.stores()), "}"]


def event_rounds(prog, pop: str, lag: str, inner: list[str], index: str) -> list[str]:
    """Loop over event rounds, batch and spiking neurons of ``pop`` at step - lag.
    The step's spike list is one ascending segment per thread that wrote it
    (segment t starts at sf_lo(n, t, T)), so neurons come in ascending order."""
    net = prog.network
    size = net.population(pop).size
    depth = prog.spike_depth(pop)
    counts, num, ids, team = (prog.ptr(f"{k}:{pop}") for k in ("spikes", "spk_n", "spk_id",
                                                               "spk_t"))
    total = prog.batch * size
    seg = f"(slot * {prog.batch} + b) * {MAX_THREADS} + t"
    loop = [f"for (int32_t b = 0; b < {prog.batch}; b++) {{",
            "    for (int32_t t = 0; t < team; t++) {",
            f"        const int32_t listed = {num}[{seg}];",
            "        if (listed == 0) continue;",
            f"        const int32_t *list = ids + (int64_t)b * {size} + sf_lo({size}, t, team);",
            "        for (int32_t m = 0; m < listed; m++) {",
            f"            const int32_t {index} = list[m];"]
    close = ["        }", "    }", "}"]
    head = [f"const int64_t slot = sf_mod(S->step - {lag}, {depth});",
            f"const int32_t *ids = {ids} + slot * {total}LL;",
            f"const int32_t team = {team}[slot];"]
    if single_event(net.population(pop)):  # every listed neuron has exactly one event
        return [*head, *loop, *indent(inner, 3), *close]
    return [*head, f"const int32_t *cnt = {counts} + slot * {total}LL;",
            "int32_t rounds = 0;",
            *loop, f"            rounds = sf_max_i(rounds, cnt[(int64_t)b * {size} + {index}]);",
            *close,
            "for (int32_t r = 0; r < rounds; r++) {",
            *indent(loop, 1),
            f"                if (cnt[(int64_t)b * {size} + {index}] <= r) continue;",
            *indent(inner, 4), *indent(close, 1), "}"]


def single_event(pop: Population) -> bool:
    """At most one event per neuron and step (a threshold; not an events count
    or a spike source array, which may emit several)."""
    return pop.model.parsed["threshold"] is not None and not pop.model.native


def presynaptic(prog, proj) -> list[str]:
    if not proj.weight_update.parsed["pre_spike"]:
        return []
    if proj.connectivity.procedural:
        inner = procedural_row(prog, proj)
    else:
        inner = stored_row(prog, proj, "pre_spike")
    return owned(prog, proj, event_rounds(prog, proj.pre, str(1 + proj.delay), inner, "i"), "j")


def postsynaptic_spikes(prog, proj) -> list[str]:
    if not needs_columns(proj):
        return []
    cp, cs, pre, rp = (prog.ptr(f"{k}:{proj.name}") for k in ("colptr", "colsyn", "pre", "rowptr"))
    inner = [f"for (int64_t c = {cp}[j]; c < {cp}[j + 1]; c++) {{",
             f"    const int32_t s = {cs}[c];",
             f"    const int32_t i = {pre}[s];",
             f"    const int64_t pos = s - {rp}[i];",
             f"    const int32_t vi = {var_index(prog, proj)};",
             "    (void)i; (void)pos; (void)vi;",
             *indent(synapse_block(prog, proj, "post_spike", "i", "pos", "j", "vi")), "}"]
    inner = [OWN.format(j="j").strip()] + inner
    return owned(prog, proj, event_rounds(prog, proj.post, "1", inner, "j"), "j")


def synapse_dynamics(prog, proj) -> list[str]:
    """Phase 4; a deferred projection (defer.py) runs only its deliveries here and
    records the neuron vars its other statements read."""
    if not proj.weight_update.parsed["synapse_dynamics"]:
        return []
    n_pre = prog.network.population(proj.pre).size
    d = prog.deferred.get(proj.name)
    if d is None:
        inner = stored_row(prog, proj, "synapse_dynamics")
        return owned(prog, proj, batch_loop(prog, n_pre, inner, parallel=False), "j")
    now = stored_row(prog, proj, "synapse_dynamics", d.now) if d.now else []
    loop = batch_loop(prog, n_pre, now, parallel=False) if now else []
    return owned(prog, proj, loop + D.snapshot(prog, proj, d), "j")


def deferred_sweep(prog, proj) -> list[str]:
    """The deferred statements of the block's steps kk = 0 .. nk-1 for the owned
    synapses: per row, step after step, so the row's state stays in cache."""
    d = prog.deferred[proj.name]
    net = prog.network
    n_pre, n_post = net.population(proj.pre).size, net.population(proj.post).size
    row = stored_row(prog, proj, "synapse_dynamics", d.later, d)
    inner = ["for (int32_t kk = 0; kk < nk; kk++) {", *indent(row), "}"]
    return [f"const int32_t nk = {D.slot(prog)} + 1;", "int64_t lo, hi;",
            f"sf_range({n_post}, &lo, &hi);", *batch_loop(prog, n_pre, inner, parallel=False)]


def var_index(prog, proj) -> str:
    """Synapse s's index into per-synapse var storage: s itself unless kernels
    are shared (Conv2D; only then is there a vidx buffer): no load per event."""
    if prog.identity_var_index(proj.name):
        return "(int32_t)s"
    return f"{prog.ptr(f'vidx:{proj.name}')}[s]"


def var_index_decl(prog, proj, field: str) -> str:
    """Declaration of ``vi`` in a row loop. In synapse dynamics, where a row's vars
    are read and written in order, a 64-bit s itself (identity index) keeps the
    addresses affine so the compiler vectorises the loop; an int32 cast under
    -fwrapv does not."""
    if field == "synapse_dynamics" and prog.identity_var_index(proj.name):
        return "const int64_t vi = s;"
    return f"const int32_t vi = {var_index(prog, proj)};"


def stored_row(prog, proj, field: str, stmts=None, deferred=None) -> list[str]:
    """Run ``field`` (or ``stmts``, see synapse_block) for the owned synapses of
    stored row i, in CSR order."""
    rp, post = (prog.ptr(f"{k}:{proj.name}") for k in ("rowptr", "post"))
    if type(proj.connectivity).__name__ == "Dense":
        return dense_row(prog, proj, field, stmts, deferred)
    n_post = prog.network.population(proj.post).size

    ahead = f"s + {prog.prefetch_distance}"

    def loop(first: str, last: str, check: bool) -> list[str]:
        fetch = ring_prefetch(prog, proj, ahead, last) if field == "pre_spike" and not check \
            else []
        return [f"for (int64_t s = {first}; s < {last}; s++) {{",
                *indent(fetch),
                f"    const int32_t j = {post}[s];",
                *([OWN.format(j="j")] if check else []),
                f"    const int64_t pos = s - {rp}[i];",
                f"    {var_index_decl(prog, proj, field)}",
                "    (void)j; (void)pos; (void)vi;",  # j: offset_delivery may not read it
                *indent(synapse_block(prog, proj, field, "i", "pos", "j", "vi", stmts,
                                      deferred)), "}"]

    if proj.name in prog.ascending:  # the owned targets are one stretch of the row
        return [f"int64_t first = {rp}[i], last = {rp}[i + 1];",
                f"if (lo > 0) first = sf_first_at_least({post}, first, last, lo);",
                f"if (hi < {n_post}) last = sf_first_at_least({post}, first, last, hi);",
                *loop("first", "last", False)]
    # a thread owning every target (one thread) runs the loop without the ownership
    # test, which the compiler can vectorise (gathers) when the body allows
    full = loop(f"{rp}[i]", f"{rp}[i + 1]", False)
    return [f"if (lo == 0 && hi == {n_post}) {{", *indent(full), "} else {",
            *indent(loop(f"{rp}[i]", f"{rp}[i + 1]", True)), "}"]


def dense_row(prog, proj, field: str, stmts=None, deferred=None) -> list[str]:
    """Dense row i: synapse s = i * n_post + j targets j (Dense.rows builds it so),
    so the owned targets [lo, hi) are one contiguous, branch-free loop that the
    compiler can vectorise; same order as the CSR loop."""
    n_post = prog.network.population(proj.post).size
    return ["for (int32_t j = (int32_t)lo; j < (int32_t)hi; j++) {",
            f"    const int64_t s = (int64_t)i * {n_post} + j;",
            "    const int64_t pos = j;",
            f"    {var_index_decl(prog, proj, field)}",
            "    (void)pos; (void)vi;",
            *indent(synapse_block(prog, proj, field, "i", "pos", "j", "vi", stmts, deferred)),
            "}"]


# procedural connectivity ------------------------------------------------------------
def procedural_row(prog, proj) -> list[str]:
    """Regenerate row i exactly as core/connectivity.py generates it."""
    net = prog.network
    conn = proj.connectivity
    pre, tgt = net.population(proj.pre), net.population(proj.post)
    key = f"0x{stream_id(proj.name + '.connectivity'):08x}u"
    body = synapse_block(prog, proj, "pre_spike", "i", "pos", "j", None)
    exclude = pre is tgt and not conn.autapses
    if type(conn).__name__ == "FixedProbability":
        threshold = min(int(float(conn.p) * 2**32), 2**32)
        skip = " || j == i" if exclude else ""
        return ["int64_t pos = 0;", "sf_words w = {{0, 0, 0, 0}};",
                f"for (int32_t j = 0; j < {tgt.size}; j++) {{",
                f"    if ((j & 3) == 0) w = sf_philox(0u, (uint32_t)i, (uint32_t)(j >> 2), 0u, "
                f"S->seed, {key});",
                f"    if (!((uint64_t)w.w[j & 3] < {threshold}ULL){skip}) continue;",
                "    if (j < lo || j >= hi) { pos++; continue; }",
                *indent(body), "    pos++;", "}"]
    choices = tgt.size - 1 if exclude else tgt.size
    shift = "    j += (j >= i);" if exclude else ""
    return [f"for (int64_t pos = 0; pos < {conn.n}; pos++) {{",
            f"    const sf_words w = sf_philox(0u, (uint32_t)i, (uint32_t)(pos >> 2), 0u, "
            f"S->seed, {key});",
            f"    int32_t j = (int32_t)sf_uniform_int(w.w[pos & 3], {max(choices, 1)}u);",
            *([shift] if shift else []), OWN.format(j="j"), *indent(body), "}"]


def procedural_vars(prog, proj, row: str) -> dict:
    out = {}
    for var in proj.weight_update.vars:
        stream = f"0x{stream_id(f'{proj.name}.{var.name}.init'):08x}u"
        batch = "b" if var.batched else "0"
        value = init_expr(proj.wu_init[var.name], stream, row, "pos", batch)
        fmt = prog.prepared.formats.get(f"{proj.name}.{var.name}")
        if fmt is not None:  # rounded to the var's format as stored init values are
            value = f"(int64_t)nearbyint(({value}) * {float(2.0**fmt[0].frac).hex()})"
        out[var.name] = Binding(var.type, f"(({prog.ctype(var.type)})({value}))", fmt=fmt)
    return out


def init_expr(init, stream: str, c1: str, c2: str, batch: str) -> str:
    """C expression (double) of an initialiser drawn at counter (attempt 0, c1, c2, batch<<8)."""
    args = f"S->seed, {stream}, (uint32_t)({c1}), (uint32_t)({c2}), (uint32_t){batch} << 8"
    if isinstance(init, Constant):
        return float(init.value).hex()
    if isinstance(init, Uniform):
        return f"sf_init_uniform({args}, {float(init.low).hex()}, " \
               f"{float(init.high - init.low).hex()})"
    if isinstance(init, Normal):
        return f"sf_init_normal({args}, {float(init.mean).hex()}, {float(init.sd).hex()})"
    if isinstance(init, Exponential):
        return f"sf_init_exponential({args}, {float(init.scale).hex()})"
    if isinstance(init, NormalClipped):
        return (f"sf_init_normal_clipped({args}, {float(init.mean).hex()}, {float(init.sd).hex()}, "
                f"{_double(init.low)}, {_double(init.high)})")
    raise NotImplementedError(f"initialiser {type(init).__name__} in generated code")


def _double(value: float) -> str:
    if value == float("inf"):
        return "INFINITY"
    if value == float("-inf"):
        return "(-INFINITY)"
    return float(value).hex()


# phase 5 -------------------------------------------------------------------------------
def postsynaptic_block(prog, proj) -> list[str]:
    """Phase 5 for one target element: turn this step's input into current and
    add it to the element's accumulator for the projection's target input."""
    net = prog.network
    ps, tgt = proj.postsynaptic, net.population(proj.post)
    ring = prog.ptr(f"inring:{proj.name}")
    depth = prog.ring_slots(proj.name)[0]  # a split ring's far part: hand_on
    names = {**params(prog, proj.name),
             **params(prog, proj.name, "ps_params"), **builtins(prog),
             **vars_of(prog, proj.post, tgt.model.vars, tgt.size, "i", False, "_post"),
             **vars_of(prog, proj.name, ps.vars, tgt.size, "i", True)}
    slot = f"(sf_mod(S->step, {depth}) * {prog.batch} + b) * (int64_t){tgt.size} + i"
    names["inp"] = Binding("float", f"{ring}[{slot}]")
    el = Element(prog, proj.name, names, c1="i")
    current = ps.parsed["current"]
    body = block(el, [("code", ps.parsed["code"])], [current])
    body.append(prog.accumulate(f"acc_{proj.target}", el.expr("current", current, "float")))
    body += el.stores() + [f"{ring}[{slot}] = 0;"]
    return ["{", *indent(body), "}"]


def hand_on(prog, pop: Population) -> list[str]:
    """After a thread's neuron loop: each split ring onto ``pop`` gets, in the
    slot just freed (now that of step + near slots), what its far ring holds
    for that step: the thread's listed targets, in its part of the list. Every
    event for that step delivered from now on has a delay below the near
    slots, so each target's sum keeps its order (far events came first)."""
    lines = []
    for proj in prog.network.projections:
        if proj.post != pop.name or prog.network.postsynaptic_leader[proj.name] != proj.name:
            continue
        near, far = prog.ring_slots(proj.name)
        if not far:
            continue
        ring, far_ring, flag, listed, count = (
            prog.ptr(f"{k}:{proj.name}") for k in ("inring", "farring", "farflag", "farlist",
                                                   "farcnt"))
        row = f"(sf_mod(S->step + {near}, {far}) * {prog.batch} + b)"
        counter = f"{count}[{row} * {MAX_THREADS} + sf_thread()]"
        lines += [f"for (int32_t b = 0; b < {prog.batch}; b++) {{",
                  f"    const int64_t to = (sf_mod(S->step, {near}) * {prog.batch} + b) * "
                  f"(int64_t){pop.size};",
                  f"    const int64_t from = {row} * (int64_t){pop.size};",
                  f"    for (int32_t m = 0; m < {counter}; m++) {{",
                  f"        const int64_t j = {listed}[from + lo + m];",
                  f"        {ring}[to + j] = {far_ring}[from + j];",
                  f"        {far_ring}[from + j] = 0;",
                  f"        {flag}[from + j] = 0;", "    }", f"    {counter} = 0;", "}"]
    return lines


# phase 6 ----------------------------------------------------------------------------------
def summed_inputs(prog, pop: Population) -> list[str]:
    """Phases 1 and 5 for one element, fused: the accumulators of i_syn and the
    extra inputs (which start from what deliver_pre added), current sources in
    declaration order, then the postsynaptic models in projection order."""
    scalar, n = prog.ctype("float"), pop.size
    lines = [f"{scalar} acc_i_syn = 0;", "(void)acc_i_syn;"]
    for name in pop.model.inputs:
        where = f"{prog.ptr(f'input:{pop.name}.{name}')}[(int64_t)b * {n} + i]"
        lines += [f"{scalar} acc_{name} = {where};", f"{where} = 0;"]
    for source in prog.network.current_sources:
        if source.target == pop.name:
            lines += current_source_block(prog, source, pop)
    for proj in prog.network.projections:  # once per ring: fused ones share their leader's
        if proj.post == pop.name and prog.network.postsynaptic_leader[proj.name] == proj.name:
            lines += postsynaptic_block(prog, proj)
    return lines


def neurons(prog, pop: Population) -> list[str]:
    model, n = pop.model, pop.size
    names = {**params(prog, pop.name), **builtins(prog),
             **vars_of(prog, pop.name, model.vars, n, "i", True)}
    for name in ("i_syn", *model.inputs):
        names[name] = Binding("float", f"acc_{name}")
    el = Element(prog, pop.name, names, c1="i")
    parsed = model.parsed
    body = block(el, [("sim", parsed["sim"])], [parsed["threshold"], parsed["events"],
                                                 parsed["reset"]])
    body += event_count(prog, pop, el)
    reset = el.code("reset", parsed["reset"])
    if reset:
        body += ["if (k > 0) {", *indent(reset), "}"]
    body += el.stores()
    depth = prog.spike_depth(pop.name)
    counts = prog.ptr(f"spikes:{pop.name}")
    body.append(f"{counts}[(sf_mod(S->step, {depth}) * {prog.batch} + b) * (int64_t){n} + i] = k;")
    if pop.name in prog.record_spikes:
        rec = prog.ptr(f"rec_spikes:{pop.name}")
        body.append(f"{rec}[((int64_t)S->rec_row * {prog.batch} + b) * {n} + i] = (uint8_t)k;")
    lines = ["int32_t k = 0;", *summed_inputs(prog, pop), "{", *indent(body), "}"]
    for proj in prog.network.projections:
        for side in ("pre", "post"):
            if getattr(proj, side) == pop.name:
                lines += trace_block(prog, proj, side, pop)
    return ["int64_t lo, hi;", f"sf_range({n}, &lo, &hi);", *batch_loop(prog, n, lines),
            *hand_on(prog, pop), *compact_spikes(prog, pop)]


def event_count(prog, pop, el: Element) -> list[str]:
    parsed, n = pop.model.parsed, pop.size
    if pop.model.native == "spike_source_array":
        off, steps, nxt = (prog.ptr(f"{k}:{pop.name}") for k in ("ssa_off", "ssa_steps", "ssa_next"))
        return [f"const int64_t e = (int64_t)b * {n} + i;",
                f"int64_t p = {nxt}[e];",
                f"while (p < {off}[e + 1] && {steps}[p] <= S->step) {{",
                f"    k += {steps}[p] == S->step;", "    p++;", "}",
                f"{nxt}[e] = p;", "k = sf_min_i(k, 255);"]
    if parsed["threshold"] is not None:
        return [f"k = {el.expr('threshold', parsed['threshold'], 'bool')} ? 1 : 0;"]
    if parsed["events"] is not None:
        return [f"k = sf_min_i(sf_max_i({el.expr('events', parsed['events'], 'int')}, 0), 255);"]
    return []


def trace_block(prog, proj, side: str, pop) -> list[str]:
    wu = proj.weight_update
    variables = getattr(wu, f"{side}_vars")
    dynamics, spike = wu.parsed[f"{side}_dynamics"], wu.parsed[f"{side}_spike_trace"]
    if not (dynamics or spike):
        return []
    names = {**params(prog, proj.name), **builtins(prog),
             **vars_of(prog, proj.name, variables, pop.size, "i", True),
             **vars_of(prog, pop.name, pop.model.vars, pop.size, "i", False, f"_{side}")}
    el = Element(prog, proj.name, names, c1="i")
    body = block(el, [(f"{side}_dynamics", dynamics)], [spike])
    spike_code = el.code(f"{side}_spike_trace", spike)
    if spike_code:
        body += ["if (k > 0) {", *indent(spike_code), "}"]
    return ["{", *indent(body + el.stores()), "}"]


def record_vars(prog) -> list[str]:
    """Serial copy of the recorded vars into this step's row."""
    lines = []
    for var in prog.record_vars:
        size = prog.prepared.state[var].size
        src, dst = prog.ptr(f"state:{var}"), prog.ptr(f"rec_var:{var}")
        lines.append(f"memcpy({dst} + (int64_t)S->rec_row * {size}, {src}, "
                     f"{size} * sizeof(*{src}));")
    return lines


COMPACT_BLOCK = 16  # neurons checked at once (vectorised OR) before looking closer


def compact_spikes(prog, pop) -> list[str]:
    """Each thread lists the spiking neurons of its own range [lo, hi) in
    ascending order, as its segment of the step's spike list (same partition as
    the update loop, so no barrier in between). Spikes are rare, so blocks of
    neurons are first tested at once."""
    n, depth = pop.size, prog.spike_depth(pop.name)
    counts, num, ids, team = (prog.ptr(f"{k}:{pop.name}") for k in ("spikes", "spk_n", "spk_id",
                                                                    "spk_t"))
    base = f"(sf_mod(S->step, {depth}) * {prog.batch} + b) * (int64_t){n}"
    body = [f"const int32_t *cnt = {counts} + {base};",
            f"int32_t *list = {ids} + {base} + lo;",
            "int32_t m = 0;",
            f"for (int64_t i0 = lo; i0 < hi; i0 += {COMPACT_BLOCK}) {{",
            f"    const int64_t i1 = i0 + {COMPACT_BLOCK} < hi ? i0 + {COMPACT_BLOCK} : hi;",
            "    int32_t any = 0;",
            "    for (int64_t i = i0; i < i1; i++) any |= cnt[i];",
            "    if (!any) continue;",
            "    for (int64_t i = i0; i < i1; i++) if (cnt[i] != 0) list[m++] = (int32_t)i;",
            "}",
            f"{num}[(sf_mod(S->step, {depth}) * {prog.batch} + b) * {MAX_THREADS} + sf_thread()] "
            "= m;"]
    return [f"for (int32_t b = 0; b < {prog.batch}; b++) {{", *indent(body), "}",
            f"if (sf_thread() == 0) {team}[sf_mod(S->step, {depth})] = sf_team();"]


# custom updates --------------------------------------------------------------------------
from .custom import custom_update  # noqa: E402  (kept in its own module)

__all__ = ["custom_update", "deferred_sweep", "neurons", "postsynaptic_spikes", "presynaptic",
           "record_vars", "synapse_dynamics"]
