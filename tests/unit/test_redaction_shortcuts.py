"""The redactor's shortcuts change nothing: requirements that need a digit are skipped only in text
without one, a batch's ids are checked in one match whatever their order, and a batch is redacted as
its rows one by one."""

from __future__ import annotations

import re
import sys
import uuid

import pytest

from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction import RedactionStats, default_policy, redact_request_rows
from hub.redaction.apply import _ALL_OPAQUE, _ALL_UUIDS, _needs_digit
from hub.redaction.corpus import KINDS, patients, sentence

#: Every code point that ``\d`` does not match, in one text.
NO_DIGITS = re.sub(r"\d", "", "".join(map(chr, range(sys.maxunicode + 1))))


@pytest.mark.parametrize("pattern, needs", [
    (r"\d", True), (r"a?\d", True), (r"[0-9]", True), (r"[1-9][A-Z]", True), (r"x7", True), (r"(?:19|20)\d\d", True),
    (r"\d{1,2}[/.]", True), (r"(?:a\d|\db)", True), (r"(?i)\d", True), (r"(?:\d)+", True),
    (r"(?:a|\d)", False), (r"\d?", False), (r"\d*x", False), (r"[0-9a]", False), (r"[^a]", False), (r"\D", False),
    (r"(?!\d)a", False), (r"(?=\d)", False), (r"x{0,3}", False), (r"\w", False), (r"dr.", False), (r"(", False),
])
def test_a_pattern_needs_a_digit_when_a_digit_is_a_required_part(pattern, needs):
    assert _needs_digit(pattern) is needs


def test_requirements_read_as_needing_a_digit_never_match_text_without_one():
    engine = default_policy().engine()
    assert engine._digit_checks, "the default requirements have some that need a digit"
    rng = __import__("random").Random(4)
    texts = [NO_DIGITS] + [re.sub(r"\d", "", sentence(kind, p.value(kind), rng)) for p in patients(40, 2) for kind in KINDS]
    for _, rx in engine._digit_checks:
        assert _needs_digit(rx.pattern, rx.flags)
        for text in texts:
            assert rx.search(text) is None, (rx.pattern, text[:80])


def test_active_patterns_are_those_whose_requirements_a_text_meets():
    """The requirements searched on their own, one by one, activate the same patterns."""
    engine = default_policy().engine()
    rng = __import__("random").Random(5)
    texts = [sentence(kind, p.value(kind), rng) for p in patients(40, 3) for kind in KINDS]
    texts += [re.sub(r"\d", "", t) for t in texts] + ["dr. Who", "Jane Doe 12", "ǅr", "x" * 40]
    for text in texts:
        expected = engine._always
        for bit, rx in engine._regex_checks + engine._digit_checks + engine._lower_regex:
            if rx.search(text) is not None:
                expected |= bit
        for word, bit in engine._exact_bits.items():
            if word in text:
                expected |= bit
        assert engine._active(text) == expected, text


def test_ids_joined_match_the_same_whichever_alternative_comes_first():
    ids = [str(uuid.UUID(int=i * 7919)) for i in range(50)] + ["0123456789abcdef0123", ""]
    cases = ["\n".join(ids), "\n".join(ids[:3] + ["not-an-id"] + ids[3:]), "\n".join(ids[:-2]), "\n\n",
             "0123456789abcdef", "0123456789abcde", str(uuid.uuid4())[:-1], "\n".join(["", str(uuid.uuid4())])]
    for joined in cases:
        assert (_ALL_UUIDS.fullmatch(joined) is None) == (_ALL_OPAQUE.fullmatch(joined) is None), joined


def _row(**values) -> tuple:
    base = dict.fromkeys(REQUEST_COLUMNS, "")
    base.update(values)
    return tuple(base[c] for c in REQUEST_COLUMNS)


@pytest.mark.parametrize("name, rows", [
    ("first id is no id", [_row(correlation_id="Jane Doe", error="MRN 004417829")]
     + [_row(correlation_id=str(uuid.UUID(int=i))) for i in range(1, 20)]),
    ("every id empty", [_row(correlation_id="") for _ in range(20)] + [_row(error="paged about Jane Doe")]),
    ("UUIDs, one not", [_row(correlation_id=str(uuid.UUID(int=i))) for i in range(20)]
     + [_row(correlation_id="patient-004417829")]),
    ("hex ids first", [_row(response_hash="%016x" % (i * 104729)) for i in range(1, 20)]
     + [_row(response_hash="Jane Doe 1962-03-14")]),
    ("two columns change in other rows", [_row(error="MRN 004417829")] + [_row() for _ in range(10)]
     + [_row(gateway="jane.doe", error="phone 617-555-0142")] + [_row(gateway="edge-1", error="ok")] * 5
     + [_row(error="MRN 004417829")]),
    ("nothing changes", [_row(correlation_id=str(uuid.UUID(int=i)), gateway="edge-1") for i in range(20)]),
])
def test_a_batch_is_redacted_as_its_rows_one_by_one(name, rows):
    policy = default_policy()
    batch_stats, row_stats = RedactionStats(), RedactionStats()
    batch = redact_request_rows(policy, rows, batch_stats)
    one_by_one = [redact_request_rows(policy, [row], row_stats)[0] for row in rows]
    assert batch == one_by_one, name
    assert batch_stats.snapshot() == row_stats.snapshot(), name
    unchanged = [a is b for a, b in zip(batch, rows)]
    assert unchanged == [a == b for a, b in zip(batch, rows)], "a row without a change is the same object"


def test_a_column_of_uniform_ids_is_told_apart_as_the_id_pattern_does():
    import random

    from hub.redaction.apply import _uniform_ids

    rng = random.Random(6)
    uuids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(30)]
    hexes = ["%016x" % rng.getrandbits(64) for _ in range(30)]
    assert _uniform_ids("\n".join(uuids), 30, uuids[0]) and _uniform_ids("\n".join(hexes), 30, hexes[0])
    spoilers = ["g" * 16, "0123456789abcdeF", "0123456789abcde-", "0123456789abcd\uff45f", "0123456789abcdef0",
                "0123456789abcde", "", "012345678-abcdef", uuids[0].replace("-", "x"), uuids[0][:-1] + "g",
                uuids[0][:8] + uuids[0][9:] + "-", uuids[0].upper(), "0" * 36]
    for column in (uuids, hexes):
        for spoiler in spoilers:
            for at in (0, 7, 29):
                values = list(column)
                values[at] = spoiler
                joined = "\n".join(values)
                if joined.count("\n") != len(values) - 1:
                    continue
                expected = all(_ALL_OPAQUE.fullmatch(v) is not None for v in values)
                # never says yes where the id pattern says no (a "no" leaves it to the pattern)
                assert not _uniform_ids(joined, len(values), values[0]) or expected, (spoiler, at)
                if spoiler in ("0123456789abcdeF", uuids[0].upper()) and column is (hexes if len(spoiler) == 16 else uuids):
                    assert _uniform_ids(joined, len(values), values[0]), spoiler
