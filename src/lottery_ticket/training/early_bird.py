"""Early-bird tickets (You et al., ICLR 2020): stop dense training once the pruning mask stops changing.

Every `every` steps the callback computes the mask the next IMP round would prune and its normalized
Hamming distance to the previous such mask. Once the largest distance among the last `window`
masks falls below `threshold` (the paper: window 5, threshold 0.1), the mask has converged: training
stops and the round records `early_bird_iteration`.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from ..mask import PruningMask
from .callbacks import Callback


class EarlyBird(Callback):
    def __init__(self, make_mask: Callable[[object], PruningMask], every: int, threshold: float = 0.1, window: int = 5):
        self.make_mask, self.every, self.threshold, self.window = make_mask, max(1, int(every)), threshold, window
        self.previous: PruningMask | None = None
        self.distances: deque[float] = deque(maxlen=window)
        self.stopped_at: int | None = None

    def on_train_start(self, trainer):
        self.previous, self.stopped_at = None, None
        self.distances.clear()

    def on_step(self, trainer, iteration, loss):
        mask = self.make_mask(trainer.model)
        if self.previous is not None:
            self.distances.append(mask.hamming_distance(self.previous) / mask.num_total)
        self.previous = mask
        if len(self.distances) == self.window and max(self.distances) < self.threshold:
            self.stopped_at = iteration
            trainer.stop_requested = True

    def state_dict(self) -> tuple[dict, dict]:
        """The window and the last mask checked: without them a resumed dense round could stop at another step."""
        tensors = {f"previous/{n}": m for n, m in self.previous.items()} if self.previous is not None else {}
        return {"distances": list(self.distances), "stopped_at": self.stopped_at,
                "previous_names": self.previous.names if self.previous is not None else None}, tensors

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        self.distances.clear()
        self.distances.extend(float(d) for d in state["distances"])
        self.stopped_at = state["stopped_at"]
        names = state["previous_names"]
        self.previous = PruningMask(masks={n: tensors[f"previous/{n}"] for n in names}) if names is not None else None

    def summary(self) -> dict:
        return {"early_bird_iteration": self.stopped_at, "early_bird_distances": list(self.distances)}
