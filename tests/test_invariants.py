"""Invariants of the core that a plausible slip would break: tie order, exact counts, untouched inputs, zeros before the
first step, bit-exact resume, the LR actually in effect, digests, the rewind point, one-shot levels, the controls'
counts, the validation split, the CSR threshold, early-bird's window and where data is looked for.

Each test computes its expectation independently (by hand for tiny cases, or from first principles) rather than
asking the code under test."""

import json

import pytest
import torch
from conftest import TinyMLP
from torch import nn

from lottery_ticket import (
    LotteryTicketError,
    LotteryTicketFinder,
    MagnitudePruner,
    NMConstrainedPruner,
    NMPruner,
    PruningMask,
    RandomPruner,
    Structured24Pruner,
    enforce_on_every_step,
)
from lottery_ticket.config import TrainConfig
from lottery_ticket.data import (
    ENV_VAR,
    _split_validation,
    load_dataset,
    resolve_data_dir,
)
from lottery_ticket.data.loader import InMemoryLoader
from lottery_ticket.data.types import ArrayDataset, DataSplits
from lottery_ticket.enforce import MaskEnforcer
from lottery_ticket.export.csr import SparseLinear, to_sparse_csr
from lottery_ticket.io import load_tensors, save_tensors
from lottery_ticket.mask import named_parameters
from lottery_ticket.pruning.schedule import Schedule, next_mask
from lottery_ticket.pruning.selection import select_lowest
from lottery_ticket.state import restore_, snapshot
from lottery_ticket.training import Trainer
from lottery_ticket.training.callbacks import Callback
from lottery_ticket.training.checkpoint import load_checkpoint, save_checkpoint
from lottery_ticket.training.early_bird import EarlyBird


# ---- helpers ---------------------------------------------------------------------------------------------------
def toy_splits(n: int = 256, features: int = 20, seed: int = 0) -> DataSplits:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    data = ArrayDataset(x, y)
    return DataSplits("toy", data, None, data, 3, (features,), (0.0,), (1.0,))


def sgd_config(**kw) -> TrainConfig:
    base = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 32, "budget": "12it"}
    base.update(kw)
    return TrainConfig(**base)


def two_layers(shapes=((7, 5), (4, 7)), seed: int = 0) -> nn.Sequential:
    """Bias-free Linear layers ([out, in] given) with distinct random weights: no magnitude ties."""
    torch.manual_seed(seed)
    return nn.Sequential(*[nn.Linear(i, o, bias=False) for o, i in shapes])


def set_weights(model: nn.Module, values: dict[str, list]) -> None:
    params = named_parameters(model)
    with torch.no_grad():
        for name, v in values.items():
            params[name].copy_(torch.tensor(v, dtype=torch.float32).view_as(params[name]))


def clone_mask_tensors(mask: PruningMask) -> dict[str, torch.Tensor]:
    return {n: m.clone() for n, m in mask.items()}


def assert_mask_unchanged(mask: PruningMask, before: dict[str, torch.Tensor]) -> None:
    assert list(mask.masks) == list(before)
    for n, m in before.items():
        assert torch.equal(mask[n], m), f"{n} changed in the input mask"


def alive(mask: PruningMask, name: str) -> int:
    return int(mask[name].sum())


def params_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


# ---- 1. tie-breaking: layer order, then flat index; the first ties are pruned ----------------------------------------
@pytest.mark.parametrize("count,keep_a,keep_b", [
    # A = [0.5, 0.1, 0.5, 0.9], B = [0.5, 0.5, 0.2]: 0.1 and 0.2 go first, then the 0.5s in the order A0, A2, B0, B1.
    (3, [False, False, True, True], [True, True, False]),
    (4, [False, False, False, True], [True, True, False]),
    (5, [False, False, False, True], [False, True, False]),
])
def test_tied_magnitudes_are_pruned_in_layer_order_then_flat_index(count, keep_a, keep_b):
    weights = [torch.tensor([0.5, -0.1, -0.5, 0.9]), torch.tensor([0.5, -0.5, 0.2])]
    keep = [torch.ones(4, dtype=torch.bool), torch.ones(3, dtype=torch.bool)]
    new = select_lowest(weights, keep, count)
    assert new[0].tolist() == keep_a and new[1].tolist() == keep_b


def test_tie_order_counts_only_survivors_and_follows_flat_index_in_a_matrix():
    # A0 (0.5) is already pruned: it is neither a tie to prune again nor counted. Survivors at 0.5: A2, B0, B1.
    weights = [torch.tensor([0.5, 0.1, 0.5, 0.9]), torch.tensor([0.5, 0.5, 0.2])]
    keep = [torch.tensor([False, True, True, True]), torch.ones(3, dtype=torch.bool)]
    new = select_lowest(weights, keep, 3)
    assert new[0].tolist() == [False, False, False, True] and new[1].tolist() == [True, True, False]
    # A 2x3 layer of equal magnitudes (signs differ): the first `count` positions in row-major order go.
    w = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])
    (only,) = select_lowest([w], [torch.ones(2, 3, dtype=torch.bool)], 4)
    assert only.tolist() == [[False, False, False], [False, True, True]]


def test_magnitude_pruner_breaks_ties_globally_by_layer_order_and_per_layer_by_index():
    model = two_layers(((2, 2), (1, 2)))  # 0.weight [2, 2], 1.weight [1, 2]: every weight ties
    set_weights(model, {"0.weight": [0.3, -0.3, 0.3, 0.3], "1.weight": [-0.3, 0.3]})
    mask = MagnitudePruner(global_pruning=True).prune(model, PruningMask(model), 0.5)  # 3 of 6
    assert mask["0.weight"].tolist() == [[False, False], [False, True]] and mask["1.weight"].tolist() == [[True, True]]
    mask = MagnitudePruner(global_pruning=False).prune(model, PruningMask(model), 0.5)  # 2 of 4, 1 of 2
    assert mask["0.weight"].tolist() == [[False, False], [True, True]] and mask["1.weight"].tolist() == [[False, True]]


