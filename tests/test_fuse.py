"""Fused postsynaptic models (Network.fuse_postsynaptic): which projections
share an input ring and postsynaptic instance, that sharing equals separate
instances up to float rounding, and that every backend agrees with the
reference on a fused network."""

from dataclasses import replace

import numpy as np
import pytest

import spikeforge as sf

LIF = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
           tau_refrac=1.0)


def fused_network(precision="float64", fuse=True, batch_size=1):
    """Three sources onto one LIF population: A and B through ExpCurr with equal
    tau (one delayed dendritically), C through ExpCurr with another tau, D and E
    through Delta; plus a second target input to check the key."""
    net = sf.NetworkBuilder(dt=0.5, batch_size=batch_size, seed=7, precision=precision,
                            fuse_postsynaptic=fuse)
    net.population("A", sf.PoissonSource, 20, params={"rate": 300.0})
    net.population("B", sf.PoissonSource, 15, params={"rate": 200.0})
    net.population("N", sf.LIF, 12, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    exp = dict(postsynaptic=sf.ExpCurr, ps_params={"tau": 4.0})
    net.connect("A", "N", sf.FixedProbability(0.4), w=sf.Uniform(0.0, 0.2), **exp, delay=1)
    net.connect("B", "N", sf.FixedTotalNumber(60), name="B_N_dend",
                weight_update=sf.StaticPulseDendriticDelay, w=0.15,
                wu_init={"d": 3},
                max_dendritic_delay=4, **exp)
    net.connect("B", "N", sf.FixedProbability(0.3), name="B_N_slow", w=-0.1,
                postsynaptic=sf.ExpCurr, ps_params={"tau": 9.0})
    net.connect("N", "N", sf.FixedNumberPost(3), name="rec", w=-0.2)
    net.connect("A", "N", sf.FixedProbability(0.2), name="A_N_delta", w=0.05, delay=2)
    return net.network()


def test_leaders_group_equal_linear_models_on_the_same_input():
    net = fused_network()
    assert net.postsynaptic_leader == {"A_N": "A_N", "B_N_dend": "A_N", "B_N_slow": "B_N_slow",
                                       "rec": "rec", "A_N_delta": "rec"}
    assert net.ring_depth("A_N") == net.ring_depth("B_N_dend") == 5
    assert net.ring_depth("rec") == 1
    assert all(a == b for a, b in replace(net, fuse_postsynaptic=False)
               .postsynaptic_leader.items())


def test_what_keeps_a_projection_on_its_own():
    net = sf.NetworkBuilder(fuse_postsynaptic=True)
    net.population("S", sf.PoissonSource, 4, params={"rate": 10.0})
    two_inputs = sf.NeuronModel("TwoInputs", vars=(sf.Var("v", default=0.0),),
                                sim="v = v * 0.5 + i_syn + i_ext", inputs=("i_ext",))
    net.population("N", two_inputs, 4)
    exp = dict(postsynaptic=sf.ExpCurr, ps_params={"tau": 4.0})
    net.connect("S", "N", sf.Dense(), name="first", w=0.1, **exp)
    net.connect("S", "N", sf.Dense(), name="started", w=0.1, ps_init={"i": 0.5}, **exp)
    nonlinear = sf.PostsynapticModel("Sq", vars=(sf.Var("g", default=0.0),),
                                     code="g = g * 0.5 + inp", current="g * g")
    net.connect("S", "N", sf.Dense(), name="square", w=0.1, postsynaptic=nonlinear)
    net.connect("S", "N", sf.Dense(), name="other_input", w=0.1, target="i_ext", **exp)
    net.connect("S", "N", sf.Dense(), name="second", w=0.1, ps_init={"i": 0.0}, **exp)
    leaders = net.network().postsynaptic_leader
    assert leaders == {"first": "first", "started": "started", "square": "square",
                       "other_input": "other_input", "second": "first"}


def test_fuse_flag_is_checked():
    with pytest.raises(ValueError, match="fuse_postsynaptic must be True or False"):
        sf.NetworkBuilder(fuse_postsynaptic=1)


def run(net, backend="numpy", steps=120):
    sim = net.build(backend, record_vars=["N.v"])
    sim.run(steps=steps, progress=False)
    return sim


def test_fused_equals_separate_instances_up_to_rounding():
    fused, separate = run(fused_network()), run(fused_network(fuse=False))
    assert len(separate.spikes("N")[0]) > 20
    np.testing.assert_allclose(fused.trace("N.v")[1], separate.trace("N.v")[1], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fused.spikes("N")[1], separate.spikes("N")[1])
    # the group's current is the sum of its members' currents
    np.testing.assert_allclose(fused.get("A_N.i"),
                               separate.get("A_N.i") + separate.get("B_N_dend.i"), atol=1e-12)


def conductance_network(fuse=True):
    """Two excitatory ExpCond projections with equal params (they fuse: the current
    (g1 + g2)(E - v) = g1 (E - v) + g2 (E - v)) and an inhibitory one onto a LIF."""
    net = sf.NetworkBuilder(dt=0.5, seed=3, precision="float64", fuse_postsynaptic=fuse)
    net.population("A", sf.PoissonSource, 20, params={"rate": 300.0})
    net.population("B", sf.PoissonSource, 15, params={"rate": 200.0})
    net.population("N", sf.LIF, 12, params={**LIF, "v_rest": -60.0, "v_reset": -60.0,
                                            "v_thresh": -50.0},
                   init={"v": sf.Uniform(-60.0, -50.0)})
    exc = dict(postsynaptic=sf.ExpCond, ps_params={"tau": 5.0, "E_rev": 0.0})
    net.connect("A", "N", sf.FixedProbability(0.4), name="A_N", w=sf.Uniform(0.0, 0.01), **exc)
    net.connect("B", "N", sf.FixedProbability(0.4), name="B_N", w=0.008, delay=1, **exc)
    net.connect("B", "N", sf.FixedProbability(0.3), name="B_N_inh", w=0.02,
                postsynaptic=sf.ExpCond, ps_params={"tau": 5.0, "E_rev": -80.0})
    return net.network()


def test_conductance_inputs_fuse_like_currents():
    net = conductance_network()
    assert net.postsynaptic_leader == {"A_N": "A_N", "B_N": "A_N", "B_N_inh": "B_N_inh"}
    fused, separate = run(net), run(conductance_network(fuse=False))
    assert len(separate.spikes("N")[0]) > 20
    np.testing.assert_allclose(fused.trace("N.v")[1], separate.trace("N.v")[1], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fused.spikes("N")[1], separate.spikes("N")[1])
    np.testing.assert_allclose(fused.get("A_N.g"), separate.get("A_N.g") + separate.get("B_N.g"),
                               atol=1e-12)


def test_a_fused_member_has_no_postsynaptic_state_of_its_own():
    sim = fused_network().build("numpy")
    with pytest.raises(KeyError, match="B_N_dend.i"):
        sim.get("B_N_dend.i")


def test_model_file_keeps_the_flag(tmp_path):
    net = fused_network()
    net.save(tmp_path / "m.json")
    assert sf.load(tmp_path / "m.json") == net


def test_fused_delta_inputs_sum_exactly(backend, probe_model):
    """Oracle: two fused Delta projections from a spike-source array (one with an
    axonal delay of 2 steps) put w_a + w_b into the probe's input exactly."""
    net = sf.NetworkBuilder(dt=1.0, fuse_postsynaptic=True)
    net.population("S", sf.SpikeSourceArray, 2, spike_times=[[1.0, 4.0], [2.0]])
    net.population("P", probe_model, 2)
    net.connect("S", "P", sf.Dense(), name="a", w=0.5)
    net.connect("S", "P", sf.OneToOne(), name="b", w=0.25, delay=2)
    assert net.network().postsynaptic_leader["b"] == "a"
    sim = net.build(backend, record_vars=["P.x"])
    sim.run(steps=8, progress=False)
    expected = np.zeros((8, 2))
    expected[[2, 5, 3], :] += 0.5          # Dense: every spike reaches both probes at t+1
    expected[[4, 7], 0] += 0.25            # OneToOne, delay 2: source 0's spikes at t+3
    expected[5, 1] += 0.25                 # source 1's spike at step 2
    np.testing.assert_array_equal(sim.trace("P.x")[1].reshape(8, 2), expected)


@pytest.mark.parametrize("precision", ["float32", sf.Fixed(32, 16)], ids=["float32", "fixed"])
def test_every_backend_matches_the_reference_on_a_fused_network(backend, precision):
    net = fused_network(precision, batch_size=2)
    ref, sim = run(net), run(net, backend)
    if isinstance(precision, sf.Fixed) or backend == "cpu":
        np.testing.assert_array_equal(sim.trace("N.v")[1], ref.trace("N.v")[1])
    else:
        np.testing.assert_allclose(sim.trace("N.v")[1], ref.trace("N.v")[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(sim.spikes("N"), ref.spikes("N")):
        np.testing.assert_array_equal(a, b)
