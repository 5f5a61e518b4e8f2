"""The e-prop models, written in the model language like any user model.

Network steps n = 0, 1, ... (one per ``dt``); the IR timestep order
(docs/semantics.md) fixes what each piece of code sees. A sample
``x[s, c]`` (s = 0..T-1) enters as follows (see docs/eprop.md):

* ``Clock`` neuron k spikes at step k; the projection clock -> input holds the
  sample as a batched synapse var ``x`` (index k*C + c) and delivers it, so the
  relay ``EPropInput`` holds ``z(n) = x[n-1]`` at the end of step n;
* every hidden/readout input is delivered by ``synapse_dynamics`` as
  ``deliver(w * z_pre)``: target step n sees ``z_pre`` of step n-1, so all
  state lives in neuron vars that a custom update can reset between samples.

Hidden neuron (ALIF; LIF where beta = 0), step n (phase 6)::

    v(n)   = alpha v(n-1) + I(n) - z(n-1) v_th           (reset by subtraction)
    a(n)   = rho a(n-1) + z(n-1)                          (A(n) = v_th + beta a(n))
    z(n)   = [v(n) >= A(n) and not refractory(n)]
    psi(n) = gamma/v_th max(0, 1 - |(v(n) - A(n))/v_th|), 0 while refractory
    L(n)   = i_fb(n) = sum_k B_jk err_k(n-1)              (learning signal, latched;
                                                           learning_signal='final': n >= N only)
    zbar(n) = alpha zbar(n-1) + z(n),  zk(n) = kappa zk(n-1) + z(n);  zprev/zkprev: previous values

Hidden synapse (input and recurrent), step m (phase 4)::

    g    += L_post(m-1) ebar(m-2)                            (one-step lag, docs/eprop.md)
    e     = psi(m-1) (eps_v(m-1) - beta eps_a(m-1)),  eps_v(m-1) = zprev_pre = zbar_pre(m-2)
    eps_a = psi(m-1) eps_v(m-1) + (rho - psi(m-1) beta) eps_a(m-1)
    ebar  = kappa ebar + e                                   (= ebar(m-1))
    g    += reg_post(m-1) e

Readout (leaky integrator with bias), step n::

    y(n) = kappa y(n-1) + sum_j W_kj z_j(n-1) + b_k,  bbar(n) = kappa bbar(n-1) + 1

then per step (custom updates, phase 7) pi = softmax(u), err = mask (pi - ystar),
gb += err bbar; the output synapse adds g += err_post(m-1) zkprev_pre(m-1)
(exact: dy(m-1)/dW = zk(m-2)) and feeds back ``deliver_pre(B err_post)``.
"""

from __future__ import annotations

from spikeforge.models import NeuronModel, Var, WeightUpdateModel

Clock = NeuronModel(
    "EPropClock",
    vars=(Var("c", type="int"), Var("idx", type="int", batched=False)),
    sim="c = max(c - 1, -2)",
    threshold="c == -1",
    doc="""Neuron k spikes once, at step idx (c counts down from idx; reset sets c = idx).""",
)

Relay = NeuronModel(
    "EPropInput",
    params=("tau_m",),
    derived={"alpha": "exp(-dt / tau_m)"},
    vars=(Var("z", default=0.0), Var("zbar", default=0.0), Var("zprev", default=0.0)),
    sim="z = i_syn\nzprev = zbar\nzbar = alpha * zbar + z",
    doc="""Non-spiking input relay: z(n) = input delivered this step (the sample value
    x[n-1]); zbar(n) = alpha zbar(n-1) + z(n) with the hidden layer's alpha;
    zprev = zbar(n-1).""",
)

HIDDEN_VARS = ("v", "a", "z", "psi", "L", "reg", "zsum", "nst", "zbar", "zprev", "zk", "zkprev",
               "zbarn", "zprevn")