# ---- 2. global prune_fraction: round(rate * survivors), the globally smallest, exclusions untouched ---------------
def smallest_survivors(model, mask, names, k) -> set[tuple[str, int]]:
    params = named_parameters(model)
    pool = [(float(params[n].detach().reshape(-1)[i].abs()), n, i)
            for n in names for i in torch.nonzero(mask[n].reshape(-1)).reshape(-1).tolist()]
    return {(n, i) for _, n, i in sorted(pool)[:k]}


def newly_pruned(before: PruningMask, after: PruningMask) -> set[tuple[str, int]]:
    return {(n, i) for n in before for i in torch.nonzero(before[n].reshape(-1) & ~after[n].reshape(-1)).reshape(-1).tolist()}


def test_global_prune_fraction_removes_rate_times_survivors_from_the_globally_smallest():
    model = two_layers()  # 35 + 28 = 63 weights
    pruner = MagnitudePruner(global_pruning=True)
    mask = PruningMask(model)
    # 0.3 * 63 = 18.9 -> 19 (a floor would give 18); then 0.3 * 44 = 13.2 -> 13 (a ceil would give 14).
    for expected_count in (19, 13):
        survivors = mask.num_remaining
        new = pruner.prune_fraction(model, mask, 0.3)
        assert survivors - new.num_remaining == expected_count
        assert newly_pruned(mask, new) == smallest_survivors(model, mask, mask.names, expected_count)
        assert not any((new[n] & ~mask[n]).any() for n in mask)  # nothing revived
        mask = new


def test_global_prune_fraction_with_exclude_counts_and_touches_only_eligible_layers():
    model = two_layers()
    # The excluded layer is already partly pruned: it must stay exactly as it is and not count as survivors.
    start = PruningMask(model)
    start.masks["1.weight"].view(-1)[:10] = False
    excluded_before = start["1.weight"].clone()
    new = MagnitudePruner(global_pruning=True, exclude=["1.*"]).prune_fraction(model, start, 0.3)
    assert torch.equal(new["1.weight"], excluded_before)
    assert alive(start, "0.weight") - alive(new, "0.weight") == 10  # round(0.3 * 35) = 10 (not 0.3 * 53 = 16)
    assert newly_pruned(start, new) == smallest_survivors(model, start, ["0.weight"], 10)


def test_global_pruner_with_layer_rates_still_respects_exclude():
    model = two_layers()
    pruner = MagnitudePruner(global_pruning=True, layer_rates={"*": 0.5}, exclude=["1.weight"])
    mask = PruningMask(model)
    for lost in (18, 8):  # the layer's own 0.5, not the 0.2 given: round(17.5) = 18 of 35, then round(8.5) = 8 of 17
        new = pruner.prune_fraction(model, mask, 0.2)
        assert bool(new["1.weight"].all())
        assert alive(mask, "0.weight") - alive(new, "0.weight") == lost
        assert newly_pruned(mask, new) == smallest_survivors(model, mask, ["0.weight"], lost)
        mask = new
    # The one-shot form (cumulative targets from layer rates) respects it too.
    targets = pruner.level_targets(PruningMask(model), 0.2, 2)
    assert set(targets) == {"0.weight"} and targets["0.weight"] == pytest.approx(0.75)
    one_shot = next_mask(pruner, Schedule(2, rate=0.2, one_shot=True), model, PruningMask(model), PruningMask(model), 2)
    assert bool(one_shot["1.weight"].all()) and alive(one_shot, "0.weight") == 9  # 35 - round(26.25)


def test_random_pruner_prune_fraction_respects_exclude_and_counts_per_layer():
    model = two_layers()
    mask = RandomPruner(seed=1, exclude=["0.*"]).prune_fraction(model, PruningMask(model), 0.3)
    assert bool(mask["0.weight"].all())
    assert 28 - alive(mask, "1.weight") == round(0.3 * 28)


# ---- 3. pruners never modify their input; copy() is deep; validate() checks the shape, not the size ----------------
def nm_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 4, bias=False), nn.Linear(4, 4, bias=False))


PRUNER_CALLS = {
    "magnitude-global-prune": lambda m, k: MagnitudePruner(global_pruning=True).prune(m, k, 0.6),
    "magnitude-global-fraction": lambda m, k: MagnitudePruner(global_pruning=True).prune_fraction(m, k, 0.4),
    "magnitude-layer-prune": lambda m, k: MagnitudePruner(global_pruning=False).prune(m, k, 0.6),
    "magnitude-layer-rates": lambda m, k: MagnitudePruner(layer_rates={"0.*": 0.5}).prune_fraction(m, k, 0.2),
    "random-prune": lambda m, k: RandomPruner(seed=0).prune(m, k, 0.6),
    "random-fraction": lambda m, k: RandomPruner(seed=0).prune_fraction(m, k, 0.4),
    "random-like": lambda m, k: RandomPruner(seed=0).like(k),
    "nm-2-4": lambda m, k: NMPruner(2, 4).prune(m, k),
    "nm-1-4": lambda m, k: NMPruner(1, 4).prune(m, k),
    "structured-24": lambda m, k: Structured24Pruner().prune(m, k),
    "nm-constrained": lambda m, k: NMConstrainedPruner(MagnitudePruner(), 2, 4).prune_fraction(m, k, 0.3),
}


@pytest.mark.parametrize("call", PRUNER_CALLS.values(), ids=PRUNER_CALLS.keys())
def test_pruners_never_modify_their_input_mask(call):
    model = nm_model()
    mask = PruningMask(model)
    mask.masks["0.weight"][0, :3] = False  # a partly pruned ticket, so there is something to keep as it is
    mask.masks["1.weight"][2, 1] = False
    before = clone_mask_tensors(mask)
    weights = snapshot(model)
    new = call(model, mask)
    assert_mask_unchanged(mask, before)
    assert params_equal(snapshot(model), weights)  # nor the model
    assert new is not mask and all(new[n] is not mask[n] for n in mask)
    # The result owns its tensors: editing it later must not reach back into the input.
    for n in new:
        new.masks[n].fill_(False)
    assert_mask_unchanged(mask, before)


