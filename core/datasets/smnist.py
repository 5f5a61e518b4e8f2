"""Sequential (pixel-scan) image encoding with threshold-crossing input neurons.

As in the LSNN / e-prop papers (Bellec et al. 2018, NeurIPS; Bellec et al.
2020, Nat. Commun. 11:3625, sequential MNIST): the pixels of an image are
presented one after the other in scanline order (row by row), and the grey
value is represented by a population of input neurons, each with its own
threshold, that spike when the grey value *crosses* their threshold in the
transition from the previous pixel to the current one. The papers use 80
such neurons; GeNN's e-prop reimplementation splits them into separate
"onset" (upward) and "offset" (downward) groups, which ``split_polarity``
selects here.

Encoding of one image with grey values ``g[k]`` in [0, 1] (uint8 images are
divided by 255), ``k = 0..P-1`` in scan order, ``g[-1] = 0`` (the background
before the first pixel), thresholds ``theta_j = (j + 1) / (n_thresholds + 1)``:

- pixel ``k`` occupies steps ``k*S .. k*S + S - 1`` (``S = steps_per_pixel``);
- ``split_polarity=False``: neuron ``j`` spikes at step ``k*S`` iff
  ``min(g[k-1], g[k]) < theta_j <= max(g[k-1], g[k])``;
- ``split_polarity=True``: neuron ``j`` (``j < n``) spikes iff
  ``g[k-1] < theta_j <= g[k]`` (upward) and neuron ``n + j`` iff
  ``g[k] < theta_j <= g[k-1]`` (downward);
- after the image, ``cue_steps`` steps in which the ``n_cue`` last neurons
  spike at every step (the "answer now" cue of the e-prop tasks); the other
  neurons are silent then.

Output: uint8 ``[N, P*S + cue_steps, C]`` with ``C = n_thresholds *
(2 if split_polarity else 1) + n_cue``. At 784 steps x 80 channels one image
takes 63 kB, so encode large sets per batch (`SequentialImages.batches`).

Fashion-MNIST is read from IDX files (e.g. Debian's ``dataset-fashion-mnist``
package puts them in `DEBIAN_FASHION_MNIST`).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = ["DEBIAN_FASHION_MNIST", "threshold_crossing_encode", "SequentialImages",
           "read_idx", "load_fashion_mnist"]

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def _grey(images) -> np.ndarray:
    """[N, H, W] or [N, P] images -> float64 [N, P] grey values in [0, 1]."""
    img = np.asarray(images)
    if img.ndim not in (2, 3):
        raise ValueError(f"threshold_crossing_encode: images must be [N, H, W] or [N, P], "
                         f"got shape {img.shape}")
    g = img.reshape(img.shape[0], -1)
    if img.dtype == np.uint8:
        return g.astype(np.float64) / 255.0
    g = g.astype(np.float64)
    if g.size and (g.min() < 0 or g.max() > 1):
        raise ValueError("threshold_crossing_encode: float images must lie in [0, 1] "
                         f"(got range [{g.min()}, {g.max()}]); pass uint8 for 0..255")
    return g


def threshold_crossing_encode(images, n_thresholds: int = 80, steps_per_pixel: int = 1,
                              split_polarity: bool = False, n_cue: int = 0,
                              cue_steps: int = 0) -> np.ndarray:
    """Encode images as threshold-crossing spike trains (see the module docstring)."""
    if n_thresholds < 1 or steps_per_pixel < 1 or n_cue < 0 or cue_steps < 0:
        raise ValueError("threshold_crossing_encode: need n_thresholds >= 1, steps_per_pixel >= 1,"
                         f" n_cue >= 0, cue_steps >= 0 (got {n_thresholds}, {steps_per_pixel}, "
                         f"{n_cue}, {cue_steps})")
    if cue_steps and not n_cue:
        raise ValueError("threshold_crossing_encode: cue_steps > 0 needs n_cue > 0")
    g = _grey(images)
    n, p = g.shape
    theta = np.arange(1, n_thresholds + 1) / (n_thresholds + 1.0)
    prev = np.concatenate([np.zeros((n, 1)), g[:, :-1]], axis=1)[..., None]
    cur = g[..., None]
    if split_polarity:
        spikes = np.concatenate([(prev < theta) & (theta <= cur),
                                 (cur < theta) & (theta <= prev)], axis=2)
    else:
        spikes = (np.minimum(prev, cur) < theta) & (theta <= np.maximum(prev, cur))
    c_in = spikes.shape[2]
    x = np.zeros((n, p * steps_per_pixel + cue_steps, c_in + n_cue), dtype=np.uint8)
    x[:, 0:p * steps_per_pixel:steps_per_pixel, :c_in] = spikes
    if cue_steps:
        x[:, p * steps_per_pixel:, c_in:] = 1
    return x


class SequentialImages:
    """An image set presented pixel by pixel; ``as_arrays()`` and ``batches()``
    give ``(x [N, T, C] uint8, y [N])`` as `spikeforge.train` consumes.

    ``encoding`` holds the keyword arguments of `threshold_crossing_encode`.
    """

    def __init__(self, images, labels, **encoding):
        self.images = np.asarray(images)
        self.labels = np.asarray(labels, dtype=np.int64).ravel()
        if self.images.shape[0] != self.labels.size:
            raise ValueError(f"SequentialImages: {self.images.shape[0]} images but "
                             f"{self.labels.size} labels")
        self.encoding = encoding
        threshold_crossing_encode(self.images[:1], **encoding)  # validate early

    def __len__(self) -> int:
        return self.labels.size

    def subset(self, indices) -> "SequentialImages":
        idx = np.asarray(indices, dtype=np.int64)
        return SequentialImages(self.images[idx], self.labels[idx], **self.encoding)

    def as_arrays(self):
        return threshold_crossing_encode(self.images, **self.encoding), self.labels.copy()

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0):
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle \
            else np.arange(len(self))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            yield threshold_crossing_encode(self.images[idx], **self.encoding), self.labels[idx]


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes: labels or images."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


def _find(path: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (path / name).exists():
            return path / name
    raise FileNotFoundError(f"Fashion-MNIST: {stem}[.gz] not in {path} (on Debian: "
                            "apt-get install dataset-fashion-mnist)")


def load_fashion_mnist(path=DEBIAN_FASHION_MNIST, split: str = "train"):
    """``(images uint8 [N, 28, 28], labels int64 [N])`` of the train or test split."""
    if split not in ("train", "test"):
        raise ValueError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    stem = "train" if split == "train" else "t10k"
    path = Path(path)
    images = read_idx(_find(path, f"{stem}-images-idx3-ubyte"))
    labels = read_idx(_find(path, f"{stem}-labels-idx1-ubyte")).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"Fashion-MNIST {split}: {images.shape[0]} images, {labels.shape[0]} labels")
    return images, labels
