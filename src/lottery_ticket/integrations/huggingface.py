"""IMP with the Hugging Face Trainer: every level and every control is a `transformers.Trainer.train()`.

    lottery-ticket find --framework huggingface --model my_project.bert:make_model \\
        --dataset my_project.bert:make_data --metric eval_accuracy --budget 2000it --out runs/bert

`--model` returns the network every seed starts from (a PreTrainedModel: load your pre-trained checkpoint there,
or build a config with random weights); `--dataset` returns a dict:

    {"train_dataset": ..., "eval_dataset": ...,              # what Trainer(train_dataset=, eval_dataset=) takes
     "data_collator": ..., "compute_metrics": ...,          # optional, as Trainer takes them
     "training_args": {"learning_rate": 2e-5, ...}}         # optional TrainingArguments (not max_steps, seed, output_dir)

Resetting the survivors to θ₀ is rewinding to the pre-trained weights when the factory loads them, as in Chen et
al. 2020, "The Lottery Ticket Hypothesis for Pre-trained BERT Networks" (arXiv 2007.12223); the random-reinit
control re-initializes the same architecture (each module's reset_parameters). Embeddings and LayerNorm stay dense
by default; every Linear and GPT-2 Conv1D weight is prunable (mask.default_prunable_names).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Iterable

import torch

from ..errors import LotteryTicketError
from ..mask import PruningMask
from .common import GradientMask, call_factory, check_framework_run, check_score

RUN_OWNS = ("max_steps", "seed", "data_seed", "output_dir", "report_to", "save_strategy", "eval_strategy",
            "use_cpu", "num_train_epochs")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise LotteryTicketError('framework huggingface needs the transformers package: pip install '
                                 '"lottery-ticket[huggingface]" (or pip install transformers)') from None
    return transformers


def mask_callback(mask: PruningMask, on_step=None):
    """A TrainerCallback keeping `mask`'s pruned weights exactly zero (common.GradientMask): gradients zeroed as
    backward writes them, so gradient clipping and the optimizer's state never see them, and the weights re-zeroed
    after each optimizer step. `on_step(global_step, model)` runs at the end of each step."""
    transformers = _transformers()

    class EnforceMask(transformers.TrainerCallback):
        guard: GradientMask | None = None

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.guard = GradientMask(model, mask)

        def on_optimizer_step(self, args, state, control, **kwargs):
            self.guard.zero_weights()

        def on_step_end(self, args, state, control, model=None, **kwargs):
            self.guard.zero_weights()
            if on_step is not None:
                on_step(state.global_step, model)

        def on_train_end(self, args, state, control, **kwargs):
            self.guard.remove()

    return EnforceMask()


@contextmanager
def _quiet():
    transformers = _transformers()
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)


class Trainable:
    """The engine's Trainable for a Hugging Face run: build = your model factory with the seed, train =
    Trainer.train for the run's budget with the mask enforced, evaluate = Trainer.evaluate's `metric`."""

    def __init__(self, runner, seed: int, store):
        self.runner, self.seed, self.store = runner, seed, store

    def build_model(self, seed: int) -> torch.nn.Module:
        from ..plugins import build_user_model

        c = self.runner.config
        with self.runner.rng_lock:
            return build_user_model(c.model, seed, **c.model_kwargs)

    def _scratch(self) -> str:
        """Where the Trainer may put files: nothing of a run is kept there (save_strategy 'no'), and it is outside
        the run folder, so a preflight writes nothing into it."""
        import tempfile

        if getattr(self, "_tmp", None) is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lottery-ticket-hf-")
        return self._tmp.name

    def _trainer(self, model, callbacks=(), **overrides):
        transformers = _transformers()
        r, data = self.runner, self.runner.data
        args = transformers.TrainingArguments(
            output_dir=self._scratch(), report_to=[], save_strategy="no", eval_strategy="no",
            logging_strategy="no", disable_tqdm=True, use_cpu=r.device.type == "cpu", dataloader_num_workers=0,
            seed=torch.initial_seed() % 2**32,  # the stage's seed (engine.stage_seed): dropout and data order
            **{**data.get("training_args", {}), **overrides})
        trainer = transformers.Trainer(model=model, args=args, train_dataset=data["train_dataset"],
                                       eval_dataset=data["eval_dataset"], data_collator=data.get("data_collator"),
                                       compute_metrics=data.get("compute_metrics"), callbacks=list(callbacks))
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the run prints its own lines
        return trainer

    def train(self, model, mask, *, stage: str, start_iteration: int, on_step, callbacks: Iterable) -> dict[str, Any]:
        if list(callbacks):
            raise LotteryTicketError("framework huggingface takes no trainer callbacks of ours (early-bird)")
        r = self.runner
        started = time.perf_counter()
        with _quiet():
            trainer = self._trainer(model, [mask_callback(mask, on_step)], max_steps=r.iterations(r.config.train.budget))
            output = trainer.train()
        model.cpu()
        return {"iterations": int(trainer.state.global_step), "final_train_loss": float(output.training_loss),
                "train_seconds": time.perf_counter() - started}

    def evaluate(self, model) -> dict[str, Any]:
        with _quiet():
            found = self._trainer(model).evaluate()
        model.cpu()
        return check_score(self.runner.config, found)


def load_data(path: str) -> dict:
    data = call_factory(path, "data")
    if not isinstance(data, dict) or not {"train_dataset", "eval_dataset"} <= set(data):
        raise LotteryTicketError(f"data {path!r} must return a dict with train_dataset and eval_dataset (and optionally "
                                 "data_collator, compute_metrics, training_args)")
    owned = sorted(set(data.get("training_args", {})) & set(RUN_OWNS))
    if owned:
        raise LotteryTicketError(f"data {path!r}: training_args sets {', '.join(owned)}, which the run sets (the "
                                 "budget, each stage's seed, where files go); leave them out")
    unknown = sorted(set(data) - {"train_dataset", "eval_dataset", "data_collator", "compute_metrics", "training_args"})
    if unknown:
        raise LotteryTicketError(f"data {path!r} returned unknown key(s) {unknown}")
    return data


def preflight(runner) -> None:
    """What a Hugging Face run needs, checked before its folder is written: one line each."""
    _transformers()
    c = runner.config
    check_framework_run(c)
    data = runner.data
    model = Trainable(runner, c.seeds[0], None).build_model(c.seeds[0])
    try:  # the arguments themselves (a misspelt key is TrainingArguments' TypeError)
        trainable = Trainable(runner, c.seeds[0], None)
        with _quiet():
            found = trainable._trainer(model, max_steps=1).evaluate(
                eval_dataset=torch.utils.data.Subset(data["eval_dataset"], range(min(8, len(data["eval_dataset"])))))
    except LotteryTicketError:
        raise
    except Exception as exc:
        raise LotteryTicketError(f"evaluating {c.model!r} on {c.dataset!r} raised {type(exc).__name__}: {exc}") from None
    check_score(c, found)
