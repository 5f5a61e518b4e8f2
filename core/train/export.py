"""Export a trained e-prop model as an ordinary inference network.

The inference network has the training network's forward dynamics exactly
(same step timing, same neuron equations; see docs/eprop.md) without any
learning machinery:

* ``clock`` (T neurons, neuron k spikes at step k) -> ``input`` by the
  projection ``sample`` (batched synapse var ``x`` = the sample, index k*C + c);
* ``input`` is a *spiking* relay: z(n) = i_syn(n) = x[n-1], and it emits one
  event whenever z != 0; input -> hidden delivers ``w * z_pre`` per event
  (``pre_spike``), so a step costs one weight row per non-zero input channel
  instead of the dense C x H product (zero channels added exactly 0);
* hidden -> hidden (``rec``, Dense with a zero diagonal: every row is one
  contiguous vector add) and hidden -> out by spikes (``pre_spike:
  deliver(w)``), which delivers the spikes of step n-1 at step n, as the
  training network does; a hidden neuron never spikes in the last step
  (n = T+1), as in training, so no event is left in a spike queue after a sample;
* host custom-update group ``reset``: every per-sample var back to its start
  value (clock counters, v, a, z, refrac, readout sums) in one C call per node,
  cheaper than ``sim.reset()``, which re-initialises every buffer.

Weights are baked in as initial values, so ``sim.reset()`` between samples
also restores a clean state with the trained weights. :class:`InferenceModel`
(``EProp.inference()``) wraps a built network for per-sample classification.
"""

from __future__ import annotations

import numpy as np
from spikeforge.connectivity import Dense
from spikeforge.init import Values
from spikeforge.models import NeuronModel, Var, WeightUpdateModel
from spikeforge.net import NetworkBuilder

from . import models as M
from .compiler import EXTRA_STEPS, hidden_name, links


def hidden_inference(n_steps: int) -> NeuronModel:
    """The forward part of EPropALIF for samples of ``n_steps`` = T + 2 steps; ``n``
    counts the steps of the sample and no spike is emitted in its last step."""
    return NeuronModel(
        "EPropALIFInference",
        params=("tau_m", "tau_a", "v_th", "tau_refrac"),
        derived={"alpha": "exp(-dt / tau_m)", "rho": "exp(-dt / tau_a)"},
        vars=(Var("v", default=0.0), Var("a", default=0.0), Var("z", default=0.0),
              Var("refrac", default=-1.0), Var("n", type="int", default=0),
              Var("beta", batched=False, default=0.0)),
        sim="v = alpha * v + i_syn - z * v_th\na = rho * a + z\n"
            "refrac = max(refrac - dt, -dt)\nz = 0.0\nn = n + 1",
        threshold=f"refrac < -0.5 * dt and v >= v_th + beta * a and n < {int(n_steps)}",
        reset="z = 1.0\nrefrac = tau_refrac",
        doc="The forward part of EPropALIF (spikeforge.train.models.Hidden); no spike in "
            "the sample's last step.",
    )


InputEvents = NeuronModel(
    "EPropInputEvents",
    vars=(Var("z", default=0.0),),
    sim="z = i_syn",
    threshold="z != 0.0",
    doc="Input relay z(n) = x[n-1]; one event per step where z != 0 (its value is "
        "read by the outgoing synapses as z_pre).",
)

ReadoutInference = NeuronModel(
    "EPropReadoutInference",
    params=("tau_out",),
    derived={"kappa": "exp(-dt / tau_out)"},
    vars=(Var("y", default=0.0), Var("ysum", default=0.0), Var("ymax", default=0.0),
          Var("nst", default=0.0), Var("b", batched=False, default=0.0)),
    sim="y = kappa * y + i_syn + b\nysum += y\nnst += 1.0\nymax = y if nst < 1.5 else max(ymax, y)",
    doc="y(n) = kappa y(n-1) + i + b, with its running sum and max over time.",
)

Static = WeightUpdateModel("EPropStatic", vars=(Var("w", batched=False),),
                           pre_spike="deliver(w)", doc="deliver(w) per spike.")
StaticValued = WeightUpdateModel("EPropStaticValued", vars=(Var("w", batched=False),),
                                 pre_spike="deliver(w * z_pre)",
                                 doc="Per input event: deliver(w z_pre) (real-valued relay).")

