"""Datasets as whole tensors in memory: the shapes every loader, model and trainer agree on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch


@dataclass
class ArrayDataset:
    x: torch.Tensor  # uint8 [N, C, H, W] for images; float32 [N, L] for MNIST-1D
    y: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor | slice) -> "ArrayDataset":
        return ArrayDataset(self.x[index], self.y[index])


@dataclass
class DataSplits:
    name: str
    train: ArrayDataset
    val: ArrayDataset | None  # the paper's validation split, carved from the end of the training set
    test: ArrayDataset
    num_classes: int
    input_shape: tuple[int, ...]  # per example: (1, 28, 28), (3, 32, 32), (40,)
    mean: tuple[float, ...]  # per channel, applied by the loader after /255 for uint8 images
    std: tuple[float, ...]


@dataclass
class LoaderSplits:
    """Your own data: iterables of (inputs, targets) batches, typically torch DataLoaders.

    The Trainer runs over them as they are (the in-memory loader stays the fast path for built-in datasets).
    `val` is optional: without it the early-stopping iteration is read off `test`.
    """

    name: str
    train: Any
    test: Any
    val: Any = None

    @classmethod
    def from_mapping(cls, name: str, splits: Any) -> "LoaderSplits":
        from ..errors import LotteryTicketError

        if isinstance(splits, LoaderSplits):
            return splits
        if not isinstance(splits, Mapping) or "train" not in splits or "test" not in splits:
            raise LotteryTicketError(f"{name} returned {type(splits).__name__}, not a mapping with 'train' and 'test' "
                                     "(and optionally 'val') iterables of (inputs, targets), e.g. DataLoaders")
        unknown = sorted(set(splits) - {"train", "test", "val"})
        if unknown:
            raise LotteryTicketError(f"{name} returned unknown split(s) {unknown}; use 'train', 'test' and 'val'")
        return cls(name, splits["train"], splits["test"], splits.get("val"))
