"""Split input rings on the cpu backend (layout.near_slots): a ring whose
group's delays rarely reach far keeps only its near slots hot and parks the
rare far events in a far ring handed on by the neuron phase. Which rings are
split, and that results equal the reference bit for bit (same order of every
sum) with far events actually delivered, in float and fixed point, with 1 and
2 threads, fused and separate rings, across a reset."""

import numpy as np
import pytest

import spikeforge as sf
from spikeforge.backends.cpu.dialect import CpuDialect
from spikeforge.backends.cstyle import layout
from spikeforge.backends.cstyle.program import Program, split_rings
from spikeforge.prepare import prepare

LIF = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
           tau_refrac=2.0)
LONGEST = 40


def tailed_delays(rng, n: int) -> np.ndarray:
    """Mostly 0-7 steps, one in 1000 between 10 and LONGEST (and a few negative,
    which deliver_delayed clips to 0)."""
    far = rng.random(n) < 0.001
    return np.where(far, rng.integers(10, LONGEST + 1, n), rng.integers(-1, 8, n)).astype(np.int32)


def network(fuse=True, precision="float32", batch_size=2, delays=tailed_delays):
    net = sf.NetworkBuilder(dt=0.1, batch_size=batch_size, seed=3, precision=precision,
                            fuse_postsynaptic=fuse)
    net.population("P", sf.PoissonSource, 200, params={"rate": 300.0})
    net.population("E", sf.LIF, 300, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    net.population("I", sf.LIF, 100, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    rng = np.random.default_rng(1)
    n = 20000
    for pre, post, w, delay in [("P", "E", 0.9, 2), ("P", "I", 0.9, 0), ("E", "E", 0.05, 1),
                                ("E", "I", 0.1, 0), ("I", "E", -0.2, 3), ("I", "I", -0.1, 0)]:
        net.connect(pre, post, sf.FixedTotalNumber(n), weight_update=sf.StaticPulseDendriticDelay,
                    w=sf.Normal(w, abs(w) / 5), wu_init={"d": sf.Values(delays(rng, n))},
                    postsynaptic=sf.ExpCurr, ps_params={"tau": 0.5}, delay=delay,
                    max_dendritic_delay=LONGEST)
    return net.network()


def test_rings_with_a_thin_tail_of_long_delays_are_split():
    near = split_rings(prepare(network(fuse=False)))
    assert set(near) == {"P_E", "P_I", "E_E", "E_I", "I_E", "I_I"}
    assert all(slots == 8 for slots in near.values())  # 0..7 near, the tail far
    fused = split_rings(prepare(network(fuse=True)))
    assert set(fused) == {"P_E", "P_I"}  # one ring per target population


def test_rings_without_a_thin_tail_are_not_split():
    def spread(rng, n):
        return rng.integers(0, LONGEST + 1, n).astype(np.int32)
    assert split_rings(prepare(network(delays=spread))) == {}


def test_delays_that_are_not_a_synapse_var_keep_one_ring():
    net = sf.NetworkBuilder(dt=0.1, seed=1)
    net.population("S", sf.PoissonSource, 10, params={"rate": 100.0})
    net.population("N", sf.LIF, 10, params=LIF, init={"v": 0.0})
    model = sf.WeightUpdateModel("Computed", vars=(sf.Var("w"), sf.Var("d", type="int")),
                                 pre_spike="deliver_delayed(w, d * 2)")
    net.connect("S", "N", sf.FixedTotalNumber(50), weight_update=model, w=0.1,
                wu_init={"d": 1}, max_dendritic_delay=30)
    prepared = prepare(net.network())
    assert layout.near_slots(prepared, "S_N") == prepared.network.ring_depth("S_N")


def test_split_ring_buffers_and_hand_on_are_generated():
    program = Program(prepare(network()), CpuDialect())
    keys = {b.key for b in program.buffers}
    assert {"inring:P_E", "farring:P_E", "farflag:P_E", "farlist:P_E", "farcnt:P_E"} <= keys
    assert program.by_key["inring:P_E"].shape[0] == 8
    assert program.by_key["farring:P_E"].shape[0] == LONGEST + 1 - 8
    assert "b_farlist_P_E" in program.render()


def far_events(net, sim) -> int:
    """Delivered events with a delay beyond the near slots (spikes x far synapses)."""
    near = split_rings(sim.prepared)
    total = 0
    for proj in net.projections:
        slots = near.get(net.postsynaptic_leader[proj.name])
        if slots is None:
            continue
        syn = sim.prepared.synapses[proj.name]
        d = np.clip(sim.prepared.state[f"{proj.name}.d"], 0, proj.max_dendritic_delay)
        far_per_row = np.bincount(syn.pre[d >= slots], minlength=len(syn.row_ptr) - 1)
        times, ids = sim.spikes(proj.pre)[:2]
        total += int(far_per_row[np.asarray(ids, dtype=np.int64)].sum())
    return total


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("precision", ["float32", sf.Fixed(32, 16)])
def test_split_rings_match_the_reference_bit_for_bit(fuse, precision):
    net = network(fuse=fuse, precision=precision)
    record = ["E.v", "I.v"]
    ref = net.build("numpy", record_vars=record)
    ref.run(steps=300)
    for threads in (1, 2):
        sim = net.build("cpu", record_vars=record, threads=threads, parallel_grain=0)
        sim.run(steps=300)
        assert far_events(net, sim) > 100
        for var in record:
            assert np.array_equal(sim.trace(var)[1], ref.trace(var)[1]), (var, threads)


@pytest.mark.parametrize("offsets", [True, False], ids=["ring-offsets", "delays"])
def test_prefetching_split_rings_match_the_reference(offsets, monkeypatch):
    """Ring prefetch of delayed deliveries (near slots only), from the stored
    ring offsets or from delay and target, changes no result."""
    monkeypatch.setattr(layout, "PREFETCH_FROM", 0)
    monkeypatch.setattr(CpuDialect, "ring_offsets", offsets)
    net = network(precision=sf.Fixed(32, 16))
    ref = net.build("numpy", record_vars=["E.v"])
    ref.run(steps=300)
    sim = net.build("cpu", record_vars=["E.v"], threads=2, parallel_grain=0)
    near_size = 8 * 2 * 300  # near slots x batch x targets of E
    guard = f"if (sf_po < {near_size})" if offsets else "if (sf_pd < 8)"
    assert guard in sim.source and "__builtin_prefetch" in sim.source
    sim.run(steps=300)
    assert np.array_equal(sim.trace("E.v")[1], ref.trace("E.v")[1])


def test_reset_clears_the_far_ring():
    """Far events in flight at a reset are dropped, as the reference drops them
    (random streams continue after a reset, on both)."""
    net = network(batch_size=1)
    runs = []
    for backend in ("numpy", "cpu"):
        sim = net.build(backend)
        sim.run(steps=250)
        sim.reset()
        sim.run(steps=150)
        runs.append(sim.get("E.v"))
    assert np.array_equal(*runs)
