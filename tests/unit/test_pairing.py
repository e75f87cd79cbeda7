"""The pairing join: legs shuffled and delayed up to the window are all paired, no pair is invented,
and memory stays bounded by the requests in flight."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.records.decode import DecodedBatch
from hub.records.request_leg import REQUEST_COLUMNS
from hub.shadow.noise import NoiseModel
from hub.shadow.pairing import DROPPED_BY_BULKHEAD, LegView, PairingAgent, PairingWindow, make_pair
from hub.shadow.records import PAIR_COLUMNS, decode_pairs, encode_pair

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
WINDOW = 5.0
SKEW = 0.2  # the shadow leg starts at most this long after the primary


def leg(cid, kind, t, backend=None, status=200, h="aa", latency=10.0, error=""):
    return LegView(cid, kind, "gw", "/r", "GET", backend or ("v1" if kind == "primary" else "v2"), status, latency,
                   T0 + timedelta(seconds=t), h, error)


@st.composite
def traffic(draw):
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    shadow_share = draw(st.floats(0.0, 1.0))
    lost_share = draw(st.floats(0.0, 0.5))
    rate = draw(st.floats(5.0, 500.0))  # requests per second
    return n, seed, shadow_share, lost_share, rate


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_every_pair_found_none_invented_memory_bounded(case):
    n, seed, shadow_share, lost_share, rate = case
    rnd = random.Random(seed)
    arrivals = []  # (arrival time, leg)
    shadowed, lost, starts = set(), set(), {}
    for i in range(n):
        cid = f"c{i}"
        t = i / rate + rnd.uniform(0, 0.5 / rate)
        starts[cid] = t
        budget = WINDOW - SKEW
        arrivals.append((t + rnd.uniform(0, budget), leg(cid, "primary", t)))
        if rnd.random() < shadow_share:
            shadowed.add(cid)
            if rnd.random() < lost_share:
                lost.add(cid)  # the shadow leg never arrives
                continue
            ts = t + rnd.uniform(0, SKEW)
            arrivals.append((ts + rnd.uniform(0, budget - (ts - t)), leg(cid, "shadow", ts)))
    arrivals.sort(key=lambda a: a[0])
    w = PairingWindow(WINDOW, expect_shadow=lambda lv: lv.correlation_id in shadowed)
    pairs, peak, peak_bound = [], 0, 0
    for arrival, lv in arrivals:
        pairs.extend(w.add(lv))
        peak = max(peak, w.pending)
        # in flight: requests started within two windows of the watermark (pending + remembered keys)
        mark = w.watermark - T0.timestamp()
        in_flight = sum(1 for s in starts.values() if mark - 2 * WINDOW - SKEW - 1e-6 <= s <= arrival)
        peak_bound = max(peak_bound, in_flight)
        assert w.pending <= in_flight
    pairs.extend(w.flush())
    by_cid = {}
    for p in pairs:
        assert p.correlation_id not in by_cid, "one pair per request"
        by_cid[p.correlation_id] = p
    assert set(by_cid) == shadowed  # every expected pair, nothing invented
    assert {c for c, p in by_cid.items() if p.outcome == "shadow_missing"} == lost
    assert all(p.outcome == "match" for c, p in by_cid.items() if c not in lost)
    assert w.stats["late"] == 0 and w.stats["orphan_shadows"] == 0
    assert w.pending == 0
    assert peak <= peak_bound


def test_duplicates_and_late_legs_invent_nothing():
    w = PairingWindow(WINDOW, expect_shadow=lambda lv: True)
    out = w.add(leg("a", "shadow", 0.1)) + w.add(leg("a", "primary", 0.0))
    assert [p.outcome for p in out] == ["match"]
    out += w.add(leg("a", "primary", 0.0)) + w.add(leg("a", "shadow", 0.1))   # redelivered
    out += w.add(leg("b", "shadow", 20.0))                                     # orphan, moves the watermark
    out += w.add(leg("c", "primary", 1.0))                                     # later than the window
    out += w.flush()
    assert [p.correlation_id for p in out] == ["a"]
    assert w.stats["duplicates"] == 2 and w.stats["late"] == 1 and w.stats["orphan_shadows"] == 1


def test_outcomes():
    p = leg("x", "primary", 0, latency=10)
    assert make_pair(p, None).outcome == "shadow_missing"
    assert make_pair(p, leg("x", "shadow", 0, status=0, error=DROPPED_BY_BULKHEAD)).outcome == "dropped_by_bulkhead"
    assert make_pair(p, leg("x", "shadow", 0, status=0, error="ConnectError")).outcome == "shadow_error"
    assert make_pair(p, leg("x", "shadow", 0, status=500)).outcome == "status_mismatch"
    body = make_pair(p, leg("x", "shadow", 0, h="bb"))
    assert (body.outcome, body.body_match, body.differing_fields) == ("body_mismatch", False, ["$"])
    assert make_pair(p, leg("x", "shadow", 0, latency=100)).outcome == "latency_regression"
    ok = make_pair(p, leg("x", "shadow", 0, latency=12))
    assert (ok.outcome, ok.status_match, ok.body_match, ok.latency_diff_ms) == ("match", True, True, 2.0)


def test_hash_level_noise_from_a_secondary_leg():
    """Stream pairing with a secondary backend: a route whose secondary differs too is noise."""
    noise = NoiseModel()
    w = PairingWindow(WINDOW, noise=noise, secondary_backends={"v1b"})
    out = []
    for i in range(20):
        out += w.add(leg(f"n{i}", "primary", i * 0.01, h=f"p{i}"))
        out += w.add(leg(f"n{i}", "shadow", i * 0.01, backend="v1b", h=f"s{i}"))  # secondary differs: timestamps
        out += w.add(leg(f"n{i}", "shadow", i * 0.01, h=f"x{i}"))
    assert len(out) == 20 and all(p.outcome == "match" and p.noise for p in out)
    assert all(p.noise_fields == ["$"] and p.differing_fields == [] for p in out)


def _request(**fields) -> tuple:
    """A ``requests`` row, built by column name: ``fields`` over a primary leg's values."""
    values = dict(event_id=None, event_time=T0, experiment_id="exp", phase="injection", correlation_id="c",
                  leg="primary", gateway="gw", route="/r", method="GET", backend="v1", status=200, latency_ms=10.0,
                  request_bytes=0, response_bytes=0, response_hash="aa", error="", source="/gateways/other")
    values.update(fields)
    return tuple(values[c] for c in REQUEST_COLUMNS)


