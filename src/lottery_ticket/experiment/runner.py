"""Run an IMP experiment into a run folder, one idempotent stage at a time.

Each stage is keyed on its output file: if the file exists, the stage is skipped. A killed run is
resumed by running it again; because data order, init and training are seeded per stage and
mid-training checkpoints restore model, optimizer and RNG state exactly, the resumed run reaches
the same masks and metrics as an uninterrupted one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import LotteryTicketError
from ..finder import next_mask
from ..io import read_json, write_json
from ..mask import PruningMask
from ..pruning import MagnitudePruner, RandomPruner
from ..state import load_state, restore_, save_state, snapshot
from .config import ExperimentConfig
from .provenance import provenance
from .results import write_metrics_and_summary
from .runfolder import RunFolder, SeedFolder

REINIT_SEED_OFFSET = 10_000
RANDOM_MASK_SEED_OFFSET = 20_000


def build_model_for(config: ExperimentConfig, data, seed: int) -> torch.nn.Module:
    """The experiment's model for this data, initialized from `seed`."""
    from ..models import build_model_for_data

    return build_model_for_data(config.model, seed, data.num_classes, data.input_shape, **config.model_kwargs)


def make_pruner(config: ExperimentConfig) -> MagnitudePruner:
    p = config.prune
    return MagnitudePruner(global_pruning=p.global_pruning, layer_rates=p.layer_rates or None, exclude=p.exclude)


