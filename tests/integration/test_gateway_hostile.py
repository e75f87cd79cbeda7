"""The gateway under hostile and unusual traffic, seen on the wire: raw sockets on the client side
(a client library would normalise the path, add or fix headers, and retry) and raw-socket
backends that record every byte that reaches them."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from dataclasses import dataclass, field


from hub.gateway.config import parse_config
from hub.gateway.proxy import Gateway


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    peer: str = ""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.decode("latin-1").lower() == name.lower():
                return v.decode("latin-1")
        return None

    def all(self, name: str) -> list[str]:
        return [v.decode("latin-1") for k, v in self.headers if k.decode("latin-1").lower() == name.lower()]


async def read_head(reader: asyncio.StreamReader) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.strip(), v.strip()))
    return lines[0], headers


async def read_body(reader: asyncio.StreamReader, headers: list[tuple[bytes, bytes]], until_close=False) -> bytes:
    h = {k.lower(): v for k, v in headers}
    if b"chunked" in h.get(b"transfer-encoding", b"").lower():
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return bytes(out)
            out += await reader.readexactly(size + 2)
            del out[-2:]
    if b"content-length" in h:
        return await reader.readexactly(int(h[b"content-length"]))
    return await reader.read() if until_close else b""


def response(status: int = 200, body: bytes = b"{}", headers: list[tuple[str, str]] = (),
             content_type: str = "application/json") -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class RawBackend:
    """An HTTP/1.1 server on a raw socket that records each request it receives. ``answer(seen)``
    gives the response bytes, or None to close the connection without answering."""

    def __init__(self, answer=None):
        self.seen: list[Seen] = []
        self.answer = answer or (lambda seen: response(body=json.dumps({"target": seen.target}).encode()))
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return "http://127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line, headers = await read_head(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                seen = Seen(method, target, headers, await read_body(reader, headers),
                            writer.get_extra_info("peername")[0])
                self.seen.append(seen)
                out = self.answer(seen)
                if asyncio.iscoroutine(out):
                    out = await out
                if out is None:
                    return
                writer.write(out)
                await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


async def raw_request(address: tuple, data: bytes) -> Answer:
    """Send ``data`` as it is on one connection and read one response."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        line, headers = await read_head(reader)
        status = int(line.split(b" ")[1])
        if data.startswith(b"HEAD "):
            body = b""  # a response to HEAD has no body, whatever its Content-Length says
        else:
            body = await read_body(reader, headers,
                                   until_close=b"content-length" not in {k.lower() for k, _ in headers})
        return Answer(status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers], body)
    finally:
        writer.close()


