"""Audio-to-spikes encoder: gammatone filterbank, rectification, compression, LIF.

Pipeline for a mono signal ``x[n]`` sampled at ``fs`` Hz (one channel ``c``
per centre frequency ``f_c``, 64 to 700 channels):

1. Centre frequencies, ERB-spaced (Glasberg & Moore 1990):
   ``ERB(f) = 24.7 * (4.37 f / 1000 + 1)`` Hz and the ERB-rate
   ``E(f) = 21.4 * log10(1 + 0.00437 f)``; the ``f_c`` are uniform in
   ``E`` between ``f_low`` and ``f_high`` (inclusive).

2. 4th-order gammatone as a cascade of four identical complex one-pole
   filters (the all-pole gammatone approximation):
   ``b = 1.019 * ERB(f_c)``, ``a = exp(-2 pi b / fs)``,
   ``p = a * exp(i 2 pi f_c / fs)``;
   ``y_k[n] = (1 - a) * y_{k-1}[n] + p * y_k[n-1]`` for ``k = 1..4`` with
   ``y_0 = x``; the channel output is ``g[n] = 2 Re(y_4[n])``. Each stage has
   gain exactly 1 at ``f_c`` for the positive-frequency component, so a pure
   tone ``A cos(2 pi f_c n / fs)`` gives ``|g| -> A`` (up to the negligible
   negative-frequency leak) once the filter has settled.

3. Half-wave rectification ``r = max(0, g)``.

4. Compression ``s = r ** (1/3)`` (``"cbrt"``, default), ``s = log(1 + r / r0)``
   (``"log"``, ``r0 = log_floor``) or ``s = r`` (``"none"``).

5. One LIF neuron per channel, integrated exactly at the audio rate
   (``dt = 1/fs``): ``v <- v * d + (1 - d) * gain * s[n]`` with
   ``d = exp(-dt / tau_ms)``; a spike when ``v >= 1`` (unless refractory),
   then ``v <- 0`` and the neuron is refractory for ``refractory_ms``. The
   spike time is the sample time ``n / fs`` in microseconds (rounded).

The result is an event stream (`events.EVENT_DTYPE`: t [us], x = channel, p = 1)
like SHD's. Louder input means a larger drive and more spikes (no
normalisation happens here; `fsdd` normalises recordings explicitly).
Filtering uses ``scipy.signal.lfilter`` when SciPy is installed and a NumPy
recursion otherwise (same equations, same results to float rounding).
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import numpy as np

from .events import make_events

__all__ = ["erb", "erb_space", "gammatone_filterbank", "AudioEncoder"]


def erb(f_hz):
    """Equivalent rectangular bandwidth in Hz (Glasberg & Moore 1990)."""
    return 24.7 * (4.37 * np.asarray(f_hz, dtype=np.float64) / 1000.0 + 1.0)


def erb_space(f_low: float, f_high: float, n: int) -> np.ndarray:
    """``n`` centre frequencies uniform on the ERB-rate scale, ascending."""
    if not 0 < f_low < f_high:
        raise ValueError(f"erb_space: need 0 < f_low < f_high, got {f_low}, {f_high}")
    if n < 1:
        raise ValueError(f"erb_space: n must be >= 1, got {n}")
    e = np.linspace(21.4 * np.log10(1 + 0.00437 * f_low),
                    21.4 * np.log10(1 + 0.00437 * f_high), n)
    return (10 ** (e / 21.4) - 1) / 0.00437


def _one_pole_numpy(x, coef_in, poles):
    """y[n] = coef_in * x[n] + poles * y[n-1] for every channel (columns)."""
    y = np.empty((x.shape[0], poles.size), dtype=np.complex128)
    state = np.zeros(poles.size, dtype=np.complex128)
    for n in range(x.shape[0]):
        state = coef_in * x[n] + poles * state
        y[n] = state
    return y


def _cascade(x, a, p, use_scipy: bool):
    """Four complex one-pole stages per channel; ``x`` is 1-D, returns [n, C] complex."""
    try:
        if not use_scipy:
            raise ImportError
        from scipy.signal import lfilter
    except ImportError:
        y = np.repeat(x.astype(np.complex128)[:, None], p.size, axis=1)
        for _ in range(4):
            y = _one_pole_numpy(y, 1.0 - a, p)
        return y
    out = np.empty((x.shape[0], p.size), dtype=np.complex128)
    for c in range(p.size):
        y = x.astype(np.complex128)
        for _ in range(4):
            y = lfilter([1.0 - a[c]], [1.0, -p[c]], y)
        out[:, c] = y
    return out


def gammatone_filterbank(x, fs: float, centres, use_scipy: bool = True) -> np.ndarray:
    """Filter ``x`` (1-D) through 4th-order gammatones at ``centres`` -> ``[n, C]`` real."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"gammatone_filterbank: expected a mono 1-D signal, got {x.shape}")
    fc = np.asarray(centres, dtype=np.float64)
    if fc.size and (fc.min() <= 0 or fc.max() >= fs / 2):
        raise ValueError(f"gammatone_filterbank: centre frequencies must lie in (0, {fs / 2}) Hz")
    a = np.exp(-2 * np.pi * 1.019 * erb(fc) / fs)
    p = a * np.exp(2j * np.pi * fc / fs)
    return 2.0 * _cascade(x, a, p, use_scipy).real


