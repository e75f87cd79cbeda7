"""ClickHouse's compressed-block format (``src/Compression/CompressedWriteBuffer.cpp``), as the
HTTP interface uses it with ``compress=1`` (the answer) and ``decompress=1`` (the request body).

Each block: a 16-byte CityHash128 (CityHash v1.0.2, its two 64-bit halves in order, little endian)
of everything after it, then the method byte (0x02 none, 0x82 LZ4, 0x90 ZSTD), the compressed
size (UInt32, including this 9-byte header), the decompressed size (UInt32), and the compressed
data. A server writes blocks of at most 1 MiB of uncompressed data, compressed with LZ4 unless
configured otherwise.
"""

from __future__ import annotations

import struct

from clickhouse_cityhash.cityhash import CityHash128

NONE, LZ4, ZSTD = 0x02, 0x82, 0x90
BLOCK_SIZE = 1 << 20
HEADER = 9
MAX_BLOCK = 1 << 30


class CompressionError(ValueError):
    def __init__(self, message: str, checksum: bool = False):
        super().__init__(message)
        self.checksum = checksum  # the data was read whole but its checksum does not match


def _zstd():
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd
    return zstd


def checksum(data: bytes | memoryview) -> bytes:
    value = CityHash128(bytes(data))  # the package returns the hash's first 64-bit half in the high bits
    return (value >> 64).to_bytes(8, "little") + (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def compress_block(data: bytes | memoryview, method: int = LZ4) -> bytes:
    if method == LZ4:
        import lz4.block

        payload = lz4.block.compress(bytes(data), store_size=False)
    elif method == ZSTD:
        payload = _zstd().compress(bytes(data), 1)
    elif method == NONE:
        payload = bytes(data)
    else:
        raise CompressionError(f"unknown compression method 0x{method:02x}")
    body = struct.pack("<BII", method, len(payload) + HEADER, len(data)) + payload
    return checksum(body) + body


def compress(data: bytes, method: int = LZ4) -> bytes:
    """``data`` as compressed blocks of at most ``BLOCK_SIZE`` uncompressed bytes each."""
    view = memoryview(data)
    return b"".join(compress_block(view[i:i + BLOCK_SIZE], method) for i in range(0, len(view), BLOCK_SIZE))


class Decompressor:
    """Compressed blocks arriving in pieces -> their data; ``finish`` checks nothing is left over."""

    def __init__(self, verify: bool = True):
        self._buf = bytearray()
        self.verify = verify

    def feed(self, chunk: bytes) -> bytes:
        self._buf += chunk
        out = []
        while len(self._buf) >= 16 + HEADER:
            method, size, raw = struct.unpack_from("<BII", self._buf, 16)
            if size < HEADER or size > MAX_BLOCK or raw > MAX_BLOCK:
                raise CompressionError(f"a compressed block's sizes are out of range ({size}, {raw})")
            if len(self._buf) < 16 + size:
                break
            body = bytes(self._buf[16:16 + size])
            if self.verify and checksum(body) != bytes(self._buf[:16]):
                raise CompressionError("checksum doesn't match: corrupted data", checksum=True)
            del self._buf[:16 + size]
            out.append(_decompress(method, body[HEADER:], raw))
        return b"".join(out)

    def finish(self) -> None:
        if self._buf:
            raise CompressionError("the compressed data ends in the middle of a block")


def _decompress(method: int, payload: bytes, raw: int) -> bytes:
    try:
        if method == LZ4:
            import lz4.block

            data = lz4.block.decompress(payload, uncompressed_size=raw)
        elif method == ZSTD:
            data = _zstd().decompress(payload)
        elif method == NONE:
            data = payload
        else:
            raise CompressionError(f"unknown compression method 0x{method:02x}")
    except CompressionError:
        raise
    except Exception as exc:
        raise CompressionError(f"cannot decompress a block: {exc}") from None
    if len(data) != raw:
        raise CompressionError(f"a block decompressed to {len(data)} bytes, its header says {raw}")
    return data


def decompress(data: bytes, verify: bool = True) -> bytes:
    d = Decompressor(verify)
    out = d.feed(data)
    d.finish()
    return out
