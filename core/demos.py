"""Ready-made networks used by ``spikeforge demo`` and the files in examples/.

``cuba_network``: the current-based benchmark of Vogels & Abbott (2005), as in
Brian's CUBA example. Each neuron (LIF, R = 1 so currents are in mV)::

    tau_m dv/dt = (E_l - v) + i_e + i_i,   tau_m = 20 ms, E_l = -49 mV
    spike when v >= -50 mV, reset to -60 mV, refractory 5 ms
    tau_e di_e/dt = -i_e (5 ms),  tau_i di_i/dt = -i_i (10 ms)
    an excitatory spike adds we = 60 * 0.27 / 10 = 1.62 mV to i_e,
    an inhibitory spike adds wi = -20 * 4.5 / 10 = -9 mV to i_i

80% excitatory ("E"), 20% inhibitory ("I"), every pair connected with
probability p (2%), v initialised Uniform(-60, -50) mV.

``coba_network``: the conductance-based benchmark of the same paper (Brette et
al. 2007, benchmark 1), in physical units (C = 200 pF, g_L = 10 nS)::

    C dv/dt = g_L (E_l - v) + g_e (E_e - v) + g_i (E_i - v),  tau_m = C/g_L = 20 ms
    E_l = -60 mV, E_e = 0 mV, E_i = -80 mV; threshold -50 mV, reset -60 mV, 5 ms refractory
    tau_e dg_e/dt = -g_e (5 ms),  tau_i dg_i/dt = -g_i (10 ms)   (sf.ExpCond)
    an excitatory spike adds 0.6 g_L = 6 nS to g_e, an inhibitory one 6.7 g_L = 67 nS to g_i

with no external input: activity is started by the initial state of the benchmark,
v ~ N(-65, 5) mV, g_e ~ N(4, 1.5) g_L, g_i ~ N(20, 12) g_L (not clipped, as published).

``stdp_network``: Poisson inputs ("In") -> LIF neurons ("Out") through
all-to-all plastic synapses (sf.STDP, ExpCurr 5 ms).
"""

from __future__ import annotations

from . import builtins as B
from .connectivity import Dense, FixedProbability
from .init import Normal, Uniform
from .net import Network, NetworkBuilder

#: ``spikeforge demo`` uses the first backend of this list that is available.
DEMO_BACKEND_ORDER = ("cpu", "cuda", "fpga", "numpy")

CUBA_LIF = {"C": 20.0, "tau_m": 20.0, "v_rest": -49.0, "v_reset": -60.0, "v_thresh": -50.0,
            "i_offset": 0.0, "tau_refrac": 5.0}
CUBA_WE = 60 * 0.27 / 10  # mV
CUBA_WI = -20 * 4.5 / 10  # mV


def cuba_network(n: int = 4000, p: float = 0.02, seed: int = 1, dt: float = 0.1) -> Network:
    """The Vogels & Abbott (2005) CUBA network with ``n`` neurons (80% "E", 20% "I")."""
    if n < 2:
        raise ValueError(f"cuba_network: n must be >= 2, got {n}")
    n_exc = round(0.8 * n)
    net = NetworkBuilder(dt=dt, seed=seed)
    init = {"v": Uniform(-60.0, -50.0)}
    net.population("E", B.LIF, n_exc, params=CUBA_LIF, init=init)
    net.population("I", B.LIF, n - n_exc, params=CUBA_LIF, init=init)
    for pre, w, tau in (("E", CUBA_WE, 5.0), ("I", CUBA_WI, 10.0)):
        for post in ("E", "I"):
            net.connect(pre, post, FixedProbability(p), w=w, postsynaptic=B.ExpCurr,
                        ps_params={"tau": tau})
    return net.network()


COBA_LIF = {"C": 0.2, "tau_m": 20.0, "v_rest": -60.0, "v_reset": -60.0, "v_thresh": -50.0,
            "i_offset": 0.0, "tau_refrac": 5.0}  # nF, ms, mV, nA
COBA_G_L = 0.01  # uS: C / tau_m
#: per presynaptic kind: weight (uS), ExpCond params, initial g (mean, sd) in uS
COBA_SYNAPSES = {"E": (0.6 * COBA_G_L, {"tau": 5.0, "E_rev": 0.0}, (4 * COBA_G_L, 1.5 * COBA_G_L)),
                 "I": (6.7 * COBA_G_L, {"tau": 10.0, "E_rev": -80.0},
                       (20 * COBA_G_L, 12 * COBA_G_L))}


