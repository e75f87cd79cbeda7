"""Pairing throughput: shadow pairs per second made by the hub's stream pairer, against a JOIN.

    python -m bench.pairing_throughput --legs N --data-dir DIR [--seed S]

Run by ``bench.run`` in a process of its own (the baseline opens a chDB data directory, one per
process); prints one JSON object on stdout, progress on stderr.

The legs: N/2 requests through the gateways and the shadowable GET routes of
``hub.records.generate`` (its ``GATEWAYS`` and ``ROUTES`` with a shadow backend), every one
with a primary and a shadow leg (same correlation id, the shadow 1-20 ms later), 2,000 requests
per second of event time. Outcomes vary: ~2.5% of primaries fail, ~2% of shadows answer 5xx,
~0.5% are dropped by the bulkhead, ~2% of shadow bodies differ, about half the shadows of failed
primaries answer 200, some shadows are much slower. Latencies are multiples of 1/8 ms, so Float32
columns hold them exactly and both sides judge "latency regression" on the same numbers. Rows
are in ``REQUEST_COLUMNS`` order, as the requests sink hands them to its ``after_store`` hook.

Arrival order: each leg arrives at its event time plus a uniform delay of 0 to 10 s, so legs
are shuffled within the pairing window (30 s, the worker's) and none is late. Legs are spread
over 4 partitions by a hash of the correlation id (both legs of a request in one partition, as
Kafka keys them) and fed in chunks of 5,000 rows of one partition, in arrival order.

hub: ``hub.shadow.pairing.PairingAgent(window_s=30.0)`` (as ``streams.worker`` builds it), its
``after_store(token, chunk)`` for every chunk, exactly what the requests sink calls after storing
a chunk: pairing plus encoding each pair as the CloudEvent for the pairs topic; then ``flush()``
of every partition's window. The clock covers those calls only (the legs are built beforehand).

baseline: the obvious non-streaming way. The same rows inserted with clickhouse-connect into
a chDB ``requests`` table made from the hub's migration (``0002_requests.sql``), in inserts of
20,000 rows, then one query that pairs them after the fact:
``CREATE TABLE pairs ENGINE = MergeTree ORDER BY tuple() AS SELECT ... FROM (primary legs) JOIN
(shadow legs) USING (gateway, correlation_id)``, with the outcome computed in SQL by the rules of
``make_pair``. The clock covers the inserts and the join.

Both sides must make the same number of pairs (the run stops with an error otherwise); the
outcome counts of both are recorded too and compared.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import time
import uuid
import zlib
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import BenchContext, BenchError, Result, peak_rss_mib, run_json_child

UTC = timezone.utc
PARTITIONS = 4
CHUNK = 5_000
INSERT_BATCH = 20_000
WINDOW_S = 30.0
MAX_DELAY_S = 10.0
REQUESTS_PER_S = 2_000.0
DEFAULT_LEGS = 1_000_000

_SERVER_ERRORS = ((500, "internal server error"), (502, "bad gateway: upstream connection reset"),
                  (503, "service unavailable: no healthy upstream"))
_BULKHEAD = "dropped by bulkhead: shadow queue full"


def log(line: str) -> None:
    print(f"[pairing] {line}", file=sys.stderr, flush=True)


def _eighths(x: float) -> float:
    return round(x * 8) / 8


def generate(legs: int, seed: int) -> list[tuple]:
    """``legs`` rows (primary and shadow of legs/2 requests) in arrival order, with partition."""
    from hub.records.generate import GATEWAYS, ROUTES

    rng = random.Random(seed)
    routes = [r for r in ROUTES if r[0] == "GET" and r[3]]
    route_weights = [r[4] for r in routes]
    gateways = [g for g, _ in GATEWAYS]
    gateway_weights = [w for _, w in GATEWAYS]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    t = start.timestamp()
    out = []  # (arrival, partition, row)
    for _ in range(legs // 2):
        t += rng.expovariate(REQUESTS_PER_S)
        method, route, backend, shadow_backend, _, median, sigma, req_b, resp_b = rng.choices(routes, route_weights)[0]
        gateway = rng.choices(gateways, gateway_weights)[0]
        cid = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        partition = zlib.crc32(cid.encode()) % PARTITIONS
        source = f"/gateways/{gateway}"
        latency = _eighths(rng.lognormvariate(math.log(median), sigma))
        status, error, body = 200, "", "%016x" % rng.getrandbits(64)
        if rng.random() < 0.025:
            status, error = rng.choice(_SERVER_ERRORS)
            body = ""
        s_status, s_error, s_body = status, error, body
        s_latency = _eighths(rng.lognormvariate(math.log(median * 1.1), sigma))
        u = rng.random()
        if u < 0.005:
            s_status, s_error, s_body, s_latency = 0, _BULKHEAD, "", 0.0
        elif u < 0.025:
            s_status, s_error = rng.choice(_SERVER_ERRORS)
            s_body = ""
        elif u < 0.045 and status == 200:
            s_body = "%016x" % rng.getrandbits(64)
        elif u < 0.06:
            s_latency = _eighths(s_latency * 4 + 60)
        elif status != 200 and u < 0.5:
            s_status, s_error, s_body = 200, "", "%016x" % rng.getrandbits(64)  # the shadow answered
        p_time = datetime.fromtimestamp(round(t, 3), UTC)
        s_time = datetime.fromtimestamp(round(t + 0.001 + rng.random() * 0.019, 3), UTC)
        primary = (uuid.UUID(int=rng.getrandbits(128), version=4), p_time, "", "", cid, "primary", gateway,
                   route, method, backend, status, latency, req_b, resp_b, body, error, source)
        shadow = (uuid.UUID(int=rng.getrandbits(128), version=4), s_time, "", "", cid, "shadow", gateway,
                  route, method, shadow_backend, s_status, s_latency, req_b, resp_b, s_body, s_error, source)
        out.append((p_time.timestamp() + rng.random() * MAX_DELAY_S, partition, primary))
        out.append((s_time.timestamp() + rng.random() * MAX_DELAY_S, partition, shadow))
    out.sort(key=lambda x: x[0])
    return out


def chunks(arrivals: list[tuple]) -> list[tuple[str, list[tuple]]]:
    """(sink token, rows) chunks of one partition each, in arrival order, as the sink stores them."""
    per_partition: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    out = []
    for _, partition, row in arrivals:
        rows = per_partition[partition]
        rows.append(row)
        if len(rows) == CHUNK:
            first = offsets[partition]
            offsets[partition] += len(rows)
            out.append((f"requests:bench-pairing:{partition}:{first}-{offsets[partition] - 1}", rows))
            per_partition[partition] = []
    for partition, rows in per_partition.items():
        if rows:
            first = offsets[partition]
            offsets[partition] += len(rows)
            out.append((f"requests:bench-pairing:{partition}:{first}-{offsets[partition] - 1}", rows))
    return out


class _Chunk:
    """What the sink passes to ``after_store``: a decoded batch with its rows."""

    __slots__ = ("rows",)

    def __init__(self, rows):
        self.rows = rows


def run_hub(work: list[tuple[str, list[tuple]]]) -> dict:
    from hub.shadow.pairing import PairingAgent
    from hub.shadow.records import encode_pair

    agent = PairingAgent(window_s=WINDOW_S)  # as streams.worker builds it
    published: list[tuple[bytes, bytes]] = []
    gc.collect()
    started = time.perf_counter()
    for token, rows in work:
        published.extend(agent.after_store(token, _Chunk(rows)))
    for window in agent.windows.values():  # shutdown: nothing should be left to pair
        published.extend((p.correlation_id.encode(), encode_pair(p, agent.source)) for p in window.flush())
    seconds = time.perf_counter() - started
    stats: Counter = Counter()
    for window in agent.windows.values():
        stats.update(window.stats)
    outcomes = Counter(json.loads(value)["data"]["outcome"] for _, value in published)
    return {"seconds": round(seconds, 3), "pairs": len(published), "window_stats": dict(stats),
            "outcomes": dict(sorted(outcomes.items()))}


# The outcome rules of hub.shadow.pairing.make_pair without a noise model or secondaries (the
# worker's PairingAgent has neither): bulkhead > shadow error > status > body > latency > match.
JOIN_SQL = """
CREATE TABLE {db}.bench_pairs ENGINE = MergeTree ORDER BY tuple() AS
SELECT p.gateway AS gateway, p.correlation_id AS correlation_id, p.route AS route, p.method AS method,
       p.backend AS primary_backend, s.backend AS shadow_backend, p.event_time AS event_time,
       p.experiment_id AS experiment_id, p.phase AS phase,
       p.status AS primary_status, s.status AS shadow_status, s.error AS shadow_error,
       p.latency_ms AS latency_primary_ms, s.latency_ms AS latency_shadow_ms,
       toFloat64(s.latency_ms) - toFloat64(p.latency_ms) AS latency_diff_ms,
       s.status = p.status AS status_match, s.response_hash = p.response_hash AS body_match,
       multiIf(startsWith(s.error, 'dropped by bulkhead'), 'dropped_by_bulkhead',
               s.status = 0 OR s.error != '', 'shadow_error',
               s.status != p.status, 'status_mismatch',
               s.response_hash != p.response_hash, 'body_mismatch',
               toFloat64(s.latency_ms) > 2.0 * toFloat64(p.latency_ms) + 50.0, 'latency_regression',
               'match') AS outcome
