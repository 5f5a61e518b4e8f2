"""Event datasets in tonic's structured-array form, binning and padding.

An *event stream* is a NumPy structured array with at least the fields

    t  (integer, microseconds from the start of the sample)
    x  (integer, input channel index in [0, n_channels))
    p  (integer polarity; kept for compatibility with tonic, ignored by binning)

exactly as tonic returns audio/neuromorphic samples (``tonic.datasets.SHD``).

Binning to timesteps (`bin_events`): with ``dt_us = dt_ms * 1000`` an event at
time ``t`` falls into step ``k = floor((t - t0_us) / dt_us)``; the frame entry
``frames[k, x]`` counts the events with that step and channel. Events with
``k < 0`` or ``k >= n_steps`` are dropped (so ``n_steps`` truncates long
samples). Counts are stored as uint8 by default; a count above 255 raises
``ValueError`` (choose ``dtype=np.float32`` or a smaller ``dt_ms``), it is
never clipped silently.

Padding (`pad_frames`): frames of different lengths are stacked into
``[N, T, C]`` with zeros after each sample's end; ``lengths[i]`` is the
number of real steps of sample ``i``.
"""
from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i4"), ("p", "<i1")])

__all__ = ["EVENT_DTYPE", "make_events", "check_events", "bin_events", "pad_frames",
           "frames_to_events", "EventDataset"]


