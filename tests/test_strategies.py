"""The random-network strategies of ``spikeforge.testing``: every drawn network is
valid, builds and runs on numpy without NaN/inf, deterministically, and a fixed
sample covers every model, connectivity kind and initialiser.

Example counts come from the hypothesis profile ("ci": 25 derandomized examples;
"thorough": 500), registered by ``register_profiles``."""

from __future__ import annotations

import collections
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import spikeforge as sf
from spikeforge.lang import tree as T
from spikeforge.lang.functions import TRANSCENDENTAL_FUNCTIONS
from spikeforge.testing import (avgpool2d_geometries, conv2d_geometries, describe, features,
                                networks, register_profiles, user_neuron_models)

register_profiles()

STEPS = 20
# Derandomized samples still depend on which local modules are imported (hypothesis mixes
# their literal constants into draws), so the sample is sized for margin in any test order.
COVERAGE_EXAMPLES = 600


def run_and_collect(net: sf.Network) -> tuple[dict, dict]:
    """Build on numpy, run STEPS/2 steps, call every host-triggered custom-update
    group, run the rest; return every state var and every recorded spike train."""
    sim = net.build(backend="numpy")
    sim.run(steps=STEPS // 2)
    for group in dict.fromkeys(cu.group for cu in net.custom_updates if not cu.every_step):
        sim.custom_update(group)
    sim.run(steps=STEPS - STEPS // 2)
    state = {key: sim.get(key) for key in sorted(sim.state)}
    spikes = {pop: sim.spikes(pop) for pop in sim.record_spikes}
    return state, spikes


def sample(strategy, n: int, record) -> None:
    """Call ``record(example)`` on n derandomized examples of ``strategy``."""

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate],
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example):
        record(example)

    collect()


@given(networks())
def test_networks_validate_build_run_finite_and_deterministic(net):
    for tag in sorted(features(net)):
        event(tag)
    dataclasses.replace(net)  # the frozen IR validates again as a whole
    state, spikes = run_and_collect(net)
    for key, value in state.items():
        assert np.all(np.isfinite(value)), f"{key} is not finite:\n{describe(net)}"
    state2, spikes2 = run_and_collect(net)
    assert state.keys() == state2.keys()
    for key in state:
        np.testing.assert_array_equal(state[key], state2[key], err_msg=f"{key}\n{describe(net)}")
    for pop in spikes:
        for a, b in zip(spikes[pop], spikes2[pop], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"spikes of {pop}\n{describe(net)}")


@given(networks(max_projections=3))
def test_networks_round_trip_through_model_files(net):
    with tempfile.TemporaryDirectory() as tmp:
        net.save(Path(tmp) / "net.json")
        loaded = sf.load(Path(tmp) / "net.json")
    assert loaded == net, describe(net)
    assert describe(loaded) == describe(net)


REQUIRED = {
    *(f"neuron:{m}" for m in ("LIF", "ALIF", "LeakyIntegrator", "IF", "Izhikevich",
                              "PoissonSource", "SpikeSourceArray", "user")),
    *(f"conn:{c}" for c in ("Dense", "Sparse", "OneToOne", "FixedProbability", "FixedNumberPost",
                            "FixedTotalNumber", "Conv2D", "AvgPool2D",
                            "FixedProbability:procedural", "FixedNumberPost:procedural")),
    *(f"init:{i}" for i in ("Constant", "Uniform", "Normal", "NormalClipped", "Exponential",
                            "Values")),
    "values:synapse", "values:matrix", "values:kernel",
    "wu:StaticPulse", "wu:StaticPulseDendriticDelay", "wu:STDP", "wu:user",
    "ps:Delta", "ps:ExpCurr", "ps:ExpCond", "ps:user", "ps:fused", "cs:DC", "cs:GaussianNoise",
    "delay:axonal", "delay:dendritic", "input:target", "input:pre_target", "ssa:per_batch",
    "cu:reduce:batch", "cu:reduce:neurons", "cu:followup", "cu:every_step", "cu:host",
    "cu:projection", "batch:1", "batch:>1", "precision:float32", "precision:float64",
}


def test_fixed_sample_covers_every_kind():
    seen = collections.Counter()
    sample(networks(), COVERAGE_EXAMPLES, lambda net: seen.update(features(net)))
    missing = sorted(REQUIRED - set(seen))
    assert not missing, f"never drawn in {COVERAGE_EXAMPLES} networks: {missing}"


def test_generated_networks_spike_sometimes():
    runs = []

    def record(net):
        if any(p.model.spiking for p in net.populations):
            sim = net.build(backend="numpy")
            sim.run(steps=STEPS)
            runs.append(any(len(sim.spikes(p)[0]) for p in sim.record_spikes))

    sample(networks(), 150, record)  # many: the sample varies with the loaded modules
    assert len(runs) >= 75
    # spike sources may have no spike at all, so many small networks stay silent (about a
    # third; the first 40 examples of a sample have been as low as 13 of 33 spiking)
    assert sum(runs) >= 0.4 * len(runs), f"only {sum(runs)} of {len(runs)} networks spiked"


