"""Fast tests of the benchmark tools' pure helpers (no NEST, no Brian2 runs): Brian2's
in-binary connectivity plan and its C support functions, the memory model and run plan,
peak-memory measurement, the result table."""

from __future__ import annotations

import ctypes
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from spikeforge.microcircuit import derive, full_num_synapses
from spikeforge.tools import bench_cuba as bc
from spikeforge.tools import bench_microcircuit as bm


# Brian2 binary mode: plan and expressions --------------------------------------------------
@pytest.mark.parametrize("scale", [0.05, 0.5, 1.0])
def test_binary_plan_expects_the_reference_synapse_counts(scale):
    d = derive(scale, 1.0, "dc")
    plan = bm.binary_plan(d)
    assert sum(len(row) for row in plan) == int(np.count_nonzero(d.num_synapses))
    for t, row in enumerate(plan):
        for s, n, q, p in row:
            assert n == d.num_synapses[t, s] and q == pytest.approx(1 / (d.sizes[s] * d.sizes[t]))
            assert 0 < p <= 1 and p == pytest.approx(1 - (1 - q) ** n, rel=1e-7)  # naive form
            pairs = float(d.sizes[s]) * float(d.sizes[t])
            # pairs chosen x E[X | X >= 1] = pairs x n q = n
            assert pairs * p * (n * q / p) == pytest.approx(n, rel=1e-9)


def _evaluate(expr: str, i: int):
    """Value of a generated Brian2 expression of ``i`` (our own strings, no builtins)."""
    return eval(expr, {"__builtins__": {}}, {"i": i, "int": int,  # noqa: S307
                                             "zt_binomial": lambda n, q: (n, q)})


def test_connect_expressions_select_the_source_population():
    d = derive(0.05, 1.0, "dc")
    bounds = np.concatenate([[0], np.cumsum(d.sizes)])
    for t, row in enumerate(bm.binary_plan(d)):
        p_expr, n_expr = bm.connect_expressions(row, bounds)
        by_source = {s: (n, q, p) for s, n, q, p in row}
        for s in range(8):
            for i in (int(bounds[s]), int(bounds[s + 1]) - 1):
                n, q, p = by_source.get(s, (0, 0.0, 0.0))
                assert _evaluate(p_expr, i) == pytest.approx(p, rel=1e-15)
                got_n, got_q = _evaluate(n_expr, i)
                assert got_n == n and got_q == pytest.approx(q, rel=1e-15)


def test_weight_structure_reproduces_every_mean_psc():
    for k_scale in (1.0, 0.5):
        psc = derive(0.1, k_scale, "dc").psc_mean
        out, exceptions = bm.weight_structure(psc)
        assert [(t, s) for t, s, _ in exceptions] == [(0, 2)]  # L4E -> L2/3E, doubled
        assert exceptions[0][2] == pytest.approx(2.0)
        rebuilt = np.tile(out, (8, 1))
        for t, s, f in exceptions:
            rebuilt[t, s] *= f
        np.testing.assert_allclose(rebuilt, psc, rtol=1e-12)
    bad = np.ones((8, 8))
    bad[3, 4] = -1.0
    with pytest.raises(NotImplementedError, match="both signs"):
        bm.weight_structure(bad)


# the C support functions, compiled with a stand-in for Brian2's RNG ---------------------
RNG_STUB = r"""
#include <math.h>
#include <stdint.h>
static uint64_t _state = 0x9E3779B97F4A7C15ULL;
void seed(uint64_t s) { _state = s ? s : 1; }
static double _rand(const int idx) {
    (void)idx; _state ^= _state << 13; _state ^= _state >> 7; _state ^= _state << 17;
    return (double)(_state >> 11) * (1.0 / 9007199254740992.0);
}
static double _randn(const int idx) {
    double u = _rand(idx), v = _rand(idx);
    while (u <= 0.0) u = _rand(idx);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
"""


@pytest.fixture(scope="module")
def support_lib(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    tmp = tmp_path_factory.mktemp("support")
    src = tmp / "support.c"
    src.write_text(RNG_STUB + "".join(bm.SUPPORT_CPP.values()))
    lib = tmp / "support.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", str(src), "-o", str(lib), "-lm"], check=True)
    dll = ctypes.CDLL(str(lib))
    dll.seed.argtypes = [ctypes.c_uint64]
    dll.zt_binomial.argtypes = [ctypes.c_double, ctypes.c_double, ctypes.c_int]
    dll.zt_binomial.restype = ctypes.c_int32
    dll.redrawn_normal.argtypes = [ctypes.c_double] * 4 + [ctypes.c_int]
    dll.redrawn_normal.restype = ctypes.c_double
    return dll


