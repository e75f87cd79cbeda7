"""The gateway's memory does not follow the bodies it carries: a 200 MB response, shadowed, streams
through a gateway process whose peak RSS (VmHWM, read from /proc) stays within a stated bound of
its idle RSS; so does a 60 MB chunked upload. Bodies are compared field by field only up to
``comparison.max_body_bytes``; beyond that the pair compares hashes and sizes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

import pytest

pytestmark = [pytest.mark.slow]

MB = 1024 * 1024
BODY = 200 * MB
UPLOAD = 60 * MB
# the stated bound: the gateway's peak RSS stays within this of its RSS when idle
BOUND = 64 * MB

GATEWAY = """
import asyncio, json, sys
from hub.gateway.config import parse_config
from hub.gateway.proxy import Gateway

async def main():
    gw = Gateway(parse_config(json.loads(sys.argv[1])), emit_leg=lambda *a, **k: True, emit_pair=lambda *a: True)
    host, port = await gw.start()
    print(port, gw.admin_address[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    await gw.close()

asyncio.run(main())
"""


def rss(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out


async def big_backend(counts: dict) -> asyncio.AbstractServer:
    chunk = (b'{"filler": "' + b"x" * (64 * 1024 - 14) + b'"}')[: 64 * 1024]

    async def conn(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)}
                received = 0
                if b"chunked" in headers.get(b"transfer-encoding", b""):
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        if size == 0:
                            await reader.readuntil(b"\r\n")
                            break
                        received += len(await reader.readexactly(size + 2)) - 2
                elif b"content-length" in headers:
                    received = len(await reader.readexactly(int(headers[b"content-length"])))
                counts[method.decode()] = counts.get(method.decode(), 0) + 1
                counts["received"] = counts.get("received", 0) + received
                if method == b"PUT":
                    body = json.dumps({"received": received}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 b"Content-Length: %d\r\n\r\n" % BODY)
                    for _ in range(BODY // len(chunk)):
                        writer.write(chunk)
                        await writer.drain()
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(conn, "127.0.0.1", 0)


def test_a_shadowed_200_mb_response_and_a_60_mb_upload_stream_through_in_bounded_memory():
    async def run():
        primary_counts, shadow_counts = {}, {}
        primary, shadow = await big_backend(primary_counts), await big_backend(shadow_counts)
        config = {"gateway": {"name": "gw-mem", "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0"},
                  "backends": {"p": {"url": "http://127.0.0.1:%d" % primary.sockets[0].getsockname()[1]},
                               "s": {"url": "http://127.0.0.1:%d" % shadow.sockets[0].getsockname()[1]}},
                  "routes": [{"path": "/big/{id}", "backend": "p", "methods": ["GET", "PUT"],
                              "shadow": {"backend": "s", "percent": 100}}]}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", GATEWAY, json.dumps(config),
                                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            port, admin = map(int, (await asyncio.wait_for(proc.stdout.readline(), 60)).split())
            idle = rss(proc.pid)["VmRSS"]
            # the client reads the 200 MB response and throws it away as it comes
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /big/1 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            await writer.drain()
            received = 0
            while data := await reader.read(256 * 1024):
                received += len(data)
            writer.close()
            # a 60 MB chunked upload
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"PUT /big/2 HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            piece = b"y" * MB
            for _ in range(UPLOAD // MB):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            answer = await reader.read()
            writer.close()

            def metrics():
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as r:
                    return r.read().decode()
            while 'hub_gateway_pairs_total{gateway="gw-mem"} 1' not in await asyncio.to_thread(metrics):
                await asyncio.sleep(0.2)
            memory = rss(proc.pid)
        finally:
            proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 30)
            primary.close()
            shadow.close()
        return idle, memory, received, answer, primary_counts, shadow_counts

    idle, memory, received, answer, primary_counts, shadow_counts = asyncio.run(run())
    print(f"gateway RSS idle {idle / MB:.0f} MB, peak {memory['VmHWM'] / MB:.0f} MB, "
          f"after {memory['VmRSS'] / MB:.0f} MB")
    assert received > BODY  # the whole body, and the response head
    assert b'{"received": %d}' % UPLOAD in answer and primary_counts["received"] == UPLOAD
    assert primary_counts["GET"] == shadow_counts["GET"] == 1 and "PUT" not in shadow_counts
    assert memory["VmHWM"] - idle < BOUND, (idle, memory)
