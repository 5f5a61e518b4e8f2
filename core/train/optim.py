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
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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


@dataclass(frozen=True)
class Adam:
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    schedule: object = ConstantLR()

    def __post_init__(self):
        _check_lr("Adam", self.lr)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            raise ValueError("Adam: need 0 <= beta1, beta2 < 1 and eps > 0")

    def params(self) -> dict:
        return {"b1": self.beta1, "b2": self.beta2, "eps": self.eps}

    def step_size(self, t: int, epoch: int) -> float:
        """The value written to ``lr`` for update number t (1-based)."""
        lr = self.schedule(self.lr, t - 1, epoch)
        return lr * math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)

    def code(self, w: str, extra=(), m1="m1", m2="m2", lr="lr") -> str:
        lines = [f"{m1} = b1 * {m1} + (1.0 - b1) * gsum",
                 f"{m2} = b2 * {m2} + (1.0 - b2) * gsum * gsum",
                 f"dw = {lr} * {m1} / (sqrt({m2}) + eps)",
                 f"{w} -= dw", *(f"{x} -= dw" for x in extra)]
        return "\n".join(lines)


@dataclass(frozen=True)
class SGD:
    lr: float = 1e-2
    momentum: float = 0.0
    schedule: object = ConstantLR()

    def __post_init__(self):
        _check_lr("SGD", self.lr)
        if not 0 <= self.momentum < 1:
            raise ValueError("SGD: momentum must be in [0, 1)")

    def params(self) -> dict:
        return {"mu": self.momentum}

    def step_size(self, t: int, epoch: int) -> float:
        return self.schedule(self.lr, t - 1, epoch)

    def code(self, w: str, extra=(), m1="m1", m2="m2", lr="lr") -> str:
        lines = [f"{m1} = mu * {m1} + gsum", f"dw = {lr} * {m1}", f"{w} -= dw",
                 *(f"{x} -= dw" for x in extra)]
        return "\n".join(lines)


def optimizer_code(opt, w: str, extra=(), m1="m1", m2="m2", lr="lr") -> str:
    if not hasattr(opt, "code"):
        raise TypeError(f"EProp: optimizer must be Adam or SGD, got {opt!r}")
    return opt.code(w, extra, m1=m1, m2=m2, lr=lr)
