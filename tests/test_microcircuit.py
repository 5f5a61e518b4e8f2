"""The Potjans & Diesmann (2014) microcircuit (spikeforge.microcircuit) and the
spike-train statistics (spikeforge.analysis).

Fast tests pin the derived tables against the parameter sheet, the neuron model
(PSP amplitude, Poisson drive = its DC equivalent, NEST's delay timing) on every
backend, and a 0.05-scale smoke run on cpu (structure + plausible activity).
The slow test checks rates against the NEST reference at N = K = 0.1."""

from __future__ import annotations

import math

import numpy as np
import pytest

import spikeforge as sf
from spikeforge import analysis
from spikeforge import microcircuit as mc
from spikeforge.backends import available

CPU = any(s.name == "cpu" and s.available for s in available())
needs_cpu = pytest.mark.skipif(not CPU, reason="cpu backend unavailable")


def truncated_mean(mean, sd, low):
    """Mean of Normal(mean, sd) conditioned on >= low."""
    z = (low - mean) / sd
    pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return mean + sd * pdf / (1 - 0.5 * (1 + math.erf(z / math.sqrt(2))))


# derived tables ------------------------------------------------------------------
def test_full_scale_sizes_and_synapse_count():
    d = mc.derive(1.0, 1.0)
    assert d.sizes.sum() == 77169
    assert 2.95e8 < d.total_synapses < 3.05e8  # "~0.3e9 synapses"
    assert d.num_synapses[0, 5] == 0 and d.num_synapses[0, 0] > 0  # C = 0 -> no synapses
    np.testing.assert_array_equal(d.k_ext, mc.K_EXT)
    assert np.all(d.dc_amp == 0.0)  # Poisson drive at K = 1: no DC


def test_weights_from_psp_and_signs():
    d = mc.derive(1.0, 1.0)
    assert d.psc_ext == pytest.approx(87.81, abs=0.01)  # sheet: about 87.8 pA
    exc, inh = d.psc_mean[:, 0::2], d.psc_mean[:, 1::2]
    assert np.all(inh == pytest.approx(-4.0 * d.psc_ext))
    assert d.psc_mean[0, 2] == pytest.approx(2 * d.psc_ext)  # L4E -> L23E doubled
    assert np.count_nonzero(exc != d.psc_ext) == 1


def test_k_scaling_weights_and_dc_compensation():
    k = 0.1
    full, poisson, dc = mc.derive(1.0, 1.0), mc.derive(0.1, k, "poisson"), mc.derive(0.1, k, "dc")
    np.testing.assert_allclose(poisson.psc_mean, full.psc_mean / math.sqrt(k))
    np.testing.assert_array_equal(poisson.k_ext, np.round(mc.K_EXT * k))
    # hand-computed for L23E: tau_syn (1 - sqrt k) sum_s w K_full r_full (+ external)
    indeg = mc.full_num_synapses()[0] / mc.FULL_NUM_NEURONS[0]
    rec = 1e-3 * 0.5 * (1 - math.sqrt(k)) * np.sum(full.psc_mean[0] * indeg * mc.FULL_MEAN_RATES)
    ext = 1e-3 * 0.5 * (1 - math.sqrt(k)) * full.psc_ext * 1600 * 8.0
    assert poisson.dc_amp[0] == pytest.approx(rec + ext, rel=1e-12)
    dc_drive = 8.0 * 160 * full.psc_ext * 0.5e-3  # DC equivalent of the scaled drive
    assert dc.dc_amp[0] == pytest.approx(dc_drive + rec, rel=1e-12)


@pytest.mark.parametrize("kwargs, field", [({"scale": 0.0}, "scale"), ({"k_scale": 1.5}, "k_scale"),
                                           ({"background": "noise"}, "background"),
                                           ({"scale": 1e-5}, "empty")])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        mc.microcircuit_network(**kwargs)


