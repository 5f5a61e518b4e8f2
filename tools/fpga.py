"""``spikeforge fpga``: resource estimates and bitstream projects for a board.

Commands::

    spikeforge fpga boards
        the board profiles (part, flow, clock, BRAM/URAM/DSP/LUT/FF)
    spikeforge fpga estimate MODEL.json --board B [--steps-per-call N] [--onchip all|state|none]
        prints the estimated BRAM/URAM/DSP/LUT/FF use per array and loop; exit 1
        (with the reason and what would fit) when the network does not fit B
    spikeforge fpga build MODEL.json --board B --out DIR [--steps-per-call N]
        [--record-vars P.v,...] [--onchip ...] [--tb-steps N] [--force] [--run/--no-run]
        writes the complete Vitis/Vivado project (see backends/fpga/project.py and
        docs/fpga-build.md); then runs the steps whose tools are on PATH (the g++
        testbench, vitis_hls, vivado or v++) unless --no-run, reports the csynth
        results, and prints the commands left to run elsewhere

This module imports only argparse at import time (the CLI builds its parser
from it); the backend is imported when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ONCHIP = ("all", "state", "none")


class UsageError(Exception):
    """A bad command line or model: printed as one line by the CLI."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fpga`` subcommands on ``parser``."""
    sub = parser.add_subparsers(dest="fpga_command", required=True, metavar="FPGA_COMMAND")
    sub.add_parser("boards", help="list the board profiles")
    estimate = sub.add_parser("estimate", help="resource estimate of a model on a board")
    build = sub.add_parser("build", help="write (and run) the Vitis/Vivado project")
    for p in (estimate, build):
        p.add_argument("model", help="JSON model file (Network.save)")
        p.add_argument("--board", required=True, help="board profile (see: spikeforge fpga boards)")
        p.add_argument("--steps-per-call", type=_positive_int, default=None,
                       help="timesteps per accelerator call (default: the recording chunk)")
        p.add_argument("--onchip", choices=ONCHIP, default="all",
                       help="arrays in on-chip memory: all, state (weights off-chip), none")
        p.add_argument("--record-vars", default="",
                       help="comma-separated vars to record, e.g. E.v (default: none)")
    build.add_argument("--out", required=True, help="project directory (written atomically)")
    build.add_argument("--tb-steps", type=_positive_int, default=100,
                       help="steps of the golden testbench (default: 100)")
    build.add_argument("--force", action="store_true", help="replace a non-empty --out")
    build.add_argument("--run", action=argparse.BooleanOptionalAction, default=True,
                       help="run the steps whose tools are on PATH (default: --run)")


def run(args) -> int:
    commands = {"boards": cmd_boards, "estimate": cmd_estimate, "build": cmd_build}
    return commands[args.fpga_command](args)


def _board(name: str):
    from spikeforge.backends.fpga.boards import BOARDS, board

    try:
        return board(name)
    except (KeyError, ValueError):
        raise UsageError(f"unknown board {name!r}; boards: {', '.join(sorted(BOARDS))}") from None


def _network(path: str):
    import spikeforge as sf

    if not Path(path).is_file():
        raise UsageError(f"model file not found: {path}")
    return sf.load(path)


def _record_vars(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def cmd_boards(args) -> int:
    from spikeforge.backends.fpga.boards import BOARDS

    head = ("board", "part", "flow", "MHz", "BRAM18K", "URAM", "DSP", "LUT", "FF")
    rows = [head] + [(b.name, b.part, b.flow, f"{b.clock_mhz:g}", str(b.bram_18k), str(b.uram),
                      str(b.dsp), str(b.lut), str(b.ff)) for b in BOARDS.values()]
    width = [max(len(r[k]) for r in rows) for k in range(len(head))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, width)).rstrip())
    return 0


def cmd_estimate(args) -> int:
    from spikeforge.backends.fpga import project
    from spikeforge.backends.fpga.estimate import DoesNotFit, check, estimate

    board, network = _board(args.board), _network(args.model)
    program = project.make_program(network, board, args.steps_per_call,
                                   record_vars=_record_vars(args.record_vars), onchip=args.onchip)
    est = estimate(program, board)
    print(est.table())
    try:
        check(est)
    except DoesNotFit as error:
        print(f"does not fit {board.name}: {error}")
        return 1
    return 0


def cmd_build(args) -> int:
    from spikeforge.backends.fpga import project

    board, network = _board(args.board), _network(args.model)
    out, files = project.write_project(
        network, board, args.out, force=args.force, steps_per_call=args.steps_per_call,
        record_vars=_record_vars(args.record_vars), onchip=args.onchip, tb_steps=args.tb_steps)
    print(f"wrote {len(files)} files to {out} for {board.name} ({board.part}, flow {board.flow})")
    print((out / "estimate.txt").read_text().rstrip())
    if args.run:
        result = project.run_tools(out, board)
        if result["ran"]:
            print(f"ran: {', '.join(result['ran'])}")
        if result["csim"]:
            print(f"C simulation testbench (csim.log): {result['csim']}")
        if result["csynth"]:
            print(project.format_csynth(result["csynth"]))
        if not result["skipped"]:
            return 0
    print(project.instructions(out, board))
    return 0


# errors the CLI prints as one line (by class name: no backend import needed to test)
USER_ERRORS = ("UsageError", "ProjectError", "DoesNotFit", "ToolScriptError", "ModelFileError",
               "FileNotFoundError")
