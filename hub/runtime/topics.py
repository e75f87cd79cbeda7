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
from hub.runtime import clients

log = logging.getLogger(__name__)


@contextmanager
def admin_client(bootstrap: str, timeout: float = 30.0) -> Iterator[KafkaAdminClient]:
    """A KafkaAdminClient that gives up after ``timeout`` seconds if no broker answers."""
    timeout_ms = max(1000, int(timeout * 1000))
    try:
        # kafka-python 3 has bootstrap_timeout_ms; 2.x has api_version_auto_timeout_ms instead.
        admin = clients.admin(bootstrap, request_timeout_ms=timeout_ms, reconnect_backoff_max_ms=1000,
                              bootstrap_timeout_ms=timeout_ms, api_version_auto_timeout_ms=timeout_ms)
    except KafkaError as exc:  # NoBrokersAvailable (2.x), connection/timeout errors (3.x)
        raise RecoverableError(f"no Kafka broker answers at {bootstrap}: {exc}") from None
    try:
        yield admin
    finally:
        admin.close()


class TopicPlan(dict):
    """Topics to create (name -> partitions) and the configuration some of them must have
    (``configs``: name -> {key: value}, e.g. ``retention.ms`` of the raw telemetry topics)."""

    def __init__(self, partitions: Mapping[str, int], configs: Mapping[str, Mapping[str, str]] | None = None):
        super().__init__(partitions)
        self.configs = {name: dict(c) for name, c in (configs or {}).items() if c}


def retention_configs(names, hours: float) -> dict[str, dict[str, str]]:
    """``retention.ms`` for each of ``names`` (none when ``hours`` is 0: the broker's default applies)."""
    if not hours or hours <= 0:
        return {}
    return {name: {"retention.ms": str(int(hours * 3_600_000))} for name in names if name}


def ensure_topics(bootstrap: str, topics: Mapping[str, int], replication: int = 1,
                  timeout: float = 30.0, configs: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Create the topics of ``topics`` (name -> partitions) that do not exist yet.

    Existing topics keep their partition count. ``configs`` (or a ``TopicPlan``'s) is set on the
    topics it names: at creation, and on an existing topic whose value differs (incrementally:
    nothing else of its configuration changes). Returns the names created by this call.
    """
    if configs is None:
        configs = getattr(topics, "configs", None) or {}
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
                admin.create_topics(_new_topic(name, partitions, int(replication), configs.get(name)),
                                    timeout_ms=int(timeout * 1000))
                created.append(name)
            except TopicAlreadyExistsError:
                log.debug("topic %s was created concurrently", name)
            except KafkaError as exc:
                raise RecoverableError(f"creating topic {name} on {bootstrap} failed: {exc}") from exc
        existing_configured = [name for name in configs if name in existing]
        if existing_configured:
            _apply_configs(admin, {name: configs[name] for name in existing_configured})
    if created:
        _wait_for_leaders(bootstrap, created, timeout)
    return created


def _apply_configs(admin, configs: Mapping[str, Mapping[str, str]]) -> None:
    """Set ``configs`` on existing topics where they differ; a broker that refuses is logged, not fatal."""
    from kafka.admin import ConfigResource, ConfigResourceType

    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in configs])
        current = _described_values(described)
        changes = [ConfigResource(ConfigResourceType.TOPIC, name,
                                  configs={k: v for k, v in wanted.items() if current.get(name, {}).get(k) != v})
                   for name, wanted in configs.items()]
        changes = [c for c in changes if c.configs]
        if changes:
            admin.alter_configs(changes)
            log.info("topic configuration set: %s", {c.name: c.configs for c in changes})
    except (KafkaError, ValueError, TypeError, AttributeError) as exc:
        log.warning("could not set topic configuration %s: %s", dict(configs), exc)


def _described_values(described) -> dict[str, dict[str, str]]:
    """``{topic: {key: value}}`` out of ``describe_configs``'s answer
    (``{"topic": {name: {key: {"value": ...}}}}`` in kafka-python 3)."""
    out: dict[str, dict[str, str]] = {}
    for resources in (described or {}).values():
        for name, cfg in (resources or {}).items():
            out[str(name)] = {str(k): str(v.get("value") if isinstance(v, dict) else v) for k, v in (cfg or {}).items()}
    return out


def topic_config(bootstrap: str, name: str, timeout: float = 30.0) -> dict[str, str]:
    """The configuration of topic ``name`` as the broker reports it (for checks and ``hub status``)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    with admin_client(bootstrap, timeout) as admin:
        return _described_values(admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")).get(name, {})


def _new_topic(name: str, partitions: int, replication: int, configs: Mapping[str, str] | None = None):
    # kafka-python 3 takes {name: options}; 2.x takes [NewTopic] (deprecated in 3).
    if int(kafka.__version__.split(".")[0]) >= 3:
        options: dict = {"num_partitions": partitions, "replication_factor": replication}
        if configs:
            options["configs"] = dict(configs)
        return {name: options}
    return [NewTopic(name=name, num_partitions=partitions, replication_factor=replication,
                     topic_configs=dict(configs or {}))]


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
