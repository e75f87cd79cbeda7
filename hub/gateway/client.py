"""The gateway's HTTP/1.1 client: one keep-alive connection pool per backend, nothing but forwarding.

- A request is written as it is given: the request line, the headers (the caller filtered them),
  ``Host`` (the backend's), the framing (``Content-Length`` when the length is known, else
  ``Transfer-Encoding: chunked``; ``Content-Length: 0`` for a POST, PUT or PATCH without a
  body) and the body's first piece (a small body: all of it) in one write. The rest of a body
  streams from its async iterator, with the socket's flow control.
- The answer: the status line and headers parsed strictly (one header block of at most 64 KiB,
  CRLF line ends (a bare LF is refused as soon as it arrives), token names, no control characters in values, no folded lines, one
  ``Content-Length`` value); 1xx interim answers are skipped; the body framed by ``Content-Length``,
  chunked transfer coding, or the end of the connection (RFC 9112 6.3), read in chunks with the
  reading paused while more than 256 KiB wait unread.
- Never re-sent: a connection that ends before the answer is ``Disconnected``, whatever the
  method. A connection goes back to the pool only when its answer was read to the end, it is
  HTTP/1.1 and neither side asked to close; idle connections are closed after 30 s.
- Time: connecting and every wait for the backend's bytes (head, each part of the body, room to
  write) are bounded by the backend's ``timeout_s`` (``asyncio.TimeoutError``); a request that
  finds the pool full waits at most ``pool_timeout_s`` for a connection (``PoolFull``).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from typing import AsyncIterator
from urllib.parse import urlsplit

from multidict import CIMultiDict

MAX_HEAD = 64 * 1024     # bytes of one response head
HIGH_WATER = 256 * 1024  # unread bytes at which reading pauses
IDLE_S = 30.0            # an idle pooled connection is closed after this
_WITH_EMPTY_BODY = frozenset({"POST", "PUT", "PATCH"})
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
_BARE_LF = re.compile(rb"(?<!\r)\n")  # a line end without its CR: never HTTP/1.1 as the gateway accepts it
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")


class BackendError(Exception):
    """Something went wrong with the backend (the message never holds the request's path)."""


class ConnectFailed(BackendError):
    pass


class Disconnected(BackendError):
    """The backend closed the connection before its answer."""


class Malformed(BackendError):
    """The backend's answer is not HTTP/1.1 as the gateway accepts it."""


class BrokenBody(BackendError):
    """The body ended early or its chunked framing is broken."""


class PoolFull(BackendError):
    """No free connection to the backend within pool_timeout_s."""


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


async def _bounded(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future, timeout: float) -> None:
    """Await ``waiter``; asyncio.TimeoutError when it is not done within ``timeout`` seconds."""
    timer = loop.call_later(timeout, _expire, waiter)
    try:
        await waiter
    finally:
        timer.cancel()


class _Conn(asyncio.Protocol):
    """One connection: bytes in a buffer, one waiter woken when more arrive or the connection ends."""

    __slots__ = ("loop", "transport", "buf", "eof", "closed", "waiter", "paused", "write_paused", "drainer",
                 "idle_since", "deadline", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.eof = False
        self.closed = False
        self.waiter: asyncio.Future | None = None
        self.paused = False
        self.write_paused = False
        self.drainer: asyncio.Future | None = None
        self.idle_since = 0.0
        self.deadline = 0.0           # of the wait in progress
        self.timer: asyncio.TimerHandle | None = None

    # protocol callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > HIGH_WATER and not self.paused:
            self.paused = True
            assert self.transport is not None  # set by connection_made, before any data
            self.transport.pause_reading()
        self._wake()

    def eof_received(self):
        self.eof = True
        self._wake()
        return False  # close

    def connection_lost(self, exc) -> None:
        self.eof = self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._wake()
        d = self.drainer
        if d is not None and not d.done():
            d.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        d = self.drainer
        if d is not None and not d.done():
            d.set_result(None)

    def _wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    # for the client
    async def wait(self, timeout: float) -> None:
        """Until more bytes arrive or the connection ends; asyncio.TimeoutError after ``timeout`` s."""
        if self.paused:
            self.paused = False
            assert self.transport is not None  # paused by data_received, so connected
            self.transport.resume_reading()
        # One timer per connection, re-armed lazily: a wait only moves the deadline, and the timer,
        # when it fires, times out the wait in progress if its deadline has passed, or sets itself
        # for that deadline (no timer made and cancelled per wait).
        loop = self.loop
        w = self.waiter = loop.create_future()
        self.deadline = loop.time() + timeout
        if self.timer is None:
            self.timer = loop.call_at(self.deadline, self._due)
        try:
            await w
        finally:
            self.waiter = None

    def _due(self) -> None:
        self.timer = None
        w = self.waiter
        if w is None or w.done() or self.closed:
            return  # no wait in progress: the next one sets the timer again
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._due)
        else:
            w.set_exception(asyncio.TimeoutError())

    def take(self, n: int) -> bytes:
        buf = self.buf
        if n >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        if self.paused and len(buf) < HIGH_WATER // 4:
            self.paused = False
            assert self.transport is not None  # paused by data_received, so connected
            self.transport.resume_reading()
        return data

    async def drain(self, timeout: float) -> None:
        if self.closed:
            raise ConnectionResetError("connection lost")
        if not self.write_paused:
            return
        d = self.drainer = self.loop.create_future()
        try:
            await _bounded(self.loop, d, timeout)
        finally:
            self.drainer = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """A backend's answer: ``status``, ``reason``, ``headers``; the body with ``read_chunk``/``read``;
    ``release()`` when done (the connection goes back to the pool only if the body was read whole)."""

    __slots__ = ("status", "reason", "headers", "length", "_pool", "_conn", "_mode", "_left", "_reuse", "_done",
                 "_timeout")

    def __init__(self, pool: "Pool", conn: _Conn, status: int, reason: str, headers: CIMultiDict,
                 mode: str, length: int | None, reuse: bool):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.length = length          # Content-Length when the body is framed by it
        self._pool = pool
        self._conn: _Conn | None = conn  # None once released
        self._mode = mode             # "none" | "length" | "chunked" | "close"
        self._left = length or 0      # bytes left of the body (length) or of the current chunk (chunked)
        self._reuse = reuse
        self._done = mode == "none" or (mode == "length" and not length)
        self._timeout = pool.timeout

    async def read_chunk(self, size: int = 65536) -> bytes:
        """The next part of the body (at most ``size`` bytes); b"" at its end."""
        if self._done:
            return b""
        conn = self._conn
        assert conn is not None, "the body is read before release()"
        mode = self._mode
        if mode == "length":
            while not conn.buf:
                if conn.eof:
                    raise BrokenBody("the body ended early")
                await conn.wait(self._timeout)
            data = conn.take(min(self._left, size))
            self._left -= len(data)
            if not self._left:
                self._done = True
            return data
        if mode == "close":
            while not conn.buf:
                if conn.eof:
                    self._done = True
                    return b""
                await conn.wait(self._timeout)
            return conn.take(size)
        return await self._chunked(conn, size)

    async def _chunked(self, conn: _Conn, size: int) -> bytes:
        while True:
            if self._left > 0:
                while not conn.buf:
                    if conn.eof:
                        raise BrokenBody("the chunked body ended early")
                    await conn.wait(self._timeout)
                data = conn.take(min(self._left, size))
                self._left -= len(data)
                if not self._left:
                    self._left = -1  # the CRLF after the chunk's data is due
                return data
            buf = conn.buf
            if self._left == -1:
                if len(buf) < 2:
                    if conn.eof:
                        raise BrokenBody("the chunked body ended early")
                    await conn.wait(self._timeout)
                    continue
                if buf[:2] != b"\r\n":
                    raise BrokenBody("a chunk does not end with CRLF")
                conn.take(2)
                self._left = 0
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > 4096:
                    raise BrokenBody("a chunk size line is too long")
                if conn.eof:
                    raise BrokenBody("the chunked body ended early")
                await conn.wait(self._timeout)
                continue
            m = _CHUNK_SIZE.fullmatch(buf, 0, end)
            if m is None:
                raise BrokenBody("a malformed chunk size")
            n = int(m.group(1), 16)
            if n:
                conn.take(end + 2)
                self._left = n
                continue
            # the last chunk: then trailer lines (dropped) and an empty line
            while True:
                stop = buf.find(b"\r\n\r\n", end)
                if stop >= 0:
                    conn.take(stop + 4)
                    self._done = True
                    return b""
                if len(buf) > MAX_HEAD:
                    raise BrokenBody("the trailer is too large")
                if conn.eof:
                    raise BrokenBody("the chunked body ended early")
                await conn.wait(self._timeout)

    async def read(self) -> bytes:
        """The whole body (for small bodies and shadows: callers bound it)."""
        if self._mode == "length" and not self._done:
            conn = self._conn
            assert conn is not None, "the body is read before release()"
            if len(conn.buf) >= self._left:  # all there already
                data = conn.take(self._left)
                self._left = 0
                self._done = True
                return data
        parts: list[bytes] = []
        while True:
            chunk = await self.read_chunk(1 << 20)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def release(self) -> None:
        """Done with the answer: its connection back to the pool if read whole and reusable, else closed."""
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        self._pool.release(conn, self._done and self._reuse and not conn.buf)


class Pool:
    """The connections to one backend: at most ``max_connections`` in use or connecting."""

    def __init__(self, url: str, max_connections: int, timeout_s: float, pool_timeout_s: float):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"only http:// and https:// backends are supported, not {parts.scheme}://")
        default = 443 if parts.scheme == "https" else 80
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.host = parts.hostname or "localhost"
        self.port = parts.port or default
        netloc = parts.netloc.rsplit("@", 1)[-1]
        self.host_header = netloc.rsplit(":", 1)[0] if parts.port == default else netloc
        self.prefix = parts.path.rstrip("/")  # a backend URL's own path goes before the request's
        self.limit = max_connections
        self.timeout = timeout_s
        self.pool_timeout = pool_timeout_s
        self.busy = 0                 # connections in use or connecting
        self.idle: list[_Conn] = []
        self.waiters: deque[asyncio.Future] = deque()
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def full(self) -> bool:
        return self.busy >= self.limit

    async def acquire(self) -> _Conn:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        if self.busy >= self.limit:
            deadline = loop.time() + self.pool_timeout
            while self.busy >= self.limit and not self.closed:
                left = deadline - loop.time()
                if left <= 0:
                    raise PoolFull(f"no free connection within {self.pool_timeout:g} s")
                w = loop.create_future()
                self.waiters.append(w)
                try:
                    await _bounded(loop, w, left)
                except asyncio.TimeoutError:
                    raise PoolFull(f"no free connection within {self.pool_timeout:g} s") from None
                except BaseException:
                    self._wake()  # pass a wake-up this waiter got on
                    raise
                finally:
                    try:
                        self.waiters.remove(w)
                    except ValueError:
                        pass
        if self.closed:
            raise ConnectFailed("the gateway is stopping")
        self.busy += 1
        idle = self.idle
        now = loop.time()
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.eof and not conn.buf and now - conn.idle_since < IDLE_S:
                return conn
            conn.close()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(loop), self.host, self.port, ssl=self.ssl), self.timeout)
        except asyncio.TimeoutError:
            self.busy -= 1
            self._wake()
            raise
        except OSError as exc:
            self.busy -= 1
            self._wake()
            raise ConnectFailed(f"cannot connect: {type(exc).__name__}") from None
        except BaseException:
            self.busy -= 1
            self._wake()
            raise
        return conn

    def release(self, conn: _Conn, reuse: bool) -> None:
        self.busy -= 1
        if reuse and not conn.closed and not conn.eof and not self.closed:
            assert self._loop is not None  # set by acquire, which gave out conn
            conn.idle_since = self._loop.time()
            self.idle.append(conn)
        else:
            conn.close()
        self._wake()

    def _wake(self) -> None:
        for w in self.waiters:
            if not w.done():
                w.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.idle.clear()
        for w in self.waiters:
            if not w.done():
                w.set_result(None)

    async def request(self, method: str, target: str, headers, body: AsyncIterator[bytes] | None = None,
                      length: int | None = None) -> Response:
        """Send one request (never re-sent) and read the answer's head. ``headers``: (name, value)
        pairs without framing headers or Host. The caller reads the body and calls ``release()``."""
        conn = await self.acquire()
        try:
            transport = conn.transport
            assert transport is not None  # acquire returns connected connections
            head = [f"{method} {self.prefix}{target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
            for k, v in headers:
                head.append(f"{k}: {v}\r\n")
            if body is None:
                if method in _WITH_EMPTY_BODY:
                    head.append("Content-Length: 0\r\n")
                head.append("\r\n")
                transport.write("".join(head).encode("utf-8", "surrogateescape"))
            else:
                chunked = length is None
                head.append("Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {length}\r\n\r\n")
                await self._send_body(conn, "".join(head).encode("utf-8", "surrogateescape"), body, chunked)
            return await self._read_head(conn, method)
        except BaseException:
            self.release(conn, False)
            raise

    async def _send_body(self, conn: _Conn, head: bytes, body: AsyncIterator[bytes], chunked: bool) -> None:
        """The head with the body's first piece in one write (a small body: all of it), then the rest."""
        transport = conn.transport
        assert transport is not None  # acquire returns connected connections
        try:
            async for chunk in body:
                if conn.closed:
                    raise ConnectionResetError("connection lost")
                if chunked:
                    chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunk else b""
                if head:
                    chunk, head = head + chunk, b""
                if chunk:
                    transport.write(chunk)
                await conn.drain(self.timeout)
            last = b"0\r\n\r\n" if chunked else b""
            if head or last:
                transport.write(head + last)
        except (ConnectionError, asyncio.TimeoutError):
            if conn.buf:  # the backend answered (and closed) before taking the whole body: its answer
                return
            raise

    async def _read_head(self, conn: _Conn, method: str) -> Response:
        while True:
            buf = conn.buf
            end = buf.find(b"\r\n\r\n")
            if _BARE_LF.search(buf, 0, len(buf) if end < 0 else end + 4) is not None:
                # refused as soon as seen: waiting for a CRLF CRLF that never comes would pass for a timeout
                raise Malformed("a bare LF line end in the response head")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise Malformed("the response head is too large")
                if conn.eof:
                    if buf:
                        raise Malformed("the connection ended inside the response head")
                    raise Disconnected("closed the connection without answering")
                await conn.wait(self.timeout)
                continue
            lines = bytes(buf[:end]).split(b"\r\n")
            del buf[:end + 4]
            m = _STATUS.fullmatch(lines[0])
            if m is None:
                raise Malformed("a malformed status line")
            status = int(m.group(2))
            headers: CIMultiDict = CIMultiDict()
            for line in lines[1:]:
                h = _HEADER.fullmatch(line)
                if h is None:
                    raise Malformed("a malformed header line")
                headers.add(h.group(1).decode("ascii"), h.group(2).decode("utf-8", "surrogateescape"))
            if 100 <= status < 200:
                if status == 101:
                    raise Malformed("a protocol switch the gateway does not forward")
                continue  # an interim answer: the final one follows
            reason = (m.group(3) or b"").decode("latin-1")
            reuse = m.group(1) == b"1"
            connection = headers.get("Connection")
            if connection is not None and "close" in connection.lower():
                reuse = False
            te = headers.get("Transfer-Encoding")
            length = None
            lengths = headers.getall("Content-Length", ())
            if lengths and te is None:
                values = {v.strip() for value in lengths for v in value.split(",")}
                if len(values) != 1:
                    raise Malformed("conflicting Content-Length values")
                value = values.pop()
                if not value.isdigit() or not value.isascii() or len(value) > 18:
                    raise Malformed("a malformed Content-Length")
                length = int(value)
            if method == "HEAD" or status in (204, 304):
                # no body; the length, if any, is the one a GET would have
                return Response(self, conn, status, reason, headers, "none", length, reuse)
            if te is not None:
                if [c.strip().lower() for v in headers.getall("Transfer-Encoding") for c in v.split(",")] != \
                        ["chunked"]:
                    # a coding besides chunked is not decoded here: relayed, it would pass for the body
                    raise Malformed("a transfer coding other than chunked")
                if lengths:
                    reuse = False  # ambiguous
                return Response(self, conn, status, reason, headers, "chunked", None, reuse)
            if length is not None:
                return Response(self, conn, status, reason, headers, "length", length, reuse)
            return Response(self, conn, status, reason, headers, "close", None, False)
