"""Connectivity kinds and their (host-side, NumPy) generation.

Synapses are kept in CSR order: rows are presynaptic neurons, a synapse is
identified by (row, position in row), which is also its Philox element index,
so stored and procedural (regenerated per spiking row) connectivity produce
the same synapses in the same order. Random kinds draw integers only
(Bernoulli as word < p 2^32, targets as (word n) >> 32), so every backend can
regenerate them exactly. Stream: ``"<projection>.connectivity"``.

FixedProbability and FixedTotalNumber run in the native host helper
(``spikeforge.native``) when it is available, with ``post`` as int32 (whenever
targets and synapse count fit); the NumPy code is the definition and fallback.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import native
from .philox import Philox, bernoulli, uniform_int

ROW_CHUNK_WORDS = 1 << 18  # bound on words generated at once (peak memory)
INT32_LIMIT = 1 << 31


_IDENTITY: list = [None]  # weak reference to the shared identity array


def identity_index(n: int) -> np.ndarray:
    """``arange(n)`` as a read-only int32 view of one shared array (grown by
    doubling), so the identity var_index of every projection costs 4 bytes per
    synapse of the largest projection, not of all of them; int64 past 2**31."""
    if n >= INT32_LIMIT:
        return np.arange(n, dtype=np.int64)
    base = _IDENTITY[0]() if _IDENTITY[0] is not None else None
    if base is None or len(base) < n:
        size = max(n, 2 * len(base)) if base is not None else n
        base = np.arange(min(size, INT32_LIMIT - 1), dtype=np.int32)
        base.setflags(write=False)
        _IDENTITY[0] = weakref.ref(base)
    return base[:n]


def _native(work: int, n_post: int, n_syn: int = 0):
    """The host helper when worth it (``work`` words) and int32 holds targets and
    synapse count, else None."""
    if work < native.MIN_NATIVE or max(n_post, n_syn) >= INT32_LIMIT:
        return None
    return native.host()


@dataclass(frozen=True)
class Synapses:
    """Materialised connectivity: ``row_ptr`` (n_pre+1), ``post`` target per
    synapse, ``var_index`` (index into per-synapse var storage; the synapse index
    except for shared kernels) and ``n_var`` (length of var storage)."""

    row_ptr: np.ndarray
    post: np.ndarray
    var_index: np.ndarray
    n_var: int

    @property
    def pre(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.row_ptr) - 1), np.diff(self.row_ptr))

    @property
    def pos(self) -> np.ndarray:
        """Position of each synapse within its row."""
        return np.arange(len(self.post)) - np.repeat(self.row_ptr[:-1], np.diff(self.row_ptr))


def _csr(pre: np.ndarray, post: np.ndarray, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
    keys = pre.astype(np.uint16) if n_pre <= 1 << 16 else pre  # uint16: O(n) radix sort
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(pre, minlength=n_pre)
    row_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return row_ptr, post[order].astype(np.int64), order


class Connectivity:
    """Base class. ``check(owner, n_pre, n_post, same_pop)`` validates sizes;
    ``generate(rng, rows, n_pre, n_post, same_pop)`` returns Synapses for the
    given presynaptic rows (all rows for stored connectivity)."""

    procedural = False
    random = False
    shared_kernel = False

    def check(self, owner: str, n_pre: int, n_post: int) -> None:
        pass

    def materialise(self, rng: Philox, n_pre: int, n_post: int, same_pop: bool) -> Synapses:
        return self.rows(rng, np.arange(n_pre), n_pre, n_post, same_pop)

    def rows(self, rng, rows, n_pre, n_post, same_pop) -> Synapses:
        raise NotImplementedError


@dataclass(frozen=True)
class Dense(Connectivity):
    """All-to-all; synapse vars may be given as (n_pre, n_post) arrays."""

    def rows(self, rng, rows, n_pre, n_post, same_pop):
        rows = np.asarray(rows, dtype=np.int64)
        post = np.tile(np.arange(n_post, dtype=np.int64), len(rows))
        row_ptr = np.arange(len(rows) + 1, dtype=np.int64) * n_post
        var_index = (rows[:, None] * n_post + np.arange(n_post)).ravel()
        return Synapses(row_ptr, post, var_index, n_pre * n_post)


@dataclass(frozen=True)
class OneToOne(Connectivity):
    """Neuron i -> neuron i; pre and post sizes must match."""

    def check(self, owner, n_pre, n_post):
        if n_pre != n_post:
            raise ValueError(f"{owner}: OneToOne needs equal sizes, got {n_pre} -> {n_post}")

    def rows(self, rng, rows, n_pre, n_post, same_pop):
        rows = np.asarray(rows, dtype=np.int64)
        return Synapses(np.arange(len(rows) + 1, dtype=np.int64), rows.copy(), rows.copy(), n_pre)


@dataclass(frozen=True, eq=False)
class Sparse(Connectivity):
    """Explicit CSR: ``row_ptr`` (n_pre + 1, non-decreasing from 0) and ``indices``
    (targets); synapse var arrays are given in the same (CSR) order."""

    row_ptr: np.ndarray
    indices: np.ndarray

    def __post_init__(self):
        for key in ("row_ptr", "indices"):
            array = np.asarray(getattr(self, key))
            if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
                raise ValueError(f"Sparse: {key} must be a 1-D integer array")
            array = array.astype(np.int64)
            array.setflags(write=False)
            object.__setattr__(self, key, array)

    def __eq__(self, other):
        return (isinstance(other, Sparse) and np.array_equal(self.row_ptr, other.row_ptr)
                and np.array_equal(self.indices, other.indices))

    __hash__ = None

    @classmethod
    def from_pairs(cls, pre, post, n_pre: int) -> "Sparse":
        """CSR from (pre, post) pairs, stably sorted by pre (var arrays must follow
        the sorted order: ``np.argsort(pre, kind='stable')``)."""
        row_ptr, indices, _ = _csr(np.asarray(pre, dtype=np.int64), np.asarray(post), n_pre)
        return cls(row_ptr, indices)

    def check(self, owner, n_pre, n_post):
        rp, idx = self.row_ptr, self.indices
        if len(rp) != n_pre + 1 or rp[0] != 0 or np.any(np.diff(rp) < 0) or rp[-1] != len(idx):
            raise ValueError(
                f"{owner}: Sparse row_ptr must have n_pre+1 = {n_pre + 1} non-decreasing entries "
                f"from 0 to len(indices) = {len(idx)}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= n_post):
            raise ValueError(
                f"{owner}: Sparse indices out of range [0, {n_post}): "
                f"min {idx.min()}, max {idx.max()}"
            )

    def rows(self, rng, rows, n_pre, n_post, same_pop):
        rows = np.asarray(rows, dtype=np.int64)
        starts, stops = self.row_ptr[rows], self.row_ptr[rows + 1]
        lengths = stops - starts
        row_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        index = np.repeat(starts - row_ptr[:-1], lengths) + np.arange(row_ptr[-1])
        return Synapses(row_ptr, self.indices[index], index, len(self.indices))


@dataclass(frozen=True)
class FixedProbability(Connectivity):
    """Each pair (i, j) connected independently with probability p:
    word(c1=i, c2=j//4)[j%4] < p 2^32. ``autapses=False`` drops i -> i when
    pre and post are the same population."""

    p: float
    procedural: bool = False
    autapses: bool = True
    random = True

    def __post_init__(self):
        if not isinstance(self.p, (int, float)) or not 0.0 <= self.p <= 1.0:
            raise ValueError(f"FixedProbability: p must be in [0, 1], got {self.p!r}")

    def rows(self, rng, rows, n_pre, n_post, same_pop):
        rows = np.asarray(rows, dtype=np.int64)
        expected = float(self.p) * len(rows) * n_post
        # the synapse count bound: the expectation plus 8 sd (pairs alone can pass 2^31)
        lib = _native(len(rows) * n_post, n_post, int(expected + 8 * expected**0.5) + 1)
        if lib is not None:
            threshold = min(int(np.floor(float(self.p) * 2**32)), 2**32)
            counts, post = lib.probability(rows, n_post, threshold, same_pop and not self.autapses,
                                           rng.key, expected)
            row_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            return Synapses(row_ptr, post, np.full(len(post), -1, dtype=np.int64), -1)
        counts, posts = [], []  # per chunk of rows: memory O(chunk x n_post + synapses)
        step = max(1, ROW_CHUNK_WORDS // max(n_post, 1))
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            blocks = np.arange((n_post + 3) // 4)
            w = rng.words(0, chunk[:, None], blocks[None, :], 0)
            words = np.stack(w, axis=-1).reshape(len(chunk), -1)[:, :n_post]
            mask = bernoulli(words, float(self.p))
            if same_pop and not self.autapses:
                mask[np.arange(len(chunk)), chunk] = False
            counts.append(mask.sum(axis=1))
            posts.append(np.nonzero(mask)[1])
        row_ptr = np.concatenate([[0], *counts]).cumsum().astype(np.int64)
        post = np.concatenate(posts).astype(np.int64) if posts else np.zeros(0, np.int64)
        return Synapses(row_ptr, post, np.full(len(post), -1, dtype=np.int64), -1)


@dataclass(frozen=True)
class FixedNumberPost(Connectivity):
    """Each presynaptic neuron gets exactly n targets drawn uniformly with
    replacement: target k of row i = (word(c1=i, c2=k//4)[k%4] n_post) >> 32
    (without autapses: drawn from n_post-1 and shifted past i)."""

    n: int
    procedural: bool = False
    autapses: bool = True
    random = True

    def __post_init__(self):
        if not isinstance(self.n, int) or self.n < 0:
            raise ValueError(f"FixedNumberPost: n must be an int >= 0, got {self.n!r}")

    def rows(self, rng, rows, n_pre, n_post, same_pop):
        rows = np.asarray(rows, dtype=np.int64)
        exclude = same_pop and not self.autapses
        choices = n_post - 1 if exclude else n_post
        if self.n and choices < 1:
            raise ValueError(f"FixedNumberPost: no targets to choose from (n_post={n_post})")
        blocks = np.arange((self.n + 3) // 4)
        w = rng.words(0, rows[:, None], blocks[None, :], 0)
        words = np.stack(w, axis=-1).reshape(len(rows), -1)[:, : self.n]
        post = uniform_int(words, max(choices, 1))
        if exclude:
            post = post + (post >= rows[:, None])
        row_ptr = np.arange(len(rows) + 1, dtype=np.int64) * self.n
        return Synapses(row_ptr, post.ravel(), np.full(post.size, -1, dtype=np.int64), -1)


@dataclass(frozen=True)
class FixedTotalNumber(Connectivity):
    """n synapses in total, each (pre, post) pair drawn uniformly with
    replacement (multapses allowed): pair k uses words 2(k%2), 2(k%2)+1 of
    counter (c1=k//2); then sorted by (pre, post), so every row lists its
    targets in ascending order (as FixedProbability's rows do), which lets
    threads that own ranges of targets split a row instead of scanning it."""

    n: int
    random = True

    def __post_init__(self):
        if not isinstance(self.n, int) or self.n < 0:
            raise ValueError(f"FixedTotalNumber: n must be an int >= 0, got {self.n!r}")

    def materialise(self, rng, n_pre, n_post, same_pop):
        lib = _native(self.n, n_post, self.n) if n_pre >= 1 and n_post >= 1 else None
        if lib is not None:
            row_ptr, post = lib.total(self.n, n_pre, n_post, rng.key)
            return Synapses(row_ptr, post, identity_index(self.n), self.n)
        w = np.stack(rng.words(0, np.arange((self.n + 1) // 2), 0, 0), axis=-1)
        w = w.reshape(-1, 2)[: self.n]
        pre, post = uniform_int(w[:, 0], n_pre), uniform_int(w[:, 1], n_post)
        post = post[np.lexsort((post, pre))].astype(np.int64)
        counts = np.bincount(pre, minlength=n_pre)
        row_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Synapses(row_ptr, post, np.arange(len(post), dtype=np.int64), len(post))

    def rows(self, rng, rows, n_pre, n_post, same_pop):
        full = self.materialise(rng, n_pre, n_post, same_pop)
        return Sparse(full.row_ptr, full.post).rows(rng, rows, n_pre, n_post, same_pop)


def _positive_pair(kind: str, key: str, value) -> tuple[int, ...]:
    value = tuple(int(v) for v in value)
    if any(v < 1 for v in value):
        raise ValueError(f"{kind}: {key} entries must be >= 1, got {value}")
    return value


def _window_out_hw(in_shape, kernel, stride, padding) -> tuple[int, int]:
    """Output height and width of a sliding 2-D window ('valid': whole windows only;
    'same': ceil(in / stride))."""
    (h, w, _), (kh, kw), (sy, sx) = in_shape, kernel, stride
    if padding == "same":
        return -(-h // sy), -(-w // sx)
    return (h - kh) // sy + 1, (w - kw) // sx + 1


def _window_pads(in_shape, kernel, stride, padding) -> tuple[int, int]:
    """Padding before the first row/column: half of max((out - 1) s + k - in, 0) ('same')."""
    if padding == "valid":
        return 0, 0
    (h, w, _), (kh, kw), (sy, sx) = in_shape, kernel, stride
    oh, ow = _window_out_hw(in_shape, kernel, stride, padding)
    return max((oh - 1) * sy + kh - h, 0) // 2, max((ow - 1) * sx + kw - w, 0) // 2


def _check_window(conn, owner: str, n_pre: int, n_post: int) -> None:
    kind, (h, w, c), (oh, ow, oc) = type(conn).__name__, conn.in_shape, conn.out_shape
    if oh < 1 or ow < 1:
        raise ValueError(f"{owner}: {kind} {conn.WINDOW} {conn.kernel_hw} larger than input "
                         f"{conn.in_shape}")
    if n_pre != h * w * c or n_post != oh * ow * oc:
        raise ValueError(
            f"{owner}: {kind} needs pre size {h * w * c} (in_shape {conn.in_shape}) and post "
            f"size {oh * ow * oc} (out_shape {conn.out_shape}), got {n_pre} -> {n_post}"
        )


def _window_synapses(conn, kernel_index, depthwise: bool) -> Synapses:
    """Synapses of a sliding 2-D window over an index grid (oy, ox, ky, kx, ci, o), with
    o = ci when ``depthwise`` (each channel to itself; no o axis is built), else every
    input channel to every output channel; ``kernel_index(ky, kx, ci, o)`` gives each
    synapse's shared kernel entry. Taps outside the input map are dropped."""
    (h, w, c), (kh, kw), (sy, sx) = conn.in_shape, conn.kernel_hw, conn.stride
    oh, ow, oc = conn.out_shape
    pad_y, pad_x = _window_pads(conn.in_shape, conn.kernel_hw, conn.stride, conn.padding)
    axes = [np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), np.arange(c)]
    grid = np.meshgrid(*axes, *([] if depthwise else [np.arange(oc)]), indexing="ij")
    oy, ox, ky, kx, ci = grid[:5]
    o = ci if depthwise else grid[5]
    y, x = oy * sy + ky - pad_y, ox * sx + kx - pad_x
    kernel = kernel_index(ky, kx, ci, o)
    ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    pre = ((y * w + x) * c + ci)[ok]
    post = ((oy * ow + ox) * oc + o)[ok]
    row_ptr, post_sorted, order = _csr(pre, post, h * w * c)
    return Synapses(row_ptr, post_sorted, kernel[ok][order].astype(np.int64),
                    int(np.prod(conn.kernel_shape)))


class _Window2D(Connectivity):
    """Shared parts of the sliding-window connectivities (channel-last maps: neuron
    (y, x, c) has index (y W + x) C + c)."""

    shared_kernel = True
    WINDOW = "kernel"  # what error messages call the window

    def _normalise(self, keys) -> None:
        """Tuple-of-positive-int fields ``keys`` normalised; padding checked."""
        kind = type(self).__name__
        for key in keys:
            object.__setattr__(self, key, _positive_pair(kind, key, getattr(self, key)))
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{kind}: padding must be 'valid' or 'same', got {self.padding!r}")

    def check(self, owner, n_pre, n_post):
        _check_window(self, owner, n_pre, n_post)

    def rows(self, rng, rows, n_pre, n_post, same_pop):
        full = self.materialise(rng, n_pre, n_post, same_pop)
        sub = Sparse(full.row_ptr, full.post).rows(rng, rows, n_pre, n_post, same_pop)
        return Synapses(sub.row_ptr, sub.post, full.var_index[sub.var_index], full.n_var)


@dataclass(frozen=True)
class Conv2D(_Window2D):
    """2-D convolution between channel-last maps: pre neuron (y, x, c) has index
    (y W + x) C + c; post (oy, ox, o) likewise over the output map. A synapse
    from (oy s_y + ky - pad_y, ox s_x + kx - pad_x, c) to (oy, ox, o) uses the
    shared kernel weight index ((ky kw + kx) C + c) C_out + o, so kernel vars
    have kh kw C C_out entries and are read-only in synapse code."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    out_channels: int
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"

    def __post_init__(self):
        self._normalise(("in_shape", "kernel", "stride"))

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return self.kernel

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        """Shape of the shared kernel vars: (kh, kw, C, C_out)."""
        return (*self.kernel, self.in_shape[2], self.out_channels)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (*_window_out_hw(self.in_shape, self.kernel, self.stride, self.padding),
                self.out_channels)

    def materialise(self, rng, n_pre, n_post, same_pop):
        (kw, c, oc) = self.kernel[1], self.in_shape[2], self.out_channels
        return _window_synapses(
            self, lambda ky, kx, ci, o: ((ky * kw + kx) * c + ci) * oc + o, depthwise=False)


@dataclass(frozen=True)
class AvgPool2D(_Window2D):
    """2-D pooling, channel by channel, between channel-last maps (as Conv2D): a synapse
    from (oy s_y + ky - pad_y, ox s_x + kx - pad_x, c) to (oy, ox, c), ky < ph, kx < pw,
    uses the shared kernel weight index ky pw + kx, so kernel vars have ph pw entries
    (the same for every channel; read-only in synapse code). ``w = 1 / (ph pw)`` makes
    the post input the window's average of this step's input events, as in
    ANN->SNN conversion (mlGeNN's AvgPool2D). ``stride`` defaults to ``pool``;
    ``padding`` 'same' drops the taps outside the map, so border windows sum fewer
    inputs and are still divided by ph pw (zero padding; Keras' 'same' average pooling
    divides by the number of inputs inside the map instead)."""

    in_shape: tuple[int, int, int]
    pool: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: str = "valid"
    WINDOW = "pool"

    def __post_init__(self):
        if self.stride is None:
            object.__setattr__(self, "stride", self.pool)
        self._normalise(("in_shape", "pool", "stride"))

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return self.pool

    @property
    def kernel_shape(self) -> tuple[int, int]:
        """Shape of the shared kernel vars: (ph, pw)."""
        return self.pool

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (*_window_out_hw(self.in_shape, self.pool, self.stride, self.padding),
                self.in_shape[2])

    def materialise(self, rng, n_pre, n_post, same_pop):
        pw = self.pool[1]
        return _window_synapses(self, lambda ky, kx, ci, o: ky * pw + kx, depthwise=True)


CONNECTIVITY = {c.__name__: c for c in (
    Dense, OneToOne, Sparse, FixedProbability, FixedNumberPost, FixedTotalNumber, Conv2D,
    AvgPool2D)}


def narrowed(syn: Synapses) -> Synapses:
    """``post`` and ``var_index`` as int32 when every value fits (half the memory
    of int64: stored connectivity is most of a large network's host memory)."""
    fits = max(len(syn.post), syn.n_var) < 1 << 31
    if not fits:
        return syn
    return Synapses(syn.row_ptr, syn.post.astype(np.int32, copy=False),
                    syn.var_index.astype(np.int32, copy=False), syn.n_var)


def with_synapse_indices(syn: Synapses) -> Synapses:
    """Fill var_index = synapse index for kinds that generate rows without one."""
    if syn.n_var >= 0:
        return syn
    return Synapses(syn.row_ptr, syn.post, identity_index(len(syn.post)), len(syn.post))
