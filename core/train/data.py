"""Input validation and batching for e-prop training.

A data set is ``(x, y)`` with x of shape [N, T, C] (uint8 spike counts or
float32 values per timestep) and y int labels [N], or any object with
``as_arrays() -> (x, y)``. ``y`` may be None for prediction.
"""

from __future__ import annotations

import numpy as np


def as_arrays(data, n_inputs: int, n_classes: int, what: str, labels: bool = True):
    """Validated (x, y) arrays; x keeps its dtype (converted per batch)."""
    if hasattr(data, "as_arrays"):
        data = data.as_arrays()
    if isinstance(data, np.ndarray) and not labels:
        x, y = data, None
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise TypeError(f"{what}: expected (x, y) arrays or an object with as_arrays(), "
                        f"got {type(data).__name__}")
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != n_inputs or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what}: x must have shape [N, T, {n_inputs}] (N, T >= 1), got {x.shape}")
    if x.dtype.kind not in "uif" and x.dtype != bool:
        raise TypeError(f"{what}: x must be numeric (uint8 counts or float32), got {x.dtype}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: x contains NaN or inf")
    if y is None:
        if labels:
            raise ValueError(f"{what}: labels y are required")
        return x, None
    y = np.asarray(y)
    if y.shape != (len(x),) or y.dtype.kind not in "ui":
        raise ValueError(f"{what}: y must be int labels of shape ({len(x)},), got "
                         f"{y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{what}: labels must be in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    return x, y.astype(np.int64)


def order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Sample order of an epoch: a permutation fixed by (seed, epoch), so a resumed
    run visits the same batches."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch, 7]).permutation(n)


def batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
