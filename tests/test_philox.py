"""Tests for spikeforge.philox: known answers, vectorisation, distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from spikeforge.philox import (
    Philox,
    bernoulli,
    exponential_from_word,
    normal_from_words,
    pack_c3,
    philox4x32,
    stream_id,
    uniform_from_word,
    uniform_int,
)

# Random123 tests/kat_vectors, the three "philox4x32 10" lines
# (github.com/DEShawResearch/random123, commit 9545ff6413f258be2f04c1d319d99aaef7521150).
# Columns: counter (4 words), key (2 words), expected output (4 words).
KAT_PHILOX4X32_10 = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

N = 50_000
P_MIN = 1e-3


def draws(stream: str, n: int = N, seed: int = 20240601) -> tuple[np.ndarray, ...]:
    """Words for counters (step=7, element=0..n-1) of a named stream."""
    return Philox(seed, stream).words(7, np.arange(n))


@pytest.mark.parametrize("ctr,key,expected", KAT_PHILOX4X32_10)
def test_known_answers(ctr, key, expected):
    out = philox4x32(*ctr, *key)
    assert tuple(int(w) for w in out) == expected
    assert all(w.dtype == np.uint32 for w in out)


def test_known_answers_vectorised():
    ctr, key, expected = (np.array(col, dtype=np.uint32).T for col in zip(*KAT_PHILOX4X32_10))
    out = philox4x32(*ctr, *key)
    np.testing.assert_array_equal(np.stack(out), expected)


def test_array_matches_scalar_calls():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2**32, size=(4, 64), dtype=np.uint64)
    out = philox4x32(*c, 12345, 0xDEADBEEF)
    for i in range(c.shape[1]):
        scalar = philox4x32(*(int(x) for x in c[:, i]), 12345, 0xDEADBEEF)
        assert [int(w[i]) for w in out] == [int(s) for s in scalar]


def test_broadcasting_shape():
    out = philox4x32(np.arange(3)[:, None], np.arange(4), 0, 0, 1, 2)
    assert all(w.shape == (3, 4) for w in out)
    assert int(out[0][2, 1]) == int(philox4x32(2, 1, 0, 0, 1, 2)[0])


@pytest.mark.parametrize("bad", [-1, 2**32, np.array([0, 2**32])])
def test_counter_out_of_range_rejected(bad):
    with pytest.raises(ValueError):
        philox4x32(bad, 0, 0, 0, 0, 0)


def test_float_counter_rejected():
    with pytest.raises(TypeError):
        philox4x32(1.0, 0, 0, 0, 0, 0)


def test_stream_id_fnv1a():
    assert stream_id("") == 0x811C9DC5
    assert stream_id("a") == 0xE40C292C
    assert stream_id("foobar") == 0xBF9CF968


def test_key_from_seed_and_name():
    p = Philox(seed=2**40 + 5, stream="noise")
    assert p.key == (5, stream_id("noise"))
    np.testing.assert_array_equal(p.words(3, 4)[2], philox4x32(3, 4, 0, 0, 5, stream_id("noise"))[2])


def test_pack_c3():
    assert int(pack_c3(3, 7)) == (3 << 8) | 7
    np.testing.assert_array_equal(pack_c3(np.arange(3), 255), [255, 511, 767])
    assert pack_c3(2**24 - 1, 255).dtype == np.uint32
    with pytest.raises(ValueError):
        pack_c3(0, 256)
    with pytest.raises(ValueError):
        pack_c3(2**24, 0)


def test_uniform_from_word_extremes():
    assert uniform_from_word(0, np.float64) == 2.0**-24
    assert uniform_from_word(0xFFFFFFFF, np.float64) == 1.0 - 2.0**-24
    assert uniform_from_word(0xFFFFFFFF, np.float32) == np.float32(1.0 - 2.0**-24) < 1


def test_uniform_float32_equals_float64_exactly():
    w = np.concatenate([draws("u32")[0], np.array([0, 511, 512, 2**31, 2**32 - 1], dtype=np.uint32)])
    u64 = uniform_from_word(w, np.float64)
    u32 = uniform_from_word(w, np.float32)
    assert u32.dtype == np.float32 and u64.dtype == np.float64
    np.testing.assert_array_equal(u32.astype(np.float64), u64)
    assert np.all((u32 > 0) & (u32 < 1))


def test_uniform_ks():
    u = uniform_from_word(draws("ks.uniform")[0], np.float64)
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_normal_ks():
    w = draws("ks.normal")
    z = normal_from_words(w[0], w[1], np.float64)
    assert stats.kstest(z, "norm").pvalue > P_MIN
    assert normal_from_words(w[0], w[1]).dtype == np.float32


def test_exponential_ks():
    x = exponential_from_word(draws("ks.expon")[0], np.float64)
    assert np.all(x > 0)
    assert stats.kstest(x, "expon").pvalue > P_MIN


def test_philox_methods_match_free_functions():
    p = Philox(99, "methods")
    w = p.words(1, np.arange(10), 2, pack_c3(1, 3))
    np.testing.assert_array_equal(p.uniform(1, np.arange(10), 2, pack_c3(1, 3)), uniform_from_word(w[0]))
    np.testing.assert_array_equal(p.normal(1, np.arange(10), 2, pack_c3(1, 3), np.float64),
                                  normal_from_words(w[0], w[1], np.float64))
    np.testing.assert_array_equal(p.exponential(1, np.arange(10), 2, pack_c3(1, 3)),
                                  exponential_from_word(w[0]))


def test_uniform_int_chisquare():
    k = 10
    x = uniform_int(draws("uint")[0], k)
    assert x.dtype == np.int64 and x.min() == 0 and x.max() == k - 1
    assert stats.chisquare(np.bincount(x, minlength=k)).pvalue > P_MIN


def test_uniform_int_exact_and_array_n():
    assert int(uniform_int(0xFFFFFFFF, 2**32)) == 0xFFFFFFFF
    assert int(uniform_int(0xFFFFFFFF, 1)) == 0
    assert int(uniform_int(2**31, 3)) == 1
    n = np.arange(1, 1001)
    x = uniform_int(draws("uint.n", n=1000)[0], n)
    assert np.all((x >= 0) & (x < n))
    with pytest.raises(ValueError):
        uniform_int(5, 0)


def test_bernoulli():
    w = draws("bern")[0]
    freq = bernoulli(w, 0.3).mean()
    assert abs(freq - 0.3) < 4 * np.sqrt(0.3 * 0.7 / N)
    edge = np.array([0, 1, 2**31, 2**32 - 1], dtype=np.uint32)
    assert bernoulli(edge, 1.0).all()
    assert not bernoulli(edge, 0.0).any()
    with pytest.raises(ValueError):
        bernoulli(edge, 1.5)


def test_streams_uncorrelated():
    a = uniform_from_word(draws("synapse.release")[0], np.float64)
    b = uniform_from_word(draws("neuron.noise")[0], np.float64)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.02


def test_streams_independent_of_creation_order():
    first = Philox(1, "b").uniform(0, np.arange(5))
    Philox(1, "a").uniform(0, np.arange(5))
    np.testing.assert_array_equal(Philox(1, "b").uniform(0, np.arange(5)), first)


def test_counter_words_all_matter():
    base = np.stack(philox4x32(1, 2, 3, 4, 5, 6))
    for i in range(6):
        args = [1, 2, 3, 4, 5, 6]
        args[i] += 1
        assert not np.array_equal(np.stack(philox4x32(*args)), base)