def test_delay_rule_rounds_to_nearest_step_and_redraws_below_half_step():
    steps, high = mc.delay_steps(1.5, 0.75, 0.1, 200_000, seed=3, name="x")
    assert high == 75 and steps.min() >= 1 and steps.max() <= high
    assert np.all(steps == np.round(steps))
    # D/dt ~ N(15, 7.5) truncated below 0.5 and rounded (unbiased): the truncated mean
    assert steps.mean() == pytest.approx(truncated_mean(15.0, 7.5, 0.5), abs=0.06)
    assert 7.0 < steps.std() < 7.5
    again, _ = mc.delay_steps(1.5, 0.75, 0.1, 200_000, seed=3, name="x")
    np.testing.assert_array_equal(steps, again)  # deterministic per (seed, projection)
    assert steps.dtype == np.uint8  # 1 byte per synapse in the network description
    assert sf.Values(steps).values.dtype == np.uint8  # integer Values keep their type


# the neuron model, on every backend --------------------------------------------------
def _single(model, params, backend, steps, init=None, record=("P.V_m", "P.I")):
    net = sf.NetworkBuilder(dt=0.1, seed=7)
    net.population("P", model, 1, params=params, init={"V_m": -65.0, **(init or {})})
    sim = net.build(backend=backend, record_vars=list(record))
    return sim


def test_psc_of_psc_ext_gives_a_015_mv_psp(backend):
    params = {**mc.NEURON, "I_e": 0.0}
    sim = _single(mc.PD14LIF, params, backend, 60)
    w = mc.psc_over_psp(250.0, 10.0, 0.5) * 0.15
    sim.set("P.I", w / math.exp(-0.1 / 0.5))  # decays once, in step 0, to w
    sim.run(steps=60)
    _, v = sim.trace("P.V_m")
    peak = float(np.max(v[:, 0] + 65.0))
    assert peak == pytest.approx(0.15, rel=0.01)  # the grid misses the exact peak slightly
    assert 10 <= int(np.argmax(v[:, 0])) <= 20  # t* = 1.6 ms


def test_poisson_drive_matches_its_dc_equivalent(backend):
    """Mean V of a neuron kept below threshold: Poisson drive of rate r, weight w
    equals the DC drive I = r w tau_syn (exact integration conserves charge)."""
    rate, w = 20000.0, 2.0
    base = {**mc.NEURON, "V_th": 1e9}
    sim_p = _single(mc.PD14LIFPoisson, {**base, "I_e": 0.0, "w_ext": w, "rate_ext": rate},
                    backend, 0)
    sim_d = _single(mc.PD14LIF, {**base, "I_e": rate * w * 0.5e-3}, backend, 0)
    for sim in (sim_p, sim_d):
        sim.run(steps=6000, progress=False)
    vp, vd = sim_p.trace("P.V_m")[1][1000:, 0], sim_d.trace("P.V_m")[1][1000:, 0]
    assert vd[-1] + 65 == pytest.approx(0.04 * rate * w * 0.5e-3, rel=1e-3)  # R I_dc
    assert vp.mean() == pytest.approx(vd.mean(), abs=0.02)  # 0.8 mV depolarisation, sem ~0.005


def test_delay_of_d_steps_reaches_v_at_step_n_plus_1_plus_d(backend):
    """NEST's timing: a spike at step n with a delay of d steps changes V first in
    step n + 1 + d."""
    net = sf.NetworkBuilder(dt=0.1, seed=1)
    net.population("S", sf.SpikeSourceArray, 1, spike_times=[[1.0]])  # step 10
    net.population("P", mc.PD14LIF, 1, params={**mc.NEURON, "I_e": 0.0}, init={"V_m": -65.0})
    net.connect("S", "P", sf.OneToOne(), weight_update=sf.StaticPulseDendriticDelay,
                wu_init={"w": 100.0, "d": 4}, postsynaptic=sf.Delta, max_dendritic_delay=8)
    sim = net.build(backend=backend, record_vars=["P.V_m", "P.I"])
    sim.run(steps=30)
    _, i_syn = sim.trace("P.I")
    _, v = sim.trace("P.V_m")
    assert np.flatnonzero(i_syn[:, 0])[0] == 15 and np.flatnonzero(v[:, 0] != -65.0)[0] == 15


