"""The model registry: one plain dict from name to class. Registering a model is enough to test it.

    build_model("lenet300", seed=0)                         266,610 parameters, Glorot normal
    build_model("conv4", seed=1, input_shape=(1, 28, 28))   the same class on MNIST
    get_model_class("resnet50")(num_classes=100)

Every class takes `num_classes` and `input_shape`, declares `output_layer_name`, and lists its prunable
weights with `prunable_parameter_names()`. Counts for each model are in docs/models.md.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from ..errors import LotteryTicketError
from .base import LotteryModel
from .cifar import CifarResNet20, CifarResNet56, CifarVGG16, CifarVGG19
from .conv import Conv2, Conv4, Conv6
from .lenet import LeNet5, LeNet300
from .mnist1d import MNIST1DCNN, MNIST1DMLP
from .resnet import ResNet18, ResNet34, ResNet50, ResNet101
from .vgg import VGG11, VGG13, VGG16, VGG19

MODELS: dict[str, type[LotteryModel]] = {
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


def model_names() -> list[str]:
    return list(MODELS)


def get_model_class(name: str) -> type[LotteryModel]:
    if name not in MODELS:
        raise LotteryTicketError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """A fresh `name` initialized from `seed`; the global RNG's state is left as it was.

    The same name, seed and kwargs give bit-identical weights. Building inside `with torch.device("meta"):`
    makes a weightless model, enough to count parameters of the ImageNet networks.
    """
    cls = get_model_class(name)
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise LotteryTicketError(f"model {name!r} takes no argument(s) {unknown}; it accepts {', '.join(accepted)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kwargs)


def build_model_for_data(name: str, seed: int, num_classes: int, input_shape, /, **kwargs) -> nn.Module:
    """build_model with the dataset's `num_classes` and `input_shape` filled in where the caller did not set them
    and the class accepts them (so a registry model sized for CIFAR also serves MNIST). Positional-only: a run's
    model_kwargs may name num_classes or input_shape themselves."""
    accepted = inspect.signature(get_model_class(name)).parameters
    for key, value in (("num_classes", num_classes), ("input_shape", tuple(input_shape))):
        if key in accepted:
            kwargs.setdefault(key, value)
    return build_model(name, seed=seed, **kwargs)


__all__ = ["MODELS", "LotteryModel", "build_model", "build_model_for_data", "get_model_class", "model_names"]
