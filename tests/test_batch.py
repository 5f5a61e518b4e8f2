"""Batching: custom-update reductions and batch equivalence.

* Reductions (DESIGN.md, custom updates): each element's code leaves its
  contribution in the reduction output; over "batch" the result has one value per
  element, ``values.sum(axis=0)`` (or max), over "neurons" one per batch element,
  ``values.sum(axis=1)``. Values are small integers, so sums are exact in any order.
* Per-step custom updates run last in the step (phase 7), after the neuron update.
* Batch equivalence: a network without run-time random draws run as a batch of B
  trials (different spike trains and initial states per element) equals B single
  runs, spike for spike and value for value. Weights are multiples of 1/8 so
  every input sum is exact in any accumulation order.
"""

from __future__ import annotations

import numpy as np
import pytest

import spikeforge as sf

DT = 0.1
BATCH, N = 4, 7
ACC = sf.NeuronModel("Acc", vars=(sf.Var("v", default=0.0), sf.Var("b", batched=False,
                                                                    default=0.0)),
                     sim="v += i_syn", doc="Test accumulator: v <- v + i_syn; b is shared.")


def _values(seed=0, shape=(BATCH, N)) -> np.ndarray:
    return np.random.default_rng(seed).integers(-50, 50, size=shape).astype(np.float64)


def _reduce_net(reductions, code, batch=BATCH, **kwargs):
    net = sf.NetworkBuilder(dt=DT, batch_size=batch)
    net.population("P", ACC, N)
    net.custom_update("red", "P", code, var_refs={"v": "P.v", "b": "P.b"},
                      reductions=reductions, **kwargs)
    return net


@pytest.mark.parametrize("op, over", [("sum", "batch"), ("max", "batch"), ("sum", "neurons"),
                                      ("max", "neurons")])
def test_reduction_matches_numpy(backend, op, over):
    values = _values()
    sim = _reduce_net({"s": sf.Reduction(op, over)}, "s = v").build(backend=backend)
    sim.set("P.v", values)
    sim.custom_update("red")
    want = getattr(values, op)(axis=0 if over == "batch" else 1)
    got = sim.get("red.s")
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(sim.get("P.v"), values)  # reading does not write


def test_several_reductions_of_expressions(backend):
    values, shared = _values(1), _values(2, (N,))
    reductions = {"total": sf.Reduction("sum", "batch"), "peak": sf.Reduction("max", "neurons"),
                  "sq": sf.Reduction("sum", "neurons")}
    sim = _reduce_net(reductions, "total = v + b\npeak = -v\nsq = v * v").build(backend=backend)
    sim.set("P.v", values)
    sim.set("P.b", shared)
    sim.custom_update("red")
    np.testing.assert_array_equal(sim.get("red.total"), (values + shared).sum(axis=0))
    np.testing.assert_array_equal(sim.get("red.peak"), (-values).max(axis=1))
    np.testing.assert_array_equal(sim.get("red.sq"), (values * values).sum(axis=1))


def test_conditional_contributions_start_at_identity(backend):
    """Elements that assign nothing contribute the identity: 0 for sum, -inf for max."""
    values = _values(5)
    values[:, 0] = -7.0  # every batch element has a negative value
    values[0, :] = -3.0  # every neuron has a negative value
    reductions = {"pos": sf.Reduction("sum", "batch"), "neg": sf.Reduction("max", "neurons"),
                  "neg_b": sf.Reduction("max", "batch")}
    code = "if v > 0:\n    pos = v\nelse:\n    neg = v\n    neg_b = v"
    sim = _reduce_net(reductions, code).build(backend=backend)
    sim.set("P.v", values)
    sim.custom_update("red")
    np.testing.assert_array_equal(sim.get("red.pos"), np.where(values > 0, values, 0).sum(axis=0))
    negative = np.where(values <= 0, values, -np.inf)
    np.testing.assert_array_equal(sim.get("red.neg"), negative.max(axis=1))
    np.testing.assert_array_equal(sim.get("red.neg_b"), negative.max(axis=0))


def test_reduction_with_batch_size_one(backend):
    values = _values(3, (N,))
    net = _reduce_net({"s": sf.Reduction("sum", "batch"), "m": sf.Reduction("max", "neurons")},
                      "s = v\nm = v", batch=1)
    sim = net.build(backend=backend)
    sim.set("P.v", values)
    sim.custom_update("red")
    np.testing.assert_array_equal(sim.get("red.s"), values)
    np.testing.assert_array_equal(sim.get("red.m"), [values.max()])


