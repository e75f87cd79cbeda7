"""Wire schemas (JSON Schema) and ClickHouse migrations, shipped with the package."""
