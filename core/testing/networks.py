"""The :func:`networks` strategy: valid random networks over every built-in model,
connectivity kind, initialiser and feature of the IR (see the package docstring)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from hypothesis import strategies as st

from .. import builtins as B
from ..connectivity import (AvgPool2D, Conv2D, Dense, FixedNumberPost, FixedProbability,
                            FixedTotalNumber, OneToOne, Sparse)
from ..init import Constant, Exponential, Init, Normal, NormalClipped, Uniform, Values
from ..lang.tree import names_assigned
from ..models import NeuronModel, WeightUpdateModel
from ..net import Network, NetworkBuilder, synapse_count
from ..network import Population, Reduction
from ..numerics import Fixed
from .models import (_num, _rng, user_neuron_models, user_postsynaptic_models,
                     user_weight_update_models)

DTS = (1.0, 0.5, 0.1)  # ms; 20 steps of 1 ms let most networks spike
SPIKE_STEPS = 30  # spike-source times lie in [0, SPIKE_STEPS * dt)
INIT_KINDS = ("Constant", "Uniform", "Normal", "NormalClipped", "Exponential", "Values")
USER_SCALE = 1.0  # input scale of user neuron models (state clipped to [-4, 4])


# initialisers ---------------------------------------------------------------------------------
def _init(draw, lo: float, hi: float, shapes=()) -> Init:
    """Any initialiser with values around [lo, hi]; Values only when shapes are given."""
    kind = draw(st.sampled_from(INIT_KINDS if shapes else INIT_KINDS[:-1]))
    mid, span = round((lo + hi) / 2, 3), hi - lo
    if kind == "Constant":
        return Constant(draw(_num(lo, hi)))
    if kind == "Uniform":
        return Uniform(lo, hi)
    if kind == "Normal":
        return Normal(mid, round(span / 4, 3))
    if kind == "NormalClipped":
        return NormalClipped(mid, round(span / 2, 3), lo, hi)
    if kind == "Exponential":
        return Exponential(round(span / 4, 3))
    return _values(draw, lo, hi, shapes)


def _values(draw, lo: float, hi: float, shapes) -> Values:
    return Values(_rng(draw).uniform(lo, hi, draw(st.sampled_from(shapes))).round(3))


def _int_init(draw, hi: int, shapes=()) -> Init:
    """Constant or (when shapes are given) an integer Values array in [0, hi]."""
    if shapes and draw(st.booleans()):
        return Values(_rng(draw).integers(0, hi + 1, draw(st.sampled_from(shapes))).astype(float))
    return Constant(draw(st.integers(0, hi)))


def _shapes(base, batched: bool, batch: int) -> list:
    return list(base) + ([(batch, *s) for s in base] if batched else [])


# built-in neuron models ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Kind:
    """How to draw a population of a built-in model: params, initial ranges of
    vars, and ``scale``, the typical magnitude of one input (weight, current)."""

    model: NeuronModel
    params: dict
    ranges: dict
    scale: float


_IZH_PRESETS = ((0.02, 0.2, -65.0, 8.0), (0.02, 0.2, -55.0, 4.0), (0.02, 0.2, -50.0, 2.0),
                (0.1, 0.2, -65.0, 2.0), (0.02, 0.25, -65.0, 0.05))
_REFRAC = st.sampled_from([0.0, 1.0, 2.0])
NEURONS = {
    "LIF": _Kind(B.LIF, {"C": st.sampled_from([1.0, 0.5, 0.25]), "tau_m": _num(5, 20),
                         "v_rest": st.just(-65.0), "v_reset": st.just(-70.0),
                         "v_thresh": st.just(-50.0), "i_offset": _num(0, 4),
                         "tau_refrac": _REFRAC},
                 {"v": (-70.0, -45.0), "refrac_time": (0.0, 2.0)}, 2.0),
    "IF": _Kind(B.IF, {"v_thresh": _num(0.5, 2)}, {"v": (0.0, 1.5)}, 0.5),
    "LeakyIntegrator": _Kind(B.LeakyIntegrator, {"tau_out": _num(5, 20)},
                             {"v": (-1.0, 1.0), "b": (-0.5, 0.5)}, 0.5),
    "ALIF": _Kind(B.ALIF, {"tau_m": _num(5, 20), "tau_a": _num(20, 200), "beta": _num(0, 2),
                           "v_thresh": _num(0.5, 1), "tau_refrac": _REFRAC},
                  {"v": (0.0, 1.2), "a": (0.0, 1.0), "refrac_time": (0.0, 2.0)}, 0.5),
    "Izhikevich": _Kind(B.Izhikevich, {}, {"v": (-70.0, -50.0), "u": (-15.0, -10.0)}, 10.0),
    "SpikeSourceArray": _Kind(B.SpikeSourceArray, {}, {}, 1.0),
    "PoissonSource": _Kind(B.PoissonSource, {"rate": _num(0, 2000)}, {}, 1.0),
}


# the network --------------------------------------------------------------------------------
@dataclass
class _Ctx:
    """State while one network is drawn: the options, the builder, input scales."""

    cfg: SimpleNamespace
    net: NetworkBuilder
    batch: int
    fixed: bool
    scale: dict = field(default_factory=dict)  # population -> input scale

    @property
    def pops(self) -> list[Population]:
        return list(self.net.network().populations)


def networks(max_populations: int = 3, max_size: int = 12, max_projections: int = 4,
             batch_sizes=(1, 2, 3), precisions=("float32", "float64"), allow_stdp: bool = True,
             allow_custom_updates: bool = True, allow_random_draws: bool = True,
             allow_procedural: bool = True, max_delay: int = 3):
    """Strategy for valid random :class:`~spikeforge.Network` objects (the frozen IR)
    with at most ``max_populations`` populations of at most ``max_size`` neurons,
    ``max_projections`` projections, 3 current sources and 2 custom-update groups.
    ``precisions`` may include ``sf.Fixed(...)`` (the numpy backend does not run
    it yet); ``allow_random_draws`` covers run-time draws (Poisson sources,
    GaussianNoise, ``uniform()``/``normal()`` in user code); ``allow_procedural``
    procedural FixedProbability/FixedNumberPost; axonal delays are <= ``max_delay``."""
    if max_populations < 1 or max_size < 1 or max_projections < 0 or max_delay < 0:
        raise ValueError("networks: need max_populations, max_size >= 1 and "
                         "max_projections, max_delay >= 0")
    if not batch_sizes or not precisions:
        raise ValueError("networks: batch_sizes and precisions must not be empty")
    return _network(max_populations=max_populations, max_size=max_size,
                    max_projections=max_projections, batch_sizes=tuple(batch_sizes),
                    precisions=tuple(precisions), allow_stdp=allow_stdp,
                    allow_custom_updates=allow_custom_updates,
                    allow_random_draws=allow_random_draws, allow_procedural=allow_procedural,
                    max_delay=max_delay)


@st.composite
def _network(draw, **options) -> Network:
    cfg = SimpleNamespace(**options)
    batch, precision = draw(st.sampled_from(cfg.batch_sizes)), draw(st.sampled_from(cfg.precisions))
    net = NetworkBuilder(dt=draw(st.sampled_from(DTS)), batch_size=batch,
                         seed=draw(st.integers(0, 2**32 - 1)), precision=precision,
                         fuse_postsynaptic=draw(st.booleans()))
    ctx = _Ctx(cfg, net, batch, isinstance(precision, Fixed))
    for i in range(draw(st.integers(1, cfg.max_populations))):
        _population(draw, ctx, i)
    for i in range(draw(st.integers(0, cfg.max_projections))):
        _projection(draw, ctx, i)
    for i in range(draw(st.integers(0, 3))):
        _current_source(draw, ctx, f"CS{i}")
    for i in range(draw(st.integers(0, 2)) if cfg.allow_custom_updates else 0):
        _custom_update(draw, ctx, f"CU{i}")
    return net.network()


def _population(draw, ctx: _Ctx, index: int) -> None:
    cfg, name = ctx.cfg, f"P{index}"
    kinds = ["LIF", "IF", "LeakyIntegrator", "ALIF", "Izhikevich", "SpikeSourceArray",
             *(["PoissonSource"] if cfg.allow_random_draws else []), "user", "user"]
    kind = draw(st.sampled_from(kinds))
    sizes = st.integers(1, cfg.max_size)
    if ctx.pops:  # equal sizes make OneToOne (and Conv2D) possible more often
        sizes = st.one_of(sizes, st.sampled_from(sorted({p.size for p in ctx.pops})))
    size, spike_times = draw(sizes), None
    if kind == "user":
        model = draw(user_neuron_models(f"UserNeuron{index}", cfg.allow_random_draws,
                                        fixed_point=ctx.fixed))
        params = {p: draw(_num(0.1, 2)) for p in model.params}
        ranges, ctx.scale[name] = {}, USER_SCALE
    else:
        spec = NEURONS[kind]
        model, ranges, ctx.scale[name] = spec.model, spec.ranges, spec.scale
        params = {p: draw(spec.params[p]) for p in model.params} if kind != "Izhikevich" \
            else dict(zip("abcd", draw(st.sampled_from(_IZH_PRESETS)), strict=True))
        if kind == "SpikeSourceArray":
            spike_times = _spike_times(draw, size, ctx.batch, ctx.net.network().dt)
    init = {}
    for var in model.vars:
        if var.default is not None and not draw(st.booleans()):
            continue
        shapes = _shapes([(size,)], var.batched, ctx.batch)
        init[var.name] = _int_init(draw, 3, shapes) if var.type == "int" else \
            _init(draw, *ranges.get(var.name, (-1.0, 1.0)), shapes)
    ctx.net.population(name, model, size, params=params, init=init, spike_times=spike_times)


def _spike_times(draw, size: int, batch: int, dt: float):
    """Per neuron 0-3 times k dt, k < SPIKE_STEPS (repeats give several events in a
    step); maybe one such list per batch element."""
    rng = _rng(draw)

    def one():
        return [sorted((rng.integers(0, SPIKE_STEPS, rng.integers(0, 4)) * dt).round(6).tolist())
                for _ in range(size)]

    nested = draw(st.booleans())
    per_batch = [one() for _ in range(batch if nested else 1)]
    return per_batch if nested else per_batch[0]


# projections --------------------------------------------------------------------------------
def _projection(draw, ctx: _Ctx, index: int) -> None:
    cfg, pops = ctx.cfg, ctx.pops
    pre, post = draw(st.sampled_from(pops)), draw(st.sampled_from(pops))
    scale = ctx.scale[post.name]
    feedback = bool(pre.model.inputs) and draw(st.booleans())  # deliver_pre into pre's input
    kinds = ["StaticPulse", "StaticPulseDendriticDelay", *(["STDP"] if cfg.allow_stdp else []),
             "user"]
    kind = "user" if feedback else draw(st.sampled_from(kinds))
    mdd = draw(st.integers(1, 3)) if kind == "StaticPulseDendriticDelay" else 0
    wu, wu_params = getattr(B, kind, None), {}
    if kind == "STDP":
        wu_params = _stdp_params(draw, scale)
    elif kind == "user":
        mdd = draw(st.sampled_from([0, 1, 3]))
        wu = draw(user_weight_update_models(
            pre.model, post.model, name=f"UserSynapse{index}", batch_size=ctx.batch, scale=scale,
            max_dendritic_delay=mdd, pre_target=pre.model.inputs[0] if feedback else "",
            allow_random_draws=cfg.allow_random_draws, fixed_point=ctx.fixed))
        wu_params = {"k": draw(_num(0.1, 1))}
    writes = _writes_synapse_vars(wu)
    only_pre = not (wu.post_spike.strip() or wu.synapse_dynamics.strip())
    conn = _connectivity(draw, pre, post, writes, cfg.allow_procedural and only_pre and not writes,
                         bool(wu.post_spike.strip()))
    ps, ps_params, ps_init = _postsynaptic(draw, ctx, post, scale, index)
    w_scale = _conductance_scale(post, scale) if ps is B.ExpCond else scale
    wu_init = _wu_init(draw, ctx, wu, conn, pre, post, w_scale, mdd)
    ctx.net.connect(pre.name, post.name, conn, f"{pre.name}_{post.name}_{index}",
                    weight_update=wu, wu_params=wu_params, wu_init=wu_init,
                    postsynaptic=ps, ps_params=ps_params, ps_init=ps_init,
                    delay=draw(st.integers(0, cfg.max_delay)), max_dendritic_delay=mdd,
                    target=draw(st.sampled_from(["i_syn", *post.model.inputs])))


def _writes_synapse_vars(wu: WeightUpdateModel) -> bool:
    written = set().union(*(names_assigned(wu.parsed[f]) for f in wu.SYNAPSE_FIELDS))
    return bool(written & {v.name for v in wu.vars})


def _stdp_params(draw, scale: float) -> dict:
    return {"tau_plus": draw(_num(5, 20)), "tau_minus": draw(_num(5, 20)),
            "a_plus": round(0.1 * scale, 3), "a_minus": round(0.12 * scale, 3),
            "w_min": draw(st.sampled_from([0.0, -0.5 * scale])), "w_max": scale}


def _map_shapes(n: int):
    """Channel-last map shapes (h, w, c) with h w c = n and at most 3 channels."""
    for h in range(1, n + 1):
        for w in range(1, n // h + 1):
            c, rem = divmod(n, h * w)
            if not rem and c <= 3:
                yield h, w, c


@functools.cache
def conv2d_geometries(n_pre: int, n_post: int) -> tuple[Conv2D, ...]:
    """Small Conv2D layouts (<= 3 channels in and out, kernels <= 3x3, strides
    (1,1), (2,2), (1,2), both paddings) from n_pre to n_post neurons, simplest first."""
    out = []
    for h, w, c in _map_shapes(n_pre):
        for kh, kw, oc, stride, padding in (
                (kh, kw, oc, s, p) for kh in range(1, min(h, 3) + 1)
                for kw in range(1, min(w, 3) + 1) for oc in (1, 2, 3)
                for s in ((1, 1), (2, 2), (1, 2)) for p in ("valid", "same")):
            conv = Conv2D((h, w, c), (kh, kw), oc, stride, padding)
            if int(np.prod(conv.out_shape)) == n_post:
                out.append(conv)
    return tuple(out)


@functools.cache
def avgpool2d_geometries(n_pre: int, n_post: int) -> tuple[AvgPool2D, ...]:
    """Small AvgPool2D layouts (<= 3 channels, pools <= 3x3, default stride or (1,1),
    (1,2), both paddings) from n_pre to n_post neurons, simplest first."""
    out = []
    for h, w, c in _map_shapes(n_pre):
        for ph, pw, stride, padding in (
                (ph, pw, s, p) for ph in range(1, min(h, 3) + 1)
                for pw in range(1, min(w, 3) + 1) for s in (None, (1, 1), (1, 2))
                for p in ("valid", "same")):
            pool = AvgPool2D((h, w, c), (ph, pw), stride, padding)
            if int(np.prod(pool.out_shape)) == n_post:
                out.append(pool)
    return tuple(out)


def _connectivity(draw, pre: Population, post: Population, writes: bool, procedural_ok: bool,
                  post_spike: bool):
    n_pre, n_post, same = pre.size, post.size, pre.name == post.name
    geometries = () if writes else conv2d_geometries(n_pre, n_post)
    pools = () if writes else avgpool2d_geometries(n_pre, n_post)
    kinds = ["Dense", *(["OneToOne"] if n_pre == n_post else []), "Sparse", "FixedProbability",
             "FixedNumberPost", "FixedTotalNumber", *(["Conv2D"] * 2 if geometries else []),
             *(["AvgPool2D"] if pools else [])]
    kind = draw(st.sampled_from(kinds))
    if kind in ("Dense", "OneToOne"):
        return Dense() if kind == "Dense" else OneToOne()
    if kind in ("Conv2D", "AvgPool2D"):
        return draw(st.sampled_from(geometries if kind == "Conv2D" else pools))
    if kind == "Sparse":
        rng = _rng(draw)
        row_ptr = np.concatenate([[0], np.cumsum(rng.integers(0, min(n_post, 3) + 1, n_pre))])
        return Sparse(row_ptr, rng.integers(0, n_post, int(row_ptr[-1])))
    if kind == "FixedTotalNumber":
        return FixedTotalNumber(draw(st.integers(0, min(n_pre * n_post + 2, 24))))
    procedural = procedural_ok and draw(st.integers(0, 3)) > 0
    autapses = not same or n_post < 2 or draw(st.booleans())
    if kind == "FixedProbability":
        return FixedProbability(draw(_num(0, 1)), procedural, autapses)
    return FixedNumberPost(draw(st.integers(0, min(n_post + 2, 6))), procedural, autapses)


def _synapse_shapes(conn, n_pre: int, n_post: int) -> list:
    """Legal Values shapes (unbatched) of a synapse var; [] when arrays are illegal."""
    n_syn = None if conn.procedural else synapse_count(conn, n_pre, n_post)
    if n_syn is None:
        return []
    if isinstance(conn, Dense):
        return [(n_syn,), (n_pre, n_post)]
    if conn.shared_kernel:
        return [(n_syn,), conn.kernel_shape]
    return [(n_syn,)]


def _wu_init(draw, ctx: _Ctx, wu, conn, pre, post, scale: float, mdd: int) -> dict:
    """Synapse vars: weights in [-scale/2, scale] (arrays half of the time when legal),
    int delays in [0, mdd + 1] (beyond the max is clipped); traces maybe in [0, 1]."""
    base, out = _synapse_shapes(conn, pre.size, post.size), {}
    for var in wu.vars:
        shapes = _shapes(base, var.batched, ctx.batch)
        if var.type == "int":
            out[var.name] = _int_init(draw, mdd + 1, shapes)
        elif shapes and draw(st.booleans()):
            out[var.name] = _values(draw, -0.5 * scale, scale, shapes)
        else:
            out[var.name] = _init(draw, -0.5 * scale, scale)
    for attr, pop in (("pre_vars", pre), ("post_vars", post)):
        for var in getattr(wu, attr):
            if draw(st.booleans()):
                shapes = _shapes([(pop.size,)], var.batched, ctx.batch)
                out[var.name] = _init(draw, 0.0, 1.0, shapes)
    return out


def _v_range(post: Population) -> tuple[float, float] | None:
    """The initial range of a built-in target's ``v`` (None: no such var)."""
    kind = next((k for k in NEURONS.values() if k.model is post.model), None)
    return kind.ranges.get("v") if kind else None


