"""Memory layout of a network for the C-style backends (pure: IR -> buffer list).

Every array the generated code touches is allocated by the host runtime with
this layout and passed by pointer, so generated code never allocates:

========================  ===========================  =========================
key                       shape                        meaning
========================  ===========================  =========================
``state:<node>.<var>``    (batch, n) or (n,)           model state (prepare())
``input:<pop>.<name>``    (batch, n)                   i_syn and extra inputs
``spikes:<pop>``          (depth, batch, n) int32      event counts, ring over steps
``spk_id:<pop>``          (depth, batch, n) int32      spiking neurons per step, ascending,
                                                       in one segment per thread
``spk_n:<pop>``           (depth, batch, MAX_THREADS)  neurons in each thread's segment
``spk_t:<pop>``           (depth,) int32               threads that wrote the step
``inring:<proj>``         (max_dd + 1, batch, n_post)  delivered input ring (W slots when
                                                       split, see ``near_slots``)
``farring:<proj>``        (max_dd + 1 - W, ...)        its far part (split rings only),
``farflag/farlist:<proj>``  same shape, uint8 / int32  with the targets listed per slot
``farcnt:<proj>``         (max_dd + 1 - W, batch, MAX_THREADS)  (thread t's at lo_t)
``rowptr/post/vidx:<p>``  CSR of stored connectivity   (int64 / int32 / int32; vidx only
                                                       when var index != synapse index)
``ringoff:<p>``           (n_syn,) int32               input-ring offset per synapse
                                                       (``ring_offsets``; cpu only)
``colptr/colsyn/pre:<p>`` CSC view for post_spike      (int64 / int32 / int32)
``ssa_off/steps/next:``   spike-source array schedule  (int64)
``rec_spikes:<pop>``      (chunk, batch, n) uint8      recorded event counts per step
``rec_var:<node>.<var>``  (chunk, ...)                 recorded values per step
========================  ===========================  =========================
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np
from spikeforge.lang.tree import Name, calls, names_assigned

MAX_RECORD_BYTES = 64 << 20
MAX_CHUNK = 1000
MAX_THREADS = 64  # OpenMP team size cap of generated code


@dataclass(frozen=True)
class Buffer:
    key: str
    dtype: np.dtype
    shape: tuple

    @property
    def cname(self) -> str:
        return "b_" + "".join(c if c.isalnum() else "_" for c in self.key)


def identity_index(var_index: np.ndarray) -> bool:
    """True when synapse s's var index is s (every kind but shared kernels)."""
    return bool(np.array_equal(var_index, np.arange(len(var_index))))


def spike_depth(network, pop: str, spare: int = 0) -> int:
    """Slots of a population's spike ring: the longest axonal lag read (delay + 1
    steps back) fits; ``spare`` more slots keep the slot written at a step apart
    from every slot read in it (needed when no barrier separates the two)."""
    return max([1] + [p.delay + 1 for p in network.projections if p.pre == pop]) + spare


#: A ring is split when at most this fraction of its group's synapses has a
#: delay beyond the near part (see ``near_slots``).
FAR_FRACTION = 0.002
#: ... and the near part saves at least a quarter of the slots.
NEAR_SAVING = 0.75


#: Row loops prefetch their ring entries (``Dialect.prefetch_distance``) only when the
#: network's input rings (near parts) take at least this many bytes: in cache, the
#: prefetch is overhead (the microcircuit at scale 0.1/0.25, 1.1/2.9 MB of rings:
#: 36%/20% slower), beyond the caches it hides misses (5.7 MB: 0-8% faster, 11.4 MB:
#: 30-47% faster; AMD EPYC, 1 MB L2 per core, BENCHMARKS.md).
PREFETCH_FROM = 4 << 20


def rings_outgrow_cache(buffers) -> bool:
    """True when the input rings (their near parts when split) that events scatter
    into take at least PREFETCH_FROM bytes."""
    return sum(int(np.prod(b.shape)) * b.dtype.itemsize for b in buffers
               if b.key.startswith("inring:")) >= PREFETCH_FROM


