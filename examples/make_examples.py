"""Regenerate the model files in this folder (deterministic: same code, same files).

    python examples/make_examples.py            # rewrites examples/*.json (+ .npz)
    python examples/make_examples.py OUT_DIR    # writes them to OUT_DIR instead

- ``cuba.json``: Vogels & Abbott (2005) CUBA, 4000 LIF, 80/20 E/I, 2% connectivity
  (``spikeforge.demos.cuba_network``);
- ``coba.json``: the conductance-based variant (COBA, ``sf.ExpCond``;
  ``spikeforge.demos.coba_network``);
- ``stdp.json``: 100 Poisson inputs at 20 Hz -> 10 LIF through STDP synapses
  (``spikeforge.demos.stdp_network``).

Every file here is accepted by ``spikeforge run FILE --duration-ms T``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spikeforge.demos import coba_network, cuba_network, stdp_network

MODELS = {"cuba.json": cuba_network, "coba.json": coba_network, "stdp.json": stdp_network}


def main(out_dir=None) -> list[Path]:
    out = Path(out_dir) if out_dir else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in MODELS.items():
        make().save(out / name)
        written.append(out / name)
    return written


if __name__ == "__main__":
    for path in main(sys.argv[1] if len(sys.argv) > 1 else None):
        print(f"wrote {path}")
