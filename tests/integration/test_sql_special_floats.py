"""NaN and the infinities come back from POST /v1/sql and `hub sql` as "nan", "inf" and "-inf"
(in JSON, tables and CSV), never as null, which is SQL NULL; a real NULL stays null."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.server import ApiContext, build_app, mark_special_floats
from hub.cli.data import print_result

pytestmark = pytest.mark.clickhouse

QUERY = ("SELECT nan AS n, inf AS i, -inf AS m, toFloat32(-inf) AS f32, CAST(NULL AS Nullable(Float64)) AS z, "
         "1.5 AS x, [nan, 2.0, inf] AS a, tuple(nan, 'nan') AS t")


def post_sql(store, query):
    async def go():
        async with TestClient(TestServer(build_app(ApiContext(store=store)))) as client:
            response = await client.post("/v1/sql", json={"query": query})
            return response.status, await response.json()
    return asyncio.run(go())


def test_post_sql_tells_nan_and_infinities_from_null(store):
    status, body = post_sql(store, QUERY)
    assert status == 200, body
    assert body["rows"] == [["nan", "inf", "-inf", "-inf", None, 1.5, ["nan", 2.0, "inf"], ["nan", "nan"]]]


def test_hub_sql_prints_them_in_every_format():
    result = {"columns": ["n", "i", "m", "z"], "rows": [mark_special_floats([float("nan"), float("inf"),
                                                                             float("-inf"), None])]}
    out = io.StringIO()
    print_result(result, "json", out)
    assert json.loads(out.getvalue()) == {"n": "nan", "i": "inf", "m": "-inf", "z": None}
    assert "NaN" not in out.getvalue()  # valid JSON
    out = io.StringIO()
    print_result(result, "csv", out)
    assert out.getvalue().splitlines()[1] == "nan,inf,-inf,NULL"
    out = io.StringIO()
    print_result(result, "table", out)
    assert out.getvalue().splitlines()[2].split() == ["nan", "inf", "-inf", "NULL"]
