"""The cuda backend's kernels compile for real GPUs (sm_80, sm_90) with nvcc or
NVRTC: a fixed set of representative networks (every kernel kind, every
connectivity kind, both propagation strategies, float32 and fixed point) builds
with no register spills, at most 48 KB static shared memory and, in float32, no
double-precision instruction; the build fails when one of those rules is broken;
``spikeforge codegen --backend cuda --report`` prints the per-kernel table.

``representative(precision, flip)`` is imported by tests/test_cuda_backend.py."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import spikeforge as sf
from spikeforge.backends.cuda import compile as C
from spikeforge.backends.cuda.program import Kernel
from spikeforge.tools.matrix import DRAWS, FEEDBACK_NEURON, FEEDBACK_WU, USER_PSM, USER_WU

SPIKE_TIMES = [[0.5, 2.0, 4.0, 4.0], [1.0, 3.0], [0.0, 1.5, 5.0], [2.5]]
LIF = {"C": 1.0, "tau_m": 10.0, "v_rest": -65.0, "v_reset": -70.0, "v_thresh": -50.0,
       "i_offset": 0.0, "tau_refrac": 1.0}
STDP = {"tau_plus": 10.0, "tau_minus": 10.0, "a_plus": 0.5, "a_minus": 0.6, "w_min": 0.0,
        "w_max": 12.0}


def _compiler() -> str | None:
    try:
        return C.compiler()
    except C.NoCudaCompiler:
        return None


needs_compiler = pytest.mark.skipif(_compiler() is None,
                                    reason="neither nvcc nor NVRTC (cupy) is installed")


def _sources(net):
    net.population("S", sf.SpikeSourceArray, 4, spike_times=SPIKE_TIMES)
    net.population("P", sf.PoissonSource, 6, params={"rate": 300.0})
    net.population("N", sf.LIF, 40, params=LIF, init={"v": sf.Uniform(-60.0, -52.0)})
    net.population("M", sf.IF, 20, params={"v_thresh": 1.5}, init={"v": sf.Uniform(0.0, 1.0)})


def representative(precision="float32", flip=False, batch_size=2) -> tuple[sf.Network, dict]:
    """(network, span overrides): every kernel kind and connectivity kind; ``flip``
    swaps the strategy of every stored projection with pre_spike code."""
    net = sf.NetworkBuilder(dt=0.5, batch_size=batch_size, seed=5, precision=precision)
    _sources(net)
    net.population("F", FEEDBACK_NEURON, 6)
    net.population("C", sf.IF, 18, params={"v_thresh": 1.5})
    net.population("D", DRAWS, 5)
    net.connect("S", "N", sf.Dense(), name="SN", w=6.0)
    net.connect("P", "N", sf.FixedProbability(0.5), name="PN", w=3.0, delay=2,
                postsynaptic=sf.ExpCurr, ps_params={"tau": 3.0})
    net.connect("P", "N", sf.FixedProbability(0.5), name="PNcond", w=0.01,
                postsynaptic=sf.ExpCond, ps_params={"tau": 4.0, "E_rev": 0.0})
    net.connect("N", "N", sf.FixedNumberPost(3, procedural=True), name="NNproc",
                w=sf.NormalClipped(0.5, 0.2, 0.0, 1.0))
    net.connect("N", "M", sf.FixedProbability(0.3, procedural=True), name="NMproc",
                w=sf.Uniform(0.1, 0.3),
                postsynaptic=USER_PSM, ps_params={"tau": 3.0})
    net.connect("N", "M", sf.FixedProbability(0.4), name="NMstdp", weight_update=sf.STDP,
                wu_params=STDP, w=None, wu_init={"w": sf.Uniform(6.0, 10.0)})
    net.connect("S", "M", sf.FixedTotalNumber(10), name="SMuser", weight_update=USER_WU,
                wu_params={"eta": 0.2}, w=None, wu_init={"w": sf.Uniform(1.0, 2.0)})
    net.connect("M", "M", sf.OneToOne(), name="MM", w=0.1, delay=1)
    net.connect("S", "M", sf.Sparse.from_pairs([0, 1, 3, 3], [2, 0, 1, 2], 4), name="SMsparse",
                weight_update=sf.StaticPulseDendriticDelay, max_dendritic_delay=3,
                wu_init={"w": 1.0, "d": sf.Values(np.array([0, 1, 2, 3]))})
    net.connect("S", "F", sf.Dense(), name="SF", w=0.6)
    net.connect("F", "F", sf.Dense(), name="FF", weight_update=FEEDBACK_WU, w=0.3, target="i_fb")
    net.population("G", sf.SpikeSourceArray, 16, spike_times=[[0.5 * (i % 5)] for i in range(16)])
    net.connect("G", "C", sf.Conv2D((4, 4, 1), (2, 2), 2, (1, 1), "valid"), name="GC",
                w=sf.Values(np.arange(8, dtype=float).reshape(2, 2, 1, 2) / 4))
    net.population("Q", sf.IF, 4, params={"v_thresh": 0.6})
    net.connect("G", "Q", sf.AvgPool2D((4, 4, 1), (2, 2)), name="GQ", w=0.25)
    net.current_source("noise", sf.GaussianNoise, "M", params={"mean": 0.05, "sd": 0.1})
    net.current_source("dc", sf.DC, "N", params={"amp": 20.0})
    net.custom_update("Sum", "M", "r = v", var_refs={"v": "M.v"},
                      reductions={"r": sf.Reduction("sum", "batch")})
    net.custom_update("Centre", "M", "v = v - 0.5 * r", var_refs={"v": "M.v", "r": "Sum.r"},
                      group="Sum")
    net.custom_update("Peak", "N", "m = v\ns = v", var_refs={"v": "N.v"},
                      reductions={"m": sf.Reduction("max", "neurons"),
                                  "s": sf.Reduction("sum", "neurons")}, every_step=True)
    net.custom_update("Decay", "NMstdp", "w = w * 0.5", var_refs={"w": "NMstdp.w"},
                      group="Decay")
    network = net.network()
    spans = {"SN": "post", "PN": "pre", "PNcond": "post", "NMstdp": "pre", "SMuser": "post",
             "MM": "pre", "SMsparse": "post", "SF": "pre", "FF": "post", "GC": "pre",
             "GQ": "post"}
    if flip:
        spans = {k: "pre" if v == "post" else "post" for k, v in spans.items()}
    return network, spans


KINDS = {"neurons", "presynaptic", "postsynaptic", "post_spike", "dynamics", "clear", "custom",
         "record"}
PRECISIONS = ["float32", sf.Fixed(32, 16)]


@needs_compiler
@pytest.mark.parametrize("precision", PRECISIONS, ids=str)
@pytest.mark.parametrize("flip", [False, True], ids=["spans", "flipped"])
def test_representative_networks_compile_clean_for_both_archs(precision, flip):
    network, spans = representative(precision, flip)
    program, source = C.render(network, record_vars=["M.v"], span=spans)
    assert {k.kind for k in program.kernels} == KINDS
    assert set(program.spans.values()) == {"pre", "post"}
    for arch in C.ARCHS:
        report = C.check(program, source, arch)  # raises CudaBuildError on any problem
        assert report.problems() == []
        assert {k.name for k in report.kernels} == {k.name for k in program.kernels}
        assert all(k.registers > 0 for k in report.kernels), report.kernels
        if precision == "float32":
            assert all(k.f64 == 0 for k in report.kernels)


@needs_compiler
def test_float64_model_compiles_and_reports_its_doubles():
    network, spans = representative("float64")
    program, source = C.render(network, span=spans)
    report = C.check(program, source, "sm_80")
    assert report.problems() == [] and any(k.f64 > 0 for k in report.kernels)


def _with_kernel(program, source, name, body):
    """A program with one extra hand-written kernel (to prove the checks can fail)."""
    program.kernels.append(Kernel(name, "neurons", "x", (("float *__restrict__", "p"),),
                                  (1, 1, 1), (32, 1, 1), ""))
    return source + f'\nextern "C" __global__ void {name}(float *__restrict__ p)\n{{\n{body}\n}}\n'


@needs_compiler
def test_double_precision_in_a_float32_model_fails_the_build():
    network, _ = representative()
    program, source = C.render(network)
    source = _with_kernel(program, source, "sf_bad", "    p[threadIdx.x] = (float)(sqrt((double)p[0]) * 1.1);")
    with pytest.raises(C.CudaBuildError, match="sf_bad.*double-precision"):
        C.check(program, source, "sm_80")


@needs_compiler
def test_too_much_static_shared_memory_fails_the_build():
    network, _ = representative()
    program, source = C.render(network)
    source = _with_kernel(program, source, "sf_big", "    __shared__ float big[13000];\n"
                          "    big[threadIdx.x] = p[threadIdx.x];\n    __syncthreads();\n"
                          "    p[threadIdx.x] = big[31 - threadIdx.x];")
    with pytest.raises(C.CudaBuildError, match="shared"):
        C.check(program, source, "sm_90")


def test_spills_and_shared_memory_are_problems():
    log = """ptxas info    : Compiling entry function 'sf_neurons_0' for 'sm_80'
