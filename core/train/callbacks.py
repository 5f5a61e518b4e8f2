"""Training callbacks and atomic checkpoints.

A callback receives the :class:`~spikeforge.train.EProp` model at the begin/end
of training, of each epoch and of each batch; setting ``model.stop_training``
ends training after the current batch. Callbacks that need recordings declare
``record_spikes``/``record_vars``; the trainer builds its simulation with them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "spikeforge-eprop-checkpoint-1"


class Callback:
    record_spikes: tuple = ()
    record_vars: tuple = ()

    def on_train_begin(self, model): ...
    def on_epoch_begin(self, model, epoch: int): ...
    def on_batch_begin(self, model, epoch: int, batch: int): ...
    def on_batch_end(self, model, epoch: int, batch: int, logs: dict): ...
    def on_epoch_end(self, model, epoch: int, logs: dict): ...
    def on_train_end(self, model, history: dict): ...


class Checkpoint(Callback):
    """Write a checkpoint every ``every`` batches (and at each epoch end) to ``path``;
    ``fit(..., checkpoint=path, resume=True)`` continues from it exactly."""

    def __init__(self, path, every: int = 100):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"Checkpoint: every must be a positive int, got {every!r}")
        self.path, self.every = Path(path), every

    def on_batch_end(self, model, epoch, batch, logs):
        if (batch + 1) % self.every == 0:
            model.save_checkpoint(self.path)

    def on_epoch_end(self, model, epoch, logs):
        model.save_checkpoint(self.path)


class EarlyStopping(Callback):
    """Stop when ``monitor`` (a key of the epoch logs, e.g. 'val_loss' or
    'val_accuracy') has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best, self.wait, self.stopped_epoch = None, 0, None

    def on_train_begin(self, model):
        self.best, self.wait, self.stopped_epoch = None, 0, None

    def on_epoch_end(self, model, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: no {self.monitor!r} in epoch logs {sorted(logs)} "
                           "(val_* needs validation=...)")
        value = logs[self.monitor] * (-1 if "acc" in self.monitor else 1)
        if self.best is None or value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            model.stop_training = True


class SpikeRecorder(Callback):
    """Keep the hidden layer's spikes of the first ``max_batches`` training batches of
    every epoch: ``self.spikes[(epoch, batch)] = (steps, neuron ids, batch element)``."""

    def __init__(self, max_batches: int = 1, pop: str = "hidden"):
        self.max_batches, self.pop = max_batches, pop
        self.record_spikes = (pop,)
        self.spikes = {}

    def on_batch_end(self, model, epoch, batch, logs):
        if batch < self.max_batches:
            self.spikes[(epoch, batch)] = logs["spikes"][self.pop]


class VarRecorder(Callback):
    """Keep traces of vars (e.g. 'hidden.v', 'out.y') for the first ``max_batches``
    batches of every epoch: ``self.traces[(epoch, batch)][var] = values[step, ...]``."""

    def __init__(self, variables, max_batches: int = 1):
        self.record_vars = tuple([variables] if isinstance(variables, str) else variables)
        self.max_batches, self.traces = max_batches, {}

    def on_batch_end(self, model, epoch, batch, logs):
        if batch < self.max_batches:
            self.traces[(epoch, batch)] = logs["traces"]


def save(path, arrays: dict, meta: dict) -> None:
    """Atomic write: a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps({"format": FORMAT, **meta})), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path) -> tuple[dict, dict]:
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not an e-prop checkpoint (format {meta.get('format')!r})")
        arrays = {k: np.array(data[k]) for k in data.files if k != "__meta__"}
    return arrays, meta