Hidden = NeuronModel(
    "EPropALIF",
    params=("tau_m", "tau_a", "v_th", "tau_refrac", "gamma", "c_reg", "f_target", "tau_out",
            "n_last", "tau_next", "l_from"),
    derived={"alpha": "exp(-dt / tau_m)", "rho": "exp(-dt / tau_a)", "kappa": "exp(-dt / tau_out)",
             "alpha_n": "exp(-dt / tau_next)"},
    vars=(*(Var(n, default=0.0) for n in HIDDEN_VARS), Var("refrac", default=-1.0),
          Var("mask", default=0.0), Var("beta", batched=False, default=0.0)),
    inputs=("i_fb",),
    sim="""
v = alpha * v + i_syn - z * v_th
a = rho * a + z
refrac = max(refrac - dt, -dt)
zsum += z
nst += 1.0
reg = mask * c_reg * (zsum / nst - f_target)
if nst > n_last - 0.5:
    reg = 0.0
L = i_fb if nst > l_from else 0.0
psi = 0.0
if refrac < -0.5 * dt:
    psi = gamma / v_th * max(0.0, 1.0 - abs((v - v_th - beta * a) / v_th))
zprev = zbar
zbar = alpha * zbar
zkprev = zk
zk = kappa * zk
zprevn = zbarn
zbarn = alpha_n * zbarn
z = 0.0
""",
    threshold="refrac < -0.5 * dt and v >= v_th + beta * a and nst < n_last - 0.5",
    reset="z = 1.0\nrefrac = tau_refrac\nzbar += 1.0\nzk += 1.0\nzbarn += 1.0",
    doc="""e-prop ALIF (LIF where the per-neuron beta is 0); equations in the module
    docstring. refrac counts down by dt to -dt; the neuron is refractory while
    refrac > -dt/2, i.e. for round(tau_refrac/dt) steps after a spike. reg is the
    firing-rate regularisation signal c_reg mask (mean spikes per step - f_target),
    0 from step N-1 on (a synapse would read it in step N, which only the tail steps
    of learning_signal='final' reach). L latches i_fb from step l_from - 1/2 on: from
    the start (l_from = 0) for the online rule, only in the tail step N for 'final'
    (so its synapses add L S once, in step N+1). No spike in the last step of a sample
    (nst = n_last = N): nothing within the sample would see it, and it must not
    reach the next sample through the spike queue (hidden spikes travel as
    pre_spike events).""",
)

READOUT_U = {
    "per_step": "u = y",
    "sum": "u = ysum / nst",
    "max": "u = y if nst < 1.5 else max(u, y)",
}
READOUT_VARS = ("y", "bbar", "u", "ysum", "nst", "pi", "err", "ystar", "mask", "gb", "lsum", "psum")
READOUT_STEP = "y = kappa * y + i_syn + b\nbbar = kappa * bbar + 1.0\n"
FINAL_SUMS = """nst += 1.0
if nst < n_end + 0.5:
    ysum += y
    bsum += bbar
    u = ysum / nst
"""


def readout_vars(final: bool) -> tuple:
    return (*READOUT_VARS, "bsum") if final else READOUT_VARS


def readout(loss: str, final: bool = False) -> NeuronModel:
    """Leaky-integrator readout; ``u`` is the softmax input: y (per_step), the running
    mean of y (sum) or the running max of y (max). ``final`` (loss 'sum' with
    learning_signal='final'): u, ysum and bsum = sum_n bbar(n) stop after step
    n_end - 1 = N - 1, so in the two tail steps err keeps the final error."""
    sums = FINAL_SUMS if final else f"ysum += y\nnst += 1.0\n{READOUT_U[loss]}"
    return NeuronModel(
        f"EPropReadout_{loss}" + ("_final" if final else ""),
        params=("tau_out", "n_end") if final else ("tau_out",),
        derived={"kappa": "exp(-dt / tau_out)"},
        vars=(*(Var(n, default=0.0) for n in readout_vars(final)),
              *(Var(n, batched=False, default=0.0) for n in ("b", "mb", "vb", "lrb"))),
        sim=READOUT_STEP + sums,
        doc="y(n) = kappa y(n-1) + i(n) + b; bbar = dy/db; u: softmax input"
            + (" (the mean of y over the N sample steps); bsum = sum of bbar." if final else "."),
    )


