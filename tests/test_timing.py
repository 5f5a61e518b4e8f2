"""Exact spike timing (DESIGN.md, "One timestep"): a spike emitted at step t first
reaches its target's input at step t + 1 + d_axonal + d_dendritic.

Observation: a probe neuron records ``x = i_syn`` (Delta synapses, so the input
of a step is that step's current) and ``sim.trace`` gives end-of-step values, so
``trace[n]`` is exactly the input delivered in step n. Weights are small
integers or powers of two: every expected value is exact in float32.
"""

from __future__ import annotations

import numpy as np
import pytest

import spikeforge as sf

DT = 0.1


def _times(steps):
    """Spike times (ms) that fire at the given steps (round(t/dt) = step)."""
    return [s * DT for s in steps]


def _input_per_step(sim, name: str) -> np.ndarray:
    _, values = sim.trace(name)
    return values


def _expected(n_steps: int, arrivals: dict[int, float], n: int = 1) -> np.ndarray:
    """(steps, n) array: input ``arrivals[step]`` to every neuron, 0 elsewhere."""
    out = np.zeros((n_steps, n))
    for step, value in arrivals.items():
        out[step] += value
    return out


@pytest.mark.parametrize("delay", [0, 1, 2, 5])
def test_axonal_delay_arrives_at_t_plus_1_plus_d(backend, probe_model, delay):
    spike_steps = [0, 3, 4, 9, 20]  # gaps shorter and longer than the ring buffer
    net = sf.NetworkBuilder(dt=DT)
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[_times(spike_steps)])
    net.population("probe", probe_model, 1)
    net.connect("src", "probe", sf.Dense(), w=1.0, delay=delay)
    sim = net.build(backend=backend, record_vars=["probe.x"])
    n_steps = 30
    sim.run(steps=n_steps)
    want = _expected(n_steps, {s + 1 + delay: 1.0 for s in spike_steps})
    np.testing.assert_array_equal(_input_per_step(sim, "probe.x"), want)


def test_trace_times_are_end_of_step(backend, probe_model):
    net = sf.NetworkBuilder(dt=DT)
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[_times([2])])
    net.population("probe", probe_model, 1)
    net.connect("src", "probe", sf.Dense(), w=1.0)
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.run(steps=6)
    times, values = sim.trace("probe.x")
    np.testing.assert_allclose(times, (np.arange(6) + 1) * DT)
    assert values[3, 0] == 1.0 and values.sum() == 1.0


def test_spike_source_array_rounds_to_nearest_step(backend):
    net = sf.NetworkBuilder(dt=DT)
    net.population("src", sf.SpikeSourceArray, 3,
                   spike_times=[[0.33, 0.37], [0.0, 1.04], [0.96]])
    sim = net.build(backend=backend)
    sim.run(steps=15)
    times, ids = sim.spikes("src")
    got = sorted(zip(np.rint(times / DT).astype(int).tolist(), ids.tolist(), strict=True))
    assert got == [(0, 1), (3, 0), (4, 0), (10, 1), (10, 2)]


def _dendritic_net(probe, delays, axonal=0, max_delay=None, spike_steps=(2,)):
    """One source -> len(delays) probe neurons; synapse j has dendritic delay
    delays[j] and weight 2**j (so a misrouted delivery shows)."""
    n = len(delays)
    net = sf.NetworkBuilder(dt=DT)
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[_times(spike_steps)])
    net.population("probe", probe, n)
    weights = np.array([[2.0**j for j in range(n)]])
    d = np.array([list(delays)], dtype=np.int64)
    net.connect("src", "probe", sf.Dense(), "proj", weight_update=sf.StaticPulseDendriticDelay,
                wu_init={"w": weights, "d": d}, delay=axonal,
                max_dendritic_delay=max(delays) if max_delay is None else max_delay)
    return net


def _per_synapse_expected(n_steps, spike_steps, arrival_offsets):
    n = len(arrival_offsets)
    want = np.zeros((n_steps, n))
    for s in spike_steps:
        for j, offset in enumerate(arrival_offsets):
            want[s + 1 + offset, j] += 2.0**j
    return want


