"""fpga backend: the generated HLS accelerator, its C simulation, the
synthesizability check, the register map, and a sanitized driver run.
(The whole foundation suite also runs on "fpga" through the ``backend`` fixture.)"""

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import spikeforge as sf
from spikeforge.backends.cstyle.layout import initial_values
from spikeforge.backends.fpga import csim, synth_check
from spikeforge.backends.fpga.program import FpgaProgram
from spikeforge.compare import compare
from spikeforge.hls import headers, include_dirs
from spikeforge.prepare import prepare

pytestmark = pytest.mark.skipif(
    not any(s.name == "fpga" and s.available for s in sf.available()), reason="no C++ compiler")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def feature_network(precision=sf.Fixed(32, 16), batch=2):
    """Every kernel kind: axonal and dendritic delays, STDP (post_spike columns),
    procedural rows, Poisson multiplicity, noise, spike-source array input, a
    narrow saturating weight format, an empty projection, per-step and host
    custom updates."""
    net = sf.NetworkBuilder(dt=0.5, batch_size=batch, seed=3, precision=precision)
    lif = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
               tau_refrac=1.0)
    net.population("P", sf.PoissonSource, 30, params={"rate": 120.0})
    net.population("S", sf.SpikeSourceArray, 4, spike_times=[[1.0, 3.0], [2.0], [], [5.0, 5.5]])
    net.population("N", sf.LIF, 40, params=lif, init={"v": sf.Uniform(0.0, 1.0)})
    stdp = dict(tau_plus=10.0, tau_minus=10.0, a_plus=0.01, a_minus=0.012, w_min=0.0, w_max=0.5)
    net.connect("P", "N", sf.FixedProbability(0.3), weight_update=sf.STDP, wu_params=stdp,
                w=sf.Uniform(0.0, 0.3), postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0}, delay=2)
    net.connect("N", "N", sf.FixedNumberPost(5, procedural=True), name="rec",
                w=sf.Normal(-0.1, 0.05), delay=1)
    net.connect("P", "N", sf.FixedTotalNumber(200), name="dend",
                weight_update=sf.StaticPulseDendriticDelay, w=0.05,
                wu_init={"d": 2}, max_dendritic_delay=3)
    net.connect("S", "N", sf.Dense(), name="drive", weight_update=NARROW, w=0.4)
    net.connect("N", "N", sf.FixedProbability(0.0), name="empty", w=1.0)  # zero-size arrays
    net.current_source("noise", sf.GaussianNoise, "N", params={"mean": 0.05, "sd": 0.1})
    net.custom_update("total", "N", "s = v", var_refs={"v": "N.v"},
                      reductions={"s": sf.Reduction("sum", "neurons")}, every_step=True)
    net.custom_update("calm", "N", "v = v * 0.5", var_refs={"v": "N.v"}, group="calm")
    return net.network()


NARROW = sf.WeightUpdateModel("Narrow", vars=(sf.Var("w", batched=False, fmt=sf.Fixed(8, 6),
                                                     saturate=True),),
                              pre_spike="deliver(w)", doc="8-bit saturating weights")


def run(net, backend, steps=60, **options):
    sim = net.build(backend, record_vars=["N.v"], **options)
    sim.run(steps=steps, progress=False)
    sim.custom_update("calm")
    sim.run(steps=10, progress=False)
    return sim


@pytest.mark.parametrize("precision", [sf.Fixed(32, 16), sf.Fixed(16, 8)], ids=str)
def test_fixed_point_accelerator_equals_numpy_bit_for_bit(precision):
    net = feature_network(precision)
    report = compare(run(net, "numpy"), run(net, "fpga"))
    assert report.bit_exact, report.failures()


def test_float_accelerator_matches_numpy():
    net = feature_network("float32", batch=1)
    report = compare(run(net, "numpy"), run(net, "fpga"))
    assert report.ok, report.failures()


@pytest.mark.parametrize("options", [{"onchip": "none"}, {"onchip": "state"},
                                     {"steps_per_call": 7}, {"board": "u250"}],
                         ids=["ddr", "offchip-weights", "7-steps-per-call", "uram"])
def test_placement_and_call_size_do_not_change_results(options):
    net = feature_network()
    report = compare(run(net, "fpga"), run(net, "fpga", **options))
    assert report.bit_exact, report.failures()


