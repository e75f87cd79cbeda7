"""The gateway's limits, seen on the wire: slow request bodies are cut off (408) and never held
against the backend, the latency of a leg is the backend's own, client connections and backend
pools are capped, shadows are held per shadow backend, and what the gateway answers by itself
gives nothing away. Raw sockets on the client side, raw-socket backends."""

from __future__ import annotations

import asyncio
import time

from tests.integration.test_gateway_hostile import API, Harness, RawBackend, read_head, req, response


class EofBackend(RawBackend):
    """A raw backend that also notes when a connection it had a request head on was closed."""

    def __init__(self, answer=None):
        super().__init__(answer)
        self.heads = 0
        self.closed = asyncio.Event()

    async def _conn(self, reader, writer):
        peek = await reader.read(1)
        if not peek:
            writer.close()
            return
        self.heads += 1
        reader._buffer[:0] = peek  # put it back for the parser
        try:
            await super()._conn(reader, writer)
        except asyncio.IncompleteReadError:
            pass
        finally:
            if reader.at_eof():
                self.closed.set()


def limits(**gateway) -> dict:
    return {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", **gateway}, **API}


async def slow_post(address, parts: list[tuple[bytes, float]], length: int) -> bytes:
    """A POST whose body goes out in ``parts`` (bytes, then a pause in seconds); the answer's status line."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(f"POST /api/slow HTTP/1.1\r\nHost: gw\r\nContent-Length: {length}\r\n\r\n".encode())
        for data, pause in parts:
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(pause)
        line, _ = await asyncio.wait_for(read_head(reader), 20)
        return line
    finally:
        writer.close()


def test_a_request_body_that_pauses_is_cut_off_with_408_and_the_backend_request_cancelled():
    async def run():
        backend = EofBackend()
        async with Harness(limits(body_idle_timeout_s=0.3, body_min_rate=0), {"primary": backend}) as h:
            # 5 of 10 bytes, then silence: longer than the body's idle timeout
            line = await slow_post(h.address, [(b"abcde", 3.0)], 10)
            assert line.split(b" ")[1] == b"408"
            await asyncio.wait_for(backend.closed.wait(), 20)  # the backend's connection was let go
            stats = h.gateway.stats()
        assert backend.heads == 1 and backend.seen == []  # the body never reached it whole
        assert stats["slow_bodies"] == 1 and stats["backend_errors"] == 0 and stats["backend_timeouts"] == 0
        (leg, _), = h.legs
        assert leg.status == 408 and leg.error.startswith("client: the request body paused")
        assert leg.latency_ms == 0 and leg.request_bytes == 5

    asyncio.run(run())


def test_a_request_body_trickling_below_the_minimum_rate_is_cut_off():
    async def run():
        backend = EofBackend()
        async with Harness(limits(body_idle_timeout_s=0.5, body_min_rate=100), {"primary": backend}) as h:
            # one byte every 0.1 s never pauses for 0.5 s, but averages 10 bytes/s: far below 100
            line = await slow_post(h.address, [(bytes([97 + i % 26]), 0.1) for i in range(60)], 60)
            assert line.split(b" ")[1] == b"408"
        assert backend.seen == []
        (leg, _), = h.legs
        assert leg.status == 408 and "slower than 100 bytes/s" in leg.error

    asyncio.run(run())


def test_a_slow_upload_is_not_the_backends_latency():
    async def run():
        backend = RawBackend(lambda seen: response(body=b'{"ok": true}'))
        async with Harness(limits(body_idle_timeout_s=10, body_min_rate=0), {"primary": backend}) as h:
            start = time.perf_counter()
            line = await slow_post(h.address, [(b"abcde", 2.0), (b"fghij", 0)], 10)
            total_ms = (time.perf_counter() - start) * 1000
            assert line.split(b" ")[1] == b"200"
        assert backend.seen[0].body == b"abcdefghij"
        (leg, _), = h.legs
        assert leg.status == 200 and not leg.error and leg.request_bytes == 10
        # the backend answered at once; the client's 2 s pause is its own, not the backend's
        assert total_ms >= 2000 > leg.latency_ms

    asyncio.run(run())


def test_escapes_of_nul_control_characters_and_invalid_utf8_never_reach_the_backend():
    async def run():
        backend = RawBackend()
        async with Harness(API, {"primary": backend}) as h:
            for target in ("/api/x%00.json", "/api/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/api/a%0d%0ab", "/api/%ff"):
                assert (await h.send(req("GET", target))).status == 400, target
            assert (await h.send(req("GET", "/api/caf%c3%a9"))).status == 200
        assert [s.target for s in backend.seen] == ["/api/caf%C3%A9"]

    asyncio.run(run())


def test_a_hung_shadow_fills_only_its_own_bulkhead():
    async def hang(seen):
        await asyncio.sleep(60)

    config = {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", "shutdown_timeout_s": 0.2},
              "backends": {"hung": {"timeout_s": 60}},
              "bulkhead": {"max_concurrent": 1, "max_queue": 1},
              "routes": [{"path": "/hang/{rest*}", "backend": "primary", "shadow": {"backend": "hung", "percent": 100}},
                         {"path": "/api/{rest*}", "backend": "primary", "shadow": {"backend": "shadow", "percent": 100}}]}

    async def run():
        primary, hung, shadow = RawBackend(), RawBackend(hang), RawBackend()
        async with Harness(config, {"primary": primary, "hung": hung, "shadow": shadow}) as h:
            for i in range(4):  # one runs (and hangs), one waits, two are dropped
                assert (await h.send(req("GET", f"/hang/{i}"))).status == 200
            for i in range(3):
                assert (await h.send(req("GET", f"/api/{i}"))).status == 200
            while h.gateway.counters["shadow_sent"] + h.gateway.counters["shadow_dropped"] < 5:
                await asyncio.sleep(0.02)  # the /api shadows (answered at once) and the two /hang drops
            stats = h.gateway.stats()
        assert sorted(s.target for s in shadow.seen) == ["/api/0", "/api/1", "/api/2"]
        assert stats["bulkheads"]["shadow"]["dropped"] == 0 and stats["bulkheads"]["hung"]["dropped"] == 2
        api_pairs = [p for p in h.pairs if p.get("data", p).get("route") == "/api/{rest*}"]
        assert len(api_pairs) == 3 and all(p.get("data", p)["outcome"] != "dropped_by_bulkhead" for p in api_pairs)

    asyncio.run(run())


async def keep_alive(address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection with one request answered on it, left open."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"GET /api/k HTTP/1.1\r\nHost: gw\r\n\r\n")
    line, headers = await read_head(reader)
    assert line.split(b" ")[1] == b"200"
    length = int(next(v for k, v in headers if k.lower() == b"content-length"))
    await reader.readexactly(length)
    return reader, writer


def test_client_connections_beyond_the_cap_are_answered_503_and_closed():
    async def run():
        backend = RawBackend()
        async with Harness(limits(max_connections=3), {"primary": backend}) as h:
            held = [await keep_alive(h.address) for _ in range(3)]
            reader, writer = await asyncio.open_connection(*h.address)
            answer = await asyncio.wait_for(reader.read(), 20)  # answered and closed without a request
            writer.close()
            assert answer.startswith(b"HTTP/1.1 503 ") and b"too many connections" in answer
            assert b"Python" not in answer and b"aiohttp" not in answer
            held[0][1].close()  # one goes: a new one is served
            while True:
                reader, writer = await asyncio.open_connection(*h.address)
                writer.write(req("GET", "/api/again"))
                first = await asyncio.wait_for(reader.read(), 20)
                writer.close()
                if not first.startswith(b"HTTP/1.1 503 "):
                    break
                await asyncio.sleep(0.05)  # the gateway has not seen the close yet
            assert first.startswith(b"HTTP/1.1 200 ")
            for _, w in held[1:]:
                w.close()
            stats = h.gateway.stats()
        assert stats["connections_refused"] >= 1
        assert sum(1 for s in backend.seen if s.target == "/api/again") == 1

    asyncio.run(run())


def test_a_backend_pool_caps_the_connections_to_a_backend_and_a_full_pool_is_503():
    release = None
    busy = 0
    most = 0

    async def slow(seen):
        # holds its connection until released
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await release.wait()
        busy -= 1
        return response(body=b"{}")

    config = {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0"},
              "backends": {"primary": {"timeout_s": 60, "max_connections": 2, "pool_timeout_s": 0.3}}, **API}

    async def run():
        nonlocal release
        release = asyncio.Event()
        backend = RawBackend(slow)
        async with Harness(config, {"primary": backend}) as h:
            first = [asyncio.ensure_future(h.send(req("GET", f"/api/{i}"))) for i in range(2)]
            while busy < 2:
                await asyncio.sleep(0.02)
            # the pool is full: the third waits for a connection, then is refused
            third = await asyncio.wait_for(h.send(req("GET", "/api/third")), 20)
            release.set()
            answers = await asyncio.gather(*first)
            stats = h.gateway.stats()
            legs = [leg for leg, _ in h.legs]
        assert third.status == 503 and third.header("Server") == "hub-gateway"
        assert most == 2 and "/api/third" not in [s.target for s in backend.seen]
        assert stats["pool_full"] == 1
        third_leg, = [leg for leg in legs if leg.status == 0]
        assert third_leg.error.startswith("pool: no free connection to primary")
        assert [a.status for a in answers] == [200, 200]  # the first two were only held, never refused

    asyncio.run(run())


def test_what_the_gateway_answers_itself_echoes_nothing_and_names_no_version():
    async def run():
        backend = RawBackend()
        async with Harness(API, {"primary": backend}) as h:
            bad = await h.send(b"GET /api/x\ty HTTP/1.1\r\nHost: gw\r\n\r\n")  # refused by the HTTP parser
            assert bad.status == 400 and b"/api" not in bad.body and b"x\ty" not in bad.body
            assert bad.header("Server") == "hub-gateway"
            ok = await h.send(req("GET", "/api/fine"))
            assert ok.status == 200 and ok.header("Server") == "hub-gateway"
            none = await h.send(req("GET", "/nothing"))
            assert none.status == 404 and none.header("Server") == "hub-gateway"
            # a Host that would smuggle parameters into X-Forwarded-Host and Forwarded is refused
            evil = 'Host: evil.example;proto=https,for="1.2.3.4"'
            answer = await h.send(f'GET /api/h HTTP/1.1\r\n{evil}\r\nConnection: close\r\n\r\n'.encode())
            assert answer.status == 400
            for host in ("gw.example:8443", "10.0.0.1", "[::1]:80"):
                answer = await h.send(f"GET /api/h HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                assert answer.status == 200, host
        assert all("Python" not in (a.header("Server") or "") for a in (bad, ok, none))
        assert [s.header("X-Forwarded-Host") for s in backend.seen if s.target == "/api/h"] == \
            ["gw.example:8443", "10.0.0.1", "[::1]:80"]

    asyncio.run(run())


def test_a_client_that_aborts_its_upload_is_the_clients_failure_not_the_backends():
    async def run():
        backend = EofBackend()
        async with Harness(limits(body_idle_timeout_s=30, body_min_rate=0), {"primary": backend}) as h:
            reader, writer = await asyncio.open_connection(*h.address)
            writer.write(b"PUT /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.close()  # 3 of 100 bytes, then gone
            while not h.legs:
                await asyncio.sleep(0.02)
            stats = h.gateway.stats()
        assert stats["client_disconnects"] == 1 and stats["backend_errors"] == 0
        (leg, _), = h.legs
        assert leg.status == 408 and leg.error.startswith("client:")
        assert leg.latency_ms == 0  # the upload never finished: no backend time to speak of

    asyncio.run(run())


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_head_timeout_not_the_idle_one():
    async def run():
        async with Harness(limits(header_timeout_s=0.5, idle_timeout_s=3600), {"primary": RawBackend()}) as h:
            reader, writer = await asyncio.open_connection(*h.address)
            try:
                assert await asyncio.wait_for(reader.read(), 20) == b""  # closed, long before the idle timeout
            finally:
                writer.close()
            while h.gateway._server.open_connections:  # its slot under the connection cap is free again
                await asyncio.sleep(0.02)

    asyncio.run(run())


def test_requests_cut_off_by_the_gateways_stop_are_the_gateways_doing_and_the_client_gets_503():
    async def run():
        async def slow(seen):
            await asyncio.sleep(3)
            return response()

        backend = EofBackend(slow)
        h = Harness(limits(shutdown_timeout_s=0.5, body_idle_timeout_s=30, body_min_rate=0), {"primary": backend})
        await h.__aenter__()
        try:
            waiting = await asyncio.open_connection(*h.address)
            waiting[1].write(b"GET /api/slow HTTP/1.1\r\nHost: h\r\n\r\n")
            uploading = await asyncio.open_connection(*h.address)
            uploading[1].write(b"PUT /api/up HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
            for _, writer in (waiting, uploading):
                await writer.drain()
            while backend.heads < 2:
                await asyncio.sleep(0.02)
            await h.gateway.close()  # the stop's grace (0.5 s) runs out long before the backend answers
            for reader, writer in (waiting, uploading):
                answer = await asyncio.wait_for(reader.read(), 20)
                writer.close()
                assert answer.startswith(b"HTTP/1.1 503 "), answer
                assert b"\r\nConnection: close\r\n" in answer
            stats = h.gateway.stats()
        finally:
            await backend.close()
        assert stats["client_disconnects"] == 0
        assert sorted(leg.method for leg, _ in h.legs) == ["GET", "PUT"]
        for leg, _ in h.legs:
            assert leg.status == 503 and leg.error == "gateway: stopped before the answer (shutdown timeout)"

    asyncio.run(run())


def test_an_answer_that_closes_the_connection_is_followed_at_once_by_the_end_of_the_stream():
    async def run():
        backend = EofBackend()
        async with Harness(limits(body_idle_timeout_s=0.5, body_min_rate=0), {"primary": backend}) as h:
            h.gateway._server.lingering_time = 3600  # the unread body may be drained, never before the close
            reader, writer = await asyncio.open_connection(*h.address)
            try:
                writer.write(b"PUT /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), 20)  # the answer, then the close
            finally:
                writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ") and b"\r\nConnection: close\r\n" in answer
        assert answer.endswith(b"request timeout: the request body came too slowly\n")

    asyncio.run(run())
