"""Stacked training (issue 24): model-steps/s and achieved TFLOP/s for K networks trained together vs one at a time.

    python benchmarks/stacked.py [--models mnist1d_mlp,lenet300] [--ks 1,4,16] [--steps 200] [--repeats 3]
    python benchmarks/stacked.py --device cuda --models conv2,conv4,conv6,cifar_resnet20,cifar_vgg19   # on a GPU

Rows, per model, measured interleaved in one process so machine noise hits them alike (read the ratio column):
  one at a time   lottery_ticket.Trainer on one network (today's path; K networks take K times as long)
  stacked K       lottery_ticket.training.stacked.StackedTrainer on K networks at once
Each network is 80 %-pruned (its own random-free magnitude mask), Adam, batch --batch-size, no evaluation, the
dense masked step (sparse-aware training off, as stacking does). model-steps/s counts one step of one network;
TFLOP/s is model-steps/s times the FLOPs of one network's forward and backward at that batch
(torch.utils.flop_counter). Data: the real files when found (MNIST for lenet300, CIFAR-10 for conv/ResNet/VGG,
MNIST-1D generated offline), else random uint8 of the same shape (throughput does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from lottery_ticket import MagnitudePruner, PruningMask
from lottery_ticket.config import TrainConfig
from lottery_ticket.data import ArrayDataset, DataSplits, load_dataset
from lottery_ticket.models import build_model_for_data
from lottery_ticket.training import Trainer
from lottery_ticket.training.stacked import StackedTrainer

DATA_FOR = {"lenet300": "mnist", "lenet5": "mnist", "mnist1d_mlp": "mnist1d", "mnist1d_cnn": "mnist1d"}


def get_data(name: str, data_dir: str | None) -> tuple[DataSplits, str]:
    if name == "mnist1d":  # generated offline into the user's cache, never into a data folder
        return load_dataset(name), "mnist1d (generated)"
    try:
        return load_dataset(name, data_dir, verify_checksums=False, validation=False), f"{name} (real files)"
    except Exception as exc:  # benchmark only: random data of the right shape
        shape, n = ((1, 28, 28), 60000) if "mnist" in name else ((3, 32, 32), 50000)
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        c = shape[0]
        return (DataSplits(name, ArrayDataset(x, y), None, ArrayDataset(x[:1000], y[:1000]), 10, shape, (0.5,) * c,
                           (0.25,) * c), f"random {shape} ({exc.__class__.__name__})")


def pruned_networks(model_name: str, data: DataSplits, k: int, device: str):
    models, masks = [], []
    for seed in range(k):
        model = build_model_for_data(model_name, seed, data.num_classes, data.input_shape).to(device)
        mask = PruningMask(model)
        MagnitudePruner(global_pruning=True).prune(model, mask, 0.8)
        models.append(model)
        masks.append(mask)
    return models, masks


def flops_per_step(model_name: str, data: DataSplits, batch: int, device: str) -> int:
    model = build_model_for_data(model_name, 0, data.num_classes, data.input_shape).to(device)
    x = torch.randn(batch, *data.input_shape, device=device)
    y = torch.randint(0, data.num_classes, (batch,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def one_at_a_time(config, data, model_name, device) -> float:
    models, masks = pruned_networks(model_name, data, 1, device)
    trainer = Trainer(config, data, device)
    started = time.perf_counter()
    trainer.train(models[0], masks[0])
    _sync(device)
    return trainer.total_iterations / (time.perf_counter() - started)


def stacked(config, data, model_name, k, device) -> float:
    models, masks = pruned_networks(model_name, data, k, device)
    trainer = StackedTrainer(config, data, device)
    started = time.perf_counter()
    trainer.train(models, masks, list(range(k)))
    _sync(device)
    return k * trainer.total_iterations / (time.perf_counter() - started)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mnist1d_mlp,lenet300")
    parser.add_argument("--ks", default="1,4,16")
    parser.add_argument("--batch-size", type=int, default=60)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--amp", choices=["bf16"], default=None, help="bfloat16 autocast (CUDA)")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=args.batch_size, budget=f"{args.steps}it",
                         sparse_training="off", amp=args.amp)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
          + f", {os.cpu_count()} CPUs; batch {args.batch_size}, {args.steps} steps, median of {args.repeats}"
          + f", {args.amp or 'float32'}")
    print("| model | data | path | model-steps/s | vs one at a time | TFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model_name in args.models.split(","):
        data, source = get_data(DATA_FOR.get(model_name, "cifar10"), args.data_dir)
        flops = flops_per_step(model_name, data, args.batch_size, args.device)
        rates: dict[str, list[float]] = {"one at a time": [], **{f"stacked K={k}": [] for k in ks}}
        one_at_a_time(config, data, model_name, args.device)  # warm-up: first-call allocations and kernel choices
        for k in ks:  # each K has its own shapes, so its own first-call costs
            stacked(config, data, model_name, k, args.device)
        for _ in range(args.repeats):  # interleaved: every path in every repeat
            rates["one at a time"].append(one_at_a_time(config, data, model_name, args.device))
            for k in ks:
                rates[f"stacked K={k}"].append(stacked(config, data, model_name, k, args.device))
        base = statistics.median(rates["one at a time"])
        for path, values in rates.items():
            rate = statistics.median(values)
            print(f"| {model_name} | {source} | {path} | {rate:,.0f} | {rate / base:.2f}x | {rate * flops / 1e12:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
