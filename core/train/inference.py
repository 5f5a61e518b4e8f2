"""Low-latency classification with an exported e-prop network.

``InferenceModel`` builds the network of :func:`spikeforge.train.export.export`
once (no spike or var recordings) and classifies samples through the ordinary
Simulation API, so it runs on any backend. Per batch of ``batch_size`` samples::

    sim.custom_update("reset")         # one call per node: per-sample vars to start values
    sim.set("sample.x", x)             # the whole input sequence at once (B, T*C)
    sim.run(steps=T + 2)               # one backend call on cpu (T + 2 <= recording chunk)
    u = ysum / nst  (or ymax for loss 'max');  p = softmax(u)

Between samples no event is left in a spike queue (a hidden neuron never spikes
in a sample's last step; the input relay only fires while the clock delivers),
so the custom-update reset gives exactly the result of ``sim.reset()``
(``run_exported``), without re-initialising every buffer.
"""

from __future__ import annotations

import numpy as np

from .compiler import EXTRA_STEPS
from .export import _check_x, _softmax, export


class InferenceModel:
    """Batch-``batch_size`` classifier for inputs of exactly ``steps`` steps x C channels.

    ``backend``/``build_options`` go to ``Network.build`` (e.g. ``threads=1`` on cpu);
    ``precision`` as in :func:`export`. ``predict_proba(x)``: x [T, C] -> [K] or
    x [N, T, C] -> [N, K]; ``predict`` the argmax; ``classify(x)`` one sample -> int."""

    def __init__(self, model, backend: str = "cpu", steps: int | None = None,
                 batch_size: int = 1, precision=None, **build_options):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"InferenceModel: batch_size must be a positive int, got {batch_size!r}")
        self.network, self.weights = export(model, steps, batch_size, precision)
        self.steps = self.network.population("clock", "InferenceModel").size
        self.channels = model.spec.inp.size
        self.classes = model.spec.out.size
        self.batch_size = int(batch_size)
        self.loss = model.spec.loss
        self.sim = self.network.build(backend, record_spikes=(), record_vars=(), **build_options)

    def load_weights(self, model) -> None:
        """Set ``model``'s current weights into the built network (no rebuild), cast
        as the export casts them."""
        for key, value in model.weights().items():
            if key.endswith(".bfb"):  # feedback matrices take no part in the forward pass
                continue
            self.sim.set(key, np.asarray(value, dtype=np.float64).reshape(-1))

    def _run(self, xb: np.ndarray) -> np.ndarray:
        sim = self.sim
        sim.custom_update("reset")
        sim.set("sample.x", xb.reshape(len(xb), -1))
        sim.run(steps=self.steps + EXTRA_STEPS, progress=False)
        if self.loss == "max":
            return _softmax(sim.get("out.ymax"))
        return _softmax(sim.get("out.ysum") / sim.get("out.nst"))

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities: x [T, C] -> [K]; x [N, T, C] -> [N, K]."""
        arr = np.asarray(x)
        single = arr.ndim == 2
        arr = arr[None] if single else arr
        n, b = len(arr), self.batch_size
        _check_x(arr, n, self.steps, self.channels, "InferenceModel")
        if n % b:
            arr = np.concatenate([arr, np.zeros((b - n % b,) + arr.shape[1:], arr.dtype)])
        probs = np.concatenate([self._run(arr[s:s + b]) for s in range(0, len(arr), b)])[:n]
        return probs[0] if single else probs

    def predict(self, x) -> np.ndarray:
        """Predicted classes: x [T, C] -> int array of shape (); [N, T, C] -> [N]."""
        return np.asarray(self.predict_proba(x)).argmax(-1)

    def classify(self, x) -> int:
        """The class of one sample x [T, C]."""
        if np.ndim(x) != 2:
            raise ValueError(f"InferenceModel.classify: one sample x [T, C], got shape {np.shape(x)}")
        return int(self.predict_proba(x).argmax())

    def accuracy(self, x, y) -> float:
        """Fraction of samples x [N, T, C] classified as y [N]."""
        y = np.asarray(y)
        if y.shape != (len(x),):
            raise ValueError(f"InferenceModel.accuracy: y must have shape ({len(x)},), got {y.shape}")
        return float(np.mean(self.predict(x) == y))
