"""cpu-backend specifics: thread-count independence, clean compiles, sanitizers,
the build cache, and what reaches the compiler."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import spikeforge as sf
from spikeforge.backends.cpu import runtime
from spikeforge.demos import coba_network, cuba_network, stdp_network

pytestmark = pytest.mark.skipif(
    not any(s.name == "cpu" and s.available for s in sf.available()), reason="no C compiler")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def feature_network(precision="float32", plastic=True):
    """Small network touching every kernel kind: delays, STDP (static synapses
    unless ``plastic``), procedural rows, Poisson multiplicity, dendritic delays,
    noise, custom updates."""
    net = sf.NetworkBuilder(dt=0.5, batch_size=2, seed=3, precision=precision)
    lif = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
               tau_refrac=1.0)
    net.population("P", sf.PoissonSource, 30, params={"rate": 400.0})
    net.population("N", sf.LIF, 40, params=lif, init={"v": sf.Uniform(0.0, 1.0)})
    stdp = dict(tau_plus=10.0, tau_minus=10.0, a_plus=0.01, a_minus=0.012, w_min=0.0, w_max=0.5)
    plasticity = dict(weight_update=sf.STDP, wu_params=stdp) if plastic else {}
    net.connect("P", "N", sf.FixedProbability(0.3), **plasticity,
                w=sf.Uniform(0.0, 0.3), postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0}, delay=2)
    net.connect("N", "N", sf.FixedNumberPost(5, procedural=True), name="rec",
                w=sf.Normal(-0.1, 0.05), delay=1)
    net.connect("P", "N", sf.FixedTotalNumber(200), name="dend",
                weight_update=sf.StaticPulseDendriticDelay, w=0.05,
                wu_init={"d": 2}, max_dendritic_delay=3)
    net.current_source("noise", sf.GaussianNoise, "N", params={"mean": 0.05, "sd": 0.1})
    net.custom_update("total", "N", "s = v", var_refs={"v": "N.v"},
                      reductions={"s": sf.Reduction("sum", "neurons")}, every_step=True)
    return net.network()


def run_all(sim, steps=200):
    sim.run(steps=steps, progress=False)
    return {k: np.array(v) for k, v in sim.state.items()}, {
        p: sim.spikes(p) for p in sim.record_spikes}


@pytest.mark.parametrize("plastic, barriers", [(True, 2), (False, 1)], ids=["stdp", "static"])
def test_results_do_not_depend_on_thread_count(plastic, barriers):
    """STDP reads the presynaptic trace, which its owner updates in the neuron
    phase: two barriers per step. Static synapses touch only their targets'
    state: one barrier, each thread updating its neurons right after delivering."""
    net = feature_network(plastic=plastic)
    sim1 = net.build("cpu", threads=1)
    run = sim1.source[sim1.source.index("int32_t sf_run("):]
    assert run[:run.index("\n}")].count("SF_OMP(omp barrier)") == barriers
    state1, spikes1 = run_all(sim1)
    state2, spikes2 = run_all(net.build("cpu", threads=2))
    assert sum(len(s[0]) for s in spikes1.values()) > 100
    for key in state1:
        np.testing.assert_array_equal(state1[key], state2[key], err_msg=key)
    for pop in spikes1:
        for a, b in zip(spikes1[pop], spikes2[pop]):
            np.testing.assert_array_equal(a, b)


def fixed_feature_network():
    return feature_network(sf.Fixed(32, 16))


@pytest.mark.parametrize("make, prefetch", [(cuba_network, False), (coba_network, False),
                                           (stdp_network, False),
                                           (feature_network, False), (feature_network, True),
                                           (fixed_feature_network, False)],
                         ids=["cuba", "coba", "stdp", "features", "features-prefetch",
                              "features-fixed"])
def test_generated_c_compiles_without_warnings(make, prefetch, tmp_path, monkeypatch):
    if prefetch:
        from spikeforge.backends.cstyle import layout
        monkeypatch.setattr(layout, "PREFETCH_FROM", 0)
    net = make(n=200) if make in (cuba_network, coba_network) else make()
    sim = net.build("cpu", record_vars=[f"{net.populations[-1].name}.v"])
    assert ("__builtin_prefetch" in sim.source) == prefetch
    src = tmp_path / "net.c"
    src.write_text(sim.source)
    cmd = [runtime.compiler(), "-O2", "-std=c11", "-Wall", "-Wextra", "-fPIC", "-shared",
           *runtime.openmp_flags(runtime.compiler()), f"-I{runtime.INCLUDE_DIR}", str(src),
           "-o", str(tmp_path / "net.so")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


SANITIZER_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    from test_cpu import feature_network
    from spikeforge.backends.cstyle import layout
    flags = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
             "-fno-omit-frame-pointer")
    for prefetch_from in (layout.PREFETCH_FROM, 0):  # then with ring prefetch
        layout.PREFETCH_FROM = prefetch_from
        sim = feature_network().build("cpu", threads=1, opt="-O1", extra_flags=flags)
        assert ("__builtin_prefetch" in sim.source) == (prefetch_from == 0)
        sim.run(steps=150, progress=False)
        sim.custom_update("total")
        assert all(np.all(np.isfinite(v)) for v in sim.state.values())
    print("sanitized run ok")
""")


