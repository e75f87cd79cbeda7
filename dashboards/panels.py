"""Building blocks on top of grafana-foundation-sdk: the ClickHouse plugin's query as a custom
dataquery type, and the panels every generated dashboard uses.

The SDK has no builder for ``grafana-clickhouse-datasource``; a query is any object with
``to_json`` (``cogvariants.Dataquery``), so ``ClickHouseQuery`` is one, registered as a dataquery
variant so that dashboards read back with ``from_json`` keep it.
"""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.builders import dashboard as db_builder
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import stat, table, text, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import text as text_models

from dashboards.config import PLUGIN_ID

#: The plugin's ``format``: how the backend shapes the result (sqlds' FormatQueryOption).
FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1


class ClickHouseQuery(cogvariants.Dataquery):
    """A raw-SQL query of the ClickHouse plugin (``editorType: sql``)."""

    def __init__(self, raw_sql: str = "", *, ref_id: str = "A", query_type: str = "table",
                 fmt: int = FORMAT_TABLE, datasource: dict | None = None, hide: bool = False) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.query_type = query_type
        self.format = fmt
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"refId": self.ref_id}
        if self.datasource is not None:
            out["datasource"] = dict(self.datasource)
        out.update({"editorType": "sql", "queryType": self.query_type, "format": self.format,
                    "rawSql": self.raw_sql})
        if self.hide:
            out["hide"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(data.get("rawSql", ""), ref_id=data.get("refId", "A"), query_type=data.get("queryType", "table"),
                   fmt=int(data.get("format", FORMAT_TABLE)), datasource=data.get("datasource"),
                   hide=bool(data.get("hide", False)))


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    def __init__(self, raw_sql: str, *, ref_id: str = "A", time_series: bool = False, datasource: dict | None = None):
        self._internal = ClickHouseQuery(raw_sql, ref_id=ref_id, datasource=datasource,
                                         query_type="timeseries" if time_series else "table",
                                         fmt=FORMAT_TIME_SERIES if time_series else FORMAT_TABLE)

    def build(self) -> ClickHouseQuery:
        return self._internal


cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(identifier=PLUGIN_ID,
                                                                 from_json_hook=ClickHouseQuery.from_json))


class _Built(cogbuilder.Builder[Any]):
    """A builder for an object that is already built (annotation targets, plain JSON)."""

    def __init__(self, value: Any):
        self.value = value

    def build(self) -> Any:
        return self.value


def ds_ref(ds: dict) -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=ds["type"], uid=ds["uid"])


def ts_panel(title: str, ds: dict, sql: str | list[str], *, unit: str = "short", description: str = "",
             thresholds: list[tuple[float | None, str]] | None = None, height: int = 8, span: int = 12,
             soft_max: float | None = None) -> timeseries.Panel:
    sqls = [sql] if isinstance(sql, str) else sql
    p = (timeseries.Panel().title(title).datasource(ds_ref(ds)).unit(unit).height(height).span(span)
         .line_width(1).fill_opacity(10).show_points(common.VisibilityMode.NEVER)
         .span_nulls(False))
    for i, s in enumerate(sqls):
        p = p.with_target(ClickHouseQueryBuilder(s, ref_id=chr(ord("A") + i), time_series=True, datasource=ds))
    if description:
        p = p.description(description)
    if soft_max is not None:
        p = p.axis_soft_max(soft_max)
    if thresholds:
        steps = [dm.Threshold(value=v, color=c) for v, c in thresholds]
        p = (p.thresholds(db_builder.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
             .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE_AND_AREA)))
    return p


def table_panel(title: str, ds: dict, sql: str, *, description: str = "", height: int = 8, span: int = 12) -> table.Panel:
    p = (table.Panel().title(title).datasource(ds_ref(ds)).height(height).span(span)
         .with_target(ClickHouseQueryBuilder(sql, datasource=ds)))
    if description:
        p = p.description(description)
    return p


def stat_panel(title: str, ds: dict, sql: str, *, fields: str = "", height: int = 4, span: int = 12) -> stat.Panel:
    p = (stat.Panel().title(title).datasource(ds_ref(ds)).height(height).span(span)
         .with_target(ClickHouseQueryBuilder(sql, datasource=ds))
         .reduce_options(common_builders.ReduceDataOptions().values(True).calcs(["lastNotNull"]).fields(fields))
         .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
         .text_mode(common.BigValueTextMode.VALUE_AND_NAME))
    return p


def text_panel(title: str, content: str, *, height: int = 4, span: int = 24) -> text.Panel:
    return text.Panel().title(title).mode(text_models.TextMode.MARKDOWN).content(content).height(height).span(span)


def ch_annotation(name: str, ds: dict, sql: str, color: str, *, enable: bool = True) -> db_builder.AnnotationQuery:
    target = ClickHouseQuery(sql, ref_id="Anno", datasource=ds)
    return (db_builder.AnnotationQuery().name(name).datasource(ds_ref(ds)).enable(enable).hide(False)
            .icon_color(color).target(_Built(target)))


def grafana_tags_annotation(name: str, tags: list[str], color: str, *, enable: bool = True) -> db_builder.AnnotationQuery:
    """Annotations the hub posted to Grafana's own store (``GrafanaAnnotator``), matched by tags."""
    target = db_builder.AnnotationTarget().limit(500).match_any(False).tags(tags).type("tags")
    return (db_builder.AnnotationQuery().name(name).datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(enable).hide(False).icon_color(color).type("tags").target(target))


def query_variable(name: str, label: str, ds: dict, sql: str) -> db_builder.QueryVariable:
    # A plain SQL string: the plugin accepts it, and the dashboard schema types ``query`` as a string.
    return (db_builder.QueryVariable(name).label(label).datasource(ds_ref(ds)).query(sql).multi(True)
            .include_all(True).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .current(dm.VariableOption(selected=True, text="All", value="$__all")))
