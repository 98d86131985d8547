"""LotteryTicketFinder: iterative magnitude pruning with reset (or rewind) and its controls.

    train dense -> prune the smallest weights -> reset survivors to θ₀ (or to iteration k)
    -> retrain with the mask enforced after every step -> repeat until the target sparsity.

`train_fn(model, mask)` trains in place and may return a dict of metrics (iterations,
early_stop_iteration, ...); if it also accepts `on_step`, it calls `on_step(iteration, model)`
after each optimizer step, which is how rewinding (late resetting) gets its snapshot.
A `train_fn(model)` that knows nothing of masks is supported too: the mask is then enforced by
optimizer step hooks. `eval_fn(model)` returns an accuracy (float) or a dict with "accuracy".
"""

from __future__ import annotations

import copy
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .enforce import enforce_on_every_step
from .errors import LotteryTicketError
from .io import read_json, write_json
from .mask import PruningMask
from .pruning import MagnitudePruner, RandomPruner
from .sparsity import check_rounds, check_sparsity, sparsity_after_round
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


def _accuracy(value: float | Mapping[str, Any]) -> tuple[float, dict]:
    if isinstance(value, Mapping):
        if "accuracy" not in value:
            raise LotteryTicketError("eval_fn returned a dict without 'accuracy'; return a float or {'accuracy': ...}")
        return float(value["accuracy"]), {k: v for k, v in value.items() if k != "accuracy"}
    return float(value), {}


def next_mask(pruner, model: nn.Module, base_mask: PruningMask, target_sparsity: float, rounds: int,
              round_index: int, one_shot: bool = False) -> PruningMask:
    """The mask of IMP round `round_index` (1-based), pruned from `model`'s trained weights.

    With per-layer rates (the paper's protocol) each round prunes each layer's rate of its survivors;
    otherwise the cumulative schedule 1-(1-rate)^r is used so the last round lands on the target.
    One-shot prunes `base_mask` (the dense mask) straight to that round's level.
    """
    if getattr(pruner, "layer_rates", None) and not one_shot:
        return pruner.prune_fraction(model, base_mask, sparsity_after_round(target_sparsity, rounds, 1))
    if getattr(pruner, "layer_rates", None):
        return pruner.prune(model, base_mask, {n: 1 - (1 - pruner.rate_for(n, sparsity_after_round(target_sparsity, rounds, 1))) ** round_index
                                               for n in pruner.eligible(base_mask)})
    return pruner.prune(model, base_mask, sparsity_after_round(target_sparsity, rounds, round_index))


