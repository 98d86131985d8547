import json
import os
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

# One thread: the tests' tensors are small, and on a shared 2-core machine a second OpenMP thread waiting
# for a busy core makes small convolutions up to 100x slower. Subprocess tests keep torch's default.
torch.set_num_threads(1)


_session_cache = Path(tempfile.mkdtemp(prefix="lottery_ticket_test_cache_"))
# MNIST-1D takes ~5 s to generate: the tests keep their own copy in the checkout (generated on first use), never
# the user's ~/.cache; the session's cache links to it, so load_dataset("mnist1d") without a data_dir finds it too.
MNIST1D_DIR = Path(__file__).resolve().parents[1] / ".test-cache" / "mnist1d"
MNIST1D_DIR.mkdir(parents=True, exist_ok=True)
(_session_cache / "lottery_ticket").mkdir()
(_session_cache / "lottery_ticket" / "mnist1d").symlink_to(MNIST1D_DIR, target_is_directory=True)
# The run folders' signing key (experiment/trust.py): the session's own, never the user's ~/.config, set for the whole
# session so module-scoped fixtures and subprocesses sign and verify with the same key.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="lottery_ticket_test_config_")
os.environ.pop("LOTTERY_TICKET_KEY", None)


@pytest.fixture(autouse=True)
def one_thread_per_test():
    """Every test starts with one thread: `resume` adopts a run folder's recorded thread count (config.json's
    "execution"), and a test resuming a folder that a subprocess made with two would otherwise change the floats
    of every test after it."""
    yield
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_from_dataset_environment(monkeypatch):
    """No test may see the user's dataset folder or download mirror: they would change which files a test reads.

    A test that needs either sets it itself (monkeypatch.setenv), or passes data_dir explicitly.
    """
    monkeypatch.delenv("LOTTERY_TICKET_DATA", raising=False)
    monkeypatch.delenv("LOTTERY_TICKET_MIRROR", raising=False)
    # The default cache (sparse-training break-even densities, datasets): the session's own, never the user's home.
    monkeypatch.setenv("XDG_CACHE_HOME", str(_session_cache))


@pytest.fixture(scope="module")
def mnist1d():
    """MNIST-1D's splits (generated offline, cached), loaded once per test module."""
    from lottery_ticket.data import load_dataset

    return load_dataset("mnist1d", data_dir=MNIST1D_DIR)  # explicit: module fixtures set up before the autouse one


class TinyMLP(nn.Module):
    """Small enough to train in milliseconds; two prunable layers plus biases that must never be masked."""

    def __init__(self, inputs: int = 20, hidden: int = 32, classes: int = 3):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


@pytest.fixture
def tiny_mlp():
    torch.manual_seed(0)
    return TinyMLP()


@pytest.fixture
def toy_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def metrics_without_timing(run_dir: Path) -> list[dict]:
    """Every round and control record of a run folder, minus wall-clock seconds (which never repeat)."""
    rows = []
    for path in sorted(run_dir.rglob("rounds/*.json")) + sorted(run_dir.rglob("controls/*.json")):
        row = json.loads(path.read_text())
        row.pop("train_seconds")
        row.pop("record_sha256", None)  # covers train_seconds, so it differs too
        rows.append(row)
    return rows
