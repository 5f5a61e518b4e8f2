"""Tool scripts for the Xilinx flows (pure text: ports + board -> scripts).

Everything here renders text; nothing runs a tool. ``project.py`` writes the
files and runs them when the tools are on PATH.

HLS (``vitis_hls``, one script for every board)
    ``run_hls.tcl``     classic form: ``vitis_hls -f run_hls.tcl [-tclargs STEPS]``
                        (also ``vitis-run --mode hls --tcl run_hls.tcl``); STEPS is a
                        subset of ``csim csynth cosim export`` (default: all four).
    ``hls_config.cfg``  unified-flow form: ``v++ -c --mode hls --config hls_config.cfg
                        --work_dir sf_hls`` (csynth), ``vitis-run --mode hls --csim|--cosim|
                        --package --config hls_config.cfg --work_dir sf_hls``.
    Zynq boards export a Vivado IP (``ip_catalog``, flow_target vivado); Alveo exports a
    kernel object ``sf_top.xo`` (flow_target vitis).

Vivado (Zynq boards: ``vivado -mode batch -source build_bd.tcl``)
    a block design ``net``: the processing system (``processing_system7`` on
    Zynq-7000, ``zynq_ultra_ps_e`` on Zynq UltraScale+ MPSoC), the HLS IP
    ``sf_top_0`` with its ``s_axi_control`` on the PS's general-purpose master
    (GP0 / HPM0), each ``m_axi_<bundle>`` on a high-performance slave port
    (bundle i -> hp_ports[i mod len(hp_ports)]), PL clock 0 at the board clock,
    address map, validation, HDL wrapper, synthesis, implementation and
    bitstream; finally ``overlay/net.bit`` and ``overlay/net.hwh`` side by side,
    the layout ``pynq.Overlay("net.bit")`` loads.

Alveo (``v++ -l``)
    ``link.cfg``: one compute unit ``sf_top_1`` and one ``sp=`` line per m_axi
    argument, all in the board's first memory bank (where ``pynq.allocate``
    puts buffers), linked against the board's platform into ``net.xclbin``.
"""

from __future__ import annotations

TOP = "sf_top"
IP_VLNV = "spikeforge.org:hls:sf_top:1.0"
INSTANCE = "sf_top_0"
BD_NAME = "net"
HLS_PROJECT = "sf_hls"
SOLUTION = "solution1"
CFLAGS = "-std=gnu++14 -I./include"  # the language level of the C simulation (csim.py)
HLS_STEPS = ("csim", "csynth", "cosim", "export")
ALVEO_BANKS = ("DDR[0]", "DDR[1]", "DDR[2]", "DDR[3]")

# processing-system parameter names, by PS IP
PS_CLOCK = {"processing_system7": "PCW_FPGA0_PERIPHERAL_FREQMHZ",
            "zynq_ultra_ps_e": "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"}
PS_CLOCK_PIN = {"processing_system7": "FCLK_CLK0", "zynq_ultra_ps_e": "pl_clk0"}
PS_ENABLE = {  # the CONFIG parameter that turns a PS port on
    "processing_system7": {"M_AXI_GP0": "PCW_USE_M_AXI_GP0", "M_AXI_GP1": "PCW_USE_M_AXI_GP1",
                           "S_AXI_HP0": "PCW_USE_S_AXI_HP0", "S_AXI_HP1": "PCW_USE_S_AXI_HP1",
                           "S_AXI_HP2": "PCW_USE_S_AXI_HP2", "S_AXI_HP3": "PCW_USE_S_AXI_HP3",
                           "S_AXI_ACP": "PCW_USE_S_AXI_ACP"},
    "zynq_ultra_ps_e": {"M_AXI_HPM0_FPD": "PSU__USE__M_AXI_GP0",
                        "M_AXI_HPM1_FPD": "PSU__USE__M_AXI_GP1",
                        "M_AXI_HPM0_LPD": "PSU__USE__M_AXI_GP2",
                        "S_AXI_HPC0_FPD": "PSU__USE__S_AXI_GP0",
                        "S_AXI_HPC1_FPD": "PSU__USE__S_AXI_GP1",
                        "S_AXI_HP0_FPD": "PSU__USE__S_AXI_GP2",
                        "S_AXI_HP1_FPD": "PSU__USE__S_AXI_GP3",
                        "S_AXI_HP2_FPD": "PSU__USE__S_AXI_GP4",
                        "S_AXI_HP3_FPD": "PSU__USE__S_AXI_GP5"},
}
DEFAULT_GP = {"processing_system7": "M_AXI_GP0", "zynq_ultra_ps_e": "M_AXI_HPM0_FPD"}
DEFAULT_HP = {"processing_system7": ("S_AXI_HP0",), "zynq_ultra_ps_e": ("S_AXI_HP0_FPD",)}


