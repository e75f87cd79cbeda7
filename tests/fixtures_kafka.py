"""Kafka fixtures: a real broker for the whole test session, unique topics per test.

``kafka_bootstrap`` uses ``HUB_TEST_KAFKA_BOOTSTRAP`` when set; otherwise it starts the hub's
embedded broker (``KafkaRuntime``) under a temporary HUB_HOME on a free loopback port pair,
and stops it at the end of the session. The jar cache (HUB_KAFKA_CACHE) is the normal one,
so the jars are fetched once per machine, not once per run. If the broker cannot start the
fixture fails with the broker's log: a test that needs Kafka is never silently skipped.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from hub.errors import HubError
from hub.runtime.kafka import KafkaRuntime, wait_for_kafka
from hub.runtime.topics import ensure_topics
from hub.settings import Settings, load_settings

TEST_BOOTSTRAP_ENV = "HUB_TEST_KAFKA_BOOTSTRAP"


def free_port_pair(host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A port ``p`` such that ``p`` and ``p + 1`` are both free on ``host`` right now."""
    for _ in range(attempts):
        with socket.socket() as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError(f"no free pair of adjacent ports on {host} after {attempts} attempts")


def runtime_settings(home: Path, port: int | None = None, **overrides) -> Settings:
    """Settings of an embedded broker under ``home`` on ``port`` (a free pair if None).

    Everything else (notably HUB_KAFKA_CACHE and HUB_KAFKA_VERSION) comes from the environment,
    except HUB_KAFKA_BOOTSTRAP, which is cleared: these settings always mean "embedded".
    """
    env = {k: v for k, v in os.environ.items() if k != "HUB_KAFKA_BOOTSTRAP"}
    env["HUB_HOME"] = str(home)
    env.pop("HUB_CONFIG_FILE", None)
    settings = load_settings(env)
    return settings.with_overrides(home=Path(home), kafka_port=port or free_port_pair(),
                                   kafka_bootstrap="", **overrides)


def start_runtime(settings: Settings) -> KafkaRuntime:
    """Start an embedded broker for a test; ``pytest.fail`` with its log if it cannot start."""
    runtime = KafkaRuntime(settings)
    try:
        runtime.start(wait=True, progress=lambda line: print(f"[kafka fixture] {line}"))
    except HubError as exc:
        try:
            runtime.stop(timeout=10)
        finally:
            pytest.fail(f"the test Kafka broker could not start on {settings.bootstrap}: {exc}",
                        pytrace=False)
    return runtime


@pytest.fixture(scope="session")
def _kafka_session(tmp_path_factory) -> Iterator[tuple[str, KafkaRuntime | None]]:
    external = os.environ.get(TEST_BOOTSTRAP_ENV, "").strip()
    if external:
        try:
            wait_for_kafka(external, timeout=30)
        except HubError as exc:
            pytest.fail(f"{TEST_BOOTSTRAP_ENV}={external} does not answer: {exc}", pytrace=False)
        yield external, None
        return
    home = tmp_path_factory.mktemp("kafka-home")
    runtime = start_runtime(runtime_settings(home))
    try:
        yield runtime.bootstrap, runtime
    finally:
        runtime.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(_kafka_session) -> str:
    """Bootstrap servers of a running Kafka broker (embedded, or HUB_TEST_KAFKA_BOOTSTRAP)."""
    return _kafka_session[0]


@pytest.fixture(scope="session")
def kafka_runtime(_kafka_session) -> KafkaRuntime | None:
    """The session's embedded ``KafkaRuntime``; None when HUB_TEST_KAFKA_BOOTSTRAP is used."""
    return _kafka_session[1]


def _slug(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:limit] or "test"


@pytest.fixture
def topic_name(request) -> str:
    """A topic name unique to this test run: ``t-<test name>-<8 hex>`` (not created)."""
    return f"t-{_slug(request.node.name)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_topic(kafka_bootstrap, request) -> Callable[..., str]:
    """``make_topic(partitions=1, name=None) -> name``: create a fresh topic and return its name."""
    counter = itertools.count(1)
    base = _slug(request.node.name)

    def make(partitions: int = 1, name: str | None = None) -> str:
        name = name or f"t-{base}-{next(counter)}-{uuid.uuid4().hex[:8]}"
        ensure_topics(kafka_bootstrap, {name: partitions})
        return name

    return make
