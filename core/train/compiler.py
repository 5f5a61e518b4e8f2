"""Layer descriptions and their lowering to an IR network with e-prop machinery.

``lower(spec, batch, T, state)`` returns an ordinary :class:`spikeforge.Network`:

=========  ============  =====================================================
node       kind          role
=========  ============  =====================================================
clock      T neurons     neuron k spikes at step k (EPropClock)
input      C neurons     relay: z(n) = x[n-1] (EPropInput)
hidden     H neurons     e-prop ALIF/LIF (EPropALIF); layer l >= 1: hidden<l>
out        K neurons     leaky-integrator readout (EPropReadout_<loss>)
sample     clock->input  Dense, batched var x = the batch's samples (B, T*C)
in_hid     input->hidden Dense, e-prop synapse (w, g, ebar[, epsa], Adam m1 m2 lr)
rec        hidden->hid.  Dense, e-prop synapse; no self-connection: w_ii = 0 and the
                         batch-summed gradient is masked (var keep = 0 on the diagonal)
hid_out    hidden->out   Dense, output synapse with feedback deliver_pre -> i_fb
ff<l>      hidden<l-1>   Dense, e-prop synapse into layer l (l >= 1), with rec<l>
           ->hidden<l>   and hid<l>_out: every layer projects to the readout
=========  ============  =====================================================

Custom updates: every step ``sm_max``/``sm_sum``/``sm_err`` (softmax over the
readout, a max and a sum reduction over its neurons); host-called groups
``reset`` (zero all per-sample state), ``reduce`` (gradient sum over the batch)
and ``optimize`` (Adam or SGD, see optim.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from spikeforge.connectivity import Dense
from spikeforge.init import Values
from spikeforge.net import NetworkBuilder

from . import models as M
from .optim import optimizer_code

NEURONS = ("alif", "lif")
LOSSES = ("sum", "per_step", "max")
FEEDBACK = ("symmetric", "random", "adaptive")
EXTRA_STEPS = 2  # clock -> input relay -> hidden: the last sample step reaches hidden at T+1
SIGNALS = ("online", "final")
TAIL_STEPS = 2  # learning_signal='final': readout error of step N-1 -> i_fb (N) -> synapses (N+1)


@dataclass(frozen=True)
class Input:
    """C input channels; a sample is x[T, C] (spike counts or real values per step)."""

    size: int

    def __post_init__(self):
        _positive("Input", "size", self.size)


@dataclass(frozen=True)
class Recurrent:
    """A recurrent layer of e-prop ALIF (or LIF) neurons. ``beta`` scales the
    adaptation (threshold v_th + beta a); ``n_adaptive`` neurons (the first ones,
    default all for 'alif') adapt, the rest are LIF. ``gamma`` is the
    pseudo-derivative's dampening factor."""

    size: int
    neuron: str = "alif"
    tau_m: float = 20.0
    tau_a: float = 2000.0
    beta: float = 0.0174
    v_th: float = 0.6
    refractory_ms: float = 5.0
    n_adaptive: int | None = None
    gamma: float = 0.3

    def __post_init__(self):
        _positive("Recurrent", "size", self.size)
        if self.neuron not in NEURONS:
            raise ValueError(f"Recurrent: neuron must be one of {NEURONS}, got {self.neuron!r}")
        for key in ("tau_m", "tau_a", "v_th"):
            if not float(getattr(self, key)) > 0:
                raise ValueError(f"Recurrent: {key} must be > 0, got {getattr(self, key)!r}")
        if self.refractory_ms < 0 or self.beta < 0:
            raise ValueError("Recurrent: refractory_ms and beta must be >= 0")
        if self.n_adaptive is not None and not 0 <= self.n_adaptive <= self.size:
            raise ValueError(f"Recurrent: n_adaptive must be in [0, {self.size}]")

    @property
    def betas(self) -> np.ndarray:
        n = self.size if self.n_adaptive is None else self.n_adaptive
        if self.neuron == "lif":
            n = 0
        out = np.zeros(self.size)
        out[:n] = self.beta
        return out


@dataclass(frozen=True)
class Readout:
    """K non-spiking leaky-integrator readout neurons with trainable bias."""

    size: int
    tau: float = 20.0

    def __post_init__(self):
        _positive("Readout", "size", self.size)
        if not self.tau > 0:
            raise ValueError(f"Readout: tau must be > 0, got {self.tau!r}")