def test_group_uses_earlier_reduction(backend):
    """A group runs in declaration order: subtract each batch element's max (softmax-style)."""
    values = _values(4)
    net = sf.NetworkBuilder(dt=DT, batch_size=BATCH)
    net.population("P", ACC, N)
    net.custom_update("peak", "P", "m = v", var_refs={"v": "P.v"},
                      reductions={"m": sf.Reduction("max", "neurons")}, group="norm")
    net.custom_update("shift", "P", "v = v - m", var_refs={"v": "P.v", "m": "peak.m"},
                      group="norm")
    sim = net.build(backend=backend)
    sim.set("P.v", values)
    sim.custom_update("norm")
    np.testing.assert_array_equal(sim.get("P.v"), values - values.max(axis=1, keepdims=True))
    sim.custom_update("norm")  # idempotent now: the max is 0
    np.testing.assert_array_equal(sim.get("P.v"), values - values.max(axis=1, keepdims=True))


def test_host_custom_update_runs_only_when_called(backend):
    net = sf.NetworkBuilder(dt=DT, batch_size=BATCH)
    net.population("P", ACC, N)
    net.custom_update("inc", "P", "v = v + 1", var_refs={"v": "P.v"})
    sim = net.build(backend=backend)
    sim.run(steps=5)
    np.testing.assert_array_equal(sim.get("P.v"), 0.0)
    sim.custom_update("inc")
    sim.custom_update("inc")
    np.testing.assert_array_equal(sim.get("P.v"), 2.0)


def test_every_step_update_runs_after_neurons(backend):
    """IF neurons driven by a DC current of 1: v(end of step k) = v0 + k + 1. A per-step
    sum over neurons recorded at step k sees that value (phase 7 follows phase 6),
    and a per-step clamp v = min(v, 6) is visible in the recorded v."""
    v0 = np.arange(BATCH * N, dtype=np.float64).reshape(BATCH, N) % 5
    net = sf.NetworkBuilder(dt=DT, batch_size=BATCH)
    net.population("P", sf.IF, N, params={"v_thresh": 1e9})
    net.current_source("dc", sf.DC, "P", params={"amp": 1.0})
    net.custom_update("total", "P", "s = v", var_refs={"v": "P.v"},
                      reductions={"s": sf.Reduction("sum", "neurons")}, every_step=True)
    net.custom_update("clamp", "P", "v = min(v, 6.0)", var_refs={"v": "P.v"}, every_step=True)
    sim = net.build(backend=backend, record_vars=["total.s", "P.v"])
    sim.set("P.v", v0)
    n_steps = 8
    sim.run(steps=n_steps)
    v = v0[None]
    want_v, want_s = [], []
    for _ in range(n_steps):
        v = v + 1
        want_s.append(v.sum(axis=-1)[0])
        v = np.minimum(v, 6.0)
        want_v.append(v[0])
    np.testing.assert_array_equal(sim.trace("total.s")[1], np.array(want_s))
    np.testing.assert_array_equal(sim.trace("P.v")[1], np.array(want_v))


# batch equivalence ------------------------------------------------------------------

N_IN, N_OUT, B = 10, 8, 3
LIF_PARAMS = dict(C=1.0, tau_m=10.0, v_rest=-65.0, v_reset=-70.0, v_thresh=-55.0,
                  i_offset=0.0, tau_refrac=1.0)
STDP_PARAMS = dict(tau_plus=10.0, tau_minus=12.0, a_plus=0.05, a_minus=0.06, w_min=0.0,
                   w_max=4.0)


def _spike_trains(seed) -> list:
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(150, size=rng.integers(3, 12), replace=False) * DT)
            for _ in range(N_IN)]


def _eighths(seed, shape, low, high):
    rng = np.random.default_rng(seed)
    return rng.integers(int(low * 8), int(high * 8), size=shape) / 8.0