def test_refractory_period_is_20_steps(backend):
    params = {**mc.NEURON, "I_e": 2000.0}  # strong drive: fires as soon as allowed
    net = sf.NetworkBuilder(dt=0.1, seed=1)
    net.population("P", mc.PD14LIF, 1, params=params, init={"V_m": -49.0})
    sim = net.build(backend=backend)
    sim.run(steps=200)
    steps = np.rint(sim.spikes("P")[0] / 0.1).astype(int)
    assert steps[0] == 0 and np.all(np.diff(steps) > 20)


# stimulus inputs (the NEST example's thalamic_input / dc_input) ---------------------------
def test_thalamic_synapse_counts_follow_the_reference_rule():
    """K = ln(1 - C) / ln(1 - 1/(N_th N_post)) at full N_post ~= -ln(1 - C) N_th N_post;
    scaled by k, not by N."""
    stim = mc.Stimulus()
    full = mc.thalamic_synapses(1.0)
    want = -np.log(1 - np.array(stim.conn_probs_th)) * 902 * mc.FULL_NUM_NEURONS
    np.testing.assert_allclose(full, want, rtol=1e-6, atol=0.5)  # rounded to whole synapses
    assert full[2] // mc.FULL_NUM_NEURONS[2] == 93  # L4E in-degree
    assert list(np.flatnonzero(full)) == [2, 3, 6, 7]  # L4E, L4I, L6E, L6I
    np.testing.assert_array_equal(mc.thalamic_synapses(0.1), np.round(full * 0.1))
    net = mc.microcircuit_network(0.05, 0.1, thalamic=True)
    th = net.population("TH")
    assert th.size == 902 and (th.params["start"], th.params["stop"]) == (701.0, 711.0)
    proj = {p.name: p for p in net.projections if p.pre == "TH"}
    assert sorted(proj) == ["TH_L4E", "TH_L4I", "TH_L6E", "TH_L6I"]
    assert proj["TH_L4E"].connectivity.n == mc.thalamic_synapses(0.1)[2]
    w = proj["TH_L4E"].wu_init["w"]
    assert w.mean == pytest.approx(0.15 * mc.psc_over_psp(250.0, 10.0, 0.5) / math.sqrt(0.1))
    assert (w.low, w.sd) == (0.0, pytest.approx(0.1 * w.mean))


def test_thalamic_neurons_fire_poisson_in_their_window(backend):
    """Events in exactly the steps 30..79 (3 <= t < 8 ms): 400 neurons at 500 Hz give
    each step 20 expected events, so an empty first or last step (e^-20) means a bug."""
    net = sf.NetworkBuilder(dt=0.1, seed=5)
    net.population("TH", mc.PD14Thalamus, 400, params={"rate": 500.0, "start": 3.0,
                                                        "stop": 8.0})
    sim = net.build(backend=backend)
    sim.run(steps=100)
    steps = np.rint(sim.spikes("TH")[0] / 0.1).astype(int)
    assert (steps.min(), steps.max()) == (30, 79)
    expected = 400 * 500.0 * 5.0e-3  # 1000, sd ~32
    assert abs(len(steps) - expected) < 4 * math.sqrt(expected)


