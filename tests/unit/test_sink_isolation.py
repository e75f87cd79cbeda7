"""Poison isolation and insert splitting as plain functions on plain lists: the rows the store
refuses are found by halving, the others stored once under tokens that a replay repeats; a batch
spanning more days than one insert may is split by day."""

from __future__ import annotations

import datetime as dt
import hashlib

from hub.errors import InvalidRecord, StoreRejected
from hub.records.decode import RawMessage, decode_dead_letter, to_dead_letter
from hub.storage.dead_letters import fit
from hub.storage.sink import (MAX_PARTITIONS_PER_INSERT, day_key_column, day_of, isolate_rejected,
                              partition_groups)


class TokenStore:
    """A store on plain lists: refuses any insert holding a bad item (storing nothing of it),
    and drops an insert whose token it has seen (ClickHouse's insert deduplication)."""

    def __init__(self, bad):
        self.bad = set(bad)
        self.rows: list = []
        self.tokens: set[str] = set()
        self.inserts: list[str] = []

    def insert(self, items, token):
        self.inserts.append(token)
        if self.bad & set(items):
            raise StoreRejected(f"refused {sorted(self.bad & set(items))[0]}")
        if token in self.tokens:
            return
        self.tokens.add(token)
        self.rows.extend(items)


def test_the_refused_rows_are_isolated_and_every_other_row_is_stored_once():
    items = list(range(1000))
    store = TokenStore(bad={17, 503, 504, 999})
    refused = isolate_rejected(items, store.insert, "requests:t:0:0-999")
    assert [item for item, _ in refused] == [17, 503, 504, 999]
    assert refused[0][1] == "refused 17"
    assert sorted(store.rows) == [i for i in items if i not in store.bad]
    # Far fewer inserts than rows: about two per halving level for each refused row.
    assert len(store.inserts) < 4 * 2 * 10 + 10
    # A replay of the same offsets takes the same halves and tokens: nothing is stored twice.
    first_tokens = list(store.inserts)
    store.inserts.clear()
    assert isolate_rejected(items, store.insert, "requests:t:0:0-999") == refused
    assert store.inserts == first_tokens
    assert sorted(store.rows) == [i for i in items if i not in store.bad]


def test_tokens_derive_from_the_chunks_token_and_a_clean_insert_keeps_it():
    store = TokenStore(bad=set())
    assert isolate_rejected([1, 2, 3], store.insert, "T") == []
    assert store.inserts == ["T"]
    store = TokenStore(bad={2})
    isolate_rejected([1, 2, 3, 4, 5, 6, 7, 8], store.insert, "T", per_row_below=4)
    assert store.inserts[0] == "T"
    assert all(t.startswith("T/") for t in store.inserts[1:])
    assert store.inserts == ["T", "T/a", "T/a/a", "T/a/a/r0", "T/a/a/r1", "T/a/b", "T/b"]


def test_every_row_refused_ends_as_one_refusal_each():
    store = TokenStore(bad=set(range(10)))
    assert [item for item, _ in isolate_rejected(list(range(10)), store.insert, "T")] == list(range(10))
    assert store.rows == []


def test_101_days_are_split_into_groups_of_at_most_the_partitions_one_insert_may_hold():
    base = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
    rows = [(i, base - dt.timedelta(days=i % 101)) for i in range(505)]
    groups = partition_groups(rows, 1)
    assert sorted(p for g in groups for p in g) == list(range(505))
    assert len(groups) == 2
    assert all(len({day_of(rows[p][1]) for p in g}) <= MAX_PARTITIONS_PER_INSERT for g in groups)
    assert all(g == sorted(g) for g in groups)  # a group keeps the rows' order
    assert partition_groups(rows, 1) == groups  # the same rows, the same groups (tokens)
    few = [(i, base - dt.timedelta(days=i % 99)) for i in range(495)]
    assert partition_groups(few, 1) == [list(range(495))]  # 99 days: one insert
    assert partition_groups(rows, None) == [list(range(505))]


def test_days_of_times_as_the_sink_holds_them():
    t = dt.datetime(2026, 3, 4, 23, 59, tzinfo=dt.timezone.utc)
    day = (t.date() - dt.date(1970, 1, 1)).days
    ns = int(t.timestamp()) * 10**9
    assert {day_of(t), day_of(t.date()), day_of(ns), day_of(ns // 1000), day_of(ns // 10**6),
            day_of(int(t.timestamp()))} == {day}
    assert day_of("2026-03-04") is None and day_of(None) is None
    assert day_of(dt.datetime(2026, 3, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == day


def test_the_partition_key_names_the_day_column():
    columns = ("event_id", "event_time", "status")
    assert day_key_column("toDate(event_time)", columns) == 1
    assert day_key_column("toStartOfWeek(event_time)", columns) == 1
    assert day_key_column("toDate(Timestamp)", columns) is None  # not inserted: no split
    assert day_key_column("", columns) is None
    assert day_key_column("cityHash64(event_id) % 10", columns) is None


def test_a_dead_letter_too_large_for_the_broker_is_cut_with_the_originals_length_hash_and_source():
    value = b"x" * 1_000_001
    raw = RawMessage("hub.requests", 3, 42, b"key", value, 1_700_000_000_000)
    invalid = InvalidRecord("oversized: 1000001 bytes", "hub.requests", 3, 42)
    assert len(to_dead_letter(invalid, raw)) > 1_300_000
    cut, cut_raw = fit(invalid, raw, 786_432)
    letter = to_dead_letter(cut, cut_raw)
    assert len(letter) <= 786_432
    parsed = decode_dead_letter(letter)
    assert (parsed.source_topic, parsed.source_partition, parsed.source_offset) == ("hub.requests", 3, 42)
    assert f"1000001 bytes, sha256 {hashlib.sha256(value).hexdigest()}" in parsed.reason
    assert parsed.reason.startswith("oversized: 1000001 bytes [payload truncated")
    small = RawMessage("hub.requests", 3, 43, b"key", b"{}", 0)
    assert fit(invalid, small, 786_432) == (invalid, small)