def _lif_spikes(drive, fs: float, tau_ms: float, refractory_ms: float):
    """Exact-exponential LIF per column of ``drive`` [n, C]; returns (sample idx, channel)."""
    d = np.exp(-1000.0 / (fs * tau_ms))
    inp = (1.0 - d) * drive
    ref_samples = int(round(refractory_ms * fs / 1000.0))
    v = np.zeros(drive.shape[1])
    ref = np.zeros(drive.shape[1], dtype=np.int64)
    steps, chans = [], []
    for n in range(drive.shape[0]):
        v = np.where(ref > 0, 0.0, v * d + inp[n])
        ref = np.maximum(ref - 1, 0)
        fired = np.flatnonzero(v >= 1.0)
        if fired.size:
            steps.append(np.full(fired.size, n))
            chans.append(fired)
            v[fired] = 0.0
            ref[fired] = ref_samples
    if not steps:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(steps), np.concatenate(chans)


@dataclass(frozen=True)
class AudioEncoder:
    """Audio -> spike events (see the module docstring for the equations).

    n_channels: 64 to 700 gammatone channels; f_low/f_high: centre-frequency
    range in Hz (``f_high=None`` means ``0.45 * fs``); compression: "cbrt",
    "log" or "none"; gain: drive scale of the LIF (threshold 1); tau_ms and
    refractory_ms: the LIF's membrane time constant and dead time.
    """

    n_channels: int = 64
    f_low: float = 80.0
    f_high: float | None = None
    compression: str = "cbrt"
    log_floor: float = 1e-3
    gain: float = 10.0
    tau_ms: float = 5.0
    refractory_ms: float = 2.0

    def __post_init__(self):
        if not 64 <= self.n_channels <= 700:
            raise ValueError(f"AudioEncoder.n_channels must be in [64, 700], got {self.n_channels}")
        if self.compression not in ("cbrt", "log", "none"):
            raise ValueError(f"AudioEncoder.compression must be 'cbrt', 'log' or 'none', "
                             f"got {self.compression!r}")
        for field in ("gain", "tau_ms", "log_floor", "f_low"):
            if getattr(self, field) <= 0:
                raise ValueError(f"AudioEncoder.{field} must be > 0, got {getattr(self, field)}")
        if self.refractory_ms < 0:
            raise ValueError(f"AudioEncoder.refractory_ms must be >= 0, got {self.refractory_ms}")

    def params(self) -> dict:
        return asdict(self)

    def centres(self, fs: float) -> np.ndarray:
        """Centre frequencies in Hz (ascending: channel 0 is the lowest)."""
        f_high = 0.45 * fs if self.f_high is None else self.f_high
        if f_high >= fs / 2:
            raise ValueError(f"AudioEncoder.f_high={f_high} Hz must be below Nyquist ({fs / 2} Hz)")
        return erb_space(self.f_low, f_high, self.n_channels)

    def compress(self, r):
        if self.compression == "cbrt":
            return np.cbrt(r)
        if self.compression == "log":
            return np.log1p(r / self.log_floor)
        return r

    def drive(self, x, fs: float, use_scipy: bool = True) -> np.ndarray:
        """The LIF input ``gain * compress(max(0, gammatone(x)))``, ``[n, C]``."""
        g = gammatone_filterbank(x, fs, self.centres(fs), use_scipy)
        return self.gain * self.compress(np.maximum(g, 0.0))

    def encode(self, x, fs: float, use_scipy: bool = True) -> np.ndarray:
        """Spike events (t [us], x = channel, p = 1) of the mono signal ``x``."""
        n, c = _lif_spikes(self.drive(x, fs, use_scipy), fs, self.tau_ms, self.refractory_ms)
        t_us = np.round(n * (1e6 / fs)).astype(np.int64)
        return make_events(t_us, c, np.ones_like(c))