def _conductance_scale(post: Population, scale: float) -> float:
    """Weights of an ExpCond projection: |E_rev - v| is up to twice the v range, so
    conductances of scale / that give currents of the usual size."""
    lo, hi = _v_range(post)
    return scale / (2 * (hi - lo))


def _postsynaptic(draw, ctx: _Ctx, post: Population, scale: float, index: int):
    """Delta, ExpCurr, ExpCond (onto built-ins with ``v``; E_rev around v's range,
    weights drawn by the caller at :func:`_conductance_scale`) or a user model."""
    conductance = ["ExpCond"] if _v_range(post) else []
    kind = draw(st.sampled_from(["Delta", "ExpCurr", "user", *conductance]))
    if kind == "Delta":
        return B.Delta, {}, {}
    if kind == "ExpCond":
        lo, hi = _v_range(post)
        e_rev = draw(_num(lo - (hi - lo) / 2, hi + (hi - lo) / 2))
        return B.ExpCond, {"tau": draw(st.sampled_from([2.0, 5.0])), "E_rev": e_rev}, {}
    model, var = B.ExpCurr, "i"
    if kind == "user":
        model, var = draw(user_postsynaptic_models(
            post.model, name=f"UserPSM{index}", scale=scale,
            allow_random_draws=ctx.cfg.allow_random_draws, fixed_point=ctx.fixed)), "g"
    init = {}
    if draw(st.booleans()):
        init[var] = _init(draw, -0.5 * scale, scale, _shapes([(post.size,)], True, ctx.batch))
    tau = draw(st.one_of(st.sampled_from([2.0, 5.0]), _num(1, 10)))  # equal taus can fuse
    return model, {"tau": tau}, init