def test_mask_copy_and_construction_own_their_tensors():
    model = nm_model()
    mask = PruningMask(model)
    before = clone_mask_tensors(mask)
    copy = mask.copy()
    assert copy == mask
    copy.masks["0.weight"][0, 0] = False
    copy.masks["1.weight"].view(-1)[:] = False
    assert_mask_unchanged(mask, before)
    source = {"w": torch.ones(2, 2, dtype=torch.bool)}
    built = PruningMask(masks=source)
    source["w"][0, 0] = False
    assert bool(built["w"].all())


def test_validate_rejects_a_transposed_mask_with_the_same_number_of_elements():
    model = nn.Sequential(nn.Linear(3, 4))  # weight [4, 3]
    transposed = PruningMask(masks={"0.weight": torch.ones(3, 4, dtype=torch.bool)})
    with pytest.raises(LotteryTicketError, match=r"0\.weight \(mask \(3, 4\) vs weight \(4, 3\)\)"):
        transposed.validate(model)
    with pytest.raises(LotteryTicketError, match="shape mismatch"):
        transposed.apply(model)
    flat = PruningMask(masks={"0.weight": torch.ones(12, dtype=torch.bool)})
    with pytest.raises(LotteryTicketError, match="shape mismatch"):
        flat.validate(model)
    PruningMask(masks={"0.weight": torch.ones(4, 3, dtype=torch.bool)}).validate(model)  # the right shape passes


# ---- 4. pruned weights are zero before the first optimizer step ------------------------------------------------------
def magnitude_ticket(model, sparsity=0.7) -> PruningMask:
    return MagnitudePruner().prune(model, PruningMask(model), sparsity)


def pruned_are_zero(model, mask) -> bool:
    params = named_parameters(model)
    return all(not params[n].detach()[~mask[n]].any() for n in mask)


def test_enforce_on_every_step_zeroes_pruned_weights_before_the_first_step(tiny_mlp, toy_data):
    x, y = toy_data
    mask = magnitude_ticket(tiny_mlp)
    assert not pruned_are_zero(tiny_mlp, mask)  # the dense weights: something to zero
    optimizer = torch.optim.SGD(tiny_mlp.parameters(), lr=0.1)
    at_first_step = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: at_first_step.append(pruned_are_zero(tiny_mlp, mask)))
    with enforce_on_every_step(mask, tiny_mlp):
        assert pruned_are_zero(tiny_mlp, mask)  # on entry, before any step
        loss = nn.functional.cross_entropy(tiny_mlp(x), y)
        loss.backward()
        optimizer.step()
    assert at_first_step == [True]
    assert pruned_are_zero(tiny_mlp, mask)


class FirstStepCheck(Trainer):
    """Records, at every step, whether the pruned weights are zero before the optimizer runs."""

    def train_step(self, x, y):
        self.zero_before.append(pruned_are_zero(self.model, self.mask))
        return super().train_step(x, y)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_trainer_zeroes_pruned_weights_before_the_first_optimizer_step(optimizer):
    torch.manual_seed(0)
    model = TinyMLP()
    mask = magnitude_ticket(model)
    assert not pruned_are_zero(model, mask)
    trainer = FirstStepCheck(sgd_config(optimizer=optimizer, budget="3it", momentum=0.0 if optimizer == "adam" else 0.9),
                             toy_splits())
    trainer.zero_before = []
    trainer.train(model, mask)
    assert trainer.zero_before == [True, True, True]
    assert pruned_are_zero(model, mask)


# ---- 5. resuming restores the global RNG (dropout) bit for bit ---------------------------------------------------------
class DropoutMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


def dropout_model() -> DropoutMLP:
    torch.manual_seed(0)
    return DropoutMLP()


class Crash(Exception):
    pass


def test_resume_restores_the_rng_so_dropout_training_is_bit_identical(tmp_path):
    data, cfg = toy_splits(), sgd_config(budget="12it")  # 8 steps an epoch: the resume lands mid-epoch 0
    straight = dropout_model()
    torch.manual_seed(123)
    Trainer(cfg, data).train(straight)

    def crash_after_checkpoint(iteration, model):
        if iteration == 7:  # the checkpoint of step 5 holds the RNG of step 5; steps 6 and 7 drew more since
            raise Crash

    ckpt = tmp_path / "ckpt"
    interrupted = dropout_model()
    torch.manual_seed(123)
    with pytest.raises(Crash):
        Trainer(cfg, data, checkpoint_path=ckpt, checkpoint_every=5).train(interrupted, on_step=crash_after_checkpoint)
    assert json.loads(ckpt.with_suffix(".json").read_text())["iteration"] == 5

    resumed = dropout_model()
    torch.manual_seed(999)  # a new process: the global RNG is anywhere; the checkpoint must put it back
    metrics = Trainer(cfg, data, checkpoint_path=ckpt, checkpoint_every=5).train(resumed)
    assert metrics["iterations"] == 12
    assert params_equal(snapshot(resumed), snapshot(straight))

    # The dropout draws matter: with another RNG stream the weights differ, so the equality above means something.
    other = dropout_model()
    torch.manual_seed(999)
    Trainer(cfg, data).train(other)
    assert not params_equal(snapshot(other), snapshot(straight))


# ---- 6. the learning rate in effect follows lr x schedule(i) -----------------------------------------------------------
class LrRecorder(Trainer):
    def train_step(self, x, y):
        self.used.append(self.optimizer.param_groups[0]["lr"])
        return super().train_step(x, y)


class LrAfterStep(Callback):
    every = 1

    def __init__(self):
        self.after = {}

    def on_step(self, trainer, iteration, loss):
        self.after[iteration] = trainer.optimizer.param_groups[0]["lr"]