def test_dendritic_delay_per_synapse(backend, probe_model):
    delays = [0, 1, 2, 3, 7]
    spike_steps = [2, 4, 15]
    net = _dendritic_net(probe_model, delays, spike_steps=spike_steps)
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.run(steps=30)
    want = _per_synapse_expected(30, spike_steps, delays)
    np.testing.assert_array_equal(_input_per_step(sim, "probe.x"), want)


@pytest.mark.parametrize("axonal", [1, 4])
def test_axonal_and_dendritic_delays_add(backend, probe_model, axonal):
    delays = [0, 2, 5]
    spike_steps = [0, 1, 12]
    net = _dendritic_net(probe_model, delays, axonal=axonal, spike_steps=spike_steps)
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.run(steps=30)
    want = _per_synapse_expected(30, spike_steps, [axonal + d for d in delays])
    np.testing.assert_array_equal(_input_per_step(sim, "probe.x"), want)


def test_dendritic_delay_clipped_to_max(backend, probe_model):
    """Per-synapse delays beyond max_dendritic_delay are clipped to it (Projection doc)."""
    net = _dendritic_net(probe_model, [1, 3, 9], max_delay=3)
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.run(steps=20)
    want = _per_synapse_expected(20, [2], [1, 3, 3])
    np.testing.assert_array_equal(_input_per_step(sim, "probe.x"), want)


def test_dendritic_delay_set_at_run_time(backend, probe_model):
    """d is a synapse var: changing it with sim.set changes when input arrives."""
    net = _dendritic_net(probe_model, [0, 0], max_delay=6, spike_steps=[3])
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.set("proj.d", [4, 6])
    sim.run(steps=15)
    want = _per_synapse_expected(15, [3], [4, 6])
    np.testing.assert_array_equal(_input_per_step(sim, "probe.x"), want)


@pytest.mark.parametrize("delay", [0, 3])
def test_neuron_spike_chain(backend, probe_model, delay):
    """Source spike at step s -> IF neuron A (threshold 1) gets input and spikes at
    step s+1 (sim, then threshold, in the same step) -> probe gets input at s+2+d."""
    net = sf.NetworkBuilder(dt=DT)
    net.population("src", sf.SpikeSourceArray, 1, spike_times=[_times([4])])
    net.population("A", sf.IF, 1, params={"v_thresh": 1.0})
    net.population("probe", probe_model, 1)
    net.connect("src", "A", sf.OneToOne(), w=1.0)
    net.connect("A", "probe", sf.OneToOne(), w=1.0, delay=delay)
    sim = net.build(backend=backend, record_vars=["probe.x", "A.v"])
    sim.run(steps=15)
    times, _ = sim.spikes("A")
    np.testing.assert_array_equal(np.rint(times / DT), [5])
    np.testing.assert_array_equal(_input_per_step(sim, "probe.x"), _expected(15, {6 + delay: 1.0}))
    _, v = sim.trace("A.v")
    assert np.all(v[:, 0] == 0.0)  # reset by subtraction in the spiking step


def test_initial_state_spike_at_step_zero(backend, probe_model):
    """A neuron above threshold at t = 0 spikes in step 0; its spike arrives at step 1."""
    net = sf.NetworkBuilder(dt=DT)
    net.population("A", sf.IF, 2, params={"v_thresh": 1.0}, init={"v": sf.Values([5.0, 0.0])})
    net.population("probe", probe_model, 2)
    net.connect("A", "probe", sf.OneToOne(), w=sf.Values([1.0, 2.0]))
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.run(steps=10)
    times, ids = sim.spikes("A")
    steps = np.rint(times / DT).astype(int)
    assert list(zip(steps.tolist(), ids.tolist(), strict=True)) == [(s, 0) for s in range(5)]
    want = np.zeros((10, 2))
    want[1:6, 0] = 1.0
    np.testing.assert_array_equal(_input_per_step(sim, "probe.x"), want)
