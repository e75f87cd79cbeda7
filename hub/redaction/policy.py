"""The redaction policy: what is dropped and masked at ingest, before anything is stored.

Telemetry in a hospital must never carry patient data into the store. The policy says, for every
value the hub is about to store:

- ``drop_query_strings``: everything after ``?`` or ``#`` in URL-like values (request-leg
  ``route`` and ``source``, the ``url_attributes``) is cut off; ``url.query`` and ``url.fragment``
  are removed. In free text, a ``?key=value...`` run after a non-blank character is cut off too.
- ``drop_attributes``: attribute keys (exact or glob) removed from every attribute map, unless
  the key matches ``keep_attributes`` (safe headers such as ``content-type``).
- ``mask_patterns``: named regular expressions; every hit in free text and in every remaining
  attribute value becomes ``[REDACTED:<name>]``.
- ``path_segment_patterns``: a URL path segment that matches one in full (or that contains a
  ``mask_patterns`` hit) becomes ``{id}``: ``/patients/004417829/chart`` -> ``/patients/{id}/chart``.
- ``phi_collections``: URL path words (``patients``, ``members`` ...) after which a segment that is
  not a route parameter names a person and becomes ``{id}``: ``/patients/jane-doe/chart``.
- ``allowlists``: per signal (``spans``, ``logs``, ``metrics``) or per service name, the only
  attribute keys kept; the service's list wins over the signal's.

What was redacted is counted (``RedactionStats``: per source and rule), never stored.
``docs/redaction.md`` is the documented policy; ``examples/redaction-policy.yaml`` spells out
every default.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Mapping

import msgspec
import yaml

from hub.errors import ConfigError
from hub.redaction.detectors import DETECTORS

__all__ = [
    "MaskPattern",
    "RedactionPolicy",
    "RedactionStats",
    "SIGNALS",
    "ALWAYS_KEPT",
    "MARKER",
    "PATH_PLACEHOLDER",
    "DEFAULT_MASK_PATTERNS",
    "DEFAULT_DROP_ATTRIBUTES",
    "DEFAULT_KEEP_ATTRIBUTES",
    "DEFAULT_URL_ATTRIBUTES",
    "DEFAULT_PATH_SEGMENT_PATTERNS",
    "default_policy",
    "load_policy",
    "policy_from_mapping",
]

#: Signals an allowlist may name (any other key is a service name). Request legs carry no
#: attribute maps, so ``requests`` has no allowlist.
SIGNALS: Final = ("spans", "logs", "metrics")
#: Keys an allowlist always keeps: the hub's own correlation keys and the service name.
ALWAYS_KEPT: Final = ("service.name", "experiment.id", "experiment.phase")
#: What a masked hit becomes; ``{name}`` is the pattern's name.
MARKER: Final = "[REDACTED:{name}]"
#: What an identifier segment of a URL path becomes.
PATH_PLACEHOLDER: Final = "{id}"


@dataclass(frozen=True)
class MaskPattern:
    """A named regular expression whose hits are replaced with ``[REDACTED:<name>]``.

    When the pattern has a group named ``value``, only that group is replaced and the rest of the
    hit (a cue such as ``MRN:`` or ``patient``) stays readable: ``MRN: [REDACTED:mrn]``.

    ``requires`` (optional, a speed-up): regexes of which at least one is found in every text
    the pattern matches (searched with the pattern's case rule; ``(?i)`` in front makes one
    case-insensitive). A text in which none is found is not searched with the pattern; plain
    literals are checked with a substring test, which is much cheaper than a regex search. Leave it empty unless that is certain; a test checks that the
    defaults' ``requires`` never change a result.
    """

    name: str
    pattern: str
    ignore_case: bool = False
    requires: tuple[str, ...] = ()


_MONTHS: Final = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"

#: The default patterns, in the order they are tried at each position of a text.
DEFAULT_MASK_PATTERNS: Final[tuple[MaskPattern, ...]] = (
    # e-mail address; starts at the beginning of a run of local-part characters (linear time)
    MaskPattern("email", r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
                requires=("@",)),
    # US social security number: 123-45-6789, 123 45 6789, or a bare 9 digits after "SSN"
    MaskPattern("ssn", r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|(?<![\d.])\d{3}\.\d{2}\.\d{4}(?![\d.])"
                       r"|(?i:ssn|social[ _-]?security(?:[ _-]?(?:number|no))?)\.?[\s:#=-]{0,4}(?P<value>\d{9})",
                requires=(r"\d(?:\d{2}[-. ]\d{2}[-. ]\d{4}|\d{8})",)),
    # medical record / patient number after a cue: MRN 004417829, mrn#00123456, patient_id=1234
    MaskPattern("mrn", r"(?:mrn|medical[ _-]?record(?:[ _-]?(?:number|num|no))?"
                       r"|patient[ _-]?(?:id|number|num|no))\.?[\s:#=-]{0,4}(?P<value>[A-Za-z]{0,3}\d{4,})",
                ignore_case=True, requires=("mrn", "medical", "patient")),
    # dates of birth: any date after a cue, and the day-first/month-first formats people type
    # (ISO dates without a cue are left alone: log timestamps are full of them)
    MaskPattern("dob", r"(?i:\b(?:dob|d\.o\.b\.?|date[ _-]?of[ _-]?birth|birth[ _-]?date|born(?: on)?)\s*[:=]?\s*)"
                       r"(?P<value>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"
                       r"|(?i:[a-z]{3,9})\.? \d{1,2},? \d{4}|\d{1,2} (?i:[a-z]{3,9})\.? \d{4})"
                       r"|(?<!\d)\d{1,2}/\d{1,2}/(?:19|20)\d{2}(?!\d)|(?<!\d)\d{1,2}\.\d{1,2}\.(?:19|20)\d{2}(?!\d)"
                       rf"|\b{_MONTHS} \d{{1,2}}, (?:19|20)\d{{2}}(?!\d)",
                requires=("(?i)dob", r"(?i)d\.o\.b", "(?i)birth", "(?i)born", r"[/.](?:19|20)\d\d", r", (?:19|20)\d\d")),
    # telephone numbers: (617) 555-0142, 617-555-0142, +1 617.555.0142, +44 20 7946 0958
    MaskPattern("phone", r"(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-]?)\d{3}[ .-]\d{4}"
                         r"|\+\d{1,3}[ .-]\d{1,4}[ .-]\d{2,4}[ .-]\d{2,4}(?:[ .-]\d{2,4})?",
                requires=(r"\d[ .-]\d{4}", r"\+\d")),
    # names: capitalised words after a cue word (patient, name, Mr., Mrs., Ms., Dr. ...)
    MaskPattern("name", r"(?:\b(?i:patient(?:[ _-]?name)?|(?:full|first|last|given|family)[ _-]?name|surname|name)"
                        r"|\b(?:[Mm]r|[Mm]rs|Ms|Miss|Mx|[Dd]r)\.?)"
                        r"(?:[\"']?\s*[:=]\s*[\"']?|\s+)(?P<value>(?![A-Z]{3,}\b)[A-Z][A-Za-z'-]*\.?(?:\s+(?![A-Z]{2,}\b)[A-Z][A-Za-z'-]*\.?){0,3})",
                requires=("(?i)patient", "(?i)name", "Mr", "Ms", "Mi", "Mx", "Dr", "mr", "dr")),
) + tuple(MaskPattern(name, pattern, ignore_case, requires) for name, pattern, ignore_case, requires in DETECTORS)

#: Attribute keys removed from every attribute map (exact keys or ``fnmatch`` globs, matched
#: case-insensitively).
DEFAULT_DROP_ATTRIBUTES: Final[tuple[str, ...]] = (
    "http.request.header.*",        # cookies, authorization, custom headers carrying patient ids
    "http.response.header.*",       # set-cookie, location with ids ...
    "rpc.request.metadata.*",       # gRPC's headers
    "rpc.response.metadata.*",
    "db.statement",                 # SQL/queries with literal values (old and new convention)
    "db.query.text",
    "db.query.parameter.*",
    "graphql.document",             # a GraphQL query with literal arguments
    "enduser.*",                    # the end user's id, role, scope
    "user.*",                       # user.id, user.email, user.name, user.full_name ...
    "*patient*",                    # keys that say whose data the value is: patient, patient.name ...
    "*ssn*",
    "*mrn*",
    "*email*",
    "*phone*",
    "*birth*",
    "*first_name*",
    "*last_name*",
    "*full_name*",
    "client.address",               # the end user's IP address (HIPAA identifier)
    "http.client_ip",
    "net.sock.peer.addr",
    "net.peer.ip",
)

#: Keys kept although ``drop_attributes`` matches them: headers that never carry patient data.
DEFAULT_KEEP_ATTRIBUTES: Final[tuple[str, ...]] = tuple(
    f"http.{side}.header.{name}"
    for side in ("request", "response")
    for name in ("content-type", "content_type", "content-length", "content_length", "content-encoding",
                 "content_encoding", "accept", "accept-encoding", "accept_encoding", "cache-control",
                 "cache_control", "retry-after", "retry_after")
)

#: Attributes whose values are URLs or paths: query strings cut, identifier segments masked.
DEFAULT_URL_ATTRIBUTES: Final[tuple[str, ...]] = (
    "url.full", "url.original", "url.path", "url.template", "http.url", "http.target", "http.route",
)

#: A URL path segment that matches one of these in full becomes ``{id}``.
DEFAULT_PATH_SEGMENT_PATTERNS: Final[tuple[str, ...]] = (
    r"\d{4,}",                                                             # numeric ids
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",  # UUIDs
    r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}",                                 # long hex ids (object ids)
    r"(?:19|20)\d{2}-?\d{2}-?\d{2}",                                       # dates (of birth) in a path
    r"\d{1,2}[-.]\d{1,2}[-.](?:19|20)?\d{2}",
    r"[A-Za-z]*\d[A-Za-z0-9]*-\d[A-Za-z0-9-]*",                              # ids with dashes (MRN-0044, 1EG4-TE5)
    r"[^/]*\d{4,}[^/]*",                                                    # anything with 4+ digits in a row
)


#: URL path words after which a segment names a person (``/patients/ralquelington/chart``): that
#: segment becomes ``{id}`` unless it is a route parameter (``{id}``, ``:id``) or a route word.
DEFAULT_PHI_COLLECTIONS: Final[tuple[str, ...]] = (
    "patients", "patient", "members", "member", "persons", "person", "people", "subscribers", "beneficiaries",
    "guarantors", "guardians", "dependents", "residents", "clients",
)
#: Segments after a PHI collection word that are route words, not a person.
COLLECTION_ROUTE_WORDS: Final = frozenset(
    "search find lookup query new create count list all batch bulk export import me self current summary "
    "stats metrics health recent _search _count _history $everything $match".split())


@dataclass(frozen=True)
class RedactionPolicy:
    """What is dropped and masked at ingest. Build with ``default_policy`` or ``load_policy``."""

    drop_query_strings: bool = True
    url_attributes: tuple[str, ...] = DEFAULT_URL_ATTRIBUTES
    drop_attributes: tuple[str, ...] = DEFAULT_DROP_ATTRIBUTES
    keep_attributes: tuple[str, ...] = DEFAULT_KEEP_ATTRIBUTES
    mask_patterns: tuple[MaskPattern, ...] = DEFAULT_MASK_PATTERNS
    mask_path_segments: bool = True
    path_segment_patterns: tuple[str, ...] = DEFAULT_PATH_SEGMENT_PATTERNS
    phi_collections: tuple[str, ...] = DEFAULT_PHI_COLLECTIONS
    allowlists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _engines: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` for a pattern that cannot work (bad regex, empty match, matches its marker)."""
        names = set()
        for p in self.mask_patterns:
            if not p.name or not re.fullmatch(r"[A-Za-z0-9_.-]+", p.name):
                raise ConfigError(f"redaction: mask pattern name {p.name!r} must be letters, digits, _ . -")
            if p.name in names:
                raise ConfigError(f"redaction: mask pattern {p.name!r} is defined twice")
            names.add(p.name)
            try:
                rx = re.compile(p.pattern, re.IGNORECASE if p.ignore_case else 0)
            except re.error as exc:
                raise ConfigError(f"redaction: mask pattern {p.name!r} is not a valid regex: {exc}") from None
            if rx.fullmatch(""):
                raise ConfigError(f"redaction: mask pattern {p.name!r} matches the empty string")
            for r in p.requires:
                try:
                    re.compile(r)
                except re.error as exc:
                    raise ConfigError(f"redaction: mask pattern {p.name!r}: requires {r!r} is not a valid regex: "
                                      f"{exc}") from None
            for q in self.mask_patterns:
                if rx.search(MARKER.format(name=q.name)):
                    raise ConfigError(f"redaction: mask pattern {p.name!r} matches the marker "
                                      f"{MARKER.format(name=q.name)!r}; masking would never settle")
        for s in self.path_segment_patterns:
            try:
                rx = re.compile(s)
            except re.error as exc:
                raise ConfigError(f"redaction: path segment pattern {s!r} is not a valid regex: {exc}") from None
            if rx.fullmatch("") or rx.fullmatch(PATH_PLACEHOLDER):
                raise ConfigError(f"redaction: path segment pattern {s!r} matches '' or {PATH_PLACEHOLDER!r}")
        if "requests" in self.allowlists:
            raise ConfigError("redaction: allowlists.requests: request legs have no attribute maps; "
                              "allowlists apply to spans, logs, metrics or a service name")

    def engine(self, key: bytes | None = None):
        """The compiled form (regexes, caches), built once per policy and digest key (``key``: the
        secret of masked ids' digests, ``hub.redaction.key``; ``None``: a random one of this process)."""
        engines = self._engines
        if engines is None:
            engines = {}
            object.__setattr__(self, "_engines", engines)
        engine = engines.get(key)
        if engine is None:
            from hub.redaction.apply import _Engine

            engine = engines[key] = _Engine(self, key)
        return engine

    def allowlist_for(self, signal: str, service: str = "") -> tuple[str, ...] | None:
        """The allowlist that applies to a row: the service's, else the signal's, else none."""
        if service and service in self.allowlists:
            return self.allowlists[service]
        return self.allowlists.get(signal)


