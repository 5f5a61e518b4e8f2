"""Row loops on the cpu backend. Row splitting (``Dialect.split_sorted_rows``):
when a stored row lists its targets in ascending order, each thread of a team
finds the stretch of the row that targets its own neurons by binary search
instead of scanning the whole row. Which rows qualify (``layout.rows_ascending``),
that FixedTotalNumber builds them so, and that results equal the reference bit
for bit with any team size, with plastic synapses whose vars follow the split.
Ring prefetch (``Dialect.prefetch_distance``): generated only when the rings
outgrow the cache, and then without any effect on results."""

import numpy as np
import pytest
import spikeforge as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from spikeforge import native as host
from spikeforge.backends.cpu.dialect import CpuDialect
from spikeforge.backends.cstyle import layout
from spikeforge.backends.cstyle.layout import rows_ascending
from spikeforge.backends.cstyle.program import Program
from spikeforge.connectivity import FixedTotalNumber, Synapses
from spikeforge.philox import Philox, uniform_int
from spikeforge.prepare import prepare

pytestmark = pytest.mark.skipif(
    not any(s.name == "cpu" and s.available for s in sf.available()), reason="no C compiler")

LIF = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
           tau_refrac=2.0)


def csr(rows: list[list[int]]) -> Synapses:
    lengths = [len(r) for r in rows]
    row_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    post = np.array([j for r in rows for j in r], dtype=np.int32)
    return Synapses(row_ptr, post, np.arange(len(post)), len(post))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.integers(0, 9), max_size=6), min_size=1, max_size=8),
       chunk=st.integers(1, 5))
def test_rows_ascending_agrees_with_a_row_by_row_check(rows, chunk):
    expected = all(r == sorted(r) for r in rows)
    assert rows_ascending(csr(rows), chunk=chunk) == expected


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_fixed_total_number_rows_are_ascending_and_hold_the_drawn_pairs(native, monkeypatch):
    monkeypatch.setattr(host, "ENABLED", native and host.ENABLED)
    n, n_pre, n_post = 300_000, 70, 900
    rng = Philox(7, "A_B.connectivity")
    syn = FixedTotalNumber(n).materialise(rng, n_pre, n_post, False)
    assert rows_ascending(syn)
    words = np.stack(rng.words(0, np.arange((n + 1) // 2), 0, 0), axis=-1).reshape(-1, 2)[:n]
    drawn = uniform_int(words[:, 0], n_pre) * n_post + uniform_int(words[:, 1], n_post)
    pre = np.repeat(np.arange(n_pre), np.diff(syn.row_ptr))
    assert np.array_equal(np.sort(drawn), pre * n_post + syn.post)


def mixed_network(precision="float32", plastic=True):
    """Stored projections with ascending rows (FixedProbability, FixedTotalNumber,
    a sorted Sparse), with rows that are not (FixedNumberPost, an unsorted Sparse),
    and kinds that have no stored rows to split (Dense, procedural)."""
    net = sf.NetworkBuilder(dt=0.5, batch_size=2, seed=5, precision=precision)
    net.population("P", sf.PoissonSource, 40, params={"rate": 300.0})
    net.population("N", sf.LIF, 57, params=LIF, init={"v": sf.Uniform(0.0, 1.0)})
    stdp = dict(tau_plus=10.0, tau_minus=10.0, a_plus=0.01, a_minus=0.012, w_min=0.0, w_max=0.6)
    plasticity = dict(weight_update=sf.STDP, wu_params=stdp) if plastic else {}
    rng = np.random.default_rng(2)
    shuffled = [rng.permutation(57)[:12] for _ in range(40)]
    unsorted = sf.Sparse(np.arange(41) * 12, np.concatenate(shuffled))
    ordered = sf.Sparse(np.arange(41) * 12, np.concatenate([np.sort(r) for r in shuffled]))
    for name, conn in [("prob", sf.FixedProbability(0.3)), ("total", sf.FixedTotalNumber(900)),
                       ("sorted", ordered), ("unsorted", unsorted),
                       ("numpost", sf.FixedNumberPost(9)), ("dense", sf.Dense()),
                       ("procedural", sf.FixedProbability(0.2, procedural=True))]:
        extra = plasticity if name != "procedural" else {}
        net.connect("P", "N", conn, name=name, w=sf.Uniform(0.0, 0.25), delay=1, **extra)
    return net.network()


def test_only_stored_ascending_rows_are_split():
    program = Program(prepare(mixed_network()), CpuDialect())
    assert program.ascending == {"prob", "total", "sorted"}
    source = program.render()
    for name in ("prob", "total", "sorted"):  # two searches per row: from lo, to hi
        assert source.count(f"sf_first_at_least(b_post_{name},") == 2, name
    assert source.count("sf_first_at_least(b_post_") == 6


@pytest.mark.parametrize("precision", ["float32", sf.Fixed(32, 16)], ids=["float", "fixed"])
@pytest.mark.parametrize("plastic", [True, False], ids=["stdp", "static"])
def test_split_rows_match_the_reference_with_any_team(precision, plastic):
    net = mixed_network(precision, plastic)
    ref = net.build("numpy", record_vars=["N.v"])
    ref.run(steps=120, progress=False)
    assert len(ref.spikes("N")[0]) > 50
    for threads in (1, 2, 3):
        sim = net.build("cpu", record_vars=["N.v"], threads=threads, parallel_grain=0)
        assert sim.team == threads
        sim.run(steps=120, progress=False)
        assert np.array_equal(sim.trace("N.v")[1], ref.trace("N.v")[1]), threads
        for name in ("prob", "total", "sorted", "unsorted"):
            if plastic:
                assert np.array_equal(sim.get(f"{name}.w"), ref.get(f"{name}.w")), (name, threads)


def test_ring_prefetch_only_when_the_rings_outgrow_the_cache(monkeypatch):
    small = Program(prepare(mixed_network()), CpuDialect())
    assert small.prefetch_distance == 0 and "__builtin_prefetch" not in small.render()
    monkeypatch.setattr(layout, "PREFETCH_FROM", 0)
    program = Program(prepare(mixed_network()), CpuDialect())
    assert program.prefetch_distance == CpuDialect.prefetch_distance > 0
    source = program.render()
    for name in ("prob", "total", "sorted", "unsorted", "numpost"):  # stored sparse rows
        assert f"__builtin_prefetch(&b_inring_{name}[" in source, name
    assert "__builtin_prefetch(&b_inring_dense[" not in source  # dense rows: vector loops


@pytest.mark.parametrize("plastic", [True, False], ids=["stdp", "static"])
def test_prefetching_rows_match_the_reference(plastic, monkeypatch):
    monkeypatch.setattr(layout, "PREFETCH_FROM", 0)
    net = mixed_network(sf.Fixed(32, 16), plastic)
    ref = net.build("numpy", record_vars=["N.v"])
    ref.run(steps=120, progress=False)
    for threads in (1, 2):
        sim = net.build("cpu", record_vars=["N.v"], threads=threads, parallel_grain=0)
        assert "__builtin_prefetch" in sim.source
        sim.run(steps=120, progress=False)
        assert np.array_equal(sim.trace("N.v")[1], ref.trace("N.v")[1]), threads
