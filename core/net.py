"""The :class:`Network` (frozen, validated as a whole) and its mutable builder."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from . import builtins as B
from .connectivity import Dense, FixedNumberPost, FixedTotalNumber, OneToOne, Sparse
from .init import Values
from .lang import check_code
from .lang.tree import names_assigned
from .network import CurrentSource, CustomUpdate, Population, Projection
from .network import _check_model_code, custom_update_scope, shared_writes
from .numerics import check_precision
from .scopes import postsynaptic_scope, synapse_scope, trace_scope

MAX_BATCH = (1 << 24) - 1


def _fusion_key(proj: Projection):
    """What projections sharing a postsynaptic instance have in common, or None
    when ``proj`` cannot share (non-linear model, a non-zero initial state)."""
    ps = proj.postsynaptic
    if not ps.linear:
        return None
    for var in ps.vars:
        init = proj.ps_init.get(var.name, var.default)
        value = getattr(init, "value", init)
        if not isinstance(value, (int, float)) or value != 0:
            return None
    return proj.post, proj.target, ps, tuple(sorted(proj.ps_params.items()))


@dataclass(frozen=True)
class Network:
    """A whole network: time step ``dt`` (ms), ``batch_size`` trials run in
    lock-step, ``seed`` of every random stream, number format ``precision``
    ('float32', 'float64' or Fixed(bits, frac)) and its nodes.

    ``fuse_postsynaptic``: projections onto the same population and input whose
    postsynaptic model is linear, with equal params and zero initial state, share
    one input ring and one postsynaptic instance, owned by the first of them
    (see :meth:`postsynaptic_leader`): equal to the separate instances in exact
    arithmetic, sums regrouped in floating point (GeNN's fused postsynaptic
    models; NEST sums a neuron's inputs into one buffer per receptor too)."""

    dt: float = 0.1
    batch_size: int = 1
    seed: int = 0
    precision: object = "float32"
    populations: tuple = ()
    projections: tuple = ()
    current_sources: tuple = ()
    custom_updates: tuple = ()
    fuse_postsynaptic: bool = False

    def __post_init__(self):
        if not isinstance(self.dt, (int, float)) or not math.isfinite(self.dt) or self.dt <= 0:
            raise ValueError(f"network: dt must be a positive number of ms, got {self.dt!r}")
        object.__setattr__(self, "dt", float(self.dt))
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or not (
                1 <= self.batch_size <= MAX_BATCH):
            raise ValueError(f"network: batch_size must be an int in [1, {MAX_BATCH}], "
                             f"got {self.batch_size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"network: seed must be an int in [0, 2**32), got {self.seed!r}")
        object.__setattr__(self, "precision", check_precision(self.precision))
        if not isinstance(self.fuse_postsynaptic, bool):
            raise ValueError(f"network: fuse_postsynaptic must be True or False, "
                             f"got {self.fuse_postsynaptic!r}")
        for key in ("populations", "projections", "current_sources", "custom_updates"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        self._check_names()
        for pop in self.populations:
            self._check_neuron_values(pop)
            self._check_shared_writes(f"population {pop.name!r}", pop.model)
        for proj in self.projections:
            self._check_projection(proj)
        for source in self.current_sources:
            self.population(source.target, f"current source {source.name!r}")
            self._check_shared_writes(f"current source {source.name!r}", source.model)
        for cu in self.custom_updates:
            self._check_custom_update(cu)

    # lookup -----------------------------------------------------------------
    @property
    def nodes(self) -> dict:
        return {n.name: n for key in ("populations", "projections", "current_sources",
                                      "custom_updates") for n in getattr(self, key)}

    def population(self, name: str, owner: str = "network") -> Population:
        for pop in self.populations:
            if pop.name == name:
                return pop
        known = [p.name for p in self.populations]
        raise KeyError(f"{owner}: no population named {name!r} (populations: {known})")

    def projection(self, name: str) -> Projection:
        for proj in self.projections:
            if proj.name == name:
                return proj
        raise KeyError(f"no projection named {name!r} "
                       f"(projections: {[p.name for p in self.projections]})")

    @cached_property
    def postsynaptic_leader(self) -> dict[str, str]:
        """Projection name -> the projection owning its input ring and postsynaptic
        vars: itself, or with ``fuse_postsynaptic`` the first projection of its
        group (same post population and target input, equal linear model and
        params, every postsynaptic var starting at 0). The group's ring has the
        depth of its longest dendritic delay."""
        leaders, first = {}, {}
        for proj in self.projections:
            key = _fusion_key(proj) if self.fuse_postsynaptic else None
            leaders[proj.name] = proj.name if key is None else first.setdefault(key, proj.name)
        return leaders

    def ring_depth(self, proj: str) -> int:
        """Slots of the input ring that ``proj`` delivers to (its leader's)."""
        leader = self.postsynaptic_leader[proj]
        return 1 + max(p.max_dendritic_delay for p in self.projections
                       if self.postsynaptic_leader[p.name] == leader)

    # validation -------------------------------------------------------------
    def _check_names(self):
        seen = set()
        for key in ("populations", "projections", "current_sources", "custom_updates"):
            for node in getattr(self, key):
                if node.name in seen:
                    raise ValueError(f"network: the name {node.name!r} is used twice "
                                     "(names are shared by all nodes)")
                seen.add(node.name)

    def _check_shared_writes(self, owner: str, model):
        shared = shared_writes(model)
        if shared and self.batch_size > 1:
            raise ValueError(f"{owner}: code writes var(s) {shared} shared across the batch "
                             f"(batch_size={self.batch_size}); declare them batched")

    def _check_neuron_values(self, pop: Population):
        for name, init in pop.init.items():
            if isinstance(init, Values):
                batched = pop.model.var(name).batched
                _check_values_shape(f"population {pop.name!r} var {name!r}", init.values,
                                    (pop.size,), self.batch_size if batched else None)
        if pop.spike_times is not None and len(pop.spike_times) not in (1, self.batch_size):
            raise ValueError(f"population {pop.name!r}: spike_times given for "
                             f"{len(pop.spike_times)} batch elements, batch_size is {self.batch_size}")

    def _check_projection(self, proj: Projection):
        owner = f"projection {proj.name!r}"
        pre, post = self.population(proj.pre, owner), self.population(proj.post, owner)
        proj.connectivity.check(owner, pre.size, post.size)
        wu = proj.weight_update
        if proj.target != "i_syn" and proj.target not in post.model.inputs:
            raise ValueError(f"{owner}: target {proj.target!r} is not an input of {post.model.name!r} "
                             f"(it has i_syn{''.join(', ' + i for i in post.model.inputs)})")
        if wu.pre_target and wu.pre_target not in pre.model.inputs:
            raise ValueError(f"{owner}: pre_target {wu.pre_target!r} is not an input of the "
                             f"presynaptic model {pre.model.name!r}")
        delayed = proj.max_dendritic_delay > 0
        if proj.uses("deliver_delayed") and not delayed:
            raise ValueError(f"{owner}: code uses deliver_delayed; set max_dendritic_delay > 0")
        self._check_wu_code(proj, pre, post, delayed)
        self._check_synapse_writes(proj, owner)
        self._check_synapse_values(proj, owner, pre.size, post.size)

    def _check_wu_code(self, proj, pre, post, delayed):
        wu, ps = proj.weight_update, proj.postsynaptic
        owner = f"projection {proj.name!r}"
        clash = sorted({v.name for a in wu.VAR_FIELDS for v in getattr(wu, a)} &
                       {v.name for v in ps.vars})
        if clash:
            raise ValueError(f"{owner}: weight-update and postsynaptic models both declare "
                             f"var(s) {clash}; rename one (vars share the projection's namespace)")
        if proj.connectivity.procedural:
            used = [f for f in ("post_spike", "synapse_dynamics") if wu.parsed[f]]
            if used:
                raise ValueError(f"{owner}: procedural connectivity supports only pre_spike "
                                 f"synapse code, but the model has {used}")

        def wu_scope(attr):
            if attr in wu.SYNAPSE_FIELDS:
                return synapse_scope(wu, pre.model, post.model, attr, delayed)
            return trace_scope(wu, pre.model if attr.startswith("pre") else post.model, attr)

        _check_model_code(wu, wu_scope, owner)
        _check_model_code(ps, lambda attr: postsynaptic_scope(ps, post.model, attr),
                          f"{owner} (onto population {post.name!r}, model {post.model.name})")

    def _check_synapse_writes(self, proj, owner):
        written = proj.written_synapse_vars()
        conn = proj.connectivity
        if written and conn.procedural:
            raise ValueError(f"{owner}: procedural connectivity stores no synapse vars, but the "
                             f"code writes {sorted(written)}")
        if written and conn.shared_kernel:
            raise ValueError(f"{owner}: {type(conn).__name__} kernel vars are shared by many "
                             f"synapses and read-only, but the code writes {sorted(written)}")
        shared = [v for v in written if not proj.weight_update.var(v).batched]
        if shared and self.batch_size > 1:
            raise ValueError(f"{owner}: synapse code writes var(s) {shared} shared across the batch "
                             f"(batch_size={self.batch_size}); declare them batched")
        if conn.procedural:
            stored = [k for k, v in proj.wu_init.items()
                      if isinstance(v, Values) and k in {x.name for x in proj.weight_update.vars}]
            if stored:
                raise ValueError(f"{owner}: procedural connectivity needs initialisers, not arrays, "
                                 f"for synapse var(s) {stored}")

    def _check_synapse_values(self, proj, owner, n_pre, n_post):
        wu = proj.weight_update
        n_syn = synapse_count(proj.connectivity, n_pre, n_post)
        for var in wu.vars:
            init = proj.wu_init[var.name]
            if not isinstance(init, Values):
                continue
            what = f"{owner} var {var.name!r}"
            if n_syn is None:
                raise ValueError(f"{what}: {type(proj.connectivity).__name__} has a random number "
                                 "of synapses; give an initialiser, not an array")
            shapes = [(n_syn,)] + ([(n_pre, n_post)] if isinstance(proj.connectivity, Dense) else [])
            if proj.connectivity.shared_kernel:
                shapes.append(proj.connectivity.kernel_shape)
            batch = self.batch_size if var.batched else None
            _check_values_shape(what, init.values, shapes, batch)
        for attr, size in (("pre_vars", n_pre), ("post_vars", n_post)):
            for var in getattr(wu, attr):
                init = proj.wu_init[var.name]
                if isinstance(init, Values):
                    _check_values_shape(f"{owner} var {var.name!r}", init.values, (size,),
                                        self.batch_size if var.batched else None)
        for var in proj.postsynaptic.vars:
            init = proj.ps_init[var.name]
            if isinstance(init, Values):
                _check_values_shape(f"{owner} var {var.name!r}", init.values, (n_post,),
                                    self.batch_size if var.batched else None)

    def _check_custom_update(self, cu: CustomUpdate):
        owner = f"custom update {cu.name!r}"
        nodes = self.nodes
        target = nodes.get(cu.target)
        if not isinstance(target, (Population, Projection)):
            raise ValueError(f"{owner}: target {cu.target!r} is not a population or projection")
        if any(r.over == "neurons" for r in cu.reductions.values()) and not isinstance(
                target, Population):
            raise ValueError(f"{owner}: reductions over neurons need a population target")
        earlier = {c.name: c for c in self.custom_updates[: self.custom_updates.index(cu)]}
        if isinstance(target, Projection) and target.connectivity.procedural:
            raise ValueError(f"{owner}: projection {cu.target!r} is procedural and stores no "
                             "synapse vars to update")
        ref_types = {}
        for key, ref in cu.var_refs.items():
            ref_types[key] = resolve_ref(owner, ref, cu.target, target, earlier)
        check_code(cu.parsed, custom_update_scope(cu, ref_types))
        self._check_custom_update_writes(owner, cu, target)

    def _check_custom_update_writes(self, owner, cu, target):
        """Writing a shared var from batched inputs would race between batch elements."""
        if self.batch_size == 1:
            return
        model = target.model if isinstance(target, Population) else target.weight_update
        own = {v.name: v for v in model.vars}
        batched_refs = [k for k, r in cu.var_refs.items() if _per_batch(cu, r, own, self.nodes)]
        written = names_assigned(cu.parsed)
        shared_written = [k for k, r in cu.var_refs.items() if k in written and
                          r.split(".")[0] == cu.target and not own[r.split(".")[1]].batched]
        if shared_written and batched_refs:
            raise ValueError(f"{owner}: writes shared var ref(s) {shared_written} while reading "
                             f"batched ref(s) {batched_refs} with batch_size={self.batch_size}; "
                             "reduce over the batch first")

    # convenience ------------------------------------------------------------
    def build(self, backend: str = "numpy", **options):
        """Lower the network to ``backend`` and return its Simulation."""
        from .registry import build

        return build(self, backend, **options)

    def save(self, path) -> None:
        """Write the network as a JSON model file (+ sibling .npz for arrays)."""
        from .serialize import save

        save(self, path)


def resolve_ref(owner, ref, target_name, target, earlier) -> tuple[str, bool]:
    """Type and writability of a custom update's var ref ``"<node>.<var>"``."""
    node, var = ref.split(".")
    if node == target_name:
        model = target.model if isinstance(target, Population) else target.weight_update
        fields = ("vars",)
        try:
            found = next(v for a in fields for v in getattr(model, a) if v.name == var)
        except StopIteration:
            names = [v.name for v in model.vars]
            raise ValueError(f"{owner}: {node!r} has no var {var!r} (vars: {names})") from None
        return found.type, True
    if node in earlier and earlier[node].target == target_name:
        if var not in earlier[node].reductions:
            raise ValueError(f"{owner}: custom update {node!r} has no reduction {var!r}")
        return "float", False
    raise ValueError(f"{owner}: var ref {ref!r} must name a var of the target {target_name!r} "
                     "or a reduction of an earlier custom update on the same target")


def _per_batch(cu, ref: str, own: dict, nodes: dict) -> bool:
    """Does var ref ``ref`` of ``cu`` hold a value per batch element?"""
    node, var = ref.split(".")
    if node == cu.target:
        return own[var].batched
    return nodes[node].reductions[var].over == "neurons"


def synapse_count(conn, n_pre: int, n_post: int) -> int | None:
    """Number of stored synapse-var entries, or None when it is random."""
    if isinstance(conn, Dense):
        return n_pre * n_post
    if isinstance(conn, OneToOne):
        return n_pre
    if isinstance(conn, Sparse):
        return len(conn.indices)
    if isinstance(conn, FixedNumberPost):
        return n_pre * conn.n
    if isinstance(conn, FixedTotalNumber):
        return conn.n
    if conn.shared_kernel:
        return int(np.prod(conn.kernel_shape))
    return None


def _check_values_shape(what: str, values: np.ndarray, shapes, batch: int | None):
    shapes = [shapes] if isinstance(shapes[0], int) else list(shapes)
    allowed = list(shapes) + ([(batch, *s) for s in shapes] if batch else [])
    if values.shape not in allowed:
        raise ValueError(f"{what}: array shape {values.shape} does not match; expected one of "
                         f"{allowed}")


class NetworkBuilder:
    """Mutable front end: each ``population``/``connect``/... call validates the
    whole network with the new node and only then keeps it, so a rejected call
    leaves the builder unchanged."""

    def __init__(self, dt: float = 0.1, batch_size: int = 1, seed: int = 0,
                 precision="float32", fuse_postsynaptic: bool = False):
        self._net = Network(dt=dt, batch_size=batch_size, seed=seed, precision=precision,
                            fuse_postsynaptic=fuse_postsynaptic)

    def _add(self, key: str, node):
        self._net = replace(self._net, **{key: getattr(self._net, key) + (node,)})
        return node

    def population(self, name, model, size, params=None, init=None, spike_times=None):
        pop = Population(name, model, size, params or {}, init or {}, spike_times)
        return self._add("populations", pop)

    def connect(self, pre, post, connectivity, name=None, *, weight_update=B.StaticPulse,
                wu_params=None, wu_init=None, w=None, postsynaptic=B.Delta, ps_params=None,
                ps_init=None, delay=0, max_dendritic_delay=0, target="i_syn"):
        """Add a projection (name defaults to ``"<pre>_<post>"``); ``w`` is a shortcut
        for ``wu_init={"w": w}``."""
        pre_name = getattr(pre, "name", pre)
        post_name = getattr(post, "name", post)
        wu_init = dict(wu_init or {})
        if w is not None:
            wu_init["w"] = w
        proj = Projection(name or f"{pre_name}_{post_name}", pre_name, post_name, connectivity,
                          weight_update, wu_params or {}, wu_init, postsynaptic, ps_params or {},
                          ps_init or {}, delay, max_dendritic_delay, target)
        return self._add("projections", proj)

    def current_source(self, name, model, target, params=None, init=None):
        source = CurrentSource(name, model, getattr(target, "name", target), params or {},
                               init or {})
        return self._add("current_sources", source)

    def custom_update(self, name, target, code, **kwargs):
        cu = CustomUpdate(name, getattr(target, "name", target), code, **kwargs)
        return self._add("custom_updates", cu)

    def network(self) -> Network:
        return self._net

    def build(self, backend: str = "numpy", **options):
        return self._net.build(backend, **options)

    def save(self, path) -> None:
        self._net.save(path)
