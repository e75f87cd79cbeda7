"""The written plan of a gameday: an experiment definition file (YAML), parsed and validated.

A definition says what will be done (scenario, targets, phases), what is expected (hypothesis,
expected outcome), how it is measured (steady-state measurements and their tolerances), who is
needed (participants), what must be true first (prerequisites), the risk context (environment)
and when to stop (abort conditions). ``examples/experiments/README.md`` documents every field.

Validation happens in two steps: msgspec checks shapes and types against the Structs below, then
``_semantic_errors`` checks what types cannot say (unique names, durations, an approver for
production). Either step raises ``DefinitionError`` with one line naming the file, the field path
and the problem, plus the YAML line when the text came from YAML.
"""

from __future__ import annotations

import math
import re
import secrets
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Final, Iterator, Literal, Union, get_args, get_origin

import msgspec
import msgspec.structs
import yaml

from hub.errors import UserError

__all__ = [
    "Sli",
    "SLIS",
    "ABORT_MEASUREMENTS",
    "STANDARD_PHASES",
    "DefinitionError",
    "DurationError",
    "MeasurementFilter",
    "Tolerance",
    "Measurement",
    "Participant",
    "Prerequisite",
    "Environment",
    "Targets",
    "Phase",
    "AbortScope",
    "AbortCondition",
    "HaltTarget",
    "ExperimentDefinition",
    "parse_duration",
    "parse_definition",
    "load_definition",
    "definition_from_dict",
    "definition_to_dict",
    "derive_id",
]


class DefinitionError(UserError):
    """An experiment definition that cannot be used; the message names the file, field and problem."""


class DurationError(UserError, ValueError):
    """A duration string such as ``30s`` or ``1m30s`` that cannot be parsed."""


# ---- vocabularies ---------------------------------------------------------------------------
Sli = Literal[
    "error_rate",            # share of requests that failed (status 0 or >= 500)
    "latency_p50",           # latency percentiles in milliseconds
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "request_rate",          # requests per second
    "shadow_mismatch_rate",  # share of shadow legs whose response differs from the primary's
    "span_error_rate",       # share of spans with an error status
]
SLIS: Final[tuple[str, ...]] = get_args(Sli)
#: ``absence``: seconds without any sample in scope (a silent service is not a healthy one).
#: ``count`` and ``ratio``: custom filtered measurements of request legs (``where``, ``of``).
AbortMeasurement = Literal[
    "error_rate", "latency_p50", "latency_p90", "latency_p95", "latency_p99", "request_rate",
    "shadow_mismatch_rate", "span_error_rate", "absence", "count", "ratio",
]
ABORT_MEASUREMENTS: Final[tuple[str, ...]] = get_args(AbortMeasurement)
assert ABORT_MEASUREMENTS == SLIS + ("absence", "count", "ratio"), "keep AbortMeasurement = Sli + the rest"
CUSTOM_MEASUREMENTS: Final = ("count", "ratio")

Leg = Literal["primary", "shadow", "canary"]  # same values as hub.names.LEGS
Role = Literal["lead", "observer", "injector", "approver", "scribe", "responder"]
STANDARD_PHASES: Final = ("baseline", "injection", "observation", "recovery")

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
_SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{2,62}$"
Slug = Annotated[str, msgspec.Meta(pattern=_SLUG_PATTERN)]
_PHASE_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,39}$"
PhaseName = Annotated[str, msgspec.Meta(pattern=_PHASE_PATTERN)]
_ROUTE_PATTERN: Final = r"^/[^\s?#]*$"
RouteTemplate = Annotated[str, msgspec.Meta(pattern=_ROUTE_PATTERN)]
#: A duration string (``30s``, ``1m``, ``1m30s``, ``250ms``); checked by ``parse_duration``.
Duration = Annotated[str, msgspec.Meta(min_length=1)]

