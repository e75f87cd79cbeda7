"""Pytest plugin: the real ClickHouse engine (chDB) in a temporary directory, migrated.

chDB keeps one engine per process, so every test in the session shares one data directory;
each test that needs isolation gets its own database name.
"""

from __future__ import annotations

import uuid

import pytest

from hub.settings import Settings, load_settings
from hub.storage.client import Store, open_store
from hub.storage.migrations import migrate

_STORE: dict[str, Store] = {}


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("clickhouse"))


def store_for(settings: Settings) -> Store:
    """The session's one engine, opened once, with the settings' database migrated."""
    key = settings.clickhouse_dsn
    store = _STORE.get(key)
    if store is None:
        store = open_store(settings, create_database=False)
        _STORE[key] = store
    store.command(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
    view = Store(store._client, settings.database, store.dsn)
    view._lock = store._lock
    migrate(view, settings)
    return view


@pytest.fixture
def hub_settings(tmp_path, chdb_dir) -> Settings:
    """Settings for an isolated test: own home, own database in the session's chDB engine."""
    database = f"t_{uuid.uuid4().hex[:10]}"
    base = load_settings({"HUB_HOME": str(tmp_path / "home")})
    return base.with_overrides(database=database, clickhouse_url=f"chdb://{chdb_dir}")


@pytest.fixture
def store(hub_settings) -> Store:
    return store_for(hub_settings)
