"""The cpu backend: generated C (one translation unit per network), compiled with
the system C compiler (-O3, OpenMP when supported) and loaded through cffi."""

from . import runtime
from .simulation import CpuSimulation


class CpuBackend:
    name = "cpu"
    # How each IR feature is verified (feature keys: spikeforge.tools.matrix.FEATURES;
    # "*" is the default); data for the README's feature x backend matrix.
    verification = {"*": "exact"}

    @staticmethod
    def availability() -> tuple[bool, str]:
        try:
            runtime.compiler()
        except runtime.CompilerNotFound as exc:
            return False, str(exc)
        return True, ""

    @staticmethod
    def build(network, record_spikes=None, record_vars=(), opt="-O3", openmp=True,
              extra_flags=(), threads=None, native=True, parallel_grain=None) -> CpuSimulation:
        """Options: ``threads`` (OpenMP threads at most; default OMP_NUM_THREADS if
        set, else 1: spinning OpenMP threads collapse on a busy machine),
        ``parallel_grain`` (neurons x batch per thread below which fewer threads are
        used, see ``team_size``; default $SPIKEFORGE_PARALLEL_GRAIN or 8000; 0: all),
        ``opt`` (optimisation flag), ``openmp``, ``native`` (-march=native, cached per
        CPU model), ``extra_flags``."""
        return CpuSimulation(network, record_spikes, record_vars, opt, openmp, extra_flags,
                             threads, native, parallel_grain)


__all__ = ["CpuBackend", "CpuSimulation"]
