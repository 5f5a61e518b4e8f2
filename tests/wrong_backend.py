"""Deliberately wrong backends, for testing that the validation machinery catches
them (tests/test_validate.py registers one at a time under the name "wrong"
through a fixture and unregisters it afterwards; nothing else sees them).

* :class:`DropsDendriticDelays`: the numpy reference, except that
  ``deliver_delayed(x, k)`` delivers in this step (as if k = 0): the classic bug
  of a backend that ignores the dendritic input ring buffer.
* :class:`RoundsToHalf`: the numpy reference, except that after every step each
  float state var is rounded to ``BITS`` significant bits (relative error up to
  2**-BITS = 1e-3, above float32's rtol = 1e-4): a backend that stores state in a
  narrower format. (A one-ulp perturbation would *not* be a bug under the float
  tolerance policy of ``spikeforge.compare``; it only matters in fixed point.)
"""

from __future__ import annotations

import numpy as np

from spikeforge.backends.numpy import NumpyBackend, NumpySimulation

BITS = 10


class _DropsDelaysSimulation(NumpySimulation):
    backend = "wrong"

    def _delivery(self, proj, inputs, es):
        deliver = super()._delivery(proj, inputs, es)

        def now(func, value, delay, mask):
            deliver(func, value, 0, mask)

        return now


class _RoundsToHalfSimulation(NumpySimulation):
    backend = "wrong"

    def _step(self):
        super()._step()
        for value in self.state.values():
            if np.issubdtype(value.dtype, np.floating):
                mantissa, exponent = np.frexp(value)
                value[...] = np.ldexp(np.round(mantissa * 2.0**BITS) / 2.0**BITS, exponent)


class _WrongBackend(NumpyBackend):
    name = "wrong"
    simulation = NumpySimulation

    @classmethod
    def build(cls, network, record_spikes=None, record_vars=(), **options):
        if options:
            raise TypeError(f"wrong backend: unknown build option(s) {sorted(options)}")
        return cls.simulation(network, record_spikes, record_vars)


class DropsDendriticDelays(_WrongBackend):
    simulation = _DropsDelaysSimulation


class RoundsToHalf(_WrongBackend):
    simulation = _RoundsToHalfSimulation


class Unavailable(_WrongBackend):
    """Registered but not runnable here: validate must skip it with the reason."""

    @staticmethod
    def availability() -> tuple[bool, str]:
        return False, "needs hardware this machine lacks"


class CannotLower(_WrongBackend):
    """Says at build time that it cannot lower the network (NotImplementedError)."""

    @classmethod
    def build(cls, network, record_spikes=None, record_vars=(), **options):
        raise NotImplementedError("wrong backend: projections are not supported")


class Crashes(_WrongBackend):
    """Crashes while running: validate must count that as a failure."""

    @classmethod
    def build(cls, network, record_spikes=None, record_vars=(), **options):
        sim = super().build(network, record_spikes, record_vars, **options)

        def boom(n):
            raise RuntimeError("wrong backend: kernel launch failed")

        sim._advance = boom
        return sim
