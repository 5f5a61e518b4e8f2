"""The bitstream project tool: testbench (g++ against the C-simulation source),
golden tcl/pragma/hwh output for two boards, atomic writing, tool orchestration
and the ``spikeforge fpga`` command line.

Golden files live in tests/golden/fpga/<board>/; after an intended change of
the generated scripts or of the accelerator's ports, regenerate them with::

    SPIKEFORGE_REGEN_GOLDEN=1 python -m pytest -q tests/test_fpga_project.py -k golden

and review the diff (``git diff tests/golden/fpga``) before committing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spikeforge as sf
from spikeforge.backends.fpga import project, tcl
from spikeforge.backends.fpga import testbench as TB
from spikeforge.cli import main

GOLDEN = Path(__file__).parent / "golden" / "fpga"
REGEN = os.environ.get("SPIKEFORGE_REGEN_GOLDEN") == "1"
GOLDEN_BOARDS = ("pynq-z2", "u250")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

LIF = dict(C=1.0, tau_m=20.0, v_rest=-49.0, v_reset=-60.0, v_thresh=-50.0, i_offset=0.3,
           tau_refrac=2.0)


def small_network(fixed=True, seed=7):
    """24 LIF + 8 Poisson, recurrent with axonal delay: spikes within 60 steps."""
    net = sf.NetworkBuilder(dt=0.1, batch_size=1, seed=seed,
                            precision=sf.Fixed(32, 16) if fixed else "float32")
    net.population("E", sf.LIF, 24, params=LIF, init={"v": sf.Uniform(-60, -50)})
    net.population("P", sf.PoissonSource, 8, params={"rate": 200.0})
    net.connect("E", "E", sf.FixedProbability(0.2), w=0.4, postsynaptic=sf.ExpCurr,
                ps_params={"tau": 5.0}, delay=2)
    net.connect("P", "E", sf.FixedProbability(0.5), w=1.5, postsynaptic=sf.ExpCurr,
                ps_params={"tau": 2.0})
    return net.network()


def huge_network():
    """Dense 2000 x 2000 float32 weights: 16 MB, far beyond a PYNQ-Z2's 560 KB of BRAM."""
    net = sf.NetworkBuilder(dt=0.1, seed=1)
    net.population("A", sf.LIF, 2000, params=LIF, init={"v": -55.0})
    net.connect("A", "A", sf.Dense(), w=0.01, postsynaptic=sf.ExpCurr, ps_params={"tau": 5.0})
    return net.network()


