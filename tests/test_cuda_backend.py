"""The cuda backend: options and errors, rendering, and emulated runs (cuda_emu:
the unchanged kernel text on the CPU) against numpy — bit-exact in fixed point
whatever the thread order, within tolerance in float32. Tests marked ``gpu``
run the same checks through CuPy on a real device."""

from __future__ import annotations

import numpy as np
import pytest
import spikeforge as sf
from spikeforge.backends.cuda import CudaBackend, EmulatedCudaBackend
from spikeforge.backends.cuda.program import CudaProgram, choose_span
from spikeforge.compare import compare
from spikeforge.prepare import prepare
from spikeforge.registry import build
from test_cuda_compile import LIF, representative

EMU_OK, EMU_WHY = EmulatedCudaBackend.availability()
GPU_OK, GPU_WHY = CudaBackend.availability()
needs_emulator = pytest.mark.skipif(not EMU_OK, reason=f"cuda_emu unavailable: {EMU_WHY}")
STEPS = 24


def small(precision="float32", batch_size=1, conn=None, n=40, **kw) -> sf.Network:
    net = sf.NetworkBuilder(dt=0.5, batch_size=batch_size, seed=3, precision=precision)
    net.population("P", sf.PoissonSource, 8, params={"rate": 200.0})
    net.population("N", sf.LIF, n, params=LIF, init={"v": sf.Uniform(-60.0, -51.0)})
    net.connect("P", "N", conn or sf.FixedProbability(0.5), name="PN", w=8.0, **kw)
    net.connect("N", "N", sf.FixedProbability(0.2), name="NN", w=2.0,
                postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0})
    net.current_source("dc", sf.DC, "N", params={"amp": 12.0})
    return net.network()


def run(net, backend, custom=True, **options):
    sim = net.build(backend=backend, **options)
    sim.run(steps=STEPS, progress=False)
    if custom:
        for group in dict.fromkeys(cu.group for cu in net.custom_updates if not cu.every_step):
            sim.custom_update(group)
    return sim


def snapshot(sim) -> dict:
    out = {name: sim.get(name) for name in sorted(sim.state)}
    for pop in sim.record_spikes:
        out[f"spikes:{pop}"] = np.stack(sim.spikes(pop)[:2])
    return out


# options and errors (no emulator needed) --------------------------------------------------
def test_cuda_without_cupy_or_gpu_is_a_clear_error():
    if GPU_OK:
        pytest.skip("a GPU is available here")
    assert "cupy" in GPU_WHY
    with pytest.raises(RuntimeError, match="backend 'cuda' cannot run here: .*cupy"):
        build(small(), backend="cuda")


def test_info_says_why_cuda_is_unavailable(capsys):
    from spikeforge.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.strip().startswith("cuda:")
                or " cuda" in line and "available" in line)
    assert ("unavailable" in line and "cupy" in line) or GPU_OK


@pytest.mark.parametrize("span, message", [
    ({"nope": "pre"}, "unknown projection 'nope'"),
    ({"PN": "sideways"}, "span of projection 'PN' must be 'pre' or 'post'"),
])
def test_span_errors_name_the_projection(span, message):
    with pytest.raises(ValueError, match=message):
        CudaProgram(prepare(small()), span=span)


def test_procedural_projection_cannot_use_postsynaptic_span():
    net = small(conn=sf.FixedProbability(0.5, procedural=True))
    with pytest.raises(ValueError, match="'PN' has procedural connectivity"):
        CudaProgram(prepare(net), span={"PN": "post"})


@pytest.mark.parametrize("block_size", [0, 48, 2048, "128"])
def test_block_size_must_be_a_multiple_of_32(block_size):
    with pytest.raises(ValueError, match="block_size"):
        CudaProgram(prepare(small()), block_size=block_size)


def test_cost_model_dense_goes_post_sparse_goes_pre():
    net = small(conn=sf.Dense())
    prep = prepare(net)
    assert choose_span(prep, net.projection("PN"), net.dt) == "post"
    assert choose_span(prep, net.projection("NN"), net.dt) == "pre"
    proc = small(conn=sf.FixedProbability(0.9, procedural=True))
    assert choose_span(prepare(proc), proc.projection("PN"), proc.dt) == "pre"


def test_fixed_point_deliveries_are_unsigned_32_bit_atomics():
    program = CudaProgram(prepare(small(sf.Fixed(32, 16))), span={"PN": "pre"})
    source = program.render()
    assert "atomicAdd((unsigned int *)&b_inring_PN" in source
    assert "sf_wrap((int64_t)b_inring_PN" in source  # readers wrap the 32-bit sum
    float_source = CudaProgram(prepare(small()), span={"PN": "pre"}).render()
    assert "atomicAdd(&b_inring_PN" in float_source


