"""Typed configuration: small dataclasses with defaults, parsed and validated in one place.

Unknown keys fail (`from_dict`), and the resolved config is what every run folder records.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

from .errors import LotteryTicketError
from .sparsity import check_min_density, check_rounds, check_sparsity, parse_nm

T = TypeVar("T")

# Field types as the annotations spell them (this module's annotations are strings): what a TOML file or a stored
# config.json may hold for each. A string "0.1" for lr is refused here, not deep inside the optimizer.
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_TYPE_CHECKS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string"),
    "float": (_is_number, "a number"),
    "float | None": (lambda v: v is None or _is_number(v), "a number"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "tuple[str, ...]": (lambda v: isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v), "a list of strings"),
    "tuple[int, ...]": (lambda v: isinstance(v, (tuple, list)) and all(isinstance(x, int) and not isinstance(x, bool)
                                                                       for x in v), "a list of integers"),
    "dict[str, float]": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items()),
                         "a table of name = number"),
    "dict[str, Any]": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v), "a table"),
}


def check_field_types(config: Any) -> None:
    """One line for the first field whose value is not of its declared type (the annotations above)."""
    for f in dataclasses.fields(config):
        check = _TYPE_CHECKS.get(f.type) if isinstance(f.type, str) else None
        value = getattr(config, f.name)
        if check is not None and not check[0](value):
            raise LotteryTicketError(f"{f.name}={value!r} must be {check[1]}, not {type(value).__name__}")
        if check is not None and f.type.startswith("float") and value is not None and not math.isfinite(value):
            raise LotteryTicketError(f"{f.name}={value!r} must be a finite number")


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
        amount, unit = float(m.group(1)), m.group(2)
        if unit == "it" and amount != int(amount):
            raise LotteryTicketError(f"budget {text!r} is a fraction of an iteration; write a whole number, e.g. "
                                     f"'{max(1, round(amount))}it', or epochs ('0.5ep')")
        return cls(amount, unit)

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
    batch_size: int | None = field(default=60, metadata={"help": "examples per step (None: your own DataLoaders' "
                                                                 "own, recorded in each record as it was)"})
    budget: str = field(default="50000it", metadata={"help": "training length: '50000it' or '40ep'"})
    warmup: str | None = field(default=None, metadata={"help": "linear LR warmup length, e.g. '2000it'"})
    schedule: str = field(default="constant", metadata={"help": "constant | step | cosine"})
    milestones: tuple[str, ...] = field(default=(), metadata={"help": "step schedule: budgets where LR *= gamma"})
    gamma: float = field(default=0.1, metadata={"help": "step schedule factor"})
    eval_every: str | None = field(default=None, metadata={"help": "evaluate every N, e.g. '1000it' or '1ep'"})
    augment: bool = field(default=False, metadata={"help": "pad-4 random crop + flip (CIFAR)"})
    data_seed: int = field(default=0, metadata={"help": "seed for data order and augmentation"})
    validation: bool = field(default=True, metadata={"help": "hold out the dataset's validation split (the paper's); "
                                                              "false trains on every training example and evaluates "
                                                              "on the test set (open_lth)"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model"})
    channels_last: bool = field(default=False, metadata={"help": "channels_last memory format (conv nets)"})
    loss: str = field(default="cross_entropy", metadata={"help": "cross_entropy, or 'module:callable' "
                                                                 "(outputs, targets) -> mean loss"})
    amp: str | None = field(default=None, metadata={"help": "mixed precision: bf16 (autocast), or none"})
    sparse_training: str = field(default="off", metadata={"help": "off | on | auto: train pruned Linear layers "
                                                                    "through their survivors only: off (the default: "
                                                                    "the masked dense step, the same on every machine), "
                                                                    "on, or auto (where this machine measured it "
                                                                    "faster; on request, recorded per training)"})
    early_stop_on_test: bool = field(default=False, metadata={"help": "your data has no 'val' split: pick the "
                                                                      "early-stopping iteration on the test set anyway "
                                                                      "(otherwise refused)"})
    stack: str = field(default="off", metadata={"help": "on | auto | off: train a level's networks (every seed's ticket "
                                                        "and control) together as one stacked model (on; auto: on a "
                                                        "GPU, where one-at-a-time steps are launch-bound), or one at "
                                                        "a time (off)"})

    def __post_init__(self):
        check_field_types(self)
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise LotteryTicketError(f"optimizer={self.optimizer!r} is unknown; choose sgd, adam or adamw")
        if self.schedule not in ("constant", "step", "cosine"):
            raise LotteryTicketError(f"schedule={self.schedule!r} is unknown; choose constant, step or cosine")
        if self.amp not in (None, "bf16"):
            raise LotteryTicketError(f"amp={self.amp!r} is unknown; choose bf16 (or leave it unset)")
        if self.stack not in ("on", "auto", "off"):
            raise LotteryTicketError(f"stack={self.stack!r} is unknown; choose on, auto or off")
        if self.sparse_training not in ("auto", "on", "off"):
            raise LotteryTicketError(f"sparse_training={self.sparse_training!r} is unknown; choose auto, on or off")
        if not (self.lr > 0):
            raise LotteryTicketError(f"lr={self.lr!r} must be > 0")
        for name in ("momentum", "weight_decay"):
            if getattr(self, name) < 0:
                raise LotteryTicketError(f"{name}={getattr(self, name)!r} must be >= 0")
        if not (0 < self.gamma):
            raise LotteryTicketError(f"gamma={self.gamma!r} must be > 0")
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise LotteryTicketError(f"batch_size={self.batch_size!r} must be an integer >= 1")
        if not isinstance(self.validation, bool):
            raise LotteryTicketError(f"validation={self.validation!r} must be true or false")
        budget = Budget.parse(self.budget)
        if self.warmup is not None:
            warmup = Budget.parse(self.warmup)
            if warmup.unit == budget.unit and warmup.amount > budget.amount:
                raise LotteryTicketError(f"warmup={self.warmup!r} is longer than the budget {self.budget!r}; "
                                         "pass a shorter --warmup")
        if self.eval_every is not None:
            Budget.parse(self.eval_every)
        milestones = [Budget.parse(m) for m in self.milestones]
        if len({m.unit for m in milestones}) == 1 and any(b.amount <= a.amount for a, b in zip(milestones, milestones[1:])):
            raise LotteryTicketError(f"milestones {list(self.milestones)} must increase, e.g. 20000it,25000it")
        self.milestones = tuple(str(m) for m in milestones)


@dataclass
class PruneConfig:
    pruner: str = field(default="magnitude", metadata={"help": "a criterion from pruning.PRUNERS: magnitude | random | nm | 2:4 | sparse-global | snip | grasp | synflow | magnitude-init"})
    rate: float | None = field(default=None, metadata={"help": "fraction of surviving weights pruned per level "
                                                               "(the paper's form; default 0.2 unless target_sparsity is set)"})
    target_sparsity: float | None = field(default=None, metadata={"help": "final sparsity of the eligible weights, "
                                                                          "reached at level `rounds` (instead of rate)"})
    rounds: int = field(default=15, metadata={"help": "IMP levels after the dense one"})
    global_pruning: bool = field(default=False, metadata={"help": "rank all layers together"})
    layer_rates: dict[str, float] = field(default_factory=dict, metadata={
        "help": "per-level rate by name pattern, most specific pattern wins (rate form only)"})
    exclude: tuple[str, ...] = field(default=(), metadata={"help": "name patterns never pruned"})
    include: tuple[str, ...] = field(default=(), metadata={
        "help": "pruned besides every weight matrix (the default): name patterns, or type:Embedding / type:LayerNorm"})
    nm: str = field(default="2:4", metadata={"help": "N:M pattern of the nm pruner"})
    min_density: float | None = field(default=0.0, metadata={
        "help": "layer-collapse guard: every layer keeps at least max(1, ceil(min_density * size)) weights; "
                "none turns it off (a layer may then be pruned away, with a warning)"})
    rewind_iteration: int = field(default=0, metadata={"help": "0 resets to θ₀; k rewinds to the weights after step k"})
    rewind_mode: str = field(default="continue", metadata={
        "help": "continue: a rewound level trains steps k..T with the LR schedule and data order at k "
                "(Frankle et al. 2020); restart: T steps from step 0's schedule and data order"})
    one_shot: bool = field(default=False, metadata={"help": "prune each level from the dense weights"})

    def __post_init__(self):
        check_field_types(self)  # the pruner's name is checked where PRUNERS lives (registries.check_names)
        parse_nm(self.nm)
        if self.rate is not None and self.target_sparsity is not None:
            raise LotteryTicketError("rate and target_sparsity are both set; give the per-level rate (the paper's form) "
                                     "or the final target, not both")
        if self.target_sparsity is not None:
            self.target_sparsity = check_sparsity(self.target_sparsity, "target_sparsity")
        elif self.rate is None:
            self.rate = DEFAULT_RATE
        if self.rate is not None:
            self.rate = check_sparsity(self.rate, "rate")
        self.rounds = check_rounds(self.rounds, "rounds")
        self.layer_rates = {k: check_sparsity(v, f"layer_rates[{k!r}]") for k, v in dict(self.layer_rates).items()}
        if self.layer_rates and self.target_sparsity is not None:
            raise LotteryTicketError("layer_rates need the per-level form; drop target_sparsity and set rate "
                                     "(the rate of layers no pattern names)")
        self.exclude, self.include = tuple(self.exclude), tuple(self.include)
        self.min_density = check_min_density(self.min_density)
        if isinstance(self.rewind_iteration, bool) or not isinstance(self.rewind_iteration, int) or self.rewind_iteration < 0:
            raise LotteryTicketError(f"rewind_iteration={self.rewind_iteration!r} must be an integer >= 0")
        if self.rewind_mode not in ("continue", "restart"):
            raise LotteryTicketError(f"rewind_mode={self.rewind_mode!r} is unknown; choose continue or restart")


DEFAULT_RATE = 0.2  # F&C and open_lth prune 20 % of the survivors per level


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


# Reading a stored config (a run folder someone handed you) must not import the code it names: inside
# `unresolved()`, import paths are checked for their form only, and resolved later where the user trusts them.
_RESOLVE_IMPORTS = contextvars.ContextVar("lottery_ticket_resolve_imports", default=True)


@contextmanager
def unresolved():
    token = _RESOLVE_IMPORTS.set(False)
    try:
        yield
    finally:
        _RESOLVE_IMPORTS.reset(token)


RUN_FORMAT = "lottery_ticket.run/2"  # run/1: before run identity ignored defaults (see _prune_from_v1)


@dataclass
class ExperimentConfig:
    """Everything that defines an IMP experiment, resolved from a preset and overrides."""

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
    framework: str = field(default="torch", metadata={
        "help": "who trains each network: torch (our Trainer) | lightning (Trainer.fit of your LightningModule) | "
                "huggingface (transformers.Trainer.train of your model)"})
    metric: str | None = field(default=None, metadata={
        "help": "what each network is scored by (scores.py): accuracy (the default), perplexity or "
                "package.module:callable; with a framework, the value its evaluation logs (e.g. test_acc)"})
    metric_mode: str | None = field(default=None, metadata={
        "help": "max or min: whether a higher or lower metric is better (a metric of yours needs it; with a "
                "framework, without it the metric must be an accuracy in [0, 1])"})

    # How much work to do, not what the experiment is: a run folder can be extended along these.
    EXTENT = ("seeds", "controls", "preset")

    def __post_init__(self):
        from .plugins import check_import_path, is_import_path

        many = lambda v: tuple(v) if hasattr(v, "__iter__") and not isinstance(v, (str, bytes, dict)) else v
        self.seeds, self.controls = many(self.seeds), many(self.controls)  # a string is refused, not split
        check_field_types(self)
        for name, cls in (("train", TrainConfig), ("prune", PruneConfig)):
            if not isinstance(getattr(self, name), cls):
                raise LotteryTicketError(f"{name} must be a table of {cls.__name__} settings, not "
                                         f"{type(getattr(self, name)).__name__}")
        # Import paths that do not resolve fail here; registered names are checked where the registries live
        # (registries.check_names), both before any folder is touched.
        if is_import_path(self.model):
            check_import_path(self.model, "model")
        if is_import_path(self.dataset):
            check_import_path(self.dataset, "data")
        if self.train.loss != "cross_entropy":
            check_import_path(self.train.loss, "loss")
        if self.framework == "torch" and is_import_path(self.dataset) and self.train.batch_size == TrainConfig.batch_size:
            # Your loaders batch: the default batch size would be recorded but never used.
            self.train = dataclasses.replace(self.train, batch_size=None)
        if self.framework == "torch" and not is_import_path(self.dataset) and self.train.batch_size is None:
            raise LotteryTicketError(f"batch_size is unset but {self.dataset!r} is a built-in dataset, which our loader "
                                     "batches; pass a batch size (--batch-size)")
        if self.framework == "torch" and self.metric == "accuracy" and self.metric_mode in (None, "max"):
            self.metric, self.metric_mode = None, None  # the default, spelled out: the same experiment
        from .scores import score_of

        score_of(self.framework, self.metric, self.metric_mode)  # one line for a metric that names no score
        if self.framework == "torch" and self.metric is not None and is_import_path(self.metric):
            check_import_path(self.metric, "metric")
        if _RESOLVE_IMPORTS.get():
            self.resolve_code()
        if any(isinstance(s, bool) or not isinstance(s, int) or not (0 <= s < 2**31) for s in self.seeds):
            raise LotteryTicketError(f"seeds {list(self.seeds)} must be integers in [0, 2**31); pass e.g. --seeds 0,1,2")
        if not self.seeds:
            raise LotteryTicketError("seeds is empty; pass e.g. --seeds 0,1,2")
        if len(set(self.seeds)) != len(self.seeds):
            raise LotteryTicketError(f"seeds {list(self.seeds)} repeat a seed; give each seed once")
        self.controls = tuple(self.controls)
        if self.framework != "torch":
            if not self.metric:
                raise LotteryTicketError(f"framework={self.framework!r} needs metric: the name of the test accuracy "
                                         "your module logs, e.g. metric='test_acc' (--metric test_acc)")
            defaults = TrainConfig()
            unused = [f.name for f in dataclasses.fields(TrainConfig)
                      if f.name != "budget" and getattr(self.train, f.name) != getattr(defaults, f.name)]
            if unused:
                raise LotteryTicketError(f"framework={self.framework!r} trains with your module's own optimizer and "
                                         f"your data's batches, so train.{', train.'.join(unused)} would go unused; "
                                         "leave them out (only train.budget is read)")
        if self.early_bird is not None and not (0 < self.early_bird < 1):
            raise LotteryTicketError(f"early_bird={self.early_bird!r} must be in (0, 1), e.g. 0.1")

    def code_paths(self) -> list[tuple[str, str]]:
        """(what, 'package.module:callable') for each of your own model, data and loss this experiment imports."""
        from .plugins import is_import_path

        named = (("model", self.model), ("data", self.dataset), ("loss", self.train.loss),
                 *((("metric", self.metric),) if self.framework == "torch" and self.metric else ()))
        return [(what, path) for what, path in named if is_import_path(path)]

    def resolve_code(self) -> None:
        """Import your own model, data and loss: one line if one does not resolve to a callable."""
        from .plugins import load_object

        for what, path in self.code_paths():
            load_object(path, what)

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same experiment: every field that differs from its default.

        Fields at their default are left out (as open_lth's run descriptions do), so adding a new
        option with a default does not orphan existing run folders. Seeds, controls and (in the
        per-level rate form) rounds say how much work to do, not what the experiment is, so a finished
        run can be extended with more of them.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in self.EXTENT:
                continue
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                diff = _non_default(value, type(value)())
                if f.name == "prune" and self.prune.rate is not None:
                    diff.pop("rounds", None)
                if diff:
                    out[f.name] = diff
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                out[f.name] = _jsonable(value)
            elif value != (f.default if f.default is not dataclasses.MISSING else f.default_factory()):
                out[f.name] = _jsonable(value)
        return out

    def extended_by(self, other: "ExperimentConfig") -> "ExperimentConfig":
        """This experiment grown to cover `other`'s seeds, controls and rounds too (same identity)."""
        seeds = self.seeds + tuple(s for s in other.seeds if s not in self.seeds)
        controls = self.controls + tuple(c for c in other.controls if c not in self.controls)
        prune = dataclasses.replace(self.prune, rounds=max(self.prune.rounds, other.prune.rounds))
        return dataclasses.replace(self, seeds=seeds, controls=controls, prune=prune)

    def to_dict(self) -> dict[str, Any]:
        out = _jsonable(dataclasses.asdict(self))
        if self.framework != "torch":  # only the budget is used (and checked so in __post_init__): only it is recorded
            out["train"] = {"budget": self.train.budget}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], format: str = RUN_FORMAT) -> "ExperimentConfig":
        data = dict(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise LotteryTicketError(f"unknown experiment key(s) {unknown}; valid keys: {sorted(names)}")
        if isinstance(data.get("train"), Mapping):
            data["train"] = from_dict(TrainConfig, data["train"])
        if isinstance(data.get("prune"), Mapping):
            prune = dict(data["prune"])
            if format == "lottery_ticket.run/1":
                prune = _prune_from_v1(prune)
            data["prune"] = from_dict(PruneConfig, prune)
        for key in ("seeds", "controls"):
            if isinstance(data.get(key), list):  # anything else is refused by its type, not split into characters
                data[key] = tuple(data[key])
        return cls(**data)


def _prune_from_v1(prune: dict[str, Any]) -> dict[str, Any]:
    """A run/1 PruneConfig in today's terms, so an old run folder resumes as the same experiment.

    run/1 always stored a target; with per-layer rates it only recorded where the levels end, and layers
    no pattern named were pruned at per_round_rate(target, rounds). Rewinding restarted the schedule.
    """
    from .sparsity import per_round_rate

    rates = prune.get("layer_rates") or {}
    if rates and prune.get("target_sparsity") is not None:
        target = prune.pop("target_sparsity")
        # The rate of layers no pattern names; with a catch-all '*' no layer ever used it.
        prune["rate"] = rates["*"] if "*" in rates else per_round_rate(target, prune["rounds"])
    if prune.get("rewind_iteration"):
        prune.setdefault("rewind_mode", "restart")
    return prune


def _non_default(value: Any, default: Any) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
            if _jsonable(getattr(value, f.name)) != _jsonable(getattr(default, f.name))}


def _jsonable(obj: Any) -> Any:
    """The value as JSON would give it back (tuples become lists), so comparisons survive a round trip."""
    import json

    return json.loads(json.dumps(obj))
