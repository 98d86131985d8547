"""The one IMP engine: the Python API and the CLI agree, rewinding continues from step k, schedules keep their
per-level rate, finished runs extend without retraining, and old run folders resume as the same experiment."""

import dataclasses
import math
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import metrics_without_timing
from lottery_ticket import LotteryTicketFinder, PruningMask, Trainer, verify_nm_pattern
from lottery_ticket.cli import build_parser, config_from_args, main
from lottery_ticket.config import PruneConfig, TrainConfig
from lottery_ticket.data import load_dataset
from lottery_ticket.experiment.runfolder import RunFolder, read_run_config
from lottery_ticket.imp.controls import CONTROLS
from lottery_ticket.models import MODELS
from lottery_ticket.presets import PRESETS
from lottery_ticket.pruning.registry import PRUNERS, make_pruner
from lottery_ticket.pruning.schedule import Schedule, next_mask
from lottery_ticket.sparsity import count_pruned
from lottery_ticket.training.optim import lr_multiplier

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--preset", "mnist1d-mlp", "--budget", "100it", "--eval-every", "50it", "--quiet"]


def find_args(*extra):
    return config_from_args(build_parser().parse_args(["find", *extra, "--out", "unused"]))


def masks_of(run: Path, seed: int = 0) -> dict[int, bytes]:
    return {int(p.stem.split("_")[1]): p.read_bytes() for p in sorted((run / f"seed_{seed}" / "masks").glob("*.safetensors"))}


# ---- one engine behind both entry points ---------------------------------------------------------------------
def test_the_finder_and_the_cli_give_identical_masks_and_accuracies(tmp_path):
    out = tmp_path / "cli"
    assert main(["find", *TINY, "--rounds", "2", "--controls", "reinit,random-prune", "--out", str(out)]) == 0
    config = read_run_config(RunFolder(out))

    data = load_dataset("mnist1d")
    trainer = Trainer(dataclasses.replace(config.train, data_seed=config.train.data_seed + 0), data)
    kwargs = {"num_classes": data.num_classes, "input_shape": tuple(data.input_shape)}
    finder = LotteryTicketFinder(MODELS[config.model], kwargs, seed=0, pruner=make_pruner(config.prune))
    train_fn, eval_fn = trainer.as_train_fn(), trainer.as_eval_fn("test")
    _, _, results = finder.find_winning_ticket(None, train_fn, eval_fn, target_sparsity=0.5, pruning_rounds=2,
                                               verbose=False)
    reinit = finder.verify_random_ticket(train_fn, eval_fn)
    random_pruning = finder.random_pruning_control(train_fn, eval_fn)

    cli_masks = [PruningMask.load(out / "seed_0" / "masks" / f"round_{r:02d}.safetensors") for r in range(3)]
    assert finder.masks == cli_masks
    cli_rows = {(r["kind"], r["round"]): r for r in metrics_without_timing(out)}
    assert [r["accuracy"] for r in results["rounds"]] == [cli_rows[("dense", 0)]["accuracy"],
                                                          cli_rows[("ticket", 1)]["accuracy"],
                                                          cli_rows[("ticket", 2)]["accuracy"]]
    assert reinit["accuracy"] == cli_rows[("random_reinit", 2)]["accuracy"]
    assert reinit["init_seed"] == cli_rows[("random_reinit", 2)]["init_seed"] == CONTROLS["reinit"].seed_for(0, 2)
    assert random_pruning["accuracy"] == cli_rows[("random_pruning", 2)]["accuracy"]
    assert random_pruning["mask_seed"] == cli_rows[("random_pruning", 2)]["mask_seed"]


# ---- rewinding as in Frankle et al. 2020 -------------------------------------------------------------------------
class RecordingTrainer(Trainer):
    """Records the learning rate each step runs with and the batch it sees."""

    def train_step(self, x, y):
        self.seen.append((self.optimizer.param_groups[0]["lr"], x.clone()))
        return super().train_step(x, y)


def recording_trainer(data, config):
    trainer = RecordingTrainer(config, data)
    trainer.seen = []
    return trainer