# What each pattern means, for error messages that a person can act on.
_PATTERN_MEANING: Final = {
    _SLUG_PATTERN: "a slug of 3 to 63 lowercase letters, digits and hyphens, starting with a letter or digit",
    _PHASE_PATTERN: "a lowercase phase name (letters, digits, '-' or '_', starting with a letter, at most 40)",
    _ROUTE_PATTERN: "a route template starting with '/' without spaces, query or fragment, such as /patients/{id}",
}


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every definition Struct: unknown fields are typos, never silently ignored."""


# ---- steady state -------------------------------------------------------------------------
class MeasurementFilter(_Strict, kw_only=True):
    """Which records a measurement looks at; absent keys match everything."""

    leg: Leg | None = None
    route: RouteTemplate | None = None
    service: NonEmptyStr | None = None
    gateway: NonEmptyStr | None = None
    backend: NonEmptyStr | None = None


class Tolerance(_Strict, kw_only=True):
    """The band a steady-state measurement must stay in; at least one bound."""

    max: float | None = None
    min: float | None = None


class Measurement(_Strict, kw_only=True):
    """One steady-state measurement: an SLI over a source, with its tolerance."""

    name: NonEmptyStr
    sli: Sli
    source: Literal["requests", "spans"]
    filter: MeasurementFilter | None = None
    tolerance: Tolerance


# ---- people, preparation, context ------------------------------------------------------------
class Participant(_Strict, kw_only=True):
    name: NonEmptyStr
    role: Role


class Prerequisite(_Strict, kw_only=True):
    """Something that must be true before the experiment starts, e.g. telemetry that is needed."""

    item: NonEmptyStr
    done: bool = False
    owner: NonEmptyStr | None = None


class Environment(_Strict, kw_only=True):
    """Where the experiment runs; production carries more controls (an approver)."""

    name: NonEmptyStr
    kind: Literal["non-live", "production"]
    risk: Literal["low", "medium", "high"]
    approver: NonEmptyStr | None = None


class Targets(_Strict, kw_only=True):
    """What the experiment touches; at least one list is non-empty."""

    services: list[NonEmptyStr] = []
    routes: list[RouteTemplate] = []
    gateways: list[NonEmptyStr] = []
    backends: list[NonEmptyStr] = []


class Phase(_Strict, kw_only=True):
    name: PhaseName
    planned_minutes: Annotated[float, msgspec.Meta(gt=0)]


def _standard_phases() -> list[Phase]:
    # Planned lengths are a starting point for a first gameday; teams override them per file.
    return [Phase(name="baseline", planned_minutes=10), Phase(name="injection", planned_minutes=15),
            Phase(name="observation", planned_minutes=15), Phase(name="recovery", planned_minutes=10)]


# ---- abort conditions (stored now, evaluated by the abort-rule judge later) -------------------
class AbortScope(_Strict, kw_only=True):
    """Which records an abort condition looks at; absent keys match everything in the experiment.

    Every key given must hold. A request leg has no service name of its own: ``service`` matches
    a leg whose gateway or backend has that name (a span: its service); ``gateway`` and
    ``backend`` match only that one; ``target`` matches the gateway, backend, route or service
    (``hub.abort.measure``).
    """

    leg: Leg | None = None
    route: RouteTemplate | None = None
    service: NonEmptyStr | None = None
    gateway: NonEmptyStr | None = None
    backend: NonEmptyStr | None = None
    target: NonEmptyStr | None = None


StatusClass = Annotated[str, msgspec.Meta(pattern=r"^[1-5]xx$")]
StatusCode = Annotated[int, msgspec.Meta(ge=0, le=599)]
HttpMethod = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{1,20}$")]


class RecordMatch(_Strict, kw_only=True):
    """Which request legs a custom ``count`` or ``ratio`` counts (``where``, ``of``).

    Every key given must hold; a list holds when any of its values does. ``status`` takes codes
    (``503``) and classes (``"5xx"``); ``failed`` is the hub's failed leg (status 0, >= 500, or
    an error text), as in ``error_rate``.
    """

    status: list[StatusCode | StatusClass] | None = None
    method: list[HttpMethod] | None = None
    leg: Leg | None = None
    route: RouteTemplate | None = None
    gateway: NonEmptyStr | None = None
    backend: NonEmptyStr | None = None
    failed: bool | None = None
    latency_ms_over: Annotated[float, msgspec.Meta(ge=0)] | None = None


class AbortCondition(_Strict, kw_only=True):
    """Stop (or warn) when ``measurement`` over ``window`` compares true against ``threshold``
    for at least ``for``, with at least ``min_samples`` samples in the window."""

    name: NonEmptyStr
    measurement: AbortMeasurement
    scope: AbortScope = msgspec.field(default_factory=AbortScope)
    window: Duration
    comparison: Literal[">", ">=", "<", "<="]
    threshold: float
    for_: Duration = msgspec.field(default="0s", name="for")
    min_samples: Annotated[int, msgspec.Meta(ge=1)] = 1
    severity: Literal["abort", "warn"] = "abort"
    # A comparison against a control group instead of a fixed level: the rule's value is the
    # experiment group's error rate minus the control group's when a one-sided two-proportion
    # test finds it significant at ``confidence``, else 0; ``threshold`` is then the smallest
    # difference worth aborting for. A noisy metric moves both groups alike and aborts nothing.
    control: AbortScope | None = None
    confidence: Annotated[float, msgspec.Meta(gt=0.5, lt=1.0)] = 0.99
    # measurement count: request legs in scope matching ``where``, in the window.
    # measurement ratio: of the legs in scope matching ``of`` (all, when absent), the share that
    # also match ``where``. With ``control``, the ratio is compared like an error rate.
    where: RecordMatch | None = None
    of: RecordMatch | None = None


class HaltTarget(_Strict, kw_only=True):
    """An endpoint that stops this experiment's fault injection: called (POST, JSON) when one of its
    abort rules fires during the run, before anything else is done about the alert."""

    url: NonEmptyStr
    name: NonEmptyStr | None = None


class ExperimentDefinition(_Strict, kw_only=True):
    """The whole definition file. ``id`` is filled in at creation when the file has none."""

    id: Slug | None = None
    title: NonEmptyStr
    scenario: NonEmptyStr
    hypothesis: NonEmptyStr
    expected_outcome: NonEmptyStr
    steady_state: Annotated[list[Measurement], msgspec.Meta(min_length=1)]
    participants: list[Participant] = []
    prerequisites: list[Prerequisite] = []
    environment: Environment
    targets: Targets
    phases: Annotated[list[Phase], msgspec.Meta(min_length=1)] = msgspec.field(default_factory=_standard_phases)
    abort_conditions: list[AbortCondition] = []
    # Abort conditions act from the start of the run to its end plus this grace; outside it an
    # alert is recorded as outside the run and triggers nothing.
    abort_grace: Duration = "10s"
    # Called when an abort condition fires during the run (and no global halt webhooks unless enabled).
    halt: list[HaltTarget] = []
    tags: list[NonEmptyStr] = []


# ---- durations ----------------------------------------------------------------------------
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``30s``, ``1m30s``, ``1.5h`` or ``250ms`` (``0`` is zero)."""
    if not isinstance(text, str):
        raise DurationError(f"expected a duration string such as '30s' or '1m30s', got {text!r}")
    s = text.strip()
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(s) or not s:
        raise DurationError(
            f"invalid duration {text!r}: expected numbers with units ms, s, m or h, such as '30s', '1m30s', '250ms'")
    return total


