"""Config truth for your own runs (issue 26 item 6): nothing recorded that the run does not use, the loaders' real
batch size recorded, no silent early stopping on the test set, and a run failing on your input leaves nothing."""

import json

import pytest

from lottery_ticket.cli import main
from lottery_ticket.config import ExperimentConfig, TrainConfig
from lottery_ticket.errors import LotteryTicketError

BYO = "tests.byo_faults"
ATTENTION = ["--model", "examples.mnist1d_attention:build", "--data", "examples.mnist1d_attention:data"]
TINY = ["--budget", "20it", "--eval-every", "10it", "--rounds", "1", "--quiet"]


def exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_your_loaders_batch_size_is_recorded_and_no_presets_is(tmp_path):
    out = tmp_path / "run"
    # the default preset batches 100 images and the CIFAR one augments; your loaders decide both
    assert main(["find", "--preset", "conv2-cifar10", *ATTENTION, *TINY, "--out", str(out)]) == 0
    train = json.loads((out / "config.json").read_text())["experiment"]["train"]
    assert train["batch_size"] is None and train["augment"] is False
    for name in ("round_00", "round_01"):
        record = json.loads((out / "seed_0" / "rounds" / f"{name}.json").read_text())
        assert record["batch_size"] == 100  # examples/mnist1d_attention.py's DataLoader


@pytest.mark.parametrize("flag", [["--batch-size", "32"], ["--augment"]])
def test_batch_size_or_augmentation_for_your_loaders_is_one_line_before_any_write(tmp_path, capsys, flag):
    out = tmp_path / "run"
    assert exit_code(["find", *ATTENTION, *TINY, *flag, "--out", str(out)]) == 2
    assert f"drop {flag[0]}" in capsys.readouterr().err
    assert not out.exists()


def test_a_built_in_dataset_needs_a_batch_size():
    with pytest.raises(LotteryTicketError, match="batch_size is unset but 'mnist1d' is a built-in dataset"):
        ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", train=TrainConfig(batch_size=None))


def test_early_stopping_on_the_test_set_is_refused_unless_asked_for_and_then_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["find", "--preset", "mnist1d-mlp", "--data", f"{BYO}:no_val_split", *TINY]
    assert exit_code([*args, "--out", str(out)]) == 2
    assert "has no 'val' split" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--early-stop-on-test", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["experiment"]["train"]["early_stop_on_test"] is True
    record = json.loads((out / "seed_0" / "rounds" / "round_01.json").read_text())
    assert record["early_stop_split"] == "test"


def test_a_run_failing_on_your_input_after_config_json_leaves_nothing_and_the_fix_runs_on_the_same_out(tmp_path,
                                                                                                       capsys):
    out = tmp_path / "run"
    base = ["find", "--preset", "mnist1d-mlp", *TINY]
    assert exit_code([*base, "--data", f"{BYO}:test_split_does_not_fit", "--out", str(out)]) == 2
    assert "the test batches (inputs (16, 7)) do not fit the model" in capsys.readouterr().err
    assert not out.exists()
    assert main([*base, "--out", str(out)]) == 0


def test_an_empty_out_you_made_is_emptied_not_removed(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    assert exit_code(["find", "--preset", "mnist1d-mlp", *TINY, "--data", f"{BYO}:test_split_does_not_fit",
                      "--out", str(out)]) == 2
    assert out.is_dir() and not any(out.iterdir())


def test_a_failure_after_a_finished_level_keeps_the_folder_for_resume(tmp_path, capsys):
    from tests import byo_faults

    byo_faults.CALLS["loss"] = 0
    out = tmp_path / "run"
    assert exit_code(["find", "--preset", "mnist1d-mlp", *TINY, "--loss", f"{BYO}:nan_after_30_calls",
                      "--out", str(out)]) == 2
    assert "training diverged" in capsys.readouterr().err
    assert (out / "config.json").is_file() and (out / "seed_0" / "rounds" / "round_00.json").is_file()
