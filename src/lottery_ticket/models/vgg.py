"""ImageNet VGG-11/13/16/19 (Simonyan & Zisserman 2015) without BatchNorm, shaped exactly as torchvision's
reference `vgg11` ... `vgg19` (same layer names, same parameter counts), written here without torchvision.

The CIFAR-10 VGGs of Frankle & Carbin (BatchNorm, one linear layer) are in cifar.py.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import LotteryModel, check_image_shape, check_num_classes

# Output channels of each 3x3 conv; "M" is a 2x2 max-pool (configurations A, B, D, E of the VGG paper).
CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vgg_features(config: list[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    """Conv(-BN)-ReLU stacks and pools; indices inside the Sequential match torchvision's `features`."""
    layers: list[nn.Module] = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        layers.append(nn.Conv2d(in_channels, int(v), 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(LotteryModel):
    """features -> AdaptiveAvgPool 7x7 -> classifier 25088-4096-4096-classes with dropout 0.5."""

    output_layer_name = "classifier.6.weight"

    def __init__(self, depth: int, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224), dropout: float = 0.5):
        super().__init__()
        # Five 2x2 pools: anything smaller than 32x32 is pooled away before the classifier.
        channels, _, _ = check_image_shape(f"vgg{depth}", input_shape, min_side=32)
        self.features = vgg_features(CONFIGS[depth], channels, batch_norm=False)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, check_num_classes(num_classes)),
        )
        self.init_weights_("kaiming")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class VGG11(VGG):
    """Configuration A: 132,863,336 parameters at 1,000 classes (torchvision `vgg11`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224), dropout: float = 0.5):
        super().__init__(11, num_classes, input_shape, dropout)


class VGG13(VGG):
    """Configuration B: 133,047,848 parameters at 1,000 classes (torchvision `vgg13`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224), dropout: float = 0.5):
        super().__init__(13, num_classes, input_shape, dropout)


class VGG16(VGG):
    """Configuration D: 138,357,544 parameters at 1,000 classes (torchvision `vgg16`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224), dropout: float = 0.5):
        super().__init__(16, num_classes, input_shape, dropout)


class VGG19(VGG):
    """Configuration E: 143,667,240 parameters at 1,000 classes (torchvision `vgg19`)."""

    def __init__(self, num_classes: int = 1000, input_shape: tuple[int, ...] = (3, 224, 224), dropout: float = 0.5):
        super().__init__(19, num_classes, input_shape, dropout)