def _equivalence_net(spike_times, batch):
    """SSA -> LIF (ExpCurr, dendritic delays) -> LIF (STDP, batched w) with a delayed
    recurrent Sparse projection; no run-time random draws anywhere."""
    net = sf.NetworkBuilder(dt=DT, batch_size=batch, seed=11)
    net.population("inp", sf.SpikeSourceArray, N_IN, spike_times=spike_times)
    net.population("A", sf.LIF, N_OUT, params=LIF_PARAMS, init={"v": -65.0})
    net.population("Z", sf.LIF, N_OUT, params=LIF_PARAMS, init={"v": -65.0})
    net.connect("inp", "A", sf.Dense(), "in_a", weight_update=sf.StaticPulseDendriticDelay,
                wu_init={"w": _eighths(1, (N_IN, N_OUT), 0, 6),
                         "d": np.random.default_rng(2).integers(0, 4, (N_IN, N_OUT))},
                postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0}, max_dendritic_delay=3)
    net.connect("A", "Z", sf.FixedNumberPost(3), "a_z", weight_update=sf.STDP,
                wu_params=STDP_PARAMS, wu_init={"w": _eighths(3, (N_OUT * 3,), 1, 4)},
                postsynaptic=sf.ExpCurr, ps_params={"tau": 3.0}, delay=2)
    pre, post = np.nonzero(np.random.default_rng(4).random((N_OUT, N_OUT)) < 0.3)
    net.connect("Z", "A", sf.Sparse.from_pairs(pre, post, N_OUT), "z_a",
                w=_eighths(5, (len(pre),), -2, 2), delay=1)
    return net


FINAL_VARS = ["A.v", "A.refrac_time", "Z.v", "Z.refrac_time", "in_a.i", "a_z.w", "a_z.x",
              "a_z.y", "a_z.i"]


def _initial_v(seed, shape):
    return -70.0 + 14.0 * np.random.default_rng(seed).random(shape)


def test_batch_equals_single_runs(backend):
    trains = [_spike_trains(100 + b) for b in range(B)]
    v0_a, v0_z = _initial_v(6, (B, N_OUT)), _initial_v(7, (B, N_OUT))
    n_steps = 200
    batched = _equivalence_net(trains, B).build(backend=backend, record_vars=["A.v"])
    batched.set("A.v", v0_a)
    batched.set("Z.v", v0_z)
    batched.run(steps=n_steps)
    counts = []
    for b in range(B):
        single = _equivalence_net(trains[b], 1).build(backend=backend, record_vars=["A.v"])
        single.set("A.v", v0_a[b])
        single.set("Z.v", v0_z[b])
        single.run(steps=n_steps)
        for pop in ("inp", "A", "Z"):
            times, ids, batch = batched.spikes(pop)
            mine = batch == b
            want_t, want_i = single.spikes(pop)
            np.testing.assert_array_equal(np.rint(times[mine] / DT), np.rint(want_t / DT))
            np.testing.assert_array_equal(ids[mine], want_i)
            counts.append(len(want_t))
        for name in FINAL_VARS:
            got = batched.get(name)
            got = got[b] if got.ndim == 2 else got
            np.testing.assert_array_equal(got, single.get(name), err_msg=f"{name} (batch {b})")
        np.testing.assert_array_equal(batched.trace("A.v")[1][:, b], single.trace("A.v")[1])
    assert min(counts[1::3]) > 0 and min(counts[2::3]) > 0  # A and Z spike in every trial
    w = batched.get("a_z.w")
    assert not np.array_equal(w[0], w[1])  # trials learned differently


def test_batch_with_shared_spike_times_and_reset(backend):
    """One spike-time list for all trials + different initial v: trials differ only
    through v; after reset() the same run reproduces itself exactly."""
    trains = _spike_trains(200)
    v0 = _initial_v(8, (B, N_OUT))
    sim = _equivalence_net(trains, B).build(backend=backend)
    singles = []
    for b in range(B):
        single = _equivalence_net(trains, 1).build(backend=backend)
        single.set("A.v", v0[b])
        single.run(steps=120)
        singles.append(single)
    for _ in range(2):
        sim.set("A.v", v0)
        sim.run(steps=120)
        times, ids, batch = sim.spikes("Z")
        for b, single in enumerate(singles):
            want_t, want_i = single.spikes("Z")
            np.testing.assert_array_equal(np.rint(times[batch == b] / DT), np.rint(want_t / DT))
            np.testing.assert_array_equal(ids[batch == b], want_i)
            np.testing.assert_array_equal(sim.get("a_z.w")[b], single.get("a_z.w"))
        sim.reset()
