"""ExperimentConfig: everything that defines an IMP experiment, resolved from a preset and overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..config import PruneConfig, TrainConfig, from_dict, to_dict
from ..errors import LotteryTicketError

CONTROLS = ("reinit", "random-prune")


@dataclass
class ExperimentConfig:
    model: str = field(metadata={"help": "a name from MODELS"})
    dataset: str = field(metadata={"help": "a name from DATASETS"})
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    seeds: tuple[int, ...] = (0,)
    controls: tuple[str, ...] = ()
    preset: str | None = None
    early_bird: float | None = field(default=None, metadata={"help": "stop dense training when the mask's "
                                                                     "Hamming distance between checks falls below this fraction"})

    def __post_init__(self):
        from ..data import DATASETS
        from ..models import get_model_class

        get_model_class(self.model)  # unknown names fail here, before any folder is touched
        if self.dataset not in DATASETS:
            raise LotteryTicketError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds:
            raise LotteryTicketError("seeds is empty; pass e.g. --seeds 0,1,2")
        if len(set(self.seeds)) != len(self.seeds):
            raise LotteryTicketError(f"seeds {list(self.seeds)} repeat a seed; give each seed once")
        self.controls = tuple(self.controls)
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            raise LotteryTicketError(f"unknown control(s) {bad}; choose from {', '.join(CONTROLS)}")
        if self.early_bird is not None and not (0 < self.early_bird < 1):
            raise LotteryTicketError(f"early_bird={self.early_bird!r} must be in (0, 1), e.g. 0.1")

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same experiment (resume refuses a folder whose identity differs)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentConfig":
        data = dict(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise LotteryTicketError(f"unknown experiment key(s) {unknown}; valid keys: {sorted(names)}")
        if isinstance(data.get("train"), Mapping):
            data["train"] = from_dict(TrainConfig, data["train"])
        if isinstance(data.get("prune"), Mapping):
            data["prune"] = from_dict(PruneConfig, data["prune"])
        for key in ("seeds", "controls"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)
