"""The gateway's header rules as plain functions: hop-by-hop removal, forwarding headers, trust."""

import pytest
from multidict import CIMultiDict

from hub.gateway.config import GatewayConfigError, parse_config
from hub.gateway.headers import Trust, end_to_end, forwarding, overrides_method


def test_connection_nominated_and_hop_by_hop_headers_are_removed():
    items = [("Connection", "keep-alive, X-Secret"), ("connection", "Cookie"), ("X-Secret", "1"), ("Cookie", "c"),
             ("Proxy-Connection", "x"), ("TE", "trailers"), ("Accept", "*/*"), ("Host", "h"), ("Content-Length", "3")]
    assert end_to_end(items) == [("Accept", "*/*")]


def test_forwarding_headers_append_the_client_and_quote_ipv6():
    h = CIMultiDict([("Host", "api.example:8080"), ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2"),
                     ("X-Real-IP", "6.6.6.6"), ("X-Forwarded-Host", "evil")])
    out = dict(forwarding(h, "::1", "http", trusted=False))
    assert out["X-Forwarded-For"] == "10.0.0.1, 10.0.0.2, ::1"
    assert out["Forwarded"] == 'for="[::1]";proto=http;host="api.example:8080"'
    assert out["X-Forwarded-Host"] == "api.example:8080" and out["X-Real-IP"] == "::1"
    trusted = dict(forwarding(h, "10.0.0.3", "http", trusted=True))
    assert trusted["X-Forwarded-Host"] == "evil" and trusted["X-Real-IP"] == "6.6.6.6"


def test_forwarding_headers_named_in_connection_are_dropped_before_the_client_is_appended():
    h = CIMultiDict([("Host", "h"), ("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=6.6.6.6"),
                     ("X-Forwarded-Host", "evil"), ("X-Forwarded-Proto", "https"), ("X-Real-IP", "6.6.6.6"),
                     ("Connection", "close, X-Forwarded-For"), ("Connection", "Forwarded, X-Forwarded-Host"),
                     ("Connection", "X-Forwarded-Proto, X-Real-IP")])
    out = dict(forwarding(h, "127.0.0.1", "http", trusted=True))
    assert out["X-Forwarded-For"] == "127.0.0.1" and out["Forwarded"] == "for=127.0.0.1;proto=http;host=h"
    assert out["X-Forwarded-Host"] == "h" and out["X-Forwarded-Proto"] == "http" and out["X-Real-IP"] == "127.0.0.1"


def test_trust_by_secret_or_peer_network():
    t = Trust("s" * 20, ("10.1.0.0/16", "::1"))
    assert t.trusts(CIMultiDict({"X-Hub-Gateway-Secret": "s" * 20}), "192.0.2.1")
    assert not t.trusts(CIMultiDict({"X-Hub-Gateway-Secret": "s" * 19}), "192.0.2.1")
    assert t.trusts(CIMultiDict(), "10.1.2.3") and t.trusts(CIMultiDict(), "::ffff:10.1.2.3")
    assert t.trusts(CIMultiDict(), "::1") and not t.trusts(CIMultiDict(), "10.2.0.1")
    assert not Trust().trusts(CIMultiDict({"X-Hub-Gateway-Secret": ""}), "127.0.0.1")


def test_method_overrides():
    assert overrides_method(CIMultiDict({"x-http-method-override": "delete", "X-Method-Override": "PUT"})) == \
        ["DELETE", "PUT"]


BASE = {"backends": {"b": {"url": "http://127.0.0.1:1"}}, "routes": [{"path": "/x", "backend": "b"}]}


def test_trust_configuration(monkeypatch):
    cfg = parse_config({**BASE, "gateway": {"trust": {"secret": "x" * 16, "peers": ["10.0.0.0/8", "::1"]}}})
    assert cfg.trust_secret == "x" * 16 and cfg.trust_peers == ("10.0.0.0/8", "::1")
    monkeypatch.setenv("CHAIN_SECRET", "y" * 32)
    assert parse_config({**BASE, "gateway": {"trust": {"secret_env": "CHAIN_SECRET"}}}).trust_secret == "y" * 32
    for bad, message in [({"secret": "short"}, "at least 16"), ({"peers": ["nope"]}, "CIDR"),
                         ({"secret_env": "UNSET_CHAIN_SECRET_X"}, "not set"), ({"bogus": 1}, "unknown key")]:
        with pytest.raises(GatewayConfigError, match=message):
            parse_config({**BASE, "gateway": {"trust": bad}})


def test_only_a_plain_host_with_an_optional_port_is_a_valid_host():
    from hub.gateway.headers import valid_host
    for good in ([], ["gw.example"], ["gw.example:8080"], ["10.0.0.1"], ["[::1]:443"], ["host_1.local."]):
        assert valid_host(good), good
    for bad in (['evil.example;proto=https,for="1.2.3.4"'], ["a b"], ["a,b"], ["a=b"], ['"a"'], ["a:port"],
                ["a", "b"], [""], ["-a.example"]):
        assert not valid_host(bad), bad
