"""Recall of the hub's detectors side by side with Presidio's pattern recognizers, on the same corpus.

The corpus (``hub.redaction.corpus``): every identifier of N synthetic patients (name, MRN, SSN,
date of birth, phone, e-mail, street address, insurance id, member id, IP address; many formats
each), in two settings:

- ``sentence``: inside one of its realistic sentences (a log line, an error, a note, JSON text);
- ``bare``: alone between neutral words (``retry after <value> failed``), no cue word;
- and, as ``name*``, names whose given name is not in ``GIVEN_NAMES`` (the detectors' list), in both
  settings: the generator draws the other names from that list, so ``name`` alone flatters the hub;
- ``name+``: a given name of the census list (``hub.redaction.given_names``) and a made-up surname, in
  both settings.

False positives: ``INFRA_TEXTS``, operations text with capitalised pairs of words and component
names (``Primary Database``, ``Canary Deploy``, ``grace-scheduler``), go through both; the count of
texts each one changes is printed.

An identifier counts as found when no needle of it (the value; for a name the surname alone too;
for numbers the longest digit run) is left in the text once every detected span is masked: for the
hub, the text through ``Redactor``'s free-text path; for Presidio, the text with every span any of
its pattern recognizers returns (any score) replaced. Presidio runs its predefined recognizers that
need no NLP model (regular expressions, checksums, the ``phonenumbers`` matcher), called directly,
so without context words (those need spaCy's lemmas); PERSON and LOCATION need a spaCy model, which
is not loaded, so names and addresses are out of its reach here.

    pip install presidio-analyzer   # into a separate environment or path, for the measurement only
    .venv/bin/python -m bench.redaction_recall [--patients N]

Presidio is not a dependency of the hub; without it the script prints the hub's recall alone.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict

from hub.redaction import default_policy
from hub.redaction.corpus import KINDS, needles, patients, sentence
from hub.redaction.given_names import CENSUS_GIVEN_NAMES

#: Presidio's predefined recognizers that work without an NLP model, and their entities.
PRESIDIO_RECOGNIZERS = (
    "EmailRecognizer", "UsSsnRecognizer", "PhoneRecognizer", "IpRecognizer", "DateRecognizer",
    "UsHealthInsuranceMemberIdRecognizer", "UsMbiRecognizer", "UsLicenseRecognizer", "UsBankRecognizer",
    "UsPassportRecognizer", "UsItinRecognizer", "UsNpiRecognizer", "MedicalLicenseRecognizer",
    "UsClaimNumberRecognizer", "UsPrescriptionNumberRecognizer", "UsReferralNumberRecognizer",
    "UsPriorAuthorizationNumberRecognizer", "CreditCardRecognizer", "UrlRecognizer",
)


def corpus(n: int, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """``(setting, kind, value, text)`` for every identifier of ``n`` patients in both settings."""
    rng = random.Random(seed)
    out = []
    for p in patients(n, seed):
        for kind in KINDS:
            value = p.value(kind)
            out.append(("sentence", kind, value, sentence(kind, value, rng, p)))
            out.append(("bare", kind, value, f"retry after {value} failed"))
        # a given name that is not in the detectors' list (made of syllables like the surnames)
        other = f"{_syllables(rng)} {p.last}"
        out.append(("sentence", "name*", other, sentence("name", other, rng, p)))
        out.append(("bare", "name*", other, f"retry after {other} failed"))
        census = f"{rng.choice(CENSUS_GIVEN_NAMES).capitalize()} {p.last}"
        out.append(("sentence", "name+", census, sentence("name", census, rng, p)))
        out.append(("bare", "name+", census, f"retry after {census} failed"))
    return out


#: Operations text that must come out unchanged (no patient data in it).
INFRA_TEXTS = (
    "Primary Database failover started", "Canary Deploy promoted to 50%", "Redis Cluster lost a node",
    "Blue Green switch done", "North Europe region degraded", "grace-scheduler restarted",
    "Grace Scheduler restarted", "rose-db replica lagging", "Kafka Connect restarted", "Patient API sheds load",
    "Grafana Dashboard updated", "Failover seen by the on-call", "jack-gateway drained", "April Batch finished",
    "victoria-gw returned 502", "Mark Sweep GC paused 40 ms", "Central US zone back", "Dr-Strange-gw rotated",
    "East Asia replica promoted", "Frontend Proxy reloaded", "Ward Service timed out",
)


def _syllables(rng: random.Random) -> str:
    from hub.redaction.corpus import _SYLLABLES

    return "".join(rng.choice(_SYLLABLES) for _ in range(2)).capitalize()


def presidio():
    """A function text -> spans from Presidio's model-free recognizers, or None without Presidio."""
    try:
        import presidio_analyzer.predefined_recognizers as pr
    except ImportError:
        return None
    recognizers = []
    for name in PRESIDIO_RECOGNIZERS:
        cls = getattr(pr, name, None)
        if cls is None:
            continue
        try:
            r = cls()
        except Exception:  # noqa: BLE001 - a recognizer that needs something not installed
            continue
        recognizers.append(r)

    def spans(text: str) -> list[tuple[int, int]]:
        out = []
        for r in recognizers:
            for res in r.analyze(text, r.supported_entities, None) or ():
                out.append((res.start, res.end))
        return out

    return spans, [type(r).__name__ for r in recognizers]