def test_reset_and_reseed_rebuild_the_accelerator():
    net = feature_network()
    sim = run(net, "fpga")
    first = sim.get("N.v")
    sim.reset()
    sim.run(steps=60, progress=False)
    sim.custom_update("calm")
    sim.run(steps=10, progress=False)
    assert not np.array_equal(first, sim.get("N.v"))  # fresh random draws, same start
    sim.reset(seed=3)
    assert compare(run(net, "numpy"), run(net, "fpga")).bit_exact


def test_set_between_runs_reaches_the_accelerator():
    net = feature_network()
    sims = []
    for backend in ("numpy", "fpga"):
        sim = net.build(backend, record_vars=["N.v"])
        sim.run(steps=20, progress=False)
        sim.set("N.v", 0.25)
        sim.set("P_N.w", 0.1)
        sim.run(steps=20, progress=False)
        sims.append(sim)
    assert compare(*sims).bit_exact


# the generated source ------------------------------------------------------------------
@pytest.fixture(scope="module")
def program():
    net = feature_network()
    return FpgaProgram(prepare(net), record_spikes=["N", "P"], record_vars=["N.v"])


def test_top_function_interface_and_pragmas(program):
    src = program.render()
    assert re.search(r'extern "C" void sf_top\(', src)
    arrays = [p for p in program.ports if p.kind == "m_axi"]
    assert {p.key for p in arrays} == {b.key for b in program.buffers}
    assert len({p.name for p in program.ports}) == len(program.ports)
    for p in arrays:
        assert f"#pragma HLS INTERFACE m_axi port={p.name} offset=slave bundle={p.bundle}" in src
    for name in ("mode", "n_steps", "step", "rng_step", "seed", "return"):
        assert f"#pragma HLS INTERFACE s_axilite port={name} bundle=control" in src
    assert "#pragma HLS INTERFACE ap_ctrl_hs port=return" in src
    assert "#pragma HLS PIPELINE II=1" in src and "#pragma HLS LOOP_TRIPCOUNT" in src
    assert "BIND_STORAGE variable=l_b_state_N_v type=ram_2p" in src
    roles = {p.key: p.role for p in arrays}
    assert roles["rec_var:N.v"] == "out" and roles["rowptr:P_N"] == "in"
    assert roles["state:N.v"] == "inout"
    assert {p.bundle for p in arrays if p.key.startswith("rowptr")} != \
        {p.bundle for p in arrays if p.key.startswith("state")}
    includes = set(re.findall(r'#include [<"]([^>"]+)[>"]', src))
    assert includes == {"sf_hls.h"}


def test_dependence_pragmas_only_on_neuron_loops(program):
    src = program.render()
    found = {name: "DEPENDENCE" in body
             for name, body in re.findall(r"static void (sf_\w+)\((.*?)\n}\n", src, flags=re.DOTALL)}
    assert found["sf_neurons_2"]  # N: a pipelined update loop, element-wise
    assert not found["sf_neurons_1"]  # S: its loop holds the schedule's while loop
    assert not any(has for name, has in found.items() if not name.startswith("sf_neurons"))
    loops = re.findall(r"for \(int64_t i = i0; i < i1; i\+\+\) \{\n(.*?)\n\s*}", src, re.DOTALL)
    assert loops
    for loop in loops:
        assert "PIPELINE" in loop and "DEPENDENCE" not in loop  # spike-list loop: no claim


def test_register_header_follows_the_vitis_layout(program):
    text = program.register_header()
    regs = dict(re.findall(r"#define XSF_TOP_CONTROL_ADDR_(\w+?)(?:_DATA)?\s+(0x[0-9a-f]+)", text))
    bits = dict(re.findall(r"#define XSF_TOP_CONTROL_BITS_(\w+)_DATA (\d+)", text))
    assert [regs[k] for k in ("AP_CTRL", "GIE", "IER", "ISR")] == ["0x00", "0x04", "0x08", "0x0c"]
    offset = 0x10
    for port in program.ports:
        assert int(regs[port.name.upper()], 16) == offset, port.name
        assert int(bits[port.name.upper()]) == port.bits
        offset += 0x0c if port.bits == 64 else 0x08  # data word(s) + one reserved word
    assert program.register_map()[0] == (program.ports[0].name, 0x10, 64)


def clang() -> str | None:
    return next((shutil.which(c) for c in ("clang++", "clang++-17", "clang++-16", "clang++-15",
                                           "clang++-14") if shutil.which(c)), None)


