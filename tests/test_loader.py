"""The in-memory loader: seeded order, sharding like DistributedSampler, normalization, batched augmentation."""

import torch

from lottery_ticket.data import ArrayDataset, InMemoryLoader
from lottery_ticket.data.loader import random_crop_flip


def images(n=100):
    g = torch.Generator().manual_seed(0)
    return ArrayDataset(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n))


def loader(ds, **kw):
    return InMemoryLoader(ds, 16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), **kw)


def test_same_seed_same_order_and_a_new_epoch_reshuffles():
    ds = images()
    a = [y for _, y in loader(ds, seed=1)]
    b = [y for _, y in loader(ds, seed=1)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    l = loader(ds, seed=1)
    l.set_epoch(1)
    assert not torch.equal(torch.cat(a), torch.cat([y for _, y in l]))
    assert sorted(torch.cat(a).tolist()) == list(range(100))


def test_drop_last_and_length():
    assert len(loader(images(), drop_last=True)) == 6 and len(loader(images())) == 7
    assert sum(len(y) for _, y in loader(images(), drop_last=True)) == 96


def test_ranks_get_disjoint_equal_shards_that_cover_the_epoch():
    ds = images(101)
    shards = [torch.cat([y for _, y in loader(ds, seed=3, rank=r, world_size=2)]) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 50
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_normalization_is_x_over_255_minus_mean_over_std():
    ds = images()
    x, y = next(iter(loader(ds, shuffle=False)))
    expected = (ds.x[:16].float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(x, expected)


def test_crop_is_a_shift_of_the_padded_image_and_flip_mirrors_it():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        found = any(torch.equal(out[i, 0], window) or torch.equal(out[i, 0], window.flip(-1))
                    for dy in range(5) for dx in range(5) for window in [padded[i, 0, dy:dy + 6, dx:dx + 6]])
        assert found
    assert out.shape == x.shape
