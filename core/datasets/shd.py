"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) via tonic.

Both datasets (Cramer et al. 2020, IEEE TNNLS) are 700-channel event streams.
They are loaded through the optional package ``tonic`` (``pip install tonic``),
which downloads them on first use into ``root``; without tonic, or without
internet access on first use, a clear error says so. tonic returns each sample
as a structured array with fields t (microseconds), x (channel), p, which is
exactly `events.EVENT_DTYPE`'s layout, so the samples become an `EventDataset`.

SHD: 20 classes (digits 0-9 in English and German), splits "train"/"test".
SSC: 35 classes, splits "train"/"valid"/"test".
"""
from __future__ import annotations

import numpy as np

from .events import EVENT_DTYPE, EventDataset

__all__ = ["N_CHANNELS", "load_shd", "load_ssc"]

N_CHANNELS = 700


def _tonic():
    try:
        import tonic  # noqa: F401
        import tonic.datasets
    except ImportError as e:
        raise ImportError("SHD/SSC need the optional package 'tonic' (pip install tonic) and "
                          "internet access for the first download; spikeforge does not depend "
                          f"on it ({e})") from e
    return tonic.datasets


def _to_events(sample) -> np.ndarray:
    ev = np.asarray(sample)
    out = np.empty(ev.size, dtype=EVENT_DTYPE)
    out["t"] = np.round(ev["t"]).astype(np.int64)
    out["x"] = ev["x"]
    out["p"] = ev["p"] if "p" in (ev.dtype.names or ()) else 1
    return out


def _collect(ds, name: str, limit: int | None) -> EventDataset:
    n = len(ds) if limit is None else min(limit, len(ds))
    events, labels = [], []
    for i in range(n):
        ev, label = ds[i]
        events.append(_to_events(ev))
        labels.append(int(label))
    return EventDataset(events, labels, N_CHANNELS, name=name,
                        attribution="Cramer, Stradmann, Schemmel, Zenke (2020), The Heidelberg "
                                    "spiking datasets, IEEE TNNLS; CC BY 4.0")


def _open(factory, name: str, **kw):
    try:
        return factory(**kw)
    except (OSError, RuntimeError, ValueError) as e:  # download or extraction failure
        raise RuntimeError(f"{name}: tonic could not download or open the dataset in "
                           f"{kw.get('save_to')!r} (first use needs internet access): {e}") from e


def load_shd(root, split: str = "train", limit: int | None = None) -> EventDataset:
    """SHD ``split`` ("train" or "test") as an `EventDataset` (first ``limit`` samples)."""
    if split not in ("train", "test"):
        raise ValueError(f"SHD split must be 'train' or 'test', got {split!r}")
    datasets = _tonic()
    ds = _open(datasets.SHD, "SHD", save_to=str(root), train=(split == "train"))
    return _collect(ds, f"SHD[{split}]", limit)


def load_ssc(root, split: str = "train", limit: int | None = None) -> EventDataset:
    """SSC ``split`` ("train", "valid" or "test") as an `EventDataset`."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"SSC split must be 'train', 'valid' or 'test', got {split!r}")
    datasets = _tonic()
    ds = _open(datasets.SSC, "SSC", save_to=str(root), split=split)
    return _collect(ds, f"SSC[{split}]", limit)