# Hand-computed factors of iterations 0..7: warmup multiplies by (i + 1) / warmup while i < warmup; the step
# schedule by gamma ** (number of milestones <= i).
SCHEDULES = {
    "warmup-4": ({"warmup": "4it"}, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "step-3-5": ({"schedule": "step", "milestones": ("3it", "5it"), "gamma": 0.1}, [1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.01]),
    "warmup-4-step-2": ({"warmup": "4it", "schedule": "step", "milestones": ("2it",), "gamma": 0.5},
                        [0.25, 0.5, 0.375, 0.5, 0.5, 0.5, 0.5, 0.5]),
}


@pytest.mark.parametrize("settings,factors", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_learning_rate_after_step_i_is_lr_times_schedule_of_i(settings, factors):
    lr, steps = 0.2, 7
    trainer = LrRecorder(sgd_config(lr=lr, budget=f"{steps}it", momentum=0.0, **settings), toy_splits())
    trainer.used = []
    probe = LrAfterStep()
    torch.manual_seed(0)
    trainer.train(TinyMLP(), callbacks=[probe])
    # Step j (1-based) runs with the factor of iteration j - 1; after step i the optimizer holds the factor of i.
    assert trainer.used == pytest.approx([lr * f for f in factors[:steps]], rel=1e-12)
    assert [probe.after[i] for i in range(1, steps + 1)] == pytest.approx([lr * f for f in factors[1:steps + 1]],
                                                                          rel=1e-12)


def test_a_resumed_training_runs_each_step_at_the_lr_of_the_uninterrupted_run(tmp_path):
    lr, settings, factors = 0.2, *SCHEDULES["warmup-4-step-2"]
    cfg = sgd_config(lr=lr, budget="8it", **settings)
    straight = LrRecorder(cfg, toy_splits())
    straight.used = []
    torch.manual_seed(0)
    straight.train(TinyMLP())
    assert straight.used == pytest.approx([lr * f for f in factors], rel=1e-12)

    def crash(iteration, model):
        if iteration == 3:  # after the checkpoint of step 2: factor(2) = 0.375 differs from factor(3) = 0.5
            raise Crash

    ckpt = tmp_path / "ckpt"
    with pytest.raises(Crash):
        torch.manual_seed(0)
        Trainer(cfg, toy_splits(), checkpoint_path=ckpt, checkpoint_every=2).train(TinyMLP(), on_step=crash)
    resumed = LrRecorder(cfg, toy_splits(), checkpoint_path=ckpt, checkpoint_every=2)
    resumed.used = []
    torch.manual_seed(0)
    model = TinyMLP()
    resumed.train(model)
    assert resumed.used == straight.used[2:]  # steps 3..8, each at the schedule of the iteration before it
    assert params_equal(snapshot(model), snapshot(straight.model))


def test_a_rewound_start_runs_its_first_step_at_the_schedule_of_k():
    lr, settings, factors = 0.2, *SCHEDULES["warmup-4-step-2"]
    trainer = LrRecorder(sgd_config(lr=lr, budget="7it", momentum=0.0, **settings), toy_splits())
    trainer.used = []
    torch.manual_seed(0)
    trainer.train(TinyMLP(), start_iteration=3)
    assert trainer.used == pytest.approx([lr * f for f in factors[3:7]], rel=1e-12)


# ---- 7. a flipped byte inside the tensor data is caught by the digest ----------------------------------------------------
def flip_data_byte(path, offset_in_data: int = 5) -> None:
    raw = bytearray(path.read_bytes())
    header_len = int.from_bytes(raw[:8], "little")
    position = 8 + header_len + offset_in_data
    assert position < len(raw)
    raw[position] ^= 0x01
    path.write_bytes(bytes(raw))


def test_safetensors_with_an_altered_tensor_byte_is_rejected_by_its_digest(tmp_path):
    from safetensors.torch import load_file

    path = tmp_path / "t.safetensors"
    tensors = {"a": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(5)}
    save_tensors(path, tensors)
    assert all(torch.equal(load_tensors(path)[k], v) for k, v in tensors.items())
    size = path.stat().st_size
    flip_data_byte(path)
    assert path.stat().st_size == size
    raw = load_file(str(path))  # still a well-formed safetensors file: only the digest can tell
    assert any(not torch.equal(raw[k], tensors[k]) for k in tensors)
    with pytest.raises(LotteryTicketError, match="damaged"):
        load_tensors(path)


def test_checkpoint_with_an_altered_tensor_byte_is_ignored_even_with_a_resealed_record(tmp_path):
    from lottery_ticket.io import file_digest
    from lottery_ticket.training.checkpoint import _record_digest

    torch.manual_seed(0)
    model = TinyMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 20), torch.zeros(8, dtype=torch.long)
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    path = tmp_path / "ckpt"
    save_checkpoint(path, model, optimizer, 1, {"note": 1})

    fresh = TinyMLP()
    assert load_checkpoint(path, fresh, torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)) is not None

    tensor_file, record_file = path.with_suffix(".safetensors"), path.with_suffix(".json")
    flip_data_byte(tensor_file, 40)
    target = TinyMLP()
    untouched = snapshot(target)
    opt = torch.optim.SGD(target.parameters(), lr=0.1, momentum=0.9)
    assert load_checkpoint(path, target, opt) is None  # the record's file hash no longer matches
    # Reseal the JSON over the altered file: now only the tensors' own digest can catch it.
    record = json.loads(record_file.read_text())
    record.pop("record_sha256")
    record["tensors_sha256"] = file_digest(tensor_file)
    record_file.write_text(json.dumps({**record, "record_sha256": _record_digest(record)}))
    assert load_checkpoint(path, target, opt) is None
    assert params_equal(snapshot(target), untouched) and not opt.state


def test_checkpoint_whose_tensors_were_altered_and_redigested_is_refused_by_the_records_file_hash(tmp_path):
    """The other layer: a tensor file rewritten consistently (new bytes, matching content digest, same length) still
    differs from the file the JSON record committed to."""
    from safetensors.torch import load_file

    from lottery_ticket.io import read_tensor_metadata, tensors_digest

    torch.manual_seed(0)
    model = TinyMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "ckpt"
    save_checkpoint(path, model, optimizer, 3, {})
    tensor_file = path.with_suffix(".safetensors")
    old_digest = read_tensor_metadata(tensor_file)["content_sha256"]
    flip_data_byte(tensor_file, 40)
    new_digest = tensors_digest(load_file(str(tensor_file)))
    raw = tensor_file.read_bytes()
    assert raw.count(old_digest.encode()) == 1 and len(new_digest) == len(old_digest)
    tensor_file.write_bytes(raw.replace(old_digest.encode(), new_digest.encode()))
    load_tensors(tensor_file)  # consistent on its own: the content digest alone would accept it
    target = TinyMLP()
    untouched = snapshot(target)
    assert load_checkpoint(path, target, torch.optim.SGD(target.parameters(), lr=0.1)) is None
    assert params_equal(snapshot(target), untouched)


