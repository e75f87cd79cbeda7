"""The gateway with real HTTP backends on loopback: exact shadow share, no shadowed POST, pairs that
report the one real difference and no noise; canary share; the bulkhead keeps a slow shadow off the
primary path."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import aiohttp
import pytest
from aiohttp import web
from kafka import KafkaConsumer, TopicPartition

from hub.gateway.config import parse_config
from hub.gateway.proxy import Gateway
from hub.emit import EventEmitter
from hub.records.decode import RawMessage, decode_request_legs
from hub.shadow.records import PAIR_COLUMNS, decode_pairs

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


# ---- backends: aiohttp apps on loopback, in their own thread and event loop -----------------------
class Backends:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners = []
        self.hits: dict[str, list] = {}

    def add(self, name: str, *, total_extra: int = 0, delay: float = 0.0, timestamp: bool = True,
            hold: threading.Event | None = None) -> str:
        """A backend; with ``hold``, each request hangs until the event is set."""
        hits = self.hits.setdefault(name, [])

        async def handle(request: web.Request) -> web.Response:
            hits.append((request.method, request.path, request.headers.get("X-Correlation-Id"),
                         request.headers.get("X-Shadow-Request")))
            if delay:
                await asyncio.sleep(delay)
            while hold is not None and not hold.is_set():
                await asyncio.sleep(0.05)
            if request.method == "POST":
                await request.read()
            item = request.match_info["id"]
            doc = {"id": item, "kind": request.match_info["kind"], "status": "active",
                   "lines": [{"sku": f"s{item}", "qty": 2}],
                   "total": 100 + (total_extra if request.match_info["kind"] == "orders" else 0)}
            if timestamp:
                doc["generated_at"] = time.time_ns()
            return web.json_response(doc)

        async def start():
            app = web.Application()
            app.router.add_route("*", "/{kind}/{id}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.runners.append(runner)
            return site._server.sockets[0].getsockname()[1]

        port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return f"http://127.0.0.1:{port}"

    def close(self):
        for r in self.runners:
            asyncio.run_coroutine_threadsafe(r.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def backends():
    b = Backends()
    yield b
    b.close()


async def load(base: str, requests: list[tuple[str, str]], concurrency: int = 16) -> list[float]:
    """Send (method, path) requests with ``concurrency`` clients; returns latencies (ms) in order of completion."""
    latencies: list[float] = []
    queue = list(reversed(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def client():
            while queue:
                method, path = queue.pop()
                started = time.perf_counter()
                async with session.request(method, base + path, data=b'{"a":1}' if method == "POST" else None) as r:
                    await r.read()
                    assert r.status == 200, (r.status, await r.text())
                latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[RawMessage]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[RawMessage] = []
        deadline = time.monotonic() + timeout
        count = 0
        while time.monotonic() < deadline and count < expected:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    out.append(RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp))
                    count += len(json.loads(r.value)) if r.value[:1] == b"[" else 1
        return out
    finally:
        consumer.close()


CONFIG = """
gateway: {{name: {name}, listen: "127.0.0.1:0"}}
backends:
  v1: {{url: "{v1}"}}
  v2: {{url: "{v2}"}}
  v1b: {{url: "{v1b}"}}
routes:
  - path: /patients/{{id}}
    methods: [GET, POST]
    backend: v1
    shadow: {{backend: v2, percent: {percent}, secondary: v1b}}
  - path: /orders/{{id}}
    backend: v1
    shadow: {{backend: v2, percent: {percent}, secondary: v1b}}