class ToolScriptError(ValueError):
    """A board or port list the scripts cannot be made for (names what is wrong)."""


# helpers ------------------------------------------------------------------------
def bundles(ports) -> list[str]:
    """The m_axi bundles of ``ports`` in order of first use."""
    seen: list[str] = []
    for port in ports:
        if port.kind == "m_axi" and port.bundle not in seen:
            seen.append(port.bundle)
    return seen


def clock_ns(board) -> str:
    """The HLS clock period in ns for the board clock (MHz), 3 decimals."""
    mhz = float(board.clock_mhz)
    if not mhz > 0:
        raise ToolScriptError(f"board {board.name!r}: clock_mhz must be > 0, got {mhz}")
    return f"{1000.0 / mhz:.3f}".rstrip("0").rstrip(".")


def _first(value, default):
    if value is None or value == "" or value == () or value == []:
        return default
    return value if isinstance(value, str) else tuple(value)


def gp_port(board) -> str:
    """The PS master port that carries the control interface (GP0 / HPM0)."""
    value = _first(getattr(board, "axi_gp", None), DEFAULT_GP[board.ps])
    name = value if isinstance(value, str) else value[0]
    _check_ps_port(board, name)
    return name


def hp_ports(board) -> tuple[str, ...]:
    """The PS slave ports the m_axi bundles use, in order."""
    value = _first(getattr(board, "hp_ports", None), DEFAULT_HP[board.ps])
    names = (value,) if isinstance(value, str) else value
    for name in names:
        _check_ps_port(board, name)
    return names


def _check_ps_port(board, name: str) -> None:
    if name not in PS_ENABLE[board.ps]:
        raise ToolScriptError(f"board {board.name!r}: unknown {board.ps} port {name!r} "
                              f"(known: {', '.join(PS_ENABLE[board.ps])})")


def _zynq(board) -> None:
    if board.flow != "zynq" or board.ps not in PS_CLOCK:
        raise ToolScriptError(f"board {board.name!r}: the block design needs flow 'zynq' and ps "
                              f"in {sorted(PS_CLOCK)}, got flow {board.flow!r}, ps {board.ps!r}")


def bundle_map(ports, board) -> dict[str, str]:
    """m_axi bundle -> PS slave port (round robin over the board's HP ports)."""
    hps = hp_ports(board)
    return {b: hps[i % len(hps)] for i, b in enumerate(bundles(ports))}


def bank_map(ports, board) -> dict[str, str]:
    """Alveo: m_axi bundle -> memory bank. Every bundle goes to the board's first
    bank: ``pynq.allocate`` (and so PynqExecutor) places buffers in the device's
    default bank, and a kernel argument must live in the bank it is connected to."""
    banks = _first(getattr(board, "hp_ports", None), ALVEO_BANKS)
    banks = (banks,) if isinstance(banks, str) else banks
    if not all("[" in b for b in banks):  # hp_ports of a Zynq-style profile: not banks
        banks = ALVEO_BANKS
    return {b: banks[0] for b in bundles(ports)}