def req(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: gw.example", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Harness:
    """A gateway with raw backends, in the test's event loop; legs and pairs kept in lists."""

    def __init__(self, config: dict, backends: dict[str, RawBackend]):
        self.config_doc = config
        self.backends = backends
        self.legs: list = []
        self.pairs: list = []

    async def __aenter__(self):
        urls = {name: await b.start() for name, b in self.backends.items()}
        doc = dict(self.config_doc)
        doc.setdefault("gateway", {"name": "gw-test", "listen": "127.0.0.1:0"})
        doc["backends"] = {name: {**doc.get("backends", {}).get(name, {}), "url": url} for name, url in urls.items()}
        self.gateway = Gateway(parse_config(doc), emit_leg=lambda leg, **env: self.legs.append((leg, env)),
                               emit_pair=lambda key, value: self.pairs.append(json.loads(value)))
        self.address = await self.gateway.start()
        return self

    async def __aexit__(self, *exc):
        await self.gateway.drain()
        await self.gateway.close()
        for b in self.backends.values():
            await b.close()

    async def send(self, data: bytes) -> Answer:
        return await raw_request(self.address, data)


API = {"routes": [{"path": "/api/{rest*}", "backend": "primary"}]}


# ---- 1. dot segments never escape the route ----------------------------------------------------
def test_dot_segments_and_encoded_dots_never_reach_a_path_the_gateway_has_no_route_for():
    async def run():
        backend = RawBackend()
        async with Harness(API, {"primary": backend}) as h:
            assert (await h.send(req("DELETE", "/api/../admin/delete-all"))).status == 404
            assert (await h.send(req("GET", "/api/%2e%2e/raw/x"))).status == 404
            assert (await h.send(req("GET", "/api/%2E%2e%2fadmin/delete-all"))).status == 404
            assert (await h.send(req("GET", "/api/.%2e/%2e%2e/etc/passwd"))).status == 400
            assert (await h.send(req("GET", "/api/../../etc/passwd"))).status == 400
            assert (await h.send(req("GET", "/api/..;/admin"))).status == 400
            assert (await h.send(req("GET", "/api/%zz"))).status == 400
            assert backend.seen == []  # nothing above reached the backend
            # what is routed is what is forwarded: normalised once, never again by the client library
            ok = await h.send(req("GET", "/api/a/./b/../c//d%2Fe\\f/%7euser/%3f?x=%2e%2e/../y"))
            assert ok.status == 200
            assert [s.target for s in backend.seen] == ["/api/a/c/d/e/f/~user/%3F?x=%2e%2e/../y"]
            assert json.loads(ok.body) == {"target": "/api/a/c/d/e/f/~user/%3F?x=%2e%2e/../y"}
            stats = h.gateway.stats()
        assert stats["bad_requests"] == 4 and stats["not_found"] == 3
        assert [leg.route for leg, _ in h.legs] == ["/api/{rest*}"]

    asyncio.run(run())


# ---- 2. never re-send ------------------------------------------------------------------------------
def test_a_backend_that_closes_without_answering_gets_each_write_exactly_once():
    def hang_up_on_writes(seen: Seen):
        if seen.method in ("DELETE", "PUT"):
            return None  # close the connection without answering
        return response(body=b'{"ok": true}')

    config = {"routes": [{"path": "/api/{rest*}", "backend": "primary"},
                         {"path": "/c/{rest*}", "backend": "primary",
                          "canary": {"backend": "canary", "weight": 1.0}}]}

    async def run():
        primary, canary = RawBackend(hang_up_on_writes), RawBackend(hang_up_on_writes)
        async with Harness(config, {"primary": primary, "canary": canary}) as h:
            for prefix in ("/api", "/c"):
                for method in ("DELETE", "PUT"):
                    # a keep-alive connection to the backend is in the pool: the case a client retries
                    assert (await h.send(req("GET", f"{prefix}/warm"))).status == 200
                    answer = await h.send(req(method, f"{prefix}/record/1", body=b"{}" if method == "PUT" else b""))
                    assert answer.status == 502
        for backend in (primary, canary):
            assert sorted(s.method for s in backend.seen if s.method != "GET") == ["DELETE", "PUT"]
        writes = [leg for leg, _ in h.legs if leg.method in ("DELETE", "PUT")]
        assert len(writes) == 4 and all(leg.status == 0 and leg.error for leg in writes)
        assert all("closed" in leg.error or "disconnect" in leg.error.lower() for leg in writes), \
            [leg.error for leg in writes]

    asyncio.run(run())


# ---- 3. method overrides and bodies make a request unsafe to replay ---------------------------------
def test_method_override_headers_and_bodies_on_safe_methods_are_never_shadowed():
    config = {"routes": [{"path": "/ro/{rest*}", "backend": "primary", "methods": ["GET"]},
                         {"path": "/api/{rest*}", "backend": "primary",
                          "shadow": {"backend": "shadow", "percent": 100, "secondary": "secondary"}}]}

    async def run():
        primary, shadow, secondary = RawBackend(), RawBackend(), RawBackend()
        async with Harness(config, {"primary": primary, "shadow": shadow, "secondary": secondary}) as h:
            for header in ("X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE", "x-method-override: PUT"):
                assert (await h.send(req("GET", "/api/records/1", header))).status == 200
            assert (await h.send(req("GET", "/api/records/2", body=b'{"delete": true}'))).status == 200
            assert (await h.send(req("GET", "/api/records/3", "Transfer-Encoding: chunked")[:-4]
                                  + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")).status == 200
            assert (await h.send(req("GET", "/api/records/4"))).status == 200  # the one safe request
            # a read-only route does not let an override through either
            assert (await h.send(req("GET", "/ro/x", "X-HTTP-Method-Override: DELETE"))).status == 405
            await h.gateway.drain()
            stats = h.gateway.stats()
        assert len(primary.seen) == 6
        assert [s.target for s in shadow.seen] == [s.target for s in secondary.seen] == ["/api/records/4"]
        assert stats["shadow_unsafe"] == 5 and stats["shadow_selected"] == 1

    asyncio.run(run())


# ---- 4. hop-by-hop headers, both ways -----------------------------------------------------------
def test_hop_by_hop_and_connection_nominated_headers_are_removed_in_both_directions():
    def answer(seen):
        return response(body=b"{}", headers=[("Connection", "X-Internal, Set-Cookie"), ("X-Internal", "backend-only"),
                                             ("Set-Cookie", "internal=1"), ("Proxy-Connection", "keep-alive"),
                                             ("Keep-Alive", "timeout=5"), ("X-Visible", "yes")])

    async def run():
        backend = RawBackend(answer)
        async with Harness(API, {"primary": backend}) as h:
            raw = (b"GET /api/x HTTP/1.1\r\nHost: gw.example\r\nConnection: keep-alive, X-Secret, Cookie\r\n"
                   b"Connection: close\r\nX-Secret: s3cr3t\r\nCookie: session=1\r\nProxy-Connection: keep-alive\r\n"
                   b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\n"
                   b"X-Other: kept\r\n\r\n")
            answer_ = await h.send(raw)
        seen = backend.seen[0]
        names = {k.decode().lower() for k, _ in seen.headers}
        assert not names & {"x-secret", "cookie", "proxy-connection", "keep-alive", "te", "proxy-authorization"}
        assert seen.header("X-Other") == "kept"
        assert answer_.status == 200 and answer_.header("X-Visible") == "yes"
        got = {k.lower() for k, _ in answer_.headers}
        assert not got & {"x-internal", "set-cookie", "proxy-connection", "keep-alive"}

    asyncio.run(run())


# ---- 5. forwarding headers ---------------------------------------------------------------------
def test_the_client_address_is_appended_to_the_forwarding_headers_and_the_host_kept():
    async def run():
        backend = RawBackend()
        async with Harness(API, {"primary": backend}) as h:
            assert (await h.send(req("GET", "/api/x", "X-Forwarded-For: 203.0.113.9", "Forwarded: for=203.0.113.9",
                                     "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https",
                                     "X-Real-IP: 6.6.6.6"))).status == 200
            assert (await h.send(req("GET", "/api/y"))).status == 200
        forged, plain = backend.seen
        assert forged.all("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
        assert forged.all("Forwarded") == ["for=203.0.113.9, for=127.0.0.1;proto=http;host=gw.example"]
        assert forged.all("X-Forwarded-Host") == ["gw.example"]
        assert forged.all("X-Forwarded-Proto") == ["http"]
        assert forged.all("X-Real-IP") == ["127.0.0.1"]
        assert plain.all("X-Forwarded-For") == ["127.0.0.1"]
        assert plain.all("Forwarded") == ["for=127.0.0.1;proto=http;host=gw.example"]

    asyncio.run(run())


# ---- 6. records clients cannot forge ---------------------------------------------------------------
SECRET = "a-shared-secret-of-the-chain"


def test_chain_experiment_shadow_marker_and_correlation_id_are_taken_only_from_a_trusted_gateway():
    config = {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", "experiment_id": "exp-configured",
                          "trust": {"secret": SECRET}},
              "routes": [{"path": "/api/{rest*}", "backend": "primary",
                          "shadow": {"backend": "shadow", "percent": 100}},
                         {"path": "/next/{rest*}", "backend": "next"}],
              "backends": {"next": {"kind": "gateway"}}}

    async def run():
        primary, shadow, nxt = RawBackend(), RawBackend(), RawBackend()
        async with Harness(config, {"primary": primary, "shadow": shadow, "next": nxt}) as h:
            sends = [req("GET", "/api/own-name", "X-Hub-Via: gw-test"),
                     req("GET", "/api/chain", "X-Hub-Via: edge-a"),
                     req("GET", "/api/long", "X-Hub-Via: " + ",".join(f"g{i}" for i in range(17))),
                     req("GET", "/api/exp", "X-Experiment-Id: forged", "X-Experiment-Phase: steady"),
                     req("GET", "/api/empty-exp", "X-Experiment-Id: "),
                     req("GET", "/api/dup1", "X-Correlation-Id: dup"),
                     req("GET", "/api/dup2", "X-Correlation-Id: dup"),
                     req("GET", "/api/marker", "X-Shadow-Request: 1"),
                     req("GET", "/api/secret", "X-Hub-Gateway-Secret: wrong-secret-wrong-secret")]
            answers = [(await h.send(data)).status for data in sends]
            # an upstream gateway with the secret is trusted
            trusted = [(await h.send(req("GET", "/api/up", f"X-Hub-Gateway-Secret: {SECRET}", "X-Hub-Via: edge-a",
                                         "X-Correlation-Id: up-1", "X-Experiment-Id: exp-up",
                                         "X-Experiment-Phase: inject"))).status,
                       (await h.send(req("GET", "/api/up-loop", f"X-Hub-Gateway-Secret: {SECRET}",
                                         "X-Hub-Via: edge-a,gw-test"))).status,
                       (await h.send(req("GET", "/api/up-long", f"X-Hub-Gateway-Secret: {SECRET}",
                                         "X-Hub-Via: " + ",".join(f"g{i}" for i in range(17))))).status,
                       (await h.send(req("GET", "/next/x"))).status]
            await h.gateway.drain()
        assert answers == [200] * len(sends)
        assert trusted == [200, 508, 508, 200]
        legs = {leg.correlation_id: (leg, env) for leg, env in h.legs if leg.leg == "primary"}
        by_target = {s.target: s for s in primary.seen}
        untrusted = [by_target[t] for t in ("/api/own-name", "/api/chain", "/api/long", "/api/exp", "/api/empty-exp",
                                            "/api/dup1", "/api/dup2", "/api/marker", "/api/secret")]
        for seen in untrusted:
            leg, env = legs[seen.header("X-Correlation-Id")]
            assert env["source"] == "/hub-gateway/gw-test"
            assert (leg.experiment_id, leg.phase) == ("exp-configured", "")
            assert seen.all("X-Hub-Via") == ["gw-test"]
            assert seen.all("X-Experiment-Id") == ["exp-configured"] and seen.all("X-Experiment-Phase") == []
            assert seen.all("X-Shadow-Request") == [] and seen.all("X-Hub-Gateway-Secret") == []
        cids = [s.header("X-Correlation-Id") for s in untrusted]
        assert len(set(cids)) == len(cids) and "dup" not in cids
        assert by_target["/api/dup1"].all("X-Client-Correlation-Id") == ["dup"]
        # every request the client sent was shadowed once: the client's marker made it no replay
        assert sorted(s.target for s in shadow.seen) == sorted(["/api/up"] + [s.target for s in untrusted])
        up = by_target["/api/up"]
        leg, env = legs["up-1"]
        assert env["source"] == "/hub-gateway/edge-a/gw-test" and (leg.experiment_id, leg.phase) == ("exp-up", "inject")
        assert up.all("X-Hub-Via") == ["edge-a,gw-test"] and up.all("X-Hub-Gateway-Secret") == []
        # the secret goes on only to a chained gateway
        assert nxt.seen[0].all("X-Hub-Gateway-Secret") == [SECRET]

    asyncio.run(run())


# ---- 7. no compression nobody asked for; compressed bodies compared decoded -------------------------
def test_accept_encoding_passes_as_sent_and_compressed_bodies_are_compared_field_by_field():
    counter = iter(range(10_000))

    def gz(price):
        def answer(seen):
            doc = json.dumps({"price": price, "ts": next(counter), "name": "x" * 200}).encode()
            return response(body=gzip.compress(doc, mtime=next(counter)), headers=[("Content-Encoding", "gzip")])
        return answer

    config = {"routes": [{"path": "/api/{rest*}", "backend": "primary",
                          "shadow": {"backend": "shadow", "percent": 100, "secondary": "secondary"}}]}

    async def run():
        primary, shadow, secondary = RawBackend(gz(10)), RawBackend(gz(11)), RawBackend(gz(10))
        async with Harness(config, {"primary": primary, "shadow": shadow, "secondary": secondary}) as h:
            plain = await h.send(req("GET", "/api/plain"))
            asked = await h.send(req("GET", "/api/asked", "Accept-Encoding: br"))
            for i in range(6):
                assert (await h.send(req("GET", f"/api/item/{i}", "Accept-Encoding: gzip"))).status == 200
            await h.gateway.drain()
            noise = h.gateway.noise.snapshot()
        by_target = {s.target: s for s in primary.seen}
        assert by_target["/api/plain"].all("Accept-Encoding") == []
        assert by_target["/api/asked"].all("Accept-Encoding") == ["br"]
        assert by_target["/api/item/0"].all("Accept-Encoding") == ["gzip"]
        # the client gets the backend's bytes as they were (the gateway neither adds nor strips encoding)
        assert plain.header("Content-Encoding") == "gzip" and json.loads(gzip.decompress(plain.body))["price"] == 10
        assert asked.status == 200
        outcomes = [(p["data"]["outcome"], p["data"]["differing_fields"], p["data"]["noise_fields"]) for p in h.pairs]
        assert len(outcomes) == 8
        assert all(o == ("body_mismatch", ["price"], ["ts"]) for o in outcomes), outcomes
        assert "$" not in json.dumps(noise)

    asyncio.run(run())


# ---- 8. non-ASCII header bytes ----------------------------------------------------------------------
def test_non_ascii_header_bytes_pass_unmangled_and_every_leg_is_encodable():
    from hub.records.decode import RawMessage, decode_request_legs
    from hub.records.generate import encode_event
    from hub.records.request_leg import new_event

    async def run():
        backend = RawBackend()
        async with Harness(API, {"primary": backend}) as h:
            raw = (b"GET /api/x HTTP/1.1\r\nHost: gw.example\r\nX-Utf8: \xc3\xa9t\xc3\xa9\r\n"
                   b"X-Correlation-Id: \xc3\xa9t\xc3\xa9-\xe2\x82\xac\r\nConnection: close\r\n\r\n")
            assert (await h.send(raw)).status == 200
            # bytes that are not UTF-8 cannot go through unaltered: refused, never mangled
            latin = (b"GET /api/y HTTP/1.1\r\nHost: gw.example\r\nX-Latin1: \xe9t\xe9\r\n"
                     b"X-Correlation-Id: \xe9\r\nConnection: close\r\n\r\n")
            assert (await h.send(latin)).status == 400
        (seen,) = backend.seen
        sent = {k.lower(): v for k, v in seen.headers}
        assert sent[b"x-utf8"] == b"\xc3\xa9t\xc3\xa9"
        assert sent[b"x-client-correlation-id"] == b"\xc3\xa9t\xc3\xa9-\xe2\x82\xac"
        assert len(h.legs) == len(backend.seen)
        raws = [RawMessage("t", 0, i, leg.correlation_id.encode(), encode_event(new_event(leg, **env)), 0)
                for i, (leg, env) in enumerate(h.legs)]
        batch = decode_request_legs(raws, 1_000_000)
        assert batch.invalid == [] and len(batch.rows) == len(h.legs)

    asyncio.run(run())


# ---- 9. timeouts ------------------------------------------------------------------------------------
def test_a_backend_timeout_is_504_and_not_shadowed():
    async def hang(seen):
        await asyncio.sleep(30)

    config = {"routes": [{"path": "/api/{rest*}", "backend": "primary",
                          "shadow": {"backend": "shadow", "percent": 100}}],
              "backends": {"primary": {"timeout_s": 0.3}}}

    async def run():
        primary, shadow = RawBackend(hang), RawBackend()
        async with Harness(config, {"primary": primary, "shadow": shadow}) as h:
            answer = await h.send(req("GET", "/api/slow"))
            await h.gateway.drain()
            stats = h.gateway.stats()
        assert answer.status == 504
        assert shadow.seen == [] and stats["shadow_selected"] == 0 and h.pairs == []
        (leg, _), = h.legs
        assert leg.status == 0 and leg.error.startswith("timeout") and "/api/slow" not in leg.error

    asyncio.run(run())


def test_a_client_that_goes_away_cancels_the_backend_request():
    async def run():
        gone = asyncio.Event()

        async def hang(seen):
            await asyncio.sleep(60)

        class Watching(RawBackend):
            async def _conn(self, reader, writer):
                task = asyncio.ensure_future(super()._conn(reader, writer))
                # the backend learns the gateway closed the connection: EOF on its socket
                while not task.done():
                    if reader.at_eof() or writer.is_closing():
                        gone.set()
                        task.cancel()
                        break
                    await asyncio.sleep(0.05)

        backend = Watching(hang)
        config = {"routes": [{"path": "/api/{rest*}", "backend": "primary"}],
                  "backends": {"primary": {"timeout_s": 60}}}
        async with Harness(config, {"primary": backend}) as h:
            reader, writer = await asyncio.open_connection(*h.address)
            writer.write(req("GET", "/api/wait"))
            await writer.drain()
            while not backend.seen:
                await asyncio.sleep(0.02)
            writer.close()
            await asyncio.wait_for(gone.wait(), 20)  # well before the backend's 60 s timeout
            while not h.legs:
                await asyncio.sleep(0.02)
            stats = h.gateway.stats()
        assert stats["client_disconnects"] == 1
        (leg, _), = h.legs
        assert leg.status == 408 and leg.error.startswith("client:")

    asyncio.run(run())


def test_a_half_sent_request_head_is_closed_after_the_header_timeout_and_logged_once(caplog):
    config = {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", "header_timeout_s": 0.3,
                          "idle_timeout_s": 0.5}, **API}

    async def run():
        backend = RawBackend()
        async with Harness(config, {"primary": backend}) as h:
            reader, writer = await asyncio.open_connection(*h.address)
            writer.write(b"GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Slow: 1\r\n")  # never finished
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 20) == b""  # the gateway closed it
            writer.close()
            # an idle keep-alive connection is closed too
            reader, writer = await asyncio.open_connection(*h.address)
            assert await asyncio.wait_for(reader.read(), 20) == b""
            writer.close()
            # malformed requests: one log line each, no traceback
            caplog.clear()
            for _ in range(3):
                answer = await h.send(b"GET /api/x HTTP/1.1\r\nHost: gw\r\nBad Header\r\n\r\n")
                assert answer.status == 400
        assert backend.seen == []
        lines = [r for r in caplog.records if "malformed request" in r.getMessage()]
        assert len(lines) == 3 and all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
        assert not [r for r in caplog.records if r.exc_info]

    asyncio.run(run())


# ---- 11. errors, admin listener, shutdown ----------------------------------------------------------
def test_error_text_never_holds_the_concrete_path():
    answers = {"bad-status": b"HTTP/1.1 abc\r\n\r\n",
               "bad-header": b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
               "cut-short": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
               "hang-up": None}

    def answer(seen):
        return answers[seen.target.split("/")[3]]

    async def run():
        backend = RawBackend(answer)
        config = {"routes": [{"path": "/raw/{rest*}", "backend": "primary"}],
                  "backends": {"primary": {"timeout_s": 1}}}  # the cut-short body times out
        async with Harness(config, {"primary": backend}) as h:
            for kind in answers:
                await h.send(req("GET", f"/raw/badresp/{kind}/patient-MRN-77"))
        down = RawBackend()
        async with Harness({"routes": [{"path": "/raw/{rest*}", "backend": "down"}]}, {"down": down}) as h2:
            down.server.close()
            await down.server.wait_closed()
            assert (await h2.send(req("GET", "/raw/badresp/patient-MRN-77"))).status == 502
        return h.legs + h2.legs

    legs = asyncio.run(run())
    assert len(legs) == len(answers) + 1
    for leg, _ in legs:
        assert leg.route == "/raw/{rest*}"
        assert leg.error and "MRN" not in leg.error and "http://" not in leg.error, leg.error


def test_stopping_leaves_every_selected_shadow_as_a_pair_a_shadow_leg_or_a_counted_drop():
    async def slow(seen):
        await asyncio.sleep(30)

    config = {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", "shutdown_timeout_s": 0.5},
              "routes": [{"path": "/api/{rest*}", "backend": "primary",
                          "shadow": {"backend": "shadow", "percent": 100}}],
              "backends": {"shadow": {"timeout_s": 60}},
              "bulkhead": {"max_concurrent": 2, "max_queue": 50}}

    async def run():
        primary, shadow = RawBackend(), RawBackend(slow)
        h = Harness(config, {"primary": primary, "shadow": shadow})
        await h.__aenter__()
        answers = await asyncio.gather(*(h.send(req("GET", f"/api/{i}")) for i in range(20)))
        await h.gateway.close()  # what SIGTERM does
        await primary.close()
        await shadow.close()
        return h, answers

    h, answers = asyncio.run(run())
    assert [a.status for a in answers] == [200] * 20
    stats = h.gateway.stats()
    assert stats["shadow_selected"] == 20
    pairs = {p["data"]["correlation_id"]: p["data"]["outcome"] for p in h.pairs}
    primaries = {leg.correlation_id for leg, _ in h.legs if leg.leg == "primary"}
    shadows = {leg.correlation_id: leg for leg, _ in h.legs if leg.leg == "shadow"}
    assert set(pairs) == set(shadows) == primaries and len(primaries) == 20
    assert set(pairs.values()) == {"dropped_by_bulkhead"}
    assert all(leg.error.startswith("dropped by bulkhead") for leg in shadows.values())
    assert stats["bulkhead"]["dropped_at_stop"] == 20 == stats["shadow_dropped"]


def test_health_and_metrics_answer_on_the_admin_listener_only():
    config = {"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0"},
              "routes": [{"path": "/{rest*}", "backend": "primary"}]}

    async def run():
        backend = RawBackend()
        async with Harness(config, {"primary": backend}) as h:
            await h.send(req("GET", "/x"))
            health = await raw_request(h.gateway.admin_address, req("GET", "/health"))
            metrics = await raw_request(h.gateway.admin_address, req("GET", "/metrics"))
            proxied = await h.send(req("GET", "/health"))
        assert health.status == 200 and json.loads(health.body)["status"] == "ok"
        assert metrics.status == 200 and b'hub_gateway_requests_total{gateway="gw-test"} 1' in metrics.body
        # the proxy's own port forwards /health like any path: the admin endpoints are not on it
        assert proxied.status == 200 and [s.target for s in backend.seen] == ["/x", "/health"]

    asyncio.run(run())


