"""The PYNQ runtime through PYNQ's real driver code (pynq.Overlay, pynq.allocate,
MMIO register writes, ap_start/ap_done polling) on a simulated ``pynq.Device``
whose IP is the C-simulated accelerator; results must equal numpy bit for bit.

Needs pynq (which pins numpy<2): run in its own environment, see
docs/fpga-build.md ("Testing the PYNQ runtime"). Skips cleanly without pynq.

The device double follows PYNQ's own tests/mock_devices.py:

* metadata: the .hwh beside the bitstream, parsed by pynqmetadata's
  ``RuntimeMetadataParser`` as ``EmbeddedDevice`` does on a board;
* registers (``REGISTER_RW``): a register file per IP; writing ap_start decodes
  the argument registers with the program's register map, maps every 64-bit
  physical address to the device's copy of a buffer and runs ``sf_top``, then
  sets ap_done | ap_idle; ap_done clears on read (``ap_ctrl_hs``);
* memory: ``allocate`` returns ``pynq.buffer.PynqBuffer`` objects with physical
  addresses; the device keeps its own copy of every buffer, so data reaches the
  IP only through ``flush`` (sync_to_device) and comes back only through
  ``invalidate`` (sync_from_device), as on a non-coherent board.
"""

from __future__ import annotations

import ctypes
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

pynq = pytest.importorskip(
    "pynq", reason="pynq is not installed (it pins numpy<2): run this file in the pynq "
    "environment described in docs/fpga-build.md")

import spikeforge as sf
from pynq.pl_server.hwh_parser import get_hwh_name
from pynqmetadata.frontends import Metadata
from pynqmetadata.views.runtime import RuntimeMetadataParser
from spikeforge.backends.fpga import project, tcl
from spikeforge.backends.fpga.csim import CSimLibrary
from spikeforge.backends.fpga.pynq_runtime import (
    AP_DONE,
    AP_IDLE,
    AP_START,
    PynqExecutor,
    PynqRuntimeError,
    parse_register_header,
)

BASE_PHYS = 0x1000_0000
PAGE = 4096


# the device double ----------------------------------------------------------------------
class RecordingClocks:
    """Stands in for pynq.ps.Clocks' per-architecture instance: records PL clocks."""

    def __init__(self):
        self.set = {}

    def set_pl_clk(self, clk_idx, div0=None, div1=None, clk_mhz=None):
        self.set[clk_idx] = clk_mhz


