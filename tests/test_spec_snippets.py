"""The spec's API snippets, written as the spec writes them (with `lottery_ticket` in place of `src.`)."""

import pytest
import torch
from torch import nn

from lottery_ticket import LotteryTicketError, LotteryTicketFinder, MagnitudePruner, PruningMask
from lottery_ticket.models import LeNet300
from lottery_ticket.structured_sparsity import Structured24Pruner


@pytest.fixture
def fns():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 1, 28, 28, generator=g), torch.randint(0, 10, (128,), generator=g)

    def train_fn(model, mask):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)  # built inside, from the model it is given
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            mask.apply(model)

    def eval_fn(model):
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())

    return train_fn, eval_fn


def test_the_spec_workflow_as_written(tmp_path, fns):
    train_fn, eval_fn = fns
    finder = LotteryTicketFinder(model_class=LeNet300, model_kwargs={"num_classes": 10}, device="cpu")
    model, mask, results = finder.find_winning_ticket(model=LeNet300(num_classes=10), train_fn=train_fn,
                                                      eval_fn=eval_fn, target_sparsity=0.9, pruning_rounds=2,
                                                      verbose=False)
    random_acc = finder.verify_random_ticket(train_fn, eval_fn)
    assert f"{random_acc:.2%}".endswith("%") and float(random_acc) == random_acc["accuracy"]
    finder.save_experiment(str(tmp_path / "experiment"), results)
    assert finder.load_experiment(str(tmp_path / "experiment"))["rounds"] == results["rounds"]

    mask = PruningMask(model)
    mask.apply(model)
    assert 0.0 <= mask.sparsity < 1 and set(mask.layer_sparsities) == set(mask.names)
    ticket = MagnitudePruner(global_pruning=True).prune(model, mask, target_sparsity=0.5)
    ticket.save(str(tmp_path / "mask.safetensors"))
    mask.load(str(tmp_path / "mask.safetensors"))  # on the instance: loads into it
    assert mask == ticket

    pruner = Structured24Pruner()
    pruned = pruner.prune_model(model)
    pruned.apply(model)
    assert pruner.verify_24_pattern(model.fc1.weight)


def test_an_optimizer_built_outside_train_fn_is_caught_not_a_silently_untrained_control(fns):
    _, eval_fn = fns
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    first = LeNet300(num_classes=10)
    optimizer = torch.optim.SGD(first.parameters(), lr=0.05)  # the spec's style: one optimizer, outside

    def train_fn(model, mask):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        mask.apply(model)

    finder = LotteryTicketFinder(LeNet300, {"num_classes": 10})
    with pytest.raises(LotteryTicketError, match="build the optimizer inside train_fn"):
        finder.find_winning_ticket(first, train_fn, eval_fn, 0.5, 1, verbose=False)


def test_an_unavailable_device_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(LotteryTicketError, match="no usable CUDA GPU"):
        LotteryTicketFinder(LeNet300, {}, device="cuda")


def test_version_license_and_citation():
    import subprocess
    import sys
    from pathlib import Path

    import lottery_ticket

    out = subprocess.run([sys.executable, "-m", "lottery_ticket", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"lottery-ticket {lottery_ticket.__version__}"
    root = Path(__file__).resolve().parents[1]
    assert "MIT License" in (root / "LICENSE").read_text()
    assert "arXiv:1803.03635" in (root / "CITATION.cff").read_text()
    ignored = subprocess.run(["git", "check-ignore", "-q", "docs/runs/x"], cwd=root, capture_output=True)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 1  # docs/runs/ is tracked; only the top-level runs/ is ignored


def test_the_command_line_answers_help_without_importing_torch():
    import subprocess
    import sys

    code = "import sys, lottery_ticket.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_plot_ticks_are_the_runs_own_levels():
    from lottery_ticket.experiment.report import level_ticks

    assert level_ticks([100.0, 50.0, 25.0, 12.5]) == ([100.0, 50.0, 25.0, 12.5], ["100", "50", "25", "12.5"])
    ticks, labels = level_ticks([100 * 0.7 ** r for r in range(30)])
    assert len(ticks) <= 12 and ticks[0] == 100.0


def test_provenance_is_the_librarys_own_checkout(tmp_path, monkeypatch):
    from lottery_ticket.experiment import provenance

    monkeypatch.chdir(tmp_path)  # the current directory's repository (none here) must not matter
    commit = provenance.git_commit()
    assert commit is None or len(commit) == 40
