"""The native host helper (spikeforge.native) equals the NumPy host code bit for bit.

Every test draws the same numbers twice, once through the helper and once with
it disabled (the NumPy definition), and compares them exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import spikeforge as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from spikeforge import native
from spikeforge.connectivity import FixedProbability, FixedTotalNumber
from spikeforge.init import Exponential, Normal, NormalClipped, Uniform, draw, rows_positions
from spikeforge.philox import Philox, philox4x32, philox4x32_numpy
from spikeforge.prepare import prepare

pytestmark = pytest.mark.skipif(not native.host_status()[0],
                                reason=f"native host helper unavailable: {native.host_status()[1]}")

EXAMPLES = settings(max_examples=25, deadline=None)


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    """Hand even tiny calls to the helper, so small examples exercise it."""
    monkeypatch.setattr(native, "MIN_NATIVE", 1)


def numpy_only(fn, *args, **kwargs):
    saved = native.ENABLED
    native.ENABLED = False
    try:
        return fn(*args, **kwargs)
    finally:
        native.ENABLED = saved


def assert_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)


u32 = st.integers(0, 2**32 - 1)


@EXAMPLES
@given(n=st.integers(1, 300), cols=st.integers(1, 9), data=st.data())
def test_words_equal_numpy(n, cols, data):
    rng = np.random.default_rng(data.draw(u32))
    full = [rng.integers(0, 2**32, size=(n, cols), dtype=np.uint64) for _ in range(6)]
    scalar = data.draw(st.lists(st.booleans(), min_size=6, max_size=6))
    args = [int(a[0, 0]) if s else a for a, s in zip(full, scalar)]
    args[1] = args[1] if scalar[1] else args[1][:, :1]  # a broadcast column
    mine, ref = philox4x32(*args), philox4x32_numpy(*args)
    for a, b in zip(mine, ref):
        assert_same(a, b)


def test_words_known_answer_through_helper():
    """Random123's third philox4x32-10 known answer, 2000 times through the helper."""
    expected = (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)
    out = philox4x32(np.full(2000, 0x243F6A88, dtype=np.uint32), 0x85A308D3, 0x13198A2E,
                     0x03707344, 0xA4093822, 0x299F31D0)
    assert [set(w.tolist()) for w in out] == [{e} for e in expected]


def test_words_reject_bad_counters_like_numpy():
    with pytest.raises(ValueError, match="c0 must lie"):
        philox4x32(np.array([0, 2**32] * 600), 0, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="c1 must be integer"):
        philox4x32(np.zeros(2000, dtype=np.int64), np.zeros(2000), 0, 0, 0, 0)


inits = st.one_of(
    st.builds(Uniform, st.floats(-5, 5), st.floats(5, 20)),
    st.builds(Uniform, st.integers(-3, 0), st.integers(1, 4)),
    st.builds(Normal, st.floats(-70, 70), st.floats(0, 10)),
    st.builds(NormalClipped, st.floats(-2, 2), st.floats(0.1, 3), st.just(0.0)),
    st.builds(NormalClipped, st.floats(-2, 2), st.floats(0.1, 3), st.just(-np.inf),
              st.just(-1.0)),
    st.builds(NormalClipped, st.just(0.0), st.just(1.0), st.just(5.0), st.just(5.5)),  # clips
    st.builds(Exponential, st.floats(0, 30)),
)


@st.composite
def csr(draw_, max_rows=12, max_len=40):
    lengths = draw_(st.lists(st.integers(0, max_len), min_size=1, max_size=max_rows))
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


@EXAMPLES
@given(init=inits, rows=st.one_of(st.none(), csr()), n_batch=st.sampled_from([None, 1, 3]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=u32)
def test_draw_equals_numpy(init, rows, n_batch, dtype, seed):
    rng = Philox(seed, "P.w.init")
    n = 37 if rows is None else int(rows[-1])
    assert_same(draw(init, rng, n, n_batch, rows, dtype),
                numpy_only(draw, init, rng, n, n_batch, rows, dtype))


@pytest.mark.parametrize("init", [Normal(-58.0, 10.0), NormalClipped(87.8, 8.78, low=0.0),
                                  NormalClipped(0.0, 1.0, 2.5, 3.0), Uniform(-60, -50),
                                  Exponential(2.0)])
def test_draw_equals_sample_across_chunks(init):
    """Several native chunks, rows straddling chunk borders, a batch dimension."""
    lengths = np.random.default_rng(3).integers(0, 3000, size=120)
    row_ptr = np.concatenate([[0], np.cumsum(lengths)])
    rng = Philox(55, "X_Y.w.init")
    c1, c2 = rows_positions(row_ptr)
    expected = init.sample(rng, c1, c2, np.arange(2)[:, None]).astype(np.float32)
    assert_same(draw(init, rng, int(row_ptr[-1]), 2, row_ptr, np.float32), expected)


@EXAMPLES
@given(n=st.integers(0, 3000), n_pre=st.integers(1, 70), n_post=st.integers(1, 70), seed=u32)
def test_fixed_total_number_equals_numpy(n, n_pre, n_post, seed):
    rng, conn = Philox(seed, "A_B.connectivity"), FixedTotalNumber(n)
    mine = conn.materialise(rng, n_pre, n_post, False)
    ref = numpy_only(conn.materialise, rng, n_pre, n_post, False)
    for field in ("row_ptr", "post", "var_index"):
        np.testing.assert_array_equal(getattr(mine, field), getattr(ref, field))
    assert mine.n_var == ref.n_var


@EXAMPLES
@given(p=st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1)), n_post=st.integers(1, 75),
       autapses=st.booleans(), seed=u32, data=st.data())
