"""Two writers of one partition at once: a worker expelled from the consumer group (its session timed
out on a loaded machine) goes on writing the batch it holds while the partition's new owner, which
recovered from the ledger before that batch was entered, writes the same offsets in other chunks.
The ledger keeps one entry per first offset; the second writer takes that entry's range, so each
record is stored once whichever writer enters its chunk first."""

from __future__ import annotations

import pytest

from hub.records.generate import generate_request_legs
from hub.storage.sink import LEDGER_COLUMNS, ledger_entry
from tests.integration.test_sink_exactly_once import consume_all, counts, make_sink, produce

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def ledger(store, topic):
    return [tuple(r) for r in store.query(
        f"SELECT DISTINCT first_offset, last_offset FROM {store.database}.sink_ledger WHERE topic = {{t:String}} "
        "ORDER BY first_offset", parameters={"t": topic}).result_rows]


def test_an_expelled_writer_enters_a_longer_chunk_first_and_the_new_owner_takes_its_range(
        store, kafka_bootstrap, make_topic):
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(300, seed=31), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 300)
    expelled = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    expelled.write(messages[:100])
    owner = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    owner.recover_assigned([0])          # the new owner reads the ledger: stored up to 99
    expelled.write(messages[100:200])    # the expelled worker's batch in hand: offsets 100-199
    owner.write(messages[100:150])       # the owner's first poll from the committed offset 100
    owner.write(messages[150:300])
    assert counts(store) == (300, 300)
    assert ledger(store, topic) == [(0, 99), (100, 199), (200, 299)]


def test_the_new_owner_enters_a_shorter_chunk_first_and_the_expelled_writer_takes_its_range(
        store, kafka_bootstrap, make_topic):
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(300, seed=32), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 300)
    expelled = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    expelled.write(messages[:100])
    owner = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    owner.recover_assigned([0])
    owner.write(messages[100:150])       # the owner enters 100-149 first
    expelled.write(messages[100:200])    # the expelled worker's batch 100-199: 100-149 taken, 150-199 its own
    owner.write(messages[150:300])       # from 150 the owner takes the expelled worker's entry
    assert counts(store) == (300, 300)
    assert ledger(store, topic) == [(0, 99), (100, 149), (150, 199), (200, 299)]


def test_of_two_entries_from_one_offset_the_one_written_first_holds_it(store, kafka_bootstrap, make_topic):
    # Two entries from one first offset stand when the first was made before entries were claimed
    # (or its claim fell out of the ledger's deduplication window): every writer takes the one
    # written first, whose writer may have inserted its rows already.
    topic = make_topic(partitions=1)
    produce(kafka_bootstrap, topic, generate_request_legs(300, seed=33), partition=0)
    messages = consume_all(kafka_bootstrap, topic, 1, 300)
    expelled = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    expelled.write(messages[:100])
    owner = make_sink(store, kafka_bootstrap, topic, topic + ".dlq")
    owner.recover_assigned([0])
    # the expelled writer's chunk 100-199: its rows, and an entry not made under the claim's token
    token = f"requests:{topic}:0:100-199"
    expelled._write_chunk(0, messages[100:200], recovering=True)
    entry = ledger_entry(sink="requests", topic=topic, partition=0, first_offset=100, last_offset=199, token=token,
                         rows=100, invalid=0)
    store.insert(f"{store.database}.sink_ledger", [entry], LEDGER_COLUMNS, token=token + ":ledger")
    owner.write(messages[100:150])       # its own entry stands too, written later
    owner.write(messages[150:300])
    assert counts(store) == (300, 300)
    assert ledger(store, topic) == [(0, 99), (100, 149), (100, 199), (200, 299)]
