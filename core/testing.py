"""Hypothesis strategies for random, valid spikeforge networks (``spikeforge.testing``).

Every backend is tested against the NumPy reference on networks drawn here::

    from hypothesis import given
    from spikeforge.testing import describe, networks

    @given(networks(max_populations=2))
    def test_cpu_matches_numpy(net):
        ...  # build on both backends, compare; put describe(net) in failure messages

:func:`networks` draws a frozen :class:`spikeforge.Network` covering every
built-in neuron, postsynaptic, weight-update and current-source model, random
user models (:func:`user_neuron_models`, :func:`user_weight_update_models`,
:func:`user_postsynaptic_models`), every connectivity kind (stored and
procedural), every initialiser and ``Values`` arrays of each legal shape,
axonal and dendritic delays, batching, extra inputs (``target=`` and
``deliver_pre``) and custom updates (reductions over the batch or the neurons,
follow-ups reading them, ``every_step`` ones). :func:`features` lists what a
network exercises; :func:`describe` prints it.

Design rules:

* choices are ordered simplest first (1 population, size 1, LIF, Dense,
  StaticPulse, Delta, Constant, no delay, batch 1), so failures shrink to small
  readable networks;
* inputs are scaled per target neuron model (``_NEURONS[...].scale``: weights
  in [-scale/2, scale], DC amplitudes likewise), so neurons spike sometimes and
  stay finite; user-model state is clipped to [-4, 4] and every division is by
  ``1 + abs(x)`` (or, in fixed point, by a param in [0.1, 2]), so user code
  cannot overflow in a few hundred steps;
* arrays (``Values``, ``Sparse`` CSR, spike times) come from a drawn integer
  seed through ``numpy.random.default_rng``, which keeps hypothesis' buffer small;
* the IR's rules hold by construction: no synapse code writing shared vars when
  batch_size > 1, procedural connectivity only for models with nothing but
  non-writing ``pre_spike`` code and never with arrays or custom updates,
  Conv2D only for read-only kernels and matching sizes, OneToOne only for equal
  sizes, ``deliver_delayed`` only with ``max_dendritic_delay > 0``;
* with a ``Fixed`` precision, user code avoids transcendental functions and
  divides only by params (the fixed-point rules of DESIGN.md).

hypothesis is needed only by this module (``pip install spikeforge[test]``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from . import builtins as B
from .connectivity import (Conv2D, Dense, FixedNumberPost, FixedProbability, FixedTotalNumber,
                           OneToOne, Sparse)
from .lang.tree import names_assigned
from .init import Constant, Exponential, Init, Normal, NormalClipped, Uniform, Values
from .models import NeuronModel, PostsynapticModel, Var, WeightUpdateModel
from .net import Network, NetworkBuilder, synapse_count
from .network import Population, Projection, Reduction
from .numerics import Fixed

try:
    from hypothesis import settings
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("spikeforge.testing needs hypothesis: pip install 'spikeforge[test]'") from exc

LIM = 4.0  # user-model state is clipped to [-LIM, LIM]
DTS = (0.1, 0.5, 1.0)
SPIKE_STEPS = 30  # spike-source times lie in [0, SPIKE_STEPS * dt)
INIT_KINDS = ("Constant", "Uniform", "Normal", "NormalClipped", "Exponential", "Values")


# profiles ---------------------------------------------------------------------------------
def register_profiles() -> None:
    """Register hypothesis profiles "ci" (25 derandomized examples) and "thorough"
    (500 random ones), and load "ci" unless a profile was chosen already
    (e.g. with pytest's ``--hypothesis-profile``)."""
    settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None,
                              print_blob=True)
    settings.register_profile("thorough", max_examples=500, deadline=None, print_blob=True)
    if settings.get_current_profile_name() == "default":
        settings.load_profile("ci")


# small value strategies -------------------------------------------------------------------
def _num(lo: float, hi: float):
    """A float in [lo, hi] rounded to 2 decimals (readable when printed)."""
    return st.floats(lo, hi, allow_nan=False).map(lambda x: min(max(round(x, 2), lo), hi))


def _rng(draw) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**16 - 1)))


def _lit(x: float) -> str:
    return repr(float(x))


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
    return Values(_rng(draw).uniform(lo, hi, draw(st.sampled_from(shapes))).round(3))


def _int_init(draw, hi: int, shapes=()) -> Init:
    """Constant or (when shapes are given) an integer Values array in [0, hi]."""
    if shapes and draw(st.booleans()):
        return Values(_rng(draw).integers(0, hi + 1, draw(st.sampled_from(shapes))).astype(float))
    return Constant(draw(st.integers(0, hi)))