def test_fixed_probability_rows_equal_numpy(p, n_post, autapses, seed, data):
    rows = np.array(data.draw(st.lists(st.integers(0, n_post - 1), max_size=30)), dtype=np.int64)
    rng, conn = Philox(seed, "A_A.connectivity"), FixedProbability(p, autapses=autapses)
    mine = conn.rows(rng, rows, n_post, n_post, True)
    ref = numpy_only(conn.rows, rng, rows, n_post, n_post, True)
    for field in ("row_ptr", "post", "var_index"):
        np.testing.assert_array_equal(getattr(mine, field), getattr(ref, field))


def test_fixed_probability_grows_its_buffer(monkeypatch):
    """Far more synapses than the estimate: the row loop resumes after growing."""
    rng, conn = Philox(9, "A.connectivity"), FixedProbability(0.9)
    lib = native.host()
    counts, post = lib.probability(np.arange(50), 200, int(0.9 * 2**32), False, rng.key, 0.0)
    ref = numpy_only(conn.rows, rng, np.arange(50), 50, 200, False)
    np.testing.assert_array_equal(np.concatenate([[0], np.cumsum(counts)]), ref.row_ptr)
    np.testing.assert_array_equal(post, ref.post)


def small_network(precision="float32", batch=1):
    net = sf.NetworkBuilder(dt=0.1, batch_size=batch, seed=7, precision=precision)
    lif = {"C": 1.0, "tau_m": 20.0, "v_rest": 0.0, "v_reset": 0.0, "v_thresh": 1.0,
           "i_offset": 0.0, "tau_refrac": 2.0}
    net.population("E", sf.LIF, 300, params=lif, init={"v": sf.Uniform(0.0, 1.0)})
    net.population("I", sf.LIF, 120, params=lif, init={"v": sf.Normal(0.5, 0.2)})
    net.connect("E", "I", sf.FixedTotalNumber(5000), w=sf.NormalClipped(0.05, 0.02, low=0.0),
                name="EI")
    net.connect("E", "E", sf.FixedProbability(0.1, autapses=False), w=sf.Uniform(0.0, 0.1),
                name="EE")
    net.connect("I", "E", sf.FixedProbability(0.2), w=sf.Normal(-0.1, 0.05), name="IE")
    return net.network()


@pytest.mark.parametrize("precision", ["float32", "float64", sf.Fixed(32, 16)])
def test_prepare_equals_numpy(precision):
    net = small_network(precision)
    mine, ref = prepare(net), numpy_only(prepare, net)
    assert mine.state.keys() == ref.state.keys()
    for key in ref.state:
        assert_same(mine.state[key], ref.state[key])
        assert mine.state[key].flags.writeable and mine.state[key].flags.c_contiguous
    for name, syn in ref.synapses.items():
        for field in ("row_ptr", "post", "var_index"):
            assert_same(getattr(mine.synapses[name], field), getattr(syn, field))


def test_no_compiler_falls_back_to_numpy(monkeypatch):
    def missing():
        raise native.CompilerNotFound("no compiler here")

    monkeypatch.setattr(native, "_STATUS", {})
    monkeypatch.setattr(native, "compiler", missing)
    monkeypatch.setattr(native, "build_library", lambda *a, **k: missing())
    assert native.host() is None and native.host_status() == (False, "no compiler here")
    values = draw(Normal(0.0, 1.0), Philox(1, "s"), 50)
    assert_same(values, numpy_only(draw, Normal(0.0, 1.0), Philox(1, "s"), 50))


def test_disabled_by_flag(monkeypatch):
    monkeypatch.setattr(native, "ENABLED", False)
    assert native.host() is None


def test_cpu_runtime_uses_the_shared_build_cache():
    from spikeforge.backends.cpu import runtime
    from spikeforge.backends.cstyle import INCLUDE_DIR

    source, flags = "int f(void) { return 1; }\n", ("-O1", "-fPIC", "-shared")
    header = (INCLUDE_DIR / "philox.h").read_text()
    assert runtime.library_key(source, flags) == native.library_key(source, flags, (header,))
    assert runtime.library_key(source, flags) != native.library_key(source, flags)
    assert runtime.CompilerNotFound is native.CompilerNotFound
    path = runtime.build_library(source, flags)
    assert path.exists() and path.parent == native.cache_dir()