def _row(cid, kind, t, source="/gateways/other", h="aa"):
    return _request(event_time=T0 + timedelta(seconds=t), correlation_id=cid, leg=kind,
                    backend="v1" if kind == "primary" else "v2", response_hash=h, source=source)


def _pair(row) -> dict:
    """A ``shadow_pairs`` row by column name."""
    return dict(zip(PAIR_COLUMNS, row, strict=True))


def test_agent_after_store_publishes_decodable_pairs_once():
    agent = PairingAgent(WINDOW)
    rows = [_row("a", "primary", 0), _row("a", "shadow", 0.1, h="bb"), _row("g", "primary", 0, "/hub-gateway/x"),
            _row("g", "shadow", 0, "/hub-gateway/x")]
    records = agent.after_store("requests:hub.requests:3:10-13", DecodedBatch(rows, []))
    assert len(records) == 1 and records[0][0] == b"a"
    assert agent.after_store("requests:hub.requests:3:10-13", DecodedBatch(rows, [])) == []  # re-stored chunk
    from hub.records.decode import RawMessage
    batch = decode_pairs([RawMessage("hub.pairs", 0, 0, b"a", records[0][1], 0)], 1_000_000)
    assert batch.invalid == [] and len(batch.rows) == 1
    row = _pair(batch.rows[0])
    assert (row["experiment_id"], row["phase"]) == ("exp", "injection")
    assert row["outcome"] == "body_mismatch" and row["differing_fields"] == ["$"]


