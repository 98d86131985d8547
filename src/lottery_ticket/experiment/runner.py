"""Run an IMP experiment into a run folder: the engine (lottery_ticket.imp) over FolderStores.

Each stage is keyed on its output file and skipped when the file exists. A killed run is resumed by
running it again; data order, init and training are seeded per stage and mid-training checkpoints
restore model, optimizer, RNG and callback state exactly, so the resumed run reaches the same masks
and metrics as an uninterrupted one. `find` on a finished folder of the same experiment adds only the
missing seeds, controls or (per-level rate form) rounds.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import RUN_FORMAT, Budget, ExperimentConfig
from ..devices import check_device
from ..errors import LotteryTicketError
from ..imp import IMP, SINGLE_PROCESS, Collective, EarlyBirdSpec, FolderStore
from ..io import write_json
from ..pruning.registry import make_pruner
from ..pruning.schedule import Schedule
from ..registries import check_names, framework
from .locks import LOCK_NAME, file_lock, holder
from .preflight import check_model, check_one_batch, weightless
from .provenance import provenance
from .results import write_metrics_and_summary
from .runfolder import RunFolder, experiment_digest, our_temp_files, read_run_config, seed_places, signed_part
from .trust import sign
from ..safefs import refuse_links


class RunTrainable:
    """The engine's Trainable for a run folder: the built-in Trainer on a registry dataset, checkpointed per stage."""

    def __init__(self, runner: "ExperimentRunner", seed: int, store: FolderStore):
        self.runner, self.seed, self.store = runner, seed, store

    def build_model(self, seed: int) -> torch.nn.Module:
        return self.construct_model(seed).to(self.runner.device)

    def construct_model(self, seed: int) -> torch.nn.Module:
        """The model on the default device: the caller moves it (or builds it under torch.device('meta'))."""
        with self.runner.rng_lock:  # initialization draws from the global RNG, which a stacked run's threads share
            return self._construct_model(seed)

    def _construct_model(self, seed: int) -> torch.nn.Module:
        from ..models import build_model_for_data
        from ..plugins import build_user_model, is_import_path

        c, data = self.runner.config, self.runner.data
        if is_import_path(c.model):
            return build_user_model(c.model, seed, **c.model_kwargs)
        if not hasattr(data, "num_classes"):  # a built-in model on your own data: its own defaults, or model_kwargs
            from ..models import build_model

            return build_model(c.model, seed, **c.model_kwargs)
        return build_model_for_data(c.model, seed, data.num_classes, data.input_shape, **c.model_kwargs)

    def train(self, model, mask, *, stage, start_iteration, on_step, callbacks) -> dict[str, Any]:
        r = self.runner
        alone = lambda: self._train_alone(model, mask, stage=stage, start_iteration=start_iteration, on_step=on_step,
                                          callbacks=callbacks)
        if r.rendezvous is None:
            return alone()
        from ..imp.store import STACKED_CHECKPOINT
        from ..training.checkpoint import checkpoint_iteration
        from .stacking import Training

        # The dense level of a run with early-bird or rewinding has callbacks of its own (early-bird's checks, the
        # rewind point's capture) and trains by itself, checkpointed. Decided by the stage, not by what is on disk:
        # once the rewind point is saved, a resumed dense level passes no on_step, and must still resume alone.
        c = r.config
        architecture = tuple((n, tuple(p.shape), p.dtype) for n, p in model.named_parameters())
        special = stage == "round_00" and (c.prune.rewind_iteration > 0 or c.early_bird is not None)
        checkpoint = self.store.checkpoint(f"{stage}{STACKED_CHECKPOINT}") if r.collective.is_writer else None
        # Stacked with the trainings that resume from the same step: a kill while a stack wrote its members'
        # checkpoints leaves some one save behind the others, and each part still resumes exactly.
        key = ("alone",) if special or callbacks or on_step is not None else \
            ("stack", start_iteration, checkpoint_iteration(checkpoint), architecture)
        return r.rendezvous.submit(Training(key=key, order=(self.seed, stage), run_alone=alone, model=model,
                                            mask=mask, data_seed=r.config.train.data_seed + self.seed,
                                            start_iteration=start_iteration, log_path=self._log_path(stage),
                                            checkpoint=checkpoint))

    def _log_path(self, stage: str) -> Path | None:
        if self.store is None or not self.runner.collective.is_writer:
            return None
        return self.store.sf.root / "logs" / f"{stage}.csv"

    def _train_alone(self, model, mask, *, stage, start_iteration, on_step, callbacks) -> dict[str, Any]:
        from ..training import Trainer

        r, c = self.runner, self.runner.config
        train_config = dataclasses.replace(c.train, data_seed=c.train.data_seed + self.seed)
        trainer = Trainer(train_config, r.data, r.device, progress=r.progress and r.collective.is_writer,
                          checkpoint_path=self.store.checkpoint(stage), checkpoint_every=r.checkpoint_every,
                          rank=r.collective.rank, world_size=r.collective.world_size, metric=c.metric,
                          metric_mode=c.metric_mode)
        if r.tensorboard and r.collective.is_writer:
            from ..training.callbacks import TensorBoard

            callbacks = [*callbacks, TensorBoard(r.folder.root / "tensorboard" / f"seed_{self.seed}" / stage)]
        started = time.perf_counter()
        metrics = trainer.train(model, mask, on_step=on_step, callbacks=callbacks, start_iteration=start_iteration)
        if self._log_path(stage) is not None:
            write_training_log(self._log_path(stage), metrics)
        return {**metrics, "train_seconds": time.perf_counter() - started}

    def evaluate(self, model) -> dict[str, Any]:
        test = self.runner.evaluate(model)
        key = self.runner.score.key
        return {key: test[key], "test_loss": test["loss"]}

    def scoring_data(self):
        """What pruning at init reads (pruning/at_init.py): SCORING_EXAMPLES_PER_CLASS x classes training examples
        drawn with the run seed, unaugmented, in training-size batches, the run's loss, and the input shape.
        Your own loaders: their first training batch."""
        from ..data.loader import InMemoryLoader
        from ..data.types import DataSplits
        from ..pruning.at_init import ScoringData
        from ..training.trainer import resolve_loss

        r, data = self.runner, self.runner.data
        loss_fn = resolve_loss(r.config.train.loss)
        if not isinstance(data, DataSplits):
            from ..training.batches import split_batch

            x, y = split_batch(next(iter(data.train)))
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                raise LotteryTicketError("the pruning-at-init controls score one (inputs, targets) batch of tensors; "
                                         "your data yields dicts, so leave those controls out")
            return ScoringData(batches=[(x, y)], loss_fn=loss_fn, input_shape=tuple(x.shape[1:]))
        count = min(len(data.train), SCORING_EXAMPLES_PER_CLASS * data.num_classes)
        chosen = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(self.seed))[:count]
        loader = InMemoryLoader(data.train.subset(chosen), r.config.train.batch_size, mean=data.mean, std=data.std,
                                shuffle=False, device=r.device)
        return ScoringData(batches=list(loader), loss_fn=loss_fn, input_shape=tuple(data.input_shape))


