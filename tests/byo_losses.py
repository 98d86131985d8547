"""Your-own-code fixtures the CLI imports by path in tests/test_byo.py."""

from torch.nn import functional as F

CALLS = []


def scaled_cross_entropy(outputs, targets):
    CALLS.append(1)
    return 2.0 * F.cross_entropy(outputs, targets)


def not_a_module():
    return "a model factory that returns a string"


def wrong_shape_data():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.randn(64, 7), torch.randint(0, 10, (64,))  # 7 features where the model takes 40
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    return {"train": loader, "test": loader}
