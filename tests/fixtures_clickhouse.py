"""Pytest plugin: the real ClickHouse engine (chDB) in a temporary directory, migrated.

chDB keeps one engine per process, so every test in the session shares one data directory;
each test that needs isolation gets its own database name.

Running the 18 migrations takes a few seconds (ALTERs, backfills); most tests only need the
schema they leave. So the ``store`` fixture migrates one template database per session (per TTL
setting) and gives each test a copy of it: every table and view created from the template's own
``CREATE`` statement, and the template's migration records. ``tests/integration/test_store_fixture.py``
checks that a copy equals a store migrated from scratch. ``store_for`` still runs the migrations
themselves (the migration tests use it).
"""

from __future__ import annotations

import threading
import uuid

import pytest

from hub.settings import Settings, load_settings
from hub.storage.client import Store, open_store
from hub.storage.migrations import migrate

_STORE: dict[str, Store] = {}
# (engine DSN, TTL days) -> (template database, its tables' CREATE statements in creation order)
_TEMPLATES: dict[tuple[str, int], tuple[str, list[str]]] = {}
_TEMPLATES_LOCK = threading.Lock()
_VIEW_ENGINES = ("View", "MaterializedView")


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("clickhouse"))


def store_for(settings: Settings) -> Store:
    """The session's one engine, opened once, with the settings' database migrated."""
    view = store_for_engine(settings)
    view.command(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
    migrate(view, settings)
    return view


@pytest.fixture
def hub_settings(tmp_path, chdb_dir) -> Settings:
    """Settings for an isolated test: own home, own database in the session's chDB engine."""
    return _isolated_settings(tmp_path / "home", chdb_dir)


def _isolated_settings(home, chdb_dir: str) -> Settings:
    base = load_settings({"HUB_HOME": str(home)})
    return base.with_overrides(database=f"t_{uuid.uuid4().hex[:10]}", clickhouse_url=f"chdb://{chdb_dir}")


def _template(settings: Settings) -> tuple[str, list[str]]:
    """The session's template for these settings: a database migrated by every migration, and the
    ``CREATE`` statements of its tables and views (tables first, then views, which read them)."""
    key = (settings.clickhouse_dsn, settings.ttl_days)
    with _TEMPLATES_LOCK:
        if key not in _TEMPLATES:
            name = f"t_template_{uuid.uuid4().hex[:12]}"
            view = store_for(settings.with_overrides(database=name))
            rows = view.query("SELECT name, engine, create_table_query FROM system.tables "
                              "WHERE database = {db:String} ORDER BY name",
                              parameters={"db": name}).result_rows
            tables = [q for _, engine, q in rows if engine not in _VIEW_ENGINES]
            views = [q for _, engine, q in rows if engine in _VIEW_ENGINES]
            _TEMPLATES[key] = (name, tables + views)
        return _TEMPLATES[key]


def migrated_copy(settings: Settings) -> Store:
    """The settings' database, made as ``store_for`` would make it, from the session's template:
    the same tables, views and migration records, without running the migrations again."""
    template, statements = _template(settings)
    view = store_for_engine(settings)
    view.command(f"CREATE DATABASE {settings.database}")
    pending = [q.replace(template, settings.database) for q in statements]
    while pending:  # a view may read another view: create what can be created until none is left
        failed = []
        for statement in pending:
            try:
                view.command(statement)
            except Exception:
                failed.append(statement)
        if len(failed) == len(pending):
            view.command(failed[0])  # raises the engine's error
        pending = failed
    view.command(f"INSERT INTO {settings.database}.schema_migrations SELECT * FROM {template}.schema_migrations")
    return view


def store_for_engine(settings: Settings) -> Store:
    """A view of the session's one engine on the settings' database (neither created nor migrated)."""
    key = settings.clickhouse_dsn
    store = _STORE.get(key)
    if store is None:
        store = open_store(settings, create_database=False)
        _STORE[key] = store
    view = Store(store._client, settings.database, store.dsn)
    view._lock = store._lock
    return view


@pytest.fixture
def store(hub_settings) -> Store:
    """A database of its own in the session's engine, as every migration leaves it."""
    return migrated_copy(hub_settings)


@pytest.fixture(scope="module")
def module_hub_settings(tmp_path_factory, chdb_dir) -> Settings:
    """Like ``hub_settings``, shared by the tests of one module (for data they only read)."""
    return _isolated_settings(tmp_path_factory.mktemp("module") / "home", chdb_dir)


@pytest.fixture(scope="module")
def module_store(module_hub_settings) -> Store:
    """Like ``store``, shared by the tests of one module: for a module whose tests only read what
    a module fixture writes (each test that writes takes ``store``)."""
    return migrated_copy(module_hub_settings)
