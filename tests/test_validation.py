"""Bad input is rejected at the earliest point with an exception that names the
population/projection/field, and nothing is half-built: a ``NetworkBuilder`` call
that raises leaves ``builder.network()`` exactly as it was (the same object), and a
failed ``Simulation.set``/``run`` leaves the state and time unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
import spikeforge as sf

V = sf.Var
IF_PARAMS = {"v_thresh": 1.0}
STDP_PARAMS = {"tau_plus": 20.0, "tau_minus": 20.0, "a_plus": 0.01, "a_minus": 0.01,
               "w_min": 0.0, "w_max": 1.0}
LEARN = sf.WeightUpdateModel("Learn", vars=(V("w", batched=False),),
                             pre_spike="deliver(w)\nw += 0.1")
LEARN_BATCHED = sf.WeightUpdateModel("LearnB", vars=(V("w"),), pre_spike="deliver(w)\nw += 0.1")
COUNTER = sf.NeuronModel("Counter", vars=(V("c", type="int"),), sim="c += 1")


def two_pops(batch=1):
    """A (4 IF neurons) and B (6 IF neurons)."""
    net = sf.NetworkBuilder(dt=1.0, batch_size=batch)
    net.population("A", sf.IF, 4, params=IF_PARAMS)
    net.population("B", sf.IF, 6, params=IF_PARAMS)
    return net


def rejected(net, call, exc, *fragments):
    """``call(net)`` raises ``exc`` whose message holds every fragment, and the
    builder keeps its previous network."""
    before = net.network()
    with pytest.raises(exc) as info:
        call(net)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert net.network() is before
    return info.value


# populations ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, -3, 2.5, 3.0, True, False, "3", None])
def test_bad_population_size(size):
    rejected(two_pops(), lambda n: n.population("C", sf.IF, size, params=IF_PARAMS),
             ValueError, "population 'C'", "size", repr(size))


def test_numpy_integer_size_accepted():
    net = two_pops()
    net.population("C", sf.IF, np.int64(3), params=IF_PARAMS)
    assert net.network().population("C").size == 3


def test_missing_and_unknown_params():
    net = two_pops()
    rejected(net, lambda n: n.population("C", sf.IF, 3), ValueError,
             "population 'C'", "missing param", "'v_thresh'")
    rejected(net, lambda n: n.population("C", sf.IF, 3, params={"v_thresh": 1.0, "tau": 2.0}),
             ValueError, "population 'C'", "unknown param", "'tau'")
    rejected(net, lambda n: n.connect("A", "B", sf.Dense(), weight_update=sf.STDP, w=0.5),
             ValueError, "projection 'A_B'", "missing param", "'tau_plus'")
    rejected(net, lambda n: n.connect("A", "B", sf.Dense(), w=0.5, ps_params={"tau": 5.0}),
             ValueError, "projection 'A_B'", "unknown param", "'tau'")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_params(value):
    net = two_pops()
    rejected(net, lambda n: n.population("C", sf.IF, 3, params={"v_thresh": value}),
             ValueError, "population 'C'", "'v_thresh'", "finite")
    rejected(net, lambda n: n.connect("A", "B", sf.Dense(), w=0.5, postsynaptic=sf.ExpCurr,
                                      ps_params={"tau": value}),
             ValueError, "projection 'A_B'", "'tau'", "finite")
    rejected(net, lambda n: n.current_source("I", sf.DC, "A", params={"amp": value}),
             ValueError, "current source 'I'", "'amp'", "finite")


def test_unknown_init_var():
    rejected(two_pops(), lambda n: n.population("C", sf.IF, 3, params=IF_PARAMS,
                                                init={"u": 0.0}),
             ValueError, "population 'C'", "unknown var", "'u'")
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Dense(), w=0.5, wu_init={"g": 1.0}),
             ValueError, "projection 'A_B'", "unknown var", "'g'")


def test_missing_init_for_var_without_default():
    lif = {"C": 1.0, "tau_m": 20.0, "v_rest": 0.0, "v_reset": 0.0, "v_thresh": 1.0,
           "i_offset": 0.0, "tau_refrac": 2.0}
    rejected(two_pops(), lambda n: n.population("C", sf.LIF, 3, params=lif),
             ValueError, "population 'C'", "'v'", "initial value")
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Dense()),
             ValueError, "projection 'A_B'", "'w'", "initial value")


def test_int_var_with_random_initialiser():
    rejected(two_pops(), lambda n: n.population("C", COUNTER, 3, init={"c": sf.Uniform(0, 5)}),
             ValueError, "population 'C'", "int var 'c'")
    rejected(two_pops(), lambda n: n.connect(
        "A", "B", sf.Dense(), weight_update=sf.StaticPulseDendriticDelay, w=0.5,
        wu_init={"d": sf.Normal(2, 1)}, max_dendritic_delay=4),
        ValueError, "projection 'A_B'", "int var 'd'")


@pytest.mark.parametrize("init", [1.5, [0.0, 2.5, 1.0]])
def test_int_var_with_non_integer_values(init):
    rejected(two_pops(), lambda n: n.population("C", COUNTER, 3, init={"c": init}),
             ValueError, "population 'C'", "'c'")


def test_non_integer_dendritic_delay():
    rejected(two_pops(), lambda n: n.connect(
        "A", "B", sf.Dense(), weight_update=sf.StaticPulseDendriticDelay, w=0.5,
        wu_init={"d": 1.5}, max_dendritic_delay=3), ValueError, "projection 'A_B'", "'d'")


def test_nan_in_init_array_names_population():
    rejected(two_pops(), lambda n: n.population("C", sf.IF, 3, params=IF_PARAMS,
                                                init={"v": [0.0, math.nan, 0.0]}),
             ValueError, "population 'C'", "'v'")


def test_nan_in_init_array_rejected():
    rejected(two_pops(), lambda n: n.population("C", sf.IF, 3, params=IF_PARAMS,
                                                init={"v": [0.0, math.nan, 0.0]}),
             ValueError, "finite")


def test_spike_times_only_for_spike_source_arrays():
    rejected(two_pops(), lambda n: n.population("C", sf.IF, 2, params=IF_PARAMS,
                                                spike_times=[[1.0], [2.0]]),
             ValueError, "population 'C'", "spike_times", "SpikeSourceArray")
    rejected(two_pops(), lambda n: n.population("S", sf.SpikeSourceArray, 2),
             ValueError, "population 'S'", "spike_times")
    rejected(two_pops(), lambda n: n.population("S", sf.SpikeSourceArray, 2, spike_times=[[1.0]]),
             ValueError, "population 'S'", "one sequence per neuron")


def test_model_code_type_error_rejected_at_population():
    bad = sf.NeuronModel("Bad", vars=(V("v", default=0.0),), sim="v = v + gain")
    err = rejected(two_pops(), lambda n: n.population("C", bad, 3), sf.ModelCodeError,
                   "Bad.sim, line 1, column 9", "unknown name 'gain'", "v = v + gain")
    assert err.field == "sim"


# Values shapes ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4,), (2, 3), (3, 1), (1, 1, 3)])
def test_neuron_values_wrong_shape(shape):
    rejected(two_pops(), lambda n: n.population("C", sf.IF, 3, params=IF_PARAMS,
                                                init={"v": np.zeros(shape)}),
             ValueError, "population 'C'", "var 'v'", str(shape))


def test_batched_and_shared_neuron_values():
    net = two_pops(batch=2)
    net.population("C", sf.IF, 3, params=IF_PARAMS, init={"v": np.arange(6.0).reshape(2, 3)})
    rejected(net, lambda n: n.population("D", sf.IF, 3, params=IF_PARAMS,
                                         init={"v": np.zeros((3, 3))}),
             ValueError, "population 'D'", "var 'v'", "(3, 3)")
    rejected(net, lambda n: n.population("R", sf.LeakyIntegrator, 3, params={"tau_out": 5.0},
                                         init={"b": np.zeros((2, 3))}),
             ValueError, "population 'R'", "var 'b'", "(2, 3)")
    sim = net.build("numpy")
    np.testing.assert_array_equal(sim.get("C.v"), np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("shape", [(23,), (25,), (6, 4), (4, 6, 1)])
def test_dense_synapse_values_wrong_shape(shape):
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Dense(), w=np.zeros(shape)),
             ValueError, "projection 'A_B'", "var 'w'", str(shape))


def test_dense_values_accepted_as_pre_by_post_matrix():
    weights = np.arange(24.0).reshape(4, 6)
    net = two_pops()
    net.connect("A", "B", sf.Dense(), w=weights)
    sim = net.build("numpy")
    pre, post = sim.connectivity("A_B")
    np.testing.assert_array_equal(sim.get("A_B.w"), weights[pre, post])
    net2 = two_pops()
    net2.connect("A", "B", sf.Dense(), w=weights.ravel())
    np.testing.assert_array_equal(net2.build("numpy").get("A_B.w"), sim.get("A_B.w"))


def test_synapse_values_for_other_connectivity():
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.FixedProbability(0.5), w=np.zeros(24)),
             ValueError, "projection 'A_B'", "var 'w'", "random number of synapses")
    sparse = sf.Sparse([0, 1, 2, 3, 4], [0, 1, 2, 3])
    rejected(two_pops(), lambda n: n.connect("A", "B", sparse, w=np.zeros(5)),
             ValueError, "projection 'A_B'", "var 'w'", "(5,)")
    net = two_pops()
    net.connect("A", "B", sparse, w=np.arange(4.0))
    np.testing.assert_array_equal(net.build("numpy").get("A_B.w"), np.arange(4.0))


def test_trace_and_postsynaptic_values_wrong_shape():
    rejected(two_pops(), lambda n: n.connect(
        "A", "B", sf.Dense(), weight_update=sf.STDP, wu_params=STDP_PARAMS, w=0.5,
        wu_init={"x": np.zeros(6)}), ValueError, "projection 'A_B'", "var 'x'", "(6,)")
    rejected(two_pops(), lambda n: n.connect(
        "A", "B", sf.Dense(), weight_update=sf.STDP, wu_params=STDP_PARAMS, w=0.5,
        wu_init={"y": np.zeros(4)}), ValueError, "projection 'A_B'", "var 'y'", "(4,)")
    rejected(two_pops(), lambda n: n.connect(
        "A", "B", sf.Dense(), w=0.5, postsynaptic=sf.ExpCurr, ps_params={"tau": 5.0},
        ps_init={"i": np.zeros(4)}), ValueError, "projection 'A_B'", "var 'i'", "(4,)")


# connectivity ----------------------------------------------------------------------------
@pytest.mark.parametrize("indices", [[0, 1, 2, 6], [0, -1, 2, 3]])
def test_sparse_indices_out_of_range(indices):
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Sparse([0, 1, 2, 3, 4], indices), w=1.0),
             ValueError, "projection 'A_B'", "Sparse indices out of range [0, 6)")


@pytest.mark.parametrize("row_ptr", [[0, 1, 2, 4], [0, 2, 1, 3, 4], [0, 1, 2, 3, 3],
                                     [1, 1, 2, 3, 4], [0, 1, 2, 3, 4, 4]])
def test_sparse_bad_row_ptr(row_ptr):
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Sparse(row_ptr, [0, 1, 2, 3]), w=1.0),
             ValueError, "projection 'A_B'", "row_ptr", "n_pre+1 = 5")


def test_sparse_non_integer_arrays():
    with pytest.raises(ValueError, match="Sparse: indices must be a 1-D integer array"):
        sf.Sparse([0, 1, 2, 3, 4], [0.0, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="Sparse: row_ptr must be a 1-D integer array"):
        sf.Sparse([[0, 1], [2, 3]], [0, 1, 2])


def test_one_to_one_size_mismatch():
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.OneToOne(), w=1.0),
             ValueError, "projection 'A_B'", "OneToOne", "4 -> 6")


def test_conv2d_size_mismatch():
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Conv2D((2, 2, 1), (1, 1), 2), w=1.0),
             ValueError, "projection 'A_B'", "Conv2D", "post size 8", "4 -> 6")
    rejected(two_pops(), lambda n: n.connect("B", "A", sf.Conv2D((2, 2, 1), (1, 1), 1), w=1.0),
             ValueError, "projection 'B_A'", "Conv2D", "pre size 4")
    rejected(two_pops(), lambda n: n.connect("A", "A", sf.Conv2D((2, 2, 1), (3, 3), 1), w=1.0),
             ValueError, "projection 'A_A'", "kernel (3, 3) larger than input")


@pytest.mark.parametrize("p", [-0.1, 1.1, math.nan, math.inf])
def test_fixed_probability_outside_unit_interval(p):
    with pytest.raises(ValueError, match=r"FixedProbability: p must be in \[0, 1\]"):
        sf.FixedProbability(p)


# delays -------------------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [-1, 1.5, 2.0, True, "1", None])
@pytest.mark.parametrize("key", ["delay", "max_dendritic_delay"])
def test_bad_delays(key, delay):
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Dense(), w=1.0, **{key: delay}),
             ValueError, "projection 'A_B'", key, "int >= 0")


def test_numpy_integer_delay_accepted():
    net = two_pops()
    net.connect("A", "B", sf.Dense(), w=1.0, delay=np.int32(2))
    assert net.network().projection("A_B").delay == 2


# names and references -----------------------------------------------------------------------
def test_duplicate_names():
    net = two_pops()
    net.connect("A", "B", sf.Dense(), w=1.0)
    net.custom_update("Zero", "A", "v = 0.0", var_refs={"v": "A.v"})
    msg = "is used twice"
    rejected(net, lambda n: n.population("A", sf.IF, 3, params=IF_PARAMS), ValueError, "'A'", msg)
    rejected(net, lambda n: n.connect("A", "B", sf.Dense(), w=1.0), ValueError, "'A_B'", msg)
    rejected(net, lambda n: n.connect("B", "A", sf.Dense(), name="A", w=1.0),
             ValueError, "'A'", msg)
    rejected(net, lambda n: n.population("A_B", sf.IF, 3, params=IF_PARAMS),
             ValueError, "'A_B'", msg)
    rejected(net, lambda n: n.current_source("Zero", sf.DC, "A", params={"amp": 1.0}),
             ValueError, "'Zero'", msg)
    rejected(net, lambda n: n.custom_update("B", "A", "v = 0.0", var_refs={"v": "A.v"}),
             ValueError, "'B'", msg)


@pytest.mark.parametrize("name", ["", "1x", "_hidden", "a-b", "a.b"])
def test_bad_node_names(name):
    rejected(two_pops(), lambda n: n.population(name, sf.IF, 3, params=IF_PARAMS),
             ValueError, repr(name))


def test_projection_to_unknown_population():
    rejected(two_pops(), lambda n: n.connect("A", "Z", sf.Dense(), w=1.0),
             KeyError, "projection 'A_Z'", "no population named 'Z'", "['A', 'B']")
    rejected(two_pops(), lambda n: n.connect("Z", "B", sf.Dense(), w=1.0),
             KeyError, "projection 'Z_B'", "no population named 'Z'")
    rejected(two_pops(), lambda n: n.current_source("I", sf.DC, "Z", params={"amp": 1.0}),
             KeyError, "current source 'I'", "no population named 'Z'")


def test_projection_target_must_be_an_input():
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.Dense(), w=1.0, target="i_fb"),
             ValueError, "projection 'A_B'", "target 'i_fb'", "'IF'")


def test_unknown_backend_lists_known_backends():
    net = two_pops()
    before = net.network()
    for build in (net.build, net.network().build):
        with pytest.raises(ValueError) as info:
            build("tpu")
        assert "unknown backend 'tpu'" in str(info.value)
        assert "known backends:" in str(info.value) and "numpy" in str(info.value)
    assert net.network() is before


def test_bad_network_settings():
    for kwargs, word in [({"dt": 0.0}, "dt"), ({"dt": math.nan}, "dt"), ({"dt": -0.1}, "dt"),
                         ({"batch_size": 0}, "batch_size"), ({"batch_size": 1.0}, "batch_size"),
                         ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed")]:
        with pytest.raises(ValueError, match=f"network: {word}"):
            sf.NetworkBuilder(**kwargs)


# code that the connectivity or batching cannot support ---------------------------------------
@pytest.mark.parametrize("conn", [sf.FixedProbability(0.5, procedural=True),
                                  sf.FixedNumberPost(2, procedural=True)])
def test_procedural_connectivity_with_synapse_writes(conn):
    rejected(two_pops(), lambda n: n.connect("A", "B", conn, weight_update=LEARN, w=1.0),
             ValueError, "projection 'A_B'", "procedural", "['w']")
    rejected(two_pops(), lambda n: n.connect("A", "B", sf.FixedNumberPost(2, procedural=True),
                                             w=np.zeros(8)),
             ValueError, "projection 'A_B'", "procedural", "initialisers, not arrays")
    two_pops().connect("A", "B", sf.FixedProbability(0.5, procedural=True), w=1.0)


def test_conv2d_kernel_var_written_by_synapse_code():
    rejected(two_pops(), lambda n: n.connect("A", "A", sf.Conv2D((2, 2, 1), (1, 1), 1),
                                             weight_update=LEARN, w=1.0),
             ValueError, "projection 'A_A'", "Conv2D", "read-only", "['w']")


def test_shared_var_written_with_batches():
    rejected(two_pops(batch=2), lambda n: n.connect("A", "B", sf.Dense(), weight_update=LEARN,
                                                    w=1.0),
             ValueError, "projection 'A_B'", "['w']", "shared across the batch", "batch_size=2")
    two_pops(batch=1).connect("A", "B", sf.Dense(), weight_update=LEARN, w=1.0)
    two_pops(batch=2).connect("A", "B", sf.Dense(), weight_update=LEARN_BATCHED, w=1.0)


# custom updates -------------------------------------------------------------------------------
def proj_net(batch=1):
    net = two_pops(batch)
    net.connect("A", "B", sf.Dense(), weight_update=LEARN_BATCHED, w=1.0)
    return net


def test_custom_update_unknown_var_ref():
    rejected(proj_net(), lambda n: n.custom_update("Zero", "A", "v = 0.0", var_refs={"v": "A.u"}),
             ValueError, "custom update 'Zero'", "no var 'u'", "['v']")
    rejected(proj_net(), lambda n: n.custom_update("Zero", "A_B", "g = 0.0",
                                                   var_refs={"g": "A_B.g"}),
             ValueError, "custom update 'Zero'", "no var 'g'", "['w']")
    rejected(proj_net(), lambda n: n.custom_update("Zero", "A", "v = 0.0", var_refs={"v": "B.v"}),
             ValueError, "custom update 'Zero'", "'B.v'", "target 'A'")
    rejected(proj_net(), lambda n: n.custom_update("Zero", "A", "v = 0.0", var_refs={"v": "Av"}),
             ValueError, "custom update 'Zero'", "'<node>.<var>'")
    rejected(proj_net(), lambda n: n.custom_update("Zero", "Z", "v = 0.0", var_refs={"v": "Z.v"}),
             ValueError, "custom update 'Zero'", "target 'Z'")


def test_custom_update_code_with_unknown_name():
    err = rejected(proj_net(), lambda n: n.custom_update("Scale", "A", "v = v * gain",
                                                         var_refs={"v": "A.v"}),
                   sf.ModelCodeError, "Scale.code", "unknown name 'gain'")
    assert (err.model, err.field, err.line, err.col) == ("Scale", "code", 1, 8)


def test_custom_update_reduction_over_neurons_on_projection():
    rejected(proj_net(), lambda n: n.custom_update(
        "Total", "A_B", "s = w", var_refs={"w": "A_B.w"},
        reductions={"s": sf.Reduction("sum", "neurons")}),
        ValueError, "custom update 'Total'", "over neurons", "population")
    net = proj_net(batch=2)
    net.custom_update("Total", "A_B", "s = w", var_refs={"w": "A_B.w"},
                      reductions={"s": sf.Reduction("sum", "batch")})
    net.custom_update("Norm", "A", "m = v", var_refs={"v": "A.v"},
                      reductions={"m": sf.Reduction("max", "neurons")})


def test_custom_update_reference_to_unknown_reduction():
    net = proj_net(batch=2)
    net.custom_update("Total", "A_B", "s = w", var_refs={"w": "A_B.w"},
                      reductions={"s": sf.Reduction("sum", "batch")})
    rejected(net, lambda n: n.custom_update("Use", "A_B", "w = q", var_refs={
        "w": "A_B.w", "q": "Total.q"}), ValueError, "custom update 'Use'", "no reduction 'q'")


def test_bad_reduction_names_custom_update():
    rejected(proj_net(), lambda n: n.custom_update("Mean", "A", "s = v", var_refs={"v": "A.v"},
                                                   reductions={"s": ("mean", "batch")}),
             ValueError, "custom update 'Mean'", "'mean'")


def test_rejected_node_is_not_built():
    net = two_pops()
    rejected(net, lambda n: n.connect("A", "B", sf.Dense(), w=np.zeros(5)), ValueError)
    rejected(net, lambda n: n.population("C", sf.IF, 0, params=IF_PARAMS), ValueError)
    sim = net.build("numpy")
    assert sorted(sim.state) == ["A.v", "B.v"]
    assert [p.name for p in net.network().populations] == ["A", "B"]
    assert net.network().projections == ()


# the Simulation API ----------------------------------------------------------------------------
@pytest.fixture
def sim():
    net = two_pops(batch=2)
    net.connect("A", "B", sf.Dense(), w=0.25)
    net.population("C", COUNTER, 3, init={"c": 0})
    return net.build("numpy")


def state_copy(simulation):
    return {k: np.array(simulation.get(k)) for k in sorted(simulation.state)}


def assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("name,fragments", [
    ("A.u", ["unknown var 'A.u'", "A.v"]), ("Z.v", ["unknown var 'Z.v'", "no node named 'Z'"]),
    ("v", ["unknown var 'v'"]),
])
def test_unknown_var_in_record_get_set(sim, name, fragments):
    with pytest.raises(KeyError) as info:
        two_pops().build("numpy", record_vars=[name])
    assert "record_vars" in str(info.value) and all(f in str(info.value) for f in fragments)
    before = state_copy(sim)
    for call in (lambda: sim.get(name), lambda: sim.set(name, 0.0), lambda: sim.trace(name)):
        with pytest.raises(KeyError) as info:
            call()
        assert all(f in str(info.value) for f in fragments)
    assert_state_equal(state_copy(sim), before)


def test_unknown_population_in_record_spikes():
    with pytest.raises(KeyError, match="record_spikes: no population named 'Z'"):
        two_pops().build("numpy", record_spikes=["Z"])


@pytest.mark.parametrize("name,value,fragment", [
    ("A.v", np.zeros(5), "shape (5,) does not fit (2, 4)"),
    ("A.v", np.zeros((3, 4)), "shape (3, 4) does not fit (2, 4)"),
    ("A_B.w", np.zeros(23), "does not fit (24,)"),
    ("A.v", math.nan, "finite"),
    ("A.v", np.array([[0.0, 1.0, math.nan, 2.0], [0.0] * 4]), "finite"),
    ("A.v", math.inf, "finite"),
    ("A_B.w", np.r_[np.ones(23), -math.inf], "finite"),
    ("C.c", 1.5, "integer values"),
])
def test_failed_set_leaves_state_unchanged(sim, name, value, fragment):
    sim.run(steps=2)
    before = state_copy(sim)
    with pytest.raises(ValueError) as info:
        sim.set(name, value)
    assert f"set {name!r}" in str(info.value) and fragment in str(info.value)
    assert_state_equal(state_copy(sim), before)
    assert sim.step == 2


def test_successful_set_changes_only_that_var(sim):
    before = state_copy(sim)
    sim.set("A.v", np.arange(8.0).reshape(2, 4))
    after = state_copy(sim)
    np.testing.assert_array_equal(after.pop("A.v"), np.arange(8.0).reshape(2, 4))
    before.pop("A.v")
    assert_state_equal(after, before)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"steps": 1, "duration_ms": 1.0}, "exactly one of"), ({}, "exactly one of"),
    ({"steps": -1}, "steps must be an int >= 0"), ({"steps": 1.5}, "steps must be an int"),
    ({"steps": True}, "steps must be an int"), ({"duration_ms": -1.0}, "duration_ms must be >= 0"),
    ({"duration_ms": math.nan}, "duration_ms"),
])
def test_bad_run_arguments(sim, kwargs, fragment):
    sim.run(steps=1)
    before = state_copy(sim)
    with pytest.raises(ValueError) as info:
        sim.run(**kwargs)
    assert "run:" in str(info.value) and fragment in str(info.value)
    assert sim.step == 1 and sim.t == 1.0
    assert_state_equal(state_copy(sim), before)

