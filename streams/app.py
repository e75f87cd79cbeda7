"""Builds the Faust application from the hub's settings."""

from __future__ import annotations

import faust

from hub.settings import Settings


def create_app(settings: Settings) -> faust.App:
    """A Faust app whose consumer group is the hub's workers, with no state store on disk."""
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=str(settings.home_dir / "faust"),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Commits only carry offsets the sink has acked (after the rows are stored).
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=65536,
        consumer_max_fetch_size=16 * 1024 * 1024,
        stream_wait_empty=True,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(settings.session_timeout / 4, 0.5),
        broker_rebalance_timeout=max(settings.session_timeout * 2, 10.0),
    )
