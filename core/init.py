"""Variable initialisers, evaluated on the host in float64 from Philox.

Each element draws from its own counter, so values do not depend on array
layout: c0 = attempt (NormalClipped redraws), c1/c2 = element (neuron, 0) or
(presynaptic row, position in row), c3 = (batch << 8). The key's stream is
``"<owner>.<var>.init"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .philox import Philox, pack_c3, uniform_from_word, normal_from_words, exponential_from_word

MAX_REDRAWS = 64


def _finite(owner: str, **values):
    for key, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"{owner}: {key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{owner}: {key} must be finite, got {value}")


@dataclass(frozen=True)
class Init:
    """Base class: ``sample(rng, c1, c2, batch)`` returns float64 values broadcast
    over the counter arrays."""

    random = True

    def sample(self, rng: Philox, c1, c2, batch) -> np.ndarray:
        raise NotImplementedError

    def words(self, rng: Philox, c1, c2, batch, attempt=0):
        return rng.words(attempt, c1, c2, pack_c3(batch, 0))


@dataclass(frozen=True)
class Constant(Init):
    """Every element = value."""

    value: float
    random = False

    def __post_init__(self):
        _finite("Constant", value=self.value)

    def sample(self, rng, c1, c2, batch):
        return np.full(np.broadcast(c1, c2, batch).shape, float(self.value))


@dataclass(frozen=True)
class Uniform(Init):
    """low + (high - low) u, u ~ U(0,1) from one word."""

    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        _finite("Uniform", low=self.low, high=self.high)
        if self.high < self.low:
            raise ValueError(f"Uniform: high ({self.high}) < low ({self.low})")

    def sample(self, rng, c1, c2, batch):
        u = uniform_from_word(self.words(rng, c1, c2, batch)[0], np.float64)
        return self.low + (self.high - self.low) * u


@dataclass(frozen=True)
class Normal(Init):
    """mean + sd z, z ~ N(0,1) (Box-Muller on two words)."""

    mean: float = 0.0
    sd: float = 1.0

    def __post_init__(self):
        _finite("Normal", mean=self.mean, sd=self.sd)
        if self.sd < 0:
            raise ValueError(f"Normal: sd must be >= 0, got {self.sd}")

    def sample(self, rng, c1, c2, batch):
        w = self.words(rng, c1, c2, batch)
        return self.mean + self.sd * normal_from_words(w[0], w[1], np.float64)


@dataclass(frozen=True)
class NormalClipped(Init):
    """Normal(mean, sd) redrawn (fresh counter word c0 = attempt) while outside
    [low, high], up to 64 attempts, then clipped (the PD14 'redraw' rule)."""

    mean: float = 0.0
    sd: float = 1.0
    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self):
        _finite("NormalClipped", mean=self.mean, sd=self.sd)
        if self.sd < 0 or math.isnan(self.low) or math.isnan(self.high) or not self.low < self.high:
            raise ValueError(f"NormalClipped: need sd >= 0 and low < high, got {self}")

    def sample(self, rng, c1, c2, batch):
        shape = np.broadcast(c1, c2, batch).shape
        c1, c2, batch = (np.broadcast_to(a, shape) for a in (c1, c2, batch))
        out = np.full(shape, np.nan)
        todo = np.ones(shape, dtype=bool)
        for attempt in range(MAX_REDRAWS):
            w = self.words(rng, c1[todo], c2[todo], batch[todo], attempt)
            out[todo] = self.mean + self.sd * normal_from_words(w[0], w[1], np.float64)
            todo &= (out < self.low) | (out > self.high)
            if not todo.any():
                break
        return np.clip(out, self.low, self.high)


@dataclass(frozen=True)
class Exponential(Init):
    """scale e, e ~ Exp(1) = -log u."""

    scale: float = 1.0

    def __post_init__(self):
        _finite("Exponential", scale=self.scale)

    def sample(self, rng, c1, c2, batch):
        return self.scale * exponential_from_word(self.words(rng, c1, c2, batch)[0], np.float64)


@dataclass(frozen=True, eq=False)
class Values(Init):
    """Explicit values: an array with one entry per element (or per batch x element
    for batched vars), validated against the var's shape at network assembly."""

    values: np.ndarray
    random = False

    def __post_init__(self):
        array = np.asarray(self.values, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError("Values: initial values must be finite (found NaN or inf)")
        array.setflags(write=False)
        object.__setattr__(self, "values", array)

    def __eq__(self, other):
        return isinstance(other, Values) and np.array_equal(self.values, other.values)

    __hash__ = None


INITIALISERS = {c.__name__: c for c in (Constant, Uniform, Normal, NormalClipped, Exponential)}


def as_init(owner: str, value) -> Init:
    """Accept an Init, a number (Constant) or an array-like (Values)."""
    if isinstance(value, Init):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Constant(float(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            return Values(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{owner}: {exc}") from None
    raise TypeError(f"{owner}: cannot initialise from {type(value).__name__} {value!r}")
