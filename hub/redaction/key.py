"""The secret that keys the digests of masked ids (``[REDACTED:id:<digest>]``).

A masked id keeps a digest so that distinct ids stay distinct (GROUP BY gateway, joins, pairing by
correlation id); the digest is keyed so that the value cannot be recovered by hashing guesses. The
key must be the same for every worker and across restarts, or one gateway is stored under two
digests: ``HUB_REDACTION_KEY`` when set (workers on several hosts share it), else the key in
``<home>/redaction-key``, created (mode 0600) with a random secret the first time it is needed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hub.errors import ConfigError

KEY_FILE = "redaction-key"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"cannot read the redaction key {path}: {exc.strerror or exc}") from None


def ensure_key(home: str | Path, configured: str = "") -> bytes:
    """``configured`` (HUB_REDACTION_KEY) when set, else the key in ``<home>/redaction-key``, created
    (0600) with a fresh random secret when it does not exist yet."""
    if configured:
        return configured.encode()
    path = Path(home).expanduser() / KEY_FILE
    existing = _read(path)
    if existing:
        return existing.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker created it a moment ago (an empty file is rewritten)
        existing = _read(path)
        if existing:
            return existing.encode()
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key.encode()
