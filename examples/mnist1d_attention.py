"""Your own model and data through the whole workflow: a Conv1d + self-attention network on MNIST-1D, fed by
torch DataLoaders, with no entry in lottery_ticket's registries.

    lottery-ticket find --model examples.mnist1d_attention:build --data examples.mnist1d_attention:data \\
        --budget 1500it --eval-every 500it --rounds 3 --rate 0.5 --controls reinit --out runs/attention
    lottery-ticket resume runs/attention      # after a crash: the run folder records both import paths
    lottery-ticket report runs/attention

Run from the repository root (or put this folder on PYTHONPATH) so `examples.mnist1d_attention` imports.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class ConvAttention(nn.Module):
    """Conv1d features, one multi-head self-attention layer over the 40 positions, mean-pool, linear head."""

    def __init__(self, width: int = 32, heads: int = 4, classes: int = 10):
        super().__init__()
        self.conv = nn.Conv1d(1, width, kernel_size=5, padding=2)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x.unsqueeze(1))).transpose(1, 2)  # [batch, 40 positions, width]
        attended, _ = self.attention(h, h, h, need_weights=False)
        return self.head((h + attended).mean(dim=1))


def build(width: int = 32, heads: int = 4) -> nn.Module:
    return ConvAttention(width, heads)


def data(batch_size: int = 100) -> dict[str, DataLoader]:
    """MNIST-1D (generated offline), normalized, as DataLoaders: the shape any torch user already has."""
    from lottery_ticket.data import load_dataset

    splits = load_dataset("mnist1d")
    mean, std = splits.mean[0], splits.std[0]

    def loader(part, shuffle: bool) -> DataLoader:
        x = (part.x.float() - mean) / std
        return DataLoader(TensorDataset(x, part.y), batch_size=batch_size, shuffle=shuffle, drop_last=shuffle)

    return {"train": loader(splits.train, True), "val": loader(splits.val, False), "test": loader(splits.test, False)}
