"""Your-own-code fixtures for tests/test_metrics.py: a tiny next-token model over a synthetic sequence, fed as
(inputs, targets) tuples or as dicts, returning a tensor or a dict / ModelOutput-like mapping with its own loss."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

VOCAB, CONTEXT = 12, 8


def sequences(n: int, seed: int) -> torch.Tensor:
    """Counting sequences mod VOCAB with a random start and the odd random token: learnable, not trivial."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, VOCAB, (n, 1), generator=g)
    seq = (start + torch.arange(CONTEXT + 1)) % VOCAB
    noise = torch.rand(n, CONTEXT + 1, generator=g) < 0.1
    return torch.where(noise, torch.randint(0, VOCAB, (n, CONTEXT + 1), generator=g), seq)


class NextToken(nn.Module):
    """Embedding -> Linear -> vocabulary scores per position: [batch, tokens, vocabulary]."""

    def __init__(self, width: int = 16, as_dict: bool = False):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, VOCAB)
        self.as_dict = as_dict

    def forward(self, input_ids, labels=None):
        logits = self.out(torch.relu(self.hidden(self.embed(input_ids))))
        if not self.as_dict:
            return logits
        out = {"logits": logits}
        if labels is not None:  # as a Hugging Face model computes its own loss when given labels
            out["loss"] = F.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1))
        return out


def build(width: int = 16) -> nn.Module:
    return NextToken(width)


def build_dict(width: int = 16) -> nn.Module:
    return NextToken(width, as_dict=True)


class _Dicts(torch.utils.data.Dataset):
    def __init__(self, seq):
        self.seq = seq

    def __len__(self):
        return len(self.seq)

    def __getitem__(self, i):
        return {"input_ids": self.seq[i, :-1], "labels": self.seq[i, 1:]}


def _loaders(as_dict: bool, batch_size: int = 16):
    parts = {"train": sequences(256, 0), "val": sequences(64, 1), "test": sequences(64, 2)}

    def loader(seq, shuffle):
        dataset = _Dicts(seq) if as_dict else TensorDataset(seq[:, :-1], seq[:, 1:])
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle)

    return {name: loader(seq, name == "train") for name, seq in parts.items()}


def data():
    return _loaders(as_dict=False)


def dict_data():
    return _loaders(as_dict=True)


def top2_hit_rate(logits, targets):
    """A metric of yours: the share of tokens whose target is among the two highest scores."""
    top = logits.topk(2, dim=-1).indices
    return (top == targets.unsqueeze(-1)).any(-1).float().mean()


class MeanTargetScore:
    """A metric as a torchmetrics-style class: update() per batch, compute() at the end."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, logits, targets):
        self.total += float(logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).sum())
        self.count += targets.numel()

    def compute(self):
        return torch.tensor(self.total / self.count)
