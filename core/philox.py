"""Philox4x32-10, the project's single source of random numbers.

Philox (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC 2011; the Random123 library) is a counter-based generator: the
output is a pure function ``w = f_k(c)`` of a 128-bit counter
``c = (c0, c1, c2, c3)`` and a 64-bit key ``k = (k0, k1)``.  There is no
state to advance, so any backend (NumPy, C, CUDA, HLS) that evaluates the
same counters gets bit-identical words, in any order, in parallel.

One round, with ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57`` and
``hi(x)``/``lo(x)`` the upper/lower 32 bits of the 64-bit product::

    (c0, c1, c2, c3) <- (hi(M1*c2) ^ c1 ^ k0,  lo(M1*c2),
                         hi(M0*c0) ^ c3 ^ k1,  lo(M0*c0))

Between rounds the key takes a Weyl step
``k0 += 0x9E3779B9, k1 += 0xBB67AE85 (mod 2**32)``.  Ten rounds are applied.
All arithmetic here is done on ``uint64`` arrays, so every 32x32->64 product
is exact; elements are processed in cache-sized chunks with in-place ufuncs
(the loop runs over chunks and rounds, never over single elements).

``philox4x32`` hands calls of at least ``native.MIN_NATIVE`` counters to the
native host helper (``spikeforge.native``: the C of backends/cstyle/philox.h)
when it is available; ``philox4x32_numpy`` is the NumPy definition, kept as the
fallback and as the reference the helper is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import native

ROUNDS = 10
MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
WEYL = (0x9E3779B9, 0xBB67AE85)
SITE_BITS = 8
MAX_BATCH = 1 << (32 - SITE_BITS)
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_TWO32 = 1 << 32
CHUNK = 1 << 15  # elements per chunk: the working set (~2 MB) stays in cache

COUNTER_LAYOUT = """\
c0 = step: global step counter, never rewound by reset().
c1 = element major: neuron index, presynaptic row for synapses, or draw
     index for host-side generation.
