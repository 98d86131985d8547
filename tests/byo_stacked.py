"""A model of your own with BatchNorm, for the stacked-run tests (tests/test_stacked.py)."""

from torch import nn
from torch.nn import functional as F


class BatchNormNet(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.conv = nn.Conv1d(1, width, 5, stride=2)
        self.bn = nn.BatchNorm1d(width)
        self.fc = nn.Linear(width * 18, 10)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x.reshape(x.shape[0], 1, -1)))).flatten(1))


def build(**kwargs):
    return BatchNormNet(**kwargs)


def with_dropout(**kwargs):
    """A model whose training draws from the global RNG: never stacked."""
    return nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))
