"""The findings repository (``hub findings search|export``): every note and surprise across
experiments, searchable by text, tag, service and time; see ``search``."""

from hub.findings.search import (EXPORT_FORMATS, Finding, export, findings_sql, search_findings, to_csv, to_json,
                                 to_markdown, to_table)

__all__ = ["EXPORT_FORMATS", "Finding", "export", "findings_sql", "search_findings", "to_csv", "to_json",
           "to_markdown", "to_table"]
