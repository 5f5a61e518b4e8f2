"""Resource estimate of an accelerator on a board (before any Xilinx tool runs).

Rows, each with BRAM (18 Kb blocks), URAM, DSP, LUT and FF:

* **arrays**: every on-chip buffer (FpgaProgram.storage). A BRAM array of
  depth D and width W bits takes min over the RAMB18 shapes (16K x 1, 8K x 2,
  4K x 4, 2K x 9, 1K x 18, 512 x 36) of ceil(W / w) ceil(D / d) blocks; URAM
  ceil(W / 72) ceil(D / 4096) blocks; LUTRAM W D / 64 LUTs. Buffers in DDR
  cost nothing on chip; read-only ROM tables (fixed-point normal/exponential
  inverse CDFs) count like arrays;
* **loops**: one pipelined datapath per phase loop (neuron update per
  population with its current sources, postsynaptic models and trace code;
  pre_spike / post_spike / synapse dynamics per projection; custom updates),
  from the operations of its model code (the IR, not the text):
  each ``*`` ``/`` ``+`` ``-`` comparison and function at the operator costs
  of COSTS for the network's format, plus 80 DSP (20 32x32 multipliers) and
  600 LUT per random draw site (one unrolled Philox4x32-10);
* **interfaces**: per m_axi bundle 2 BRAM (burst FIFOs), 1200 LUT, 1800 FF;
  the s_axilite control adapter and FSM 500 LUT, 700 FF.

Limits (documented in docs/fpga.md): HLS may share operators between loops
or choose other RAM shapes, and routing, clocking and the shell are not
modelled; expect the real figures within roughly a factor of 1.5-2 of these,
and let Vitis' csynth report decide. The estimate answers "which array is too
big" and "what would fit" early, not the last percent.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from spikeforge.lang import tree as T
from spikeforge.numerics import Fixed

from .boards import Board
from .boards import board as find_board
from .program import FpgaProgram, is_weight

RESOURCES = ("bram_18k", "uram", "dsp", "lut", "ff")
RAMB18 = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
# per operator instance in a pipelined loop: (dsp, lut, ff)
COSTS = {
    "float32": {"mul": (3, 80, 150), "add": (2, 220, 350), "cmp": (0, 70, 40),
                "div": (0, 800, 1400), "func": (7, 900, 1200)},
    "float64": {"mul": (11, 200, 300), "add": (3, 700, 1000), "cmp": (0, 150, 80),
                "div": (0, 3200, 3500), "func": (26, 2500, 3000)},
}
PHILOX = (80, 600, 1200)
BUNDLE = (2, 1200, 1800)  # bram, lut, ff per m_axi bundle
CONTROL = (0, 500, 700)


@dataclass(frozen=True)
class Row:
    kind: str  # "array" | "table" | "loop" | "interface"
    name: str
    detail: str
    bram_18k: int = 0
    uram: int = 0
    dsp: int = 0
    lut: int = 0
    ff: int = 0
    nbytes: int = 0
    storage: str = ""


@dataclass
class Estimate:
    board: Board
    rows: list[Row]
    program: FpgaProgram = field(repr=False)

    @property
    def totals(self) -> dict[str, int]:
        return {r: sum(getattr(row, r) for row in self.rows) for r in RESOURCES}

    @property
    def available(self) -> dict[str, int]:
        return self.board.available()

    @property
    def over(self) -> list[str]:
        """Resources whose total exceeds what the board offers."""
        return [r for r in RESOURCES if self.totals[r] > self.available[r]]

    @property
    def fits(self) -> bool:
        return not self.over

    def utilisation(self) -> dict[str, float]:
        return {r: self.totals[r] / max(self.available[r], 1) for r in RESOURCES}

    def table(self) -> str:
        head = f"{'kind':<9} {'name':<34} {'where':<6} {'BRAM18K':>8} {'URAM':>5} {'DSP':>6} " \
               f"{'LUT':>9} {'FF':>9}  detail"
        lines = [f"resource estimate on {self.board.name} ({self.board.part}, "
                 f"{self.board.clock_mhz:g} MHz)", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.kind:<9} {r.name[:34]:<34} {r.storage:<6} {r.bram_18k:>8} "
                         f"{r.uram:>5} {r.dsp:>6} {r.lut:>9} {r.ff:>9}  {r.detail}")
        t, a = self.totals, self.available
        lines.append("-" * len(head))
        lines.append(f"{'total':<9} {'':<34} {'':<6} {t['bram_18k']:>8} {t['uram']:>5} "
                     f"{t['dsp']:>6} {t['lut']:>9} {t['ff']:>9}")
        lines.append(f"{'board':<9} {'':<34} {'':<6} {a['bram_18k']:>8} {a['uram']:>5} "
                     f"{a['dsp']:>6} {a['lut']:>9} {a['ff']:>9}")
        u = self.utilisation()
        lines.append("use      " + "  ".join(f"{r} {100 * u[r]:.0f}%" for r in RESOURCES) +
                     ("  -> fits" if self.fits else f"  -> DOES NOT FIT ({', '.join(self.over)})"))
        return "\n".join(lines)


class DoesNotFit(ValueError):
    """The accelerator needs more than the board has; the message names the
    largest arrays and what would fit."""


# arrays ----------------------------------------------------------------------------
def bram_blocks(depth: int, width: int) -> int:
    if depth <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in RAMB18)


def uram_blocks(depth: int, width: int) -> int:
    return math.ceil(width / 72) * math.ceil(depth / 4096) if depth > 0 else 0


def array_row(kind: str, name: str, depth: int, width: int, storage: str, detail: str) -> Row:
    nbytes = depth * width // 8
    if storage == "bram":
        return Row(kind, name, detail, bram_18k=bram_blocks(depth, width), nbytes=nbytes,
                   storage=storage)
    if storage == "uram":
        return Row(kind, name, detail, uram=uram_blocks(depth, width), nbytes=nbytes,
                   storage=storage)
    if storage == "lutram":
        return Row(kind, name, detail, lut=math.ceil(depth * width / 64), nbytes=nbytes,
                   storage=storage)
    return Row(kind, name, detail, nbytes=nbytes, storage=storage)


def array_rows(program: FpgaProgram, board: Board) -> list[Row]:
    rows = []
    for buf in program.buffers:
        depth = int(np.prod(buf.shape, dtype=np.int64))
        storage = program.storage(buf.key, board)
        rows.append(array_row("array", buf.key, depth, buf.dtype.itemsize * 8, storage,
                              f"{depth} x {buf.dtype.name}"))
    source = program.render()
    for table in ("normal", "exponential"):
        if f"sf_{table}_table[" in source:
            rows.append(array_row("table", f"{table}() inverse CDF", 4096, 64, "bram",
                                  "4096 x int64 ROM"))
    return rows


# loops -----------------------------------------------------------------------------
def op_counts(trees) -> dict[str, int]:
    """Operators in model-code trees: mul, div, add (incl. sub), cmp, func, draw."""
    counts = dict.fromkeys(("mul", "div", "add", "cmp", "func", "draw"), 0)

    def visit(node):
        if isinstance(node, (list, tuple, type({}.values()))):
            for item in node:
                visit(item)
            return
        if not dataclasses.is_dataclass(node):
            return
        if isinstance(node, T.BinOp):
            counts[{"*": "mul", "/": "div", "%": "div"}.get(node.op, "add")] += 1
        elif isinstance(node, T.Compare):
            counts["cmp"] += 1
        elif isinstance(node, T.Call):
            if node.func in ("uniform", "normal", "exponential", "poisson"):
                counts["draw"] += 1
            elif node.func in ("exp", "log", "sqrt", "tanh"):
                counts["func"] += 1
            elif node.func in ("deliver", "deliver_delayed", "deliver_pre"):
                counts["add"] += 1  # accumulated into the target's input
            else:  # abs min max clip floor
                counts["cmp"] += 1
        elif isinstance(node, T.Assign) and node.op is not None:
            counts[{"*": "mul", "/": "div"}.get(node.op, "add")] += 1
        for f in dataclasses.fields(node):
            visit(getattr(node, f.name))

    visit(list(trees))
    return counts


def op_costs(precision) -> dict[str, tuple[int, int, int]]:
    if isinstance(precision, Fixed):
        b = precision.bits
        mul = math.ceil(b / 25) * math.ceil(b / 18)
        return {"mul": (mul, 2 * b, 3 * b), "add": (0, b, b), "cmp": (0, b, 1),
                "div": (mul, 2 * b, 3 * b),  # a / constant: multiply by a reciprocal
                "func": (0, 0, 0)}  # only in derived params (host)
    return COSTS[precision]


def loop_row(name: str, detail: str, trees, precision, extra_draws: int = 0) -> Row:
    counts = op_counts(trees)
    costs = op_costs(precision)
    dsp = lut = ff = 0
    for op in ("mul", "div", "add", "cmp", "func"):
        d, l, f = costs[op]
        dsp, lut, ff = dsp + counts[op] * d, lut + counts[op] * l, ff + counts[op] * f
    draws = counts["draw"] + extra_draws
    dsp, lut, ff = dsp + draws * PHILOX[0], lut + draws * PHILOX[1], ff + draws * PHILOX[2]
    lut, ff = lut + 300, ff + 400  # loop control, address generation, pipeline registers
    return Row("loop", name, f"{detail}; {sum(counts.values()) - counts['draw']} ops, "
               f"{draws} Philox", dsp=dsp, lut=lut, ff=ff)


def procedural_draws(proj) -> int:
    """Philox instances a procedural row adds: the connectivity draw and one per
    synapse var with a random initialiser (regenerated per synapse)."""
    if not proj.connectivity.procedural:
        return 0
    random = [v for v in proj.weight_update.vars
              if type(proj.wu_init.get(v.name)).__name__ != "Constant"]
    return 1 + len(random)


def loop_rows(program: FpgaProgram) -> list[Row]:
    net, prec = program.network, program.network.precision
    rows = []
    for pop in net.populations:
        trees = list(pop.model.parsed.values())
        trees += [p.postsynaptic.parsed.values() for p in net.projections if p.post == pop.name]
        trees += [s.model.parsed.values() for s in net.current_sources if s.target == pop.name]
        for proj in net.projections:  # trace dynamics run in the neuron loop
            for side in ("pre", "post"):
                if getattr(proj, side) == pop.name:
                    parsed = proj.weight_update.parsed
                    trees += [parsed[f"{side}_dynamics"], parsed[f"{side}_spike_trace"]]
        rows.append(loop_row(f"neurons {pop.name}", f"{pop.size} neurons, II=1", trees, prec))
    for proj in net.projections:
        wu = proj.weight_update
        for field_name in ("pre_spike", "post_spike", "synapse_dynamics"):
            if wu.parsed.get(field_name):
                extra = procedural_draws(proj) if field_name == "pre_spike" else 0
                rows.append(loop_row(f"{field_name} {proj.name}", "CSR row, II=1",
                                     [wu.parsed[field_name]], prec, extra))
    for cu in net.custom_updates:  # a reduction folds with one add or compare
        rows.append(loop_row(f"custom {cu.name}", "II=1",
                             [cu.parsed, [T.Compare(op="<", left=None, right=None)] *
                              len(cu.reductions)], prec))
    return rows


def interface_rows(program: FpgaProgram) -> list[Row]:
    bundles = sorted({p.bundle for p in program.ports if p.kind == "m_axi"})
    rows = [Row("interface", f"m_axi {b}", "burst FIFOs + AXI master", bram_18k=BUNDLE[0],
                lut=BUNDLE[1], ff=BUNDLE[2]) for b in bundles]
    return rows + [Row("interface", "s_axilite control", "registers + ap_ctrl_hs FSM",
                       dsp=CONTROL[0], lut=CONTROL[1], ff=CONTROL[2])]


def estimate(program: FpgaProgram, board) -> Estimate:
    """Estimated resources of ``program`` on ``board`` (a Board or its name)."""
    board = find_board(board)
    return Estimate(board, array_rows(program, board) + loop_rows(program) +
                    interface_rows(program), program)


# failing early -------------------------------------------------------------------------
def check(est: Estimate) -> Estimate:
    """Raise DoesNotFit when ``est`` exceeds its board; else return it."""
    if est.fits:
        return est
    t, a = est.totals, est.available
    over = ", ".join(f"{r} {t[r]} > {a[r]}" for r in est.over)
    arrays = sorted((r for r in est.rows if r.kind in ("array", "table")),
                    key=lambda r: (r.bram_18k + 8 * r.uram, r.nbytes), reverse=True)[:3]
    named = "; ".join(f"{r.name} ({r.detail}, {r.nbytes / 1024:.0f} KiB, {r.bram_18k} BRAM"
                      f"{f', {r.uram} URAM' if r.uram else ''})" for r in arrays)
    lines = [f"network does not fit {est.board.name} ({est.board.part}): {over}",
             f"largest on-chip arrays: {named}", "what would fit:"]
    lines += suggestions(est) or ["  nothing smaller on this board: choose a larger board "
                                  "(known: zcu104, u250) or a smaller network"]
    raise DoesNotFit("\n".join(lines))


def suggestions(est: Estimate) -> list[str]:
    from .boards import BOARDS

    program, out = est.program, []
    out += weight_width_suggestion(est)
    for proj in program.network.projections:
        conn = proj.connectivity
        if "procedural" in {f.name for f in dataclasses.fields(conn)} and not conn.procedural \
                and not any(program.network.projection(proj.name).weight_update.parsed.get(f)
                            for f in ("post_spike", "synapse_dynamics")):
            saved = sum(r.bram_18k for r in est.rows if r.name.endswith(f":{proj.name}")
                        or r.name.startswith(f"state:{proj.name}."))
            out.append(f"  - procedural connectivity for {proj.name!r} "
                       f"({type(conn).__name__}(..., procedural=True)): saves ~{saved} BRAM")
    offchip = FpgaProgram(program.prepared, program.record_spikes, program.record_vars,
                          program.steps_per_call, "state", program.board)
    alt = estimate(offchip, est.board)
    verdict = "fits" if alt.fits else f"still over in {', '.join(alt.over)}"
    out.append(f"  - off-chip weights (build(..., onchip='state')): connectivity and synapse "
               f"vars stay in DDR, {alt.totals['bram_18k']} BRAM, {alt.totals['uram']} URAM: "
               f"{verdict}")
    bigger = [b.name for b in BOARDS.values() if estimate(program, b).fits]
    if bigger:
        out.append(f"  - boards it fits as is: {', '.join(bigger)}")
    return out


def weight_width_suggestion(est: Estimate) -> list[str]:
    program = est.program
    weights = [r for r in est.rows if r.kind == "array" and r.storage in ("bram", "uram")
               and is_weight(r.name, program.network) and r.name.startswith("state:")]
    if not weights:
        return []
    out = []
    for bits in (16, 8):
        saved = 0
        for r in weights:
            width = program.by_key[r.name].dtype.itemsize * 8
            if width <= bits:
                continue
            depth = r.nbytes * 8 // width
            now = r.bram_18k if r.storage == "bram" else 8 * r.uram
            saved += now - bram_blocks(depth, bits)
        if saved > 0:
            how = (f"fixed point with Var(fmt=Fixed({bits}, f)) weights"
                   if not isinstance(program.network.precision, Fixed)
                   else f"Var(fmt=Fixed({bits}, f)) for the synapse vars")
            left = est.totals["bram_18k"] - saved
            verdict = "fits" if left <= est.available["bram_18k"] else "not enough alone"
            out.append(f"  - {bits}-bit weights ({how}): ~{left} BRAM ({verdict})")
    return out
