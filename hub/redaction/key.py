"""The secret that keys the digests of masked ids (``[REDACTED:id:<digest>]``).

A masked id keeps a digest so that distinct ids stay distinct (GROUP BY gateway, joins, pairing by
correlation id); the digest is keyed so that the value cannot be recovered by hashing guesses. The
key must be the same for every worker and across restarts, or one gateway is stored under two
digests: ``HUB_REDACTION_KEY`` when set (workers on several hosts share it), else the key in
``<home>/redaction-key``, created (mode 0600) with a random secret the first time it is needed.
"""

from __future__ import annotations

from pathlib import Path

from hub.secret_file import ensure_secret

KEY_FILE = "redaction-key"


def ensure_key(home: str | Path, configured: str = "") -> bytes:
    """``configured`` (HUB_REDACTION_KEY) when set, else the key in ``<home>/redaction-key``, created
    (0600) with a fresh random secret when it does not exist yet."""
    if configured:
        return configured.encode()
    return ensure_secret(Path(home).expanduser() / KEY_FILE, "redaction key").encode()
