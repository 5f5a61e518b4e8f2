"""Export a trained e-prop model as an ordinary inference network.

The inference network has the training network's forward dynamics exactly
(same step timing, same neuron equations; see docs/eprop.md) without any
learning machinery: clock -> input relay (the sample, written into
``sample.x``), input -> hidden by ``synapse_dynamics`` (``deliver(w z_pre)``),
hidden -> hidden and hidden -> out by spikes (``pre_spike: deliver(w)``, which
delivers the spikes of step n-1 at step n, as the training network does).
Weights are baked in as initial values, so ``sim.reset()`` between samples
restores a clean state with the trained weights.
"""

from __future__ import annotations

import numpy as np
from spikeforge.connectivity import Dense
from spikeforge.init import Values
from spikeforge.models import NeuronModel, Var, WeightUpdateModel
from spikeforge.net import NetworkBuilder

from . import models as M
from .compiler import EXTRA_STEPS, hidden_name, links, rec_connectivity, to_synapses

HiddenInference = NeuronModel(
    "EPropALIFInference",
    params=("tau_m", "tau_a", "v_th", "tau_refrac"),
    derived={"alpha": "exp(-dt / tau_m)", "rho": "exp(-dt / tau_a)"},
    vars=(Var("v", default=0.0), Var("a", default=0.0), Var("z", default=0.0),
          Var("refrac", default=-1.0), Var("beta", batched=False, default=0.0)),
    sim="v = alpha * v + i_syn - z * v_th\na = rho * a + z\n"
        "refrac = max(refrac - dt, -dt)\nz = 0.0",
    threshold="refrac < -0.5 * dt and v >= v_th + beta * a",
    reset="z = 1.0\nrefrac = tau_refrac",
    doc="The forward part of EPropALIF (spikeforge.train.models.Hidden).",
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
StaticDense = WeightUpdateModel("EPropStaticContinuous", vars=(Var("w", batched=False),),
                                synapse_dynamics="deliver(w * z_pre)",
                                doc="Every step: deliver(w z_pre) (real-valued input relay).")


def export(model, steps: int | None = None, batch_size: int = 1, precision=None):
    """(Network, weights) for input sequences of ``steps`` steps (default: the last
    trained length). Feed a batch x [batch, T, C] with :func:`run_exported`.
    ``precision`` defaults to the training precision; a ``Fixed(bits, frac)``
    format gives a fixed-point inference network (e.g. for the fpga backend)."""
    steps = steps or getattr(model, "_last_steps", None)
    if steps is None:
        raise ValueError("export: give steps= (the input length T); the model was not trained yet")
    weights = model.weights()
    spec = model.spec
    net = NetworkBuilder(dt=spec.dt, batch_size=batch_size, seed=spec.seed,
                         precision=precision or spec.precision)
    ids = np.arange(steps)
    net.population("clock", M.Clock, steps, init={"c": Values(ids), "idx": Values(ids)})
    net.population("input", M.Relay, spec.inp.size, params={"tau_m": spec.hidden[0].tau_m})
    for l, hid in enumerate(spec.hidden):
        net.population(hidden_name(l), HiddenInference, hid.size,
                       params={"tau_m": hid.tau_m, "tau_a": hid.tau_a, "v_th": hid.v_th,
                               "tau_refrac": hid.refractory_ms},
                       init={"refrac": -spec.dt, "beta": Values(hid.betas)})
    net.population("out", ReadoutInference, spec.out.size, params={"tau_out": spec.out.tau},
                   init={"b": Values(weights["out.b"])})
    net.connect("clock", "input", Dense(), "sample", weight_update=M.relay_synapse())
    for link in links(spec):
        conn = rec_connectivity(spec.hidden[link.layer].size) if link.kind == "rec" else Dense()
        key = f"{link.name}.w"
        net.connect(link.pre, link.post, conn, link.name,
                    weight_update=StaticDense if link.kind == "in" else Static,
                    wu_init={"w": Values(to_synapses(key, weights[key]))})
    return net.network(), weights


def run_exported(sim, x: np.ndarray, loss: str = "sum") -> np.ndarray:
    """Class probabilities of a batch x [batch, T, C] on a built exported network
    (resets the simulation first): softmax of the time-averaged readout ('sum'),
    of its max over time ('max'); 'per_step' uses the time-averaged readout too."""
    batch = sim.network.batch_size
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or len(x) != batch:
        raise ValueError(f"run_exported: x must be [batch={batch}, T, C], got {x.shape}")
    sim.reset()
    sim.set("sample.x", x.reshape(batch, -1))
    sim.run(steps=x.shape[1] + EXTRA_STEPS, progress=False)
    u = sim.get("out.ymax") if loss == "max" else sim.get("out.ysum") / sim.get("out.nst")
    u = np.atleast_2d(u)
    e = np.exp(u - u.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
