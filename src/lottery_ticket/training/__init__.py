"""Training with a mask: the Trainer, its callbacks, optimizers/schedules and checkpoints."""

from .callbacks import Callback, DivergenceGuard, Evaluate, OnStep, Progress
from .trainer import Trainer

__all__ = ["Callback", "DivergenceGuard", "Evaluate", "OnStep", "Progress", "Trainer"]
