"""The Trainer's contract in detail: what its arguments reach (loader sharding, dropped last batch, your own
loaders, epoch budgets), resume taking precedence over a rewind's start, errors of the first step only, the keys
under which callback states are checkpointed, and bf16 autocast on the CPU."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lottery_ticket import LotteryTicketError
from lottery_ticket.config import TrainConfig
from lottery_ticket.training import Trainer
from lottery_ticket.training.callbacks import Callback
from lottery_ticket.training.checkpoint import load_checkpoint
from lottery_ticket.training.optim import build_optimizer


def mlp(seed=0):
    from lottery_ticket.models import build_model

    return build_model("mnist1d_mlp", seed=seed)


def config(**kw):
    base = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 100, "budget": "20it", "eval_every": None}
    base.update(kw)
    return TrainConfig(**base)


def rows(x: torch.Tensor) -> list:
    return sorted(map(tuple, x.tolist()))


def own_loaders(n=60, batch=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g)
    return {"train": DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True),
            "test": DataLoader(TensorDataset(x, y), batch_size=batch)}


class Stop(Exception):
    pass


def crash_at(step):
    def on_step(iteration, model):
        if iteration == step:
            raise Stop
    return on_step


# ---- what the constructor hands the loader ------------------------------------------------------------------------
def test_each_rank_takes_half_of_every_global_batch(mnist1d):
    one = Trainer(config(), mnist1d)
    ranks = [Trainer(config(), mnist1d, rank=r, world_size=2) for r in (0, 1)]
    for t in [one, *ranks]:
        t.loader.set_epoch(0)
    x, _ = next(iter(one.loader))
    (x0, _), (x1, _) = (next(iter(t.loader)) for t in ranks)
    assert x0.shape[0] == x1.shape[0] == 50
    assert rows(torch.cat([x0, x1])) == rows(x)
    assert len(ranks[0].loader) == len(one.loader)


def test_a_batch_size_that_does_not_split_over_the_processes_is_refused(mnist1d):
    with pytest.raises(LotteryTicketError) as excinfo:
        Trainer(config(batch_size=101), mnist1d, world_size=2)
    assert str(excinfo.value) == ("batch_size=101 does not split over 2 processes; use a multiple of 2 (the global "
                                  "batch stays the paper's)")


def test_an_epoch_drops_the_partial_last_batch_and_epoch_budgets_count_in_steps(mnist1d):
    n = len(mnist1d.train.y)
    batch = next(b for b in range(7, 50) if n % b)
    trainer = Trainer(config(batch_size=batch, budget="1ep", eval_every="1ep"), mnist1d)
    assert trainer.steps_per_epoch == n // batch
    metrics = trainer.train(mlp())
    assert metrics["iterations"] == n // batch
    assert [h["iteration"] for h in metrics["history"]] == [0, n // batch]


def test_augment_reaches_the_in_memory_loader(mnist1d):
    assert Trainer(config(augment=True), mnist1d).loader.augment is True
    assert Trainer(config(), mnist1d).loader.augment is False


def test_without_eval_every_nothing_is_evaluated(mnist1d):
    metrics = Trainer(config(), mnist1d).train(mlp())
    assert "history" not in metrics and "early_stop_iteration" not in metrics


def test_defaults_no_progress_bar_no_checkpoint_and_a_step_log_every_100(mnist1d, tmp_path, capfd):
    path = tmp_path / "ckpt"
    metrics = Trainer(config(budget="250it"), mnist1d, checkpoint_path=path).train(mlp())
    assert capfd.readouterr().err == ""
    assert not path.exists() and list(tmp_path.iterdir()) == []
    assert [row["iteration"] for row in metrics["steps"]] == [100, 200]


# ---- your own loaders ----------------------------------------------------------------------------------------------
def test_your_own_loaders_in_a_mapping_train_with_epoch_budgets():
    trainer = Trainer(config(budget="2ep", eval_every="1ep"), own_loaders())
    assert trainer.total_iterations == 12
    metrics = trainer.train(mlp())
    assert metrics["iterations"] == 12
    assert [h["iteration"] for h in metrics["history"]] == [0, 6, 12]


def test_a_mapping_without_a_test_split_is_refused_by_name():
    with pytest.raises(LotteryTicketError) as excinfo:
        Trainer(config(), {"train": own_loaders()["train"]})
    assert str(excinfo.value) == ("the data returned dict, not a mapping with 'train' and 'test' (and optionally "
                                  "'val') iterables of (inputs, targets), e.g. DataLoaders")


def first_batch(trainer):
    trainer.loader.set_epoch(0)
    return next(iter(trainer.loader))[0]


def test_your_loaders_epoch_order_follows_the_data_seed():
    same = [first_batch(Trainer(config(data_seed=3), own_loaders())) for _ in range(2)]
    other = first_batch(Trainer(config(data_seed=4), own_loaders()))
    assert torch.equal(same[0], same[1])
    assert not torch.equal(same[0], other)


# ---- start, resume, adapters ---------------------------------------------------------------------------------------
def test_a_resumed_rewind_continues_from_its_checkpoint_not_from_its_start(mnist1d, tmp_path):
    reference = mlp()
    Trainer(config(budget="40it"), mnist1d).train(reference, start_iteration=15)
    model = mlp()
    trainer = Trainer(config(budget="40it"), mnist1d, checkpoint_path=tmp_path / "ckpt", checkpoint_every=5)
    with pytest.raises(Stop):
        trainer.train(model, on_step=crash_at(30), start_iteration=15)
    resumed = mlp()
    Trainer(config(budget="40it"), mnist1d, checkpoint_path=tmp_path / "ckpt", checkpoint_every=5).train(
        resumed, start_iteration=15)
    assert torch.equal(resumed.fc1.weight, reference.fc1.weight)


def test_resuming_a_finished_training_takes_no_step(mnist1d, tmp_path):
    first = mlp()
    Trainer(config(), mnist1d, checkpoint_path=tmp_path / "ckpt", checkpoint_every=10).train(first)
    again = mlp(seed=1)
    metrics = Trainer(config(), mnist1d, checkpoint_path=tmp_path / "ckpt", checkpoint_every=10).train(again)
    assert metrics["iterations"] == 20
    assert torch.equal(again.fc1.weight, first.fc1.weight)


@pytest.mark.parametrize("start", [True, -1, 20, 2.5])
def test_a_start_iteration_outside_the_budget_is_refused(mnist1d, start):
    with pytest.raises(LotteryTicketError) as excinfo:
        Trainer(config(), mnist1d).train(mlp(), start_iteration=start)
    assert str(excinfo.value) == f"start_iteration={start!r} must be an integer in [0, 20)"


def test_the_last_start_iteration_trains_one_step(mnist1d):
    assert Trainer(config(), mnist1d).train(mlp(), start_iteration=19)["iterations"] == 20


def test_the_train_fn_adapter_passes_the_start_iteration(mnist1d):
    direct, adapted = mlp(), mlp()
    Trainer(config(), mnist1d).train(direct, start_iteration=12)
    Trainer(config(), mnist1d).as_train_fn()(adapted, None, start_iteration=12)
    assert torch.equal(direct.fc1.weight, adapted.fc1.weight)
    untouched = mlp()
    assert not torch.equal(direct.fc1.weight, untouched.fc1.weight)


def test_the_eval_fn_adapter_evaluates_the_model_it_is_given_on_the_test_split(mnist1d):
    trainer = Trainer(config(), mnist1d)
    trainer.train(mlp())
    other = mlp(seed=5)
    assert trainer.as_eval_fn()(other) == trainer.evaluate("test", other)
    assert trainer.as_eval_fn()(other) != trainer.evaluate("test")
    assert trainer.as_eval_fn("val")(other) == trainer.evaluate("val", other)


# ---- errors of the first step only ---------------------------------------------------------------------------------
def test_a_first_batch_that_does_not_fit_gets_one_line_naming_the_shapes(mnist1d):
    model = nn.Sequential(nn.Linear(41, 10))
    try:
        model(torch.zeros(100, 40))
    except RuntimeError as exc:
        torch_says = str(exc).splitlines()[0]
    with pytest.raises(LotteryTicketError) as excinfo:
        Trainer(config(), mnist1d).train(model)
    assert str(excinfo.value) == (f"the first training batch (inputs (100, 40), targets (100,)) does not fit the model "
                                  f"or the loss: {torch_says}")


class FailsOnThirdCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(40, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("later failure\nsecond line")
        return self.fc(x)


def test_a_failure_after_the_first_step_is_not_disguised_as_a_data_error(mnist1d):
    with pytest.raises(RuntimeError, match="later failure") as excinfo:
        Trainer(config(), mnist1d).train(FailsOnThirdCall())
    assert not isinstance(excinfo.value, LotteryTicketError)


# ---- callback states in checkpoints --------------------------------------------------------------------------------
class Counter(Callback):
    def __init__(self, every):
        self.every, self.count = every, 0

    def on_train_start(self, trainer):
        self.count = 0

    def on_step(self, trainer, iteration, loss):
        self.count += 1

    def state_dict(self):
        return {"count": self.count}, {}

    def load_state_dict(self, state, tensors):
        self.count = state["count"]


def test_two_callbacks_of_one_class_are_checkpointed_under_numbered_keys_and_restored(mnist1d, tmp_path):
    path = tmp_path / "ckpt"
    counters = [Counter(1), Counter(2)]
    with pytest.raises(Stop):
        Trainer(config(), mnist1d, checkpoint_path=path, checkpoint_every=10, callbacks=counters).train(
            mlp(), on_step=crash_at(15))
    model = mlp()
    meta = load_checkpoint(path, model, build_optimizer(config(), model, list(model.parameters())))
    assert {k for k in meta["extra"]["callbacks"] if k.startswith("Counter")} == {"Counter.1", "Counter.2"}
    assert meta["extra"]["callbacks"]["Counter.2"] == {"count": 5}
    resumed = [Counter(1), Counter(2)]
    Trainer(config(), mnist1d, checkpoint_path=path, checkpoint_every=10, callbacks=resumed).train(mlp())
    assert [c.count for c in resumed] == [20, 10]


# ---- bf16 on the CPU -----------------------------------------------------------------------------------------------
def test_amp_bf16_runs_the_forward_in_bfloat16_on_the_cpu(mnist1d):
    model = mlp()
    dtypes = []
    model.fc1.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    Trainer(config(amp="bf16", budget="2it"), mnist1d).train(model)
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    assert model.fc1.weight.dtype == torch.float32


def test_without_amp_the_forward_stays_float32(mnist1d):
    model = mlp()
    dtypes = []
    model.fc1.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    Trainer(config(budget="2it"), mnist1d).train(model)
    assert dtypes == [torch.float32, torch.float32]