def _positive(owner, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {key} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class Spec:
    """Everything that fixes the network apart from batch size, T and weights;
    ``hidden`` is the tuple of Recurrent layers."""

    inp: Input
    hidden: tuple
    out: Readout
    dt: float = 1.0
    loss: str = "per_step"
    feedback: str = "symmetric"
    reg_rate_hz: float = 10.0
    reg_strength: float = 0.1
    optimizer: object = None
    precision: str = "float32"
    seed: int = 1
    signal: str = "online"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"EProp: loss must be one of {LOSSES}, got {self.loss!r}")
        if self.signal not in SIGNALS:
            raise ValueError(f"EProp: learning_signal must be one of {SIGNALS}, "
                             f"got {self.signal!r}")
        if self.signal == "final" and self.loss != "sum":
            raise ValueError("EProp: learning_signal='final' needs loss='sum' (the final "
                             "error factors out of the time sum only for the time-averaged "
                             f"readout), got loss={self.loss!r}")
        if self.feedback not in FEEDBACK:
            raise ValueError(f"EProp: feedback must be one of {FEEDBACK}, got {self.feedback!r}")
        if self.precision not in ("float32", "float64"):
            raise ValueError("EProp: training is floating point: precision must be "
                             f"'float32' or 'float64', got {self.precision!r}")
        object.__setattr__(self, "hidden", tuple(self.hidden))

    def __repr__(self) -> str:
        """The dataclass repr, without ``signal`` when it is the default: checkpoints
        compare reprs, and those written before the option existed must still load."""
        shown = [f for f in fields(self) if f.name != "signal" or self.signal != "online"]
        return f"Spec({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

    def lif_only(self, layer: int) -> bool:
        return not np.any(self.hidden[layer].betas > 0)

    @property
    def final(self) -> bool:
        """learning_signal='final': the run has TAIL_STEPS more steps (docs/eprop.md)."""
        return self.signal == "final"

    def run_steps(self, steps: int) -> int:
        """Steps of one training batch: N = T + 2, plus the tail for 'final'."""
        return steps + EXTRA_STEPS + (TAIL_STEPS if self.final else 0)


def hidden_name(layer: int) -> str:
    return "hidden" if layer == 0 else f"hidden{layer}"


@dataclass(frozen=True)
class Link:
    """One trainable projection: name, pre, post, kind ('in', 'ff', 'rec', 'out') and
    the index of the hidden layer it belongs to (its post layer, or its pre for 'out')."""

    name: str
    pre: str
    post: str
    kind: str
    layer: int


def links(spec: Spec) -> list[Link]:
    """in_hid, rec, hid_out for layer 0; ff<l>, rec<l>, hid<l>_out for layer l >= 1.
    Every hidden layer projects to the readout."""
    out = []
    for l in range(len(spec.hidden)):
        h, tag = hidden_name(l), "" if l == 0 else str(l)
        out.append(Link("in_hid", "input", h, "in", 0) if l == 0 else
                   Link(f"ff{l}", hidden_name(l - 1), h, "ff", l))
        out.append(Link(f"rec{tag}", h, h, "rec", l))
        out.append(Link(f"hid{tag}_out", h, "out", "out", l))
    return out


def parse_layers(layers) -> tuple[Input, tuple, Readout]:
    layers = list(layers)
    kinds = [type(layer).__name__ for layer in layers]
    if not layers or not isinstance(layers[0], Input) or not isinstance(layers[-1], Readout):
        raise ValueError(f"EProp: layers must be [Input, Recurrent..., Readout], got {kinds}")
    middle = layers[1:-1]
    if not all(isinstance(layer, Recurrent) for layer in middle) or not middle:
        raise ValueError(f"EProp: between Input and Readout only Recurrent layers, got {kinds}")
    return layers[0], tuple(middle), layers[-1]


def _shape(spec: Spec, link: Link) -> tuple[int, int]:
    sizes = {"input": spec.inp.size, "out": spec.out.size}
    sizes.update({hidden_name(l): layer.size for l, layer in enumerate(spec.hidden)})
    return sizes[link.pre], sizes[link.post]


