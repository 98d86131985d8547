"""Datasets as whole tensors in memory: the shapes every loader, model and trainer agree on."""

from __future__ import annotations

from dataclasses import dataclass

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
