"""The demo: IMP plus the random-ticket control on a CPU budget, ending in the EXPERIMENT SUMMARY block."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass

from .config import PruneConfig, TrainConfig
from .errors import LotteryTicketError
from .experiment.config import ExperimentConfig
from .experiment.runner import ExperimentRunner


@dataclass(frozen=True)
class DemoSetting:
    model: str
    train: TrainConfig
    prune: PruneConfig
    note: str


# CPU-sized budgets, chosen so each demo finishes in minutes on a 2-core CPU (times in docs/demo.md).
DEMOS = {
    "mnist1d": DemoSetting("mnist1d_mlp", TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="3000it", eval_every="250it"),
                           PruneConfig(target_sparsity=0.95, rounds=6, global_pruning=False, layer_rates={"fc3.weight": 0.2, "*": 0.4}),
                           "MNIST-1D (generated offline), 6 rounds to ~95% sparse, 3,000 steps per round"),
    "mnist": DemoSetting("lenet300", TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, budget="2000it", eval_every="500it"),
                         PruneConfig(target_sparsity=0.9, rounds=4, layer_rates={"fc3.weight": 0.2, "*": 0.45}),
                         "MNIST, LeNet-300-100, 4 rounds, 2,000 steps per round (the paper uses 50,000)"),
    "fashion-mnist": DemoSetting("lenet300", TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, budget="2000it", eval_every="500it"),
                                 PruneConfig(target_sparsity=0.9, rounds=4, layer_rates={"fc3.weight": 0.2, "*": 0.45}),
                                 "Fashion-MNIST, LeNet-300-100, 4 rounds, 2,000 steps per round"),
    "cifar10": DemoSetting("conv4", TrainConfig(optimizer="adam", lr=3e-4, batch_size=60, budget="1500it", eval_every="500it"),
                           PruneConfig(target_sparsity=0.8, rounds=3, layer_rates={"conv*": 0.15, "fc3.weight": 0.15, "*": 0.3}),
                           "CIFAR-10, Conv-4, 3 rounds, 1,500 steps per round (the paper uses 25,000)"),
}


def summary_block(summary: dict, dense_params: int, notes: str, seconds: float) -> str:
    levels = summary["levels"]
    dense, final = levels[0], levels[-1]
    dense_acc = dense["ticket"]["accuracy"]["mean"]
    ticket_acc = final["ticket"]["accuracy"]["mean"]
    random = final.get("random_reinit", {}).get("accuracy")
    remaining_pct = final["weights_remaining_pct"]
    ticket_params = round(dense_params * remaining_pct / 100)
    lines = [
        "=" * 64,
        "EXPERIMENT SUMMARY",
        "=" * 64,
        f"Setup:            {notes}",
        f"Dense network:    {dense_params:,} prunable weights, test accuracy {100 * dense_acc:.2f}%",
        f"Winning ticket:   {ticket_params:,} weights ({100 - remaining_pct:.1f}% sparse, {remaining_pct:.1f}% retained), "
        f"test accuracy {100 * ticket_acc:.2f}%",
    ]
    if random:
        lines.append(f"Random ticket:    same mask, random re-init, test accuracy {100 * random['mean']:.2f}%")
        lines.append(f"GAP:              ticket - random = {100 * (ticket_acc - random['mean']):+.2f} points; "
                     f"ticket - dense = {100 * (ticket_acc - dense_acc):+.2f} points")
    lines += [f"Time:             {seconds:.0f} s", "=" * 64]
    return "\n".join(lines)


def run_demo(dataset: str | None = None, model: str | None = None, out: str | None = None, data_dir: str | None = None,
             verify_checksums: bool = True, progress: bool = False, log=print) -> dict:
    dataset = dataset or "mnist1d"
    if dataset not in DEMOS:
        raise LotteryTicketError(f"no demo for dataset {dataset!r}; choose from {', '.join(DEMOS)}")
    setting = DEMOS[dataset]
    prune = setting.prune
    if model and model != setting.model:
        prune = dataclasses.replace(prune, layer_rates={"*": prune.layer_rates.get("*", 0.3)})
    config = ExperimentConfig(model=model or setting.model, dataset=dataset, train=setting.train, prune=prune,
                              seeds=(0,), controls=("reinit",), preset=f"demo-{dataset}")
    out = out or tempfile.mkdtemp(prefix=f"lottery-ticket-demo-{dataset}-")
    log(f"lottery-ticket demo: {setting.note}; run folder {out}")
    started = time.perf_counter()
    runner = ExperimentRunner(config, out, data_dir=data_dir, verify_checksums=verify_checksums, progress=progress, log=log)
    summary = runner.run()
    seconds = time.perf_counter() - started
    dense_params = summary["levels"][0].get("num_total") or _prunable_count(runner)
    log(summary_block(summary, dense_params, setting.note, seconds))
    return summary


def _prunable_count(runner: ExperimentRunner) -> int:
    from .io import read_json

    return read_json(runner.folder.seed(runner.config.seeds[0]).round_result(0))["num_total"]
