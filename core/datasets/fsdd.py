"""Free Spoken Digit Dataset (FSDD) encoded to spikes: an SHD-like offline task.

The recordings are read from a directory given by the caller (never a
built-in path): either the dataset root holding ``recordings/`` or the
``recordings/`` folder itself. File names are ``{digit}_{speaker}_{index}.wav``
(8 kHz mono 16-bit PCM; 6 speakers x 10 digits x 50 takes = 3000 files).

Splits:
- conventional: takes ``index`` 0-4 of every speaker and digit are the test
  set (300 files), 5-49 the training set (2700), as the FSDD README states;
- leave-one-speaker-out: every recording of one speaker is the test set.

Each recording is converted to float in [-1, 1], its mean removed and
(``normalize="peak"``, default) scaled to peak amplitude 1 (``"rms"``: RMS
0.1; ``None``: unchanged), then encoded with `audio.AudioEncoder`. Encoded
events are cached in ``cache_dir`` (an ``.npz`` keyed by a hash of the encoder
parameters, the normalisation and the file names and sizes), so later loads
skip the encoding.

Licence: the recordings are CC BY-SA 4.0 (see `ATTRIBUTION`); keep the
attribution wherever the data or results derived from it are published.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import wave
from pathlib import Path

import numpy as np

from .audio import AudioEncoder
from .events import EVENT_DTYPE, EventDataset

__all__ = ["ATTRIBUTION", "SPEAKERS", "find_recordings", "list_recordings", "read_wav",
           "load_fsdd", "conventional_split", "speaker_split", "split", "fsdd_arrays"]

ATTRIBUTION = ("Free Spoken Digit Dataset (FSDD): Z. Jackson, C. Souza, J. Flaks, Y. Pan, "
               "H. Nicolas, A. Thite, github.com/Jakobovski/free-spoken-digit-dataset, "
               "DOI 10.5281/zenodo.1342401; licence CC BY-SA 4.0.")
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def find_recordings(path) -> Path:
    """The folder with the ``.wav`` files: ``path/recordings`` or ``path`` itself."""
    p = Path(path)
    if (p / "recordings").is_dir():
        p = p / "recordings"
    if not p.is_dir() or not any(_NAME.match(f.name) for f in p.iterdir()):
        raise FileNotFoundError(f"FSDD: no '{{digit}}_{{speaker}}_{{index}}.wav' recordings in "
                                f"{path} (nor in {path}/recordings)")
    return p


def list_recordings(path) -> dict:
    """Parse the file names: ``{"digit", "speaker", "index", "file"}`` arrays, sorted."""
    files = sorted(f for f in find_recordings(path).iterdir() if _NAME.match(f.name))
    parts = [_NAME.match(f.name).groups() for f in files]
    return {"digit": np.array([int(d) for d, _, _ in parts], dtype=np.int64),
            "speaker": np.array([s for _, s, _ in parts]),
            "index": np.array([int(i) for _, _, i in parts], dtype=np.int64),
            "file": np.array([str(f) for f in files])}


def read_wav(path):
    """Mono 8- or 16-bit PCM WAV -> (float64 samples in [-1, 1], sample rate)."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono audio, got {w.getnchannels()} channels")
        width, fs, raw = w.getsampwidth(), w.getframerate(), w.readframes(w.getnframes())
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0, fs
    if width == 1:
        return (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0, fs
    raise ValueError(f"{path}: unsupported sample width {width} bytes (need 8- or 16-bit PCM)")


def _normalise(x, how):
    x = x - x.mean() if x.size else x
    if how is None or not x.size:
        return x
    if how == "peak":
        m = np.abs(x).max()
        return x / m if m > 0 else x
    if how == "rms":
        r = np.sqrt((x ** 2).mean())
        return 0.1 * x / r if r > 0 else x
    raise ValueError(f"FSDD normalize must be 'peak', 'rms' or None, got {how!r}")


def _cache_key(rec, encoder, normalize) -> str:
    h = hashlib.sha256(json.dumps([encoder.params(), normalize], sort_keys=True).encode())
    for f in rec["file"]:
        h.update(f"{os.path.basename(f)}:{os.path.getsize(f)};".encode())
    return h.hexdigest()[:16]


def _encode_all(rec, encoder, normalize, progress):
    events = []
    files = rec["file"]
    if progress:
        from tqdm.auto import tqdm
        files = tqdm(files, desc=f"encoding FSDD ({encoder.n_channels} ch)", unit="rec")
    for f in files:
        x, fs = read_wav(f)
        events.append(encoder.encode(_normalise(x, normalize), fs))
    return events


def _save_cache(file: Path, events, key):
    off = np.cumsum([0] + [len(e) for e in events])
    cat = np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE)
    tmp = file.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, t=cat["t"], x=cat["x"], p=cat["p"], offsets=off, key=key)
    os.replace(tmp, file)