def test_pairing_throughput():
    n = 50_000
    legs = []
    for i in range(n):
        legs.append(leg(f"c{i}", "primary", i / 1000))
        legs.append(leg(f"c{i}", "shadow", i / 1000 + 0.001))
    rnd = random.Random(1)
    for i in range(0, len(legs) - 50, 50):  # local shuffles: out of order within ~25 requests
        chunk = legs[i:i + 50]
        rnd.shuffle(chunk)
        legs[i:i + 50] = chunk
    w = PairingWindow(WINDOW)
    started = time.perf_counter()
    count = 0
    for lv in legs:
        count += len(w.add(lv))
    count += len(w.flush())
    elapsed = time.perf_counter() - started
    assert count == n
    print(f"pairing: {n / elapsed:,.0f} pairs/s ({2 * n / elapsed:,.0f} legs/s)")


# ---- one stored row per pair_id: the pairs sink's filter (hub.shadow.dedupe) ---------------------
def _pair_records(cids, t=0.0, source="/hub/pairing"):
    from hub.shadow.records import encode_pair

    return [encode_pair(make_pair(leg(c, "primary", t), leg(c, "shadow", t + 0.01)), source) for c in cids]


def _chunk(partition, first, values):
    from hub.records.decode import RawMessage

    return [RawMessage("hub.pairs", partition, first + i, b"k", v, 0) for i, v in enumerate(values)]


def test_decoded_pairs_carry_the_partition_and_offset_they_were_read_from():
    from hub.shadow.records import PAIR_COLUMNS, PAIR_OFFSET, PAIR_PARTITION, pair_id_of

    batch = decode_pairs(_chunk(3, 40, _pair_records(["a", "b"])), 1_000_000)
    assert batch.invalid == [] and all(len(r) == len(PAIR_COLUMNS) for r in batch.rows)
    assert [(r[PAIR_PARTITION], r[PAIR_OFFSET]) for r in batch.rows] == [(3, 40), (3, 41)]
    assert _pair(batch.rows[0])["pair_id"] == pair_id_of("gw", "a")


def test_a_pair_published_again_is_dropped_and_a_chunk_written_again_keeps_its_rows():
    from hub.shadow.dedupe import PairDeduplicator

    dedupe = PairDeduplicator()  # without a store: what replay uses
    cids = lambda rows: [_pair(r)["correlation_id"] for r in rows]  # noqa: E731
    a = decode_pairs(_chunk(0, 0, _pair_records(["p1", "p2", "p3"])), 1_000_000)
    assert cids(dedupe(a).rows) == ["p1", "p2", "p3"]
    # the same chunk again (a crash before its offsets were committed): its own rows do not count
    again = decode_pairs(_chunk(0, 0, _pair_records(["p1", "p2", "p3"])), 1_000_000)
    assert cids(dedupe(again).rows) == ["p1", "p2", "p3"]
    # a later chunk: p2 published again (the pairer's state was lost), p4 twice in one chunk
    b = decode_pairs(_chunk(0, 3, _pair_records(["p2", "p4", "p4", "p5"])), 1_000_000)
    assert cids(dedupe(b).rows) == ["p4", "p5"]
    assert dedupe.stats == {"checked": 10, "dropped": 2}
    # another partition (another emitter keyed it otherwise): still one row per pair_id
    c = decode_pairs(_chunk(1, 0, _pair_records(["p1", "p6"])), 1_000_000)
    assert cids(dedupe(c).rows) == ["p6"]


def test_the_filter_without_a_store_forgets_pairs_beyond_its_horizon():
    from hub.shadow.dedupe import PairDeduplicator

    dedupe = PairDeduplicator(memory_horizon_s=60.0)
    offset = 0
    for minute in range(10):
        records = _pair_records([f"m{minute}-{i}" for i in range(20)], t=minute * 60.0)
        dedupe(decode_pairs(_chunk(0, offset, records), 1_000_000))
        offset += len(records)
        assert dedupe.remembered <= 2 * 20 + 20  # the last horizon's pairs, not all of them
    assert dedupe.stats["dropped"] == 0