# ---- ids ----------------------------------------------------------------------------------
def derive_id(title: str, suffix: str | None = None) -> str:
    """A slug from ``title`` plus a short random suffix, e.g. ``patient-api-db-failover-3f9a1c``."""
    suffix = suffix if suffix is not None else secrets.token_hex(3)
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[: 62 - len(suffix)].rstrip("-")
    slug = f"{base}-{suffix}" if base else f"experiment-{suffix}"
    return slug


# ---- parsing ------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys: YAML would silently keep the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        if isinstance(key, (str, int, float, bool)):
            seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


#: Measurements whose value is a share or a quantile of the window's samples (all but the
#: counting ones): with min_samples 1 one slow or failing request in a quiet window is the whole value.
_SAMPLED: Final = frozenset(ABORT_MEASUREMENTS) - {"request_rate", "absence", "count"}


def advisories(definition: ExperimentDefinition) -> list[str]:
    """Valid but risky choices in a definition, one line each (``experiment validate`` and
    ``create`` print them as warnings): an abort rule on a share or quantile with ``min_samples``
    left at 1, which the first partial batch of a window or a single request can fire."""
    out = []
    for rule in definition.abort_conditions:
        if rule.measurement in _SAMPLED and rule.control is None and rule.min_samples == 1:
            out.append(f"abort condition {rule.name!r}: {rule.measurement} with min_samples 1 can fire on a single "
                       f"request or the first partial batch of a window; set min_samples (for example 100)")
    return out