def masked(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        for i in range(a, b):
            chars[i] = "\x00"
    return "".join(chars)


def found(kind: str, value: str, out: str) -> bool:
    return not any(n.lower() in out.lower() for n in needles(kind, value, value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=150)
    args = parser.parse_args()
    engine = default_policy().engine()
    items = corpus(args.patients)
    p = presidio()
    hub_hits: dict = defaultdict(int)
    pres_hits: dict = defaultdict(int)
    totals: dict = defaultdict(int)
    for setting, kind, value, text in items:
        totals[(setting, kind)] += 1
        if found(kind, value, engine.text(text, [])):
            hub_hits[(setting, kind)] += 1
        if p is not None and found(kind, value, masked(text, p[0](text))):
            pres_hits[(setting, kind)] += 1
    print(f"{len(items)} identifiers ({args.patients} patients x {len(KINDS) + 2} kinds x 2 settings; "
          f"name*: a given name outside the detectors' lists; name+: a census given name)")
    if p is None:
        print("presidio-analyzer is not importable: only the hub's recall is shown")
    else:
        print("presidio recognizers:", ", ".join(p[1]))
    print(f"{'setting':9} {'kind':10} {'n':>4} {'hub':>7} {'presidio':>9}")
    for setting in ("sentence", "bare"):
        for kind in KINDS + ("name*", "name+"):
            n = totals[(setting, kind)]
            pres = f"{pres_hits[(setting, kind)] / n:9.1%}" if p is not None else "        -"
            print(f"{setting:9} {kind:10} {n:4d} {hub_hits[(setting, kind)] / n:7.1%} {pres}")
        every = KINDS + ("name*", "name+")
        n = sum(totals[(setting, k)] for k in every)
        pres = (f"{sum(pres_hits[(setting, k)] for k in every) / n:9.1%}" if p is not None else "        -")
        print(f"{setting:9} {'ALL':10} {n:4d} {sum(hub_hits[(setting, k)] for k in every) / n:7.1%} {pres}")
    n = len(items)
    print(f"overall recall: hub {sum(hub_hits.values()) / n:.1%}"
          + (f", presidio pattern recognizers {sum(pres_hits.values()) / n:.1%}" if p is not None else ""))
    changed = [t for t in INFRA_TEXTS if engine.text(t, []) != t]
    line = f"operations texts changed (false positives): hub {len(changed)} of {len(INFRA_TEXTS)}"
    if p is not None:
        line += f", presidio {sum(1 for t in INFRA_TEXTS if p[0](t))} of {len(INFRA_TEXTS)}"
    print(line)
    for t in changed:
        print(f"  hub changed: {t!r} -> {engine.text(t, [])!r}")


if __name__ == "__main__":
    main()