# the testbench ------------------------------------------------------------------------------
def _build_testbench(tmp_path, program, gold, name="tb"):
    from spikeforge.hls import include_dirs

    src, tb, exe = tmp_path / "sf_top.cpp", tmp_path / f"{name}.cpp", tmp_path / name
    src.write_text(program.render())
    tb.write_text(TB.render(program, gold))
    cmd = ["g++", *project.CXXFLAGS.split()[:-1], *(f"-I{d}" for d in include_dirs()),
           str(src), str(tb), "-o", str(exe), "-lm"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return subprocess.run([str(exe)], capture_output=True, text=True, check=False)


@needs_gxx
def test_testbench_passes_and_catches_a_corrupted_vector(tmp_path):
    program = project.make_program(small_network(), project.find_board("pynq-z2"),
                                   steps_per_call=16, record_vars=("E.v",))
    gold = TB.golden(program, 60)
    spikes = gold.rows[next(p.name for p in program.ports if p.key == "rec_spikes:E")]
    assert spikes.sum() > 0 and len(gold.calls) == 4 and gold.exact
    ok = _build_testbench(tmp_path, program, gold)
    assert ok.returncode == 0, ok.stdout
    assert "PASS: 60 steps, 4 call(s), bit-exact" in ok.stdout
    step, batch, neuron = np.argwhere(spikes > 0)[-1]
    spikes[step, batch, neuron] = 0  # drop one spike of the reference
    bad = _build_testbench(tmp_path, program, gold, "tb_bad")
    assert bad.returncode == 1, bad.stdout
    assert "MISMATCH rec_spikes:E (call" in bad.stdout and "FAIL: 1 mismatching" in bad.stdout


@needs_gxx
def test_testbench_checks_final_state_and_float_networks(tmp_path):
    program = project.make_program(small_network(fixed=False), project.find_board("pynq-z2"),
                                   steps_per_call=25)
    gold = TB.golden(program, 30)
    assert not gold.exact and [c for c in gold.calls] == [(0, 25), (25, 5)]
    assert _build_testbench(tmp_path, program, gold).returncode == 0
    v = next(p.name for p in program.ports if p.key == "state:E.v")
    gold.final[v][0, 3] += 0.5  # far outside the float tolerance
    bad = _build_testbench(tmp_path, program, gold, "tb_bad")
    assert bad.returncode == 1 and "state:E.v (final)" in bad.stdout


@needs_gxx
def test_testbench_batch_plasticity_and_noise(tmp_path):
    """Batch 2, STDP, procedural connectivity, normal() draws: still bit-exact."""
    net = sf.NetworkBuilder(dt=0.1, batch_size=2, seed=11, precision=sf.Fixed(32, 16))
    net.population("P", sf.PoissonSource, 20, params={"rate": 400.0})
    net.population("N", sf.LIF, 16, params=dict(LIF, v_rest=0.0, v_reset=0.0, v_thresh=1.0,
                                                    i_offset=0.0), init={"v": sf.Uniform(0.0, 1.0)})
    stdp = dict(tau_plus=10.0, tau_minus=10.0, a_plus=0.01, a_minus=0.012, w_min=0.0, w_max=0.5)
    net.connect("P", "N", sf.FixedProbability(0.3), weight_update=sf.STDP, wu_params=stdp,
                w=sf.Uniform(0.0, 0.3), postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0}, delay=2)
    net.connect("N", "N", sf.FixedNumberPost(3, procedural=True), name="rec", w=-0.1, delay=1)
    net.current_source("noise", sf.GaussianNoise, "N", params={"mean": 0.05, "sd": 0.1})
    program = project.make_program(net.network(), project.find_board("zcu104"),
                                   steps_per_call=7, record_vars=("N.v",))
    gold = TB.golden(program, 40)
    assert gold.rows[next(p.name for p in program.ports if p.key == "rec_spikes:N")].sum() > 0
    result = _build_testbench(tmp_path, program, gold)
    assert result.returncode == 0 and "PASS: 40 steps, 6 call(s), bit-exact" in result.stdout


def test_testbench_rejects_bad_steps():
    program = project.make_program(small_network(), project.find_board("pynq-z2"))
    with pytest.raises(ValueError, match="steps must be a positive int"):
        TB.golden(program, 0)


# golden tcl, pragmas and hardware handoff ------------------------------------------------------
def generated(board_name: str) -> dict[str, str]:
    board = project.find_board(board_name)
    program = project.make_program(small_network(), board, steps_per_call=32,
                                   record_vars=("E.v",))
    files = {"run_hls.tcl": tcl.hls_tcl(board), "hls_config.cfg": tcl.hls_config(board),
             "pragmas.txt": "\n".join(program.pragmas) + "\n"}
    files.update({k.replace("overlay/", ""): v for k, v in project.board_files(program, board).items()})
    return files


@pytest.mark.parametrize("board_name", GOLDEN_BOARDS)
def test_golden_scripts(board_name):
    folder = GOLDEN / board_name
    files = generated(board_name)
    if REGEN:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
    stored = sorted(p.name for p in folder.iterdir())
    assert stored == sorted(files), "golden files differ in name: regenerate (see module doc)"
    for name, text in files.items():
        assert text == (folder / name).read_text(), (
            f"{board_name}/{name} differs from the golden file; if intended, regenerate "
            "with SPIKEFORGE_REGEN_GOLDEN=1 (see the module docstring)")


