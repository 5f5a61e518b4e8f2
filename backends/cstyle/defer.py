"""Deferred synapse dynamics: the per-synapse state updates of a block of steps
in one sweep (cpu dialect, ``Dialect.defer_block``).

``synapse_dynamics`` runs every step for every synapse. Part of it often only
updates state that nothing else reads during a run: e-prop's eligibility
traces and gradient sums (``epsa``, ``ebar``, ``g``) are read only by the same
code and by host custom updates between runs. Run step by step, that part
streams all of the per-synapse state through memory every step (memory-bound:
batch x synapses x vars each step). Deferred, phase 4 of each step keeps only
the deliveries and copies the neuron vars the rest reads (``x_pre``,
``x_post``; O(batch x neurons)) into a history of ``block`` steps; at the end
of every block, and of every run, one sweep per projection applies the
deferred statements for each synapse, step after step, while its state stays in
cache. Each synapse sees the same values in the same order, so results are
bit-for-bit those of the step-by-step code.

A projection is deferred when its ``synapse_dynamics`` splits into top-level
delivery statements (kept in phase 4) and the rest (deferred), where the rest

* draws no random numbers, delivers nothing and reads neither ``t`` nor ``step``;
* assigns nothing that the deliveries read;
* touches no synapse var that ``pre_spike``/``post_spike`` assign, and assigns
  none that they read;
* reads no weight-update pre/post vars (traces), and
* touches no synapse var that a custom update run every step references, nor one
  that is recorded every step (``record_vars``);

and the network is in floating point on stored connectivity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeforge.lang import tree as T
from spikeforge.lang.functions import DELIVERY_FUNCTIONS, RANDOM_FUNCTIONS

from .elements import Binding
from .layout import Buffer

STEP_BUILTINS = frozenset({"t", "step"})


@dataclass(frozen=True)
class Deferral:
    """How one projection's synapse dynamics is split."""

    now: tuple  # top-level delivery statements, run in phase 4 of every step
    later: tuple  # the rest, run by the block sweep
    pre_reads: tuple[str, ...]  # presynaptic neuron vars ``later`` reads (as ``x_pre``)
    post_reads: tuple[str, ...]  # postsynaptic neuron vars it reads (as ``x_post``)


def deferral(network, proj, recorded=()) -> Deferral | None:
    """The split of ``proj``'s synapse dynamics, or None when it cannot be deferred
    (``recorded``: the "node.var" names recorded every step)."""
    wu = proj.weight_update
    stmts = tuple(wu.parsed["synapse_dynamics"] or ())
    if proj.connectivity.procedural or network.precision not in ("float32", "float64"):
        return None
    now = tuple(s for s in stmts if isinstance(s, T.ExprStmt))
    later = tuple(s for s in stmts if not isinstance(s, T.ExprStmt))
    if not later:
        return None
    assigned = T.names_assigned(later)
    touched = T.names_read(later) | assigned
    others = [wu.parsed[f] for f in ("pre_spike", "post_spike")]
    other_reads = set().union(*(T.names_read(o) | T.names_assigned(o) for o in others))
    other_writes = set().union(*(T.names_assigned(o) for o in others))
    traces = {v.name for v in (*wu.pre_vars, *wu.post_vars)}
    own = {v.name for v in wu.vars}
    refs = [*recorded, *(ref for cu in network.custom_updates if cu.every_step
                         for ref in cu.var_refs.values())]
    watched = {ref.partition(".")[2] for ref in refs if ref.partition(".")[0] == proj.name}
    if any(c.func in RANDOM_FUNCTIONS | DELIVERY_FUNCTIONS for c in T.calls(later)) \
            or touched & STEP_BUILTINS or assigned & T.names_read(now) \
            or assigned & other_reads or touched & own & other_writes \
            or touched & traces or touched & own & watched:
        return None
    pre, post = network.population(proj.pre), network.population(proj.post)
    return Deferral(now, later, _suffixed(touched, pre, "_pre"), _suffixed(touched, post, "_post"))


def _suffixed(names: set, pop, suffix: str) -> tuple[str, ...]:
    return tuple(sorted(v.name for v in pop.model.vars if v.name + suffix in names))