def load_definition(path: str | Path) -> ExperimentDefinition:
    """Read and validate a definition file; errors name the file as given."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_DEFINITION_BYTES:
            raise DefinitionError(f"{path}: the definition file is {size} bytes, more than {MAX_DEFINITION_BYTES}")
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read the definition file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"{path}: not UTF-8 text (byte {exc.start}); save the definition as UTF-8") from None
    return parse_definition(text, source=str(path))


#: Deepest nesting of lists and mappings a definition may have (a definition needs about six levels).
MAX_DEFINITION_DEPTH = 64
#: Largest definition file read.
MAX_DEFINITION_BYTES = 1_000_000


def parse_definition(text: str, source: str = "<string>", max_depth: int = MAX_DEFINITION_DEPTH) -> ExperimentDefinition:
    """Validate a definition given as YAML (JSON is YAML too)."""
    from hub.records.decode import too_deep

    if too_deep(text.encode("utf-8", "surrogatepass"), max_depth):
        raise DefinitionError(f"{source}: nested more than {max_depth} levels deep")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except RecursionError:  # block-style nesting, which the bracket count does not see
        raise DefinitionError(f"{source}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context and context not in problem else problem
        raise DefinitionError(f"{source}: {where}YAML syntax error: {detail}") from None
    try:
        return _validate(data, source, lambda path: _yaml_line(text, path))
    except RecursionError:
        raise DefinitionError(f"{source}: nested too deeply to read") from None


def definition_from_dict(data: Any, source: str = "<dict>") -> ExperimentDefinition:
    """Validate a definition given as plain data (the form stored in ``ExperimentCreated``)."""
    try:
        return _validate(data, source, lambda path: None)
    except RecursionError:
        raise DefinitionError(f"{source}: nested too deeply to read") from None


def definition_to_dict(defn: ExperimentDefinition) -> dict:
    """JSON-able plain data; ``definition_from_dict`` gives back an equal definition.

    Defaults are written out rather than omitted, so that a stored definition keeps its meaning
    even if a later release changes a default (the standard phases, for instance).
    """
    return msgspec.to_builtins(defn)


# ---- validation internals -------------------------------------------------------------------
Path_ = list[str | int]


def _validate(data: Any, source: str, line_of) -> ExperimentDefinition:
    def fail(path: Path_, problem: str) -> DefinitionError:
        line = line_of(path)
        where = f" (line {line})" if line else ""
        shown = _show_path(path)
        return DefinitionError(f"{source}: {shown + ': ' if shown else ''}{problem}{where}")

    if data is None:
        raise fail([], "the definition is empty")
    if not isinstance(data, dict):
        raise fail([], f"expected a mapping of fields at the top level, got {_kind_of(data)}")
    try:
        defn = msgspec.convert(data, ExperimentDefinition)
    except msgspec.ValidationError as exc:
        path, problem = _explain(str(exc), data)
        raise fail(path, problem) from None
    for path, problem in _semantic_errors(defn):
        raise fail(path, problem)
    return defn


def _semantic_errors(d: ExperimentDefinition) -> Iterator[tuple[Path_, str]]:
    """What the types cannot say, first problem first (in file order)."""
    # JSON has no NaN or infinity: such a number would not survive the trip through the event log.
    numbers: list[tuple[Path_, float | None]] = [(["steady_state", i, "tolerance", k], getattr(m.tolerance, k))
               for i, m in enumerate(d.steady_state) for k in ("max", "min")]
    numbers += [(["phases", i, "planned_minutes"], p.planned_minutes) for i, p in enumerate(d.phases)]
    numbers += [(["abort_conditions", i, "threshold"], c.threshold) for i, c in enumerate(d.abort_conditions)]
    for path, value in numbers:
        if value is not None and not math.isfinite(value):
            yield path, f"expected a finite number, got {value!r}"
    yield from _duplicates(d.steady_state, "steady_state", "name", "measurement")
    for i, m in enumerate(d.steady_state):
        t = m.tolerance
        if t.max is None and t.min is None:
            yield ["steady_state", i, "tolerance"], "needs max, min or both"
        elif t.max is not None and t.min is not None and t.min > t.max:
            yield ["steady_state", i, "tolerance"], f"min ({t.min:g}) is greater than max ({t.max:g})"
        # These SLIs exist in one source only; the other would measure nothing.
        if m.sli == "span_error_rate" and m.source != "spans":
            yield ["steady_state", i, "source"], "span_error_rate is measured on spans, set source: spans"
        if m.sli == "shadow_mismatch_rate" and m.source != "requests":
            yield ["steady_state", i, "source"], "shadow_mismatch_rate is measured on requests, set source: requests"
    yield from _duplicates(d.prerequisites, "prerequisites", "item", "prerequisite")
    if d.environment.kind == "production" and not d.environment.approver:
        yield ["environment", "approver"], "required when environment.kind is production"
    targets = d.targets
    if not (targets.services or targets.routes or targets.gateways or targets.backends):
        yield ["targets"], "at least one of services, routes, gateways or backends must name a target"
    yield from _duplicates(d.phases, "phases", "name", "phase")
    yield from _duplicates(d.abort_conditions, "abort_conditions", "name", "abort condition")
    try:
        parse_duration(d.abort_grace)
    except DurationError as exc:
        yield ["abort_grace"], str(exc)
    yield from _duplicates([h for h in d.halt if h.name], "halt", "name", "halt target")
    for i, h in enumerate(d.halt):
        if not re.match(r"^https?://[^/\s]+", h.url) or any(ch.isspace() for ch in h.url):
            yield ["halt", i, "url"], "expected an http:// or https:// URL"
    for i, c in enumerate(d.abort_conditions):
        try:
            if parse_duration(c.window) <= 0:
                yield ["abort_conditions", i, "window"], f"must be longer than zero, got {c.window!r}"
        except DurationError as exc:
            yield ["abort_conditions", i, "window"], str(exc)
        try:
            parse_duration(c.for_)
        except DurationError as exc:
            yield ["abort_conditions", i, "for"], str(exc)
        custom = c.measurement in CUSTOM_MEASUREMENTS
        if custom and c.where is None:
            yield ["abort_conditions", i, "where"], f"required for measurement {c.measurement}: which request legs to count"
        if not custom and c.where is not None:
            yield ["abort_conditions", i, "where"], "only for measurement count or ratio"
        if c.of is not None and c.measurement != "ratio":
            yield ["abort_conditions", i, "of"], "only for measurement ratio"
        if c.control is not None and c.measurement not in ("error_rate", "span_error_rate", "shadow_mismatch_rate",
                                                           "ratio"):
            yield ["abort_conditions", i, "control"], \
                "a control group compares proportions: use it with error_rate, span_error_rate, shadow_mismatch_rate or ratio"


def _duplicates(items: list, section: str, key: str, noun: str) -> Iterator[tuple[Path_, str]]:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, key)
        if value in first:
            yield [section, i, key], f"duplicate {noun} {value!r} (also {section}[{first[value]}])"
        first.setdefault(value, i)


_AT: Final = re.compile(r" - at `\$(.*)`$")
_PATH_PART: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_TYPE_WORDS: Final = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
                      "array": "a list", "object": "a mapping", "null": "nothing (null)"}


def _explain(message: str, data: Any) -> tuple[Path_, str]:
    """msgspec's message as (field path, problem in words a definition author uses)."""
    path: Path_ = []
    at = _AT.search(message)
    if at:
        for name, index in _PATH_PART.findall(at.group(1)):
            path.append(int(index) if index else name)
        message = message[: at.start()]
    value = _value_at(data, path)
    if m := re.match(r"Object missing required field `(.+)`", message):
        return path + [m.group(1)], "required"
    if m := re.match(r"Object contains unknown field `(.+)`", message):
        known = _field_names(_type_at(path))
        hint = f" (expected one of: {', '.join(known)})" if known else ""
        return path + [m.group(1)], f"unknown field{hint}"
    if message.startswith(("Invalid enum value", "Invalid value")):
        allowed = _literal_values(_type_at(path))
        return path, f"expected one of {', '.join(map(str, allowed))}, got {value!r}"
    if m := re.match(r"Expected `str` matching regex '(.+)'", message):
        pattern = m.group(1).replace("\\\\", "\\")  # msgspec shows the pattern with doubled backslashes
        meaning = _PATTERN_MEANING.get(pattern, f"a string matching {pattern}")
        return path, f"expected {meaning}, got {value!r}"
    if message.startswith("Expected `str` of length >= 1"):
        return path, "must not be empty"
    if message.startswith("Expected `array` of length >= 1"):
        return path, "must list at least one entry"
    if m := re.match(r"Expected `(\w+)` ([<>]=?) (\S+)$", message):
        return path, f"expected a number {m.group(2)} {float(m.group(3)):g}, got {value!r}"
    if m := re.match(r"Expected `(.+)`, got `(\w+)`", message):
        # "null" in the expected types only says that the field is optional: not worth showing.
        types = [w.strip() for w in m.group(1).split("|") if w.strip() != "null"]
        wanted = " or ".join(_TYPE_WORDS.get(w, w) for w in types)
        hint = ""
        if path and path[-1] in ("window", "for"):
            wanted, hint = "a duration string", " (write it with a unit, such as '30s' or '1m')"
        if allowed := _literal_values(_type_at(path)):
            wanted = "one of " + ", ".join(map(str, allowed))
        return path, f"expected {wanted}, got {_shown(value)}{hint}"
    return path, message[:1].lower() + message[1:]


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, (dict, list)):
        return _kind_of(value)
    return repr(value)


