"""Code evaluation for the NumPy reference: random draws and deliveries.

Every element evaluates with its own Philox counter
(c0 = global step, c1/c2 = element, c3 = (batch << 8) | call site), so a
draw does not depend on vectorisation, masks or layout.
"""

from __future__ import annotations

import numpy as np

from spikeforge.lang.evaluate import INT, Evaluator
from spikeforge.philox import (Philox, exponential_from_word, normal_from_words, pack_c3,
                               uniform_from_word)

MAX_EVENTS = 255  # events per neuron per step (Poisson counts are capped here)


def poisson_from_word(word, lam) -> np.ndarray:
    """Poisson(lam) by inversion of one uniform u (float64): the smallest k with
    u <= sum_{i<=k} e^-lam lam^i / i!, capped at MAX_EVENTS."""
    u = uniform_from_word(word, np.float64)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), u.shape)
    p = np.exp(-lam)
    cdf = p.copy()
    k = np.zeros(u.shape, dtype=INT)
    active = u > cdf
    for i in range(1, MAX_EVENTS + 1):
        if not active.any():
            break
        k += active
        p = p * lam / i
        cdf = cdf + p
        active &= u > cdf
    return k


class Counters:
    """Philox counters of a set of elements: ``c1``/``c2``/``batch`` broadcast to
    the element shape; ``rng`` is the stream of one code field."""

    def __init__(self, rng: Philox, step: int, c1, c2, batch):
        self.rng, self.step = rng, step
        self.c1, self.c2, self.batch = c1, c2, batch

    def words(self, site: int):
        c3 = pack_c3(self.batch, site)
        return self.rng.words(self.step, self.c1, self.c2, c3)


class KernelEvaluator(Evaluator):
    """Evaluator with Philox draws and a delivery callback
    ``on_deliver(func, value, delay, mask)``."""

    def __init__(self, env, dtype, types, counters: Counters | None = None, on_deliver=None):
        super().__init__(env, dtype, types)
        self.counters = counters
        self.on_deliver = on_deliver

    def draw(self, call, args):
        w = self.counters.words(call.site)
        if call.func == "uniform":
            return uniform_from_word(w[0], self.dtype)
        if call.func == "normal":
            return normal_from_words(w[0], w[1], self.dtype)
        if call.func == "exponential":
            return exponential_from_word(w[0], self.dtype)
        if call.func == "poisson":
            return poisson_from_word(w[0], args[0])
        raise ValueError(f"unknown random function {call.func!r}")  # pragma: no cover

    def deliver(self, call, args, mask):
        if self.on_deliver is None:
            super().deliver(call, args, mask)
        value = self._cast(args[0], "float")
        delay = args[1] if call.func == "deliver_delayed" else 0
        self.on_deliver(call.func, value, delay, mask)