def initial_state(spec: Spec) -> dict[str, np.ndarray]:
    """Trainable weights and optimiser state (dense matrices, float64), seeded:
    W ~ N(0, 1/n_pre) (readout: 1/(total hidden size)), zero recurrent diagonal, b = 0."""
    rng = np.random.default_rng(spec.seed)
    k, total = spec.out.size, sum(layer.size for layer in spec.hidden)
    state = {}
    for link in links(spec):
        n_pre, n_post = _shape(spec, link)
        fan = total if link.kind == "out" else n_pre
        state[f"{link.name}.w"] = rng.standard_normal((n_pre, n_post)) / np.sqrt(fan)
        if link.kind == "rec":
            np.fill_diagonal(state[f"{link.name}.w"], 0.0)
    state["out.b"] = np.zeros(k)
    if spec.feedback != "symmetric":
        for link in links(spec):
            if link.kind == "out":
                n_pre = _shape(spec, link)[0]
                state[f"{link.name}.bfb"] = rng.standard_normal((n_pre, k)) / np.sqrt(total)
    for key in list(state):
        node, var = key.split(".")
        if var == "w":
            state[f"{node}.m1"] = np.zeros_like(state[key])
            state[f"{node}.m2"] = np.zeros_like(state[key])
    state["out.mb"], state["out.vb"] = np.zeros(k), np.zeros(k)
    return state


def _is_rec(key: str) -> bool:
    return key.split(".")[0].startswith("rec")


def to_synapses(key: str, matrix: np.ndarray) -> np.ndarray:
    """Dense (n_pre, n_post) matrix -> the projection's stored order (row-major);
    a recurrent matrix's diagonal is stored as 0 (there is no self-connection)."""
    return _no_self(key, np.array(matrix, dtype=np.float64)).reshape(-1)


def from_synapses(key: str, values: np.ndarray, shape) -> np.ndarray:
    """Inverse of :func:`to_synapses`: the recurrent diagonal (weight 0, gradient
    masked in ``reduce``) reads as 0 in every var, per-sample gradients included."""
    return _no_self(key, np.array(values, dtype=np.float64).reshape(shape))


def _no_self(key: str, matrix: np.ndarray) -> np.ndarray:
    if _is_rec(key):
        np.fill_diagonal(matrix, 0.0)
    return matrix


def lower(spec: Spec, batch: int, steps: int, state: dict) -> NetworkBuilder:
    """The training network for ``batch`` samples of ``steps`` input steps."""
    net = NetworkBuilder(dt=spec.dt, batch_size=batch, seed=spec.seed, precision=spec.precision)
    ids = np.arange(steps)
    net.population("clock", M.Clock, steps, init={"c": Values(ids), "idx": Values(ids)})
    net.population("input", M.Relay, spec.inp.size, params={"tau_m": spec.hidden[0].tau_m})
    for l, layer in enumerate(spec.hidden):
        net.population(hidden_name(l), M.Hidden, layer.size, params=hidden_params(spec, l, steps),
                       init={"refrac": -spec.dt, "beta": Values(layer.betas)})
    readout_params = {"tau_out": spec.out.tau}
    if spec.final:
        readout_params["n_end"] = float(steps + EXTRA_STEPS)
    net.population("out", M.readout(spec.loss, spec.final), spec.out.size, params=readout_params,
                   init={"b": Values(state["out.b"]), "mb": Values(state["out.mb"]),
                         "vb": Values(state["out.vb"])})
    net.connect("clock", "input", Dense(), "sample", weight_update=M.relay_synapse())
    for link in links(spec):
        layer = spec.hidden[link.layer]
        conn = Dense()
        init = _synapse_init(state, link.name)
        if link.kind == "rec":  # Dense with w_ii = 0 and a masked gradient (_reduce...)
            init["keep"] = Values(1.0 - np.eye(layer.size).reshape(-1))
        if link.kind == "out":
            net.connect(link.pre, link.post, conn, link.name, wu_init=init,
                        weight_update=M.output_synapse(spec.feedback, spec.final))
            continue
        net.connect(link.pre, link.post, conn, link.name, wu_init=init,
                    weight_update=M.hidden_synapse(spec.lif_only(link.layer), link.kind,
                                                   spec.final),
                    wu_params={"tau_a": layer.tau_a, "tau_out": spec.out.tau})
    _softmax(net, spec.final)
    _reset(net, spec)
    _reduce_and_optimize(net, spec)
    return net


def hidden_params(spec: Spec, l: int, steps: int) -> dict:
    hid = spec.hidden[l]
    tau_next = spec.hidden[l + 1].tau_m if l + 1 < len(spec.hidden) else hid.tau_m
    return {"n_last": float(steps + EXTRA_STEPS), "tau_m": hid.tau_m, "tau_a": hid.tau_a,
            "v_th": hid.v_th, "tau_refrac": hid.refractory_ms, "gamma": hid.gamma,
            "c_reg": spec.reg_strength, "f_target": spec.reg_rate_hz * spec.dt / 1000.0,
            "tau_out": spec.out.tau, "tau_next": tau_next,
            "l_from": float(steps + EXTRA_STEPS) + 0.5 if spec.final else 0.0}


