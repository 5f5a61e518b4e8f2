"""Compare a backend's simulation with the NumPy reference.

Policy (docs/semantics.md, 'Cross-backend agreement'):

* fixed point: every spike and every state var must be identical;
* float: spikes of each (batch, neuron) must pair up one to one with the
  reference's within ``window`` steps, and every state var must satisfy
  ``|x - ref| <= atol + rtol |ref|`` with the tolerances of ``TOLERANCE``.
  When some spike moved (inside the window), a neuron's trajectory after it
  legitimately differs, so vars are then reported but not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .numerics import Fixed

TOLERANCE = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}
WINDOW = 1


@dataclass
class PopulationReport:
    name: str
    spikes_ref: int
    spikes: int
    unmatched: int  # spikes without a partner within the window (both sides)
    first_difference_step: int | None  # first step where the spike rasters differ
    exact: bool


@dataclass
class VarReport:
    name: str
    max_abs: float
    max_rel: float
    exact: bool
    within: bool


@dataclass
class Report:
    backend: str
    populations: list[PopulationReport] = field(default_factory=list)
    vars: list[VarReport] = field(default_factory=list)
    fixed: bool = False

    @property
    def spikes_exact(self) -> bool:
        return all(p.exact for p in self.populations)

    @property
    def bit_exact(self) -> bool:
        return self.spikes_exact and all(v.exact for v in self.vars)

    @property
    def ok(self) -> bool:
        if self.fixed:
            return self.bit_exact
        if any(p.unmatched for p in self.populations):
            return False
        return not self.spikes_exact or all(v.within for v in self.vars)

    def failures(self) -> list[str]:
        out = [f"{p.name}: {p.unmatched} unmatched spikes (first difference at step "
               f"{p.first_difference_step})" for p in self.populations if p.unmatched]
        if self.spikes_exact or self.fixed:
            out += [f"{v.name}: max abs error {v.max_abs:.3g}, max rel {v.max_rel:.3g}"
                    for v in self.vars if not (v.exact if self.fixed else v.within)]
        return out


def _events(sim, pop):
    spikes = sim.spikes(pop)
    times, ids = spikes[0], spikes[1]
    batch = spikes[2] if len(spikes) == 3 else np.zeros_like(ids)
    steps = np.rint(times / sim.network.dt).astype(np.int64)
    order = np.lexsort((steps, ids, batch))
    return steps[order], ids[order], batch[order]


def _unmatched(ref, other, window: int) -> int:
    """Spikes left over after pairing, per (batch, neuron), in time order within window."""
    missing = 0
    keys = set(zip(ref[2].tolist(), ref[1].tolist())) | set(zip(other[2].tolist(),
                                                                other[1].tolist()))
    for b, i in keys:
        a = ref[0][(ref[2] == b) & (ref[1] == i)]
        c = other[0][(other[2] == b) & (other[1] == i)]
        if len(a) == len(c) and np.all(np.abs(a - c) <= window):
            continue
        missing += _greedy(list(a), list(c), window)
    return missing


def _greedy(a, c, window) -> int:
    unmatched, j = 0, 0
    for t in a:
        while j < len(c) and c[j] < t - window:
            unmatched += 1
            j += 1
        if j < len(c) and abs(c[j] - t) <= window:
            j += 1
        else:
            unmatched += 1
    return unmatched + len(c) - j


def _first_difference(ref, other) -> int | None:
    a = set(zip(*(x.tolist() for x in ref)))
    c = set(zip(*(x.tolist() for x in other)))
    diff = a ^ c
    return min(s for s, _, _ in diff) if diff else None


def _var_report(name, ref, value, precision) -> VarReport:
    ref, value = np.asarray(ref), np.asarray(value)
    exact = ref.shape == value.shape and np.array_equal(ref, value)
    if ref.size == 0 or ref.shape != value.shape:
        return VarReport(name, 0.0 if exact else np.inf, 0.0 if exact else np.inf, exact, exact)
    err = np.abs(value.astype(np.float64) - ref.astype(np.float64))
    rel = err / np.maximum(np.abs(ref.astype(np.float64)), 1e-30)
    rtol, atol = TOLERANCE.get(str(precision), (0.0, 0.0))
    within = bool(np.all(err <= atol + rtol * np.abs(ref)))
    return VarReport(name, float(err.max()), float(rel.max()), exact, within)


def compare(reference, sim, window: int = WINDOW) -> Report:
    """Compare recorded spikes and current state of ``sim`` with ``reference``."""
    precision = sim.network.precision
    report = Report(sim.backend, fixed=isinstance(precision, Fixed))
    for pop in reference.record_spikes:
        ref, other = _events(reference, pop), _events(sim, pop)
        exact = all(np.array_equal(x, y) for x, y in zip(ref, other))
        report.populations.append(PopulationReport(
            pop, len(ref[0]), len(other[0]), 0 if exact else _unmatched(ref, other, window),
            None if exact else _first_difference(ref, other), exact))
    for name in sorted(reference.state):
        report.vars.append(_var_report(name, reference.get(name), sim.get(name), precision))
    return report
