"""What every registry model shares: which weights are prunable, which layer is the output, init, and shape checks."""

from __future__ import annotations

import math
from typing import ClassVar

from torch import nn

from ..errors import LotteryTicketError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
INIT_SCHEMES = ("glorot", "kaiming", "open_lth")


class LotteryModel(nn.Module):
    """A network IMP can prune.

    output_layer_name   canonical name of the output layer's weight: presets prune it at half rate
                        (Frankle & Carbin) or exclude it (open_lth), so it has to be known by name
    init_scheme         "glorot" (the paper's LeNet/Conv nets) or "kaiming" (open_lth's VGG/ResNet);
                        tests check the initialized weights against it
    """

    output_layer_name: ClassVar[str]
    init_scheme: str = "kaiming"

    def prunable_parameter_names(self) -> list[str]:
        """Weights of Linear and Conv layers in registration order; never biases or BatchNorm."""
        return [f"{name}.weight" for name, m in self.named_modules() if isinstance(m, PRUNABLE)]

    def init_weights_(self, scheme: str) -> None:
        if scheme not in INIT_SCHEMES:
            raise LotteryTicketError(f"init={scheme!r} is unknown; choose {' or '.join(INIT_SCHEMES)}")
        self.init_scheme = scheme
        for m in self.modules():
            if isinstance(m, PRUNABLE):
                if scheme == "glorot":
                    nn.init.xavier_normal_(m.weight)
                else:
                    # open_lth's kaiming_normal: torch's default mode fan_in with the ReLU gain sqrt(2).
                    nn.init.kaiming_normal_(m.weight)
                if m.bias is not None and scheme != "open_lth":
                    # open_lth leaves biases at torch's uniform default ("open_lth" keeps them); the paper's
                    # LeNet/Conv code zeroes them.
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                # Frankle & Carbin's VGG/ResNet start BN at (1, 0); open_lth's default draws gamma ~ U(0, 1).
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise LotteryTicketError(f"num_classes={num_classes!r} must be an integer >= 1, e.g. num_classes=10")
    return num_classes


def check_image_shape(model: str, input_shape, min_side: int) -> tuple[int, int, int]:
    """(C, H, W) with H and W at least `min_side`, or a one-line error saying what fits."""
    shape = _int_tuple(model, input_shape)
    if len(shape) != 3 or min(shape) < 1 or shape[1] < min_side or shape[2] < min_side:
        raise LotteryTicketError(
            f"{model} needs input_shape=(channels, height, width) with height and width >= {min_side}; "
            f"got input_shape={input_shape!r}, e.g. pass (3, 32, 32) for CIFAR-10"
        )
    return shape  # type: ignore[return-value]


def check_flat_shape(model: str, input_shape) -> int:
    """Any positive shape; the model flattens it. Returns the number of input features."""
    shape = _int_tuple(model, input_shape)
    if not shape or min(shape) < 1:
        raise LotteryTicketError(f"{model} needs a non-empty input_shape of positive sizes, e.g. (1, 28, 28); got {input_shape!r}")
    return math.prod(shape)


def _int_tuple(model: str, input_shape) -> tuple[int, ...]:
    try:
        values = tuple(input_shape)
    except TypeError:
        values = None
    if values is None or not all(isinstance(d, int) and not isinstance(d, bool) for d in values):
        raise LotteryTicketError(f"{model}: input_shape={input_shape!r} must be a tuple of integers, e.g. (3, 32, 32)")
    return values
