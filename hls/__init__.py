"""Header-only HLS C++ library of the fpga backend (builds with Vitis HLS and g++).

``INCLUDE_DIR`` holds ``sf_hls.h`` (umbrella), ``sf_hls_mem.h`` and
``sf_hls_fixed.h``; they include ``philox.h``, the project's one Philox, from
``PHILOX_DIR`` (backends/cstyle). ``include_dirs()`` is what a compiler needs
(``-I`` each); ``headers()`` maps file name -> text of every header a generated
accelerator needs, for writing a self-contained HLS project.
"""

from __future__ import annotations

from pathlib import Path

from spikeforge.backends.cstyle import INCLUDE_DIR as PHILOX_DIR

INCLUDE_DIR = Path(__file__).parent
HEADERS = ("sf_hls.h", "sf_hls_mem.h", "sf_hls_fixed.h")


def include_dirs() -> tuple[Path, Path]:
    return INCLUDE_DIR, PHILOX_DIR


def headers() -> dict[str, str]:
    """{file name: text} of the library headers and philox.h."""
    out = {name: (INCLUDE_DIR / name).read_text() for name in HEADERS}
    out["philox.h"] = (PHILOX_DIR / "philox.h").read_text()
    return out


__all__ = ["HEADERS", "INCLUDE_DIR", "PHILOX_DIR", "headers", "include_dirs"]