def test_block_design_connects_every_bundle():
    board = project.find_board("pynq-z2")
    program = project.make_program(small_network(), board)
    text = tcl.block_design_tcl(board, program.ports)
    for bundle in tcl.bundles(program.ports):
        assert f"Master {{/{tcl.INSTANCE}/m_axi_{bundle}}}" in text
    assert "Master {/ps/M_AXI_GP0} Slave {/sf_top_0/s_axi_control}" in text
    assert "CONFIG.PCW_USE_S_AXI_HP0 {1}" in text and "net.hwh" in text


def test_link_config_places_every_argument():
    board = project.find_board("u250")
    program = project.make_program(small_network(), board)
    text = tcl.link_config(board, program.ports)
    arrays = [p for p in program.ports if p.kind == "m_axi"]
    lines = [line for line in text.splitlines() if line.startswith("sp=")]
    assert len(lines) == len(arrays)
    assert all(line.split(":")[0] == f"sp=sf_top_1.{p.name}" for line, p in zip(lines, arrays))
    with pytest.raises(tcl.ToolScriptError, match="flow 'zynq'"):
        tcl.block_design_tcl(board, program.ports)


def test_hwh_parses_like_vivado_output():
    """The minimal .hwh is valid XML with the control range and every register."""
    import xml.etree.ElementTree as ET

    board = project.find_board("pynq-z2")
    program = project.make_program(small_network(), board)
    root = ET.fromstring(tcl.hwh(board, program.register_map(), program.ports))
    names = [r.get("NAME") for r in root.iter("REGISTER")]
    assert names == ["CTRL", "GIER", "IP_IER", "IP_ISR", *(p.name for p in program.ports)]
    memrange = next(root.iter("MEMRANGE"))
    assert memrange.get("BASEVALUE") == "0x43c00000" and memrange.get("INSTANCE") == "sf_top_0"


# the scripts run in a real Tcl interpreter, every tool command stubbed -------------------------
TCL_STUB = r"""
proc unknown {args} {
    set fh [open $::calls_file a]
    puts $fh $args
    close $fh
    switch -- [lindex $args 0] {
        get_property { return "100%" }
        make_wrapper { return "net_wrapper.v" }
        default { return "" }
    }
}
set calls_file [lindex $argv 0]
set script [lindex $argv 1]
set argv [lrange $argv 2 end]
set argc [llength $argv]
source $script
"""
needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh not installed")


def run_tcl(folder: Path, script: str, *args) -> list[list[str]]:
    (folder / "stub.tcl").write_text(TCL_STUB)
    calls = folder / "calls.txt"
    calls.write_text("")
    result = subprocess.run(["tclsh", "stub.tcl", str(calls), script, *args], cwd=folder,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line.split() for line in calls.read_text().splitlines()]


@needs_tclsh
def test_hls_script_runs_the_requested_steps(tmp_path):
    (tmp_path / "run_hls.tcl").write_text(tcl.hls_tcl(project.find_board("pynq-z2")))
    every = [c[0] for c in run_tcl(tmp_path, "run_hls.tcl")]
    assert every == ["open_project", "set_top", "add_files", "add_files", "open_solution",
                     "set_part", "create_clock", "csim_design", "csynth_design", "cosim_design",
                     "export_design"]
    some = [c[0] for c in run_tcl(tmp_path, "run_hls.tcl", "csynth", "export")]
    assert some[-2:] == ["csynth_design", "export_design"] and "csim_design" not in some


@needs_tclsh
@pytest.mark.parametrize("board_name", ["pynq-z2", "kv260"])
def test_block_design_script_runs_and_lays_out_the_overlay(tmp_path, board_name):
    board = project.find_board(board_name)
    program = project.make_program(small_network(), board)
    (tmp_path / "build_bd.tcl").write_text(tcl.block_design_tcl(board, program.ports))
    made = {"vivado/sf_vivado.runs/impl_1/net_wrapper.bit": "bit",
            "vivado/sf_vivado.gen/sources_1/bd/net/hw_handoff/net.hwh": "hwh",
            "sf_hls/solution1/impl/misc/drivers/sf_top_v1_0/src/xsf_top_hw.h": "header"}
    for rel, text in made.items():  # what Vivado and Vitis would have written
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    calls = run_tcl(tmp_path, "build_bd.tcl")
    names = [c[0] for c in calls]
    assert names.count("apply_bd_automation") == 2 + len(tcl.bundles(program.ports))
    assert names.index("validate_bd_design") < names.index("launch_runs")
    assert [c for c in calls if c[0] == "create_bd_cell"][1][-1] == tcl.INSTANCE
    for name, text in (("net.bit", "bit"), ("net.hwh", "hwh"), ("xsf_top_hw.h", "header")):
        assert (tmp_path / "overlay" / name).read_text() == text


