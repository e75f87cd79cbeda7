"""The store server's token: always required, generated into the hub's home when none is set.

``hub store serve`` never runs without a secret. With ``HUB_STORE_TOKEN`` empty (the default) it
uses the one in ``<home>/store-token``, creating it (mode 0600) on its first start. The hub's own
clients (the worker, ``hub sql``, ``hub migrate``...) with the same home read it from there when
``HUB_CLICKHOUSE_URL`` points at a server on this host and carries no password of its own, and send
it as the password of HTTP basic auth (any user name). See docs/store-server.md.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from hub.secret_file import ensure_secret, read_secret
from hub.settings import Settings

TOKEN_FILE = "store-token"


def token_path(settings: Settings) -> Path:
    return settings.home_dir / TOKEN_FILE


def read_token(settings: Settings) -> str:
    """HUB_STORE_TOKEN, else the token in ``<home>/store-token``, else ''."""
    return settings.store_token or read_secret(token_path(settings), "store token")


def ensure_token(settings: Settings) -> str:
    """The store server's token: HUB_STORE_TOKEN, else ``<home>/store-token``, created (0600) with
    a fresh random secret when it does not exist yet."""
    if settings.store_token:
        return settings.store_token
    return ensure_secret(token_path(settings), "store token")


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (the one check of the hub's listeners and clients)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def store_dsn(settings: Settings) -> str:
    """The DSN the hub's clients open: HUB_CLICKHOUSE_URL with the store server's token as its
    password when the URL is an HTTP one on this host without credentials and a token is known."""
    dsn = settings.clickhouse_dsn
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https") or parts.password or not is_loopback(parts.hostname):
        return dsn
    token = read_token(settings)
    if not token:
        return dsn
    user = parts.username or "default"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{quote(user, safe='')}:{quote(token, safe='')}@{host}",
                       parts.path, parts.query, parts.fragment))
