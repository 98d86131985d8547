"""The GPU window's script (scripts/gpu_stacked.sh), rehearsed on the CPU with a tiny budget and a tiny CIFAR-10:
a window is 15 minutes and ends hard, so the exact script must already have run end to end before one is lent."""

import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def tiny_cifar10(folder: Path, per_batch: int = 24, test: int = 40) -> Path:
    """CIFAR-10's files in their original pickle format, with a few random images each."""
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        (batches / name).write_bytes(pickle.dumps(batch, protocol=2))
    (batches / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}, protocol=2))
    return folder


@pytest.mark.slow
def test_the_gpu_window_script_runs_end_to_end_on_the_cpu(tmp_path):
    cifar = tiny_cifar10(tmp_path / "data")
    (tmp_path / "rehearsal.toml").write_text("[train]\nvalidation = false\n")  # 120 images: no 5,000 to hold out
    env = {**os.environ, "DEVICE": "cpu", "STACK": "on", "ROUNDS": "1", "MODELS": "conv2", "BENCH_MODELS": "conv2",
           "BENCH_STEPS": "2", "BENCH_KS": "1,2", "OMP_NUM_THREADS": "1", "RUNS": str(tmp_path / "runs"),
           "PYTHON": sys.executable, "EXTRA": f"--config {tmp_path / 'rehearsal.toml'}"}
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_stacked.sh"), str(cifar), str(out), "300", "2it"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    table = (out / "stacked_cpu.md").read_text()
    assert "| conv2 | cifar10 (real files) | stacked K=2 |" in table, table
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = tar.getnames()
        metrics = tar.extractfile("./conv2-cifar10/metrics.csv").read().decode()
    assert not any(n.endswith(".safetensors") for n in names)
    assert "./conv2-cifar10/plots/accuracy_vs_weights.png" in names
    rows = metrics.strip().splitlines()[1:]
    kinds = sorted({(r.split(",")[0], r.split(",")[2]) for r in rows})  # (seed, kind)
    assert kinds == [(s, k) for s in ("0", "1") for k in ("dense", "random_pruning", "random_reinit", "ticket")]
    assert "weights remaining" in (out / "tails.txt").read_text()
