"""Where a result came from: code version, library versions, machine."""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from pathlib import Path

import torch


def git_commit() -> str | None:
    """The commit of the library's own source checkout; None when it is installed from a wheel (whatever repository
    the current directory, or a virtual environment's site-packages, happens to sit in is not ours)."""
    repo = Path(__file__).resolve().parents[3]
    if not ((repo / "pyproject.toml").is_file() and (repo / "src" / "lottery_ticket" / "finder.py").is_file()):
        return None
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance() -> dict:
    from .. import __version__

    return {
        "lottery_ticket_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "num_threads": torch.get_num_threads(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
