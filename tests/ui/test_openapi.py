"""The OpenAPI document validates, lists every API route, and sample answers match it."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from vidx.config import Settings


def test_document_is_valid_openapi_3_1_and_lists_every_route(app: Flask) -> None:
    from openapi_spec_validator import validate

    doc = app.test_client().get("/api/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.rule != "/api/docs" or rule.rule == "/healthz":
            routes.add(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
    assert routes == set(doc["paths"]), routes ^ set(doc["paths"])


def _check(doc: dict[str, Any], schema: dict[str, Any], data: Any) -> None:
    import jsonschema

    jsonschema.validate(data, {**schema, "components": doc["components"]},
                        cls=jsonschema.Draft202012Validator)


def test_sample_answers_match_their_schemas(app: Flask, settings: Settings, hash_embedder: HashEmbedder) -> None:
    video = settings.watch_dir / "x.mp4"
    video.write_bytes(b"x")
    evs = add_video(settings, video, [
        {"start_sec": 1.0, "end_sec": 3.0, "dialogue": "the lighthouse keeper", "source": "speech"},
        {"start_sec": 4.0, "end_sec": 6.0, "dialogue": "the keeper of the light", "source": "subtitle"},
    ], hash_embedder)
    c = app.test_client()
    doc = c.get("/api/openapi.json").get_json()

    def schema(path: str, code: str = "200") -> dict[str, Any]:
        return doc["paths"][path]["get"]["responses"][code]["content"]["application/json"]["schema"]  # type: ignore

    _check(doc, schema("/api/search"), c.get("/api/search?q=lighthouse&min_score=0").get_json())
    _check(doc, schema("/api/status"), c.get("/api/status").get_json())
    _check(doc, schema("/api/videos/{video_id}/events"), c.get(f"/api/videos/{evs[0].video_id}/events").get_json())
    _check(doc, schema("/api/events/{event_id}"), c.get(f"/api/events/{evs[0].event_id}").get_json())
    _check(doc, schema("/api/events/{event_id}/similar"),
           c.get(f"/api/events/{evs[0].event_id}/similar?size=3").get_json())
    _check(doc, schema("/api/search", "400"), c.get("/api/search?mode=nope").get_json())
    _check(doc, schema("/api/videos/{video_id}/summary"), c.get(f"/api/videos/{evs[0].video_id}/summary").get_json())
    ask = doc["paths"]["/api/ask"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    answer = c.post("/api/ask", json={"question": "lighthouse keeper"}).get_json()
    assert answer["citations"]
    _check(doc, ask, answer)
    _check(doc, ask, c.post("/api/ask", json={"question": "volcano eruption"}).get_json())
    page = c.get("/api/docs")
    assert page.status_code == 200 and b"GET /api/events/{event_id}/similar" in page.data
