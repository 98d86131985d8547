"""Advisory file locks: one process at a time claims a run folder or works on a seed.

Several processes (`--workers N`, or one per node of a job array) can share a run folder: each seed
is worked on under `seed_<s>/.lock`, and config.json is created or extended under `RUN_DIR/.lock`.
The kernel drops a lock when its process dies, so a SIGKILL never leaves a stale one.
"""

from __future__ import annotations

import os
import socket
import stat
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
    """Hold an exclusive lock on `path` (created if missing); yields False when non-blocking and taken.

    Never through a link (the lock file, or a folder above it in the run folder): a `.lock` pointing at
    ~/.bashrc would otherwise be truncated by the first process that takes it."""
    from ..errors import LotteryTicketError
    from ..safefs import refuse_links

    refuse_links(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as exc:
        raise LotteryTicketError(f"cannot lock {path} ({exc.strerror or exc}): the run folder must be writable by you "
                                 "and its .lock a regular file; copy the folder somewhere writable, or choose another "
                                 "--out") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LotteryTicketError(f"{path} is not a regular file; remove it and run the command again")
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
    from ..errors import LotteryTicketError
    from ..safefs import read_regular_file

    try:
        return read_regular_file(path, limit=4096).decode(errors="replace").strip() or "another process"
    except LotteryTicketError:
        return "another process"