bulkhead: {{max_concurrent: 16, max_queue: 100000}}
# the machine is shared: keep latency out of this comparison of bodies
comparison: {{latency_regression_factor: 100, latency_regression_slack_ms: 5000}}
"""


def test_shadows_the_exact_share_of_gets_never_a_post_and_pairs_report_only_the_real_difference(
        backends, kafka_bootstrap, make_topic, store):
    v1, v2, v1b = backends.add("v1"), backends.add("v2", total_extra=7), backends.add("v1b")
    name = f"gw-{uuid.uuid4().hex[:6]}"
    config = parse_config(__import__("yaml").safe_load(CONFIG.format(name=name, v1=v1, v2=v2, v1b=v1b, percent=30)))
    legs_topic, pairs_topic = make_topic(4), make_topic(4)
    legs_emitter = EventEmitter(kafka_bootstrap, legs_topic, source=f"/hub-gateway/{name}")
    pairs_emitter = EventEmitter(kafka_bootstrap, pairs_topic)
    n_patients, n_orders, n_posts = 403, 251, 120
    requests = [("GET", f"/patients/{i}") for i in range(n_patients)] + \
               [("GET", f"/orders/{i}?expand=lines") for i in range(n_orders)] + \
               [("POST", f"/patients/{i}") for i in range(n_posts)]
    __import__("random").Random(4).shuffle(requests)

    async def run():
        gw = Gateway(config, emit_leg=legs_emitter.emit_leg, emit_pair=pairs_emitter.emit)
        host, port = await gw.start()
        try:
            started = time.perf_counter()
            await load(f"http://{host}:{port}", requests)
            elapsed = time.perf_counter() - started
            await gw.drain()
            return gw.stats(), elapsed
        finally:
            await gw.close()

    stats, elapsed = asyncio.run(run())
    print(f"gateway: {len(requests) / elapsed:.0f} requests/s through the gateway with 30% shadowing")
    assert legs_emitter.flush(30) and pairs_emitter.flush(30)
    legs_emitter.close(5)
    pairs_emitter.close(5)

    # exactly the configured share of GETs, per route; never a POST
    expected_shadows = n_patients * 30 // 100 + n_orders * 30 // 100
    shadow_hits = [h for h in backends.hits["v2"]]
    assert len(shadow_hits) == expected_shadows == stats["shadow_selected"] == stats["shadow_sent"]
    assert all(method == "GET" and shadow == "1" for method, _, _, shadow in shadow_hits)
    assert sum(1 for h in shadow_hits if h[1].startswith("/orders")) == n_orders * 30 // 100
    assert stats["shadow_dropped"] == 0 and len(backends.hits["v1b"]) == expected_shadows

    # the legs on the topic: one primary per request, the shadows and secondaries share its correlation id
    total_legs = len(requests) + 2 * expected_shadows
    batch = decode_request_legs(read_topic(kafka_bootstrap, legs_topic, total_legs), 1_000_000)
    assert batch.invalid == [] and len(batch.rows) == total_legs
    by_cid: dict[str, dict] = {}
    for r in batch.rows:
        by_cid.setdefault(r[4], {})[(r[5], r[9])] = r
    primaries = [r for r in batch.rows if r[5] == "primary"]
    assert len(primaries) == len(requests)
    shadows = [r for r in batch.rows if r[5] == "shadow" and r[9] == "v2"]
    assert all(by_cid[r[4]][("primary", "v1")][8] == "GET" for r in shadows)
    assert not any(r[8] == "POST" for r in batch.rows if r[5] == "shadow")
    assert {r[16] for r in batch.rows} == {f"/hub-gateway/{name}"}
    assert {r[7] for r in batch.rows} == {"/patients/{id}", "/orders/{id}"}  # templates, never paths

    # the pairs: decoded and stored, one per shadowed request
    raws = read_topic(kafka_bootstrap, pairs_topic, expected_shadows)
    pairs = decode_pairs(raws, 1_000_000)
    assert pairs.invalid == [] and len(pairs.rows) == expected_shadows
    store.insert(f"{store.database}.shadow_pairs", pairs.rows, PAIR_COLUMNS, token=f"{pairs_topic}:all")
    rows = store.query(
        f"SELECT route, outcome, noise, differing_fields, noise_fields, count() FROM {store.database}.shadow_pairs "
        "GROUP BY ALL ORDER BY route, outcome, noise").result_rows
    print("stored pairs:", rows)
    assert sum(r[5] for r in rows) == expected_shadows
    assert [r[:5] for r in rows] == [
        ("/orders/{id}", "body_mismatch", False, ["total"], ["generated_at"]),
        ("/patients/{id}", "match", True, [], ["generated_at"]),
    ]
    assert store.scalar(f"SELECT uniqExact(correlation_id) FROM {store.database}.shadow_pairs") == expected_shadows


def test_canary_takes_its_weight_and_sticky_users_stay_put(backends):
    v1, v2 = backends.add("v1"), backends.add("v2")
    config = parse_config({
        "gateway": {"name": "gw-canary", "listen": "127.0.0.1:0"},
        "backends": {"v1": {"url": v1}, "v2": {"url": v2}, "edge2": {"url": v1, "kind": "gateway"}},
        "routes": [{"path": "/patients/{id}", "backend": "v1", "canary": {"backend": "v2", "weight": 0.2}},
                   {"path": "/orders/{id}", "backend": "v1",
                    "canary": {"backend": "v2", "weight": 0.5, "sticky": {"header": "X-User"}}}]})
    legs = []

    async def run():
        gw = Gateway(config, emit_leg=lambda leg, **_: legs.append(leg), emit_pair=lambda *a: None)
        host, port = await gw.start()
        base = f"http://{host}:{port}"
        try:
            await load(base, [("GET", f"/patients/{i}") for i in range(200)], concurrency=8)
            async with aiohttp.ClientSession() as s:
                for user in ("ann", "bob", "cyd", "dee"):
                    for i in range(5):
                        async with s.get(f"{base}/orders/{i}", headers={"X-User": user}) as r:
                            assert r.status == 200
                async with s.get(f"{base}/nothing") as r:
                    assert r.status == 404
        finally:
            await gw.close()

    asyncio.run(run())
    patients = [leg for leg in legs if leg.route == "/patients/{id}"]
    assert sum(leg.leg == "canary" for leg in patients) == 40
    assert all((leg.backend == "v2") == (leg.leg == "canary") for leg in legs)
    orders = [leg for leg in legs if leg.route == "/orders/{id}"]
    assert len(backends.hits["v2"]) == 40 + sum(leg.leg == "canary" for leg in orders)
    by_user: dict[str, set] = {}
    hits = {h[2]: h for h in backends.hits["v1"] + backends.hits["v2"]}
    assert len(hits) == 220
    for leg in orders:
        by_user.setdefault(leg.correlation_id, set()).add(leg.leg)
    # each user's five requests went to one side
    sides = [leg.leg for leg in orders]
    assert [len(set(sides[i:i + 5])) for i in range(0, 20, 5)] == [1, 1, 1, 1]


def test_a_hung_shadow_backend_does_not_hold_up_the_primary_path_and_drops_are_counted(backends):
    """The shadow backend never answers while the test runs: every shadow slot and queue place is
    taken by a request that hangs. If any part of the shadow work were on the primary path, the
    primary requests would hang too; they all answer, and every shadow beyond the bulkhead's slots
    and queue is dropped and counted. No clock is read: the proof is that the primary answers
    exist while the shadows provably have not."""
    primary = backends.add("v1")
    release = threading.Event()
    hung = backends.add("v2", hold=release)
    cfg = parse_config({"gateway": {"name": "gw-bulkhead", "listen": "127.0.0.1:0", "shutdown_timeout_s": 0.2},
                        "backends": {"v1": {"url": primary}, "v2": {"url": hung, "timeout_s": 3600}},
                        "bulkhead": {"max_concurrent": 4, "max_queue": 8},
                        "routes": [{"path": "/patients/{id}", "backend": "v1",
                                    "shadow": {"backend": "v2", "percent": 100}}]})
    requests = [("GET", f"/patients/{i}") for i in range(300)]
    seen: dict = {}

    async def run():
        gw = Gateway(cfg, emit_leg=lambda *a, **k: None, emit_pair=lambda *a: None)
        host, port = await gw.start()
        try:
            async with aiohttp.ClientSession() as session:
                sem = asyncio.Semaphore(4)

                async def one(path):
                    async with sem, session.get(f"http://{host}:{port}{path}") as r:
                        return r.status, (await r.json())["id"]

                # bounded only so that a primary path held up by the shadow fails instead of hanging
                seen["answers"] = await asyncio.wait_for(asyncio.gather(*(one(path) for _, path in requests)), 300)
            seen["shadow_answered"] = gw.stats()["outcomes"].get("match", 0) + \
                gw.stats()["outcomes"].get("body_mismatch", 0)
            seen["stats"] = {**gw.stats(), "queued": gw.bulkhead.queued}
        finally:
            await gw.close()
        seen["after_close"] = gw.stats()

    try:
        asyncio.run(run())
    finally:
        release.set()
    assert seen["answers"] == [(200, str(i)) for i in range(300)]  # the primary path answered every request
    stats = seen["stats"]
    assert seen["shadow_answered"] == 0  # ... while not one shadow had answered
    assert stats["shadow_selected"] == 300
    # 4 hanging in the slots, 8 waiting in the queue, every other one dropped and counted
    assert (stats["bulkhead"]["started"], stats["queued"]) == (4, 8)
    assert stats["shadow_dropped"] == 300 - 12 == stats["bulkhead"]["dropped"]
    assert stats["outcomes"].get("dropped_by_bulkhead") == stats["shadow_dropped"]
    assert len(backends.hits["v2"]) == 4  # only the four in the slots reached the shadow backend
    # on stop, the shadows that never finished are counted as dropped too: none is lost
    after = seen["after_close"]
    assert after["outcomes"].get("dropped_by_bulkhead") == 300