# Vitis HLS ------------------------------------------------------------------------
def hls_tcl(board, sources=("sf_top.cpp",), testbench=("sf_tb.cpp",)) -> str:
    """run_hls.tcl: the classic vitis_hls script (csim, csynth, cosim, export)."""
    alveo = board.flow == "alveo"
    target = "vitis" if alveo else "vivado"
    export = (f"export_design -format xo -output ./{TOP}.xo" if alveo else
              "export_design -format ip_catalog -rtl verilog -vendor spikeforge.org "
              f"-library hls -version 1.0 -ipname {TOP}")
    lines = [
        f"# vitis_hls script for board {board.name} ({board.part}); written by spikeforge.",
        "# Run: vitis_hls -f run_hls.tcl [-tclargs csim csynth cosim export]",
        "#  or: vitis-run --mode hls --tcl run_hls.tcl",
        f"set steps {{{' '.join(HLS_STEPS)}}}",
        "if {[info exists argv] && [llength $argv] > 0} { set steps $argv }",
        f"open_project -reset {HLS_PROJECT}",
        f"set_top {TOP}",
        *(f'add_files {s} -cflags "{CFLAGS}"' for s in sources),
        *(f'add_files -tb {t} -cflags "{CFLAGS}"' for t in testbench),
        f"open_solution -reset {SOLUTION} -flow_target {target}",
        f"set_part {{{board.part}}}",
        f"create_clock -period {clock_ns(board)} -name default",
        'if {[lsearch $steps csim] >= 0} { csim_design }',
        'if {[lsearch $steps csynth] >= 0 || [lsearch $steps cosim] >= 0 '
        '|| [lsearch $steps export] >= 0} { csynth_design }',
        'if {[lsearch $steps cosim] >= 0} { cosim_design -rtl verilog }',
        f'if {{[lsearch $steps export] >= 0}} {{ {export} }}',
        "exit",
    ]
    return "\n".join(lines) + "\n"


def hls_config(board, sources=("sf_top.cpp",), testbench=("sf_tb.cpp",)) -> str:
    """hls_config.cfg: the same component for the unified flow (v++ -c --mode hls)."""
    alveo = board.flow == "alveo"
    lines = [f"# HLS component for board {board.name}; written by spikeforge.",
             f"# v++ -c --mode hls --config hls_config.cfg --work_dir {HLS_PROJECT}",
             f"# vitis-run --mode hls --csim|--cosim|--package --config hls_config.cfg "
             f"--work_dir {HLS_PROJECT}",
             f"part={board.part}", "", "[hls]",
             f"flow_target={'vitis' if alveo else 'vivado'}",
             f"clock={clock_ns(board)}ns",
             f"syn.top={TOP}",
             *(f"syn.file={s}" for s in sources),
             f"syn.cflags={CFLAGS}",
             *(f"tb.file={t}" for t in testbench),
             f"tb.cflags={CFLAGS}"]
    if alveo:
        lines += ["package.output.format=xo", f"package.output.file=./{TOP}.xo"]
    else:
        lines += ["package.output.format=ip_catalog", "package.ip.vendor=spikeforge.org",
                  "package.ip.library=hls", "package.ip.version=1.0"]
    return "\n".join(lines) + "\n"


# Vivado block design ---------------------------------------------------------------
def _ps_config(board, ports) -> list[str]:
    enable = PS_ENABLE[board.ps]
    used = [gp_port(board), *dict.fromkeys(bundle_map(ports, board).values())]
    params = [f"CONFIG.{PS_CLOCK[board.ps]} {{{float(board.clock_mhz):g}}}"]
    params += [f"CONFIG.{enable[name]} {{1}}" for name in used]
    return [f"set_property -dict [list {' '.join(params)}] [get_bd_cells ps]"]


def _axi_rule(master: str, slave: str, pin: str) -> str:
    return ("apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list "
            f"Clk_master {{Auto}} Clk_slave {{Auto}} Clk_xbar {{Auto}} Master {{{master}}} "
            f"Slave {{{slave}}} ddr_seg {{Auto}} intc_ip {{Auto}} master_apm {{0}}] "
            f"[get_bd_intf_pins {pin}]")


def _board_preset(board) -> list[str]:
    """Use the board files (PS DDR/MIO/clock presets) when Vivado has them installed."""
    part = getattr(board, "board_part", None)
    if not part:
        return ["set preset 0"]
    return ["set preset 0",
            f"if {{[llength [get_board_parts -quiet {{{part}}}]] > 0}} {{",
            f"    set_property board_part {{{part}}} [current_project]", "    set preset 1",
            "} else {",
            f'    puts "WARNING: board files for {part} are not installed: the processing system '
            'keeps default DDR/MIO settings (install the board files, e.g. Vivado > Tools > '
            'Vivado Store > Boards, and rerun)"',
            "}"]


