"""A seeded corpus of synthetic patients through a real worker: no identifier reaches the store.

``hub.redaction.corpus`` places the identifiers of 150 synthetic patients (name, MRN, SSN, date of
birth, phone, e-mail, street address, insurance id, member id, IP address, each in many formats
and in realistic text) in every field of every ingest path: request legs on Kafka, with
``hub emit --file`` and over HTTP (structured, batch, binary), OTLP spans, logs and metrics as JSON
and as protobuf (resource, scope, schema URLs, trace state, names, bodies, descriptions, units, attribute maps, nested key-value
lists and arrays), alerts, shadow pairs, experiment events (notes, surprises, expected/actual,
fault parameters, abort reasons and deciders, summaries, actors; on the topic and through the HTTP
API with the actor in ``X-Hub-Actor``) and records the decoders refuse
(keys, echoed enum values, payloads). Then every String-bearing column of every table of the store
(from ``system.columns``) and every record of the dead-letter topic (key and value, the stored
payload decoded from base64) is searched for every seed: none is found. The cases found by testing the redaction from outside
(``FOUND_LEAKS``) are among the seeds, and the infrastructure names, ids and server addresses it once
replaced (``FOUND_KEPT``) must be stored as they were sent.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import re
import time
import urllib.request

import pytest

from hub.producer import send_records
from hub.redaction.corpus import KINDS, build_corpus
from hub.testing import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def _post(url: str, headers: dict, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:  # a refused event is an answer too (400/207): nothing stored
        return exc.code


def _settled(worker, topics: list[str], timeout: float = 180.0) -> None:
    """Wait until the sink ledger covers every record on ``topics`` (rows or dead letters)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=worker.settings.bootstrap)
    try:
        ends = {}
        for topic in topics:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            for tp, end in consumer.end_offsets(parts).items():
                if end:
                    ends[(topic, tp.partition)] = end - 1
    finally:
        consumer.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = {(t, p): o for t, p, o in worker.sql(
            "SELECT topic, partition, max(last_offset) FROM hub.sink_ledger GROUP BY topic, partition")}
        if all(done.get(k, -1) >= v for k, v in ends.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"the worker did not store every record in {timeout}s: {ends} vs {done}")


def _dead_letter_topic(worker) -> list[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(worker.settings.topic_dlq, bootstrap_servers=worker.settings.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    out = []
    try:
        for m in consumer:
            out.append((m.key or b"").decode("latin-1"))
            text = (m.value or b"").decode("latin-1")
            out.append(text)
            for blob in re.findall(r'"([A-Za-z0-9+/=]{8,})"', text):
                try:
                    out.append(base64.b64decode(blob, validate=True).decode("latin-1"))
                except ValueError:
                    pass
    finally:
        consumer.close()
    return out


def test_no_seeded_identifier_reaches_any_column_of_any_table(tmp_path, kafka_bootstrap):
    corpus = build_corpus(n_patients=150, seed=17, rounds=3)
    with WorkerProcess.start(tmp_path / "home", kafka_bootstrap) as worker:
        s = worker.settings
        by_topic: dict[str, list] = {}
        for attr, key, value in corpus.records:
            by_topic.setdefault(getattr(s, attr), []).append((key, value))
        for topic, records in by_topic.items():
            send_records(kafka_bootstrap, topic, records)
        answers = [_post(s.http_url + "/v1/events", headers, body) for headers, body in corpus.http]
        assert all(a < 500 for a in answers), answers
        lines = tmp_path / "legs.jsonl"
        lines.write_bytes(b"\n".join(corpus.emit_lines) + b"\n")
        emitted = subprocess.run([sys.executable, "-c", "import sys; from hub.cli.main import main; sys.exit(main())", "emit", "--file", str(lines), "--batch", "1"],
                                 env=worker.env, capture_output=True, text=True, timeout=120)
        assert emitted.returncode == 0, emitted.stderr
        commands = [(path, _post(s.http_url + path, headers, body)) for path, headers, body in corpus.experiment_http]
        assert all(code == 201 for _, code in commands), commands  # every command accepted and written
        _settled(worker, sorted(by_topic))

        columns = worker.sql(
            "SELECT c.table, c.name FROM system.columns AS c INNER JOIN system.tables AS t "
            "ON t.database = c.database AND t.name = c.table WHERE c.database = 'hub' "
            "AND t.engine NOT IN ('View', 'MaterializedView') "
            "AND match(c.type, 'String|JSON|Map') AND c.type != 'UUID'")
        texts: list[str] = []
        for table, column in columns:
            expr = "base64Decode(value)" if (table, column) == ("dead_letters", "value") else f"toString(`{column}`)"
            texts.extend(r[0] for r in worker.sql(f"SELECT {expr} FROM hub.`{table}`"))
        texts.extend(_dead_letter_topic(worker))
        # infrastructure names, ids and server addresses are stored as they were sent
        replaced = [(t, c, v) for t, c, v in corpus.kept
                    if not worker.sql(f"SELECT count() FROM hub.`{t}` WHERE `{c}` = '{v}'")[0][0]]
        rows = {t: worker.sql(f"SELECT count() FROM hub.{t}")[0][0]
                for t in ("requests", "otel_traces", "otel_logs", "alerts", "shadow_pairs", "experiment_events",
                          "dead_letters")}
    haystack = "\n".join(texts).lower()
    needles = [(seed, n) for seed in corpus.seeds for n in seed.needles]
    leaks = sorted({f"{seed.path} {seed.field} ({seed.kind}): {n}" for seed, n in needles if n.lower() in haystack})
    per_kind = {k: sum(1 for seed in corpus.seeds if seed.kind == k) for k in KINDS}
    print(f"\nseeded corpus: {len(corpus.seeds)} seeds ({per_kind}), {len(needles)} strings searched in "
          f"{len(columns)} columns of every table and the dead-letter topic; rows stored: {rows}; "
          f"leaks: {len(leaks)}")
    # the corpus went everywhere: every table it feeds holds rows, and dead letters were made
    assert all(rows[t] > 0 for t in rows), rows
    assert len({seed.path for seed in corpus.seeds}) >= 13
    assert not leaks, f"{len(leaks)} of {len(needles)} seeded strings found in the store:\n" + "\n".join(leaks[:50])
    assert not replaced, f"values that must be kept were replaced: {replaced}"