def coba_network(n: int = 4000, p: float = 0.02, seed: int = 1, dt: float = 0.1) -> Network:
    """The Vogels & Abbott (2005) COBA network with ``n`` neurons (80% "E", 20% "I")."""
    if n < 2:
        raise ValueError(f"coba_network: n must be >= 2, got {n}")
    n_exc = round(0.8 * n)
    net = NetworkBuilder(dt=dt, seed=seed)
    init = {"v": Normal(-65.0, 5.0)}
    net.population("E", B.LIF, n_exc, params=COBA_LIF, init=init)
    net.population("I", B.LIF, n - n_exc, params=COBA_LIF, init=init)
    for pre, (w, ps_params, (g_mean, g_sd)) in COBA_SYNAPSES.items():
        for post in ("E", "I"):
            net.connect(pre, post, FixedProbability(p), w=w, postsynaptic=B.ExpCond,
                        ps_params=ps_params, ps_init={"g": Normal(g_mean, g_sd)})
    return net.network()


STDP_LIF = {"C": 1.0, "tau_m": 20.0, "v_rest": -65.0, "v_reset": -65.0, "v_thresh": -50.0,
            "i_offset": 0.0, "tau_refrac": 2.0}
STDP_PARAMS = {"tau_plus": 20.0, "tau_minus": 20.0, "a_plus": 0.005, "a_minus": 0.00525,
               "w_min": 0.0, "w_max": 0.3}


def stdp_network(n_in: int = 100, n_out: int = 10, rate_hz: float = 20.0, seed: int = 1,
                 dt: float = 0.1) -> Network:
    """``n_in`` Poisson sources at ``rate_hz`` -> ``n_out`` LIF (C = 1 nF, R = 20 MOhm)
    through all-to-all pair-based STDP synapses (w in nA, initial Uniform(0, 0.15),
    bounded to [0, 0.3]; ExpCurr tau 5 ms)."""
    net = NetworkBuilder(dt=dt, seed=seed)
    net.population("In", B.PoissonSource, n_in, params={"rate": rate_hz})
    net.population("Out", B.LIF, n_out, params=STDP_LIF, init={"v": Uniform(-65.0, -55.0)})
    net.connect("In", "Out", Dense(), weight_update=B.STDP, wu_params=STDP_PARAMS,
                wu_init={"w": Uniform(0.0, 0.15)}, postsynaptic=B.ExpCurr,
                ps_params={"tau": 5.0})
    return net.network()


#: ``spikeforge demo``: the PD14 microcircuit at N = K = 0.1 with Poisson drive (7717 neurons,
#: ~3e6 synapses; the configuration validated against the NEST reference, docs/microcircuit.md).
DEMO_SCALE = 0.1


def microcircuit_demo_network(seed: int = 55) -> Network:
    """The network ``spikeforge demo`` runs: ``microcircuit_network(0.1, 0.1, "poisson")``."""
    from .microcircuit import microcircuit_network

    return microcircuit_network(DEMO_SCALE, DEMO_SCALE, "poisson", seed=seed)


def best_backend(order=DEMO_BACKEND_ORDER) -> str:
    """The first backend of ``order`` that is registered and available here."""
    from .registry import available

    ok = {status.name for status in available() if status.available}
    for name in order:
        if name in ok:
            return name
    raise RuntimeError(f"no backend of {list(order)} is available here "
                       f"(available: {sorted(ok) or 'none'})")


def run_balanced_example(make, title: str, argv=None) -> dict:
    """The command line of examples/cuba.py and examples/coba.py: build ``make(n=...)``,
    run it, print per-population spike counts and rates (Hz), optionally plot a raster."""
    import argparse

    import numpy as np

    parser = argparse.ArgumentParser(description=f"The Vogels & Abbott (2005) {title} network")
    parser.add_argument("--backend", default=None, help="default: best available")
    parser.add_argument("--duration-ms", type=float, default=1000.0)
    parser.add_argument("--n", type=int, default=4000, help="number of neurons")
    parser.add_argument("--raster", default=None, help="write a raster plot (PNG) here")
    args = parser.parse_args(argv)

    net = make(n=args.n)
    sim = net.build(backend=args.backend or best_backend())
    sim.run(duration_ms=args.duration_ms)
    seconds = sim.t / 1000.0
    rates = {}
    for pop in ("E", "I"):
        times, ids = sim.spikes(pop)
        size = net.population(pop).size
        rates[pop] = len(times) / (size * seconds)
        print(f"{pop}: {len(times)} spikes, {rates[pop]:.2f} Hz, "
              f"{len(np.unique(ids))} of {size} neurons fired")
    if args.raster:
        from .plot import raster

        print(f"wrote {raster(sim, ['E', 'I'], args.raster, title=title)}")
    return rates