class ExperimentRunner:
    def __init__(self, config: ExperimentConfig, out_dir: str | Path, *, data_dir: str | None = None,
                 verify_checksums: bool = True, device: str = "cpu", progress: bool = True,
                 log: Callable[[str], None] = print, checkpoint_every: int = 500, is_writer: bool = True):
        self.config = config
        self.folder = RunFolder(Path(out_dir))
        self.data_dir, self.verify_checksums = data_dir, verify_checksums
        self.device = torch.device(device)
        self.progress, self.log = progress, log
        self.checkpoint_every = checkpoint_every
        self.is_writer = is_writer
        self.pruner = make_pruner(config)
        self._data = None

    # ---- the whole experiment ----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self._check_budget()
        self._claim_folder()
        for seed in self.config.seeds:
            self.run_seed(seed)
        return write_metrics_and_summary(self.folder, self.config)

    def _check_budget(self) -> None:
        """Problems that would only surface hours in: catch them before anything is written."""
        k = self.config.prune.rewind_iteration
        total = _iterations(self.config.train.budget, self)
        if k >= total:
            raise LotteryTicketError(f"rewind_iteration={k} is not below the {total} training steps per round; "
                                     "pass a smaller --rewind-iteration (e.g. 1-5 % of the budget)")

    def _claim_folder(self) -> None:
        """Write config.json, or check that the one there describes this same experiment."""
        if self.folder.config.exists():
            self._sweep_temp_files()
            existing = read_json(self.folder.config)
            if existing.get("experiment") != _jsonable(self.config.identity()):
                theirs = existing.get("experiment", {})
                diff = sorted(k for k in set(theirs) | set(self.config.identity())
                              if theirs.get(k) != _jsonable(self.config.identity()).get(k))
                raise LotteryTicketError(
                    f"{self.folder.root} holds a different experiment (differs in: {', '.join(diff) or 'format'}); "
                    "pass a new --out, or `lottery-ticket resume` it with its own settings"
                )
            return
        if self.folder.root.exists() and any(not p.name.endswith(".tmp") for p in self.folder.root.iterdir()):
            raise LotteryTicketError(f"{self.folder.root} is not empty and holds no config.json; pass a new or empty --out")
        self._sweep_temp_files()  # a kill while config.json itself was being written
        if self.is_writer:
            write_json(self.folder.config, {"format": "lottery_ticket.run/1", "experiment": _jsonable(self.config.identity()),
                                            "provenance": provenance()})

    def _sweep_temp_files(self) -> None:
        """A SIGKILL between creating a temp file and renaming it leaves an orphan; nothing ever reads one."""
        if self.is_writer and self.folder.root.exists():
            for orphan in self.folder.root.rglob(".*.tmp"):
                orphan.unlink(missing_ok=True)

    @property
    def data(self):
        if self._data is None:
            from ..data import load_dataset

            self._data = load_dataset(self.config.dataset, self.data_dir, verify_checksums=self.verify_checksums)
        return self._data

    # ---- one seed --------------------------------------------------------------------------------------
    def run_seed(self, seed: int) -> None:
        sf = self.folder.seed(seed)
        rounds = self.config.prune.rounds
        model = build_model_for(self.config, self.data, seed).to(self.device)
        if not sf.init.exists() and self.is_writer:
            save_state(sf.init, snapshot(model))
        theta0 = load_state(sf.init) if sf.init.exists() else snapshot(model)
        masks: list[PruningMask] = []
        for r in range(rounds + 1):
            mask = self._mask(sf, model, r, masks)
            masks.append(mask)
            self._train_round(sf, seed, r, mask, theta0)
            if r > 0:
                for kind in self.config.controls:
                    self._control(sf, seed, r, kind, mask, theta0)
            if self.is_writer:
                write_metrics_and_summary(self.folder, self.config)

    def _mask(self, sf: SeedFolder, model, r: int, masks: list[PruningMask]) -> PruningMask:
        if sf.mask(r).exists():
            return PruningMask.load(sf.mask(r), model)
        if r == 0:
            mask = PruningMask(model)
        else:
            source = 0 if self.config.prune.one_shot else r - 1
            restore_(model, load_state(sf.trained(source)))
            base = masks[0] if self.config.prune.one_shot else masks[r - 1]
            mask = next_mask(self.pruner, model, base, self.config.prune.target_sparsity, self.config.prune.rounds, r,
                             self.config.prune.one_shot)
        mask = self._agree(mask)
        if self.is_writer:
            mask.save(sf.mask(r))
        return mask

    def _agree(self, mask: PruningMask) -> PruningMask:
        """Hook for distributed runs: every rank must use rank 0's mask."""
        return mask

    def _train_round(self, sf: SeedFolder, seed: int, r: int, mask: PruningMask, theta0: dict) -> dict:
        if sf.round_result(r).exists():
            return read_json(sf.round_result(r))
        model = build_model_for(self.config, self.data, seed).to(self.device)
        rewinding = self.config.prune.rewind_iteration > 0
        if r == 0 or not rewinding:
            restore_(model, theta0)
        else:
            restore_(model, load_state(sf.rewind))
        on_step = None
        if r == 0 and rewinding and not sf.rewind.exists():
            k = self.config.prune.rewind_iteration

            def on_step(iteration, m):
                if iteration == k and self.is_writer:
                    save_state(sf.rewind, snapshot(m))
        callbacks = [self._early_bird()] if r == 0 and self.config.early_bird else []
        result = self._train_and_evaluate(model, mask, sf.checkpoint(f"round_{r:02d}"), seed, stage=r, on_step=on_step,
                                          callbacks=callbacks)
        if rewinding and r == 0 and not sf.rewind.exists() and self.is_writer:
            raise LotteryTicketError(f"training ended before rewind_iteration={self.config.prune.rewind_iteration}; "
                                     "use a smaller --rewind-iteration or a longer budget")
        row = {"seed": seed, "round": r, "kind": "ticket" if r else "dense", **_mask_stats(mask), **result}
        if self.is_writer:
            save_state(sf.trained(r), snapshot(model))
            write_json(sf.round_result(r), row)
        self._log_round(seed, r, row, sf)
        return row

    def _control(self, sf: SeedFolder, seed: int, r: int, kind: str, mask: PruningMask, theta0: dict) -> dict:
        name = {"reinit": "random_reinit", "random-prune": "random_pruning"}[kind]
        if sf.control_result(name, r).exists():
            return read_json(sf.control_result(name, r))
        if kind == "reinit":
            model = build_model_for(self.config, self.data, seed + REINIT_SEED_OFFSET).to(self.device)
            control_mask = mask
        else:
            model = build_model_for(self.config, self.data, seed).to(self.device)
            restore_(model, theta0)
            control_mask = RandomPruner(seed + RANDOM_MASK_SEED_OFFSET + r).like(mask)
        stage = 1000 * (1 + list(("reinit", "random-prune")).index(kind)) + r
        result = self._train_and_evaluate(model, control_mask, sf.checkpoint(f"{name}_round_{r:02d}"), seed, stage=stage)
        row = {"seed": seed, "round": r, "kind": name, **_mask_stats(control_mask), **result}
        if self.is_writer:
            write_json(sf.control_result(name, r), row)
        return row

    def _early_bird(self):
        from ..training.early_bird import EarlyBird

        p = self.config.prune

        def round_one_mask(model):
            return next_mask(self.pruner, model, PruningMask(model), p.target_sparsity, p.rounds, 1)

        every = self.config.train.eval_every or "100it"
        return EarlyBird(round_one_mask, every=_iterations(every, self), threshold=self.config.early_bird)

    def _train_and_evaluate(self, model, mask, checkpoint: Path, seed: int, stage: int, on_step=None, callbacks=()) -> dict:
        from dataclasses import replace

        train_config = replace(self.config.train, data_seed=self.config.train.data_seed + seed)
        trainer = self._make_trainer(train_config, checkpoint)
        torch.manual_seed(seed * 100_003 + stage)  # dropout etc.: a fixed stream per stage
        started = time.perf_counter()
        metrics = trainer.train(model, mask, on_step=on_step, callbacks=callbacks)
        seconds = time.perf_counter() - started
        test = trainer.evaluate("test", model)
        for suffix in (".json", ".safetensors"):
            checkpoint.with_suffix(suffix).unlink(missing_ok=True)
        history = metrics.pop("history", [])
        return {"accuracy": test["accuracy"], "test_loss": test["loss"], **metrics, "train_seconds": seconds,
                "history": history}

    def _make_trainer(self, train_config, checkpoint: Path):
        from ..training import Trainer

        return Trainer(train_config, self.data, self.device, progress=self.progress,
                       checkpoint_path=checkpoint if self.is_writer else None, checkpoint_every=self.checkpoint_every)

    def _log_round(self, seed: int, r: int, row: dict, sf: SeedFolder) -> None:
        label = "dense" if r == 0 else f"{row['weights_remaining_pct']:.1f}% weights"
        es = f", early stop {row['early_stop_iteration']:,} it" if "early_stop_iteration" in row else ""
        self.log(f"seed {seed} round {r}/{self.config.prune.rounds}: {label}, accuracy {100 * row['accuracy']:.2f}%"
                 f"{es} [{row['train_seconds']:.0f} s]")


def _iterations(budget: str, runner: "ExperimentRunner") -> int:
    from ..config import Budget

    steps_per_epoch = max(1, len(runner.data.train) // runner.config.train.batch_size)
    return Budget.parse(budget).iterations(steps_per_epoch)


def _mask_stats(mask: PruningMask) -> dict:
    return {"sparsity": mask.sparsity, "weights_remaining_pct": 100.0 * mask.density, "num_remaining": mask.num_remaining,
            "num_total": mask.num_total, "layer_sparsities": mask.layer_sparsities}


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj))
