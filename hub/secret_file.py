"""Secrets the hub generates into its home once and reads back: a file of one line, mode 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hub.errors import ConfigError


def read_secret(path: Path, what: str) -> str:
    """The secret in ``path``, or '' when there is none; ``what`` names it in errors."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def ensure_secret(path: Path, what: str) -> str:
    """The secret in ``path``, created (0600) with a fresh random one when it does not exist yet.
    Safe when several processes start at once: the first to create the file wins and the others
    read its secret (an empty file, left by a crash mid-write, is written again)."""
    existing = read_secret(path, what)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = read_secret(path, what)
        if existing:
            return existing
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
    return secret
