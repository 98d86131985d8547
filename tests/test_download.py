"""--download against a real HTTP server on the loopback, serving the real MNIST files: checksums verified,
a corrupted transfer refused, a damaged local file fetched again, nothing half-written left behind."""

import dataclasses
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from lottery_ticket import LotteryTicketError
from lottery_ticket.cli import main
from lottery_ticket.data import DATASETS, load_dataset
from lottery_ticket.data.download import MIRROR_VAR
from shared_data import SHARED_DATASETS

SHARED_MNIST = SHARED_DATASETS / "mnist"
pytestmark = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="the offline MNIST copy (../shared/datasets/mnist) is absent")


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A loopback HTTP server over a folder of MNIST files; yields the folder (edit it to serve other bytes)."""
    served = tmp_path / "served"
    shutil.copytree(SHARED_MNIST, served, ignore=shutil.ignore_patterns("*.md"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(MIRROR_VAR, f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], urls=[]))  # only the mirror answers
    yield served
    server.shutdown()


def no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith((".part", ".tmp"))]


def test_download_fetches_verifies_and_loads_the_real_files(mirror, tmp_path):
    data_dir = tmp_path / "data"
    data = load_dataset("mnist", data_dir, download=True)
    assert len(data.train) + len(data.val) == 60_000 and len(data.test) == 10_000
    for f in DATASETS["mnist"].files:
        assert (data_dir / "mnist" / f).read_bytes() == (SHARED_MNIST / f).read_bytes()
    assert no_leftovers(data_dir)


def test_a_corrupted_transfer_is_refused_and_leaves_nothing(mirror, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    broken = bytearray((mirror / name).read_bytes())
    broken[100] ^= 0xFF
    (mirror / name).write_bytes(bytes(broken))
    data_dir = tmp_path / "data"
    with pytest.raises(LotteryTicketError, match=f"could not download {name}"):
        load_dataset("mnist", data_dir, download=True)
    assert not (data_dir / "mnist" / name).exists() and no_leftovers(data_dir)


def test_a_damaged_local_file_and_a_killed_download_are_fetched_again(mirror, tmp_path):
    data_dir = tmp_path / "data" / "mnist"
    data_dir.mkdir(parents=True)
    for f in DATASETS["mnist"].files:
        shutil.copy(SHARED_MNIST / f, data_dir / f)
    name = "train-labels-idx1-ubyte.gz"
    (data_dir / name).write_bytes((SHARED_MNIST / name).read_bytes()[:1000])  # truncated
    (data_dir / f".{name}.abc123.part").write_bytes(b"half")  # what a killed download leaves
    with pytest.raises(LotteryTicketError, match="--download"):
        load_dataset("mnist", data_dir.parent)  # without --download: the message names the flag that exists
    load_dataset("mnist", data_dir.parent, download=True)
    assert (data_dir / name).read_bytes() == (SHARED_MNIST / name).read_bytes() and no_leftovers(data_dir)


def test_find_and_demo_accept_download(mirror, tmp_path, capsys):
    data_dir = tmp_path / "data"
    assert main(["find", "--preset", "lenet300-mnist", "--budget", "5it", "--eval-every", "5it", "--rounds", "1",
                 "--download", "--data-dir", str(data_dir), "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert (data_dir / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    from lottery_ticket.cli import build_parser

    assert build_parser().parse_args(["demo", "--download"]).download