class SimulatedDevice(pynq.Device):
    """See the module docstring. ``program``: the FpgaProgram the overlay was
    built from; ``run(arrays, scalars)`` executes one ``sf_top`` call."""

    _counter = itertools.count()

    def __init__(self, program, run):
        super().__init__(f"spikeforge-sim-{next(self._counter)}")
        self.capabilities = {"REGISTER_RW": True}
        self.program, self.run = program, run
        self.registers: dict[int, bytearray] = {}  # IP base address -> register file
        self.memory: dict[int, np.ndarray] = {}  # physical address -> device bytes
        self.host: dict[int, object] = {}  # physical address -> host buffer
        self.next_address = BASE_PHYS
        self.downloads, self.starts, self.flushes, self.invalidates = [], 0, 0, 0
        self.timestamp = self.bitfile_name = ""

    def get_bitfile_metadata(self, bitfile_name, partial=False):
        parser = RuntimeMetadataParser(Metadata(input=get_hwh_name(bitfile_name)))
        for ip in parser.ip_dict.values():
            if "phys_addr" in ip:
                self.registers.setdefault(ip["phys_addr"], bytearray(ip["addr_range"]))
        return parser

    def download(self, bitstream, parser=None):
        self.downloads.append(bitstream.bitfile_name)
        for regs in self.registers.values():
            regs[:] = bytes(len(regs))
            regs[0] = AP_IDLE
        self.post_download(bitstream, parser)

    def _find(self, address, length):
        for base, regs in self.registers.items():
            if base <= address < base + len(regs):
                assert address + length <= base + len(regs), "access crosses the IP's range"
                return base, regs
        raise AssertionError(f"no IP at {address:#x}")

    def read_registers(self, address, length):
        base, regs = self._find(address, length)
        offset = address - base
        data = bytes(regs[offset:offset + length])
        if offset == 0:
            regs[0] &= ~AP_DONE & 0xFF  # ap_done is clear-on-read
        return data

    def write_registers(self, address, data):
        base, regs = self._find(address, len(data))
        offset = address - base
        regs[offset:offset + len(data)] = data
        if offset == 0 and regs[0] & AP_START:
            self._start(regs)

    def _start(self, regs):
        regs[0] = AP_START  # running: neither idle nor done
        arrays, scalars = {}, {}
        ports = {p.name: p for p in self.program.ports}
        for name, offset, bits in self.program.register_map():
            raw = int.from_bytes(bytes(regs[offset:offset + bits // 8]), "little")
            port = ports[name]
            if port.kind == "m_axi":
                assert raw in self.memory, f"argument {name}: {raw:#x} is not an allocated buffer"
                host = self.host[raw]
                arrays[name] = self.memory[raw][:host.nbytes].view(host.dtype).reshape(host.shape)
            else:
                signed = not port.ctype.startswith("u") and raw >> (bits - 1)
                scalars[name] = raw - (1 << bits) if signed else raw
        self.run(arrays, scalars)
        self.starts += 1
        regs[0] = AP_DONE | AP_IDLE

    def allocate(self, shape, dtype, **kwargs):
        address = self.next_address
        buf = pynq.buffer.PynqBuffer(shape, dtype, device=self, bo=address, coherent=False,
                                     device_address=address)
        buf[...] = 0
        self.memory[address] = np.zeros(max(buf.nbytes, 1), dtype=np.uint8)
        self.host[address] = buf
        self.next_address += -(-max(buf.nbytes, 1) // PAGE) * PAGE
        return buf

    def flush(self, bo, offset, vaddr, length):
        self.flushes += 1
        self.memory[bo][offset:offset + length] = _host_bytes(vaddr, length)

    def invalidate(self, bo, offset, vaddr, length):
        self.invalidates += 1
        _host_bytes(vaddr, length)[...] = self.memory[bo][offset:offset + length]


def _host_bytes(vaddr, length) -> np.ndarray:
    if length == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.ctypeslib.as_array((ctypes.c_uint8 * length).from_address(vaddr))


# fixtures -------------------------------------------------------------------------------
def small_network(fixed=True, batch=1):
    net = sf.NetworkBuilder(dt=0.1, batch_size=batch, seed=5,
                            precision=sf.Fixed(32, 16) if fixed else "float32")
    lif = dict(C=1.0, tau_m=20.0, v_rest=-49.0, v_reset=-60.0, v_thresh=-50.0, i_offset=0.3,
               tau_refrac=2.0)
    net.population("E", sf.LIF, 24, params=lif, init={"v": sf.Uniform(-60, -50)})
    net.population("P", sf.PoissonSource, 8, params={"rate": 200.0})
    net.connect("E", "E", sf.FixedProbability(0.2), w=0.4, postsynaptic=sf.ExpCurr,
                ps_params={"tau": 5.0}, delay=2)
    net.connect("P", "E", sf.FixedProbability(0.5), w=1.5, postsynaptic=sf.ExpCurr,
                ps_params={"tau": 2.0})
    return net.network()


@pytest.fixture
def clocks(monkeypatch):
    recorder = RecordingClocks()
    monkeypatch.setattr(pynq.ps.Clocks, "_real_instance", recorder, raising=False)
    return recorder


def overlay_dir(tmp_path, network, board_name, **options):
    """The overlay/ folder of a written project, with a stand-in net.bit."""
    out, _ = project.write_project(network, board_name, tmp_path / "proj", **options)
    overlay = out / "overlay"
    (overlay / "net.bit").write_bytes(b"not a real bitstream: the device is simulated")
    (overlay / "net.expected.hwh").rename(overlay / "net.hwh")
    return out, overlay


def simulated_device(monkeypatch, network, board_name, **options):
    program = project.make_program(network, project.find_board(board_name), **options)
    device = SimulatedDevice(program, CSimLibrary(program).call)
    monkeypatch.setattr(pynq.Device, "_active_device", device, raising=False)
    return device


# tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixed", [True, False])
def test_board_run_equals_numpy(tmp_path, monkeypatch, clocks, fixed):
    """net.build(backend='fpga', bitstream=...) through pynq equals numpy."""
    network = small_network(fixed)
    options = dict(steps_per_call=16, record_vars=("E.v",))
    _, overlay = overlay_dir(tmp_path, network, "pynq-z2", **options)
    device = simulated_device(monkeypatch, network, "pynq-z2", **options)
    board = network.build("fpga", record_vars=["E.v"], steps_per_call=16,
                          bitstream=str(overlay / "net.bit"))
    ref = network.build("numpy", record_vars=["E.v"])
    for sim in (board, ref):
        sim.run(steps=50)
    assert device.downloads == [str((overlay / "net.bit").resolve())]
    assert device.starts == 4  # ceil(50 / 16) calls
    assert device.flushes > 0 and device.invalidates > 0
    assert 0 in clocks.set  # PL clock 0 configured from the .hwh
    for pop in ("E", "P"):
        t_board, i_board = board.spikes(pop)
        t_ref, i_ref = ref.spikes(pop)
        np.testing.assert_array_equal(i_board, i_ref)
        np.testing.assert_array_equal(t_board, t_ref)
    assert len(ref.spikes("E")[0]) > 0
    if fixed:
        np.testing.assert_array_equal(board.trace("E.v")[1], ref.trace("E.v")[1])
        np.testing.assert_array_equal(board.get("E.v"), ref.get("E.v"))
    else:
        np.testing.assert_allclose(board.trace("E.v")[1], ref.trace("E.v")[1], rtol=1e-5, atol=1e-5)


def test_set_reset_and_mpsoc_board(tmp_path, monkeypatch, clocks):
    """A Zynq UltraScale+ overlay (HPM0 control, PL clock 0 at the board clock);
    set() reaches the device before the next call; reset() restarts."""
    network = small_network(True)
    _, overlay = overlay_dir(tmp_path, network, "kv260", steps_per_call=10)
    simulated_device(monkeypatch, network, "kv260", steps_per_call=10)
    board = network.build("fpga", steps_per_call=10, bitstream=str(overlay / "net.bit"))
    ref = network.build("numpy")
    want = float(project.find_board("kv260").clock_mhz)
    assert clocks.set[0] == pytest.approx(want)
    for sim in (board, ref):
        sim.run(steps=15)
        sim.set("E.v", -51.0)
        sim.run(steps=12)
    np.testing.assert_array_equal(board.spikes("E")[1], ref.spikes("E")[1])
    np.testing.assert_array_equal(board.get("E.v"), ref.get("E.v"))
    board.reset()
    ref.reset()
    board.run(steps=20)
    ref.run(steps=20)
    np.testing.assert_array_equal(board.spikes("E")[1], ref.spikes("E")[1])


def test_register_writes_follow_the_header(tmp_path, monkeypatch, clocks):
    """Every argument register holds what the executor was given: physical
    addresses (64 bit, low word first) and two's-complement scalars."""
    network = small_network(True)
    _, overlay = overlay_dir(tmp_path, network, "pynq-z2", steps_per_call=8)
    device = simulated_device(monkeypatch, network, "pynq-z2", steps_per_call=8)
    program = device.program
    executor = PynqExecutor(program, overlay / "net.bit")
    assert executor.header_path == (overlay / "xsf_top_hw.h").resolve()
    arrays = {p.name: executor.allocate(p.shape, np.dtype(_numpy(p.ctype)))
              for p in program.ports if p.kind == "m_axi"}
    seen = {}
    device.run = lambda a, s: seen.update(scalars=dict(s), arrays=a)
    executor.call(arrays, {"mode": 0, "n_steps": 3, "step": 2**40 + 7, "rng_step": 0xFFFFFFFF,
                           "seed": 5})
    assert seen["scalars"] == {"mode": 0, "n_steps": 3, "step": 2**40 + 7,
                               "rng_step": 0xFFFFFFFF, "seed": 5}
    regs = device.registers[tcl.CONTROL_BASE["processing_system7"]]
    table = parse_register_header((overlay / "xsf_top_hw.h").read_text())
    for port in program.ports:
        if port.kind == "m_axi":
            offset = table[port.name.upper()][0]
            assert int.from_bytes(regs[offset:offset + 8], "little") == arrays[port.name].device_address
    assert regs[0] & AP_IDLE


def test_mismatched_overlay_is_rejected(tmp_path, monkeypatch, clocks):
    """An overlay built for another network fails with a clear error."""
    _, overlay = overlay_dir(tmp_path, small_network(True), "pynq-z2")
    other = sf.NetworkBuilder(dt=0.1, seed=1, precision=sf.Fixed(32, 16))
    other.population("X", sf.LIF, 3, params=dict(C=1.0, tau_m=20.0, v_rest=-49.0, v_reset=-60.0,
                                                    v_thresh=-50.0, i_offset=0.0, tau_refrac=2.0),
                     init={"v": -55.0})
    simulated_device(monkeypatch, small_network(True), "pynq-z2")
    with pytest.raises(PynqRuntimeError, match="another network|does not match"):
        other.network().build("fpga", bitstream=str(overlay / "net.bit"))


def test_driver_config_names_every_port(tmp_path):
    network = small_network(True)
    _, overlay = overlay_dir(tmp_path, network, "pynq-z2")
    config = json.loads((overlay / "spikeforge.json").read_text())
    program = project.make_program(network, project.find_board("pynq-z2"))
    assert [p["name"] for p in config["ports"]] == [p.name for p in program.ports]
    assert config["source_sha256"] == project.source_hash(program)
    # the recorded options (what run_on_board.py passes to build) give the same accelerator
    opts = config["options"]
    again = project.make_program(sf.load(overlay / "model.json"), project.find_board(opts["board"]),
                                 opts["steps_per_call"], opts["record_spikes"],
                                 opts["record_vars"], opts["onchip"])
    assert project.source_hash(again) == config["source_sha256"]


def _numpy(ctype):
    return {"float": "float32", "double": "float64", "int8_t": "int8", "int16_t": "int16",
            "int32_t": "int32", "int64_t": "int64", "uint8_t": "uint8", "uint32_t": "uint32"}[ctype]


def feature_network():
    """Batch 2, fixed point: STDP, procedural connectivity, a current source with
    normal() draws, an every-step reduction and a host-triggered custom update."""
    net = sf.NetworkBuilder(dt=0.1, batch_size=2, seed=11, precision=sf.Fixed(32, 16))
    lif = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
               tau_refrac=1.0)
    net.population("P", sf.PoissonSource, 20, params={"rate": 400.0})
    net.population("N", sf.LIF, 16, params=lif, init={"v": sf.Uniform(0.0, 1.0)})
    stdp = dict(tau_plus=10.0, tau_minus=10.0, a_plus=0.01, a_minus=0.012, w_min=0.0, w_max=0.5)
    net.connect("P", "N", sf.FixedProbability(0.3), weight_update=sf.STDP, wu_params=stdp,
                w=sf.Uniform(0.0, 0.3), postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0}, delay=2)
    net.connect("N", "N", sf.FixedNumberPost(3, procedural=True), name="rec", w=-0.1, delay=1)
    net.current_source("noise", sf.GaussianNoise, "N", params={"mean": 0.05, "sd": 0.1})
    net.custom_update("total", "N", "s = v", var_refs={"v": "N.v"},
                      reductions={"s": sf.Reduction("sum", "neurons")}, every_step=True)
    net.custom_update("calm", "N", "v = 0.25 * v", var_refs={"v": "N.v"})
    return net.network()


def test_features_batches_and_host_custom_updates(tmp_path, monkeypatch, clocks):
    """mode > 0 (a host custom update) and batch 2 through the register interface."""
    network = feature_network()
    _, overlay = overlay_dir(tmp_path, network, "zcu104", steps_per_call=20)
    device = simulated_device(monkeypatch, network, "zcu104", steps_per_call=20)
    board = network.build("fpga", steps_per_call=20, bitstream=str(overlay / "net.bit"))
    ref = network.build("numpy")
    for sim in (board, ref):
        sim.run(steps=30)
        sim.custom_update("calm")
        sim.run(steps=25)
    assert device.starts == 2 + 1 + 2
    for pop in ("P", "N"):
        for got, want in zip(board.spikes(pop), ref.spikes(pop)):
            np.testing.assert_array_equal(got, want)
    assert len(ref.spikes("N")[0]) > 0
    for key in ref.state:
        np.testing.assert_array_equal(board.get(key), ref.get(key), err_msg=key)


def compare_overlay_with_numpy(overlay: Path, steps: int) -> None:
    """Build the network of an overlay folder with its recorded options on the board
    and on numpy, run both, compare (exact spikes in fixed point)."""
    config = json.loads((overlay / "spikeforge.json").read_text())
    opts = config["options"]
    network = sf.load(overlay / "model.json")
    board = network.build("fpga", record_spikes=opts["record_spikes"],
                          record_vars=opts["record_vars"], steps_per_call=opts["steps_per_call"],
                          onchip=opts["onchip"], board=opts["board"],
                          bitstream=str(overlay / config["bitstream"]))
    ref = network.build("numpy", record_spikes=opts["record_spikes"],
                        record_vars=opts["record_vars"])
    for sim in (board, ref):
        sim.run(steps=steps)
    exact = network.precision not in ("float32", "float64")
    for pop in opts["record_spikes"]:
        got, want = board.spikes(pop)[1], ref.spikes(pop)[1]
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            assert abs(len(got) - len(want)) <= 0.01 * len(want) + 1


def test_overlay_folder_runs_as_shipped(tmp_path, monkeypatch, clocks, capsys):
    """What a user does on the board: run_on_board.py and the recorded options."""
    import runpy
    import sys

    network = small_network(True)
    _, overlay = overlay_dir(tmp_path, network, "pynq-z2", steps_per_call=12)
    simulated_device(monkeypatch, network, "pynq-z2", steps_per_call=12)
    compare_overlay_with_numpy(overlay, 40)
    monkeypatch.setattr(sys, "argv", ["run_on_board.py", "30"])
    runpy.run_path(str(overlay / "run_on_board.py"), run_name="__main__")
    want = len(network.build("numpy").run(steps=30).spikes("E")[0])
    assert f"E: {want} spikes in 30 steps" in capsys.readouterr().out


@pytest.mark.fpga_board
def test_physical_board_equals_numpy():
    """On a board: SPIKEFORGE_FPGA_OVERLAY=DIR/overlay (from `spikeforge fpga build`)
    python -m pytest -m fpga_board tests/test_fpga_pynq.py"""
    import os

    folder = os.environ.get("SPIKEFORGE_FPGA_OVERLAY")
    if not folder:
        pytest.skip("set SPIKEFORGE_FPGA_OVERLAY to the overlay/ folder of an fpga build")
    config = json.loads((Path(folder) / "spikeforge.json").read_text())
    compare_overlay_with_numpy(Path(folder), 3 * config["options"]["steps_per_call"] + 1)