def test_a_held_leg_costs_a_few_hundred_bytes():
    # A window holds every primary leg for its whole span (30 s of traffic by default: 300,000
    # legs at 10,000 legs/s); a held row must cost about its encoded size, not a fixed buffer.
    import tracemalloc
    import uuid

    t0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    rows = [_request(event_id=uuid.uuid4(), event_time=t0 + timedelta(milliseconds=i), phase="load",
                     correlation_id=f"c{i}", latency_ms=5.0, source="/src") for i in range(5000)]
    window = PairingWindow(window_s=30.0)
    tracemalloc.start()
    try:
        for row in rows:
            window.add_row(row)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert window.pending == 5000
    assert held / 5000 < 600, f"{held / 5000:.0f} bytes per held leg"


def test_held_legs_are_never_tracked_by_the_garbage_collector():
    # A busy window holds hundreds of thousands of legs waiting for a shadow that mostly never
    # comes, and frees the oldest as fast as new ones arrive. Young collections start on the count
    # of objects made minus those freed, so with that turnover they stop, and any tracked object
    # the window held would pile up until a full collection scans it (a pause of about a second
    # at 10,000 legs/s in the worker). So nothing held is tracked, even before any collection.
    import gc
    import uuid

    window = PairingWindow(window_s=30.0)
    t0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    for i in range(2000):
        row = _request(event_id=uuid.uuid4(), event_time=t0 + timedelta(milliseconds=i), phase="load",
                       correlation_id=f"c{i}", latency_ms=5.0, source="/src")
        window.add_row(row)
    held = (list(window._first) + list(window._first.values()) + list(window._primary.values())
            + window._expiry._heap + list(window._expiry._at.values()))
    assert len(held) == 5 * 2000
    assert [item for item in held if gc.is_tracked(item)] == []
    # and a shadow arriving later still makes its pair from the held primary
    shadow = LegView("c7", "shadow", "gw", "/r", "GET", "v2", 200, 6.0, t0 + timedelta(milliseconds=7), "aa")
    [pair] = window.add(shadow)
    assert (pair.correlation_id, pair.primary_backend, pair.shadow_backend, pair.outcome) == ("c7", "v1", "v2", "match")
    # the held row comes back whole: its time, experiment, phase and figures
    assert (pair.event_time, pair.experiment_id, pair.phase, pair.primary_status, pair.latency_primary_ms,
            pair.route, pair.method) == (t0 + timedelta(milliseconds=7), "exp", "load", 200, 5.0, "/r", "GET")


def test_stream_pairing_learns_no_noise_from_a_failing_primary():
    """Hash-level pairing with a secondary: while the primary answers 503 its hash differs from the
    secondary's, which teaches nothing (the pairs are ``primary_failed``); afterwards a shadow that differs is a body mismatch."""
    noise = NoiseModel()
    w = PairingWindow(WINDOW, noise=noise, secondary_backends={"v1b"})
    out = []
    for i in range(30):
        out += w.add(leg(f"f{i}", "primary", i * 0.01, status=503, h=f"err{i}"))
        out += w.add(leg(f"f{i}", "shadow", i * 0.01, backend="v1b", h="ok"))
        out += w.add(leg(f"f{i}", "shadow", i * 0.01, h="ok"))
    assert [(p.outcome, p.noise, p.noise_fields) for p in out] == [("primary_failed", False, [])] * 30
    later = []
    for i in range(30):
        later += w.add(leg(f"h{i}", "primary", 1 + i * 0.01, h="ok"))
        later += w.add(leg(f"h{i}", "shadow", 1 + i * 0.01, backend="v1b", h="ok"))
        later += w.add(leg(f"h{i}", "shadow", 1 + i * 0.01, h="lagging" if i % 3 == 0 else "ok"))
    assert [p.outcome for p in later] == ["body_mismatch" if i % 3 == 0 else "match" for i in range(30)]
    assert noise.snapshot()["/r"] == {"compared": 30, "skipped": 30, "rates": {}}


