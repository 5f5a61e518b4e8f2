"""cpu backend: deferred synapse dynamics (backends/cstyle/defer.py). The statements
of ``synapse_dynamics`` that only update synapse state run once per block of steps,
synapse by synapse, from a history of the neuron vars they read. Results must equal
the step-by-step code bit for bit, whatever the block, the run lengths and threads."""

import numpy as np
import pytest

import spikeforge as sf
from spikeforge.backends.cpu.dialect import CpuDialect
from spikeforge.backends.cstyle.defer import deferral

pytestmark = pytest.mark.skipif(
    not any(s.name == "cpu" and s.available for s in sf.available()), reason="no C compiler")

LIF = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
           tau_refrac=1.0)

# delivers every step; a trace of pre x post and an accumulator only it reads
TRACE = sf.WeightUpdateModel(
    "Trace", params=("tau",), derived={"k": "exp(-dt / tau)"},
    vars=(sf.Var("w", batched=False), sf.Var("tr", default=0.0), sf.Var("acc", default=0.0)),
    synapse_dynamics="deliver(w * v_pre)\ntr = k * tr + v_pre * v_post\n"
                     "if refrac_time_post > 0.0:\n    acc += tr\n"
                     "else:\n    acc -= 0.5 * tr * v_post")


def trace_network(batch=2):
    net = sf.NetworkBuilder(dt=0.5, seed=3, batch_size=batch)
    net.population("P", sf.PoissonSource, 20, params={"rate": 200.0})
    net.population("A", sf.LIF, 30, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    net.population("B", sf.LIF, 25, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    net.connect("P", "A", sf.FixedProbability(0.5), name="drive", w=sf.Uniform(0.0, 0.4))
    net.connect("A", "B", sf.Dense(), name="dense", weight_update=TRACE,
                wu_params={"tau": 5.0}, wu_init={"w": sf.Uniform(0.0, 0.02)})
    net.connect("B", "A", sf.FixedProbability(0.3), name="sparse", weight_update=TRACE,
                wu_params={"tau": 3.0}, wu_init={"w": sf.Uniform(-0.03, 0.0)})
    return net.network()


def run(net, block, monkeypatch, runs=(37, 5, 1, 64), **options):
    monkeypatch.setattr(CpuDialect, "defer_block", block)
    sim = net.build("cpu", record_spikes=("A", "B"), **options)
    for steps in runs:
        sim.run(steps=steps, progress=False)
    return sim


@pytest.mark.parametrize("block,options", [(4, {}), (32, {}), (1, {}),
                                           (8, {"threads": 2, "parallel_grain": 0})])
def test_deferred_equals_step_by_step(block, options, monkeypatch):
    net = trace_network()
    want = run(net, 0, monkeypatch)
    got = run(net, block, monkeypatch, **options)
    assert set(got.program.deferred) == {"dense", "sparse"} and not want.program.deferred
    assert "sf_defer_" in got.source and "sf_defer_" not in want.source
    for key in ("dense.tr", "dense.acc", "sparse.tr", "sparse.acc", "A.v", "B.v"):
        np.testing.assert_array_equal(got.get(key), want.get(key), err_msg=key)
    assert np.any(got.get("dense.acc") != 0) and np.any(got.get("sparse.acc") != 0)
    for pop in ("A", "B"):
        for a, b in zip(got.spikes(pop), want.spikes(pop)):
            np.testing.assert_array_equal(a, b)


def test_recorded_synapse_vars_are_not_deferred(monkeypatch):
    net = trace_network()
    monkeypatch.setattr(CpuDialect, "defer_block", 8)
    sim = net.build("cpu", record_vars=("dense.acc",))
    assert set(sim.program.deferred) == {"sparse"}
    sim.run(steps=20, progress=False)
    monkeypatch.setattr(CpuDialect, "defer_block", 0)
    ref = net.build("cpu", record_vars=("dense.acc",))
    ref.run(steps=20, progress=False)
    np.testing.assert_array_equal(sim.trace("dense.acc")[1], ref.trace("dense.acc")[1])


def test_deferral_keeps_deliveries_and_splits_off_the_rest():
    net = trace_network()
    d = deferral(net, net.projection("dense"))
    assert [type(s).__name__ for s in d.now] == ["ExprStmt"]
    assert [type(s).__name__ for s in d.later] == ["Assign", "If"]
    assert d.pre_reads == ("v",) and d.post_reads == ("refrac_time", "v")


def projection_with(dynamics, pre_spike="", extra_vars=(), every_step_ref=None):
    model = sf.WeightUpdateModel(
        "M", vars=(sf.Var("w", default=0.1), sf.Var("tr", default=0.0), *extra_vars),
        synapse_dynamics=dynamics, pre_spike=pre_spike)
    net = sf.NetworkBuilder(dt=0.5, seed=1)
    net.population("A", sf.LIF, 4, params=LIF, init={"v": 0.0})
    net.connect("A", "A", sf.Dense(), name="p", weight_update=model)
    if every_step_ref:
        net.custom_update("cu", "p", "tr = tr * 0.5", var_refs={"tr": every_step_ref},
                          every_step=True)
    network = net.network()
    return deferral(network, network.projection("p"))


@pytest.mark.parametrize("dynamics,kw", [
    ("tr = tr + uniform()", {}),                          # a random draw
    ("tr = tr + t", {}),                                  # the time of the step
    ("tr = tr + v_post\ndeliver(tr)", {}),                # a delivery reads deferred state
    ("tr = tr + w", {"pre_spike": "deliver(w)\nw = w * 0.5"}),  # reads what pre_spike writes
    ("tr = tr + v_post", {"pre_spike": "deliver(tr)"}),   # pre_spike reads deferred state
    ("tr = tr + v_post", {"every_step_ref": "p.tr"}),     # a per-step custom update
    ("deliver(w)", {}),                                   # nothing to defer
])
def test_not_deferred(dynamics, kw):
    assert projection_with(dynamics, **kw) is None


def test_a_plain_trace_is_deferred():
    assert projection_with("tr = tr * 0.9 + v_post").later


@pytest.mark.parametrize("signal", ["online", "final"])
def test_eprop_training_is_the_same_with_and_without_deferral(signal, monkeypatch):
    from spikeforge.train import Adam, EProp, Input, Readout, Recurrent
    rng = np.random.default_rng(0)
    x = (rng.random((24, 30, 8)) < 0.2).astype(np.uint8)
    y = rng.integers(0, 3, 24)
    weights = []
    for block in (0, 7):  # 7: blocks end inside each 32-step sample
        monkeypatch.setattr(CpuDialect, "defer_block", block)
        m = EProp([Input(8), Recurrent(12), Readout(3)], optimizer=Adam(1e-2), backend="cpu",
                  seed=4, verbose=False, learning_signal=signal)
        m.fit((x, y), epochs=2, batch_size=8)
        weights.append(m.weights())
        sim = m._holder
        assert bool(sim.program.deferred) == (block > 0)
        raw = sim.get("rec.w").reshape(12, 12)
        assert np.all(np.diag(raw) == 0) and np.all(np.diag(sim.get("rec.m2").reshape(12, 12)) == 0)
    for key in weights[0]:
        np.testing.assert_array_equal(weights[0][key], weights[1][key], err_msg=key)
