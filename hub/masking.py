"""Secrets out of everything the hub shows: one function for the report, the logs, ``hub status``
and the alert records.

A chat webhook URL is a secret as a whole (its path is the token), halt and Alertmanager URLs may
carry credentials, and a ClickHouse URL carries the store's password. ``mask_secrets`` finds every
URL in a text and keeps only what names the endpoint: the scheme, the host and port, and the path
segments that read as lowercase words (``/halt``, ``/api/v2/alerts``); user and password, query values
and every other path segment (digits, capitals, longer than 20 characters) become ``***``, the fragment is
dropped. ``token=...``, ``password: ...``, ``X-Auth-Token: ...``, ``Bearer ...`` and the like outside URLs are
masked too; a hyphenated name ending in such a word (``og-secret: ...``, an experiment id) is not a key.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,15})://([^\s\"'<>`|]+)")
_SAFE_SEGMENT = re.compile(r"^(?:[a-z_.~-]{1,20}|v\d{1,2})$")
# The key stands alone or after prefixes that make it a credential's name (X-Auth-Token,
# client_secret); after any other word (og-secret:, token-api:) it is a name of the hub's (an
# experiment id, a service), not a key.
_KEYED = re.compile(
    r"(?i)(?<![\w.-])((?:(?:x|auth|api|client|access|private|session|refresh|id|csrf|xsrf)[_-])*"
    r"(?:token|secret|password|passwd|pwd|api[_-]?key|apikey|access[_-]?key|auth|authorization|signature|sig"
    r"|private[_-]?key|client[_-]?secret))(\s*[=:]\s*)(?!\*\*\*|(?i:bearer|basic)\s)([^\s,;&\"'<>]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}")


def mask_url(url: str) -> str:
    """``url`` with its secrets replaced by ``***`` (see the module's doc); anything that is not a
    URL comes back unchanged."""
    match = _URL.fullmatch(url.strip()) if url else None
    if match is None:
        return url
    return _mask_match(match)


def _mask_match(match: re.Match) -> str:
    scheme, rest = match.group(1), match.group(2)
    trailing = ""
    while rest and rest[-1] in ".,;:)]}":  # sentence punctuation after a URL is not part of it
        trailing = rest[-1] + trailing
        rest = rest[:-1]
    rest = rest.split("#", 1)[0]
    authority, sep, tail = rest.partition("/")
    path, qsep, query = tail.partition("?")
    if "?" in authority:  # http://host?token=...
        authority, _, query = authority.partition("?")
        qsep = "?"
    if "@" in authority:
        authority = MASK + "@" + authority.rsplit("@", 1)[1]
    out = f"{scheme}://{authority}"
    if sep:
        out += "/" + "/".join(s if not s or _SAFE_SEGMENT.match(s) else MASK for s in path.split("/"))
    if qsep:
        pairs = []
        for item in query.split("&"):
            key, eq, _value = item.partition("=")
            pairs.append(f"{key}={MASK}" if eq else (MASK if item else ""))
        out += "?" + "&".join(pairs)
    return out + trailing


def mask_secrets(text):
    """``text`` with every URL masked (``mask_url``) and keyed secrets (``token=...``, ``Bearer ...``)
    replaced by ``***``; a value that is not a string comes back unchanged."""
    if not isinstance(text, str) or not text:
        return text
    text = _URL.sub(_mask_match, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _KEYED.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def mask_data(value):
    """Every string inside JSON-like data (dicts, lists) masked with ``mask_secrets``."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v) for v in value]
    return value


class MaskingFilter(logging.Filter):
    """A log filter that masks secrets in every record's message (arguments included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: leave it to the handler
            return True
        masked = mask_secrets(message)
        if masked != message or record.args:
            record.msg, record.args = masked, ()  # () not None: formatters such as mode's wrap a non-tuple in a tuple
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def install_log_masking() -> None:
    """Mask secrets in every log record made from now on in this process, whichever handlers
    (the worker's, Faust's) write it: the record factory passes each record through ``MaskingFilter``."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_secrets", False):
        return
    masking = MaskingFilter()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        masking.filter(record)
        return record

    factory.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
