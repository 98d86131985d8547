"""The dataset registry end to end on small synthetic datasets in the real on-disk formats (gzipped IDX, pickled
CIFAR-10 batches in a .tar.gz), registered next to the real ones and "downloaded" from file:// URLs: where files are
looked for and what the error says, every file verified (and a foreign one named), what --download fetches, keeps
and repairs and where it puts it, and the DataSplits a registry entry produces. Needs no dataset files and no network.
"""

import dataclasses
import gzip
import hashlib
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MNIST1D_DIR

from lottery_ticket import LotteryTicketError
from lottery_ticket.data import (
    DATASETS,
    ENV_VAR,
    IDX_FILES,
    DatasetSpec,
    default_cache,
    default_dataset,
    download_dataset,
    load_dataset,
    resolve_data_dir,
    verify_files,
)
from lottery_ticket.data.mnist1d import generate

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = IDX_FILES


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def idx_gz(array, mtime: int = 0) -> bytes:
    """A gzipped IDX file as LeCun's: 0, 0, dtype 0x08, ndim, big-endian int32 dims, then the bytes."""
    arr = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(header + arr.tobytes(), mtime=mtime)


# --- a 4x6-pixel, 3-class IDX dataset: 8 training images (the last 2 are the validation split), 3 test images --------
TRAIN_X = np.arange(8 * 4 * 6, dtype=np.uint8).reshape(8, 4, 6)
TRAIN_Y = np.array([0, 1, 2, 0, 1, 2, 2, 1], dtype=np.uint8)
TEST_X = (255 - np.arange(3 * 4 * 6)).astype(np.uint8).reshape(3, 4, 6)
TEST_Y = np.array([2, 0, 1], dtype=np.uint8)
TOY_ARRAYS = dict(zip(IDX_FILES, [TRAIN_X, TRAIN_Y, TEST_X, TEST_Y]))
OTHER_TEST_LABELS = idx_gz(np.array([0, 0, 0], dtype=np.uint8))  # a valid IDX file, but not the registered one


