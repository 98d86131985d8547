"""LotteryTicketFinder: IMP and its controls from Python, in memory, on the same engine as the CLI.

    train dense -> prune the smallest weights -> reset survivors to θ₀ (or rewind to iteration k)
    -> retrain with the mask enforced after every step -> repeat until the target sparsity.

`train_fn(model, mask)` trains in place and may return a dict of metrics (iterations,
early_stop_iteration, ...). If it accepts `on_step`, it calls `on_step(iteration, model)` after each
optimizer step (how rewinding gets its step-k snapshot); if it accepts `start_iteration`, a rewound
round starts its schedule and data order there (Frankle et al. 2020). `Trainer.as_train_fn()` does both.
A `train_fn(model)` that knows nothing of masks works too: the mask is then enforced by optimizer step
hooks. `eval_fn(model)` returns an accuracy (float) or a dict with "accuracy".
"""

from __future__ import annotations

import copy
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .devices import check_device
from .enforce import enforce_on_every_step
from .errors import LotteryTicketError
from .imp import IMP, MemoryStore
from .imp.controls import CONTROLS
from .io import read_json, write_json
from .mask import PruningMask
from .pruning import MagnitudePruner
from .pruning.base import Pruner
from .pruning.schedule import Schedule
from .sparsity import check_rounds, check_sparsity, per_round_rate
from .state import load_state, restore_, save_state, snapshot

TrainFn = Callable[..., Mapping[str, Any] | None]
EvalFn = Callable[[nn.Module], float | Mapping[str, Any]]
EXPERIMENT_FORMAT = "lottery_ticket.experiment/1"


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _positional_count(fn: Callable) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


class _Functions:
    """The engine's Trainable over a user's train_fn and eval_fn."""

    def __init__(self, finder: "LotteryTicketFinder", template: nn.Module, train_fn: TrainFn, eval_fn: EvalFn):
        self.finder, self.template, self.train_fn, self.eval_fn = finder, template, train_fn, eval_fn

    def build_model(self, seed: int) -> nn.Module:
        if self.finder.model_class is not None:
            return self.finder.build_model(seed)
        fresh = copy.deepcopy(self.template)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in fresh.modules():
                # MultiheadAttention (and some others) name it _reset_parameters
                reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
                if callable(reset):
                    reset()
        return fresh

    def train(self, model, mask, *, stage, start_iteration, on_step, callbacks):
        mask.apply(model)
        kwargs: dict[str, Any] = {}
        if on_step is not None:
            if not _accepts(self.train_fn, "on_step"):
                raise LotteryTicketError(
                    "rewind_iteration needs a train_fn(model, mask, on_step=None) that calls on_step(iteration, model) "
                    "after each optimizer step; lottery_ticket.Trainer.as_train_fn() does this")
            kwargs["on_step"] = on_step
        if start_iteration:
            if not _accepts(self.train_fn, "start_iteration"):
                raise LotteryTicketError(
                    "a rewound round continues from step k (Frankle et al. 2020): give train_fn a start_iteration "
                    "argument that starts the LR schedule and data order there (Trainer.as_train_fn() has one), "
                    "or pass LotteryTicketFinder(..., rewind_mode='restart') to train from step 0's schedule")
            kwargs["start_iteration"] = start_iteration
        before = [p.detach().clone() for p in model.parameters()]
        if _positional_count(self.train_fn) >= 2:
            metrics = self.train_fn(model, mask, **kwargs)
            if not mask.is_applied(model):
                raise LotteryTicketError(
                    "train_fn left pruned weights non-zero; call mask.apply(model) after every optimizer.step() "
                    "(or use lottery_ticket.Trainer, or a train_fn(model) and let the finder enforce the mask)")
        else:
            with enforce_on_every_step(mask, model):
                metrics = self.train_fn(model, **kwargs)
            mask.apply(model)
        if before and all(torch.equal(b, p.detach()) for b, p in zip(before, model.parameters())):
            # The spec's style (an optimizer built once, outside train_fn) trains only the first model it saw:
            # a control's fresh network would stay untrained and its accuracy would flatter the ticket.
            raise LotteryTicketError(
                "train_fn changed no weight of the model it was given; build the optimizer inside train_fn from that "
                "model's parameters (every round and every control passes a new or reset network)")
        return dict(metrics or {})

    def evaluate(self, model) -> dict:
        value = self.eval_fn(model)
        if not isinstance(value, Mapping):
            return {"accuracy": _accuracy(value)}
        # A dict without "accuracy" goes through as it is: the engine says what is missing, for every entry point.
        return {**value, "accuracy": _accuracy(value["accuracy"])} if "accuracy" in value else dict(value)