def test_tensors_digest_changes_with_any_byte_name_or_shape():
    from lottery_ticket.io import tensors_digest

    base = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    d = tensors_digest(base)
    assert d == tensors_digest({"a": torch.tensor([1.0, 2.0, 3.0, 4.0])})
    assert d != tensors_digest({"a": torch.tensor([1.0, 2.0, 3.0, 4.000001])})
    assert d != tensors_digest({"b": torch.tensor([1.0, 2.0, 3.0, 4.0])})
    assert d != tensors_digest({"a": torch.tensor([[1.0, 2.0], [3.0, 4.0]])})
    assert d != tensors_digest({"a": torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)})


# ---- 8. the rewind point is the weights after exactly k steps -----------------------------------------------------------
def trained_for(theta0: dict, cfg: TrainConfig, data) -> dict:
    model = TinyMLP()
    restore_(model, theta0)
    Trainer(cfg, data).train(model)  # dense: the same steps the finder's level 0 takes
    return snapshot(model)


def test_rewind_snapshot_equals_the_weights_after_exactly_k_steps():
    data, k = toy_splits(), 4
    cfg = sgd_config(budget="10it")
    finder = LotteryTicketFinder(TinyMLP, {}, rewind_iteration=k, pruner=MagnitudePruner())
    finder.find_winning_ticket(None, Trainer(cfg, data).as_train_fn(), lambda m: 0.5, 0.5, 1, verbose=False)
    theta0, rewind = finder.initial_state, finder.rewind_state
    assert params_equal(rewind, trained_for(theta0, sgd_config(budget=f"{k}it"), data))
    assert not params_equal(rewind, trained_for(theta0, sgd_config(budget=f"{k - 1}it"), data))
    assert not params_equal(rewind, trained_for(theta0, sgd_config(budget=f"{k + 1}it"), data))


# ---- 9. one-shot levels, the random-pruning control, per-layer rates over levels ---------------------------------------
def test_one_shot_level_mask_equals_pruning_the_dense_trained_weights_to_that_level():
    data, cfg = toy_splits(), sgd_config(budget="10it")
    finder = LotteryTicketFinder(TinyMLP, {}, one_shot=True, pruner=MagnitudePruner(global_pruning=True))
    finder.find_winning_ticket(None, Trainer(cfg, data).as_train_fn(), lambda m: 0.5, 0.75, 3, verbose=False)
    dense = TinyMLP()
    restore_(dense, finder.initial_state)
    Trainer(cfg, data).train(dense)
    total = finder.masks[0].num_total
    for level in (1, 2, 3):
        target = 1 - 0.25 ** (level / 3)  # level r of 3 towards 0.75: (1 - s_r) = 0.25 ** (r / 3)
        expected = MagnitudePruner(global_pruning=True).prune(dense, PruningMask(dense), target)
        assert finder.masks[level] == expected, f"level {level}"
        assert finder.masks[level].num_pruned == round(target * total)


@pytest.mark.parametrize("pruner", [MagnitudePruner(global_pruning=True), MagnitudePruner(global_pruning=False),
                                    RandomPruner(seed=5)], ids=["global", "layer", "random"])
@pytest.mark.parametrize("schedule", [Schedule(3, target=0.75, one_shot=True), Schedule(3, rate=0.4, one_shot=True)],
                         ids=["target", "rate"])
def test_one_shot_next_mask_prunes_the_dense_mask_and_ignores_the_previous_level(tiny_mlp, pruner, schedule):
    dense = PruningMask(tiny_mlp)
    previous = RandomPruner(seed=9).prune(tiny_mlp, dense, 0.3)  # a previous level that one-shot must not build on
    for level in (1, 2, 3):
        target = 1 - 0.25 ** (level / 3) if schedule.target is not None else 1 - 0.6 ** level
        got = next_mask(pruner, schedule, tiny_mlp, previous, dense, level)
        assert got == pruner.prune(tiny_mlp, PruningMask(tiny_mlp), target), f"level {level}"
        ranked_together = isinstance(pruner, MagnitudePruner) and pruner.global_pruning
        assert got.num_pruned == (round(target * 736) if ranked_together else round(target * 640) + round(target * 96))


def test_random_pruning_control_keeps_the_tickets_per_layer_survivor_counts_on_theta0():
    seen, data = [], toy_splits()

    def train_fn(model, mask):
        seen.append((mask.copy(), snapshot(model)))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        enforcer = MaskEnforcer(mask, model)
        x, y = data.train.x[:64], data.train.y[:64]
        for _ in range(2):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            enforcer.step(optimizer)

    # Layer-wise rates so the layers end at different sparsities: a control that mixed them up would show.
    finder = LotteryTicketFinder(TinyMLP, {}, pruner=MagnitudePruner(global_pruning=False,
                                                                    layer_rates={"fc1.*": 0.6, "fc2.*": 0.2}))
    _, ticket, _ = finder.find_winning_ticket(None, train_fn, lambda m: 0.5, 0.9, 2, verbose=False)
    row = finder.random_pruning_control(train_fn, lambda m: 0.5)
    control_mask, entry_state = seen[-1]
    assert control_mask != ticket
    for n in ticket:
        assert alive(control_mask, n) == alive(ticket, n), n
    assert row["layer_sparsities"] == ticket.layer_sparsities
    assert row["num_remaining"] == ticket.num_remaining
    # It trains θ₀ (masked by its own mask), not a fresh init and not the trained ticket.
    for name, value in finder.initial_state.items():
        expected = value * control_mask[name] if name in control_mask.masks else value
        assert torch.equal(entry_state[name], expected), name


