"""Host-side preparation shared by every backend.

Computes derived params, draws initial values, materialises stored
connectivity and lays out spike-source arrays, all from Philox keyed by the
network seed, so every backend starts from the same numbers. Layout of state
arrays (names ``"<node>.<var>"``): batched vars have shape (batch, n), shared
vars (n,); n is the population size, the number of stored synapse-var entries,
or the pre/post population size for trace vars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .connectivity import Synapses, narrowed, with_synapse_indices
from .init import Values, draw
from .lang.evaluate import derived_params
from .net import Network
from .network import Population, Projection
from .fixed import format_of, storage_dtype, to_fixed
from .numerics import Fixed, scalar_dtype
from .philox import Philox


def stream(seed: int, *parts: str) -> Philox:
    """The Philox generator of one purpose, e.g. stream(seed, "E", "sim")."""
    return Philox(seed, ".".join(parts))


@dataclass
class Prepared:
    network: Network
    dtype: type  # float vars (float networks); compute-format scratch (fixed: int32)
    fixed: Fixed | None = None  # the compute format of a fixed-point network
    formats: dict = field(default_factory=dict)  # "<node>.<var>" -> (Fixed, saturate)
    params: dict = field(default_factory=dict)  # node name -> {param/derived: float}
    ps_params: dict = field(default_factory=dict)  # projection -> postsynaptic params
    state: dict = field(default_factory=dict)  # "<node>.<var>" -> initial array
    synapses: dict = field(default_factory=dict)  # projection -> Synapses (stored only)
    spike_steps: dict = field(default_factory=dict)  # SSA population -> (offsets, steps)

    def var_dtype(self, kind: str):
        return np.int32 if kind == "int" else self.dtype

    def storage(self, var) -> tuple[Fixed, bool] | None:
        """(storage format, saturate) of a float var in a fixed network, else None."""
        if self.fixed is None or var.type != "float":
            return None
        return format_of(var, self.fixed), var.saturate

    def encode(self, key: str, var, values) -> np.ndarray:
        """Real values -> the stored representation of ``var``."""
        fmt = self.storage(var)
        if fmt is None:
            return np.ascontiguousarray(values, dtype=self.var_dtype(var.type))
        return to_fixed(values, fmt[0], key).astype(storage_dtype(fmt[0]))


def prepare(network: Network, seed: int | None = None) -> Prepared:
    """Everything a backend needs before it renders or allocates."""
    seed = network.seed if seed is None else seed
    if isinstance(network.precision, Fixed):
        prep = Prepared(network, np.int32, network.precision)
    else:
        prep = Prepared(network, scalar_dtype(network.precision))
    for pop in network.populations:
        _prepare_population(prep, pop, seed)
    for proj in network.projections:
        _prepare_projection(prep, proj, seed)
    for source in network.current_sources:
        prep.params[source.name] = _all_params(source.model, source.params, network.dt)
        size = network.population(source.target).size
        _init_vars(prep, source.name, source.model.vars, source.init, size, seed)
    for cu in network.custom_updates:
        prep.params[cu.name] = dict(cu.params)
        _prepare_reductions(prep, network, cu)
    if prep.fixed is not None:
        from .fixedcheck import check_fixed_point

        check_fixed_point(prep)
    return prep


def _prepare_reductions(prep: Prepared, network: Network, cu) -> None:
        for name, red in cu.reductions.items():
            n = _element_count(prep, network, cu.target)
            shape = (n,) if red.over == "batch" else (network.batch_size,)
            prep.state[f"{cu.name}.{name}"] = np.zeros(shape, dtype=prep.dtype)
            if prep.fixed is not None:
                prep.formats[f"{cu.name}.{name}"] = (prep.fixed, False)


def _element_count(prep: Prepared, network: Network, target: str) -> int:
    node = network.nodes[target]
    if isinstance(node, Population):
        return node.size
    if target in prep.synapses:
        return prep.synapses[target].n_var
    raise ValueError(f"custom update on projection {target!r}: procedural connectivity has "
                     "no stored synapses to update")


def _all_params(model, params: dict, dt: float) -> dict:
    return {**params, **derived_params(model, params, dt)}


def _prepare_population(prep: Prepared, pop: Population, seed: int):
    prep.params[pop.name] = _all_params(pop.model, pop.params, prep.network.dt)
    _init_vars(prep, pop.name, pop.model.vars, pop.init, pop.size, seed)
    if pop.spike_times is not None:
        prep.spike_steps[pop.name] = _spike_steps(pop, prep.network)


def _spike_steps(pop: Population, network: Network) -> tuple[np.ndarray, np.ndarray]:
    """CSR over (batch, neuron) of sorted spike steps round(t/dt)."""
    per_batch = pop.spike_times
    if len(per_batch) == 1:
        per_batch = per_batch * network.batch_size
    rows = [np.sort(np.rint(t / network.dt).astype(np.int64)) for b in per_batch for t in b]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    steps = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return offsets, steps


def _prepare_projection(prep: Prepared, proj: Projection, seed: int):
    net = prep.network
    pre, post = net.population(proj.pre), net.population(proj.post)
    wu, ps = proj.weight_update, proj.postsynaptic
    prep.params[proj.name] = _all_params(wu, proj.wu_params, net.dt)
    prep.ps_params[proj.name] = _all_params(ps, proj.ps_params, net.dt)
    conn = proj.connectivity
    for var in wu.vars:  # formats hold for procedural (unstored) synapse vars too
        if prep.storage(var) is not None:
            prep.formats[f"{proj.name}.{var.name}"] = prep.storage(var)
    if not conn.procedural:
        rng = stream(seed, proj.name, "connectivity")
        syn = narrowed(with_synapse_indices(conn.materialise(rng, pre.size, post.size,
                                                             pre is post)))
        prep.synapses[proj.name] = syn
        _init_synapse_vars(prep, proj, syn, seed)
    _init_vars(prep, proj.name, wu.pre_vars, proj.wu_init, pre.size, seed)
    _init_vars(prep, proj.name, wu.post_vars, proj.wu_init, post.size, seed)
    if net.postsynaptic_leader[proj.name] == proj.name:  # fused: the leader's vars serve
        _init_vars(prep, proj.name, ps.vars, proj.ps_init, post.size, seed)


def _store(prep: Prepared, key: str, var, values: np.ndarray):
    """Encode and keep ``values``; copied only when the encoded array is not a fresh,
    writable, contiguous array of its own (e.g. a view of a Values initialiser)."""
    array = prep.encode(key, var, values)
    if array.base is not None or not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C")
    prep.state[key] = array
    if prep.storage(var) is not None:
        prep.formats[key] = prep.storage(var)


def _draw_dtype(prep: Prepared, var):
    """Draw straight into the var's storage type when encoding is a plain cast."""
    return prep.dtype if var.type == "float" and prep.storage(var) is None else np.float64


