"""The checkpoint file format: what it stores round-trips exactly, and what it refuses."""

from __future__ import annotations

import json

import torch
from conftest import TinyMLP
from torch import nn

from lottery_ticket.io import read_tensor_metadata
from lottery_ticket.state import snapshot
from lottery_ticket.training.checkpoint import FORMAT, _record_digest, load_checkpoint, save_checkpoint
from lottery_ticket.training.fused import FusedOptimizer


def trained(optimizer_factory, steps=3):
    torch.manual_seed(0)
    model = TinyMLP()
    optimizer = optimizer_factory(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(8, 20)), torch.randint(0, 3, (8,))).backward()
        optimizer.step()
    return model, optimizer


def test_model_optimizer_state_scalars_and_extras_round_trip_exactly(tmp_path):
    model, optimizer = trained(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    first = next(iter(optimizer.state))
    optimizer.state[first]["visits"] = 7  # a non-tensor state entry travels in the JSON record
    path = tmp_path / "ckpt"
    save_checkpoint(path, model, optimizer, 3, {"note": "x"}, extra_tensors={"window": torch.arange(4.0)})
    fresh = TinyMLP()
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.5, momentum=0.9)
    meta = load_checkpoint(path, fresh, fresh_opt)
    assert meta is not None and meta["iteration"] == 3 and meta["extra"] == {"note": "x"}
    assert torch.equal(meta["extra_tensors"]["window"], torch.arange(4.0))
    for (name, a), b in zip(snapshot(model).items(), snapshot(fresh).values()):
        assert torch.equal(a, b), name
    saved, loaded = optimizer.state_dict(), fresh_opt.state_dict()
    assert loaded["param_groups"][0]["lr"] == 0.1
    assert saved["state"].keys() == loaded["state"].keys()
    for idx, state in saved["state"].items():
        assert state.keys() == loaded["state"][idx].keys()
        for key, value in state.items():
            other = loaded["state"][idx][key]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other
    assert loaded["state"][0]["visits"] == 7


def test_a_checkpoint_is_marked_with_its_format_in_both_files(tmp_path):
    model, optimizer = trained(lambda ps: FusedOptimizer(ps, "adam", lr=1e-3))
    path = tmp_path / "ckpt"
    save_checkpoint(path, model, optimizer, 3, {})
    assert read_tensor_metadata(path.with_suffix(".safetensors"))["format"] == FORMAT
    assert json.loads(path.with_suffix(".json").read_text())["format"] == FORMAT


def reseal(record_file, change):
    record = json.loads(record_file.read_text())
    record.pop("record_sha256")
    change(record)
    record_file.write_text(json.dumps({**record, "record_sha256": _record_digest(record)}))


def test_an_edited_record_is_refused_and_a_resealed_one_of_another_format_too(tmp_path):
    model, optimizer = trained(lambda ps: FusedOptimizer(ps, "sgd", lr=0.1, momentum=0.9))
    path = tmp_path / "ckpt"
    save_checkpoint(path, model, optimizer, 3, {})
    record_file = path.with_suffix(".json")
    good = record_file.read_text()

    def fresh():
        m = TinyMLP()
        return m, FusedOptimizer(m.parameters(), "sgd", lr=0.1, momentum=0.9)

    edited = json.loads(good)
    edited["iteration"] = 2  # the record's own digest no longer matches
    record_file.write_text(json.dumps(edited))
    assert load_checkpoint(path, *fresh()) is None
    record_file.write_text(good)
    reseal(record_file, lambda r: r.update(format="lottery_ticket.checkpoint/1"))
    assert load_checkpoint(path, *fresh()) is None
    for bad in ({"iteration": "3"}, {"extra": []}):  # well-sealed, wrong types
        record_file.write_text(good)
        reseal(record_file, lambda r: r.update(bad))
        assert load_checkpoint(path, *fresh()) is None
    record_file.write_text(good)
    assert load_checkpoint(path, *fresh()) is not None


def test_the_record_digest_covers_every_field_in_any_key_order():
    record = {"iteration": 3, "format": FORMAT, "extra": {"a": 1, "b": [1, 2]}}
    assert _record_digest(record) == _record_digest(dict(reversed(list(record.items()))))
    assert _record_digest(record) != _record_digest({**record, "iteration": 4})
    assert _record_digest(record) != _record_digest({**record, "extra": {"a": 1, "b": [2, 1]}})


def test_a_checkpoint_missing_either_file_is_no_checkpoint(tmp_path):
    model, optimizer = trained(lambda ps: FusedOptimizer(ps, "sgd", lr=0.1))
    for missing in (".safetensors", ".json"):
        path = tmp_path / missing.strip(".")
        save_checkpoint(path, model, optimizer, 3, {})
        path.with_suffix(missing).unlink()
        fresh = TinyMLP()
        assert load_checkpoint(path, fresh, FusedOptimizer(fresh.parameters(), "sgd", lr=0.1)) is None


def test_a_checkpoint_whose_optimizer_does_not_fit_leaves_the_model_untouched(tmp_path):
    model, optimizer = trained(lambda ps: FusedOptimizer(ps, "adam", lr=1e-3))
    path = tmp_path / "ckpt"
    save_checkpoint(path, model, optimizer, 3, {})
    target = TinyMLP()
    before = snapshot(target)
    # The model would load, but an optimizer over fewer parameters cannot take the saved state: all or nothing.
    assert load_checkpoint(path, target, FusedOptimizer(list(target.parameters())[:2], "adam", lr=1e-3)) is None
    for (name, a), b in zip(before.items(), snapshot(target).values()):
        assert torch.equal(a, b), name


def test_a_resumed_training_continues_from_the_checkpoint_not_from_the_start(tmp_path):
    from conftest import TinyMLP as Net

    from lottery_ticket.config import TrainConfig
    from lottery_ticket.data.types import ArrayDataset, DataSplits
    from lottery_ticket.training import Trainer

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 20, generator=g)
    data = ArrayDataset(x, (x[:, 0] > 0).long())
    splits = DataSplits("toy", data, None, data, 3, (20,), (0.0,), (1.0,))
    config = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=20, budget="30it")

    class Stop(Exception):
        pass

    def stop_at_17(iteration, model):
        if iteration == 17:
            raise Stop

    ckpt = tmp_path / "ckpt"
    torch.manual_seed(0)
    try:
        Trainer(config, splits, checkpoint_path=ckpt, checkpoint_every=5).train(Net(), on_step=stop_at_17)
    except Stop:
        pass
    steps = []
    torch.manual_seed(0)
    Trainer(config, splits, checkpoint_path=ckpt, checkpoint_every=5).train(Net(), on_step=lambda i, m: steps.append(i))
    assert steps == list(range(16, 31))  # the checkpoint of step 15 was read: 15 steps left, not 30
