"""Margin-based loss family (see :mod:`components.losses.margin`)."""
from components.losses.margin import (
    EXP_CLAMP,
    LossProperties,
    MarginLoss,
    get_loss,
    get_training_loss,
    loss_names,
    loss_params,
    pairwise_loss,
    require_trainable,
)

__all__ = [
    "EXP_CLAMP",
    "LossProperties",
    "MarginLoss",
    "get_loss",
    "get_training_loss",
    "loss_names",
    "loss_params",
    "pairwise_loss",
    "require_trainable",
]
