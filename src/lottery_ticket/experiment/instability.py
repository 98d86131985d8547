"""Linear mode connectivity and instability analysis of a run folder's networks.

Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis", ICML 2020
(arXiv 1912.05671), §2: take a network at training step k, train two copies of it from step k to the end
of training T with different SGD noise (here: data order), and evaluate the test error of the networks on
the straight line between the two results, (1 - α)·w1 + α·w2 for α in [0, 1]. The *error barrier height*

    instability = max_α error(α) - mean(error(0), error(1))

is the paper's measure of instability: a network is *stable* (the two copies are linearly mode connected)
when it is ≈ 0. Because the maximum runs over α = 0 and α = 1 as well, the barrier is never negative: a path
whose error dips below both endpoints (a convex curve) reports half the endpoints' difference (0 when they
are equal), as the paper's definition does; the dip is not reported as a negative instability.

For a run folder of `lottery-ticket find`, one seed, each chosen level L (0: the dense network; L > 0: the
IMP mask of level L) and each k:

* the network at step k: for k = 0, θ₀ (seed_S/init.safetensors) under the level's mask; for k > 0, as the
  paper's rewound IMP subnetworks (§4), the *dense* network's weights after k steps, under the level's mask.
  Those weights come from training θ₀ for k steps with the run's own Trainer settings, data order
  (data_seed + S) and global RNG stream (the engine's stage seed of level 0), so they are bit-identical to
  the run's dense training at step k (and to seed_S/rewind.safetensors when the run rewound to k); they are
  computed once per k and shared by every level.
* two copies trained from step k to T (the run's budget), with the learning-rate schedule positioned at k,
  the mask enforced after every step as in IMP, data seeds data_seed + S + 1 and data_seed + S + 2 (the run's
  own order is data_seed + S), and the global RNG (dropout) seeded with the level's stage seed
  + COPY_RNG_OFFSET * copy. No periodic evaluation during these trainings (it changes nothing in them).
* the test error and loss at `points` evenly spaced α in [0, 1]. Every floating-point tensor of the state
  is interpolated, BatchNorm running statistics included: they are NOT recomputed on training data at each
  α (integer buffers such as num_batches_tracked come from the nearer endpoint). The mask is applied to each
  interpolated network; pruned weights are 0 at both ends, hence all along the path.

Files, under RUN_DIR/instability/ (each written atomically, so a killed command is resumed by running it
again; a stored result whose inputs no longer match, or that is damaged, is redone):

    seed_S/level_00/k_K/start.safetensors, start.json      the dense step-k weights (k > 0), for every level
    seed_S/level_LL/k_K/copy_C.safetensors, copy_C.json    copy C (1, 2) trained to T; the JSON marks it done
    seed_S/level_LL/k_K/checkpoints/copy_C.*               mid-training state, deleted when the copy is done
    seed_S/level_LL/k_K/curve.json                         error and loss at each α
    instability.csv, instability.json, instability.png     this command's results (rewritten each time)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ..errors import LotteryTicketError
from ..state import restore_

INSTABILITY_DIR = "instability"
FORMAT = "lottery_ticket.instability/1"
COPIES = (1, 2)  # copy C trains with data seed (the run's data seed + C)
COPY_RNG_OFFSET = 10_000_019  # copy C's global RNG seed: the level's stage seed + C * this (clear of the run's)
DEFINITION = "error barrier = max over alpha of test_error((1-alpha)*w1 + alpha*w2) - mean(test_error(w1), test_error(w2))"
# Temporary files of io.atomic_write_bytes (`.NAME.XXXXXXXX.tmp`) that a kill mid-write may leave in our folder.
_TEMP_FILE = re.compile(r"^\.[A-Za-z0-9_.]+\.(json|safetensors|png|csv)\.[a-z0-9_]{8}\.tmp$")


# ---- pure helpers ------------------------------------------------------------------------------------------
def interpolate_state(a: Mapping[str, Any], b: Mapping[str, Any], alpha: float) -> dict[str, Any]:
    """(1 - alpha)·a + alpha·b for every floating-point tensor of two state dicts with the same keys and shapes.

    alpha = 0 and alpha = 1 return (copies of) `a` and `b` exactly; other tensors (integer buffers such as
    BatchNorm's num_batches_tracked) are taken from the nearer end (`a` for alpha < 0.5). Zeros shared by
    both ends (pruned weights) stay exactly zero for every alpha.
    """
    if set(a) != set(b):
        raise LotteryTicketError(f"the two states have different tensors (only in one: "
                                 f"{sorted(set(a) ^ set(b))[:5]}); interpolate states of the same model")
    alpha = float(alpha)
    out = {}
    for name, x in a.items():
        y = b[name]
        if x.shape != y.shape:
            raise LotteryTicketError(f"{name} has shape {tuple(x.shape)} in one state and {tuple(y.shape)} in the other")
        if alpha == 0.0:
            out[name] = x.clone()
        elif alpha == 1.0:
            out[name] = y.clone()
        elif torch.is_floating_point(x):
            out[name] = (1.0 - alpha) * x + alpha * y.to(x.dtype)
        else:
            out[name] = (x if alpha < 0.5 else y).clone()
    return out


def error_barrier(errors: Sequence[float]) -> float:
    """Frankle et al. 2020 (arXiv 1912.05671, §2): the error barrier height along a linear path,
    max_α error(α) - mean(error(α=0), error(α=1)), for `errors` ordered by α from 0 to 1 (endpoints included).

    Never negative, since the maximum includes the endpoints: a flat path gives 0, a bump its height above
    the endpoints' mean, a dip below equal endpoints 0 (unequal endpoints: half their difference).
    """
    values = [float(e) for e in errors]
    if len(values) < 2:
        raise LotteryTicketError(f"an error barrier needs the errors at α = 0 and α = 1 at least; got {len(values)}")
    if any(math.isnan(v) for v in values):
        return float("nan")
    return max(values) - (values[0] + values[-1]) / 2


MAX_POINTS = 1001


def alphas(points: int) -> list[float]:
    """`points` evenly spaced α in [0, 1], exactly 0.0 and 1.0 at the ends."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise LotteryTicketError(f"--points {points!r}: need at least 2 (the two endpoints), e.g. --points 11")
    if points > MAX_POINTS:  # each point is a pass over the test set; more than this resolves nothing the plot shows
        raise LotteryTicketError(f"--points {points}: at most {MAX_POINTS}, e.g. --points 11")
    return [i / (points - 1) for i in range(points)]


# ---- the analysis ------------------------------------------------------------------------------------------
class _StopAt:
    """A Trainer callback that ends training after step `k` (the Trainer calls it at multiples of `every`)."""

    def __init__(self, k: int):
        self.every = k

    def on_train_start(self, trainer):
        pass

    def on_step(self, trainer, iteration, loss):
        trainer.stop_requested = True

    def on_train_end(self, trainer):
        pass


@dataclasses.dataclass(frozen=True)
class _Level:
    level: int
    weights_remaining_pct: float
    mask_path: Path


class InstabilityAnalysis:
    """Instability analysis of one seed of a run folder; `run()` does (or reuses) every training and writes
    instability.csv/.json/.png. Every argument is checked before anything is trained or written."""

    def __init__(self, run_dir: str | Path, *, rewind_steps: Sequence[int], levels: Sequence[int] | None = None,
                 points: int = 11, seed: int | None = None, data_dir: str | None = None, verify_checksums: bool = True,
                 download: bool = False, device: str = "cpu", progress: bool = False, checkpoint_every: int = 500,
                 log: Callable[[str], None] | None = None, trust_code: bool = False):
        from ..imp.store import FolderStore
        from .runfolder import RunFolder, read_run_config
        from .runner import ExperimentRunner

        self.folder = RunFolder(Path(run_dir))
        self.alphas = alphas(points)
        from ..safefs import refuse_read_only

        refuse_read_only(self.folder.root, "instability")
        # "holds no config.json; pass a folder made by ..."; its own model/data code only if signed or trusted
        self.config = read_run_config(self.folder, run_code=True, trust_code=trust_code)
        if levels is not None and len(set(levels)) != len(levels):
            raise LotteryTicketError(f"--levels {','.join(map(str, levels))} repeats a level; give each level once")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise LotteryTicketError(f"--checkpoint-every {checkpoint_every!r} must be an integer >= 1, e.g. 500")
        seeds = tuple(self.config.seeds)
        self.seed = seeds[0] if seed is None else seed
        if self.seed not in seeds:
            raise LotteryTicketError(f"--seed {self.seed}: the run has seeds {', '.join(map(str, seeds))}; pass one of them")
        self.sf = self.folder.seed(self.seed)
        lacks = "the run folder lacks the checkpoints this needs"
        if not self.sf.init.is_file():
            raise LotteryTicketError(f"{self.sf.init} is missing: {lacks} (θ₀); run `lottery-ticket resume "
                                     f"{self.folder.root}` to make it, or pass another --seed")
        store = FolderStore(self.sf, is_writer=False)
        finished = []  # levels are trained in order: the finished ones are 0..last
        for level in range(self.config.prune.rounds + 1):
            record = store.load_record("dense" if level == 0 else "ticket", level)
            if record is None or not self.sf.mask(level).is_file():
                break
            finished.append(_Level(level, float(record["weights_remaining_pct"]), self.sf.mask(level)))
        if not finished:
            raise LotteryTicketError(f"seed {self.seed} of {self.folder.root} has not finished its dense level yet: {lacks}; "
                                     f"finish it with `lottery-ticket resume {self.folder.root}`")
        wanted = sorted(set(levels)) if levels else sorted({0, finished[-1].level})
        for level in wanted:
            if level < 0 or level > self.config.prune.rounds:
                raise LotteryTicketError(f"--levels {level}: the run has levels 0 (dense) to {self.config.prune.rounds}")
            if level >= len(finished):
                raise LotteryTicketError(
                    f"level {level} of seed {self.seed} has no mask yet (not finished; levels 0-{finished[-1].level} "
                    f"are): {lacks}; finish it with `lottery-ticket resume {self.folder.root}` or pass --levels "
                    f"within 0-{finished[-1].level}")
        self.levels = [finished[level] for level in wanted]
        self.dense = finished[0]
        self.runner = ExperimentRunner(self.config, self.folder.root, data_dir=data_dir, verify_checksums=verify_checksums,
                                       device=device, progress=False, download=download)
        from .preflight import check_model

        check_model(self.runner)  # [model_kwargs] the model refuses: one line, before anything is trained
        self.device = self.runner.device
        self.budget = self.runner.iterations(self.config.train.budget)  # T (loads the data)
        for k in rewind_steps:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.budget:
                raise LotteryTicketError(f"--rewind-steps {k}: k beyond the budget; the run trains {self.budget} steps "
                                         f"per level, so each k must be in 0..{self.budget - 1}")
        self.ks = sorted(set(rewind_steps))
        if not self.ks:
            raise LotteryTicketError("--rewind-steps: give at least one k, e.g. 0,100,500")
        self.progress, self.checkpoint_every = progress, checkpoint_every
        self.log = log or logging.getLogger("lottery_ticket").info
        self.run_data_seed = self.config.train.data_seed + self.seed  # RunTrainable's data order for this seed
        self.root = self.folder.root / INSTABILITY_DIR
        self._theta0 = None

    # ---- the whole analysis ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from .locks import LOCK_NAME, file_lock, holder

        from ..safefs import refuse_links

        refuse_links(self.root, folder=True)
        self.root.mkdir(parents=True, exist_ok=True)
        lock = self.root / LOCK_NAME
        with file_lock(lock, blocking=False) as free:
            if not free:
                self.log(f"{self.root} is in use by {holder(lock)}; waiting for it")
        with file_lock(lock):
            for orphan in [p for p in self.root.rglob(".*.tmp") if _TEMP_FILE.match(p.name) and p.is_file()]:
                orphan.unlink(missing_ok=True)  # a kill mid-write; only the lock holder writes here
            results = []
            for lv in self.levels:
                for k in self.ks:
                    results.append(self.analyse(lv, k))
            return self.write_outputs(results)

    def analyse(self, lv: _Level, k: int) -> dict[str, Any]:
        """The curve and the barrier of (level, k): the copies trained (or reused), the path evaluated (or reused)."""
        from ..imp.records import seal, unseal
        from ..io import file_digest, read_json, write_json
        from ..state import load_state

        folder = self.place(lv.level, k)
        copies = [self.train_copy(lv, k, c) for c in COPIES]
        weights = {c: folder / f"copy_{c}.safetensors" for c in COPIES}
        identity = {"format": FORMAT, "alphas": self.alphas,
                    "copies_sha256": [file_digest(weights[c]) for c in COPIES]}
        curve_path = folder / "curve.json"
        try:
            stored = unseal(read_json(curve_path)) if curve_path.is_file() else None
        except LotteryTicketError:  # damaged: evaluated again
            stored = None
        if not (stored and all(stored.get(key) == value for key, value in identity.items())
                and _valid_rows(stored.get("rows"), len(self.alphas))):
            model, mask, trainer = self.build(lv), self.mask(lv), self.eval_trainer()
            w1, w2 = (load_state(weights[c]) for c in COPIES)
            rows = []
            for alpha in self.alphas:
                restore_(model, interpolate_state(w1, w2, alpha))
                mask.apply(model)
                test = trainer.evaluate("test", model)
                rows.append({"alpha": alpha, "test_error": 1.0 - test["accuracy"], "test_loss": test["loss"]})
            stored = {**identity, "rows": rows}
            write_json(curve_path, seal(stored))
        rows = stored["rows"]
        errors, losses = [r["test_error"] for r in rows], [r["test_loss"] for r in rows]
        barrier = error_barrier(errors)
        self.log(f"instability seed {self.seed} level {lv.level} ({lv.weights_remaining_pct:.1f}% weights) k={k}: "
                 f"error barrier {100 * barrier:.2f} points (endpoints {100 * errors[0]:.2f}%, {100 * errors[-1]:.2f}%)")
        return {"level": lv.level, "weights_remaining_pct": lv.weights_remaining_pct, "k": k,
                "error_barrier": barrier, "loss_barrier": error_barrier(losses),
                "endpoint_test_errors": [errors[0], errors[-1]],
                "data_seeds": [c["data_seed"] for c in copies], "rng_seeds": [c["rng_seed"] for c in copies],
                "curve": rows}

    # ---- pieces ------------------------------------------------------------------------------------------
    def place(self, level: int, k: int) -> Path:
        return self.root / f"seed_{self.seed}" / f"level_{level:02d}" / f"k_{k}"

    def build(self, lv: _Level):
        from .runner import RunTrainable

        return RunTrainable(self.runner, self.seed, None).build_model(self.seed)

    def mask(self, lv: _Level):
        from ..mask import PruningMask

        return PruningMask.load(lv.mask_path, self.build(lv))

    def theta0(self) -> dict:
        from ..state import load_state

        if self._theta0 is None:
            self._theta0 = load_state(self.sf.init)
        return self._theta0

    def trainer(self, data_seed: int, checkpoint_path: Path | None = None):
        """The run's Trainer settings with `data_seed`, no periodic evaluation."""
        from ..training import Trainer

        config = dataclasses.replace(self.config.train, data_seed=data_seed, eval_every=None)
        return Trainer(config, self.runner.data, self.device, progress=self.progress,
                       checkpoint_path=checkpoint_path, checkpoint_every=self.checkpoint_every if checkpoint_path else 0)

    def eval_trainer(self):
        return self.trainer(self.run_data_seed)

    def _inputs(self, lv: _Level) -> dict[str, Any]:
        from ..io import file_digest

        return {"format": FORMAT, "seed": self.seed, "level": lv.level, "budget_iterations": self.budget,
                "init_sha256": file_digest(self.sf.init), "mask_sha256": file_digest(lv.mask_path),
                "train": dataclasses.asdict(self.config.train)}

    def start_state(self, lv: _Level, k: int) -> dict:
        """The network at step k under the level's mask: θ₀ (k = 0), or the dense network after k steps of the
        run's own training (k > 0; the paper's rewound subnetwork)."""
        from ..state import snapshot

        state = self.theta0() if k == 0 else self.dense_after(k)
        if k > 0 and lv.level == 0:
            return state
        model = self.build(lv)
        restore_(model, state)
        self.mask(lv).apply(model)
        return snapshot(model)

    def dense_after(self, k: int) -> dict:
        """θ₀ trained k steps as the run trains its dense level (stored as level_00/k_K/start.safetensors)."""
        from ..imp.engine import stage_seed
        from ..state import snapshot

        lv = self.dense
        folder = self.place(lv.level, k)
        identity = {**self._inputs(lv), "k": k, "data_seed": self.run_data_seed, "rng_seed": stage_seed(self.seed, lv.level)}
        stored = _load_stored(folder, "start", identity)
        if stored is not None:
            return stored[0]
        self.log(f"instability seed {self.seed} level {lv.level}: training θ₀ for k={k} steps (the run's data order)")
        model, mask = self.build(lv), self.mask(lv)
        restore_(model, self.theta0())
        torch.manual_seed(identity["rng_seed"])  # as the engine seeds the stage's global RNG (dropout)
        trainer = self.trainer(self.run_data_seed)
        trainer.train(model, mask, callbacks=[_StopAt(k)])
        if trainer.iteration != k:
            raise LotteryTicketError(f"training stopped at step {trainer.iteration}, not k={k}")
        state = snapshot(model)
        _store(folder, "start", state, identity)
        return state

    def train_copy(self, lv: _Level, k: int, copy: int) -> dict[str, Any]:
        """Copy `copy` trained from step k to T (stored as copy_C.safetensors + copy_C.json); its record."""
        from ..imp.engine import stage_seed
        from ..state import snapshot

        folder = self.place(lv.level, k)
        identity = {**self._inputs(lv), "k": k, "copy": copy, "data_seed": self.run_data_seed + copy,
                    "rng_seed": stage_seed(self.seed, lv.level) + COPY_RNG_OFFSET * copy}
        stored = _load_stored(folder, f"copy_{copy}", identity)
        if stored is not None:
            return stored[1]
        start = self.start_state(lv, k)
        model, mask = self.build(lv), self.mask(lv)
        restore_(model, start)
        torch.manual_seed(identity["rng_seed"])
        checkpoint = folder / "checkpoints" / f"copy_{copy}"
        trainer = self.trainer(identity["data_seed"], checkpoint)
        started = time.perf_counter()
        metrics = trainer.train(model, mask, start_iteration=k)
        test = trainer.evaluate("test", model)
        seconds = time.perf_counter() - started
        record = {**identity, "iterations": metrics["iterations"], "final_train_loss": metrics["final_train_loss"],
                  "test_error": 1.0 - test["accuracy"], "test_loss": test["loss"], "train_seconds": seconds}
        _store(folder, f"copy_{copy}", snapshot(model), record)
        from ..safefs import refuse_links

        for suffix in (".json", ".safetensors"):
            refuse_links(checkpoint.with_suffix(suffix))
            checkpoint.with_suffix(suffix).unlink(missing_ok=True)
        self.log(f"instability seed {self.seed} level {lv.level} k={k} copy {copy} (data seed {identity['data_seed']}): "
                 f"trained steps {k}..{metrics['iterations']}, test error {100 * record['test_error']:.2f}% [{seconds:.0f} s]")
        return record

    # ---- outputs -----------------------------------------------------------------------------------------
    def write_outputs(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        from ..io import atomic_write_bytes, atomic_write_text, write_json

        summary = {
            "format": FORMAT, "run_dir": str(self.folder.root), "model": self.config.model, "dataset": self.config.dataset,
            "seed": self.seed, "budget_iterations": self.budget, "alphas": self.alphas, "definition": DEFINITION,
            "reference": "Frankle, Dziugaite, Roy & Carbin, Linear Mode Connectivity and the Lottery Ticket "
                         "Hypothesis, ICML 2020 (arXiv 1912.05671)",
            "copies": {"data_seeds": f"data_seed + seed + 1 and + 2 (the run's own order: data_seed + seed = "
                                     f"{self.run_data_seed})",
                       "batchnorm": "running statistics interpolated with the weights, not recomputed"},
            "results": [{k: v for k, v in r.items() if k != "curve"} for r in results],
        }
        atomic_write_text(self.root / "instability.csv", instability_csv(self.seed, results))
        write_json(self.root / "instability.json", summary)
        atomic_write_bytes(self.root / "instability.png", instability_png(results, f"{self.config.model} on "
                                                                                   f"{self.config.dataset}, seed {self.seed}"))
        return {**summary, "results": results, "outputs": [str(self.root / f"instability.{ext}")
                                                           for ext in ("csv", "json", "png")]}


def _valid_rows(rows: Any, count: int) -> bool:
    return (isinstance(rows, list) and len(rows) == count
            and all(isinstance(r, dict) and isinstance(r.get("test_error"), (int, float))
                    and isinstance(r.get("test_loss"), (int, float)) for r in rows))


def _load_stored(folder: Path, name: str, identity: Mapping[str, Any]) -> tuple[dict, dict] | None:
    """(state, record) of `name` in `folder` when its record is intact and was made from these same inputs."""
    from ..imp.records import unseal
    from ..io import read_json
    from ..state import load_state

    record_path, weights = folder / f"{name}.json", folder / f"{name}.safetensors"
    if not record_path.is_file() or not weights.is_file():
        return None
    try:
        record = unseal(read_json(record_path))
        if not record or any(record.get(key) != value for key, value in _jsonable(identity).items()):
            return None
        return load_state(weights), record
    except LotteryTicketError:  # damaged: redone
        return None


def _store(folder: Path, name: str, state: dict, record: Mapping[str, Any]) -> None:
    """The weights, then the record that marks them done (both atomic)."""
    from ..imp.records import seal
    from ..io import write_json
    from ..state import save_state

    save_state(folder / f"{name}.safetensors", state)
    write_json(folder / f"{name}.json", seal(_jsonable(record)))


def _jsonable(obj: Any) -> Any:
    """As the object reads back from JSON (tuples become lists), so that a stored identity compares equal."""
    import json

    return json.loads(json.dumps(obj))


def instability_csv(seed: int, results: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["seed", "level", "weights_remaining_pct", "k", "alpha", "test_error", "test_loss"])
    for r in results:
        for row in r["curve"]:
            writer.writerow([seed, r["level"], f"{r['weights_remaining_pct']:.4f}", r["k"], f"{row['alpha']:.6g}",
                             f"{row['test_error']:.6f}", f"{row['test_loss']:.6f}"])
    return buffer.getvalue()


def instability_png(results: Sequence[Mapping[str, Any]], title: str = "") -> bytes:
    """Test error vs α: a panel per level, a line per k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({r["level"] for r in results})
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.4), squeeze=False, sharey=True)
    for ax, level in zip(axes[0], levels):
        rows = [r for r in results if r["level"] == level]
        for r in rows:
            xs = [p["alpha"] for p in r["curve"]]
            ys = [100 * p["test_error"] for p in r["curve"]]
            ax.plot(xs, ys, marker="o", markersize=3, label=f"k = {r['k']} (barrier {100 * r['error_barrier']:.1f})")
        remaining = rows[0]["weights_remaining_pct"]
        ax.set_title(f"level {level}: " + ("dense" if level == 0 else f"{remaining:.1f}% weights"), fontsize=10)
        ax.set_xlabel("interpolation α")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("test error (%)")
    if title:
        fig.suptitle(f"instability: {title}", fontsize=10)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def format_instability(summary: Mapping[str, Any]) -> str:
    """The barrier per level and k, as a table for the terminal."""
    from .report import text_table

    head = ["level", "weights remaining", "k", "error barrier (points)", "test error α=0 / α=1"]
    title = (f"instability of {summary['model']} on {summary['dataset']}, seed {summary['seed']} "
             f"(T = {summary['budget_iterations']} steps, {len(summary['alphas'])} points)")
    lines = [title]
    rows = [[str(r["level"]), "100.0% (dense)" if r["level"] == 0 else f"{r['weights_remaining_pct']:.1f}%", str(r["k"]),
             f"{100 * r['error_barrier']:.2f}",
             f"{100 * r['endpoint_test_errors'][0]:.2f}% / {100 * r['endpoint_test_errors'][1]:.2f}%"]
            for r in summary["results"]]
    lines += text_table(head, rows)
    lines += [f"written: {', '.join(summary.get('outputs', []))}"]
    return "\n".join(lines)


def run_instability(run_dir: str | Path, **kwargs) -> dict[str, Any]:
    """`lottery-ticket instability`: see InstabilityAnalysis."""
    return InstabilityAnalysis(run_dir, **kwargs).run()
