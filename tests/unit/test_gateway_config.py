"""gateway.server: the proxy port has one HTTP server; the old ``aiohttp`` value is refused by name."""

from __future__ import annotations

import pytest

from hub.gateway.config import GatewayConfigError, parse_config

DOC = {"gateway": {"name": "g", "listen": "127.0.0.1:0"}, "backends": {"api": {"url": "http://127.0.0.1:1"}},
       "routes": [{"path": "/api/{rest*}", "backend": "api"}]}


def test_the_aiohttp_server_is_refused_with_a_message_naming_protocol():
    with pytest.raises(GatewayConfigError) as err:
        parse_config({**DOC, "gateway": {**DOC["gateway"], "server": "aiohttp"}}, "g.yaml")
    assert "gateway.server" in str(err.value) and "protocol" in str(err.value) and "aiohttp" in str(err.value)
    assert parse_config({**DOC, "gateway": {**DOC["gateway"], "server": "protocol"}}).server == "protocol"
