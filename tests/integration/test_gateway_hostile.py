"""The gateway under hostile and unusual traffic, seen on the wire: raw sockets on the client side
(a client library would normalise the path, add or fix headers, and retry) and raw-socket
backends that record every byte that reaches them."""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass, field

import pytest

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
        body = await read_body(reader, headers, until_close=b"content-length" not in {k.lower() for k, _ in headers})
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
