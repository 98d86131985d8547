"""Computing a Score (scores.py) over an evaluation split, batch by batch."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..errors import LotteryTicketError
from ..scores import ACCURACY, Score
from .batches import IGNORE_INDEX, class_scores


class Accumulator:
    """One evaluation's running score. `update` sees each batch's class scores and targets; `result` gets the
    split's mean loss too (perplexity is a function of it)."""

    def update(self, logits: torch.Tensor, targets: torch.Tensor | None, examples: int) -> None: ...

    def result(self, mean_loss: float) -> float: ...


class Accuracy(Accumulator):
    def __init__(self):
        self.correct: list[torch.Tensor] = []
        self.counted: list[torch.Tensor] = []

    def update(self, logits, targets, examples):
        if targets is None:
            raise LotteryTicketError("the evaluation batches have no targets (no 'labels'); accuracy needs them")
        scores, flat = class_scores(logits, targets)
        kept = flat != IGNORE_INDEX
        self.correct.append(((scores.argmax(1) == flat) & kept).sum())  # summed once at the end: no sync per batch
        self.counted.append(kept.sum())

    def result(self, mean_loss):
        counted = int(torch.stack(self.counted).sum()) if self.counted else 0
        if counted == 0:
            raise LotteryTicketError("the evaluation data yielded no targets to score; give it at least one labelled batch")
        return int(torch.stack(self.correct).sum()) / counted


class Perplexity(Accumulator):
    def result(self, mean_loss):
        return math.exp(min(mean_loss, 700.0))  # exp overflows a float past ~709: a diverged model reads as huge


class MeanOfBatches(Accumulator):
    """Your callable(logits, targets) -> the batch's mean, averaged over the split weighted by examples."""

    def __init__(self, fn: Callable):
        self.fn, self.total, self.examples = fn, 0.0, 0

    def update(self, logits, targets, examples):
        self.total += float(self.fn(logits, targets)) * examples
        self.examples += examples

    def result(self, mean_loss):
        return self.total / max(self.examples, 1)


class UpdateCompute(Accumulator):
    """Your class with update(logits, targets) and compute(), e.g. a torchmetrics Metric: one instance per evaluation."""

    def __init__(self, cls: type):
        self.metric = cls()

    def update(self, logits, targets, examples):
        self.metric.update(logits, targets)

    def result(self, mean_loss):
        value = self.metric.compute()
        return float(value.item() if isinstance(value, torch.Tensor) else value)


def accumulator_factory(score: Score, metric: str | None) -> Callable[[], Accumulator]:
    """A fresh accumulator per evaluation of `score`; `metric` is the run's --metric (an import path for yours)."""
    if score == ACCURACY:
        return Accuracy
    if score.key == "perplexity":
        return Perplexity
    from ..plugins import load_object

    fn: Any = load_object(metric, "metric")
    if isinstance(fn, type):
        if not (hasattr(fn, "update") and hasattr(fn, "compute")):
            raise LotteryTicketError(f"metric {metric!r} is a class without update() and compute(); give a function "
                                     "(logits, targets) -> the batch's mean, or a class with both (torchmetrics' Metric)")
        return lambda: UpdateCompute(fn)
    return lambda: MeanOfBatches(fn)
