"""ImageNet ResNet-18/34/50/101 (He et al. 2016), shaped exactly as torchvision's reference `resnet18` ...
`resnet101` (v1.5: the bottleneck's stride sits on its 3x3 conv), written here without torchvision.

Parameter names follow torchvision too (`layer2.0.downsample.0.weight`, `fc.weight`), so a torchvision
state dict loads with `load_state_dict`. The CIFAR ResNet-20/56 of Frankle & Carbin are in cifar.py.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import LotteryModel, check_image_shape, check_num_classes


def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _downsample(in_channels, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.downsample = _downsample(in_channels, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(LotteryModel):
    """7x7/2 stem, 3x3/2 max-pool, four stages (64, 128, 256, 512 wide), global average pool, fc."""

    output_layer_name = "fc.weight"
    LAYOUTS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
        18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)),
    }

    def __init__(self, depth: int, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224)):
        super().__init__()
        # Every downsampling step is padded, so any side works (the map bottoms out at 1x1).
        channels, _, _ = check_image_shape(f"resnet{depth}", input_shape, min_side=1)
        block, counts = self.LAYOUTS[depth]
        self.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        stages = []
        for stage, (width, n) in enumerate(zip((64, 128, 256, 512), counts)):
            blocks = []
            for i in range(n):
                blocks.append(block(in_channels, width, 2 if (i == 0 and stage > 0) else 1))
                in_channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(in_channels, check_num_classes(num_classes))
        self.init_weights_("kaiming")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ResNet18(ResNet):
    """Basic blocks 2-2-2-2: 11,689,512 parameters at 1,000 classes (torchvision `resnet18`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224)):
        super().__init__(18, num_classes, input_shape)


class ResNet34(ResNet):
    """Basic blocks 3-4-6-3: 21,797,672 parameters at 1,000 classes (torchvision `resnet34`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224)):
        super().__init__(34, num_classes, input_shape)


class ResNet50(ResNet):
    """Bottlenecks 3-4-6-3: 25,557,032 parameters at 1,000 classes (torchvision `resnet50`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224)):
        super().__init__(50, num_classes, input_shape)


class ResNet101(ResNet):
    """Bottlenecks 3-4-23-3: 44,549,160 parameters at 1,000 classes (torchvision `resnet101`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224)):
        super().__init__(101, num_classes, input_shape)