# writing the project ------------------------------------------------------------------------------
def test_project_layout_and_atomic_replace(tmp_path):
    out = tmp_path / "proj"
    _, files = project.write_project(small_network(), "pynq-z2", out, tb_steps=20)
    names = {str(p.relative_to(out)) for p in files}
    for name in ("sf_top.cpp", "sf_tb.cpp", "run_hls.tcl", "hls_config.cfg", "build_bd.tcl",
                 "csim.sh", "run_all.sh", "estimate.txt", "overlay/model.json", "include/sf_hls.h",
                 "overlay/run_on_board.py",
                 "include/philox.h", "overlay/spikeforge.json", "overlay/xsf_top_hw.h",
                 "overlay/net.expected.hwh"):
        assert name in names, name
    assert os.access(out / "run_all.sh", os.X_OK)
    assert sf.load(out / "overlay" / "model.json") == small_network()
    compile((out / "overlay" / "run_on_board.py").read_text(), "run_on_board.py", "exec")
    with pytest.raises(project.ProjectError, match="not empty"):
        project.write_project(small_network(), "pynq-z2", out)
    (out / "stale.txt").write_text("x")
    project.write_project(small_network(), "u250", out, force=True, tb_steps=20)
    assert not (out / "stale.txt").exists() and (out / "link.cfg").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no temp dirs left


def test_network_that_does_not_fit_writes_nothing(tmp_path):
    from spikeforge.backends.fpga.estimate import DoesNotFit

    with pytest.raises(DoesNotFit):
        project.write_project(huge_network(), "pynq-z2", tmp_path / "big")
    assert list(tmp_path.iterdir()) == []


FAKE_VITIS = """#!/bin/sh
# stands in for vitis_hls / vitis-run: checks its arguments, writes a csynth report
[ "$*" = "{argv}" ] && [ -f run_hls.tcl ] || exit 3
mkdir -p sf_hls/solution1/syn/report
cp "{sample}" sf_hls/solution1/syn/report/csynth.xml
"""
FAKE_VIVADO = """#!/bin/sh
[ "$4" = "build_bd.tcl" ] && [ -f build_bd.tcl ] || exit 3
mkdir -p overlay && echo bit > overlay/net.bit && echo hwh > overlay/net.hwh
"""


@needs_gxx
@pytest.mark.parametrize("hls_tool, argv", [("vitis_hls", "-f run_hls.tcl"),
                                            ("vitis-run", "--mode hls --tcl run_hls.tcl")])
def test_run_tools_runs_each_step_and_parses_csynth(tmp_path, monkeypatch, hls_tool, argv):
    if shutil.which("vitis_hls") or shutil.which("vitis-run"):
        pytest.skip("real Xilinx tools on PATH")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    vitis = FAKE_VITIS.format(sample=GOLDEN / "csynth_sample.xml", argv=argv)
    for name, text in ((hls_tool, vitis), ("vivado", FAKE_VIVADO)):
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    out, _ = project.write_project(small_network(), "pynq-z2", tmp_path / "p", tb_steps=20)
    result = project.run_tools(out, "pynq-z2", log=lambda *_: None)
    assert result["ran"] == ["g++", "vitis_hls", "vivado"] and result["skipped"] == []
    assert "PASS" in (out / "csim.log").read_text()
    assert result["csynth"]["resources"]["BRAM_18K"] == 12
    assert result["csynth"]["loops"]["VITIS_LOOP_12_1"]["ii"] == 1
    assert (out / "overlay" / "net.bit").is_file()


