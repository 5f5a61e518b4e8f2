"""cpu backend: arrays that generated code only reads are not copied. Static synapse
vars use their initial array as the live one until ``set`` writes them (reset must
still restore the initial values), and the connectivity buffers are the prepared
arrays themselves."""

import numpy as np
import pytest

import spikeforge as sf

pytestmark = pytest.mark.skipif(
    not any(s.name == "cpu" and s.available for s in sf.available()), reason="no C compiler")

LIF = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
           tau_refrac=1.0)
STDP = dict(tau_plus=10.0, tau_minus=10.0, a_plus=0.01, a_minus=0.012, w_min=0.0, w_max=0.5)


def network():
    """Static synapses with a delay var ("static"), STDP ("stdp", written by synapse
    code) and static weights that a custom update scales ("scaled")."""
    net = sf.NetworkBuilder(dt=0.5, seed=5)
    net.population("P", sf.PoissonSource, 30, params={"rate": 300.0})
    net.population("N", sf.LIF, 40, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    net.connect("P", "N", sf.FixedTotalNumber(300), name="static",
                weight_update=sf.StaticPulseDendriticDelay, w=sf.Uniform(0.0, 0.2),
                wu_init={"d": sf.Values(np.arange(300) % 4)}, max_dendritic_delay=3)
    net.connect("P", "N", sf.FixedProbability(0.2), name="stdp", weight_update=sf.STDP,
                wu_params=STDP, w=sf.Uniform(0.0, 0.3))
    net.connect("N", "N", sf.FixedProbability(0.1), name="scaled", w=sf.Uniform(-0.1, 0.0))
    net.custom_update("halve", "scaled", "w = w * 0.5", var_refs={"w": "scaled.w"})
    return net.network()


def spikes(sim, steps=200):
    sim.run(steps=steps, progress=False)
    return sim.spikes("N")


def test_only_vars_that_no_generated_code_writes_are_shared():
    sim = network().build(backend="cpu")
    same = {k for k in sim.state if sim.state[k] is sim.prepared.state[k]}
    assert same == {"static.w", "static.d"}
    for proj in ("static", "stdp", "scaled"):
        assert np.shares_memory(sim.buffers[f"post:{proj}"], sim.prepared.synapses[proj].post)
        assert sim.buffers[f"state:{proj}.w"] is sim.state[f"{proj}.w"]


def test_set_keeps_the_initial_values_for_reset_and_reset_shares_again():
    net = network()
    fresh = net.build(backend="cpu")
    initial_w, first = fresh.get("static.w"), spikes(fresh)
    sim = net.build(backend="cpu")
    spikes(sim, 50)
    sim.set("static.w", 0.4)
    sim.set("static.d", 0)
    assert sim.prepared.state["static.w"] is not sim.state["static.w"]
    np.testing.assert_array_equal(sim.prepared.state["static.w"], initial_w)
    strong = spikes(sim)
    assert len(strong[0]) > 0 and np.all(sim.get("static.w") == np.float32(0.4))
    sim.reset()
    assert sim.state["static.w"] is sim.prepared.state["static.w"]
    assert sim.state["static.d"] is sim.prepared.state["static.d"]
    np.testing.assert_array_equal(sim.get("static.w"), initial_w)
    again = spikes(sim)
    other = net.build(backend="cpu")
    other.rng_step = sim.rng_step - 200       # the same random stream as `again`
    for got, want in zip(again, spikes(other)):
        np.testing.assert_array_equal(got, want)
    assert len(first[0]) > 0


def test_reseeding_shares_the_new_initial_values():
    net = network()
    sim = net.build(backend="cpu")
    sim.set("static.w", 0.4)
    sim.reset(seed=11)
    assert sim.state["static.w"] is sim.prepared.state["static.w"]
    fresh = net.build(backend="cpu")
    fresh.reset(seed=11)
    np.testing.assert_array_equal(sim.get("static.w"), fresh.get("static.w"))
    assert not np.array_equal(sim.get("static.w"), net.build(backend="cpu").get("static.w"))
    for got, want in zip(spikes(sim), spikes(fresh)):
        np.testing.assert_array_equal(got, want)


def test_connectivity_is_handed_out_read_only():
    sim = network().build(backend="cpu")
    pre, post = sim.connectivity("static")
    assert np.shares_memory(post, sim.buffers["post:static"])
    with pytest.raises(ValueError, match="read-only"):
        post[:] = 0


def test_simulations_of_one_network_do_not_share_state():
    net = network()
    a, b = net.build(backend="cpu"), net.build(backend="cpu")
    before = b.get("static.w")
    a.set("static.w", 0.0)
    np.testing.assert_array_equal(b.get("static.w"), before)
    assert not np.shares_memory(a.state["static.w"], b.state["static.w"])
