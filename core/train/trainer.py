"""The e-prop trainer: ``EProp(layers, ...)`` with fit / evaluate / predict / export.

One batch (``batch_size`` samples of T input steps) is one call of the built
simulation: the host writes the samples (``sample.x``), one-hot targets and
masks, runs the custom-update group ``reset``, runs N = T + 2 steps (N + 2 for
learning_signal='final') in one call, then (training) ``reduce`` and ``optimize``.
A last, partial batch is padded; padded samples have mask 0, so they add nothing
to gradients or metrics.
"""

from __future__ import annotations

import math

import numpy as np

from . import callbacks as C
from .compiler import (
    EXTRA_STEPS,
    Spec,
    from_synapses,
    hidden_name,
    initial_state,
    links,
    lower,
    parse_layers,
    to_synapses,
)
from .data import as_arrays, batches
from .optim import Adam


class EProp:
    """Train a recurrent SNN (LSNN) with e-prop on any backend that lowers the IR.

    ``layers``: [Input(C), Recurrent(H, ...), Readout(K, tau)]. ``loss``: 'per_step'
    (mean cross-entropy of softmax(y(t)) over steps), 'sum' (cross-entropy of
    softmax of the time-averaged readout) or 'max' (of the running max over time);
    ``feedback``: 'symmetric' (B = W_out^T), 'random' (fixed B) or 'adaptive'
    (B starts random and gets W_out's updates). ``learning_signal``: 'online' (the
    error of each step's softmax, e-prop's online rule) or, for loss 'sum', 'final'
    (the error of the final softmax, the exact readout gradient of the loss; two more
    steps per batch). Equations: docs/eprop.md."""

    def __init__(self, layers, dt: float = 1.0, loss: str = "sum", feedback: str = "symmetric",
                 optimizer=None, reg_rate_hz: float = 10.0, reg_strength: float = 0.1,
                 backend: str = "cpu", seed: int = 1, threads: int | None = None,
                 precision: str = "float32", verbose: bool = True, build_options=None,
                 learning_signal: str = "online"):
        inp, hidden, out = parse_layers(layers)
        self.spec = Spec(inp, hidden, out, dt=float(dt), loss=loss, feedback=feedback,
                         reg_rate_hz=reg_rate_hz, reg_strength=reg_strength,
                         optimizer=optimizer or Adam(), precision=precision, seed=seed,
                         signal=learning_signal)
        if threads is None and backend == "cpu":
            threads = 1  # OpenMP collapses on busy cores (DESIGN.md); ask for more explicitly
        self.backend, self.threads, self.verbose = backend, threads, verbose
        self.build_options = dict(build_options or {})
        self.state = initial_state(self.spec)  # master copy when no simulation holds newer
        self.updates = 0  # optimiser updates applied
        self.history: dict[str, list] = {}
        self.stop_training = False
        self.batch_size = 32
        self._sims: dict = {}
        self._holder = None  # the simulation holding the newest weights, if any
        self._progress = None  # position inside fit, saved in checkpoints
        self._last_steps = None  # input length T of the last fit (default for export)

    # simulations ----------------------------------------------------------------------
    def simulation(self, batch: int, steps: int, record_spikes=(), record_vars=()):
        """The built training network for (batch, T), holding the current weights."""
        key = (batch, steps, tuple(record_spikes), tuple(record_vars))
        if key not in self._sims:
            self._pull()
            net = lower(self.spec, batch, steps, self.state).network()
            self._sims[key] = net.build(self.backend, record_spikes=tuple(record_spikes),
                                        record_vars=tuple(record_vars), **self._options())
        sim = self._sims[key]
        if self._holder is not sim:
            self._pull()
            self._push(sim)
            self._holder = sim
        return sim

    def _options(self) -> dict:
        """Build options of every network this model builds (``threads`` included)."""
        options = dict(self.build_options)
        if self.threads is not None:
            options["threads"] = self.threads
        return options

    def release(self) -> None:
        """Drop the built simulations (their memory); weights stay in the model."""
        self._pull()
        self._sims, self._holder = {}, None

    def _pull(self) -> None:
        """Copy the newest weights and optimiser state into ``self.state``."""
        if self._holder is None:
            return
        for key in self.state:
            self.state[key] = from_synapses(key, self._holder.get(key), self.state[key].shape)

    def _push(self, sim) -> None:
        for key, value in self.state.items():
            sim.set(key, to_synapses(key, value))

    def weights(self) -> dict[str, np.ndarray]:
        """Current trainable arrays: in_hid.w [C, H], rec.w [H, H] (zero diagonal),
        hid_out.w [H, K], out.b [K] (and hid_out.bfb for random/adaptive feedback);
        layer l >= 1 adds ff<l>.w, rec<l>.w, hid<l>_out.w (and hid<l>_out.bfb)."""
        self._pull()
        keep = [k for k in self.state if k.endswith((".w", ".b", ".bfb"))]
        return {k: self.state[k].copy() for k in keep}

    def set_weights(self, weights: dict) -> None:
        self._pull()
        for key, value in weights.items():
            if key not in self.state or np.shape(value) != self.state[key].shape:
                raise ValueError(f"set_weights: unknown key or shape {key!r} {np.shape(value)}")
            # float64 copy; a recurrent diagonal is dropped (no self-connection)
            self.state[key] = from_synapses(key, value, self.state[key].shape)
        self._holder = None

    # one batch ------------------------------------------------------------------------
    def _run_batch(self, sim, x, y, train: bool, epoch: int = 0) -> dict:
        batch = sim.network.batch_size
        n, steps, k = len(x), x.shape[1], self.spec.out.size
        total = steps + EXTRA_STEPS
        xs = np.zeros((batch, steps, x.shape[2]))
        xs[:n] = x
        sim.set("sample.x", xs.reshape(batch, -1))
        ystar = np.zeros((batch, k))
        if y is not None:
            ystar[np.arange(n), y] = 1.0
        mask = np.zeros(batch)
        mask[:n] = 1.0 / (n * total) if y is not None else 0.0
        sim.set("out.ystar", ystar)
        sim.set("out.mask", np.repeat(mask[:, None], k, axis=1))
        for l, layer in enumerate(self.spec.hidden):
            sim.set(f"{hidden_name(l)}.mask", np.repeat(mask[:, None], layer.size, axis=1))
        sim.custom_update("reset")
        sim.run(steps=self.spec.run_steps(steps), progress=False)
        out = self._outputs(sim, n, total, y)
        if train:
            self._update(sim, epoch)
        return out

    def _outputs(self, sim, n: int, total: int, y) -> dict:
        u = np.atleast_2d(sim.get("out.u"))[:n]
        if self.spec.loss == "per_step":
            probs = np.atleast_2d(sim.get("out.psum"))[:n] / total
        else:
            probs = _softmax(u)
        out = {"probs": probs}
        if y is not None:
            if self.spec.loss == "per_step":
                ystar = np.eye(self.spec.out.size)[y]
                losses = (np.atleast_2d(sim.get("out.lsum"))[:n] * ystar).sum(1) / total
            else:
                losses = -np.log(np.maximum(probs[np.arange(n), y], 1e-30))
            out["losses"] = losses
            out["correct"] = probs.argmax(1) == y
        if sim.record_spikes:
            out["spikes"] = {p: sim.spikes(p) for p in sim.record_spikes}
        if sim.record_vars:
            out["traces"] = {v: sim.trace(v)[1] for v in sim.record_vars}
        if sim.record_spikes or sim.record_vars:
            sim._clear_recordings()  # keep only this batch (no public API for it)
        return out

    def _update(self, sim, epoch: int) -> None:
        sim.custom_update("reduce")
        if self.spec.optimizer.clip_norm is not None:
            self._clip_by_global_norm(sim)
        self.updates += 1
        lr = self.spec.optimizer.step_size(self.updates, epoch)
        for link in links(self.spec):
            sim.set(f"{link.name}.lr", lr)
        sim.set("out.lrb", lr)
        sim.custom_update("optimize")

    def _clip_by_global_norm(self, sim) -> None:
        """Scale every batch-summed gradient by ``optimizer.norm_scale`` of their joint L2
        norm (host side: one read, and a write when clipping, of each gsum)."""
        keys = [f"reduce_{link.name}.gsum" for link in links(self.spec)] + ["reduce_out.gsum"]
        grads = {key: sim.get(key) for key in keys}
        norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64)))
                             for g in grads.values()))
        scale = self.spec.optimizer.norm_scale(norm)
        if scale < 1.0:
            for key, g in grads.items():
                sim.set(key, g * scale)

    # public API -----------------------------------------------------------------------
    def fit(self, train, epochs: int = 1, batch_size: int = 32, validation=None, callbacks=(),
            checkpoint=None, resume: bool = False, shuffle: bool = True) -> dict:
        """Train; returns the history {loss, accuracy[, val_loss, val_accuracy]} per epoch."""
        from .loop import fit

        return fit(self, train, epochs, batch_size, validation, list(callbacks), checkpoint,
                   resume, shuffle)

    def evaluate(self, data, batch_size: int | None = None) -> dict:
        """{'loss': mean cross-entropy, 'accuracy': fraction correct}."""
        x, y = self._arrays(data, "evaluate")
        out = self._forward(x, y, batch_size)
        return {"loss": float(np.mean(out["losses"])), "accuracy": float(np.mean(out["correct"]))}

    def predict(self, data, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities [N, K] (softmax of the time-averaged readout for 'sum',
        of its running max for 'max', the mean of per-step softmaxes for 'per_step')."""
        x, _ = self._arrays(data, "predict", labels=False)
        return self._forward(x, None, batch_size)["probs"]

    def _forward(self, x, y, batch_size) -> dict:
        batch = batch_size or min(len(x), self.batch_size)  # one sample: a batch-1 network
        if self.spec.loss != "per_step":
            return self._forward_exported(x, y, batch)
        sim = self.simulation(batch, x.shape[1])
        parts = [self._run_batch(sim, x[a:b], None if y is None else y[a:b], train=False)
                 for a, b in batches(len(x), batch)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]
                if k in ("probs", "losses", "correct")}

    def _forward_exported(self, x, y, batch: int) -> dict:
        """evaluate/predict for the 'sum' and 'max' losses on the exported inference
        network (no eligibility traces: several times cheaper than the training
        network), with the current weights. It computes the same readout, so the
        probabilities equal those of the training network (tests/test_eprop_inference.py);
        'per_step' predicts from the mean of per-step softmaxes, which the export lacks."""
        key = ("inference", batch, x.shape[1])
        if key not in self._sims:
            from .inference import InferenceModel
            self._sims[key] = InferenceModel(self, self.backend, x.shape[1], batch,
                                             **self._options())
        infer = self._sims[key]
        infer.load_weights(self)
        probs = np.atleast_2d(infer.predict_proba(x))
        out = {"probs": probs}
        if y is not None:
            out["losses"] = -np.log(np.maximum(probs[np.arange(len(x)), y], 1e-30))
            out["correct"] = probs.argmax(1) == y
        return out

    def per_sample_gradients(self, x, y) -> dict[str, np.ndarray]:
        """Run one batch of exactly len(x) samples without updating and return each
        sample's accumulated gradient (before the batch reduction), as
        {'in_hid.w': [N, C, H], 'rec.w': [N, H, H], 'hid_out.w': [N, H, K], 'out.b': [N, K]}
        (plus ff<l>.w, rec<l>.w, hid<l>_out.w for further layers).
        Gradients include the mask 1/(N (T + 2)) of the loss average."""
        x, y = self._arrays((x, y), "per_sample_gradients")
        sim = self.simulation(len(x), x.shape[1])
        self._run_batch(sim, x, y, train=False)
        n = len(x)
        out = {}
        for link in links(self.spec):
            key = f"{link.name}.w"
            g = np.atleast_2d(sim.get(f"{link.name}.g"))
            shape = self.state[key].shape
            out[key] = np.stack([from_synapses(key, g[b], shape) for b in range(n)])
        out["out.b"] = np.atleast_2d(sim.get("out.gb")).astype(np.float64)
        return out

    def _arrays(self, data, what, labels=True):
        return as_arrays(data, self.spec.inp.size, self.spec.out.size, what, labels)

    def export(self, steps: int | None = None, batch_size: int = 1, precision=None):
        """(inference Network, weights): see spikeforge.train.export."""
        from .export import export

        return export(self, steps, batch_size, precision)

    def inference(self, backend: str | None = None, steps: int | None = None,
                  batch_size: int = 1, precision=None, **build_options):
        """A low-latency :class:`~spikeforge.train.inference.InferenceModel` of the
        exported network on ``backend`` (default: the training backend; cpu: 1 thread
        unless ``threads=`` is given)."""
        from .inference import InferenceModel

        backend = backend or self.backend
        if backend == "cpu":
            build_options.setdefault("threads", 1)
        return InferenceModel(self, backend, steps, batch_size, precision, **build_options)

    # checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, path) -> None:
        """Atomically write weights, optimiser state, history and the fit position."""
        self._pull()
        meta = {"updates": self.updates, "history": self.history, "progress": self._progress,
                "spec": repr(self.spec)}
        C.save(path, self.state, meta)

    def load_checkpoint(self, path) -> dict:
        arrays, meta = C.load(path)
        if meta["spec"] != repr(self.spec):
            raise ValueError(f"{path}: checkpoint was written by a different model "
                             f"({meta['spec']}); expected {self.spec!r}")
        for key in self.state:
            self.state[key] = from_synapses(key, arrays[key], self.state[key].shape)
        self._holder = None
        self.updates, self.history = meta["updates"], meta["history"]
        return meta


def _softmax(u: np.ndarray) -> np.ndarray:
    e = np.exp(u - u.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
