"""The bitstream project writer: one network + one board -> a complete Xilinx project.

``write_project(network, board, out)`` checks the resource estimate first (a
network that does not fit raises ``DoesNotFit`` before anything is written),
renders everything into a temporary directory next to ``out`` and renames it
into place, so ``out`` is either complete or untouched. Layout of ``out``::

    sf_top.cpp            the accelerator (FpgaProgram.render())
    include/              the hls/ headers and philox.h it includes
    sf_tb.cpp             testbench, golden vectors from numpy (testbench.py)
    run_hls.tcl           vitis_hls: csim, csynth, cosim, export (tcl.py)
    hls_config.cfg        the same for the unified flow (v++ -c --mode hls / vitis-run)
    build_bd.tcl          Zynq boards: Vivado block design -> overlay/net.bit + net.hwh
    link.cfg              Alveo: v++ link configuration -> overlay/net.xclbin
    csim.sh               g++ build + run of the testbench (no Xilinx tools needed)
    run_all.sh            every step in order
    estimate.txt          the resource estimate
    overlay/model.json (+ .npz)  the network, to rebuild the same program on the board
    overlay/run_on_board.py   runs it there: build(backend="fpga", bitstream=...) with
                              the recorded options, prints spike counts
    overlay/spikeforge.json   driver config: ports, register offsets, options, source hash
    overlay/xsf_top_hw.h      register map (replaced by Vitis's own after export)
    overlay/net.expected.hwh  the minimal hardware handoff PYNQ needs (documentation;
                              Vivado writes the real overlay/net.hwh)

``run_tools(out, board)`` runs the steps whose tools are on PATH and returns
the synthesis summary parsed from the csynth report (``parse_csynth``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from spikeforge.prepare import prepare

from . import tcl
from . import testbench as TB

CSYNTH_REPORTS = ("sf_hls/solution1/syn/report/csynth.xml", "sf_hls/hls/syn/report/csynth.xml",
                  "sf_hls/syn/report/csynth.xml")
ALTERNATIVES = {"vitis_hls": ["vitis-run", "--mode", "hls", "--tcl", "run_hls.tcl"]}
LOGS = {"g++": "csim.log", "vitis_hls": "vitis_hls.log", "vivado": "vivado.log",
        "v++": "vpp_link.log"}
CXXFLAGS = "-std=gnu++14 -O1 -fwrapv -ffp-contract=off -Wno-unknown-pragmas -I./include"


class ProjectError(RuntimeError):
    """The project could not be written or a tool step failed (names which)."""


def find_board(board):
    from .boards import board as lookup

    return lookup(board)


def make_program(network, board, steps_per_call=None, record_spikes=None, record_vars=(),
                 onchip="all"):
    from .program import FpgaProgram

    spiking = [p.name for p in network.populations if p.model.spiking]
    spikes = tuple(spiking if record_spikes is None else record_spikes)
    return FpgaProgram(prepare(network), spikes, tuple(record_vars), steps_per_call,
                       onchip=onchip, board=board)


def source_hash(program) -> str:
    return hashlib.sha256(program.render().encode()).hexdigest()


# the files ------------------------------------------------------------------------------
def driver_config(program, board, options: dict) -> dict:
    """overlay/spikeforge.json: what a host needs to drive the IP, and what to check."""
    offsets = {name: (offset, bits) for name, offset, bits in program.register_map()}
    ports = [{"name": p.name, "kind": p.kind, "ctype": p.ctype, "shape": list(p.shape),
              "bundle": p.bundle, "role": p.role, "key": p.key,
              "offset": offsets[p.name][0], "bits": offsets[p.name][1]} for p in program.ports]
    return {"format": "spikeforge-fpga-driver", "version": 1, "top": program.top,
            "ip_vlnv": tcl.IP_VLNV, "instance": tcl.INSTANCE, "board": board.name,
            "part": board.part, "flow": board.flow, "clock_mhz": float(board.clock_mhz),
            "bitstream": "net.xclbin" if board.flow == "alveo" else "net.bit",
            "source_sha256": source_hash(program), "options": options,
            "control_base": tcl.CONTROL_BASE.get(board.ps), "ports": ports}


def hls_files(program, board, gold) -> dict[str, str]:
    from spikeforge.hls import headers

    files = {"sf_top.cpp": program.render(), "sf_tb.cpp": TB.render(program, gold),
             "run_hls.tcl": tcl.hls_tcl(board), "hls_config.cfg": tcl.hls_config(board)}
    files.update({f"include/{name}": text for name, text in headers().items()})
    return files


def board_files(program, board) -> dict[str, str]:
    if board.flow == "alveo":
        return {"link.cfg": tcl.link_config(board, program.ports)}
    hwh = tcl.hwh(board, program.register_map(), program.ports)
    return {"build_bd.tcl": tcl.block_design_tcl(board, program.ports),
            "overlay/net.expected.hwh": hwh}


def commands(board) -> list[tuple[str, list[str]]]:
    """(tool, argv) of every step, run in the project directory."""
    steps = [("g++", ["sh", "csim.sh"]), ("vitis_hls", ["vitis_hls", "-f", "run_hls.tcl"])]
    if board.flow == "alveo":
        steps.append(("v++", tcl.link_command(board)))
    else:
        steps.append(("vivado", ["vivado", "-mode", "batch", "-source", "build_bd.tcl"]))
    return steps


def scripts(board) -> dict[str, str]:
    csim = ("#!/bin/sh\n# C simulation of the accelerator against the numpy golden vectors "
            "(plain g++, no Xilinx tools)\nset -e\ncd \"$(dirname \"$0\")\"\n"
            f"${{CXX:-g++}} {CXXFLAGS} sf_top.cpp sf_tb.cpp -o sf_tb -lm\n./sf_tb\n")
    lines = ["#!/bin/sh", "# Every step of the build, in order (see docs/fpga-build.md).",
             "set -e", 'cd "$(dirname "$0")"', "mkdir -p overlay"]
    for tool, argv in commands(board):
        lines.append(" ".join(shlex.quote(a) for a in argv))
    if board.flow == "alveo":
        lines.append("cp -f sf_hls/solution1/impl/misc/drivers/sf_top_v1_0/src/xsf_top_hw.h "
                     "overlay/ 2>/dev/null || true")
    return {"csim.sh": csim, "run_all.sh": "\n".join(lines) + "\n"}


def render_project(network, board, steps_per_call=None, record_spikes=None, record_vars=(),
                   onchip="all", tb_steps=TB.DEFAULT_STEPS):
    """(program, estimate, {relative path: text}) of the whole project (no I/O)."""
    from .estimate import check, estimate

    board = find_board(board)
    program = make_program(network, board, steps_per_call, record_spikes, record_vars, onchip)
    est = estimate(program, board)
    check(est)
    gold = TB.golden(program, tb_steps)
    options = {"steps_per_call": program.steps_per_call, "record_spikes": list(program.record_spikes),
               "record_vars": list(program.record_vars), "onchip": _jsonable(onchip),
               "board": board.name, "tb_steps": tb_steps}
    files = {**hls_files(program, board, gold), **board_files(program, board), **scripts(board)}
    files["estimate.txt"] = est.table() + "\n"
    files["overlay/run_on_board.py"] = RUN_ON_BOARD
    files["overlay/xsf_top_hw.h"] = program.register_header()
    files["overlay/spikeforge.json"] = json.dumps(driver_config(program, board, options),
                                                  indent=1) + "\n"
    return program, est, files


RUN_ON_BOARD = '''"""Run the network on the board: python3 run_on_board.py [STEPS] (written by spikeforge).

