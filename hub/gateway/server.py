"""The gateway's HTTP/1.1 server: a plain asyncio Protocol around aiohttp's C request parser, doing
what the proxy path needs and nothing else.

The parser is the one aiohttp's own server uses (``aiohttp.http_parser.HttpRequestParser``, llhttp
compiled in C, strict: no bare LF, no folded header lines, no request with both Content-Length and
Transfer-Encoding, no repeated or malformed Content-Length, header lines and fields of at most
8190 bytes and at most 128 of them), so every request it refuses is refused here as there, answered
``400`` with a fixed text and the connection closed. Request bodies are passed through as sent
(never decompressed) and stream with flow control: reading from the client pauses while 128 KiB
of a body wait unread.

Per connection:

- at most ``max_connections`` at once: one more is answered ``503`` and closed;
- a new connection's first request head must arrive whole within ``head_timeout`` of the
  connection, a later one within ``head_timeout`` once its first byte came, and an idle
  connection (no request in progress) is closed after ``keepalive_timeout``;
- ``CONNECT`` (in any form of target) is refused with ``400`` and the connection closed;
- requests are handled one at a time, in order (pipelined ones wait, at most 32 parsed ahead);
  a client that goes away cancels the handler of its request;
- an answer with a known length goes out with ``Content-Length``; otherwise chunked to an
  HTTP/1.1 client, or framed by closing the connection for an HTTP/1.0 one. The head waits for
  the body's first piece, so a small answer is one write;
- after an answer, a request body nobody read is read and dropped (up to ``lingering_time``
  seconds) before the next request, so the client sees the answer and not a reset; an answer
  that closes the connection (``Connection: close``) is followed at once by the end of the stream
  (the client reads the close right after the answer), only the reading side lingers.

``shutdown(timeout)``: idle connections are closed at once, requests in flight get ``timeout``
seconds to finish, then their handlers are cancelled (``Exchange.stopped`` is then true: the
gateway stopped, not the client), a client whose answer had not begun gets ``503`` with
``Connection: close``, and the connections are closed.

The handler gets an :class:`Exchange` (the request and the means to answer it) and either answers
through it (``send`` or ``start``/``write``/``finish``) or returns an :class:`Answer`, a short
fixed text the server writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import Awaitable, Callable, NamedTuple

from aiohttp._cookie_helpers import parse_cookie_header
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.http_parser import HttpRequestParser
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.tcp_helpers import tcp_keepalive
from aiohttp.web_protocol import RequestPayloadError

log = logging.getLogger("hub.gateway.proxy")

SERVER_NAME = "hub-gateway"   # the Server header of what the gateway answers itself (never a version)
READ_LIMIT = 64 * 1024        # a body's unread bytes pause reading beyond twice this
MAX_QUEUED = 32               # pipelined requests parsed ahead of the one being handled
MAX_LINE = 8190
MAX_FIELD = 8190
MAX_HEADERS = 128
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nServer: hub-gateway\r\nContent-Type: text/plain\r\n"
         b"Content-Length: 41\r\nConnection: close\r\n\r\nservice unavailable: too many connections\n")
_NO_BODY = frozenset({204, 304})


class Answer(NamedTuple):
    """A short plain-text answer the gateway makes itself; ``close``: the connection closes after it."""
    status: int
    text: str
    close: bool = False


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_date_cache: list = [0, ""]


def _date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True)
    return _date_cache[1]


class Exchange:
    """One request and its answer. The request as the handler reads it: ``method``, ``raw_path``
    (the target as sent), ``version``, ``headers`` (as parsed: repeated names kept, values decoded
    as UTF-8 with undecodable bytes as surrogates), ``remote``, ``scheme``, ``body_exists``,
    ``content`` (the body's stream), ``content_length``, ``cookies``, ``transport`` (None once the
    client is gone)."""

    __slots__ = ("_conn", "method", "raw_path", "version", "headers", "remote", "scheme", "content",
                 "body_exists", "_close", "_head", "_chunked", "_until_close", "_has_body", "started", "finished")

    def __init__(self, conn: "_Connection", message, payload: StreamReader):
        self._conn = conn
        self.method: str = message.method
        self.raw_path: str = message.path
        self.version = message.version
        self.headers = message.headers
        self.remote: str | None = conn.remote
        self.scheme = "http"
        self.content = payload
        self.body_exists = payload is not EMPTY_PAYLOAD
        # a request asking to switch protocols (any Upgrade, which the gateway never forwards) is
        # answered as a plain one, and the connection closes after it
        self._close: bool = message.should_close or message.upgrade or "Upgrade" in message.headers
        self._head = b""
        self._chunked = False
        self._until_close = False
        self._has_body = True
        self.started = False       # the answer's head was given (written, or waiting for the first piece)
        self.finished = False      # the answer was written whole

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._conn.transport

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None else None

    @property
    def cookies(self) -> dict[str, str]:
        return {name: morsel.value for name, morsel in parse_cookie_header(self.headers.get("Cookie", ""))}

    @property
    def prepared(self) -> bool:
        return self.started

    @property
    def stopped(self) -> bool:
        """True once the server's shutdown cut off the requests still in flight."""
        return self._conn.server.cut_off

    def _head_bytes(self, status: int, reason: str | None, headers, length: int | None) -> bytes:
        """The answer's head; decides its framing and whether the connection stays open."""
        has_body = self._has_body = self.method != "HEAD" and status not in _NO_BODY and status >= 200
        lines = [f"HTTP/1.1 {status} {_phrase(status) if reason is None else reason}\r\n"]
        date = False
        for k, v in headers:
            if "\r" in v or "\n" in v or "\r" in k or "\n" in k:
                raise ValueError("a header with a line break")
            lines.append(f"{k}: {v}\r\n")
            if not date and k.lower() == "date":
                date = True
        if not date:
            lines.append(f"Date: {_date()}\r\n")
        if length is not None:
            if status != 204:
                lines.append(f"Content-Length: {length}\r\n")
        elif has_body:
            if self.version >= (1, 1):
                self._chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                self._until_close = self._close = True
        if self._close or self._conn.closing:
            self._close = True
            lines.append("Connection: close\r\n")
        elif self.version < (1, 1):
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("utf-8")

    async def continue_100(self) -> None:
        """Tell a client waiting on ``Expect: 100-continue`` to send its body."""
        transport = self._conn.transport
        if transport is not None:
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def send(self, status: int, reason: str | None, headers, body: bytes) -> None:
        """The whole answer in one write."""
        head = self._head_bytes(status, reason, headers, len(body))
        self.started = True
        self._write(head + body if self._has_body else head)
        self.finished = True

    async def start(self, status: int, reason: str | None, headers, length: int | None) -> None:
        """Begin a streamed answer (``length`` None: unknown). The head goes out with the first piece."""
        self._head = self._head_bytes(status, reason, headers, length)
        self.started = True

    async def write(self, chunk: bytes) -> None:
        if not chunk or not self._has_body:
            return
        if self._chunked:
            chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
        if self._head:
            chunk, self._head = self._head + chunk, b""
        self._write(chunk)
        conn = self._conn
        if conn._paused:
            await conn._drain_helper()

    async def finish(self) -> None:
        last = b"0\r\n\r\n" if self._chunked and self._has_body else b""
        if self._head or last:
            self._write(self._head + last)
            self._head = b""
        self.finished = True
        if self._until_close:
            self._close = True

    def _write(self, data: bytes) -> None:
        transport = self._conn.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        transport.write(data)

    def _answer(self, answer: Answer) -> None:
        if answer.close:
            self._close = True
        body = answer.text.encode("utf-8")
        headers = (("Server", SERVER_NAME), ("Content-Type", "text/plain; charset=utf-8"))
        head = self._head_bytes(answer.status, None, headers, len(body))
        self.started = True
        self._write(head + body if self._has_body else head)
        self.finished = True


