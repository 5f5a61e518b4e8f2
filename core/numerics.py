"""Number formats: float32 (default), float64, and fixed point ``Fixed(bits, frac)``.

Fixed-point semantics (DESIGN.md, binding on every backend): a value x is
stored as the integer round(x 2^frac) in ``bits`` bits two's complement; every
operation's result is brought to the network's format at once (products in
double width, then an arithmetic shift right: floor); sums wrap; constants are
rounded to nearest once at build time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fixed:
    """Two's complement fixed point with ``bits`` total bits (2 to 32), ``frac``
    fractional. Values are held in the smallest of int8/int16/int32 that fits
    (``container``) and wrapped (or saturated) to ``bits`` after every operation,
    as an ``ap_fixed<bits, bits - frac>`` with AP_WRAP (or AP_SAT) would be."""

    bits: int = 32
    frac: int = 16

    def __post_init__(self):
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 32:
            raise ValueError(f"Fixed: bits must be an int from 2 to 32, got {self.bits!r}")
        if not isinstance(self.frac, int) or not 0 <= self.frac < self.bits:
            raise ValueError(f"Fixed: frac must be an int in [0, {self.bits}), got {self.frac!r}")

    def __str__(self):
        return f"Fixed({self.bits}, {self.frac})"

    @property
    def container(self) -> int:
        """Bits of the integer type that stores the format: 8, 16 or 32."""
        return next(c for c in (8, 16, 32) if self.bits <= c)


FLOAT_FORMATS = {"float32": np.float32, "float64": np.float64}


def check_precision(precision) -> "str | Fixed":
    if isinstance(precision, Fixed) or precision in FLOAT_FORMATS:
        return precision
    raise ValueError(
        f"precision must be 'float32', 'float64' or Fixed(bits, frac), got {precision!r}"
    )


def scalar_dtype(precision) -> type:
    """NumPy dtype of 'float' vars for a float precision."""
    if isinstance(precision, Fixed):
        raise NotImplementedError(
            f"fixed-point precision {precision} is not implemented yet in this backend "
            "(planned with the cpu backend issue); use 'float32' or 'float64'"
        )
    return FLOAT_FORMATS[precision]
