"""The ``spikeforge`` command line, the example model files and the plots."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikeforge as sf
from spikeforge import plot
from spikeforge.cli import main
from spikeforge.demos import CUBA_WE, CUBA_WI, coba_network, cuba_network, stdp_network

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _direct_run(network, backend, duration_ms):
    sim = network.build(backend=backend)
    sim.run(duration_ms=duration_ms, progress=False)
    return sim


def _spikes3(sim, pop):
    entry = sim.spikes(pop)
    batch = entry[2] if len(entry) > 2 else np.zeros(len(entry[1]), dtype=np.int64)
    return entry[0], entry[1], batch


def _table_rows(text: str) -> dict:
    """population -> (size, spikes, rate) from the printed rates table."""
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("population"))
    rows = {}
    for line in lines[start + 1:]:
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            break
        rows[parts[0]] = (int(parts[1]), int(parts[2]), float(parts[3]))
    return rows


# info ------------------------------------------------------------------------
def test_info_lists_versions_and_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"numpy      {np.__version__}" in out
    assert f"spikeforge {sf.__version__}" in out
    for status in sf.available():
        assert status.name in out
    assert any(line.split()[:2] == ["numpy", "available"] for line in out.splitlines())


def test_info_through_python_m():
    result = subprocess.run([sys.executable, "-m", "spikeforge.cli", "info"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "numpy" in result.stdout and "backends:" in result.stdout


# run -------------------------------------------------------------------------
def test_run_stdp_example_matches_direct_run(tmp_path, capsys, backend):
    model = EXAMPLES / "stdp.json"
    out = tmp_path / "out"
    code = main(["run", str(model), "--backend", backend, "--duration-ms", "200",
                 "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    sim = _direct_run(sf.load(model), backend, 200.0)
    rates = json.loads((out / "rates.json").read_text())
    assert rates["duration_ms"] == pytest.approx(200.0)
    assert rates["backend"] == backend and rates["batch_size"] == 1
    table = _table_rows(printed)
    spikes = np.load(out / "spikes.npz")
    assert set(rates["populations"]) == {"In", "Out"} == set(table)
    for pop, entry in rates["populations"].items():
        times, ids, batch = _spikes3(sim, pop)
        size = sim.network.population(pop).size
        assert entry["spikes"] == len(times) and entry["size"] == size
        assert entry["rate_hz"] == pytest.approx(len(times) / (size * 0.2))
        assert table[pop][:2] == (size, len(times))
        assert table[pop][2] == pytest.approx(entry["rate_hz"], abs=1e-3)
        np.testing.assert_array_equal(spikes[f"{pop}.times_ms"], times)
        np.testing.assert_array_equal(spikes[f"{pop}.ids"], ids)
        np.testing.assert_array_equal(spikes[f"{pop}.batch"], batch)
    assert rates["populations"]["Out"]["spikes"] > 0, "example should make the LIFs fire"
    if plot.have_matplotlib():
        assert (out / "raster.png").read_bytes()[:8] == PNG_MAGIC


def test_run_seed_overrides_network_seed(tmp_path):
    model = EXAMPLES / "stdp.json"
    for seed in (1, 7):
        assert main(["run", str(model), "--duration-ms", "30", "--seed", str(seed),
                     "--out", str(tmp_path / str(seed)), "--no-progress"]) == 0
    net = sf.load(model)
    assert net.seed == 1
    sim = _direct_run(dataclasses.replace(net, seed=7), "numpy", 30.0)
    rates = json.loads((tmp_path / "7" / "rates.json").read_text())
    assert rates["seed"] == 7
    spikes = np.load(tmp_path / "7" / "spikes.npz")
    np.testing.assert_array_equal(spikes["In.ids"], sim.spikes("In")[1])
    other = np.load(tmp_path / "1" / "spikes.npz")
    assert not np.array_equal(spikes["In.ids"], other["In.ids"])


def test_run_cuba_example_prints_table_without_out(capsys):
    assert main(["run", str(EXAMPLES / "cuba.json"), "--duration-ms", "5", "--no-progress"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert rows["E"][0] == 3200 and rows["I"][0] == 800


# demo ------------------------------------------------------------------------
def test_demo_short_prints_rates_of_the_microcircuit(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--duration-ms", "50", "--out", str(out), "--no-progress"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    pops = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")
    assert set(rows) == set(pops)
    assert [rows[p][0] for p in pops] == [2068, 583, 2192, 548, 485, 106, 1440, 295]
    assert sum(rows[p][1] for p in pops) > 0
    rates = json.loads((out / "rates.json").read_text())
    assert rates["model"] == "demo:microcircuit"
    assert rates["populations"]["L4E"]["spikes"] == rows["L4E"][1]
    if plot.have_matplotlib():
        for name in ("raster.png", "rates.png"):
            assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_cuba_network_is_the_benchmark():
    net = cuba_network()
    assert [(p.name, p.size) for p in net.populations] == [("E", 3200), ("I", 800)]
    assert CUBA_WE == pytest.approx(1.62) and CUBA_WI == pytest.approx(-9.0)
    lif = net.population("E").params
    assert (lif["C"], lif["tau_m"], lif["v_rest"], lif["v_thresh"], lif["v_reset"],
            lif["tau_refrac"]) == (20.0, 20.0, -49.0, -50.0, -60.0, 5.0)
    taus = {(p.pre, p.post): (p.connectivity.p, p.ps_params["tau"]) for p in net.projections}
    assert taus == {("E", "E"): (0.02, 5.0), ("E", "I"): (0.02, 5.0),
                    ("I", "E"): (0.02, 10.0), ("I", "I"): (0.02, 10.0)}


def test_coba_network_is_benchmark_one_of_brette_2007():
    net = coba_network()
    assert [(p.name, p.size) for p in net.populations] == [("E", 3200), ("I", 800)]
    lif = net.population("E").params
    assert (lif["C"], lif["tau_m"], lif["v_rest"], lif["v_thresh"], lif["v_reset"],
            lif["tau_refrac"]) == (0.2, 20.0, -60.0, -50.0, -60.0, 5.0)  # g_L = 10 nS
    assert net.population("I").init["v"] == sf.Normal(-65.0, 5.0)
    syn = {(p.pre, p.post): (p.connectivity.p, p.postsynaptic.name, p.ps_params["tau"],
                             p.ps_params["E_rev"], p.wu_init["w"].value,
                             type(p.ps_init["g"]), p.ps_init["g"].mean, p.ps_init["g"].sd)
           for p in net.projections}
    uS = pytest.approx  # conductances in uS: 6 nS, 67 nS; initial g ~ N(4, 1.5) and N(20, 12) g_L
    exc = (0.02, "ExpCond", 5.0, 0.0, uS(0.006), sf.Normal, uS(0.04), uS(0.015))
    inh = (0.02, "ExpCond", 10.0, -80.0, uS(0.067), sf.Normal, uS(0.2), uS(0.12))
    assert syn == {("E", "E"): exc, ("E", "I"): exc, ("I", "E"): inh, ("I", "I"): inh}


def test_coba_activity_is_self_sustained_at_the_benchmark_rate():
    """Brian2 2.11 (Euler or exponential Euler) gives 18.9-21.0 Hz for E and I
    (BENCHMARKS.md, COBA); without the conductances' reversal potentials the network
    would be silent (no external input) or explode."""
    rates = _load_script("coba").main(["--backend", "cpu", "--duration-ms", "1000"])
    assert 16.0 < rates["E"] < 24.0 and 16.0 < rates["I"] < 24.0, rates


# errors ----------------------------------------------------------------------
def test_missing_model_file_is_a_clear_error(tmp_path, capsys):
    code = main(["run", str(tmp_path / "nope.json"), "--duration-ms", "10"])
    err = capsys.readouterr().err
    assert code != 0
    assert "model file not found" in err and "nope.json" in err
    assert "Traceback" not in err


def test_unknown_backend_is_a_clear_error(capsys):
    code = main(["run", str(EXAMPLES / "stdp.json"), "--backend", "warp9", "--duration-ms", "10"])
    err = capsys.readouterr().err
    assert code != 0
    assert "unknown backend 'warp9'" in err and "numpy" in err
    assert "Traceback" not in err
    assert main(["demo", "--backend", "warp9", "--duration-ms", "1"]) != 0


def test_bad_model_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code = main(["run", str(bad), "--duration-ms", "10"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("spikeforge: error:") and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    assert main(["run", str(EXAMPLES / "stdp.json"), "--duration-ms", "-5"]) == 2
    assert main(["run", str(EXAMPLES / "stdp.json")]) == 2
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_errors_through_python_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "spikeforge.cli", "run",
                             str(tmp_path / "missing.json"), "--duration-ms", "1"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "model file not found" in result.stderr and "Traceback" not in result.stderr


# plots -----------------------------------------------------------------------
def _small_sim():
    net = sf.NetworkBuilder(dt=1.0, seed=3)
    net.population("P", sf.PoissonSource, 20, params={"rate": 200.0})
    return _direct_run(net.network(), "numpy", 50.0)


def test_plots_skipped_without_matplotlib(tmp_path, capsys, monkeypatch):
    from spikeforge.cli import rates_report, write_outputs

    monkeypatch.setattr(plot, "have_matplotlib", lambda: False)
    sim = _small_sim()
    written = write_outputs(sim, rates_report(sim), tmp_path, bar=True)
    assert "raster plot skipped: install spikeforge[plot]" in capsys.readouterr().err
    assert sorted(p.name for p in written) == ["rates.json", "spikes.npz"]
    assert not (tmp_path / "raster.png").exists()
    with pytest.raises(ImportError, match=r"spikeforge\[plot\]"):
        plot.raster(sim, None, tmp_path / "r.png")


def test_plot_functions_from_python(tmp_path):
    pytest.importorskip("matplotlib")
    sim = _small_sim()
    times, ids = sim.spikes("P")
    assert len(times) > 0
    for source in (sim, {"P": (times, ids)}):
        path = plot.raster(source, ["P"], tmp_path / "raster.png", title="P")
        assert path.read_bytes()[:8] == PNG_MAGIC
        path.unlink()
    path = plot.rates_bar({"E": 5.0, "I": {"rate_hz": 7.5}}, tmp_path / "sub" / "bar.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="no populations"):
        plot.raster({}, None, tmp_path / "empty.png")


# example files and scripts ---------------------------------------------------
def test_make_examples_regenerates_committed_files(tmp_path):
    written = _load_script("make_examples").main(tmp_path)
    assert {p.name for p in written} >= {"cuba.json", "coba.json", "stdp.json"}
    for fresh in sorted(tmp_path.iterdir()):
        committed = EXAMPLES / fresh.name
        assert committed.exists(), f"examples/{fresh.name} is not committed"
        if fresh.suffix == ".npz":
            new, old = np.load(fresh), np.load(committed)
            assert sorted(new.files) == sorted(old.files)
            for key in new.files:
                np.testing.assert_array_equal(new[key], old[key])
        else:
            assert fresh.read_bytes() == committed.read_bytes(), f"examples/{fresh.name} is stale"


def test_example_files_equal_their_builders():
    assert sf.load(EXAMPLES / "cuba.json") == cuba_network()
    assert sf.load(EXAMPLES / "coba.json") == coba_network()
    assert sf.load(EXAMPLES / "stdp.json") == stdp_network()


def test_example_scripts_use_the_same_networks():
    assert _load_script("cuba").cuba_network is cuba_network
    assert _load_script("coba").coba_network is coba_network
    stdp = _load_script("stdp")
    assert stdp.stdp_network() == stdp_network()
    before, after = stdp.main(["--duration-ms", "250"])
    assert before.shape == after.shape == (1000,)
    assert not np.array_equal(before, after), "STDP should change some weights"
    assert after.min() >= 0.0 and after.max() <= 0.3 + 1e-6
