"""Stacked training (issue 24): K networks trained together end where K separate Trainer runs end.

Each network has its own initial weights, mask, data seed and optimizer state; the stacked result must equal the
separate runs to float tolerance (the batched matmul sums in another order), weights and BatchNorm statistics,
evaluations and early-stop iterations alike, and the pruned weights must stay exactly zero."""

import copy
import json

import pytest
import torch

from lottery_ticket import LotteryTicketError, PruningMask
from lottery_ticket.config import TrainConfig
from lottery_ticket.models import build_model
from lottery_ticket.pruning import MagnitudePruner
from lottery_ticket.training import Trainer
from lottery_ticket.training.stacked import StackedTrainer


from byo_stacked import BatchNormNet  # a conv net with BatchNorm: running statistics must stay per network


def networks(build, k):
    """k networks of one architecture, each from its own seed, each with its own mask (pruned at different rates)."""
    models, masks = [], []
    for seed in range(k):
        torch.manual_seed(seed)
        model = build()
        mask = PruningMask(model)
        if seed:  # network 0 stays dense; the others are pruned by magnitude to 20 % and 50 %
            MagnitudePruner(global_pruning=True).prune(model, mask, 0.3 * seed - 0.1)
        models.append(model)
        masks.append(mask)
    return models, masks


def separately(config, data, models, masks, seeds, start=0):
    results = []
    for model, mask, seed in zip(models, masks, seeds):
        trainer = Trainer(TrainConfig(**{**config.__dict__, "data_seed": seed}), data, "cpu",
                          eval_batch_size=2000)
        results.append(trainer.train(model, mask, start_iteration=start))
    return results


