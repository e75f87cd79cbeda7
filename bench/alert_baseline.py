"""Baseline judge for the breach-to-alert benchmark: a plain consumer evaluating one rule in memory.

    python -m bench.alert_baseline --bootstrap B --topic T --alerts A --window 2 --threshold 0.05 --min-samples 500

Reads the request-leg topic with kafka-python (no group, every partition from the end),
decodes each record (a CloudEvent or a CloudEvents batch) with orjson, counts events and
errors (status >= 500) per event-time second, and after every poll evaluates
``error_rate > threshold`` over the seconds (S-window, S] of the newest second S. On the first
breach of a run of breaches it publishes ``{"kind": "alert", "status": "firing"}`` to the alerts
topic and flushes. No storage, no correlation, no exactly-once bookkeeping: the floor a judge
reading Kafka directly can reach. Prints ``ready`` once its partitions are positioned.
"""

from __future__ import annotations

import argparse
import calendar
import sys

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def _second(stamp: str) -> int:
    return calendar.timegm((int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]),
                            int(stamp[11:13]), int(stamp[14:16]), int(stamp[17:19]), 0, 0, 0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.alert_baseline")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--alerts", required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--threshold", type=float, required=True)
    p.add_argument("--min-samples", type=int, required=True)
    args = p.parse_args(argv)

    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=50)
    partitions = [TopicPartition(args.topic, p) for p in sorted(consumer.partitions_for_topic(args.topic))]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:
        consumer.position(tp)
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks=1, linger_ms=0)
    print("ready", flush=True)
    per_second: dict[int, list[int]] = {}
    watermark = 0
    firing = False
    try:
        while True:
            for records in consumer.poll(timeout_ms=50).values():
                for record in records:
                    doc = orjson.loads(record.value)
                    for event in doc if isinstance(doc, list) else (doc,):
                        data = event["data"]
                        second = _second(data["event_time"])
                        cell = per_second.setdefault(second, [0, 0])
                        cell[0] += 1
                        cell[1] += data["status"] >= 500
                        watermark = max(watermark, second)
            n = e = 0
            for s in range(watermark - args.window + 1, watermark + 1):
                cell = per_second.get(s)
                if cell:
                    n += cell[0]
                    e += cell[1]
            breaching = n >= args.min_samples and e / n > args.threshold
            if breaching and not firing:
                producer.send(args.alerts, orjson.dumps({"kind": "alert", "status": "firing", "observed": e / n,
                                                         "samples": n, "second": watermark}))
                producer.flush(10)
            firing = breaching
            for s in [s for s in per_second if s < watermark - 60]:
                del per_second[s]
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        producer.close(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
