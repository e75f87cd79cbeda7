"""Applying the redaction policy to decoded rows, at ingest, before they reach the store.

The hot path. What keeps it cheap:

- each pattern compiled once and searched on its own (faster than one alternation of them all in
  Python's engine), only those whose cheap ``requires`` test the text passes; the masking pass only
  runs where something was found;
- a bounded set of values already known to be clean (attribute values repeat: methods, status
  codes, routes, host names), so a repeated value costs one set lookup; only clean values are
  remembered, never a value that contained something to redact; of such a text (a log line or
  error that repeats) only a keyed digest is remembered, with its masked form;
- the decision per attribute key (keep / mask as text / treat as URL / drop, and why) is cached;
- attribute maps shared by many rows (resource and scope attributes) are redacted once per batch;
- a row, map or list in which nothing changed is returned as the same object (no copy).

Every function takes the rows the decoders make (``hub.records.decode`` / ``hub.otel.decode``),
returns rows of the same shape, and counts what it removed in a ``RedactionStats``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from functools import reduce
from itertools import compress
from operator import itemgetter, or_
from re import _constants as _sre, _parser as _sre_parse  # type: ignore[attr-defined]  # the regex parser
from typing import Any, Callable, Final, Sequence
from urllib.parse import unquote

import orjson

from hub.abort.records import ALERT_COLUMNS
from hub.experiments.projection import PROJECTION_COLUMNS
from hub.otel.decode import LOG_COLUMNS, TRACE_COLUMNS
from hub.shadow.records import PAIR_COLUMNS
from hub.records.request_leg import REQUEST_COLUMNS
from hub.redaction.columns import DECLARATIONS, SHAPES
from hub.redaction.detectors import PHI_KEY, trie_regex
from hub.redaction.policy import (
    ALWAYS_KEPT,
    COLLECTION_ROUTE_WORDS,
    MARKER,
    PATH_PLACEHOLDER,
    RedactionPolicy,
    RedactionStats,
    default_policy,
    glob_regex,
)

__all__ = [
    "Redactor",
    "redact_text",
    "redact_url",
    "redact_attributes",
    "redact_request_rows",
    "redact_span_rows",
    "redact_log_rows",
    "redact_metric_rows",
    "redact_rows",
    "redact_dead_letter_value",
]

# ---- what to do with each column (declared in hub.redaction.columns) ------------------------
_TEXT, _TEXTLIST, _URL, _MAP, _SHARED_MAP, _MAPLIST, _STRUCT, _STRUCTLIST, _JSON, _REASON = range(10)
_KIND_CODES: Final[dict[str, int]] = {
    "text": _TEXT, "texts": _TEXTLIST, "url": _URL, "attributes": _MAP, "shared_attributes": _SHARED_MAP,
    "attributes_list": _MAPLIST, "struct": _STRUCT, "structs": _STRUCTLIST, "json": _JSON, "reason": _REASON,
}
_ESCAPE: Final = re.compile(r"(?<!\\)\\[nrt]")
#: Detectors whose name yields to a more specific one's when their hits overlap.
_GENERIC: Final = frozenset({"phi_key", "phi_attribute", "street_name", "record_cue", "name_known", "name_known_last", "name_title", "name_clinical", "name_context", "name_given", "dob_any", "phone_cue", "long_id"})
#: What a structural value that does not fit its shape becomes.
STRUCT_MARKER: Final = "[REDACTED:{shape}]"
_KEY_SHAPE: Final = re.compile(r"[A-Za-z0-9_.:/@\[\]{}()$#*+-]{1,128}")
_SPACED: Final = re.compile(r"[._+:/@=-]+")
_OPAQUE_RX: Final = r"[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_OPAQUE: Final = re.compile(_OPAQUE_RX)
#: Values joined with newlines (none in a value), each a long hex id or a UUID.
_ALL_OPAQUE: Final = re.compile(rf"(?:(?:{_OPAQUE_RX})?\n)*(?:{_OPAQUE_RX})?")
_UUID_FIRST_RX: Final = "|".join(reversed(_OPAQUE_RX.split("|")))
#: The same, a UUID tried first: the same values match (the order of the alternatives only decides
#: which is tried first), in half the time over a column of UUIDs (a UUID is not first read as a
#: long hex id up to its first ``-``).
_ALL_UUIDS: Final = re.compile(rf"(?:(?:{_UUID_FIRST_RX})?\n)*(?:{_UUID_FIRST_RX})?")
#: A run of 6 or more digits in an id (an MRN, phone, SSN or member number), except a date of this
#: century written ``20YYMMDD`` (``exp-20261207``).
_OPAQUE_SHAPES: Final = frozenset({"hex", "uuid", "id", "endpoint", "experiment", "alert"})
#: Shapes of ids whose misfits keep a keyed digest (distinct ids stay distinct).
_DIGEST_SHAPES: Final = frozenset({"id", "endpoint", "experiment", "alert"})
#: The random suffix of an experiment id as the hub makes them (``derive_id``: ``<slug>-3f9a1c``;
#: ``exp-c2964655``): a lower-case slug, then ``-`` and 6 to 8 hex digits with a letter among them,
#: at the end of the value (``experiment``) or before the first ``/`` (``alert``:
#: ``<experiment>/<rule>/<second>``). Its digit run is no record number.
_EXPERIMENT_SUFFIX: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,54}-((?=[0-9]{0,7}[a-f])[0-9a-f]{6,8})(?=/|$)")
_BARE_NUMBER: Final = re.compile(r"(?<!\d)(?!20[2-9]\d[01]\d[0-3]\d(?!\d))\d{7,}")
#: Words of infrastructure names: a structural value with one of them as a token (``grace-scheduler``,
#: ``rose-db``, ``Dr-Strange-gw``) names a component, so the name detectors do not read a listed given
#: name in it as a patient's (``jane.doe`` and ``jane-brambleworth`` still are).
INFRA_WORDS: Final = frozenset("""
gw gtw gateway gateways db dbs database api apis svc svcs service services srv server servers scheduler sched
batch batches proxy proxies node nodes edge shard shards cache caches queue queues worker workers job jobs cron
lb ingress egress router backend backends frontend web app apps pod pods cluster replica replicas host hosts
mesh sidecar broker brokers kafka topic topics stream streams consumer producer etl pipeline sync sweep gc
store storage bucket blob vault auth sso ldap dns cdn vm rpc grpc http https tcp udp ws mq bus hub agent daemon
collector exporter metrics logs trace traces tracing span spans corr req request requests order orders txn tx
msg event events run runs build deploy release instance zone region pool primary shadow canary blue green prod
staging stage dev test qa internal external int ext svc1 svc2 ctl controller operator manager mgr monitor
probe health healthcheck lambda func function fn k8s ci cd registry repo index search redis postgres pg mysql
mongo es elastic rabbit nats ha lock leader follower portal records record chart charts intake admin ui data
lookup flow failover chaos gameday exp experiment drill
""".split())
_TOKEN: Final = re.compile(r"[A-Za-z0-9]+")
#: A person's name (one to four capitalised words) or a handle without spaces (``root@vm``, ``ana.k``).
_PERSON: Final = re.compile(r"[A-Z][A-Za-z'.-]*(?: [A-Z][A-Za-z'.-]*){0,3}|[A-Za-z0-9@][A-Za-z0-9._@:/+-]{0,63}")
#: Name detectors, which a token of ``INFRA_WORDS`` in a structural value turns off for that value.
_NAME_DETECTORS: Final = frozenset({"name", "name_known", "name_known_last", "name_title", "name_clinical",
                                    "name_context", "name_given"})
#: Runs of digits in a structural value that are no patient's number: hex ids with letters in them
#: (``corr-123456789abc``), epoch timestamps in s/ms/us/ns (``1733590000123``), a number right after
#: an infrastructure word (``db-shard-12345678``) or after a ``20YYMMDD`` date (``order-20241207-0001234``),
#: and versions (``payments-v2.3.1.0``).
_HARMLESS_DIGITS: Final = re.compile(
    r"(?<![0-9A-Za-z])(?=(?:[0-9a-fA-F]*[a-fA-F]){2})(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}(?![0-9A-Za-z])"
    r"|(?<![0-9A-Za-z])(?:1[5-9]\d{8}|1[5-9]\d{11}|1[5-9]\d{14}|1[5-9]\d{17})(?![0-9A-Za-z])"
    r"|(?<![A-Za-z])[vV]\d{1,6}(?:\.\d{1,6}){1,3}(?![\d.])"
    r"|(?<=[0-9A-Za-z])(?P<after>[-_.:/#])\d+(?![0-9A-Za-z]|\.\d)")
_LAST_TOKEN: Final = re.compile(r"[A-Za-z0-9]+$")
#: A lower-case snake_case key (``abort_grace``, ``planned_minutes``): a program's field name, in which
#: the name detectors do not read a listed given name as a person's.
_FIELD_NAME: Final = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
#: An epoch timestamp in s, ms, us or ns (2017 to 2033): the judge's alert ids end with one
#: (``<experiment>/<rule>/<second>``), after a separator.
_EPOCH: Final = re.compile(r"1[5-9]\d{8}|1[5-9]\d{11}|1[5-9]\d{14}|1[5-9]\d{17}")
#: A PHI collection word joined to a word in a structural value (``patient-dundunworth``): a person,
#: unless the value names a component (an infrastructure word in it: ``patient-api-db-failover``).
_PHI_JOINED: Final = re.compile(r"(?<![A-Za-z0-9])(?:patients?|pt|members?|persons?|people|subscribers?)"
                                r"[-_.:/+]+([A-Za-z][A-Za-z'-]{2,})", re.I)
#: A route parameter in a path (``{id}``, ``{patient_id}``, ``:id``, ``<id>``, ``*``).
_ROUTE_PARAM: Final = re.compile(r"\{[^/{}]*\}|:[A-Za-z_][A-Za-z0-9_]*|<[^/<>]*>|\*{1,2}|\$\{[^/]*\}")
#: An ISO date of birth in a structural value (``db-1995-02-15``, ``$.dob.1986-01-03``); dates of
#: this century's later years (the hub's own: ``exp-2026-12-07``) are not.
_STRUCT_DATE: Final = re.compile(
    r"(?<!\d)(?:19\d\d|20[01]\d)([-_./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])(?!\d)")
#: A month-day-year or day-month-year date with a 19xx/20xx year in a structural value, ``._-`` read
#: as separators (``edge-gw-03-14-1962``, ``DOB_14.03.1962``); read before harmless digit runs are
#: taken out, since a number after an infrastructure word (``gw-03``) is one of those.
_STRUCT_DMY: Final = re.compile(
    r"(?<![0-9])(?:0?[1-9]|[12]\d|3[01])[-_.](?:0?[1-9]|[12]\d|3[01])[-_.](?:19|20)\d\d(?!\d)")
#: A street address in a structural value: a number, capitalised words and a street type joined by
#: ``._-`` (``edge-gw-1600-Larkspur-Lane-Apt-3``).
_STRUCT_ADDRESS: Final = re.compile(
    r"(?<![0-9A-Za-z])\d{1,6}[A-Za-z]?[-_.](?:[A-Z][A-Za-z'.]*[-_.]){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|"
    r"Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Row|Close|Crescent|Alley|Plaza)(?![a-z])")
#: A metric name's segment as an instrument name has them, and one with a tag list after its name.
_METRIC_SEGMENT: Final = re.compile(r"[A-Za-z][A-Za-z0-9_/-]{0,254}")
_TAGGED_SEGMENT: Final = re.compile(r"([A-Za-z][A-Za-z0-9_/-]*)(\{[^{}]*\}|\[[^\[\]]*\])")
_EMAIL_IN_NAME: Final = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)?@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*?\.[A-Za-z]{2,}(?=\.|$)")
#: Words a metric name measures with (``patients.<name>.count``): never part of a person's name.
_METRIC_WORDS: Final = frozenset("""
count counts total sum max min mean avg median rate rates active idle sent received calls requests used free size
errors failures latency duration bytes time seconds ms value gauge histogram timer meter counter p50 p75 p90 p95 p99
m1_rate m5_rate m15_rate mean_rate stddev hits misses open closed pending waiting ok fail failed success
""".split())
_DATE_SHAPES: Final = frozenset({"id", "endpoint", "actor", "word", "field", "phase", "metric_name", "topic",
                                 "experiment", "alert"})
#: A server address with a port: an IPv4 address or a bracketed IPv6 address, then ``:port``.
_IP_PORT: Final = re.compile(r"(?:(?:\d{1,3}\.){3}\d{1,3}|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}")
_DATE8: Final = re.compile(r"20[2-9]\d[01]\d[0-3]\d")


_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"


def _uniform_ids(joined: str, n: int, first: str) -> bool:
    """Whether ``joined``, ``n`` values joined with ``n - 1`` newlines (none in a value), holds only long
    hex ids as long as ``first`` or only UUIDs: each a fit of ``_OPAQUE``. Checked in C by position
    (every newline, every ``-`` of a UUID) and by one deletion of the hex digits, which must leave the
    newlines and dashes alone; ``False`` leaves the decision to ``_ALL_OPAQUE``."""
    size = len(first)
    if size < 16 or len(joined) != n * (size + 1) - 1:
        return False
    try:
        data = joined.encode("ascii")
    except UnicodeEncodeError:
        return False
    step = size + 1
    if data[size::step] != b"\n" * (n - 1):
        return False  # a value of another length
    left = n - 1
    if size == 36 and first[8] == "-":  # UUIDs: 8-4-4-4-12
        for k in (8, 13, 18, 23):
            if data[k::step] != b"-" * n:
                return False
        left += 4 * n
    return len(data.translate(None, _HEX_DIGITS)) == left


def _struct_probe(value: str) -> tuple[str, bool]:
    """``(probe, infra)``: ``value`` with its harmless digit runs (``_HARMLESS_DIGITS``) replaced by
    ``x``, and whether one of its tokens is an infrastructure word (``INFRA_WORDS``)."""
    infra = any(t.lower() in INFRA_WORDS for t in _TOKEN.findall(value))

    def harmless(m: re.Match) -> str:
        sep = m.group("after")
        if sep is None:
            return "x"
        prev = _LAST_TOKEN.search(value, 0, m.start())
        word = prev.group(0) if prev is not None else ""
        if word.lower() in INFRA_WORDS or _DATE8.fullmatch(word) or _EPOCH.fullmatch(m.group(0), 1):
            return sep + "x"
        return m.group(0)

    return _HARMLESS_DIGITS.sub(harmless, value), infra


_URL_SHAPE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*|/[^\s]*|[^\s]*")
_QUOTED: Final = re.compile(r"(['\"])(?:(?!\1).){1,500}?\1")
#: Quoted values of a dead letter's reason that are kept: codec names (``'utf-8' codec can't decode``)
#: and type names of four or more dotted parts (``opentelemetry.proto.trace.v1.TracesData``).
_NOT_PERSONAL: Final = re.compile(
    r"(?i:utf-?(?:8|16|32)(?:-?[lb]e)?(?:-sig)?|ascii|us-ascii|latin-?1|iso-?8859-?\d{1,2}|cp\d{3,4}|charmap)"
    r"|(?:[A-Za-z_][A-Za-z0-9_]*\.){3,}[A-Za-z_][A-Za-z0-9_]*")
#: Keys whose whole value is replaced in a JSON document (``name`` alone is left to the detectors:
#: experiment definitions and fault parameters use it for their own names).
_PHI_KEY: Final = re.compile(PHI_KEY.rsplit("|name|", 1)[0], re.I)
#: Keys whose whole value is replaced in a JSON document that is free text (a JSON body in a log
#: message, a note): ``name`` too, as the ``phi_key`` detector reads it in text.
_PHI_KEY_TEXT: Final = re.compile(PHI_KEY, re.I)
#: A ``phi_key`` hit that is a JSON string or array of strings: only what is inside the quotes is
#: replaced, so that JSON text stays JSON (``"mrn": "[REDACTED:phi_key]"``).
_QUOTED_VALUE: Final = re.compile(r'(\[?\s*\\*")(.+?)(\\*"\s*\]?)', re.S)

# key actions
_KEEP, _MASK, _AS_URL, _DROP = 0, 1, 2, 3

_MASKS_MAX: Final = 48        # alternations of pattern subsets compiled, at most
_CLEAN_MAX: Final = 100_000   # values remembered as clean, per kind (text / URL)
_MASKED_MAX: Final = 10_000   # texts remembered with what they were masked to (a repeated log line, error)
_MASKED_LEN: Final = 1_024    # ... when at most this long
_KEYS_MAX: Final = 20_000     # attribute keys whose decision is remembered, per allowlist
_SHORT: Final = 10            # texts up to this long skip the "requires" tests
_DEPTH_MAX: Final = 64       # JSON nesting walked, at most (deeper content is replaced)
_ROUNDS: Final = 4            # most masking rounds per text (each round after the first is rare)

_QUERY_IN_TEXT: Final = re.compile(r"(?<=\S)\?[^\s\"'<>=?]*=[^\s\"'<>]*")
_PATH_IN_TEXT: Final = re.compile(r"/[^\s?#\"'<>]+")
_AUTHORITY: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#]*)")
_BACKREF: Final = re.compile(r"\\[1-9]|\(\?P=")
_PLAIN: Final = re.compile(r"(?:[^\\.^$*+?{}\[\]|()]|\\[^A-Za-z0-9])+")

# kinds of "requires" checks
_LITERAL, _LOWER, _REGEX, _LITERALS = 0, 1, 2, 3


def _checks_of(bit: int, requires: tuple[str, ...], ignore_case: bool) -> list[tuple[int, int, Any, Any]]:
    """How to test one pattern's ``requires``: as few, as cheap tests as possible.

    Plain literals are returned as literals (the engine looks for those of every pattern in one
    pass, ``_literal_scan``); case-insensitive ones are looked for in the lower-cased text, but
    only in ASCII text: Unicode case folding (the Kelvin sign matches ``k``, the long s matches
    ``s``) is left to the regex, so that the shortcut never disagrees with it. Anything else is
    one regex search.
    """
    exact: list[str] = []
    lower: list[str] = []
    checks: list[tuple[int, int, Any, Any]] = []
    for requirement in requires:
        body, folded = requirement, ignore_case
        if body.startswith("(?i)"):
            body, folded = body[4:], True
        rx = re.compile(body, re.I if folded else 0)
        if _PLAIN.fullmatch(body):
            literal = re.sub(r"\\(.)", r"\1", body)
            if not folded:
                exact.append(literal)
                continue
            if literal.isascii():
                lower.append(literal.lower())
                continue
        checks.append((bit, _REGEX, "", rx))
    if len(exact) == 1:
        checks.insert(0, (bit, _LITERAL, exact[0], None))
    elif exact:
        checks.insert(0, (bit, _LITERALS, tuple(exact), None))
    if lower:
        # the literals, and their alternation for a text that is not ASCII
        checks.insert(0, (bit, _LOWER, tuple(lower), re.compile("|".join(map(re.escape, lower)), re.I)))
    return checks


#: Any decimal digit (``\\d`` of a ``str`` pattern: Unicode's too).
_DIGIT: Final = re.compile(r"\d")



def _needs_digit(pattern: str, flags: int = 0) -> bool:
    """Whether every text ``pattern`` matches holds a decimal digit: a digit (``\\d``, ``[0-9]``, ``7``) is
    one of its required parts (not inside an optional part, in every alternative of a branch). ``False``
    when unsure, which is always correct: it only lets ``_Engine._active`` skip a search in text
    without any digit."""
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except (re.error, RecursionError):
        return False
    return _sequence_needs_digit(list(parsed))


def _sequence_needs_digit(items: list) -> bool:
    return any(_item_needs_digit(op, av) for op, av in items)


def _item_needs_digit(op: Any, av: Any) -> bool:
    if op is _sre.LITERAL:
        return 0x30 <= av <= 0x39
    if op is _sre.IN:  # a class of which every member is a digit
        if not av:
            return False
        for kind, value in av:
            if kind is _sre.LITERAL and 0x30 <= value <= 0x39:
                continue
            if kind is _sre.RANGE and 0x30 <= value[0] and value[1] <= 0x39:
                continue
            if kind is _sre.CATEGORY and value is _sre.CATEGORY_DIGIT:
                continue
            return False  # anything else (a negation, a letter, another category)
        return True
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) or op is getattr(_sre, "POSSESSIVE_REPEAT", None):
        low, _high, body = av
        return low >= 1 and _sequence_needs_digit(list(body))
    if op is _sre.SUBPATTERN:
        return _sequence_needs_digit(list(av[-1]))
    if op is getattr(_sre, "ATOMIC_GROUP", None):
        return _sequence_needs_digit(list(av))
    if op is _sre.BRANCH:
        return all(_sequence_needs_digit(list(b)) for b in av[1])
    return False  # lookarounds, anchors, backreferences ... require nothing of the text's characters


def _literal_scan(bits: dict[str, int]) -> tuple[re.Pattern | None, dict[str, int]]:
    """A regex whose ``findall`` lists, at every position of a text, the longest of the literals
    ``bits`` (literal -> bit mask) that starts there, and for each literal the bits of it and of
    every literal that is a prefix of it (those start at the same position)."""
    if not bits:
        return None, {}
    scan = re.compile("(?=(" + trie_regex(bits) + "))")
    return scan, {w: reduce(or_, (b for v, b in bits.items() if w.startswith(v))) for w in bits}


class _Engine:
    """The compiled form of a ``RedactionPolicy``; built once (``policy.engine()``)."""

    def __init__(self, policy: RedactionPolicy, key: bytes | None = None):
        self.policy = policy
        self.drop_query = policy.drop_query_strings
        self.mask_segments = policy.mask_path_segments
        pats = policy.mask_patterns
        self._patterns = pats
        self._branches: list[str] = []
        self._sequential = any(_BACKREF.search(p.pattern) for p in pats)
        for i, p in enumerate(pats):
            body = p.pattern
            if "(?P<value>" in body:  # group names must be unique inside one alternation
                body = body.replace("(?P<value>", f"(?P<v{i}>")
            if p.ignore_case:
                body = f"(?i:{body})"
            self._branches.append(f"(?P<m{i}>{body})")
        # (bit, compiled "requires" or None) per pattern; a text activates the patterns whose
        # requirement it meets, and is searched with the alternation of just those
        self._always = 0
        self._checks: list[tuple[int, int, Any, Any]] = []
        for i, p in enumerate(pats):
            if not p.requires:
                self._always |= 1 << i
            self._checks.extend(_checks_of(1 << i, p.requires, p.ignore_case))
        # the literals of every pattern's "requires" are looked for in one pass over the text (one for
        # the lower-cased ones, one for the exact ones): a trie of them in a lookahead, tried at every
        # position, finds the longest literal starting there, and with it every shorter one that
        # starts there (its prefixes): each maps to the patterns of all of them
        lower: dict[str, int] = {}
        exact: dict[str, int] = {}
        self._lower_regex: list[tuple[int, re.Pattern]] = []  # the lower-cased ones, for non-ASCII text
        self._regex_checks: list[tuple[int, re.Pattern]] = []
        # the regex requirements that only a text with a digit can meet: searched only in such a text
        # (after masking, most text with patient data has none left)
        self._digit_checks: list[tuple[int, re.Pattern]] = []
        for bit, kind, literal, rx in self._checks:
            if kind == _LOWER:
                for word in literal:
                    lower[word] = lower.get(word, 0) | bit
                self._lower_regex.append((bit, rx))
            elif kind == _LITERAL or kind == _LITERALS:
                for word in ((literal,) if kind == _LITERAL else literal):
                    exact[word] = exact.get(word, 0) | bit
            elif _needs_digit(rx.pattern, rx.flags):
                self._digit_checks.append((bit, rx))
            else:
                self._regex_checks.append((bit, rx))
        self._digit_bits = reduce(or_, (bit for bit, _ in self._digit_checks), 0)
        self._lower_scan, self._lower_bits = _literal_scan(lower)
        self._exact_scan, self._exact_bits = _literal_scan(exact)
        self._single = [re.compile(p.pattern, re.I if p.ignore_case else 0) for p in pats]
        self._keeps_cue = ["value" in rx.groupindex for rx in self._single]
        #: (bit, finditer, keeps its cue, name) of each pattern, in order: what the masking loop needs
        self._searches = [(1 << i, rx.finditer, keep, p.name)
                          for i, (rx, keep, p) in enumerate(zip(self._single, self._keeps_cue, pats))]
        self._names = [p.name for p in pats]
        self._order = list(range(len(pats)))
        self._by_mask: dict[int, Any] = {}
        self._all = (1 << len(pats)) - 1
        self._no_names = self._all & ~sum(1 << i for i, p in enumerate(pats) if p.name in _NAME_DETECTORS)
        if not self._sequential:
            try:
                self._regex_for(self._all)
            except re.error:  # e.g. two patterns use the same group name: apply them one by one
                self._sequential = True
                self._by_mask.clear()
        self._markers = {p.name: MARKER.format(name=p.name) for p in pats}
        self._rules = {p.name: "mask:" + p.name for p in pats}
        self._segment = (re.compile("|".join(f"(?:{s})" for s in policy.path_segment_patterns))
                         if policy.path_segment_patterns else None)
        self._collections = frozenset(w.lower() for w in policy.phi_collections)
        self._url_keys = frozenset(policy.url_attributes)
        # one glob, or an allowlist with the keys always kept, always makes a pattern
        self._drop = [(g, rx) for g in policy.drop_attributes
                      if (rx := glob_regex((g,), ignore_case=True)) is not None]
        self._keep = glob_regex(policy.keep_attributes)
        self._allow = {name: rx for name, keys in policy.allowlists.items()
                       if (rx := glob_regex(tuple(keys) + ALWAYS_KEPT)) is not None}
        self._key_actions: dict[Any, dict[str, tuple[int, str]]] = {}
        self._clean_text: set[str] = set()
        self._masked_text: dict[bytes, tuple[str, tuple[str, ...]]] = {}  # digest of a text -> (masked, hits)
        self._masked_key = os.urandom(16)
        self._clean_url: set[str] = set()
        self._clean_shape: dict[str, set[str]] = {name: set() for name in SHAPES}
        self._clean_segments: set[str] = set()
        self._clean_json: set[str] = set()  # documents the JSON walk leaves as they are
        self._salt = key if key else os.urandom(16)
        self._clean_url_shape: set[str] = set()
        self._plans: dict[tuple, list] = {}
        self._fast: dict[tuple, Any] = {}
        self._metric_parts = False  # a metric name's parts are being checked (``_metric_name_misfit``)
        self._shapes = {name: (re.compile(sh.pattern, re.I if sh.ignore_case else 0), sh.detect)
                        for name, sh in SHAPES.items()}

    # ---- free text ------------------------------------------------------------------------

    def _active(self, text: str) -> int:
        """Bit mask of the patterns whose ``requires`` the text meets (all bits for patterns without)."""
        mask = self._always
        if self._lower_scan is not None:
            if text.isascii():
                bits = self._lower_bits
                for word in self._lower_scan.findall(text.lower()):
                    mask |= bits[word]
            else:  # non-ASCII: the case-insensitive regex decides (Unicode case folding)
                for bit, rx in self._lower_regex:
                    if not mask & bit and rx.search(text) is not None:
                        mask |= bit
        if self._exact_scan is not None:
            bits = self._exact_bits
            for word in self._exact_scan.findall(text):
                mask |= bits[word]
        for bit, rx in self._regex_checks:
            if not mask & bit and rx.search(text) is not None:
                mask |= bit
        if self._digit_bits & ~mask and _DIGIT.search(text) is not None:
            for bit, rx in self._digit_checks:
                if not mask & bit and rx.search(text) is not None:
                    mask |= bit
        return mask

    def _regex_for(self, mask: int) -> re.Pattern | None:
        """The alternation of the patterns in ``mask`` (``None`` in sequential mode)."""
        if self._sequential:
            return None
        rx = self._by_mask.get(mask)
        if rx is None and len(self._by_mask) >= _MASKS_MAX:
            return self._by_mask[self._all]  # a superset is as correct, only slower to search
        if rx is None:
            rx = self._by_mask[mask] = re.compile(
                "|".join(self._branches[i] for i in range(len(self._patterns)) if mask >> i & 1))
        return rx

    def _any(self, text: str, mask: int) -> bool:
        """Whether a pattern of ``mask`` is found in ``text``: each pattern searched on its own, in
        order, until one is (measured: faster than one search of their alternation, which Python's
        engine tries branch by branch at every position without the literal-prefix shortcuts)."""
        single = self._single
        for i in self._order:
            if mask >> i & 1 and single[i].search(text) is not None:
                return True
        return False

    def _hit(self, text: str, allowed: int | None = None) -> bool:
        """Whether a pattern (of ``allowed``, a bit mask; all by default) is found in ``text``."""
        mask = self._all if len(text) <= _SHORT else self._active(text)
        if allowed is not None:
            mask &= allowed
        return bool(mask) and self._any(text, mask)

    def _mask_patterns(self, text: str, hits: list) -> str:
        """Every hit of every pattern masked. The clean case is one search per active pattern.

        When something is found, each pattern is searched on its own and the union of all hits is
        masked, so that a hit that overlaps another (an e-mail address running into ``MRN123...``)
        cannot shield the other. Masking repeats until nothing more is found (at most a few rounds),
        so that masked output is a fixed point.
        """
        for _ in range(_ROUNDS):
            # JSON escapes (\n, \t, \r) read as the blanks they stand for, position for position, so
            # that "\nJane Doe" inside JSON text is a word boundary like a real newline
            probe = _ESCAPE.sub("  ", text) if "\\" in text else text
            # short texts: one search with every pattern is cheaper than the "requires" tests
            mask = self._all if len(probe) <= _SHORT else self._active(probe)
            if not mask:
                return text
            # every active pattern searched once (a search to ask "anything?" first would search
            # the patterns before the first hit twice in a text with something to mask)
            spans = []
            for bit, finditer, keep_cue, name in self._searches:
                if not mask & bit:
                    continue
                for m in finditer(probe):
                    start, end = m.span("value") if keep_cue and m.start("value") >= 0 else m.span()
                    if name == "phi_key" and probe[start] in '["\\':
                        q = _QUOTED_VALUE.fullmatch(probe, start, end)
                        if q is not None:
                            start, end = q.span(2)
                    if end > start:
                        spans.append((start, end, name))
            if not spans:
                return text
            spans.sort()
            pieces = []
            position, rules, markers = 0, self._rules, self._markers
            current_start, current_end, current_name = spans[0]
            for start, end, name in spans:
                hits.append(rules[name])
                if start < current_end:  # overlaps the current run: extend it
                    if end > current_end:
                        current_end = end
                    if current_name in _GENERIC and name not in _GENERIC:
                        current_name = name  # the more specific detector names the run
                    continue
                pieces.append(text[position:current_start])
                pieces.append(markers[current_name])
                position = current_end
                current_start, current_end, current_name = start, end, name
            pieces.append(text[position:current_start])
            pieces.append(markers[current_name])
            pieces.append(text[current_end:])
            text = "".join(pieces)
        return text

    def _mask_path(self, path: str, hits: list) -> str:
        """``/patients/004417829/chart`` -> ``/patients/{id}/chart`` (segments only, no query)."""
        segments = path.split("/")
        changed = False
        seg_rx = self._segment
        clean = self._clean_segments
        collections = self._collections
        for i, seg in enumerate(segments):
            if not seg or seg == PATH_PLACEHOLDER:
                continue
            if (i and collections and segments[i - 1].lower() in collections and _ROUTE_PARAM.fullmatch(seg) is None
                    and seg.lower() not in COLLECTION_ROUTE_WORDS):
                segments[i] = PATH_PLACEHOLDER  # right after "patients/": a person, whatever it looks like
                hits.append("path_id")
                changed = True
                continue
            if seg in clean:
                continue
            plain = unquote(seg) if "%" in seg else seg
            if (seg_rx is not None and seg_rx.fullmatch(plain)) or self._hit(plain) or (
                    _SPACED.search(plain) is not None and self._hit(_SPACED.sub(" ", plain))):
                segments[i] = PATH_PLACEHOLDER
                hits.append("path_id")
                changed = True
            else:
                if len(clean) >= _CLEAN_MAX:
                    clean.clear()
                clean.add(seg)
        return "/".join(segments) if changed else path

    def text(self, text: str, hits: list) -> str:
        """Free text: query strings in embedded URLs, mask patterns, identifiers in embedded paths."""
        if not text or text in self._clean_text:
            return text
        if len(text) > _MASKED_LEN:
            return self._text(text, hits)
        # a text masked before: the same result and the same hits, found by a keyed digest of the
        # text (the text itself, patient data, is not kept)
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16, key=self._masked_key).digest()
        known = self._masked_text.get(digest)
        if known is not None:
            hits.extend(known[1])
            return known[0]
        mark = len(hits)
        out = self._text(text, hits)
        if out is not text:
            masked = self._masked_text
            if len(masked) >= _MASKED_MAX:
                masked.clear()
            masked[digest] = (out, tuple(hits[mark:]))
        return out

    def _text(self, text: str, hits: list) -> str:
        out = text
        if text[0] in "{[" or text[-1:] in "}]":
            walked = self._json_in_text(text, hits)
            if walked is not None:
                return walked
        if self.drop_query and "?" in out and _QUERY_IN_TEXT.search(out) is not None:
            # Masked before the query goes too: a cue inside the query and its value after it
            # ("?id=7MRN 004417829") would otherwise leave the bare number without its cue.
            out = self._mask_patterns(out, hits)
            out, n = _QUERY_IN_TEXT.subn("", out)
            hits.extend(["query_string"] * n)
        out = self._mask_patterns(out, hits)
        if self.mask_segments and "/" in out:
            out = _PATH_IN_TEXT.sub(lambda m: self._mask_path(m.group(0), hits), out)
        if out == text:
            clean = self._clean_text
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(text)
            return text
        return out

    def _json_in_text(self, text: str, hits: list) -> str | None:
        """Free text that is a JSON object or array, walked as a document (values under PHI-named keys
        replaced whole, strings masked) so that it stays valid JSON; ``None`` when it is not JSON."""
        stripped = text.strip()
        if stripped[:1] not in ("{", "[") or stripped[-1:] not in ("}", "]"):
            return None
        try:
            doc = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, (dict, list)):
            return None
        new = self._walk(doc, hits, 0, _PHI_KEY_TEXT)
        if new is doc:
            clean = self._clean_text
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(text)
            return text
        return orjson.dumps(new).decode()

    # ---- URLs and paths ------------------------------------------------------------------

    def url(self, value: str, hits: list) -> str:
        """A URL, path or route: userinfo and query cut, identifier segments masked, then masked as text."""
        if not value or value in self._clean_url:
            return value
        out, rest = value, ""
        cut = len(out)
        for ch in "?#":
            i = out.find(ch)
            if 0 <= i < cut:
                cut = i
        if cut < len(out):
            out, rest = out[:cut], out[cut:]
            if self.drop_query:
                rest = ""
                hits.append("query_string")
        head, path = "", out
        m = _AUTHORITY.match(out)
        if m is not None:
            scheme, authority = m.group(1) or "", m.group(2)
            if "@" in authority:
                authority = authority.rsplit("@", 1)[1]
                hits.append("userinfo")
            head, path = f"{scheme}//{authority}", out[m.end():]
        if self.mask_segments and path:
            path = self._mask_path(path, hits)
        out = head + path + rest
        if out not in self._clean_url:  # a URL known clean needs no second look (url(out) == out)
            out = self._mask_patterns(out, hits)
        if out == value:
            clean = self._clean_url
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(value)
            return value
        return out

    # ---- attribute maps -------------------------------------------------------------------

    def _actions(self, allow_name: str | None) -> dict[str, tuple[int, str]]:
        actions = self._key_actions.get(allow_name)
        if actions is None or len(actions) >= _KEYS_MAX:
            actions = self._key_actions[allow_name] = {}
        return actions

    def _decide(self, key: str, allow_name: str | None) -> tuple[int, str]:
        if allow_name is not None and not self._allow[allow_name].match(key):
            return _DROP, "allowlist"
        if self.drop_query and key in ("url.query", "url.fragment"):
            return _DROP, "query_string"
        if self._keep is None or not self._keep.match(key):
            for glob, rx in self._drop:
                if rx.match(key):
                    return _DROP, "drop:" + glob
        if _KEY_SHAPE.fullmatch(key) is None or self._hit(key) or self._hit(_SPACED.sub(" ", key)):
            return _DROP, "key_shape"
        if key in self._url_keys:
            return _AS_URL, ""
        return _MASK, ""

    def attributes(self, attrs: dict, allow_name: str | None, hits: list) -> dict:
        """An attribute map with keys dropped and values masked; the same dict if nothing changed."""
        if not attrs:
            return attrs
        actions = self._actions(allow_name)
        out = None
        clean = self._clean_text
        for key, value in attrs.items():
            action = actions.get(key)
            if action is None:
                action = actions[key] = self._decide(key, allow_name)
            what = action[0]
            if what == _MASK:
                if not value or value in clean:
                    continue
                new = self.text(value, hits)
            elif what == _AS_URL:
                new = self.url(value, hits)
            elif what == _DROP:
                hits.append(action[1])
                if out is None:
                    out = dict(attrs)
                del out[key]
                continue
            else:
                continue
            if new is not value:
                if out is None:
                    out = dict(attrs)
                out[key] = new
        return attrs if out is None else out

    # ---- structural values and JSON documents -------------------------------------------

    def struct(self, shape: str, value: str, hits: list) -> str:
        """``value`` when it fits ``shape`` (and carries no detector hit), else ``[REDACTED:<shape>]``."""
        if not value:
            return value
        clean = self._clean_shape[shape]
        if value in clean:
            return value
        out = value
        if shape in ("route", "url", "schema_url"):
            out = self.url(value, hits)
        rx, detect = self._shapes[shape]
        if rx.fullmatch(out) is None:
            hits.append("shape:" + shape)
            return self._misfit(shape, value)
        if shape == "endpoint" and _IP_PORT.fullmatch(out) is not None:
            detect = False  # a server's address and port: infrastructure, not a patient's
        if detect and not _OPAQUE.fullmatch(out):
            probe, infra = _struct_probe(out)
            if shape in ("experiment", "alert"):
                suffix = _EXPERIMENT_SUFFIX.match(probe)
                if suffix is not None and (shape == "alert" or suffix.end() == len(probe)):
                    probe = probe[:suffix.start(1)] + "x" + probe[suffix.end(1):]
            # a person of the team named in a definition (``staff``): a name of capitalised words or a
            # handle without spaces is no patient's name; other detectors still apply
            allowed = self._no_names if infra or (shape == "staff" and _PERSON.fullmatch(out)) else self._all
            joined = None if infra else _PHI_JOINED.search(out)
            if (joined is not None and joined.group(1).lower() not in COLLECTION_ROUTE_WORDS) or (
                    shape in _DATE_SHAPES and (_STRUCT_DATE.search(out) is not None or _STRUCT_DMY.search(out)
                                               is not None or _STRUCT_ADDRESS.search(out) is not None)) or (
                    shape in ("id", "endpoint", "actor", "staff", "word", "experiment", "alert") and _BARE_NUMBER.search(probe)) or (
                    self._hit(probe, allowed)) or (
                    _SPACED.search(probe) is not None and self._hit(_SPACED.sub(" ", probe), allowed)):
                hits.append("shape:" + shape)
                return self._misfit(shape, value)
        if out is value:
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(value)
        return out

    def _misfit(self, shape: str, value: str) -> str:
        """What a value that does not fit its shape becomes. An id keeps a digest keyed with the
        redaction key (``hub.redaction.key``: the same for every worker and across restarts), so that
        distinct ids stay distinct and equal ids equal (GROUP BY, joins, pairing) while the value
        cannot be recovered by hashing guesses (an MRN has few enough values to try them all)."""
        if shape == "metric_name" and not self._metric_parts:
            self._metric_parts = True
            try:
                return self._metric_name_misfit(value)
            finally:
                self._metric_parts = False
        if shape not in _DIGEST_SHAPES:
            return STRUCT_MARKER.format(shape=shape)
        return self._digest(value)

    def _digest(self, value: str) -> str:
        digest = hmac.new(self._salt, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:12]
        return f"[REDACTED:id:{digest}]"

    def _metric_name_misfit(self, value: str) -> str:
        """A metric name that does not fit: its structure kept, each offending part replaced by a keyed
        digest (``calls.[REDACTED:id:<digest>]``, ``db.pool[REDACTED:id:<digest>].active``), so that
        distinct names stay distinct series; an e-mail address is one part whatever its dots."""
        out = value
        for rx in (_EMAIL_IN_NAME, _STRUCT_DATE, _STRUCT_DMY, _STRUCT_ADDRESS):  # parts that span dots
            out = rx.sub(lambda m: self._digest(m.group(0)), out)
        segments = out.split(".")
        if len(segments) == 1 and _TAGGED_SEGMENT.fullmatch(out) is None:
            return self._digest(value)
        changed = False
        for i, seg in enumerate(segments):
            if not seg or seg.startswith("[REDACTED:id:"):
                continue
            tagged = _TAGGED_SEGMENT.fullmatch(seg)
            if tagged is not None:  # name{k=v,...} / name[k=v,...]: the name kept, the tags a digest
                base = tagged.group(1)
                if self.struct("metric_name", base, []) != base:
                    base = self._digest(base)
                segments[i] = base + self._digest(tagged.group(2))
                changed = True
            elif _METRIC_SEGMENT.fullmatch(seg) is None or self.struct("metric_name", seg, []) != seg:
                segments[i] = self._digest(seg)
                changed = True
        if not changed and out == value:
            # only parts together read as patient data (``patients.Zebulon-Quillfeather``): the first
            # pair of segments that does not fit is the offending part
            # pair of segments that does not fit is offending, but for a first segment that is a word of
            # collections or infrastructure (``patients``); consecutive offending segments are one part
            bad = [False] * len(segments)
            for i in range(len(segments) - 1):
                pair = segments[i] + "." + segments[i + 1]
                if self.struct("metric_name", pair, []) != pair:
                    bad[i + 1] = True
                    word = segments[i].lower()
                    bad[i] = bad[i] or not (word in INFRA_WORDS or _PHI_JOINED.match(word + ".xyz"))
            for i in range(1, len(segments)):  # a name goes on over words that name nothing measured
                if bad[i - 1] and not bad[i] and segments[i].isalpha() and not (
                        segments[i].lower() in INFRA_WORDS or segments[i].lower() in _METRIC_WORDS):
                    bad[i] = True
            if not any(bad):
                return self._digest(value)
            parts: list[str] = []
            i = 0
            while i < len(segments):
                j = i
                while bad[i] and j + 1 < len(segments) and bad[j + 1]:
                    j += 1
                parts.append(self._digest(".".join(segments[i:j + 1])) if bad[i] else segments[i])
                i = j + 1
            return ".".join(parts)
        return ".".join(segments)

    def json_text(self, value: str, hits: list) -> str:
        """A JSON document with every string masked and values under PHI-named keys replaced whole;
        text that is not JSON is masked as free text."""
        if not value or value in self._clean_json:
            return value
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            out = self.text(value, hits)
        else:
            if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and "experiment_id" in doc and "event_id" in doc:
                from hub.redaction.events import redact_event_doc  # an experiment event: as it was appended

                new = redact_event_doc(self, doc, hits, stored=True)
            else:
                new = self._walk(doc, hits, 0)
            if new is not doc:
                return orjson.dumps(new).decode()
            out = self.text(value, hits) if not isinstance(doc, (dict, list)) else value
        if out == value:
            clean = self._clean_json
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(value)
        return out

    def _walk(self, v: Any, hits: list, depth: int, phi_key: re.Pattern = _PHI_KEY,
              fields: dict[str, str] | None = None) -> Any:
        """``v`` with every string masked and every value under a PHI-named key replaced whole; an
        OpenTelemetry attribute (``{"key": "patient", "value": {...}}``) whose key is PHI-named has its
        value replaced; ``actor`` is structural as in its column; ``fields`` (dead letters): keys whose
        string value is checked against a structural shape (``{"leg": "primary"}``)."""
        if isinstance(v, str):
            return self.text(v, hits) if v else v
        if depth > _DEPTH_MAX and isinstance(v, (list, dict)) and v:
            hits.append("shape:depth")  # deeper than any telemetry nests: not walked, not kept
            return STRUCT_MARKER.format(shape="depth")
        if isinstance(v, list):
            return _each(v, lambda x: self._walk(x, hits, depth + 1, phi_key, fields))
        if isinstance(v, dict):
            out = None
            attr_key = v.get("key")
            phi_attribute = (isinstance(attr_key, str) and "value" in v
                             and phi_key.fullmatch(attr_key.strip()) is not None)
            for k, x in v.items():
                key = k
                if _KEY_SHAPE.fullmatch(k) is None or self._hit(k, self._no_names if _FIELD_NAME.fullmatch(k) else None):
                    key = STRUCT_MARKER.format(shape="key") + f"{len(out or v)}"
                    hits.append("shape:key")
                if ((phi_key.fullmatch(k.strip()) is not None or (phi_attribute and k == "value"))
                        and x not in (None, "", [], {}) and not isinstance(x, bool)):
                    new: Any = STRUCT_MARKER.format(shape="phi_key")
                    if phi_attribute and k == "value":
                        new = {"stringValue": new}
                    hits.append("mask:phi_key")
                elif isinstance(x, str) and x and (k == "actor" or (fields is not None and k in fields)):
                    new = self.struct("actor" if k == "actor" or fields is None else fields[k], x, hits)
                else:
                    new = self._walk(x, hits, depth + 1, phi_key, fields)
                if new is not x or key is not k:
                    if out is None:
                        out = dict(v)
                    if key is not k:
                        del out[k]
                    out[key] = new
            return v if out is None else out
        return v

    def dead_letter_reason(self, reason: str, hits: list) -> str:
        """A dead letter's reason: quoted values (which decoders echo) cut, the rest masked."""
        if not reason:
            return reason
        out, n = _QUOTED.subn(lambda m: m.group(0) if _NOT_PERSONAL.fullmatch(m.group(0), 1, len(m.group(0)) - 1)
                              else m.group(1) + "[REDACTED:value]" + m.group(1), reason)
        if n:
            hits.append("quoted_value")
        return self.text(out, hits)

    def dead_letter_key(self, key: str, hits: list) -> str:
        out = self.struct("id", key, hits)
        return key if out == key else "[REDACTED:key]"

    # ---- rows ---------------------------------------------------------------------------------

    def plan(self, table: str, columns: Sequence[str]) -> list:
        """``[(index, kind, shape)]`` for the declared columns of ``table`` among ``columns``."""
        key = (table, tuple(columns))
        plan = self._plans.get(key)
        if plan is None:
            declared = DECLARATIONS.get(table, {})
            plan = []
            for i, c in enumerate(columns):
                decl = declared.get(c)
                if decl is not None and decl.kind in _KIND_CODES:
                    code = _KIND_CODES[decl.kind]
                    # values known to come out unchanged: skipped with one set lookup
                    clean = (self._clean_shape[decl.shape] if code == _STRUCT else self._clean_text
                             if code == _TEXT else self._clean_json if code == _JSON
                             else self._clean_url_shape if code == _URL else None)
                    plan.append((i, code, decl.shape, clean))
            self._plans[key] = plan
            # every declared column holds strings with a set of known-clean values: redacted by value
            self._fast[key] = all(clean is not None for _, _, _, clean in plan)
        return plan

    def _value(self, kind: int, shape: str, clean: set | None, value: str, hits: list) -> str:
        """One string value of a column of ``kind`` (struct, text, URL, JSON) redacted as declared."""
        if kind == _STRUCT:
            return self.struct(shape, value, hits)
        if kind == _TEXT:
            return self.text(value, hits)
        if kind == _JSON:
            return self.json_text(value, hits)
        new = self.url(value, hits)
        if _URL_SHAPE.fullmatch(new) is None:
            hits.append("shape:url")
            return STRUCT_MARKER.format(shape="url")
        if new is value and clean is not None:
            if len(clean) >= _CLEAN_MAX:
                clean.clear()
            clean.add(value)
        return new

    def _rows_by_value(self, source: str, plan: list, rows: list, stats: RedactionStats | None) -> list:
        """Rows whose declared columns all hold strings, redacted column by column over the batch's
        distinct values: a column's values are collected (in C: ``map``/``set``), those known clean
        dropped with one set difference, long hex ids and UUIDs skipped, and each remaining value
        redacted once however many rows carry it; only rows holding a changed value are copied.
        The same result and the same counts as redacting row by row, without a Python step per row
        and column when the batch is clean."""
        opaque = _OPAQUE.fullmatch
        changes: list[tuple[int, dict]] = []
        n = len(rows)
        for i, kind, shape, clean in plan:
            get = itemgetter(i)
            check_opaque = kind == _STRUCT and shape in _OPAQUE_SHAPES
            first = rows[0][i]
            # ids of a batch are mostly unique UUIDs or long hex ids (or empty): one match over all of
            # them, joined with newlines (none in a value, or the count differs); not tried when the
            # first value is neither empty nor such an id (the match would fail at it)
            if check_opaque and not (first and isinstance(first, str) and opaque(first) is None):
                try:
                    joined = "\n".join(map(get, rows))
                except TypeError:  # None in the column
                    joined = ""
                if joined and joined.count("\n") == n - 1 and (
                        len(joined) == n - 1  # every value empty
                        or _uniform_ids(joined, n, first)
                        or (_ALL_UUIDS if first[8:9] == "-" else _ALL_OPAQUE).fullmatch(joined) is not None):
                    continue
            values = set(map(get, rows))
            values -= clean
            values.discard("")
            values.discard(None)
            if not values:
                continue
            changed: dict = {}
            for value in values:
                if check_opaque and opaque(value) is not None:
                    continue  # a long hex id or a UUID: nothing personal fits in it
                found: list[str] = []
                new = self._value(kind, shape, clean, value, found)
                if new is not value or found:
                    changed[value] = (new, found)
            if changed:
                changes.append((i, changed))
        if not changes:
            return rows
        # the rows holding a changed value, found in C (few: mostly a batch's rows are clean); then
        # only those are looked at, in order
        if len(changes) == 1:
            i, changed = changes[0]
            touched: Any = compress(range(n), map(changed.__contains__, map(itemgetter(i), rows)))
        else:
            touched = set()
            for i, changed in changes:
                touched.update(compress(range(n), map(changed.__contains__, map(itemgetter(i), rows))))
            touched = sorted(touched)
        hits: list[str] = []
        out = list(rows)
        for j in touched:
            row = rows[j]
            new_row = None
            for i, changed in changes:
                hit = changed.get(row[i])
                if hit is not None:
                    hits.extend(hit[1])
                    if hit[0] is not row[i]:
                        if new_row is None:
                            new_row = list(row)
                        new_row[i] = hit[0]
            if new_row is not None:
                out[j] = tuple(new_row)
        if stats is not None and hits:
            stats.add(source, hits)
        return out

    def rows(self, source: str, table: str, columns: Sequence[str], rows: list,
             stats: RedactionStats | None) -> list:
        """Rows of ``table`` with every declared column redacted as declared (``hub.redaction.columns``)."""
        plan = self.plan(table, columns)
        if not plan or not rows:
            return rows
        fast = self._fast[(table, tuple(columns))]
        if fast:
            try:
                return self._rows_by_value(source, plan, rows, stats)
            except TypeError:  # a value that is not a string (unhashable): row by row
                pass
        allowlists = self.policy.allowlists
        signal_allow = source if source in allowlists else None
        svc = columns.index("ServiceName") if ("ServiceName" in columns and allowlists) else -1
        text, attributes, struct = self.text, self.attributes, self.struct
        opaque = _OPAQUE.fullmatch
        hits: list[str] = []
        shared: dict[tuple[int, Any], dict] = {}
        shared_hits: dict[tuple[int, Any], tuple] = {}
        out: list = []
        append = out.append
        changed_any = False
        for row in rows:
            allow = signal_allow
            if svc >= 0:
                service = row[svc]
                if service in allowlists:
                    allow = service
            new_row = None
            for i, kind, shape, clean in plan:
                value = row[i]
                if not value or (clean is not None and value in clean):
                    continue
                if kind == _STRUCT:
                    if shape in _OPAQUE_SHAPES and opaque(value) is not None:
                        continue  # a long hex id or a UUID: nothing personal fits in it
                    new: Any = struct(shape, value, hits)
                elif kind == _TEXT or kind == _URL:
                    new = self._value(kind, shape, clean, value, hits)
                elif kind == _MAP:
                    new = attributes(value, allow, hits)
                elif kind == _SHARED_MAP:
                    memo = (id(value), allow)
                    new = shared.get(memo)
                    if new is None:
                        mark = len(hits)
                        new = shared[memo] = attributes(value, allow, hits)
                        shared_hits[memo] = tuple(hits[mark:])
                    else:
                        hits.extend(shared_hits[memo])
                elif kind == _STRUCTLIST:
                    new = _each(value, lambda v: struct(shape, v, hits) if v else v)
                elif kind == _TEXTLIST:
                    new = _each(value, lambda v: text(v, hits) if v else v)
                elif kind == _JSON:
                    new = self.json_text(value, hits)
                elif kind == _REASON:
                    new = self.dead_letter_reason(value, hits)
                else:  # _MAPLIST
                    new = _each(value, lambda v: attributes(v, allow, hits) if v else v)
                if new is not value:
                    if new_row is None:
                        new_row = list(row)
                    new_row[i] = new
            if new_row is None:
                append(row)
            else:
                append(tuple(new_row))
                changed_any = True
        if stats is not None and hits:
            stats.add(source, hits)
        return out if changed_any else rows


