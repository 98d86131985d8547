"""Paper protocols as data: one Preset per (model, dataset), each citing its source.

F&C = Frankle & Carbin, "The Lottery Ticket Hypothesis", ICLR 2019 (arXiv 1803.03635): Figure 2 /
Table 1 gives the architectures, optimizers, iterations and per-layer pruning rates; Appendix sections
name the validation splits and the evaluation cadence (every 100 iterations for MNIST).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import PruneConfig, TrainConfig
from .errors import LotteryTicketError


@dataclass(frozen=True)
class Preset:
    name: str
    model: str
    dataset: str
    train: TrainConfig
    prune: PruneConfig
    source: str
    model_kwargs: dict = field(default_factory=dict)
    notes: str = ""


# Per-layer rates: first matching pattern wins; the output layer is pruned at half the fc rate (F&C §2, Table 1).
LENET_RATES = {"fc3.weight": 0.10, "*": 0.20}
CONV_RATES = {"fc3.weight": 0.10, "fc*": 0.20, "convs.*": 0.10}


def _lenet(name: str, dataset: str) -> Preset:
    return Preset(
        name, "lenet300", dataset,
        # F&C Table 1: Adam 1.2e-3, batch 60, 50K iterations; Appendix C: evaluate every 100 iterations.
        TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, budget="50000it", eval_every="100it"),
        # F&C Table 1: fc 20 %, output 10 % per round; 0.8^15 = 3.5 % of the hidden weights remain after 15 rounds.
        PruneConfig(target_sparsity=0.964, rounds=15, global_pruning=False, layer_rates=LENET_RATES),
        "Frankle & Carbin 2019, Table 1 and Figure 3 (LeNet-300-100)")


def _conv(name: str, model: str, lr: float, iterations: int, conv_rate: float) -> Preset:
    return Preset(
        name, model, "cifar10",
        TrainConfig(optimizer="adam", lr=lr, batch_size=60, budget=f"{iterations}it", eval_every="500it"),
        PruneConfig(target_sparsity=0.98, rounds=15, global_pruning=False,
                    layer_rates={**CONV_RATES, "convs.*": conv_rate}),
        f"Frankle & Carbin 2019, Table 1 and Figure 5 ({model.capitalize()}: Adam {lr:g}, {iterations // 1000}K it, "
        f"conv {conv_rate:.0%} fc 20% output 10%)")


PRESETS: dict[str, Preset] = {
    "lenet300-mnist": _lenet("lenet300-mnist", "mnist"),
    "lenet300-fashion-mnist": _lenet("lenet300-fashion-mnist", "fashion-mnist"),
    "conv2-cifar10": _conv("conv2-cifar10", "conv2", 2e-4, 20000, 0.10),
    "conv4-cifar10": _conv("conv4-cifar10", "conv4", 3e-4, 25000, 0.10),
    "conv6-cifar10": _conv("conv6-cifar10", "conv6", 3e-4, 30000, 0.15),
    # F&C Table 1 "VGG-19": SGD 0.1 momentum 0.9, batch 64, 112K it, lr x0.1 at 56K and 84K; global pruning 20 % of
    # conv weights, fc untouched. §4: at lr 0.1 tickets need warmup (10K it to 0.1); "Stabilizing the LTH"
    # (Frankle et al. 2019) rewinds to an early iteration instead.
    "vgg19-cifar10": Preset(
        "vgg19-cifar10", "cifar_vgg19", "cifar10",
        TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=64, budget="112000it",
                    warmup="10000it", schedule="step", milestones=("56000it", "84000it"), augment=True, eval_every="2000it"),
        PruneConfig(target_sparsity=0.988, rounds=20, global_pruning=True, exclude=("fc.weight",)),
        "Frankle & Carbin 2019, Table 1 and §4 (VGG-19, warmup 10K)"),
    "vgg19-cifar10-rewind": Preset(
        "vgg19-cifar10-rewind", "cifar_vgg19", "cifar10",
        TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=64, budget="112000it",
                    schedule="step", milestones=("56000it", "84000it"), augment=True, eval_every="2000it"),
        PruneConfig(target_sparsity=0.988, rounds=20, global_pruning=True, exclude=("fc.weight",), rewind_iteration=1000),
        "Frankle et al. 2019, Stabilizing the Lottery Ticket Hypothesis (rewinding to an early iteration)"),
    # F&C Table 1 "Resnet-18" (the CIFAR ResNet-20 layout): SGD 0.1-0.01-0.001 momentum 0.9, batch 128, 30K it
    # (drops at 20K, 25K); global 20 % of conv weights, fc untouched; §4 uses warmup 20K at lr 0.03.
    "resnet20-cifar10": Preset(
        "resnet20-cifar10", "cifar_resnet20", "cifar10",
        TrainConfig(optimizer="sgd", lr=0.03, momentum=0.9, weight_decay=1e-4, batch_size=128, budget="30000it",
                    warmup="20000it", schedule="step", milestones=("20000it", "25000it"), augment=True, eval_every="1000it"),
        PruneConfig(target_sparsity=0.98, rounds=17, global_pruning=True, exclude=("fc.weight",)),
        "Frankle & Carbin 2019, Table 1 and §4 (Resnet-18 = CIFAR ResNet-20, lr 0.03 with 20K warmup)"),
    # open_lth's default mnist_lenet_300_100: SGD 0.1, batch 128, 40 epochs, global sparse 20 %/round, output layer
    # excluded (facebookresearch/open_lth, models/mnist_lenet.py default_hparams).
    "lenet300-mnist-openlth": Preset(
        "lenet300-mnist-openlth", "lenet300", "mnist",
        TrainConfig(optimizer="sgd", lr=0.1, batch_size=128, budget="40ep", eval_every="1ep"),
        PruneConfig(target_sparsity=0.964, rounds=15, global_pruning=True, exclude=("fc3.weight",)),
        "open_lth default hparams for mnist_lenet_300_100"),
    # MNIST-1D (Greydanus 2020, §4 "lottery tickets"): small nets where tickets beat dense at high sparsity.
    "mnist1d-mlp": Preset(
        "mnist1d-mlp", "mnist1d_mlp", "mnist1d",
        TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="3000it", eval_every="250it"),
        PruneConfig(target_sparsity=0.95, rounds=8, global_pruning=False, layer_rates={"fc3.weight": 0.15, "*": 0.3}),
        "Greydanus 2020, MNIST-1D, lottery-ticket experiment (MLP, per-layer magnitude pruning)"),
    "mnist1d-cnn": Preset(
        "mnist1d-cnn", "mnist1d_cnn", "mnist1d",
        TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="3000it", eval_every="250it"),
        PruneConfig(target_sparsity=0.9, rounds=6, global_pruning=True),
        "Greydanus 2020, MNIST-1D (ConvBase-style 1-D CNN)"),
}

DEFAULT_PRESET = "mnist1d-mlp"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise LotteryTicketError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