def test_a_rewound_level_trains_steps_k_to_T_with_the_schedule_and_data_order_at_k():
    data = load_dataset("mnist1d")
    config = TrainConfig(optimizer="sgd", lr=0.1, batch_size=100, budget="80it", warmup="20it", schedule="step",
                         milestones=("50it",), gamma=0.1)
    k, total = 30, 80
    kwargs = {"num_classes": data.num_classes, "input_shape": tuple(data.input_shape)}
    dense = recording_trainer(data, config)
    rewound = recording_trainer(data, config)
    calls = []

    def train_fn(model, mask, on_step=None, start_iteration=0):
        trainer = dense if not calls else rewound
        calls.append(start_iteration)
        return trainer.train(model, mask, on_step=on_step, start_iteration=start_iteration)

    finder = LotteryTicketFinder(MODELS["mnist1d_mlp"], kwargs, rewind_iteration=k)
    _, _, results = finder.find_winning_ticket(None, train_fn, lambda m: 0.5, 0.5, 1, verbose=False)
    assert calls == [0, k]
    assert len(dense.seen) == total and len(rewound.seen) == total - k
    factor = lr_multiplier(config, total, dense.steps_per_epoch)
    assert rewound.seen[0][0] == pytest.approx(config.lr * factor(k))
    assert [lr for lr, _ in rewound.seen] == [lr for lr, _ in dense.seen[k:]]  # the whole schedule from k on
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(rewound.seen, dense.seen[k:]))  # and the data order
    assert results["rounds"][1]["start_iteration"] == k and results["rounds"][1]["iterations"] == total


def test_restart_mode_is_the_old_rewinding_when_named():
    data = load_dataset("mnist1d")
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=100, budget="40it")
    trainer = recording_trainer(data, config)
    kwargs = {"num_classes": data.num_classes, "input_shape": tuple(data.input_shape)}
    finder = LotteryTicketFinder(MODELS["mnist1d_mlp"], kwargs, rewind_iteration=10, rewind_mode="restart")
    _, _, results = finder.find_winning_ticket(None, trainer.as_train_fn(), lambda m: 0.5, 0.5, 1, verbose=False)
    assert results["rounds"][1]["start_iteration"] == 0 and len(trainer.seen) == 80


def test_the_rewind_presets_continue_from_step_k_and_the_cli_records_it(tmp_path):
    for name in ("vgg19-cifar10-rewind", "resnet20-cifar10-rewind"):
        assert PRESETS[name].prune.rewind_mode == "continue" and PRESETS[name].prune.rewind_iteration > 0
    out = tmp_path / "rewind"
    assert main(["find", *TINY, "--rounds", "1", "--rewind-iteration", "20", "--out", str(out)]) == 0
    row = json.loads((out / "seed_0" / "rounds" / "round_01.json").read_text())
    assert row["start_iteration"] == 20 and row["iterations"] == 100


# ---- schedules -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("rounds", [3, 20])
def test_changing_rounds_keeps_every_paper_presets_per_level_rate(name, rounds):
    config = find_args("--preset", name, "--rounds", str(rounds))
    assert config.prune.rounds == rounds
    assert (config.prune.rate, config.prune.layer_rates) == (PRESETS[name].prune.rate, PRESETS[name].prune.layer_rates)


def test_openlth_preset_with_three_rounds_prunes_open_lth_counts_per_level():
    config = find_args("--preset", "lenet300-mnist-openlth", "--rounds", "3")
    torch.manual_seed(0)
    model = MODELS[config.model](**config.model_kwargs)
    pruner = make_pruner(config.prune)
    mask = dense = PruningMask(model)
    eligible = pruner.eligible(mask)
    assert eligible == ["fc1.weight", "fc2.weight"]  # open_lth leaves the output layer alone
    total = count_pruned(dense, eligible)[1]
    alive = total + dense["fc3.weight"].numel()
    for level in range(1, 4):
        mask = next_mask(pruner, Schedule.of(config.prune), model, mask, dense, level)
        alive -= math.ceil(0.2 * alive) + 1  # sparse_global: ceil(20 % of all survivors), plus the one at the threshold
        assert count_pruned(mask, eligible)[0] == total + dense["fc3.weight"].numel() - alive
    assert mask["fc3.weight"].all()