def delay_name(call) -> str | None:
    """The name a ``deliver_delayed`` call takes its delay from, None for an expression."""
    return call.args[1].id if isinstance(call.args[1], Name) else None


def delay_vars(proj) -> set[str] | None:
    """The int synapse vars every ``deliver_delayed`` of ``proj`` takes its delay
    from (empty: no delayed delivery), or None when some delay is another
    expression or the connectivity is not stored (no values to look at)."""
    wu = proj.weight_update
    found = [c for f in wu.SYNAPSE_FIELDS for c in calls(wu.parsed[f], "deliver_delayed")]
    if not found:
        return set()
    ints = {v.name for v in wu.vars if v.type == "int"}
    names = {delay_name(c) for c in found}
    if proj.connectivity.procedural or not names <= ints:
        return None
    return names


def near_slots(prepared, leader: str) -> int:
    """Slots of the near part of ``leader``'s input ring: all of them (no split)
    unless the delays of its group are known (``delay_vars``) and at most
    FAR_FRACTION of them reach beyond W slots with W <= NEAR_SAVING x depth; then
    the smallest such W. Events with a delay d >= W go to the far ring (slots
    for steps n + W .. n + depth - 1), which the neuron phase hands on to the
    near ring as each step enters it: a smaller hot ring, the same sums."""
    net = prepared.network
    depth = net.ring_depth(leader)
    counts = np.zeros(depth, dtype=np.int64)
    for proj in net.projections:
        if net.postsynaptic_leader[proj.name] != leader:
            continue
        names = delay_vars(proj)
        if names is None or proj.uses("deliver_pre"):  # deliver_pre: one thread delivers
            return depth
        for name in names:
            delays = prepared.state[f"{proj.name}.{name}"].reshape(-1)
            counts += np.bincount(np.clip(delays, 0, proj.max_dendritic_delay), minlength=depth)
        if not names and proj.name in prepared.synapses:
            counts[0] += len(prepared.synapses[proj.name].post)
    beyond = np.cumsum(counts[::-1])[::-1]  # beyond[w]: synapses with delay >= w
    allowed = FAR_FRACTION * counts.sum()
    near = next(w for w in range(1, depth + 1) if w == depth or beyond[w] <= allowed)
    return near if near <= NEAR_SAVING * depth else depth


def ring_stride(network, proj) -> int:
    """Entries of one input-ring slot of ``proj``'s target (batch x n_post): a
    stored ring offset is delay x stride + target (``ring_offsets``)."""
    return network.batch_size * network.population(proj.post).size


def offset_delay(network, proj) -> str | None:
    """The int synapse var that is ``proj``'s only delay when its ring offsets can
    be stored (``ring_offsets``), else None: one delay var (``delay_vars``: stored
    connectivity), not batched (or batch 1), written by no synapse code and no
    custom update (so the offsets change only when the host sets the var), and
    every offset fits an int32. (Program.offset_rows also needs the synapse var
    index to be the synapse index.)"""
    names = delay_vars(proj)
    if not names or len(names) != 1 or proj.uses("deliver_pre"):
        return None
    name = next(iter(names))
    var = next(v for v in proj.weight_update.vars if v.name == name)
    written = name in proj.written_synapse_vars() or any(
        ref == f"{proj.name}.{name}" and key in names_assigned(cu.parsed)
        for cu in network.custom_updates for key, ref in cu.var_refs.items())
    if written or (var.batched and network.batch_size > 1) \
            or (proj.max_dendritic_delay + 1) * ring_stride(network, proj) >= 2**31:
        return None
    return name


def ring_offsets(network, proj, delays: np.ndarray, post: np.ndarray, out: np.ndarray) -> None:
    """Synapse s's input-ring offset into ``out``: d_s * batch * n_post + post_s with
    d_s its delay clipped to [0, max_dendritic_delay]. The entry it adds to at step
    n (batch b) is then (slot(n) * batch * n_post + offset) mod (depth * batch * n_post)
    + b * n_post: one load, an add and a conditional subtraction per event instead of
    loading the delay and the target, clipping, wrapping and multiplying."""
    np.clip(delays.reshape(-1), 0, proj.max_dendritic_delay, out=out)
    out *= ring_stride(network, proj)
    out += post


