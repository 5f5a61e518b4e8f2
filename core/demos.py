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

``stdp_network``: Poisson inputs ("In") -> LIF neurons ("Out") through
all-to-all plastic synapses (sf.STDP, ExpCurr 5 ms).
"""

from __future__ import annotations

from . import builtins as B
from .connectivity import Dense, FixedProbability
from .init import Uniform
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