def test_head_204_and_large_bodies_keep_their_framing():
    big = b"z" * (300 * 1024)

    def answer(seen):
        if seen.method == "HEAD":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n"
        if seen.target.endswith("/empty"):
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        if seen.target.endswith("/chunked"):
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        return response(body=big, content_type="application/octet-stream")

    async def run():
        backend = RawBackend(answer)
        async with Harness(API, {"primary": backend}) as h:
            head = await h.send(req("HEAD", "/api/x"))
            empty = await h.send(req("GET", "/api/empty"))
            chunked = await h.send(req("GET", "/api/chunked"))
            large = await h.send(req("GET", "/api/large"))
        assert head.status == 200 and head.header("Content-Length") == "1234" and head.body == b""
        assert empty.status == 204 and empty.body == b""
        assert chunked.status == 200 and chunked.body == b"abcde"
        assert large.status == 200 and large.header("Content-Length") == str(len(big)) and large.body == big
        assert [leg.response_bytes for leg, _ in h.legs] == [0, 0, 5, len(big)]

    asyncio.run(run())


def test_spans_with_a_tracer_provider_carry_the_route_the_normalised_path_and_the_client_id():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = {"gateway": {"name": "gw-spans", "listen": "127.0.0.1:0"},
              "routes": [{"path": "/api/{rest*}", "backend": "primary",
                          "shadow": {"backend": "shadow", "percent": 100}}]}

    async def run():
        primary, shadow = RawBackend(), RawBackend()
        urls = {"primary": await primary.start(), "shadow": await shadow.start()}
        gw = Gateway(parse_config({**config, "backends": {k: {"url": v} for k, v in urls.items()}}),
                     emit_leg=lambda *a, **k: True, emit_pair=lambda *a: True, tracer_provider=provider)
        address = await gw.start()
        try:
            assert (await raw_request(address, req("GET", "/api/a/../b", "X-Correlation-Id: mine"))).status == 200
            await gw.drain()
        finally:
            await gw.close()
        return primary.seen[0]

    seen = asyncio.run(run())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server = spans["GET /api/{rest*}"]
    assert server.attributes["url.path"] == "/api/b" and server.attributes["gateway.client_correlation_id"] == "mine"
    assert {"primary primary", "shadow shadow"} <= set(spans)
    # the backend request carries the gateway's trace context
    assert seen.header("traceparent").split("-")[1] == format(server.context.trace_id, "032x")


