"""A run folder is a stranger's input: where lottery_ticket writes in one, and what it reads from one.

No torch here: reading a run folder's layout (experiment/runfolder.py) stays light.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import LotteryTicketError

# Run folders come from strangers: a `seed_0/masks` that is a symbolic link to ~/.ssh would make every write
# below it land there. Writes (and the folders made for them) under a confined root never pass through a link.
_CONFINED: set[str] = set()


def confine(root: str | os.PathLike) -> None:
    """From now on, every write this process makes below `root` refuses to go through a symbolic link."""
    _CONFINED.add(os.path.abspath(root))


def refuse_links(path: str | os.PathLike, folder: bool = False) -> None:
    """One line if writing `path` (a file, or a `folder` to create) would follow a link: `path` itself, or any
    folder between it and the confined root holding it. The root itself is the user's choice (their --out) and
    may be a link."""
    absolute = os.path.abspath(path)
    mode = None
    roots = [r for r in _CONFINED if absolute == r or absolute.startswith(r.rstrip(os.sep) + os.sep)]
    current = Path(max(roots, key=len)) if roots else Path(absolute).parent
    for part in Path(absolute).relative_to(current).parts:
        current = current / part
        if current.is_symlink():
            raise LotteryTicketError(f"{current} is a symbolic link; lottery_ticket never writes through links in a "
                                     "run folder: replace it with a real folder or file (e.g. copy the run with cp -rL)")
        try:
            mode = current.stat().st_mode
        except FileNotFoundError:
            return  # nothing below exists yet: it is created as a real folder or file
        except OSError:
            return  # a file where a folder goes: the write itself says so ("could not write ...")
        if current != Path(absolute) and not stat.S_ISDIR(mode):
            raise LotteryTicketError(f"{current} is not a folder; move it away or choose another --out")
    if mode is not None and not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
        raise LotteryTicketError(f"{current} is not a {'folder' if folder else 'regular file'}; move it away or "
                                 "choose another --out")


def refuse_read_only(root: str | os.PathLike, command: str) -> None:
    """One line when a run folder is read-only (no write permission, or marked so with chmod -w: refused even for
    root, who could write anyway), before `command` writes anything."""
    try:
        mode = os.stat(root).st_mode
    except FileNotFoundError:
        return
    if not os.access(root, os.W_OK) or not mode & 0o222:
        raise LotteryTicketError(f"{root} is read-only; {command} writes into it: copy it somewhere writable "
                                 "(cp -r) and run there (`lottery-ticket report` reads it as it is)")


def read_regular_file(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of `path`, which must be a regular file (a link is followed only to one): a FIFO or a device
    named like a record must not hang or flood the reader."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise LotteryTicketError(f"{path} does not exist; check the path") from None
    except OSError as exc:
        raise LotteryTicketError(f"could not read {path}: {exc.strerror or exc}; check the path and its permissions") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise LotteryTicketError(f"{path} is not a regular file; remove it or pass another path")
        if limit is not None and info.st_size > limit:
            raise LotteryTicketError(f"{path} is {info.st_size:,} bytes, more than the {limit:,} such a file can be")
        try:
            return f.read()
        except OSError as exc:
            raise LotteryTicketError(f"could not read {path}: {exc.strerror or exc}") from None


