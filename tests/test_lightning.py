"""IMP inside PyTorch Lightning (issue 26, item 1): each level and control a Trainer.fit of the user's module.

Real Lightning fits of a small LightningModule on MNIST-1D (tests/lit_fixtures.py): the mask callback keeps pruned
weights exactly zero under momentum and weight decay, a run writes the same folder `find` writes (records, masks,
report, compare, resume), a SIGKILL then `resume` ends bit-identical to an uninterrupted run, and every setting
the framework cannot honour is one line before anything is written.
"""

import json
import shutil
import sys
from pathlib import Path

import pytest

pl = pytest.importorskip("lightning.pytorch")

import torch  # noqa: E402

from lottery_ticket import PruningMask  # noqa: E402
from lottery_ticket.cli import main  # noqa: E402
from lottery_ticket.errors import LotteryTicketError  # noqa: E402
from lottery_ticket.integrations.lightning import find, mask_callback  # noqa: E402
from lottery_ticket.io import load_tensors  # noqa: E402
from kill_helpers import fingerprint, kill_after_first_level_then_resume  # noqa: E402
from lit_fixtures import MNIST1D, Classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODULE, DATA = "tests.lit_fixtures:make_module", "tests.lit_fixtures:make_datamodule"
FIND = ["find", "--framework", "lightning", "--model", MODULE, "--dataset", DATA, "--metric", "test_acc",
        "--budget", "60it", "--rounds", "2", "--controls", "reinit", "--seeds", "0,1", "--quiet"]


def quiet_trainer(**kwargs):
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kwargs)


def test_the_mask_callback_keeps_pruned_weights_exactly_zero_under_momentum_and_weight_decay():
    torch.manual_seed(0)
    module = Classifier(momentum=0.9, weight_decay=0.05, lr=0.1)
    mask = PruningMask(module)
    for name, keep in mask.masks.items():
        keep[torch.rand(keep.shape) < 0.5] = False
    seen = []
    trainer = quiet_trainer(max_steps=25, callbacks=[mask_callback(mask, lambda step, m: seen.append(step))])
    trainer.fit(module, datamodule=MNIST1D())
    params = dict(module.named_parameters())
    assert set(mask.masks) == {"net.0.weight", "net.3.weight", "net.5.weight"}  # biases and BatchNorm stay dense
    for name, keep in mask.masks.items():
        assert torch.count_nonzero(params[name].detach()[~keep]) == 0, name
        assert torch.count_nonzero(params[name].detach()[keep]) == keep.sum()  # survivors trained, not zeroed
    assert seen == list(range(1, 26))  # once per optimizer step, after it
    state = trainer.optimizers[0].state  # the gradient hook: momentum never saw a pruned weight's gradient
    for name, keep in mask.masks.items():
        buffer = state[params[name]]["momentum_buffer"]
        assert torch.count_nonzero(buffer[~keep]) == 0 and torch.count_nonzero(buffer[keep]) > 0


def test_without_the_callback_momentum_and_weight_decay_do_move_pruned_weights():
    torch.manual_seed(0)  # the control for the test above: it can fail
    module = Classifier(momentum=0.9, weight_decay=0.05, lr=0.1)
    with torch.no_grad():
        module.net[0].weight[:, :20] = 0
    quiet_trainer(max_steps=5).fit(module, datamodule=MNIST1D())
    assert torch.count_nonzero(module.net[0].weight.detach()[:, :20]) > 0


@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("lightning") / "run"
    assert main([*FIND, "--out", str(run)]) == 0
    return run


def test_a_lightning_run_is_a_run_folder_with_tickets_controls_and_exact_sparsity(lightning_run):
    config = json.loads((lightning_run / "config.json").read_text())["experiment"]
    assert config["framework"] == "lightning" and config["metric"] == "test_acc"
    assert config["train"] == {"budget": "60it"} and config["preset"] is None  # nothing recorded that is not used
    for seed in (0, 1):
        init = load_tensors(lightning_run / f"seed_{seed}" / "init.safetensors")
        for level, remaining in ((0, 100.0), (1, 80.0), (2, 64.0)):
            record = json.loads((lightning_run / f"seed_{seed}" / "rounds" / f"round_{level:02d}.json").read_text())
            assert record["weights_remaining_pct"] == pytest.approx(remaining) and record["iterations"] == 60
            assert 0.0 <= record["accuracy"] <= 1.0
            mask = load_tensors(lightning_run / f"seed_{seed}" / "masks" / f"round_{level:02d}.safetensors")
            trained = load_tensors(lightning_run / f"seed_{seed}" / "trained" / f"round_{level:02d}.safetensors")
            for name, keep in mask.items():
                assert torch.count_nonzero(trained[name][~keep.bool()]) == 0
                assert not torch.equal(trained[name], init[name])  # trained from θ₀
        reinit = json.loads((lightning_run / f"seed_{seed}" / "controls" / "random_reinit_round_02.json").read_text())
        assert reinit["weights_remaining_pct"] == pytest.approx(64.0)
    # the masks of the two seeds differ (each seed its own θ₀ and data order)
    a, b = (load_tensors(lightning_run / f"seed_{s}" / "masks" / "round_02.safetensors") for s in (0, 1))
    assert any(not torch.equal(a[n], b[n]) for n in a)


