"""Small models for MNIST-1D (Greydanus 2020): the MLP and the 1-D CNN of its paper's baselines."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import LotteryModel


class MNIST1DMLP(LotteryModel):
    """40-100-100-10 with ReLU: 15,210 parameters."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (40,), hidden: int = 100):
        super().__init__()
        self.fc1 = nn.Linear(input_shape[-1], hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)
        self.init_glorot_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class MNIST1DCNN(LotteryModel):
    """Three strided 1-D convs (width 32) and one linear layer, after the MNIST-1D paper's ConvBase."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (40,), width: int = 32):
        super().__init__()
        self.conv1 = nn.Conv1d(1, width, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        length = input_shape[-1]
        for k, p in ((5, 1), (3, 1), (3, 1)):
            length = (length + 2 * p - k) // 2 + 1
        self.fc = nn.Linear(width * length, num_classes)
        self.init_kaiming_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], 1, -1)
        x = F.relu(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))
        return self.fc(x.flatten(1))
