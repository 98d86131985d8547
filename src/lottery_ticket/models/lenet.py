"""LeNet-300-100 and LeNet-5 (Frankle & Carbin 2019, Table 1: the MNIST networks)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import LotteryModel, flat_features


class LeNet300(LotteryModel):
    """Fully connected 784-300-100-10: 266,610 parameters (266,200 prunable weights) on MNIST."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28), hidden: tuple[int, int] = (300, 100)):
        super().__init__()
        self.fc1 = nn.Linear(flat_features(input_shape), hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)
        self.init_glorot_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(LotteryModel):
    """Conv 6 (5x5, pad 2) - pool - conv 16 (5x5) - pool - FC 120-84-10: 61,706 parameters on MNIST."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28)):
        super().__init__()
        channels, size = input_shape[0], input_shape[1]
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = (size // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.init_glorot_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))