CASES = {
    "adam-mlp": (TrainConfig(optimizer="adam", lr=2e-3, batch_size=50, budget="60it", eval_every="20it",
                             sparse_training="off"), lambda: build_model("mnist1d_mlp", 0)),
    "sgd-momentum-wd-warmup-bn": (TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                                              batch_size=50, budget="60it", warmup="20it", schedule="cosine",
                                              eval_every="30it", sparse_training="off"), BatchNormNet),
    "adamw-step-schedule-cnn": (TrainConfig(optimizer="adamw", lr=1e-3, weight_decay=0.01, batch_size=40,
                                            budget="50it", schedule="step", milestones=("25it",),
                                            sparse_training="off"), lambda: build_model("mnist1d_cnn", 0)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("start", [0, 7], ids=["from-theta0", "rewound-to-step-7"])
def test_k_stacked_trainings_equal_k_separate_ones(mnist1d, case, start):
    config, build = CASES[case]
    models, masks = networks(build, 3)
    alone = [copy.deepcopy(m) for m in models]
    seeds = [11, 12, 13]
    expected = separately(config, mnist1d, alone, masks, seeds, start)
    got = StackedTrainer(config, mnist1d, "cpu").train(models, masks, seeds, start_iteration=start)

    for k in range(3):
        for (name, p), (_, q) in zip(models[k].state_dict().items(), alone[k].state_dict().items()):
            assert torch.allclose(p.float(), q.float(), rtol=1e-4, atol=1e-5), (case, k, name)
        for name, keep in masks[k].items():  # pruned weights exactly zero, survivors trained
            weight = dict(models[k].named_parameters())[name]
            assert torch.all(weight[~keep] == 0) and not torch.equal(weight[keep], alone[k].state_dict()[name][keep] * 0)
        assert got[k]["iterations"] == expected[k]["iterations"]
        assert got[k]["final_train_loss"] == pytest.approx(expected[k]["final_train_loss"], rel=1e-4, abs=1e-6)
        if config.eval_every:
            assert [r["iteration"] for r in got[k]["history"]] == [r["iteration"] for r in expected[k]["history"]]
            for mine, theirs in zip(got[k]["history"], expected[k]["history"]):
                assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
                assert mine["test_accuracy"] == pytest.approx(theirs["test_accuracy"], abs=1.5e-3)  # one example
            assert got[k]["early_stop_iteration"] == expected[k]["early_stop_iteration"]


def test_networks_keep_their_own_data_order_and_state(mnist1d):
    """The same network twice with two data seeds trains to two different networks, each equal to its own run."""
    config, build = CASES["adam-mlp"]
    models, masks = networks(build, 1)
    twins = [copy.deepcopy(models[0]), copy.deepcopy(models[0])]
    StackedTrainer(config, mnist1d, "cpu").train(twins, [masks[0], masks[0]], [1, 2])
    assert not torch.allclose(twins[0].fc1.weight, twins[1].fc1.weight)
    alone = copy.deepcopy(models[0])
    separately(config, mnist1d, [alone], masks, [2])
    assert torch.allclose(twins[1].fc1.weight, alone.fc1.weight, rtol=1e-4, atol=1e-5)


def test_networks_of_different_shapes_or_a_loss_of_yours_are_refused(mnist1d):
    config, _ = CASES["adam-mlp"]
    with pytest.raises(LotteryTicketError, match="one architecture"):
        StackedTrainer(config, mnist1d, "cpu").train([build_model("mnist1d_mlp", 0), build_model("mnist1d_cnn", 0)],
                                                     [None, None], [0, 1])
    with pytest.raises(LotteryTicketError, match="--stack off"):
        StackedTrainer(TrainConfig(loss="tests.byo_losses:scaled_cross_entropy"), mnist1d, "cpu")
    with pytest.raises(LotteryTicketError, match="one mask and one data seed per model"):
        StackedTrainer(config, mnist1d, "cpu").train([build_model("mnist1d_mlp", 0)], [None], [0, 1])


def test_a_diverging_network_is_one_line_at_the_end(mnist1d):
    config = TrainConfig(optimizer="sgd", lr=1e30, batch_size=50, budget="5it", sparse_training="off")
    models, masks = networks(lambda: build_model("mnist1d_mlp", 0), 2)
    with pytest.raises(LotteryTicketError, match="training diverged"):
        StackedTrainer(config, mnist1d, "cpu").train(models, masks, [0, 1])


@pytest.mark.parametrize("case", ["adam-mlp", "sgd-momentum-wd-warmup-bn"])
def test_a_networks_stacked_training_is_bit_identical_whatever_its_companions_and_position(mnist1d, case):
    """How a level's trainings are grouped (all seeds at once, or the ones left after a crash) changes no bit."""
    config, build = CASES[case]
    models, masks = networks(build, 3)

    def train(order):
        copies = [copy.deepcopy(models[i]) for i in order]
        StackedTrainer(config, mnist1d, "cpu").train(copies, [masks[i] for i in order], [20 + i for i in order])
        return {i: m.state_dict() for i, m in zip(order, copies)}

    groups = [train([0, 1, 2]), train([2]), train([1, 2]), train([2, 0])]
    for i in range(3):
        seen = [g[i] for g in groups if i in g]
        assert all(torch.equal(s[name], seen[0][name]) for s in seen[1:] for name in seen[0]), (case, i)


def _stack_with_checkpoints(config, data, models, masks, paths, every):
    copies = [copy.deepcopy(m) for m in models]
    metrics = StackedTrainer(config, data, "cpu").train(copies, masks, [30, 31, 32][:len(models)],
                                                        checkpoints=paths, checkpoint_every=every)
    return copies, metrics


@pytest.mark.parametrize("case", ["adam-mlp", "sgd-momentum-wd-warmup-bn"])
def test_a_stack_resumed_from_its_checkpoints_ends_bit_identical(mnist1d, tmp_path, case):
    """A GPU window that ends mid-level keeps the stack's progress: each network's checkpoint holds its slice of
    the weights, BatchNorm statistics, optimizer state and evaluations, and the resumed stack ends on the same bits."""
    config, build = CASES[case]
    models, masks = networks(build, 3)
    paths = [tmp_path / f"network_{k}" for k in range(3)]
    reference, expected = _stack_with_checkpoints(config, mnist1d, models, masks, [None] * 3, 0)
    _stack_with_checkpoints(config, mnist1d, models, masks, paths, 25)  # leaves each network's step-50 checkpoint
    assert all(json.loads(p.with_suffix(".json").read_text())["iteration"] == 50 for p in paths)
    # Weights that are not the networks' own: only a real resume from the checkpoints can end on the reference.
    scrambled = [copy.deepcopy(m) for m in models]
    for model in scrambled:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(-3.0)
    resumed, got = _stack_with_checkpoints(config, mnist1d, scrambled, masks, paths, 25)
    for k in range(3):
        for name, value in reference[k].state_dict().items():
            assert torch.equal(resumed[k].state_dict()[name], value), (case, k, name)
        assert got[k] == expected[k]  # history (every evaluation, the early ones from the checkpoint), loss, stop


def test_a_stack_whose_checkpoints_disagree_starts_over(mnist1d, tmp_path):
    """One network's checkpoint damaged (or a step behind, after a kill while writing): the stack cannot move as
    one from there, so every network starts over, and still ends on the reference bits."""
    config, build = CASES["adam-mlp"]
    models, masks = networks(build, 3)
    paths = [tmp_path / f"network_{k}" for k in range(3)]
    reference, expected = _stack_with_checkpoints(config, mnist1d, models, masks, [None] * 3, 0)
    _stack_with_checkpoints(config, mnist1d, models, masks, paths, 25)
    record = paths[1].with_suffix(".json")
    record.write_text(record.read_text().replace('"iteration": 50', '"iteration": 25'))
    resumed, got = _stack_with_checkpoints(config, mnist1d, models, masks, paths, 25)
    for k in range(3):
        for name, value in reference[k].state_dict().items():
            assert torch.equal(resumed[k].state_dict()[name], value), (k, name)
        assert got[k] == expected[k]


def test_a_stacked_level_stopped_after_a_checkpoint_resumes_from_it(tmp_path, monkeypatch):
    """The engine's side: `find --stack on` gives each training of a stack its checkpoint, a run stopped mid-level
    (as a GPU window's end stops it) resumes that level from the saved step, and ends as the run never stopped."""
    from kill_helpers import fingerprint

    from lottery_ticket.cli import main

    args = ["find", "--preset", "mnist1d-mlp", "--budget", "60it", "--eval-every", "20it", "--rounds", "1",
            "--seeds", "0,1", "--controls", "reinit", "--stack", "on", "--checkpoint-every", "20", "--quiet"]
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    assert main([*args, "--out", str(reference)]) == 0
    save = StackedTrainer._save_checkpoints

    def save_then_stop(self, models, paths, evaluators):
        save(self, models, paths, evaluators)
        if self.iteration == 40 and len(models) == 5:  # level 1: two tickets and two reinits, plus the spare
            raise KeyboardInterrupt

    monkeypatch.setattr(StackedTrainer, "_save_checkpoints", save_then_stop)
    main([*args, "--out", str(crashed)])
    assert sorted(p.name for p in crashed.glob("seed_*/checkpoints/*_stacked.json")) == \
        ["random_reinit_round_01_stacked.json", "random_reinit_round_01_stacked.json", "round_01_stacked.json",
         "round_01_stacked.json"]
    load, starts = StackedTrainer._load_checkpoints, []

    def spy(self, models, paths):
        resumed = load(self, models, paths)
        starts.append(resumed and resumed["iteration"])
        return resumed

    monkeypatch.setattr(StackedTrainer, "_save_checkpoints", save)
    monkeypatch.setattr(StackedTrainer, "_load_checkpoints", spy)
    assert main(["resume", str(crashed), "--quiet"]) == 0
    assert starts == [40]
    assert fingerprint(crashed) == fingerprint(reference)
    assert not list(crashed.rglob("checkpoints/*.json"))


# The engine: `find --stack on` against `--stack off` -------------------------------------------------------------
RUNS = {
    "adam, per-layer rates, 3 seeds, reinit + random pruning": [],
    "sgd momentum + weight decay, rewinding, early-bird": ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
                                                           "--weight-decay", "5e-4", "--rewind-iteration", "10",
                                                           "--early-bird", "0.3"],
    # SGD: the conv bias before BatchNorm has a gradient of exactly zero in exact arithmetic, which Adam would turn
    # into steps of ±lr in whichever direction rounding points (the network's function is the same either way).
    "batchnorm net of your own, sgd, global pruning": ["--model", "tests.byo_stacked:build", "--optimizer", "sgd",
                                                       "--lr", "0.05", "--momentum", "0.9", "--global-pruning",
                                                       "--rate", "0.3"],
}


