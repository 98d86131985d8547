"""Downloading the original files, for users with internet: streamed to a temp file, checked, renamed.

Nothing here runs in the tests against the network; the same code is tested on local file:// URLs.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

from ..errors import LotteryTicketError


MIRROR_VAR = "LOTTERY_TICKET_MIRROR"  # a base URL tried before the official ones (a local mirror, or a test server)
DEADLINE_VAR = "LOTTERY_TICKET_DOWNLOAD_DEADLINE"  # seconds one file may take in all (default 3600)


def _deadline_seconds() -> float:
    try:
        seconds = float(os.environ.get(DEADLINE_VAR, "3600"))
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise LotteryTicketError(f"{DEADLINE_VAR}={os.environ.get(DEADLINE_VAR)!r} must be a number of seconds > 0")
    return seconds


def download_file(urls: list[str], dest: Path, md5: str | None) -> Path:
    """Fetch the first URL that works into `dest`, checking its MD5; never leaves a partial file.

    A download killed midway leaves `.NAME.XXXX.part`; the next attempt starts over (the original servers give no
    reliable ranges to resume from) and a successful one removes such leftovers.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get(MIRROR_VAR)
    if mirror:
        urls = [mirror.rstrip("/") + "/" + dest.name, *urls]
    errors = []
    allowed = _deadline_seconds()
    for url in urls:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            h = hashlib.md5()
            deadline = time.monotonic() + allowed
            # A server may trickle a byte every few seconds: no single read times out, so the whole file has a
            # deadline, checked after every chunk (read1 returns what has arrived instead of waiting for 1 MiB).
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=min(60.0, allowed)) as response:
                read = getattr(response, "read1", response.read)
                received = 0
                for block in iter(lambda: read(1 << 20), b""):
                    out.write(block)
                    h.update(block)
                    received += len(block)
                    if time.monotonic() > deadline:
                        raise LotteryTicketError(f"not finished after {allowed:g} s (set {DEADLINE_VAR} to allow longer)")
                announced = response.headers.get("Content-Length")
                if announced is not None and announced.isdigit() and int(announced) != received:
                    raise http.client.IncompleteRead(b"", int(announced) - received)
                out.flush()
                os.fsync(out.fileno())
            if md5 is not None and h.hexdigest() != md5:
                raise LotteryTicketError(f"MD5 {h.hexdigest()} != expected {md5}")
            os.replace(tmp, dest)
            for stale in dest.parent.glob(f".{dest.name}.*.part"):
                stale.unlink(missing_ok=True)
            return dest
        except (OSError, LotteryTicketError, ValueError, http.client.HTTPException) as exc:
            # BadStatusLine, IncompleteRead and oversized headers are HTTPExceptions, not OSErrors
            errors.append(f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
            Path(tmp).unlink(missing_ok=True)
        except BaseException:  # Ctrl-C, or anything else: never a .part left behind
            Path(tmp).unlink(missing_ok=True)
            raise
    raise LotteryTicketError(f"could not download {dest.name} ({'; '.join(errors)}); download it by hand into {dest.parent}")


def extract_tar(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz, refusing members that would land outside `dest` (path traversal)."""
    dest = dest.resolve()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not str(target).startswith(str(dest) + os.sep) and target != dest:
                raise LotteryTicketError(f"{archive} has a member outside the target folder ({member.name}); refusing it")
            if member.issym() or member.islnk():
                raise LotteryTicketError(f"{archive} has a link member ({member.name}); refusing it")
        staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=dest))
        try:
            tar.extractall(staging)
            for item in staging.iterdir():
                final = dest / item.name
                if final.exists():
                    shutil.rmtree(final) if final.is_dir() else final.unlink()
                os.replace(item, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
