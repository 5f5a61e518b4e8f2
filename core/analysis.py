"""Spike-train statistics used to validate network models (e.g. the PD14 microcircuit).

All functions take spikes as ``(times_ms, ids)`` arrays of one population and
analyse the window ``[t_start, t_stop)`` (ms):

- ``mean_rate``: spikes in the window / (neurons x window length in s), Hz;
- ``cv_isi``: per neuron with at least ``min_isis`` inter-spike intervals in the
  window, CV = std(ISI) / mean(ISI) (population std, ddof 0); returns the mean
  over those neurons (NaN when none qualifies) and how many qualified;
- ``synchrony``: the population spike count in bins of ``bin_ms`` (3 ms, as in the
  reference validation of the microcircuit) has variance / mean (a Fano factor of
  the population activity; 1 for independent Poisson neurons, larger when
  neurons fire together); NaN when there are no spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _window(times, ids, t_start, t_stop):
    times, ids = np.asarray(times, dtype=np.float64), np.asarray(ids, dtype=np.int64)
    if t_stop <= t_start:
        raise ValueError(f"analysis: empty window [{t_start}, {t_stop}) ms")
    keep = (times >= t_start) & (times < t_stop)
    return times[keep], ids[keep]


def mean_rate(times, ids, n: int, t_start: float, t_stop: float) -> float:
    """Mean firing rate (Hz) of ``n`` neurons over [t_start, t_stop) ms."""
    if n < 1:
        raise ValueError(f"mean_rate: population size must be >= 1, got {n}")
    times, _ = _window(times, ids, t_start, t_stop)
    return len(times) / (n * (t_stop - t_start) * 1e-3)


def cv_isi(times, ids, t_start: float, t_stop: float, min_isis: int = 2) -> tuple[float, int]:
    """(mean CV of the ISIs over neurons with >= ``min_isis`` intervals, neuron count)."""
    times, ids = _window(times, ids, t_start, t_stop)
    order = np.lexsort((times, ids))
    times, ids = times[order], ids[order]
    same = ids[1:] == ids[:-1]
    isi, owner = np.diff(times)[same], ids[1:][same]
    if len(isi) == 0:
        return float("nan"), 0
    neurons, inverse, counts = np.unique(owner, return_inverse=True, return_counts=True)
    total = np.bincount(inverse, weights=isi)
    squares = np.bincount(inverse, weights=isi * isi)
    mean = total / counts
    var = np.maximum(squares / counts - mean * mean, 0.0)
    ok = (counts >= min_isis) & (mean > 0)
    if not ok.any():
        return float("nan"), 0
    return float(np.mean(np.sqrt(var[ok]) / mean[ok])), int(ok.sum())


def synchrony(times, t_start: float, t_stop: float, bin_ms: float = 3.0) -> float:
    """Variance / mean of the population spike count in ``bin_ms`` bins."""
    times = np.asarray(times, dtype=np.float64)
    edges = np.arange(t_start, t_stop + 1e-9, bin_ms)
    if len(edges) < 3:
        raise ValueError(f"synchrony: window [{t_start}, {t_stop}) ms holds fewer than two "
                         f"{bin_ms} ms bins")
    counts, _ = np.histogram(times, bins=edges)
    mean = counts.mean()
    return float(counts.var() / mean) if mean > 0 else float("nan")


@dataclass(frozen=True)
class PopulationStats:
    """Rate (Hz), mean CV of ISI (and neurons it covers), synchrony, spike count."""

    rate_hz: float
    cv_isi: float
    cv_neurons: int
    synchrony: float
    spikes: int

    def as_dict(self) -> dict:
        return {"rate_hz": self.rate_hz, "cv_isi": self.cv_isi, "cv_neurons": self.cv_neurons,
                "synchrony": self.synchrony, "spikes": self.spikes}


def population_stats(times, ids, n: int, t_start: float, t_stop: float,
                     bin_ms: float = 3.0) -> PopulationStats:
    """All three statistics of one population over [t_start, t_stop) ms."""
    w_times, w_ids = _window(times, ids, t_start, t_stop)
    cv, cv_n = cv_isi(w_times, w_ids, t_start, t_stop)
    return PopulationStats(mean_rate(w_times, w_ids, n, t_start, t_stop), cv, cv_n,
                           synchrony(w_times, t_start, t_stop, bin_ms), len(w_times))


def network_stats(sim, t_start: float, t_stop: float | None = None, pops=None,
                  bin_ms: float = 3.0) -> dict[str, PopulationStats]:
    """population -> PopulationStats for the recorded populations of a Simulation
    (batch element 0), over [t_start, t_stop) ms (t_stop defaults to sim.t)."""
    t_stop = sim.t if t_stop is None else t_stop
    out = {}
    for pop in (sim.record_spikes if pops is None else pops):
        entry = sim.spikes(pop)
        times, ids = entry[0], entry[1]
        if len(entry) > 2:
            first = np.asarray(entry[2]) == 0
            times, ids = times[first], ids[first]
        out[pop] = population_stats(times, ids, sim.network.population(pop).size, t_start,
                                    t_stop, bin_ms)
    return out
