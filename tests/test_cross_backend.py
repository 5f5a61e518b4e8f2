"""Property-based agreement of every backend with the NumPy reference on random
networks (spikeforge.testing). A failing example is written out as a model
file that reproduces it (path in the assertion message)."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import spikeforge as sf
from spikeforge.compare import compare
from spikeforge.testing import describe, networks, register_profiles

register_profiles()

OTHER_BACKENDS = [s.name for s in sf.available() if s.available and s.name != "numpy"]
STEPS = 40
FAILURES = Path("spikeforge-failures")
BUILD_OPTIONS = {"cpu": {"opt": "-O1"}}  # same numerics as -O3 (no fast-math), faster compile


def run(net, backend):
    sim = net.build(backend=backend, **BUILD_OPTIONS.get(backend, {}))
    sim.run(steps=STEPS, progress=False)
    for group in dict.fromkeys(cu.group for cu in net.custom_updates if not cu.every_step):
        sim.custom_update(group)
    return sim


def write_failure(net, backend, report) -> str:
    FAILURES.mkdir(exist_ok=True)
    path = FAILURES / f"{backend}-{abs(hash(describe(net))) % 10**8}.json"
    net.save(path)
    return f"{backend} differs from numpy:\n  " + "\n  ".join(report.failures()) + (
        f"\nnetwork: {describe(net)}\nreproduce with: spikeforge.load({str(path)!r})")


@pytest.mark.skipif(not OTHER_BACKENDS, reason="no backend besides numpy can run here")
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net=networks())
def test_backend_matches_numpy(backend, net):
    reference = run(net, "numpy")
    report = compare(reference, run(net, backend))
    assert report.ok, write_failure(net, backend, report)


@pytest.mark.skipif(not OTHER_BACKENDS, reason="no backend besides numpy can run here")
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net=networks(precisions=(sf.Fixed(32, 16), sf.Fixed(24, 12))))
def test_backend_equals_numpy_bit_for_bit_in_fixed_point(backend, net):
    reference = run(net, "numpy")
    report = compare(reference, run(net, backend))
    assert report.bit_exact, write_failure(net, backend, report)


def test_compare_catches_a_changed_state_var():
    net = sf.NetworkBuilder(precision="float64")
    net.population("A", sf.IF, 3, params={"v_thresh": 10.0}, init={"v": [0.0, 1.0, 2.0]})
    a, b = net.build("numpy"), net.build("numpy")
    assert compare(a, b).bit_exact
    b.set("A.v", [0.0, 1.0, 2.0 + 1e-6])
    report = compare(a, b)
    assert not report.ok and "A.v" in report.failures()[0]


def test_compare_pairs_spikes_within_window():
    def sim_with(times):
        net = sf.NetworkBuilder(dt=1.0)
        net.population("S", sf.SpikeSourceArray, 2, spike_times=times)
        sim = net.build("numpy")
        sim.run(steps=20, progress=False)
        return sim

    ref = sim_with([[3.0, 9.0], [5.0]])
    report = compare(ref, sim_with([[4.0, 9.0], [5.0]]))
    assert report.ok and not report.spikes_exact
    assert report.populations[0].first_difference_step == 3
    report = compare(ref, sim_with([[6.0, 9.0], [5.0]]))
    assert not report.ok and report.populations[0].unmatched == 2
    assert np.isfinite(report.vars[0].max_abs) if report.vars else True
