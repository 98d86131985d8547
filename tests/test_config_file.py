"""Config files and the settings `find` knows: TOML in, flags over it, the resolved config and command recorded."""

import json

import pytest
import torch

from lottery_ticket.cli import build_parser, config_from_args, main
from lottery_ticket.config import ExperimentConfig, TrainConfig
from lottery_ticket.config_file import to_toml


def resolve(*argv):
    return config_from_args(build_parser().parse_args(["find", *argv]))


@pytest.mark.parametrize("preset", ["lenet300-mnist", "vgg19-cifar10-rewind", "mnist1d-cnn"])
def test_print_config_round_trips_through_a_config_file(tmp_path, capsys, preset):
    assert main(["find", "--preset", preset, "--seeds", "0,3", "--controls", "reinit", "--pruner", "2:4",
                 "--print-config"]) == 0
    (tmp_path / "run.toml").write_text(capsys.readouterr().out)
    assert resolve("--config", str(tmp_path / "run.toml")) == resolve("--preset", preset, "--seeds", "0,3",
                                                                      "--controls", "reinit", "--pruner", "2:4")


def test_a_file_changes_single_keys_of_its_preset_and_flags_override_the_file(tmp_path):
    (tmp_path / "run.toml").write_text('preset = "conv4-cifar10"\nseeds = [1, 2]\n[train]\nlr = 0.01\nwarmup = "100it"\n'
                                       '[prune]\nlayer_rates = {"*" = 0.3}\n')
    config = resolve("--config", str(tmp_path / "run.toml"), "--lr", "0.02", "--momentum", "0.9", "--weight-decay",
                     "1e-4", "--schedule", "step", "--milestones", "100it,200it", "--augment", "--exclude", "fc3.weight",
                     "--layer-rate", "convs.*=0.15", "--layer-rate", "*=0.2")
    assert config.train.lr == 0.02 and config.train.warmup == "100it" and config.train.batch_size == 60  # the preset's
    assert (config.train.momentum, config.train.weight_decay, config.train.schedule) == (0.9, 1e-4, "step")
    assert config.train.milestones == ("100it", "200it") and config.train.augment
    assert config.prune.exclude == ("fc3.weight",) and config.prune.layer_rates == {"convs.*": 0.15, "*": 0.2}
    assert config.seeds == (1, 2) and config.preset == "conv4-cifar10"


def test_a_file_without_a_preset_describes_its_own_experiment(tmp_path):
    (tmp_path / "run.toml").write_text('model = "mnist1d_mlp"\ndataset = "mnist1d"\n[train]\nbudget = "20it"\n')
    config = resolve("--config", str(tmp_path / "run.toml"))
    assert config.model == "mnist1d_mlp" and config.train == TrainConfig(budget="20it") and config.preset is None


@pytest.mark.parametrize("text,message", [
    ("bogus = 1\n", "unknown experiment key(s) ['bogus']"),
    ("[train]\nlrr = 1\n", "unknown TrainConfig key(s) ['lrr']"),
    ("[prune]\nrate = 2\n", "rate=2 is outside [0, 1)"),
    ("train = 3\n", "'train' must be a table"),
    ("[train\n", "is not valid TOML"),
])
def test_a_bad_config_file_is_one_line(tmp_path, capsys, text, message):
    (tmp_path / "run.toml").write_text(text)
    assert main(["find", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0, err
    assert not (tmp_path / "run").exists()


def test_the_run_folder_records_the_command_line(tmp_path):
    out = tmp_path / "run"
    argv = ["find", "--preset", "mnist1d-mlp", "--budget", "20it", "--rounds", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["command"] == "lottery-ticket " + " ".join(argv)


def test_bf16_autocast_trains_and_keeps_pruned_weights_at_zero(tmp_path):
    out = tmp_path / "run"
    assert main(["find", "--preset", "mnist1d-mlp", "--budget", "30it", "--rounds", "1", "--amp", "bf16", "--quiet",
                 "--out", str(out)]) == 0
    from lottery_ticket import PruningMask
    from lottery_ticket.state import load_state

    mask = PruningMask.load(out / "seed_0" / "masks" / "round_01.safetensors")
    trained = load_state(out / "seed_0" / "trained" / "round_01.safetensors")
    assert all(trained[n].dtype == torch.float32 and not trained[n][~mask[n]].any() for n in mask.names)
    assert to_toml(ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", train=TrainConfig(amp="bf16")).to_dict())


def test_every_training_writes_a_metrics_csv_and_its_record_keeps_the_step_log(tmp_path):
    import csv

    out = tmp_path / "run"
    assert main(["find", "--preset", "mnist1d-mlp", "--budget", "250it", "--eval-every", "100it", "--rounds", "1",
                 "--controls", "reinit", "--quiet", "--out", str(out)]) == 0
    for stage in ("round_00", "round_01", "random_reinit_round_01"):
        rows = list(csv.DictReader((out / "seed_0" / "logs" / f"{stage}.csv").open()))
        assert [int(r["iteration"]) for r in rows] == [0, 100, 200, 250]
        assert all(float(r["train_loss"]) > 0 for r in rows[1:3]) and all(r["val_accuracy"] for r in rows)
    record = json.loads((out / "seed_0" / "rounds" / "round_00.json").read_text())
    assert [s["iteration"] for s in record["steps"]] == [100, 200]


def test_tensorboard_is_an_extra_with_a_one_line_error_when_missing(tmp_path, capsys):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        out = tmp_path / "run"
        assert main(["find", "--preset", "mnist1d-mlp", "--budget", "20it", "--rounds", "1", "--tensorboard", "--quiet",
                     "--out", str(out)]) == 2
        assert "pip install tensorboard" in capsys.readouterr().err and not out.exists()
    else:
        out = tmp_path / "run"
        assert main(["find", "--preset", "mnist1d-mlp", "--budget", "20it", "--rounds", "1", "--tensorboard", "--quiet",
                     "--out", str(out)]) == 0
        assert list((out / "tensorboard").rglob("events.*"))


def test_the_library_logs_through_logging(tmp_path, caplog):
    import logging

    from lottery_ticket.cli import config_from_args
    from lottery_ticket.experiment.runner import ExperimentRunner

    config = resolve("--preset", "mnist1d-mlp", "--budget", "20it", "--rounds", "1")
    with caplog.at_level(logging.INFO, logger="lottery_ticket"):
        ExperimentRunner(config, tmp_path / "run", progress=False).run()
    assert any("round 1/1" in r.getMessage() for r in caplog.records if r.name == "lottery_ticket")