def test_a_target_schedule_lands_exactly_on_its_target_and_refuses_per_layer_rates():
    torch.manual_seed(0)
    model = MODELS["lenet300"]()
    pruner = make_pruner(PruneConfig(target_sparsity=0.9, rounds=4, global_pruning=True))
    mask = dense = PruningMask(model)
    for level in range(1, 5):
        mask = next_mask(pruner, Schedule(4, target=0.9), model, mask, dense, level)
    pruned, total = count_pruned(mask)
    assert pruned == round(0.9 * total)
    with pytest.raises(Exception, match="layer_rates need the per-level form"):
        PruneConfig(target_sparsity=0.9, layer_rates={"*": 0.2})
    with pytest.raises(Exception, match="rate and target_sparsity are both set"):
        PruneConfig(target_sparsity=0.9, rate=0.2)


# ---- pruners as a registry ---------------------------------------------------------------------------------------
def test_find_with_the_nm_pruner_runs_nm_imp_end_to_end(tmp_path):
    out = tmp_path / "nm"
    assert main(["find", *TINY, "--rounds", "2", "--pruner", "nm", "--nm", "2:4", "--out", str(out)]) == 0
    masks = [PruningMask.load(out / "seed_0" / "masks" / f"round_{r:02d}.safetensors") for r in range(3)]
    for mask in masks[1:]:
        assert all(verify_nm_pattern(mask[n], 2, 4) for n in mask.names)
    assert masks[1].sparsity >= 0.5 and masks[2].sparsity > masks[1].sparsity
    assert read_run_config(RunFolder(out)).prune.pruner == "nm"


def test_a_new_pruner_needs_only_its_class_and_a_registry_entry(tmp_path, monkeypatch):
    from lottery_ticket.pruning.base import Pruner
    from lottery_ticket.state import load_state

    class LargestFirst(Pruner):
        """Prunes the largest surviving weights: a deliberately bad criterion, so its effect is unmistakable."""

        def prune(self, model, mask, target_sparsity):  # the base class's prune_fraction passes {layer: target}
            params, new = dict(model.named_parameters()), mask.copy()
            for name, target in target_sparsity.items():
                keep = mask[name]
                count = round(target * keep.numel()) - int((~keep).sum())
                scores = params[name].detach().abs().masked_fill(~keep, -1.0).flatten()
                new.masks[name].view(-1)[scores.topk(count).indices] = False
            return new

    monkeypatch.setitem(PRUNERS, "largest", lambda p, seed: LargestFirst(p.layer_rates, p.exclude))
    out = tmp_path / "largest"
    assert main(["find", *TINY, "--rounds", "1", "--pruner", "largest", "--out", str(out)]) == 0
    weights = load_state(out / "seed_0" / "trained" / "round_00.safetensors")["fc1.weight"].abs()
    mask = PruningMask.load(out / "seed_0" / "masks" / "round_01.safetensors")["fc1.weight"]
    assert weights[~mask].min() >= weights[mask].max()  # the largest were pruned
    assert abs((~mask).float().mean().item() - 0.2) < 1e-3  # at the preset's 20 % a level


# ---- run identity and extending a finished run ---------------------------------------------------------------------
def test_extending_a_finished_run_retrains_nothing_already_done(tmp_path):
    out = tmp_path / "run"
    assert main(["find", *TINY, "--rounds", "3", "--out", str(out)]) == 0
    seed0 = out / "seed_0"
    done = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in seed0.rglob("*") if p.is_file() and p.name != ".lock"}
    assert main(["find", *TINY, "--rounds", "5", "--seeds", "0,1", "--controls", "reinit", "--out", str(out)]) == 0
    for path, (content, mtime) in done.items():
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime, path
    assert (seed0 / "rounds" / "round_05.json").is_file() and (out / "seed_1" / "rounds" / "round_05.json").is_file()
    assert all((seed0 / "controls" / f"random_reinit_round_{r:02d}.json").is_file() for r in range(1, 6))
    config = read_run_config(RunFolder(out))
    assert (config.prune.rounds, config.seeds, config.controls) == (5, (0, 1), ("reinit",))
    masks = masks_of(out)
    reference = tmp_path / "reference"
    assert main(["find", *TINY, "--rounds", "5", "--out", str(reference)]) == 0
    assert masks_of(reference) == masks  # levels 4-5 continue the same schedule


