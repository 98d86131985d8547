"""The CIFAR-10 VGG and ResNet of Frankle & Carbin 2019 (Table 1 / Figure 2: "VGG-19" and "Resnet-18"),
laid out as open_lth's `cifar_vgg_N` and `cifar_resnet_N`, with open_lth's parameter names (`layers.0.conv.weight`,
`blocks.3.shortcut.0.weight`, `fc.weight`) so its masks and checkpoints line up name for name.

F&C call the CIFAR ResNet "Resnet-18"; by He et al.'s CIFAR naming (6n+2 layers) it is ResNet-20.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import LotteryModel, check_image_shape, check_num_classes
from .vgg import CONFIGS


class ConvModule(nn.Module):
    """3x3 conv (with bias, as open_lth) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class CifarVGG(LotteryModel):
    """VGG with BatchNorm, four 2x2 pools, global average pool and one linear layer 512 -> classes."""

    output_layer_name = "fc.weight"

    def __init__(self, depth: int, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__()
        # Four pools: a 16x16 input already ends at 1x1 before the global pool.
        channels, _, _ = check_image_shape(f"cifar_vgg{depth}", input_shape, min_side=16)
        layers: list[nn.Module] = []
        for v in CONFIGS[depth][:-1]:  # open_lth's plans drop the last pool; a global average pool replaces it
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers.append(ConvModule(channels, int(v)))
                channels = int(v)
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, check_num_classes(num_classes))
        self.init_weights_("kaiming")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Global pool rather than open_lth's AvgPool2d(2): the same on 32x32, and it also fits other sizes.
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(x), 1), 1))


class CifarVGG16(CifarVGG):
    """13 convs of 64-512 channels with BatchNorm, FC 512-10: 14,728,266 parameters."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__(16, num_classes, input_shape)


class CifarVGG19(CifarVGG):
    """F&C's "VGG-19": 16 convs with BatchNorm, FC 512-10: 20,040,522 parameters (Table 1 says 20.0M)."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__(19, num_classes, input_shape)


class Block(nn.Module):
    """Two 3x3 convs around a residual; a 1x1 conv shortcut where the shape changes (no parameter-free option A)."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool):
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if downsample or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class CifarResNet(LotteryModel):
    """ResNet-(6n+2) for 32x32 images: a 3x3 conv, three stages of n blocks (16, 32, 64 wide), global pool, fc."""

    output_layer_name = "fc.weight"

    def __init__(self, depth: int, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32), width: int = 16):
        super().__init__()
        channels, _, _ = check_image_shape(f"cifar_resnet{depth}", input_shape, min_side=1)
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(channels, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        channels, blocks = width, []
        for stage, stage_width in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                blocks.append(Block(channels, stage_width, downsample=stage > 0 and i == 0))
                channels = stage_width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, check_num_classes(num_classes))
        self.init_weights_("kaiming")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class CifarResNet20(CifarResNet):
    """n=3, F&C's "Resnet-18": 272,474 parameters (Table 1 lists 274K weights; we match open_lth's layout)."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32), width: int = 16):
        super().__init__(20, num_classes, input_shape, width)


class CifarResNet56(CifarResNet):
    """n=9: 855,770 parameters."""

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32), width: int = 16):
        super().__init__(56, num_classes, input_shape, width)
