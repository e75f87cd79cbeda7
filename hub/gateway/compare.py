"""Bodies as the shadow comparison sees them: decoded from their ``Content-Encoding`` by the
gateway itself (the backends get ``Accept-Encoding`` exactly as the client sent it), with the
decoded size bounded, so a compressed body is compared field by field like a plain one and a
decompression bomb costs at most the bound."""

from __future__ import annotations

import zlib

__all__ = ["decode_body"]


def _inflate(data: bytes, wbits: int, limit: int) -> bytes | None:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit or d.unconsumed_tail:
        return None
    return out


def decode_body(body: bytes, encoding: str, limit: int) -> bytes | None:
    """``body`` decoded from ``encoding`` (identity, gzip, x-gzip, deflate, in the order applied),
    or None when an encoding is unknown, the body is broken or decodes to more than ``limit``."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        decoded: bytes | None
        if coding in ("gzip", "x-gzip"):
            decoded = _inflate(body, 16 + zlib.MAX_WBITS, limit)
        elif coding == "deflate":  # zlib-wrapped as the RFC says; raw deflate as some servers send
            out = _inflate(body, zlib.MAX_WBITS, limit)
            decoded = out if out is not None else _inflate(body, -zlib.MAX_WBITS, limit)
        else:
            return None
        if decoded is None:
            return None
        body = decoded
    return body if len(body) <= limit else None
