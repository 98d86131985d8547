"""Who made a run folder: config.json is signed with an HMAC under a secret key of the user's own.

A run folder may name your own code to import (`--model pkg.nets:build`), and folders travel: a colleague's
results, a paper's artifacts. The plain SHA-256 stored beside the settings catches damage, but anyone can
recompute it, so it cannot say who wrote them. The HMAC can: the key lives in the user's config folder
(created on first use, mode 0600) and never in a run folder, so only folders this user created verify, and
`resume`/`instability` import what an unverified folder names only with `--trust-code`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ..errors import LotteryTicketError

KEY_BYTES = 32


def key_path() -> Path:
    """$LOTTERY_TICKET_KEY, else $XDG_CONFIG_HOME/lottery-ticket/signing.key (~/.config when unset)."""
    explicit = os.environ.get("LOTTERY_TICKET_KEY")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "lottery-ticket" / "signing.key"


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LotteryTicketError(f"cannot read the signing key {path} ({exc.strerror or exc}); it must be a regular "
                                 "file you own: delete it and a new one is made") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(KEY_BYTES + 1)
    if len(data) != KEY_BYTES:
        raise LotteryTicketError(f"the signing key {path} is damaged ({len(data)} bytes, not {KEY_BYTES}); delete it "
                                 "and a new one is made (folders signed with the old one then need --trust-code)")
    return data


def _create_key(path: Path) -> bytes:
    """A fresh key, linked into place only if none exists, so two processes starting at once agree on one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".signing.", dir=path.parent)  # mode 0600 whatever the umask
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise LotteryTicketError(f"cannot create the signing key {path} ({exc.strerror or exc}); set "
                                 "LOTTERY_TICKET_KEY to a writable path") from None
    key = _read_key(path)
    assert key is not None
    return key


def signing_key(create: bool) -> bytes | None:
    path = key_path()
    key = _read_key(path)
    if key is None and create:
        key = _create_key(path)
    return key


def _signed_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(payload: Mapping[str, Any]) -> str:
    """The HMAC-SHA256 of `payload` (JSON, canonical form) under this user's key, created on first use."""
    return hmac.new(signing_key(create=True), _signed_bytes(payload), hashlib.sha256).hexdigest()


def verifies(payload: Mapping[str, Any], signature: Any) -> bool:
    """True only when `signature` is this user's HMAC of `payload`; a user with no key yet verifies nothing."""
    if not isinstance(signature, str):
        return False
    key = signing_key(create=False)
    if key is None:
        return False
    expected = hmac.new(key, _signed_bytes(payload), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
