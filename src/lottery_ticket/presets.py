"""Paper protocols as data: one Preset per (model, dataset), each citing where its numbers come from.

F&C = Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks",
ICLR 2019 (arXiv 1803.03635). Its architecture table (Figure 2 in the final version, Table 1 in early
ones) gives each network's optimizer, learning rate, iterations, batch size and per-round pruning rates,
and says the output layer is pruned at half the rate of the other fully connected layers; §4 and the
appendices give the VGG-19 and ResNet schedules and the warmup that lets IMP find tickets at a high
learning rate.

Every preset uses the paper's schedule form (pruning/schedule.py): `rate` is the fraction of surviving
weights each level prunes, and `rounds` only says how many levels to run, so `--rounds 3` prunes 20 %
a level for three levels. Per-layer rates are fnmatch patterns; the most specific pattern wins (see
pruning/base.py). `reached_sparsity` recomputes where the levels end from the layer shapes alone.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from dataclasses import dataclass
from typing import Any

from .config import PruneConfig, TrainConfig
from .errors import LotteryTicketError


@dataclass(frozen=True)
class Preset:
    name: str
    model: str  # a name from lottery_ticket.models.MODELS
    model_kwargs: dict[str, Any]
    dataset: str  # a name from lottery_ticket.data.DATASETS
    train: TrainConfig
    prune: PruneConfig
    source: str  # the citation the numbers come from
    notes: str = ""


# F&C Figure 2: fc layers 20 % per round, the output layer at half that rate (the figure's caption).
LENET_RATES = {"fc3.weight": 0.10, "*": 0.20}


def _lenet(name: str, dataset: str, source: str, notes: str = "") -> Preset:
    return Preset(
        name=name, model="lenet300", model_kwargs={}, dataset=dataset,
        # F&C Figure 2: Adam 1.2e-3, batch 60, 50K iterations. F&C evaluate every 100 iterations and report the
        # early-stopping iteration, the one with the lowest validation loss (§2 and the LeNet appendix).
        train=TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, budget="50000it", eval_every="100it"),
        # 15 rounds leave 0.8^15 = 3.5 % of the hidden fc weights (F&C Figure 3 follows LeNet to 3.6 % remaining).
        prune=PruneConfig(rate=0.2, rounds=15, global_pruning=False, layer_rates=LENET_RATES),
        source=source, notes=notes)


def _conv(model: str, lr: float, iterations: int, conv_rate: float) -> Preset:
    # F&C Figure 2 per-round rates: convs `conv_rate`, fc 20 %, output 10 % (half the fc rate).
    rates = {"convs.*": conv_rate, "fc3.weight": 0.10, "fc*": 0.20}
    return Preset(
        name=f"{model}-cifar10", model=model, model_kwargs={}, dataset="cifar10",
        # F&C Figure 2: Adam at `lr`, batch 60, `iterations` iterations. Evaluating every 500 iterations is our
        # choice (each evaluation reads the 5,000 validation images).
        train=TrainConfig(optimizer="adam", lr=lr, batch_size=60, budget=f"{iterations}it", eval_every="500it"),
        # 15 rounds: the fc layers reach 3.5 % as in LeNet.
        prune=PruneConfig(rate=0.2, rounds=15, global_pruning=False, layer_rates=rates),
        source=f"Frankle & Carbin 2019, Figure 2 and §3 ({model.capitalize()}: Adam {lr:g}, {iterations // 1000}K it, "
               f"batch 60, conv {conv_rate:.0%} fc 20% output 10% per round)")


# F&C Figure 2 and §4: VGG-19 trains 160 epochs = 112K iterations at batch 64 (45K training images) with SGD
# momentum 0.9, learning rate x0.1 at epochs 80 and 120 (56K, 84K iterations); global pruning of 20 % of the
# conv weights a round, fc untouched. Weight decay 1e-4 and flip + pad-4 crop augmentation as open_lth's cifar_vgg.
VGG_SCHEDULE = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=64, budget="112000it",
                    schedule="step", milestones=("56000it", "84000it"), augment=True, eval_every="2000it")
# F&C Figure 2 and §4: Resnet-18 (CIFAR ResNet-20) trains 30K iterations at batch 128, SGD momentum 0.9,
# learning rate 0.1 -> 0.01 -> 0.001 at 20K and 25K; global pruning of 20 % of the conv weights, fc untouched.
# Weight decay 1e-4 and augmentation as open_lth's cifar_resnet.
RESNET_SCHEDULE = dict(optimizer="sgd", momentum=0.9, weight_decay=1e-4, batch_size=128, budget="30000it",
                       schedule="step", milestones=("20000it", "25000it"), augment=True, eval_every="1000it")

PRESETS: dict[str, Preset] = {
    "lenet300-mnist": _lenet("lenet300-mnist", "mnist", "Frankle & Carbin 2019, Figure 2 and §2 (LeNet-300-100 on MNIST)"),
    "lenet300-fashion-mnist": _lenet(
        "lenet300-fashion-mnist", "fashion-mnist", "Frankle & Carbin 2019 LeNet protocol (Figure 2, §2), applied to Fashion-MNIST",
        notes="F&C do not run Fashion-MNIST; this is their MNIST protocol unchanged on a harder drop-in dataset."),
    "conv2-cifar10": _conv("conv2", 2e-4, 20000, 0.10),
    "conv4-cifar10": _conv("conv4", 3e-4, 25000, 0.10),
    "conv6-cifar10": _conv("conv6", 3e-4, 30000, 0.15),
    "vgg19-cifar10": Preset(
        name="vgg19-cifar10", model="cifar_vgg19", model_kwargs={}, dataset="cifar10",
        # F&C §4 (Figure 7): at lr 0.1 IMP finds no ticket; with linear warmup to 0.1 over 10K iterations it does.
        train=TrainConfig(**VGG_SCHEDULE, warmup="10000it"),
        # 20 rounds of 20 %: 1.2 % of the conv weights remain.
        prune=PruneConfig(rate=0.2, rounds=20, global_pruning=True, exclude=("fc.weight",)),
        source="Frankle & Carbin 2019, Figure 2 and §4 (VGG-19, lr 0.1 with 10K-iteration warmup)"),
    "vgg19-cifar10-rewind": Preset(
        name="vgg19-cifar10-rewind", model="cifar_vgg19", model_kwargs={}, dataset="cifar10",
        train=TrainConfig(**VGG_SCHEDULE),
        # Frankle et al. 2019 rewind to an iteration 0.1 %-7 % into training instead of 0; 1,000 is 0.9 % of 112K.
        prune=PruneConfig(rate=0.2, rounds=20, global_pruning=True, exclude=("fc.weight",),
                          rewind_iteration=1000),
        source="Frankle, Dziugaite, Roy & Carbin 2019, Stabilizing the Lottery Ticket Hypothesis (arXiv 1903.01611): "
               "rewinding instead of warmup, on F&C's VGG-19 schedule",
        notes="No warmup: rewinding to iteration 1,000 replaces it."),
    "resnet20-cifar10": Preset(
        name="resnet20-cifar10", model="cifar_resnet20", model_kwargs={}, dataset="cifar10",
        # F&C §4 (Figure 8): at lr 0.1 IMP finds no ticket; at lr 0.03 with warmup over 20K iterations it does.
        train=TrainConfig(**RESNET_SCHEDULE, lr=0.03, warmup="20000it"),
        # 17 rounds of 20 %: 2.3 % of the conv weights remain.
        prune=PruneConfig(rate=0.2, rounds=17, global_pruning=True, exclude=("fc.weight",)),
        source="Frankle & Carbin 2019, Figure 2 and §4 (Resnet-18 = CIFAR ResNet-20, lr 0.03 with 20K-iteration warmup)"),
    "resnet20-cifar10-rewind": Preset(
        name="resnet20-cifar10-rewind", model="cifar_resnet20", model_kwargs={}, dataset="cifar10",
        train=TrainConfig(**RESNET_SCHEDULE, lr=0.1),
        # Figure 2's lr 0.1 without warmup, rewinding to iteration 500 (1.7 % of 30K, inside the 0.1 %-7 % window).
        prune=PruneConfig(rate=0.2, rounds=17, global_pruning=True, exclude=("fc.weight",),
                          rewind_iteration=500),
        source="Frankle, Dziugaite, Roy & Carbin 2019, Stabilizing the Lottery Ticket Hypothesis (arXiv 1903.01611): "
               "rewinding instead of warmup, on F&C's Resnet-18 schedule at lr 0.1",
        notes="No warmup: rewinding to iteration 500 replaces it."),
    # open_lth (facebookresearch/open_lth, models/mnist_lenet.py default_hparams): SGD lr 0.1 without momentum,
    # batch 128, 40 epochs on all 60,000 training images, kaiming_normal weights with torch's default biases,
    # sparse_global pruning of 20 % a round with the output layer ignored.
    "lenet300-mnist-openlth": Preset(
        name="lenet300-mnist-openlth", model="lenet300", model_kwargs={"init": "open_lth"}, dataset="mnist",
        # open_lth's epoch is ceil(60,000 / 128) = 469 steps (its last batch holds 96 images): 40 epochs = 18,760.
        train=TrainConfig(optimizer="sgd", lr=0.1, batch_size=128, budget="18760it", eval_every="469it",
                          validation=False),
        prune=PruneConfig(pruner="sparse-global", rate=0.2, rounds=15, global_pruning=True, exclude=("fc3.weight",)),
        source="open_lth default hparams for mnist_lenet_300_100 (facebookresearch/open_lth, models/mnist_lenet.py, "
               "pruning/sparse_global.py, datasets/registry.py)",
        notes="Same: data (all 60,000 training images, mean/std 0.1307/0.3081), init, optimizer, steps, and the "
              "weights pruned per level (sparse_global's ceil-of-all-survivors count and strictly-above threshold). "
              "Different: every batch here holds 128 images (open_lth's last batch of an epoch holds 96), the data "
              "order and random streams are ours, and open_lth calls the output layer fc where ours is fc3."),
    # MNIST-1D (Greydanus 2020, "Scaling Down Deep Learning", arXiv 2011.14439): its lottery-ticket experiment
    # finds sparse MLP masks that beat the dense network at high sparsity, in minutes on a CPU.
    "mnist1d-mlp": Preset(
        name="mnist1d-mlp", model="mnist1d_mlp", model_kwargs={}, dataset="mnist1d",
        # Our budget: 3,000 Adam steps train the 15K-parameter MLP to convergence in seconds on a CPU.
        train=TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="3000it", eval_every="250it"),
        # F&C's LeNet protocol in miniature: hidden layers 20 %, output 10 % per round; 15 rounds reach 95.3 %.
        prune=PruneConfig(rate=0.2, rounds=15, global_pruning=False, layer_rates=LENET_RATES),
        source="Greydanus 2020, Scaling Down Deep Learning (MNIST-1D, arXiv 2011.14439), lottery-ticket experiment; "
               "pruning rates from Frankle & Carbin 2019 Figure 2"),
    "mnist1d-cnn": Preset(
        name="mnist1d-cnn", model="mnist1d_cnn", model_kwargs={}, dataset="mnist1d",
        train=TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="3000it", eval_every="250it"),
        # Global 20 % a round, as F&C prune their convolutional VGG/ResNet; 14 rounds reach 95.6 %.
        prune=PruneConfig(rate=0.2, rounds=14, global_pruning=True),
        source="Greydanus 2020, Scaling Down Deep Learning (MNIST-1D, arXiv 2011.14439), ConvBase layout; "
               "global pruning as Frankle & Carbin 2019 §4"),
}

DEFAULT_PRESET = "mnist1d-mlp"


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """A copy of the named preset: changing its configs does not change PRESETS."""
    if name not in PRESETS:
        raise LotteryTicketError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def reached_sparsity(preset: Preset) -> float:
    """The mask sparsity after `preset.prune.rounds` IMP levels, counted from layer shapes alone.

    Builds the model on the meta device (no weights), then replays the pruners' counting: a per-layer
    level prunes round(rate * survivors) of each layer; a global level round(rate * survivors) of all
    eligible layers together. Excluded layers stay dense and count in the total, as in the PruningMask.
    """
    import torch

    from .models import get_model_class
    from .pruning.base import most_specific_match

    with torch.device("meta"):
        model = get_model_class(preset.model)(**preset.model_kwargs)
    params = dict(model.named_parameters())
    sizes = {n: params[n].numel() for n in model.prunable_parameter_names()}
    p = preset.prune
    eligible = [n for n in sizes if not any(fnmatch.fnmatchcase(n, pat) for pat in p.exclude)]
    total = sum(sizes.values())
    if p.rate is None:
        if p.global_pruning:
            return round(p.target_sparsity * sum(sizes[n] for n in eligible)) / total
        return sum(round(p.target_sparsity * sizes[n]) for n in eligible) / total
    if p.pruner == "sparse-global":  # open_lth: ceil(rate x every survivor), plus the one at the threshold
        alive = total
        for _ in range(p.rounds):
            alive -= math.ceil(p.rate * alive) + 1
        return (total - alive) / total
    if p.global_pruning and not p.layer_rates:
        alive = sum(sizes[n] for n in eligible)
        start = alive
        for _ in range(p.rounds):
            alive -= round(p.rate * alive)
        return (start - alive) / total
    pruned = 0
    for n in eligible:
        pattern = most_specific_match(n, p.layer_rates)
        rate = p.rate if pattern is None else p.layer_rates[pattern]
        alive = sizes[n]
        for _ in range(p.rounds):
            alive -= round(rate * alive)
        pruned += sizes[n] - alive
    return pruned / total


__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset", "get_preset", "preset_names", "reached_sparsity"]
