"""Shared fixtures. Infrastructure fixtures live in plugin modules, one per component."""

pytest_plugins = ["tests.fixtures_kafka", "tests.fixtures_clickhouse"]
