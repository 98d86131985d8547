"""Typed configuration: small dataclasses with defaults, parsed and validated in one place.

Unknown keys fail (`from_dict`), and the resolved config is what every run folder records.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

from .errors import LotteryTicketError
from .sparsity import check_rounds, check_sparsity

T = TypeVar("T")

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(it|ep)\s*$")


@dataclass(frozen=True)
class Budget:
    """A training length: '50000it' (iterations) or '40ep' (epochs), as in open_lth's Step."""

    amount: float
    unit: str  # "it" or "ep"

    @classmethod
    def parse(cls, text: "str | Budget") -> "Budget":
        if isinstance(text, Budget):
            return text
        m = _BUDGET.match(str(text))
        if not m or float(m.group(1)) <= 0:
            raise LotteryTicketError(f"budget {text!r} is not understood; write e.g. '50000it' (iterations) or '40ep' (epochs)")
        return cls(float(m.group(1)), m.group(2))

    def iterations(self, steps_per_epoch: int) -> int:
        return int(self.amount) if self.unit == "it" else max(1, round(self.amount * steps_per_epoch))

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit}"


@dataclass
class TrainConfig:
    optimizer: str = field(default="adam", metadata={"help": "sgd | adam | adamw"})
    lr: float = field(default=1.2e-3, metadata={"help": "peak learning rate"})
    momentum: float = field(default=0.0, metadata={"help": "SGD momentum"})
    nesterov: bool = field(default=False, metadata={"help": "Nesterov momentum (SGD)"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 (SGD/Adam) or decoupled (AdamW) decay"})
    batch_size: int = field(default=60, metadata={"help": "examples per step"})
    budget: str = field(default="50000it", metadata={"help": "training length: '50000it' or '40ep'"})
    warmup: str | None = field(default=None, metadata={"help": "linear LR warmup length, e.g. '2000it'"})
    schedule: str = field(default="constant", metadata={"help": "constant | step | cosine"})
    milestones: tuple[str, ...] = field(default=(), metadata={"help": "step schedule: budgets where LR *= gamma"})
    gamma: float = field(default=0.1, metadata={"help": "step schedule factor"})
    eval_every: str | None = field(default=None, metadata={"help": "evaluate every N, e.g. '1000it' or '1ep'"})
    augment: bool = field(default=False, metadata={"help": "pad-4 random crop + flip (CIFAR)"})
    data_seed: int = field(default=0, metadata={"help": "seed for data order and augmentation"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model"})
    channels_last: bool = field(default=False, metadata={"help": "channels_last memory format (conv nets)"})

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise LotteryTicketError(f"optimizer={self.optimizer!r} is unknown; choose sgd, adam or adamw")
        if self.schedule not in ("constant", "step", "cosine"):
            raise LotteryTicketError(f"schedule={self.schedule!r} is unknown; choose constant, step or cosine")
        if not (self.lr > 0):
            raise LotteryTicketError(f"lr={self.lr!r} must be > 0")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise LotteryTicketError(f"batch_size={self.batch_size!r} must be an integer >= 1")
        Budget.parse(self.budget)
        if self.warmup is not None:
            Budget.parse(self.warmup)
        if self.eval_every is not None:
            Budget.parse(self.eval_every)
        self.milestones = tuple(str(Budget.parse(m)) for m in self.milestones)


@dataclass
class PruneConfig:
    target_sparsity: float = field(default=0.964, metadata={"help": "fraction of weights pruned at the end"})
    rounds: int = field(default=15, metadata={"help": "IMP rounds"})
    global_pruning: bool = field(default=False, metadata={"help": "rank all layers together"})
    layer_rates: dict[str, float] = field(default_factory=dict, metadata={"help": "per-round rate by name pattern"})
    exclude: tuple[str, ...] = field(default=(), metadata={"help": "name patterns never pruned"})
    rewind_iteration: int = field(default=0, metadata={"help": "0 resets to θ₀; k rewinds to step k"})
    one_shot: bool = field(default=False, metadata={"help": "prune each level from the dense weights"})

    def __post_init__(self):
        self.target_sparsity = check_sparsity(self.target_sparsity, "target_sparsity")
        self.rounds = check_rounds(self.rounds, "rounds")
        self.layer_rates = {k: check_sparsity(v, f"layer_rates[{k!r}]") for k, v in dict(self.layer_rates).items()}
        self.exclude = tuple(self.exclude)
        if isinstance(self.rewind_iteration, bool) or not isinstance(self.rewind_iteration, int) or self.rewind_iteration < 0:
            raise LotteryTicketError(f"rewind_iteration={self.rewind_iteration!r} must be an integer >= 0")


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build a config dataclass; unknown keys are an error that lists the valid ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LotteryTicketError(f"unknown {cls.__name__} key(s) {unknown}; valid keys: {sorted(names)}")
    data = dict(data)
    for f in dataclasses.fields(cls):
        if f.name in data and isinstance(data[f.name], list):
            data[f.name] = tuple(data[f.name])
    return cls(**data)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