def _accuracy(value) -> float:
    """eval_fn's accuracy as a float, or one line: a NaN, an infinity, a negative number, None, a string or a tensor
    would otherwise become a record that ranks tickets by nonsense."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LotteryTicketError(f"eval_fn returned {type(value).__name__} {value!r:.60}; return the accuracy as a "
                                 "Python float in [0, 1] (e.g. correct / total, or tensor.item())")
    if not math.isfinite(value) or value < 0:
        raise LotteryTicketError(f"eval_fn returned accuracy {value!r}; it must be a finite number >= 0, "
                                 "e.g. correct / total")
    return float(value)


class ControlResult(dict):
    """A control's record that also reads as its accuracy, as the spec uses it:
    `random_acc = finder.verify_random_ticket(...)`, then `f"{random_acc:.2%}"` or `float(random_acc)`."""

    def __float__(self) -> float:
        return float(self["accuracy"])

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else dict.__repr__(self)


class LotteryTicketFinder:
    """Find winning tickets by IMP, and run the random-reinit and random-pruning controls.

    model_class, model_kwargs  how to build the network (also used for the reinit control)
    device                     where training runs
    seed                       init seed for θ₀; the controls' seeds derive from it (lottery_ticket.imp.controls)
    pruner                     default MagnitudePruner(global_pruning=True); any lottery_ticket.pruning.Pruner
    rewind_iteration           0 resets to θ₀ (the paper); k > 0 rewinds to the weights after k steps
    rewind_mode                "continue" (Frankle et al. 2020: train steps k..T) or "restart" (T steps from 0)
    one_shot                   prune each level straight from the dense-trained weights
    include, types, exclude    which weights are prunable (default: every weight matrix; docs/masks.md), e.g.
                               types=(nn.Linear, nn.MultiheadAttention, nn.Embedding, nn.LSTM)
    controls                   controls trained at every level beside the ticket, as `find --controls` runs
                               them, e.g. ("reinit", "random-prune"); results["control_rounds"] holds their rows
    """

    def __init__(
        self,
        model_class: Callable[..., nn.Module] | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        *,
        seed: int = 0,
        pruner: Pruner | None = None,
        rewind_iteration: int = 0,
        rewind_mode: str = "continue",
        one_shot: bool = False,
        include: list[str] | None = None,
        types: tuple[type, ...] | None = None,
        exclude: tuple[str, ...] = (),
        controls: tuple[str, ...] = (),
    ):
        self.model_class = model_class
        self.model_kwargs = dict(model_kwargs or {})
        self.device = check_device(device)
        self.seed = int(seed)
        self.pruner = pruner or MagnitudePruner(global_pruning=True)
        if isinstance(rewind_iteration, bool) or not isinstance(rewind_iteration, int) or rewind_iteration < 0:
            raise LotteryTicketError(f"rewind_iteration={rewind_iteration!r} must be an integer >= 0 (0 resets to θ₀)")
        if rewind_mode not in ("continue", "restart"):
            raise LotteryTicketError(f"rewind_mode={rewind_mode!r} is unknown; choose continue or restart")
        self.rewind_iteration, self.rewind_mode = rewind_iteration, rewind_mode
        self.one_shot = bool(one_shot)
        # Which weights are prunable, as PruningMask(model, include=, types=, exclude=) takes them (docs/masks.md).
        self.selection = {k: v for k, v in (("include", include), ("types", types)) if v is not None}
        if exclude:
            self.selection["exclude"] = tuple(exclude)
        from .imp.controls import check_controls

        if isinstance(controls, str):
            raise LotteryTicketError(f"controls={controls!r} is a string; pass a tuple of names, e.g. ('reinit',)")
        self.controls = check_controls(tuple(controls))
        self.initial_state: dict[str, torch.Tensor] | None = None
        self.rewind_state: dict[str, torch.Tensor] | None = None
        self.masks: list[PruningMask] = []
        self.results: dict[str, Any] = {}
        self._imp: IMP | None = None

    def build_model(self, seed: int | None = None) -> nn.Module:
        """A fresh network from `model_class(**model_kwargs)`, initialized from `seed`."""
        if self.model_class is None:
            raise LotteryTicketError("this finder has no model_class; pass LotteryTicketFinder(model_class, model_kwargs)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if seed is None else seed)
            model = self.model_class(**self.model_kwargs)
        return model.to(self.device)

    def schedule(self, target_sparsity: float | None, pruning_rounds: int, rate: float | None = None) -> Schedule:
        """A per-level `rate` prunes that fraction of the survivors each round (the paper's form; with per-layer
        rates, the layers no pattern names). Otherwise, with per-layer rates, each round prunes each layer's rate
        (the others: the rate that reaches `target_sparsity` in `pruning_rounds`); without them the rounds land on
        `target_sparsity` at the last one."""
        if rate is not None:
            if target_sparsity is not None:
                raise LotteryTicketError("pass target_sparsity or rate, not both: a per-level rate fixes the final "
                                         "sparsity (1 - (1 - rate) ** pruning_rounds)")
            return Schedule(pruning_rounds, rate=check_sparsity(rate, "rate"), one_shot=self.one_shot)
        target_sparsity = check_sparsity(0.9 if target_sparsity is None else target_sparsity, "target_sparsity")
        if self.pruner.layer_rates:
            return Schedule(pruning_rounds, rate=per_round_rate(target_sparsity, pruning_rounds), one_shot=self.one_shot)
        return Schedule(pruning_rounds, target=target_sparsity, one_shot=self.one_shot)

    def find_winning_ticket(
        self,
        model: nn.Module | None,
        train_fn: TrainFn,
        eval_fn: EvalFn,
        target_sparsity: float | None = None,
        pruning_rounds: int = 5,
        verbose: bool = True,
        rate: float | None = None,
    ) -> tuple[nn.Module, PruningMask, dict]:
        """Run IMP (and the finder's controls at every level); return the trained ticket, its mask, and per-round
        results. The schedule: `target_sparsity` (default 0.9) at the last of `pruning_rounds`, or a per-level
        `rate` (the paper's 20 % a round: rate=0.2)."""
        pruning_rounds = check_rounds(pruning_rounds)
        schedule = self.schedule(target_sparsity, pruning_rounds, rate)
        target_sparsity = schedule.target if schedule.target is not None else 1 - (1 - schedule.rate) ** pruning_rounds
        if model is None:
            model = self.build_model()
        model = model.to(self.device)
        store = MemoryStore()
        store.save_state("init", snapshot(model))
        self._imp = IMP(trainable=_Functions(self, model, train_fn, eval_fn), store=store, pruner=self.pruner,
                        schedule=schedule, seed=self.seed, rewind_iteration=self.rewind_iteration,
                        rewind_mode=self.rewind_mode, controls=self.controls, log=print if verbose else None,
                        selection=self.selection)
        rows = self._imp.run()
        restore_(model, store.load_state(f"trained/{pruning_rounds}"))
        self.initial_state, self.rewind_state = store.load_state("init"), store.load_state("rewind")
        self.masks = [store.masks[r] for r in range(pruning_rounds + 1)]
        self.results = {
            "format": EXPERIMENT_FORMAT,
            "config": {
                "model_class": getattr(self.model_class, "__name__", None),
                "model_kwargs": self.model_kwargs,
                "seed": self.seed,
                "target_sparsity": target_sparsity,
                "pruning_rounds": pruning_rounds,
                **({"rate": schedule.rate} if rate is not None else {}),
                **({"controls": list(self.controls)} if self.controls else {}),
                "rewind_iteration": self.rewind_iteration,
                "rewind_mode": self.rewind_mode,
                "one_shot": self.one_shot,
                "pruner": repr(self.pruner),
                "torch_version": torch.__version__,
            },
            "rounds": rows,
            "controls": {},
        }
        if self.controls:  # every level's rows, and the last level's as verify_random_ticket gives it
            records = [CONTROLS[c].record for c in self.controls]
            self.results["control_rounds"] = {r: [store.records[(r, level)] for level in range(1, pruning_rounds + 1)]
                                              for r in records}
            self.results["controls"] = {r: ControlResult(by_level[-1])
                                        for r, by_level in self.results["control_rounds"].items()}
        return model, self.masks[-1], self.results

    # ---- controls ----------------------------------------------------------------------------------
    def verify_random_ticket(self, train_fn: TrainFn, eval_fn: EvalFn, mask: PruningMask | None = None,
                             seed: int | None = None) -> dict:
        """Random reinit control: the ticket's mask on a fresh random init (seed + 10,000 by default)."""
        return self._control("reinit", train_fn, eval_fn, mask, seed)

    def random_pruning_control(self, train_fn: TrainFn, eval_fn: EvalFn, mask: PruningMask | None = None,
                               seed: int | None = None) -> dict:
        """Random pruning control: θ₀ with a random mask of the same per-layer sparsity."""
        return self._control("random-prune", train_fn, eval_fn, mask, seed)

    def _control(self, key: str, train_fn, eval_fn, mask: PruningMask | None, seed: int | None) -> dict:
        if self.initial_state is None or (mask is None and not self.masks):
            raise LotteryTicketError("no ticket yet; run find_winning_ticket(...) first or pass mask=")
        if self._imp is None:  # after load_experiment: θ₀ and masks come from the files
            if self.model_class is None:
                raise LotteryTicketError("controls need model_class to build a fresh network; "
                                         "pass LotteryTicketFinder(model_class, model_kwargs)")
            store = MemoryStore()
            store.save_state("init", self.initial_state)
            self._imp = IMP(trainable=None, store=store, pruner=self.pruner, schedule=Schedule(1, rate=0.2), seed=self.seed)
        imp = self._imp
        template = imp.trainable.template if imp.trainable is not None else self.build_model()
        imp.trainable = _Functions(self, template, train_fn, eval_fn)
        level = max(0, len(self.masks) - 1)
        row = imp.run_control(CONTROLS[key], level, mask=mask if mask is not None else self.masks[-1],
                              seed=seed if seed is not None else CONTROLS[key].seed_for(self.seed, level))
        row = ControlResult(row)
        self.results.setdefault("controls", {})[CONTROLS[key].record] = row
        return row

    # ---- files -------------------------------------------------------------------------------------
    def save_experiment(self, path: str | os.PathLike, results: Mapping[str, Any] | None = None, *,
                        dataset: str = "your data") -> Path:
        """Write a folder that is also a run folder: experiment.json, init.safetensors, [rewind.safetensors] and
        masks/round_XX.safetensors (what load_experiment reads), and config.json, seed_<s>/rounds/*.json,
        seed_<s>/controls/*.json, metrics.csv and summary.json (what `report` and `compare` read, as for `find`).
        `dataset` labels the data in reports (the finder never sees it).

        Each file is written atomically; experiment.json goes last, so its presence means the folder is complete.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise LotteryTicketError(f"{path} is a file; save_experiment needs a folder path")
        results = dict(results if results is not None else self.results)
        self._write_run_folder(path, results, dataset)
        if self.initial_state is not None:
            save_state(path / "init.safetensors", self.initial_state)
        if self.rewind_state is not None:
            save_state(path / "rewind.safetensors", self.rewind_state)
        for i, mask in enumerate(self.masks):
            mask.save(path / "masks" / f"round_{i:02d}.safetensors")
        results["num_masks"] = len(self.masks)
        write_json(path / "experiment.json", results)
        return path

    def _write_run_folder(self, path: Path, results: dict, dataset: str) -> None:
        from .experiment.results import write_metrics_and_summary
        from .experiment.runfolder import API_RUN_FORMAT, ApiRunConfig, RunFolder
        from .imp.store import FolderStore, valid_record

        folder = RunFolder(path)
        if folder.config.is_file() and (read_json(folder.config) or {}).get("format") != API_RUN_FORMAT:
            raise LotteryTicketError(f"{path} holds a `lottery-ticket find` run; save the experiment to another folder")
        rows = [r for r in results.get("rounds", []) if isinstance(r, Mapping)]
        controls = results.get("control_rounds") or {k: [v] for k, v in results.get("controls", {}).items()}
        seeds = sorted({r.get("seed") for r in rows if isinstance(r.get("seed"), int)}) or [self.seed]
        model_class = self.model_class or (type(self._imp.trainable.template) if self._imp and self._imp.trainable
                                           else None)
        label = f"{model_class.__module__}.{model_class.__qualname__}" if model_class is not None else "your model"
        config = ApiRunConfig(model=label, dataset=str(dataset), seeds=tuple(seeds),
                              controls=tuple(results.get("config", {}).get("controls", ())),
                              settings=dict(results.get("config", {})))
        for seed in seeds:  # a folder saved before holds this save's records only
            for old in [*folder.seed(seed).root.glob("rounds/*.json"), *folder.seed(seed).root.glob("controls/*.json")]:
                old.unlink()
        written = 0
        for row in [*rows, *(row for by_level in controls.values() for row in by_level)]:
            row = dict(row)
            kind, level, seed = row.get("kind"), row.get("round"), row.get("seed")
            if not valid_record(row, seed, kind, level) or not isinstance(seed, int):
                continue  # a hand-edited results dict: what is not a record stays out of the run folder
            FolderStore(folder.seed(seed)).save_record(kind, level, row)
            written += 1
        if not written:
            raise LotteryTicketError("the results hold no rounds to save; run find_winning_ticket(...) first")
        write_json(folder.config, {"format": API_RUN_FORMAT, "experiment": config.to_dict()})
        write_metrics_and_summary(folder, config)

    def load_experiment(self, path: str | os.PathLike) -> dict:
        """Read a folder written by save_experiment; restores θ₀, the rewind point and the masks."""
        return _load_experiment_into(self, Path(path))


def _load_experiment_into(finder: LotteryTicketFinder, path: Path) -> dict:
    if not (path / "experiment.json").is_file():
        raise LotteryTicketError(f"{path} holds no experiment.json; pass a folder written by save_experiment")
    results = read_json(path / "experiment.json")
    if not isinstance(results, dict) or results.get("format") != EXPERIMENT_FORMAT:
        raise LotteryTicketError(f"{path / 'experiment.json'} is not a lottery_ticket experiment (format {EXPERIMENT_FORMAT!r} expected)")
    num_masks = results.get("num_masks", 0)
    if isinstance(num_masks, bool) or not isinstance(num_masks, int) or not 0 <= num_masks <= 10_000:
        raise LotteryTicketError(f"{path / 'experiment.json'} has num_masks={num_masks!r}, not a mask count; "
                                 "write the folder again with save_experiment")
    finder.results = results
    finder.initial_state = load_state(path / "init.safetensors") if (path / "init.safetensors").exists() else None
    finder.rewind_state = load_state(path / "rewind.safetensors") if (path / "rewind.safetensors").exists() else None
    finder.masks = [PruningMask.load(path / "masks" / f"round_{i:02d}.safetensors") for i in range(num_masks)]
    return results


def load_experiment(path: str | os.PathLike) -> tuple[dict, LotteryTicketFinder]:
    """Load a saved experiment without building a model: (results, finder holding θ₀ and masks)."""
    finder = LotteryTicketFinder()
    return _load_experiment_into(finder, Path(path)), finder