@pytest.mark.parametrize("pruner", [MagnitudePruner(global_pruning=False, layer_rates={"fc2.*": 0.1}),
                                    MagnitudePruner(global_pruning=True, layer_rates={"fc2.*": 0.1}),
                                    RandomPruner(seed=0, layer_rates={"fc2.*": 0.1})], ids=["layer", "global", "random"])
def test_a_layer_no_pattern_names_follows_the_schedule_rate_over_levels(tiny_mlp, pruner):
    # fc1 (640 weights) matches no pattern: rate 0.3. fc2 (96) has its own 0.1.
    dense = PruningMask(tiny_mlp)
    for level, (fc1_alive, fc2_alive) in {1: (448, 86), 2: (314, 78), 3: (220, 70)}.items():
        # one-shot: 640 * 0.7 ** r -> 448, 313.6, 219.52; 96 * 0.9 ** r -> 86.4, 77.76, 69.98
        one_shot = next_mask(pruner, Schedule(3, rate=0.3, one_shot=True), tiny_mlp, dense, dense, level)
        assert (alive(one_shot, "fc1.weight"), alive(one_shot, "fc2.weight")) == (fc1_alive, fc2_alive)
        assert pruner.level_targets(dense, 0.3, level)["fc1.weight"] == pytest.approx(1 - 0.7 ** level)
    # iterative: each level prunes round(rate * survivors): fc1 640 -> 448 -> 314 -> 220; fc2 96 -> 86 -> 77 -> 69.
    mask = dense
    for fc1_alive, fc2_alive in [(448, 86), (314, 77), (220, 69)]:
        mask = next_mask(pruner, Schedule(3, rate=0.3), tiny_mlp, mask, dense, 1)
        assert (alive(mask, "fc1.weight"), alive(mask, "fc2.weight")) == (fc1_alive, fc2_alive)


# ---- 10. the validation split and the normalization constants ----------------------------------------------------------
def test_validation_split_is_the_last_val_size_training_examples():
    x = torch.arange(10, dtype=torch.float32).reshape(10, 1) * 10
    y = torch.arange(10)
    train, val = _split_validation(ArrayDataset(x, y), 3, True)
    assert train.y.tolist() == list(range(7)) and val.y.tolist() == [7, 8, 9]
    assert torch.equal(train.x, x[:7]) and torch.equal(val.x, x[7:])
    whole, none = _split_validation(ArrayDataset(x, y), 3, False)
    assert none is None and whole.y.tolist() == list(range(10))
    whole, none = _split_validation(ArrayDataset(x, y), 0, True)
    assert none is None and len(whole) == 10


def test_mnist1d_normalization_is_computed_from_the_training_examples_only():
    data = load_dataset("mnist1d")
    everything = load_dataset("mnist1d", validation=False)
    n = len(data.train)
    assert n == 3500 and len(data.val) == 500 and len(everything.train) == 4000 and everything.val is None
    assert torch.equal(data.train.x, everything.train.x[:n]) and torch.equal(data.val.x, everything.train.x[n:])
    assert data.mean == pytest.approx((float(data.train.x.double().mean()),), rel=1e-5)
    assert data.std == pytest.approx((float(data.train.x.double().std()),), rel=1e-5)
    # Without a validation split every training example counts, and the constants differ measurably.
    assert everything.mean == pytest.approx((float(everything.train.x.double().mean()),), rel=1e-5)
    assert everything.std == pytest.approx((float(everything.train.x.double().std()),), rel=1e-5)
    assert data.mean != pytest.approx(everything.mean, rel=1e-5)


def test_loader_normalizes_uint8_images_per_channel_as_x_over_255_minus_mean_over_std():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 2, 2), generator=g, dtype=torch.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.5, 0.25, 2.0)
    loader = InMemoryLoader(ArrayDataset(x, torch.arange(6)), 6, mean=mean, std=std, shuffle=False)
    (batch, labels), = list(loader)
    expected = (x.double() / 255 - torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)) \
        / torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    assert labels.tolist() == list(range(6))
    assert torch.allclose(batch.double(), expected, atol=1e-5)
    # Float signals (MNIST-1D) are not divided by 255.
    xf = torch.randn(4, 5, generator=g)
    (batch, _), = list(InMemoryLoader(ArrayDataset(xf, torch.arange(4)), 4, mean=(0.3,), std=(2.0,), shuffle=False))
    assert torch.allclose(batch, (xf - 0.3) / 2.0, atol=1e-6)


def test_trainer_feeds_the_model_data_normalized_with_the_splits_constants():
    x = torch.full((4, 3), 5.0)
    data = DataSplits("const", ArrayDataset(x, torch.zeros(4, dtype=torch.long)), None,
                      ArrayDataset(x, torch.zeros(4, dtype=torch.long)), 2, (3,), (1.0,), (2.0,))
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, inputs):
            seen.append(inputs.clone())
            return self.fc(inputs)

    Trainer(sgd_config(batch_size=4, budget="1it"), data).train(Probe())
    assert torch.equal(seen[0], torch.full((4, 3), 2.0))  # (5 - 1) / 2


# ---- 11. the CSR threshold is inclusive -----------------------------------------------------------------------------------
def linear_with_zeros(numel_side: int, zeros: int) -> nn.Linear:
    layer = nn.Linear(numel_side, numel_side)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1, numel_side * numel_side + 1, dtype=torch.float32).view_as(layer.weight))
        layer.weight.view(-1)[:zeros] = 0.0
    return layer