Handler = Callable[[Exchange], Awaitable["Answer | None"]]


class _Connection(BaseProtocol):
    """One client connection."""

    __slots__ = ("server", "remote", "messages", "task", "waiter", "closing", "failed", "payload", "counted",
                 "head_timer", "idle_timer", "idle_deadline", "requests", "busy")

    def __init__(self, server: "Server"):
        loop = server.loop
        parser = HttpRequestParser(self, loop, READ_LIMIT, max_line_size=MAX_LINE, max_field_size=MAX_FIELD,
                                   max_headers=MAX_HEADERS, payload_exception=RequestPayloadError,
                                   auto_decompress=False, max_msg_queue_size=MAX_QUEUED)
        super().__init__(loop, parser)
        self.server = server
        self.remote: str | None = None
        self.messages: deque = deque()
        self.task: asyncio.Task | None = None   # handles this connection's requests, one at a time
        self.waiter: asyncio.Future | None = None   # the task waits on it for the next request
        self.closing = False          # no more requests on this connection
        self.failed = False           # the parser refused a request: nothing after it is read
        self.payload: StreamReader | None = None   # the body of the last request parsed
        self.counted = False
        self.head_timer: asyncio.TimerHandle | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self.idle_deadline = 0.0
        self.requests = 0
        self.busy = False             # a request is being handled

    # ---- protocol callbacks ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        server = self.server
        server.connections.add(self)
        self.counted = True
        server.open_connections += 1
        if server.open_connections > server.max_connections or server.stopping:
            server.on_refused()
            transport.write(_BUSY)
            self.closing = True
            transport.close()
            return
        tcp_keepalive(transport)
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, (tuple, list)) and peer else None
        self.idle_deadline = self._loop.time() + server.keepalive_timeout
        self.idle_timer = self._loop.call_at(self.idle_deadline, self._idle_check)
        # a new connection's first request head must arrive whole within the head timeout, also
        # when not one byte of it comes (a silent socket would hold a slot for the idle timeout)
        self.head_timer = self._loop.call_later(server.head_timeout, self._head_late)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.failed or self._upgraded:
            return
        try:
            messages, upgraded, _tail = parser.feed_data(data)
        except HttpProcessingError as exc:
            messages, upgraded = [(exc, EMPTY_PAYLOAD)], False
            self.failed = self.closing = True  # nothing after a request the parser refused is read
        if messages:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None
            self.messages.extend(messages)
            self.payload = messages[-1][1]
            if len(self.messages) >= MAX_QUEUED:
                self._pause_reading_for_buffer()
            if self.task is None:
                self.task = self._loop.create_task(self._run())
            elif self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)
        elif data and self.head_timer is None:
            payload = self.payload
            if payload is None or payload is EMPTY_PAYLOAD or payload.is_eof():  # not inside a body
                self.head_timer = self._loop.call_later(self.server.head_timeout, self._head_late)
        if upgraded:
            # a protocol switch is never forwarded (Upgrade is hop-by-hop): the request is answered
            # as a plain one and the connection closes after it, whatever followed it
            self._upgraded = True
            self.closing = True

    def eof_received(self):
        return None  # close

    def connection_lost(self, exc) -> None:
        server = self.server
        if self.counted:
            self.counted = False
            server.open_connections -= 1
        server.connections.discard(self)
        self.closing = True
        for timer in (self.head_timer, self.idle_timer):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.idle_timer = None
        super().connection_lost(exc)
        payload = self.payload
        if payload is not None and payload is not EMPTY_PAYLOAD and not payload.is_eof():
            payload.set_exception(ConnectionResetError("the client closed the connection"))
        self._parser = None
        task = self.task
        if task is not None and not task.done():
            task.cancel()  # the client went away: its request's handler (and backend request) with it
        self.task = None

    # ---- timers --------------------------------------------------------------------------------
    def _head_late(self) -> None:
        self.head_timer = None
        log.warning("closed a connection from %s: no complete request head within %g s", self.remote or "?",
                    self.server.head_timeout)
        self.close()

    def _idle_check(self) -> None:
        self.idle_timer = None
        if self.transport is None:
            return
        now = self._loop.time()
        if now < self.idle_deadline:
            self.idle_timer = self._loop.call_at(self.idle_deadline, self._idle_check)
        elif not self.busy and not self.messages:
            self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def idle(self) -> bool:
        return not self.busy and not self.messages

    # ---- requests ------------------------------------------------------------------------------
    async def _run(self) -> None:
        """Handle the parsed requests in order, waiting for the next one, until the connection closes."""
        loop = self._loop
        try:
            while self.transport is not None:
                if not self.messages:
                    if self.closing:
                        break
                    w = self.waiter = loop.create_future()
                    try:
                        await w
                    finally:
                        self.waiter = None
                    continue
                message, payload = self.messages.popleft()
                parser = self._parser
                if parser is not None:
                    parser.message_consumed()
                    if self._buffer_paused and len(self.messages) <= MAX_QUEUED // 2:
                        self.data_received(b"")  # parse what waited, then read on
                        self._resume_reading_for_buffer()
                self.requests += 1
                self.busy = True
                try:
                    keep = await self._one(message, payload)
                finally:
                    self.busy = False
                    self.server.request_done()
                if not keep:
                    self.close()
                    return
                self.idle_deadline = loop.time() + self.server.keepalive_timeout
                if self.idle_timer is None and self.transport is not None:
                    self.idle_timer = loop.call_at(self.idle_deadline, self._idle_check)
            if self.transport is not None:
                self.close()
        finally:
            self.task = None

    async def _one(self, message, payload: StreamReader) -> bool:
        """Handle one request; True when the connection may carry another."""
        if isinstance(message, HttpProcessingError):
            self._refused(message)
            return False
        te = message.headers.getall("Transfer-Encoding", ())
        if te and [c.strip().lower() for v in te for c in v.split(",")] != ["chunked"]:
            # a transfer coding besides chunked (RFC 9112 6.1): not decoded, so never forwarded as
            # if the bytes were the body; 501 and the connection closed, nothing after it read
            self.failed = self.closing = True
            log.info("refused a request from %s: a transfer coding other than chunked", self.remote or "?")
            self._fixed(501, "501 Not Implemented: only the chunked transfer coding is accepted\n")
            return False
        if message.method == "CONNECT":
            # a tunnel, in any form of target, is never forwarded: 400 and the connection closed,
            # nothing after the head read
            self.failed = self.closing = True
            log.info("refused a CONNECT request from %s", self.remote or "?")
            self._fixed(400, "400 Bad Request: CONNECT is not accepted\n")
            return False
        ex = Exchange(self, message, payload)
        try:
            answer = await self.server.handler(ex)
            if answer is not None:
                ex._answer(answer)
        except asyncio.CancelledError:
            if self.server.cut_off and not ex.started:
                # the gateway stopped before the answer began: the client is told so, not left
                # with a connection closed on it
                self._fixed(503, "503 Service Unavailable: the gateway stopped\n")
            raise
        except ConnectionError:
            return False
        except Exception as exc:
            log.warning("internal error on a request from %s: %s", self.remote or "?", type(exc).__name__)
            if not ex.started:
                try:
                    ex._answer(Answer(500, "500 Internal Server Error\n", close=True))
                except ConnectionError:
                    pass
            return False
        if not ex.finished:
            return False
        transport = self.transport
        if payload is not EMPTY_PAYLOAD and not payload.is_eof() and transport is not None:
            # a body nobody read: read and dropped, so the next request is read from where it
            # starts, or, after an answer that closes the connection, so the client sees the answer
            # and not a reset; that answer is followed by the end of the stream at once (the client
            # reads the close right after it), only the reading side lingers
            if (ex._close or self.closing) and transport.can_write_eof() and not transport.is_closing():
                transport.write_eof()
            end = self._loop.time() + self.server.lingering_time
            try:
                while not payload.is_eof():
                    left = end - self._loop.time()
                    if left <= 0:
                        return False
                    await asyncio.wait_for(payload.readany(), left)
            except (asyncio.TimeoutError, ConnectionError, RequestPayloadError):
                return False
        return not (ex._close or self.closing)

    def _refused(self, exc: HttpProcessingError) -> None:
        """A request the parser refused: one log line, a fixed answer, the connection closed."""
        # the kind of error and its sizes only: the parser's message goes on to quote the request's
        # bytes (a header value or target, maybe a token or a cookie), which are never logged
        reason = (getattr(exc, "message", "") or str(exc))
        reason = reason.splitlines()[0].split(":", 1)[0].strip()[:120] if reason else ""
        level = logging.DEBUG if self.requests == 1 and isinstance(exc, BadHttpMethod) else logging.WARNING
        log.log(level, "malformed request from %s: %s%s", self.remote or "?", type(exc).__name__,
                f": {reason}" if reason else "")
        self._fixed(400, "400 Bad Request\n")

    def _fixed(self, status: int, text: str) -> None:
        """A fixed plain-text answer, the connection closed after it."""
        body = text.encode()
        transport = self.transport
        if transport is not None:
            transport.write(f"HTTP/1.1 {status} {_phrase(status)}\r\nServer: {SERVER_NAME}\r\n"
                            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                            f"Date: {_date()}\r\nConnection: close\r\n\r\n".encode() + body)


