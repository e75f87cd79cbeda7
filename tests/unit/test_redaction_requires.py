"""Each detector's ``requires`` (the words or patterns the redactor looks for before it tries the
detector, a speed-up) must hold wherever the detector's pattern matches: a requirement narrower than
its pattern lets patient data through unmasked. Checked on the seeded corpus's sentences and the
redaction tests' own texts, each also with its blanks changed (two spaces, a tab, a newline), since
the patterns allow any blank where the texts have one space."""

from __future__ import annotations

import ast
import random
import re

from hub.redaction.corpus import KINDS, sentence, values
from hub.redaction.detectors import DETECTORS
from hub.settings import REPO_ROOT

BLANKS = ("  ", "\t", "\n", " \t")


def texts() -> list[str]:
    rng = random.Random(7)
    found = {sentence(kind, values(kind, rng), rng) for kind in KINDS for _ in range(150)}
    for path in sorted((REPO_ROOT / "tests" / "unit").glob("test_redaction*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and 5 < len(node.value) < 400:
                found.add(node.value)
    return [variant for text in sorted(found) for variant in (text, *(text.replace(" ", b) for b in BLANKS))]


def test_every_detector_requirement_holds_wherever_its_pattern_matches():
    corpus = texts()
    narrow: dict[str, list[str]] = {}
    matched = 0
    for name, pattern, ignore_case, requires in DETECTORS:
        if not requires:
            continue
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        needs = [re.compile(r) for r in requires]
        for text in corpus:
            if regex.search(text):
                matched += 1
                if not any(r.search(text) for r in needs):
                    narrow.setdefault(name, []).append(text)
    assert matched > 1000, matched  # the corpus exercises the detectors
    assert not narrow, {name: found[:3] for name, found in narrow.items()}