def _synapse_init(state: dict, proj: str) -> dict:
    out = {}
    for key, value in state.items():
        node, var = key.split(".")
        if node == proj:
            out[var] = Values(to_synapses(key, value))
    return out


def _softmax(net: NetworkBuilder, final: bool) -> None:
    """pi = softmax(u) over the readout, err = mask (pi - ystar), bias gradient, loss.
    ``final``: gb = err bsum (overwritten; the final error times sum_n dy(n)/db)."""
    net.custom_update("sm_max", "out", "ymax = u", var_refs={"u": "out.u"},
                      reductions={"ymax": ("max", "neurons")}, every_step=True)
    net.custom_update("sm_sum", "out", "s = exp(u - ymax)",
                      var_refs={"u": "out.u", "ymax": "sm_max.ymax"},
                      reductions={"s": ("sum", "neurons")}, every_step=True)
    bias = ("gb = err * bsum", "bsum") if final else ("gb += err * bbar", "bbar")
    refs = {n: f"out.{n}" for n in ("u", "y", "pi", "err", "ystar", "mask", "gb", bias[1], "lsum",
                                    "psum", "nst")}
    refs.update(ymax="sm_max.ymax", s="sm_sum.s")
    net.custom_update("sm_err", "out", f"""
pi = exp(u - ymax) / s
err = mask * (pi - ystar)
{bias[0]}
lsum += ystar * (log(s) - u + ymax)
psum += pi
""", var_refs=refs, every_step=True)


def _reset(net: NetworkBuilder, spec: Spec) -> None:
    """Host group 'reset': every per-sample state var back to its start value."""
    readout = tuple(v for v in M.readout_vars(spec.final) if v not in ("ystar", "mask"))
    per_node = {
        "clock": ("c = idx", ("c", "idx")),
        "input": ("z = 0.0\nzbar = 0.0\nzprev = 0.0", ("z", "zbar", "zprev")),
        "out": ("\n".join(f"{v} = 0.0" for v in readout), readout),
    }
    for l in range(len(spec.hidden)):
        per_node[hidden_name(l)] = ("\n".join(f"{v} = 0.0" for v in M.HIDDEN_VARS) +
                                    "\nrefrac = -dt", (*M.HIDDEN_VARS, "refrac"))
    for link in links(spec):
        names = ("g",) if link.kind == "out" else (
            ("g", "ebar") if spec.lif_only(link.layer) else ("g", "ebar", "epsa"))
        if spec.final:
            names += ("Z",) if link.kind == "out" else ("S",)
        per_node[link.name] = ("\n".join(f"{v} = 0.0" for v in names), names)
    for node, (code, names) in per_node.items():
        net.custom_update(f"reset_{node}", node, code, group="reset",
                          var_refs={n: f"{node}.{n}" for n in names})


def _reduce_and_optimize(net: NetworkBuilder, spec: Spec) -> None:
    for link in links(spec):
        # recurrent: keep = 0 on the diagonal, so a self-connection's summed gradient,
        # its optimiser moments and its weight stay exactly 0 (keep * g = g elsewhere)
        code, refs = ("gsum = keep * g", {"keep": f"{link.name}.keep"}) \
            if link.kind == "rec" else ("gsum = g", {})
        net.custom_update(f"reduce_{link.name}", link.name, code, group="reduce",
                          var_refs={"g": f"{link.name}.g", **refs},
                          reductions={"gsum": ("sum", "batch")})
    net.custom_update("reduce_out", "out", "gsum = gb", group="reduce",
                      var_refs={"gb": "out.gb"}, reductions={"gsum": ("sum", "batch")})
    opt = spec.optimizer
    for link in links(spec):
        extra = ("bfb",) if link.kind == "out" and spec.feedback == "adaptive" else ()
        code = optimizer_code(opt, "w", extra)
        refs = {n: f"{link.name}.{n}" for n in ("w", "m1", "m2", "lr", *extra)}
        refs["gsum"] = f"reduce_{link.name}.gsum"
        net.custom_update(f"opt_{link.name}", link.name, code, group="optimize", var_refs=refs,
                          params=opt.params())
    code = optimizer_code(opt, "b", (), m1="mb", m2="vb", lr="lrb", decay=False)
    refs = {"b": "out.b", "mb": "out.mb", "vb": "out.vb", "lrb": "out.lrb",
            "gsum": "reduce_out.gsum"}
    net.custom_update("opt_out", "out", code, group="optimize", var_refs=refs,
                      params=opt.params())
