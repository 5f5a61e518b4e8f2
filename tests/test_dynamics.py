"""Built-in dynamics against closed-form solutions.

* LIF with constant input I (i_offset and/or a DC current source), below
  threshold: v(t) = v_inf + (v0 - v_inf) exp(-t/tau_m), v_inf = v_rest + R I,
  R = tau_m / C, at the end of every step (t = (k+1) dt for trace index k).
  The discretisation is exact for constant input, so the only error is
  rounding: float64 within 1e-10 mV (observed 5e-13); float32 within 1e-3 mV
  (observed 1.2e-4 on numpy). The float32 budget: alpha = exp(-dt/tau_m) is
  stored with absolute error <= 3e-8, so (1 - alpha) ~ 0.01 is off by up to 3e-6
  relative, which moves v_inf by up to 2e-4 mV; each step rounds v (|v| <= 70 mV,
  half-ulp 3.8e-6) a few times, and those errors decay by alpha per step, adding
  up to ~1e-5 / (1 - alpha) ~ 1e-3 mV in the worst case. An Euler step
  (alpha = 1 - dt/tau_m) or a one-step time shift is off by > 2e-2 mV.
* LIF refractory period: after a spike at step s the neuron holds v_reset for
  exactly tau_refrac/dt steps and, driven hard, spikes again at s + tau_refrac/dt + 1.
* ExpCurr: one input of weight w arriving at step a gives the current
  i(a + k) = w exp(-k dt / tau); inputs superpose linearly.
* ExpCond: one input of weight w arriving at step a gives the conductance
  g(a + k) = w exp(-k dt / tau) and the current g (E_rev - v) with v the target's v
  at the start of the step (the end of the step before).
* STDP (sf.STDP docstring): one pre/post pair, pre at step tp, post at step tq:
  dw = a_plus d_plus^(tq-tp) (tq > tp), -a_minus d_minus^(tp-tq) (tq < tp),
  d = exp(-dt/tau); tq == tp gives a_plus - a_minus (both codes run in step
  tp+1, depression in phase 2 first, potentiation in phase 3).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import spikeforge as sf

LIF_PARAMS = dict(C=0.25, tau_m=10.0, v_rest=-65.0, v_reset=-70.0, v_thresh=1e6,
                  i_offset=0.0, tau_refrac=2.0)
TOLERANCE = {"float64": 1e-10, "float32": 1e-3}


def _lif_closed_form(v0, current, n_steps, dt, p=LIF_PARAMS):
    """(steps, n) closed-form v at the end of each step for initial values v0 (1, n)."""
    t = (np.arange(n_steps)[:, None] + 1) * dt
    v_inf = p["v_rest"] + p["tau_m"] / p["C"] * current
    return v_inf + (v0 - v_inf) * np.exp(-t / p["tau_m"])


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("drive", ["i_offset", "dc", "both"])
def test_lif_membrane_closed_form(backend, precision, drive):
    dt, n_steps = 0.1, 200
    v0 = np.array([-65.0, -70.0, -58.0, -62.5])
    i_offset, amp = {"i_offset": (0.2, 0.0), "dc": (0.0, 0.3), "both": (0.1, -0.05)}[drive]
    net = sf.NetworkBuilder(dt=dt, precision=precision)
    net.population("L", sf.LIF, len(v0), params={**LIF_PARAMS, "i_offset": i_offset},
                   init={"v": v0})
    if amp:
        net.current_source("dc", sf.DC, "L", params={"amp": amp})
    sim = net.build(backend=backend, record_vars=["L.v"])
    sim.run(steps=n_steps)
    _, v = sim.trace("L.v")
    assert v.dtype == np.dtype(precision)
    want = _lif_closed_form(v0[None, :], i_offset + amp, n_steps, dt)
    np.testing.assert_allclose(v, want, rtol=0, atol=TOLERANCE[precision])
    assert sim.spikes("L")[0].size == 0


@pytest.mark.parametrize("tau_refrac, dt", [(2.0, 0.1), (0.5, 0.1), (3.0, 0.25), (0.0, 0.1)])
def test_lif_refractory_period(backend, tau_refrac, dt):
    hold = round(tau_refrac / dt)
    params = dict(C=1.0, tau_m=20.0, v_rest=-65.0, v_reset=-70.0, v_thresh=-50.0,
                  i_offset=1e5, tau_refrac=tau_refrac)  # one step from reset crosses threshold
    net = sf.NetworkBuilder(dt=dt)
    net.population("L", sf.LIF, 1, params=params, init={"v": -65.0})
    sim = net.build(backend=backend, record_vars=["L.v"])
    n_steps = 4 * (hold + 1) + 3
    sim.run(steps=n_steps)
    times, _ = sim.spikes("L")
    steps = np.rint(times / dt).astype(int)
    np.testing.assert_array_equal(steps, np.arange(0, n_steps, hold + 1))
    _, v = sim.trace("L.v")
    for s in steps:
        held = v[s: s + hold + 1, 0]  # the spiking step ends at v_reset, then the hold
        np.testing.assert_array_equal(held, params["v_reset"])


def test_lif_refractory_ignores_input(backend):
    """While refractory, v stays at v_reset whatever the input (a strong input
    arriving at step 5 is ignored); afterwards it relaxes to v_rest."""
    dt, tau_refrac = 0.1, 1.0
    params = dict(C=1.0, tau_m=10.0, v_rest=-65.0, v_reset=-70.0, v_thresh=-50.0,
                  i_offset=0.0, tau_refrac=tau_refrac)
    net = sf.NetworkBuilder(dt=dt, precision="float64")
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[[0.0, 0.4]])
    net.population("L", sf.LIF, 1, params=params, init={"v": -51.0})
    net.connect("src", "L", sf.Dense(), w=100.0)  # arrives at step 1: L spikes at step 1
    sim = net.build(backend=backend, record_vars=["L.v"])
    n_steps = 30
    sim.run(steps=n_steps)
    times, _ = sim.spikes("L")
    np.testing.assert_array_equal(np.rint(times / dt), [1])
    _, v = sim.trace("L.v")
    hold = round(tau_refrac / dt)
    np.testing.assert_array_equal(v[1: 2 + hold, 0], -70.0)
    # after the hold: relaxation from v_reset to v_rest, starting at step 2 + hold
    k = np.arange(n_steps - 2 - hold) + 1
    want = -65.0 + (-70.0 + 65.0) * np.exp(-k * dt / params["tau_m"])
    np.testing.assert_allclose(v[2 + hold:, 0], want, rtol=0, atol=1e-10)


# float32: decay^k after k <= 55 steps carries <= k (3e-8 + 6e-8) relative error
@pytest.mark.parametrize("precision, rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("tau", [2.0, 5.0])
def test_expcurr_decay(backend, probe_model, precision, rtol, tau):
    dt, w, n_steps, spike_step = 0.1, 1.5, 60, 4
    net = sf.NetworkBuilder(dt=dt, precision=precision)
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[[spike_step * dt]])
    net.population("probe", probe_model, 1)
    net.connect("src", "probe", sf.Dense(), "proj", w=w, postsynaptic=sf.ExpCurr,
                ps_params={"tau": tau})
    sim = net.build(backend=backend, record_vars=["probe.x", "proj.i"])
    sim.run(steps=n_steps)
    _, current = sim.trace("probe.x")
    _, ps_state = sim.trace("proj.i")
    arrival = spike_step + 1
    k = np.arange(n_steps - arrival)
    np.testing.assert_array_equal(current[:arrival, 0], 0.0)
    np.testing.assert_allclose(current[arrival:, 0], w * np.exp(-k * dt / tau), rtol=rtol, atol=0)
    np.testing.assert_array_equal(ps_state, current)


def test_expcurr_superposition(backend, probe_model):
    dt, tau, n_steps = 0.1, 3.0, 50
    spikes = {0: [2.0], 1: [7.0]}  # neuron 0 at step 2 (w 1.0), neuron 1 at step 7 (w -0.5)
    net = sf.NetworkBuilder(dt=dt, precision="float64")
    net.population("src", sf.SpikeSourceArray, 2,
                   spike_times=[[s * dt for s in spikes[0]], [s * dt for s in spikes[1]]])
    net.population("probe", probe_model, 1)
    net.connect("src", "probe", sf.Dense(), w=np.array([[1.0], [-0.5]]),
                postsynaptic=sf.ExpCurr, ps_params={"tau": tau})
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.run(steps=n_steps)
    _, current = sim.trace("probe.x")
    n = np.arange(n_steps)
    want = sum(w * np.where(n >= a, np.exp(-(n - a) * dt / tau), 0.0)
               for w, a in ((1.0, 3), (-0.5, 8)))
    np.testing.assert_allclose(current[:, 0], want, rtol=1e-12, atol=1e-15)


def test_expcurr_integrated_by_if(backend):
    """An IF neuron sums the current: v(n) = w sum_{k<=n-a} decay^k (geometric series)."""
    dt, tau, w, n_steps = 0.1, 4.0, 2.0, 40
    net = sf.NetworkBuilder(dt=dt, precision="float64")
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[[0.0]])
    net.population("I", sf.IF, 1, params={"v_thresh": 1e9})
    net.connect("src", "I", sf.Dense(), w=w, postsynaptic=sf.ExpCurr, ps_params={"tau": tau})
    sim = net.build(backend=backend, record_vars=["I.v"])
    sim.run(steps=n_steps)
    decay = math.exp(-dt / tau)
    m = np.arange(n_steps)  # arrival at step 1: by the end of step n, n terms are summed
    want = np.where(m > 0, w * (1 - decay ** m) / (1 - decay), 0.0)
    np.testing.assert_allclose(sim.trace("I.v")[1][:, 0], want, rtol=1e-12, atol=0)


RAMP_PROBE = sf.NeuronModel(
    "RampProbe",
    params=("slope",),
    vars=(sf.Var("v", default=-70.0), sf.Var("x", default=0.0)),
    sim="x = i_syn\nv = v + slope",
    doc="x <- this step's input; v rises by slope per step (v at the start of step n "
        "is v0 + n slope).",
)


@pytest.mark.parametrize("precision, rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_expcond_current_uses_v_at_the_start_of_the_step(backend, precision, rtol):
    dt, tau, e_rev, w, v0, slope, n_steps, spike_step = 0.1, 3.0, -10.0, 0.02, -70.0, 0.5, 60, 4
    net = sf.NetworkBuilder(dt=dt, precision=precision)
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[[spike_step * dt]])
    net.population("probe", RAMP_PROBE, 1, params={"slope": slope}, init={"v": v0})
    net.connect("src", "probe", sf.Dense(), "proj", w=w, postsynaptic=sf.ExpCond,
                ps_params={"tau": tau, "E_rev": e_rev})
    sim = net.build(backend=backend, record_vars=["probe.x", "proj.g"])
    sim.run(steps=n_steps)
    _, current = sim.trace("probe.x")
    _, g = sim.trace("proj.g")
    arrival = spike_step + 1
    n = np.arange(arrival, n_steps)
    want_g = w * np.exp(-(n - arrival) * dt / tau)
    np.testing.assert_array_equal(current[:arrival, 0], 0.0)
    np.testing.assert_array_equal(g[:arrival, 0], 0.0)
    np.testing.assert_allclose(g[arrival:, 0], want_g, rtol=rtol, atol=0)
    np.testing.assert_allclose(current[arrival:, 0], want_g * (e_rev - (v0 + n * slope)),
                               rtol=rtol, atol=0)


def test_expcond_drives_lif_towards_the_reversal_potential(backend):
    """A LIF below threshold with a constant conductance (a spike every step, tau tiny
    so g = w each step): v(n) = alpha v(n-1) + (1 - alpha)(v_rest + R w (E_rev - v(n-1))),
    a linear recurrence with fixed point (v_rest + R w E_rev) / (1 + R w)."""
    dt, w, e_rev, n_steps = 0.1, 0.01, -80.0, 1000
    p = {**LIF_PARAMS, "v_reset": -70.0}
    net = sf.NetworkBuilder(dt=dt, precision="float64")
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[list(np.arange(n_steps) * dt)])
    net.population("L", sf.LIF, 1, params=p, init={"v": -55.0})
    net.connect("src", "L", sf.Dense(), w=w, postsynaptic=sf.ExpCond,
                ps_params={"tau": 1e-9, "E_rev": e_rev})
    sim = net.build(backend=backend, record_vars=["L.v"])
    sim.run(steps=n_steps)
    alpha, r = math.exp(-dt / p["tau_m"]), p["tau_m"] / p["C"]
    want, v = [], -55.0
    for step in range(n_steps):
        g = w if step >= 1 else 0.0  # the spike of step k arrives at step k + 1
        v = alpha * v + (1 - alpha) * (p["v_rest"] + r * g * (e_rev - v))
        want.append(v)
    got = sim.trace("L.v")[1][:, 0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    fixed_point = (p["v_rest"] + r * w * e_rev) / (1 + r * w)
    assert abs(got[-1] - fixed_point) < 1e-3 < abs(fixed_point - p["v_rest"])


def test_expcond_needs_a_target_with_v():
    net = sf.NetworkBuilder()
    net.population("S", sf.PoissonSource, 2, params={"rate": 10.0})
    with pytest.raises(sf.ModelCodeError, match="projection 'S_S' \\(onto population 'S', "
                       "model PoissonSource\\): ExpCond.current.*unknown name 'v_post'"):
        net.connect("S", "S", sf.Dense(), w=0.1, postsynaptic=sf.ExpCond,
                    ps_params={"tau": 5.0, "E_rev": 0.0})


# STDP -------------------------------------------------------------------------------

STDP_PARAMS = dict(tau_plus=16.8, tau_minus=33.7, a_plus=0.01, a_minus=0.0125,
                   w_min=0.0, w_max=1.0)


def _stdp_sim(backend, tp, tq, w0=0.5, dt=1.0, params=STDP_PARAMS, other_delay=0):
    """pre fires at step tp, post at step tq. With ``other_delay`` both also project
    to a probe with that axonal delay, so their spike histories are kept longer:
    the STDP projection must still see exactly the spikes of the last step."""
    net = sf.NetworkBuilder(dt=dt, precision="float64")
    net.population("pre", sf.SpikeSourceArray, 1, spike_times=[[tp * dt]])
    net.population("post", sf.SpikeSourceArray, 1, spike_times=[[tq * dt]])
    net.connect("pre", "post", sf.Dense(), "proj", weight_update=sf.STDP,
                wu_params=params, wu_init={"w": w0})
    if other_delay:
        net.population("sink", sf.IF, 1, params={"v_thresh": 1e9})
        for pop in ("pre", "post"):
            net.connect(pop, "sink", sf.Dense(), w=1.0, delay=other_delay)
    sim = net.build(backend=backend)
    sim.run(steps=max(tp, tq) + 5)
    return sim


def _stdp_dw(tp, tq, dt=1.0, p=STDP_PARAMS):
    if tq > tp:
        return p["a_plus"] * math.exp(-dt / p["tau_plus"]) ** (tq - tp)
    if tq < tp:
        return -p["a_minus"] * math.exp(-dt / p["tau_minus"]) ** (tp - tq)
    return p["a_plus"] - p["a_minus"]


@pytest.mark.parametrize("other_delay", [0, 3])
@pytest.mark.parametrize("tp, tq", [(5, 6), (5, 9), (3, 30), (6, 5), (12, 4), (30, 2), (8, 8)])
def test_stdp_pair(backend, tp, tq, other_delay):
    sim = _stdp_sim(backend, tp, tq, other_delay=other_delay)
    dw = sim.get("proj.w")[0] - 0.5
    np.testing.assert_allclose(dw, _stdp_dw(tp, tq), rtol=1e-12, atol=0)


def test_stdp_clipped_to_bounds(backend):
    p = dict(STDP_PARAMS, a_plus=0.3, a_minus=0.3)
    np.testing.assert_array_equal(_stdp_sim(backend, 2, 3, w0=0.9, params=p).get("proj.w"), [1.0])
    np.testing.assert_array_equal(_stdp_sim(backend, 3, 2, w0=0.1, params=p).get("proj.w"), [0.0])


def test_stdp_traces(backend):
    """Pre trace x jumps by 1 at the spike step and decays by d_plus per step."""
    tp, tq = 3, 20
    sim = _stdp_sim(backend, tp, tq)
    steps_run = max(tp, tq) + 5
    d_plus = math.exp(-1.0 / STDP_PARAMS["tau_plus"])
    d_minus = math.exp(-1.0 / STDP_PARAMS["tau_minus"])
    np.testing.assert_allclose(sim.get("proj.x"), [d_plus ** (steps_run - 1 - tp)], rtol=1e-12)
    np.testing.assert_allclose(sim.get("proj.y"), [d_minus ** (steps_run - 1 - tq)], rtol=1e-12)
