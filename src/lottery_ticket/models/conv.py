"""Conv-2, Conv-4 and Conv-6 (Frankle & Carbin 2019, Table 1): VGG-like nets for CIFAR-10.

Blocks of two 3x3 'same' convs then 2x2 max-pool (64, 128, 256 channels), then FC 256-256-10.
Weights without biases: Conv-2 4,300,992; Conv-4 2,425,024; Conv-6 2,261,184 (our tests pin these).
The paper's Table 1 lists Conv-6 at 1.7M weights, which its own architecture does not give: the
layer list above yields 2.26M, and we follow the architecture (see docs/models.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import LotteryModel

BLOCK_CHANNELS = (64, 128, 256)


class ConvNet(LotteryModel):
    def __init__(self, blocks: int, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__()
        channels, size = input_shape[0], input_shape[1]
        convs = []
        for width in BLOCK_CHANNELS[:blocks]:
            convs += [nn.Conv2d(channels, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)]
            channels, size = width, size // 2
        self.convs = nn.ModuleList(convs)
        self.fc1 = nn.Linear(channels * size * size, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, num_classes)
        self.init_glorot_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(0, len(self.convs), 2):
            x = F.max_pool2d(F.relu(self.convs[i + 1](F.relu(self.convs[i](x)))), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class Conv2(ConvNet):
    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__(1, num_classes, input_shape)


class Conv4(ConvNet):
    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__(2, num_classes, input_shape)


class Conv6(ConvNet):
    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__(3, num_classes, input_shape)
