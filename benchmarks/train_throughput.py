"""Training throughput (images/s): the bare PyTorch step vs our masked trainer vs a standard DataLoader loop.

    python benchmarks/train_throughput.py [--models lenet300,conv4] [--batch-size 60] [--steps 300] [--repeats 3]

Rows, all on the same model, optimizer (Adam) and batch size, measured interleaved in one process so
machine noise hits them alike (ratios are what to read):
  bare step           tensors already normalized in memory, index a batch, forward/backward/step: the practical limit
  ours, masked        lottery_ticket.Trainer with an 80 %-sparse mask (pruned grads zeroed on every step)
  ours, unmasked      the same Trainer loop with a dense mask (enforcement skips dense layers)
  ours, unmasked, DataLoader   the same, fed a torch DataLoader over pre-normalized tensors (bring-your-own data)
  DataLoader loop     torch.utils.data.DataLoader over a TensorDataset, plain unmasked step
Data: MNIST for lenet300 and CIFAR-10 for conv4 when their files are found, else random uint8 tensors of
the same shape (throughput does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from lottery_ticket import MagnitudePruner, PruningMask
from lottery_ticket.config import TrainConfig
from lottery_ticket.data import ArrayDataset, DataSplits, load_dataset
from lottery_ticket.models import build_model_for_data
from lottery_ticket.training import Trainer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATA_FOR = {"lenet300": "mnist", "lenet5": "mnist", "conv2": "cifar10", "conv4": "cifar10", "conv6": "cifar10",
            "mnist1d_mlp": "mnist1d"}


def get_data(name: str, data_dir: str | None) -> tuple[DataSplits, str]:
    try:
        return load_dataset(name, data_dir, verify_checksums=False), f"{name} (real files)"
    except Exception as exc:  # benchmark only: fall back to random data of the right shape
        shape, n = ((1, 28, 28), 60000) if "mnist" in name else ((3, 32, 32), 50000)
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        ds = ArrayDataset(x, y)
        c = shape[0]
        return DataSplits(name, ds, None, ArrayDataset(x[:1000], y[:1000]), 10, shape, (0.5,) * c, (0.25,) * c), f"random {shape} ({exc.__class__.__name__})"


def bare_step_rate(model_name, data, batch, steps):
    model = build_model_for_data(model_name, 0, data.num_classes, data.input_shape)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mean = torch.tensor(data.mean).view(1, -1, *([1] * (data.train.x.dim() - 2)))
    std = torch.tensor(data.std).view_as(mean)
    x_all = (data.train.x.float() / 255 - mean) / std if data.train.x.dtype == torch.uint8 else data.train.x
    y_all = data.train.y
    perm = torch.randperm(len(y_all))
    start = time.perf_counter()
    for i in range(steps):
        idx = perm[(i * batch) % (len(perm) - batch):][:batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x_all[idx]), y_all[idx]).backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def trainer_rate(model_name, data, batch, steps, sparsity):
    model = build_model_for_data(model_name, 0, data.num_classes, data.input_shape)
    mask = PruningMask(model)
    if sparsity:
        mask = MagnitudePruner().prune(model, mask, sparsity)
    trainer = Trainer(TrainConfig(optimizer="adam", lr=1e-3, batch_size=batch, budget=f"{steps}it"), data)
    start = time.perf_counter()
    trainer.train(model, mask)
    return steps * batch / (time.perf_counter() - start)


def trainer_dataloader_rate(model_name, data, batch, steps):
    """Our Trainer fed a torch DataLoader (the bring-your-own-data path) instead of the in-memory loader."""
    from lottery_ticket.data.types import LoaderSplits

    model = build_model_for_data(model_name, 0, data.num_classes, data.input_shape)
    mean = torch.tensor(data.mean).view(1, -1, *([1] * (data.train.x.dim() - 2)))
    std = torch.tensor(data.std).view_as(mean)
    x = (data.train.x.float() / 255 - mean) / std if data.train.x.dtype == torch.uint8 else data.train.x
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, data.train.y), batch_size=batch, shuffle=True,
                                         drop_last=True)
    trainer = Trainer(TrainConfig(optimizer="adam", lr=1e-3, batch_size=batch, budget=f"{steps}it"),
                      LoaderSplits("dataloader", train=loader, test=loader))
    start = time.perf_counter()
    trainer.train(model, PruningMask(model))
    return steps * batch / (time.perf_counter() - start)


def dataloader_rate(model_name, data, batch, steps):
    model = build_model_for_data(model_name, 0, data.num_classes, data.input_shape)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = data.train.x.float() / 255 if data.train.x.dtype == torch.uint8 else data.train.x
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, data.train.y), batch_size=batch, shuffle=True)
    done, start = 0, time.perf_counter()
    while done < steps:
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            done += 1
            if done >= steps:
                break
    return steps * batch / (time.perf_counter() - start)


def enforcement_cost(model_name, data, batch, sparsity, reps=500):
    """Microseconds of the trainer's MaskEnforcer work per step and of a whole masked step.

    The trainer's enforcer zeroes the pruned gradients and skips the weight pass for its fresh Adam (see
    enforce.py); `weight_pass` says whether the pass ran, `both_us` is the cost with it (any other optimizer)."""
    from lottery_ticket.data import InMemoryLoader

    model = build_model_for_data(model_name, 0, data.num_classes, data.input_shape)
    mask = MagnitudePruner().prune(model, PruningMask(model), sparsity)
    trainer = Trainer(TrainConfig(optimizer="adam", lr=1e-3, batch_size=batch, budget="1it"), data)
    trainer.train(model, mask)
    enforcer = trainer.enforcer
    weight_pass = enforcer.weight_pass_free_for is not trainer.optimizer
    x, y = next(iter(InMemoryLoader(data.train, batch, mean=data.mean, std=data.std)))
    F.cross_entropy(model(x), y).backward()
    start = time.perf_counter()
    for _ in range(reps):
        enforcer.zero_grads()
        if weight_pass:
            enforcer.zero_weights()
    enforce = (time.perf_counter() - start) / reps
    start = time.perf_counter()
    for _ in range(reps):
        enforcer.zero_grads()
        enforcer.zero_weights()
    both = (time.perf_counter() - start) / reps
    start = time.perf_counter()
    for _ in range(reps // 5):
        trainer.train_step(x, y)
    step = (time.perf_counter() - start) / (reps // 5)
    return enforce * 1e6, step * 1e6, weight_pass, both * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="lenet300,conv4")
    parser.add_argument("--batch-size", type=int, default=60)
    parser.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 400 for MLPs, 40 for convs)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--data-dir", default=os.environ.get("LOTTERY_TICKET_DATA", str(SHARED if SHARED.is_dir() else "")) or None)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    for model_name in args.models.split(","):
        data, source = get_data(DATA_FOR.get(model_name, "mnist"), args.data_dir)
        steps = args.steps or (40 if model_name.startswith("conv") else 400)
        runs = {"bare step": lambda: bare_step_rate(model_name, data, args.batch_size, steps),
                f"ours, masked ({args.sparsity:.0%} sparse)": lambda: trainer_rate(model_name, data, args.batch_size, steps, args.sparsity),
                "ours, unmasked": lambda: trainer_rate(model_name, data, args.batch_size, steps, 0.0),
                "ours, unmasked, DataLoader": lambda: trainer_dataloader_rate(model_name, data, args.batch_size, steps),
                "DataLoader loop": lambda: dataloader_rate(model_name, data, args.batch_size, steps)}
        for fn in runs.values():  # warm-up: allocator, caches, lazy init
            fn()
        rates = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits every row alike
            for name, fn in runs.items():
                rates[name].append(fn())
        med = {name: statistics.median(v) for name, v in rates.items()}
        bare = med["bare step"]
        print(f"\n{model_name}, batch {args.batch_size}, {steps} steps x {args.repeats} repeats, data: {source}")
        print(f"{'loop':32s} {'images/s':>10s} {'vs bare':>8s}")
        for name, rate in med.items():
            print(f"{name:32s} {rate:>10,.0f} {rate / bare:>8.2f}")
        masked = next(v for k, v in med.items() if k.startswith("ours, masked"))
        print(f"masking cost (masked vs unmasked, same loop): {100 * (1 - masked / med['ours, unmasked']):+.1f}%")
        print(f"DataLoader path cost (ours fed a DataLoader vs ours in memory, unmasked): "
              f"{100 * (med['ours, unmasked'] / med['ours, unmasked, DataLoader'] - 1):+.1f}% time per image")
        enforce_us, step_us, weight_pass, both_us = enforcement_cost(model_name, data, args.batch_size, args.sparsity)
        what = "grads + weights" if weight_pass else "grads only, weight pass skipped for the fresh Adam"
        print(f"mask enforcement alone ({what}): {enforce_us:.0f} us per step = {100 * enforce_us / step_us:.1f}% of a "
              f"{step_us:.0f} us masked step (timed in isolation: steadier than whole-loop ratios on a noisy host)")
        print(f"  with the weight pass too (optimizers outside SGD/Adam/AdamW): {both_us:.0f} us = "
              f"{100 * both_us / step_us:.1f}%")


if __name__ == "__main__":
    main()