def test_every_kernel_is_launched_with_its_declared_params():
    network, spans = representative()
    program = CudaProgram(prepare(network), ["N", "P"], ["M.v"], spans)
    source = program.render()
    for kernel in program.kernels:
        signature = ", ".join(f"{t} {n}" for t, n in kernel.params)
        assert f'extern "C" __global__ void {kernel.name}({signature})' in source
        assert kernel.block[0] % 32 == 0 and kernel.grid[1] >= 1
    launched = set(program.step_kernels) | set(program.custom_kernels.values())
    assert launched == {k.name for k in program.kernels}


# emulated runs ----------------------------------------------------------------------------------
@needs_emulator
@pytest.mark.parametrize("flip", [False, True], ids=["spans", "flipped"])
def test_representative_network_is_bit_exact_in_fixed_point(flip):
    network, spans = representative(sf.Fixed(32, 16), flip)
    options = {"record_vars": ["M.v", "Peak.m"]}
    reference = run(network, "numpy", **options)
    report = compare(reference, run(network, "cuda_emu", span=spans, **options))
    assert report.bit_exact, report.failures()
    assert sum(len(reference.spikes(p)[0]) for p in ("N", "M", "P")) > 20


@needs_emulator
def test_representative_network_float32_within_tolerance():
    network, spans = representative("float32")
    reference = run(network, "numpy", record_vars=["M.v"])
    report = compare(reference, run(network, "cuda_emu", span=spans, record_vars=["M.v"]))
    assert report.ok, report.failures()


EXP_NORMAL = sf.NeuronModel("ExpNormal", vars=(sf.Var("e", default=0.0), sf.Var("z", default=0.0)),
                            sim="e = exponential()\nz = normal()", doc="draws")


COUNTS = sf.NeuronModel("Counts", params=("lam",), vars=(sf.Var("n", type="int", default=0),),
                        sim="n = poisson(lam)", doc="Poisson draws")


@needs_emulator
def test_float32_draws_equal_numpy_bit_for_bit():
    """uniform/normal/exponential/poisson: float-float arithmetic (no double)
    reproduces numpy's float64 computation rounded once."""
    from spikeforge.tools.matrix import DRAWS

    net = sf.NetworkBuilder(dt=0.5, batch_size=2, seed=7)
    net.population("D", DRAWS, 40)
    net.population("X", EXP_NORMAL, 40)
    net.connect("D", "X", sf.FixedNumberPost(5, procedural=True), w=sf.Normal(0.3, 0.7))
    for name, lam in (("K0", 0.05), ("K1", 1.5), ("K2", 12.0)):
        net.population(name, COUNTS, 40, params={"lam": lam})
    net = net.network()
    names = ["D.u", "D.g", "X.e", "X.z", "K0.n", "K1.n", "K2.n"]
    traces = [run(net, b, record_vars=names) for b in ("numpy", "cuda_emu")]
    for name in names:
        np.testing.assert_array_equal(traces[1].trace(name)[1], traces[0].trace(name)[1],
                                      err_msg=name)


@needs_emulator
def test_fixed_point_results_do_not_depend_on_thread_order():
    from spikeforge.backends.cuda import emulator

    network, spans = representative(sf.Fixed(32, 16))
    results = []
    for order, seed in (("forward", 0), ("reverse", 0), ("random", 1), ("random", 2)):
        with emulator.thread_order(order, seed):
            results.append(snapshot(run(network, "cuda_emu", span=spans)))
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for key in results[0]:
            np.testing.assert_array_equal(other[key], results[0][key], err_msg=key)


@needs_emulator
def test_block_size_and_span_do_not_change_fixed_point_results():
    net = small(sf.Fixed(32, 16), batch_size=2)
    base = snapshot(run(net, "cuda_emu"))
    for options in ({"block_size": 32}, {"span": {"PN": "post", "NN": "post"}},
                    {"span": {"PN": "pre", "NN": "pre"}, "block_size": 256}):
        other = snapshot(run(net, "cuda_emu", **options))
        for key in base:
            np.testing.assert_array_equal(other[key], base[key], err_msg=f"{options} {key}")
    reference = run(net, "numpy")
    assert compare(reference, run(net, "cuda_emu")).bit_exact


@needs_emulator
def test_cuda_backend_build_path_with_a_cupy_shaped_module(monkeypatch):
    """CudaBackend.build as on a GPU, with the emulator standing in for cupy."""
    from spikeforge.backends import cuda
    from spikeforge.backends.cuda import emulator

    monkeypatch.setattr(cuda, "_cupy", lambda: (emulator, ""))
    assert CudaBackend.availability() == (True, "")
    net = small(sf.Fixed(32, 16))
    sim = CudaBackend.build(net, span={"PN": "post"}, check=False)
    sim.run(steps=STEPS, progress=False)
    assert sim.backend == "cuda" and sim.program.spans["PN"] == "post"
    assert compare(run(net, "numpy"), sim).bit_exact


