"""Any batch, any output, any metric (issue 26 item 3): dict batches, dict / ModelOutput outputs with their own loss,
sequence logits, perplexity and metrics of yours with a direction, recorded and reported."""

import json
import math
import sys
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from lottery_ticket import LotteryTicketError, Trainer
from lottery_ticket.cli import main
from lottery_ticket.config import ExperimentConfig, TrainConfig
from lottery_ticket.data.types import LoaderSplits
from lottery_ticket.integrations.common import check_score
from lottery_ticket.scores import score_of
from lottery_ticket.training.batches import class_scores, split_batch

import seq_fixtures as fx

SEQ = ["--model", "tests.seq_fixtures:build", "--data", "tests.seq_fixtures:data"]
SHORT = ["--budget", "40it", "--eval-every", "20it", "--rounds", "1", "--rate", "0.5", "--quiet"]


def train(model_fn, data_fn, budget="30it", **kwargs):
    torch.manual_seed(0)
    model = model_fn()
    trainer = Trainer(TrainConfig(budget=budget, optimizer="adam", lr=0.01, eval_every=kwargs.pop("eval_every", None)),
                      data_fn(), **kwargs)
    metrics = trainer.train(model)
    return model, trainer, metrics


def test_dict_batches_and_a_models_own_loss_train_exactly_as_tuples_and_logits():
    tuple_model, tuple_trainer, _ = train(fx.build, fx.data)
    dict_model, dict_trainer, _ = train(fx.build_dict, fx.dict_data)
    for (name, a), (_, b) in zip(tuple_model.state_dict().items(), dict_model.state_dict().items()):
        assert torch.equal(a, b), name
    assert tuple_trainer.evaluate("test") == pytest.approx(dict_trainer.evaluate("test"), rel=1e-6)
    # and the run actually learned: the sequences count up, so the next token is mostly predictable
    assert tuple_trainer.evaluate("test")["accuracy"] > 2 / fx.VOCAB


def test_sequence_scores_sit_on_the_last_dim_and_minus_100_targets_are_ignored():
    torch.manual_seed(0)
    model = fx.build()
    seq = fx.sequences(32, 3)
    x, y = seq[:, :-1], seq[:, 1:].clone()
    y[:, :3] = -100  # padding, as Hugging Face collators mark it
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=10)
    trainer = Trainer(TrainConfig(budget="1it"), LoaderSplits("seq", loader, loader))
    result = trainer.evaluate("test", model)
    with torch.no_grad():
        logits = model(x)
    kept = y != -100
    assert result["loss"] == pytest.approx(float(F.cross_entropy(logits[kept], y[kept])), rel=1e-5)
    assert result["accuracy"] == pytest.approx(float((logits.argmax(-1)[kept] == y[kept]).float().mean()))


def test_class_scores_follow_torchs_dim_1_convention_first_then_the_last_dim():
    image = torch.randn(2, 5, 3, 4)  # segmentation: [batch, classes, h, w] against [batch, h, w]
    scores, flat = class_scores(image, torch.zeros(2, 3, 4, dtype=torch.long))
    assert scores.shape == (24, 5) and torch.equal(scores[1], image[0, :, 0, 1])
    tokens = torch.randn(2, 7, 9)  # a language model: [batch, tokens, vocabulary] against [batch, tokens]
    scores, flat = class_scores(tokens, torch.zeros(2, 7, dtype=torch.long))
    assert scores.shape == (14, 9) and torch.equal(scores[8], tokens[1, 1])
    with pytest.raises(LotteryTicketError, match=r"outputs of shape \(2, 7, 9\) and targets of shape \(2, 6\)"):
        class_scores(tokens, torch.zeros(2, 6, dtype=torch.long))


def test_a_batch_that_is_neither_a_pair_nor_a_dict_is_one_line():
    with pytest.raises(LotteryTicketError, match="yield \\(inputs, targets\\) pairs or dicts"):
        split_batch((torch.zeros(2), torch.zeros(2), torch.zeros(2)))


def test_perplexity_is_exp_of_the_mean_token_loss():
    model, trainer, _ = train(fx.build, fx.data, metric="perplexity")
    result = trainer.evaluate("test")
    assert set(result) == {"loss", "perplexity"}
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]), rel=1e-12)
    assert result["perplexity"] < fx.VOCAB  # better than uniform guessing


@pytest.mark.parametrize("mode", ["max", "min"])
def test_early_stopping_follows_a_metric_of_yours_in_its_direction(mode):
    _, _, metrics = train(fx.build, fx.data, budget="60it", eval_every="10it",
                          metric="tests.seq_fixtures:top2_hit_rate", metric_mode=mode)
    values = [row["val_top2_hit_rate"] for row in metrics["history"]]
    assert len(set(values)) > 1  # the choice matters
    best = max(values) if mode == "max" else min(values)
    assert metrics["early_stop_val_top2_hit_rate"] == best
    chosen = next(r for r in metrics["history"] if r["iteration"] == metrics["early_stop_iteration"])
    assert chosen["val_top2_hit_rate"] == best and metrics["early_stop_test_top2_hit_rate"] == chosen["test_top2_hit_rate"]


