"""IMP with PyTorch Lightning: every level and every control is a `Trainer.fit` of your LightningModule.

    from lottery_ticket.integrations.lightning import find
    summary = find("my_project.tickets:make_module", "my_project.tickets:make_datamodule", out="runs/lit",
                   budget="2000it", metric="test_acc", rounds=5, seeds=(0, 1), controls=("reinit",))

or from the command line: `lottery-ticket find --framework lightning --model my_project.tickets:make_module
--dataset my_project.tickets:make_datamodule --metric test_acc --budget 2000it --out runs/lit`.

What differs from Lightning's own `ModelPruning(use_lottery_ticket_hypothesis=True)` (docs/lightning.md): that
callback prunes during one fit; here each network trains to the end of its budget, is pruned by the run's pruner
(Linear/Conv weights by default, biases and normalization never), reset to θ₀ (or rewound to step k) and trained
again with the mask enforced after every optimizer step, with the controls beside it, in a run folder that
`report`, `compare` and `resume` read. Your module keeps its own optimizer and schedule (configure_optimizers)
and your DataModule its batches; the run sets the budget (Trainer max_steps) and seeds each training.
"""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterable

import torch

from ..errors import LotteryTicketError
from ..mask import PruningMask
from .common import GradientMask, call_factory, check_framework_run, check_score


def _lightning():
    try:
        import lightning.pytorch as pl
    except ImportError:
        raise LotteryTicketError('framework lightning needs the lightning package: pip install "lottery-ticket[lightning]" '
                                 "(or pip install lightning)") from None
    return pl


def mask_callback(mask: PruningMask, on_step: Callable[[int, torch.nn.Module], None] | None = None):
    """A Lightning Callback that keeps `mask`'s pruned weights exactly zero (common.GradientMask): their gradients
    are zeroed as backward writes them (so clipping, Adam's and momentum's state never see them) and the weights
    re-zeroed after every step (weight decay and momentum could otherwise move them). `on_step(global_step,
    module)` runs after each optimizer step (the engine records the rewind point with it)."""
    pl = _lightning()

    class EnforceMask(pl.Callback):
        guard: GradientMask | None = None
        last_step = -1

        def on_train_start(self, trainer, module):
            self.guard = GradientMask(module, mask)  # the module is on its device by now

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.guard.zero_weights()
            if on_step is not None and trainer.global_step != self.last_step:  # once per optimizer step
                self.last_step = trainer.global_step
                on_step(trainer.global_step, module)

        def on_train_end(self, trainer, module):
            self.guard.remove()

    return EnforceMask()


@contextmanager
def _quiet():
    """Lightning's start-up lines and its worker-count advice would bury the run's own progress lines."""
    pl = _lightning()
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=pl.utilities.warnings.PossibleUserWarning)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            yield
    finally:
        logger.setLevel(level)


def _trainer(device: torch.device, root, **kwargs):
    pl = _lightning()
    accelerator = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}.get(device.type, device.type)
    devices = [device.index] if device.type == "cuda" and device.index is not None else 1
    return pl.Trainer(accelerator=accelerator, devices=devices, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(root),
                      num_sanity_val_steps=0, **kwargs)


class Trainable:
    """The engine's Trainable (imp/engine.py) for a Lightning run: build = your module factory with the seed,
    train = Trainer.fit for the run's budget with the mask enforced, evaluate = Trainer.test's `metric`."""

    def __init__(self, runner, seed: int, store):
        self.runner, self.seed, self.store = runner, seed, store

    def build_model(self, seed: int) -> torch.nn.Module:
        from ..plugins import build_user_model

        c = self.runner.config
        with self.runner.rng_lock:
            module = build_user_model(c.model, seed, **c.model_kwargs)
        pl = _lightning()
        if not isinstance(module, pl.LightningModule):
            raise LotteryTicketError(f"model {c.model!r} returned a {type(module).__name__}, not a LightningModule; "
                                     "framework lightning trains LightningModules (or drop --framework)")
        return module

    def train(self, model, mask, *, stage: str, start_iteration: int, on_step, callbacks: Iterable) -> dict[str, Any]:
        if list(callbacks):
            raise LotteryTicketError("framework lightning takes no trainer callbacks of ours (early-bird); drop early_bird")
        r = self.runner
        steps = r.iterations(r.config.train.budget)
        started = time.perf_counter()
        with _quiet():
            trainer = _trainer(r.device, r.folder.root, max_steps=steps,
                               callbacks=[mask_callback(mask, on_step)])
            trainer.fit(model, datamodule=r.data)
        model.cpu()
        metrics: dict[str, Any] = {"iterations": int(trainer.global_step),
                                   "train_seconds": time.perf_counter() - started}
        loss = trainer.callback_metrics.get("train_loss")
        if loss is not None:
            metrics["final_train_loss"] = float(loss)
        return metrics

    def evaluate(self, model, **limits) -> dict[str, Any]:
        r = self.runner
        with _quiet():
            results = _trainer(r.device, r.folder.root, **limits).test(model, datamodule=r.data, verbose=False)
        model.cpu()
        return check_score(r.config, results[0] if results else {})


def preflight(runner) -> None:
    """What a Lightning run needs, checked before its folder is written: one line each."""
    pl = _lightning()
    c = runner.config
    check_framework_run(c)
    module = Trainable(runner, c.seeds[0], None).build_model(c.seeds[0])
    if type(module).test_step is pl.LightningModule.test_step:
        raise LotteryTicketError(f"model {c.model!r} has no test_step; define one that logs {c.metric!r}")
    if not isinstance(runner.data, pl.LightningDataModule):
        raise LotteryTicketError(f"data {c.dataset!r} returned a {type(runner.data).__name__}, not a "
                                 "LightningDataModule; framework lightning reads a DataModule")
    # One test batch of the untrained module: a metric it does not log is one line now, not after the first training.
    try:
        Trainable(runner, c.seeds[0], None).evaluate(module, limit_test_batches=1)
    except LotteryTicketError:
        raise
    except Exception as exc:
        raise LotteryTicketError(f"testing {c.model!r} on {c.dataset!r} raised {type(exc).__name__}: {exc}") from None


def load_data(path: str):
    return call_factory(path, "data")


def find(module: str, datamodule: str, out: str, *, budget: str, metric: str, rounds: int = 5, rate: float = 0.2,
         seeds=(0,), controls=(), rewind_iteration: int = 0, global_pruning: bool = False, exclude=(),
         model_kwargs: dict | None = None, device: str = "cpu", progress: bool = False) -> dict[str, Any]:
    """IMP in a run folder, each training a Trainer.fit; returns summary.json's content. `module` and `datamodule`
    are import paths ('package.module:factory'), so `lottery-ticket resume out` can rebuild them after a crash."""
    from ..config import ExperimentConfig, PruneConfig, TrainConfig
    from ..experiment.runner import ExperimentRunner

    config = ExperimentConfig(
        model=module, dataset=datamodule, model_kwargs=dict(model_kwargs or {}), framework="lightning", metric=metric,
        train=TrainConfig(budget=budget), seeds=tuple(seeds), controls=tuple(controls),
        prune=PruneConfig(rate=rate, rounds=rounds, global_pruning=global_pruning, exclude=tuple(exclude),
                          rewind_iteration=rewind_iteration, rewind_mode="restart" if rewind_iteration else "continue"))
    return ExperimentRunner(config, out, device=device, progress=progress).run()