def test_identity_ignores_defaults_and_extent_but_not_the_experiment():
    base = find_args("--preset", "mnist1d-mlp")
    assert base.identity() == find_args("--preset", "mnist1d-mlp", "--rounds", "7", "--seeds", "3,4",
                                        "--controls", "reinit").identity()
    assert base.identity() != find_args("--preset", "mnist1d-mlp", "--lr", "0.01").identity()
    assert base.identity() != find_args("--preset", "mnist1d-mlp", "--rate", "0.3").identity()
    target = find_args("--preset", "mnist1d-mlp", "--target-sparsity", "0.9", "--rounds", "3")
    assert target.identity() != find_args("--preset", "mnist1d-mlp", "--target-sparsity", "0.9", "--rounds", "4").identity()
    assert "pruner" not in json.dumps(base.identity())  # a field at its default is not part of the identity


def test_config_round_trips_exactly_through_config_json(tmp_path):
    config = find_args("--preset", "conv6-cifar10", "--seeds", "2,0", "--controls", "random-prune,reinit",
                       "--rewind-iteration", "5", "--pruner", "2:4")
    out = tmp_path / "run"
    from lottery_ticket.experiment.runner import ExperimentRunner

    ExperimentRunner(config, out)._write_config(config)
    back = read_run_config(RunFolder(out))
    assert back == config and back.identity() == config.identity()
    assert list(back.prune.layer_rates) == list(config.prune.layer_rates)


def test_a_config_json_written_before_the_new_fields_existed_is_the_same_experiment(tmp_path):
    # Written by lottery-ticket 0.1 (commit 1e499bc) for `find --preset mnist1d-mlp --budget 100it --eval-every 50it
    # --rounds 3`: format run/1, sorted keys (so '*' before 'fc3.weight'), no pruner/rate/nm/rewind_mode fields.
    out = tmp_path / "old"
    out.mkdir()
    shutil.copy(FIXTURES / "config_run1_mnist1d_mlp.json", out / "config.json")
    old = read_run_config(RunFolder(out))
    assert old.identity() == find_args(*TINY, "--rounds", "3").identity()
    assert make_pruner(old.prune).rate_for("fc3.weight", -1) == 0.1  # not '*''s 0.2, whatever the key order
    assert main(["find", *TINY, "--rounds", "3", "--out", str(out)]) == 0  # accepted as the same experiment


def test_resuming_a_per_layer_rates_preset_reaches_the_uninterrupted_masks(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["find", *TINY, "--rounds", "3", "--out", str(a)]) == 0
    shutil.copytree(a, b)
    for r in (2, 3):
        (b / "seed_0" / "masks" / f"round_{r:02d}.safetensors").unlink()
        (b / "seed_0" / "rounds" / f"round_{r:02d}.json").unlink()
    assert main(["resume", str(b), "--quiet"]) == 0
    assert masks_of(a) == masks_of(b)
    fc3 = PruningMask.load(b / "seed_0" / "masks" / "round_02.safetensors")["fc3.weight"]
    assert abs(fc3.float().mean().item() - 0.81) < 0.005  # 10 % a level on the output layer: 0.9 ** 2 left


# ---- early-bird state survives a checkpoint ------------------------------------------------------------------------
class Crash(Exception):
    pass


def test_an_early_bird_dense_round_resumed_from_a_checkpoint_stops_at_the_same_step(tmp_path):
    from lottery_ticket.training.callbacks import Callback
    from lottery_ticket.training.early_bird import EarlyBird

    data = load_dataset("mnist1d")
    config = TrainConfig(optimizer="adam", lr=2e-3, batch_size=100, budget="400it")
    pruner = make_pruner(PruneConfig(rate=0.2, layer_rates={"fc3.weight": 0.1, "*": 0.2}))

    def early_bird():
        def first_mask(model):
            dense = PruningMask(model)
            return next_mask(pruner, Schedule(1, rate=0.2), model, dense, dense, 1)
        return EarlyBird(first_mask, every=10, threshold=0.05)

    def fresh_model():
        return MODELS["mnist1d_mlp"]()

    torch.manual_seed(0)
    reference_model = fresh_model()
    init = {k: v.clone() for k, v in reference_model.state_dict().items()}
    reference = Trainer(config, data).train(reference_model, callbacks=[early_bird()])
    assert reference["early_bird_iteration"] is not None and reference["iterations"] < 400

    class CrashAt(Callback):
        every = 1

        def on_step(self, trainer, iteration, loss):
            if iteration == reference["early_bird_iteration"] - 15:  # after a checkpoint, inside the window
                raise Crash

    checkpoint = tmp_path / "ckpt"
    model = fresh_model()
    model.load_state_dict(init)
    with pytest.raises(Crash):
        Trainer(config, data, checkpoint_path=checkpoint, checkpoint_every=10).train(model, callbacks=[early_bird(), CrashAt()])
    model = fresh_model()  # a new process: nothing but the checkpoint survives
    resumed = Trainer(config, data, checkpoint_path=checkpoint, checkpoint_every=10).train(model, callbacks=[early_bird()])
    assert resumed["early_bird_iteration"] == reference["early_bird_iteration"]
    assert resumed["early_bird_distances"] == reference["early_bird_distances"]
    assert all(torch.equal(model.state_dict()[k], reference_model.state_dict()[k]) for k in init)


