"""The Vogels & Abbott (2005) CUBA benchmark, as ``spikeforge demo`` runs it.

    python examples/cuba.py [--backend numpy] [--duration-ms 1000] [--n 4000] [--raster r.png]

The network builder ``cuba_network(n=4000, p=0.02, seed=1)`` lives in the
package (``spikeforge/demos.py``, with the equations) so that the command line
can use it too; it is re-exported here: ``from cuba import cuba_network``.
The same network as a model file: ``examples/cuba.json``.
"""

from __future__ import annotations

from spikeforge.demos import cuba_network, run_balanced_example

__all__ = ["cuba_network", "main"]


def main(argv=None) -> dict:
    """Run the network; returns the rates (Hz) of "E" and "I"."""
    return run_balanced_example(cuba_network, "CUBA", argv)


if __name__ == "__main__":
    main()