def _each(values: list, fn: Callable[[Any], Any]) -> list:
    """``[fn(v) for v in values]``, or ``values`` itself when nothing changed."""
    if not values:
        return values
    out = None
    for i, v in enumerate(values):
        new = fn(v)
        if new is not v:
            if out is None:
                out = list(values)
            out[i] = new
    return values if out is None else out


# ---- public functions ---------------------------------------------------------------------------


def _engine(policy: RedactionPolicy | None) -> _Engine:
    return (policy or default_policy()).engine()


def redact_text(policy: RedactionPolicy | None, text: str, stats: RedactionStats | None = None,
                source: str = "text") -> str:
    """Free text with query strings, mask-pattern hits and identifier path segments masked."""
    hits: list[str] = []
    out = _engine(policy).text(text, hits)
    if stats is not None:
        stats.add(source, hits)
    return out


def redact_url(policy: RedactionPolicy | None, url: str, stats: RedactionStats | None = None,
               source: str = "text") -> str:
    """A URL, path or route: userinfo and query/fragment cut, identifier segments -> ``{id}``, masked."""
    hits: list[str] = []
    out = _engine(policy).url(url, hits)
    if stats is not None:
        stats.add(source, hits)
    return out


def redact_attributes(policy: RedactionPolicy | None, attrs: dict, source: str = "spans", service: str = "",
                      stats: RedactionStats | None = None) -> dict:
    """One attribute map, as the row functions treat it (allowlist of ``service`` or ``source``)."""
    p = policy or default_policy()
    allow = service if service and service in p.allowlists else (source if source in p.allowlists else None)
    hits: list[str] = []
    out = p.engine().attributes(attrs, allow, hits)
    if stats is not None:
        stats.add(source, hits)
    return out