def test_a_layer_exactly_at_the_csr_threshold_is_converted_and_just_below_is_not():
    model = nn.Sequential(linear_with_zeros(4, 12), nn.ReLU(), linear_with_zeros(4, 11))  # 0.75 and 0.6875
    out = to_sparse_csr(model, min_sparsity=0.75)
    assert isinstance(out[0], SparseLinear) and type(out[2]) is nn.Linear
    x = torch.randn(3, 4)
    assert torch.allclose(out(x), model(x), atol=1e-5)
    # The default threshold (0.9): 90 of 100 zeros converts, 89 does not.
    default = to_sparse_csr(nn.Sequential(linear_with_zeros(10, 90), linear_with_zeros(10, 89)))
    assert isinstance(default[0], SparseLinear) and type(default[1]) is nn.Linear
    # Through a mask: the masked copy is what is measured, and the original is left dense.
    dense = nn.Sequential(linear_with_zeros(4, 0))
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep.view(-1)[:12] = False
    converted = to_sparse_csr(dense, PruningMask(masks={"0.weight": keep}), min_sparsity=0.75)
    assert isinstance(converted[0], SparseLinear) and converted[0].nnz == 4
    assert int(torch.count_nonzero(dense[0].weight)) == 16


# ---- 12. early-bird stops only when every distance in a full window is below the threshold -------------------------------
class StubTrainer:
    def __init__(self):
        self.model = None
        self.stop_requested = False


def masks_with_distances(distances_pct: list[int], size: int = 100) -> list[PruningMask]:
    """Masks whose consecutive normalized Hamming distances are exactly distances_pct / 100."""
    keep = torch.ones(size, dtype=torch.bool)
    masks, offset = [PruningMask(masks={"w": keep})], 0
    for d in distances_pct:
        keep = keep.clone()
        idx = (torch.arange(d) + offset) % size
        keep[idx] = ~keep[idx]
        offset += d
        masks.append(PruningMask(masks={"w": keep}))
    return masks


def run_early_bird(distances_pct, window=3, threshold=0.1, every=10):
    masks = iter(masks_with_distances(distances_pct))
    bird = EarlyBird(lambda model: next(masks), every=every, threshold=threshold, window=window)
    trainer = StubTrainer()
    bird.on_train_start(trainer)
    stopped_at_check = None
    for check in range(len(distances_pct) + 1):
        bird.on_step(trainer, every * (check + 1), 0.0)
        if trainer.stop_requested:
            stopped_at_check = check
            break
    return bird, trainer, stopped_at_check


@pytest.mark.parametrize("distances,stop_check", [
    ([5, 5, 5], 3),              # the first full window, all below: stop at the 4th mask (3 distances)
    ([5, 5, 10, 5, 5, 5], 6),    # a distance *at* the threshold holds it off until it leaves the window
    ([50, 5, 5, 20, 9, 1, 2, 3], 7),  # windows [50,5,5] [5,5,20] [5,20,9] [20,9,1] hold; [9,1,2] stops
    ([5, 5], None),              # a window not yet full never stops, even when every distance is small
    ([10, 10, 10, 10], None),    # at the threshold is not below it
    ([11, 2, 2], None),
])
def test_early_bird_stops_exactly_when_a_full_window_is_all_below_threshold(distances, stop_check):
    bird, trainer, stopped = run_early_bird(distances)
    assert stopped == stop_check
    assert trainer.stop_requested is (stop_check is not None)
    assert bird.stopped_at == (None if stop_check is None else 10 * (stop_check + 1))
    if stop_check is not None:
        assert list(bird.distances) == pytest.approx([d / 100 for d in distances[stop_check - 3:stop_check]])


def test_early_bird_forgets_its_window_on_a_new_training():
    masks = iter(masks_with_distances([5, 5]) + masks_with_distances([5]))
    bird = EarlyBird(lambda model: next(masks), every=1, threshold=0.1, window=3)
    trainer = StubTrainer()
    bird.on_train_start(trainer)
    for it in range(1, 4):
        bird.on_step(trainer, it, 0.0)
    bird.on_train_start(trainer)  # a new dense round: the old window and previous mask must not count
    for it in range(1, 3):
        bird.on_step(trainer, it, 0.0)
    assert list(bird.distances) == pytest.approx([0.05]) and not trainer.stop_requested


# ---- an explicit data dir is the only place looked in ------------------------------------------------------------------
def fake_dataset_root(root, name="mnist"):
    from lottery_ticket.data import DATASETS

    folder = root / name
    folder.mkdir(parents=True)
    for f in DATASETS[name].files:
        (folder / f).write_bytes(b"not checked by the lookup")
    return folder


