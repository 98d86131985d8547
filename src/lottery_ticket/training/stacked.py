"""Train K networks of one architecture together: one stacked step instead of K small ones (issue 24).

Within an IMP level the work is wide: every seed's ticket and every control train independently, on the same
architecture. Each of those trainings is a stream of small launch-bound steps; stacked, their parameters become
one tensor per name with a leading dimension K, the forward is torch.func.vmap over functional_call, and one
backward and one fused optimizer update serve all K. What stays per network:

- its weights, mask (pruned gradients zeroed before every update) and BatchNorm running statistics;
- its optimizer state: the fused SGD/Adam/AdamW kernels are elementwise, so one update of the stacked tensor is
  K updates with scalar hyperparameters shared (every network of a level runs the same TrainConfig);
- its data order: network k reads the batches a Trainer with its data seed reads (data.loader.StackedLoader
  gathers, normalizes and augments all K networks' batches at once, from the dataset kept on the device);
- its evaluations and early-stop iteration (one Evaluate history each).

So K stacked trainings end where K separate Trainer runs end, to float tolerance (the batched matmul sums in
another order): tests/test_stacked.py. Each network may keep a mid-training checkpoint of its own (its slice of the
stack, in the Trainer's checkpoint format under another name); a stack resumes when every member's checkpoint is
valid and at the same step, else it starts over, with the same result either way. What it does not do (yet):
your own loss or loaders, DDP, torch.compile, sparse-aware training and callbacks.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from ..config import Budget, TrainConfig
from ..errors import LotteryTicketError
from ..mask import PruningMask, canonical_name
from ..state import restore_, snapshot
from .callbacks import Evaluate
from .checkpoint import load_checkpoint, save_checkpoint
from .optim import build_optimizer, lr_multiplier, set_lr_


class StackedTrainer:
    """trainer = StackedTrainer(config, data, device); metrics = trainer.train(models, masks, data_seeds)

    `models` are trained in place (their weights and buffers are written back at the end); `metrics[k]` is what
    Trainer.train returns for network k: iterations, final_train_loss, and the early-stop summary and history
    when config.eval_every is set.
    """

    def __init__(self, config: TrainConfig, data, device: str | torch.device = "cpu", *, eval_batch_size: int = 2000):
        from ..data.types import DataSplits

        if not isinstance(data, DataSplits):
            raise LotteryTicketError("stacked training reads in-memory datasets (DataSplits); train your own loaders "
                                     "one network at a time (--stack off)")
        if config.loss != "cross_entropy" or config.compile:
            raise LotteryTicketError("stacked training runs cross-entropy without torch.compile; use --stack off")
        self.config, self.data, self.device = config, data, torch.device(device)
        self.eval_batch_size = eval_batch_size
        self.steps_per_epoch = max(1, len(data.train) // config.batch_size)  # the Trainer's loader drops the last
        self.total_iterations = Budget.parse(config.budget).iterations(self.steps_per_epoch)
        every = Budget.parse(config.eval_every).iterations(self.steps_per_epoch) if config.eval_every else 0
        self.eval_every = every
        self._eval_loaders: dict[str, Any] = {}

    # ---- the step ------------------------------------------------------------------------------------------
    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One update of all K networks: x [K, B, ...], y [K, B]; returns the K losses (not synchronized)."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp == "bf16"):
            logits = vmap(self._forward)(self.params, self.buffers, x)
            losses = vmap(F.cross_entropy)(logits.float(), y)
        losses.sum().backward()  # network k's parameters get exactly the gradient of its own loss
        for name, keep in self.masks.items():
            self.params[name].grad.mul_(keep)
        self.optimizer.step()
        if not getattr(self.optimizer, "zero_preserving", False):
            with torch.no_grad():
                for name, keep in self.masks.items():
                    self.params[name].mul_(keep)
        return losses.detach()

    def _forward(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    # ---- the loop ------------------------------------------------------------------------------------------
    def train(self, models: Sequence[nn.Module], masks: Sequence[PruningMask | None],
              data_seeds: Sequence[int], start_iteration: int = 0, *,
              checkpoints: Sequence[Any] | None = None, checkpoint_every: int = 0) -> list[dict[str, Any]]:
        """`checkpoints[k]` (a path, or None for no checkpoint) is where network k's state is saved every
        `checkpoint_every` steps and resumed from."""
        from ..data.loader import StackedLoader

        if not (len(models) == len(masks) == len(data_seeds)) or not models:
            raise LotteryTicketError(f"give one mask and one data seed per model ({len(models)} models, {len(masks)} "
                                     f"masks, {len(data_seeds)} data seeds)")
        checkpoints = list(checkpoints) if checkpoints is not None else [None] * len(models)
        resumed = self._load_checkpoints(models, checkpoints)  # before stacking: it stacks the restored weights
        # One more network than asked, a copy of the first, always last: vectorized elementwise kernels (the fused
        # optimizer) finish a tensor's last elements in scalar code that rounds differently, so the last network
        # of a stack would train differently from the others. With the spare absorbing that tail, every network's
        # trajectory is bit-identical whatever its companions and position (tests/test_stacked.py), so how a
        # level's trainings happen to be grouped (e.g. after a crash and resume) never changes a result.
        spare = copy.deepcopy(models[0])
        models, masks, data_seeds = [*models, spare], [*masks, masks[0]], [*data_seeds, data_seeds[0]]
        self._stack(models, masks)
        if resumed is not None:
            self._restore_optimizer([*resumed["optimizer"], resumed["optimizer"][0]])  # the spare copies network 0
        loader = StackedLoader(self.data.train, self.config.batch_size, data_seeds, mean=self.data.mean,
                               std=self.data.std, augment=self.config.augment, device=self.device)
        lr_factor = lr_multiplier(self.config, self.total_iterations, self.steps_per_epoch)
        self.iteration = int(start_iteration) if resumed is None else resumed["iteration"]
        if lr_factor is not None:
            set_lr_(self.optimizer, self.config.lr * lr_factor(self.iteration))
        evaluators = [Evaluate(self.eval_every) for _ in models[:-1]] if self.eval_every else []
        if evaluators and resumed is not None:
            for evaluator, history in zip(evaluators, resumed["histories"]):
                evaluator.history = history
        elif evaluators:
            self._measure(evaluators)
        losses = torch.zeros(len(models), device=self.device)
        epoch, skip = divmod(self.iteration, self.steps_per_epoch)
        while self.iteration < self.total_iterations:
            loader.set_epoch(epoch)
            for index, (x, y) in enumerate(loader):
                if index < skip:  # a rewound level starts mid-epoch, where step k left the data order
                    continue
                losses = self._step(x, y)
                self.iteration += 1
                if lr_factor is not None:
                    set_lr_(self.optimizer, self.config.lr * lr_factor(self.iteration))
                if evaluators and self.iteration % self.eval_every == 0:
                    self._measure(evaluators)
                if checkpoint_every and self.iteration % checkpoint_every == 0 and self.iteration < self.total_iterations:
                    self._save_checkpoints(models, checkpoints, evaluators)  # after the evaluation, as the Trainer
                if self.iteration >= self.total_iterations:
                    break
            epoch, skip = epoch + 1, 0
        if evaluators and evaluators[0].history[-1]["iteration"] != self.iteration:
            self._measure(evaluators)
        final = losses.tolist()[:-1]  # the one host round trip of the loss: at the end, not every step
        bad = [k for k, value in enumerate(final) if not math.isfinite(value)]
        if bad:
            raise LotteryTicketError(f"training diverged: the loss of network(s) {bad} is not finite at iteration "
                                     f"{self.iteration}; lower the learning rate (--lr) or add warmup")
        self._unstack(models)
        out = []
        for k in range(len(models) - 1):  # the spare's results are dropped
            metrics: dict[str, Any] = {"iterations": self.iteration, "final_train_loss": float(final[k])}
            if evaluators:
                metrics.update(evaluators[k].summary(), history=evaluators[k].history)
            out.append(metrics)
        return out

    # ---- checkpoints: each network's slice of the stack, saved and resumed with the Trainer's checkpoint code ----
    def _save_checkpoints(self, models, paths, evaluators) -> None:
        self._unstack(models)
        stacked_state = self.optimizer.state_dict()
        for k, path in enumerate(paths):  # one per network asked for: the spare (last) keeps none
            if path is None:
                continue
            state = {i: {key: value if key == "step" else value[k] for key, value in values.items()}
                     for i, values in stacked_state["state"].items()}
            extra = {"stacked": True, "history": evaluators[k].history if evaluators else []}
            save_checkpoint(path, models[k], _OptimizerState({**stacked_state, "state": state}), self.iteration, extra)

    def _load_checkpoints(self, models, paths) -> dict[str, Any] | None:
        """Every network's saved weights and optimizer state, when all of them are valid stacked checkpoints of
        one step (else nothing is restored: a stack moves in one step, so it starts over)."""
        if not paths or any(path is None for path in paths):
            return None
        saved = [snapshot(model) for model in models]
        states, metas = [], []
        for model, path in zip(models, paths):
            view = _OptimizerState()
            meta = load_checkpoint(path, model, view)
            if meta is None or meta["extra"].get("stacked") is not True:
                break
            states.append(view.loaded)
            metas.append(meta)
        iterations = {meta["iteration"] for meta in metas}
        if len(metas) < len(models) or len(iterations) != 1 or not 0 < min(iterations) < self.total_iterations:
            for model, state in zip(models, saved):
                restore_(model, state)
            return None
        histories = [meta["extra"].get("history", []) for meta in metas]
        return {"iteration": iterations.pop(), "optimizer": states, "histories": histories}

    def _restore_optimizer(self, states: list[dict[str, Any]]) -> None:
        state = {}
        for i, values in states[0]["state"].items():
            state[i] = {key: value if key == "step" else torch.stack([s["state"][i][key] for s in states]).to(self.device)
                        for key, value in values.items()}
        self.optimizer.load_state_dict({"state": state, "param_groups": self.optimizer.state_dict()["param_groups"]})

    # ---- stacking -----------------------------------------------------------------------------------------
    def _stack(self, models: Sequence[nn.Module], masks: Sequence[PruningMask | None]) -> None:
        shapes = [[(n, tuple(p.shape), p.dtype) for n, p in m.named_parameters()] for m in models]
        if any(s != shapes[0] for s in shapes[1:]):
            raise LotteryTicketError("stacked training needs networks of one architecture (the same parameter names "
                                     "and shapes); train the others separately")
        for model, mask in zip(models, masks):
            model.to(self.device).train()
            if mask is not None:
                mask.apply(model)
        params, buffers = stack_module_state(list(models))
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
        self.buffers = {n: b.clone() for n, b in buffers.items()}
        # The module that runs the forward holds no weights of its own: functional_call supplies network k's.
        self.template = copy.deepcopy(models[0]).to("meta")
        raw = {canonical_name(n): n for n, _ in models[0].named_parameters()}
        self.masks = {}
        for name in {n for mask in masks if mask is not None for n in mask.masks}:
            keep = [mask.masks[name] if mask is not None and name in mask.masks
                    else torch.ones(self.params[raw[name]].shape[1:], dtype=torch.bool) for mask in masks]
            stacked = torch.stack(keep).to(device=self.device, dtype=self.params[raw[name]].dtype)
            self.masks[raw[name]] = stacked
        self.optimizer = build_optimizer(self.config, models[0], list(self.params.values()))

    @torch.no_grad()
    def _unstack(self, models: Sequence[nn.Module]) -> None:
        for k, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(self.params[name][k])
            for name, b in model.named_buffers():
                if name in self.buffers:
                    b.copy_(self.buffers[name][k])

    # ---- evaluation ---------------------------------------------------------------------------------------
    def _measure(self, evaluators: list[Evaluate]) -> None:  # one per network, the spare excluded
        split = "val" if self.data.val is not None else "test"
        rows = [{"iteration": self.iteration} for _ in evaluators]
        for k, result in enumerate(self.evaluate(split)):
            rows[k].update(val_loss=result["loss"], val_accuracy=result["accuracy"])
        if split == "val":
            for k, result in enumerate(self.evaluate("test")):
                rows[k].update(test_loss=result["loss"], test_accuracy=result["accuracy"])
        for evaluator, row in zip(evaluators, rows):
            evaluator.history.append(row)

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> list[dict[str, float]]:
        """Loss and accuracy of every network on `split`, the same examples for all, in eval mode."""
        from ..data.loader import InMemoryLoader

        if split not in self._eval_loaders:  # the split goes to the device once, not at every evaluation
            self._eval_loaders[split] = InMemoryLoader(getattr(self.data, split), self.eval_batch_size,
                                                       mean=self.data.mean, std=self.data.std, shuffle=False,
                                                       device=self.device)
        loader = self._eval_loaders[split]
        self.template.eval()
        k = next(iter(self.params.values())).shape[0]
        loss_sum = torch.zeros(k, device=self.device)
        correct = torch.zeros(k, device=self.device, dtype=torch.long)
        n = 0
        for x, y in loader:
            logits = vmap(self._forward, in_dims=(0, 0, None))(self.params, self.buffers, x)  # [K, B, C]
            loss_sum += F.cross_entropy(logits.transpose(1, 2), y.expand(k, -1), reduction="none").sum(1)
            correct += (logits.argmax(2) == y).sum(1)
            n += y.numel()
        self.template.train()
        return [{"loss": float(s) / n, "accuracy": int(c) / n} for s, c in zip(loss_sum.tolist(), correct.tolist())][:-1]


class _OptimizerState:
    """One network's optimizer state, standing in for an optimizer where the checkpoint code reads or writes one."""

    def __init__(self, state: dict[str, Any] | None = None):
        self.loaded = state

    def state_dict(self) -> dict[str, Any]:
        return self.loaded

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loaded = state