def write_toy_idx(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in TOY_ARRAYS.items():
        (folder / name).write_bytes(idx_gz(arr))
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The default cache folder, inside the test's own tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "lottery_ticket"


@pytest.fixture
def toy_idx(tmp_path, monkeypatch, cache):
    """Registers dataset 'toy-idx', served from tmp_path/source over file:// URLs; returns that source folder."""
    source = write_toy_idx(tmp_path / "source")
    spec = DatasetSpec("toy-idx", IDX_FILES, ["toy-idx", "."], md5={f: md5(source / f) for f in IDX_FILES},
                       urls=[source.as_uri() + "/"], val_size=2, num_classes=3, input_shape=(1, 4, 6), mean=(0.25,),
                       std=(0.5,))
    monkeypatch.setitem(DATASETS, "toy-idx", spec)
    return source


def same_files(folder: Path, source: Path, names=IDX_FILES) -> bool:
    return all((folder / f).read_bytes() == (source / f).read_bytes() for f in names)


def checksum_message(path: Path, dataset: str) -> str:
    return (f"{path} does not match the official {dataset} checksum (corrupt, truncated or modified); replace it "
            "(--download), or pass --no-verify-checksums to use it anyway")


def u8(arr) -> torch.Tensor:
    return torch.from_numpy(np.asarray(arr, dtype=np.uint8))


def i64(arr) -> torch.Tensor:
    return torch.from_numpy(np.asarray(arr, dtype=np.int64))


# --- load_dataset on an IDX registry entry -------------------------------------------------------------------------


def test_an_idx_entry_loads_with_its_own_shape_classes_statistics_and_the_last_examples_as_validation(toy_idx, tmp_path):
    shutil.copytree(toy_idx, tmp_path / "data" / "toy-idx")
    data = load_dataset("toy-idx", tmp_path / "data")
    assert data.name == "toy-idx" and data.num_classes == 3 and data.input_shape == (1, 4, 6)
    assert data.mean == (0.25,) and data.std == (0.5,)
    assert torch.equal(data.train.x, u8(TRAIN_X[:6]).unsqueeze(1)) and torch.equal(data.train.y, i64(TRAIN_Y[:6]))
    assert torch.equal(data.val.x, u8(TRAIN_X[6:]).unsqueeze(1)) and torch.equal(data.val.y, i64(TRAIN_Y[6:]))
    assert torch.equal(data.test.x, u8(TEST_X).unsqueeze(1)) and torch.equal(data.test.y, i64(TEST_Y))
    whole = load_dataset("toy-idx", tmp_path / "data", validation=False)
    assert whole.val is None and torch.equal(whole.train.y, i64(TRAIN_Y))


def test_a_file_with_another_checksum_is_refused_by_default_and_left_alone_without_download(toy_idx, tmp_path):
    folder = write_toy_idx(tmp_path / "data" / "toy-idx")
    (folder / TEST_LABELS).write_bytes(OTHER_TEST_LABELS)
    with pytest.raises(LotteryTicketError) as excinfo:
        load_dataset("toy-idx", tmp_path / "data")
    assert str(excinfo.value) == checksum_message(folder / TEST_LABELS, "toy-idx")
    assert (folder / TEST_LABELS).read_bytes() == OTHER_TEST_LABELS  # not fetched again without --download
    assert load_dataset("toy-idx", tmp_path / "data", verify_checksums=False).test.y.tolist() == [0, 0, 0]


def test_download_fetches_missing_files_into_the_data_dir_and_loads_them(toy_idx, tmp_path, cache):
    data = load_dataset("toy-idx", tmp_path / "data", download=True)
    assert same_files(tmp_path / "data" / "toy-idx", toy_idx) and not cache.exists()
    assert torch.equal(data.test.y, i64(TEST_Y)) and torch.equal(data.train.x, u8(TRAIN_X[:6]).unsqueeze(1))


@pytest.mark.parametrize("layout", ["dataset subfolder", "data dir named after the dataset", "plain data dir"])
def test_download_replaces_a_damaged_file_where_the_dataset_belongs(toy_idx, tmp_path, layout):
    root = tmp_path / "data"
    data_dir, found = {"dataset subfolder": (root, root / "toy-idx"),
                       "data dir named after the dataset": (root / "toy-idx", root / "toy-idx"),
                       "plain data dir": (root / "plain", root / "plain")}[layout]
    write_toy_idx(found)
    (found / TEST_LABELS).write_bytes(OTHER_TEST_LABELS)
    data = load_dataset("toy-idx", data_dir, download=True)
    assert torch.equal(data.test.y, i64(TEST_Y)) and torch.equal(data.val.y, i64(TRAIN_Y[6:]))
    if layout == "plain data dir":  # files lying directly in a folder of another name: a fresh copy beside them
        assert same_files(root / "plain" / "toy-idx", toy_idx) and (found / TEST_LABELS).read_bytes() == OTHER_TEST_LABELS
        assert sorted(p.name for p in root.iterdir()) == ["plain"]
    else:  # repaired in place, nothing nested
        assert same_files(root / "toy-idx", toy_idx) and not (root / "toy-idx" / "toy-idx").exists()
        assert sorted(p.name for p in root.iterdir()) == ["toy-idx"]


# --- download_dataset ------------------------------------------------------------------------------------------------


def test_download_keeps_present_files_and_refetches_only_those_with_a_wrong_md5_when_asked(toy_idx, tmp_path):
    folder = tmp_path / "data" / "toy-idx"
    folder.mkdir(parents=True)
    shutil.copy(toy_idx / TRAIN_IMAGES, folder / TRAIN_IMAGES)
    (toy_idx / TRAIN_IMAGES).unlink()  # a good file present here: fetching it again would fail
    (folder / TEST_LABELS).write_bytes(OTHER_TEST_LABELS)
    assert download_dataset("toy-idx", tmp_path / "data") == folder
    assert (folder / TEST_LABELS).read_bytes() == OTHER_TEST_LABELS  # kept: refetch_bad is off by default
    assert same_files(folder, toy_idx, [TRAIN_LABELS, TEST_IMAGES])
    assert download_dataset("toy-idx", tmp_path / "data", refetch_bad=True) == folder
    assert same_files(folder, toy_idx, [TRAIN_LABELS, TEST_IMAGES, TEST_LABELS])
    assert (folder / TRAIN_IMAGES).read_bytes() == idx_gz(TRAIN_X)


def test_download_goes_to_the_data_dir_else_the_environment_variable_else_the_cache(toy_idx, tmp_path, cache, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert download_dataset("toy-idx", tmp_path / "explicit") == tmp_path / "explicit" / "toy-idx"
    assert download_dataset("toy-idx") == tmp_path / "env" / "toy-idx"
    monkeypatch.delenv(ENV_VAR)
    assert download_dataset("toy-idx") == cache / "toy-idx"
    for folder in (tmp_path / "explicit" / "toy-idx", tmp_path / "env" / "toy-idx", cache / "toy-idx"):
        assert same_files(folder, toy_idx)


def test_a_downloaded_file_with_the_wrong_md5_is_refused_and_not_kept(toy_idx, tmp_path):
    (toy_idx / TRAIN_LABELS).write_bytes(idx_gz(TRAIN_Y[::-1]))
    with pytest.raises(LotteryTicketError, match=f"^could not download {TRAIN_LABELS} "):
        download_dataset("toy-idx", tmp_path / "data")
    assert not (tmp_path / "data" / "toy-idx" / TRAIN_LABELS).exists()


# --- an archive dataset (the CIFAR-10 layout) ------------------------------------------------------------------------

CIFAR_NAMES = DATASETS["cifar10"].files
ARCHIVE = "toy-cifar.tar.gz"


def cifar_batch(seed: int, labels: list[int]) -> dict:
    data = np.random.default_rng(seed).integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    return {b"batch_label": b"toy", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * len(labels)}


BATCHES = {name: cifar_batch(i, [i % 3, (i + 1) % 3]) for i, name in enumerate(CIFAR_NAMES[:6])}


def write_cifar(folder: Path, batches=BATCHES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b", b"c"]}, protocol=2))
    return folder


@pytest.fixture
def toy_cifar(tmp_path, monkeypatch, cache):
    """cifar10 replaced by a 3-class, 12+2-image version whose tarball is served from tmp_path/source."""
    extracted = write_cifar(tmp_path / "staging" / "cifar-10-batches-py")
    (tmp_path / "source").mkdir()
    with tarfile.open(tmp_path / "source" / ARCHIVE, "w:gz") as tar:
        tar.add(extracted, arcname="cifar-10-batches-py")
    spec = dataclasses.replace(DATASETS["cifar10"], md5={f: md5(extracted / f) for f in CIFAR_NAMES},
                               urls=[(tmp_path / "source").as_uri() + "/"], val_size=3, num_classes=3,
                               archive=(ARCHIVE, md5(tmp_path / "source" / ARCHIVE)))
    monkeypatch.setitem(DATASETS, "cifar10", spec)
    return extracted


def test_an_archive_dataset_is_downloaded_extracted_verified_and_split(toy_cifar, tmp_path):
    data = load_dataset("cifar10", tmp_path / "data", download=True)
    folder = tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    assert same_files(folder, toy_cifar, CIFAR_NAMES)
    assert (tmp_path / "data" / "cifar10" / ARCHIVE).read_bytes() == (tmp_path / "source" / ARCHIVE).read_bytes()
    x = np.concatenate([BATCHES[n][b"data"] for n in CIFAR_NAMES[:5]]).reshape(-1, 3, 32, 32)
    y = [label for n in CIFAR_NAMES[:5] for label in BATCHES[n][b"labels"]]
    assert data.name == "cifar10" and data.num_classes == 3 and data.input_shape == (3, 32, 32)
    assert data.mean == (0.4914, 0.4822, 0.4465) and data.std == (0.2470, 0.2435, 0.2616)
    assert torch.equal(data.train.x, u8(x[:7])) and torch.equal(data.train.y, i64(y[:7]))
    assert torch.equal(data.val.x, u8(x[7:])) and torch.equal(data.val.y, i64(y[7:]))
    assert torch.equal(data.test.x, u8(BATCHES["test_batch"][b"data"].reshape(-1, 3, 32, 32)))
    assert data.test.y.tolist() == BATCHES["test_batch"][b"labels"]
    assert download_dataset("cifar10", tmp_path / "again") == tmp_path / "again" / "cifar10" / "cifar-10-batches-py"


def test_an_archive_with_the_wrong_md5_is_refused_and_nothing_is_extracted(toy_cifar, tmp_path):
    archive = tmp_path / "source" / ARCHIVE
    archive.write_bytes(archive.read_bytes() + b"\0")
    with pytest.raises(LotteryTicketError, match=f"^could not download {ARCHIVE} "):
        load_dataset("cifar10", tmp_path / "data", download=True)
    assert not (tmp_path / "data" / "cifar10" / "cifar-10-batches-py").exists()


def test_a_damaged_member_of_an_archive_dataset_is_not_fetched_again(toy_cifar, tmp_path):
    folder = write_cifar(tmp_path / "data" / "cifar10" / "cifar-10-batches-py")
    damaged = pickle.dumps(cifar_batch(99, [0, 1]), protocol=2)
    (folder / "data_batch_3").write_bytes(damaged)
    with pytest.raises(LotteryTicketError) as excinfo:
        load_dataset("cifar10", tmp_path / "data", download=True)
    assert str(excinfo.value) == checksum_message(folder / "data_batch_3", "cifar10")
    assert (folder / "data_batch_3").read_bytes() == damaged and not (tmp_path / "data" / "cifar10" / ARCHIVE).exists()


@pytest.mark.parametrize("batch", ["data_batch_2", "test_batch"])
def test_the_registry_class_count_bounds_cifar_labels_in_training_and_test_batches(toy_cifar, tmp_path, batch):
    folder = write_cifar(tmp_path / "data" / "cifar10", {**BATCHES, batch: cifar_batch(7, [1, 5])})
    with pytest.raises(LotteryTicketError, match=f"{batch}: label 5 is outside 0..2"):
        load_dataset("cifar10", tmp_path / "data", verify_checksums=False)
    assert folder.is_dir()


# --- verify_files ----------------------------------------------------------------------------------------------------


def test_every_file_is_verified_by_md5_not_only_the_first(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(name.encode() * 100)
    spec = DatasetSpec("toy", ["a", "b", "c"], ["."], md5={n: md5(tmp_path / n) for n in "abc"})
    verify_files(spec, tmp_path)
    (tmp_path / "c").write_bytes(b"changed")
    with pytest.raises(LotteryTicketError) as excinfo:
        verify_files(spec, tmp_path)
    assert str(excinfo.value) == checksum_message(tmp_path / "c", "toy")


def test_every_file_is_verified_by_payload_when_its_gzip_differs(tmp_path):
    payloads = {"a.gz": b"first payload" * 50, "b.gz": b"second payload" * 50}
    for name, payload in payloads.items():
        (tmp_path / name).write_bytes(gzip.compress(payload, mtime=0))
    spec = DatasetSpec("toy", list(payloads), ["."], md5={n: "0" * 32 for n in payloads},
                       payload_sha256={n: hashlib.sha256(p).hexdigest() for n, p in payloads.items()})
    verify_files(spec, tmp_path)  # no MD5 matches, every payload does
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"other payload", mtime=0))
    with pytest.raises(LotteryTicketError) as excinfo:
        verify_files(spec, tmp_path)
    assert str(excinfo.value) == checksum_message(tmp_path / "b.gz", "toy")


def test_a_file_of_another_registered_dataset_is_named_by_md5_or_by_payload(tmp_path, monkeypatch):
    payload = b"the payload of toy-a" * 40
    original, regzipped = gzip.compress(payload, mtime=0), gzip.compress(payload, compresslevel=1, mtime=12345)
    assert original != regzipped
    for folder, content in (("original", original), ("regzipped", regzipped), ("garbage", b"not gzip at all")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.gz").write_bytes(content)
    toy_a = DatasetSpec("toy-a", ["x.gz"], ["."], md5={"x.gz": hashlib.md5(original).hexdigest()},
                        payload_sha256={"x.gz": hashlib.sha256(payload).hexdigest()})
    monkeypatch.setitem(DATASETS, "toy-a", toy_a)
    toy_b = DatasetSpec("toy-b", ["x.gz"], ["."], md5={"x.gz": "0" * 32})
    for folder in ("original", "regzipped"):
        verify_files(toy_a, tmp_path / folder)
        with pytest.raises(LotteryTicketError) as excinfo:
            verify_files(toy_b, tmp_path / folder)
        path = tmp_path / folder / "x.gz"
        assert str(excinfo.value) == f"{path} is a toy-a file, not toy-b; point --data-dir at the toy-b files"
    for spec in (toy_a, toy_b):  # matching no dataset at all: the plain checksum message
        with pytest.raises(LotteryTicketError) as excinfo:
            verify_files(spec, tmp_path / "garbage")
        assert str(excinfo.value) == checksum_message(tmp_path / "garbage" / "x.gz", spec.name)


def test_damaged_mnist_named_files_are_a_checksum_error_not_another_dataset(tmp_path):
    for name in IDX_FILES:
        (tmp_path / name).write_bytes(idx_gz(np.zeros((2, 2), dtype=np.uint8)))
    for name in ("mnist", "fashion-mnist"):
        with pytest.raises(LotteryTicketError) as excinfo:
            verify_files(DATASETS[name], tmp_path)
        assert str(excinfo.value) == checksum_message(tmp_path / TRAIN_IMAGES, name)


# --- resolve_data_dir's message ---------------------------------------------------------------------------------------

ALL_MNIST = ", ".join(IDX_FILES)


def test_missing_files_under_a_data_dir_name_the_folders_looked_in_and_the_way_out(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    tail = (f"looked in {d}/mnist, {d}/MNIST/raw, {d}); pass --download to fetch them there, or put the files in {d} "
            f"(or {d}/mnist); LOTTERY_TICKET_DATA is not used when --data-dir is given")
    with pytest.raises(LotteryTicketError) as excinfo:
        resolve_data_dir("mnist", d)
    assert str(excinfo.value) == f"mnist files not found in --data-dir {d} (none of {ALL_MNIST} found; {tail}"
    (d / "MNIST" / "raw").mkdir(parents=True)
    (d / "MNIST" / "raw" / TRAIN_LABELS).write_bytes(b"")
    (d / TEST_IMAGES).write_bytes(b"")
    with pytest.raises(LotteryTicketError) as excinfo:  # the first folder holding some of the files is named
        resolve_data_dir("mnist", d)
    assert str(excinfo.value) == (f"mnist files not found in --data-dir {d} ({d}/MNIST/raw lacks {TRAIN_IMAGES}, "
                                  f"{TEST_IMAGES}, {TEST_LABELS}; {tail}")


def test_missing_files_without_a_data_dir_name_the_environment_and_cache_folders(tmp_path, monkeypatch, cache):
    env = tmp_path / "env"
    monkeypatch.setenv(ENV_VAR, str(env))
    (cache / "mnist").mkdir(parents=True)
    for name in (TRAIN_IMAGES, TEST_LABELS):
        (cache / "mnist" / name).write_bytes(b"")
    with pytest.raises(LotteryTicketError) as excinfo:
        resolve_data_dir("mnist")
    assert str(excinfo.value) == (
        f"mnist files not found ({cache}/mnist lacks {TRAIN_LABELS}, {TEST_IMAGES}; looked in {env}/mnist, "
        f"{env}/MNIST/raw, {env}, {cache}/mnist); pass --download, or put the files in --data-dir DIR (or DIR/mnist), "
        "or set LOTTERY_TICKET_DATA")
    monkeypatch.setenv(ENV_VAR, str(cache))  # a folder met twice is listed once
    with pytest.raises(LotteryTicketError, match=f"; looked in {cache}/mnist, {cache}/MNIST/raw, {cache}\\); pass"):
        resolve_data_dir("mnist")


# --- MNIST-1D, the default ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory):
    """A valid MNIST-1D cache file, generated once (or copied from the tests' own copy, and checked)."""
    folder = tmp_path_factory.mktemp("mnist1d")
    for npz in MNIST1D_DIR.glob("mnist1d_*.npz"):
        shutil.copy(npz, folder / npz.name)
    generate(folder)
    return folder


def test_the_default_dataset_is_mnist1d_cached_in_its_own_folder_with_training_split_statistics(mnist1d_cache, cache):
    assert default_dataset() == "mnist1d"
    shutil.copytree(mnist1d_cache, cache / "mnist1d")
    before = sorted(p.name for p in (cache / "mnist1d").iterdir())
    data = load_dataset()
    assert sorted(p.name for p in cache.iterdir()) == ["mnist1d"]
    assert sorted(p.name for p in (cache / "mnist1d").iterdir()) == before  # read from there, nothing regenerated
    assert data.name == "mnist1d" and data.num_classes == 10 and data.input_shape == (40,)
    assert (len(data.train), len(data.val), len(data.test)) == (3500, 500, 1000)
    assert data.mean == (float(data.train.x.mean()),) and data.std == (float(data.train.x.std()),)
    assert int(torch.cat([data.train.y, data.val.y, data.test.y]).max()) == 9


def test_the_default_cache_is_xdg_cache_home_read_at_each_call_else_dot_cache_in_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in (None, ""):  # an empty XDG_CACHE_HOME counts as unset (the XDG spec)
        if unset is None:
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", unset)
        assert default_cache() == tmp_path / "home" / ".cache" / "lottery_ticket"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache() == tmp_path / "xdg" / "lottery_ticket"
