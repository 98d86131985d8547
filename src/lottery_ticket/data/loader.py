"""A data loader for datasets that fit in memory: no per-sample Python, no worker processes.

Why: for MNIST/CIFAR-sized data a DataLoader spends more time collating single samples than the
model spends on the batch. Here the whole dataset is one tensor (uint8 for images: 4x less memory
traffic), each epoch is one seeded permutation, a batch is one index_select, and /255 plus the
mean/std normalization are folded into one multiply-add. CIFAR augmentation (pad-4 random crop and
horizontal flip) runs on the whole batch at once. On a GPU the dataset is moved there once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Iterator, Sequence

import torch

from .types import ArrayDataset


class InMemoryLoader:
    def __init__(self, dataset: ArrayDataset, batch_size: int, *, mean: Sequence[float], std: Sequence[float],
                 shuffle: bool = True, seed: int = 0, augment: bool = False, drop_last: bool = False,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1):
        self.device = torch.device(device)
        self.x = dataset.x.to(self.device)
        self.y = dataset.y.to(self.device)
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
        self.augment, self.drop_last = augment, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        channels = len(mean)
        shape = (1, channels) + (1,) * (self.x.dim() - 2) if self.x.dim() > 2 else (1, channels)
        scale = 1 / 255 if self.x.dtype == torch.uint8 else 1.0
        std_t = torch.tensor(std, dtype=torch.float32)
        # x_norm = (x * scale - mean) / std  ==  x * a + b
        self.a = (scale / std_t).view(shape).to(self.device)
        self.b = (-torch.tensor(mean, dtype=torch.float32) / std_t).view(shape).to(self.device)
        self.per_rank = len(self.y) // world_size if world_size > 1 else len(self.y)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        full, rest = divmod(self.per_rank, self.batch_size)
        return full + (0 if self.drop_last or rest == 0 else 1)

    def _order(self) -> torch.Tensor:
        n = len(self.y)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:  # as DistributedSampler: one permutation, rank r takes every world_size-th index
            order = order[: self.per_rank * self.world_size][self.rank::self.world_size]
        return order.to(self.device)

    def _augmentation_generator(self) -> torch.Generator:
        """The crops and flips of this epoch: a function of (seed, epoch), like the order."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7_919)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._order()
        g = self._augmentation_generator() if self.augment else None
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.x.index_select(0, idx)
            if self.augment:
                x = random_crop_flip(x, g)
            yield torch.addcmul(self.b, x.float(), self.a), self.y.index_select(0, idx)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Pad-`pad` random crop and random horizontal flip of a batch [N, C, H, W], vectorized and seeded."""
    return crop_flip(x, *crop_flip_draws(x.shape[0], generator, pad), pad=pad)


def crop_flip_draws(n: int, generator: torch.Generator, pad: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random offsets (dy, dx) and flips of `n` images, drawn from `generator` in one fixed order."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    return dy, dx, flip


def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Crop each padded image of x [N, C, H, W] at (dy, dx) and flip the ones `flip` marks."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx, flip = dy.to(x.device), dx.to(x.device), flip.to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # [N, H]
    cols = torch.arange(w, device=x.device)[None, :].expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]  # [N, W]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def torch_dataloader(dataset: ArrayDataset, batch_size: int, shuffle: bool = True, seed: int = 0):
    """The standard DataLoader over a TensorDataset (the baseline the throughput benchmark compares against)."""
    x = dataset.x.float() / 255 if dataset.x.dtype == torch.uint8 else dataset.x
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, dataset.y), batch_size=batch_size,
                                       shuffle=shuffle, generator=g)


class EpochLoader:
    """Any iterable of (inputs, targets) batches (or dicts: training/batches.py), made a deterministic epoch loader.

    Each epoch's order is a function of (seed, epoch), as in the in-memory loader, so a run resumed mid-epoch
    replays the same batches: a DataLoader's RandomSampler gets a generator seeded per epoch (and a
    DistributedSampler its epoch). Batches are moved to the device here.
    """

    def __init__(self, iterable, seed: int = 0, device: str | torch.device = "cpu"):
        self.iterable, self.seed, self.device = iterable, int(seed), torch.device(device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        sampler = getattr(self.iterable, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)
        elif isinstance(sampler, torch.utils.data.RandomSampler):
            if sampler.generator is None:
                sampler.generator = torch.Generator()
            sampler.generator.manual_seed(self.seed * 1_000_003 + self.epoch)

    def __len__(self) -> int:
        from ..errors import LotteryTicketError

        try:
            return len(self.iterable)
        except TypeError:
            raise LotteryTicketError("the training data has no length, so an epoch is undefined; give a DataLoader "
                                     "(or any iterable with __len__), or a budget in iterations ('5000it')") from None

    def __iter__(self):
        from ..training.batches import split_batch, to_device

        for batch in self.iterable:
            x, y = split_batch(batch)  # (inputs, targets), or a dict with 'labels' (training/batches.py)
            yield to_device(batch, self.device) if isinstance(batch, Mapping) else (to_device(x, self.device),
                                                                                   to_device(y, self.device))


class StackedLoader:
    """The batches of K InMemoryLoaders with K data seeds, as one [K, B, ...] batch per step: one gather, one
    normalization and one augmentation for all K (on a GPU: a handful of launches a step, not K times as many).

    Network k's batches are exactly those of InMemoryLoader(dataset, seed=seeds[k], shuffle=True, drop_last=True)
    (tests/test_stacked.py): the same permutation per epoch, the same crops and flips from the same generator.
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, seeds: Sequence[int], *, mean: Sequence[float],
                 std: Sequence[float], augment: bool = False, device: str | torch.device = "cpu"):
        self.loaders = [InMemoryLoader(dataset, batch_size, mean=mean, std=std, shuffle=True, seed=seed,
                                       augment=augment, drop_last=True, device="cpu") for seed in seeds]
        self.device = torch.device(device)
        first = self.loaders[0]
        self.x, self.y = dataset.x.to(self.device), dataset.y.to(self.device)  # once, uint8 for images
        self.a, self.b = first.a.to(self.device), first.b.to(self.device)
        self.batch_size, self.augment = first.batch_size, augment

    def set_epoch(self, epoch: int) -> None:
        for loader in self.loaders:
            loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loaders[0])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        k, b = len(self.loaders), self.batch_size
        orders = torch.stack([loader._order() for loader in self.loaders]).to(self.device)  # [K, N]
        generators = [loader._augmentation_generator() for loader in self.loaders] if self.augment else []
        for i in range(len(self)):
            idx = orders[:, i * b:(i + 1) * b].reshape(-1)
            x = self.x.index_select(0, idx)
            if self.augment:  # each network's draws from its own generator, in its loader's order; one crop for all
                draws = [crop_flip_draws(b, g) for g in generators]
                x = crop_flip(x, *(torch.cat(d) for d in zip(*draws)))
            x = torch.addcmul(self.b, x.float(), self.a)
            yield x.view(k, b, *x.shape[1:]), self.y.index_select(0, idx).view(k, b)
