"""The conductance-based Vogels & Abbott (2005) network: benchmark 1 (COBA) of
Brette et al. (2007), with ``sf.ExpCond`` synapses.

    python examples/coba.py [--backend numpy] [--duration-ms 1000] [--n 4000] [--raster r.png]

The network builder ``coba_network(n=4000, p=0.02, seed=1)`` lives in the
package (``spikeforge/demos.py``, with the equations and units); it is
re-exported here. The same network as a model file: ``examples/coba.json``.
Activity is self-sustained from the benchmark's random initial state
(about 20 Hz in E and I; Brian2 gives the same rates, BENCHMARKS.md).
"""

from __future__ import annotations

from spikeforge.demos import coba_network, run_balanced_example

__all__ = ["coba_network", "main"]


def main(argv=None) -> dict:
    """Run the network; returns the rates (Hz) of "E" and "I"."""
    return run_balanced_example(coba_network, "COBA", argv)


if __name__ == "__main__":
    main()