# GraSP's default (Wang et al. 2020 code: 10 samples per class); SNIP's paper scores one batch of about this size.
SCORING_EXAMPLES_PER_CLASS = 10


class ExperimentRunner:
    def __init__(self, config: ExperimentConfig, out_dir: str | Path, *, data_dir: str | None = None,
                 verify_checksums: bool = True, device: str = "cpu", progress: bool = True,
                 log: Callable[[str], None] | None = None, checkpoint_every: int = 500,
                 collective: Collective = SINGLE_PROCESS, workers: int = 1, command: str | None = None,
                 tensorboard: bool = False, download: bool = False):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise LotteryTicketError(f"workers={workers!r} must be an integer >= 1")
        self.config = check_names(config)
        self.folder = RunFolder(Path(out_dir))
        self.data_dir, self.verify_checksums = data_dir, verify_checksums
        self.device = check_device(device)
        self.progress, self.log = progress, log or logging.getLogger("lottery_ticket").info
        self.checkpoint_every = checkpoint_every
        self.collective = collective
        self.workers = workers
        self.command = command  # the command line that made the run, recorded in config.json
        self.tensorboard = tensorboard
        self.download = download  # fetch missing or damaged dataset files from their official mirrors
        if tensorboard:  # before anything is written: a missing extra is a one-line error, not a half-made run
            try:
                import torch.utils.tensorboard  # noqa: F401
            except ImportError:
                raise LotteryTicketError("--tensorboard needs the tensorboard package: pip install tensorboard "
                                         "(or leave --tensorboard out)") from None
        self._data = None
        self.rendezvous = None  # set while a stacked run is in progress (experiment/stacking.py)
        self._evaluator, self._evaluator_lock = None, threading.Lock()
        self.rng_lock = threading.RLock()

    @property
    def score(self):
        """What each network is scored by (scores.py): accuracy, or the run's --metric."""
        from ..scores import score_of

        return score_of(self.config.framework, self.config.metric, self.config.metric_mode)

    def stacks(self) -> bool:
        """Whether this run stacks (--stack on, or auto on a GPU): a deterministic function of the settings and the
        device type, never of the machine's load. Stacking needs in-memory data, cross-entropy, one process per
        training and no random layers (dropout would draw from the RNG every thread shares); otherwise every
        training runs by itself."""
        from ..data.types import DataSplits

        c = self.config
        if c.framework != "torch":  # a framework's trainer fits one module at a time
            return False
        if c.train.stack == "off" or c.train.stack == "auto" and self.device.type != "cuda":
            return False  # auto: a GPU's one-at-a-time steps are launch-bound; a CPU's were faster (docs/stacked.md)
        if self.collective.world_size > 1 or self.tensorboard or c.train.compile:
            return False
        if len(c.seeds) == 1 and not c.controls:  # one training per level: nothing to stack it with
            return False
        if c.train.loss != "cross_entropy" or c.metric is not None or not isinstance(self.data, DataSplits):
            return False  # the stacked evaluation scores accuracy under cross-entropy
        with weightless():
            model = RunTrainable(self, c.seeds[0], None).construct_model(c.seeds[0])
        return not any(isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in model.modules())

    def evaluate(self, model) -> dict[str, float]:
        """Test loss and accuracy of a trained network: one evaluator for the run, shared by the threads of a
        stacked run (the test split goes to the device once)."""
        from ..training import Trainer

        with self._evaluator_lock:
            if self._evaluator is None:
                self._evaluator = Trainer(self.config.train, self.data, self.device, metric=self.config.metric,
                                          metric_mode=self.config.metric_mode)
            return self._evaluator.evaluate("test", model)

    def train_stack(self, trainings) -> list[dict[str, Any]]:
        """One stack of a level's trainings (experiment/stacking.py): same architecture, same start step."""
        from ..training.stacked import StackedTrainer

        started = time.perf_counter()
        results = StackedTrainer(self.config.train, self.data, self.device).train(
            [t.model for t in trainings], [t.mask for t in trainings], [t.data_seed for t in trainings],
            start_iteration=trainings[0].start_iteration, checkpoints=[t.checkpoint for t in trainings],
            checkpoint_every=self.checkpoint_every)
        seconds = (time.perf_counter() - started) / len(trainings)  # the stack's time, shared out
        for training, metrics in zip(trainings, results):
            if training.log_path is not None:
                write_training_log(training.log_path, metrics)
            metrics["train_seconds"] = seconds
        return results

    @property
    def is_writer(self) -> bool:
        return self.collective.is_writer

    # ---- the whole experiment ----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self._check_budget()
        requested = self.config.seeds
        self.collective.barrier()
        created = self.is_writer and not self.folder.config.exists()
        root_existed = self.folder.root.exists()
        if self.is_writer:
            self.config = self.claim_folder()
        self.collective.barrier()
        if not self.is_writer:
            self.config = read_run_config(self.folder)
        # The seeds this command asked for (`resume`: all of them). The folder may list more: other processes' of a
        # job array adding their seeds to it, one each (docs/distributed.md).
        seeds = [seed for seed in self.config.seeds if seed in requested]
        try:
            if self.workers > 1 and len(seeds) > 1:
                self._run_in_workers(seeds)
            else:
                self._run_seeds(seeds)
        except LotteryTicketError:
            if created and self.collective.world_size == 1:
                self._remove_if_nothing_finished(keep_root=root_existed)
            raise
        self.collective.barrier()
        return self.write_summary()

    def _remove_if_nothing_finished(self, keep_root: bool) -> None:
        """A folder this command created whose run failed on your input (a test split that does not fit the model,
        a metric that raises) before any training finished: removed, so the corrected command runs on the same
        --out. One finished record and the folder stays, for `resume`."""
        import shutil

        root = self.folder.root
        if any(root.glob("seed_*/rounds/*.json")) or any(root.glob("seed_*/controls/*.json")):
            return
        with file_lock(root / LOCK_NAME, blocking=False) as free:
            if not free:  # another process is claiming or extending it: its folder now too
                return
            for child in root.iterdir():
                if child.name == LOCK_NAME:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        (root / LOCK_NAME).unlink(missing_ok=True)
        if not keep_root:
            try:
                root.rmdir()
            except OSError:
                pass

    def _run_seeds(self, seeds) -> None:
        """Each seed under its lock: seeds another process holds are skipped, then waited for at the end."""
        if self.collective.world_size > 1:  # every rank must take the seeds in one order; the writer holds the locks
            for seed in seeds:
                with file_lock(self.folder.seed(seed).root / LOCK_NAME) if self.is_writer else nullcontext():
                    self.run_seed(seed)
            return
        if self.stacks():
            from .stacking import Rendezvous

            self.rendezvous = Rendezvous(self.train_stack)
        try:
            self._run_seeds_locked(list(seeds))
        finally:
            self.rendezvous = None

    def _run_seeds_locked(self, pending: list[int]) -> None:
        while pending:
            ran = []
            if self.rendezvous is not None:  # every seed no other process holds, together: their levels stack
                with ExitStack() as held_locks:
                    ran = [seed for seed in pending if held_locks.enter_context(
                        file_lock(self.folder.seed(seed).root / LOCK_NAME, blocking=False))]
                    self.rendezvous.run_all([lambda s=s: self.run_seed(s) for s in ran])
            else:  # one at a time, each under its lock while it runs: other processes take the others meanwhile
                for seed in list(pending):
                    with file_lock(self.folder.seed(seed).root / LOCK_NAME, blocking=False) as held:
                        if held:
                            self.run_seed(seed)
                            ran.append(seed)
            pending = [seed for seed in pending if seed not in ran]
            if pending and not ran:  # every remaining seed is another process's: wait until one is released
                with file_lock(self.folder.seed(pending[0]).root / LOCK_NAME):
                    pass

    def _run_in_workers(self, seeds) -> None:
        threads = _worker_threads()
        kwargs = dict(config=self.config, out_dir=str(self.folder.root), data_dir=self.data_dir,
                      verify_checksums=self.verify_checksums, device=str(self.device), progress=False,
                      download=self.download, tensorboard=self.tensorboard, checkpoint_every=self.checkpoint_every)
        import multiprocessing

        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, {**kwargs, "device": worker_device(str(self.device), i)}, seed, threads)
                       for i, seed in enumerate(seeds)]
            for future in futures:
                future.result()

    def _check_budget(self) -> None:
        """Problems that would only surface later: catch them before anything is written, so the corrected
        command is not refused as a different experiment."""
        from ..data.types import DataSplits

        self.config.resolve_code()  # your own model/data/loss import, or one line says why not
        if self.config.framework != "torch":
            framework(self.config.framework).preflight(self)
        else:
            t = self.config.train
            if isinstance(self.data, DataSplits) and t.batch_size > len(self.data.train):
                raise LotteryTicketError(f"batch_size={t.batch_size} is larger than the {len(self.data.train):,} "
                                         f"training examples of {self.config.dataset}; pass a smaller --batch-size")
            check_model(self)
            check_one_batch(self)
            if not isinstance(self.data, DataSplits) and t.eval_every and self.data.val is None \
                    and not t.early_stop_on_test:
                raise LotteryTicketError(f"data {self.config.dataset!r} has no 'val' split, so the early-stopping "
                                         "iteration would be picked on the test set; return a 'val' split too, or "
                                         "pass --early-stop-on-test to do so knowingly (it is recorded)")
        # The engine's own refusals (e.g. a pruning-at-init pruner with rewinding or early-bird) and the pruner's
        # (per-layer rates with one): building it writes nothing.
        self.imp(self.config.seeds[0])
        selection = mask_selection(self.config.prune)
        if selection:  # --include / --exclude type: that names nothing: one line before the folder is written
            from ..mask import PruningMask

            seed = self.config.seeds[0]
            if self.config.framework != "torch":
                model = framework(self.config.framework).Trainable(self, seed, None).build_model(seed)
            else:
                with weightless():
                    model = RunTrainable(self, seed, None).construct_model(seed)
            PruningMask(model, **selection)
        k = self.config.prune.rewind_iteration
        total = self.iterations(self.config.train.budget)
        if k >= total:
            raise LotteryTicketError(f"rewind_iteration={k} is not below the {total} training steps per round; "
                                     "pass a smaller --rewind-iteration (e.g. 1-5 % of the budget)")

    def claim_folder(self) -> ExperimentConfig:
        """Write config.json, or check the one there is this same experiment and extend it to this run's extent."""
        root = self.folder.root
        if root.exists() and not root.is_dir():
            raise LotteryTicketError(f"{root} is a file; pass a folder path as --out")
        from ..safefs import refuse_read_only

        refuse_read_only(root, "find/resume")
        root.mkdir(parents=True, exist_ok=True)
        with file_lock(root / LOCK_NAME, blocking=False) as free:
            if not free:
                self.log(f"{root} is being claimed by {holder(root / LOCK_NAME)}; waiting for it")
        with file_lock(root / LOCK_NAME):
            if self.folder.config.exists():
                self._sweep_temp_files()
                existing = read_run_config(self.folder)
                mine, theirs = self.config.identity(), existing.identity()
                if mine != theirs:
                    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                    raise LotteryTicketError(
                        f"{root} holds a different experiment (differs in: {', '.join(diff)}); "
                        "pass a new --out, or `lottery-ticket resume` it with its own settings")
                config = existing.extended_by(self.config)
                if config != existing:
                    self._write_config(config)
                return config
            ours = set(our_temp_files([root]))
            if any(p.name != LOCK_NAME and p not in ours for p in root.iterdir()):
                raise LotteryTicketError(f"{root} is not empty and holds no config.json; pass a new or empty --out")
            self._sweep_temp_files()  # a kill while config.json itself was being written
            self._write_config(self.config)
            return self.config

    def _write_config(self, config: ExperimentConfig) -> None:
        from ..plugins import import_root, is_import_path

        experiment = config.to_dict()
        paths = [path for _, path in config.code_paths()]  # model, data, loss and metric of yours
        roots = sorted({r for r in map(import_root, paths) if r})
        write_json(self.folder.config, {"format": RUN_FORMAT, "experiment": experiment,
                                        "experiment_sha256": experiment_digest(experiment),
                                        "signature": sign(signed_part(experiment, roots)),
                                        "identity": config.identity(), "import_roots": roots,
                                        "execution": self.execution(),
                                        "command": self.command, "provenance": provenance()})

    def execution(self) -> dict[str, int]:
        """How the seeds' work is spread: `resume` reuses it (runfolder.reuse_execution)."""
        threads = _worker_threads() if self.workers > 1 else torch.get_num_threads()
        return {"workers": self.workers, "threads": threads}

    def _sweep_temp_files(self, places: list[Path] | None = None) -> None:
        """A SIGKILL between creating a temp file and renaming it leaves an orphan; nothing ever reads one.

        Only the lock holder of a place sweeps it (the run folder's top under RUN_DIR/.lock, a seed's folders
        under its own lock), so another process's write in progress is never taken for an orphan.
        """
        places = places if places is not None else [self.folder.root]
        for place in places:  # a seed's `masks/` linked to a folder of yours: refused before anything is swept
            refuse_links(place, folder=True)
        for orphan in our_temp_files(places):
            orphan.unlink(missing_ok=True)

    @property
    def data(self):
        if self._data is None:
            from ..data import load_dataset
            from ..plugins import is_import_path, load_user_data

            if self.config.framework != "torch":
                self._data = framework(self.config.framework).load_data(self.config.dataset)
            elif is_import_path(self.config.dataset):
                self._data = load_user_data(self.config.dataset)
            else:
                self._data = load_dataset(self.config.dataset, self.data_dir, verify_checksums=self.verify_checksums,
                                          download=self.download, validation=self.config.train.validation)
        return self._data

    def iterations(self, budget: str) -> int:
        from ..data.loader import EpochLoader
        from ..data.types import DataSplits

        parsed = Budget.parse(budget)
        if isinstance(self.data, DataSplits):
            steps_per_epoch = max(1, len(self.data.train) // self.config.train.batch_size)
        else:  # your own loader: an epoch is its number of batches (only asked for when the budget is in epochs)
            steps_per_epoch = len(EpochLoader(self.data.train)) if parsed.unit == "ep" else 1
        return parsed.iterations(steps_per_epoch)

    # ---- one seed --------------------------------------------------------------------------------------
    def imp(self, seed: int) -> IMP:
        """The engine for one seed of this run folder."""
        c = self.config
        store = FolderStore(self.folder.seed(seed), is_writer=self.is_writer)
        early_bird = None
        if c.early_bird is not None:
            early_bird = EarlyBirdSpec(c.early_bird, every=self.iterations(c.train.eval_every or "100it"))
        if c.framework != "torch":
            trainable = framework(c.framework).Trainable(self, seed, store)
        else:
            trainable = RunTrainable(self, seed, store)
        return IMP(trainable=trainable, store=store, pruner=make_pruner(c.prune, seed),
                   schedule=Schedule.of(c.prune), seed=seed, rewind_iteration=c.prune.rewind_iteration,
                   rewind_mode=c.prune.rewind_mode, controls=c.controls, early_bird=early_bird,
                   collective=self.collective, log=self.log if self.is_writer else None,
                   selection=mask_selection(c.prune),
                   parallel=self.rendezvous.run_all if self.rendezvous is not None else None,
                   seed_rng=self._seed_rng, score=self.score)

    def _seed_rng(self, seed: int) -> None:
        with self.rng_lock:
            torch.manual_seed(seed)

    def run_seed(self, seed: int) -> None:
        """One seed's IMP; the caller holds the seed's lock."""
        def after_level(level: int) -> None:
            self.write_summary()

        if self.is_writer:
            self._sweep_temp_files(seed_places(self.folder.seed(seed)))
        self.imp(seed).run(after_level=after_level)

    def write_summary(self) -> dict[str, Any]:
        """metrics.csv and summary.json, under the run folder's lock: several processes may finish levels at once."""
        if not self.is_writer:
            return {}
        with file_lock(self.folder.root / LOCK_NAME):
            return write_metrics_and_summary(self.folder, self.config)


def write_training_log(path: Path, metrics: dict[str, Any]) -> None:
    """One row per logged step or evaluation of a training (train loss and LR every N steps, the evaluations)."""
    import csv
    import io

    from ..io import atomic_write_text

    rows: dict[int, dict[str, Any]] = {}
    for row in [*metrics.get("steps", []), *metrics.get("history", [])]:
        rows.setdefault(row["iteration"], {}).update(row)
    scored = sorted({k[4:] for row in rows.values() for k in row if k.startswith("val_") and k != "val_loss"})
    key = scored[0] if scored else "accuracy"  # the run's score (scores.py): one per run
    columns = ["iteration", "train_loss", "lr", "val_loss", f"val_{key}", "test_loss", f"test_{key}"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for iteration in sorted(rows):
        writer.writerow(rows[iteration])
    atomic_write_text(path, buffer.getvalue())


def mask_selection(prune) -> dict | None:
    """PruningMask(model, **selection) of a run: --include's additions, and --exclude's 'type:Class' items (those
    layers are not masked at all; --exclude's name patterns stay masked but are never pruned, as open_lth's
    output layer)."""
    selection = {}
    if prune.include:
        selection["also"] = list(prune.include)
    types = [e for e in prune.exclude if e.startswith("type:")]
    if types:
        selection["exclude"] = types
    return selection or None


def worker_device(device: str, index: int, gpus: int | None = None) -> str:
    """The device of the index-th worker: with `--device cuda` on a machine with several GPUs, worker i takes GPU
    i mod their number; a device given with its index, or the CPU, is every worker's."""
    if device != "cuda":
        return device
    gpus = torch.cuda.device_count() if gpus is None else gpus
    return f"cuda:{index % gpus}" if gpus > 1 else device


def _worker_threads() -> int:
    try:
        return max(1, int(os.environ.get("LOTTERY_TICKET_WORKER_THREADS", "1")))
    except ValueError:
        raise LotteryTicketError("LOTTERY_TICKET_WORKER_THREADS must be an integer >= 1, e.g. 1") from None


def _worker(kwargs: dict, seed: int, threads: int) -> None:
    """One seed in a worker process (--workers N), under the seed's lock like any other process."""
    torch.set_num_threads(threads)
    runner = ExperimentRunner(**kwargs)
    runner._run_seeds([seed])
