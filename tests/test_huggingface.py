"""IMP with the Hugging Face Trainer (issue 26, item 2): each level and control a transformers.Trainer.train().

A tiny randomly initialised BERT and GPT-2 (configs, no downloads; tests/hf_fixtures.py) on MNIST-1D read as tokens:
the callback keeps pruned weights exactly zero under AdamW's weight decay and gradient clipping, GPT-2's Conv1D
weights are prunable by default and embeddings are not, a run is a run folder (report, resume), reset to θ₀ is
rewinding to the starting (pre-trained) weights, and a SIGKILL then `resume` ends bit-identical.
"""

import json

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import torch  # noqa: E402

from lottery_ticket import PruningMask  # noqa: E402
from lottery_ticket.cli import main  # noqa: E402
from lottery_ticket.io import load_tensors  # noqa: E402
from lottery_ticket.integrations.huggingface import mask_callback  # noqa: E402
from hf_fixtures import make_bert, make_data, make_gpt2  # noqa: E402
from kill_helpers import kill_after_first_level_then_resume  # noqa: E402

DATA = "tests.hf_fixtures:make_data"
FIND = ["find", "--framework", "huggingface", "--model", "tests.hf_fixtures:make_bert", "--dataset", DATA,
        "--metric", "eval_accuracy", "--budget", "30it", "--rounds", "2", "--controls", "reinit", "--seeds", "0,1",
        "--quiet"]


def test_defaults_prune_every_weight_matrix_of_bert_and_gpt2_and_leave_embeddings_and_norms_dense():
    torch.manual_seed(0)
    bert, gpt2 = PruningMask(make_bert()), PruningMask(make_gpt2())
    assert "bert.encoder.layer.0.attention.self.query.weight" in bert.names
    assert "bert.encoder.layer.1.output.dense.weight" in bert.names and "classifier.weight" in bert.names
    assert not [n for n in bert.names if "embeddings" in n or "LayerNorm" in n or n.endswith("bias")]
    # GPT-2's attention and MLP are transformers' Conv1D, not nn.Linear: prunable all the same
    assert [n for n in gpt2.names if n.startswith("transformer.h.0.")] == [
        "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.weight", "transformer.h.0.mlp.c_fc.weight",
        "transformer.h.0.mlp.c_proj.weight"]
    assert not [n for n in gpt2.names if n.startswith(("transformer.wte", "transformer.wpe")) or ".ln_" in n]


def test_the_callback_keeps_pruned_weights_exactly_zero_under_adamw_decay_and_clipping(tmp_path):
    torch.manual_seed(0)
    model = make_gpt2()
    mask = PruningMask(model)
    for keep in mask.masks.values():
        keep[torch.rand(keep.shape) < 0.5] = False
    data, steps = make_data(), []
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=12, report_to=[], save_strategy="no",
                                          use_cpu=True, disable_tqdm=True, weight_decay=0.1, max_grad_norm=0.5,
                                          learning_rate=1e-2, per_device_train_batch_size=32)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data["train_dataset"],
                                   callbacks=[mask_callback(mask, lambda step, m: steps.append(step))])
    trainer.train()
    params = dict(model.named_parameters())
    for name, keep in mask.masks.items():
        assert torch.count_nonzero(params[name].detach()[~keep]) == 0, name
        assert torch.count_nonzero(params[name].detach()[keep]) == keep.sum(), name
    assert steps == list(range(1, 13))
    for name, keep in mask.masks.items():  # the gradient hook: AdamW's moments never saw a pruned weight's gradient
        state = trainer.optimizer.state[params[name]]
        assert torch.count_nonzero(state["exp_avg"][~keep]) == 0 and torch.count_nonzero(state["exp_avg"][keep]) > 0
    assert not any(p._backward_hooks for p in params.values())  # the gradient hooks are removed after training


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("huggingface") / "run"
    assert main([*FIND, "--out", str(run)]) == 0
    return run


def test_a_hugging_face_run_resets_to_the_starting_weights_and_writes_a_run_folder(hf_run, capsys):
    config = json.loads((hf_run / "config.json").read_text())["experiment"]
    assert config["framework"] == "huggingface" and config["train"] == {"budget": "30it"}
    for seed in (0, 1):
        init = load_tensors(hf_run / f"seed_{seed}" / "init.safetensors")
        torch.manual_seed(seed)
        starting = make_bert().state_dict()  # the factory's weights: "pre-trained" in a real run
        assert all(torch.equal(init[n], starting[n]) for n in init)
        for level, remaining in ((1, 80.0), (2, 64.0)):
            record = json.loads((hf_run / f"seed_{seed}" / "rounds" / f"round_{level:02d}.json").read_text())
            assert record["eligible_sparsity"] == pytest.approx(1 - remaining / 100, abs=1e-3) and record["iterations"] == 30
            mask = load_tensors(hf_run / f"seed_{seed}" / "masks" / f"round_{level:02d}.safetensors")
            trained = load_tensors(hf_run / f"seed_{seed}" / "trained" / f"round_{level:02d}.safetensors")
            for name, keep in mask.items():
                assert torch.count_nonzero(trained[name][~keep.bool()]) == 0
        assert (hf_run / f"seed_{seed}" / "controls" / "random_reinit_round_02.json").exists()
    assert main(["report", str(hf_run)]) == 0
    assert "tests.hf_fixtures:make_bert" in capsys.readouterr().out
    before = (hf_run / "metrics.csv").read_text()
    assert main(["resume", str(hf_run), "--quiet"]) == 0 and (hf_run / "metrics.csv").read_text() == before


@pytest.mark.slow
def test_a_sigkill_then_resume_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    expected, got = kill_after_first_level_then_resume(FIND, tmp_path)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key] == expected[key], key


@pytest.mark.parametrize("extra, message", [
    (["--metric", "accuracy"], "evaluation gave no 'accuracy' (it gave ["),
    (["--metric", "eval_loss"], "is not an accuracy in [0, 1]"),
    (["--dataset", "tests.hf_fixtures:make_bert"], "must return a dict with train_dataset and eval_dataset"),
    (["--dataset", "tests.hf_fixtures:make_data_with_owned_args"], "training_args sets max_steps, which the run sets"),
    (["--batch-size", "8"], "trains with your module's own optimizer and your DataModule's batches; drop --batch-size"),
    (["--rewind-iteration", "5"], "pass --rewind-mode restart"),
])
def test_what_the_hugging_face_trainer_cannot_honour_is_one_line_before_anything_is_written(tmp_path, capsys, extra,
                                                                                            message):
    out = tmp_path / "run"
    assert main([*FIND, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()
