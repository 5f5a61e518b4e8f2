"""Random but valid user models in the model language, for property tests.

Generated code stays numerically sane by construction (see :func:`expressions`):
state is clipped to [-LIM, LIM], divisions are by ``1 + abs(x)`` (or, in fixed
point, by a param bounded away from 0), ``exp`` sees a clipped argument.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .. import builtins as B
from ..models import NeuronModel, PostsynapticModel, Var, WeightUpdateModel

LIM = 4.0  # user-model state is clipped to [-LIM, LIM]


def _num(lo: float, hi: float):
    """A float in [lo, hi] rounded to 2 decimals (readable when printed)."""
    return st.floats(lo, hi, allow_nan=False).map(lambda x: min(max(round(x, 2), lo), hi) + 0.0)


def _rng(draw) -> np.random.Generator:
    """A NumPy generator from a drawn seed (arrays stay out of hypothesis' buffer)."""
    return np.random.default_rng(draw(st.integers(0, 2**16 - 1)))


def _lit(x: float) -> str:
    return repr(float(x))


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
        update = f"{x} = clip({rhs.format(expr())}, -{LIM}, {LIM})"
        if draw(st.booleans()):
            other = f"{x} = clip({expr()}, -{LIM}, {LIM})"
            lines += [f"if {expr(1)} < {expr(1)}:", "    " + update, "else:", "    " + other]
        else:
            lines.append(update)
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