#: The table of each source that stores one table.
TABLE_OF: Final[dict[str, str]] = {"requests": "requests", "spans": "otel_traces", "logs": "otel_logs",
                                   "pairs": "shadow_pairs", "alerts": "alerts", "experiments": "experiment_events"}


def redact_rows(policy: RedactionPolicy | None, source: str, columns: Sequence[str], rows: list,
                stats: RedactionStats | None = None, table: str | None = None) -> list:
    """Rows of any hub table, every declared column redacted as ``hub.redaction.columns`` says."""
    return _engine(policy).rows(source, table or TABLE_OF.get(source, source), columns, rows, stats)


def redact_request_rows(policy: RedactionPolicy | None, rows: list, stats: RedactionStats | None = None) -> list:
    """``requests`` rows (``REQUEST_COLUMNS``): route, ids, names, hash, error, source."""
    return _engine(policy).rows("requests", "requests", REQUEST_COLUMNS, rows, stats)


def redact_span_rows(policy: RedactionPolicy | None, rows: list, stats: RedactionStats | None = None) -> list:
    """``otel_traces`` rows (``TRACE_COLUMNS``): every declared column."""
    return _engine(policy).rows("spans", "otel_traces", TRACE_COLUMNS, rows, stats)


def redact_log_rows(policy: RedactionPolicy | None, rows: list, stats: RedactionStats | None = None) -> list:
    """``otel_logs`` rows (``LOG_COLUMNS``): every declared column."""
    return _engine(policy).rows("logs", "otel_logs", LOG_COLUMNS, rows, stats)


