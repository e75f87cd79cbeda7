"""Where a request leg came from, and which legs a measurement counts.

Every leg is stored with its CloudEvents ``source`` (``requests.source``): ``/hub-gateway/<name>``
for the hub's gateway, ``/vegeta`` for a Vegeta results import, anything else for a program that
emits legs itself (``hub.emit``). Its *kind* is ``gateway``, ``vegeta`` or ``emit``.

The same traffic recorded twice (through the gateway and by the load tool that sent it) would be
counted twice, so measurements take a *source selection*:

- ``auto`` (the default): the gateway's legs when the experiment has any, else every leg;
- ``all``: every leg, whatever its source (counts traffic recorded twice twice);
- a comma-separated list of kinds (``gateway``, ``vegeta``, ``emit``).
"""

from __future__ import annotations

from hub.errors import UserError

GATEWAY_PREFIX = "/hub-gateway/"  # hub.shadow.pairing.GATEWAY_SOURCE_PREFIX
VEGETA_SOURCE = "/vegeta"  # hub.integrations.vegeta.SOURCE
KINDS = ("gateway", "vegeta", "emit")
SELECTIONS = ("auto", "all") + KINDS

#: The kind of a ``requests`` row's source, as SQL.
KIND_SQL = (f"multiIf(startsWith(source, '{GATEWAY_PREFIX}'), 'gateway', "
            f"source = '{VEGETA_SOURCE}' OR startsWith(source, '{VEGETA_SOURCE}/'), 'vegeta', 'emit')")


def kind_of(source: str) -> str:
    if source.startswith(GATEWAY_PREFIX):
        return "gateway"
    if source == VEGETA_SOURCE or source.startswith(VEGETA_SOURCE + "/"):
        return "vegeta"
    return "emit"


def parse_selection(selection: str | None) -> str:
    """A selection as given (``--source``), checked; ``auto`` when empty."""
    text = (selection or "auto").strip().lower()
    if text in ("auto", "all"):
        return text
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise UserError(f"source selection {selection!r}: expected auto, all or a list of "
                        f"{', '.join(KINDS)}")
    return ",".join(dict.fromkeys(kinds))


def _lit(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def selection_sql(db: str, experiment_id: str, selection: str = "auto", *, experiment_sql: str | None = None) -> str:
    """A condition on ``requests`` rows of one experiment: the legs the selection counts.
    ``experiment_sql``: the experiment as SQL (a literal already quoted) instead of ``experiment_id``."""
    selection = parse_selection(selection)
    experiment = experiment_sql or _lit(experiment_id)
    if selection == "all":
        return "1"
    if selection == "auto":
        return (f"(startsWith(source, '{GATEWAY_PREFIX}') OR (SELECT count() FROM {db}.requests "
                f"WHERE experiment_id = {experiment} AND startsWith(source, '{GATEWAY_PREFIX}')) = 0)")
    return f"({KIND_SQL} IN ({', '.join(_lit(k) for k in selection.split(','))}))"


#: The kinds of the legs a result counted, as an aggregate (``gateway``, ``gateway, vegeta`` ...).
COUNTED_SQL = f"arrayStringConcat(arraySort(groupUniqArray({KIND_SQL})), ', ')"
