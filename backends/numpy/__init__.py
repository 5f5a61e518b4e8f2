"""The NumPy reference backend: vectorised, the executable definition of every semantic."""

from .simulation import NumpySimulation


class NumpyBackend:
    name = "numpy"
    # How each IR feature is verified (feature keys: spikeforge.tools.matrix.FEATURES;
    # "*" is the default); data for the README's feature x backend matrix.
    verification = {"*": "reference"}

    @staticmethod
    def availability() -> tuple[bool, str]:
        return True, ""

    @staticmethod
    def build(network, record_spikes=None, record_vars=(), **options) -> NumpySimulation:
        if options:
            raise TypeError(f"numpy backend: unknown build option(s) {sorted(options)}")
        return NumpySimulation(network, record_spikes, record_vars)


__all__ = ["NumpyBackend", "NumpySimulation"]
