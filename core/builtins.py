"""Built-in models, written in the model language like any user model.

Units (GeNN's convention): time ms, voltage mV, current nA, capacitance nF,
resistance MOhm (tau/C), rates Hz. Each docstring gives the discretised update
for one step of length dt; ``i`` is the summed input current ``i_syn``.
"""

from __future__ import annotations

from .models import CurrentSourceModel, NeuronModel, PostsynapticModel, Var, WeightUpdateModel

LIF = NeuronModel(
    "LIF",
    params=("C", "tau_m", "v_rest", "v_reset", "v_thresh", "i_offset", "tau_refrac"),
    derived={"alpha": "exp(-dt / tau_m)", "R": "tau_m / C"},
    vars=(Var("v"), Var("refrac_time", default=0.0)),
    sim="""
if refrac_time > 0.5 * dt:
    refrac_time -= dt
else:
    v = alpha * v + (1 - alpha) * (v_rest + R * (i_syn + i_offset))
""",
    threshold="refrac_time <= 0.5 * dt and v >= v_thresh",
    reset="v = v_reset\nrefrac_time = tau_refrac",
    doc="""Leaky integrate-and-fire, exact integration for input constant over a step:

    v <- alpha v + (1 - alpha)(v_rest + R (i + i_offset)),  alpha = exp(-dt/tau_m), R = tau_m/C
    spike when v >= v_thresh (not refractory); reset v <- v_reset and hold for
    tau_refrac (the countdown refrac_time decreases by dt per step; a neuron
    is refractory while refrac_time > dt/2, so tau_refrac/dt steps exactly).""",
)

ALIF = NeuronModel(
    "ALIF",
    params=("tau_m", "tau_a", "beta", "v_thresh", "tau_refrac"),
    derived={"alpha": "exp(-dt / tau_m)", "rho": "exp(-dt / tau_a)"},
    vars=(Var("v", default=0.0), Var("a", default=0.0), Var("refrac_time", default=0.0)),
    sim="""
v = alpha * v + i_syn
a = rho * a
if refrac_time > 0.5 * dt:
    refrac_time -= dt
""",
    threshold="refrac_time <= 0.5 * dt and v >= v_thresh + beta * a",
    reset="v -= v_thresh\na += 1\nrefrac_time = tau_refrac",
    doc="""Adaptive LIF of LSNNs (Bellec et al. 2018/2020), relative reset:

    v <- alpha v + i,  a <- rho a,  alpha = exp(-dt/tau_m), rho = exp(-dt/tau_a)
    spike when v >= v_thresh + beta a (not refractory); reset v <- v - v_thresh,
    a <- a + 1; refractory for tau_refrac as in LIF. beta = 0 gives a LIF with
    relative reset.""",
)

LeakyIntegrator = NeuronModel(
    "LeakyIntegrator",
    params=("tau_out",),
    derived={"kappa": "exp(-dt / tau_out)"},
    vars=(Var("v", default=0.0), Var("b", batched=False, default=0.0)),
    sim="v = kappa * v + i_syn + b",
    doc="""Non-spiking leaky-integrator readout with a trainable bias b (shared
    across the batch):  v <- kappa v + i + b,  kappa = exp(-dt/tau_out).""",
)

IF = NeuronModel(
    "IF",
    params=("v_thresh",),
    vars=(Var("v", default=0.0),),
    sim="v += i_syn",
    threshold="v >= v_thresh",
    reset="v -= v_thresh",
    doc="""Non-leaky integrate-and-fire for ANN->SNN conversion:
    v <- v + i; spike when v >= v_thresh; reset by subtraction v <- v - v_thresh.""",
)

Izhikevich = NeuronModel(
    "Izhikevich",
    params=("a", "b", "c", "d"),
    vars=(Var("v", default=-65.0), Var("u", default=-13.0)),
    sim="""
v += 0.5 * dt * (0.04 * v * v + 5 * v + 140 - u + i_syn)
v += 0.5 * dt * (0.04 * v * v + 5 * v + 140 - u + i_syn)
u += a * (b * v - u) * dt
""",
    threshold="v >= 30",
    reset="v = c\nu += d",
    doc="""Izhikevich (2003), v in mV, two half steps for v as in GeNN/Izhikevich's code:
    v <- v + dt/2 (0.04 v^2 + 5 v + 140 - u + i)  (twice),  u <- u + dt a (b v - u);
    spike when v >= 30; reset v <- c, u <- u + d.""",
)

PoissonSource = NeuronModel(
    "PoissonSource",
    params=("rate",),
    derived={"lam": "rate * dt / 1000"},
    events="poisson(lam)",
    doc="""Poisson spike source, rate in Hz: emits k ~ Poisson(rate dt / 1000)
    events each step (several per step are possible; each runs the
    projections' pre_spike code once).""",
)