def block_design_tcl(board, ports) -> str:
    """build_bd.tcl: Vivado project, block design, bitstream, PYNQ overlay files."""
    _zynq(board)
    rule = ("xilinx.com:bd_rule:processing_system7" if board.ps == "processing_system7"
            else "xilinx.com:bd_rule:zynq_ultra_ps_e")
    mapping = bundle_map(ports, board)
    automation = ('[list make_external "FIXED_IO, DDR" apply_board_preset $preset '
                  'Master "Disable" Slave "Disable"]' if board.ps == "processing_system7"
                  else "[list apply_board_preset $preset]")
    lines = [
        f"# Vivado block design for board {board.name} ({board.part}); written by spikeforge.",
        "# Run after the HLS export: vivado -mode batch -source build_bd.tcl",
        "set here [file normalize [file dirname [info script]]]",
        f"create_project sf_vivado $here/vivado -part {board.part} -force",
        f"set_property ip_repo_paths [list $here/{HLS_PROJECT}] [current_project]",
        "update_ip_catalog -rebuild",
        f"create_bd_design {BD_NAME}",
        *_board_preset(board),
        f"create_bd_cell -type ip -vlnv [lindex [get_ipdefs -filter {{NAME == {board.ps}}}] end] ps",
        f"apply_bd_automation -rule {rule} -config {automation} [get_bd_cells ps]",
        *_ps_config(board, ports),
        f"create_bd_cell -type ip -vlnv {IP_VLNV} {INSTANCE}",
        "# control (s_axilite, ap_ctrl_hs) on the general-purpose master",
        _axi_rule(f"/ps/{gp_port(board)}", f"/{INSTANCE}/s_axi_control",
                  f"{INSTANCE}/s_axi_control"),
        "# data: every m_axi bundle on a high-performance slave port",
        *(_axi_rule(f"/{INSTANCE}/m_axi_{bundle}", f"/ps/{hp}", f"{INSTANCE}/m_axi_{bundle}")
          for bundle, hp in mapping.items()),
        "assign_bd_address",
        "validate_bd_design",
        "save_bd_design",
        f"set wrapper [make_wrapper -files [get_files {BD_NAME}.bd] -top]",
        "add_files -norecurse $wrapper",
        f"set_property top {BD_NAME}_wrapper [current_fileset]",
        "launch_runs impl_1 -to_step write_bitstream -jobs 4",
        "wait_on_run impl_1",
        'if {[get_property PROGRESS [get_runs impl_1]] != "100%"} { error "implementation failed" }',
        "file mkdir $here/overlay",
        f"file copy -force [glob $here/vivado/sf_vivado.runs/impl_1/{BD_NAME}_wrapper.bit] "
        f"$here/overlay/{BD_NAME}.bit",
        f"set hwh [glob -nocomplain $here/vivado/sf_vivado.gen/sources_1/bd/{BD_NAME}/hw_handoff/"
        f"{BD_NAME}.hwh $here/vivado/sf_vivado.srcs/sources_1/bd/{BD_NAME}/hw_handoff/{BD_NAME}.hwh]",
        f"file copy -force [lindex $hwh 0] $here/overlay/{BD_NAME}.hwh",
        "# the driver header Vitis HLS generated (PynqExecutor reads the register offsets)",
        "foreach h [glob -nocomplain $here/sf_hls/solution1/impl/misc/drivers/*/src/xsf_top_hw.h] "
        "{ file copy -force $h $here/overlay/xsf_top_hw.h }",
        f'puts "spikeforge: overlay written to $here/overlay/{BD_NAME}.bit (+ {BD_NAME}.hwh)"',
    ]
    return "\n".join(lines) + "\n"


# Alveo -------------------------------------------------------------------------------
def link_config(board, ports) -> str:
    """link.cfg for ``v++ -l``: one compute unit, one sp= line per m_axi argument."""
    if board.flow != "alveo" or not getattr(board, "platform", None):
        raise ToolScriptError(f"board {board.name!r}: v++ linking needs flow 'alveo' and a "
                              f"platform, got flow {board.flow!r}, "
                              f"platform {getattr(board, 'platform', None)!r}")
    banks = bank_map(ports, board)
    lines = [f"# v++ link configuration for {board.name}; written by spikeforge.",
             f"# v++ -l -t hw --platform {board.platform} --config link.cfg {TOP}.xo "
             "-o overlay/net.xclbin", "", "[connectivity]", f"nk={TOP}:1:{TOP}_1"]
    lines += [f"sp={TOP}_1.{p.name}:{banks[p.bundle]}" for p in ports if p.kind == "m_axi"]
    lines += ["", "[clock]", f"freqHz={round(float(board.clock_mhz) * 1e6)}:{TOP}_1"]
    return "\n".join(lines) + "\n"


def link_command(board) -> list[str]:
    return ["v++", "-l", "-t", "hw", "--platform", board.platform, "--config", "link.cfg",
            f"{TOP}.xo", "-o", "overlay/net.xclbin"]