def _init_vars(prep: Prepared, owner: str, variables, inits: dict, n: int, seed: int):
    batch = prep.network.batch_size
    for var in variables:
        init = inits[var.name]
        if isinstance(init, Values):
            values = init.values
            if var.batched and values.ndim == 1:
                values = np.broadcast_to(values, (batch, n))
        else:
            rng = stream(seed, owner, var.name, "init")
            values = draw(init, rng, n, batch if var.batched else None,
                          dtype=_draw_dtype(prep, var))
        _store(prep, f"{owner}.{var.name}", var, values)


def synapse_counters(proj: Projection, syn: Synapses) -> tuple[np.ndarray, np.ndarray]:
    """Philox element words (c1, c2) of each stored var entry: (row, position)
    for ordinary synapses, (kernel index, 0) for shared kernels."""
    if proj.connectivity.shared_kernel:
        return np.arange(syn.n_var), np.zeros(syn.n_var, dtype=np.int64)
    return syn.pre, syn.pos


def _init_synapse_vars(prep: Prepared, proj: Projection, syn: Synapses, seed: int):
    """Stored synapse vars; entry e draws at ``synapse_counters`` (as ``draw`` with
    the CSR row_ptr, or per kernel index for shared kernels)."""
    batch = prep.network.batch_size
    shared = proj.connectivity.shared_kernel
    if not shared and syn.n_var != len(syn.post):
        raise ValueError(f"projection {proj.name!r}: {syn.n_var} synapse var entries for "
                         f"{len(syn.post)} synapses")
    for var in proj.weight_update.vars:
        init = proj.wu_init[var.name]
        if isinstance(init, Values):
            values = init.values.reshape(-1)
            if var.batched and batch > 1 and values.size == batch * syn.n_var:
                values = values.reshape(batch, syn.n_var)
            elif var.batched:
                values = np.broadcast_to(values, (batch, syn.n_var))
        else:
            rng = stream(seed, proj.name, var.name, "init")
            values = draw(init, rng, syn.n_var, batch if var.batched else None,
                          None if shared else syn.row_ptr, _draw_dtype(prep, var))
        _store(prep, f"{proj.name}.{var.name}", var, values)


def procedural_values(prep: Prepared, proj: Projection, var, syn_rows, pos, batch_idx, seed: int):
    """Synapse var values of procedural connectivity (in stored representation),
    regenerated from the init stream exactly as stored connectivity draws them."""
    rng = stream(seed, proj.name, var.name, "init")
    b = batch_idx if var.batched else 0
    values = proj.wu_init[var.name].sample(rng, syn_rows, pos, b)
    return prep.encode(f"{proj.name}.{var.name}", var, values)