def test_a_metric_function_is_averaged_over_examples_and_a_metric_class_is_updated_and_computed():
    torch.manual_seed(0)
    model = fx.build()
    splits = fx.data()
    by_fn = Trainer(TrainConfig(budget="1it"), splits, metric="tests.seq_fixtures:top2_hit_rate", metric_mode="max")
    by_class = Trainer(TrainConfig(budget="1it"), splits, metric="tests.seq_fixtures:MeanTargetScore", metric_mode="max")
    x, y = fx.sequences(64, 2)[:, :-1], fx.sequences(64, 2)[:, 1:]
    with torch.no_grad():
        logits = model(x)
    expected_fn = float(fx.top2_hit_rate(logits, y))  # equal batches of 16: the weighted mean is the overall mean
    expected_class = float(logits.log_softmax(-1).gather(-1, y.unsqueeze(-1)).mean())
    assert by_fn.evaluate("test", model)["top2_hit_rate"] == pytest.approx(expected_fn, rel=1e-6)
    assert by_class.evaluate("test", model)["MeanTargetScore"] == pytest.approx(expected_class, rel=1e-5)


@pytest.mark.parametrize("metric,mode,message", [
    ("tests.seq_fixtures:top2_hit_rate", None, "say whether higher or lower is better with --metric-mode"),
    ("perplexity", "max", "'perplexity' is lower is better; leave --metric-mode out"),
    ("bleu", None, "neither accuracy nor perplexity nor package.module:callable"),
    ("tests.seq_fixtures:iterations", "max", "would be recorded as a record field it cannot be"),
    ("os:getcwd", "max", "names a standard-library or code-loading module"),
])
def test_a_metric_that_names_no_score_is_one_line(metric, mode, message):
    with pytest.raises(LotteryTicketError, match=message):
        ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", metric=metric, metric_mode=mode)


def test_accuracy_spelled_out_is_the_default_experiment():
    assert ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d", metric="accuracy").identity() == \
        ExperimentConfig(model="mnist1d_mlp", dataset="mnist1d").identity()


def test_a_frameworks_metric_is_an_accuracy_unless_a_mode_says_otherwise():
    hf = SimpleNamespace(framework="huggingface", metric="eval_loss", metric_mode=None)
    with pytest.raises(LotteryTicketError, match="eval_loss=2.5 is not an accuracy in \\[0, 1\\].*--metric-mode"):
        check_score(hf, {"eval_loss": 2.5})
    hf.metric_mode = "min"
    assert check_score(hf, {"eval_loss": 2.5}) == {"eval_loss": 2.5}
    assert score_of("huggingface", "eval_loss", "min").higher_is_better is False


def test_find_scores_by_perplexity_records_it_and_reports_it_without_importing_your_code(tmp_path, capsys):
    out = tmp_path / "ppl"
    assert main(["find", *SEQ, *SHORT, "--metric", "perplexity", "--controls", "reinit", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["experiment"]
    assert config["metric"] == "perplexity"
    row = json.loads((out / "seed_0" / "rounds" / "round_01.json").read_text())
    assert row["score"] == {"key": "perplexity", "higher_is_better": False, "percent": False}
    assert row["perplexity"] == pytest.approx(math.exp(row["test_loss"]), rel=1e-12) and "accuracy" not in row
    control = json.loads((out / "seed_0" / "controls" / "random_reinit_round_01.json").read_text())
    assert "perplexity" in control and control["score"] == row["score"]
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "perplexity" in header and "accuracy" not in header
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dense_perplexity"]["mean"] == json.loads(
        (out / "seed_0" / "rounds" / "round_00.json").read_text())["perplexity"]
    capsys.readouterr()
    sys.modules.pop("tests.seq_fixtures", None)
    assert main(["report", str(out), "--no-plots"]) == 0
    table = capsys.readouterr().out
    assert "test perplexity: ticket" in table and f"{row['perplexity']:.3f}" in table
    assert "tests.seq_fixtures" not in sys.modules  # opening the folder ran none of its code


def test_find_trains_on_dict_batches_with_a_models_own_loss(tmp_path):
    out = tmp_path / "dicts"
    assert main(["find", "--model", "tests.seq_fixtures:build_dict", "--data", "tests.seq_fixtures:dict_data", *SHORT,
                 "--metric", "tests.seq_fixtures:top2_hit_rate", "--metric-mode", "max", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["experiment"]
    assert config["metric_mode"] == "max"
    row = json.loads((out / "seed_0" / "rounds" / "round_01.json").read_text())
    assert 0 <= row["top2_hit_rate"] <= 1 and row["score"]["higher_is_better"] is True


def test_compare_refuses_runs_scored_differently(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["find", *SEQ, *SHORT, "--metric", "perplexity", "--out", str(a)]) == 0
    assert main(["find", *SEQ, *SHORT, "--out", str(b)]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) != 0
    assert "scored differently" in capsys.readouterr().err