def deferrals(network, block: int, recorded=()) -> dict:
    """Projection name -> :class:`Deferral` for every deferred projection
    (none when ``block`` is 0)."""
    if block <= 0:
        return {}
    found = {p.name: deferral(network, p, recorded) for p in network.projections}
    return {name: d for name, d in found.items() if d is not None}


# buffers ---------------------------------------------------------------------------------
def history_key(proj: str, side: str, var: str) -> str:
    return f"hist:{proj}.{side}.{var}"


def history_buffers(prepared, found: dict, block: int) -> list[Buffer]:
    """``hist:<proj>.<side>.<var>``: (block, *shape of the neuron var) per read var."""
    net, out = prepared.network, []
    for name, d in found.items():
        proj = net.projection(name)
        for side, reads in (("pre", d.pre_reads), ("post", d.post_reads)):
            pop = getattr(proj, side)
            for var in reads:
                value = prepared.state[f"{pop}.{var}"]
                out.append(Buffer(history_key(name, side, var), np.dtype(value.dtype),
                                  (block, *value.shape)))
    return out


# code ------------------------------------------------------------------------------------
def slot(prog) -> str:
    """The history slot of this step: its index within the run, modulo the block
    (phase functions get the run's step index k as ``rec_row``)."""
    return f"(int32_t)(S->rec_row % {prog.dialect.defer_block})"


def snapshot(prog, proj, d: Deferral) -> list[str]:
    """Phase 4: copy this step's values of the neuron vars the deferred code reads
    into history slot ``slot``; post vars for the owned targets [lo, hi), pre
    vars for this thread's share of the sources (all of them when one thread
    runs the projection)."""
    net = prog.network
    lines = [f"const int64_t kk = {slot(prog)};"]
    for side, reads in (("pre", d.pre_reads), ("post", d.post_reads)):
        pop = net.population(getattr(proj, side))
        for var in reads:
            lines += _copy(prog, proj, side, pop, var)
    if not d.pre_reads:
        return ["{", *lines, "}"]
    share = ["int64_t plo = 0, phi = " + str(net.population(proj.pre).size) + ";"]
    if not proj.uses("deliver_pre"):  # else one thread runs this projection (kernels.owned)
        share.append(f"sf_range({net.population(proj.pre).size}, &plo, &phi);")
    return ["{", *share, *lines, "}"]


def _copy(prog, proj, side: str, pop, var: str) -> list[str]:
    n = pop.size
    src = prog.ptr(f"state:{pop.name}.{var}")
    dst = prog.ptr(history_key(proj.name, side, var))
    first, last = ("plo", "phi") if side == "pre" else ("lo", "hi")
    if not pop.model.var(var).batched:
        return [f"for (int64_t x = {first}; x < {last}; x++) {dst}[kk * {n} + x] = {src}[x];"]
    return [f"for (int32_t b = 0; b < {prog.batch}; b++) {{",
            f"    for (int64_t x = {first}; x < {last}; x++) {{",
            f"        {dst}[(kk * {prog.batch} + b) * {n} + x] = {src}[(int64_t)b * {n} + x];",
            "    }", "}"]


def history_names(prog, proj, d: Deferral, row: str, post: str) -> dict:
    """Bindings of ``x_pre``/``x_post`` to history slot ``kk`` (the sweep's step)."""
    net, names = prog.network, {}
    for side, reads, index in (("pre", d.pre_reads, row), ("post", d.post_reads, post)):
        pop = net.population(getattr(proj, side))
        for var in reads:
            v = pop.model.var(var)
            ptr = prog.ptr(history_key(proj.name, side, var))
            at = f"((int64_t)kk * {prog.batch} + b) * {pop.size} + {index}" if v.batched \
                else f"(int64_t)kk * {pop.size} + {index}"
            names[f"{var}_{side}"] = Binding(v.type, f"{ptr}[{at}]")
    return names


def block_end(prog) -> str:
    """C condition: the step k of a run of n_steps ends a block (or the run)."""
    return f"((k + 1) % {prog.dialect.defer_block} == 0 || k + 1 == n_steps)"