# ---- several processes on one run folder ----------------------------------------------------------------------------
def _find(*args):
    import os
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "lottery_ticket", "find", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_workers_and_concurrent_processes_give_the_single_process_result(tmp_path):
    args = [*TINY, "--rounds", "1", "--seeds", "0,1", "--controls", "reinit"]
    single, workers, shared = tmp_path / "single", tmp_path / "workers", tmp_path / "shared"
    assert _find(*args, "--out", str(single)).wait() == 0
    assert _find(*args, "--workers", "2", "--out", str(workers)).wait() == 0
    # Two processes started together on one folder: the folder and each seed are locked, nothing is done twice.
    first, second = _find(*args, "--out", str(shared)), _find(*args, "--out", str(shared))
    assert (first.wait(), second.wait()) == (0, 0), first.stderr.read() + second.stderr.read()
    for run in (workers, shared):
        assert metrics_without_timing(run) == metrics_without_timing(single)
        for seed in (0, 1):
            assert masks_of(run, seed) == masks_of(single, seed)


@pytest.mark.slow
def test_a_job_array_of_one_seed_per_process_on_one_folder_gives_the_single_process_result(tmp_path):
    """The SLURM recipe (docs/distributed.md): `find --seeds $SLURM_ARRAY_TASK_ID` per job, one shared folder."""
    args = [*TINY, "--rounds", "1", "--controls", "reinit"]
    single, shared = tmp_path / "single", tmp_path / "shared"
    assert _find(*args, "--seeds", "0,1,2", "--out", str(single)).wait() == 0
    jobs = [_find(*args, "--seeds", str(seed), "--out", str(shared)) for seed in (0, 1, 2)]
    assert [job.wait() for job in jobs] == [0, 0, 0], "".join(job.stderr.read() for job in jobs)
    assert metrics_without_timing(shared) == metrics_without_timing(single)
    for seed in (0, 1, 2):
        assert masks_of(shared, seed) == masks_of(single, seed)
    import json

    assert sorted(json.loads((shared / "config.json").read_text())["experiment"]["seeds"]) == [0, 1, 2]


def test_workers_on_a_machine_with_several_gpus_take_one_gpu_each():
    from lottery_ticket.experiment.runner import worker_device

    assert [worker_device("cuda", i, gpus=4) for i in range(6)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0",
                                                                    "cuda:1"]
    assert worker_device("cuda", 3, gpus=1) == "cuda" and worker_device("cuda:1", 3, gpus=4) == "cuda:1"
    assert worker_device("cpu", 5, gpus=4) == "cpu"


def test_records_and_reports_show_overall_and_eligible_sparsity():
    from lottery_ticket.experiment.report import format_table
    from lottery_ticket.experiment.results import summarize
    from lottery_ticket.imp.records import level_record

    torch.manual_seed(0)
    model = MODELS["lenet300"]()
    pruner = make_pruner(PruneConfig(rate=0.5, global_pruning=True, exclude=("fc3.weight",)))
    dense = PruningMask(model)
    mask = next_mask(pruner, Schedule(1, rate=0.5), model, dense, dense, 1)
    row = level_record(0, 1, "ticket", mask, pruner.eligible(mask), {"accuracy": 0.9})
    eligible_total = 784 * 300 + 300 * 100
    assert row["eligible_sparsity"] == round(0.5 * eligible_total) / eligible_total
    assert row["sparsity"] == round(0.5 * eligible_total) / (eligible_total + 100 * 10)  # fc3 stays dense
    dense_row = level_record(0, 0, "dense", dense, pruner.eligible(dense), {"accuracy": 0.9})
    table = format_table(summarize([dense_row, row]))
    assert "eligible pruned" in table and "  50.2%  " in table and "  50.0%  " in table  # remaining overall, pruned eligible
