"""Global magnitude pruning time and peak memory on large models (VGG19: 143.7M weights).

    python benchmarks/prune_speed.py [--models vgg19,resnet50] [--sparsity 0.2]

Peak memory is the process's max RSS growth during the prune, compared with the weights' own size.
Why this matters: torch.quantile fails above 16M elements, so naive global pruning cannot run on VGG19.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from lottery_ticket import MagnitudePruner, PruningMask
from lottery_ticket.models import build_model


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vgg19,resnet50")
    parser.add_argument("--sparsity", type=float, default=0.2)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':10s} {'weights':>13s} {'first prune s':>14s} {'second prune s':>15s} {'peak extra / weights':>21s}")
    for name in args.models.split(","):
        model = build_model(name, seed=0)
        mask = PruningMask(model)
        weight_bytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if n in mask.masks)
        pruner = MagnitudePruner(global_pruning=True)
        rss0 = max_rss_bytes()
        t0 = time.perf_counter()
        first = pruner.prune(model, mask, args.sparsity)
        t1 = time.perf_counter()
        second = pruner.prune(model, first, 1 - (1 - args.sparsity) ** 2)
        t2 = time.perf_counter()
        extra = max(0, max_rss_bytes() - rss0)
        print(f"{name:10s} {mask.num_total:>13,} {t1 - t0:>14.2f} {t2 - t1:>15.2f} {extra / weight_bytes:>20.2f}x")
        assert first.num_pruned == round(args.sparsity * mask.num_total)
        del model, mask, first, second


if __name__ == "__main__":
    main()
