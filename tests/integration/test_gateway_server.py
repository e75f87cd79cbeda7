"""The proxy port's HTTP server on the wire (``hub.gateway.server``, the gateway's own asyncio
Protocol on aiohttp's C parser): raw sockets on the client side, raw-socket backends recording
every byte that reaches them."""

from __future__ import annotations

import asyncio
import gzip
import logging

import pytest

from tests.integration.test_gateway_hostile import API, Harness, RawBackend, read_body, read_head



def on(**gateway) -> dict:
    return {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", **gateway}, **API}


async def exchange(address, data: bytes, answers: int) -> tuple[list[tuple[int, dict, bytes]], bytes]:
    """Write ``data`` on one connection, read ``answers`` answers, then what follows until the close."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        out = []
        for _ in range(answers):
            line, headers = await asyncio.wait_for(read_head(reader), 20)
            h = {k.decode().lower(): v.decode() for k, v in headers}
            body = b"" if b"HEAD" in line else await asyncio.wait_for(
                read_body(reader, headers, until_close="content-length" not in h), 20)
            out.append((int(line.split(b" ")[1]), h, body))
        rest = await asyncio.wait_for(reader.read(), 20)
        return out, rest
    finally:
        writer.close()


# Requests a front end and a back end could frame differently (request smuggling), and other
# malformed heads: each is refused with 400, nothing after it on the connection is read, and
# nothing reaches the backend.
SMUGGLING = {
    "content-length and chunked": b"POST /api/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two content-lengths": b"POST /api/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "a content-length list": b"POST /api/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 4, 5\r\n\r\nabcde",
    "a signed content-length": b"POST /api/a HTTP/1.1\r\nHost: gw\r\nContent-Length: +4\r\n\r\nabcd",
    "chunked, not last": b"POST /api/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                         b"0\r\n\r\n",
    "an obs-fold line": b"GET /api/a HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n  folded\r\n\r\n",
    "bare LF line ends": b"GET /api/a HTTP/1.1\nHost: gw\n\n",
    "a space before the colon": b"GET /api/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n",
    "a header name with a control byte": b"GET /api/a HTTP/1.1\r\nHost: gw\r\nX\x01A: 1\r\n\r\n",
    "a bad chunk size": b"POST /api/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"zz\r\nabc\r\n0\r\n\r\n",
    "a request line too long": b"GET /api/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: gw\r\n\r\n",
    "a header too long": b"GET /api/a HTTP/1.1\r\nHost: gw\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
    "too many headers": b"GET /api/a HTTP/1.1\r\nHost: gw\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n",
}


def test_ambiguous_and_malformed_requests_are_refused_and_nothing_after_them_is_read():
    follow = b"GET /api/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"

    async def run():
        backend = RawBackend()
        refused = {}
        async with Harness(on(), {"primary": backend}) as h:
            for name, data in SMUGGLING.items():
                answers, rest = await exchange(h.address, data + follow, 1)
                (status, headers, body), = answers
                refused[name] = (status, rest)  # rest: b"" once the gateway closed the connection
        assert {name: r for name, r in refused.items() if r != (400, b"")} == {}
        assert [s.target for s in backend.seen if "smuggled" in s.target or s.target == "/a"] == []

    asyncio.run(run())


def test_a_compressed_request_body_reaches_the_backend_as_sent():
    raw = gzip.compress(b'{"patient": "x", "pad": "' + b"y" * 5000 + b'"}')

    async def run():
        backend = RawBackend()
        async with Harness(on(), {"primary": backend}) as h:
            data = (b"POST /api/upload HTTP/1.1\r\nHost: gw\r\nContent-Encoding: gzip\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(raw))
            (answer,), _ = await exchange(h.address, data + raw, 1)
        assert answer[0] == 200
        (seen,) = backend.seen
        assert seen.header("Content-Encoding") == "gzip" and seen.header("Content-Length") == str(len(raw))
        assert seen.body == raw  # the bytes the client sent, not decompressed on the way

    asyncio.run(run())


def test_pipelined_requests_are_answered_in_order_and_an_unread_body_does_not_end_the_connection():
    async def run():
        backend = RawBackend()
        async with Harness({**on(), "routes": [{"path": "/api/{rest*}", "backend": "primary",
                                                      "methods": ["GET"]}]}, {"primary": backend}) as h:
            data = (b"GET /api/1 HTTP/1.1\r\nHost: gw\r\n\r\n"
                    b"POST /api/2 HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello"  # 405: body never read
                    b"GET /api/3 HTTP/1.1\r\nHost: gw\r\n\r\n"
                    b"GET /api/4 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            answers, rest = await exchange(h.address, data, 4)
        assert [a[0] for a in answers] == [200, 405, 200, 200]
        assert [a[2] for a in answers if a[0] == 200] == [b'{"target": "/api/1"}', b'{"target": "/api/3"}',
                                                          b'{"target": "/api/4"}']
        assert answers[-1][1].get("connection") == "close" and rest == b""
        assert [s.target for s in backend.seen] == ["/api/1", "/api/3", "/api/4"]

    asyncio.run(run())


def test_an_http_1_0_client_gets_a_body_of_unknown_length_framed_by_the_close():
    def answer(seen):
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"

    async def run():
        backend = RawBackend(answer)
        async with Harness(on(), {"primary": backend}) as h:
            reader, writer = await asyncio.open_connection(*h.address)
            writer.write(b"GET /api/x HTTP/1.0\r\nHost: gw\r\n\r\n")
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 20)
            writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) and b"chunked" not in head.lower()
        assert body == b"abcde"

    asyncio.run(run())


def test_after_a_protocol_switch_request_nothing_more_is_read_from_the_connection():
    async def run():
        backend = RawBackend()
        async with Harness(on(), {"primary": backend}) as h:
            data = (b"GET /api/ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                    b"GET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n")
            (answer,), rest = await exchange(h.address, data, 1)
        assert answer[0] == 200 and answer[1].get("connection") == "close" and rest == b""
        (seen,) = backend.seen
        assert seen.target == "/api/ws" and seen.header("Upgrade") is None and seen.header("Connection") is None

    asyncio.run(run())


def test_a_response_header_with_a_line_break_never_reaches_the_client():
    # the backend client refuses such a head already (502); the server refuses to write one too
    from hub.gateway.server import Exchange

    class Conn:
        transport = remote = None
        closing = False

    class Message:
        method, path, version, headers, should_close, upgrade = "GET", "/", (1, 1), {}, False, False

    ex = Exchange(Conn(), Message(), None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ex._head_bytes(200, "OK", [("X-A", "1\r\nSet-Cookie: a=b")], 0)


@pytest.mark.parametrize("head", [b"GET /api/a HTTP/1.1\r\nHost: h;x\r\n\r\n",
                                  b"GET /api/a HTTP/1.1\r\nHost: gw\r\nX-Name: caf\xe9\r\n\r\n",
                                  b"GET /api/%zz HTTP/1.1\r\nHost: gw\r\n\r\n"])
def test_every_400_closes_the_connection_and_nothing_after_it_is_forwarded(head):
    async def run():
        backend = RawBackend()
        async with Harness(on(), {"primary": backend}) as h:
            (answer,), rest = await exchange(h.address, head + b"GET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n", 1)
        assert answer[0] == 400 and answer[1].get("connection") == "close" and rest == b""
        assert backend.seen == []

    asyncio.run(run())


@pytest.mark.parametrize("upgrade", [b"Connection: Upgrade\r\nUpgrade: h2c\r\n", b"Upgrade: websocket\r\n"])
def test_any_protocol_switch_request_is_answered_with_close_and_the_connection_closed(upgrade):
    async def run():
        backend = RawBackend()
        async with Harness(on(), {"primary": backend}) as h:  # idle timeout 60 s: the close is the answer's
            data = (b"GET /api/ws HTTP/1.1\r\nHost: gw\r\n" + upgrade + b"\r\n"
                    b"GET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n")
            (answer,), rest = await exchange(h.address, data, 1)
        assert answer[0] == 200 and answer[1].get("connection") == "close" and rest == b""
        assert [s.target for s in backend.seen] == ["/api/ws"]

    asyncio.run(run())


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"identity, chunked", b"deflate,chunked"])
def test_a_transfer_coding_other_than_chunked_is_refused_with_501_and_the_connection_closed(coding):
    async def run():
        backend = RawBackend()
        async with Harness(on(), {"primary": backend}) as h:
            data = (b"POST /api/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: " + coding + b"\r\n\r\n"
                    b"3\r\nabc\r\n0\r\n\r\nGET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n")
            (answer,), rest = await exchange(h.address, data, 1)
        assert answer[0] == 501 and answer[1].get("connection") == "close" and rest == b""
        assert backend.seen == []

    asyncio.run(run())


def test_a_refused_head_is_logged_by_its_kind_and_sizes_never_its_bytes(caplog):
    secret = b"tok3nS3cr3t"
    heads = [b"GET /api/" + secret * 900 + b" HTTP/1.1\r\nHost: gw\r\n\r\n",
             b"GET /api/a HTTP/1.1\r\nHost: gw\r\nCookie: s=" + secret * 900 + b"\r\n\r\n",
             b"GET /api/a HTTP/1.1\r\nHost: gw\r\nX-Token: " + secret + b"\x01\r\n\r\n",
             b"GET /api/a HTTP/1.1\r\nHost: gw\r\nX" + secret + b"\x01: 1\r\n\r\n"]

    async def run():
        async with Harness(on(), {"primary": RawBackend()}) as h:
            for head in heads:
                (answer,), _ = await exchange(h.address, head, 1)
                assert answer[0] == 400

    with caplog.at_level(logging.DEBUG, logger="hub.gateway.proxy"):
        asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(lines) == len(heads)
    assert [line for line in lines if "tok3n" in line or "3cr3t" in line] == []
    assert "8190" in lines[0] and "8190" in lines[1]  # the limit it broke


@pytest.mark.parametrize("target", [b"/api/x", b"backend.internal:443", b"http://gw/api/x"])
def test_connect_in_any_form_is_refused_and_the_connection_closed_never_forwarded(target):
    async def run():
        backend = RawBackend()
        async with Harness(on(), {"primary": backend}) as h:
            data = (b"CONNECT " + target + b" HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                    b"GET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n")
            (answer,), rest = await exchange(h.address, data, 1)
        assert answer[0] == 400 and answer[1].get("connection") == "close" and rest == b""
        assert backend.seen == []

    asyncio.run(run())


class ScriptedBackend(RawBackend):
    """Answers every request head with ``data``, then closes (``close``) or holds the connection open."""

    def __init__(self, data: bytes, close: bool):
        super().__init__()
        self.data, self.close_after = data, close

    async def _conn(self, reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.data)
            await writer.drain()
            if not self.close_after:
                await reader.read()  # open until the gateway lets go
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("data, close, error", [
    (b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", False, "Malformed: primary sent a malformed response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\nX-A: 1\r\n\r\nhello", False,
     "Malformed: primary sent a malformed response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello", True, "BrokenBody: primary sent a broken body"),
], ids=["bare LF head", "one bare LF in the head", "body shorter than its length"])
def test_a_malformed_backend_answer_is_a_502_at_once_never_a_timeout(data, close, error):
    async def run():
        config = {**on(), "backends": {"primary": {"timeout_s": 3600}}}  # a wait would outlast the test
        async with Harness(config, {"primary": ScriptedBackend(data, close)}) as h:
            (answer,), _ = await exchange(h.address, b"GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", 1)
            assert answer[0] == 502
        (leg, _), = h.legs
        assert leg.status == 0 and leg.error == error

    asyncio.run(run())
