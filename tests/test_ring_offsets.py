"""Stored ring offsets on the cpu backend (``Dialect.ring_offsets``,
layout.ring_offsets): a projection whose only delay is an int synapse var that
nothing but the host writes gets d x batch x n_post + target per synapse, so a
delayed delivery loads one int instead of the delay and the target. Which
projections qualify, that results equal the reference bit for bit (float and
fixed point, split and single rings, batch 1 and 2, 1 and 2 threads), that
the near path no longer loads the delay, and that setting the delay var from
the host (and resetting) moves the offsets with it."""

import numpy as np
import pytest

import spikeforge as sf
from spikeforge.backends.cpu.dialect import CpuDialect
from spikeforge.backends.cstyle import layout
from spikeforge.backends.cstyle.program import Program
from spikeforge.prepare import prepare

pytestmark = pytest.mark.skipif(
    not any(s.name == "cpu" and s.available for s in sf.available()), reason="no C compiler")

LIF = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
           tau_refrac=2.0)
LONGEST = 30
N_SYN = 6000


def tailed(rng, n):
    """Mostly 0-5 steps, one in 1000 far (split rings), a few negative (clipped to 0)."""
    far = rng.random(n) < 0.001
    return np.where(far, rng.integers(12, LONGEST + 1, n), rng.integers(-1, 6, n))


def spread(rng, n):
    """Delays all over 0..LONGEST (and beyond: clipped): single rings."""
    return rng.integers(0, LONGEST + 3, n)


