"""Synapse-level work of the NumPy reference: which synapses run code in a
step, and their environment.

An :class:`ElementSet` describes synapses by index arrays that broadcast to the
element shape: ``b`` (batch), ``row``/``pos`` (Philox element words),
``post`` (target neuron) and ``vi`` (index into stored var arrays). Event sets
are 1-D and ordered by (batch, spiking neuron, position), the order in which
every backend must accumulate deliveries to one target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeforge.connectivity import Synapses
from spikeforge.prepare import procedural_values, stream


@dataclass
class ElementSet:
    b: np.ndarray
    row: np.ndarray
    pos: np.ndarray
    post: np.ndarray
    vi: np.ndarray | None  # None: procedural (values regenerated)

    @property
    def shape(self):
        return np.broadcast(self.b, self.row, self.post).shape


def spiking_rounds(counts: np.ndarray):
    """Yield (batch, neuron) index arrays once per event round: round r holds the
    neurons with more than r events this step, in (batch, neuron) order."""
    b, i = np.nonzero(counts)
    k = counts[b, i]
    for r in range(int(k.max()) if len(k) else 0):
        keep = k > r
        yield b[keep], i[keep]


def _expand(starts: np.ndarray, lengths: np.ndarray):
    """For ranges [start, start+len): (owner index, offset within range) per element."""
    owner = np.repeat(np.arange(len(starts)), lengths)
    first = (np.cumsum(lengths) - lengths).astype(np.int64)
    offset = np.arange(int(lengths.sum())) - np.repeat(first, lengths)
    return owner, offset


def row_events(syn: Synapses, b: np.ndarray, rows: np.ndarray) -> ElementSet:
    """Synapses of stored rows ``rows`` (one entry per spiking (batch, row))."""
    starts = syn.row_ptr[rows]
    owner, offset = _expand(starts, syn.row_ptr[rows + 1] - starts)
    ids = starts[owner] + offset
    return ElementSet(b[owner], rows[owner], offset, syn.post[ids], syn.var_index[ids])


def procedural_events(proj, conn_rng, b, rows, n_pre, n_post, same_pop) -> ElementSet:
    """Regenerate the spiking rows from the connectivity stream."""
    gen = proj.connectivity.rows(conn_rng, rows, n_pre, n_post, same_pop)
    owner, offset = _expand(gen.row_ptr[:-1], np.diff(gen.row_ptr))
    return ElementSet(b[owner], rows[owner], offset, gen.post, None)


def column_index(syn: Synapses) -> tuple[np.ndarray, np.ndarray]:
    """CSC view for postsynaptic-spike code: (col_ptr, synapse ids sorted by target)."""
    ids = np.argsort(syn.post, kind="stable")
    n_post = int(syn.post.max()) + 1 if len(syn.post) else 0
    counts = np.bincount(syn.post, minlength=n_post)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), ids


def column_events(syn: Synapses, csc, b, cols) -> ElementSet:
    col_ptr, ids_by_col = csc
    cols_in = cols < len(col_ptr) - 1
    b, cols = b[cols_in], cols[cols_in]
    starts = col_ptr[cols]
    owner, offset = _expand(starts, col_ptr[cols + 1] - starts)
    ids = ids_by_col[starts[owner] + offset]
    pre, pos = syn.pre, syn.pos
    return ElementSet(b[owner], pre[ids], pos[ids], syn.post[ids], syn.var_index[ids])


def all_synapses(syn: Synapses, batch: int) -> ElementSet:
    return ElementSet(np.arange(batch)[:, None], syn.pre[None, :], syn.pos[None, :],
                      syn.post[None, :], syn.var_index[None, :])


def synapse_env(sim, proj, es: ElementSet) -> dict:
    """Names visible to synapse code, gathered for the elements of ``es``."""
    net, state = sim.network, sim.state
    wu = proj.weight_update
    pre, post = net.population(proj.pre), net.population(proj.post)
    env = dict(sim.scalars(proj.name))
    def gather(key, var, index):
        return sim.load(key, _gather(state[key], var.batched, es.b, index))

    for var in wu.vars:
        key = f"{proj.name}.{var.name}"
        if es.vi is None:
            env[var.name] = sim.load(key, procedural_values(sim.prepared, proj, var, es.row,
                                                            es.pos, es.b, sim.seed))
        else:
            env[var.name] = gather(key, var, es.vi)
    for var in wu.pre_vars:
        env[var.name] = gather(f"{proj.name}.{var.name}", var, es.row)
    for var in wu.post_vars:
        env[var.name] = gather(f"{proj.name}.{var.name}", var, es.post)
    for var in pre.model.vars:
        env[var.name + "_pre"] = gather(f"{pre.name}.{var.name}", var, es.row)
    for var in post.model.vars:
        env[var.name + "_post"] = gather(f"{post.name}.{var.name}", var, es.post)
    env["batch"] = es.b.astype(np.int32)
    return env


def _gather(array, batched, b, index):
    return array[b, index] if batched else array[index]


def write_synapse_vars(sim, proj, es: ElementSet, env: dict, written: set[str]) -> None:
    for var in proj.weight_update.vars:
        if var.name in written:
            key = f"{proj.name}.{var.name}"
            target = sim.state[key]
            value = sim.encode(key, np.broadcast_to(env[var.name], es.shape))
            if var.batched:
                target[np.broadcast_to(es.b, es.shape), np.broadcast_to(es.vi, es.shape)] = value
            else:
                target[np.broadcast_to(es.vi, es.shape)] = value


def connectivity_stream(sim, proj):
    return stream(sim.seed, proj.name, "connectivity")
