"""Optimisers as custom updates, and learning-rate schedules.

The optimiser runs as the host-called custom-update group ``optimize`` on every
projection (and on the readout bias), after the group ``reduce`` summed the
per-sample gradients over the batch into ``gsum``. The host only writes the
step size of this update into the shared var ``lr`` (Adam's bias correction and
the schedule change it every update; one value per synapse because custom
updates can read only vars of their own target).

Adam (Kingma & Ba 2015, the "efficient" form with a constant epsilon), update t = 1, 2, ...::

    m1 <- b1 m1 + (1 - b1) g
    m2 <- b2 m2 + (1 - b2) g^2
    w  <- w - lr_t m1 / (sqrt(m2) + eps),   lr_t = lr(t) sqrt(1 - b2^t) / (1 - b1^t)

SGD with momentum mu: ``m1 <- mu m1 + g;  w <- w - lr(t) m1``.
In adaptive feedback the feedback weights B receive the same update as W_out.

Both take ``clip_norm`` n, ``clip_value`` c and ``weight_decay`` lambda, applied to the
summed gradients in this order, as PyTorch's ``clip_grad_norm_``, ``clip_grad_value_``
and then ``Adam``/``SGD(weight_decay=)``::

    gsum <- gsum min(1, n / (|G| + 1e-6)),  |G| the L2 norm over every trained weight and
                                            bias gradient together (on the host)
    g = clip(gsum, -c, c) + lambda w

i.e. lambda adds (lambda/2) |w|^2 to the batch-mean loss (L2 regularisation coupled to
the moments, not AdamW's decoupled decay). Weights decay; the readout bias does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ConstantLR:
    """lr(t) = lr."""

    def __call__(self, lr: float, step: int, epoch: int) -> float:
        return lr


@dataclass(frozen=True)
class StepDecay:
    """lr(t) = lr * factor ** (epoch // every) (epochs counted from 0)."""

    every: int = 1
    factor: float = 0.5

    def __call__(self, lr: float, step: int, epoch: int) -> float:
        return lr * self.factor ** (epoch // self.every)


@dataclass(frozen=True)
class ExponentialDecay:
    """lr(t) = lr * rate ** (t / steps), t = optimiser updates done so far."""

    steps: int = 1000
    rate: float = 0.5

    def __call__(self, lr: float, step: int, epoch: int) -> float:
        return lr * self.rate ** (step / self.steps)


@dataclass(frozen=True)
class CosineDecay:
    """lr(t) = lr_min + (lr - lr_min)(1 + cos(pi t / total)) / 2, held at lr_min after total."""

    total: int
    lr_min: float = 0.0

    def __call__(self, lr: float, step: int, epoch: int) -> float:
        frac = min(step / max(self.total, 1), 1.0)
        return self.lr_min + (lr - self.lr_min) * (1 + math.cos(math.pi * frac)) / 2


def _check_lr(owner, lr):
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"{owner}: lr must be a positive number, got {lr!r}")


def _check_regularisers(opt):
    owner = type(opt).__name__
    wd = opt.weight_decay
    if not isinstance(wd, (int, float)) or not math.isfinite(wd) or wd < 0:
        raise ValueError(f"{owner}: weight_decay must be a number >= 0, got {wd!r}")
    for key in ("clip_value", "clip_norm"):
        value = getattr(opt, key)
        if value is not None and (not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            raise ValueError(f"{owner}: {key} must be None or a number > 0, got {value!r}")


class _Optimizer:
    """What Adam and SGD share: the gradient expression and a repr without the
    regularisers at their defaults (checkpoints compare reprs of the training spec)."""

    _OPTIONAL = {"weight_decay": 0.0, "clip_value": None, "clip_norm": None}

    def __repr__(self) -> str:
        shown = [f.name for f in fields(self) if f.name not in self._OPTIONAL
                 or getattr(self, f.name) != self._OPTIONAL[f.name]]
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__name__}({args})"

    def norm_scale(self, norm: float) -> float:
        """The factor clip_norm applies to every gradient (1: no clipping)."""
        if self.clip_norm is None:
            return 1.0
        return min(1.0, self.clip_norm / (norm + 1e-6))

    def regulariser_params(self) -> dict:
        return {**({"wd": float(self.weight_decay)} if self.weight_decay else {}),
                **({"clip": float(self.clip_value)} if self.clip_value is not None else {})}

    def gradient(self, w: str | None) -> str:
        """The gradient expression: gsum, clipped, plus weight decay of ``w`` (None: no
        decay, the bias)."""
        g = "gsum" if self.clip_value is None else "clip(gsum, -clip, clip)"
        return f"{g} + wd * {w}" if self.weight_decay and w is not None else g


@dataclass(frozen=True, repr=False)
class Adam(_Optimizer):
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    schedule: object = ConstantLR()
    weight_decay: float = 0.0
    clip_value: float | None = None
    clip_norm: float | None = None

    def __post_init__(self):
        _check_lr("Adam", self.lr)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            raise ValueError("Adam: need 0 <= beta1, beta2 < 1 and eps > 0")
        _check_regularisers(self)

    def params(self) -> dict:
        return {"b1": self.beta1, "b2": self.beta2, "eps": self.eps, **self.regulariser_params()}

    def step_size(self, t: int, epoch: int) -> float:
        """The value written to ``lr`` for update number t (1-based)."""
        lr = self.schedule(self.lr, t - 1, epoch)
        return lr * math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)

    def code(self, w: str, extra=(), m1="m1", m2="m2", lr="lr", decay: bool = True) -> str:
        g = self.gradient(w if decay else None)
        first = [] if g == "gsum" else [f"g = {g}"]
        g = "gsum" if g == "gsum" else "g"
        lines = [*first, f"{m1} = b1 * {m1} + (1.0 - b1) * {g}",
                 f"{m2} = b2 * {m2} + (1.0 - b2) * {g} * {g}",
                 f"dw = {lr} * {m1} / (sqrt({m2}) + eps)",
                 f"{w} -= dw", *(f"{x} -= dw" for x in extra)]
        return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class SGD(_Optimizer):
    lr: float = 1e-2
    momentum: float = 0.0
    schedule: object = ConstantLR()
    weight_decay: float = 0.0
    clip_value: float | None = None
    clip_norm: float | None = None

    def __post_init__(self):
        _check_lr("SGD", self.lr)
        if not 0 <= self.momentum < 1:
            raise ValueError("SGD: momentum must be in [0, 1)")
        _check_regularisers(self)

    def params(self) -> dict:
        return {"mu": self.momentum, **self.regulariser_params()}

    def step_size(self, t: int, epoch: int) -> float:
        return self.schedule(self.lr, t - 1, epoch)

    def code(self, w: str, extra=(), m1="m1", m2="m2", lr="lr", decay: bool = True) -> str:
        lines = [f"{m1} = mu * {m1} + {self.gradient(w if decay else None)}",
                 f"dw = {lr} * {m1}", f"{w} -= dw",
                 *(f"{x} -= dw" for x in extra)]
        return "\n".join(lines)


def optimizer_code(opt, w: str, extra=(), m1="m1", m2="m2", lr="lr", decay=True) -> str:
    if not hasattr(opt, "code"):
        raise TypeError(f"EProp: optimizer must be Adam or SGD, got {opt!r}")
    return opt.code(w, extra, m1=m1, m2=m2, lr=lr, decay=decay)
