"""Your own model, data and loss that fail in the ways tests/test_reliability_three.py checks are caught on one
real batch before a run folder is written."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


def raising_model(**kwargs):
    raise ValueError("no such width")


def meta_model(**kwargs):
    with torch.device("meta"):
        return nn.Sequential(nn.Linear(40, 10))


def raising_data():
    raise RuntimeError("the bucket is gone")


def empty_data():
    empty = DataLoader(TensorDataset(torch.zeros(0, 40), torch.zeros(0, dtype=torch.long)), batch_size=8)
    return {"train": empty, "test": empty}


def labels_out_of_range():
    x, y = torch.randn(32, 40), torch.arange(32) % 13  # 13 labels for a 10-class model
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    return {"train": loader, "test": loader}


def raising_loss(outputs, targets):
    return 1 / 0


def per_example_loss(outputs, targets):
    return F.cross_entropy(outputs, targets, reduction="none")


def nan_loss(outputs, targets):
    return F.cross_entropy(outputs, targets) * float("nan")


def test_split_does_not_fit():
    """Training batches of 40 features, test batches of 7: found at the first evaluation, after config.json."""
    train = DataLoader(TensorDataset(torch.randn(32, 40), torch.arange(32) % 10), batch_size=16)
    test = DataLoader(TensorDataset(torch.randn(32, 7), torch.arange(32) % 10), batch_size=16)
    return {"train": train, "val": train, "test": test}


def no_val_split():
    loader = DataLoader(TensorDataset(torch.randn(32, 40), torch.arange(32) % 10), batch_size=16)
    return {"train": loader, "test": loader}


CALLS = {"loss": 0}


def nan_after_30_calls(outputs, targets):
    """A loss that turns NaN once the dense level (20 steps) is done: level 1 diverges after a record exists."""
    CALLS["loss"] += 1
    return F.cross_entropy(outputs, targets) * (float("nan") if CALLS["loss"] > 30 else 1.0)
