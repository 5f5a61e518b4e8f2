"""Fixed-point semantics (spikeforge.fixed, docs/semantics.md), pinned on every
backend with hand-computed integer answers."""

import numpy as np
import pytest

import spikeforge as sf
from spikeforge import fixed as F

FMT = sf.Fixed(32, 8)


def one_step(backend, code, init, precision=FMT, params=None, steps=1):
    model = sf.NeuronModel("Probe", params=tuple(params or ()),
                           vars=tuple(sf.Var(k) for k in init), sim=code)
    net = sf.NetworkBuilder(dt=0.5, precision=precision)
    net.population("A", model, 1, params=params or {}, init=init)
    sim = net.build(backend=backend)
    sim.run(steps=steps)
    return sim


def raw(value, fmt=FMT):
    return int(F.to_fixed(value, fmt))


@pytest.mark.parametrize("code,init,expected", [
    ("x = x * y", {"x": 1.5, "y": -0.00390625}, -0.0078125),         # exact
    ("x = x * y", {"x": 0.00390625, "y": 0.5}, 0.0),                   # floor of 0.5 ulp
    ("x = x * y", {"x": -0.00390625, "y": 0.5}, -0.00390625),          # floor, not truncation
    ("x = x + y", {"x": 2**23 - 1 / 256, "y": 1 / 256}, -(2**23)),     # sums wrap
    ("x = -x", {"x": -(2**23), "y": 0.0}, -(2**23)),                   # -min wraps to min
    ("x = floor(x)", {"x": -1.25, "y": 0.0}, -2.0),
    ("x = abs(x)", {"x": -1.25, "y": 0.0}, 1.25),
    ("x = x % y", {"x": -7.0, "y": 3.0}, -1.0),                        # C remainder
    ("x = x * 3", {"x": 0.5, "y": 0.0}, 1.5),                          # int aligned by shift
])
def test_arithmetic_rules(backend, code, init, expected):
    sim = one_step(backend, code, init)
    assert sim.get("A.x")[0] == expected


def test_division_by_param_is_multiplication_by_rounded_reciprocal(backend):
    sim = one_step(backend, "x = x / tau", {"x": 100.0}, params={"tau": 3.0})
    r = raw(1 / 3)  # round(256 / 3) = 85
    assert sim.get("A.x")[0] == ((raw(100.0) * r) >> 8) / 256


def test_constants_round_to_nearest_even(backend):
    sim = one_step(backend, "x = 0.001953125 + 0.005859375", {"x": 0.0})
    # 0.5 ulp -> 0 (even), 1.5 ulp -> 2 ulp
    assert sim.get("A.x")[0] == 2 / 256


def test_narrow_storage_wraps_or_saturates(backend):
    weight = sf.Var("w", fmt=sf.Fixed(8, 6))
    sat = sf.Var("s", fmt=sf.Fixed(8, 6), saturate=True)
    model = sf.NeuronModel("Narrow", vars=(weight, sat), sim="w = w + 1.5\ns = s + 1.5")
    net = sf.NetworkBuilder(precision=FMT)
    net.population("A", model, 1, init={"w": 1.0, "s": 1.0})
    sim = net.build(backend=backend)
    assert sim.state["A.w"].dtype == np.int8
    sim.run(steps=1)
    assert sim.get("A.w")[0] == 2.5 - 4.0  # 8-bit, 6 fractional: range [-2, 2), wraps
    assert sim.get("A.s")[0] == 127 / 64  # clamps to the largest value
    sim.set("A.w", 0.015625 * 3)
    assert sim.state["A.w"][0] == 3