def test_a_failed_primary_says_nothing_about_the_shadow():
    """A pair whose primary answered 5xx or not at all is ``primary_failed``: never noise, whatever
    the shadow answered; a primary that succeeded against a failing shadow stays a real mismatch."""
    for primary in (leg("x", "primary", 0, status=503, h="err"), leg("x", "primary", 0, status=0, error="timeout"),
                    leg("x", "primary", 0, status=500, h="ok")):
        for shadow in (leg("x", "shadow", 0, h="ok"), leg("x", "shadow", 0, status=503, h="err"),
                       leg("x", "shadow", 0, status=0, error="ConnectError")):
            pair = make_pair(primary, shadow, noise=NoiseModel())
            assert (pair.outcome, pair.noise) == ("primary_failed", False)
    shadow_failed = make_pair(leg("x", "primary", 0), leg("x", "shadow", 0, status=503, h="err"), noise=NoiseModel())
    assert (shadow_failed.outcome, shadow_failed.noise) == ("status_mismatch", False)
    client_error = make_pair(leg("x", "primary", 0, status=404, h="nf"), leg("x", "shadow", 0, h="ok"))
    assert client_error.outcome == "status_mismatch"  # the primary answered: a real difference
    # the bulkhead's drop is still told as such
    dropped = leg("x", "shadow", 0, status=0, error=DROPPED_BY_BULKHEAD)
    assert make_pair(leg("x", "primary", 0, status=503), dropped).outcome == "dropped_by_bulkhead"


def test_stream_pairing_of_a_failing_primary_gives_primary_failed_pairs():
    w = PairingWindow(WINDOW, noise=NoiseModel(), secondary_backends={"v1b"})
    out = []
    for i in range(10):
        out += w.add(leg(f"f{i}", "primary", i * 0.01, status=503, h=f"err{i}"))
        out += w.add(leg(f"f{i}", "shadow", i * 0.01, backend="v1b", h="ok"))
        out += w.add(leg(f"f{i}", "shadow", i * 0.01, h="ok"))
    assert [(p.outcome, p.noise) for p in out] == [("primary_failed", False)] * 10
    rows = decode_pairs([("hub.pairs", 0, 0, None, encode_pair(out[0], "/hub/pairing"), 0)], 1 << 20).rows
    assert _pair(rows[0])["outcome"] == "primary_failed"


def test_declared_nondeterministic_fields_are_never_listed_as_differing():
    """Fields the configuration declares nondeterministic are noise fields in every pair, also
    when the statuses differ (which stays a real mismatch, never noise) or the primary failed."""
    model = NoiseModel({"*": ["generated_at"], "/r": ["trace.*"]})
    p = leg("x", "primary", 0)
    same_status = make_pair(p, leg("x", "shadow", 0, h="bb"), differing=["generated_at", "trace.id"], noise=model)
    assert (same_status.outcome, same_status.noise, same_status.differing_fields, same_status.noise_fields) == \
        ("match", True, [], ["generated_at", "trace.id"])
    status = make_pair(p, leg("x", "shadow", 0, status=201, h="bb"), differing=["generated_at", "id"], noise=model)
    assert (status.outcome, status.noise, status.differing_fields, status.noise_fields) == \
        ("status_mismatch", False, ["id"], ["generated_at"])
    only_declared = make_pair(p, leg("x", "shadow", 0, status=201, h="bb"), differing=["generated_at"], noise=model)
    assert (only_declared.outcome, only_declared.noise, only_declared.differing_fields) == ("status_mismatch", False, [])
    failed = make_pair(leg("x", "primary", 0, status=503), leg("x", "shadow", 0, h="bb"),
                       differing=["error", "generated_at", "patient.id"], noise=model)
    assert (failed.outcome, failed.noise, failed.differing_fields, failed.noise_fields) == \
        ("primary_failed", False, ["error", "patient.id"], ["generated_at"])
