"""The Vogels & Abbott (2005) CUBA benchmark, as ``spikeforge demo`` runs it.

    python examples/cuba.py [--backend numpy] [--duration-ms 1000] [--n 4000]

The network builder ``cuba_network(n=4000, p=0.02, seed=1)`` lives in the
package (``spikeforge/demos.py``, with the equations) so that the command line
can use it too; it is re-exported here: ``from cuba import cuba_network``.
The same network as a model file: ``examples/cuba.json``.
"""

from __future__ import annotations

import argparse

import numpy as np

from spikeforge.demos import best_backend, cuba_network

__all__ = ["cuba_network", "main"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="default: best available")
    parser.add_argument("--duration-ms", type=float, default=1000.0)
    parser.add_argument("--n", type=int, default=4000, help="number of neurons")
    parser.add_argument("--raster", default=None, help="write a raster plot (PNG) here")
    args = parser.parse_args(argv)

    net = cuba_network(n=args.n)
    sim = net.build(backend=args.backend or best_backend())
    sim.run(duration_ms=args.duration_ms)

    seconds = sim.t / 1000.0
    rates = {}
    for pop in ("E", "I"):
        times, ids = sim.spikes(pop)
        rates[pop] = len(times) / (net.population(pop).size * seconds)
        active = len(np.unique(ids))
        print(f"{pop}: {len(times)} spikes, {rates[pop]:.2f} Hz, "
              f"{active} of {net.population(pop).size} neurons fired")
    if args.raster:
        from spikeforge.plot import raster

        print(f"wrote {raster(sim, ['E', 'I'], args.raster, title='CUBA')}")
    return rates


if __name__ == "__main__":
    main()
