"""Learning-rate schedule and early stopping for the VQ loops (stateless, so resuming is exact)."""
from __future__ import annotations

import math


def lr_at(base: float, step: int, total_steps: int, schedule: str = "constant", min_factor: float = 0.05) -> float:
    """Learning rate at global ``step`` of ``total_steps``: constant, or cosine from ``base`` down to
    ``min_factor * base`` at the last step."""
    if schedule == "constant" or total_steps <= 1:
        return base
    if schedule != "cosine":
        raise ValueError(f"unknown lr schedule {schedule!r}")
    t = min(max(step / (total_steps - 1), 0.0), 1.0)
    return base * (min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t)))


def set_lr(optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr


def no_improvement_for(values: list[float], patience: int | None) -> bool:
    """True when the last ``patience`` values are all worse (higher) than the best before them."""
    if not patience or len(values) <= patience:
        return False
    return min(values[-patience:]) >= min(values[:-patience])
