"""Bring your own model, data and loss: import paths on the CLI, DataLoaders in the Trainer, the whole workflow
(find, kill, resume, report) on a model with no registry entry."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from conftest import metrics_without_timing
from lottery_ticket import LotteryTicketError, LotteryTicketFinder, PruningMask, Trainer
from lottery_ticket.cli import main
from lottery_ticket.config import TrainConfig
from lottery_ticket.data import load_dataset
from lottery_ticket.data.loader import InMemoryLoader
from lottery_ticket.data.types import LoaderSplits
from lottery_ticket.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ["--model", "examples.mnist1d_attention:build", "--data", "examples.mnist1d_attention:data"]
SHORT = ["--budget", "100it", "--eval-every", "50it", "--rounds", "2", "--rate", "0.5", "--controls", "reinit", "--quiet"]


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "lottery_ticket", *args]


@pytest.mark.slow
def test_the_example_finds_a_ticket_is_killed_resumes_and_reports_with_no_registry_entry(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    assert subprocess.run(cli("find", *EXAMPLE, *SHORT, "--out", str(reference)), cwd=ROOT, env=env,
                          capture_output=True).returncode == 0
    proc = subprocess.Popen(cli("find", *EXAMPLE, *SHORT, "--checkpoint-every", "20", "--out", str(crashed)), cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(crashed.glob("seed_0/checkpoints/round_01.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Resume from another directory: the run folder recorded where the example's package lives.
    result = subprocess.run(cli("resume", str(crashed), "--quiet"), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert metrics_without_timing(crashed) == metrics_without_timing(reference)
    report = subprocess.run(cli("report", str(crashed)), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert report.returncode == 0 and "examples.mnist1d_attention:build" in report.stdout
    assert (crashed / "plots" / "accuracy_vs_weights.png").is_file()
    config = json.loads((crashed / "config.json").read_text())["experiment"]
    assert config["model"] == "examples.mnist1d_attention:build"


def test_a_dataloader_fed_trainer_reaches_the_in_memory_weights_on_the_same_batches():
    data = load_dataset("mnist1d")
    config = TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="30it")
    fast = InMemoryLoader(data.train, 100, mean=data.mean, std=data.std, shuffle=True, seed=0, drop_last=True)
    fast.set_epoch(0)
    batches = [(x.clone(), y.clone()) for x, y in fast]  # the very batches the in-memory path trains on
    models = []
    for feed in (data, LoaderSplits("list", train=batches, test=batches)):
        torch.manual_seed(0)
        model = MODELS["mnist1d_mlp"]()
        Trainer(config, feed).train(model)
        models.append(model)
    assert all(torch.equal(a, b) for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()))


def test_a_dataloader_epoch_order_is_a_function_of_seed_and_epoch():
    from lottery_ticket.data.loader import EpochLoader

    x, y = torch.arange(20.0).view(20, 1), torch.arange(20)
    orders = []
    for _ in range(2):
        loader = EpochLoader(DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True), seed=3)
        epochs = []
        for epoch in range(2):
            loader.set_epoch(epoch)
            epochs.append(torch.cat([b for _, b in loader]).tolist())
        orders.append(epochs)
    assert orders[0] == orders[1] and orders[0][0] != orders[0][1]


def test_a_loss_of_your_own_is_used(tmp_path):
    out = tmp_path / "run"
    assert main(["find", "--preset", "mnist1d-mlp", "--budget", "30it", "--rounds", "1", "--quiet",
                 "--loss", "tests.byo_losses:scaled_cross_entropy", "--out", str(out)]) == 0
    row = json.loads((out / "seed_0" / "rounds" / "round_00.json").read_text())
    from tests.byo_losses import CALLS

    assert CALLS and row["test_loss"] > 0


@pytest.mark.parametrize("args,message", [
    (["--model", "no_such_pkg.nets:build"], "cannot import 'no_such_pkg.nets'"),
    (["--model", "tests.byo_losses:no_such_thing"], "module 'tests.byo_losses' has no 'no_such_thing'"),
    (["--model", "tests.byo_losses:not_a_module"], "returned a str, not a torch.nn.Module"),
    (["--model", "not a path"], "unknown model"),
    (["--data", "no_such_pkg:loaders"], "cannot import 'no_such_pkg'"),
    (["--loss", "tests.byo_losses:CALLS"], "is a list, not a callable"),
    (["--model", "os:getcwd"], "names a standard-library or code-loading module"),
    (["--model", "subprocess:run"], "names a standard-library or code-loading module"),
    (["--loss", "builtins:eval"], "names a standard-library or code-loading module"),
    (["--model", "torch.hub:load"], "names a standard-library or code-loading module"),
    (["--model", "tests.byo_losses:_private"], "names a private or dunder attribute"),
])
def test_bad_import_paths_are_one_line_before_anything_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["find", "--preset", "mnist1d-mlp", *args, "--budget", "10it", "--rounds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0, err
    assert not out.exists()


def test_a_loader_with_the_wrong_shapes_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["find", "--preset", "mnist1d-mlp", "--data", "tests.byo_losses:wrong_shape_data", "--budget", "10it", "--rounds", "1",
                 "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "do not fit the model" in err or "does not fit the model" in err
    assert err.count("\n") == 0, err


def test_data_that_is_not_a_mapping_of_splits_is_one_line():
    with pytest.raises(LotteryTicketError, match="not a mapping with 'train' and 'test'"):
        Trainer(TrainConfig(budget="1it"), [1, 2, 3])
    with pytest.raises(LotteryTicketError, match="unknown split"):
        LoaderSplits.from_mapping("data", {"train": [], "test": [], "dev": []})


def test_the_finder_trains_your_model_on_your_dataloaders():
    from examples.mnist1d_attention import build, data
    from lottery_ticket import LotteryTicketFinder

    splits = data()
    trainer = Trainer(TrainConfig(optimizer="adam", lr=3e-3, budget="40it"), splits)
    finder = LotteryTicketFinder(build, {}, seed=0)
    _, mask, results = finder.find_winning_ticket(None, trainer.as_train_fn(), trainer.as_eval_fn("test"), 0.5, 1,
                                                  verbose=False)
    assert abs(mask.sparsity - 0.5) < 1e-3 and results["rounds"][1]["accuracy"] > 0.1
    reinit = finder.verify_random_ticket(trainer.as_train_fn(), trainer.as_eval_fn("test"))
    assert 0 <= reinit["accuracy"] <= 1
    assert isinstance(PruningMask(build()), PruningMask)


class TextModel(torch.nn.Module):
    """Embedding -> LSTM -> self-attention -> linear: weights the default selection leaves dense."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(16, 8)
        self.lstm = torch.nn.LSTM(8, 8, batch_first=True)
        self.attention = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, tokens):
        h, _ = self.lstm(self.embed(tokens))
        a, _ = self.attention(h, h, h, need_weights=False)
        return self.head((h + a).mean(1))