class LotteryTicketFinder:
    """Find winning tickets by IMP, and run the random-reinit and random-pruning controls.

    model_class, model_kwargs  how to build the network (also used for the reinit control)
    device                     where training runs
    seed                       init seed for θ₀; the reinit control uses seed + 1
    pruner                     default MagnitudePruner(global_pruning=True)
    rewind_iteration           0 resets to θ₀ (the paper); k > 0 rewinds to the weights after k steps
    one_shot                   prune each level straight from the dense-trained weights
    """

    def __init__(
        self,
        model_class: Callable[..., nn.Module] | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        *,
        seed: int = 0,
        pruner: MagnitudePruner | None = None,
        rewind_iteration: int = 0,
        one_shot: bool = False,
    ):
        self.model_class = model_class
        self.model_kwargs = dict(model_kwargs or {})
        self.device = torch.device(device)
        self.seed = int(seed)
        self.pruner = pruner or MagnitudePruner(global_pruning=True)
        if isinstance(rewind_iteration, bool) or not isinstance(rewind_iteration, int) or rewind_iteration < 0:
            raise LotteryTicketError(f"rewind_iteration={rewind_iteration!r} must be an integer >= 0 (0 resets to θ₀)")
        self.rewind_iteration = rewind_iteration
        self.one_shot = bool(one_shot)
        self.initial_state: dict[str, torch.Tensor] | None = None
        self.rewind_state: dict[str, torch.Tensor] | None = None
        self.masks: list[PruningMask] = []
        self.results: dict[str, Any] = {}

    # ---- building models -------------------------------------------------------------------
    def build_model(self, seed: int | None = None) -> nn.Module:
        """A fresh network from `model_class(**model_kwargs)`, initialized from `seed`."""
        if self.model_class is None:
            raise LotteryTicketError("this finder has no model_class; pass LotteryTicketFinder(model_class, model_kwargs)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if seed is None else seed)
            model = self.model_class(**self.model_kwargs)
        return model.to(self.device)

    def _reinitialized_copy(self, model: nn.Module, seed: int) -> nn.Module:
        if self.model_class is not None:
            return self.build_model(seed)
        fresh = copy.deepcopy(model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in fresh.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        return fresh

    # ---- one training run --------------------------------------------------------------------
    def _train(self, model: nn.Module, mask: PruningMask, train_fn: TrainFn, capture_rewind: bool = False) -> dict:
        mask.apply(model)
        kwargs = {}
        if capture_rewind and self.rewind_iteration > 0:
            if not _accepts(train_fn, "on_step"):
                raise LotteryTicketError(
                    "rewind_iteration needs a train_fn(model, mask, on_step=None) that calls on_step(iteration, model) "
                    "after each optimizer step; lottery_ticket.Trainer.as_train_fn() does this"
                )

            def on_step(iteration: int, m: nn.Module) -> None:
                if iteration == self.rewind_iteration:
                    self.rewind_state = snapshot(m)

            kwargs["on_step"] = on_step
        if _positional_count(train_fn) >= 2:
            metrics = train_fn(model, mask, **kwargs)
            if not mask.is_applied(model):
                raise LotteryTicketError(
                    "train_fn left pruned weights non-zero; call mask.apply(model) after every optimizer.step() "
                    "(or use lottery_ticket.Trainer, or a train_fn(model) and let the finder enforce the mask)"
                )
        else:
            with enforce_on_every_step(mask, model):
                metrics = train_fn(model, **kwargs)
            mask.apply(model)
        if capture_rewind and self.rewind_iteration > 0 and self.rewind_state is None:
            raise LotteryTicketError(
                f"train_fn never reported iteration {self.rewind_iteration} to on_step; "
                "use a rewind_iteration below the number of training steps"
            )
        return dict(metrics or {})

    def _evaluate(self, model: nn.Module, eval_fn: EvalFn) -> tuple[float, dict]:
        return _accuracy(eval_fn(model))

    @staticmethod
    def _record(round_index: int, mask: PruningMask, accuracy: float, extra: dict, train: dict) -> dict:
        return {
            "round": round_index,
            "sparsity": mask.sparsity,
            "weights_remaining_pct": 100.0 * mask.density,
            "num_remaining": mask.num_remaining,
            "num_total": mask.num_total,
            "layer_sparsities": mask.layer_sparsities,
            "accuracy": accuracy,
            **({"eval": extra} if extra else {}),
            "train": train,
        }

    # ---- IMP -------------------------------------------------------------------------------------
    def find_winning_ticket(
        self,
        model: nn.Module | None,
        train_fn: TrainFn,
        eval_fn: EvalFn,
        target_sparsity: float = 0.9,
        pruning_rounds: int = 5,
        verbose: bool = True,
    ) -> tuple[nn.Module, PruningMask, dict]:
        """Run IMP; return the trained ticket, its mask, and per-round results."""
        target_sparsity = check_sparsity(target_sparsity, "target_sparsity")
        pruning_rounds = check_rounds(pruning_rounds)
        say = print if verbose else (lambda *a, **k: None)
        if model is None:
            model = self.build_model()
        model = model.to(self.device)
        self.initial_state = snapshot(model)
        self.rewind_state = None
        mask = PruningMask(model)
        self.masks = [mask]
        rounds: list[dict] = []

        # Round 0: the dense network, which also yields the rewind point.
        train = self._train(model, mask, train_fn, capture_rewind=True)
        accuracy, extra = self._evaluate(model, eval_fn)
        rounds.append(self._record(0, mask, accuracy, extra, train))
        say(f"round 0: dense, {mask.num_remaining:,} weights, accuracy {accuracy:.4f}")
        dense_trained = snapshot(model) if self.one_shot else None
        reset_state = self.rewind_state if self.rewind_iteration > 0 else self.initial_state

        for r in range(1, pruning_rounds + 1):
            if self.one_shot:
                restore_(model, dense_trained)
                base_mask = self.masks[0]
            else:
                base_mask = mask
            mask = next_mask(self.pruner, model, base_mask, target_sparsity, pruning_rounds, r, self.one_shot)
            self.masks.append(mask)
            restore_(model, reset_state)
            train = self._train(model, mask, train_fn)
            accuracy, extra = self._evaluate(model, eval_fn)
            rounds.append(self._record(r, mask, accuracy, extra, train))
            say(f"round {r}: {rounds[-1]['weights_remaining_pct']:.2f}% weights remaining, accuracy {accuracy:.4f}")

        self.results = {
            "format": EXPERIMENT_FORMAT,
            "config": {
                "model_class": getattr(self.model_class, "__name__", None),
                "model_kwargs": self.model_kwargs,
                "seed": self.seed,
                "target_sparsity": target_sparsity,
                "pruning_rounds": pruning_rounds,
                "rewind_iteration": self.rewind_iteration,
                "one_shot": self.one_shot,
                "pruner": repr(self.pruner),
                "torch_version": torch.__version__,
            },
            "rounds": rounds,
            "controls": {},
        }
        return model, mask, self.results

    # ---- controls ----------------------------------------------------------------------------------
    def _final_mask(self, mask: PruningMask | None) -> PruningMask:
        if mask is not None:
            return mask
        if not self.masks:
            raise LotteryTicketError("no ticket yet; run find_winning_ticket(...) first or pass mask=")
        return self.masks[-1]

    def verify_random_ticket(self, train_fn: TrainFn, eval_fn: EvalFn, mask: PruningMask | None = None, seed: int | None = None) -> dict:
        """Random reinit control: the ticket's mask on a fresh random init (seed + 1 by default)."""
        mask = self._final_mask(mask)
        seed = self.seed + 1 if seed is None else seed
        template = self._template_model()
        model = self._reinitialized_copy(template, seed)
        return self._run_control("random_reinit", model, mask, train_fn, eval_fn, {"init_seed": seed})

    def random_pruning_control(self, train_fn: TrainFn, eval_fn: EvalFn, mask: PruningMask | None = None, seed: int | None = None) -> dict:
        """Random pruning control: θ₀ with a random mask of the same per-layer sparsity."""
        mask = self._final_mask(mask)
        seed = self.seed + 1 if seed is None else seed
        random_mask = RandomPruner(seed).like(mask)
        model = self._template_model()
        restore_(model, self.initial_state)
        return self._run_control("random_pruning", model, random_mask, train_fn, eval_fn, {"mask_seed": seed})

    def _template_model(self) -> nn.Module:
        if self.initial_state is None:
            raise LotteryTicketError("no θ₀ yet; run find_winning_ticket(...) first")
        if self.model_class is not None:
            return self.build_model()
        raise LotteryTicketError("controls need model_class to build a fresh network; pass LotteryTicketFinder(model_class, model_kwargs)")

    def _run_control(self, name: str, model: nn.Module, mask: PruningMask, train_fn, eval_fn, info: dict) -> dict:
        train = self._train(model, mask, train_fn)
        accuracy, extra = self._evaluate(model, eval_fn)
        result = {"accuracy": accuracy, "sparsity": mask.sparsity, "weights_remaining_pct": 100.0 * mask.density,
                  **info, **({"eval": extra} if extra else {}), "train": train}
        self.results.setdefault("controls", {})[name] = result
        return result

    # ---- files -------------------------------------------------------------------------------------
    def save_experiment(self, path: str | os.PathLike, results: Mapping[str, Any] | None = None) -> Path:
        """Write a folder: experiment.json, init.safetensors, [rewind.safetensors], masks/round_XX.safetensors.

        Each file is written atomically; experiment.json goes last, so its presence means the folder is complete.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise LotteryTicketError(f"{path} is a file; save_experiment needs a folder path")
        results = dict(results if results is not None else self.results)
        if self.initial_state is not None:
            save_state(path / "init.safetensors", self.initial_state)
        if self.rewind_state is not None:
            save_state(path / "rewind.safetensors", self.rewind_state)
        for i, mask in enumerate(self.masks):
            mask.save(path / "masks" / f"round_{i:02d}.safetensors")
        results["num_masks"] = len(self.masks)
        write_json(path / "experiment.json", results)
        return path

    def load_experiment(self, path: str | os.PathLike) -> dict:
        """Read a folder written by save_experiment; restores θ₀, the rewind point and the masks."""
        return _load_experiment_into(self, Path(path))


def _load_experiment_into(finder: LotteryTicketFinder, path: Path) -> dict:
    if not (path / "experiment.json").is_file():
        raise LotteryTicketError(f"{path} holds no experiment.json; pass a folder written by save_experiment")
    results = read_json(path / "experiment.json")
    if not isinstance(results, dict) or results.get("format") != EXPERIMENT_FORMAT:
        raise LotteryTicketError(f"{path / 'experiment.json'} is not a lottery_ticket experiment (format {EXPERIMENT_FORMAT!r} expected)")
    finder.results = results
    finder.initial_state = load_state(path / "init.safetensors") if (path / "init.safetensors").exists() else None
    finder.rewind_state = load_state(path / "rewind.safetensors") if (path / "rewind.safetensors").exists() else None
    finder.masks = [PruningMask.load(path / "masks" / f"round_{i:02d}.safetensors") for i in range(int(results.get("num_masks", 0)))]
    return results


def load_experiment(path: str | os.PathLike) -> tuple[dict, LotteryTicketFinder]:
    """Load a saved experiment without building a model: (results, finder holding θ₀ and masks)."""
    finder = LotteryTicketFinder()
    return _load_experiment_into(finder, Path(path)), finder