def test_instructions_name_the_missing_tools(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tools at all
    text = project.instructions(tmp_path / "p", project.find_board("u250"))
    assert "(needs vitis_hls on PATH)" in text and "(needs v++ on PATH)" in text
    assert "v++ -l -t hw --platform" in text


# the command line -------------------------------------------------------------------------------
@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.json"
    small_network().save(path)
    return path


def test_cli_estimate_prints_a_table(model, capsys):
    assert main(["fpga", "estimate", str(model), "--board", "pynq-z2"]) == 0
    out = capsys.readouterr().out
    assert "BRAM" in out and "state:E.v" in out


def test_cli_estimate_and_build_fail_for_a_network_that_does_not_fit(tmp_path, capsys):
    path = tmp_path / "big.json"
    huge_network().save(path)
    assert main(["fpga", "estimate", str(path), "--board", "pynq-z2"]) == 1
    assert "does not fit pynq-z2" in capsys.readouterr().out
    assert main(["fpga", "build", str(path), "--board", "pynq-z2", "--out",
                 str(tmp_path / "o")]) == 1
    assert "spikeforge: error:" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_build_writes_the_project(model, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["fpga", "build", str(model), "--board", "pynq-z2", "--out", str(out),
            "--steps-per-call", "8", "--tb-steps", "20", "--no-run"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"files to {out}" in text and "./run_all.sh" in text
    assert "vivado -mode batch -source build_bd.tcl" in text
    assert (out / "build_bd.tcl").is_file() and (out / "sf_tb.cpp").is_file()


def test_cli_rejects_unknown_board(model, capsys):
    assert main(["fpga", "estimate", str(model), "--board", "nope"]) == 1
    assert "unknown board 'nope'" in capsys.readouterr().err


@needs_gxx
def test_cli_build_runs_the_testbench_when_gxx_is_here(model, tmp_path, capsys, monkeypatch):
    gxx = Path(shutil.which("g++")).parent
    monkeypatch.setenv("PATH", os.pathsep.join([str(gxx), "/usr/bin", "/bin"]))
    if shutil.which("vitis_hls"):
        pytest.skip("Xilinx tools on PATH: this test checks the g++-only path")
    out = tmp_path / "o"
    assert main(["fpga", "build", str(model), "--board", "pynq-z2", "--out", str(out),
                 "--tb-steps", "20"]) == 0
    text = capsys.readouterr().out
    assert "ran: g++" in text and "(needs vitis_hls on PATH)" in text
    assert "PASS" in (out / "csim.log").read_text()


def test_module_runs_as_script():
    result = subprocess.run([sys.executable, "-m", "spikeforge.cli", "fpga", "--help"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "estimate" in result.stdout


# the PYNQ runtime's pure parts (the driver itself: tests/test_fpga_pynq.py) -----------------------
def test_register_header_round_trip():
    from spikeforge.backends.fpga.pynq_runtime import parse_register_header, register_offsets

    program = project.make_program(small_network(), project.find_board("pynq-z2"))
    table = parse_register_header(program.register_header())
    assert table["AP_CTRL"] == (0, 32) and table["ISR"] == (0x0C, 32)
    offsets = register_offsets(program, program.register_header())
    assert [(n, *offsets[n]) for n, _, _ in program.register_map()] == program.register_map()
    vitis_style = "#define XSF_TOP_CONTROL_ADDR_AP_CTRL 0x00\n#define XSF_TOP_CONTROL_ADDR_X_DATA 0x10\n"
    from spikeforge.backends.fpga.pynq_runtime import PynqRuntimeError

    with pytest.raises(PynqRuntimeError, match="no register for"):
        register_offsets(program, vitis_style)


def test_board_build_without_pynq_says_how_to_install(tmp_path):
    try:
        import pynq  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pynq is installed: tests/test_fpga_pynq.py covers the runtime")
    (tmp_path / "net.bit").write_bytes(b"x")
    with pytest.raises(ImportError, match=r"spikeforge\[fpga\]"):
        small_network().build("fpga", bitstream=str(tmp_path / "net.bit"))
