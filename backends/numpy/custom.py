"""Custom updates in the NumPy reference.

The code runs for every element (neuron or stored synapse entry) and every
batch element, shape (batch, n). Var refs of the target are its state
(shared vars broadcast over the batch); refs to an earlier custom update's
reduction read its output. Each reduction output starts at its identity
(0 for sum, -inf for max) per element; the value the code leaves there is the
element's contribution, reduced over the batch (result (n,)) or over the
neurons (result (batch,)).
"""

from __future__ import annotations

import numpy as np

from spikeforge.lang.tree import names_assigned
from spikeforge.network import Population

def _elements(sim, cu) -> int:
    target = sim.network.nodes[cu.target]
    if isinstance(target, Population):
        return target.size
    return sim.prepared.synapses[cu.target].n_var


def _ref_view(sim, cu, ref: str, shape) -> np.ndarray:
    node, var = ref.split(".")
    value = sim.load(ref, sim.state[ref])
    if node != cu.target:
        over = sim.network.nodes[node].reductions[var].over
        value = value[None, :] if over == "batch" else value[:, None]
    elif value.ndim == 1:
        value = value[None, :]
    return np.broadcast_to(value, shape)


def run_custom_update(sim, cu) -> None:
    batch = sim.network.batch_size
    shape = (batch, _elements(sim, cu))
    env = sim.scalars(cu.name)
    env["batch"] = np.arange(batch, dtype=np.int32)[:, None]
    for local, ref in cu.var_refs.items():
        env[local] = np.array(_ref_view(sim, cu, ref, shape))
    for name, red in cu.reductions.items():
        env[name] = np.full(shape, identity(sim, red.op), dtype=sim.work_dtype)
    evaluator = sim.evaluator(cu.name, "code", env, None, None, None)
    evaluator.types.update(sim._types_of(evaluator, env))
    evaluator.run(cu.parsed)
    written = names_assigned(cu.parsed)
    for local, ref in cu.var_refs.items():
        if local in written:
            value = np.broadcast_to(env[local], shape)
            current = sim.state[ref]
            sim.state[ref] = sim.encode(ref, value if current.ndim == 2 else value[0])
    for name, red in cu.reductions.items():
        reduce = np.sum if red.op == "sum" else np.max
        axis = 0 if red.over == "batch" else 1
        key = f"{cu.name}.{name}"
        sim.state[key] = sim.encode(key, sim.wrapped(reduce(env[name], axis=axis)))


def identity(sim, op: str):
    """Start value of a reduction: 0, or the most negative number of the format."""
    if op == "sum":
        return 0
    return -np.inf if sim.fmt is None else -(1 << (sim.fmt.bits - 1))