ptxas info    : Function properties for sf_neurons_0
    8 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 50000 bytes smem, 400 bytes cmem[0]"""
    stats = C.parse_ptxas(log)["sf_neurons_0"]
    assert stats == {"stack": 8, "spill_stores": 12, "spill_loads": 16, "registers": 255,
                     "smem": 50000}
    report = C.CompileReport("sm_80", "nvcc", "float32",
                             [C.KernelReport("sf_neurons_0", "neurons", "N", **stats)])
    problems = report.problems()
    assert len(problems) == 2 and "spills" in problems[0] and "48 KB" in problems[1]


def test_f64_counter_ignores_register_declarations():
    ptx = """.visible .entry sf_a(\n.param .u64 p\n)\n{\n.reg .f64 %fd<3>;\nmul.f32 %f1, %f2, %f3;\n}
.visible .entry sf_b()\n{\ncvt.f64.f32 %fd1, %f1;\nmul.rn.f64 %fd2, %fd1, %fd1;\n}"""
    assert C.f64_instructions(ptx) == {"sf_a": 0, "sf_b": 2}


def test_bytes_per_step_follow_the_layout():
    network, spans = representative()
    program, _ = C.render(network, span=spans)
    by_name = {k.name: k for k in program.kernels}
    state = sum(v.nbytes for k, v in program.prepared.state.items() if k.startswith("N."))
    per_step, per_event = C.traffic(program, by_name["sf_neurons_2"])  # population N
    assert per_step >= state and per_event == 0
    pre = next(k for k in program.kernels if k.kind == "presynaptic" and k.node == "PN")
    per_step, per_event = C.traffic(program, pre)
    syn = program.prepared.synapses["PN"]
    row = len(syn.post) / 6
    assert "vidx:PN" not in program.by_key  # var index = synapse index: no vidx buffer
    assert per_event == int(row * (4 + 4 + 4))  # post, w (float) + the atomic add


@needs_compiler
def test_codegen_report_command(tmp_path, capsys):
    from pathlib import Path

    from spikeforge.cli import main

    model = Path(__file__).parent.parent / "examples" / "stdp.json"
    assert main(["codegen", str(model), "--backend", "cuda", "--out", str(tmp_path),
                 "--report"]) == 0
    out = capsys.readouterr().out
    assert "network.cu" in out and "sm_80" in out and "sm_90" in out
    assert "regs" in out and "smem" in out and "B/step" in out and "sf_neurons_0" in out
    assert "problems: none" in out
    assert main(["codegen", str(model), "--backend", "cpu", "--out", str(tmp_path),
                 "--report"]) == 1


@needs_compiler
def test_codegen_build_script_compiles_for_both_archs(tmp_path):
    from spikeforge.demos import stdp_network
    from spikeforge.tools.codegen import write_sources

    if C.compiler() != "nvcc":
        pytest.skip("build.sh uses nvcc")
    files = write_sources(stdp_network(), "cuda", tmp_path)
    assert [f.name for f in files] == ["network.cu", "philox.h", "build.sh"]
    result = subprocess.run(["sh", "build.sh"], cwd=tmp_path, capture_output=True, text=True, check=False,
                            env={"PATH": f"{C.Path(C.nvcc()).parent}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "network_sm_80.cubin").exists() and (tmp_path / "network_sm_90.cubin").exists()
    assert "spill" in result.stderr


def test_no_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(C, "nvcc", lambda: None)
    monkeypatch.setattr(C, "nvrtc_library", lambda: None)
    with pytest.raises(C.NoCudaCompiler, match="neither nvcc.*nor NVRTC"):
        C.compiler()


@pytest.mark.skipif(C.nvrtc_library() is None, reason="NVRTC (libnvrtc) is not installed")
@pytest.mark.parametrize("precision", PRECISIONS, ids=str)
def test_representative_networks_compile_with_nvrtc(precision):
    """NVRTC is what CuPy's RawModule uses at run time: no C library headers, so
    the dialect's prelude defines the integer types itself."""
    network, spans = representative(precision)
    program, source = C.render(network, record_vars=["M.v"], span=spans)
    for arch in C.ARCHS:
        report = C.check(program, source, arch, prefer="nvrtc")
        assert report.compiler.startswith("nvrtc") and report.problems() == []
        if precision == "float32":
            assert all(k.f64 == 0 for k in report.kernels)


def test_kernels_have_no_double_in_float32_source():
    network, spans = representative()
    _, source = C.render(network, span=spans)
    kernels = source[source.index('extern "C"'):]
    assert "double" not in kernels and "sf_init_" not in kernels