@pytest.mark.parametrize("compiler", ["g++", "clang++"])
def test_generated_source_compiles_without_warnings(program, tmp_path, compiler):
    """g++ (C simulation) and clang++ in strict C++14 (the language level and
    front-end family of Vitis HLS)."""
    cxx = csim.compiler() if compiler == "g++" else clang()
    if cxx is None:
        pytest.skip("clang++ not installed")
    src = tmp_path / "sf_top.cpp"
    src.write_text(program.render())
    # unused static helpers are normal in generated code
    std = "-std=gnu++14" if compiler == "g++" else "-std=c++14"
    cmd = [cxx, std, "-O1", "-Wall", "-Wextra", "-Wno-unknown-pragmas",
           "-Wno-unused-function", "-fsyntax-only", *(f"-I{d}" for d in include_dirs()), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_csim_call_checks_its_arguments(program):
    lib = csim.CSimLibrary(program)
    arrays = {p.name: initial_values(program.prepared, program.buffers)[p.key]
              for p in program.ports if p.kind == "m_axi"}
    scalars = {"n_steps": 2, "step": 0, "rng_step": 0, "seed": 3}
    lib.call(arrays, scalars)
    bad = dict(arrays, b_state_N_v=arrays["b_state_N_v"].astype(np.int64))
    with pytest.raises(ValueError, match="b_state_N_v.*state:N.v"):
        lib.call(bad, scalars)
    with pytest.raises(KeyError, match="seed"):
        lib.call(arrays, {"n_steps": 1, "step": 0, "rng_step": 0})
    with pytest.raises(KeyError, match="b_rowptr_P_N"):
        lib.call({k: v for k, v in arrays.items() if k != "b_rowptr_P_N"}, scalars)


def test_missing_compiler_makes_the_backend_unavailable(monkeypatch):
    from spikeforge.backends.fpga import FpgaBackend

    from spikeforge import native

    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    ok, reason = FpgaBackend.availability()
    assert not ok and "no C++ compiler" in reason and "g++" in reason


def test_bad_program_options():
    prep = prepare(feature_network())
    with pytest.raises(ValueError, match="steps_per_call"):
        FpgaProgram(prep, steps_per_call=0)
    with pytest.raises(ValueError, match="onchip"):
        FpgaProgram(prep, onchip="everything")
    with pytest.raises(ValueError, match="rec_var"):
        FpgaProgram(prep, record_vars=["N.v"], onchip={"rec_var:N.v"})


# the synthesizability check ----------------------------------------------------------
@pytest.mark.parametrize("precision", ["float32", "float64", sf.Fixed(16, 8)], ids=str)
def test_generated_sources_pass_the_synthesizability_check(precision):
    program = FpgaProgram(prepare(feature_network(precision)), record_spikes=["N"])
    assert synth_check.problems(program.render(), "sf_top", headers()) == []


GOOD = textwrap.dedent("""\
    static int twice(int x) { return 2 * x; }
    extern "C" void sf_top(int32_t *a, int32_t n) {
    #pragma HLS INTERFACE m_axi port=a offset=slave bundle=g
        int32_t buf[16];
        for (int32_t i = 0; i < n; i++) {
    #pragma HLS LOOP_TRIPCOUNT min=0 max=16
            a[i] = twice(i);
        }
        for (int i = 0; i < 16; i++) buf[i] = a[i] * *a;
    }
""")
BAD = {
    "malloc": ("int32_t buf[16];", "int32_t *buf = (int32_t *)malloc(64);", "dynamic allocation"),
    "new": ("int32_t buf[16];", "int32_t *buf = new int32_t[16];", "dynamic allocation"),
    "vector": ("int32_t buf[16];", "std::vector<int> buf(16);", "dynamic allocation"),
    "vla": ("int32_t buf[16];", "int32_t buf[n];", "non-static size"),
    "tripcount": ("#pragma HLS LOOP_TRIPCOUNT min=0 max=16\n", "", "no LOOP_TRIPCOUNT"),
    "while": ("int32_t buf[16];", "int32_t buf[16]; while (n > 0) { n--; }", "no LOOP_TRIPCOUNT"),
    "goto": ("int32_t buf[16];", "int32_t buf[16]; again: goto again;", "goto"),
    "recursion": ("return 2 * x;", "return x ? twice(x - 1) : 0;", "recursion: twice -> twice"),
    "pointer-to-pointer": ("int32_t n)", "int32_t **p, int32_t n)", "pointer to pointer"),
    "no-m_axi": ("#pragma HLS INTERFACE m_axi port=a offset=slave bundle=g\n", "",
                 "without an INTERFACE m_axi"),
    "struct-pointer": ("static int twice", "typedef struct { int *p; } s_t;\nstatic int twice",
                       "pointer member"),
    "global-pointer": ("static int twice", "static int *gp;\nstatic int twice", "global pointer"),
}


def test_the_check_accepts_a_good_source():
    assert synth_check.problems(GOOD) == []


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_check_rejects_bad_sources(case):
    old, new, message = BAD[case]
    source = GOOD.replace(old, new)
    assert source != GOOD
    with pytest.raises(synth_check.NotSynthesizable, match=message):
        synth_check.check(source)


# a sanitized driver ----------------------------------------------------------------------
DRIVER = """
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "sf_top.cpp"

template <typename T> static std::vector<T> load(const char *name, size_t n) {
    std::vector<T> v(n > 0 ? n : 1);
    FILE *f = std::fopen(name, "rb");
    if (!f || std::fread(v.data(), sizeof(T), n, f) != n) { std::fprintf(stderr, "%%s\\n", name); std::exit(2); }
    std::fclose(f);
    return v;
}
template <typename T> static void save(const char *name, const std::vector<T> &v, size_t n) {
    FILE *f = std::fopen(name, "wb");
    std::fwrite(v.data(), sizeof(T), n, f);
    std::fclose(f);
}
int main() {
%(load)s
    for (int call = 0; call < %(calls)d; call++)
        sf_top(%(args)s, 0, %(chunk)d, (int64_t)call * %(chunk)d, (uint32_t)(call * %(chunk)d), %(seed)du);
%(save)s
    std::printf("driver ok\\n");
    return 0;
}
"""


def sanitizer_runtime() -> bool:
    result = subprocess.run([csim.compiler(), "-print-file-name=libasan.so"], capture_output=True,
                            text=True)
    path = result.stdout.strip()
    return os.path.isabs(path) and Path(path).exists()


def write_driver(program, tmp_path: Path, calls: int) -> Path:
    arrays = initial_values(program.prepared, program.buffers)
    loads, saves, args = [], [], []
    for i, port in enumerate(p for p in program.ports if p.kind == "m_axi"):
        array = arrays[port.key]
        array.tofile(tmp_path / f"in_{i}.bin")
        loads.append(f"    auto a{i} = load<{port.ctype}>(\"in_{i}.bin\", {array.size});")
        if port.key.startswith("state:"):
            saves.append(f"    save(\"out_{i}.bin\", a{i}, {array.size});")
        args.append(f"a{i}.data()")
    (tmp_path / "sf_top.cpp").write_text(program.render())
    driver = DRIVER % {"load": "\n".join(loads), "save": "\n".join(saves), "args": ", ".join(args),
                       "calls": calls, "chunk": program.steps_per_call,
                       "seed": program.network.seed}
    (tmp_path / "driver.cpp").write_text(driver)
    return tmp_path / "driver.cpp"


def test_driver_runs_clean_under_address_and_undefined_sanitizers(tmp_path):
    if not sanitizer_runtime():
        pytest.skip("AddressSanitizer runtime (libasan.so) not installed for g++")
    net = feature_network()
    program = FpgaProgram(prepare(net), steps_per_call=10)
    driver = write_driver(program, tmp_path, calls=6)
    exe = tmp_path / "driver"
    cmd = [csim.compiler(), *csim.FLAGS[:1], "-O1", "-g", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-ffp-contract=off",
           *(f"-I{d}" for d in include_dirs()), str(driver), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-4000:]
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "halt_on_error=1"}
    result = subprocess.run([str(exe)], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=300)
    assert result.returncode == 0 and "runtime error" not in result.stderr, result.stderr[-4000:]
    assert "driver ok" in result.stdout
    reference = net.build("numpy")
    reference.run(steps=60, progress=False)
    for i, port in enumerate(p for p in program.ports if p.kind == "m_axi"):
        if port.key.startswith("state:"):
            got = np.fromfile(tmp_path / f"out_{i}.bin", dtype=reference.state[port.key[6:]].dtype)
            np.testing.assert_array_equal(got, reference.state[port.key[6:]].ravel(),
                                          err_msg=port.key)
