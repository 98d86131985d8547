"""The Trainer: masked training on real data, schedules, early-stop iteration, exact checkpoint resume."""

import pytest
import torch

from lottery_ticket import MagnitudePruner, PruningMask
from lottery_ticket.config import TrainConfig
from lottery_ticket.training import Trainer
from lottery_ticket.training.optim import lr_multiplier


def mlp(seed=0):
    from lottery_ticket.models import build_model

    return build_model("mnist1d_mlp", seed=seed)


def config(**kw):
    base = dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, batch_size=100, budget="300it", eval_every="100it")
    base.update(kw)
    return TrainConfig(**base)


def test_training_learns_and_keeps_pruned_weights_at_zero(mnist1d):
    model = mlp()
    mask = MagnitudePruner().prune(model, PruningMask(model), 0.8)
    trainer = Trainer(config(), mnist1d)
    before = trainer.evaluate("test", model)["accuracy"]
    metrics = trainer.train(model, mask)
    assert metrics["iterations"] == 300
    assert mask.is_applied(model)
    assert trainer.evaluate("test")["accuracy"] > before + 0.1


def test_early_stop_iteration_is_the_eval_point_with_lowest_validation_loss(mnist1d):
    metrics = Trainer(config(), mnist1d).train(mlp())
    history = metrics["history"]
    assert [h["iteration"] for h in history] == [0, 100, 200, 300]
    best = min(history, key=lambda h: h["val_loss"])
    assert metrics["early_stop_iteration"] == best["iteration"]
    assert metrics["early_stop_test_accuracy"] == best["test_accuracy"]


def test_same_seeds_give_identical_weights_and_a_different_data_seed_does_not(mnist1d):
    a, b, c = mlp(), mlp(), mlp()
    Trainer(config(eval_every=None), mnist1d).train(a)
    Trainer(config(eval_every=None), mnist1d).train(b)
    Trainer(config(eval_every=None, data_seed=1), mnist1d).train(c)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_resuming_from_a_checkpoint_matches_an_uninterrupted_run_exactly(mnist1d, tmp_path):
    reference = mlp()
    ref_metrics = Trainer(config(), mnist1d).train(reference)

    class Stop(Exception):
        pass

    def crash_at_250(iteration, model):
        if iteration == 250:
            raise Stop

    interrupted = mlp()
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Stop):
        Trainer(config(), mnist1d, checkpoint_path=ckpt, checkpoint_every=70).train(interrupted, on_step=crash_at_250)
    resumed = mlp()
    metrics = Trainer(config(), mnist1d, checkpoint_path=ckpt, checkpoint_every=70).train(resumed)
    for p, q in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert metrics["history"] == ref_metrics["history"]


def test_a_corrupt_checkpoint_is_ignored_not_trusted(mnist1d, tmp_path):
    ckpt = tmp_path / "ckpt"
    Trainer(config(budget="100it"), mnist1d, checkpoint_path=ckpt, checkpoint_every=50).train(mlp())
    data = ckpt.with_suffix(".safetensors").read_bytes()
    ckpt.with_suffix(".safetensors").write_bytes(data[: len(data) // 2])
    fresh, reference = mlp(), mlp()
    Trainer(config(budget="100it"), mnist1d, checkpoint_path=ckpt, checkpoint_every=1000).train(fresh)
    Trainer(config(budget="100it"), mnist1d).train(reference)
    assert torch.equal(fresh.fc1.weight, reference.fc1.weight)


def test_warmup_then_step_schedule_multipliers():
    cfg = TrainConfig(lr=0.1, warmup="10it", schedule="step", milestones=("50it", "80it"), gamma=0.1, budget="100it")
    f = lr_multiplier(cfg, 100, 10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(49) == 1.0 and f(50) == pytest.approx(0.1) and f(80) == pytest.approx(0.01)
    assert lr_multiplier(TrainConfig(), 100, 10) is None


def test_cosine_schedule_decays_to_zero():
    f = lr_multiplier(TrainConfig(schedule="cosine", budget="100it"), 100, 10)
    assert f(0) == 1.0 and f(50) == pytest.approx(0.5) and f(100) == pytest.approx(0.0, abs=1e-12)


def test_a_diverging_loss_stops_with_a_clear_error(mnist1d):
    from lottery_ticket import LotteryTicketError

    with pytest.raises(LotteryTicketError, match="diverged"):
        Trainer(config(lr=1e6, momentum=0.0, weight_decay=0.0, eval_every=None, budget="200it"), mnist1d).train(mlp())