# current sources and custom updates -----------------------------------------------------------
def _current_source(draw, ctx: _Ctx, name: str) -> None:
    """DC amp, or GaussianNoise mean, in [-scale/4, scale] of the target; sd in [0, scale]."""
    target = draw(st.sampled_from(ctx.pops))
    scale = ctx.scale[target.name]
    kinds = ["DC", *(["GaussianNoise"] if ctx.cfg.allow_random_draws else [])]
    level = draw(_num(-0.25 * scale, scale))
    if draw(st.sampled_from(kinds)) == "DC":
        ctx.net.current_source(name, B.DC, target.name, params={"amp": level})
    else:
        ctx.net.current_source(name, B.GaussianNoise, target.name,
                               params={"mean": level, "sd": draw(_num(0, scale))})


def _cu_targets(ctx: _Ctx) -> list[tuple[str, str, bool]]:
    """(node, float var, batched) a custom update may reference: population vars and
    synapse vars of stored (not procedural) projections."""
    out = [(p.name, v.name, v.batched) for p in ctx.pops for v in p.model.vars
           if v.type == "float"]
    for proj in ctx.net.network().projections:
        if not proj.connectivity.procedural:
            out += [(proj.name, v.name, v.batched) for v in proj.weight_update.vars
                    if v.type == "float"]
    return out