def _load_cache(file: Path, key, n):
    if not file.exists():
        return None
    with np.load(file) as z:
        if str(z["key"]) != key or len(z["offsets"]) != n + 1:
            return None
        cat = np.empty(len(z["t"]), EVENT_DTYPE)
        cat["t"], cat["x"], cat["p"] = z["t"], z["x"], z["p"]
        off = z["offsets"]
    return [cat[off[i]:off[i + 1]] for i in range(n)]


def load_fsdd(path, encoder: AudioEncoder | None = None, normalize: str | None = "peak",
              cache_dir=None, progress: bool = True) -> EventDataset:
    """All recordings as an `EventDataset` (label = digit; meta: speaker, index).

    ``cache_dir=None`` disables caching; otherwise the encoded events are
    stored there and reused when the encoder, normalisation and files match.
    """
    encoder = encoder or AudioEncoder()
    rec = list_recordings(path)
    key = _cache_key(rec, encoder, normalize)
    events = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"fsdd_{encoder.n_channels}ch_{key}.npz"
        events = _load_cache(cache, key, len(rec["file"]))
    if events is None:
        events = _encode_all(rec, encoder, normalize, progress)
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            _save_cache(cache, events, key)
    return EventDataset(events, rec["digit"], encoder.n_channels,
                        {"speaker": rec["speaker"], "index": rec["index"]},
                        name="FSDD", attribution=ATTRIBUTION)


def conventional_split(meta: dict):
    """(train indices, test indices): test = take index 0-4 of every speaker and digit."""
    idx = np.asarray(meta["index"])
    return np.flatnonzero(idx >= 5), np.flatnonzero(idx < 5)


def speaker_split(meta: dict, speaker: str):
    """(train indices, test indices): test = every recording of ``speaker``."""
    spk = np.asarray(meta["speaker"])
    if speaker not in set(spk.tolist()):
        raise ValueError(f"FSDD: unknown speaker {speaker!r}; have {sorted(set(spk.tolist()))}")
    return np.flatnonzero(spk != speaker), np.flatnonzero(spk == speaker)


def split(ds: EventDataset, how: str = "conventional"):
    """``(train, test)`` datasets; ``how`` is "conventional" or "speaker:<name>"."""
    if how == "conventional":
        tr, te = conventional_split(ds.meta)
    elif how.startswith("speaker:"):
        tr, te = speaker_split(ds.meta, how.split(":", 1)[1])
    else:
        raise ValueError(f"FSDD split must be 'conventional' or 'speaker:<name>', got {how!r}")
    return ds.subset(tr, f"{ds.name}[{how} train]"), ds.subset(te, f"{ds.name}[{how} test]")


def fsdd_arrays(path, how: str = "conventional", n_channels: int = 64, dt_ms: float = 4.0,
                n_steps: int = 250, cache_dir=None, progress: bool = True, **encoder_kw):
    """``((x_train, y_train), (x_test, y_test))`` uint8 ``[N, n_steps, n_channels]``
    spike counts in ``dt_ms`` bins (default 250 x 4 ms = 1 s, zero-padded)."""
    ds = load_fsdd(path, AudioEncoder(n_channels=n_channels, **encoder_kw),
                   cache_dir=cache_dir, progress=progress)
    train, test = split(ds, how)
    return train.as_arrays(dt_ms, n_steps), test.as_arrays(dt_ms, n_steps)
