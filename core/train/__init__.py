"""Training recurrent SNNs (LSNNs) with e-prop (Bellec et al. 2020), expressed in the IR.

    from spikeforge.train import EProp, Input, Recurrent, Readout, Adam
    model = EProp([Input(64), Recurrent(256, neuron="alif"), Readout(10)], dt=1.0,
                  loss="sum", feedback="symmetric", optimizer=Adam(lr=1e-3), backend="cpu")
    history = model.fit((x, y), epochs=3, batch_size=32, validation=(xv, yv))
    model.evaluate((xt, yt)); model.predict(xt); net, weights = model.export()
    fast = model.inference("cpu"); fast.classify(x[0])    # low-latency batch-1 inference

Equations, update order, the learning-signal lag and tolerances: docs/eprop.md.
"""

from .callbacks import Callback, Checkpoint, EarlyStopping, SpikeRecorder, VarRecorder
from .compiler import Input, Readout, Recurrent
from .inference import InferenceModel
from .optim import SGD, Adam, ConstantLR, CosineDecay, ExponentialDecay, StepDecay
from .trainer import EProp

__all__ = [
           "SGD",
           "Adam",
           "Callback",
           "Checkpoint",
           "ConstantLR",
           "CosineDecay",
           "EProp",
           "EarlyStopping",
           "ExponentialDecay",
           "InferenceModel",
           "Input",
           "Readout",
           "Recurrent",
           "SpikeRecorder",
           "StepDecay",
           "VarRecorder",
]