@pytest.mark.parametrize("n, q", [(1000, 0.002), (2_274_000, 1 / (1034 * 1034)),
                                  (45_400_000, 1 / 20683**2), (120_000, 1 / (242 * 53))])
def test_zt_binomial_is_binomial_conditioned_on_at_least_one(support_lib, n, q):
    support_lib.seed(12345)
    x = np.array([support_lib.zt_binomial(n, q, 0) for _ in range(40_000)])
    assert x.min() >= 1
    lam = n * q
    p0 = (1 - q) ** n
    mean = lam / (1 - p0)
    var = (n * q * (1 - q) + lam**2) / (1 - p0) - mean**2
    assert x.mean() == pytest.approx(mean, abs=5 * math.sqrt(var / len(x)) + 1e-12)
    for k in (1, 2):  # P(X = k | X >= 1)
        pk = math.comb(n, k) * q**k * (1 - q) ** (n - k) / (1 - p0) if n < 10_000 else \
            math.exp(-lam) * lam**k / math.factorial(k) / (1 - math.exp(-lam))
        assert np.mean(x == k) == pytest.approx(pk, abs=5 * math.sqrt(pk / len(x)) + 1e-4)


def test_redrawn_normal_stays_in_bounds_with_the_truncated_moments(support_lib):
    from scipy.stats import truncnorm

    support_lib.seed(7)
    mean, sd, low, high = 0.75, 0.375, 0.05, 0.75 + 8 * 0.375
    x = np.array([support_lib.redrawn_normal(mean, sd, low, high, 0) for _ in range(50_000)])
    assert x.min() >= low and x.max() <= high
    ref = truncnorm((low - mean) / sd, (high - mean) / sd, loc=mean, scale=sd)
    assert x.mean() == pytest.approx(ref.mean(), abs=5 * ref.std() / math.sqrt(len(x)))
    assert x.std() == pytest.approx(ref.std(), rel=0.02)


# memory model and run plan ----------------------------------------------------------------
def test_memory_model_covers_the_measured_full_scale_peaks():
    n_full = derive(1.0, 1.0, "dc").total_synapses
    assert n_full == pytest.approx(full_num_synapses().sum(), rel=1e-6)
    measured_gb = {("spikeforge", None): 16.0, ("nest", None): 14.5, ("brian2", "binary"): 9.8}
    for (sim, mode), gb in measured_gb.items():
        assert bm.need_mb(sim, mode, n_full) >= gb * 1024
    # arrays at full scale cannot fit on a 24 GB machine: auto must fall back to binary
    assert bm.need_mb("brian2", "arrays", n_full) > 24 * 1024


def test_plan_run_picks_arrays_then_binary_then_skips():
    n = derive(0.5, 1.0, "dc").total_synapses
    arrays, binary = (bm.need_mb("brian2", m, n) for m in ("arrays", "binary"))
    roomy = arrays / bm.MEMORY_HEADROOM + 1
    tight = binary / bm.MEMORY_HEADROOM + 1
    assert bm.plan_run("brian2", n, roomy) == ("arrays", None)
    assert bm.plan_run("brian2", n, tight) == ("binary", None)
    assert bm.plan_run("brian2", n, roomy, "binary") == ("binary", None)
    mode, reason = bm.plan_run("brian2", n, tight, "arrays")
    assert mode == "arrays" and "arrays ~" in reason and "GB available" in reason
    mode, reason = bm.plan_run("brian2", n, binary / 2)
    assert mode == "binary" and "binary ~" in reason
    assert bm.plan_run("spikeforge", n, 1e9) == (None, None)
    mode, reason = bm.plan_run("nest", n, 100.0)
    assert mode is None and "nest ~" in reason


# peak memory ------------------------------------------------------------------------------
@pytest.mark.parametrize("peak", [bm.peak_mb, bc.peak_mb])
def test_peak_mb_is_this_process_high_water_mark(peak):
    rss_before = bm.rss_mb()
    block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
    rss = bm.rss_mb()
    assert rss >= rss_before + 190
    # VmHWM is synced from per-thread RSS counters lazily: it may trail VmRSS by < 1 MB
    assert peak() >= rss - 1.0
    del block
    assert peak() >= rss - 1.0 > bm.rss_mb() + 150  # and stays after the block is freed