def test_switches_exclude_features_and_bounds_hold():
    strategy = networks(max_populations=2, max_size=4, max_projections=1, batch_sizes=(2,),
                        precisions=("float64",), allow_stdp=False, allow_custom_updates=False,
                        allow_random_draws=False, allow_procedural=False, max_delay=0)
    forbidden = {"wu:STDP", "neuron:PoissonSource", "cs:GaussianNoise", "delay:axonal",
                 "conn:FixedProbability:procedural", "conn:FixedNumberPost:procedural"}

    def check(net):
        assert len(net.populations) <= 2 and len(net.projections) <= 1
        assert all(p.size <= 4 for p in net.populations)
        assert net.batch_size == 2 and net.precision == "float64"
        assert not net.custom_updates
        assert not features(net) & forbidden, describe(net)
        assert not any(_draws(model) for model in _models(net)), describe(net)

    sample(strategy, 60, check)


def _models(net):
    for pop in net.populations:
        yield pop.model
    for proj in net.projections:
        yield proj.weight_update
        yield proj.postsynaptic
    for source in net.current_sources:
        yield source.model


def _code_trees(model):
    return [model.parsed[f] for f in (*model.CODE_FIELDS, *model.EXPR_FIELDS) if model.parsed[f]]


def _draws(model) -> bool:
    return any(isinstance(n, T.Call) and n.func in ("uniform", "normal", "exponential", "poisson")
               for tree in _code_trees(model) for n in T.walk(_as_list(tree)))


def _as_list(tree):
    return tree if isinstance(tree, tuple) else (tree,)


def test_fixed_point_networks_respect_fixed_point_code_rules():
    """Fixed point: no transcendental functions outside derived params, and division
    only by a param or a constant (DESIGN.md, Numerics)."""

    def check(net):
        assert isinstance(net.precision, sf.Fixed)
        for model in _models(net):
            for node in (n for tree in _code_trees(model) for n in T.walk(_as_list(tree))):
                if isinstance(node, T.Call):
                    assert node.func not in TRANSCENDENTAL_FUNCTIONS, describe(net)
                if isinstance(node, T.BinOp) and node.op == "/":
                    right = node.right
                    assert isinstance(right, T.Num) or (
                        isinstance(right, T.Name) and right.id in model.params), describe(net)

    sample(networks(precisions=(sf.Fixed(32, 16),)), 30, check)


@given(user_neuron_models(), st.sampled_from([1, 3]), st.sampled_from(["float32", "float64"]),
       st.floats(-5, 5))
def test_user_neuron_models_stay_finite_for_hundreds_of_steps(model, batch, precision, amp):
    net = sf.NetworkBuilder(dt=0.5, batch_size=batch, seed=3, precision=precision)
    net.population("N", model, 4, params=dict.fromkeys(model.params, 1.5))
    net.current_source("drive", sf.GaussianNoise, "N", params={"mean": amp, "sd": 1.0})
    sim = net.build(backend="numpy")
    sim.run(steps=300)
    for key in sim.state:
        assert np.all(np.isfinite(sim.get(key))), f"{key}\n{describe(net.network())}"


def test_conv2d_geometries_match_sizes():
    assert conv2d_geometries(7, 5)  # (1, 7, 1) with a 1x3 kernel
    for n_pre, n_post in ((1, 1), (6, 4), (12, 9), (4, 8)):
        geometries = conv2d_geometries(n_pre, n_post)
        assert geometries, (n_pre, n_post)
        for conv in geometries:
            assert np.prod(conv.in_shape) == n_pre and np.prod(conv.out_shape) == n_post


def test_avgpool2d_geometries_match_sizes():
    assert not avgpool2d_geometries(5, 7)  # pooling never grows a map
    for n_pre, n_post in ((1, 1), (8, 2), (12, 3), (6, 6)):
        pools = avgpool2d_geometries(n_pre, n_post)
        assert pools, (n_pre, n_post)
        for pool in pools:
            assert np.prod(pool.in_shape) == n_pre and np.prod(pool.out_shape) == n_post


def test_describe_lists_every_node_and_user_code():
    net = sf.NetworkBuilder(dt=0.5, batch_size=2)
    lif = {"C": 1.0, "tau_m": 10.0, "v_rest": -65.0, "v_reset": -70.0, "v_thresh": -50.0,
           "i_offset": 1.0, "tau_refrac": 2.0}
    net.population("E", sf.LIF, 3, params=lif, init={"v": sf.Uniform(-70, -50)})
    user = sf.NeuronModel("Mine", params=("p0",), vars=(sf.Var("x0", default=0.0),),
                          sim="x0 = clip(x0 + i_syn, -4.0, 4.0)")
    net.population("U", user, 2, params={"p0": 1.0})
    net.connect("E", "U", sf.Sparse.from_pairs([0, 2], [1, 0], 3), w=np.array([0.5, 0.25]))
    net.current_source("dc", sf.DC, "E", params={"amp": 2.0})
    text = describe(net.network())
    assert text.splitlines()[0] == "Network(dt=0.5, batch_size=2, seed=0, precision=float32)"
    assert "population E: LIF x3" in text and "v=Uniform(low=-70, high=-50)" in text
    assert "projection E_U: E -> U Sparse(row_ptr=[0, 1, 1, 2], indices=[1, 0])" in text
    assert "w=Values(2,)[0.5, 0.25]" in text
    assert "current source dc: DC{amp=2.0} -> E" in text
    assert "model Mine" in text and "sim: x0 = clip(x0 + i_syn, -4.0, 4.0)" in text


def test_networks_rejects_bad_bounds():
    with pytest.raises(ValueError):
        networks(max_populations=0)
    with pytest.raises(ValueError):
        networks(batch_sizes=())