def _run_files(run):
    from lottery_ticket.io import load_tensors

    out = {}
    for path in sorted(run.rglob("*.safetensors")):
        out[str(path.relative_to(run))] = load_tensors(path)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_a_stacked_run_ends_where_the_one_at_a_time_run_ends(tmp_path, name):
    import json

    from lottery_ticket.cli import main

    base = ["find", "--preset", "mnist1d-mlp", "--budget", "60it", "--eval-every", "20it", "--rounds", "2",
            "--seeds", "0,1,2", "--controls", "reinit,random-prune", "--sparse-training", "off", "--quiet", *RUNS[name]]
    assert main([*base, "--stack", "on", "--out", str(tmp_path / "auto")]) == 0
    assert main([*base, "--stack", "off", "--out", str(tmp_path / "off")]) == 0
    stacked, alone = _run_files(tmp_path / "auto"), _run_files(tmp_path / "off")
    assert sorted(stacked) == sorted(alone) and len(stacked) == 3 * (1 + 3 + 3) + (3 if "rewind" in name else 0)
    for file, tensors in alone.items():
        for key, expected in tensors.items():
            got = stacked[file][key]
            if expected.dtype == torch.bool:  # masks: the same weights pruned
                assert torch.equal(got, expected), (file, key)
            else:  # Adam turns rounding in a near-zero gradient into a step of up to ±lr (2e-3 here): that, no more
                assert torch.allclose(got, expected, rtol=1e-4, atol=2.5e-3), (file, key)
    for record in sorted((tmp_path / "off").rglob("*.json")):
        if record.parent.name not in ("rounds", "controls"):
            continue
        mine = json.loads((tmp_path / "auto" / record.relative_to(tmp_path / "off")).read_text())
        theirs = json.loads(record.read_text())
        assert mine["accuracy"] == pytest.approx(theirs["accuracy"], abs=1.5e-3), record
        assert mine["iterations"] == theirs["iterations"] and mine["kind"] == theirs["kind"]
        assert mine.get("early_stop_iteration") == theirs.get("early_stop_iteration"), record
    config = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert config["experiment"]["train"]["stack"] == "on" and config["identity"]["train"]["stack"] == "on"