class Server:
    """The protocol factory for ``loop.create_server``, and the connections it made."""

    def __init__(self, handler: Handler, *, max_connections: int = 1024,
                 on_refused: Callable[[], None] = lambda: None, keepalive_timeout: float = 60.0,
                 head_timeout: float = 10.0, lingering_time: float = 10.0):
        self.handler = handler
        self.max_connections = max_connections
        self.on_refused = on_refused
        self.keepalive_timeout = keepalive_timeout
        self.head_timeout = head_timeout
        self.lingering_time = lingering_time
        self.loop = asyncio.get_running_loop()
        self.connections: set[_Connection] = set()
        self.open_connections = 0
        self.stopping = False
        self.cut_off = False    # the shutdown cancelled the requests still in flight
        self._all_done: asyncio.Future | None = None

    def __call__(self) -> _Connection:
        return _Connection(self)

    def request_done(self) -> None:
        waiter = self._all_done
        if waiter is not None and not waiter.done() and all(c.idle() for c in self.connections):
            waiter.set_result(None)

    async def shutdown(self, timeout: float) -> None:
        """Close idle connections; give requests in flight ``timeout`` s, then cancel them and close."""
        self.stopping = True
        for conn in list(self.connections):
            conn.closing = True  # no request after the one in flight
            if conn.idle():
                conn.close()
        if not all(c.idle() for c in self.connections):
            self._all_done = self.loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._all_done), timeout)
            except asyncio.TimeoutError:
                pass
            finally:
                self._all_done = None
        tasks = [c.task for c in self.connections if c.task is not None and not c.task.done()]
        self.cut_off = bool(tasks)
        for task in tasks:
            task.cancel()
        if tasks:  # the handlers record the cut-off and answer 503 before their connections close
            await asyncio.wait(tasks, timeout=5)
        for conn in list(self.connections):
            conn.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
