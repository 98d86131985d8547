"""Advisory file locks: one process at a time claims a run folder or works on a seed.

Several processes (`--workers N`, or one per node of a job array) can share a run folder: each seed
is worked on under `seed_<s>/.lock`, and config.json is created or extended under `RUN_DIR/.lock`.
The kernel drops a lock when its process dies, so a SIGKILL never leaves a stale one.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one process per run folder there
    fcntl = None

LOCK_NAME = ".lock"


@contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (created if missing); yields False when non-blocking and taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is None:
            yield True
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(path: Path) -> str:
    """Who holds (or last held) the lock at `path`, as its holder wrote it: 'pid N on HOST'."""
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"
