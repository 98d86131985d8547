"""What every registry model shares: which weights are prunable, which layer is the output, and init."""

from __future__ import annotations

from torch import nn

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


class LotteryModel(nn.Module):
    """Prunable = Linear/Conv weights (never biases or BatchNorm); the output layer is the last Linear."""

    def prunable_parameter_names(self) -> list[str]:
        return [f"{name}.weight" for name, m in self.named_modules() if isinstance(m, PRUNABLE)]

    @property
    def output_layer_name(self) -> str:
        return [f"{name}.weight" for name, m in self.named_modules() if isinstance(m, nn.Linear)][-1]

    def init_glorot_(self) -> None:
        """Glorot/Xavier normal weights and zero biases: the paper's init for LeNet and Conv-2/4/6."""
        for m in self.modules():
            if isinstance(m, PRUNABLE):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def init_kaiming_(self) -> None:
        """Kaiming normal weights, zero biases, BatchNorm at (1, 0): as open_lth does for VGG and ResNet."""
        for m in self.modules():
            if isinstance(m, PRUNABLE):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def flat_features(input_shape: tuple[int, ...]) -> int:
    size = 1
    for d in input_shape:
        size *= d
    return size
