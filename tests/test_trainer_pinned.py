"""The Trainer's contract in detail: what its arguments reach (loader sharding, dropped last batch, your own
loaders, epoch budgets), resume taking precedence over a rewind's start, errors of the first step only, the keys
under which callback states are checkpointed, bf16 autocast on the CPU; the loss by import path, the divergence
guard's step, the progress bar and checkpoints of rank 0 only, the LR schedule over the trainer's budget, and what
_prepare builds: the enforcer, channels_last, torch.compile's wrapper and DDP (on a one-process gloo group)."""

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


# ---- the loss, the divergence guard, the progress bar, the final metrics -------------------------------------------
def test_a_loss_given_as_an_import_path_is_the_function_it_names():
    from lottery_ticket.training.trainer import resolve_loss

    assert resolve_loss("torch.nn.functional:mse_loss") is torch.nn.functional.mse_loss
    with pytest.raises(LotteryTicketError, match=r"^loss 'torch.nn.functional:no_such_loss': module"):
        resolve_loss("torch.nn.functional:no_such_loss")


def test_on_the_cpu_a_nan_loss_stops_training_on_the_step_it_appears(mnist1d):
    def poison_after_step_2(iteration, model):
        if iteration == 2:
            with torch.no_grad():
                model.fc1.weight.fill_(float("nan"))

    with pytest.raises(LotteryTicketError, match=r"training diverged: loss is nan at iteration 3;"):
        Trainer(config(), mnist1d).train(mlp(), on_step=poison_after_step_2)


def test_the_progress_bar_counts_to_the_budget_on_rank_0(mnist1d, capfd):
    Trainer(config(budget="3it"), mnist1d, progress=True).train(mlp())
    assert "0/3" in capfd.readouterr().err


def test_the_final_train_loss_is_the_last_steps_loss(mnist1d):
    class LastLoss(Callback):
        every = 1

        def on_step(self, trainer, iteration, loss):
            self.loss = loss

    last = LastLoss()
    metrics = Trainer(config(budget="7it"), mnist1d, callbacks=[last]).train(mlp())
    assert metrics["final_train_loss"] == last.loss and last.loss > 0


def test_checkpoint_every_without_a_checkpoint_path_writes_nothing(mnist1d, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metrics = Trainer(config(budget="4it"), mnist1d, checkpoint_every=2).train(mlp())
    assert metrics["iterations"] == 4 and list(tmp_path.iterdir()) == []


# ---- the LR schedule as the trainer applies it ----------------------------------------------------------------------
def lrs_by_iteration(trainer):
    seen = {}

    def on_step(iteration, model):
        seen[iteration] = trainer.optimizer.param_groups[0]["lr"]  # the LR the next step will use
    return seen, on_step


def test_the_cosine_schedule_decays_over_the_trainers_budget(mnist1d):
    import math

    trainer = Trainer(config(schedule="cosine", budget="20it"), mnist1d)
    seen, on_step = lrs_by_iteration(trainer)
    trainer.train(mlp(), on_step=on_step)
    assert [seen[i] for i in range(1, 21)] == pytest.approx([0.05 * 0.5 * (1 + math.cos(math.pi * i / 20))
                                                             for i in range(1, 21)], abs=1e-12)


def test_a_milestone_in_epochs_counts_the_trainers_steps_per_epoch(mnist1d):
    trainer = Trainer(config(schedule="step", milestones=("1ep",), gamma=0.1, budget="40it"), mnist1d)
    assert trainer.steps_per_epoch == 35  # 3,500 training examples, batches of 100
    seen, on_step = lrs_by_iteration(trainer)
    trainer.train(mlp(), on_step=on_step)
    assert seen[34] == 0.05 and seen[35] == pytest.approx(0.005, abs=1e-15) and seen[40] == pytest.approx(0.005, abs=1e-15)


# ---- what _prepare builds: the enforcer, channels_last, torch.compile, DDP ------------------------------------------
def pruned(model, fraction=0.9):
    from lottery_ticket import MagnitudePruner, PruningMask

    return MagnitudePruner().prune(model, PruningMask(model), fraction)


def test_the_enforcer_skips_the_weight_pass_for_the_trainers_fresh_sgd(mnist1d):
    model = mlp()
    trainer = Trainer(config(budget="2it", sparse_training="off"), mnist1d)
    trainer.train(model, pruned(model))
    assert trainer.enforcer.weight_pass_free_for is trainer.optimizer


def test_layers_trained_through_their_survivors_are_left_to_them_by_the_enforcer(mnist1d):
    model = mlp()
    trainer = Trainer(config(budget="2it", sparse_training="on"), mnist1d)
    trainer.train(model, pruned(model))
    assert sorted(trainer.sparse.layers) == ["fc1", "fc2", "fc3"]
    assert trainer.enforcer.params == []  # every pruned layer is sparse: nothing for the dense enforcer


def test_a_bare_linear_model_trained_sparse_is_left_to_its_survivors_too():
    from lottery_ticket import PruningMask

    model = nn.Linear(40, 10)
    mask = PruningMask(model)
    mask.masks["weight"][:, ::2] = False
    trainer = Trainer(config(budget="2it", sparse_training="on", batch_size=10), own_loaders())
    trainer.train(model, mask)
    assert list(trainer.sparse.layers) == [""] and trainer.enforcer.params == []
    assert not model.weight[:, ::2].any()


def test_channels_last_trains_a_conv_net_in_channels_last_format():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, 8, 8, generator=g), torch.randint(0, 4, (40,), generator=g)
    data = {"train": DataLoader(TensorDataset(x, y), batch_size=10), "test": DataLoader(TensorDataset(x, y), batch_size=10)}
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 4))
    before = model[0].weight.detach().clone()
    Trainer(config(budget="2it", channels_last=True, batch_size=10), data).train(model)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not model[0].weight.is_contiguous() and not torch.equal(model[0].weight, before)


