"""The demo: IMP plus the random-ticket control on a CPU budget, ending in the EXPERIMENT SUMMARY block."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass

import torch

from .config import ExperimentConfig, PruneConfig, TrainConfig
from .errors import LotteryTicketError
from .experiment.runner import ExperimentRunner


@dataclass(frozen=True)
class DemoSetting:
    model: str
    train: TrainConfig
    prune: PruneConfig
    note: str
    seeds: tuple[int, ...] = (0,)


# CPU-sized budgets, chosen so each demo finishes in minutes on a 2-core CPU (times in docs/results.md).
DEMOS = {
    "mnist1d": DemoSetting("mnist1d_mlp", TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="3000it", eval_every="250it"),
                           PruneConfig(rate=0.45, rounds=3, global_pruning=False, layer_rates={"fc3.weight": 0.25, "*": 0.45}),
                           "MNIST-1D (generated offline), MLP 40-100-100-10, 3 rounds of IMP (hidden layers -45 %/round, "
                           "output -25 %), 3,000 Adam steps per round, 3 seeds", seeds=(0, 1, 2)),
    "mnist": DemoSetting("lenet300", TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, budget="2000it", eval_every="500it"),
                         PruneConfig(rate=0.45, rounds=4, layer_rates={"fc3.weight": 0.2, "*": 0.45}),
                         "MNIST, LeNet-300-100, 4 rounds, 2,000 steps per round (the paper uses 50,000)"),
    "fashion-mnist": DemoSetting("lenet300", TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, budget="2000it", eval_every="500it"),
                                 PruneConfig(rate=0.45, rounds=4, layer_rates={"fc3.weight": 0.2, "*": 0.45}),
                                 "Fashion-MNIST, LeNet-300-100, 4 rounds, 2,000 steps per round"),
    # A Conv-4 step at batch 60 takes ~0.2 s on a 2-core CPU and one pass over the 10k test images ~20 s, so this
    # demo is 5 trainings x 300 steps with one final evaluation each (~5-6 min); no early-stop tracking.
    "cifar10": DemoSetting("conv4", TrainConfig(optimizer="adam", lr=3e-4, batch_size=60, budget="300it",
                                                channels_last=True),
                           PruneConfig(rate=0.4, rounds=2, layer_rates={"convs.*": 0.2, "fc3.weight": 0.2, "*": 0.4}),
                           "CIFAR-10, Conv-4, 2 rounds, 300 Adam steps per round (the paper uses 25,000): a CPU-sized "
                           "smoke run, far from converged"),
}


def _pct(stats: dict) -> str:
    text = f"{100 * stats['mean']:.2f}%"
    return text + (f" ± {100 * stats['std']:.2f}" if stats.get("n", 1) > 1 else "")


def summary_block(summary: dict, dense_params: int, notes: str, seconds: float) -> str:
    """The EXPERIMENT SUMMARY: dense vs the final ticket vs the same mask on a random init (mean ± std over seeds)."""
    levels = summary["levels"]
    dense, final = levels[0], levels[-1]
    dense_acc, ticket_acc = dense["ticket"]["accuracy"], final["ticket"]["accuracy"]
    random = final.get("random_reinit", {}).get("accuracy")
    remaining_pct = final["weights_remaining_pct"]
    ticket_params = round(dense_params * remaining_pct / 100)
    lines = [
        "=" * 64,
        "EXPERIMENT SUMMARY",
        "=" * 64,
        f"Setup:            {notes}",
        f"Dense network:    {dense_params:,} prunable weights, test accuracy {_pct(dense_acc)}",
        f"Winning ticket:   {ticket_params:,} weights ({100 - remaining_pct:.1f}% sparse, {remaining_pct:.1f}% retained), "
        f"test accuracy {_pct(ticket_acc)}",
    ]
    if random:
        lines.append(f"Random ticket:    same mask, random re-init, test accuracy {_pct(random)}")
        lines.append(f"GAP:              ticket - random = {100 * (ticket_acc['mean'] - random['mean']):+.2f} points; "
                     f"ticket - dense = {100 * (ticket_acc['mean'] - dense_acc['mean']):+.2f} points")
    # The time stays below the block: it follows the machine's load, the block does not (same seeds and threads).
    lines += ["Measured:         test accuracy at the end of each round's training", "=" * 64,
              f"Time: {seconds:.0f} s on {torch.get_num_threads()} thread(s)"]
    return "\n".join(lines)


def run_demo(dataset: str | None = None, model: str | None = None, out: str | None = None, data_dir: str | None = None,
             verify_checksums: bool = True, progress: bool = False, log=print, download: bool = False) -> dict:
    dataset = dataset or "mnist1d"
    if dataset not in DEMOS:
        raise LotteryTicketError(f"no demo for dataset {dataset!r}; choose from {', '.join(DEMOS)}")
    setting = DEMOS[dataset]
    prune = setting.prune
    if model and model != setting.model:
        prune = dataclasses.replace(prune, layer_rates={"*": prune.layer_rates.get("*", 0.3)})
    config = ExperimentConfig(model=model or setting.model, dataset=dataset, train=setting.train, prune=prune,
                              seeds=setting.seeds, controls=("reinit",), preset=f"demo-{dataset}")
    out = out or tempfile.mkdtemp(prefix=f"lottery-ticket-demo-{dataset}-")
    log(f"lottery-ticket demo: {setting.note}; run folder {out}")
    started = time.perf_counter()
    runner = ExperimentRunner(config, out, data_dir=data_dir, verify_checksums=verify_checksums, progress=progress, log=log,
                              download=download)
    summary = runner.run()
    seconds = time.perf_counter() - started
    dense_params = summary["levels"][0].get("num_total") or _prunable_count(runner)
    log(summary_block(summary, dense_params, setting.note, seconds))
    return summary


def _prunable_count(runner: ExperimentRunner) -> int:
    from .io import read_json

    return read_json(runner.folder.seed(runner.config.seeds[0]).round_result(0))["num_total"]
