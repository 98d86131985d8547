"""What a network is scored by: test accuracy (the paper's), or a metric of yours, e.g. perplexity.

A Score is plain data, recorded in every record whose score is not accuracy (`"score": {...}`), so a run folder
says what its numbers are without importing anyone's code: report, compare and resume read it from the records.

    accuracy          higher is better, in [0, 1], shown in %         (the default)
    perplexity        lower is better: exp of the mean test cross-entropy (per token for sequences)
    pkg.mod:callable  yours: callable(logits, targets) -> the batch's mean, averaged over the split by examples,
                      or a class with update(logits, targets) and compute() (torchmetrics' Metric); say
                      --metric-mode max or min
With --framework lightning/huggingface, --metric names a value your evaluation logs: an accuracy in [0, 1],
or with --metric-mode max|min any number (e.g. eval_loss with min).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .errors import LotteryTicketError

# Names a score cannot take: the record fields it would overwrite.
RESERVED = {"seed", "round", "kind", "sparsity", "eligible_sparsity", "num_remaining", "num_total", "iterations",
            "weights_remaining_pct", "layer_sparsities", "loss", "test_loss", "train_seconds", "score", "selection",
            "early_stop_iteration", "start_iteration", "final_train_loss", "history"}


@dataclass(frozen=True)
class Score:
    key: str  # the record field that holds it
    higher_is_better: bool = True
    percent: bool = True  # an accuracy in [0, 1], shown in %

    def label(self) -> str:
        return f"{self.key} (%)" if self.percent else self.key

    def scale(self) -> float:
        return 100.0 if self.percent else 1.0

    def fmt(self) -> str:
        return "{:.2f}" if self.percent else "{:.3f}"

    def show(self, value: float) -> str:
        return f"{100 * value:.2f}%" if self.percent else f"{value:.3f}"

    def describe(self) -> dict[str, Any]:
        """What a record says about its score (nothing for accuracy: records before scores were named stay valid)."""
        return {} if self == ACCURACY else {"score": asdict(self)}


ACCURACY = Score("accuracy")
BUILTIN = {"accuracy": ACCURACY, "perplexity": Score("perplexity", higher_is_better=False, percent=False)}
MODES = ("max", "min")


def score_of(framework: str, metric: str | None, mode: str | None) -> Score:
    """The Score of a run's settings; one line for settings that do not name one."""
    if mode is not None and mode not in MODES:
        raise LotteryTicketError(f"metric_mode={mode!r} is not one of {MODES}; pass --metric-mode max or min")
    if framework != "torch":
        if mode is None:
            return ACCURACY  # the framework's logged accuracy, recorded as accuracy
        return _named(metric, mode)
    if metric is None:
        return ACCURACY
    if metric in BUILTIN:
        score = BUILTIN[metric]
        if mode is not None and mode != ("max" if score.higher_is_better else "min"):
            raise LotteryTicketError(f"metric {metric!r} is {'higher' if score.higher_is_better else 'lower'} is better; "
                                     "leave --metric-mode out")
        return score
    from .plugins import is_import_path

    if not is_import_path(metric):
        raise LotteryTicketError(f"metric {metric!r} is neither {' nor '.join(BUILTIN)} nor package.module:callable; "
                                 "pass e.g. --metric perplexity")
    if mode is None:
        raise LotteryTicketError(f"metric {metric!r}: say whether higher or lower is better with --metric-mode max or min")
    return _named(metric.rsplit(":", 1)[1].rsplit(".", 1)[-1], mode)


def _named(key: str, mode: str) -> Score:
    if not key.isidentifier() or key in RESERVED or key in BUILTIN:
        raise LotteryTicketError(f"metric name {key!r} would be recorded as a record field it cannot be (reserved: "
                                 f"{', '.join(sorted(RESERVED | set(BUILTIN)))}); rename it")
    return Score(key, higher_is_better=mode == "max", percent=False)


def score_of_record(row: dict) -> Score:
    """The Score a record states (accuracy when it states none); one line for a malformed statement."""
    stated = row.get("score")
    if stated is None:
        return ACCURACY
    try:
        score = Score(**stated)
    except TypeError:
        raise LotteryTicketError(f"a record states score {stated!r}; it is not a score") from None
    if not (isinstance(score.key, str) and isinstance(score.higher_is_better, bool) and isinstance(score.percent, bool)):
        raise LotteryTicketError(f"a record states score {stated!r}; it is not a score")
    return score


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