def redact_metric_rows(policy: RedactionPolicy | None, table: str, columns: Sequence[str], rows: list,
                       stats: RedactionStats | None = None) -> list:
    """Rows of one ``otel_metrics_*`` table: every declared column."""
    return _engine(policy).rows("metrics", table.rsplit(".", 1)[-1], columns, rows, stats)


def redact_dead_letter_value(policy: RedactionPolicy | None, value: bytes | None,
                             stats: RedactionStats | None = None) -> bytes | None:
    """A dead letter's original bytes, masked as text (UTF-8, or byte for byte as Latin-1 if not UTF-8).

    The result is for storage and inspection, not for replay: a masked record no longer decodes.
    """
    return _dead_letter_value(_engine(policy), value, stats)


#: Fields of a dead letter's JSON record checked against the shape of the column they fill (the
#: value a decoder refused is often one of them: ``"leg": "Jane Doe"``).
_DEAD_LETTER_FIELDS: Final[dict[str, str]] = {}
for _table in ("requests", "shadow_pairs", "alerts", "experiment_events"):
    for _column, _decl in DECLARATIONS[_table].items():
        if _decl.kind == "struct" and _column not in _DEAD_LETTER_FIELDS and _column != "actor":
            _DEAD_LETTER_FIELDS[_column] = _decl.shape