def test_dc_stimulus_is_a_direct_current_in_its_window(backend):
    """I_stim adds to I_e (V relaxes towards E_L + R I_stim, not through I) only in
    steps with stim_start <= t < stim_stop."""
    base = {**mc.NEURON, "I_e": 0.0, "V_th": 1e9}
    sim = _single(mc.PD14LIFStim, {**base, "I_stim": 100.0, "stim_start": 1.0,
                                   "stim_stop": 3.0}, backend, 0)
    sim.run(steps=50)
    v, i = sim.trace("P.V_m")[1][:, 0], sim.trace("P.I")[1][:, 0]
    assert np.all(i == 0.0) and np.all(v[:10] == -65.0)  # steps 0-9: before the window
    p22 = math.exp(-0.1 / 10.0)
    want = -65.0 + 0.04 * 100.0 * (1 - p22 ** np.arange(1, 21))  # R = tau_m / C_m = 0.04
    np.testing.assert_allclose(v[10:30] + 0.0, want, atol=1e-4)
    assert np.all(np.diff(v[30:]) < 0)  # relaxing back to E_L after the window


@needs_cpu
def test_stimuli_raise_activity_where_the_reference_puts_them():
    """Scale 0.05: thalamic input evokes a response in L4 within 20 ms of its onset
    (701 ms) and no thalamic spike outside [701, 711) ms; the DC stimulus raises every
    population's rate while it is on."""
    def rates(net, lo, hi):
        sim = net.build(backend="cpu")
        sim.run(duration_ms=hi, progress=False)
        out = {}
        for p in mc.POPULATIONS:
            t = sim.spikes(p)[0]
            out[p] = np.sum((t >= lo) & (t < hi)) / net.population(p).size / ((hi - lo) / 1e3)
        return out, sim

    quiet, _ = rates(mc.microcircuit_network(0.05, 0.05, seed=2), 701.0, 721.0)
    evoked, sim = rates(mc.microcircuit_network(0.05, 0.05, seed=2, thalamic=True), 701.0,
                        721.0)
    th = sim.spikes("TH")[0]
    assert th.min() >= 701.0 - 1e-6 and th.max() < 711.0
    assert evoked["L4E"] > 5 * quiet["L4E"] + 10 and evoked["L4I"] > 5 * quiet["L4I"] + 10
    driven, _ = rates(mc.microcircuit_network(0.05, 0.05, seed=2, dc_stimulus=True), 650.0,
                      750.0)
    base, _ = rates(mc.microcircuit_network(0.05, 0.05, seed=2), 650.0, 750.0)
    assert all(driven[p] > base[p] + 1.0 for p in mc.POPULATIONS), (driven, base)


# analysis ------------------------------------------------------------------------------
def test_analysis_statistics_on_constructed_trains():
    times = np.concatenate([np.arange(0, 1000, 10.0), np.arange(5, 1000, 20.0)])
    ids = np.concatenate([np.zeros(100, int), np.ones(50, int)])
    assert analysis.mean_rate(times, ids, 4, 0, 1000) == pytest.approx(150 / 4)
    assert analysis.cv_isi(times, ids, 0, 1000) == (pytest.approx(0.0, abs=1e-12), 2)
    t2 = np.array([0.0, 1.0, 4.0, 5.0, 8.0])  # ISIs 1, 3, 1, 3: CV = 1/2
    assert analysis.cv_isi(t2, np.zeros(5), 0, 10)[0] == pytest.approx(0.5)
    burst = np.repeat(np.arange(0, 300, 30.0), 10)  # 10 spikes every 30 ms in 3 ms bins
    counts = np.zeros(100)
    counts[::10] = 10
    assert analysis.synchrony(burst, 0, 300) == pytest.approx(counts.var() / counts.mean())
    with pytest.raises(ValueError, match="window"):
        analysis.mean_rate(times, ids, 4, 10, 10)


# the network ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run():
    net = mc.microcircuit_network(scale=0.05, k_scale=0.05, seed=11)
    sim = net.build(backend="cpu", threads=1)
    sim.run(duration_ms=400, progress=False)
    return net, sim