OPT_VARS = (Var("w", batched=False), Var("m1", batched=False, default=0.0),
            Var("m2", batched=False, default=0.0), Var("lr", batched=False, default=0.0))


def hidden_synapse(lif_only: bool, kind: str, final: bool = False) -> WeightUpdateModel:
    """Input/recurrent/feedforward e-prop synapse (eps_a dropped when every post
    neuron is LIF). kind 'in' (from the input relay): deliver(w z_pre) every step;
    'rec'/'ff': deliver(w) per spike (the same timing: a spike of step n-1 arrives
    at step n). 'ff' (from the previous hidden layer) reads the pre trace filtered
    with this layer's alpha (zprevn).

    ``final`` (learning_signal='final'): the synapse sums its eligibility,
    S(m) = sum_{n <= m-3} ebar(n), and adds g += L_post S, where L_post is 0 but in
    the last tail step m = N+1: there L_post = B err(N-1) and S = sum_{n <= N-2} ebar(n),
    the learning-signal part of the gradient of the final-softmax loss (docs/eprop.md)."""
    continuous = kind == "in"
    deliver = "deliver(w * z_pre)\n" if continuous else ""
    trace = "zprevn_pre" if kind == "ff" else "zprev_pre"
    eps = ("e = psi_post * zprev_pre" if lif_only else
           "e = psi_post * (zprev_pre - beta_post * epsa)\n"
           "epsa = psi_post * zprev_pre + (rho - psi_post * beta_post) * epsa")
    eps = eps.replace("zprev_pre", trace)
    signal = "g += L_post * S\nS += ebar" if final else "g += L_post * ebar"
    return WeightUpdateModel(
        ("EPropSynapseLIF" if lif_only else "EPropSynapseALIF") + kind.capitalize()
        + ("Final" if final else ""),
        params=("tau_a", "tau_out"),
        derived={"rho": "exp(-dt / tau_a)", "kappa": "exp(-dt / tau_out)"},
        vars=(*OPT_VARS, Var("g", default=0.0), Var("ebar", default=0.0),
              *(() if lif_only else (Var("epsa", default=0.0),)),
              *((Var("keep", batched=False, default=1.0),) if kind == "rec" else ()),
              *((Var("S", default=0.0),) if final else ())),
        synapse_dynamics=f"{deliver}{signal}\n{eps}\n"
                         "ebar = kappa * ebar + e\ng += reg_post * e",
        pre_spike="" if continuous else "deliver(w)",
        doc="e-prop eligibility and gradient of an input/recurrent synapse (module docstring).",
    )


def output_synapse(feedback: str, final: bool = False) -> WeightUpdateModel:
    """Hidden -> readout synapse: delivers w z, accumulates the exact output gradient
    and feeds err back to the hidden neuron's i_fb through B (w itself when symmetric).
    ``final``: g = err_post Z with Z(m) = sum_{n <= m-3} zk(n) (before the update), which
    in the last tail step is the final error times sum_n dy(n)/dW."""
    b = "w" if feedback == "symmetric" else "bfb"
    extra = () if feedback == "symmetric" else (Var("bfb", batched=False),)
    grad = "g = err_post * Z\nZ += zkprev_pre" if final else "g += err_post * zkprev_pre"
    return WeightUpdateModel(
        f"EPropOutput_{feedback}" + ("_final" if final else ""),
        vars=(*OPT_VARS, Var("g", default=0.0), *extra,
              *((Var("Z", default=0.0),) if final else ())),
        pre_spike="deliver(w)",
        synapse_dynamics=f"{grad}\ndeliver_pre({b} * err_post)",
        pre_target="i_fb",
        doc="Output synapse: y += w per spike; g += err zk(m-2) ('final': g = err Z); "
            "i_fb += B err.",
    )


def relay_synapse() -> WeightUpdateModel:
    return WeightUpdateModel(
        "EPropSample",
        vars=(Var("x", default=0.0),),
        pre_spike="deliver(x)",
        doc="Clock neuron k -> input channel c: delivers the sample value x[k, c].",
    )