def _shapes(base, batched: bool, batch: int) -> list:
    return list(base) + ([(batch, *s) for s in base] if batched else [])


# built-in neuron models -------------------------------------------------------------------
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
_NEURONS = {
    "LIF": _Kind(B.LIF, {"C": st.sampled_from([1.0, 0.5, 0.25]), "tau_m": _num(5, 20),
                         "v_rest": st.just(-65.0), "v_reset": st.just(-70.0),
                         "v_thresh": st.just(-50.0), "i_offset": _num(0, 3),
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
USER_SCALE = 1.0  # input scale of user neuron models (state clipped to [-LIM, LIM])


# random model code ------------------------------------------------------------------------
_OPS = ("leaf", "+", "-", "*", "/", "min", "max", "clip", "ifexp", "exp", "tanh", "sqrt", "log")
_TRANSCENDENTAL = ("exp", "tanh", "sqrt", "log")


@st.composite
def expressions(draw, leaves, depth: int = 2, fixed_point: bool = False, divisors=()):
    """A random float expression (model-language text) over ``leaves`` (names or
    calls such as ``uniform()``) and constants in [-2, 2]. Safe by construction:
    ``/`` divides by ``1 + abs(x)`` (fixed point: by one of ``divisors``, params
    bounded away from 0), ``exp`` sees a clipped argument, ``sqrt``/``log`` see
    ``abs(x)``/``1 + abs(x)``. Fixed point avoids transcendental functions."""
    ops = [op for op in _OPS if not (fixed_point and op in _TRANSCENDENTAL)]
    if fixed_point and not divisors:
        ops.remove("/")
    op = draw(st.sampled_from(ops if depth > 0 else ["leaf"]))
    if op == "leaf":
        leaf = draw(st.sampled_from(["const", *leaves]))
        return _lit(draw(_num(-2, 2))) if leaf == "const" else leaf

    def sub():
        return draw(expressions(leaves, depth - 1, fixed_point, divisors))

    a = sub()
    if op in ("+", "-", "*"):
        return f"({a} {op} {sub()})"
    if op == "/":
        return f"({a} / {draw(st.sampled_from(divisors))})" if fixed_point else \
            f"({a} / (1.0 + abs({sub()})))"
    if op in ("min", "max"):
        return f"{op}({a}, {sub()})"
    if op == "clip":
        return f"clip({a}, -{LIM}, {LIM})"
    if op == "ifexp":
        return f"({a} if {sub()} < {sub()} else {sub()})"
    return {"exp": f"exp(clip({a}, -{LIM}, {LIM}))", "tanh": f"tanh({a})",
            "sqrt": f"sqrt(abs({a}))", "log": f"log(1.0 + abs({a}))"}[op]


def _random_leaves(allow: bool) -> list[str]:
    return ["uniform()", "normal()"] if allow else []


def _float_vars(model, suffix: str) -> list[str]:
    return [v.name + suffix for v in model.vars if v.type == "float"]


@st.composite
def user_neuron_models(draw, name: str = "UserNeuron", allow_random_draws: bool = True,
                       allow_inputs: bool = True, fixed_point: bool = False):
    """A random valid NeuronModel: params ``p0..`` (give them values in [0.1, 2]),
    batched float vars ``x0..`` updated as ``x = clip(f, -4, 4)`` or
    ``x = clip(x + dt f, -4, 4)`` (f a random expression, optionally under
    ``if``/``else``), optionally a shared read-only ``bias``, an int ``count`` of
    resets, a derived param ``k = exp(-dt / p0)``, an extra input ``i_fb``, and a
    threshold (``x0 >= p``) or an events count (``2 if x0 >= p else 0``) with a
    reset. Vars default to 0, so no init is required."""
    params = tuple(f"p{i}" for i in range(draw(st.integers(1, 3))))
    xs = [f"x{i}" for i in range(draw(st.integers(1, 3)))]
    bias, count = draw(st.booleans()), draw(st.booleans())
    derived = {"k": f"exp(-dt / {params[0]})"} if draw(st.booleans()) else {}
    inputs = ("i_fb",) if allow_inputs and draw(st.booleans()) else ()
    leaves = [*params, *derived, *xs, "i_syn", *inputs, "dt", *(["bias"] if bias else []),
              *_random_leaves(allow_random_draws)]

    def expr(depth=2):
        return draw(expressions(leaves, depth, fixed_point, params))

    lines = []
    for x in xs:
        rhs = draw(st.sampled_from([f"{x} + dt * {{}}", "{}"]))
        if draw(st.booleans()):
            lines += [f"if {expr(1)} < {expr(1)}:", f"    {x} = clip({rhs.format(expr())}, "
                      f"-{LIM}, {LIM})", "else:", f"    {x} = clip({expr()}, -{LIM}, {LIM})"]
        else:
            lines.append(f"{x} = clip({rhs.format(expr())}, -{LIM}, {LIM})")
    spiking = draw(st.sampled_from(["threshold", "none", "events"]))
    p = draw(st.sampled_from(params))
    reset = [draw(st.sampled_from(["x0 = 0.0", f"x0 -= {p}"]))] + (["count += 1"] if count else [])
    variables = [Var(x, default=0.0) for x in xs] + ([Var("bias", batched=False, default=0.0)]
                                                    if bias else [])
    variables += [Var("count", type="int", default=0)] if count else []
    return NeuronModel(
        name, params=params, derived=derived, vars=tuple(variables), inputs=inputs,
        sim="\n".join(lines),
        threshold=f"x0 >= {p}" if spiking == "threshold" else "",
        events=f"(2 if x0 >= {p} else 0)" if spiking == "events" else "",
        reset="\n".join(reset) if spiking != "none" else "",
        doc="random user neuron model (spikeforge.testing)")


@st.composite
def user_weight_update_models(draw, pre_model: NeuronModel = B.LIF,
                              post_model: NeuronModel = B.LIF, *, name: str = "UserSynapse",
                              batch_size: int = 1, scale: float = 1.0, max_dendritic_delay: int = 0,
                              pre_target: str = "", allow_random_draws: bool = True,
                              allow_writes: bool = True, fixed_point: bool = False):
    """A random valid WeightUpdateModel with param ``k`` (give it a value in [0.1, 1])
    and weight ``w`` (initialise it in [-scale/2, scale]): ``pre_spike`` delivers
    ``w`` or ``clip(f, -scale, scale)`` (through ``deliver_delayed`` when
    ``max_dendritic_delay`` > 0, and ``deliver_pre`` when ``pre_target`` is given);
    optional pre/post traces ``xpre``/``ypost`` (decay 0.9, +1 per spike); when
    ``allow_writes``, maybe a clipped learning rule on ``w`` in ``pre_spike``,
    ``post_spike`` or ``synapse_dynamics`` (``w`` is then batched when
    ``batch_size`` > 1); maybe a non-writing ``post_spike``/``synapse_dynamics``
    delivery. f reads ``w``, ``k``, traces and the pre/post neuron vars."""
    pre_trace, post_trace = draw(st.booleans()), draw(st.booleans())
    writes = allow_writes and draw(st.booleans())
    batched = (writes and batch_size > 1) or draw(st.booleans())
    leaves = ["w", "k", *(["xpre"] if pre_trace else []), *(["ypost"] if post_trace else []),
              *_float_vars(pre_model, "_pre"), *_float_vars(post_model, "_post"),
              *_random_leaves(allow_random_draws)]

    def expr(depth=2):
        return draw(expressions(leaves, depth, fixed_point, ("k",)))

    s = _lit(round(scale, 3))
    amount = draw(st.sampled_from(["w", "f"]))
    amount = "w" if amount == "w" else f"clip({expr()}, -{s}, {s})"
    if max_dendritic_delay:
        steps = draw(st.sampled_from(["0", str(max_dendritic_delay), "extra"]))
        steps = f"(1 if {expr(1)} > 0.0 else {max_dendritic_delay + 1})" if steps == "extra" \
            else steps
        code = {"pre_spike": [f"deliver_delayed({amount}, {steps})"]}
    else:
        code = {"pre_spike": [f"deliver({amount})"]}
    code["post_spike"], code["synapse_dynamics"] = [], []
    if pre_target:
        code["pre_spike"].append("deliver_pre(clip(k * w, -1.0, 1.0))")
    if writes:
        where = draw(st.sampled_from(["pre_spike", "post_spike", "synapse_dynamics"]))
        code[where].append(f"w = clip(w + 0.1 * k * {expr()}, -{s}, {s})")
    extra = draw(st.sampled_from(["", "post_spike", "synapse_dynamics"]))
    if extra:
        code[extra].append(f"deliver(clip(0.1 * k * w, -{s}, {s}))")
    return WeightUpdateModel(
        name, params=("k",), vars=(Var("w", batched=batched),),
        pre_vars=(Var("xpre", default=0.0),) if pre_trace else (),
        post_vars=(Var("ypost", default=0.0),) if post_trace else (),
        pre_spike="\n".join(code["pre_spike"]), post_spike="\n".join(code["post_spike"]),
        synapse_dynamics="\n".join(code["synapse_dynamics"]),
        pre_dynamics="xpre = xpre * 0.9" if pre_trace else "",
        post_dynamics="ypost = ypost * 0.9" if post_trace else "",
        pre_spike_trace="xpre += 1.0" if pre_trace else "",
        post_spike_trace="ypost += 1.0" if post_trace else "",
        pre_target=pre_target, doc="random user weight-update model (spikeforge.testing)")


@st.composite
def user_postsynaptic_models(draw, post_model: NeuronModel = B.LIF, *, name: str = "UserPSM",
                             scale: float = 1.0, allow_random_draws: bool = True,
                             fixed_point: bool = False):
    """A random valid PostsynapticModel with param ``tau`` (give it [1, 10]) and
    var ``g``: ``g = g decay + inp`` (decay = exp(-dt/tau)), or ``g = clip(g decay
    + inp f, -4 scale, 4 scale)``; current ``g`` or ``clip(f, -scale, scale)``, f
    over ``g``, ``inp``, ``tau`` and the target's vars ``<var>_post``."""
    leaves = ["g", "inp", "tau", *_float_vars(post_model, "_post"),
              *_random_leaves(allow_random_draws)]
    s, s4 = _lit(round(scale, 3)), _lit(round(4 * scale, 3))

    def expr():
        return draw(expressions(leaves, 2, fixed_point, ("tau",)))

    code = "g = g * decay + inp" if not draw(st.booleans()) else \
        f"g = clip(g * decay + inp * {expr()}, -{s4}, {s4})"
    current = "g" if not draw(st.booleans()) else f"clip({expr()}, -{s}, {s})"
    return PostsynapticModel(name, params=("tau",), derived={"decay": "exp(-dt / tau)"},
                             vars=(Var("g", default=0.0),), code=code, current=current,
                             doc="random user postsynaptic model (spikeforge.testing)")


# networks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Config:
    max_populations: int
    max_size: int
    max_projections: int
    batch_sizes: tuple
    precisions: tuple
    allow_stdp: bool
    allow_custom_updates: bool
    allow_random_draws: bool
    allow_procedural: bool
    max_delay: int


@dataclass
class _Ctx:
    """State while one network is drawn."""

    cfg: _Config
    net: NetworkBuilder
    batch: int
    fixed: bool
    scale: dict = field(default_factory=dict)  # population -> input scale
    ranges: dict = field(default_factory=dict)  # "<node>.<var>" -> initial (lo, hi)

    @property
    def pops(self) -> list[Population]:
        return list(self.net.network().populations)


def networks(max_populations: int = 3, max_size: int = 12, max_projections: int = 4,
             batch_sizes=(1, 2, 3), precisions=("float32", "float64"), allow_stdp: bool = True,
             allow_custom_updates: bool = True, allow_random_draws: bool = True,
             allow_procedural: bool = True, max_delay: int = 3):
    """Strategy for valid random :class:`~spikeforge.Network` objects (see the
    module docstring). ``precisions`` may include ``sf.Fixed(...)`` values (the
    numpy backend does not run them yet). ``allow_random_draws`` covers run-time
    draws (Poisson sources, GaussianNoise, ``uniform()``/``normal()`` in user code);
    ``allow_procedural`` procedural FixedProbability/FixedNumberPost."""
    if max_populations < 1 or max_size < 1 or max_projections < 0 or max_delay < 0:
        raise ValueError("networks: need max_populations, max_size >= 1 and "
                         "max_projections, max_delay >= 0")
    if not batch_sizes or not precisions:
        raise ValueError("networks: batch_sizes and precisions must not be empty")
    cfg = _Config(max_populations, max_size, max_projections, tuple(batch_sizes),
                  tuple(precisions), allow_stdp, allow_custom_updates, allow_random_draws,
                  allow_procedural, max_delay)
    return _network(cfg)


@st.composite
def _network(draw, cfg: _Config) -> Network:
    batch = draw(st.sampled_from(cfg.batch_sizes))
    precision = draw(st.sampled_from(cfg.precisions))
    net = NetworkBuilder(dt=draw(st.sampled_from(DTS)), batch_size=batch,
                         seed=draw(st.integers(0, 2**32 - 1)), precision=precision)
    ctx = _Ctx(cfg, net, batch, isinstance(precision, Fixed))
    for i in range(draw(st.integers(1, cfg.max_populations))):
        _population(draw, ctx, f"P{i}", i)
    for i in range(draw(st.integers(0, cfg.max_projections))):
        _projection(draw, ctx, i)
    for i in range(draw(st.integers(0, 2))):
        _current_source(draw, ctx, f"CS{i}")
    if cfg.allow_custom_updates:
        for i in range(draw(st.integers(0, 2))):
            _custom_update(draw, ctx, f"CU{i}")
    return net.network()


def _population(draw, ctx: _Ctx, name: str, index: int) -> None:
    cfg = ctx.cfg
    kinds = ["LIF", "IF", "LeakyIntegrator", "ALIF", "Izhikevich", "SpikeSourceArray",
             *(["PoissonSource"] if cfg.allow_random_draws else []), "user", "user"]
    kind = draw(st.sampled_from(kinds))
    sizes = st.integers(1, cfg.max_size)
    if ctx.pops:
        sizes = st.one_of(sizes, st.sampled_from(sorted({p.size for p in ctx.pops})))
    size = draw(sizes)
    spike_times = None
    if kind == "user":
        model = draw(user_neuron_models(f"UserNeuron{index}", cfg.allow_random_draws,
                                        fixed_point=ctx.fixed))
        params = {p: draw(_num(0.1, 2)) for p in model.params}
        ranges, ctx.scale[name] = {}, USER_SCALE
    else:
        spec = _NEURONS[kind]
        model, ranges, ctx.scale[name] = spec.model, spec.ranges, spec.scale
        params = draw(st.fixed_dictionaries(spec.params)) if kind != "Izhikevich" else \
            dict(zip("abcd", draw(st.sampled_from(_IZH_PRESETS))))
        if kind == "SpikeSourceArray":
            spike_times = _spike_times(draw, size, ctx.batch, ctx.net.network().dt)
    init = {}
    for var in model.vars:
        if var.default is not None and not draw(st.booleans()):
            continue
        shapes = _shapes([(size,)], var.batched, ctx.batch)
        if var.type == "int":
            init[var.name] = _int_init(draw, 3, shapes)
        else:
            lo, hi = ranges.get(var.name, (-1.0, 1.0))
            init[var.name] = _init(draw, lo, hi, shapes)
        ctx.ranges[f"{name}.{var.name}"] = ranges.get(var.name, (-1.0, 1.0))
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
    # TODO(bug): the numpy backend crashes (IndexError in NumpySimulation._ssa_counts) on a
    # spike-source array with no spike time at all; until fixed, keep at least one.
    per_batch[0][0] = per_batch[0][0] or [0.0]
    return per_batch if nested else per_batch[0]


def _projection(draw, ctx: _Ctx, index: int) -> None:
    cfg, pops = ctx.cfg, ctx.pops
    pre, post = draw(st.sampled_from(pops)), draw(st.sampled_from(pops))
    scale = ctx.scale[post.name]
    kinds = ["StaticPulse", "StaticPulseDendriticDelay", *(["STDP"] if cfg.allow_stdp else []),
             "user"]
    feedback = bool(pre.model.inputs) and draw(st.booleans())  # deliver_pre into pre's input
    kind = "user" if feedback else draw(st.sampled_from(kinds))
    mdd = draw(st.integers(1, 3)) if kind == "StaticPulseDendriticDelay" else 0
    wu, wu_params = getattr(B, kind, None), {}
    if kind == "STDP":
        wu_params = _stdp_params(draw, scale)
    elif kind == "user":
        mdd = draw(st.sampled_from([0, 1, 3]))
        pre_target = pre.model.inputs[0] if feedback else ""
        wu = draw(user_weight_update_models(
            pre.model, post.model, name=f"UserSynapse{index}", batch_size=ctx.batch, scale=scale,
            max_dendritic_delay=mdd, pre_target=pre_target,
            allow_random_draws=cfg.allow_random_draws, fixed_point=ctx.fixed))
        wu_params = {"k": draw(_num(0.1, 1))}
    writes = _writes_synapse_vars(wu)
    only_pre = not (wu.post_spike.strip() or wu.synapse_dynamics.strip())
    conn = _connectivity(draw, pre, post, writes, cfg.allow_procedural and only_pre and not writes,
                         bool(wu.post_spike.strip()))
    ps, ps_params, ps_init = _postsynaptic(draw, ctx, post, scale, index)
    ctx.net.connect(pre.name, post.name, conn, f"{pre.name}_{post.name}_{index}",
                    weight_update=wu, wu_params=wu_params,
                    wu_init=_wu_init(draw, ctx, wu, conn, pre, post, scale, mdd),
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


@functools.lru_cache(maxsize=None)
def conv2d_geometries(n_pre: int, n_post: int) -> tuple[Conv2D, ...]:
    """Small Conv2D layouts (<= 3 channels, kernels <= 3x3, stride <= 2) with
    in_shape size n_pre and out_shape size n_post, simplest first."""
    out = []
    for h in range(1, n_pre + 1):
        for w in range(1, n_pre // h + 1):
            c, rem = divmod(n_pre, h * w)
            if rem or c > 3:
                continue
            for kh in range(1, min(h, 3) + 1):
                for kw in range(1, min(w, 3) + 1):
                    for oc in (1, 2, 3):
                        for stride in ((1, 1), (2, 2), (1, 2)):
                            for padding in ("valid", "same"):
                                conv = Conv2D((h, w, c), (kh, kw), oc, stride, padding)
                                if int(np.prod(conv.out_shape)) == n_post:
                                    out.append(conv)
    return tuple(out)


def _connectivity(draw, pre: Population, post: Population, writes: bool, procedural_ok: bool,
                  post_spike: bool):
    n_pre, n_post, same = pre.size, post.size, pre.name == post.name
    geometries = () if writes else conv2d_geometries(n_pre, n_post)
    kinds = ["Dense", *(["OneToOne"] if n_pre == n_post else []), "Sparse", "FixedProbability",
             "FixedNumberPost", "FixedTotalNumber", *(["Conv2D"] * 2 if geometries else [])]
    if post_spike:
        # TODO(bug): numpy post_spike phase crashes (synapses._expand on zero ranges) when every
        # spiking postsynaptic neuron lies above the highest connected target; until fixed,
        # post_spike code only gets connectivity that reaches the last target.
        kinds = [k for k in kinds if k in ("Dense", "OneToOne", "Conv2D")]
    kind = draw(st.sampled_from(kinds))
    if kind == "Dense":
        return Dense()
    if kind == "OneToOne":
        return OneToOne()
    if kind == "Conv2D":
        return draw(st.sampled_from(geometries))
    if kind == "Sparse":
        rng = _rng(draw)
        lengths = rng.integers(0, min(n_post, 3) + 1, n_pre)
        row_ptr = np.concatenate([[0], np.cumsum(lengths)])
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
    if isinstance(conn, Conv2D):
        return [(n_syn,), (*conn.kernel, conn.in_shape[2], conn.out_channels)]
    return [(n_syn,)]


def _wu_init(draw, ctx: _Ctx, wu, conn, pre, post, scale: float, mdd: int) -> dict:
    base = _synapse_shapes(conn, pre.size, post.size)
    out = {}
    for var in wu.vars:
        shapes = _shapes(base, var.batched, ctx.batch)
        if var.type == "int":
            out[var.name] = _int_init(draw, mdd + 1, shapes)
        elif shapes and draw(st.booleans()):  # arrays are common for weights
            shape = draw(st.sampled_from(shapes))
            out[var.name] = Values(_rng(draw).uniform(-0.5 * scale, scale, shape).round(3))
        else:
            out[var.name] = _init(draw, -0.5 * scale, scale)
    for attr, pop in (("pre_vars", pre), ("post_vars", post)):
        for var in getattr(wu, attr):
            if draw(st.booleans()):
                out[var.name] = _init(draw, 0.0, 1.0, _shapes([(pop.size,)], var.batched,
                                                              ctx.batch))
    return out


def _postsynaptic(draw, ctx: _Ctx, post: Population, scale: float, index: int):
    kind = draw(st.sampled_from(["Delta", "ExpCurr", "user"]))
    if kind == "Delta":
        return B.Delta, {}, {}
    shapes = _shapes([(post.size,)], True, ctx.batch)
    init = {}
    if kind == "ExpCurr":
        if draw(st.booleans()):
            init["i"] = _init(draw, -0.5 * scale, scale, shapes)
        return B.ExpCurr, {"tau": draw(_num(1, 10))}, init
    model = draw(user_postsynaptic_models(post.model, name=f"UserPSM{index}", scale=scale,
                                          allow_random_draws=ctx.cfg.allow_random_draws,
                                          fixed_point=ctx.fixed))
    if draw(st.booleans()):
        init["g"] = _init(draw, -0.5 * scale, scale, shapes)
    return model, {"tau": draw(_num(1, 10))}, init


def _current_source(draw, ctx: _Ctx, name: str) -> None:
    target = draw(st.sampled_from(ctx.pops))
    scale = ctx.scale[target.name]
    kinds = ["DC", *(["GaussianNoise"] if ctx.cfg.allow_random_draws else [])]
    if draw(st.sampled_from(kinds)) == "DC":
        ctx.net.current_source(name, B.DC, target.name,
                               params={"amp": draw(_num(-0.5 * scale, scale))})
    else:
        ctx.net.current_source(name, B.GaussianNoise, target.name,
                               params={"mean": draw(_num(-0.5 * scale, scale)),
                                       "sd": draw(_num(0, scale))})


def _cu_targets(ctx: _Ctx) -> list[tuple[str, str, bool]]:
    """(node, float var, batched) a custom update may reference."""
    out = [(p.name, v.name, v.batched) for p in ctx.pops for v in p.model.vars
           if v.type == "float"]
    for proj in ctx.net.network().projections:
        if not proj.connectivity.procedural:
            out += [(proj.name, v.name, v.batched) for v in proj.weight_update.vars
                    if v.type == "float"]
    return out


def _custom_update(draw, ctx: _Ctx, name: str) -> None:
    """``x = x * c``; or a reduction ``r = x`` over the batch or the neurons, maybe
    followed by ``x = x - c r`` (c = 1/count for sums: subtract the mean)."""
    targets = _cu_targets(ctx)
    if not targets:
        return
    node, var, batched = draw(st.sampled_from(targets))
    is_pop = isinstance(ctx.net.network().nodes[node], Population)
    every_step = draw(st.booleans())
    ref = f"{node}.{var}"
    kind = draw(st.sampled_from(["scale", "reduce", "reduce_then_update"]))
    if kind == "scale":
        ctx.net.custom_update(name, node, "x = x * c", var_refs={"x": ref},
                              params={"c": draw(_num(0.5, 1))}, every_step=every_step)
        return
    over = draw(st.sampled_from(["batch", "neurons"] if is_pop else ["batch"]))
    op = draw(st.sampled_from(["sum", "max"]))
    ctx.net.custom_update(name, node, "r = x", var_refs={"x": ref},
                          reductions={"r": Reduction(op, over)}, every_step=every_step)
    # TODO(bug): a shared var written from a per-batch (over="neurons") reduction passes
    # Network validation but is ambiguous (numpy keeps batch 0); not generated here.
    if kind == "reduce" or (over == "neurons" and not batched):
        return
    count = ctx.batch if over == "batch" else ctx.net.network().population(node).size
    c = 1.0 if op == "max" else round(1.0 / count, 6)
    ctx.net.custom_update(f"{name}b", node, "x = x - c * r", var_refs={"x": ref, "r": f"{name}.r"},
                          params={"c": c}, group=name, every_step=every_step)


# reading networks back --------------------------------------------------------------------
_BUILTIN_MODELS = {id(m) for table in (B.NEURON_MODELS, B.POSTSYNAPTIC_MODELS,
                                       B.WEIGHT_UPDATE_MODELS, B.CURRENT_SOURCE_MODELS)
                   for m in table.values()}


def _is_user(model) -> bool:
    return id(model) not in _BUILTIN_MODELS


def _inits_of(network: Network):
    for pop in network.populations:
        yield pop.init.values()
    for proj in network.projections:
        yield [*proj.wu_init.values(), *proj.ps_init.values()]
    for source in network.current_sources:
        yield source.init.values()


def _values_tag(network: Network, proj: Projection, init: Values) -> str:
    """values:synapse, or the matrix (Dense) / kernel (Conv2D) layouts."""
    n_pre, n_post = (network.population(p).size for p in (proj.pre, proj.post))
    if isinstance(proj.connectivity, Conv2D) and init.values.ndim >= 4:
        return "values:kernel"
    if isinstance(proj.connectivity, Dense) and n_pre > 1 and init.values.shape[-2:] == (
            n_pre, n_post):
        return "values:matrix"
    return "values:synapse"


def features(network: Network) -> set[str]:
    """Tags of what a network exercises, e.g. ``neuron:LIF``, ``neuron:user``,
    ``conn:Conv2D``, ``conn:FixedProbability:procedural``, ``init:Values``,
    ``wu:STDP``, ``ps:ExpCurr``, ``cs:GaussianNoise``, ``delay:axonal``,
    ``delay:dendritic``, ``input:target``, ``input:pre_target``, ``ssa:per_batch``,
    ``cu:reduce:batch``, ``cu:reduce:neurons``, ``cu:followup``, ``cu:every_step``,
    ``cu:projection``, ``batch:>1``, ``precision:<p>`` (for coverage checks)."""
    tags = {f"precision:{network.precision}", "batch:>1" if network.batch_size > 1 else "batch:1"}
    for pop in network.populations:
        tags.add("neuron:" + ("user" if _is_user(pop.model) else pop.model.name))
        if pop.spike_times is not None and len(pop.spike_times) > 1:
            tags.add("ssa:per_batch")
    for proj in network.projections:
        conn, wu, ps = proj.connectivity, proj.weight_update, proj.postsynaptic
        tags.add(f"conn:{type(conn).__name__}" + (":procedural" if conn.procedural else ""))
        tags.add("wu:" + ("user" if _is_user(wu) else wu.name))
        tags.add("ps:" + ("user" if _is_user(ps) else ps.name))
        tags |= {"delay:axonal"} if proj.delay else set()
        tags |= {"delay:dendritic"} if proj.max_dendritic_delay else set()
        tags |= {"input:target"} if proj.target != "i_syn" else set()
        tags |= {"input:pre_target"} if wu.pre_target else set()
        tags |= {_values_tag(network, proj, proj.wu_init[v.name]) for v in wu.vars
                 if isinstance(proj.wu_init[v.name], Values)}
    for inits in _inits_of(network):
        tags |= {f"init:{type(i).__name__}" for i in inits}
    tags |= {f"cs:{s.model.name}" for s in network.current_sources}
    for cu in network.custom_updates:
        tags |= {f"cu:reduce:{r.over}" for r in cu.reductions.values()}
        tags |= {"cu:every_step"} if cu.every_step else {"cu:host"}
        tags |= {"cu:projection"} if isinstance(network.nodes[cu.target], Projection) else set()
        if any(ref.split(".")[0] != cu.target for ref in cu.var_refs.values()):
            tags.add("cu:followup")
    return tags


def _fmt_init(init) -> str:
    if isinstance(init, Constant):
        return repr(init.value)
    if isinstance(init, Values):
        flat = init.values.ravel()
        more = ", ..." if flat.size > 4 else ""
        return f"Values{init.values.shape}[{', '.join(f'{x:g}' for x in flat[:4])}{more}]"
    return repr(init)


def _fmt_dict(d: dict, fmt=repr) -> str:
    return "{" + ", ".join(f"{k}={fmt(v)}" for k, v in d.items()) + "}"


def _fmt_conn(conn) -> str:
    if isinstance(conn, Sparse):
        return f"Sparse(row_ptr={conn.row_ptr.tolist()}, indices={conn.indices.tolist()})"
    return repr(conn)


def _fmt_model(model) -> list[str]:
    out = [f"  model {model.name}: params={list(model.params)} derived={dict(model.derived)} "
           f"vars={[(v.name, v.type, 'batched' if v.batched else 'shared') for v in model.vars]}"]
    for attr in ("pre_vars", "post_vars", "inputs", "pre_target"):
        if getattr(model, attr, None):
            out.append(f"    {attr}: {getattr(model, attr)!r}")
    for attr in (*model.CODE_FIELDS, *model.EXPR_FIELDS):
        text = getattr(model, attr).strip()
        if text:
            out.append(f"    {attr}: " + text.replace("\n", "\n" + " " * (6 + len(attr))))
    return out


def describe(network: Network) -> str:
    """A short human-readable listing of a network (for failure messages); the code
    of user-defined models follows the nodes."""
    lines = [f"Network(dt={network.dt}, batch_size={network.batch_size}, seed={network.seed}, "
             f"precision={network.precision})"]
    user = {}
    for pop in network.populations:
        text = (f"  population {pop.name}: {pop.model.name} x{pop.size} "
                f"params={_fmt_dict(pop.params)} init={_fmt_dict(pop.init, _fmt_init)}")
        if pop.spike_times is not None:
            text += f" spike_times={[[t.tolist() for t in b] for b in pop.spike_times]}"
        lines.append(text)
        user.update({pop.model.name: pop.model} if _is_user(pop.model) else {})
    for p in network.projections:
        lines.append(f"  projection {p.name}: {p.pre} -> {p.post} {_fmt_conn(p.connectivity)} "
                     f"{p.weight_update.name}{_fmt_dict(p.wu_params)} "
                     f"init={_fmt_dict(p.wu_init, _fmt_init)} {p.postsynaptic.name}"
                     f"{_fmt_dict(p.ps_params)} init={_fmt_dict(p.ps_init, _fmt_init)} "
                     f"delay={p.delay} max_dendritic_delay={p.max_dendritic_delay} "
                     f"target={p.target}")
        for model in (p.weight_update, p.postsynaptic):
            user.update({model.name: model} if _is_user(model) else {})
    for s in network.current_sources:
        lines.append(f"  current source {s.name}: {s.model.name}{_fmt_dict(s.params)} -> "
                     f"{s.target}")
    for cu in network.custom_updates:
        lines.append(f"  custom update {cu.name} on {cu.target} group={cu.group}"
                     f"{' every_step' if cu.every_step else ''}: refs={cu.var_refs} "
                     f"params={cu.params} reductions={_fmt_dict(cu.reductions)} "
                     f"code={cu.code!r}")
    for model in user.values():
        lines += _fmt_model(model)
    return "\n".join(lines)
