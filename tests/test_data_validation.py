"""Every dataset reader checks what it reads: a corrupt CIFAR-10 batch or IDX file is one clear error, and a bad
MNIST-1D cache is regenerated, never a deep traceback or a silently wrong dataset. Fake files are written in the
real on-disk formats (pickled dicts with bytes keys; gzipped IDX; the .npz cache)."""

import gzip
import pickle

import numpy as np
import pytest
import torch

from lottery_ticket import LotteryTicketError
from lottery_ticket.data import DATASETS, load_dataset
from lottery_ticket.data.cifar10 import load_batches
from lottery_ticket.data.idx import load_idx_split
from lottery_ticket.data.mnist1d import generate

# --- CIFAR-10 ------------------------------------------------------------------------------------------------------


def write_batch(path, data, labels):
    # As the originals: a protocol-2 pickle of a dict with bytes keys, data uint8 [N, 3072], labels a list of ints.
    batch = {b"batch_label": b"fake", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * len(labels)}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def test_good_fake_cifar10_batches_load_as_before(tmp_path):
    write_batch(tmp_path / "a", images(3), [0, 9, 4])
    write_batch(tmp_path / "b", images(2, 1).reshape(2, 3, 32, 32), [1, 2])  # already [N, 3, 32, 32]: same pixels
    x, y = load_batches(tmp_path, ["a", "b"])
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert y.tolist() == [0, 9, 4, 1, 2] and torch.equal(x[0].flatten(), torch.from_numpy(images(3)[0]))


def test_cifar10_batch_with_a_label_missing_is_refused_not_shifted(tmp_path):
    # Before: 2 images + 1 label concatenated fine, and every later label moved by one (chance accuracy, exit 0).
    write_batch(tmp_path / "data_batch_1", images(2), [3])
    write_batch(tmp_path / "data_batch_2", images(2), [5, 6])
    with pytest.raises(LotteryTicketError, match=r"data_batch_1: 2 images but labels of shape \(1,\).*replace it"):
        load_batches(tmp_path, ["data_batch_1", "data_batch_2"])


def test_cifar10_through_load_dataset_without_checksums_is_validated(tmp_path):
    # The shared copy needs verify_checksums=False, so this validation is the only guard.
    for name in DATASETS["cifar10"].files[:-1]:
        write_batch(tmp_path / name, images(2), [1, 2])
    write_batch(tmp_path / "data_batch_3", images(2), [1, 2, 3])
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": []}, protocol=2))
    with pytest.raises(LotteryTicketError, match="data_batch_3: 2 images but labels"):
        load_dataset("cifar10", tmp_path, verify_checksums=False, validation=False)
    write_batch(tmp_path / "data_batch_3", images(2), [1, 2])
    data = load_dataset("cifar10", tmp_path, verify_checksums=False, validation=False)
    assert len(data.train) == 10 and len(data.test) == 2


@pytest.mark.parametrize("labels, bad", [([0, 99], "label 99"), ([-1, 0], "label -1"), ([0, 10], "label 10")])
def test_cifar10_label_out_of_range_is_refused_on_load(tmp_path, labels, bad):
    write_batch(tmp_path / "test_batch", images(2), labels)
    with pytest.raises(LotteryTicketError, match=rf"{bad} is outside 0..9"):
        load_batches(tmp_path, ["test_batch"])


@pytest.mark.parametrize("data, labels", [
    (images(2).astype(np.float64) + 0.5, [0, 1]),  # was cast to uint8 silently
    (images(2).astype(np.int64) * 2, [0, 1]),  # values past 255 wrapped silently
    (images(2)[:, :3000], [0, 1]),
    ([[1, 2], [3]], [0, 1]),  # ragged lists: a numpy ValueError before
])
def test_cifar10_data_of_wrong_shape_or_dtype_is_refused(tmp_path, data, labels):
    write_batch(tmp_path / "data_batch_1", data, labels)
    with pytest.raises(LotteryTicketError, match="data_batch_1: .*(expected uint8|not arrays)"):
        load_batches(tmp_path, ["data_batch_1"])


