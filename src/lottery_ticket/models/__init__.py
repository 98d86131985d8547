"""The model registry: one plain dict from name to constructor. Registering a model is enough to test it."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LotteryTicketError
from .conv import Conv2, Conv4, Conv6
from .lenet import LeNet5, LeNet300
from .mnist1d import MNIST1DCNN, MNIST1DMLP
from .resnet import CifarResNet20, CifarResNet56, ResNet18, ResNet34, ResNet50, ResNet101
from .vgg import VGG11, VGG13, VGG16, VGG19, CifarVGG16, CifarVGG19

MODELS: dict[str, type[nn.Module]] = {
    "lenet300": LeNet300,
    "lenet5": LeNet5,
    "conv2": Conv2,
    "conv4": Conv4,
    "conv6": Conv6,
    "vgg11": VGG11,
    "vgg13": VGG13,
    "vgg16": VGG16,
    "vgg19": VGG19,
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
    "resnet101": ResNet101,
    "cifar_vgg16": CifarVGG16,
    "cifar_vgg19": CifarVGG19,
    "cifar_resnet20": CifarResNet20,
    "cifar_resnet56": CifarResNet56,
    "mnist1d_mlp": MNIST1DMLP,
    "mnist1d_cnn": MNIST1DCNN,
}


def get_model_class(name: str) -> type[nn.Module]:
    if name not in MODELS:
        raise LotteryTicketError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """A fresh `name` initialized from `seed`, without touching the global RNG's state."""
    cls = get_model_class(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise LotteryTicketError(f"bad arguments for model {name!r}: {exc}") from None


def model_names() -> list[str]:
    return list(MODELS)


__all__ = ["MODELS", "build_model", "get_model_class", "model_names"]