def test_compile_routes_every_training_forward_through_torch_compile_and_keeps_the_dense_step(mnist1d, monkeypatch):
    compiled = []

    class Compiled:  # stands in for torch.compile's wrapper, which takes half a minute to build on this CPU
        def __init__(self, fn):
            self.fn, self.calls = fn, 0
            compiled.append(self)

        def __call__(self, x):
            self.calls += 1
            return self.fn(x)

    monkeypatch.setattr(torch, "compile", Compiled)
    model = mlp()
    trainer = Trainer(config(budget="3it", compile=True, sparse_training="on"), mnist1d)
    trainer.train(model, pruned(model))
    assert len(compiled) == 1 and compiled[0].fn is model and compiled[0].calls == 3
    assert not trainer.sparse.layers  # sparse layers would bypass the compiled graph


def test_bf16_autocast_keeps_the_dense_step(mnist1d):
    model = mlp()
    trainer = Trainer(config(budget="2it", amp="bf16", sparse_training="on"), mnist1d)
    trainer.train(model, pruned(model))
    assert not trainer.sparse.layers


@pytest.fixture
def one_process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_with_several_processes_the_forward_is_ddp_and_only_rank_0_checkpoints(mnist1d, tmp_path, one_process_group,
                                                                              capfd):
    from torch.nn.parallel import DistributedDataParallel

    for rank in (0, 1):
        model = mlp()
        trainer = Trainer(config(budget="4it", sparse_training="on"), mnist1d, rank=rank, world_size=2, progress=True,
                          checkpoint_path=tmp_path / f"rank{rank}", checkpoint_every=2)
        trainer.train(model, pruned(model))
        assert isinstance(trainer.forward, DistributedDataParallel) and trainer.forward.module is model
        assert not trainer.sparse.layers  # sparse layers would bypass DDP's gradient hooks
        err = capfd.readouterr().err
        assert ("0/4" in err) == (rank == 0)  # one progress bar, from rank 0
    assert sorted(p.name for p in tmp_path.glob("rank*")) == ["rank0.json", "rank0.safetensors"]


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(mnist1d, tmp_path):
    from lottery_ticket.training.checkpoint import save_checkpoint

    path = tmp_path / "ckpt"
    reference = Trainer(config(), mnist1d).train(mlp())
    with pytest.raises(Stop):
        Trainer(config(), mnist1d, checkpoint_path=path, checkpoint_every=5).train(mlp(), on_step=crash_at(7))
    model = mlp()
    optimizer = build_optimizer(config(), model)
    meta = load_checkpoint(path, model, optimizer)
    meta["extra"]["cuda_rng"] = [0] * 16  # what a CUDA run adds: its generator's state, meaningless on the CPU
    save_checkpoint(path, model, optimizer, meta["iteration"], meta["extra"], extra_tensors=meta.get("extra_tensors"))
    resumed = Trainer(config(), mnist1d, checkpoint_path=path, checkpoint_every=5).train(mlp())
    assert resumed["iterations"] == 20 and resumed["final_train_loss"] == reference["final_train_loss"]
