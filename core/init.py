"""Variable initialisers, evaluated on the host in float64 from Philox.

Each element draws from its own counter, so values do not depend on array
layout: c0 = attempt (NormalClipped redraws), c1/c2 = element (neuron, 0) or
(presynaptic row, position in row), c3 = (batch << 8). The key's stream is
``"<owner>.<var>.init"``.

``draw`` is what host-side preparation calls: it evaluates the built-in random
initialisers in the native host helper (``spikeforge.native``) when available,
bit for bit equal to their ``sample`` methods, which remain the definition and
the fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import native
from .philox import Philox, exponential_from_word, normal_from_words, pack_c3, uniform_from_word

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
    for batched vars), validated against the var's shape at network assembly.
    Kept as float64, or in its own type when that is an integer type (e.g. int8
    delays in steps: 1 byte per synapse instead of 8)."""

    values: np.ndarray
    random = False

    def __post_init__(self):
        array = np.asarray(self.values)
        array = np.array(array) if array.dtype.kind in "iu" else np.asarray(array, np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError("Values: initial values must be finite (found NaN or inf)")
        array.setflags(write=False)
        object.__setattr__(self, "values", array)

    def __eq__(self, other):
        return isinstance(other, Values) and np.array_equal(self.values, other.values)

    __hash__ = None


CHUNK = 1 << 16  # elements per native chunk: the float64 scratch stays in cache


def rows_positions(row_ptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, position in row) of every entry of CSR ``row_ptr``."""
    lengths = np.diff(row_ptr)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    return rows, np.arange(int(row_ptr[-1])) - np.repeat(row_ptr[:-1], lengths)


def _counters(row_ptr, elements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(c1, c2) of the given element indices."""
    if row_ptr is None:
        return elements, np.zeros_like(elements)
    rows = np.searchsorted(row_ptr, elements, side="right") - 1
    return rows, elements - row_ptr[rows]


def draw(init: Init, rng: Philox, n: int, n_batch: int | None = None, row_ptr=None,
         dtype=np.float64) -> np.ndarray:
    """Values of ``init`` for ``n`` elements, cast from float64 to ``dtype``.

    Element e draws at counter (c1, c2) = (e, 0), or, given a CSR ``row_ptr``
    over the n elements, (row of e, position of e in its row). Shape
    ``(n_batch, n)`` with c3 = b << 8 for batch b, or ``(n,)`` with c3 = 0.
    Equals ``init.sample(rng, c1, c2, b).astype(dtype)`` bit for bit: the
    native helper only supplies the uniforms (exact), every floating-point
    operation after them is the same NumPy ufunc as in ``sample``.
    """
    shape = (n,) if n_batch is None else (n_batch, n)
    if type(init) is Constant:
        return np.full(shape, float(init.value), dtype=dtype)
    lib = None
    if type(init) in _NATIVE and n * (n_batch or 1) >= native.MIN_NATIVE:
        lib = native.host()
    if lib is None:
        c1, c2 = (np.arange(n), 0) if row_ptr is None else rows_positions(np.asarray(row_ptr))
        b = 0 if n_batch is None else np.arange(n_batch)[:, None]
        return np.array(np.broadcast_to(init.sample(rng, c1, c2, b), shape), dtype=dtype)
    result = np.empty(shape, dtype=dtype)
    out = result.reshape(n_batch or 1, n)
    rp = None if row_ptr is None else np.ascontiguousarray(row_ptr, dtype=np.int64)
    firsts = np.arange(0, n, CHUNK)
    rows = firsts if rp is None else np.searchsorted(rp, firsts, side="right") - 1
    two = type(init) in (Normal, NormalClipped)
    u0, u1 = np.empty(CHUNK), (np.empty(CHUNK) if two else None)
    for b in range(n_batch or 1):
        for first, row in zip(firsts.tolist(), rows.tolist()):
            m = min(CHUNK, n - first)
            lib.uniforms(rng.key, b << 8, rp, row, first, u0[:m], None if u1 is None else u1[:m])
            x = _NATIVE[type(init)](init, u0[:m], None if u1 is None else u1[:m])
            if type(init) is NormalClipped:
                _redraw(init, rng, x, rp, first, b)
            out[b, first:first + m] = x
    return result


def _uniform(init: Uniform, u, _):
    np.multiply(u, init.high - init.low, out=u)
    return np.add(u, init.low, out=u)


def _normal_z(u0, u1):
    """``normal_from_words`` on the uniforms, in place in u0 (same ufuncs, same order)."""
    np.log(u0, out=u0)
    np.multiply(u0, -2.0, out=u0)
    np.sqrt(u0, out=u0)
    np.multiply(u1, 2.0 * np.pi, out=u1)
    np.cos(u1, out=u1)
    return np.multiply(u0, u1, out=u0)


def _normal(init, u0, u1):
    z = _normal_z(u0, u1)
    np.multiply(z, init.sd, out=z)
    return np.add(z, init.mean, out=z)


def _exponential(init: Exponential, u, _):
    np.log(u, out=u)
    np.negative(u, out=u)
    return np.multiply(u, init.scale, out=u)


def _redraw(init: NormalClipped, rng: Philox, x: np.ndarray, row_ptr, first: int, b: int):
    """Elements outside [low, high] after attempt 0: the whole NumPy redraw rule."""
    bad = np.flatnonzero((x < init.low) | (x > init.high))
    if bad.size:
        c1, c2 = _counters(row_ptr, bad + first)
        x[bad] = init.sample(rng, c1, c2, b)


_NATIVE = {Uniform: _uniform, Normal: _normal, NormalClipped: _normal, Exponential: _exponential}


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
