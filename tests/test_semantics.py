"""Pins the RNG indexing of docs/semantics.md: every draw comes from the
documented stream and counter, on every backend."""

import numpy as np
import pytest

import spikeforge as sf
from spikeforge.philox import (Philox, bernoulli, normal_from_words, pack_c3, uniform_from_word)

SEED = 7

Drawer = sf.NeuronModel("Drawer", vars=[sf.Var("x", default=0.0), sf.Var("y", default=0.0)],
                        sim="x = uniform()\ny = normal()")
Store = sf.NeuronModel("Store", vars=[sf.Var("got", default=0.0)], sim="got = i_syn")


def drawer_sim(backend, batch=2, size=5):
    net = sf.NetworkBuilder(dt=0.5, batch_size=batch, seed=SEED, precision="float64")
    net.population("P", Drawer, size)
    return net.build(backend=backend, record_spikes=[])


def expected_draws(step, size, batch, stream="P.sim"):
    rng = Philox(SEED, stream)
    i, b = np.arange(size)[None, :], np.arange(batch)[:, None]
    x = uniform_from_word(rng.words(step, i, 0, pack_c3(b, 0))[0], np.float64)
    w = rng.words(step, i, 0, pack_c3(b, 1))
    return x, normal_from_words(w[0], w[1], np.float64)


def test_neuron_draws_use_step_element_batch_site(backend):
    sim = drawer_sim(backend)
    sim.run(steps=3)
    x, y = expected_draws(2, 5, 2)
    np.testing.assert_array_equal(sim.get("P.x"), x)
    np.testing.assert_allclose(sim.get("P.y"), y, rtol=1e-12)


def test_reset_continues_counter_unless_reseeded(backend):
    sim = drawer_sim(backend)
    sim.run(steps=1)
    first = sim.get("P.x")
    sim.reset()
    assert sim.t == 0
    sim.run(steps=1)
    np.testing.assert_array_equal(sim.get("P.x"), expected_draws(1, 5, 2)[0])
    assert not np.array_equal(sim.get("P.x"), first)
    sim.reset(seed=SEED)
    sim.run(steps=1)
    np.testing.assert_array_equal(sim.get("P.x"), first)


def test_initial_values_use_init_stream(backend):
    net = sf.NetworkBuilder(batch_size=3, seed=SEED, precision="float64")
    net.population("P", Store, 4, init={"got": sf.Uniform(-1.0, 3.0)})
    sim = net.build(backend=backend)
    rng = Philox(SEED, "P.got.init")
    u = uniform_from_word(rng.words(0, np.arange(4)[None, :], 0, pack_c3(np.arange(3)[:, None], 0))[0],
                          np.float64)
    np.testing.assert_array_equal(sim.get("P.got"), -1.0 + 4.0 * u)


@pytest.mark.parametrize("procedural", [False, True])
def test_fixed_probability_uses_connectivity_stream(backend, procedural):
    n_pre, n_post, p = 6, 10, 0.3
    net = sf.NetworkBuilder(seed=SEED)
    net.population("A", sf.SpikeSourceArray, n_pre, spike_times=[[]] * n_pre)
    net.population("B", Store, n_post)
    net.connect("A", "B", sf.FixedProbability(p, procedural=procedural), name="AB", w=1.0)
    pre, post = net.build(backend=backend).connectivity("AB")
    rng = Philox(SEED, "AB.connectivity")
    words = np.stack(rng.words(0, np.arange(n_pre)[:, None], np.arange(3)[None, :], 0), axis=-1)
    mask = bernoulli(words.reshape(n_pre, -1)[:, :n_post], p)
    np.testing.assert_array_equal(pre, np.nonzero(mask)[0])
    np.testing.assert_array_equal(post, np.nonzero(mask)[1])


def test_synapse_draws_use_row_and_position(backend):
    RandomPulse = sf.WeightUpdateModel("RandomPulse", pre_spike="deliver(uniform())")
    net = sf.NetworkBuilder(dt=1.0, seed=SEED, precision="float64")
    net.population("A", sf.SpikeSourceArray, 3, spike_times=[[0.0], [0.0], []])
    net.population("B", Store, 4)
    net.connect("A", "B", sf.Dense(), name="AB", weight_update=RandomPulse)
    sim = net.build(backend=backend)
    sim.run(steps=2)  # spikes of step 0 arrive in step 1
    rng = Philox(SEED, "AB.pre_spike")
    rows, pos = np.arange(2)[:, None], np.arange(4)[None, :]
    u = uniform_from_word(rng.words(1, rows, pos, pack_c3(0, 0))[0], np.float64)
    np.testing.assert_allclose(sim.get("B.got"), u.sum(axis=0), rtol=1e-15)


def test_empty_spike_source_and_sparse_post_spike_columns(backend):
    """Regression: a spike source without spikes, and post_spike code where spiking
    postsynaptic neurons lie beyond every connected target."""
    stdp = dict(tau_plus=10.0, tau_minus=10.0, a_plus=0.1, a_minus=0.1, w_min=0.0, w_max=1.0)
    net = sf.NetworkBuilder(dt=1.0)
    net.population("A", sf.SpikeSourceArray, 2, spike_times=[[], [5.0]])
    net.population("B", sf.SpikeSourceArray, 2, spike_times=[[], [0.0]])
    net.connect("A", "B", sf.Sparse.from_pairs([1], [0], 2), weight_update=sf.STDP, w=0.5,
                wu_params=stdp)
    sim = net.build(backend=backend)
    sim.run(steps=8)
    assert sim.get("A_B.w")[0] == 0.5  # B's only spike hits no synapse; B0's trace is 0
    assert len(sim.spikes("A")[0]) == 1