@pytest.mark.parametrize("labels", [[0.5, 1.0], [True, False], [[0], [1]], np.array([0, 1], np.float32)])
def test_cifar10_labels_that_are_not_integers_are_refused(tmp_path, labels):
    write_batch(tmp_path / "data_batch_1", images(2), labels)
    with pytest.raises(LotteryTicketError, match="expected 2 integers"):
        load_batches(tmp_path, ["data_batch_1"])


# --- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------------------------------


def write_idx(path, array, magic=None, dims=None, extra=b""):
    array = np.asarray(array, dtype=np.uint8)
    dims = array.shape if dims is None else dims
    magic = bytes([0, 0, 8, len(dims)]) if magic is None else magic
    header = magic + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.write_bytes(gzip.compress(header + array.tobytes() + extra))


def write_split(folder, prefix="train", n=3, image_shape=(28, 28), labels=None):
    pixels = np.random.default_rng(0).integers(0, 256, (n, *image_shape), dtype=np.uint8)
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", pixels)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10 if labels is None else labels)
    return pixels


def test_good_fake_idx_files_load_as_before(tmp_path):
    pixels = write_split(tmp_path, n=4)
    x, y = load_idx_split(tmp_path, "train")
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.uint8 and torch.equal(x[:, 0], torch.from_numpy(pixels))
    assert y.tolist() == [0, 1, 2, 3] and y.dtype == torch.int64


def test_idx_bad_magic_number_is_one_clear_error(tmp_path):
    write_split(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", [0, 1, 2], magic=bytes([0, 0, 0x0D, 1]))  # float32 code
    with pytest.raises(LotteryTicketError, match="bad magic number"):
        load_idx_split(tmp_path, "train")


@pytest.mark.parametrize("extra, dims", [(b"\x00", None), (b"", (3, 28, 29))])
def test_idx_byte_length_disagreeing_with_the_header_is_one_clear_error(tmp_path, extra, dims):
    write_split(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28)), dims=dims, extra=extra)
    with pytest.raises(LotteryTicketError, match="header promises"):
        load_idx_split(tmp_path, "train")


def test_idx_header_cut_short_is_one_clear_error(tmp_path):
    write_split(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0])))
    with pytest.raises(LotteryTicketError, match="ends inside its IDX header"):
        load_idx_split(tmp_path, "train")


def test_idx_absurd_dims_cannot_wrap_around_to_match_the_length(tmp_path):
    # 2**22 * 2**21 * 2**21 = 2**64, which np.prod wrapped to 0: an empty payload "matched", then reshape blew up.
    write_split(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros(0), dims=(2**22, 2**21, 2**21))
    with pytest.raises(LotteryTicketError, match="header promises"):
        load_idx_split(tmp_path, "train")


@pytest.mark.parametrize("image_shape", [(784, 1), (14, 56), (32, 32)])
def test_idx_images_of_the_wrong_shape_are_refused(tmp_path, image_shape):
    # Self-consistent files (length matches the header) that used to load as the wrong shape.
    write_split(tmp_path, image_shape=image_shape)
    with pytest.raises(LotteryTicketError, match=r"train images have shape .*expected \(N, 28, 28\)"):
        load_idx_split(tmp_path, "train")


def test_idx_empty_image_file_is_refused(tmp_path):
    write_split(tmp_path, n=0)
    with pytest.raises(LotteryTicketError, match=r"shape \(0, 28, 28\)"):
        load_idx_split(tmp_path, "train")


def test_idx_image_and_label_counts_that_disagree_are_refused(tmp_path):
    write_split(tmp_path, n=3, labels=[0, 1])
    with pytest.raises(LotteryTicketError, match="3 images but 2 labels"):
        load_idx_split(tmp_path, "train")