FROM (SELECT * FROM {db}.requests WHERE leg = 'primary') AS p
INNER JOIN (SELECT * FROM {db}.requests WHERE leg = 'shadow') AS s
USING (gateway, correlation_id)
"""


def run_baseline(work: list[tuple[str, list[tuple]]], data_dir: Path) -> dict:
    import clickhouse_connect

    from hub.records.decode import REQUEST_COLUMNS
    from hub.settings import Settings
    from hub.storage.migrations import MIGRATIONS_DIR, render

    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=data_dir)
    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir}")
    try:
        db = settings.database
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        for statement in render((MIGRATIONS_DIR / "0002_requests.sql").read_text(), settings):
            client.command(statement)
        rows = [row for _, chunk in work for row in chunk]  # the same legs, in the same order
        columns = list(REQUEST_COLUMNS)
        gc.collect()
        started = time.perf_counter()
        for i in range(0, len(rows), INSERT_BATCH):
            client.insert(f"{db}.requests", rows[i:i + INSERT_BATCH], column_names=columns)
        inserted = time.perf_counter()
        client.command(JOIN_SQL.format(db=db))
        done = time.perf_counter()
        stored = int(client.command(f"SELECT count() FROM {db}.requests"))
        outcomes = {o: int(n) for o, n in client.query(
            f"SELECT outcome, count() FROM {db}.bench_pairs GROUP BY outcome ORDER BY outcome").result_rows}
        return {"seconds": round(done - started, 3), "insert_seconds": round(inserted - started, 3),
                "join_seconds": round(done - inserted, 3), "legs_stored": stored,
                "pairs": sum(outcomes.values()), "outcomes": outcomes}
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pairing_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=DEFAULT_LEGS, help="legs (primary + shadow); pairs = legs / 2")
    parser.add_argument("--data-dir", required=True, help="chDB data directory of the baseline")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    legs = max(2, args.legs - args.legs % 2)
    log(f"generating {legs:,} legs ({legs // 2:,} requests, each with a primary and a shadow leg)")
    t0 = time.perf_counter()
    work = chunks(generate(legs, args.seed))
    log(f"generated in {time.perf_counter() - t0:.1f}s: {len(work):,} chunks of up to {CHUNK:,} rows")
    hub = run_hub(work)
    log(f"hub: {hub['pairs']:,} pairs in {hub['seconds']:.2f}s")
    baseline = run_baseline(work, Path(args.data_dir))
    log(f"baseline: {baseline['pairs']:,} pairs in {baseline['seconds']:.2f}s "
        f"(insert {baseline['insert_seconds']:.2f}s, join {baseline['join_seconds']:.2f}s)")
    print(json.dumps({"legs": legs, "requests": legs // 2, "chunks": len(work), "hub": hub, "baseline": baseline,
                      "peak_rss_mib": peak_rss_mib()}), flush=True)
    return 0


def run(ctx: BenchContext) -> list[Result]:
    legs = ctx.size("pairing_legs", DEFAULT_LEGS)
    result = run_json_child(ctx, "the pairing benchmark", [
        "-m", "bench.pairing_throughput", "--legs", str(legs), "--data-dir", str(ctx.scratch / "pairing-chdb")],
        timeout=max(600.0, legs / 500))
    hub, baseline = result["hub"], result["baseline"]
    if hub["pairs"] != baseline["pairs"]:
        raise BenchError(f"the hub made {hub['pairs']:,} pairs and the JOIN {baseline['pairs']:,} "
                         f"from the same {result['legs']:,} legs")
    if hub["outcomes"] != baseline["outcomes"]:
        ctx.progress(f"pairing: outcome counts differ: hub {hub['outcomes']}, JOIN {baseline['outcomes']}")
    hub_rate = round(hub["pairs"] / hub["seconds"])
    base_rate = round(baseline["pairs"] / baseline["seconds"])
    details = {**result, "outcomes_equal": hub["outcomes"] == baseline["outcomes"],
               "hub_legs_per_second": round(result["legs"] / hub["seconds"]),
               "window_s": WINDOW_S, "max_arrival_delay_s": MAX_DELAY_S, "partitions": PARTITIONS,
               "chunk_rows": CHUNK, "baseline_insert_rows": INSERT_BATCH}
    return [Result(f"pairing ({result['legs']:,} legs)", hub_rate, "pairs/s", base_rate,
                   higher_is_better=True, details=details)]


def benchmarks():
    """(key, description, callable) of each benchmark of this module."""
    return [("pairing", f"pairing throughput, stream pairer vs insert + JOIN ({DEFAULT_LEGS:,} legs by default)", run)]


if __name__ == "__main__":
    sys.exit(main())
