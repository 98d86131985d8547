"""The lenet300-mnist-openlth preset follows open_lth's protocol: its counts, its init, its data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lottery_ticket import PruningMask
from lottery_ticket.config import ExperimentConfig, TrainConfig
from lottery_ticket.data import load_dataset
from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.experiment.runner import ExperimentRunner
from lottery_ticket.models import LeNet300
from lottery_ticket.presets import PRESETS
from lottery_ticket.pruning import MagnitudePruner, SparseGlobalPruner
from lottery_ticket.pruning.registry import make_pruner
from shared_data import SHARED_DATASETS

MNIST = SHARED_DATASETS


def open_lth_sparse_global(weights: dict[str, np.ndarray], mask: dict[str, np.ndarray], fraction: float,
                           ignore: set[str]) -> dict[str, np.ndarray]:
    """open_lth's pruning/sparse_global.py, restated in numpy as the reference."""
    remaining = np.sum([np.sum(v) for v in mask.values()])
    to_prune = np.ceil(fraction * remaining).astype(int)
    prunable = {k: v for k, v in weights.items() if k not in ignore}
    vector = np.concatenate([v[mask[k] == 1] for k, v in prunable.items()])
    threshold = np.sort(np.abs(vector))[to_prune]
    new = {k: np.where(np.abs(v) > threshold, mask[k], np.zeros_like(v)) for k, v in prunable.items()}
    return {k: new.get(k, mask[k]) for k in mask}


def test_sparse_global_prunes_exactly_what_open_lth_prunes_at_every_level():
    torch.manual_seed(0)
    model = LeNet300(init="open_lth")
    mask = PruningMask(model)
    reference = {k: m.numpy().astype(np.float32) for k, m in mask.items()}
    pruner = make_pruner(PRESETS["lenet300-mnist-openlth"].prune)
    assert isinstance(pruner, SparseGlobalPruner)
    for level in range(1, 9):
        with torch.no_grad():  # "training": new weights each level, pruned ones held at zero as the engine does
            for name, p in model.named_parameters():
                if name in mask.masks:
                    p.copy_(torch.randn_like(p) * mask[name])
        mask = pruner.prune_fraction(model, mask, 0.2)
        weights = {k: p.detach().numpy() for k, p in model.named_parameters() if k in reference}
        reference = open_lth_sparse_global(weights, reference, 0.2, {"fc3.weight"})
        for name, keep in mask.items():
            np.testing.assert_array_equal(keep.numpy(), reference[name] == 1, err_msg=f"level {level} {name}")
    # The issue's figures: after 8 levels open_lth keeps 16.8 % of LeNet-300-100's weights; our rate rule 17.1 %.
    assert round(100 * (1 - mask.sparsity), 1) == 16.8
    ours = PruningMask(model)
    for _ in range(8):
        ours = MagnitudePruner(exclude=("fc3.weight",)).prune_fraction(model, ours, 0.2)
    assert round(100 * (1 - ours.sparsity), 1) == 17.1


def test_sparse_global_hand_computed_count_and_strict_threshold():
    model = nn.Sequential(nn.Linear(5, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(1.0, 11.0).view(2, 5))  # magnitudes 1..10, prunable
        model[1].weight.copy_(torch.tensor([[0.5, 0.25]]))  # ignored, yet counted
    mask = PruningMask(model)
    new = SparseGlobalPruner(exclude=("1.weight",)).prune_fraction(model, mask, 0.25)
    # 12 survivors in all -> ceil(0.25 * 12) = 3; sorted prunable magnitudes [1..10][3] = 4; keep > 4: 1, 2, 3, 4 go.
    assert new["0.weight"].flatten().tolist() == [False] * 4 + [True] * 6
    assert new["1.weight"].all()
    assert mask["0.weight"].all()  # the input mask is untouched


def test_sparse_global_refuses_a_rate_that_takes_every_survivor():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Linear(1, 8, bias=False))
    with pytest.raises(LotteryTicketError, match="not fewer than the 2 prunable survivors"):
        SparseGlobalPruner(exclude=("1.weight",)).prune_fraction(model, PruningMask(model), 0.3)


def test_open_lth_init_draws_what_open_lth_draws_and_keeps_default_biases():
    class OpenLTHLeNet(nn.Module):  # open_lth models/mnist_lenet.py: fc_layers then fc, then apply(initializer)
        def __init__(self):
            super().__init__()
            self.fc_layers = nn.ModuleList([nn.Linear(784, 300), nn.Linear(300, 100)])
            self.fc = nn.Linear(100, 10)
            self.apply(lambda m: nn.init.kaiming_normal_(m.weight) if isinstance(m, nn.Linear) else None)

    torch.manual_seed(7)
    theirs = list(OpenLTHLeNet().parameters())
    torch.manual_seed(7)
    ours = list(LeNet300(init="open_lth").parameters())
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert all(bool(p.abs().sum() > 0) for n, p in LeNet300(init="open_lth").named_parameters() if n.endswith("bias"))
    assert all(bool(p.abs().sum() == 0) for n, p in LeNet300(init="kaiming").named_parameters() if n.endswith("bias"))


def test_validation_false_trains_on_every_training_example(tmp_path):
    config = ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d",
                              train=TrainConfig(budget="2it", validation=False))
    full = ExperimentRunner(config, tmp_path / "a", progress=False, log=lambda m: None).data
    held = ExperimentRunner(ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", train=TrainConfig(budget="2it")),
                            tmp_path / "b", progress=False, log=lambda m: None).data
    assert full.val is None and held.val is not None
    assert len(full.train) == len(held.train) + len(held.val)
    assert torch.equal(full.train.x[: len(held.train)], held.train.x)
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(LotteryTicketError, match="validation='no' must be true or false"):
        TrainConfig(validation="no")


def test_openlth_preset_is_open_lth_protocol():
    preset = PRESETS["lenet300-mnist-openlth"]
    assert preset.train.validation is False and preset.model_kwargs == {"init": "open_lth"}
    assert preset.train.budget == f"{40 * math.ceil(60000 / 128)}it"
    assert preset.prune.pruner == "sparse-global" and preset.prune.exclude == ("fc3.weight",)


@pytest.mark.skipif(not (MNIST / "mnist").is_dir(), reason="needs the MNIST files in ../shared/datasets")
def test_openlth_data_is_all_60000_mnist_training_images():
    data = load_dataset("mnist", MNIST, validation=False)
    assert len(data.train) == 60000 and data.val is None and len(data.test) == 10000
