"""The CUDA emulator (backends/cuda/emulator*.py + sf_cuda_emu.h): correct kernels give
correct results in every thread order; deliberately broken kernels are caught with
the specific error (the harness can fail); the launcher rejects bad arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

if shutil.which("g++") is None and shutil.which("c++") is None:
    pytest.skip("cuda emulator: no C++ compiler (g++) installed", allow_module_level=True)

from spikeforge.backends.cuda import emulator as xp

ORDERS = ("forward", "reverse", "random")

# Valid CUDA (checked with nvcc by test_kernels_are_valid_cuda when nvcc is installed).
GOOD = r"""
extern "C" __global__ void block_sum(const float* __restrict__ in, float* out, int n)
{
    __shared__ float buf[128];
    unsigned t = threadIdx.x;
    int i = blockIdx.x * blockDim.x + t;
    buf[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) buf[t] += buf[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = buf[0];
}

__device__ __forceinline__ int warp_sum(int v)
{
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

extern "C" __global__ void warp_reduce(const int* in, long long* out, int n)
{
    __shared__ int partial[32];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
    int v = warp_sum(i < n ? in[i] : 0);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        int nw = blockDim.x / warpSize;
        v = warp_sum(lane < nw ? partial[lane] : 0);
        if (lane == 0) atomicAdd((unsigned long long*)out, (unsigned long long)(long long)v);
    }
}

extern "C" __global__ void compact(const float* v, float thresh, int n, unsigned* count,
                                   unsigned* ids)
{
    __shared__ unsigned local[128];
    __shared__ unsigned nlocal, base;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (threadIdx.x == 0) nlocal = 0;
    __syncthreads();
    if (i < n && v[i] > thresh) local[atomicAdd(&nlocal, 1u)] = (unsigned)i;
    __syncthreads();
    if (threadIdx.x == 0) base = atomicAdd(count, nlocal);
    __syncthreads();
    if (threadIdx.x < nlocal) ids[base + threadIdx.x] = local[threadIdx.x];
}

extern "C" __global__ void atomics(const int* bins, const float* w, int n, int* hist,
                                   float* fsum, double* dsum, int* imax, unsigned* umin,
                                   unsigned long long* ucount, int* flag)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(&hist[bins[i]], 1);
    atomicAdd(fsum, w[i]);
    atomicAdd(dsum, (double)w[i]);
    atomicMax(imax, bins[i] * 7 - 3);
    atomicMin(umin, (unsigned)(1000 + i));
    atomicAdd(ucount, 1ull);
    atomicCAS(flag, 0, i + 1);
    atomicSub(&hist[8], 1);
    atomicOr((unsigned*)&hist[9], 1u << (i % 32));
}

extern "C" __global__ void dyn_reverse(const float* in, float* out, int n)
{
    extern __shared__ float tile[];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    tile[t] = i < n ? in[i] : -1.0f;
    __syncthreads();
    int j = blockIdx.x * blockDim.x + (blockDim.x - 1 - t);
    if (j < n) out[j] = tile[t];
}

extern "C" __global__ void batch_scale(const float* in, float* out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int b = blockIdx.y;
    if (i < n) out[b * n + i] = in[b * n + i] * (float)(b + 1) + (float)gridDim.y;
}

extern "C" __global__ void warp_ops(const int* in, unsigned* ballots, int* res)
{
    int t = threadIdx.x, lane = t % 32;
    int v = in[t];
    unsigned b = __ballot_sync(0xffffffffu, v > 0);
    int any = __any_sync(0xffffffffu, v > 100);
    int all = __all_sync(0xffffffffu, v > -1000);
    int x = __shfl_xor_sync(0xffffffffu, v, 1);
    int up = __shfl_up_sync(0xffffffffu, v, 2);
    int bc = __shfl_sync(0xffffffffu, v, 3, 8);
    float f = __shfl_down_sync(0xffffffffu, (float)v * 0.5f, 4, 16);
    double d = __shfl_sync(0xffffffffu, (double)v, 0);
    __syncwarp();
    if (lane == 0) ballots[t / 32] = b;
    res[t * 6 + 0] = any + 2 * all;
    res[t * 6 + 1] = x;
    res[t * 6 + 2] = up;
    res[t * 6 + 3] = bc;
    res[t * 6 + 4] = (int)(f * 2.0f);
    res[t * 6 + 5] = (int)d + __popc(b) + (int)(__activemask() == 0xffffffffu);
}

