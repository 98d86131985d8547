"""LeNet-300-100 and LeNet-5: the MNIST networks (Frankle & Carbin 2019, Table 1 / Figure 2 and §2)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import LotteryModel, check_flat_shape, check_image_shape, check_num_classes


class LeNet300(LotteryModel):
    """Fully connected 784-300-100-10: 266,610 parameters, 266,200 of them prunable weights, on MNIST.

    Any input_shape works (it is flattened), so the same class serves MNIST, Fashion-MNIST and CIFAR-10.
    init="glorot" is the paper's (Glorot normal, zero biases); init="kaiming" is open_lth's choice for
    mnist_lenet_300_100.
    """

    output_layer_name = "fc3.weight"

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28),
                 hidden: tuple[int, int] = (300, 100), init: str = "glorot"):
        super().__init__()
        features = check_flat_shape("lenet300", input_shape)
        self.fc1 = nn.Linear(features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], check_num_classes(num_classes))
        self.init_weights_(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(LotteryModel):
    """Conv 6 (5x5, pad 2) - pool - conv 16 (5x5) - pool - FC 120-84-10: 61,706 parameters on 1x28x28.

    padding=2 on conv1 makes a 28x28 MNIST digit behave like LeCun's 32x32 input.
    """

    output_layer_name = "fc3.weight"

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28)):
        super().__init__()
        # conv2 (5x5, unpadded) and the second pool need a 6x6 map after the first pool: inputs of 12x12 or more.
        channels, height, width = check_image_shape("lenet5", input_shape, min_side=12)
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * ((height // 2 - 4) // 2) * ((width // 2 - 4) // 2), 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, check_num_classes(num_classes))
        self.init_weights_("glorot")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))
