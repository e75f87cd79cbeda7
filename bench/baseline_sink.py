"""Baseline sink: a plain kafka-python consumer inserting into ClickHouse with clickhouse-connect.

Run as its own process (chDB opens one data directory per process)::

    python -m bench.baseline_sink --bootstrap HOST:PORT --topic T --events N --data-dir DIR

It reads every partition of the topic from the beginning without a consumer group, decodes
with the hub's own ``decode_request_legs`` and inserts rows in batches of ``--batch-rows``
into a ``requests`` table made from the hub's migration. No offset ledger, no deduplication
token, no commits: the cost of the hub's exactly-once bookkeeping and of the stream framework
is what the comparison shows. Prints one JSON object on stdout (with the process's peak resident
set size, ``VmHWM``, read just before it exits); progress goes to stderr.
Times are ``time.monotonic()`` values, comparable with the parent process on Linux.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def log(line: str) -> None:
    print(f"[baseline] {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True, help="rows expected in the table")
    parser.add_argument("--data-dir", required=True, help="chDB data directory of this process")
    parser.add_argument("--batch-rows", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-check-crcs", dest="check_crcs", action="store_false",
                        help="skip kafka-python's CRC32C check of record batches (pure Python "
                             "unless the crc32c package is installed)")
    args = parser.parse_args(argv)

    import clickhouse_connect
    from kafka import KafkaConsumer, TopicPartition

    from hub.records.decode import REQUEST_COLUMNS, RawMessage, decode_request_legs
    from hub.settings import Settings
    from hub.storage.migrations import MIGRATIONS_DIR, render

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=data_dir)  # database "hub", default TTL: the same table as the worker's
    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir}")
    client.command(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
    for statement in render((MIGRATIONS_DIR / "0002_requests.sql").read_text(), settings):
        client.command(statement)
    table = f"{settings.database}.requests"
    columns = list(REQUEST_COLUMNS)

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=1_000_000, check_crcs=args.check_crcs,
        fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        deadline = time.monotonic() + 30
        partitions = consumer.partitions_for_topic(args.topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise SystemExit(f"topic {args.topic} has no partitions (does it exist?)")
            time.sleep(0.1)
            partitions = consumer.partitions_for_topic(args.topic)
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        max_bytes = settings.max_record_bytes

        pending: list[tuple] = []
        inserted = invalid = records = inserts = 0
        insert_seconds = 0.0

        def insert(rows: list[tuple]) -> None:
            nonlocal inserted, inserts, insert_seconds
            started = time.perf_counter()
            client.insert(table, rows, column_names=columns)
            insert_seconds += time.perf_counter() - started
            inserted += len(rows)
            inserts += 1

        first_poll = time.monotonic()
        cpu_at_first_poll = time.process_time()  # every thread of the process, chDB's included
        deadline = first_poll + args.timeout
        last_report = first_poll
        while inserted + invalid < args.events:
            if time.monotonic() > deadline:
                raise SystemExit(f"timeout: {inserted:,} of {args.events:,} rows after {args.timeout:g}s")
            polled = consumer.poll(timeout_ms=200)
            messages = [RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
                        for batch in polled.values() for r in batch]
            records += len(messages)
            if messages:
                decoded = decode_request_legs(messages, max_bytes)
                pending.extend(decoded.rows)
                invalid += len(decoded.invalid)
            while len(pending) >= args.batch_rows:
                insert(pending[:args.batch_rows])
                del pending[:args.batch_rows]
            # Idle, or everything expected is decoded: write the remainder.
            if pending and (not messages or inserted + len(pending) + invalid >= args.events):
                insert(pending)
                pending = []
            now = time.monotonic()
            if now - last_report >= 2.0:
                last_report = now
                log(f"{inserted:,} rows inserted ({inserted / (now - first_poll):,.0f}/s)")
        count = int(client.command(f"SELECT count() FROM {table}"))
        done = time.monotonic()
        cpu_seconds = time.process_time() - cpu_at_first_poll
        if count != args.events:
            raise SystemExit(f"table holds {count:,} rows, expected {args.events:,} ({invalid} invalid)")
        from bench.common import peak_rss_mib

        print(json.dumps({
            "first_poll": first_poll, "done": done, "rows": count, "records": records,
            "invalid": invalid, "inserts": inserts, "cpu_seconds": round(cpu_seconds, 3),
            "cpu_at_first_poll": round(cpu_at_first_poll, 3), "check_crcs": args.check_crcs, "insert_seconds": round(insert_seconds, 3),
            "peak_rss_mib": peak_rss_mib(),  # VmHWM of this process, read before it exits
        }), flush=True)
        return 0
    finally:
        consumer.close()
        client.close()


if __name__ == "__main__":
    sys.exit(main())
