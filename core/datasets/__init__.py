"""Datasets for training spiking networks (see docs/datasets.md).

- `events`: tonic-style event streams (fields t [us], x, p), binning to
  timesteps, padding, `EventDataset` with ``as_arrays(dt_ms, n_steps)``;
- `audio`: gammatone-filterbank + LIF audio-to-spikes encoder;
- `fsdd`: Free Spoken Digit Dataset encoded to spikes (CC BY-SA 4.0), splits;
- `smnist`: sequential pixel-scan threshold-crossing encoding, Fashion-MNIST;
- `shd`: SHD / SSC through the optional package tonic.
"""
from .events import (EVENT_DTYPE, EventDataset, bin_events, check_events, frames_to_events,
                     make_events, pad_frames)
from .audio import AudioEncoder, erb, erb_space, gammatone_filterbank
from .fsdd import load_fsdd, fsdd_arrays
from .smnist import SequentialImages, load_fashion_mnist, threshold_crossing_encode
from .shd import load_shd, load_ssc

__all__ = ["EVENT_DTYPE", "EventDataset", "bin_events", "check_events", "frames_to_events",
           "make_events", "pad_frames", "AudioEncoder", "erb", "erb_space",
           "gammatone_filterbank", "load_fsdd", "fsdd_arrays", "SequentialImages",
           "load_fashion_mnist", "threshold_crossing_encode", "load_shd", "load_ssc"]
