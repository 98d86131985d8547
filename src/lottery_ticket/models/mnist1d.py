"""Small models for MNIST-1D (Greydanus 2020): 40-sample 1-D signals, 10 classes, trains in seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LotteryTicketError
from .base import LotteryModel, check_flat_shape, check_num_classes


class MNIST1DMLP(LotteryModel):
    """40-100-100-10 with ReLU (the MNIST-1D paper's MLP baseline): 15,210 parameters, Glorot init like LeNet."""

    output_layer_name = "fc3.weight"

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (40,), hidden: int = 100):
        super().__init__()
        self.fc1 = nn.Linear(check_flat_shape("mnist1d_mlp", input_shape), hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, check_num_classes(num_classes))
        self.init_weights_("glorot")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class MNIST1DCNN(LotteryModel):
    """Three strided 1-D convs and a linear layer, the layout of the MNIST-1D paper's ConvBase.

    ConvBase uses 25 channels (5,210 parameters); the default width 64 (28,298 parameters) leaves
    IMP room to prune past 95 % while the ticket still trains in seconds. Kaiming init (ReLU convs).
    """

    output_layer_name = "fc.weight"

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (40,), width: int = 64):
        super().__init__()
        length = check_flat_shape("mnist1d_cnn", input_shape)  # a (40,) or (1, 40) signal, seen as 1 channel
        self.conv1 = nn.Conv1d(1, width, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        for kernel in (5, 3, 3):
            length = max(0, (length + 2 - kernel) // 2 + 1)
        if length < 1:
            raise LotteryTicketError(f"mnist1d_cnn needs signals of at least 3 samples; got input_shape={input_shape!r}")
        self.fc = nn.Linear(width * length, check_num_classes(num_classes))
        self.init_weights_("kaiming")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], 1, -1)
        x = F.relu(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))
        return self.fc(x.flatten(1))
