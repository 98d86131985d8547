"""Datasets read from their original files (no torchvision), as whole tensors in memory.

DATASETS maps a name to a DatasetSpec; load_dataset(name) finds the files, checks them, and returns
DataSplits with the paper's validation split. MNIST-1D is generated offline and is the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import LotteryTicketError
from .checksums import file_md5, payload_sha256
from .cifar10 import load_batches
from .download import download_file, extract_tar
from .idx import load_idx_split
from .loader import InMemoryLoader, torch_dataloader
from .mnist1d import load_mnist1d
from .types import ArrayDataset, DataSplits

ENV_VAR = "LOTTERY_TICKET_DATA"
IDX_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
CIFAR_FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"]


def default_cache() -> Path:
    """$XDG_CACHE_HOME/lottery_ticket (default ~/.cache/lottery_ticket), read at each call, not at import: a
    program (or a test) that sets XDG_CACHE_HOME after importing us still gets the folder it names."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lottery_ticket"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: list[str]
    subdirs: list[str]  # where, under a data dir, the files may sit
    md5: dict[str, str] = field(default_factory=dict)  # official MD5s of the distributed files
    payload_sha256: dict[str, str] = field(default_factory=dict)  # of decompressed IDX payloads (re-gzipped copies)
    urls: list[str] = field(default_factory=list)  # base URLs, tried in order
    archive: tuple[str, str] | None = None  # (file name, md5) for datasets shipped as one tarball
    system_dirs: list[str] = field(default_factory=list)
    val_size: int = 0
    num_classes: int = 10
    input_shape: tuple[int, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist", IDX_FILES, ["mnist", "MNIST/raw", "."],
        md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3", "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        payload_sha256={"train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        urls=["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        val_size=5000, input_shape=(1, 28, 28), mean=(0.1307,), std=(0.3081,)),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", IDX_FILES, ["fashion-mnist", "FashionMNIST/raw", "."],
        md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
             "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79", "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        # Payload hashes of Debian's dataset-fashion-mnist (re-gzipped upstream files; the gz MD5s differ).
        payload_sha256={"train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        urls=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        system_dirs=["/usr/share/datasets/fashion-mnist"],
        val_size=5000, input_shape=(1, 28, 28), mean=(0.2860,), std=(0.3530,)),
    "cifar10": DatasetSpec(
        "cifar10", CIFAR_FILES, ["cifar10/cifar-10-batches-py", "cifar-10-batches-py", "cifar10", "."],
        md5={"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
             "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
             "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
             "batches.meta": "5ff9c542aee3614f3951f8cda6e48888"},
        urls=["https://www.cs.toronto.edu/~kriz/"], archive=("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
        val_size=5000, input_shape=(3, 32, 32), mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "mnist1d": DatasetSpec("mnist1d", [], [], val_size=500, input_shape=(40,)),
}


def _check_name(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise LotteryTicketError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]


def _search_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """An explicit --data-dir is the only root: falling back to $LOTTERY_TICKET_DATA would train on other files."""
    if data_dir:
        return [Path(data_dir)]
    return [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []


def resolve_data_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding all of `name`'s files: --data-dir alone when given; else $LOTTERY_TICKET_DATA, then
    system and cache dirs."""
    spec = _check_name(name)
    candidates = [root / sub for root in _search_roots(data_dir) for sub in spec.subdirs]
    if not data_dir:
        candidates += [Path(d) for d in spec.system_dirs] + [default_cache() / name]
    for folder in candidates:
        if all((folder / f).is_file() for f in spec.files):
            return folder
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    partial = next((c for c in candidates if any((c / f).is_file() for f in spec.files)), None)
    missing = [f for f in spec.files if partial is None or not (partial / f).is_file()]
    where = f"{partial} lacks {', '.join(missing)}" if partial else f"none of {', '.join(spec.files)} found"
    if data_dir:
        raise LotteryTicketError(f"{name} files not found in --data-dir {data_dir} ({where}; looked in {looked}); pass "
                                 f"--download to fetch them there, or put the files in {data_dir} (or "
                                 f"{Path(data_dir) / spec.subdirs[0]}); {ENV_VAR} is not used when --data-dir is given")
    raise LotteryTicketError(f"{name} files not found ({where}; looked in {looked}); pass --download, or put the files in "
                             f"--data-dir DIR (or DIR/{spec.subdirs[0]}), or set {ENV_VAR}")


def verify_files(spec: DatasetSpec, folder: Path) -> None:
    """Each file must match its official MD5 (or, for IDX, the known payload). Names the file and the way out."""
    for f in spec.files:
        path = folder / f
        if spec.md5.get(f) == file_md5(path):
            continue
        if f in spec.payload_sha256 and payload_sha256(path) == spec.payload_sha256[f]:
            continue
        other = next((o.name for o in DATASETS.values() if o is not spec and f in o.md5 and
                      (o.md5[f] == file_md5(path) or (f in o.payload_sha256 and payload_sha256(path) == o.payload_sha256[f]))), None)
        if other:
            raise LotteryTicketError(f"{path} is a {other} file, not {spec.name}; point --data-dir at the {spec.name} files")
        raise LotteryTicketError(f"{path} does not match the official {spec.name} checksum (corrupt, truncated or modified); "
                                 "replace it (--download), or pass --no-verify-checksums to use it anyway")


def download_dataset(name: str, data_dir: str | os.PathLike | None = None, refetch_bad: bool = False) -> Path:
    """Download `name`'s original files into data_dir (default: the cache) and return the folder.

    Files already there are kept, unless `refetch_bad` and their MD5 is not the official one."""
    spec = _check_name(name)
    root = Path(data_dir) if data_dir else (Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else default_cache())
    if spec.archive:
        archive_name, md5 = spec.archive
        archive = download_file([u + archive_name for u in spec.urls], root / name / archive_name, md5)
        extract_tar(archive, root / name)
        return root / name / "cifar-10-batches-py"
    folder = root / name
    for f in spec.files:
        bad = refetch_bad and (folder / f).is_file() and spec.md5.get(f) not in (None, file_md5(folder / f))
        if not (folder / f).is_file() or bad:
            download_file([u + f for u in spec.urls], folder / f, spec.md5.get(f))
    return folder


def _split_validation(train: ArrayDataset, val_size: int, validation: bool) -> tuple[ArrayDataset, ArrayDataset | None]:
    """The paper's split: the last `val_size` training examples become the validation set."""
    if not validation or val_size == 0:
        return train, None
    n = len(train) - val_size
    return train.subset(slice(0, n)), train.subset(slice(n, None))


def load_dataset(name: str | None = None, data_dir: str | os.PathLike | None = None, *, download: bool = False,
                 verify_checksums: bool = True, validation: bool = True) -> DataSplits:
    """Load a dataset as DataSplits (MNIST 55k/5k/10k, CIFAR-10 45k/5k/10k, MNIST-1D 3.5k/0.5k/1k)."""
    name = name or default_dataset()
    spec = _check_name(name)
    if data_dir is not None and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise LotteryTicketError(f"--data-dir {data_dir} is a file; pass the folder that holds (or will hold) the "
                                 "dataset files")
    if name == "mnist1d":
        cache = Path(data_dir) if data_dir else default_cache() / "mnist1d"
        x, y, xt, yt = load_mnist1d(cache)
        train, val = _split_validation(ArrayDataset(x, y), spec.val_size, validation)
        mean, std = float(train.x.mean()), float(train.x.std())
        return DataSplits(name, train, val, ArrayDataset(xt, yt), 10, (x.shape[1],), (mean,), (std,))
    try:
        folder = resolve_data_dir(name, data_dir)
    except LotteryTicketError:
        if not download:
            raise
        folder = download_dataset(name, data_dir)
    if verify_checksums:
        try:
            verify_files(spec, folder)
        except LotteryTicketError:
            if not download or spec.archive:
                raise
            folder = download_dataset(name, folder.parent if folder.name == name else data_dir, refetch_bad=True)
            verify_files(spec, folder)
    if name == "cifar10":
        x, y = load_batches(folder, CIFAR_FILES[:5], spec.num_classes)
        xt, yt = load_batches(folder, ["test_batch"], spec.num_classes)
    else:
        x, y = load_idx_split(folder, "train", spec.num_classes, spec.input_shape[1:])
        xt, yt = load_idx_split(folder, "t10k", spec.num_classes, spec.input_shape[1:])
    train, val = _split_validation(ArrayDataset(x, y), spec.val_size, validation)
    return DataSplits(name, train, val, ArrayDataset(xt, yt), spec.num_classes, spec.input_shape, spec.mean, spec.std)


def default_dataset() -> str:
    """MNIST-1D: it is generated offline, so it works on any machine with no files at all."""
    return "mnist1d"


__all__ = ["DATASETS", "ArrayDataset", "DataSplits", "DatasetSpec", "InMemoryLoader", "default_cache", "default_dataset",
           "download_dataset", "load_dataset", "resolve_data_dir", "torch_dataloader", "verify_files"]
