"""The request path, normalised once: what the gateway routes on is exactly what it forwards.

``normalize_target(raw)`` takes the request target as it arrived on the wire (origin form,
``/a/b?q``) and returns ``(path, query)``:

- percent-encoded unreserved characters are decoded (``%61`` is ``a``, ``%2e`` is ``.``, RFC 3986
  6.2.2.2) and the hex digits of the other escapes upper-cased (``%3f`` is ``%3F``);
- encoded slashes and backslashes (``%2f``, ``%5c``) and raw backslashes count as ``/``, as many
  servers and frameworks read them;
- repeated slashes are merged and the dot segments ``.`` and ``..`` removed (RFC 3986 5.2.4).

What cannot be normalised safely is refused (``BadTarget``, answered 400): a target that is not
origin form, a ``..`` that climbs above the root, a malformed escape, a fragment, a control
character or a byte that is not ASCII, an escape that decodes to a control character (``%00``,
``%0a``, ``%7f``) or to bytes that are not valid UTF-8 (overlong forms such as ``%c0%ae``), a
segment that is a dot segment with path parameters (``..;``, which some servers read as ``..``). The query is forwarded byte for byte.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

__all__ = ["BadTarget", "normalize_target"]

_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-F]{2})")
_CONTROL = re.compile(r"[\x00-\x20\x7f#]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


class BadTarget(ValueError):
    """A request target the gateway refuses (400); the message is a reason, never the path."""


def _escape(m: re.Match) -> str:
    code = int(m.group(1), 16)
    if code in (0x2F, 0x5C):
        return "/"
    ch = chr(code)
    if ch in _UNRESERVED:
        return ch
    return "%" + m.group(1).upper()


def normalize_target(raw: str) -> tuple[str, str]:
    """``(normalised path, raw query)`` of an origin-form request target; raises ``BadTarget``."""
    if not raw.startswith("/"):
        raise BadTarget("the request target is not a path")
    if not raw.isascii():
        raise BadTarget("the request target holds bytes that are not ASCII")
    if _CONTROL.search(raw):
        raise BadTarget("the request target holds a control character, a space or a fragment")
    path, sep, query = raw.partition("?")
    if "%" in path:
        path = _PCT.sub(_escape, path)  # one pass: %252e stays %252E, never becomes '.'
        if _BAD_ESCAPE.search(path):
            raise BadTarget("malformed percent-escape in the path")
        decoded = unquote_to_bytes(path)
        if _CONTROL_BYTES.search(decoded):
            raise BadTarget("an escape in the path decodes to a control character")
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise BadTarget("escapes in the path decode to bytes that are not UTF-8") from None
    if "\\" in path:
        path = path.replace("\\", "/")
    if "/." not in path and "//" not in path and ";" not in path:
        return path, query  # the common case: nothing to remove
    out: list[str] = []
    segments = path.split("/")[1:]
    for seg in segments:
        if seg in ("", "."):
            continue
        if seg == "..":
            if not out:
                raise BadTarget("the path climbs above the root")
            out.pop()
            continue
        if seg.split(";", 1)[0] in (".", ".."):
            raise BadTarget("a dot segment with path parameters")
        out.append(seg)
    last = segments[-1] if segments else ""
    trailing = last in ("", ".", "..") and bool(out)
    return "/" + "/".join(out) + ("/" if trailing else ""), query
