"""Schedules as tiny objects: call one with a step, get a value (as in the official BGRL code).

They hold no state beyond their settings, so resuming at step ``s`` only needs ``s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def cosine_ramp(step: int, total: int) -> float:
    """A half cosine from 0 at ``step = 0`` to 1 at ``step >= total``.

    Returns:
        A float in [0, 1].

    Example:
        >>> cosine_ramp(0, 100), round(cosine_ramp(50, 100), 6), cosine_ramp(200, 100)
        (0.0, 0.5, 1.0)
    """
    progress = min(max(step, 0), total) / max(total, 1)
    return (1 - math.cos(math.pi * progress)) / 2


@dataclass(frozen=True)
class CosineMomentum:
    """EMA momentum going from ``start`` at step 0 to ``end`` at ``total_steps`` on a cosine.

    Example:
        >>> momentum = CosineMomentum(0.99, 1.0, total_steps=100)
        >>> momentum(0), momentum(100)
        (0.99, 1.0)
    """

    start: float
    end: float
    total_steps: int

    def __call__(self, step: int) -> float:
        return self.start + (self.end - self.start) * cosine_ramp(step, self.total_steps)


@dataclass(frozen=True)
class WarmupCosineLR:
    """Learning rate rising linearly to ``base_lr`` over ``warmup_steps``, then cosine decay to 0.

    Step ``s < warmup_steps`` uses ``base_lr * (s + 1) / warmup_steps``, so no step is taken at lr 0.

    Example:
        >>> lr = WarmupCosineLR(0.01, warmup_steps=10, total_steps=110)
        >>> round(lr(0), 6), lr(10), round(lr(60), 6)
        (0.001, 0.01, 0.005)
    """

    base_lr: float
    warmup_steps: int
    total_steps: int

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        decay = cosine_ramp(step - self.warmup_steps, self.total_steps - self.warmup_steps)
        return self.base_lr * (1 - decay)