__device__ unsigned long long dev_counter;
__constant__ float scale_factor[2];

extern "C" __global__ void use_globals(float* out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = scale_factor[0] * (float)i + scale_factor[1];
        atomicAdd(&dev_counter, 1ull);
    }
}

extern "C" __global__ void block_votes(const int* in, int* out)
{
    int v = in[blockIdx.x * blockDim.x + threadIdx.x];
    int c = __syncthreads_count(v > 0);
    int a = __syncthreads_and(v > -5);
    int o = __syncthreads_or(v > 8);
    if (threadIdx.x == 0) {
        out[blockIdx.x * 3] = c;
        out[blockIdx.x * 3 + 1] = a;
        out[blockIdx.x * 3 + 2] = o;
    }
}

extern "C" __global__ void partial_warp(int* out)
{
    int v = (int)threadIdx.x;
    unsigned b = __ballot_sync(0xffffffffu, 1);
    int x = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x * 2] = (int)b;
    out[threadIdx.x * 2 + 1] = x;
}

extern "C" __global__ void no_args() { }

extern "C" __global__ void intr(float* f, double* d, int* i)
{
    f[0] = __fadd_rn(__fmul_rn(f[1], f[2]), __fdiv_rn(f[3], 2.0f)) + __fmaf_rn(f[1], f[2], f[3]);
    d[0] = __dadd_rn(__dmul_rn(d[1], d[2]), __fma_rn(d[1], d[2], d[3])) + __ddiv_rn(d[3], 3.0);
    i[0] = __float2int_rn(f[1]) + __float2int_rz(f[2]) + __float2int_rd(-f[2]) + __float2int_ru(f[3]);
    i[1] = __double2int_rn(d[1]) + (int)__int2float_rn(i[2]) + (int)__double2float_rn(d[2]) + __brev(1u) + (int)__umulhi(3u, 0x80000000u);
    i[2] = min(i[3], 5) + max(2u, (unsigned)i[3]) + (int)fminf(f[1], f[2]) + __popcll(0xFFull) + __ffsll(8) + __clzll(1ll);
}

extern "C" __global__ void signature(float* a, const double* b, int i32, unsigned u32,
                                     long long i64, float f32, double f64, unsigned char u8)
{
    if (threadIdx.x == 0) a[0] = (float)(b[0] + i32 + u32 + i64 + f32 + f64 + u8);
}
"""

BROKEN = r"""
extern "C" __global__ void missing_barrier(const float* in, float* out)
{
    __shared__ float buf[64];
    buf[threadIdx.x] = in[threadIdx.x];
    /* no __syncthreads() here */
    out[threadIdx.x] = buf[(threadIdx.x + 1) % 64];
}

extern "C" __global__ void racy_add(int* out) { out[0] += 1; }

extern "C" __global__ void atomic_add(int* out) { atomicAdd(out, 1); }

