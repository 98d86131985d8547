"""File identity checks: official MD5s of the distributed files, plus SHA-256 of the decompressed IDX
payloads, so a re-gzipped copy (Debian's Fashion-MNIST package is one) still verifies as itself."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

from ..io import file_digest


def file_md5(path: Path) -> str:
    return file_digest(path, "md5")


def payload_sha256(path: Path) -> str | None:
    """SHA-256 of the decompressed content, or None when the file does not decompress (truncated, not gzip)."""
    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except (OSError, EOFError, zlib.error):
        return None
    return h.hexdigest()