def test_an_explicit_data_dir_never_falls_back_to_the_environment(tmp_path, monkeypatch):
    env_folder = fake_dataset_root(tmp_path / "env")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_data_dir("mnist") == env_folder  # without --data-dir the variable is used
    empty = tmp_path / "empty"
    empty.mkdir()
    for call in (lambda: resolve_data_dir("mnist", empty), lambda: load_dataset("mnist", empty)):
        with pytest.raises(LotteryTicketError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and f"mnist files not found in --data-dir {empty}" in message
        assert "--download" in message and str(tmp_path / "env") not in message
    # A data dir that has the files is used, whatever the variable says.
    own = fake_dataset_root(tmp_path / "own")
    assert resolve_data_dir("mnist", tmp_path / "own") == own


def test_cli_data_dir_without_the_files_is_one_line_naming_that_folder(tmp_path, monkeypatch, capsys):
    from lottery_ticket.cli import main

    fake_dataset_root(tmp_path / "env")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    code = main(["find", "--preset", "mnist1d-mlp", "--budget", "60it", "--eval-every", "30it", "--rounds", "1", "--quiet",
                 "--dataset", "mnist",
                 "--model", "lenet300", "--data-dir", str(empty), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and f"mnist files not found in --data-dir {empty}" in err
    assert not out.exists()


def test_the_environment_fixture_hides_the_users_dataset_variables():
    import os

    assert ENV_VAR not in os.environ and "LOTTERY_TICKET_MIRROR" not in os.environ



# ---- the per-round schedule lands exactly on the target -----------------------------------------------------------------
def test_the_last_round_is_exactly_the_target_and_earlier_rounds_follow_the_geometric_schedule():
    from lottery_ticket.sparsity import per_round_rate, sparsity_after_round

    for target, rounds in ((0.5, 2), (0.5, 11), (0.9, 3)):  # the formula misses 0.5 by an ulp at 2 and 11 rounds
        rate = per_round_rate(target, rounds)
        assert sparsity_after_round(target, rounds, rounds) == target  # not 1-(1-rate)**rounds, which misses by an ulp
        assert sparsity_after_round(target, rounds, rounds + 1) == target
        assert sparsity_after_round(target, rounds, 1) == pytest.approx(rate)
        assert sparsity_after_round(target, rounds, 2) == pytest.approx(1 - (1 - rate) ** 2)
    for bad in (1.5, -0.1):
        with pytest.raises(LotteryTicketError, match=rf"^target_sparsity={bad} is outside \[0, 1\)"):
            per_round_rate(bad, 3)
        with pytest.raises(LotteryTicketError, match=rf"^target_sparsity={bad} is outside \[0, 1\)"):
            sparsity_after_round(bad, 3, 3)


def test_schedule_and_rounds_errors_name_the_setting_and_the_fix():
    from lottery_ticket.sparsity import check_rounds

    with pytest.raises(LotteryTicketError, match=r"^rounds=0 must be an integer >= 1; pass e.g\. rounds=5$"):
        Schedule(rounds=0, rate=0.2)
    for bad in (True, 2.0, -1):
        with pytest.raises(LotteryTicketError, match=rf"^pruning_rounds={bad!r} must be an integer >= 1"):
            check_rounds(bad)
    assert check_rounds(1) == 1
    with pytest.raises(LotteryTicketError, match=r"^a schedule takes a per-level rate or a final target sparsity, "
                                                 r"exactly one; pass e\.g\. rate=0\.2 or target_sparsity=0\.9$"):
        Schedule(rounds=3, rate=0.2, target=0.9)
    with pytest.raises(LotteryTicketError, match=r"^rate=1\.5 is outside \[0, 1\)"):
        Schedule(rounds=3, rate=1.5)
    with pytest.raises(LotteryTicketError, match=r"^target_sparsity=1\.5 is outside \[0, 1\)"):
        Schedule(rounds=3, target=1.5)


@pytest.mark.parametrize("schedule", [Schedule(rounds=2, rate=0.5), Schedule(rounds=2, target=0.75)],
                         ids=["rate", "target"])
def test_next_mask_refuses_level_0_and_iterative_levels_build_on_the_previous_mask(schedule):
    model = two_layers()
    dense = PruningMask(model)
    with pytest.raises(LotteryTicketError, match=r"^level=0: level 0 is the dense network, pruning starts at level 1$"):
        next_mask(MagnitudePruner(), schedule, model, dense, dense, 0)
    first = next_mask(MagnitudePruner(), schedule, model, dense, dense, 1)
    with torch.no_grad():  # "retrained" weights whose ranking differs from the first level's
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    second = next_mask(MagnitudePruner(), schedule, model, first, dense, 2)
    # Iterative: level 2 prunes among level 1's survivors only; pruning the dense mask would revive some.
    assert second.num_remaining < first.num_remaining < dense.num_remaining
    assert all(bool((second[n] <= first[n]).all()) for n in dense.names)


def test_a_sparsity_of_one_or_a_percentage_gets_a_hint():
    from lottery_ticket.sparsity import check_sparsity

    with pytest.raises(LotteryTicketError, match=r"^sparsity=1\.0 is outside \[0, 1\); .* \(1 would prune every weight; "
                                                 r"e\.g\. 0\.99 keeps 1 %\)$"):
        check_sparsity(1.0)
    with pytest.raises(LotteryTicketError, match=r"^sparsity=90 is outside \[0, 1\); .* \(did you mean 0\.9\?\)$"):
        check_sparsity(90)
    with pytest.raises(LotteryTicketError, match=r"^sparsity=-0\.5 is outside \[0, 1\); pass the fraction of weights "
                                                 r"to prune, e\.g\. 0\.9$"):
        check_sparsity(-0.5)
    with pytest.raises(LotteryTicketError, match=r"\(did you mean 0\.015\?\)$"):
        check_sparsity(1.5)
    for no_hint in (100.0, 100.5):
        with pytest.raises(LotteryTicketError, match=r"e\.g\. 0\.9$"):
            check_sparsity(no_hint)
    with pytest.raises(LotteryTicketError, match=r"^sparsity='lots' is not a number"):
        check_sparsity("lots")
    assert check_sparsity("0.25") == 0.25


# Pinned by the mutation run of 2026-12-04 (docs/bench/mutation_core.txt) ----------------------------------------
def test_max_rounds_is_allowed_and_one_more_is_one_line():
    from lottery_ticket.sparsity import MAX_ROUNDS, check_rounds

    check_rounds(MAX_ROUNDS)
    with pytest.raises(LotteryTicketError, match=f"rounds={MAX_ROUNDS + 1} is more than {MAX_ROUNDS} levels"):
        check_rounds(MAX_ROUNDS + 1)


def test_a_layer_left_at_its_sparsity_is_not_read_so_its_nan_weights_do_not_stop_the_others():
    from torch import nn

    from lottery_ticket import MagnitudePruner, PruningMask

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 4))
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")  # a layer this call does not prune
    mask = MagnitudePruner(global_pruning=False).prune(model, PruningMask(model), {"0.weight": 0.5, "1.weight": 0.0})
    assert mask.layer_sparsities == {"0.weight": 0.5, "1.weight": 0.0}


def test_an_unknown_control_lists_the_controls_and_every_control_says_what_it_is():
    from lottery_ticket.imp.controls import CONTROLS, PruneAtInit, check_controls

    with pytest.raises(LotteryTicketError) as info:
        check_controls(["nope"])
    assert str(info.value) == f"unknown control(s) ['nope']; choose from {', '.join(CONTROLS)}"
    for name, control in CONTROLS.items():
        assert isinstance(control.summary, str) and len(control.summary) > 20, name
    # CONTROLS is built at import; a control made now must say what it is too
    assert PruneAtInit("grasp", 4000).summary == CONTROLS["grasp"].summary and "grasp's mask" in CONTROLS["grasp"].summary
