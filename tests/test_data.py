"""Datasets from their original files (the real ones on this machine), checksums, splits and safe unpickling."""

import os
import pickle
from pathlib import Path

import pytest
import torch

from lottery_ticket import LotteryTicketError
from lottery_ticket.data import DATASETS, load_dataset, resolve_data_dir
from lottery_ticket.data.cifar10 import safe_load_batch
from lottery_ticket.data.download import download_file, extract_tar
from shared_data import SHARED_DATASETS

SHARED = SHARED_DATASETS
FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason=f"shared datasets not found at {SHARED}")
needs_fashion = pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist", SHARED)


@pytest.fixture(scope="module")
def cifar():
    return load_dataset("cifar10", SHARED, verify_checksums=False)


@needs_shared
def test_mnist_reads_with_official_checksums_and_the_papers_55k_5k_split(mnist):
    assert mnist.train.x.shape == (55000, 1, 28, 28) and mnist.train.x.dtype == torch.uint8
    assert len(mnist.val) == 5000 and len(mnist.test) == 10000
    counts = torch.bincount(torch.cat([mnist.train.y, mnist.val.y]), minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@needs_shared
def test_cifar10_reads_the_pickle_batches_with_the_45k_5k_split(cifar):
    assert cifar.train.x.shape == (45000, 3, 32, 32) and len(cifar.val) == 5000 and len(cifar.test) == 10000
    assert torch.bincount(cifar.test.y, minlength=10).tolist() == [1000] * 10
    assert torch.bincount(torch.cat([cifar.train.y, cifar.val.y]), minlength=10).tolist() == [5000] * 10


@needs_shared
def test_the_shared_cifar10_fails_md5_verification_with_a_way_out():
    # Its README: most images were rebuilt from JPEGs, so the batches' MD5s differ from the official ones.
    with pytest.raises(LotteryTicketError, match="--no-verify-checksums"):
        load_dataset("cifar10", SHARED)


@needs_fashion
def test_fashion_mnist_is_found_in_debians_folder_and_verifies_by_payload():
    data = load_dataset("fashion-mnist")
    assert data.train.x.shape == (55000, 1, 28, 28)
    assert torch.bincount(data.test.y, minlength=10).tolist() == [1000] * 10


@needs_shared
@needs_fashion
def test_files_of_another_dataset_are_named_as_such(tmp_path):
    for f in DATASETS["mnist"].files:
        (tmp_path / f).write_bytes((FASHION / f).read_bytes())
    with pytest.raises(LotteryTicketError, match="is a fashion-mnist file, not mnist"):
        load_dataset("mnist", tmp_path)


@needs_shared
def test_a_truncated_file_is_a_clear_error(tmp_path):
    for f in DATASETS["mnist"].files:
        (tmp_path / f).write_bytes((SHARED / "mnist" / f).read_bytes())
    data = (tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(LotteryTicketError, match="checksum"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(LotteryTicketError, match="truncated"):
        load_dataset("mnist", tmp_path, verify_checksums=False)


def test_missing_files_say_where_we_looked_and_how_to_fix(tmp_path):
    with pytest.raises(LotteryTicketError, match=r"mnist files not found.*--download"):
        resolve_data_dir("mnist", tmp_path)


@needs_shared
def test_env_var_points_at_a_folder_of_datasets(monkeypatch):
    monkeypatch.setenv("LOTTERY_TICKET_DATA", str(SHARED))
    assert resolve_data_dir("mnist") == SHARED / "mnist"
    assert resolve_data_dir("cifar10") == SHARED / "cifar10" / "cifar-10-batches-py"


def test_mnist1d_is_generated_offline_and_cached(tmp_path):
    first = load_dataset("mnist1d", tmp_path)
    assert list(tmp_path.glob("mnist1d_*.npz"))
    second = load_dataset("mnist1d", tmp_path)
    assert torch.equal(first.train.x, second.train.x) and first.input_shape == (40,)
    assert len(first.train) == 3500 and len(first.val) == 500 and len(first.test) == 1000


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(LotteryTicketError, match="refusing to load"):
        safe_load_batch(tmp_path / "data_batch_1")
    assert not marker.exists()


def test_download_checks_md5_and_leaves_no_partial_file(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello lottery")
    import hashlib

    good = hashlib.md5(b"hello lottery").hexdigest()
    out = download_file([src.as_uri()], tmp_path / "out" / "file.bin", good)
    assert out.read_bytes() == b"hello lottery"
    with pytest.raises(LotteryTicketError, match="could not download"):
        download_file(["file:///nonexistent/x", src.as_uri()], tmp_path / "out" / "bad.bin", "0" * 32)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["file.bin"]


def test_tar_extraction_refuses_path_traversal(tmp_path):
    import io
    import tarfile

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    (tmp_path / "dest").mkdir()
    with pytest.raises(LotteryTicketError, match="outside the target folder"):
        extract_tar(archive, tmp_path / "dest")
    assert not (tmp_path / "escape.txt").exists()


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(LotteryTicketError, match="choose from mnist, fashion-mnist, cifar10, mnist1d"):
        load_dataset("svhn")