def test_expect_100_continue_is_answered_by_the_gateway_and_the_body_streams_on():
    async def run():
        backend = RawBackend()
        async with Harness(API, {"primary": backend}) as h:
            reader, writer = await asyncio.open_connection(*h.address)
            writer.write(b"PUT /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                         b"Connection: close\r\n\r\n")
            await writer.drain()
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)  # before any body is sent
            writer.write(b"hello")
            await writer.drain()
            final = await asyncio.wait_for(reader.read(), 20)
            writer.close()
        assert interim.startswith(b"HTTP/1.1 100")
        assert final.startswith(b"HTTP/1.1 200")
        (seen,) = backend.seen
        assert seen.body == b"hello" and seen.all("Expect") == []

    asyncio.run(run())


def test_an_emitter_that_cannot_reach_kafka_makes_health_degraded_warns_once_and_counts_in_the_summary(
        caplog, monkeypatch):
    import hub.gateway.proxy as proxy_module
    from hub.gateway.config import parse_config as parse
    from hub.gateway.proxy import serve

    made: list = []

    class Kept(proxy_module.Gateway):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(proxy_module, "Gateway", Kept)
    monkeypatch.setattr(proxy_module, "EMIT_GRACE_S", 0.2)
    monkeypatch.setattr(proxy_module, "EMIT_CHECK_S", 0.1)
    unreachable = "127.0.0.1:45999"  # nothing listens there

    async def run():
        backend = RawBackend()
        url = await backend.start()
        config = parse({"gateway": {"name": "gw-test", "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0"},
                        "emit": {"bootstrap": unreachable}, "backends": {"primary": {"url": url}}, **API})
        lines: list[str] = []
        address: list = []
        task = asyncio.ensure_future(serve(config, ready=address.append, stopped=lines.append))
        while not address:
            await asyncio.sleep(0.02)
        assert (await raw_request(address[0], req("GET", "/api/x"))).status == 200
        (gateway,) = made
        for _ in range(600):  # the watcher looks every 0.1 s; at most 30 s
            health = json.loads((await raw_request(gateway.admin_address, req("GET", "/health"))).body)
            if health["status"] != "ok":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # more checks: still one warning
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await backend.close()
        return health, lines

    with caplog.at_level(logging.WARNING, logger="hub.gateway.proxy"):
        health, lines = asyncio.run(run())
    assert health["status"] == "degraded" and unreachable in health["reason"]
    assert len([r for r in caplog.records if "cannot deliver" in r.getMessage()]) == 1
    (line,) = lines
    assert "1 legs or pairs not delivered" in line, line  # the leg of the one request