@needs_cpu
def test_smoke_structure(small_run):
    net, sim = small_run
    d = mc.derive(0.05, 0.05)
    sizes = [net.population(p).size for p in mc.POPULATIONS]
    np.testing.assert_array_equal(sizes, d.sizes)
    prepared = sim.prepared
    for t, target in enumerate(mc.POPULATIONS):
        for s, source in enumerate(mc.POPULATIONS):
            name = f"{source}_{target}"
            if d.num_synapses[t, s] == 0:
                assert name not in prepared.synapses
                continue
            syn = prepared.synapses[name]
            assert len(syn.post) == d.num_synapses[t, s]
            indeg = np.bincount(syn.post, minlength=d.sizes[t])
            assert indeg.mean() == pytest.approx(d.num_synapses[t, s] / d.sizes[t])
            w = sim.get(f"{name}.w")
            assert np.all(np.sign(w) == np.sign(d.psc_mean[t, s]))
            if len(w) > 200:
                assert w.mean() == pytest.approx(d.psc_mean[t, s], rel=0.03)
                assert w.std() / abs(w.mean()) == pytest.approx(0.1, rel=0.2)
            delay = sim.get(f"{name}.d")
            assert delay.min() >= 1
            if len(delay) > 2000:
                mean = 15.0 if s % 2 == 0 else 7.5
                assert delay.mean() == pytest.approx(truncated_mean(mean, mean / 2, 0.5),
                                                     rel=0.03)
    w_l4e = sim.get("L4E_L23E.w").mean() / sim.get("L4E_L23I.w").mean()
    assert w_l4e == pytest.approx(2.0, rel=0.03)


@needs_cpu
def test_smoke_activity_is_plausible(small_run):
    net, sim = small_run
    stats = analysis.network_stats(sim, 100.0)
    for pop, s in stats.items():
        assert 0.02 < s.rate_hz < 30.0, (pop, s)  # asynchronous irregular, low rates
    assert stats["L23E"].rate_hz < stats["L5E"].rate_hz  # L2/3E quietest E layer, L5E busiest
    assert stats["L6E"].rate_hz < stats["L6I"].rate_hz
    # irregular: CV well above a regular spiker's ~0 (a 300 ms window biases CV low; the
    # 5-s runs in docs/microcircuit.md give 0.6-0.8)
    assert all(s.cv_isi > 0.2 for s in stats.values() if s.cv_neurons > 20)


@pytest.mark.slow
@needs_cpu
def test_rates_match_nest_reference_at_scale_0_1():
    """Reduced validation: 3 seeds x 2 s at N = K = 0.1 with Poisson drive against the
    NEST example's reference run (docs/microcircuit.md has the 5-seed x 5 s result).
    L2/3E, the quietest population, is held to 25%: the reference itself is one 1-s
    run of one realisation, which varies by 10-20%."""
    rates = []
    for seed in (1, 2, 3):
        sim = mc.microcircuit_network(0.1, 0.1, seed=seed).build(backend="cpu")
        sim.run(duration_ms=2100, progress=False)
        stats = analysis.network_stats(sim, 100.0, pops=mc.POPULATIONS)
        rates.append([stats[p].rate_hz for p in mc.POPULATIONS])
    mean = np.mean(rates, axis=0)
    tolerance = np.array([0.25] + [0.15] * 7)
    rel = np.abs(mean - mc.REFERENCE_RATES_0_1) / mc.REFERENCE_RATES_0_1
    assert np.all(rel < tolerance), dict(zip(mc.POPULATIONS, np.round(rel, 3)))


@needs_cpu
def test_model_file_round_trip_gives_the_same_spikes(tmp_path):
    net = mc.microcircuit_network(scale=0.02, k_scale=0.02, seed=3)
    net.save(tmp_path / "pd14.json")
    again = sf.load(tmp_path / "pd14.json")
    runs = [n.build(backend="cpu", threads=1).run(steps=300, progress=False) for n in (net, again)]
    for pop in mc.POPULATIONS:
        np.testing.assert_array_equal(runs[0].spikes(pop)[1], runs[1].spikes(pop)[1])
    assert sum(len(runs[0].spikes(p)[0]) for p in mc.POPULATIONS) > 0
