"""Topic administration with kafka-python's admin client: create missing topics, list topics."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import kafka
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from hub.errors import RecoverableError, UserError

log = logging.getLogger(__name__)


@contextmanager
def admin_client(bootstrap: str, timeout: float = 30.0) -> Iterator[KafkaAdminClient]:
    """A KafkaAdminClient that gives up after ``timeout`` seconds if no broker answers."""
    timeout_ms = max(1000, int(timeout * 1000))
    config = {"bootstrap_servers": bootstrap, "client_id": "gameday-hub-admin",
              "request_timeout_ms": timeout_ms, "reconnect_backoff_max_ms": 1000,
              "bootstrap_timeout_ms": timeout_ms, "api_version_auto_timeout_ms": timeout_ms}
    # kafka-python 3 has bootstrap_timeout_ms; 2.x has api_version_auto_timeout_ms instead.
    config = {k: v for k, v in config.items() if k in KafkaAdminClient.DEFAULT_CONFIG}
    try:
        admin = KafkaAdminClient(**config)
    except KafkaError as exc:  # NoBrokersAvailable (2.x), connection/timeout errors (3.x)
        raise RecoverableError(f"no Kafka broker answers at {bootstrap}: {exc}") from None
    try:
        yield admin
    finally:
        admin.close()


def ensure_topics(bootstrap: str, topics: Mapping[str, int], replication: int = 1,
                  timeout: float = 30.0) -> list[str]:
    """Create the topics of ``topics`` (name -> partitions) that do not exist yet.

    Existing topics are left as they are (their partition count is not changed). Returns the
    names that were created by this call.
    """
    for name, partitions in topics.items():
        if not name or int(partitions) < 1:
            raise UserError(f"topic {name!r}: needs a name and at least one partition")
    if not topics:
        return []
    with admin_client(bootstrap, timeout) as admin:
        existing = set(admin.list_topics())
        missing = {name: int(partitions) for name, partitions in topics.items()
                   if name not in existing}
        created: list[str] = []
        for name, partitions in missing.items():
            # One at a time: an "already exists" race must not hide the other topics.
            try:
                admin.create_topics(_new_topic(name, partitions, int(replication)),
                                    timeout_ms=int(timeout * 1000))
                created.append(name)
            except TopicAlreadyExistsError:
                log.debug("topic %s was created concurrently", name)
            except KafkaError as exc:
                raise RecoverableError(f"creating topic {name} on {bootstrap} failed: {exc}") from exc
    if created:
        _wait_for_leaders(bootstrap, created, timeout)
    return created


def _new_topic(name: str, partitions: int, replication: int):
    # kafka-python 3 takes {name: options}; 2.x takes [NewTopic] (deprecated in 3).
    if int(kafka.__version__.split(".")[0]) >= 3:
        return {name: {"num_partitions": partitions, "replication_factor": replication}}
    return [NewTopic(name=name, num_partitions=partitions, replication_factor=replication)]


def _wait_for_leaders(bootstrap: str, names: list[str], timeout: float) -> None:
    """Block until every partition of ``names`` has a leader, so producers can use them at once."""
    import time

    deadline = time.monotonic() + timeout
    with admin_client(bootstrap, timeout) as admin:
        while True:
            try:
                described = admin.describe_topics(names)
                ready = all(
                    not t.get("error_code") and t.get("partitions")
                    and all(_leader(p) >= 0 for p in t["partitions"])
                    for t in described)
                if ready:
                    return
            except KafkaError as exc:
                log.debug("waiting for topic leaders: %s", exc)
            if time.monotonic() > deadline:
                raise RecoverableError(f"topics {', '.join(names)} have no leader after {timeout:g}s")
            time.sleep(0.1)


def list_topics(bootstrap: str, include_internal: bool = False,
                timeout: float = 30.0) -> dict[str, int]:
    """Topics of the cluster with their partition counts, sorted by name."""
    with admin_client(bootstrap, timeout) as admin:
        names = [n for n in admin.list_topics() if include_internal or not n.startswith("__")]
        if not names:
            return {}
        described = admin.describe_topics(names)
    counts = {_topic_name(t): len(t.get("partitions") or []) for t in described}
    return dict(sorted(counts.items()))


# kafka-python 3 describes topics with "name"/"leader_id", 2.x with "topic"/"leader".
def _topic_name(described: dict) -> str:
    return described.get("name") or described["topic"]


def _leader(partition: dict) -> int:
    leader = partition.get("leader_id", partition.get("leader", -1))
    return -1 if leader is None else int(leader)
