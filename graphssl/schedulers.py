"""Schedules as tiny objects: call one with a step, get a value (as in the official BGRL code).

They hold no state beyond their settings, so resuming at step ``s`` only needs ``s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def cosine_ramp(step: int, total: int) -> float:
    """0 at ``step = 0`` rising to 1 at ``step >= total`` along a half cosine."""
    progress = min(max(step, 0), total) / max(total, 1)
    return (1 - math.cos(math.pi * progress)) / 2


@dataclass(frozen=True)
class CosineMomentum:
    """EMA momentum going from ``start`` at step 0 to ``end`` at ``total_steps`` on a cosine."""

    start: float
    end: float
    total_steps: int

    def __call__(self, step: int) -> float:
        return self.start + (self.end - self.start) * cosine_ramp(step, self.total_steps)


@dataclass(frozen=True)
class WarmupCosineLR:
    """Learning rate rising linearly to ``base_lr`` over ``warmup_steps``, then cosine decay to 0.

    Step ``s < warmup_steps`` uses ``base_lr * (s + 1) / warmup_steps``, so no step is taken at lr 0.
    """

    base_lr: float
    warmup_steps: int
    total_steps: int

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        decay = cosine_ramp(step - self.warmup_steps, self.total_steps - self.warmup_steps)
        return self.base_lr * (1 - decay)
