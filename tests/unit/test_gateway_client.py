"""The gateway's HTTP/1.1 client against raw-socket backends: what goes on the wire, how answers are
framed, when a connection is reused, and that nothing is ever sent twice."""

from __future__ import annotations

import asyncio

import pytest

from hub.gateway.client import BrokenBody, Disconnected, Malformed, Pool, PoolFull


class Raw:
    """A backend on a raw socket: records what arrives per connection; ``answer(request_bytes)``
    gives the bytes to send back (None: close without answering)."""

    def __init__(self, answer):
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return "http://127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader, writer):
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                body = b""
                lower = head.lower()
                if b"content-length: " in lower:
                    n = int(lower.split(b"content-length: ")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(n)
                elif b"transfer-encoding: chunked" in lower:
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        body += (await reader.readexactly(size + 2))[:size]
                        if not size:
                            break
                self.requests.append(head + body)
                out = self.answer(head + body)
                if out is None:
                    return
                writer.write(out)
                await writer.drain()
                if b"Connection: close" in out:
                    return
        finally:
            writer.close()


def run(answer, scenario, **pool_options):
    async def main():
        backend = Raw(answer)
        url = await backend.start()
        pool = Pool(url, pool_options.get("max_connections", 4), pool_options.get("timeout_s", 2.0),
                    pool_options.get("pool_timeout_s", 0.2))
        try:
            return await scenario(pool), backend
        finally:
            pool.close()
            backend.server.close()
    return asyncio.run(main())


async def fetch(pool, method="GET", target="/x", headers=(), body=None, length=None):
    resp = await pool.request(method, target, headers, body, length)
    try:
        return resp.status, resp.headers, await resp.read()
    finally:
        resp.release()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_the_request_goes_out_as_given_in_one_piece_and_the_connection_is_reused():
    async def scenario(pool):
        return [await fetch(pool, "GET", "/a/b?c=d", [("X-A", "1"), ("X-Utf8", "\u00e9t\u00e9")]),
                await fetch(pool, "DELETE", "/a/1")]

    answers, backend = run(lambda req: OK, scenario)
    assert [a[0] for a in answers] == [200, 200] and answers[0][2] == b"ok"
    assert backend.connections == 1  # keep-alive: the second request on the first connection
    first, second = backend.requests
    assert first.startswith(b"GET /a/b?c=d HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-A: 1\r\nX-Utf8: \xc3\xa9t\xc3\xa9\r\n\r\n" in first and b"Content-Length" not in first
    assert second.startswith(b"DELETE /a/1 HTTP/1.1\r\n")


def test_bodies_are_framed_by_length_or_chunked_and_streamed():
    async def parts():
        yield b"abc"
        yield b"defg"

    async def scenario(pool):
        await fetch(pool, "POST", "/known", body=parts(), length=7)
        await fetch(pool, "POST", "/chunked", body=parts())
        await fetch(pool, "POST", "/empty")

    _, backend = run(lambda req: OK, scenario)
    known, chunked, empty = backend.requests
    assert b"Content-Length: 7\r\n\r\nabcdefg" in known
    assert b"Transfer-Encoding: chunked\r\n\r\nabcdefg" in chunked
    assert b"Content-Length: 0\r\n" in empty


class FirstRead(Raw):
    """A raw backend that also keeps the bytes of each connection's first read."""

    def __init__(self, answer):
        super().__init__(answer)
        self.first_reads: list[bytes] = []

    async def _conn(self, reader, writer):
        first = await reader.read(65536)
        self.first_reads.append(first)
        reader._buffer[:0] = first  # back for the parser
        await super()._conn(reader, writer)


def test_the_head_goes_out_with_the_first_piece_of_the_body_in_one_write():
    async def parts():
        await asyncio.sleep(0.3)  # the client's body comes a moment after its head
        yield b"abc"
        await asyncio.sleep(0.3)
        yield b"defg"

    async def main():
        backend = FirstRead(lambda req: OK)
        url = await backend.start()
        pools = [Pool(url, 1, 2.0, 0.2), Pool(url, 1, 2.0, 0.2)]  # a connection each
        try:
            await fetch(pools[0], "POST", "/known", body=parts(), length=7)
            await fetch(pools[1], "POST", "/chunked", body=parts())
        finally:
            for pool in pools:
                pool.close()
            backend.server.close()
        return backend

    backend = asyncio.run(main())
    known, chunked = backend.first_reads
    assert known.startswith(b"POST /known HTTP/1.1\r\n") and known.endswith(b"Content-Length: 7\r\n\r\nabc")
    assert chunked.startswith(b"POST /chunked HTTP/1.1\r\n")
    assert chunked.endswith(b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert [r.split(b"\r\n\r\n", 1)[1] for r in backend.requests] == [b"abcdefg", b"abcdefg"]


def test_answers_framed_by_length_chunks_or_the_end_of_the_connection():
    answers = {
        b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n"
                     b"X-Trailer: t\r\n\r\n",
        b"/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        b"/interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
        b"/head": b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        b"/nobody": b"HTTP/1.1 204 No Content\r\n\r\n",
    }

    async def scenario(pool):
        out = {}
        for target in ("/chunked", "/close", "/interim", "/nobody"):
            out[target] = await fetch(pool, "GET", target)
        resp = await pool.request("HEAD", "/head", ())
        out["/head"] = (resp.status, resp.length, await resp.read())
        resp.release()
        return out

    out, backend = run(lambda req: answers[req.split(b" ")[1]], scenario)
    assert out["/chunked"][0] == 200 and out["/chunked"][2] == b"abcde"
    assert out["/close"][2] == b"until the end"
    assert out["/interim"][0] == 201 and out["/interim"][2] == b"x"
    assert out["/nobody"][0] == 204 and out["/nobody"][2] == b""
    assert out["/head"] == (200, 1234, b"")
    # the connection that ended with its answer is not reused; the chunked one was
    assert backend.connections == 2


@pytest.mark.parametrize("answer, error", [
    (None, Disconnected),
    (b"HTTP/1.1 abc\r\n\r\n", Malformed),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", Malformed),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", Malformed),
    (b"HTTP/1.1 200 OK\r\nX-Bad\x01: v\r\n\r\n", Malformed),
    (b"HTTP/1.1 200 OK\r\n folded: line\r\n\r\n", Malformed),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", BrokenBody),
    # a transfer coding the client does not decode would reach the client as if it were the body
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", Malformed),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nab", Malformed),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Malformed),
])
def test_a_broken_answer_is_an_error_and_the_request_is_never_sent_again(answer, error):
    async def scenario(pool):
        assert (await fetch(pool, "GET", "/warm"))[0] == 200  # a pooled keep-alive connection
        with pytest.raises(error):
            await fetch(pool, "PUT", "/write", body=one(), length=2)

    async def one():
        yield b"{}"

    def respond(req):
        if req.startswith(b"GET"):
            return OK
        return answer

    _, backend = run(respond, scenario)
    assert [r.split(b" ")[0] for r in backend.requests] == [b"GET", b"PUT"]  # the PUT arrived once


def test_a_full_pool_waits_pool_timeout_then_refuses():
    async def scenario(pool):
        held = await pool.request("GET", "/slow", ())  # the pool's one connection, answer not read
        with pytest.raises(PoolFull):
            await fetch(pool, "GET", "/x")
        held.release()  # unread: the connection is closed, its place freed
        return await fetch(pool, "GET", "/x")

    out, backend = run(lambda req: OK, scenario, max_connections=1, pool_timeout_s=0.2)
    assert out[0] == 200 and backend.connections == 2


def test_a_silent_backend_times_out():
    async def scenario(pool):
        with pytest.raises(asyncio.TimeoutError):
            await fetch(pool, "GET", "/x")

    run(lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", scenario, timeout_s=0.3)


def test_a_backend_urls_path_is_a_prefix_of_every_request_target():
    async def main():
        backend = Raw(lambda req: OK)
        pool = Pool(await backend.start() + "/v2/", 4, 2.0, 0.2)
        try:
            return await fetch(pool, "GET", "/users/1?x=1"), backend
        finally:
            pool.close()
            backend.server.close()

    (status, _, _), backend = asyncio.run(main())
    assert status == 200 and backend.requests[0].startswith(b"GET /v2/users/1?x=1 HTTP/1.1\r\n")
