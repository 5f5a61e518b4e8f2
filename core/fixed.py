"""Fixed-point arithmetic shared by every backend (semantics in docs/semantics.md).

A value x in format ``Fixed(bits, frac)`` is the integer ``round(x 2^frac)``
held in ``bits`` bits two's complement. With the network's compute format
``C = Fixed(bits, frac)``:

* ``wrap``: results are reduced modulo 2^bits into [-2^(bits-1), 2^(bits-1));
* ``a + b``, ``a - b``, ``-a``: exact, then wrap;
* ``a * b``: the double-width product shifted right by frac (floor), then wrap;
* ``a / c`` (c a param or constant): ``a * r`` with the reciprocal constant
  ``r = round(2^frac / c)``, i.e. multiplication by round(1/c) in format C;
* int operands are aligned by a left shift (``i << frac``, wrapped);
* a var stored in format S is read by shifting to C (left exact, right floor) and
  written by shifting back (right floor, left exact), then wrapped to S's bits or,
  for ``Var(saturate=True)``, clamped to S's range;
* constants (literals, params, derived params, dt, t) are rounded to nearest
  (ties to even) once;
* random draws are integer-only: ``uniform() = w >> (32 - frac)``; ``normal()``
  and ``exponential()`` read a 4096-entry inverse-CDF table at index w >> 20;
  ``poisson(lam)`` (lam a param or constant) counts the thresholds
  ``floor(F(k) 2^32)`` of Poisson's CDF F that the word reaches.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .numerics import Fixed

TABLE_BITS = 12
MAX_EVENTS = 255


def wrap(x, bits: int):
    """Two's complement wrap of int64 values to ``bits`` bits."""
    x = np.asarray(x, dtype=np.int64)
    half = np.int64(1) << np.int64(bits - 1)
    return ((x + half) & ((half << np.int64(1)) - np.int64(1))) - half


def saturate(x, bits: int):
    half = 1 << (bits - 1)
    return np.clip(np.asarray(x, dtype=np.int64), -half, half - 1)


def shift(x, by: int):
    """x 2^by: left shift exact, right shift arithmetic (floor)."""
    x = np.asarray(x, dtype=np.int64)
    return x << np.int64(by) if by >= 0 else x >> np.int64(-by)


def to_fixed(value, fmt: Fixed, what: str = "value") -> np.ndarray:
    """Round real values to ``fmt`` (nearest, ties to even); out of range is an error."""
    scaled = np.rint(np.asarray(value, dtype=np.float64) * 2.0**fmt.frac)
    half = 2.0 ** (fmt.bits - 1)
    if np.any(scaled < -half) or np.any(scaled > half - 1) or not np.all(np.isfinite(scaled)):
        worst = np.asarray(value, dtype=np.float64).ravel()
        raise ValueError(f"{what}: {worst[np.argmax(np.abs(worst))]!r} is outside the range "
                         f"of {fmt} [{-half / 2**fmt.frac}, {(half - 1) / 2**fmt.frac}]")
    return scaled.astype(np.int64)


def to_real(raw, fmt: Fixed) -> np.ndarray:
    return np.asarray(raw, dtype=np.float64) / 2.0**fmt.frac


def load(raw, store: Fixed, compute: Fixed):
    """Stored integers -> compute format."""
    return wrap(shift(raw, compute.frac - store.frac), compute.bits)


def store(value, compute: Fixed, fmt: Fixed, saturating: bool):
    """Compute format -> stored integers (wrapped, or clamped when saturating)."""
    moved = shift(value, fmt.frac - compute.frac)
    return saturate(moved, fmt.bits) if saturating else wrap(moved, fmt.bits)


def storage_dtype(fmt: Fixed):
    return {8: np.int8, 16: np.int16, 32: np.int32}[fmt.container]


def reciprocal(divisor: float, fmt: Fixed, what: str = "divisor") -> int:
    if divisor == 0:
        raise ValueError(f"{what}: division by zero")
    return int(to_fixed(1.0 / divisor, fmt, f"reciprocal of {what}"))


@lru_cache(maxsize=None)
def normal_table(fmt: Fixed) -> tuple[int, ...]:
    """Inverse normal CDF at the midpoints (k + 1/2)/4096, in ``fmt`` (clamped)."""
    from statistics import NormalDist

    n = 1 << TABLE_BITS
    values = [NormalDist().inv_cdf((k + 0.5) / n) for k in range(n)]
    return _table(values, fmt)


@lru_cache(maxsize=None)
def exponential_table(fmt: Fixed) -> tuple[int, ...]:
    """-log(1 - (k + 1/2)/4096): exponential quantiles, in ``fmt`` (clamped)."""
    n = 1 << TABLE_BITS
    return _table([-math.log1p(-(k + 0.5) / n) for k in range(n)], fmt)


def _table(values, fmt: Fixed) -> tuple[int, ...]:
    half = 2 ** (fmt.bits - 1)
    return tuple(int(min(max(round(v * 2**fmt.frac), -half), half - 1)) for v in values)


@lru_cache(maxsize=None)
def poisson_thresholds(lam: float) -> tuple[int, ...]:
    """Words w with k = #{thresholds <= w} ~ Poisson(lam): floor(F(k) 2^32) for
    k = 0, 1, ... while F(k) < 1 (at most 255)."""
    if not math.isfinite(lam) or lam < 0:
        raise ValueError(f"poisson: mean must be finite and >= 0, got {lam}")
    out, p, cdf = [], math.exp(-lam), 0.0
    for k in range(MAX_EVENTS):
        cdf += p
        threshold = math.floor(cdf * 2**32)
        if threshold >= 2**32:
            break
        out.append(threshold)
        p *= lam / (k + 1)
    return tuple(out)


def uniform_shift(fmt: Fixed) -> int:
    return 32 - fmt.frac


def format_of(var, compute: Fixed) -> Fixed:
    """Storage format of a float var in a fixed-point network."""
    return var.fmt if getattr(var, "fmt", None) is not None else compute


# build-time rules ---------------------------------------------------------------------------
TRANSCENDENTAL = ("exp", "log", "sqrt", "tanh")


def is_constant(node, constants) -> bool:
    """A literal, a param/derived param/dt, or +/- one of those (foldable at build)."""
    from .lang import tree as T

    if isinstance(node, T.UnaryOp) and node.op in "+-":
        return is_constant(node.operand, constants)
    return isinstance(node, T.Num) or (isinstance(node, T.Name) and node.id in constants)


def check_code(model_name: str, field: str, source: str, trees, constants, fmt: Fixed):
    """Reject what fixed point cannot compute exactly, with the offending line."""
    from .lang import tree as T
    from .lang.parse import ModelCodeError

    def fail(node, message):
        raise ModelCodeError(model_name, field, source, node.line or 1, node.col, message)

    for node in T.walk(trees):
        if isinstance(node, T.Call) and node.func in TRANSCENDENTAL:
            fail(node, f"fixed point: '{node.func}' is allowed only in derived params "
                       "(computed on the host)")
        if isinstance(node, T.Call) and node.func == "poisson" and not is_constant(
                node.args[0], constants):
            fail(node, "fixed point: poisson() needs a param or constant mean")
        if isinstance(node, T.BinOp) and node.op == "/" and not is_constant(node.right, constants):
            fail(node, "fixed point: division only by a param or constant "
                       "(it is folded into a reciprocal)")
        if isinstance(node, T.Num) and not node.is_int:
            try:
                to_fixed(node.value, fmt, "constant")
            except ValueError as exc:
                fail(node, f"fixed point: {exc}")
