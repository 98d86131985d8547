"""The trainer: one short masked training step, with everything else in callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from ..config import Budget, TrainConfig
from ..enforce import MaskEnforcer
from ..errors import LotteryTicketError
from ..mask import PruningMask
from ..scores import score_of
from .callbacks import Callback, DivergenceGuard, Evaluate, OnStep, Progress, StepLog
from .batches import (IGNORE_INDEX, call_model, class_scores, cross_entropy, describe, examples_in, logits_and_loss,
                      split_batch, training_loss)
from .checkpoint import load_checkpoint, save_checkpoint
from .calibration import plan_sparse_training
from .metrics import accumulator_factory
from .optim import build_optimizer, lr_multiplier, set_lr_


class Trainer:
    """Train a (masked) classifier on in-memory DataSplits with a TrainConfig.

    trainer = Trainer(config, data, device="cpu")
    metrics = trainer.train(model, mask)          # in place; returns iterations, early stop, history
    trainer.evaluate("test")                      # {"loss", "accuracy"} of trainer.model
    finder.find_winning_ticket(model, trainer.as_train_fn(), trainer.as_eval_fn(), ...)
    """

    def __init__(self, config: TrainConfig, data, device: str | torch.device = "cpu", *,
                 callbacks: Iterable[Callback] = (), progress: bool = False, eval_batch_size: int = 2000,
                 checkpoint_path: str | Path | None = None, checkpoint_every: int = 0,
                 rank: int = 0, world_size: int = 1, log_every: int = 100, metric: str | None = None,
                 metric_mode: str | None = None):
        from ..data.loader import EpochLoader, InMemoryLoader
        from ..data.types import DataSplits, LoaderSplits

        self.config, self.device = config, torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.loss_fn = resolve_loss(config.loss)
        self.default_loss = config.loss == "cross_entropy"
        # What evaluate() scores besides the loss: accuracy, or --metric (scores.py), with early stopping by it.
        self.score = score_of("torch", metric, metric_mode)
        self.new_accumulator = accumulator_factory(self.score, metric)
        if config.amp == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise LotteryTicketError(f"amp=bf16: {torch.cuda.get_device_name(self.device)} has no bfloat16; leave --amp unset")
        if isinstance(data, DataSplits):
            if config.batch_size % world_size:
                raise LotteryTicketError(f"batch_size={config.batch_size} does not split over {world_size} processes; "
                                         f"use a multiple of {world_size} (the global batch stays the paper's)")
            # Each rank takes its shard of every global batch, so the global batch (and the results) match one process.
            self.loader = InMemoryLoader(data.train, config.batch_size // world_size, mean=data.mean, std=data.std,
                                         shuffle=True, seed=config.data_seed, augment=config.augment, drop_last=True,
                                         device=self.device, rank=rank, world_size=world_size)
        else:  # your own iterables (DataLoaders): batch size, sharding and augmentation are theirs
            data = data if isinstance(data, LoaderSplits) else LoaderSplits.from_mapping("the data", data)
            self.loader = EpochLoader(data.train, seed=config.data_seed, device=self.device)
        self.data = data
        self.steps_per_epoch = len(self.loader)
        self.total_iterations = Budget.parse(config.budget).iterations(self.steps_per_epoch)
        eval_every = Budget.parse(config.eval_every).iterations(self.steps_per_epoch) if config.eval_every else 0
        self.evaluator = Evaluate(eval_every) if eval_every else None
        self._base_callbacks = list(callbacks)
        self.extra_callbacks = list(callbacks)
        self.progress = progress
        self.eval_batch_size = eval_batch_size
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_every = checkpoint_every
        self.log_every = log_every
        self._eval_loaders: dict[str, Any] = {}
        self.model: nn.Module | None = None
        self.iteration = 0

    # ---- the step -------------------------------------------------------------------------------
    def train_step(self, x, y: torch.Tensor | None) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp == "bf16"):
            outputs = call_model(self.forward, x)
            loss = training_loss(outputs, y, self.loss_fn, self.default_loss)
        loss.backward()
        self.enforcer.step(self.optimizer)  # zero pruned grads -> optimizer.step() (-> zero pruned weights)
        if self.lr_factor is not None:
            set_lr_(self.optimizer, self.config.lr * self.lr_factor(self.iteration + 1))
        return loss.detach()

    # ---- the loop --------------------------------------------------------------------------------
    def train(self, model: nn.Module, mask: PruningMask | None = None, on_step: Callable | None = None,
              callbacks: Iterable[Callback] = (), start_iteration: int = 0) -> dict[str, Any]:
        """Train in place up to the budget. `start_iteration` k > 0 continues a rewound network from step k:
        the LR schedule and the data order start where step k left them (Frankle et al. 2020, open_lth)."""
        self._prepare(model, mask)
        self.sparse.install()
        try:
            return self._train(on_step, callbacks, start_iteration)  # writes the survivors back before it ends
        except BaseException:
            self.sparse.write_back_()  # the weights an interrupted or failed training reached
            raise
        finally:
            self.sparse.remove()  # the model leaves as an ordinary module

    def _train(self, on_step, callbacks, start_iteration) -> dict[str, Any]:
        self.extra_callbacks = self._base_callbacks + list(callbacks)
        callbacks = self._callbacks(on_step)
        resumed = self._resume()
        if resumed is None and start_iteration:
            self._start_at(start_iteration)
        for cb in callbacks:
            cb.on_train_start(self)
        if resumed:
            self._load_callback_states(callbacks, resumed)
        loss = torch.zeros(())
        if resumed:  # a kill after the last checkpoint and before the record: the record still gets the last loss
            last = resumed["extra"].get("last_loss")
            loss = torch.tensor(float(last) if isinstance(last, (int, float)) and not isinstance(last, bool) else 0.0)
        self._last_loss = loss
        first_step = True
        # Layers trained through their survivors update the dense weights only before a callback that reads them.
        weight_reads = [cb.every for cb in callbacks if cb.every and cb.reads_weights] if self.sparse else []
        epoch, skip = divmod(self.iteration, self.steps_per_epoch)
        while self.iteration < self.total_iterations:
            self.loader.set_epoch(epoch)
            for batch_index, batch in enumerate(self.loader):
                if batch_index < skip:  # resuming mid-epoch: replay the epoch's order up to where we stopped
                    continue
                x, y = split_batch(batch)
                try:
                    loss = self._last_loss = self.train_step(x, y)
                except RuntimeError as exc:
                    if not first_step:
                        raise
                    # Your own data or model: a shape mismatch surfaces here, as one line instead of torch's traceback.
                    targets = tuple(y.shape) if isinstance(y, torch.Tensor) else None
                    raise LotteryTicketError(f"the first training batch (inputs {describe(x)}, targets {targets}) "
                                             f"does not fit the model or the loss: {str(exc).splitlines()[0]}") from None
                if first_step:
                    self.sparse.check_used()
                    self._batch_size_seen = examples_in(x, y)
                first_step = False
                self.iteration += 1
                if any(self.iteration % every == 0 for every in weight_reads):
                    self.sparse.write_back_()
                for cb in callbacks:
                    if cb.every and self.iteration % cb.every == 0:
                        cb.on_step(self, self.iteration, float(loss))
                if self.iteration >= self.total_iterations or self.stop_requested:
                    break
            if self.stop_requested:
                break
            epoch, skip = epoch + 1, 0
        self.sparse.write_back_()
        for cb in callbacks:
            cb.on_train_end(self)
        metrics = {"iterations": self.iteration, "final_train_loss": float(loss)}
        if self.sparse:  # the code path this training took (training/calibration.py): part of what made its numbers
            metrics["sparse_layers"] = {name: layer.weight_grad for name, layer in self.sparse.layers.items()}
        if self._batch_size() is None and getattr(self, "_batch_size_seen", None):  # your loaders: what they gave
            metrics["batch_size"] = self._batch_size_seen
        for cb in callbacks:
            if hasattr(cb, "summary") and cb is not self.evaluator:
                metrics.update(cb.summary())
        if self.evaluator is not None:
            metrics.update(self.evaluator.summary(), history=self.evaluator.history)
        return metrics

    def _prepare(self, model: nn.Module, mask: PruningMask | None) -> None:
        self.model = model.to(self.device)
        if self.config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = self.model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = DistributedDataParallel(self.model, device_ids=ids)
        if self.config.compile:
            self.forward = torch.compile(self.forward)
        self.mask = mask if mask is not None else PruningMask(self.model)
        self.mask.apply(self.model)
        self.sparse = plan_sparse_training(self.model, self.mask, self._sparse_mode(), self._batch_size())
        # Fresh state every round (no stale momentum); sparse layers are trained through their `values`.
        trainable = self.sparse.trainable(p for p in self.model.parameters() if p.requires_grad)
        self.optimizer = build_optimizer(self.config, self.model, trainable)
        self.enforcer = MaskEnforcer(self.mask, self.model, self.optimizer,  # fresh state: it may skip the weight pass
                                     exempt=[f"{n}.weight" if n else "weight" for n in self.sparse.layers])
        self.lr_factor = lr_multiplier(self.config, self.total_iterations, self.steps_per_epoch)
        if self.lr_factor is not None:
            set_lr_(self.optimizer, self.config.lr * self.lr_factor(0))
        self.iteration = 0
        self.stop_requested = False  # set by callbacks (early-bird) to end training early
        self.model.train()

    def _sparse_mode(self) -> str:
        # Sparse layers bypass DDP's gradient hooks, torch.compile and autocast: those runs keep the masked dense step.
        plain = self.world_size == 1 and not self.config.compile and self.config.amp is None
        return self.config.sparse_training if plain else "off"

    def _batch_size(self) -> int | None:
        from ..data.loader import InMemoryLoader

        return self.loader.batch_size if isinstance(self.loader, InMemoryLoader) else None  # your loaders: unknown

    def _callbacks(self, on_step: Callable | None) -> list[Callback]:
        cbs: list[Callback] = [DivergenceGuard(every=1 if self.device.type == "cpu" else 50), StepLog(self.log_every)]
        if self.evaluator is not None:
            cbs.append(self.evaluator)
        if on_step is not None:
            cbs.append(OnStep(on_step))
        cbs.append(Progress(self.total_iterations, enabled=self.progress and self.rank == 0))
        cbs += self.extra_callbacks
        if self.checkpoint_path is not None and self.checkpoint_every and self.rank == 0:
            # Last: the checkpoint of step N must hold every callback's state *after* step N (early-bird's check).
            cbs.append(_Checkpoint(self.checkpoint_every))
        self._callbacks_in_use = cbs
        return self._callbacks_in_use

    def _start_at(self, iteration: int) -> None:
        if isinstance(iteration, bool) or not isinstance(iteration, int) or not 0 <= iteration < self.total_iterations:
            raise LotteryTicketError(f"start_iteration={iteration!r} must be an integer in [0, {self.total_iterations})")
        self.iteration = iteration
        if self.lr_factor is not None:
            set_lr_(self.optimizer, self.config.lr * self.lr_factor(iteration))

    def _resume(self) -> dict | None:
        if self.checkpoint_path is None:
            return None
        # The restored optimizer state was built under this same mask (0 at pruned positions), so the enforcer's
        # choice to skip the weight pass, made for the fresh optimizer, still holds.
        meta = load_checkpoint(self.checkpoint_path, self.model, self.optimizer)
        if meta is None:
            return None
        self.iteration = int(meta["iteration"])
        torch.set_rng_state(torch.tensor(meta["extra"]["torch_rng"], dtype=torch.uint8))
        cuda_rng = meta["extra"].get("cuda_rng")
        if cuda_rng is not None and self.device.type == "cuda":  # dropout on a GPU draws from the CUDA generator
            torch.cuda.set_rng_state(torch.tensor(cuda_rng, dtype=torch.uint8), self.device)
        if self.lr_factor is not None:
            set_lr_(self.optimizer, self.config.lr * self.lr_factor(self.iteration))
        self.sparse.read_values_()  # the restored weights hold the survivors
        return meta

    def save_checkpoint(self) -> None:
        # The global RNG (dropout) and every callback's state (evaluation history, early-bird window) are part of
        # the state: a resumed run must draw the same numbers and stop at the same step.
        states, tensors = {}, {}
        for key, cb in self._stateful_callbacks(self._callbacks_in_use):
            state, cb_tensors = cb.state_dict()
            states[key] = state
            tensors.update({f"{key}/{name}": t for name, t in cb_tensors.items()})
        extra = {"callbacks": states, "torch_rng": torch.get_rng_state().tolist(),
                 "last_loss": float(getattr(self, "_last_loss", 0.0))}
        if self.device.type == "cuda":
            extra["cuda_rng"] = torch.cuda.get_rng_state(self.device).tolist()
        save_checkpoint(self.checkpoint_path, self.model, self.optimizer, self.iteration, extra, extra_tensors=tensors)

    @staticmethod
    def _stateful_callbacks(callbacks) -> list[tuple[str, Callback]]:
        # Keyed by class and occurrence, not list position: the optional OnStep callback must not shift the keys.
        seen: dict[str, int] = {}
        out = []
        for cb in callbacks:
            if hasattr(cb, "state_dict"):
                name = type(cb).__name__
                seen[name] = seen.get(name, 0) + 1
                out.append((f"{name}.{seen[name]}", cb))
        return out

    def _load_callback_states(self, callbacks, meta: dict) -> None:
        states, tensors = meta["extra"].get("callbacks", {}), meta.get("extra_tensors", {})
        for key, cb in self._stateful_callbacks(callbacks):
            if key in states:
                prefix = f"{key}/"
                cb.load_state_dict(states[key], {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})

    # ---- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str = "test", model: nn.Module | None = None) -> dict[str, float]:
        """{"loss": the mean loss, and the score (scores.py): "accuracy" by default} of `model` on `split`.
        The loss is the mean over targets (tokens, for sequences) under the default cross-entropy, else over examples."""
        from ..data.loader import EpochLoader, InMemoryLoader
        from ..data.types import DataSplits

        model = model if model is not None else self.model
        dataset = getattr(self.data, split)
        if split not in self._eval_loaders:
            self._eval_loaders[split] = (
                InMemoryLoader(dataset, self.eval_batch_size, mean=self.data.mean, std=self.data.std, shuffle=False,
                               device=self.device)
                if isinstance(self.data, DataSplits) else EpochLoader(dataset, device=self.device))
        was_training = model.training
        model.eval()
        score = self.new_accumulator()
        loss_sum, counted = torch.zeros((), device=self.device), torch.zeros((), device=self.device, dtype=torch.long)
        batches = 0
        for batch in self._eval_loaders[split]:
            x, y = split_batch(batch)
            if self.config.channels_last and isinstance(x, torch.Tensor) and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            try:
                outputs = call_model(model, x)
            except RuntimeError as exc:
                if batches:
                    raise
                raise LotteryTicketError(f"the {split} batches (inputs {describe(x)}) do not fit the model: "
                                         f"{str(exc).splitlines()[0]}") from None
            logits, own = logits_and_loss(outputs)
            examples = y.shape[0] if y is not None else logits.shape[0]
            if own is not None and self.default_loss:  # the model's own mean loss (a causal LM's shifted tokens)
                loss_sum += own.detach().float() * examples
                counted += examples
            elif y is None:
                raise LotteryTicketError(f"the {split} batches have no targets ('labels') and the model returns no "
                                         "'loss'; yield (inputs, targets) or put the targets under 'labels'")
            elif self.default_loss:
                scores, flat = class_scores(logits, y)
                loss_sum += F.cross_entropy(scores.float(), flat, reduction="sum")
                counted += (flat != IGNORE_INDEX).sum()
            else:  # a loss of yours is a mean over the batch
                loss_sum += self.loss_fn(logits, y).detach() * examples
                counted += examples
            score.update(logits, y, examples)
            batches += 1
        model.train(was_training)
        if batches == 0 or int(counted) == 0:
            raise LotteryTicketError(f"the {split} data yielded no examples; give it at least one batch")
        mean_loss = float(loss_sum) / int(counted)
        return {"loss": mean_loss, self.score.key: score.result(mean_loss)}

    # ---- adapters for LotteryTicketFinder ----------------------------------------------------------
    def as_train_fn(self) -> Callable:
        def train_fn(model, mask, on_step=None, start_iteration=0):
            return self.train(model, mask, on_step=on_step, start_iteration=start_iteration)
        return train_fn

    def as_eval_fn(self, split: str = "test") -> Callable:
        def eval_fn(model):
            return self.evaluate(split, model)
        return eval_fn


def resolve_loss(spec: str):
    """The training loss: 'cross_entropy' (the default: class scores on dim 1, or on the last dim for sequences),
    or 'module:callable' taking (outputs, targets) -> a mean."""
    if spec == "cross_entropy":
        return cross_entropy
    from ..plugins import load_object

    return load_object(spec, "loss")


class _Checkpoint(Callback):
    def __init__(self, every: int):
        self.every = every

    def on_step(self, trainer, iteration, loss):
        trainer.save_checkpoint()
