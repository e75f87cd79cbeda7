"""The judge's rebuild of its rollup partitions on the real broker: the alerts already on the
alerts topic are read once, not once per rebuilt partition, and alerts written since are learnt."""

from __future__ import annotations

import json

from hub.abort.runtime import JudgeRuntime
from hub.runtime import clients
from hub.settings import load_settings


class NoExperiments:
    states: dict = {}

    def wait_until_known(self, *args, **kwargs):
        return None


def alert(alert_id: str, status: str = "firing") -> bytes:
    return json.dumps({"kind": "alert", "alert_id": alert_id, "status": status}).encode()


def send(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = clients.producer(bootstrap, acks="all")
    try:
        for value in values:
            producer.send(topic, value=value, partition=0)
        producer.flush(timeout=30)
    finally:
        producer.close()


def test_rebuilding_partitions_reads_the_alerts_topic_once(kafka_bootstrap, make_topic, tmp_path):
    alerts, rollups = make_topic(partitions=1), make_topic(partitions=3)
    send(kafka_bootstrap, alerts, [alert("a1"), b"not an alert", alert("a2", "resolved")])
    settings = load_settings({"HUB_HOME": str(tmp_path), "HUB_KAFKA_BOOTSTRAP": kafka_bootstrap,
                              "HUB_TOPIC_ALERTS": alerts, "HUB_TOPIC_ROLLUPS": rollups})
    judge = JudgeRuntime(settings, NoExperiments())
    for partition in range(3):
        judge.rebuild(partition)
    assert judge.judge.known_alerts == {("a1", "firing"), ("a2", "resolved")}
    assert judge.skipped == {alerts: 1}  # the malformed record was read (and skipped) once

    send(kafka_bootstrap, alerts, [alert("a3")])
    judge.forget([1])
    judge.rebuild(1)
    assert ("a3", "firing") in judge.judge.known_alerts
    assert judge.skipped == {alerts: 1}