@needs_emulator
def test_check_option_compiles_for_both_archs():
    from spikeforge.backends.cuda import compile as C

    try:
        C.compiler()
    except C.NoCudaCompiler as error:
        pytest.skip(str(error))
    sim = small(batch_size=2).build(backend="cuda_emu", check=True)
    sim.run(steps=3, progress=False)
    assert sim.step == 3


@needs_emulator
def test_column_span_keeps_the_reference_float_order():
    """Postsynaptic span over columns sums each target's input in numpy's order,
    so a float32 network without libm calls is bit-identical."""
    net = small("float32", batch_size=2)
    reference = run(net, "numpy", record_vars=["N.v"])
    sim = run(net, "cuda_emu", span={"PN": "post", "NN": "post"}, record_vars=["N.v"])
    assert compare(reference, sim).bit_exact


@needs_emulator
@pytest.mark.parametrize("span", ["pre", "post"])
def test_narrow_fixed_point_sums_wrap_like_numpy(span, probe_model):
    """40 sources deliver 5.0 each into Fixed(16, 8) (range [-128, 128)): the
    atomic 32-bit sum, wrapped when read, equals numpy's wrap after every add."""
    net = sf.NetworkBuilder(dt=1.0, seed=1, precision=sf.Fixed(16, 8))
    net.population("S", sf.SpikeSourceArray, 40, spike_times=[[0.0, 2.0]] * 40)
    net.population("X", probe_model, 3)
    net.connect("S", "X", sf.Dense(), name="SX", w=5.0)
    net = net.network()
    reference = run(net, "numpy", record_vars=["X.x"])
    sim = run(net, "cuda_emu", span={"SX": span}, record_vars=["X.x"])
    assert compare(reference, sim).bit_exact
    assert sim.trace("X.x")[1][1, 0] == 200.0 - 256.0


@needs_emulator
def test_get_set_reset_push_and_pull_device_state():
    net = small(sf.Fixed(32, 16))
    sim = net.build(backend="cuda_emu")
    ref = net.build(backend="numpy")
    for s in (sim, ref):
        s.run(steps=5, progress=False)
        s.set("N.v", -55.0)
        s.run(steps=5, progress=False)
    np.testing.assert_array_equal(sim.get("N.v"), ref.get("N.v"))
    sim.reset()
    ref.reset()
    for s in (sim, ref):
        s.run(steps=7, progress=False)
    assert compare(ref, sim).bit_exact
    sim.reset(seed=9)
    ref.reset(seed=9)
    for s in (sim, ref):
        s.run(steps=7, progress=False)
    assert compare(ref, sim).bit_exact


@needs_emulator
def test_recording_chunks_and_several_events_per_step(monkeypatch):
    from spikeforge.backends.cstyle import layout

    monkeypatch.setattr(layout, "MAX_CHUNK", 4)  # several chunks in one run
    net = small(sf.Fixed(32, 16), batch_size=2)
    reference = run(net, "numpy", record_vars=["N.v"])
    sim = run(net, "cuda_emu", record_vars=["N.v"])
    assert sim.program.chunk == 4
    times, ids, batch = sim.spikes("P")
    assert np.any(np.unique(np.stack([times, ids, batch]), axis=1, return_counts=True)[1] > 1)
    assert compare(reference, sim).bit_exact


# real GPU ---------------------------------------------------------------------------------------
needs_gpu = pytest.mark.skipif(not GPU_OK, reason=f"no GPU: {GPU_WHY}")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("flip", [False, True], ids=["spans", "flipped"])
def test_gpu_representative_network_bit_exact_in_fixed_point(flip):
    network, spans = representative(sf.Fixed(32, 16), flip)
    reference = run(network, "numpy", record_vars=["M.v"])
    from spikeforge.backends.cuda import compile as C

    check = C.nvcc() is not None or C.nvrtc_library() is not None
    report = compare(reference, run(network, "cuda", span=spans, record_vars=["M.v"],
                                    check=check))
    assert report.bit_exact, report.failures()


@pytest.mark.gpu
@needs_gpu
def test_gpu_representative_network_float32_within_tolerance():
    network, spans = representative("float32")
    reference = run(network, "numpy", record_vars=["M.v"])
    report = compare(reference, run(network, "cuda", span=spans, record_vars=["M.v"]))
    assert report.ok, report.failures()


@pytest.mark.gpu
@needs_gpu
def test_gpu_equals_emulator_in_fixed_point():
    net = small(sf.Fixed(32, 16), batch_size=2)
    gpu, emu = snapshot(run(net, "cuda")), snapshot(run(net, "cuda_emu"))
    for key in emu:
        np.testing.assert_array_equal(gpu[key], emu[key], err_msg=key)
