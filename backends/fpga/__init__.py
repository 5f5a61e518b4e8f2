"""The fpga backend: a per-network Vitis HLS C++ accelerator (program.py) run as
C simulation (g++, csim.py) by default, or on a board through PYNQ
(pynq_runtime.py) when a bitstream is given. Resource estimates per board
profile: estimate.py, boards.py."""

from __future__ import annotations

from functools import partial

from . import csim
from .program import FpgaProgram, Port
from .simulation import CSimExecutor, FpgaSimulation


class FpgaBackend:
    name = "fpga"
    # C simulation of the generated accelerator, bit-exact to numpy in fixed point.
    verification = {"*": "exact"}

    @staticmethod
    def availability() -> tuple[bool, str]:
        try:
            csim.compiler()
        except csim.CompilerNotFound as exc:
            return False, str(exc)
        return True, ""

    @staticmethod
    def build(network, record_spikes=None, record_vars=(), bitstream=None, board=None,
              steps_per_call=None, onchip="all", opt="-O1", extra_flags=(),
              pynq_options=None) -> FpgaSimulation:
        """Without ``bitstream``: C simulation of the accelerator (``opt``,
        ``extra_flags`` go to g++). With ``bitstream`` (path of the .bit/.xclbin
        that ``spikeforge fpga build`` produced): the same accelerator on a board
        through PYNQ. ``board`` (a name in boards.BOARDS or a Board): the resource
        estimate must fit it (else DoesNotFit, before compiling) and large on-chip
        arrays go to URAM where the board has it; ``onchip`` ('all', 'state':
        off-chip weights, 'auto': 'all' if it fits the board else 'state', 'none',
        or buffer keys) and ``steps_per_call`` shape the accelerator (FpgaProgram).
        ``pynq_options`` (with ``bitstream``): keyword arguments of PynqExecutor
        (``device``, ``header``, ``ip_name``, ``timeout_s``, ``download``)."""
        if board is not None:
            from .boards import board as find_board
            board = find_board(board)
        options = {"steps_per_call": steps_per_call, "onchip": onchip, "board": board}
        if pynq_options and bitstream is None:
            raise ValueError("fpga backend: pynq_options need a bitstream (C simulation has none)")
        if bitstream is None:
            executor = partial(CSimExecutor, opt=opt, extra_flags=tuple(extra_flags))
        else:
            from .pynq_runtime import PynqExecutor  # optional: needs pynq

            executor = partial(PynqExecutor, bitstream=bitstream, **(pynq_options or {}))
        return FpgaSimulation(network, record_spikes, record_vars, executor, **options)


__all__ = ["CSimExecutor", "FpgaBackend", "FpgaProgram", "FpgaSimulation", "Port"]