def rows_ascending(synapses, chunk: int = 1 << 22) -> bool:
    """True when every CSR row of ``synapses`` lists its targets in ascending
    order (FixedProbability and FixedTotalNumber rows always do); checked in
    chunks, so the check needs no copy of ``post``."""
    post, starts = synapses.post, synapses.row_ptr
    for first in range(0, max(len(post) - 1, 0), chunk):
        part = post[first: first + chunk + 1]
        drops = np.flatnonzero(part[1:] < part[:-1]) + first + 1  # s with post[s] < post[s-1]
        if len(drops) and not np.isin(drops, starts).all():
            return False
    return True


def needs_columns(proj) -> bool:
    return bool(proj.weight_update.parsed["post_spike"])


def record_chunk(network, record_spikes, record_vars, prepared) -> int:
    batch = network.batch_size
    per_step = sum(batch * network.population(p).size for p in record_spikes)
    per_step += sum(prepared.state[v].nbytes for v in record_vars)
    return int(max(1, min(MAX_CHUNK, MAX_RECORD_BYTES // max(per_step, 1))))


def param_slots(prepared) -> dict:
    """(table, node, name) -> index in the ``params`` buffer, in a fixed order:
    every param and derived param of every node ("params") and every
    postsynaptic param ("ps_params"). Used when a dialect reads params at run
    time, so networks that differ only in param values share one library."""
    slots = {}
    for table in ("params", "ps_params"):
        for node, values in getattr(prepared, table).items():
            for name in values:
                slots[(table, node, name)] = len(slots)
    return slots


def dim_slots(prepared) -> dict:
    """projection -> index in the ``dims`` buffer (its synapse-var count n_var,
    which depends on the connectivity draw)."""
    return {proj: k for k, proj in enumerate(prepared.synapses)}


def runtime_buffers(prepared) -> list[Buffer]:
    """The buffers of values read at run time instead of baked into the source."""
    return [Buffer("params", np.dtype(prepared.dtype), (max(1, len(param_slots(prepared))),)),
            Buffer("dims", np.dtype(np.int64), (max(1, len(dim_slots(prepared))),))]


def runtime_values(prepared) -> dict[str, np.ndarray]:
    params = np.zeros(max(1, len(param_slots(prepared))), prepared.dtype)
    for (table, node, name), k in param_slots(prepared).items():
        params[k] = getattr(prepared, table)[node][name]
    dims = np.zeros(max(1, len(dim_slots(prepared))), np.int64)
    for proj, k in dim_slots(prepared).items():
        dims[k] = prepared.synapses[proj].n_var
    return {"params": params, "dims": dims}


def layout(prepared, record_spikes=(), record_vars=(), spare_spike_slots: int = 0,
           near: dict | None = None, offsets=()) -> tuple[list[Buffer], int]:
    """The buffers of a prepared network and the recording chunk (steps);
    ``near``: leader -> near slots of the rings that are split (``near_slots``);
    ``offsets``: projections that get stored ring offsets (``ring_offsets``)."""
    near = near or {}
    net, batch = prepared.network, prepared.network.batch_size
    scalar = np.dtype(prepared.dtype)
    out = [Buffer(f"state:{k}", v.dtype, v.shape) for k, v in prepared.state.items()]
    for pop in net.populations:
        for name in ("i_syn", *pop.model.inputs):
            out.append(Buffer(f"input:{pop.name}.{name}", scalar, (batch, pop.size)))
        depth = spike_depth(net, pop.name, spare_spike_slots)
        out += [Buffer(f"spikes:{pop.name}", np.dtype(np.int32), (depth, batch, pop.size)),
                Buffer(f"spk_n:{pop.name}", np.dtype(np.int32), (depth, batch, MAX_THREADS)),
                Buffer(f"spk_t:{pop.name}", np.dtype(np.int32), (depth,)),
                Buffer(f"spk_id:{pop.name}", np.dtype(np.int32), (depth, batch, pop.size))]
        if pop.name in prepared.spike_steps:
            starts, steps = prepared.spike_steps[pop.name]
            out += [Buffer(f"ssa_off:{pop.name}", np.dtype(np.int64), starts.shape),
                    Buffer(f"ssa_steps:{pop.name}", np.dtype(np.int64), steps.shape),
                    Buffer(f"ssa_next:{pop.name}", np.dtype(np.int64), (len(starts) - 1,))]
    for proj in net.projections:
        n_post = net.population(proj.post).size
        if net.postsynaptic_leader[proj.name] == proj.name:  # fused ones share it
            depth = net.ring_depth(proj.name)
            slots = near.get(proj.name, depth)
            out.append(Buffer(f"inring:{proj.name}", scalar, (slots, batch, n_post)))
            if slots < depth:
                far = (depth - slots, batch, n_post)
                out += [Buffer(f"farring:{proj.name}", scalar, far),
                        Buffer(f"farflag:{proj.name}", np.dtype(np.uint8), far),
                        Buffer(f"farlist:{proj.name}", np.dtype(np.int32), far),
                        Buffer(f"farcnt:{proj.name}", np.dtype(np.int32),
                               (depth - slots, batch, MAX_THREADS))]
        syn = prepared.synapses.get(proj.name)
        if syn is None:
            continue
        out += [Buffer(f"rowptr:{proj.name}", np.dtype(np.int64), syn.row_ptr.shape),
                Buffer(f"post:{proj.name}", np.dtype(np.int32), syn.post.shape)]
        if not identity_index(syn.var_index):
            out.append(Buffer(f"vidx:{proj.name}", np.dtype(np.int32), syn.var_index.shape))
        if proj.name in offsets:
            out.append(Buffer(f"ringoff:{proj.name}", np.dtype(np.int32), syn.post.shape))
        if needs_columns(proj):
            out += [Buffer(f"colptr:{proj.name}", np.dtype(np.int64), (n_post + 1,)),
                    Buffer(f"colsyn:{proj.name}", np.dtype(np.int32), syn.post.shape),
                    Buffer(f"pre:{proj.name}", np.dtype(np.int32), syn.post.shape)]
    chunk = record_chunk(net, record_spikes, record_vars, prepared)
    for pop in record_spikes:
        out.append(Buffer(f"rec_spikes:{pop}", np.dtype(np.uint8),
                          (chunk, batch, net.population(pop).size)))
    for var in record_vars:
        value = prepared.state[var]
        out.append(Buffer(f"rec_var:{var}", value.dtype, (chunk, *value.shape)))
    return out, chunk


#: Buffer kinds a run changes (the rest, e.g. connectivity, never changes):
#: what a reset has to restore besides the state.
RUN_KINDS = ("input", "spikes", "spk_n", "spk_t", "spk_id", "ssa_next", "inring", "farring",
             "farflag", "farlist", "farcnt", "rec_spikes", "rec_var")


def run_buffers(buffers: list[Buffer]) -> list[Buffer]:
    return [b for b in buffers if b.key.partition(":")[0] in RUN_KINDS]


#: Buffers that synaptic events scatter into (read-modify-writes all over them).
SCATTERED_KINDS = ("inring", "farring", "farflag", "farlist")
#: From this size on they are placed in memory of their own, asking the kernel
#: for huge pages: NumPy does so only from 4 MB, and the TLB misses of scattered
#: writes into 4 KB pages cost up to ~40% of a step in the microcircuit.
HUGE_FROM = 256 << 10
HUGE_PAGE = 2 << 20


def zeros(shape: tuple, dtype, huge: bool = False) -> np.ndarray:
    """Zeroed array; with ``huge``, in an anonymous mapping advised to use huge
    pages (where the platform has them; the kernel may still decline)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not huge or nbytes < HUGE_FROM or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros(shape, dtype=dtype)
    region = mmap.mmap(-1, -(-nbytes // HUGE_PAGE) * HUGE_PAGE,
                       flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(region, dtype=dtype, count=nbytes // dtype.itemsize).reshape(shape)


def initial_values(prepared, buffers: list[Buffer], live: dict | None = None
                   ) -> dict[str, np.ndarray]:
    """Host arrays for the given buffers, filled with their initial contents.
    ``live``: buffer key -> an array to use as that buffer itself (no copy; e.g.
    ``shared_arrays``)."""
    live = live or {}
    arrays = {}
    for buf in buffers:
        kind, _, name = buf.key.partition(":")
        if buf.key in live:
            arrays[buf.key] = live[buf.key]
            continue
        arrays[buf.key] = zeros(buf.shape, buf.dtype, kind in SCATTERED_KINDS)
        if kind in RUN_KINDS:  # touch the pages now, not in the first run (3.5 ms/MB here)
            arrays[buf.key].fill(0)
        if kind == "state":
            arrays[buf.key][...] = prepared.state[name]
        elif kind == "spk_t":
            arrays[buf.key][...] = 1  # no spikes yet: one empty segment
    for proj, syn in prepared.synapses.items():
        _fill(arrays, f"rowptr:{proj}", lambda: syn.row_ptr)
        _fill(arrays, f"post:{proj}", lambda: syn.post)
        _fill(arrays, f"vidx:{proj}", lambda: syn.var_index)
        if f"ringoff:{proj}" in arrays:
            fill_ring_offsets(prepared, proj, arrays[f"ringoff:{proj}"])
        if f"colptr:{proj}" in arrays:
            order = np.argsort(syn.post, kind="stable")
            counts = np.bincount(syn.post, minlength=len(arrays[f"colptr:{proj}"]) - 1)
            arrays[f"colptr:{proj}"][...] = np.concatenate([[0], np.cumsum(counts)])
            arrays[f"colsyn:{proj}"][...] = order
            arrays[f"pre:{proj}"][...] = syn.pre
    for pop, (offsets, steps) in prepared.spike_steps.items():
        _fill(arrays, f"ssa_off:{pop}", lambda: offsets)
        _fill(arrays, f"ssa_steps:{pop}", lambda: steps)
        _fill(arrays, f"ssa_next:{pop}", lambda: offsets[:-1])
    for key, values in runtime_values(prepared).items():
        _fill(arrays, key, lambda: values)
    return arrays


def fill_ring_offsets(prepared, proj: str, out: np.ndarray, delays=None) -> None:
    """(Re)compute projection ``proj``'s stored ring offsets from its delay var
    (``delays``, default the prepared initial values)."""
    net = prepared.network
    projection = net.projection(proj)
    name = offset_delay(net, projection)
    values = prepared.state[f"{proj}.{name}"] if delays is None else delays
    ring_offsets(net, projection, values, prepared.synapses[proj].post, out)


def _fill(arrays: dict, key: str, values) -> None:
    if key in arrays:
        value = values()
        if value is not arrays[key]:  # a buffer bound to that very array (``live``)
            arrays[key][...] = value


def shared_arrays(prepared, buffers: list[Buffer], state: dict) -> dict[str, np.ndarray]:
    """Buffers a runtime can bind to arrays it already holds instead of copies:
    every ``state:`` buffer to the live ``state`` array, and the connectivity
    (``rowptr``/``post``/``vidx``), which generated code only reads, to the
    prepared arrays where dtype, shape and layout already match. At full scale
    the microcircuit's targets alone are 1.2 GB."""
    sources = {f"state:{k}": v for k, v in state.items()}
    for proj, syn in prepared.synapses.items():
        sources.update({f"rowptr:{proj}": syn.row_ptr, f"post:{proj}": syn.post,
                        f"vidx:{proj}": syn.var_index})
    return {buf.key: sources[buf.key] for buf in buffers
            if buf.key in sources and _bindable(sources[buf.key], buf)}


def _bindable(array: np.ndarray, buf: Buffer) -> bool:
    return (array.dtype == buf.dtype and array.shape == tuple(buf.shape)
            and array.flags.c_contiguous)