@pytest.mark.parametrize("tool", [bm, bc])
def test_wait4_helper_reports_the_binary_not_its_parent(tool, tmp_path):
    ballast = np.ones(300 * 2**20 // 8)  # this (grand)parent is big; the helper must not be
    out = tmp_path / "w.json"
    small = [sys.executable, "-S", "-c", "import sys; sys.exit(3)"]
    rc = subprocess.run([sys.executable, "-S", "-c", tool.WAIT4_CODE, str(out), *small]).returncode
    assert rc == 3
    result = json.loads(out.read_text())
    assert result["maxrss_kb"] < 100 * 1024 and result["wall_s"] > 0 and result["cpu_s"] >= 0
    big = [sys.executable, "-S", "-c", "b = b'x' * (150 * 2**20)"]
    subprocess.run([sys.executable, "-S", "-c", tool.WAIT4_CODE, str(out), *big], check=True)
    assert json.loads(out.read_text())["maxrss_kb"] >= 150 * 1024
    del ballast


# the table --------------------------------------------------------------------------------
def test_table_names_the_brian2_mode_and_skip_reasons():
    run = {"build_s": 10.0, "sim_s_per_bio_s": 2.0, "cpu_s_per_bio_s": 2.0,
           "events_per_wall_s": 1e7, "peak_mb": 500.0, "rates": [1.0] * 8}
    rows = [{"scale": 0.05, "threads": 1, "simulator": "spikeforge", **run},
            {"scale": 0.05, "threads": 1, "simulator": "brian2", "brian2_connect": "binary",
             **run, "sim_s_per_bio_s": 4.0},
            {"scale": 1.0, "threads": 1, "simulator": "brian2", "brian2_connect": "arrays",
             "skipped": "needs brian2 ~27 GB"}]
    lines = bm.table(rows)
    assert "brian2/bin" in lines[2] and "brian2/arr" in lines[3] and "skipped" in lines[3]
    assert "brian2/bin/spikeforge sim x2.00" in bm.ratios(rows)[0]


def test_ratios_of_repeated_runs_use_the_medians():
    def run(sim, seconds, build, peak):
        return {"scale": 0.5, "threads": 2, "simulator": sim, "build_s": build,
                "sim_s_per_bio_s": seconds, "peak_mb": peak}
    rows = [run("spikeforge", 2.0, 10.0, 100.0), run("brian2", 9.0, 80.0, 300.0),
            run("spikeforge", 9.0, 12.0, 120.0), run("brian2", 6.0, 90.0, 310.0),
            run("spikeforge", 3.0, 11.0, 110.0), run("brian2", 5.0, 70.0, 290.0)]
    cell = bm.medians(rows)[(0.5, 2)]
    assert (cell["spikeforge"]["sim"], cell["brian2"]["sim"]) == (3.0, 6.0)
    assert cell["spikeforge"]["sim_range"] == (2.0, 9.0) and cell["brian2"]["peak"] == 310.0
    line = bm.ratios(rows)[0]
    assert "brian2/spikeforge sim x2.00 build x7.27 memory x2.58" in line
    assert "medians of 3 runs; spikeforge sim 2.00-9.00 s/bio-s, brian2 5.00-9.00" in line


# in-process A/B of code-generation settings ---------------------------------------------------
def test_ab_variants_parse_typed_and_restore_after_the_build():
    from spikeforge.backends.cpu.dialect import CpuDialect
    from spikeforge.backends.cstyle import layout
    from spikeforge.tools import ab_microcircuit as ab
    settings = ab.parse_variant("ring_offsets=0,PREFETCH_FROM=0,FAR_FRACTION=0.01")
    assert settings == {"ring_offsets": False, "PREFETCH_FROM": 0, "FAR_FRACTION": 0.01}
    assert ab.parse_variant("default") == {}
    before = (CpuDialect.ring_offsets, layout.PREFETCH_FROM, layout.FAR_FRACTION)
    with pytest.raises(RuntimeError), ab.applied(settings):
        assert (CpuDialect.ring_offsets, layout.PREFETCH_FROM) == (False, 0)
        raise RuntimeError("a failed build")
    assert (CpuDialect.ring_offsets, layout.PREFETCH_FROM, layout.FAR_FRACTION) == before
    for bad in ("ring_offset=0", "ring_offsets", "prefetch_distance=far"):
        with pytest.raises(ValueError, match="variant"):
            ab.parse_variant(bad)


def test_ab_run_compares_variants_with_equal_spikes(capsys):
    from spikeforge.tools import ab_microcircuit as ab
    assert ab.main(["--scale", "0.02", "--rounds", "2", "--bio-ms", "20",
                    "default", "ring_offsets=0,split_rings=0"]) == 0
    out = capsys.readouterr().out
    assert "ring_offsets=0,split_rings=0 / default: median ratio" in out