c2 = element minor: position in the row for synapses; 0 for neurons.
c3 = (batch << 8) | call_site, call_site < 256, batch < 2**24 (pack_c3).
key = (seed & 0xFFFFFFFF, stream_id(purpose string)).
"""

Words = tuple[NDArray[np.uint32], NDArray[np.uint32], NDArray[np.uint32], NDArray[np.uint32]]


def _as_u64(x: ArrayLike, name: str, limit: int = _TWO32) -> NDArray[np.uint64]:
    """Integer array ``x`` as uint64, checked to lie in ``[0, limit)``."""
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer, got dtype {a.dtype}")
    if a.size and (int(a.min()) < 0 or int(a.max()) >= limit):
        raise ValueError(f"{name} must lie in [0, {limit:#x})")
    return a.astype(np.uint64)


def philox4x32(c0: ArrayLike, c1: ArrayLike, c2: ArrayLike, c3: ArrayLike,
               k0: ArrayLike, k1: ArrayLike) -> Words:
    """Philox4x32-10 of counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``.

    Arguments are 32-bit unsigned integer scalars or arrays, broadcast
    together; returns four ``uint32`` arrays of the broadcast shape.
    """
    args = [np.asarray(a) for a in (c0, c1, c2, c3, k0, k1)]
    shape = np.broadcast_shapes(*(a.shape for a in args))
    size = int(np.prod(shape, dtype=np.int64))
    lib = native.host() if size >= native.MIN_NATIVE else None
    if lib is None:
        return philox4x32_numpy(*args)
    names = ("c0", "c1", "c2", "c3", "k0", "k1")
    checked = [native.u32_array(a, n) for a, n in zip(args, names)]
    flat = [u.reshape(-1) if u.size == 1 else np.ascontiguousarray(np.broadcast_to(u, shape)).ravel()
            for u in checked]
    return tuple(w.reshape(shape) for w in lib.words(flat, size))  # type: ignore[return-value]


def philox4x32_numpy(c0: ArrayLike, c1: ArrayLike, c2: ArrayLike, c3: ArrayLike,
                     k0: ArrayLike, k1: ArrayLike) -> Words:
    """``philox4x32`` in NumPy alone (the reference definition)."""
    names = ("c0", "c1", "c2", "c3", "k0", "k1")
    args = [_as_u64(a, n) for a, n in zip((c0, c1, c2, c3, k0, k1), names)]
    shape = np.broadcast_shapes(*(a.shape for a in args))
    views = [np.broadcast_to(a, shape) for a in args]
    out = [np.empty(shape, dtype=np.uint32) for _ in range(4)]
    flat_out = [o.reshape(-1) for o in out]
    size = int(np.prod(shape, dtype=np.int64))
    for start in range(0, size, CHUNK):
        stop = min(start + CHUNK, size)
        chunk = [a.reshape(()) if a.size == 1 else v.flat[start:stop]  # scalars stay scalars
                 for a, v in zip(args, views)]
        words = _rounds(*chunk)
        for dst, src in zip(flat_out, words):
            dst[start:stop] = src
    return tuple(out)  # type: ignore[return-value]


def _rounds(x0, x1, x2, x3, key0, key1):
    """The ten rounds on one chunk of uint64 arrays (updated in place)."""
    n = max(np.size(x) for x in (x0, x1, x2, x3, key0, key1))
    x0, x1, x2, x3 = (np.array(np.broadcast_to(x, (n,)), dtype=np.uint64)
                      for x in (x0, x1, x2, x3))
    key0, key1 = np.array(key0, dtype=np.uint64), np.array(key1, dtype=np.uint64)
    p0, p1 = np.empty_like(x0), np.empty_like(x0)
    for r in range(ROUNDS):
        if r:
            key0 = (key0 + np.uint64(WEYL[0])) & _MASK32
            key1 = (key1 + np.uint64(WEYL[1])) & _MASK32
        np.multiply(x0, np.uint64(MULTIPLIERS[0]), out=p0)
        np.multiply(x2, np.uint64(MULTIPLIERS[1]), out=p1)
        np.right_shift(p1, _SHIFT32, out=x0)
        x0 ^= x1
        x0 ^= key0
        np.right_shift(p0, _SHIFT32, out=x2)
        x2 ^= x3
        x2 ^= key1
        np.bitwise_and(p1, _MASK32, out=x1)
        np.bitwise_and(p0, _MASK32, out=x3)
    return x0, x1, x2, x3


def stream_id(name: str) -> int:
    """32-bit FNV-1a hash of the UTF-8 bytes of ``name``.

    ``h = 0x811C9DC5; for each byte b: h = ((h ^ b) * 0x01000193) mod 2**32``.
    Used as key word k1, so a stream depends on its name, not creation order.
    """
    h = FNV_OFFSET
    for b in name.encode("utf-8"):
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFF
    return h


def pack_c3(batch: ArrayLike, site: ArrayLike) -> NDArray[np.uint32]:
    """Counter word c3 = ``(batch << 8) | site`` (see ``COUNTER_LAYOUT``)."""
    b = _as_u64(batch, "batch", MAX_BATCH)
    s = _as_u64(site, "site", 1 << SITE_BITS)
    return ((b << np.uint64(SITE_BITS)) | s).astype(np.uint32)


def uniform_from_word(w: ArrayLike, dtype: DTypeLike = np.float32) -> NDArray:
    """Uniform ``u = ((w >> 9) + 1/2) * 2**-23`` in the open interval (0, 1).

    A 24-bit odd numerator over 2**24: exactly representable in float32 and
    float64, so every backend gets identical uniforms in either precision.
    Word 0 gives 2**-24, word 0xFFFFFFFF gives 1 - 2**-24.
    """
    k = _as_u64(w, "w") >> np.uint64(9)
    return ((k.astype(np.float64) + 0.5) * 2.0**-23).astype(dtype)


def normal_from_words(w0: ArrayLike, w1: ArrayLike, dtype: DTypeLike = np.float32) -> NDArray:
    """Standard normal by Box-Muller in float64, then cast to ``dtype``.

    ``z = sqrt(-2 ln u1) * cos(2 pi u2)`` with ``u1, u2`` from
    ``uniform_from_word(w0), uniform_from_word(w1)``; u1 > 0 so ln is finite.
    """
    u1 = uniform_from_word(w0, np.float64)
    u2 = uniform_from_word(w1, np.float64)
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(dtype)


def exponential_from_word(w: ArrayLike, dtype: DTypeLike = np.float32) -> NDArray:
    """Unit-rate exponential ``-ln u`` (inverse CDF) in float64, then cast."""
    return (-np.log(uniform_from_word(w, np.float64))).astype(dtype)


def uniform_int(w: ArrayLike, n: ArrayLike) -> NDArray[np.int64]:
    """Integer in ``[0, n)`` as ``(w * n) >> 32`` (Lemire multiply-shift).

    Exact integer arithmetic, no rejection: with ``1 <= n <= 2**32`` the
    product fits in uint64, and each value has probability within
    ``2**-32`` of ``1/n``.  ``n`` may be an array broadcast against ``w``.
    """
    nn = _as_u64(n, "n", _TWO32 + 1)
    if nn.size and int(nn.min()) < 1:
        raise ValueError("n must be >= 1")
    return ((_as_u64(w, "w") * nn) >> _SHIFT32).astype(np.int64)


def bernoulli(w: ArrayLike, p: float) -> NDArray[np.bool_]:
    """True where ``w < min(floor(p * 2**32), 2**32)``, i.e. with probability p.

    Integer-only comparison: p = 0 is never true, p = 1 always true.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    threshold = np.uint64(min(int(np.floor(p * _TWO32)), _TWO32))
    return _as_u64(w, "w") < threshold