# hardware handoff ---------------------------------------------------------------------
CONTROL_BASE = {"processing_system7": 0x43C00000, "zynq_ultra_ps_e": 0xA0000000}
CONTROL_RANGE = 0x10000
CTRL_FIELDS = (("AP_START", 0, 1, "read-write"), ("AP_DONE", 1, 1, "read-only"),
               ("AP_IDLE", 2, 1, "read-only"), ("AP_READY", 3, 1, "read-only"),
               ("RESERVED_1", 4, 3, "read-only"), ("AUTO_RESTART", 7, 1, "read-write"),
               ("RESERVED_2", 8, 24, "read-only"))
FIXED_REGISTERS = (("CTRL", 0x00, 32, "read-write", "Control signals", CTRL_FIELDS),
                   ("GIER", 0x04, 32, "read-write", "Global Interrupt Enable Register",
                    (("Enable", 0, 1, "read-write"), ("RESERVED", 1, 31, "read-only"))),
                   ("IP_IER", 0x08, 32, "read-write", "IP Interrupt Enable Register",
                    (("CHAN0_INT_EN", 0, 1, "read-write"), ("CHAN1_INT_EN", 1, 1, "read-write"),
                     ("RESERVED", 2, 30, "read-only"))),
                   ("IP_ISR", 0x0C, 32, "read-write", "IP Interrupt Status Register",
                    (("CHAN0_INT_ST", 0, 1, "read-write"), ("CHAN1_INT_ST", 1, 1, "read-write"),
                     ("RESERVED", 2, 30, "read-only"))))


def _xml(text) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _register_xml(name, offset, bits, access, description, fields) -> list[str]:
    props = [("DESCRIPTION", description), ("ADDRESS_OFFSET", hex(offset)), ("SIZE", bits),
             ("ACCESS", access), ("IS_ENABLED", "true"), ("RESET_VALUE", "0x0")]
    out = [f'            <REGISTER NAME="{_xml(name)}">']
    out += [f'              <PROPERTY NAME="{k}" VALUE="{_xml(v)}"/>' for k, v in props]
    out.append("              <FIELDS>")
    for fname, lsb, width, faccess in fields:
        out += [f'                <FIELD NAME="{_xml(fname)}">',
                f'                  <PROPERTY NAME="DESCRIPTION" VALUE="{_xml(description)}"/>',
                f'                  <PROPERTY NAME="BIT_OFFSET" VALUE="{lsb}"/>',
                f'                  <PROPERTY NAME="BIT_WIDTH" VALUE="{width}"/>',
                f'                  <PROPERTY NAME="ACCESS" VALUE="{faccess}"/>',
                "                </FIELD>"]
    out += ["              </FIELDS>", "            </REGISTER>"]
    return out


