"""Things that happen around the training step: evaluation, progress, checkpoints, divergence checks.

Each callback sees the trainer at fixed moments (train start, after a step, train end) and keeps the
step itself short. A callback asks for a step only when it needs it (`every`), so the per-step cost
of an idle callback is one integer comparison.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..errors import LotteryTicketError
from ..scores import ACCURACY

if TYPE_CHECKING:
    from .trainer import Trainer


class Callback:
    every: int = 0  # call on_step every N iterations (0: never)
    # Sparse-trained layers write their survivors into the dense weights only before a callback that reads them.
    reads_weights: bool = True

    def on_train_start(self, trainer: "Trainer") -> None: ...

    def on_step(self, trainer: "Trainer", iteration: int, loss: float) -> None: ...

    def on_train_end(self, trainer: "Trainer") -> None: ...


class Evaluate(Callback):
    """Evaluate on the validation split every N steps and remember the early-stopping iteration.

    The paper's early-stopping iteration is the one with the lowest validation loss; the test
    accuracy reported with it is measured at that same iteration.
    """

    score = ACCURACY  # the trainer's, set at each measurement (the stacked trainer's evaluators keep accuracy)
    split = "val"  # where the early-stopping iteration is picked: "test" when the data has no validation split

    def __init__(self, every: int, with_test: bool = True):
        self.every = max(1, int(every))
        self.with_test = with_test
        self.history: list[dict[str, Any]] = []

    def on_train_start(self, trainer):
        self.history = []
        self._measure(trainer, trainer.iteration)  # 0, or k for a level rewound to step k

    def on_step(self, trainer, iteration, loss):
        self._measure(trainer, iteration)

    def on_train_end(self, trainer):
        if not self.history or self.history[-1]["iteration"] != trainer.iteration:
            self._measure(trainer, trainer.iteration)

    def _measure(self, trainer, iteration: int) -> None:
        row: dict[str, Any] = {"iteration": iteration}
        split = self.split = "val" if trainer.data.val is not None else "test"
        key = trainer.score.key
        self.score = trainer.score
        val = trainer.evaluate(split)
        row.update({"val_loss": val["loss"], f"val_{key}": val[key]})
        if self.with_test and split == "val":
            test = trainer.evaluate("test")
            row.update({"test_loss": test["loss"], f"test_{key}": test[key]})
        self.history.append(row)

    def state_dict(self) -> tuple[dict, dict]:
        return {"history": self.history}, {}

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        self.history = list(state["history"])

    def summary(self) -> dict[str, Any]:
        if not self.history:
            return {}
        score, key = self.score, self.score.key
        if score == ACCURACY:  # the paper's early-stopping iteration: the lowest validation loss
            best = min(self.history, key=lambda r: (r["val_loss"], r["iteration"]))
        else:  # the best validation score of yours, in its direction
            sign = -1 if score.higher_is_better else 1
            best = min(self.history, key=lambda r: (sign * r[f"val_{key}"], r["iteration"]))
        out = {"early_stop_iteration": best["iteration"], "early_stop_val_loss": best["val_loss"],
               f"early_stop_val_{key}": best[f"val_{key}"]}
        if f"test_{key}" in best:
            out[f"early_stop_test_{key}"] = best[f"test_{key}"]
        if self.split == "test":  # no validation split: picked on the test set, and says so
            out["early_stop_split"] = "test"
        return out


class DivergenceGuard(Callback):
    """Stop with a clear message when the loss becomes NaN/inf, on the step it happens.

    Reading the loss syncs the device, so on a GPU it is read every `every` steps; the weights are checked
    at the end of training either way, so no NaN reaches pruning (which refuses non-finite weights too).
    """

    reads_weights = False  # the loss every step; the weights only at the end, after the trainer wrote them back

    def __init__(self, every: int = 1):
        self.every = every

    def on_step(self, trainer, iteration, loss):
        if not math.isfinite(loss):
            raise LotteryTicketError(
                f"training diverged: loss is {loss} at iteration {iteration}; lower the learning rate "
                "(--lr) or add warmup; earlier rounds are kept and `resume` continues from them"
            )

    def on_train_end(self, trainer):
        import torch

        bad = [n for n, p in trainer.model.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
        if bad:
            raise LotteryTicketError(
                f"training diverged: {', '.join(bad[:3])} hold NaN or infinite values after {trainer.iteration} "
                "iterations; lower the learning rate (--lr) or add warmup")


class Progress(Callback):
    """A tqdm bar over iterations; silent when disabled (not a TTY, or --quiet)."""

    reads_weights = False  # the iteration count only

    def __init__(self, total: int, desc: str = "train", enabled: bool = True, every: int = 50):
        self.total, self.desc, self.enabled, self.every = total, desc, enabled, every
        self.bar = None

    def on_train_start(self, trainer):
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, leave=False, dynamic_ncols=True)
            self.bar.update(trainer.iteration)

    def on_step(self, trainer, iteration, loss):
        if self.bar is not None:
            self.bar.update(iteration - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def on_train_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class OnStep(Callback):
    """Adapter for the finder's `on_step(iteration, model)` hook (rewind snapshots)."""

    def __init__(self, fn, until: int | None = None):
        self.fn, self.every, self.until = fn, 1, until

    def on_step(self, trainer, iteration, loss):
        if self.until is None or iteration <= self.until:
            self.fn(iteration, trainer.model)


class StepLog(Callback):
    """The training loss and learning rate every N steps: the per-step curve a notebook or TensorBoard plots.

    Stateful, so a resumed training keeps the rows logged before the crash.
    """

    reads_weights = False  # the loss and the learning rate only

    def __init__(self, every: int = 100):
        self.every = max(1, int(every))
        self.rows: list[dict[str, Any]] = []

    def on_train_start(self, trainer):
        self.rows = []

    def on_step(self, trainer, iteration, loss):
        self.rows.append({"iteration": iteration, "train_loss": loss, "lr": trainer.optimizer.param_groups[0]["lr"]})

    def state_dict(self) -> tuple[dict, dict]:
        return {"rows": self.rows}, {}

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        self.rows = list(state["rows"])

    def summary(self) -> dict[str, Any]:
        return {"steps": self.rows}


class TensorBoard(Callback):
    """Scalars for TensorBoard (`pip install tensorboard`, an extra): train loss every N steps, evaluations at the end."""

    def __init__(self, log_dir, every: int = 100):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LotteryTicketError("--tensorboard needs the tensorboard package: pip install tensorboard "
                                     "(or leave --tensorboard out)") from None
        from ..safefs import refuse_links

        refuse_links(log_dir, folder=True)
        self.writer, self.every = SummaryWriter(str(log_dir)), max(1, int(every))

    def on_step(self, trainer, iteration, loss):
        self.writer.add_scalar("train/loss", loss, iteration)
        self.writer.add_scalar("train/lr", trainer.optimizer.param_groups[0]["lr"], iteration)

    def on_train_end(self, trainer):
        for row in trainer.evaluator.history if trainer.evaluator is not None else []:
            for key, value in row.items():
                if key != "iteration":
                    self.writer.add_scalar(f"eval/{key}", value, row["iteration"])
        self.writer.close()