@dataclass(frozen=True)
class Philox:
    """A named Philox4x32-10 stream: key ``(seed & 0xFFFFFFFF, stream_id(stream))``.

    Counters follow ``COUNTER_LAYOUT``; all methods broadcast their counters.
    """

    seed: int
    stream: str

    @property
    def key(self) -> tuple[int, int]:
        """The key words (k0, k1)."""
        return self.seed & 0xFFFFFFFF, stream_id(self.stream)

    def words(self, c0: ArrayLike, c1: ArrayLike = 0, c2: ArrayLike = 0, c3: ArrayLike = 0) -> Words:
        """The four uint32 output words for counter (c0, c1, c2, c3)."""
        return philox4x32(c0, c1, c2, c3, *self.key)

    def uniform(self, c0: ArrayLike, c1: ArrayLike = 0, c2: ArrayLike = 0, c3: ArrayLike = 0,
                dtype: DTypeLike = np.float32) -> NDArray:
        """Uniform in (0, 1) from output word w0."""
        return uniform_from_word(self.words(c0, c1, c2, c3)[0], dtype)

    def normal(self, c0: ArrayLike, c1: ArrayLike = 0, c2: ArrayLike = 0, c3: ArrayLike = 0,
               dtype: DTypeLike = np.float32) -> NDArray:
        """Standard normal from output words w0, w1 (Box-Muller)."""
        w = self.words(c0, c1, c2, c3)
        return normal_from_words(w[0], w[1], dtype)

    def exponential(self, c0: ArrayLike, c1: ArrayLike = 0, c2: ArrayLike = 0, c3: ArrayLike = 0,
                    dtype: DTypeLike = np.float32) -> NDArray:
        """Unit-rate exponential from output word w0."""
        return exponential_from_word(self.words(c0, c1, c2, c3)[0], dtype)
