"""IMP for one seed, written once: prune to a level, train a level, run a control.

    level 0: train θ₀ densely (recording the step-k weights when rewinding)
    level r: prune the trained weights of level r-1 (one-shot: of level 0) by the schedule, reset the
             survivors to θ₀, or rewind them to step k, and train with the mask enforced after every step

Every stage is keyed on its stored output and skipped when it is there, so running again resumes.
Rewinding follows Frankle et al. 2020 (arXiv 1912.05671) and open_lth: a rewound level starts from the
step-k weights and trains steps k..T with the learning-rate schedule and the data order positioned at k;
rewind_mode="restart" instead trains T steps from step 0's schedule and data order (our version 0.1).
A pruner with `scores_at_init` (pruning/at_init.py: SNIP, GraSP, SynFlow, magnitude-init) prunes θ₀ instead
of the trained weights, given the data it reads by `initial_network_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import nn

from ..errors import LotteryTicketError
from ..mask import PruningMask, selection_line, selection_stats
from ..pruning.base import Pruner
from ..pruning.schedule import Schedule, next_mask
from ..state import restore_, snapshot
from ..scores import ACCURACY, Score
from .collective import SINGLE_PROCESS, Collective
from .controls import CONTROLS, Control
from .records import level_record
from .store import Store


class Trainable(Protocol):
    """How the engine builds, trains and evaluates a network; the finder and the run folder each give one."""

    def build_model(self, seed: int) -> nn.Module: ...

    def train(self, model: nn.Module, mask: PruningMask, *, stage: str, start_iteration: int,
              on_step: Callable[[int, nn.Module], None] | None, callbacks: Iterable) -> dict[str, Any]: ...

    def evaluate(self, model: nn.Module) -> dict[str, Any]:  # must hold the IMP's score.key ("accuracy")
        ...

    # Optional: scoring_data() -> pruning.at_init.ScoringData, the batches and input shape pruning at init reads.


@dataclass(frozen=True)
class EarlyBirdSpec:
    threshold: float  # stop dense training once the next mask changes by less than this fraction
    every: int  # steps between mask checks


def stage_seed(seed: int, stage_id: int) -> int:
    """The global RNG seed (dropout etc.) of one training stage: a fixed stream per (seed, stage)."""
    return seed * 100_003 + stage_id


class IMP:
    def __init__(self, *, trainable: Trainable, store: Store, pruner: Pruner, schedule: Schedule, seed: int,
                 rewind_iteration: int = 0, rewind_mode: str = "continue", controls: Iterable[str] = (),
                 early_bird: EarlyBirdSpec | None = None, collective: Collective = SINGLE_PROCESS,
                 log: Callable[[str], None] | None = None, selection: dict | None = None,
                 parallel: Callable[[list[Callable[[], Any]]], list[Any]] | None = None,
                 seed_rng: Callable[[int], Any] | None = None, score: Score = ACCURACY):
        self.trainable, self.store, self.pruner, self.schedule = trainable, store, pruner, schedule
        self.score = score  # what evaluate() returns and records hold: accuracy, or a metric of yours (scores.py)
        self.seed, self.rewind_iteration, self.rewind_mode = seed, rewind_iteration, rewind_mode
        self.controls: list[Control] = [CONTROLS[c] for c in controls]
        self.early_bird, self.collective = early_bird, collective
        self.log = log or (lambda message: None)
        self.selection = dict(selection or {})  # which weights are prunable: PruningMask(model, **selection)
        # How a level's independent trainings (its ticket and its controls) are run: one after another, or (the
        # runner's --stack) in threads whose trainings are stacked (experiment/stacking.py).
        self.parallel = parallel or (lambda jobs: [job() for job in jobs])
        self.seed_rng = seed_rng or torch.manual_seed  # the global RNG (dropout): threads must seed it one at a time
        self._theta0: dict | None = None
        self._masks: dict[int, PruningMask] = {}
        # The one check of `scores_at_init`: such a pruner ranks θ₀, so the trained weights of a level never reach it.
        self.scores_at_init = bool(getattr(pruner, "scores_at_init", False))
        if self.scores_at_init and early_bird is not None:
            raise LotteryTicketError(f"early-bird stops training once the mask of the trained weights settles, but the "
                                     f"{pruner.name} pruner scores θ₀, whose mask never changes; drop early_bird")
        if self.scores_at_init and rewind_iteration:
            raise LotteryTicketError(f"the {pruner.name} pruner scores θ₀ but a rewound ticket trains from the step-"
                                     f"{rewind_iteration} weights; pass rewind_iteration=0 with a pruning-at-init pruner")

    # ---- the whole seed ------------------------------------------------------------------------
    def run(self, after_level: Callable[[int], None] | None = None) -> list[dict]:
        """Every level and its controls; returns the ticket records (level 0 is the dense network)."""
        rows = []
        for level in range(self.schedule.rounds + 1):
            self.mask(level)  # a damaged mask file of a finished level is recomputed (the same mask) before anything else
            if level == 0 or not self.controls:
                rows.append(self.train_level(level))
            else:  # the controls need the level's mask and θ₀, not the ticket's training: independent of it
                self.theta0()
                jobs = [lambda: self.train_level(level)] + [lambda c=c: self.run_control(c, level) for c in self.controls]
                rows.append(self.parallel(jobs)[0])
            if after_level is not None:
                after_level(level)
        return rows

    # ---- θ₀, rewind point and masks ------------------------------------------------------------
    def theta0(self) -> dict[str, torch.Tensor]:
        if self._theta0 is None:
            state = self.store.load_state("init")
            if state is None:
                state = snapshot(self.trainable.build_model(self.seed))
                self.store.save_state("init", state)
            self._theta0 = state
        return self._theta0

    def initial_network_for(self, pruner: Pruner) -> nn.Module:
        """θ₀ as a network, with `pruner` given the trainable's scoring data if it still lacks the data it reads:
        how a pruning-at-init pruner gets the initial network and its batches (the ticket's and the controls')."""
        if getattr(pruner, "needs_data", False):
            provide = getattr(self.trainable, "scoring_data", None)
            if provide is None:
                raise LotteryTicketError(f"the {pruner.name} pruner reads data this trainer does not give it; attach some: "
                                         "pruner.attach(ScoringData(batches=[(inputs, targets)], input_shape=...))")
            pruner.attach(provide())
        model = self.trainable.build_model(self.seed)
        restore_(model, self.theta0())
        return model

    def mask(self, level: int) -> PruningMask:
        """The mask of `level`: stored, or pruned now from the stored trained weights of the level before
        (from θ₀ for a pruner that scores at init)."""
        if level in self._masks:
            return self._masks[level]
        model = self.trainable.build_model(self.seed)
        mask = self.store.load_mask(level, model)
        if mask is None:
            if level == 0:
                mask = PruningMask(model, **self.selection)
                self.log(f"seed {self.seed}: {selection_line(selection_stats(model, mask.names))}")
            elif self.scores_at_init:
                mask = next_mask(self.pruner, self.schedule, self.initial_network_for(self.pruner), self.mask(level - 1),
                                 self.mask(0), level)
            else:
                source = 0 if self.schedule.one_shot else level - 1
                self.train_level(source)
                trained = self.store.load_state(f"trained/{source}")
                if trained is None:  # missing or damaged: retraining reproduces it exactly
                    self.train_level(source, redo=True)
                    trained = self.store.load_state(f"trained/{source}")
                restore_(model, trained)
                mask = next_mask(self.pruner, self.schedule, model, self.mask(level - 1), self.mask(0), level)
            mask = self.collective.agree(mask)
            self.store.save_mask(level, mask)
        self._masks[level] = mask
        return mask

    # ---- training --------------------------------------------------------------------------------
    def train_level(self, level: int, redo: bool = False) -> dict:
        """Train `level` (skipped when its record is stored, unless `redo`: its weights were lost)."""
        kind = "dense" if level == 0 else "ticket"
        row = None if redo else self.store.load_record(kind, level)
        if row is not None:
            self.store.clear_checkpoint(f"round_{level:02d}")  # a kill between record and clear left it behind
            return row
        mask = self.mask(level)
        self.collective.barrier()
        model = self.trainable.build_model(self.seed)
        k = self.rewind_iteration
        start = 0
        if level == 0 or k == 0:
            restore_(model, self.theta0())
        else:
            rewind = self.store.load_state("rewind")
            if rewind is None:  # missing or damaged: retraining level 0 records it again, identically
                self.train_level(0, redo=True)
                rewind = self.store.load_state("rewind")
            restore_(model, rewind)
            start = k if self.rewind_mode == "continue" else 0
        captured: list[int] = []
        on_step = self._capture_rewind(captured) if level == 0 and k > 0 and self.store.load_state("rewind") is None else None
        callbacks = [self._early_bird()] if level == 0 and self.early_bird is not None else []
        result = self._train(model, mask, f"round_{level:02d}", level, start, on_step, callbacks)
        if on_step is not None and not captured:
            raise LotteryTicketError(f"training ended before rewind_iteration={k}; use a smaller rewind iteration "
                                     "or a longer budget")
        row = level_record(self.seed, level, kind, mask, self.pruner.eligible(mask), result)
        if level == 0:  # what the percentages of every level are of (reports state it)
            row["selection"] = selection_stats(model, mask.names)
        self.store.save_state(f"trained/{level}", snapshot(model))
        self._finish(kind, level, f"round_{level:02d}", row)
        label = "dense" if level == 0 else f"{row['weights_remaining_pct']:.1f}% weights"
        es = f", early stop {row['early_stop_iteration']:,} it" if row.get("early_stop_iteration") is not None else ""
        key = self.score.key
        self.log(f"seed {self.seed} round {level}/{self.schedule.rounds}: {label}, {key} {self.score.show(row[key])}"
                 f"{es} [{row.get('train_seconds', 0):.0f} s]")
        return row

    def run_control(self, control: Control | str, level: int, mask: PruningMask | None = None,
                    seed: int | None = None) -> dict:
        """The control at `level`; `mask` or `seed` replace the ticket's mask or the control's own seed."""
        control = CONTROLS[control] if isinstance(control, str) else control
        row = self.store.load_record(control.record, level) if mask is None and seed is None else None
        if row is not None:
            self.store.clear_checkpoint(f"{control.record}_round_{level:02d}")
            return row
        ticket_mask = self.mask(level) if mask is None else mask
        self.collective.barrier()
        seed = control.seed_for(self.seed, level) if seed is None else seed
        model, mask, info = control.prepare(self, level, ticket_mask, seed)
        stage = f"{control.record}_round_{level:02d}"
        result = self._train(model, mask, stage, control.stage_id + level, 0, None, [])
        row = level_record(self.seed, level, control.record, mask, self.pruner.eligible(mask), {**result, **info})
        self._finish(control.record, level, stage, row)
        return row

    def _train(self, model, mask, stage: str, stage_id: int, start: int, on_step, callbacks) -> dict:
        self.seed_rng(stage_seed(self.seed, stage_id))
        metrics = self.trainable.train(model, mask, stage=stage, start_iteration=start, on_step=on_step,
                                       callbacks=callbacks)
        evaluation = dict(self.trainable.evaluate(model))
        key = self.score.key
        if key not in evaluation:
            raise LotteryTicketError(f"eval_fn returned a dict without {key!r}; return a float or {{{key!r}: ...}}")
        extra = self.collective.check_replicas(model, mask)
        return {**dict(metrics or {}), **evaluation, "start_iteration": start, **extra, **self.score.describe()}

    def _finish(self, kind: str, level: int, stage: str, row: dict) -> None:
        self.store.save_record(kind, level, row)
        self.store.clear_checkpoint(stage)
        self.collective.barrier()

    def _capture_rewind(self, captured: list[int]):
        """on_step that stores the weights after step k (and notes in `captured` that it did)."""
        k = self.rewind_iteration

        def on_step(iteration: int, model: nn.Module) -> None:
            if iteration == k:
                self.store.save_state("rewind", snapshot(model))
                captured.append(k)

        return on_step

    def _early_bird(self):
        from ..training.early_bird import EarlyBird

        def first_level_mask(model):
            dense = PruningMask(model, **self.selection)
            return next_mask(self.pruner, self.schedule, model, dense, dense, 1)

        return EarlyBird(first_level_mask, every=self.early_bird.every, threshold=self.early_bird.threshold)