extern "C" __global__ void barrier_phases(int* out)
{
    __shared__ int s[64];
    s[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    out[blockIdx.x * 64 + threadIdx.x] = s[63 - threadIdx.x];
}

extern "C" __global__ void oob_write(float* out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    out[i] = 1.0f; /* missing "if (i < n)" */
}

extern "C" __global__ void negative_write(float* out) { out[(int)threadIdx.x - 2] = 1.0f; }

extern "C" __global__ void far_write(float* out) { if (threadIdx.x == 0) out[300] = 1.0f; }

extern "C" __global__ void early_exit_barrier(float* out)
{
    if (threadIdx.x >= 16) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

extern "C" __global__ void two_barriers(float* out)
{
    if (threadIdx.x % 2) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}

extern "C" __global__ void dyn_overflow(float* out)
{
    extern __shared__ float sh[];
    sh[threadIdx.x + 1] = 1.0f; /* one past the end for the last thread */
    __syncthreads();
    out[threadIdx.x] = sh[threadIdx.x];
}

extern "C" __global__ void static_shared_overflow(float* out)
{
    __shared__ float tile[32];
    tile[threadIdx.x + 1] = 1.0f; /* the last thread writes one past the end */
    __syncthreads();
    out[threadIdx.x] = tile[threadIdx.x];
}

extern "C" __global__ void static_shared_underflow(float* out)
{
    __shared__ int counts[8];
    counts[(int)threadIdx.x - 1] = 1; /* thread 0 writes counts[-1] */
    __syncthreads();
    out[threadIdx.x] = (float)counts[0];
}

extern "C" __global__ void shuffle_exited(int* out)
{
    if (threadIdx.x >= 16) return;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (int)threadIdx.x, 8);
}
"""


@pytest.fixture(autouse=True)
def _forward_by_default():
    """Tests that name a thread expect forward order, whatever SPIKEFORGE_EMU_ORDER says;
    the ``order`` fixture (inside this one) runs a test in every order."""
    with xp.configure(order="forward", seed=0, race_check=False):
        yield


@pytest.fixture(scope="module")
def good():
    return xp.RawModule(code=GOOD)


@pytest.fixture(scope="module")
def broken():
    return xp.RawModule(code=BROKEN)


@pytest.fixture(params=ORDERS)
def order(request):
    with xp.thread_order(request.param, seed=7):
        yield request.param


# ---------------------------------------------------------------- correct kernels
def test_shared_memory_reduction(good, order):
    n = 1000
    x = np.random.default_rng(1).integers(-50, 50, n).astype(np.float32)
    out = xp.empty(8, np.float32)
    good.get_function("block_sum")((8,), (128,), (xp.asarray(x), out, np.int32(n)))
    expected = np.add.reduceat(np.pad(x, (0, 24)), np.arange(0, 1024, 128))
    np.testing.assert_array_equal(out.get(), expected)


def test_warp_shuffle_reduction(good, order):
    n = 777
    x = np.arange(n, dtype=np.int32) * 3 - 400
    out = xp.zeros(1, np.int64)
    good.get_function("warp_reduce")((4,), (256,), (xp.asarray(x), out, np.int32(n)))
    assert out.get()[0] == x.sum()


def test_block_compaction_one_atomic_per_block(good, order):
    n = 500
    v = np.random.default_rng(2).random(n).astype(np.float32)
    count, ids = xp.zeros(1, np.uint32), xp.empty(n, np.uint32)
    good.get_function("compact")((4,), (128,), (xp.asarray(v), np.float32(0.7), np.int32(n),
                                                 count, ids))
    k = int(count.get()[0])
    assert k == int((v > 0.7).sum())
    np.testing.assert_array_equal(np.sort(ids.get()[:k]), np.flatnonzero(v > 0.7))


def test_float_and_integer_atomics(good, order):
    n = 300
    rng = np.random.default_rng(3)
    bins = rng.integers(0, 8, n).astype(np.int32)
    w = rng.integers(0, 16, n).astype(np.float32) / 4  # exact in any order
    hist, fsum, dsum = xp.zeros(10, np.int32), xp.zeros(1, np.float32), xp.zeros(1, np.float64)
    imax, umin = xp.full(1, -100, np.int32), xp.full(1, 10 ** 6, np.uint32)
    ucount, flag = xp.zeros(1, np.uint64), xp.zeros(1, np.int32)
    good.get_function("atomics")((3,), (128,), (xp.asarray(bins), xp.asarray(w), np.int32(n),
                                                hist, fsum, dsum, imax, umin, ucount, flag))
    h = hist.get()
    np.testing.assert_array_equal(h[:8], np.bincount(bins, minlength=8))
    assert h[8] == -n and h[9] == -1  # all 32 bits set
    assert fsum.get()[0] == w.sum() and dsum.get()[0] == w.sum()
    assert imax.get()[0] == bins.max() * 7 - 3 and umin.get()[0] == 1000
    assert ucount.get()[0] == n and 1 <= flag.get()[0] <= n


def test_dynamic_shared_memory(good, order):
    n = 200
    x = np.arange(n, dtype=np.float32)
    out = xp.zeros(n, np.float32)
    good.get_function("dyn_reverse")((4,), (64,), (xp.asarray(x), out, np.int32(n)),
                                     shared_mem=64 * 4)
    expected = np.concatenate([x[i:i + 64][::-1] for i in range(0, 256, 64)])
    pad = np.concatenate([x, -np.ones(56, np.float32)])
    expected = np.concatenate([pad[i:i + 64][::-1] for i in range(0, 256, 64)])[:n]
    np.testing.assert_array_equal(out.get(), expected)


def test_2d_grid_batch_on_y(good, order):
    n, batch = 100, 3
    x = np.arange(n * batch, dtype=np.float32)
    out = xp.zeros(n * batch, np.float32)
    good.get_function("batch_scale")((2, batch), (64, 1), (xp.asarray(x), out, np.int32(n)))
    expected = (x.reshape(batch, n) * np.arange(1, batch + 1)[:, None] + batch).ravel()
    np.testing.assert_array_equal(out.get(), expected)


def test_warp_votes_and_shuffles(good, order):
    v = (np.arange(64, dtype=np.int32) * 37 % 23) - 5
    ballots, res = xp.zeros(2, np.uint32), xp.zeros(64 * 6, np.int32)
    good.get_function("warp_ops")((1,), (64,), (xp.asarray(v), ballots, res))
    res = res.get().reshape(64, 6)
    lane = np.arange(64) % 32
    warp = np.arange(64) // 32
    expect_ballot = [int(sum(1 << j for j in range(32) if v[32 * w + j] > 0)) for w in range(2)]
    np.testing.assert_array_equal(ballots.get(), expect_ballot)
    np.testing.assert_array_equal(res[:, 0], 2)  # any(v > 100) false, all(v > -1000) true
    np.testing.assert_array_equal(res[:, 1], v[np.arange(64) ^ 1])
    np.testing.assert_array_equal(res[:, 2], np.where(lane >= 2, v[np.arange(64) - 2], v))
    np.testing.assert_array_equal(res[:, 3], v[32 * warp + (lane & ~7) + 3])
    down = np.where((lane % 16) + 4 < 16, v[np.minimum(np.arange(64) + 4, 63)], v)
    np.testing.assert_array_equal(res[:, 4], down)
    popc = np.array([expect_ballot[w].bit_count() for w in warp])
    np.testing.assert_array_equal(res[:, 5], v[32 * warp] + popc + 1)


def test_partial_last_warp(good, order):
    """blockDim 48: the second warp has 16 lanes; the missing lanes count as exited."""
    out = xp.zeros(96, np.int32)
    good.get_function("partial_warp")((1,), (48,), (out,))
    res = out.get().reshape(48, 2)
    np.testing.assert_array_equal(res[:, 0].view(np.uint32), [0xFFFFFFFF] * 32 + [0xFFFF] * 16)
    np.testing.assert_array_equal(res[:, 1], np.arange(48) ^ 1)


def test_block_votes(good, order):
    v = (np.arange(128, dtype=np.int32) * 29 % 19) - 6
    out = xp.zeros(6, np.int32)
    good.get_function("block_votes")((2,), (64,), (xp.asarray(v), out))
    blocks = v.reshape(2, 64)
    expected = np.stack([(blocks > 0).sum(1), (blocks > -5).all(1), (blocks > 8).any(1)], 1)
    np.testing.assert_array_equal(out.get(), expected.ravel())


def test_rounding_and_integer_intrinsics(good):
    f = xp.asarray(np.array([0, 2.5, 3.5, 4.25], np.float32))
    d = xp.asarray(np.array([0, 1.5, 2.0, 3.0]))
    i = xp.asarray(np.array([0, 0, 7, 9], np.int32))
    good.get_function("intr")((1,), (1,), (f, d, i))
    assert f.get()[0] == 2.5 * 3.5 + 4.25 / 2 + (2.5 * 3.5 + 4.25)
    assert d.get()[0] == 1.5 * 2.0 + (1.5 * 2.0 + 3.0) + 1.0
    # rn(2.5) = 2 (ties to even), rz(3.5) = 3, rd(-3.5) = -4, ru(4.25) = 5
    assert i.get()[0] == 2 + 3 - 4 + 5
    assert i.get()[1] == 2 + 7 + 2 - 2 ** 31 + 1  # __brev(1) = 0x80000000, __umulhi(3, 2^31) = 1
    assert i.get()[2] == 5 + 9 + 2 + 8 + 4 + 63


def test_portable_ucontext_switch():
    """The ucontext fallback (other architectures) gives the same results."""
    mod = xp.RawModule(code=GOOD, options=("-DSF_EMU_UCONTEXT",))
    x = np.arange(777, dtype=np.int32)
    for order in ORDERS:
        out = xp.zeros(1, np.int64)
        with xp.thread_order(order):
            mod.get_function("warp_reduce")((4,), (256,), (xp.asarray(x), out, np.int32(777)))
        assert out.get()[0] == x.sum()


def test_device_globals_and_memcpy_htod(good):
    xp.memcpy_htod(good.get_global("scale_factor").ptr, np.array([2.0, 0.5], np.float32))
    counter = good.get_global("dev_counter")
    xp.memcpy_htod(counter.ptr, np.zeros(1, np.uint64))
    out = xp.zeros(50, np.float32)
    good.get_function("use_globals")((1,), (64,), (out, np.int32(50)))
    np.testing.assert_array_equal(out.get(), np.arange(50, dtype=np.float32) * 2 + 0.5)
    assert xp.memcpy_dtoh(np.zeros(1, np.uint64), counter.ptr)[0] == 50


def test_check_order_independent_accepts_correct_kernel(good):
    x = np.arange(300, dtype=np.float32)

    def run():
        out = xp.empty(3, np.float32)
        good.get_function("block_sum")((3,), (128,), (xp.asarray(x), out, np.int32(300)))
        return out

    np.testing.assert_array_equal(xp.check_order_independent(run),
                                  np.add.reduceat(np.pad(x, (0, 84)), [0, 128, 256]))


# ---------------------------------------------------------------- broken kernels are caught
def test_missing_barrier_is_order_dependent(broken):
    x = np.arange(64, dtype=np.float32)

    def run():
        out = xp.zeros(64, np.float32)
        broken.get_function("missing_barrier")((1,), (64,), (xp.asarray(x), out))
        return out

    with pytest.raises(xp.OrderDependenceError, match="differs between thread orders"):
        xp.check_order_independent(run)


def test_race_checker_reports_racing_add_and_not_atomics(broken):
    out = xp.zeros(1, np.int32)
    try:
        with xp.race_check():
            broken.get_function("atomic_add")((2,), (64,), (out,))
    except xp.CompileError as exc:  # pragma: no cover - depends on libtsan being installed
        pytest.skip(f"ThreadSanitizer unavailable: {exc}")
    assert out.get()[0] == 128
    phases = xp.zeros(128, np.int32)
    with xp.race_check():
        broken.get_function("barrier_phases")((2,), (64,), (phases,))
        np.testing.assert_array_equal(phases.get(), np.tile(np.arange(63, -1, -1), 2))
        with pytest.raises(xp.KernelError, match=r"data race[\s\S]*racy_add[\s\S]*block \(0,0,0\) "
                                                 r"thread"):
            broken.get_function("racy_add")((1,), (64,), (out,))


def test_race_check_round_trips_globals_and_reports_kernel_errors(good, broken):
    xp.memcpy_htod(good.get_global("scale_factor").ptr, np.array([3.0, 1.0], np.float32))
    counter = good.get_global("dev_counter")
    xp.memcpy_htod(counter.ptr, np.array([5], np.uint64))
    out = xp.zeros(40, np.float32)
    with xp.race_check():
        good.get_function("use_globals")((2,), (32,), (out, np.int32(40)))
        with pytest.raises(xp.KernelError, match="divergent __syncthreads"):
            broken.get_function("early_exit_barrier")((1,), (32,), (xp.zeros(32, np.float32),))
    np.testing.assert_array_equal(out.get(), np.arange(40, dtype=np.float32) * 3 + 1)
    assert xp.memcpy_dtoh(np.zeros(1, np.uint64), counter.ptr)[0] == 45


def test_racing_add_loses_nothing_without_race_check(broken):
    """Why the race checker is needed: sequential fibers never lose an update."""
    out = xp.zeros(1, np.int32)
    broken.get_function("racy_add")((1,), (64,), (out,))
    assert out.get()[0] == 64


def test_out_of_bounds_write_past_the_end(broken):
    out = xp.zeros(100, np.float32)
    with pytest.raises(xp.KernelError, match=r"oob_write.*past the end of argument 0 \('out'"):
        broken.get_function("oob_write")((1,), (128,), (out, np.int32(100)))
    broken.get_function("atomic_add")((1,), (1,), (xp.zeros(1, np.int32),))  # redzone repaired


def test_out_of_bounds_write_before_the_start(broken):
    out = xp.zeros(64, np.float32)
    with pytest.raises(xp.KernelError, match="before the start of argument 0"):
        broken.get_function("negative_write")((1,), (32,), (out,))


def test_far_out_of_bounds_write_hits_guard_page(broken):
    out = xp.zeros(16, np.float32)
    with pytest.raises(xp.KernelError, match=r"invalid memory access.*guard page of argument 0"):
        broken.get_function("far_write")((1,), (32,), (out,))


def test_view_out_of_bounds_names_the_allocation(broken):
    base = xp.zeros(200, np.float32)
    view = base[:100]  # writing past the view stays inside the allocation: not detectable
    broken.get_function("oob_write")((1,), (128,), (view, np.int32(100)))
    assert base.get()[127] == 1.0 and base.get()[128] == 0.0


def test_stack_overflow_is_reported():
    code = r"""extern "C" __global__ void big_frame(int* out)
    { volatile char big[400000]; big[0] = 1; big[399999] = 2; out[threadIdx.x] = big[0]; }"""
    with pytest.raises(xp.KernelError, match=r"big_frame.*thread \(0,0,0\).*stack overflow"):
        xp.RawKernel(code, "big_frame")((1,), (2,), (xp.zeros(2, np.int32),))


def test_traps_and_failed_asserts_are_reported():
    code = r"""#include <assert.h>
    extern "C" __global__ void divide(int* out, int d) { out[threadIdx.x] = 7 / d; }
    extern "C" __global__ void check(int* out) { assert(threadIdx.x < 3); out[threadIdx.x] = 1; }"""
    mod = xp.RawModule(code=code)
    out = xp.zeros(4, np.int32)
    with pytest.raises(xp.KernelError, match=r"divide.*thread \(0,0,0\): arithmetic trap"):
        mod.get_function("divide")((1,), (4,), (out, np.int32(0)))
    with pytest.raises(xp.KernelError, match=r"check.*thread \(3,0,0\): abort \(a failed assert"):
        mod.get_function("check")((1,), (4,), (out,))
    mod.get_function("divide")((1,), (4,), (out, np.int32(2)))  # the process is fine
    assert out.get().tolist() == [3, 3, 3, 3]


def test_divergent_barrier_after_early_exit(broken, order):
    with pytest.raises(xp.KernelError, match=r"early_exit_barrier.*block \(0,0,0\).*divergent "
                                             r"__syncthreads\(\).*has exited"):
        broken.get_function("early_exit_barrier")((1,), (64,), (xp.zeros(64, np.float32),))


def test_divergent_barrier_call_sites(broken):
    with pytest.raises(xp.KernelError, match="divergent __syncthreads.*waits at .*:[0-9]+, "
                                             "thread .* at .*:[0-9]+"):
        broken.get_function("two_barriers")((1,), (32,), (xp.zeros(32, np.float32),))


def test_dynamic_shared_memory_overflow(broken):
    with pytest.raises(xp.KernelError, match="out-of-bounds write to dynamic shared memory"):
        broken.get_function("dyn_overflow")((1,), (32,), (xp.zeros(32, np.float32),),
                                            shared_mem=32 * 4)


def test_static_shared_memory_out_of_bounds(broken):
    with pytest.raises(xp.KernelError, match=r"static_shared_overflow' block \(0,0,0\): "
                                             r"out-of-bounds write past the end of __shared__ "
                                             r"'tile' \(in static_shared_overflow\) \(byte "
                                             r"offset \+0 from its end\)"):
        broken.get_function("static_shared_overflow")((1,), (32,), (xp.zeros(32, np.float32),))
    with pytest.raises(xp.KernelError, match=r"before the start of __shared__ 'counts' .*"
                                             r"byte offset -4 from its start"):
        broken.get_function("static_shared_underflow")((1,), (8,), (xp.zeros(8, np.float32),))


def test_shuffle_from_exited_lane(broken):
    with pytest.raises(xp.KernelError, match="reads lane 16 .*does not take part"):
        broken.get_function("shuffle_exited")((1,), (32,), (xp.zeros(32, np.int32),))


def test_shared_memory_is_poisoned():
    code = r"""extern "C" __global__ void peek(unsigned* out)
    { __shared__ unsigned s[4]; out[threadIdx.x] = s[threadIdx.x]; }"""
    out = xp.zeros(4, np.uint32)
    xp.RawKernel(code, "peek")((1,), (4,), (out,))
    np.testing.assert_array_equal(out.get(), 0xFFFFFFFF)


# ---------------------------------------------------------------- launcher and arrays
def test_argument_marshalling_rejects_bad_args(good):
    k = good.get_function("signature")
    a, b = xp.zeros(1, np.float32), xp.asarray(np.array([0.5]))
    ok = (a, b, np.int32(1), np.uint32(2), np.int64(3), np.float32(4), np.float64(5), np.uint8(6))
    k((1,), (1,), ok)
    assert a.get()[0] == 21.5
    with pytest.raises(TypeError, match=r"'signature' takes 8 arguments .*got 7"):
        k((1,), (1,), ok[:7])
    with pytest.raises(TypeError, match=r"argument 2 \('i32', int\): expected a numpy.int32 "
                                        r"scalar, got Python int"):
        k((1,), (1,), ok[:2] + (1,) + ok[3:])
    with pytest.raises(TypeError, match=r"argument 5 \('f32', float\): expected a numpy.float32 "
                                        r"scalar, got numpy.float64"):
        k((1,), (1,), ok[:5] + (np.float64(4),) + ok[6:])
    with pytest.raises(TypeError, match=r"argument 1 \('b', const double\s?\*\): array of dtype "
                                        r"float32 does not match"):
        k((1,), (1,), (a, a) + ok[2:])
    with pytest.raises(TypeError, match="argument 0 .*a host numpy.ndarray"):
        k((1,), (1,), (np.zeros(1, np.float32),) + ok[1:])
    good.get_function("no_args")((2,), (32,), ())
    with pytest.raises(TypeError, match=r"'no_args' takes 0 arguments"):
        good.get_function("no_args")((1,), (1,), (a,))
    with pytest.raises(ValueError, match="more than 1024 threads"):
        k((1,), (64, 32), ok)
    with pytest.raises(ValueError, match="shared_mem=50000 bytes exceeds"):
        k((1,), (1,), ok, shared_mem=50000)


def test_compile_error_and_unknown_kernel():
    with pytest.raises(xp.CompileError, match="undeclared|not declared"):
        xp.RawModule(code='extern "C" __global__ void k(float* a) { a[0] = nope; }'
                     ).get_function("k").compile()
    with pytest.raises(LookupError, match="no __global__ function named 'missing'"):
        xp.RawModule(code='extern "C" __global__ void k(float* a) {}').get_function("missing")


def test_array_api():
    e = xp.empty((2, 3), np.float32)
    assert e.shape == (2, 3) and e.size == 6 and e.nbytes == 24 and np.isnan(e.get()).all()
    assert xp.empty(3, np.int32).get().tolist() == [-1, -1, -1]
    a = xp.asarray(np.arange(10, dtype=np.int32))
    assert a.data.ptr % 256 == 0 and xp.asarray(a) is a
    v = a[2:5]
    assert v.shape == (3,) and v.data.ptr == a.data.ptr + 8
    v.fill(0)
    v[1] = 7
    a[8:] = np.array([1, 2], np.int32)
    assert a.get().tolist() == [0, 1, 0, 7, 0, 5, 6, 7, 1, 2]
    c = a.copy()
    c.set(np.zeros(10, np.int32))
    assert a.get()[3] == 7 and xp.asnumpy(c).sum() == 0
    with pytest.raises(TypeError):
        c.set(np.zeros(10, np.float32))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    assert a.reshape(2, 5)[1].get().tolist() == [5, 6, 7, 1, 2]
    a[-1].fill(9)  # an integer index is a (0-d) view, as in CuPy
    assert a.get()[9] == 9 and a[np.int64(3)].get() == 7
    with pytest.raises(IndexError):
        a[10]
    xp.synchronize()


def test_kernels_are_valid_cuda(tmp_path):
    """The test kernels use only the contract's CUDA surface: nvcc accepts them."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not installed")
    for name, code in (("good", GOOD), ("broken", BROKEN)):
        src = tmp_path / f"{name}.cu"
        src.write_text(code)
        result = subprocess.run([nvcc, "-arch=sm_80", "-cubin", "-o", str(tmp_path / "k.cubin"),
                                 str(src)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr


ORDER_PROBE = r"""
extern "C" __global__ void arrival(unsigned* counter, unsigned* first, unsigned* second)
{
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    first[t] = atomicAdd(counter, 1u);
    __syncthreads();
    second[t] = atomicAdd(counter, 1u);
}
"""


def _arrivals(order, seed=0):
    k = xp.RawKernel(ORDER_PROBE, "arrival")
    counter, first, second = xp.zeros(1, np.uint32), xp.zeros(64, np.uint32), xp.zeros(64, np.uint32)
    with xp.thread_order(order, seed=seed):
        k((2,), (32,), (counter, first, second))
    return first.get(), second.get()


def test_thread_orders_are_real_and_seeded():
    """Forward runs threads (and blocks) in index order, reverse backwards, random in a
    seeded permutation that differs between barrier phases and is reproducible."""
    first, second = _arrivals("forward")
    np.testing.assert_array_equal(first, np.r_[0:32, 64:96])
    np.testing.assert_array_equal(second, np.r_[32:64, 96:128])
    first, second = _arrivals("reverse")
    np.testing.assert_array_equal(first, np.r_[95:63:-1, 31:-1:-1])  # block 1 runs first
    r1, r2 = _arrivals("random", seed=3), _arrivals("random", seed=3)
    np.testing.assert_array_equal(r1[0], r2[0])
    assert sorted(r1[0].tolist() + r1[1].tolist()) == list(range(128))
    assert not np.array_equal(r1[0] % 64, np.sort(r1[0]) % 64)
    assert not np.array_equal(np.argsort(r1[0][:32]), np.argsort(r1[1][:32]))
    assert not np.array_equal(r1[0], _arrivals("random", seed=4)[0])


def test_philox_header_compiles_as_device_code():
    code = r"""
#define SF_FN static __device__ __forceinline__
#include "philox.h"
extern "C" __global__ void draw(unsigned* out)
{
    sf_words w = sf_philox(threadIdx.x, 0u, 0u, 0u, 1u, 2u);
    out[threadIdx.x] = w.w[0];
}
"""
    from spikeforge.philox import philox4x32
    out = xp.zeros(4, np.uint32)
    xp.RawKernel(code, "draw")((1,), (4,), (out,))
    expected = philox4x32(np.arange(4), 0, 0, 0, 1, 2)[0]
    np.testing.assert_array_equal(out.get(), expected)


def test_kernel_globals_are_not_interposed_by_process_symbols():
    """A __device__ variable named like a libc global (optind) is the module's own."""
    code = r"""__device__ int optind;
    extern "C" __global__ void read_global(int* out) { out[0] = optind; optind += 1; }"""
    mod = xp.RawModule(code=code)
    xp.memcpy_htod(mod.get_global("optind").ptr, np.array([41], np.int32))
    out = xp.zeros(1, np.int32)
    mod.get_function("read_global")((1,), (1,), (out,))
    assert out.get()[0] == 41
    assert xp.memcpy_dtoh(np.zeros(1, np.int32), mod.get_global("optind").ptr)[0] == 42


def test_options_and_environment_default_order(tmp_path):
    code = r"""extern "C" __global__ void scaled(int* out) { out[threadIdx.x] = SCALE * (int)threadIdx.x; }"""
    out = xp.zeros(4, np.int32)
    xp.RawModule(code=code, options=("-arch=sm_80", "--use_fast_math", "-DSCALE=3")
                 ).get_function("scaled")((1,), (4,), (out,))
    assert out.get().tolist() == [0, 3, 6, 9]
    script = ("from spikeforge.backends.cuda import emulator as xp\n"
              "print(xp._config['order'], xp._config['seed'])\n")
    env = dict(os.environ, SPIKEFORGE_EMU_ORDER="random", SPIKEFORGE_EMU_SEED="9")
    result = subprocess.run([sys.executable, "-c", script], env=env,
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["random", "9"]


def _mappings() -> int:
    with open("/proc/self/maps", "rb") as maps:
        return sum(1 for _ in maps)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_idle_libraries_give_back_their_thread_stacks():
    """Each kernel library holds two mappings per fiber stack; only the most recent
    MAX_STACK_HOLDERS keep them, so loading many libraries stays far below
    vm.max_map_count (a 128-thread library alone holds ~260)."""
    from spikeforge.backends.cuda import emulator_kernel

    def launch(tag: int):
        code = (f'extern "C" __global__ void k{tag}(float* x) '
                f'{{ x[threadIdx.x] += {tag}.0f; }}')
        x = xp.zeros(128, np.float32)
        xp.RawModule(code=code).get_function(f"k{tag}")((1,), (128,), (x,))
        assert float(x.get()[0]) == tag

    for tag in range(1, emulator_kernel.MAX_STACK_HOLDERS + 2):
        launch(tag)
    before = _mappings()
    for tag in range(100, 104):
        launch(tag)
    assert _mappings() - before < 4 * 40, "every new library kept its thread stacks"
