"""spikeforge: describe a spiking neural network once, run it on NumPy, C, CUDA and FPGA.

Quick start::

    import spikeforge as sf
    net = sf.NetworkBuilder(dt=0.1)
    net.population("E", sf.LIF, 100, params={...}, init={"v": sf.Uniform(-60, -50)})
    net.connect("E", "E", sf.FixedProbability(0.1), w=0.1, postsynaptic=sf.ExpCurr,
                ps_params={"tau": 5.0})
    sim = net.build(backend="numpy")
    sim.run(duration_ms=100)
    times, ids = sim.spikes("E")
"""

from .builtins import (ALIF, DC, IF, LIF, STDP, Delta, ExpCond, ExpCurr, GaussianNoise,
                       Izhikevich, LeakyIntegrator, PoissonSource, SpikeSourceArray, StaticPulse,
                       StaticPulseDendriticDelay)
from .connectivity import (AvgPool2D, Conv2D, Dense, FixedNumberPost, FixedProbability,
                           FixedTotalNumber, OneToOne, Sparse)
from .init import Constant, Exponential, Normal, NormalClipped, Uniform, Values
from .lang import ModelCodeError
from .models import CurrentSourceModel, NeuronModel, PostsynapticModel, Var, WeightUpdateModel
from .net import Network, NetworkBuilder
from .network import CurrentSource, CustomUpdate, Population, Projection, Reduction
from .numerics import Fixed
from .registry import available, register_backend

__version__ = "0.1.0"


def load(path):
    """Load a network from a JSON model file (see ``Network.save``)."""
    from .serialize import load as _load

    return _load(path)


__all__ = [
    "ALIF", "AvgPool2D", "DC", "IF", "LIF", "STDP", "Constant", "Conv2D", "CurrentSource",
    "CurrentSourceModel", "CustomUpdate", "Delta", "Dense", "ExpCond", "ExpCurr", "Exponential",
    "Fixed", "FixedNumberPost", "FixedProbability", "FixedTotalNumber", "GaussianNoise",
    "Izhikevich", "LeakyIntegrator", "ModelCodeError", "Network", "NetworkBuilder", "NeuronModel",
    "Normal", "NormalClipped", "OneToOne", "PoissonSource", "Population", "PostsynapticModel",
    "Projection", "Reduction", "Sparse", "SpikeSourceArray", "StaticPulse",
    "StaticPulseDendriticDelay", "Uniform", "Values", "Var", "WeightUpdateModel", "available",
    "load", "register_backend",
]
