"""Case folding written out as character classes, and the memory of masked texts, change nothing."""

from __future__ import annotations

import re
import string
import sys

from hub.redaction import RedactionStats, default_policy, redact_text
from hub.redaction.detectors import FOLDED, GIVEN_NAMES, OPS_WORDS, trie_regex

ALL_CODE_POINTS = "".join(map(chr, range(sys.maxunicode + 1)))


def test_each_folded_class_matches_what_ignore_case_matches_over_every_code_point():
    assert sorted(FOLDED) == list(string.ascii_lowercase)
    for letter, cls in FOLDED.items():
        assert re.findall(cls, ALL_CODE_POINTS) == re.findall("(?i)" + letter, ALL_CODE_POINTS), letter


def test_a_folded_trie_finds_what_the_case_insensitive_trie_finds():
    texts = [
        "Jane Doe", "JANE DOE", "jane.doe", "SARAH Quill", "\u017farah Quill", "Ni\u212ai Wex", "N\u0130CK", "nick",
        "Prımary Database", "the KAFKA broker", "Kristin Stone and Isaac Moor", "jaNE-doe, \u212aevin",
    ] + [w.upper() for w in GIVEN_NAMES[:50]] + [w.title() + " Okafor" for w in GIVEN_NAMES[::7]] + list(OPS_WORDS)
    for words in (GIVEN_NAMES, OPS_WORDS):
        folded = re.compile(rf"\b(?:{trie_regex(words, fold=True)})\b")
        ignore_case = re.compile(rf"\b(?i:{trie_regex(words)})\b")
        for text in texts:
            assert [m.span() for m in folded.finditer(text)] == [m.span() for m in ignore_case.finditer(text)], text


def test_a_repeated_text_is_masked_the_same_and_counted_the_same_and_not_kept():
    policy = default_policy()
    text = "paged about Jane Doe, MRN 004417829, phone 617-555-0142"
    first, second = RedactionStats(), RedactionStats()
    out = redact_text(policy, text, first)
    assert redact_text(policy, text, second) == out
    assert "004417829" not in out and first.snapshot() == second.snapshot() and first.total() >= 3
    engine = policy.engine()
    assert engine._masked_text
    assert all(isinstance(k, bytes) and text not in v[0] for k, v in engine._masked_text.items())
