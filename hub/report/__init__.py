"""After-action reports (``hub report ID``): gathered with read-only SQL (``build``), written as
Markdown, self-contained HTML and PNG plots (``render``)."""

from hub.report.build import FOLLOW_UP_TAG, MeasurementResult, Report, build_report, format_value
from hub.report.render import FORMATS, PLOTS, write_report

__all__ = ["FOLLOW_UP_TAG", "FORMATS", "PLOTS", "MeasurementResult", "Report", "build_report", "format_value",
           "write_report"]