@pytest.mark.parametrize("bad", [10, 255])
def test_idx_label_out_of_range_is_refused(tmp_path, bad):
    write_split(tmp_path, labels=[0, bad, 1])
    with pytest.raises(LotteryTicketError, match=rf"label {bad}, outside 0..9"):
        load_idx_split(tmp_path, "train")


def test_idx_through_load_dataset_without_checksums_is_validated(tmp_path):
    write_split(tmp_path, "train")
    write_split(tmp_path, "t10k", labels=[0, 1, 12])
    with pytest.raises(LotteryTicketError, match="t10k has label 12"):
        load_dataset("mnist", tmp_path, verify_checksums=False, validation=False)
    write_split(tmp_path, "t10k")
    assert len(load_dataset("fashion-mnist", tmp_path, verify_checksums=False, validation=False).test) == 3


# --- MNIST-1D cache ------------------------------------------------------------------------------------------------

SMALL = {"num_samples": 200}  # the real generator, small enough to run in a blink


@pytest.fixture(scope="module")
def fresh():
    return generate(None, **SMALL)


def cached(tmp_path):
    generate(tmp_path, **SMALL)
    (cache,) = tmp_path.glob("mnist1d_*.npz")
    return cache


def assert_same(a, b):
    assert set(a) == set(b) == {"x", "y", "x_test", "y_test"}
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_a_good_cache_is_used_without_regenerating(tmp_path, fresh, monkeypatch):
    cache_file = cached(tmp_path)
    import mnist1d.data

    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda args: pytest.fail("regenerated a good cache"))
    assert_same(generate(tmp_path, **SMALL), fresh)
    with np.load(cache_file) as f:
        assert "sha256" in f.files


@pytest.mark.parametrize("keep", [0, 100, 0.5, -1])
def test_a_truncated_cache_is_regenerated_and_repaired(tmp_path, fresh, keep):
    # Before: zipfile.BadZipFile on every run until the cache was deleted by hand.
    cache_file = cached(tmp_path)
    raw = cache_file.read_bytes()
    cache_file.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    assert_same(generate(tmp_path, **SMALL), fresh)
    assert cache_file.read_bytes() == raw  # rewritten whole (atomically), so the next run reads it again


def test_a_truncated_cache_through_load_dataset(tmp_path):
    first = load_dataset("mnist1d", tmp_path)
    (cache_file,) = tmp_path.glob("mnist1d_*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:1000])
    second = load_dataset("mnist1d", tmp_path)
    assert torch.equal(first.train.y, second.train.y) and torch.equal(first.test.x, second.test.x)


def test_an_altered_label_in_the_cache_is_detected_and_regenerated(tmp_path, fresh):
    # Before: a cache rewritten with one label changed (a valid zip, a valid label) was used silently.
    cache_file = cached(tmp_path)
    with np.load(cache_file) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["y"][0] = (arrays["y"][0] + 1) % 10
    np.savez(cache_file, **arrays)
    assert_same(generate(tmp_path, **SMALL), fresh)
    with np.load(cache_file) as f:
        assert f["y"][0] == fresh["y"][0]


def test_a_flipped_byte_or_a_cache_without_its_digest_is_regenerated(tmp_path, fresh):
    cache_file = cached(tmp_path)
    raw = bytearray(cache_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    cache_file.write_bytes(bytes(raw))
    assert_same(generate(tmp_path, **SMALL), fresh)
    np.savez(cache_file, **fresh)  # the old format (no digest) is rewritten with one
    assert_same(generate(tmp_path, **SMALL), fresh)
    with np.load(cache_file) as f:
        assert "sha256" in f.files


def test_unexpected_output_of_the_mnist1d_package_is_one_clear_error(tmp_path, fresh, monkeypatch):
    import mnist1d.data

    bad = {**fresh, "x": np.where(np.arange(40) == 3, np.nan, fresh["x"])}
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda args: bad)
    with pytest.raises(LotteryTicketError, match="mnist1d package generated .*reinstall it"):
        generate(tmp_path, **SMALL)
    assert not list(tmp_path.glob("mnist1d_*.npz"))  # nothing bad is cached
