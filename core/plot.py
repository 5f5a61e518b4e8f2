"""Plots of simulation results (matplotlib, Agg backend; optional extra ``[plot]``).

``raster(sim_or_spikes, pops, path)``: one dot per spike (x = time in ms,
y = neuron index), one panel per population in the order given (top to
bottom), each in its own colour, batch element 0 only.
``rates_bar(rates, path)``: one bar per population, mean rate in Hz.

matplotlib is imported only when a plot is drawn; :func:`have_matplotlib`
tells whether it is installed, and the functions raise :class:`PlotUnavailable`
(an ImportError) with an install hint when it is not.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

INSTALL_HINT = "install spikeforge[plot]"


class PlotUnavailable(ImportError):
    """matplotlib is not installed."""


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    if not have_matplotlib():
        raise PlotUnavailable(f"matplotlib is not installed: {INSTALL_HINT}")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _spike_table(sim_or_spikes, pops, sizes=None) -> tuple[dict, dict]:
    """(spikes, sizes): pop -> (times_ms, ids) of batch 0, pop -> neuron count.

    ``sim_or_spikes`` is a Simulation or a mapping pop -> (times, ids[, batch]);
    for a mapping, a size not given in ``sizes`` is the largest id + 1."""
    if hasattr(sim_or_spikes, "spikes") and hasattr(sim_or_spikes, "network"):
        sim = sim_or_spikes
        pops = list(sim.record_spikes if pops is None else pops)
        raw = {p: sim.spikes(p) for p in pops}
        sizes = {p: sim.network.population(p).size for p in pops}
    else:
        pops = list(sim_or_spikes if pops is None else pops)
        raw = {p: sim_or_spikes[p] for p in pops}
        given = dict(sizes or {})
        sizes = {p: given.get(p, int(np.max(raw[p][1], initial=-1)) + 1) for p in pops}
    spikes = {}
    for pop, entry in raw.items():
        times, ids = np.asarray(entry[0]), np.asarray(entry[1])
        if len(entry) > 2:
            first = np.asarray(entry[2]) == 0
            times, ids = times[first], ids[first]
        spikes[pop] = (times, ids)
    return spikes, sizes


def raster(sim_or_spikes, pops=None, path="raster.png", title: str | None = None,
           sizes: dict | None = None) -> Path:
    """Draw a spike raster of ``pops`` (default: all recorded) to ``path`` (PNG):
    one panel per population (the first at the top), sharing the time axis;
    a panel's height grows with its population size but is at least a fifth
    of the largest, so small populations stay visible."""
    plt = _pyplot()
    spikes, sizes = _spike_table(sim_or_spikes, pops, sizes)
    if not spikes:
        raise ValueError("raster: no populations to plot")
    largest = max(max(sizes.values()), 1)
    marker = max(1.0, min(6.0, 3000.0 / largest))  # dot area in pt^2, the same in every panel
    heights = [max(sizes[p], 0.2 * largest, 1) for p in spikes]
    fig, axes = plt.subplots(len(spikes), 1, sharex=True, squeeze=False, figsize=(8, 4.5),
                             dpi=120, gridspec_kw={"height_ratios": heights, "hspace": 0.08})
    for k, (ax, (pop, (times, ids))) in enumerate(zip(axes[:, 0], spikes.items())):
        n = max(sizes[pop], 1)
        ax.scatter(times, ids, s=marker, marker="o", linewidths=0, color=f"C{k}",
                   rasterized=True)
        ax.set_ylim(-0.5, n - 0.5)
        ax.set_ylabel(f"{pop}\n({sizes[pop]})", rotation=0, ha="right", va="center")
    axes[-1, 0].set_xlabel("time (ms)")
    axes[0, 0].set_title(title or "spike raster")
    return _save(plt, fig, path, tight=False)


def rates_bar(rates: dict, path="rates.png", title: str | None = None) -> Path:
    """Draw a bar chart of ``rates`` (pop -> rate in Hz, or pop -> dict with
    ``"rate_hz"``) to ``path`` (PNG)."""
    plt = _pyplot()
    names = list(rates)
    values = [float(r["rate_hz"] if isinstance(r, dict) else r) for r in rates.values()]
    fig, ax = plt.subplots(figsize=(max(3.0, 1.0 + 0.8 * len(names)), 3.5), dpi=120)
    bars = ax.bar(names, values, color=[f"C{k}" for k in range(len(names))])
    ax.bar_label(bars, fmt="%.2f")
    ax.set_ylabel("rate (Hz)")
    ax.set_title(title or "mean firing rate")
    ax.margins(y=0.15)
    return _save(plt, fig, path)


def _save(plt, fig, path, tight=True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