def _dead_letter_value(engine: _Engine, value: bytes | None, stats: RedactionStats | None) -> bytes | None:
    if not value:
        return value
    try:
        text, codec = value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, codec = value.decode("latin-1"), "latin-1"
    hits: list[str] = []
    source = text
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        # a JSON record: walked like a JSON document, its fields checked against their columns' shapes
        try:
            doc = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, (dict, list)):
            new = engine._walk(doc, hits, 0, _PHI_KEY_TEXT, _DEAD_LETTER_FIELDS)
            if new is not doc:
                source = orjson.dumps(new).decode()
    out = engine.text(source, hits)
    # tokens that join words with - _ + . (ids, slugs: ``PO-Box-54192``, ``jane_doe``) read as words too
    out = _JOINED.sub(lambda m: _joined(engine, m.group(0), hits), out)
    if stats is not None:
        stats.add("dead_letters", hits)
    return value if out == text else out.encode(codec)


# A run of token characters starting at a letter or digit; ``_joined`` looks at it only when it
# holds a separator after its first character. (Asking the pattern itself for the separator,
# ``[A-Za-z0-9][\w.@:+-]*[-_+.][\w.@:+-]*``, backtracks over every start of a long run without
# one: quadratic, 39 s for a 64 KB word, with the worker's other threads waiting on the GIL.)
_JOINED: Final = re.compile(r"[A-Za-z0-9][\w.@:+-]*")
_SEPARATOR: Final = re.compile(r"[-_+.]")