Builds the network with exactly the options the bitstream was made from
(spikeforge.json) and runs it through PYNQ; the same call works in your own code.
"""
import json
import sys
from pathlib import Path

import spikeforge as sf

here = Path(__file__).resolve().parent
config = json.loads((here / "spikeforge.json").read_text())
options = config["options"]
network = sf.load(here / "model.json")
sim = network.build("fpga", record_spikes=options["record_spikes"],
                    record_vars=options["record_vars"], steps_per_call=options["steps_per_call"],
                    onchip=options["onchip"], board=options["board"],
                    bitstream=str(here / config["bitstream"]))
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
sim.run(steps=steps)
for pop in options["record_spikes"]:
    print(f"{pop}: {len(sim.spikes(pop)[0])} spikes in {steps} steps")
'''


def _jsonable(onchip):
    return onchip if isinstance(onchip, str) else sorted(onchip)


def write_project(network, board, out, force=False, **options) -> tuple[Path, list[Path]]:
    """Render and write the project atomically into ``out``; returns (out, files)."""
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise ProjectError(f"fpga build: {out} exists and is not empty (use --force to replace it)")
    _, _, files = render_project(network, board, **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel.endswith(".sh"):
                path.chmod(0o755)
        network.save(tmp / "overlay" / "model.json")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp made it private
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    written = sorted(p for p in out.rglob("*") if p.is_file())
    return out, written


def _replace(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


# running the tools ------------------------------------------------------------------------
def available_tools(board) -> dict[str, str | None]:
    return {tool: shutil.which(tool) for tool, _ in commands(board)}


def instructions(out: Path, board) -> str:
    """Which command to run where, for the steps whose tools are missing here."""
    lines = [f"project written to {out}", "to build the bitstream, run on a machine with "
             "Vitis/Vivado (2022.2 or newer) installed and sourced:",
             f"  cd {out} && ./run_all.sh", "or step by step:"]
    for tool, argv in commands(board):
        where = "here" if shutil.which(tool) else f"needs {tool} on PATH"
        lines.append(f"  ({where}) cd {out} && {' '.join(shlex.quote(a) for a in argv)}")
    product = "net.xclbin" if board.flow == "alveo" else "net.bit + net.hwh"
    lines.append(f"then copy {out}/overlay/ (with {product}) to the board (PYNQ image with "
                 "spikeforge installed) and run: python3 overlay/run_on_board.py [STEPS]")
    return "\n".join(lines)


def run_tools(out, board, log=print) -> dict:
    """Run every step whose tool is on PATH, in order; stop at the first missing
    Xilinx tool. Returns {"ran": [...], "skipped": [...], "csim": the testbench's
    last line or None, "csynth": summary or None}."""
    out, board = Path(out), find_board(board)
    ran, skipped = [], []
    for tool, argv in commands(board):
        if not skipped and not shutil.which(tool) and tool in ALTERNATIVES and \
                shutil.which(ALTERNATIVES[tool][0]):
            argv = ALTERNATIVES[tool]  # the unified flow's runner (Vitis 2023.2+)
        elif skipped or not shutil.which(tool):
            skipped.append(tool)
            continue
        log(f"running {' '.join(argv)} in {out}")
        result = subprocess.run(argv, cwd=out, capture_output=True, text=True, check=False)
        (out / LOGS[tool]).write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise ProjectError(f"fpga build: {' '.join(argv)} failed (exit {result.returncode}); "
                               f"see {out / LOGS[tool]}:\n{result.stdout[-2000:]}")
        ran.append(tool)
    report = next((out / r for r in CSYNTH_REPORTS if (out / r).is_file()), None)
    csim = (out / LOGS["g++"]).read_text().strip().splitlines() if "g++" in ran else []
    return {"ran": ran, "skipped": skipped, "csim": csim[-1] if csim else None,
            "csynth": parse_csynth(report) if report else None}


# the csynth report ----------------------------------------------------------------------------
def _text(node, path, cast=str):
    found = node.find(path) if node is not None else None
    if found is None or found.text is None:
        return None
    try:
        return cast(found.text.strip())
    except ValueError:
        return found.text.strip()


def parse_csynth(path) -> dict:
    """Latency, II, clock and resources from Vitis HLS's ``csynth.xml``:
    ``{"top", "part", "target_ns", "estimated_ns", "latency": {"best", "worst"},
    "interval": {"min", "max"}, "loops": {name: {"trip_count", "latency", "ii",
    "depth"}}, "resources": {name: used}, "available": {name: total}}``."""
    root = ET.parse(path).getroot()
    perf = root.find("PerformanceEstimates")
    latency = perf.find("SummaryOfOverallLatency") if perf is not None else None
    loops = {}
    loop_root = perf.find("SummaryOfLoopLatency") if perf is not None else None
    for loop in list(loop_root) if loop_root is not None else []:
        trips = _text(loop, "TripCount/range/max", int) or _text(loop, "TripCount", int)
        loops[loop.tag] = {"trip_count": trips,
                           "latency": _text(loop, "Latency", int) or _text(loop, "WorstCaseLatency", int),
                           "ii": _text(loop, "PipelineII", int), "depth": _text(loop, "PipelineDepth", int)}
    area = root.find("AreaEstimates")
    res = {c.tag: _text(area, f"Resources/{c.tag}", int)
           for c in (area.find("Resources") if area is not None else [])}
    avail = {c.tag: _text(area, f"AvailableResources/{c.tag}", int)
             for c in (area.find("AvailableResources") if area is not None and
                       area.find("AvailableResources") is not None else [])}
    return {"top": _text(root, "UserAssignments/TopModelName"),
            "part": _text(root, "UserAssignments/Part"),
            "target_ns": _text(root, "UserAssignments/TargetClockPeriod", float),
            "estimated_ns": _text(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod", float),
            "latency": {"best": _text(latency, "Best-caseLatency", int),
                        "worst": _text(latency, "Worst-caseLatency", int)},
            "interval": {"min": _text(latency, "Interval-min", int),
                         "max": _text(latency, "Interval-max", int)},
            "loops": loops, "resources": res, "available": avail}


def format_csynth(summary: dict) -> str:
    lines = [f"csynth: {summary['top']} on {summary['part']}: clock {summary['estimated_ns']} ns "
             f"(target {summary['target_ns']} ns), latency {summary['latency']['best']}.."
             f"{summary['latency']['worst']} cycles, interval {summary['interval']['min']}.."
             f"{summary['interval']['max']}"]
    for name, used in summary["resources"].items():
        total = summary["available"].get(name)
        share = f" of {total} ({100.0 * used / total:.1f}%)" if total and used is not None else ""
        lines.append(f"  {name:<9} {used}{share}")
    for name, loop in summary["loops"].items():
        lines.append(f"  loop {name}: II {loop['ii']}, depth {loop['depth']}, "
                     f"trips {loop['trip_count']}, latency {loop['latency']}")
    return "\n".join(lines)