def test_odd_widths_wrap_and_saturate_at_their_own_bits(backend):
    """Any width from 2 to 32 bits (ap_fixed<W, I>): a 24-bit compute format wraps sums at
    2^15 (8 fractional bits), a 12-bit storage format at 2^5 (6 fractional bits) or
    clamps there, held in the next integer type."""
    compute = sf.Fixed(24, 8)
    model = sf.NeuronModel("Odd", vars=(sf.Var("x"), sf.Var("w", fmt=sf.Fixed(12, 6)),
                                        sf.Var("s", fmt=sf.Fixed(12, 6), saturate=True)),
                           sim="x = x + 0.00390625\nw = w + 1.5\ns = s + 1.5")
    net = sf.NetworkBuilder(precision=compute)
    net.population("A", model, 1, init={"x": 2**15 - 1 / 256, "w": 31.0, "s": 31.0})
    sim = net.build(backend=backend)
    assert sim.state["A.x"].dtype == np.int32 and sim.state["A.w"].dtype == np.int16
    sim.run(steps=1)
    assert sim.get("A.x")[0] == -(2**15)
    assert sim.get("A.w")[0] == 32.5 - 64.0  # range [-32, 32): wraps
    assert sim.get("A.s")[0] == 2047 / 64  # clamps to the largest 12-bit value
    with pytest.raises(ValueError, match="bits must be an int from 2 to 32"):
        sf.Fixed(33, 8)


def test_store_to_coarser_format_floors(backend):
    coarse = sf.Var("c", fmt=sf.Fixed(16, 2))
    model = sf.NeuronModel("Coarse", vars=(coarse,), sim="c = c - 0.00390625")
    net = sf.NetworkBuilder(precision=FMT)
    net.population("A", model, 1, init={"c": 1.0})
    sim = net.build(backend=backend)
    sim.run(steps=1)
    assert sim.get("A.c")[0] == 0.75  # 1 - 1/256 floors to a multiple of 1/4


def test_time_and_uniform_draws_are_integer_exact(backend):
    model = sf.NeuronModel("Clock", vars=(sf.Var("now", default=0.0), sf.Var("u", default=0.0)),
                           sim="now = t\nu = uniform()")
    net = sf.NetworkBuilder(dt=0.1, precision=FMT, seed=5)
    net.population("A", model, 3)
    sim = net.build(backend=backend)
    sim.run(steps=8)
    assert sim.get("A.now")[0] == np.rint(0.7 * 256) / 256
    from spikeforge.philox import Philox, pack_c3

    w = Philox(5, "A.sim").words(7, np.arange(3), 0, pack_c3(0, 0))[0]
    np.testing.assert_array_equal(sim.get("A.u"), (w >> 24) / 256)


def test_poisson_counts_use_threshold_table(backend):
    net = sf.NetworkBuilder(dt=1.0, precision=sf.Fixed(32, 16), seed=2)
    net.population("P", sf.PoissonSource, 2000, params={"rate": 1500.0})
    sim = net.build(backend=backend)
    sim.run(steps=5)
    counts = np.bincount(sim.spikes("P")[1], minlength=2000)
    assert abs(counts.mean() / 5 - 1.5) < 0.05  # mean count = rate dt / 1000
    assert counts.max() > 5  # several events per step happen


@pytest.mark.parametrize("code,reason", [
    ("x = exp(x)", "'exp' is allowed only in derived params"),
    ("x = x / x", "division only by a param or constant"),
    ("x = 1.0e9", "outside the range"),
])
def test_fixed_point_rejects_inexact_code_at_build(backend, code, reason):
    model = sf.NeuronModel("Bad", vars=(sf.Var("x", default=0.0),), sim=code)
    net = sf.NetworkBuilder(precision=sf.Fixed(32, 16))
    net.population("A", model, 1)
    with pytest.raises(ValueError, match=f"population 'A': Bad.sim, line 1.*{reason}"):
        net.build(backend=backend)


def test_initial_value_out_of_range_names_var(backend):
    net = sf.NetworkBuilder(precision=sf.Fixed(16, 8))
    net.population("A", sf.IF, 2, params={"v_thresh": 1.0}, init={"v": 500.0})
    with pytest.raises(ValueError, match="A.v.*outside the range"):
        net.build(backend=backend)
