"""The fit loop: epochs x batches, progress bars, callbacks, exact resume.

Determinism: the sample order of epoch e is a permutation fixed by (seed, e);
a checkpoint stores the weights, optimiser state, the number of updates, the
history and the position (epoch, next batch, running sums of the epoch's
metrics), so ``fit(..., resume=True)`` replays nothing and continues with the
batch after the last one saved; on a deterministic backend the result equals
an uninterrupted run bit for bit.
"""

from __future__ import annotations

import os

from .data import as_arrays, batches, order


def _records(callbacks) -> tuple[tuple, tuple]:
    spikes = sorted({p for cb in callbacks for p in getattr(cb, "record_spikes", ())})
    var_names = sorted({v for cb in callbacks for v in getattr(cb, "record_vars", ())})
    return tuple(spikes), tuple(var_names)


def _start(model, epochs, checkpoint, resume, layout) -> tuple[int, int, dict]:
    """(first epoch, first batch, running sums) — from the checkpoint when resuming."""
    empty = {"loss": 0.0, "correct": 0, "seen": 0}
    if not resume:
        model.history = {}
        return 0, 0, empty
    if checkpoint is None:
        raise ValueError("fit: resume=True needs checkpoint=<path>")
    if not os.path.exists(checkpoint):
        model.history = {}
        return 0, 0, empty
    meta = model.load_checkpoint(checkpoint)
    progress = meta.get("progress") or {"epoch": 0, "batch": 0, "sums": empty}
    saved = progress.get("layout", layout)
    if progress["batch"] and saved != layout:
        raise ValueError(f"fit: {checkpoint} stopped inside an epoch of a run with "
                         f"(samples, batch_size) = {tuple(saved)}; this call has {layout}, so "
                         "its batches would differ; resume with the same data and batch_size")
    return progress["epoch"], progress["batch"], dict(progress["sums"])


def fit(model, train, epochs, batch_size, validation, callbacks, checkpoint, resume, shuffle):
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive int, got {batch_size!r}")
    x, y = as_arrays(train, model.spec.inp.size, model.spec.out.size, "fit: train")
    val = None if validation is None else as_arrays(
        validation, model.spec.inp.size, model.spec.out.size, "fit: validation")
    model.batch_size, model._last_steps = batch_size, x.shape[1]
    record_spikes, record_vars = _records(callbacks)
    layout = [len(x), batch_size]
    epoch, first, sums = _start(model, epochs, checkpoint, resume, layout)
    model._layout = layout
    sim = model.simulation(batch_size, x.shape[1], record_spikes, record_vars)
    model.stop_training = False
    for cb in callbacks:
        cb.on_train_begin(model)
    while epoch < epochs and not model.stop_training:
        logs = _epoch(model, sim, x, y, epoch, first, sums, batch_size, callbacks, shuffle,
                      epochs, record_spikes, record_vars)
        if val is not None:
            metrics = model.evaluate(val, batch_size)
            sim = model.simulation(batch_size, x.shape[1], record_spikes, record_vars)
            logs.update(val_loss=metrics["loss"], val_accuracy=metrics["accuracy"])
        for key, value in logs.items():
            model.history.setdefault(key, []).append(value)
        epoch, first, sums = epoch + 1, 0, {"loss": 0.0, "correct": 0, "seen": 0}
        model._progress = {"epoch": epoch, "batch": 0, "sums": sums, "layout": model._layout}
        if checkpoint is not None:
            model.save_checkpoint(checkpoint)
        for cb in callbacks:
            cb.on_epoch_end(model, epoch - 1, logs)
    for cb in callbacks:
        cb.on_train_end(model, model.history)
    return model.history


def _epoch(model, sim, x, y, epoch, first, sums, batch_size, callbacks, shuffle, epochs,
           record_spikes, record_vars) -> dict:
    from tqdm.auto import tqdm

    idx = order(len(x), model.spec.seed, epoch, shuffle)
    spans = batches(len(x), batch_size)
    if first == 0:
        for cb in callbacks:
            cb.on_epoch_begin(model, epoch)
    bar = tqdm(total=len(spans), initial=first, desc=f"epoch {epoch + 1}/{epochs}",
               unit="batch", disable=not model.verbose, leave=True)
    try:
        for b in range(first, len(spans)):
            if model.stop_training:
                break
            for cb in callbacks:
                cb.on_batch_begin(model, epoch, b)
            rows = idx[spans[b][0]:spans[b][1]]
            out = model._run_batch(sim, x[rows], y[rows], train=True, epoch=epoch)
            sums["loss"] += float(out["losses"].sum())
            sums["correct"] += int(out["correct"].sum())
            sums["seen"] += len(rows)
            model._progress = {"epoch": epoch, "batch": b + 1, "sums": dict(sums),
                               "layout": model._layout}
            logs = {"loss": float(out["losses"].mean()),
                    "accuracy": float(out["correct"].mean()),
                    "spikes": out.get("spikes", {}), "traces": out.get("traces", {})}
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss'] / sums['seen']:.4f}",
                            acc=f"{sums['correct'] / sums['seen']:.3f}")
            for cb in callbacks:
                cb.on_batch_end(model, epoch, b, logs)
    finally:
        bar.close()
    seen = max(sums["seen"], 1)
    return {"loss": sums["loss"] / seen, "accuracy": sums["correct"] / seen}