def _kind_of(value: Any) -> str:
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else repr(value)


def _show_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _value_at(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _unwrap(t: Any) -> list[Any]:
    """The concrete types a field may hold: ``Annotated`` stripped, unions flattened, ``None`` dropped."""
    if get_origin(t) is Annotated:
        return _unwrap(get_args(t)[0])
    if get_origin(t) in (Union, UnionType):
        return [u for sub in get_args(t) for u in _unwrap(sub)]
    return [] if t is type(None) else [t]


def _type_at(path: Path_) -> Any:
    """The declared type at ``path``, walking the Structs' annotations (``None`` when unknown)."""
    current: Any = ExperimentDefinition
    for part in path:
        nxt = None
        for t in _unwrap(current):
            if isinstance(part, int) and get_origin(t) is list:
                nxt = get_args(t)[0]
            elif isinstance(part, str) and isinstance(t, type) and issubclass(t, msgspec.Struct):
                nxt = next((f.type for f in msgspec.structs.fields(t) if f.encode_name == part), None)
            if nxt is not None:
                break
        if nxt is None:
            return None
        current = nxt
    return current


def _field_names(t: Any) -> list[str]:
    for u in _unwrap(t) if t is not None else []:
        if isinstance(u, type) and issubclass(u, msgspec.Struct):
            return [f.encode_name for f in msgspec.structs.fields(u)]
    return []


def _literal_values(t: Any) -> tuple:
    """The allowed values of a ``Literal`` field, in the order they are declared."""
    for u in _unwrap(t) if t is not None else []:
        if get_origin(u) is Literal:
            return get_args(u)
    return ()


def _yaml_line(text: str, path: Path_) -> int | None:
    """The 1-based line of the YAML node at ``path`` (or of its nearest existing parent)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    nxt, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            break
        node = nxt
    return line
