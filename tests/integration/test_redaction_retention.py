"""The raw telemetry topics get a short retention: they hold data the redaction has not seen yet."""

from __future__ import annotations

import uuid

import pytest

from hub.pipeline import topics_to_create
from hub.runtime.topics import TopicPlan, ensure_topics, retention_configs, topic_config
from hub.settings import load_settings

pytestmark = [pytest.mark.kafka]


def test_the_worker_plans_a_short_retention_for_raw_topics_only(tmp_path):
    settings = load_settings({"HUB_HOME": str(tmp_path), "HUB_RAW_TOPIC_RETENTION_HOURS": "6"})
    plan = topics_to_create(settings)
    raw = {settings.topic_requests, settings.topic_pairs, settings.topic_spans, settings.topic_logs,
           settings.topic_metrics}
    # the rollups carry values derived from unredacted records: the same short retention
    assert set(plan.configs) == raw | {settings.topic_rollups}
    assert all(c == {"retention.ms": str(6 * 3_600_000)} for c in plan.configs.values())
    # the experiment log is folded from its first record and must keep everything
    assert settings.topic_experiments in plan and settings.topic_experiments not in plan.configs
    off = load_settings({"HUB_HOME": str(tmp_path), "HUB_RAW_TOPIC_RETENTION_HOURS": "0"})
    assert topics_to_create(off).configs == {}


def test_retention_is_set_at_creation_and_on_an_existing_topic(kafka_bootstrap):
    fresh, old = f"raw-fresh-{uuid.uuid4().hex[:8]}", f"raw-old-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {old: 1})  # made before the setting existed: broker default
    assert topic_config(kafka_bootstrap, old).get("retention.ms") != "7200000"
    plan = TopicPlan({fresh: 2, old: 1}, retention_configs([fresh, old], 2))
    assert ensure_topics(kafka_bootstrap, plan) == [fresh]
    assert topic_config(kafka_bootstrap, fresh)["retention.ms"] == "7200000"
    assert topic_config(kafka_bootstrap, old)["retention.ms"] == "7200000"
    ensure_topics(kafka_bootstrap, plan)  # again: nothing to change, nothing fails
    assert topic_config(kafka_bootstrap, old)["retention.ms"] == "7200000"
