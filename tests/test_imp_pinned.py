"""The IMP engine's contracts, pinned on a toy network trained by real SGD: which weights every level and control
starts from, its RNG stream, what a stored stage skips and a lost one recomputes, the records, the log line, the
early-bird hook, pruning-at-init controls, and the two stores."""

import hashlib
import json
import math
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lottery_ticket.errors import LotteryTicketError
from lottery_ticket.experiment.runfolder import CONTROL_FILE, RunFolder
from lottery_ticket.imp import (
    CONTROLS,
    IMP,
    Collective,
    Control,
    EarlyBirdSpec,
    FolderStore,
    MemoryStore,
)
from lottery_ticket.imp.controls import PruneAtInit
from lottery_ticket.imp.engine import stage_seed
from lottery_ticket.imp.records import mask_stats, seal, unseal
from lottery_ticket.imp.store import valid_record
from lottery_ticket.mask import PruningMask
from lottery_ticket.pruning import MagnitudePruner
from lottery_ticket.pruning.schedule import Schedule
from lottery_ticket.state import restore_, snapshot

SIZES = {"fc1.weight": 6 * 8, "fc2.weight": 8 * 8, "out.weight": 8 * 3}


class Net(nn.Module):
    def __init__(self, tiny_fc2: bool = False):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        if tiny_fc2:  # θ₀ whose middle layer is all smallest-magnitude: what a collapse guard must protect
            with torch.no_grad():
                self.fc2.weight.mul_(1e-3)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class Toy:
    """A Trainable: full-batch SGD on a fixed random classification set, the mask re-applied after each step, the
    callbacks called as the real Trainer calls them. Records what each training received."""

    def __init__(self, steps: int = 6, lr: float = 0.5, tiny_fc2: bool = False, extra=None, accuracy=None):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
        self.steps, self.lr, self.tiny_fc2 = steps, lr, tiny_fc2
        self.extra, self.accuracy = extra or {}, accuracy
        self.calls: list[SimpleNamespace] = []

    def build_model(self, seed):
        torch.manual_seed(seed)
        return Net(self.tiny_fc2)

    def train(self, model, mask, *, stage, start_iteration, on_step, callbacks):
        callbacks = list(callbacks)
        self.calls.append(SimpleNamespace(stage=stage, start=start_iteration, rng=torch.initial_seed(), mask=mask.copy(),
                                          weights=snapshot(model), model=model, callbacks=callbacks))
        trainer = SimpleNamespace(model=model, stop_requested=False)
        for cb in callbacks:
            cb.on_train_start(trainer)
        opt = torch.optim.SGD(model.parameters(), lr=self.lr)
        iteration = start_iteration
        with torch.no_grad():
            mask.apply(model)
        while iteration < self.steps:
            opt.zero_grad()
            loss = F.cross_entropy(model(self.x), self.y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                mask.apply(model)
            iteration += 1
            if on_step is not None:
                on_step(iteration, model)
            for cb in callbacks:
                if iteration % cb.every == 0:
                    cb.on_step(trainer, iteration, float(loss.detach()))
            if trainer.stop_requested:
                break
        metrics = {"iterations": iteration}
        for cb in callbacks:
            metrics.update(cb.summary())
        return {**metrics, **self.extra.get(stage, {})}

    def evaluate(self, model):
        if self.accuracy is not None:
            return {"accuracy": self.accuracy}
        with torch.no_grad():
            return {"accuracy": float((model(self.x).argmax(1) == self.y).float().mean())}


def make_imp(trainable=None, store=None, pruner=None, schedule=None, seed=2, **kwargs):
    return IMP(trainable=trainable or Toy(), store=store if store is not None else MemoryStore(),
               pruner=pruner or MagnitudePruner(global_pruning=False), schedule=schedule or Schedule(2, rate=0.5),
               seed=seed, **kwargs)


def alive(mask, name):
    return int(mask[name].sum())


def theta0_model(imp):
    model = imp.trainable.build_model(imp.seed)
    restore_(model, imp.theta0())
    return model


def assert_pruned_smallest(weights, before, after, names):
    """Every weight `after` removed from `before` is no larger in magnitude than every weight it kept (per layer)."""
    for n in names:
        w = weights[n].abs()
        removed, kept = before[n] & ~after[n], after[n]
        assert bool(removed.any()) and bool(kept.any())
        assert float(w[removed].max()) <= float(w[kept].min()), n


# ---- records -------------------------------------------------------------------------------------------------------
def test_a_sealed_record_reads_back_and_an_edited_one_does_not():
    row = {"seed": 1, "round": 2, "kind": "ticket", "accuracy": 0.5}
    sealed = seal(row)
    assert unseal(sealed) == row
    assert unseal(json.loads(json.dumps(sealed))) == row
    assert unseal({**sealed, "accuracy": 0.9}) is None  # an edited accuracy
    assert unseal({**sealed, "record_sha256": "0" * 64}) is None  # a forged digest
    assert unseal(["not", "a", "record"]) is None


def test_a_record_from_before_digests_is_read_as_is_unless_it_carries_record_fields():
    legacy = {"seed": 0, "round": 1, "kind": "ticket", "accuracy": 0.7}
    assert unseal(legacy) == legacy
    assert unseal({**legacy, "record_digest": "abc"}) is None  # a record_* field without the digest: tampered
    assert unseal({**legacy, "recorded": 3}) == {**legacy, "recorded": 3}  # only the record_ prefix counts


def test_the_record_digest_is_the_sha256_of_sorted_json_so_key_order_and_nan_do_not_matter():
    row = {"round": 1, "accuracy": 0.25, "kind": "ticket", "final_train_loss": float("nan")}
    sealed = seal(row)
    body = json.dumps({k: row[k] for k in sorted(row)}, allow_nan=True)  # sorted by hand, NaN as JSON's NaN
    assert sealed["record_sha256"] == hashlib.sha256(body.encode()).hexdigest()
    reordered = {k: row[k] for k in reversed(list(row))}
    assert seal(reordered)["record_sha256"] == sealed["record_sha256"]
    back = unseal(json.loads(json.dumps(sealed)))
    assert back is not None and math.isnan(back["final_train_loss"])


def test_mask_stats_count_all_masked_weights_and_the_eligible_ones_apart():
    masks = {"a": torch.tensor([True, False, False, True]), "b": torch.tensor([True, True, True, False, True, True])}
    mask = PruningMask(masks=masks)
    stats = mask_stats(mask, ["a"])
    layers = stats.pop("layer_sparsities")
    assert stats == {"sparsity": 3 / 10, "eligible_sparsity": 2 / 4, "weights_remaining_pct": 70.0,
                     "num_remaining": 7, "num_total": 10}
    assert layers == {"a": 0.5, "b": pytest.approx(1 / 6)}
    assert mask_stats(mask, [])["eligible_sparsity"] == 0.0  # nothing eligible: no division by zero


# ---- stores --------------------------------------------------------------------------------------------------------
def test_valid_record_trusts_only_this_stages_record():
    good = {"seed": 3, "round": 1, "kind": "ticket", "accuracy": 0.5, "iterations": 10, "layer_sparsities": {}}
    assert valid_record(good, 3, "ticket", 1)
    assert valid_record(good, None, "ticket", 1)  # seed unknown (a folder not named seed_<s>): not checked
    assert valid_record({k: v for k, v in good.items() if k not in ("iterations", "layer_sparsities")}, 3, "ticket", 1)
    for bad in ({**good, "round": 2}, {**good, "kind": "dense"}, {**good, "seed": 4}, {**good, "accuracy": True},
                {**good, "accuracy": float("nan")}, {**good, "accuracy": float("inf")}, {**good, "accuracy": "0.5"},
                {**good, "iterations": 10.5}, {**good, "layer_sparsities": [0.1]}):
        assert not valid_record(bad, 3, "ticket", 1), bad
    assert not valid_record(None, 3, "ticket", 1) and not valid_record("record", 3, "ticket", 1)
    assert not valid_record({**good, "seed": None}, 3, "ticket", 1)


def test_the_memory_store_keeps_theta0_and_the_level_0_and_latest_trained_weights_only():
    store = MemoryStore()
    for key in ("init", "rewind", "trained/0", "trained/1", "trained/2", "trained/3"):
        store.save_state(key, {"w": torch.tensor([float(len(key))])})
    assert sorted(store.states) == ["init", "rewind", "trained/0", "trained/3"]
    mask = PruningMask(masks={"w": torch.tensor([True, False])})
    store.save_mask(1, mask)
    assert store.load_mask(1, Net()) is mask and store.load_mask(2, Net()) is None


def test_the_folder_store_writes_by_default_and_names_an_unknown_state_key(tmp_path):
    sf = RunFolder(tmp_path).seed(3)
    store = FolderStore(sf)
    state = snapshot(Net())
    for key in ("init", "rewind", "trained/12"):
        store.save_state(key, state)
    assert sf.init.is_file() and sf.rewind.is_file() and sf.trained(12).is_file()
    assert all(torch.equal(store.load_state("trained/12")[k], v) for k, v in state.items())
    assert store.load_state("trained/4") is None
    with pytest.raises(LotteryTicketError) as excinfo:
        store.load_state("best")
    assert str(excinfo.value) == "unknown state key 'best'"
    reader = FolderStore(RunFolder(tmp_path).seed(4), is_writer=False)
    reader.save_state("init", state)
    assert not RunFolder(tmp_path).seed(4).init.exists()


def test_the_folder_store_refuses_a_mask_that_does_not_fit_the_model(tmp_path):
    sf = RunFolder(tmp_path).seed(0)
    store = FolderStore(sf)
    mask = PruningMask(Net())
    store.save_mask(1, mask)
    assert store.load_mask(1, Net()) == mask
    store.save_mask(2, PruningMask(nn.Sequential(nn.Linear(3, 3))))  # another architecture's mask
    assert store.load_mask(2, Net()) is None
    assert store.load_mask(3, Net()) is None  # missing


def test_the_folder_store_trusts_only_a_record_of_its_own_seed_and_level(tmp_path):
    sf = RunFolder(tmp_path).seed(5)
    store = FolderStore(sf)
    row = {"seed": 5, "round": 1, "kind": "ticket", "accuracy": 0.5}
    store.save_record("ticket", 1, row)
    assert store.load_record("ticket", 1) == row
    store.save_record("ticket", 2, {**row, "round": 2, "seed": 6})  # copied in from seed 6
    assert store.load_record("ticket", 2) is None
    store.save_record("ticket", 3, row)  # round 1's record under round 3's name
    assert store.load_record("ticket", 3) is None


def test_clearing_a_checkpoint_removes_both_of_its_files(tmp_path):
    sf = RunFolder(tmp_path).seed(0)
    base = sf.checkpoint("round_01")
    base.parent.mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        base.with_suffix(suffix).write_text("x")
    other = sf.checkpoint("round_02").with_suffix(".json")
    other.write_text("x")
    FolderStore(sf).clear_checkpoint("round_01")
    assert not base.with_suffix(".json").exists() and not base.with_suffix(".safetensors").exists()
    assert other.exists()
    FolderStore(sf).clear_checkpoint("round_01")  # already gone: fine


# ---- the engine: where each level starts, its RNG stream, its record -------------------------------------------------
def test_each_stage_trains_on_its_own_fixed_rng_stream():
    toy = Toy()
    imp = make_imp(toy, seed=2, controls=["reinit"])
    imp.run()
    seeds = {call.stage: call.rng for call in toy.calls}
    # seed * 100_003 + stage id: level r is stage r, a control's stages start at its stage_id (reinit: 1000)
    assert seeds == {"round_00": 200_006, "round_01": 200_007, "round_02": 200_008,
                     "random_reinit_round_01": 201_007, "random_reinit_round_02": 201_008}
    assert stage_seed(0, 5) == 5 and stage_seed(7, 0) == 700_021


def test_without_rewinding_every_level_starts_from_theta0_at_step_0():
    toy = Toy()
    levels = []
    imp = make_imp(toy)
    rows = imp.run(after_level=levels.append)
    assert levels == [0, 1, 2]
    theta0 = imp.theta0()
    assert [c.start for c in toy.calls] == [0, 0, 0] and [r["start_iteration"] for r in rows] == [0, 0, 0]
    for call in toy.calls:
        assert all(torch.equal(call.weights[n], theta0[n]) for n in theta0)
    assert toy.calls[1].mask == imp.mask(1) and toy.calls[2].mask == imp.mask(2)
    assert [r["kind"] for r in rows] == ["dense", "ticket", "ticket"] and [r["round"] for r in rows] == [0, 1, 2]
    assert all(r["seed"] == 2 and r["iterations"] == 6 for r in rows)


def test_a_rewound_level_continues_from_the_step_k_weights_by_default():
    toy = Toy()
    imp = make_imp(toy, schedule=Schedule(1, rate=0.5), rewind_iteration=2)
    rows = imp.run()
    assert [c.start for c in toy.calls] == [0, 2] and rows[1]["start_iteration"] == 2 and rows[1]["iterations"] == 6
    rewind = imp.store.load_state("rewind")
    assert rewind is not None and all(torch.equal(toy.calls[1].weights[n], v) for n, v in rewind.items())
    assert not torch.equal(rewind["fc1.weight"], imp.theta0()["fc1.weight"])


def test_rewinding_to_step_1_records_the_weights_after_the_first_step():
    toy = Toy()
    imp = make_imp(toy, schedule=Schedule(1, rate=0.5), rewind_iteration=1)
    rows = imp.run()
    assert rows[1]["start_iteration"] == 1 and len(toy.calls) == 2
    # the weights after one step, recomputed here by hand: θ₀ and one SGD step on the toy loss
    model = theta0_model(imp)
    opt = torch.optim.SGD(model.parameters(), lr=toy.lr)
    F.cross_entropy(model(toy.x), toy.y).backward()
    opt.step()
    rewind = imp.store.load_state("rewind")
    assert all(torch.allclose(rewind[n], v) for n, v in snapshot(model).items())


def test_a_lost_rewind_point_is_recorded_again_by_retraining_level_0():
    toy = Toy()
    store = MemoryStore()
    make_imp(toy, store=store, schedule=Schedule(1, rate=0.5), rewind_iteration=2).run()
    rewind, ticket_start = store.states.pop("rewind"), toy.calls[1].weights
    del store.records[("ticket", 1)]
    toy.calls.clear()
    row = make_imp(toy, store=store, schedule=Schedule(1, rate=0.5), rewind_iteration=2).train_level(1)
    assert [c.stage for c in toy.calls] == ["round_00", "round_01"]  # level 0 retrained, then the ticket
    assert all(torch.equal(store.states["rewind"][n], v) for n, v in rewind.items())
    assert all(torch.equal(toy.calls[1].weights[n], v) for n, v in ticket_start.items())
    assert row["start_iteration"] == 2


def test_lost_trained_weights_are_retrained_and_prune_to_the_same_mask():
    reference = make_imp(Toy())
    expected = reference.mask(2)
    toy = Toy()
    store = MemoryStore()
    first = make_imp(toy, store=store)
    first.train_level(0)
    first.train_level(1)
    del store.states["trained/1"]
    toy.calls.clear()
    again = make_imp(toy, store=store)
    assert again.mask(2) == expected
    assert [c.stage for c in toy.calls] == ["round_01"]  # only the lost level was retrained


def test_an_iterative_level_prunes_the_previous_levels_trained_weights():
    store = MemoryStore()
    trained = {}
    imp = make_imp(Toy(lr=1.0), store=store)
    imp.run(after_level=lambda level: trained.setdefault(level, store.load_state(f"trained/{level}")))
    m0, m1, m2 = imp.mask(0), imp.mask(1), imp.mask(2)
    for n, size in SIZES.items():
        assert (alive(m1, n), alive(m2, n)) == (size // 2, size // 4)  # half of the survivors each level
    assert_pruned_smallest(trained[0], m0, m1, SIZES)
    assert_pruned_smallest(trained[1], m1, m2, SIZES)


def test_a_one_shot_level_prunes_the_dense_trained_weights_to_the_levels_sparsity():
    store = MemoryStore()
    trained = {}
    imp = make_imp(Toy(lr=1.0), store=store, schedule=Schedule(2, rate=0.5, one_shot=True))
    imp.run(after_level=lambda level: trained.setdefault(level, store.load_state(f"trained/{level}")))
    m0, m2 = imp.mask(0), imp.mask(2)
    assert all(alive(m2, n) == size // 4 for n, size in SIZES.items())
    assert_pruned_smallest(trained[0], m0, m2, SIZES)


def test_training_that_ends_before_the_rewind_step_is_refused():
    imp = make_imp(Toy(steps=6), rewind_iteration=50)
    with pytest.raises(LotteryTicketError) as excinfo:
        imp.train_level(0)
    assert str(excinfo.value) == ("training ended before rewind_iteration=50; use a smaller rewind iteration or a "
                                  "longer budget")


def test_an_evaluation_without_accuracy_is_refused():
    toy = Toy()
    toy.evaluate = lambda model: {"loss": 1.0}
    with pytest.raises(LotteryTicketError) as excinfo:
        make_imp(toy).train_level(0)
    assert str(excinfo.value) == "eval_fn returned a dict without 'accuracy'; return a float or {'accuracy': ...}"


def test_each_trained_level_logs_one_line():
    extra = {"round_00": {"train_seconds": 12.4, "early_stop_iteration": 1234}, "round_01": {}}
    lines = []
    pruner = MagnitudePruner(global_pruning=False, exclude=["out.weight"])
    make_imp(Toy(extra=extra, accuracy=0.375), pruner=pruner, schedule=Schedule(1, rate=0.5), seed=4,
             log=lines.append).run()
    # level 1 keeps 24 + 32 of fc1/fc2 and all 24 of out: 80 of 136 weights
    # first the selection (136 of the 155 parameters are in weight matrices), then one line per level
    assert lines == ["seed 4: masked: 87.7 % of the model's 155 weights (\"weights remaining\" is of these); "
                     "weight matrices never pruned: none",
                     "seed 4 round 0/1: dense, accuracy 37.50%, early stop 1,234 it [12 s]",
                     f"seed 4 round 1/1: {100 * 80 / 136:.1f}% weights, accuracy 37.50% [0 s]"]
    assert lines[2].startswith("seed 4 round 1/1: 58.8% weights")


def test_records_count_eligible_sparsity_over_the_pruners_layers_only():
    pruner = MagnitudePruner(global_pruning=False, exclude=["out.weight"])
    imp = make_imp(Toy(), pruner=pruner, schedule=Schedule(1, rate=0.5), controls=["reinit"])
    rows = imp.run()
    control = imp.store.load_record("random_reinit", 1)
    for row in (rows[1], control):
        assert row["eligible_sparsity"] == 56 / 112  # half of fc1 (48) and fc2 (64); out (24) is not eligible
        assert row["sparsity"] == 56 / 136 and row["num_total"] == 136


# ---- controls ------------------------------------------------------------------------------------------------------
def test_a_stored_control_is_reused_but_an_explicit_mask_or_seed_trains_a_new_one():
    toy = Toy()
    imp = make_imp(toy, schedule=Schedule(1, rate=0.5))
    imp.run()
    first = imp.run_control("reinit", 1)
    assert first["init_seed"] == 2 + 10_000 and first["start_iteration"] == 0 and toy.calls[-1].start == 0
    n = len(toy.calls)
    assert imp.run_control("reinit", 1) == first and imp.run_control(CONTROLS["reinit"], 1) == first
    assert len(toy.calls) == n  # read back, not retrained

    by_seed = imp.run_control("reinit", 1, seed=77)
    assert len(toy.calls) == n + 1 and by_seed["init_seed"] == 77
    fresh = Toy().build_model(77)
    assert all(torch.equal(toy.calls[-1].weights[k], v) for k, v in snapshot(fresh).items())

    custom = PruningMask(masks={k: torch.rand(m.shape, generator=torch.Generator().manual_seed(9)) < 0.3
                                for k, m in imp.mask(1).items()})
    by_mask = imp.run_control("reinit", 1, mask=custom)
    assert len(toy.calls) == n + 2 and toy.calls[-1].mask == custom
    assert by_mask["sparsity"] == custom.sparsity and by_mask["init_seed"] == 2 + 10_000
    assert imp.store.load_record("random_reinit", 1) == by_mask  # the latest run is what is stored


def test_a_new_control_class_is_prepared_for_the_level_it_runs_at():
    seen = []

    class Halve(Control):
        key, record, stage_id = "halve", "halve", 9000

        def seed_for(self, seed, level):
            return seed + level

        def prepare(self, imp, level, mask, seed):
            seen.append((level, seed))
            return imp.trainable.build_model(seed), mask, {"halve_level": level}

    toy = Toy()
    imp = make_imp(toy)
    row = imp.run_control(Halve(), 2)
    assert seen == [(2, 4)] and row["halve_level"] == 2 and row["kind"] == "halve" and row["round"] == 2
    assert toy.calls[-1].rng == 2 * 100_003 + 9002


def test_the_collective_checks_the_model_and_mask_that_were_trained():
    class Recording(Collective):
        def __init__(self):
            self.checked = []

        def check_replicas(self, model, mask):
            self.checked.append((model, mask))
            return {"replicas": "agree"}

    collective, toy = Recording(), Toy()
    imp = make_imp(toy, schedule=Schedule(1, rate=0.5), collective=collective)
    rows = imp.run()
    assert len(collective.checked) == 2 and all(r["replicas"] == "agree" for r in rows)
    for (model, mask), call in zip(collective.checked, toy.calls):
        assert model is call.model and mask == call.mask


# ---- early-bird ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold, stop", [(0.5, 18), (0.0, None)])
def test_early_bird_stops_dense_training_once_the_mask_is_still_for_a_window(threshold, stop):
    # lr 0: the weights never move, so every checked mask equals the last; the paper's window of 5 distances is
    # full at the 6th check (step 6 * 3). A threshold of 0 is never undercut.
    toy = Toy(steps=40, lr=0.0)
    imp = make_imp(toy, early_bird=EarlyBirdSpec(threshold=threshold, every=3))
    rows = imp.run()
    assert rows[0]["early_bird_iteration"] == stop and rows[0]["iterations"] == (stop or 40)
    assert rows[0]["early_bird_distances"] == [0.0] * 5
    assert all(r["iterations"] == 40 and "early_bird_iteration" not in r for r in rows[1:])  # tickets train fully
    assert [len(c.callbacks) for c in toy.calls] == [1, 0, 0]


def test_the_early_bird_mask_is_the_first_level_mask_imp_then_prunes():
    # One-shot, over the selected weights only: the mask early-bird watches at the last step of dense training is
    # exactly the level-1 mask pruned from the weights that training ends with.
    toy = Toy(steps=8, lr=1.0)
    imp = make_imp(toy, schedule=Schedule(2, rate=0.5, one_shot=True), selection={"exclude": ["out.weight"]},
                   early_bird=EarlyBirdSpec(threshold=0.0, every=4))
    imp.run()
    assert imp.mask(0).names == ["fc1.weight", "fc2.weight"]
    watched = toy.calls[0].callbacks[0].previous
    assert watched == imp.mask(1) and watched.sparsity == 0.5
    assert imp.mask(2).sparsity == 0.75


# ---- pruning at init -------------------------------------------------------------------------------------------------
class MagnitudeOfTheta0(MagnitudePruner):
    """A pruner of one's own that ranks θ₀ (scores_at_init) and reads no data (no needs_data attribute)."""

    scores_at_init = True


def test_a_pruner_scoring_at_init_prunes_theta0_at_every_level():
    toy = Toy()
    imp = make_imp(toy, pruner=MagnitudeOfTheta0(global_pruning=False))
    imp.run()
    theta0 = imp.theta0()
    m0, m1, m2 = imp.mask(0), imp.mask(1), imp.mask(2)
    assert all((alive(m1, n), alive(m2, n)) == (size // 2, size // 4) for n, size in SIZES.items())
    assert_pruned_smallest(theta0, m0, m1, SIZES)
    assert_pruned_smallest(theta0, m1, m2, SIZES)


def test_a_data_reading_control_without_scoring_data_says_how_to_attach_some():
    imp = make_imp(Toy(), schedule=Schedule(1, rate=0.5))
    with pytest.raises(LotteryTicketError) as excinfo:
        imp.run_control("snip", 1)
    assert str(excinfo.value) == ("the snip pruner reads data this trainer does not give it; attach some: "
                                  "pruner.attach(ScoringData(batches=[(inputs, targets)], input_shape=...))")


def test_a_pruning_at_init_control_keeps_the_ticket_pruners_exclusions_and_collapse_guard():
    pruner = MagnitudePruner(global_pruning=True, exclude=["out.weight"], min_density=0.25)
    imp = make_imp(Toy(tiny_fc2=True), pruner=pruner, schedule=Schedule(1, rate=0.6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the guard's own warning that it stopped fc2 at its floor
        imp.run()
        row = imp.run_control("magnitude-init", 1)
    mask = imp.store.load_mask(1, None)
    assert row["kind"] == "magnitude_init" and row["num_remaining"] == mask.num_remaining  # as many weights as the ticket
    assert row["num_total"] - row["num_remaining"] == round(0.6 * 112)
    at_init = toy_calls_last_mask(imp)
    assert alive(at_init, "out.weight") == 24  # excluded, as by the ticket's pruner
    assert alive(at_init, "fc2.weight") == 16  # θ₀'s smallest layer stops at min_density 0.25 of its 64 weights
    assert alive(at_init, "fc1.weight") == 48 - (67 - 48)


def toy_calls_last_mask(imp):
    return imp.trainable.calls[-1].mask


class DuckPruner:
    """A pruner that is no Pruner subclass: no exclude, no min_density, prunes each layer by magnitude."""

    name = "duck"

    def __init__(self):
        self.inner = MagnitudePruner(global_pruning=False)

    def eligible(self, mask):
        return mask.names

    def prune_fraction(self, model, mask, fraction):
        return self.inner.prune_fraction(model, mask, fraction)


def test_a_pruning_at_init_control_under_a_pruner_without_exclusions_or_guard_uses_the_defaults():
    imp = make_imp(Toy(tiny_fc2=True), pruner=DuckPruner(), schedule=Schedule(1, rate=0.8))
    imp.run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = imp.run_control("magnitude-init", 1)
    ticket = imp.mask(1)
    assert ticket.num_pruned == 38 + 51 + 19  # round(0.8 * 48), round(0.8 * 64), round(0.8 * 24)
    at_init = toy_calls_last_mask(imp)
    assert at_init.num_pruned == ticket.num_pruned and row["eligible_sparsity"] == 108 / 136
    assert alive(at_init, "fc2.weight") == 1  # min_density 0.0: the smallest layer keeps one weight, not none


def test_a_pruning_at_init_control_prunes_as_many_eligible_weights_as_the_ticket_beyond_the_start_mask():
    # The level-0 mask already prunes half of the excluded output layer; the control matches the ticket's count.
    store = MemoryStore()
    start = PruningMask(Net())
    start.masks["out.weight"].view(-1)[::2] = False
    store.save_mask(0, start)
    imp = make_imp(Toy(), store=store, pruner=MagnitudePruner(exclude=["out.weight"]), schedule=Schedule(1, rate=0.5))
    imp.run()
    row = imp.run_control("magnitude-init", 1)
    assert imp.mask(1).num_pruned == 12 + 56
    assert row["num_total"] - row["num_remaining"] == 12 + 56 and toy_calls_last_mask(imp).num_pruned == 68


def test_a_pruning_at_init_control_matches_the_ticket_when_the_start_mask_prunes_eligible_weights():
    # The level-0 mask already prunes 10 of fc1's weights: the ticket keeps them pruned and prunes more; the
    # control's target is the ticket's whole eligible sparsity, so it ends with exactly as many pruned weights.
    store = MemoryStore()
    start = PruningMask(Net())
    start.masks["fc1.weight"].view(-1)[:10] = False
    store.save_mask(0, start)
    imp = make_imp(Toy(), store=store, schedule=Schedule(1, rate=0.5))
    imp.run()
    row = imp.run_control("magnitude-init", 1)
    assert row["num_total"] - row["num_remaining"] == imp.mask(1).num_pruned > start.num_pruned


def test_pruning_at_init_controls_record_under_the_names_the_run_folder_reads():
    for key, record in (("snip", "snip"), ("grasp", "grasp"), ("synflow", "synflow"),
                        ("magnitude-init", "magnitude_init")):
        control = PruneAtInit(key, CONTROLS[key].stage_id)
        assert (control.key, control.record, control.stage_id) == (key, record, CONTROLS[key].stage_id)
        assert CONTROL_FILE.match(f"{control.record}_round_01.json")


def test_a_run_folders_mask_that_does_not_fit_or_is_damaged_is_recomputed(tmp_path):
    sf = RunFolder(tmp_path).seed(2)
    imp = make_imp(Toy(), store=FolderStore(sf), schedule=Schedule(1, rate=0.5))
    imp.run()
    ticket = imp.mask(1)
    PruningMask(nn.Sequential(nn.Linear(3, 3))).save(sf.mask(0))  # another model's dense mask
    sf.mask(1).write_bytes(sf.mask(1).read_bytes()[:40])  # a truncated ticket mask
    again = make_imp(Toy(), store=FolderStore(sf), schedule=Schedule(1, rate=0.5))
    assert again.mask(0) == PruningMask(Net()) and again.mask(1) == ticket
    assert PruningMask.load(sf.mask(0)) == PruningMask(Net()) and PruningMask.load(sf.mask(1)) == ticket  # rewritten