def network(delays=tailed, batch_size=1, precision="float32", model=sf.StaticPulseDendriticDelay):
    net = sf.NetworkBuilder(dt=0.1, batch_size=batch_size, seed=4, precision=precision,
                            fuse_postsynaptic=False)
    net.population("P", sf.PoissonSource, 120, params={"rate": 300.0})
    net.population("E", sf.LIF, 150, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    net.population("I", sf.LIF, 50, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    rng = np.random.default_rng(6)
    for pre, post, w in [("P", "E", 0.5), ("P", "I", 0.5), ("E", "E", 0.06), ("E", "I", 0.1),
                         ("I", "E", -0.2)]:
        net.connect(pre, post, sf.FixedTotalNumber(N_SYN), weight_update=model,
                    w=sf.Normal(w, abs(w) / 5),
                    wu_init={"d": sf.Values(delays(rng, N_SYN).astype(np.int32))},
                    postsynaptic=sf.ExpCurr, ps_params={"tau": 0.5}, delay=1,
                    max_dendritic_delay=LONGEST)
    return net


def delay_model(pre_spike: str, batched=False):
    return sf.WeightUpdateModel("Delayed", vars=(sf.Var("w", batched=False),
                                                 sf.Var("d", type="int", batched=batched)),
                                pre_spike=pre_spike)


def offsets(net) -> dict:
    return Program(prepare(net.network()), CpuDialect()).offsets


def test_a_delay_var_only_the_host_writes_gets_stored_offsets():
    for batch in (1, 2):
        program = Program(prepare(network(batch_size=batch).network()), CpuDialect())
        assert program.offsets == dict.fromkeys(["P_E", "P_I", "E_E", "E_I", "I_E"], "d")
        assert program.by_key["ringoff:E_I"].shape == (N_SYN,)


def test_offsets_are_the_clipped_delay_times_the_targets_plus_the_target():
    prepared = prepare(network(batch_size=2).network())
    out = np.empty(N_SYN, np.int32)
    layout.fill_ring_offsets(prepared, "E_I", out)
    d = np.clip(prepared.state["E_I.d"], 0, LONGEST)
    assert np.array_equal(out, d * 2 * 50 + prepared.synapses["E_I"].post)


def test_no_offsets_where_the_delay_is_written_computed_or_batched():
    assert offsets(network(model=delay_model("deliver_delayed(w, d)\nd = d + 1"))) == {}
    assert offsets(network(model=delay_model("deliver_delayed(w, d + 1)"))) == {}
    assert offsets(network(model=delay_model("deliver_delayed(w, d)", batched=True),
                           batch_size=2)) == {}
    assert len(offsets(network(model=delay_model("deliver_delayed(w, d)", batched=True)))) == 5
    net = network()
    net.custom_update("grow", "E_I", "d = d + 1", var_refs={"d": "E_I.d"})
    assert "E_I" not in offsets(net) and "E_E" in offsets(net)
    net = network()  # a custom update that only reads the delay keeps the offsets
    net.custom_update("look", "E_I", "w = w + d", var_refs={"d": "E_I.d", "w": "E_I.w"})
    assert "E_I" in offsets(net)


def test_no_offsets_where_they_would_overflow_an_int32():
    net = sf.NetworkBuilder(dt=0.1)
    net.population("S", sf.PoissonSource, 2, params={"rate": 10.0})
    net.population("N", sf.LIF, 100_000, params=LIF, init={"v": 0.0})
    for name, longest, stored in [("long", 30_000, False), ("short", 20_000, True)]:
        proj = net.connect("S", "N", sf.FixedTotalNumber(10), name, w=0.1,
                           weight_update=sf.StaticPulseDendriticDelay,
                           max_dendritic_delay=longest)  # (longest + 1) x 100,000 vs 2**31
        assert (layout.offset_delay(net.network(), proj) == "d") == stored


def test_deliveries_load_neither_delay_nor_target():
    """Split ring: a far event decodes delay and target from its offset; a
    single ring needs only the offset too."""
    for delays in (tailed, spread):
        source = network(delays=delays).network().build("cpu").source
        assert "b_ringoff_E_E[vi]" in source
        assert "b_state_E_E_d[vi]" not in source and "b_post_E_E[vi]" not in source
    split = network().network().build("cpu").source
    assert "if (__builtin_expect(sf_o < 900, 1))" in split  # 6 near slots x 150 targets
    assert "sf_d = sf_o / 150, sf_t = sf_o - sf_d * 150;" in split


def run_both(net, steps=200, threads=1, prepare_run=None):
    """(reference, cpu) sims after ``steps``; ``prepare_run(sim)`` first on both."""
    record = ["E.v", "I.v"]
    net = net.network()
    sims = [net.build("numpy", record_vars=record),
            net.build("cpu", record_vars=record, threads=threads, parallel_grain=0)]
    for sim in sims:
        if prepare_run is not None:
            prepare_run(sim)
        sim.run(steps=steps, progress=False)
    return sims


def far_events(sim, proj: str) -> int:
    """Delivered events of ``proj`` with a delay beyond the near slots (6)."""
    syn, pre = sim.prepared.synapses[proj], sim.network.projection(proj).pre
    far = np.clip(sim.get(f"{proj}.d"), 0, LONGEST) >= 6
    far_per_row = np.bincount(syn.pre[far], minlength=len(syn.row_ptr) - 1)
    return int(far_per_row[np.asarray(sim.spikes(pre)[1], dtype=np.int64)].sum())


def assert_same(ref, sim, note=""):
    for var in ("E.v", "I.v"):
        assert np.array_equal(sim.trace(var)[1], ref.trace(var)[1]), (var, note)


@pytest.mark.parametrize("precision", ["float32", sf.Fixed(32, 16)], ids=["float", "fixed"])
@pytest.mark.parametrize("delays", [tailed, spread], ids=["split", "single"])
@pytest.mark.parametrize("batch", [1, 2])
def test_stored_offsets_match_the_reference_bit_for_bit(precision, delays, batch):
    net = network(delays, batch, precision)
    for threads in (1, 2):
        ref, sim = run_both(net, threads=threads)
        assert "ringoff:E_E" in sim.program.by_key
        assert len(ref.spikes("E")[0]) > 100
        if delays is tailed:
            assert far_events(sim, "P_E") > 10
        assert_same(ref, sim, threads)


def test_a_delay_var_also_read_as_a_value_is_still_delivered_right():
    net = network(model=delay_model("deliver_delayed(w * (1 + d), d)"))
    ref, sim = run_both(net, threads=2)
    assert "ringoff:E_E" in sim.program.by_key
    assert_same(ref, sim)


def new_delays(sim):
    rng = np.random.default_rng(9)
    sim.set("E_E.d", rng.integers(0, LONGEST + 1, N_SYN))
    sim.set("P_E.d", 0)


@pytest.mark.parametrize("delays", [tailed, spread], ids=["split", "single"])
def test_setting_the_delay_var_moves_the_offsets(delays):
    net = network(delays)
    ref, sim = run_both(net, prepare_run=new_delays)
    unchanged = net.network().build("numpy", record_vars=["E.v"])
    unchanged.run(steps=200, progress=False)
    assert not np.array_equal(unchanged.trace("E.v")[1], ref.trace("E.v")[1])
    assert_same(ref, sim)
    for one in (ref, sim):  # a reset restores the initial delays, and their offsets
        one.reset(seed=4)
        one.run(steps=200, progress=False)
    assert_same(ref, sim, "reset")
    assert np.array_equal(sim.get("E_E.d"), net.network().build("numpy").get("E_E.d"))


def test_a_reset_after_setting_restores_the_offsets():
    ref, sim = run_both(network(), steps=50, prepare_run=new_delays)
    for one in (ref, sim):
        one.reset()
        one.run(steps=200, progress=False)
    assert_same(ref, sim)