def _custom_update(draw, ctx: _Ctx, name: str) -> None:
    """``x = x * c``; or a reduction ``r = x`` (sum/max over the batch or the neurons),
    maybe followed in the same group by ``x = x - c r`` (c = 1/count for sums:
    subtract the mean), host-triggered or ``every_step``."""
    targets = _cu_targets(ctx)
    if not targets:
        return
    node, var, batched = draw(st.sampled_from(targets))
    is_pop = isinstance(ctx.net.network().nodes[node], Population)
    every_step, ref = draw(st.booleans()), f"{node}.{var}"
    kind = draw(st.sampled_from(["scale", "reduce", "reduce_then_update"]))
    if kind == "scale":
        ctx.net.custom_update(name, node, "x = x * c", var_refs={"x": ref},
                              params={"c": draw(_num(0.5, 1))}, every_step=every_step)
        return
    over = draw(st.sampled_from(["batch", "neurons"] if is_pop else ["batch"]))
    op = draw(st.sampled_from(["sum", "max"]))
    ctx.net.custom_update(name, node, "r = x", var_refs={"x": ref},
                          reductions={"r": Reduction(op, over)}, every_step=every_step)
    # Writing a shared var from a per-batch-element (over="neurons") reduction is rejected
    # by Network validation when batch_size > 1; not drawn.
    if kind == "reduce" or (over == "neurons" and not batched):
        return
    count = ctx.batch if over == "batch" else ctx.net.network().population(node).size
    c = 1.0 if op == "max" else round(1.0 / count, 6)
    ctx.net.custom_update(f"{name}b", node, "x = x - c * r", var_refs={"x": ref, "r": f"{name}.r"},
                          params={"c": c}, group=name, every_step=every_step)
