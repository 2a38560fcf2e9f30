#!/usr/bin/env python3
"""Writes vidx-events.ndjson: a data view on the alias and the "vidx events" dashboard.

The objects follow the shape Kibana 8.x/9.x exports (Lens panels by value inside
``panelsJSON``, index-pattern references named ``<panel>:indexpattern-datasource-layer-<layer>``).
Run it after changing a panel:  python mappings/kibana/build.py
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("vidx-events.ndjson")
DATA_VIEW_ID = "vidx-events-data-view"
DASHBOARD_ID = "vidx-events-dashboard"
ALIAS = "vidx-events"
NS = uuid.UUID("6f1c2b4e-0d55-4d1e-9a43-5b0d6c7e8f90")


def uid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


def count_col() -> dict[str, Any]:
    return {"dataType": "number", "isBucketed": False, "label": "Events", "operationType": "count",
            "params": {"emptyAsNull": True}, "scale": "ratio", "sourceField": "___records___"}


def terms_col(field: str, label: str, size: int, order_by: str) -> dict[str, Any]:
    return {"dataType": "string", "isBucketed": True, "label": label, "operationType": "terms",
            "params": {"missingBucket": False, "orderBy": {"columnId": order_by, "type": "column"},
                       "orderDirection": "desc", "otherBucket": False, "parentFormat": {"id": "terms"},
                       "size": size},
            "scale": "ordinal", "sourceField": field}


def date_col() -> dict[str, Any]:
    return {"dataType": "date", "isBucketed": True, "label": "@timestamp", "operationType": "date_histogram",
            "params": {"dropPartials": False, "includeEmptyRows": True, "interval": "auto"},
            "scale": "interval", "sourceField": "@timestamp"}


def xy_panel(key: str, title: str, x: dict[str, Any], series: str, grid: dict[str, int]) -> dict[str, Any]:
    layer, xid, yid = uid(key + ":layer"), uid(key + ":x"), uid(key + ":y")
    if x["operationType"] == "terms":
        x = {**x, "params": {**x["params"], "orderBy": {"columnId": yid, "type": "column"}}}
    panel = uid(key)
    return {
        "embeddableConfig": {
            "attributes": {
                "description": "",
                "references": [{"id": DATA_VIEW_ID, "name": f"indexpattern-datasource-layer-{layer}",
                                "type": "index-pattern"}],
                "state": {
                    "adHocDataViews": {},
                    "datasourceStates": {
                        "formBased": {"layers": {layer: {"columnOrder": [xid, yid],
                                                         "columns": {xid: x, yid: count_col()},
                                                         "incompleteColumns": {}, "sampling": 1}}},
                        "indexpattern": {"layers": {}},
                        "textBased": {"layers": {}},
                    },
                    "filters": [],
                    "internalReferences": [],
                    "query": {"language": "kuery", "query": ""},
                    "visualization": {
                        "axisTitlesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                        "fittingFunction": "None",
                        "gridlinesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                        "labelsOrientation": {"x": 0, "yLeft": 0, "yRight": 0},
                        "layers": [{"accessors": [yid], "layerId": layer, "layerType": "data", "position": "top",
                                    "seriesType": series, "showGridlines": False, "xAccessor": xid}],
                        "legend": {"isVisible": False, "position": "right"},
                        "preferredSeriesType": series,
                        "tickLabelsVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                        "valueLabels": "hide",
                    },
                },
                "title": "",
                "type": "lens",
                "visualizationType": "lnsXY",
            },
            "enhancements": {},
            "hidePanelTitles": False,
        },
        "gridData": {**grid, "i": panel},
        "panelIndex": panel,
        "title": title,
        "type": "lens",
        "version": "8.9.0",
    }


def build() -> list[dict[str, Any]]:
    data_view = {
        "attributes": {"fieldAttrs": "{}", "fieldFormatMap": json.dumps({
            "start_sec": {"id": "duration", "params": {"inputFormat": "seconds", "outputFormat": "humanizePrecise"}},
            "end_sec": {"id": "duration", "params": {"inputFormat": "seconds", "outputFormat": "humanizePrecise"}},
        }), "fields": "[]", "name": "vidx events", "runtimeFieldMap": "{}", "sourceFilters": json.dumps(
            [{"value": "embedding"}]), "timeFieldName": "@timestamp", "title": ALIAS, "typeMeta": "{}"},
        "coreMigrationVersion": "8.8.0",
        "id": DATA_VIEW_ID,
        "managed": False,
        "references": [],
        "type": "index-pattern",
        "typeMigrationVersion": "7.11.0",
    }
    panels = [
        xy_panel("over-time", "Events over time", date_col(), "bar_stacked", {"x": 0, "y": 0, "w": 48, "h": 12}),
        xy_panel("people", "Top people", terms_col("people", "Person", 15, ""), "bar_horizontal",
                 {"x": 0, "y": 12, "w": 16, "h": 15}),
        xy_panel("locations", "Top locations", terms_col("location.keyword", "Location", 15, ""), "bar_horizontal",
                 {"x": 16, "y": 12, "w": 16, "h": 15}),
        xy_panel("objects", "Top objects", terms_col("objects", "Object", 15, ""), "bar_horizontal",
                 {"x": 32, "y": 12, "w": 16, "h": 15}),
        xy_panel("videos", "Events per video", terms_col("video_name", "Video", 20, ""), "bar_horizontal",
                 {"x": 0, "y": 27, "w": 24, "h": 15}),
        xy_panel("models", "Events per analyzer and model", terms_col("model", "Model", 10, ""), "bar_horizontal",
                 {"x": 24, "y": 27, "w": 24, "h": 15}),
    ]
    refs = []
    for p in panels:
        for r in p["embeddableConfig"]["attributes"]["references"]:
            refs.append({"id": r["id"], "name": f"{p['panelIndex']}:{r['name']}", "type": r["type"]})
    dashboard = {
        "attributes": {
            "description": "What vidx has indexed: events over time, people, places, objects, videos, models.",
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                {"filter": [], "query": {"language": "kuery", "query": ""}})},
            "optionsJSON": json.dumps({"hidePanelTitles": False, "syncColors": False, "syncCursor": True,
                                       "syncTooltips": False, "useMargins": True}),
            "panelsJSON": json.dumps(panels),
            "timeFrom": "now-30d",
            "timeRestore": True,
            "timeTo": "now",
            "title": "vidx events",
            "version": 2,
        },
        "coreMigrationVersion": "8.8.0",
        "id": DASHBOARD_ID,
        "managed": False,
        "references": refs,
        "type": "dashboard",
        "typeMigrationVersion": "8.9.0",
    }
    return [data_view, dashboard]


def render() -> str:
    return "".join(json.dumps(o, sort_keys=True) + "\n" for o in build())


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