def test_runs_clean_under_address_and_undefined_sanitizers(tmp_path):
    asan = subprocess.run([runtime.compiler(), "-print-file-name=libasan.so"],
                          capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(asan) or not Path(asan).exists():
        pytest.skip("AddressSanitizer runtime (libasan.so) not installed")
    env = {**os.environ, "LD_PRELOAD": asan, "ASAN_OPTIONS": "detect_leaks=0",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
           "SPIKEFORGE_CACHE_DIR": str(tmp_path)}
    script = SANITIZER_SCRIPT.format(tests=str(Path(__file__).parent))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "sanitized run ok" in result.stdout
    assert "runtime error" not in result.stderr


BUILD_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_cpu import feature_network
    sim = feature_network().build("cpu")
    sim.run(steps=20, progress=False)
    print(sim.library_path)
""")


def test_concurrent_builds_of_one_network_both_succeed(tmp_path):
    env = {**os.environ, "SPIKEFORGE_CACHE_DIR": str(tmp_path)}
    script = BUILD_SCRIPT.format(tests=str(Path(__file__).parent))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    paths = {o[0].strip() for o in outputs}
    assert len(paths) == 1 and Path(paths.pop()).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp")]


def test_cache_is_reused_and_keyed_by_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_CACHE_DIR", str(tmp_path))
    net = stdp_network()
    a, b = net.build("cpu"), net.build("cpu")
    c = net.build("cpu", opt="-O1")
    assert a.library_path == b.library_path != c.library_path
    assert len(list(tmp_path.glob("sf_*.so"))) == 2


def test_networks_differing_only_in_values_share_one_library(tmp_path, monkeypatch):
    """Params, weights, initial values and the connectivity draw (seed) are data,
    not source: one compiled library serves them all, and each still runs with
    its own values (same results as numpy)."""
    monkeypatch.setenv("SPIKEFORGE_CACHE_DIR", str(tmp_path))
    def variant(seed, tau_m, w):
        net = sf.NetworkBuilder(dt=0.1, seed=seed)
        lif = dict(C=20.0, tau_m=tau_m, v_rest=-49.0, v_reset=-60.0, v_thresh=-50.0,
                   i_offset=0.0, tau_refrac=5.0)
        net.population("E", sf.LIF, 150, params=lif, init={"v": sf.Uniform(-60.0, -50.0)})
        net.connect("E", "E", sf.FixedProbability(0.1), w=w, postsynaptic=sf.ExpCurr,
                    ps_params={"tau": tau_m / 4})
        return net.network()

    variants = [variant(1, 20.0, 1.6), variant(2, 20.0, 1.6), variant(3, 12.0, 0.7)]
    sims = [net.build("cpu") for net in variants]
    assert len({sim.library_path for sim in sims}) == 1
    assert len(list(tmp_path.glob("sf_*.so"))) == 1
    for net, sim in zip(variants, sims):
        ref = net.build("numpy")
        sim.run(steps=200)
        ref.run(steps=200)
        np.testing.assert_allclose(sim.get("E.v"), ref.get("E.v"), rtol=0, atol=1e-4)


def test_missing_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CC", "/nonexistent/cc")
    ok, reason = sf.registry.get_backend("cpu").availability()
    assert not ok and "no C compiler found" in reason and "apt-get install gcc" in reason
    with pytest.raises(RuntimeError, match="cpu.*no C compiler found"):
        stdp_network().build("cpu")


def test_user_text_never_reaches_the_compiler():
    marker = "zz_user_marker"
    model = sf.NeuronModel("Marked", params=("tau",), vars=(sf.Var("v", default=0.0),),
                           sim=f"v = v * 0.5 + i_syn  # {marker} }} system(\"x\"); {{")
    net = sf.NetworkBuilder()
    net.population("A", model, 3, params={"tau": 1.0})
    source = net.build("cpu").source
    assert marker not in source and "system" not in source
    assert "u_v = ((u_v * 0x1.0000000000000p-1f) + u_i_syn);" in source


def test_bad_threads_option():
    with pytest.raises(ValueError, match="threads must be a positive int"):
        stdp_network().build("cpu", threads=0)


def test_small_networks_get_fewer_threads_than_asked(monkeypatch):
    from spikeforge.backends.cpu.simulation import team_size

    net = cuba_network(n=400)
    assert [team_size(t, net, 0) for t in (1, 2, 8)] == [1, 2, 8]
    assert [team_size(t, net, 150) for t in (1, 2, 8)] == [1, 2, 2]
    assert team_size(4, net, 1000) == 1
    monkeypatch.delenv("SPIKEFORGE_PARALLEL_GRAIN")
    sim = net.build("cpu", threads=2)
    assert (sim.threads, sim.team) == (2, 1)  # 400 neurons: below the default grain
    assert net.build("cpu", threads=2, parallel_grain=200).team == 2
    with pytest.raises(ValueError, match="parallel_grain must be an int >= 0"):
        net.build("cpu", parallel_grain=-1)


def test_default_thread_count_is_one_unless_omp_num_threads_says(monkeypatch):
    from spikeforge.backends.cpu.simulation import default_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == 1 and stdp_network().build("cpu").threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert default_threads() == 2 and stdp_network().build("cpu").threads == 2
    assert stdp_network().build("cpu", threads=3).threads == 3