# ---- loading ---------------------------------------------------------------------------------


class _PatternFile(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    pattern: str | None = None
    ignore_case: bool = False
    requires: list[str] = []
    enabled: bool = True


class _PolicyFile(msgspec.Struct, forbid_unknown_fields=True):
    version: int = 1
    drop_query_strings: bool = True
    url_attributes: list[str] | None = None
    drop_attributes: list[str] | None = None
    keep_attributes: list[str] | None = None
    mask_patterns: list[_PatternFile] | None = None
    mask_path_segments: bool = True
    path_segment_patterns: list[str] | None = None
    phi_collections: list[str] | None = None
    allowlists: dict[str, list[str]] | None = None


def default_policy() -> RedactionPolicy:
    """The built-in policy (what applies when no policy file is configured)."""
    return RedactionPolicy()


def policy_from_mapping(doc: Mapping[str, Any] | None, origin: str = "redaction policy") -> RedactionPolicy:
    """A policy from a parsed YAML/JSON document.

    A list given replaces the default list, except ``mask_patterns``, which is merged by name with
    the defaults: a new name adds a pattern, a default's name with another ``pattern`` replaces it,
    ``enabled: false`` removes it.
    """
    try:
        f = msgspec.convert(doc or {}, _PolicyFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    if f.version != 1:
        raise ConfigError(f"{origin}: version {f.version} is not supported (expected 1)")
    patterns = {p.name: p for p in DEFAULT_MASK_PATTERNS}
    for p in f.mask_patterns or ():
        if not p.enabled:
            patterns.pop(p.name, None)
            continue
        if p.pattern is None:
            if p.name not in patterns:
                raise ConfigError(f"{origin}: mask pattern {p.name!r} has no pattern")
            continue
        patterns[p.name] = MaskPattern(p.name, p.pattern, p.ignore_case, tuple(p.requires))
    kwargs: dict[str, Any] = {
        "drop_query_strings": f.drop_query_strings,
        "mask_path_segments": f.mask_path_segments,
        "mask_patterns": tuple(patterns.values()),
        "allowlists": {k: tuple(v) for k, v in (f.allowlists or {}).items()},
    }
    for name in ("url_attributes", "drop_attributes", "keep_attributes", "path_segment_patterns", "phi_collections"):
        value = getattr(f, name)
        if value is not None:
            kwargs[name] = tuple(value)
    try:
        return RedactionPolicy(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def load_policy(path: str | Path | None) -> RedactionPolicy:
    """The policy in a YAML file; the default policy when ``path`` is empty."""
    if not path:
        return default_policy()
    p = Path(path).expanduser()
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ConfigError(f"redaction policy {p}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"redaction policy {p}: not YAML: {exc}") from None
    if doc is not None and not isinstance(doc, dict):
        raise ConfigError(f"redaction policy {p}: expected a mapping at the top level")
    return policy_from_mapping(doc, origin=f"redaction policy {p}")


# ---- counting --------------------------------------------------------------------------------


def glob_regex(globs: tuple[str, ...], ignore_case: bool = False) -> re.Pattern | None:
    """One regex that matches a key when any of the ``fnmatch`` globs matches it."""
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs), re.I if ignore_case else 0)


class RedactionStats:
    """How many values were dropped or masked, by (source, rule). Never holds a value itself.

    Rules: ``query_string``, ``userinfo``, ``path_id``, ``mask:<pattern>``, ``drop:<glob>``,
    ``allowlist``. Sources: ``requests``, ``spans``, ``logs``, ``metrics``, ``dead_letters`` (or what
    the caller passes). Safe to share between threads.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, source: str, rules: list[str] | tuple[str, ...]) -> None:
        """Count one hit per element of ``rules`` (rule names, never values)."""
        if not rules:
            return
        counted = Counter(rules)
        with self._lock:
            for rule, n in counted.items():
                self._counts[(source, rule)] += n

    def snapshot(self) -> dict[tuple[str, str], int]:
        """A copy of the counters: ``{(source, rule): count}``."""
        with self._lock:
            return dict(self._counts)

    def total(self, source: str | None = None) -> int:
        with self._lock:
            return sum(n for (s, _), n in self._counts.items() if source is None or s == source)

    def reset(self) -> dict[tuple[str, str], int]:
        """Return the counters and start again from zero (for periodic export as metrics)."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def __repr__(self) -> str:
        return f"RedactionStats({self.snapshot()!r})"
