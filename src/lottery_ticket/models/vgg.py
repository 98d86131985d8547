"""VGG: the ImageNet networks (Simonyan & Zisserman 2015, shapes as torchvision's reference) and the
CIFAR-10 variants with BatchNorm and one linear layer (as open_lth's cifar_vgg, used by Frankle et al.)."""

from __future__ import annotations

import torch
from torch import nn

from .base import LotteryModel

CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _features(config: list, in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        layers.append(nn.Conv2d(in_channels, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(LotteryModel):
    """ImageNet VGG without BatchNorm: VGG-19 has 143,667,240 parameters at 1,000 classes."""

    def __init__(self, depth: int = 19, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224), dropout: float = 0.5):
        super().__init__()
        self.features = _features(CONFIGS[depth], input_shape[0], batch_norm=False)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        self.init_kaiming_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class CifarVGG(LotteryModel):
    """CIFAR-10 VGG with BatchNorm and one linear layer (512 -> classes): VGG-19 has 20.04M parameters."""

    def __init__(self, depth: int = 19, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
        super().__init__()
        self.features = _features(CONFIGS[depth][:-1], input_shape[0], batch_norm=True)  # last pool -> global pool
        self.fc = nn.Linear(512, num_classes)
        self.init_kaiming_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _vgg(depth):
    class _Depth(VGG):
        def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224)):
            super().__init__(depth, num_classes, input_shape)

    _Depth.__name__ = _Depth.__qualname__ = f"VGG{depth}"
    return _Depth


def _cifar_vgg(depth):
    class _Depth(CifarVGG):
        def __init__(self, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)):
            super().__init__(depth, num_classes, input_shape)

    _Depth.__name__ = _Depth.__qualname__ = f"CifarVGG{depth}"
    return _Depth


VGG11, VGG13, VGG16, VGG19 = (_vgg(d) for d in (11, 13, 16, 19))
CifarVGG16, CifarVGG19 = (_cifar_vgg(d) for d in (16, 19))