def make_events(t_us, x, p=None) -> np.ndarray:
    """Build an event stream (sorted by time, then channel) from parallel arrays."""
    t_us = np.asarray(t_us, dtype=np.int64).ravel()
    x = np.asarray(x, dtype=np.int64).ravel()
    if t_us.shape != x.shape:
        raise ValueError(f"make_events: t has {t_us.size} entries but x has {x.size}")
    p = np.zeros_like(x) if p is None else np.asarray(p).ravel()
    ev = np.empty(t_us.size, dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["p"] = t_us, x, p
    return ev[np.lexsort((ev["x"], ev["t"]))]


def check_events(events, n_channels: int | None = None, name: str = "events") -> np.ndarray:
    """Validate an event stream: structured array with integer fields t and x, t >= 0."""
    ev = np.asarray(events)
    if ev.dtype.names is None or "t" not in ev.dtype.names or "x" not in ev.dtype.names:
        raise ValueError(f"{name}: expected a structured array with fields t [us] and x, "
                         f"got dtype {ev.dtype}")
    if ev.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D event array, got shape {ev.shape}")
    if ev.size and ev["t"].min() < 0:
        raise ValueError(f"{name}: negative event time {ev['t'].min()} us")
    if ev.size and n_channels is not None:
        lo, hi = int(ev["x"].min()), int(ev["x"].max())
        if lo < 0 or hi >= n_channels:
            raise ValueError(f"{name}: channel index out of range [0, {n_channels}): "
                             f"min {lo}, max {hi}")
    return ev


def _n_steps_for(ev, dt_us: float, t0_us: int) -> int:
    if ev.size == 0:
        return 0
    return int((int(ev["t"].max()) - t0_us) // dt_us) + 1


def bin_events(events, n_channels: int, dt_ms: float, n_steps: int | None = None,
               t0_us: int = 0, dtype=np.uint8) -> np.ndarray:
    """Count events per (step, channel): returns ``[n_steps, n_channels]``.

    ``n_steps=None`` uses the smallest number of steps that holds every event.
    """
    if dt_ms <= 0:
        raise ValueError(f"bin_events: dt_ms must be > 0, got {dt_ms}")
    ev = check_events(events, n_channels)
    dt_us = dt_ms * 1000.0
    steps = _n_steps_for(ev, dt_us, t0_us) if n_steps is None else int(n_steps)
    k = np.floor((ev["t"].astype(np.float64) - t0_us) / dt_us).astype(np.int64)
    keep = (k >= 0) & (k < steps)
    counts = np.zeros((steps, n_channels), dtype=np.int64)
    np.add.at(counts, (k[keep], ev["x"][keep].astype(np.int64)), 1)
    if np.dtype(dtype) == np.uint8 and counts.size and counts.max() > 255:
        raise ValueError(f"bin_events: {counts.max()} events in one bin of {dt_ms} ms exceed "
                         "uint8; use dtype=np.float32 or a smaller dt_ms")
    return counts.astype(dtype)


def pad_frames(frames, n_steps: int | None = None, dtype=None):
    """Stack ``[T_i, C]`` frames into ``[N, T, C]`` (zero padding, truncation at n_steps).

    Returns ``(x, lengths)`` where ``lengths[i] = min(T_i, T)``.
    """
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ValueError("pad_frames: no frames given")
    chans = {f.shape[1] for f in frames if f.ndim == 2}
    if len(chans) != 1 or any(f.ndim != 2 for f in frames):
        raise ValueError(f"pad_frames: every frame must be [T, C] with the same C, got "
                         f"shapes {sorted({f.shape for f in frames})[:4]}")
    T = max(f.shape[0] for f in frames) if n_steps is None else int(n_steps)
    out = np.zeros((len(frames), T, chans.pop()), dtype=dtype or frames[0].dtype)
    lengths = np.zeros(len(frames), dtype=np.int64)
    for i, f in enumerate(frames):
        n = min(T, f.shape[0])
        out[i, :n] = f[:n]
        lengths[i] = n
    return out, lengths


def frames_to_events(frames, dt_ms: float) -> np.ndarray:
    """Inverse of `bin_events` up to position in the bin: one event per count,
    at the start of its bin (``t = k * dt_ms * 1000`` us)."""
    frames = np.asarray(frames)
    if frames.ndim != 2:
        raise ValueError(f"frames_to_events: expected [T, C], got shape {frames.shape}")
    k, c = np.nonzero(frames)
    reps = frames[k, c].astype(np.int64)
    t = np.repeat(np.round(k * dt_ms * 1000.0).astype(np.int64), reps)
    return make_events(t, np.repeat(c, reps))


class EventDataset:
    """A labelled list of event streams over ``n_channels`` input channels.

    ``ds[i] -> (events, label)``; ``as_arrays(dt_ms, n_steps) -> (x, y)`` with
    ``x`` uint8 ``[N, n_steps, n_channels]`` spike counts per step and ``y``
    int64 ``[N]`` — the array form ``spikeforge.train`` consumes.
    ``meta`` holds per-sample metadata (e.g. speaker, recording index).
    """

    def __init__(self, events, labels, n_channels: int, meta: dict | None = None,
                 name: str = "EventDataset", attribution: str | None = None):
        self.events = [check_events(e, n_channels, f"{name}[{i}]") for i, e in enumerate(events)]
        self.labels = np.asarray(labels, dtype=np.int64).ravel()
        if self.labels.size != len(self.events):
            raise ValueError(f"{name}: {len(self.events)} samples but {self.labels.size} labels")
        self.n_channels = int(n_channels)
        self.meta = {k: np.asarray(v) for k, v in (meta or {}).items()}
        for k, v in self.meta.items():
            if len(v) != len(self.events):
                raise ValueError(f"{name}: meta field {k!r} has {len(v)} entries, "
                                 f"expected {len(self.events)}")
        self.name = name
        self.attribution = attribution

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, i):
        return self.events[i], int(self.labels[i])

    def __repr__(self) -> str:
        return (f"EventDataset({self.name!r}, {len(self)} samples, {self.n_channels} channels, "
                f"{len(np.unique(self.labels))} classes)")

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0

    def durations_us(self) -> np.ndarray:
        """Time of the last event of each sample (0 for an empty sample)."""
        return np.array([int(e["t"].max()) if e.size else 0 for e in self.events])

    def subset(self, indices, name: str | None = None) -> "EventDataset":
        """A new dataset with the samples at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return EventDataset([self.events[i] for i in idx], self.labels[idx], self.n_channels,
                            {k: v[idx] for k, v in self.meta.items()},
                            name or self.name, self.attribution)

    def frames(self, i: int, dt_ms: float, n_steps: int | None = None, dtype=np.uint8):
        """Binned ``[T, C]`` counts of sample ``i``."""
        return bin_events(self.events[i], self.n_channels, dt_ms, n_steps, dtype=dtype)

    def with_binning(self, dt_ms: float, n_steps: int | None = None) -> "EventDataset":
        """The same samples with default binning, so that ``as_arrays()`` needs no
        arguments (the form ``spikeforge.train`` accepts: ``model.fit(ds.with_binning(4, 250))``)."""
        if dt_ms <= 0:
            raise ValueError(f"{self.name}.with_binning: dt_ms must be > 0, got {dt_ms}")
        out = self.subset(np.arange(len(self)), self.name)
        out._binning = (float(dt_ms), n_steps)
        return out

    def as_arrays(self, dt_ms: float | None = None, n_steps: int | None = None, dtype=np.uint8):
        """``(x [N, T, C], y [N])``; ``n_steps=None`` pads to the longest sample.
        Without ``dt_ms`` the binning set by `with_binning` is used."""
        if dt_ms is None:
            if getattr(self, "_binning", None) is None:
                raise ValueError(f"{self.name}.as_arrays: dt_ms is required (or set a default "
                                 "with with_binning(dt_ms, n_steps))")
            dt_ms, n_steps = self._binning[0], self._binning[1] if n_steps is None else n_steps
        if n_steps is None:
            n_steps = max(1, int(max((_n_steps_for(e, dt_ms * 1000.0, 0) for e in self.events),
                                     default=1)))
        x = np.zeros((len(self), int(n_steps), self.n_channels), dtype=dtype)
        for i in range(len(self)):
            x[i] = self.frames(i, dt_ms, n_steps, dtype)
        return x, self.labels.copy()

    def batches(self, batch_size: int, dt_ms: float, n_steps: int | None = None,
                shuffle: bool = False, seed: int = 0, drop_last: bool = False):
        """Yield ``(x [B, T, C], y [B], lengths [B])`` batches; each batch is padded
        to ``n_steps`` or, when None, to its own longest sample."""
        if batch_size < 1:
            raise ValueError(f"{self.name}.batches: batch_size must be >= 1, got {batch_size}")
        order = np.arange(len(self))
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(self))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            if drop_last and idx.size < batch_size:
                return
            fr = [self.frames(i, dt_ms) for i in idx]
            x, lengths = pad_frames(fr, n_steps or max(1, max(f.shape[0] for f in fr)))
            yield x, self.labels[idx], lengths
