"""Spike-timing-dependent plasticity: Poisson inputs -> LIF through sf.STDP synapses.

    python examples/stdp.py [--duration-ms 5000] [--backend numpy]

Pair-based additive STDP (see ``help(spikeforge.STDP)``): a presynaptic spike
depresses w by a_minus * y (postsynaptic trace), a postsynaptic spike
potentiates it by a_plus * x (presynaptic trace); w stays in [w_min, w_max].
Inputs whose spikes often precede an output spike (they helped cause it)
gain weight, the others lose it, so the weight distribution spreads out;
a_minus slightly above a_plus makes chance coincidences depress on average.
The same network as a model file: ``examples/stdp.json``.
"""

from __future__ import annotations

import argparse

import numpy as np

import spikeforge as sf

STDP_PARAMS = {"tau_plus": 20.0, "tau_minus": 20.0, "a_plus": 0.005, "a_minus": 0.00525,
               "w_min": 0.0, "w_max": 0.3}
LIF_PARAMS = {"C": 1.0, "tau_m": 20.0, "v_rest": -65.0, "v_reset": -65.0, "v_thresh": -50.0,
              "i_offset": 0.0, "tau_refrac": 2.0}


def stdp_network(n_in=100, n_out=10, rate_hz=20.0, seed=1) -> sf.Network:
    """The network of examples/stdp.json (also ``spikeforge.demos.stdp_network``)."""
    net = sf.NetworkBuilder(dt=0.1, seed=seed)
    net.population("In", sf.PoissonSource, n_in, params={"rate": rate_hz})
    net.population("Out", sf.LIF, n_out, params=LIF_PARAMS, init={"v": sf.Uniform(-65.0, -55.0)})
    net.connect("In", "Out", sf.Dense(), weight_update=sf.STDP, wu_params=STDP_PARAMS,
                wu_init={"w": sf.Uniform(0.0, 0.15)}, postsynaptic=sf.ExpCurr,
                ps_params={"tau": 5.0})
    return net.network()


def main(argv=None) -> tuple[np.ndarray, np.ndarray]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--duration-ms", type=float, default=5000.0)
    args = parser.parse_args(argv)

    sim = stdp_network().build(backend=args.backend)
    before = sim.get("In_Out.w")
    sim.run(duration_ms=args.duration_ms)
    after = sim.get("In_Out.w")

    seconds = sim.t / 1000.0
    for pop, size in (("In", 100), ("Out", 10)):
        print(f"{pop}: {len(sim.spikes(pop)[0]) / (size * seconds):.2f} Hz")
    print(f"weights: mean {before.mean():.4f} -> {after.mean():.4f}, "
          f"sd {before.std():.4f} -> {after.std():.4f}")
    return before, after


if __name__ == "__main__":
    main()