SpikeSourceArray = NeuronModel(
    "SpikeSourceArray",
    native="spike_source_array",
    doc="""Emits the spikes given per neuron as times in ms (population's
    ``spike_times``); a time t fires at step round(t/dt).""",
)

Delta = PostsynapticModel(
    "Delta",
    current="inp",
    linear=True,
    doc="Delta synapse: this step's delivered input is this step's current, i = inp.",
)

ExpCurr = PostsynapticModel(
    "ExpCurr",
    params=("tau",),
    derived={"decay": "exp(-dt / tau)"},
    vars=(Var("i", default=0.0),),
    code="i = i * decay + inp",
    current="i",
    linear=True,
    doc="""Exponential current: i <- i exp(-dt/tau) + inp, current i (the current
    jumps by the delivered weight, NEST's convention). GeNN's ExpCurr scales the
    input by (tau/dt)(1 - exp(-dt/tau)); multiply weights by that to match it.""",
)

ExpCond = PostsynapticModel(
    "ExpCond",
    params=("tau", "E_rev"),
    derived={"decay": "exp(-dt / tau)"},
    vars=(Var("g", default=0.0),),
    code="g = g * decay + inp",
    current="g * (E_rev - v_post)",
    linear=True,
    doc="""Exponential conductance: g <- g exp(-dt/tau) + inp, current g (E_rev - v)
    with v the target neuron's ``v`` at the start of the step (GeNN's ExpCond; the
    neuron integrates this current as constant over the step, like any input).
    Units: g in uS, E_rev and v in mV, current in nA. The target's model needs a
    var ``v``.""",
)

StaticPulse = WeightUpdateModel(
    "StaticPulse",
    vars=(Var("w", batched=False),),
    pre_spike="deliver(w)",
    doc="Static synapse: each presynaptic event adds w to the target's input.",
)

StaticPulseDendriticDelay = WeightUpdateModel(
    "StaticPulseDendriticDelay",
    vars=(Var("w", batched=False), Var("d", type="int", batched=False, default=0)),
    pre_spike="deliver_delayed(w, d)",
    doc="Static synapse with a per-synapse dendritic delay d (steps): adds w to the "
    "target's input d steps after the spike arrives.",
)

STDP = WeightUpdateModel(
    "STDP",
    params=("tau_plus", "tau_minus", "a_plus", "a_minus", "w_min", "w_max"),
    derived={"d_plus": "exp(-dt / tau_plus)", "d_minus": "exp(-dt / tau_minus)"},
    vars=(Var("w"),),
    pre_vars=(Var("x", default=0.0),),
    post_vars=(Var("y", default=0.0),),
    pre_spike="deliver(w)\nw = clip(w - a_minus * y, w_min, w_max)",
    post_spike="w = clip(w + a_plus * x, w_min, w_max)",
    pre_dynamics="x = x * d_plus",
    post_dynamics="y = y * d_minus",
    pre_spike_trace="x += 1",
    post_spike_trace="y += 1",
    doc="""Pair-based additive STDP with traces. Traces decay every step
    (x <- x d_plus, y <- y d_minus, d = exp(-dt/tau)) and jump by 1 on a spike.
    A presynaptic spike arriving at step n delivers w, then w <- clip(w - a_minus y);
    a postsynaptic spike of step n-1 runs w <- clip(w + a_plus x) in step n.
    For one pair with no delay, pre at step tp and post at step tq:
    dw = a_plus d_plus^(tq-tp) if tq > tp, -a_minus d_minus^(tp-tq) if tq < tp.
    w is batched: each batch element learns its own weights.""",
)

DC = CurrentSourceModel(
    "DC", params=("amp",), current="amp", doc="Constant current amp (nA) into i_syn."
)

GaussianNoise = CurrentSourceModel(
    "GaussianNoise",
    params=("mean", "sd"),
    current="mean + sd * normal()",
    doc="Current mean + sd N(0,1), drawn independently per neuron and step.",
)

NEURON_MODELS = {m.name: m for m in (LIF, ALIF, LeakyIntegrator, IF, Izhikevich, PoissonSource,
                                      SpikeSourceArray)}
POSTSYNAPTIC_MODELS = {m.name: m for m in (Delta, ExpCurr, ExpCond)}
WEIGHT_UPDATE_MODELS = {m.name: m for m in (StaticPulse, StaticPulseDendriticDelay, STDP)}
CURRENT_SOURCE_MODELS = {m.name: m for m in (DC, GaussianNoise)}