def _joined(engine: _Engine, token: str, hits: list) -> str:
    if _SEPARATOR.search(token, 1) is None:
        return token
    if engine._hit(_SPACED.sub(" ", token)):
        hits.append("mask:joined")
        return "[REDACTED:token]"
    return token


class Redactor:
    """Redacts decoded batches in place of the pipeline, before the sink stores them.

    Each method takes the decoder's batch (``DecodedBatch`` with ``.rows``; for metrics a batch with
    ``.tables``: ``[(table, columns, rows)]``), replaces its rows and returns it, so that it chains
    like ``Correlator``. ``stats`` counts what was redacted (never the values).
    """

    def __init__(self, policy: RedactionPolicy | None = None, stats: RedactionStats | None = None,
                 key: bytes | None = None):
        """``key``: the secret of masked ids' digests (``hub.redaction.key.ensure_key``); without one,
        a random key of this process (digests then differ from those of other processes)."""
        self.policy = policy or default_policy()
        self.stats = stats if stats is not None else RedactionStats()
        self._engine = self.policy.engine(key)

    def _batch(self, source: str, table: str, columns: Sequence[str], batch):
        batch.rows = self._engine.rows(source, table, columns, batch.rows, self.stats)
        return batch

    def requests(self, batch):
        return self._batch("requests", "requests", REQUEST_COLUMNS, batch)

    def spans(self, batch):
        return self._batch("spans", "otel_traces", TRACE_COLUMNS, batch)

    def logs(self, batch):
        return self._batch("logs", "otel_logs", LOG_COLUMNS, batch)

    def metrics(self, batch):
        batch.tables = [(table, columns, self._engine.rows("metrics", table.rsplit(".", 1)[-1], columns, rows,
                                                           self.stats))
                        for table, columns, rows in batch.tables]
        return batch

    def pairs(self, batch):
        return self._batch("pairs", "shadow_pairs", PAIR_COLUMNS, batch)

    def alerts(self, batch):
        return self._batch("alerts", "alerts", ALERT_COLUMNS, batch)

    def experiment_events(self, batch):
        return self._batch("experiments", "experiment_events", PROJECTION_COLUMNS, batch)

    def text(self, text: str, source: str = "dead_letters") -> str:
        """A dead letter's reason: quoted values (decoders echo the offending value) cut, then masked."""
        hits: list[str] = []
        out = self._engine.dead_letter_reason(text, hits)
        self.stats.add(source, hits)
        return out

    def key(self, key: bytes | None, source: str = "dead_letters") -> bytes | None:
        """A dead letter's key: kept when it is an id (``hub.redaction.columns`` shape ``id``), else replaced."""
        if not key:
            return key
        hits: list[str] = []
        try:
            text = key.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.add(source, ["shape:key"])
            return b"[REDACTED:key]"
        out = self._engine.dead_letter_key(text, hits)
        self.stats.add(source, hits)
        return key if out == text else out.encode()

    def dead_letter_value(self, value: bytes | None) -> bytes | None:
        return _dead_letter_value(self._engine, value, self.stats)
