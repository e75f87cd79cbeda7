"""Headers as a proxy must treat them (RFC 9110 7.6), and the gateway's own headers, which only a
trusted upstream gateway may set.

- Hop-by-hop headers (``Connection``, ``Keep-Alive``, ``Proxy-Connection``, ``TE``, ``Trailer``,
  ``Transfer-Encoding``, ``Upgrade``, ``Proxy-Authenticate``, ``Proxy-Authorization``) and every
  header that ``Connection`` nominates are removed in both directions.
- ``X-Forwarded-For`` and ``Forwarded`` (RFC 7239) get the client's address appended;
  ``X-Forwarded-Host`` holds the Host the client asked for (a malformed or repeated Host is refused
  with 400, see ``valid_host``), ``X-Forwarded-Proto`` the scheme it
  used, ``X-Real-IP`` its address: a client's own values of those three are replaced (a trusted
  upstream gateway's are kept).
- The gateway's own headers (``X-Hub-Via``, ``X-Correlation-Id``, ``X-Experiment-Id``,
  ``X-Experiment-Phase``, ``X-Shadow-Request``) and the trust header are taken only from a
  trusted upstream gateway (``gateway.trust``: a shared secret in ``X-Hub-Gateway-Secret``, or a
  peer address in ``peers``); from anyone else they are removed and ignored. A client's
  ``X-Correlation-Id`` travels on as ``X-Client-Correlation-Id`` and as a span attribute, never
  as the id the legs are paired by.
"""

from __future__ import annotations

import hmac
import ipaddress
import re

from multidict import CIMultiDict

HEADER_CID = "X-Correlation-Id"
HEADER_CLIENT_CID = "X-Client-Correlation-Id"
HEADER_EXP = "X-Experiment-Id"
HEADER_PHASE = "X-Experiment-Phase"
HEADER_SHADOW = "X-Shadow-Request"
HEADER_VIA = "X-Hub-Via"
HEADER_SECRET = "X-Hub-Gateway-Secret"

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# set by the HTTP library for the message it writes
FRAMING = frozenset({"host", "content-length"})
# the gateway's own: trusted only from an upstream gateway
OWN = frozenset(h.lower() for h in (HEADER_CID, HEADER_CLIENT_CID, HEADER_EXP, HEADER_PHASE, HEADER_SHADOW,
                                    HEADER_VIA, HEADER_SECRET))
FORWARDING = frozenset({"x-forwarded-for", "forwarded", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"})
METHOD_OVERRIDES = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})
_CID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def nominated(headers) -> set[str]:
    """The header names a ``Connection`` header nominates (lower case)."""
    out = set()
    for value in headers.getall("Connection", ()) if hasattr(headers, "getall") else \
            [v for k, v in headers if k.lower() == "connection"]:
        for token in value.split(","):
            token = token.strip().lower()
            if token:
                out.add(token)
    return out


_NOT_END_TO_END = HOP_BY_HOP | FRAMING
_gone: dict[frozenset, frozenset] = {}   # _NOT_END_TO_END | drop, per drop set


def end_to_end(items, drop: frozenset = frozenset()) -> list[tuple[str, str]]:
    """``items`` (name, value) pairs without hop-by-hop headers, nominated ones and ``drop``."""
    gone = _gone.get(drop)
    if gone is None:
        gone = _gone[drop] = _NOT_END_TO_END | drop
    named = [(k.lower(), k, v) for k, v in items]
    connection = [v for lk, _, v in named if lk == "connection"]
    if connection:
        gone = gone | nominated([("Connection", v) for v in connection])
    return [(k, v) for lk, k, v in named if lk not in gone]


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*\.?"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def valid_host(values) -> bool:
    """True when a request has at most one ``Host`` header and it is a plain host name, IPv4 or
    bracketed IPv6 address with an optional port (no quotes, ``;``, ``,`` or ``=``, which would
    reach the backends inside ``X-Forwarded-Host`` and ``Forwarded``). No Host at all is valid."""
    values = list(values)
    return not values or (len(values) == 1 and bool(_HOST.match(values[0])))


def valid_correlation_id(value: str) -> bool:
    return bool(_CID.match(value))


class Trust:
    """Which peers are upstream gateways: the shared secret, or the peer's address."""

    def __init__(self, secret: str = "", peers: tuple[str, ...] = ()):
        self.secret = secret
        self.networks = tuple(ipaddress.ip_network(p, strict=False) for p in peers)

    def trusts(self, headers, remote: str | None) -> bool:
        if self.secret:
            given = headers.get(HEADER_SECRET, "")
            if given and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.secret.encode()):
                return True
        if self.networks and remote:
            try:
                addr = ipaddress.ip_address(remote.split("%", 1)[0])
            except ValueError:
                return False
            mapped = getattr(addr, "ipv4_mapped", None)
            if mapped is not None:
                addr = mapped
            return any(addr in net for net in self.networks)
        return False


def _forwarded_node(address: str) -> str:
    if ":" in address:  # IPv6: quoted and bracketed (RFC 7239 6)
        return f'"[{address}]"'
    return address or "unknown"


def _forwarded_value(value: str) -> str:
    return value if _TOKEN.match(value) else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def forwarding(headers, remote: str | None, scheme: str, trusted: bool) -> list[tuple[str, str]]:
    """The forwarding headers to send on: the client's chain with the client appended. A forwarding
    header the ``Connection`` header nominates is hop-by-hop: its value is dropped, as if absent."""
    client = remote or "unknown"
    host = headers.get("Host", "")
    gone = nominated(headers) & FORWARDING if "Connection" in headers else frozenset()
    if gone:
        headers = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in gone)
    xff = ", ".join(v for v in headers.getall("X-Forwarded-For", ()) if v.strip())
    fwd = ", ".join(v for v in headers.getall("Forwarded", ()) if v.strip())
    element = f"for={_forwarded_node(client)};proto={scheme}"
    if host:
        element += f";host={_forwarded_value(host)}"
    out = [("X-Forwarded-For", f"{xff}, {client}" if xff else client),
           ("Forwarded", f"{fwd}, {element}" if fwd else element)]
    if trusted and headers.get("X-Forwarded-Host"):
        out.append(("X-Forwarded-Host", headers["X-Forwarded-Host"]))
    elif host:
        out.append(("X-Forwarded-Host", host))
    out.append(("X-Forwarded-Proto", headers["X-Forwarded-Proto"] if trusted and headers.get("X-Forwarded-Proto")
                else scheme))
    out.append(("X-Real-IP", headers["X-Real-IP"] if trusted and headers.get("X-Real-IP") else client))
    return out


def overrides_method(headers) -> list[str]:
    """The methods named by method-override headers (upper case), empty when there are none."""
    return [v.strip().upper() for k, v in headers.items() if k.lower() in METHOD_OVERRIDES]