RESET = {  # node kind -> (custom update code, vars it writes)
    "clock": ("c = idx", ("c", "idx")),
    "input": ("z = 0.0", ("z",)),
    "hidden": ("v = 0.0\na = 0.0\nz = 0.0\nrefrac = -dt\nn = 0", ("v", "a", "z", "refrac", "n")),
    "out": ("y = 0.0\nysum = 0.0\nymax = 0.0\nnst = 0.0", ("y", "ysum", "ymax", "nst")),
}


def export(model, steps: int | None = None, batch_size: int = 1, precision=None):
    """(Network, weights) for input sequences of ``steps`` steps (default: the last
    trained length). Feed a batch x [batch, T, C] with :func:`run_exported` or use
    :class:`InferenceModel`. ``precision`` defaults to the training precision; a
    ``Fixed(bits, frac)`` format gives a fixed-point inference network (e.g. for
    the fpga backend)."""
    steps = getattr(model, "_last_steps", None) if steps is None else steps
    if steps is None:
        raise ValueError("export: give steps= (the input length T); the model was not trained yet")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"export: steps must be a positive int, got {steps!r}")
    weights = model.weights()
    spec = model.spec
    net = NetworkBuilder(dt=spec.dt, batch_size=batch_size, seed=spec.seed,
                         precision=precision or spec.precision)
    ids = np.arange(steps)
    net.population("clock", M.Clock, steps, init={"c": Values(ids), "idx": Values(ids)})
    net.population("input", InputEvents, spec.inp.size)
    hidden = hidden_inference(steps + EXTRA_STEPS)
    for l, hid in enumerate(spec.hidden):
        net.population(hidden_name(l), hidden,  hid.size,
                       params={"tau_m": hid.tau_m, "tau_a": hid.tau_a, "v_th": hid.v_th,
                               "tau_refrac": hid.refractory_ms},
                       init={"refrac": -spec.dt, "beta": Values(hid.betas)})
    net.population("out", ReadoutInference, spec.out.size, params={"tau_out": spec.out.tau},
                   init={"b": Values(weights["out.b"])})
    net.connect("clock", "input", Dense(), "sample", weight_update=M.relay_synapse())
    for link in links(spec):
        w = np.array(weights[f"{link.name}.w"], dtype=np.float64)
        if link.kind == "rec":
            np.fill_diagonal(w, 0.0)  # Dense, zero diagonal = no self-connection
        net.connect(link.pre, link.post, Dense(), link.name,
                    weight_update=StaticValued if link.kind == "in" else Static,
                    wu_init={"w": Values(w.reshape(-1))})
    _reset_group(net, spec)
    return net.network(), weights


def _reset_group(net: NetworkBuilder, spec) -> None:
    nodes = {"clock": "clock", "input": "input", "out": "out"}
    nodes.update({hidden_name(l): "hidden" for l in range(len(spec.hidden))})
    for node, kind in nodes.items():
        code, names = RESET[kind]
        net.custom_update(f"reset_{node}", node, code, group="reset",
                          var_refs={n: f"{node}.{n}" for n in names})


def _check_x(x, batch: int, steps: int | None, channels: int | None, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or len(x) != batch:
        raise ValueError(f"{what}: x must be [batch={batch}, T, C], got {x.shape}")
    if (steps is not None and x.shape[1] != steps) or (channels is not None and x.shape[2] != channels):
        raise ValueError(f"{what}: x must be [batch, T={steps}, C={channels}] for the "
                         f"exported network (projection 'sample'), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: x (sample.x) must be finite")
    return x


def _softmax(u: np.ndarray) -> np.ndarray:
    u = np.atleast_2d(u)
    e = np.exp(u - u.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def run_exported(sim, x: np.ndarray, loss: str = "sum") -> np.ndarray:
    """Class probabilities of a batch x [batch, T, C] on a built exported network
    (resets the simulation first): softmax of the time-averaged readout ('sum'),
    of its max over time ('max'); 'per_step' uses the time-averaged readout too."""
    batch = sim.network.batch_size
    x = _check_x(x, batch, None, None, "run_exported").astype(np.float64)
    sim.reset()
    sim.set("sample.x", x.reshape(batch, -1))
    sim.run(steps=x.shape[1] + EXTRA_STEPS, progress=False)
    u = sim.get("out.ymax") if loss == "max" else sim.get("out.ysum") / sim.get("out.nst")
    return _softmax(u)