def test_whether_a_run_stacks_follows_from_its_settings_and_device_type_only(tmp_path):
    from lottery_ticket.config import ExperimentConfig
    from lottery_ticket.experiment.runner import ExperimentRunner

    def stacks(stack, seeds=(0, 1), controls=(), model="mnist1d_mlp", **train):
        config = ExperimentConfig(model=model, dataset="mnist1d", seeds=seeds, controls=controls,
                                  train=TrainConfig(stack=stack, **train))
        return ExperimentRunner(config, tmp_path / "run", device="cpu", progress=False).stacks()

    assert stacks("on") and stacks("on", seeds=(0,), controls=("reinit",))
    assert not stacks("off") and not stacks("auto")  # auto: a GPU only; on this CPU one at a time was faster
    assert not stacks("on", seeds=(0,))  # one training per level: nothing to stack it with
    assert not stacks("on", loss="tests.byo_losses:scaled_cross_entropy") and not stacks("on", compile=True)
    assert not stacks("on", model="tests.byo_stacked:with_dropout")  # dropout draws from the RNG threads share
    with pytest.raises(LotteryTicketError, match="choose on, auto or off"):
        TrainConfig(stack="yes")


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "crop-flip"])
def test_the_stacked_loader_gives_each_network_exactly_its_own_loaders_batches(augment):
    from lottery_ticket.data import ArrayDataset
    from lottery_ticket.data.loader import InMemoryLoader, StackedLoader

    g = torch.Generator().manual_seed(0)
    data = ArrayDataset(torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (50,), generator=g))
    stats = dict(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), augment=augment)
    seeds = [3, 8, 21]
    stacked = StackedLoader(data, 16, seeds, **stats)
    alone = [InMemoryLoader(data, 16, shuffle=True, seed=s, drop_last=True, **stats) for s in seeds]
    assert len(stacked) == len(alone[0]) == 3
    for epoch in (0, 1, 5):
        stacked.set_epoch(epoch)
        for loader in alone:
            loader.set_epoch(epoch)
        for (x, y), *batches in zip(stacked, *alone):
            assert x.shape == (3, 16, 3, 8, 8) and y.shape == (3, 16)
            for k, (xk, yk) in enumerate(batches):
                assert torch.equal(x[k], xk) and torch.equal(y[k], yk), (epoch, k)