def _ps_parameters(board) -> list[tuple[str, str]]:
    mhz = f"{float(board.clock_mhz):g}"
    if board.ps == "processing_system7":
        params = []
        for i in range(4):
            freq = mhz if i == 0 else "10"
            params += [(f"PCW_FPGA_FCLK{i}_ENABLE", "1" if i == 0 else "0"),
                       (f"PCW_FCLK{i}_PERIPHERAL_CLKSRC", "IO PLL"),
                       (f"PCW_FCLK{i}_PERIPHERAL_DIVISOR0", "5" if i == 0 else "1"),
                       (f"PCW_FCLK{i}_PERIPHERAL_DIVISOR1", "2" if i == 0 else "1"),
                       (f"PCW_FPGA{i}_PERIPHERAL_FREQMHZ", freq),
                       (f"PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ", freq)]
        return params
    params = [("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", mhz)]
    for i in range(4):
        params += [(f"PSU__FPGA_PL{i}_ENABLE", "1" if i == 0 else "0"),
                   (f"PSU__CRL_APB__PL{i}_REF_CTRL__SRCSEL", "IOPLL"),
                   (f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR0", "15" if i == 0 else "4"),
                   (f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR1", "1"),
                   (f"PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ", mhz if i == 0 else "100")]
    return params


def _bus(name, kind) -> str:
    return (f'        <BUSINTERFACE BUSNAME="{name}_bus" NAME="{name}" TYPE="{kind}" '
            'VLNV="xilinx.com:interface:aximm:1.0"/>')


def hwh(board, registers, ports) -> str:
    """A minimal hardware handoff (.hwh) of the block design of ``block_design_tcl``:
    the PS with the control range of ``sf_top_0`` at CONTROL_BASE on the GP port,
    and the IP's s_axi_control registers (CTRL/GIER/IP_IER/IP_ISR, then one register
    per argument: ``registers`` is [(name, offset, bits)] from the driver header).
    It holds what PYNQ's parsers read (modules, bus interfaces, memory map,
    register map, PL clock 0); Vivado's own .hwh replaces it on a real build."""
    _zynq(board)
    gp, base = gp_port(board), CONTROL_BASE[board.ps]
    hps = list(dict.fromkeys(bundle_map(ports, board).values()))
    ps_vlnv = {"processing_system7": "xilinx.com:ip:processing_system7:5.5",
               "zynq_ultra_ps_e": "xilinx.com:ip:zynq_ultra_ps_e:3.5"}[board.ps]
    lines = ['<?xml version="1.0" encoding="UTF-8" standalone="no" ?>',
             '<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="spikeforge" VIVADOVERSION="spikeforge">',
             f'  <SYSTEMINFO ARCH="{_xml(board.family)}" DEVICE="{_xml(board.part)}" '
             f'NAME="{BD_NAME}" PACKAGE="" SPEEDGRADE=""/>',
             "  <EXTERNALPORTS/>", "  <EXTERNALINTERFACES/>", "  <MODULES>",
             f'    <MODULE COREREVISION="0" FULLNAME="/ps" HWVERSION="1" INSTANCE="ps" '
             f'IPTYPE="PERIPHERAL" IS_ENABLE="1" MODCLASS="PROCESSOR" MODTYPE="{board.ps}" '
             f'VLNV="{ps_vlnv}">',
             "      <PARAMETERS>",
             *(f'        <PARAMETER NAME="{k}" VALUE="{_xml(v)}"/>' for k, v in _ps_parameters(board)),
             "      </PARAMETERS>",
             "      <MEMORYMAP>",
             f'        <MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_S_AXI_CONTROL_BASEADDR" '
             f'BASEVALUE="{base:#010x}" HIGHNAME="C_S_AXI_CONTROL_HIGHADDR" '
             f'HIGHVALUE="{base + CONTROL_RANGE - 1:#010x}" INSTANCE="{INSTANCE}" IS_DATA="TRUE" '
             f'IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="{gp}" MEMTYPE="REGISTER" '
             'SLAVEBUSINTERFACE="s_axi_control"/>',
             "      </MEMORYMAP>",
             "      <BUSINTERFACES>", _bus(gp, "MASTER"), *(_bus(hp, "SLAVE") for hp in hps),
             "      </BUSINTERFACES>", "    </MODULE>",
             f'    <MODULE COREREVISION="1" FULLNAME="/{INSTANCE}" HWVERSION="1.0" '
             f'INSTANCE="{INSTANCE}" IPTYPE="PERIPHERAL" IS_ENABLE="1" MODCLASS="PERIPHERAL" '
             f'MODTYPE="{TOP}" VLNV="{IP_VLNV}">',
             "      <PARAMETERS>",
             f'        <PARAMETER NAME="C_S_AXI_CONTROL_BASEADDR" VALUE="{base:#010x}"/>',
             f'        <PARAMETER NAME="C_S_AXI_CONTROL_HIGHADDR" VALUE="{base + CONTROL_RANGE - 1:#010x}"/>',
             "      </PARAMETERS>",
             "      <ADDRESSBLOCKS>",
             '        <ADDRESSBLOCK ACCESS="" INTERFACE="s_axi_control" NAME="Reg" RANGE="65536" USAGE="register">',
             "          <REGISTERS>"]
    for reg in FIXED_REGISTERS:
        lines += _register_xml(*reg)
    for name, offset, bits in registers:
        lines += _register_xml(name, offset, bits, "write-only", f"Data signal of {name}",
                               ((name, 0, bits, "write-only"),))
    lines += ["          </REGISTERS>", "        </ADDRESSBLOCK>", "      </ADDRESSBLOCKS>",
              "      <BUSINTERFACES>", _bus("s_axi_control", "SLAVE"),
              *(_bus(f"m_axi_{b}", "MASTER") for b in bundles(ports)),
              "      </BUSINTERFACES>", "    </MODULE>", "  </MODULES>", "</EDKSYSTEM>"]
    return "\n".join(lines) + "\n"
