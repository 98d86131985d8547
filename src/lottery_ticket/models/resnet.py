"""ResNets: ImageNet shapes as torchvision's reference (He et al. 2016) and the CIFAR ResNet-20/56
(16-32-64 channels, 1x1 conv shortcuts as in open_lth, used by Frankle & Carbin's Resnet-18 = ResNet-20)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import LotteryModel


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # stride on the 3x3, as torchvision v1.5
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(LotteryModel):
    """ImageNet ResNet: ResNet-18 11,689,512 / 34: 21,797,672 / 50: 25,557,032 / 101: 44,549,160 parameters."""

    LAYOUTS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
               50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3))}

    def __init__(self, depth: int = 18, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224)):
        super().__init__()
        block, counts = self.LAYOUTS[depth]
        self.conv1 = nn.Conv2d(input_shape[0], 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin, stages = 64, []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), counts)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(cin, num_classes)
        self.init_kaiming_()

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class CifarResNet(LotteryModel):
    """CIFAR ResNet-(6n+2): ResNet-20 has 272,474 parameters."""

    def __init__(self, depth: int = 20, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(input_shape[0], 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        cin, blocks = 16, []
        for i, width in enumerate((16, 32, 64)):
            for j in range(n):
                blocks.append(BasicBlock(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        self.init_kaiming_()

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _depth(base, depth, default_classes, default_shape):
    class _Depth(base):
        def __init__(self, num_classes: int = default_classes, input_shape: tuple[int, ...] = default_shape):
            super().__init__(depth, num_classes, input_shape)

    _Depth.__name__ = _Depth.__qualname__ = f"{base.__name__}{depth}"
    return _Depth


ResNet18, ResNet34, ResNet50, ResNet101 = (_depth(ResNet, d, 1000, (3, 224, 224)) for d in (18, 34, 50, 101))
CifarResNet20, CifarResNet56 = (_depth(CifarResNet, d, 10, (3, 32, 32)) for d in (20, 56))