def test_the_finder_prunes_the_weights_you_select_and_runs_controls_from_a_model_instance():
    g = torch.Generator().manual_seed(0)
    tokens, labels = torch.randint(0, 16, (64, 6), generator=g), torch.randint(0, 3, (64,), generator=g)

    def train_fn(model, mask):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(tokens), labels).backward()
            optimizer.step()
            mask.apply(model)

    def eval_fn(model):
        with torch.no_grad():
            return float((model(tokens).argmax(1) == labels).float().mean())

    torch.manual_seed(0)
    finder = LotteryTicketFinder(types=(torch.nn.Linear, torch.nn.Embedding, torch.nn.LSTM, torch.nn.MultiheadAttention))
    _, mask, _ = finder.find_winning_ticket(TextModel(), train_fn, eval_fn, 0.5, 1, verbose=False)
    for name in ("embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "attention.in_proj_weight", "head.weight"):
        assert name in mask.names
    assert abs(mask.sparsity - 0.5) < 1e-3
    reinit = finder.verify_random_ticket(train_fn, eval_fn)  # no model_class: a fresh copy, reset under the seed
    assert reinit["init_seed"] == 10_000 and 0 <= reinit["accuracy"] <= 1
    fresh = finder._imp.trainable.build_model(10_000)
    for name, tensor in fresh.state_dict().items():  # every weight re-drawn, attention's in_proj included
        if name.endswith("weight") or name.endswith("in_proj_weight"):
            assert not torch.equal(tensor, finder.initial_state[name]), name
