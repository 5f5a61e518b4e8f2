"""The cortical microcircuit of Potjans & Diesmann (2014) as a spikeforge network.

Facts (numbers) are copied from the parameter sheet ``shared/data/pd14.md``,
which collects them from the published model as parameterised in NEST's
example ``pynest/examples/Potjans_2014`` (network_params.py, sim_params.py,
stimulus_params.py); the code is our own. See docs/microcircuit.md.

Model, per neuron (NEST's ``iaf_psc_exp``, exact integration over a step h = dt;
voltages in mV, currents in pA, capacitance in pF, time in ms)::

    I    <- P11 I + (weights delivered this step) [+ w_ext Poisson(8 Hz K_ext h)]
    V    <- E_L + P22 (V - E_L) + P21 I + P20 I_e          (unless refractory)
    spike when V >= V_th; then V <- V_reset, refractory for t_ref (20 steps)
    P11 = exp(-h/tau_syn), P22 = exp(-h/tau_m), P20 = tau_m/C_m (1 - P22),
    P21 = tau_m tau_syn / (C_m (tau_syn - tau_m)) (P11 - P22)

All synapses of a neuron share tau_syn, so the summed current I is kept in the
neuron (as iaf_psc_exp does) and projections use the Delta postsynaptic model
(a weight delivered at step n enters I at step n). Each projection is
FixedTotalNumber (multapses and autapses allowed) with StaticPulseDendriticDelay
synapses: weight w ~ Normal(mean, 0.1 |mean|) redrawn while its sign is wrong;
delay d (steps) = floor(D/dt + 1/2) with D ~ Normal(1.5 ms E / 0.75 ms I, 50%)
redrawn while D < dt/2 (drawn on the host: see :func:`delay_steps`). A spike at
step n reaches the target's I at step n + 1 + d, the V update of the step after
NEST adds it: NEST's timing for a delay of d steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .connectivity import FixedTotalNumber
from .builtins import Delta, StaticPulseDendriticDelay
from .init import Normal, NormalClipped
from .models import NeuronModel, Var
from .net import Network, NetworkBuilder
from .philox import stream_id

# --- facts from the parameter sheet (Potjans & Diesmann 2014; NEST example) -------------
POPULATIONS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")
FULL_NUM_NEURONS = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])
K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])
V0_MEAN = np.array([-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43])
V0_SD = np.array([5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48])
#: NEST reference mean rates (spikes/s) of the full-scale model.
FULL_MEAN_RATES = np.array([0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829])
#: NEST example's shipped reference run: N-scale = K-scale = 0.1, Poisson drive.
REFERENCE_RATES_0_1 = np.array([0.402, 2.017, 3.880, 4.958, 6.575, 7.726, 0.831, 6.986])
#: connection probabilities C[target, source]
CONN_PROBS = np.array([
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443],
])
NEURON = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_th": -50.0, "V_reset": -65.0,
          "t_ref": 2.0, "tau_syn": 0.5}
PSP_EXC_MEAN = 0.15  # mV, peak of the excitatory PSP
G = -4.0  # relative inhibitory strength
WEIGHT_REL_SD = 0.1
L4E_TO_L23E_FACTOR = 2.0
DELAY_MEAN = {"E": 1.5, "I": 0.75}  # ms, by source type
DELAY_REL_SD = 0.5
BG_RATE = 8.0  # spikes/s per external source
DELAY_POISSON = 1.5  # ms (irrelevant for a stationary Poisson drive; not modelled)
#: bound (in standard deviations) above which a delay would be redrawn; sets the input
#: ring length; P(z > 8) ~ 6e-16, so no synapse of the full model is ever affected.
DELAY_SD_BOUND = 8.0


@dataclass(frozen=True)
class Stimulus:
    """The NEST example's optional external stimuli (stimulus_params.py), both off there
    by default. Thalamic input: ``n_thal`` neurons (not scaled with N) each firing a
    Poisson train at ``th_rate`` Hz for ``th_duration`` ms from ``th_start`` + 1 ms (NEST
    relays the generator through parrot neurons over its default 1-ms connection), onto
    each population with fixed-total-number synapses K = ln(1 - C_th) / ln(1 - 1/(N_th
    N_post)) at full N_post, times k-scale only (as the reference), weights of a
    ``psp_th`` mV PSP (Normal, 10% sd, redrawn while negative; / sqrt(k-scale)), delays
    Normal(``th_delay``, 50%) as the recurrent ones. DC input: ``dc_amp`` pA x K_ext
    (full scale) into every neuron of each population from ``dc_start`` for ``dc_dur``
    ms, added to I_e (not filtered by tau_syn: NEST's dc_generator). Values of the NEST 3
    example (NEST 2's had dc_start 0, dc_dur 1000)."""

    n_thal: int = 902
    th_rate: float = 120.0
    th_start: float = 700.0
    th_duration: float = 10.0
    psp_th: float = 0.15
    th_delay: float = 1.5
    conn_probs_th: tuple = (0.0, 0.0, 0.0983, 0.0619, 0.0, 0.0, 0.0512, 0.0196)
    dc_amp: float = 0.3
    dc_start: float = 650.0
    dc_dur: float = 100.0


#: NEST's connection from the thalamic Poisson generator to its parrot neurons (ms)
TH_RELAY_DELAY = 1.0


def _during(start: str, stop: str) -> str:
    """Model-language condition for the steps n with start <= n dt < stop (half-step
    margins, so that rounding of t never moves an edge)."""
    return f"t > {start} - 0.5 * dt and t < {stop} - 0.5 * dt"


#: Thalamic neuron: Poisson events at ``rate`` Hz in steps with start <= t < stop.
PD14Thalamus = NeuronModel(
    "PD14Thalamus", params=("rate", "start", "stop"), derived={"lam": "rate * dt / 1000"},
    events=f"poisson(lam) if {_during('start', 'stop')} else 0",
    doc="""Thalamic relay neuron of the PD14 stimulus: Poisson(rate dt / 1000) events in
    every step n with start <= n dt < stop (half-step margins against rounding), none
    otherwise. Hz, ms.""")


def _neuron_model(poisson: bool, dc_stimulus: bool = False) -> NeuronModel:
    background = "I = P11 * I + i_syn + w_ext * poisson(lam_ext)\n" if poisson else \
        "I = P11 * I + i_syn\n"
    params = ("C_m", "tau_m", "E_L", "V_th", "V_reset", "t_ref", "tau_syn", "I_e")
    direct = "I_e"
    if dc_stimulus:  # NEST's dc_generator: a direct current switched on for a window
        params += ("I_stim", "stim_start", "stim_stop")
        direct = f"(I_e + (I_stim if {_during('stim_start', 'stim_stop')} else 0.0))"
    derived = {"P11": "exp(-dt / tau_syn)", "P22": "exp(-dt / tau_m)",
               "P20": "tau_m / C_m * (1 - P22)",
               "P21": "tau_m * tau_syn / (C_m * (tau_syn - tau_m)) * (P11 - P22)"}
    if poisson:
        params += ("w_ext", "rate_ext")
        derived["lam_ext"] = "rate_ext * dt / 1000"
    return NeuronModel(
        ("PD14LIFPoisson" if poisson else "PD14LIF") + ("Stim" if dc_stimulus else ""),
        params=params, derived=derived,
        vars=(Var("V_m"), Var("I", default=0.0), Var("refrac", default=0.0)),
        sim=background + f"""
if refrac > 0.5 * dt:
    refrac -= dt
else:
    V_m = E_L + P22 * (V_m - E_L) + P21 * I + P20 * {direct}
""",
        threshold="refrac <= 0.5 * dt and V_m >= V_th",
        reset="V_m = V_reset\nrefrac = t_ref",
        doc="""NEST iaf_psc_exp with one exponential synaptic current I (pA) shared by all
        inputs (exact integration): I <- P11 I + i_syn [+ w_ext Poisson(rate_ext dt/1000)];
        V <- E_L + P22 (V - E_L) + P21 I + P20 I_e unless refractory; spike at V >= V_th,
        reset to V_reset, refractory t_ref ms. mV, pA, pF, ms, Hz. The "Stim" variants add
        I_stim to I_e in steps with stim_start <= t < stim_stop.""",
    )


#: iaf_psc_exp with a DC drive only / with its own Poisson background drive, and the
#: same with the switched DC stimulus (``dc_stimulus=True``).
PD14LIF = _neuron_model(poisson=False)
PD14LIFPoisson = _neuron_model(poisson=True)
PD14LIFStim = _neuron_model(poisson=False, dc_stimulus=True)
PD14LIFPoissonStim = _neuron_model(poisson=True, dc_stimulus=True)
NEURON_MODELS = {(False, False): PD14LIF, (True, False): PD14LIFPoisson,
                 (False, True): PD14LIFStim, (True, True): PD14LIFPoissonStim}


def psc_over_psp(C_m: float, tau_m: float, tau_syn: float) -> float:
    """PSC amplitude (pA) giving a PSP peak of 1 mV: the PSP of a current jump w
    decaying with tau_syn is w tau_m tau_syn / (C (tau_m - tau_syn)) (e^{-t/tau_m} -
    e^{-t/tau_syn}), maximal at t* = ln(tau_m/tau_syn) tau_m tau_syn / (tau_m - tau_syn)."""
    t_peak = math.log(tau_m / tau_syn) * tau_m * tau_syn / (tau_m - tau_syn)
    kernel = tau_m * tau_syn / (C_m * (tau_m - tau_syn)) * (
        math.exp(-t_peak / tau_m) - math.exp(-t_peak / tau_syn))
    return 1.0 / kernel


def full_num_synapses() -> np.ndarray:
    """Total synapses [target, source] at full scale: K = ln(1-C) / ln(1 - 1/(N_pre N_post))."""
    prod = np.outer(FULL_NUM_NEURONS, FULL_NUM_NEURONS).astype(np.float64)
    return np.log(1.0 - CONN_PROBS) / np.log((prod - 1.0) / prod)


@dataclass(frozen=True)
class Derived:
    """Scaled numbers of one instance: ``sizes`` per population, ``num_synapses``
    [target, source], ``psc_mean`` [target, source] (pA, signed), ``psc_ext`` (pA),
    ``k_ext`` (scaled external in-degrees), ``dc_amp`` (pA per population),
    ``delay_mean``/``delay_sd`` per source (ms)."""

    scale: float
    k_scale: float
    background: str
    sizes: np.ndarray
    num_synapses: np.ndarray
    psc_mean: np.ndarray
    psc_ext: float
    k_ext: np.ndarray
    dc_amp: np.ndarray
    delay_mean: np.ndarray
    delay_sd: np.ndarray

    @property
    def total_synapses(self) -> int:
        return int(self.num_synapses.sum())

    @property
    def bg_rates(self) -> np.ndarray:
        """Rate (Hz) of each neuron's Poisson drive: BG_RATE x scaled K_ext."""
        return BG_RATE * self.k_ext


def derive(scale: float = 1.0, k_scale: float = 1.0, background: str = "poisson") -> Derived:
    """The reference implementation's scaling rules (sizes and synapse counts rounded
    to nearest; weights / sqrt(k); DC compensation of the missing mean input)."""
    for key, value in (("scale", scale), ("k_scale", k_scale)):
        if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
            raise ValueError(f"microcircuit: {key} must be in (0, 1], got {value!r}")
    if background not in ("poisson", "dc"):
        raise ValueError(f"microcircuit: background must be 'poisson' or 'dc', got {background!r}")
    full_syn = full_num_synapses()
    sizes = np.round(FULL_NUM_NEURONS * scale).astype(np.int64)
    if np.any(sizes < 1):
        raise ValueError(f"microcircuit: scale {scale} leaves a population empty ({sizes})")
    num_syn = np.round(full_syn * scale * k_scale).astype(np.int64)
    k_ext = np.round(K_EXT * k_scale).astype(np.int64)
    unit = psc_over_psp(NEURON["C_m"], NEURON["tau_m"], NEURON["tau_syn"])
    psp = np.tile(np.where(np.arange(8) % 2 == 0, PSP_EXC_MEAN, G * PSP_EXC_MEAN), (8, 1))
    psp[0, 2] *= L4E_TO_L23E_FACTOR
    psc, psc_ext = psp * unit, PSP_EXC_MEAN * unit
    tau_syn = NEURON["tau_syn"]
    dc = (np.zeros(8) if background == "poisson"
          else BG_RATE * k_ext * psc_ext * tau_syn * 0.001)
    if k_scale != 1.0:
        lost = 0.001 * tau_syn * (1.0 - math.sqrt(k_scale))
        indegree = full_syn / FULL_NUM_NEURONS[:, None]
        dc = dc + lost * np.sum(psc * indegree * FULL_MEAN_RATES, axis=1)
        if background == "poisson":
            dc = dc + lost * psc_ext * K_EXT * BG_RATE
        psc, psc_ext = psc / math.sqrt(k_scale), psc_ext / math.sqrt(k_scale)
    d_mean = np.array([DELAY_MEAN["E" if s % 2 == 0 else "I"] for s in range(8)])
    return Derived(scale, k_scale, background, sizes, num_syn, psc, psc_ext, k_ext, dc,
                   d_mean, d_mean * DELAY_REL_SD)


def thalamic_synapses(k_scale: float = 1.0, stim: Stimulus = Stimulus()) -> np.ndarray:
    """Synapses from the thalamus onto each population: K = ln(1 - C_th) / ln(1 - 1/(N_th
    N_post)) with the full-scale N_post, times k_scale and rounded; not scaled with N (the
    reference's rule, so the thalamic in-degree grows as 1/scale)."""
    prod = stim.n_thal * FULL_NUM_NEURONS.astype(np.float64)
    full = np.log(1.0 - np.asarray(stim.conn_probs_th)) / np.log((prod - 1.0) / prod)
    return np.round(full * k_scale).astype(np.int64)


def delay_steps(mean_ms: float, sd_ms: float, dt: float, n: int, seed: int,
                name: str) -> tuple[np.ndarray, int]:
    """``n`` delays in steps (the smallest unsigned integer type holding the upper
    bound: one byte per synapse at dt = 0.1 ms) and that bound.

    D ~ Normal(mean, sd) redrawn while D < dt/2 (or, never in practice, above
    mean + 8 sd, which bounds the input ring); steps = floor(D/dt + 1/2): NEST
    rounds a delay to the nearest step, halves up, so every delay is >= 1 step.
    Core accepts only Constant or array initialisers for int vars, so the delays
    are drawn here, with NumPy's PCG64 seeded by (seed, stream_id(name)) (fast;
    Philox in NumPy costs ~1 s per million values), one per synapse in storage
    order (delays are i.i.d., so the order carries no meaning)."""
    low, high = 0.5 * dt, mean_ms + DELAY_SD_BOUND * sd_ms
    rng = np.random.default_rng([seed & 0xFFFFFFFF, stream_id(f"{name}.d.init")])
    ms = rng.normal(mean_ms, sd_ms, n)
    bad = np.flatnonzero((ms < low) | (ms > high))
    while len(bad):
        ms[bad] = rng.normal(mean_ms, sd_ms, len(bad))
        bad = bad[(ms[bad] < low) | (ms[bad] > high)]
    np.floor(ms / dt + 0.5, out=ms)
    bound = int(math.floor(high / dt + 0.5))
    return ms.astype(np.min_scalar_type(bound)), bound


def weight_init(mean: float) -> NormalClipped:
    """Normal(mean, 0.1 |mean|) redrawn while its sign differs from the mean's."""
    sd = WEIGHT_REL_SD * abs(mean)
    return NormalClipped(mean, sd, low=0.0) if mean > 0 else NormalClipped(mean, sd, high=0.0)


def microcircuit_network(scale: float = 1.0, k_scale: float = 1.0, background: str = "poisson",
                         seed: int = 55, dt: float = 0.1, precision="float32",
                         fuse_postsynaptic: bool = True, thalamic: bool = False,
                         dc_stimulus: bool = False, stimulus: Stimulus = Stimulus()) -> Network:
    """The PD14 microcircuit with neuron numbers scaled by ``scale`` and in-degrees by
    ``k_scale`` (with the reference DC compensation), driven by ``background``
    "poisson" (each neuron receives Poisson(8 Hz K_ext dt) external spikes per step,
    weight psc_ext) or "dc" (the mean of that drive as a constant current).
    ``fuse_postsynaptic``: the 8 projections onto a population deliver into one
    input ring (as NEST's per-neuron ring buffer) instead of one ring each; equal
    up to float rounding, and 8x less ring memory to scatter into.
    ``thalamic`` adds the thalamic population "TH" and its projections "TH_<target>",
    ``dc_stimulus`` the switched DC input; both as :class:`Stimulus` ``stimulus``."""
    d = derive(scale, k_scale, background)
    poisson = background == "poisson"
    net = NetworkBuilder(dt=dt, seed=seed, precision=precision,
                         fuse_postsynaptic=fuse_postsynaptic)
    for i, name in enumerate(POPULATIONS):
        params = {**NEURON, "I_e": float(d.dc_amp[i])}
        if poisson:
            params.update(w_ext=float(d.psc_ext), rate_ext=float(d.bg_rates[i]))
        if dc_stimulus:
            params.update(I_stim=float(stimulus.dc_amp * K_EXT[i]),
                          stim_start=float(stimulus.dc_start),
                          stim_stop=float(stimulus.dc_start + stimulus.dc_dur))
        net.population(name, NEURON_MODELS[poisson, dc_stimulus], int(d.sizes[i]),
                       params=params, init={"V_m": Normal(float(V0_MEAN[i]), float(V0_SD[i]))})
    for t, target in enumerate(POPULATIONS):
        for s, source in enumerate(POPULATIONS):
            _connect(net, source, target, int(d.num_synapses[t, s]), float(d.psc_mean[t, s]),
                     float(d.delay_mean[s]), dt, seed)
    if thalamic:
        _add_thalamus(net, k_scale, stimulus, dt, seed)
    return net.network()


def _connect(net, source: str, target: str, n: int, psc_mean: float, delay_mean: float,
             dt: float, seed: int) -> None:
    """``n`` fixed-total-number synapses, weights ~ weight_init(psc_mean), delays
    Normal(delay_mean, DELAY_REL_SD delay_mean) in steps (:func:`delay_steps`)."""
    if n == 0:
        return
    name = f"{source}_{target}"
    delay, max_delay = delay_steps(delay_mean, delay_mean * DELAY_REL_SD, dt, n, seed, name)
    net.connect(source, target, FixedTotalNumber(n), name=name,
                weight_update=StaticPulseDendriticDelay, postsynaptic=Delta,
                wu_init={"w": weight_init(psc_mean), "d": delay}, max_dendritic_delay=max_delay)


def _add_thalamus(net, k_scale: float, stim: Stimulus, dt: float, seed: int) -> None:
    start = stim.th_start + TH_RELAY_DELAY
    net.population("TH", PD14Thalamus, stim.n_thal,
                   params={"rate": stim.th_rate, "start": start, "stop": start + stim.th_duration})
    psc = stim.psp_th * psc_over_psp(NEURON["C_m"], NEURON["tau_m"], NEURON["tau_syn"])
    for target, n in zip(POPULATIONS, thalamic_synapses(k_scale, stim), strict=True):
        _connect(net, "TH", target, int(n), psc / math.sqrt(k_scale), stim.th_delay, dt, seed)


__all__ = ["POPULATIONS", "PD14LIF", "PD14LIFPoisson", "PD14LIFStim", "PD14LIFPoissonStim",
           "PD14Thalamus", "Derived", "Stimulus", "derive", "microcircuit_network",
           "psc_over_psp", "full_num_synapses", "thalamic_synapses", "FULL_MEAN_RATES",
           "REFERENCE_RATES_0_1"]