def test_report_compare_and_resume_read_a_lightning_run(lightning_run, tmp_path, capsys):
    assert main(["report", str(lightning_run)]) == 0
    assert "tests.lit_fixtures:make_module" in capsys.readouterr().out
    shutil.copytree(lightning_run, tmp_path / "copy")
    assert main(["compare", str(lightning_run), str(tmp_path / "copy"), "--out", str(tmp_path / "cmp")]) == 0
    before = (lightning_run / "metrics.csv").read_text()
    assert main(["resume", str(lightning_run), "--quiet"]) == 0  # finished: nothing trains again
    assert (lightning_run / "metrics.csv").read_text() == before


@pytest.mark.slow
def test_a_sigkill_then_resume_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    expected, got = kill_after_first_level_then_resume([*FIND, "--rewind-iteration", "10", "--rewind-mode", "restart"],
                                                       tmp_path)
    assert sorted(got) == sorted(expected) and "seed_0/rewind.safetensors" in got
    for key in expected:
        assert got[key] == expected[key], key


def test_the_python_api_runs_the_same_experiment_as_the_command_line(lightning_run, tmp_path):
    summary = find(MODULE, DATA, str(tmp_path / "api"), budget="60it", metric="test_acc", rounds=2, seeds=(0, 1),
                   controls=("reinit",))
    assert summary == json.loads((lightning_run / "summary.json").read_text())
    assert fingerprint(tmp_path / "api") == fingerprint(lightning_run)


@pytest.mark.parametrize("extra, message", [
    (["--metric", "acc"], "evaluation gave no 'acc' (it gave ['test_acc'])"),
    (["--model", "tests.lit_fixtures:make_plain_module"], "returned a Linear, not a LightningModule"),
    (["--model", "tests.lit_fixtures:make_untested_module"], "has no test_step; define one that logs 'test_acc'"),
    (["--dataset", "tests.lit_fixtures:make_module"], "returned a Classifier, not a LightningDataModule"),
    (["--lr", "0.1"], "trains with your module's own optimizer and your DataModule's batches; drop --lr"),
    (["--budget", "2ep"], "takes a budget in optimizer steps (max_steps), not '2ep'"),
    (["--rewind-iteration", "5"], "pass --rewind-mode restart"),
    (["--early-bird", "0.1"], "framework lightning has no early-bird"),
    (["--controls", "snip"], "does not hand batches to data-scored pruning at init (snip)"),
])
def test_what_lightning_cannot_honour_is_one_line_before_anything_is_written(tmp_path, capsys, extra, message):
    args = [*FIND, *extra]
    out = tmp_path / "run"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_framework_run_needs_its_metric_and_records_no_unused_training_settings():
    from lottery_ticket.config import ExperimentConfig, TrainConfig

    with pytest.raises(LotteryTicketError, match="needs metric"):
        ExperimentConfig(model=MODULE, dataset=DATA, framework="lightning")
    with pytest.raises(LotteryTicketError, match=r"train.lr, train.batch_size would go unused"):
        ExperimentConfig(model=MODULE, dataset=DATA, framework="lightning", metric="test_acc",
                         train=TrainConfig(lr=0.5, batch_size=7))


def test_the_side_by_side_example_runs_as_written_at_a_tiny_budget(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("lightning_imp", ROOT / "examples" / "lightning_imp.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setattr(example, "EPOCHS_PER_LEVEL", 1)
    monkeypatch.setattr(example, "ROUNDS", 1)
    monkeypatch.setattr(sys, "argv", ["lightning_imp.py", "--out", str(tmp_path)])
    example.main()
    table = (tmp_path / "comparison.md").read_text()
    assert "| ours: IMP ticket | 50.0 % |" in table and "| Lightning ModelPruning (LTH) |" in table
    theirs = json.loads((tmp_path / "model_pruning.json").read_text())
    assert len(theirs) == 2 and all(t["all_remaining_pct"] == pytest.approx(50.0, abs=0.5) for t in theirs)
