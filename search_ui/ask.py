"""Asking the library over HTTP: ``POST /api/ask`` (JSON, or NDJSON as the answer is written),
``GET /api/videos/<id>/summary`` and ``GET /api/videos/<id>/chapters`` (JSON, WebVTT, a list)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context
from pydantic import ValidationError

from search_ui import lazy, services, validation_message
from search_ui.media import clip_fields
from vidx.ask import Asker, AskRequest
from vidx.llm import ChatModel, load_chat_model
from vidx.search import VIDEO_ID_RE, BadRequest
from vidx.store.base import StoreError, public_message
from vidx.summary import Summaries, chapters_text, chapters_vtt

log = logging.getLogger("search_ui.ask")
bp = Blueprint("ask", __name__)


def _model() -> ChatModel | None:
    return lazy("chat_model", lambda: load_chat_model(services()["settings"]))


def summaries() -> Summaries:
    s = services()
    return lazy("summaries", lambda: Summaries(s["settings"].summaries_path, s["store"].events_for_video,  # type: ignore[no-any-return]
                                               _model()))


def asker() -> Asker:
    s = services()
    return lazy("asker", lambda: Asker(s["search"], s["store"].events_for_video, _model(),  # type: ignore[no-any-return]
                                       summaries=summaries(), evidence=s["settings"].ask_evidence))


def _with_clips(item: dict[str, Any]) -> dict[str, Any]:
    for c in item.get("citations") or []:
        c.update(clip_fields(c["event_id"], c["video_id"], c["video_path"], c["start_sec"], c["end_sec"]))
    return item


@bp.post("/api/ask")
def ask() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error='send a JSON object such as {"question": "…"} with Content-Type: application/json'), 400
    try:
        req = AskRequest.model_validate(body)
    except ValidationError as exc:
        return jsonify(error=validation_message(exc)), 400
    a = asker()
    streaming = req.stream or "application/x-ndjson" in request.headers.get("Accept", "")
    try:
        if not streaming:
            return jsonify(_with_clips(a.ask(req)))
        items = a.ask_stream(req)
        first = next(items)  # retrieval errors become a status code, not half a stream
    except BadRequest as exc:
        return jsonify(error=str(exc)), 400
    except StoreError as exc:
        log.warning("ask failed: %s", exc)
        return jsonify(error=f"asking is unavailable: {public_message(exc)}"), 503

    def lines() -> Iterator[str]:
        yield json.dumps(first, ensure_ascii=False) + "\n"
        try:
            for item in items:
                yield json.dumps(_with_clips(item), ensure_ascii=False) + "\n"
        except Exception as exc:  # the status line is sent: say it in the stream
            log.exception("ask stream failed")
            yield json.dumps({"type": "error", "error": f"the answer stopped: {type(exc).__name__}"}) + "\n"

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _summary(video_id: str) -> tuple[dict[str, Any] | None, Any]:
    if not VIDEO_ID_RE.match(video_id):
        return None, (jsonify(error="video id must be 32 hexadecimal characters"), 404)
    try:
        data = summaries().get(video_id)
    except StoreError as exc:
        log.warning("summary: %s", exc)
        return None, (jsonify(error=f"the summary is unavailable: {public_message(exc)}"), 503)
    if data is None:
        return None, (jsonify(error="no such video"), 404)
    return data, None


@bp.get("/api/videos/<video_id>/summary")
def summary(video_id: str) -> Any:
    """``{"video_id", "summary", "chapters": [{"start_sec", "end_sec", "title"}], "method"}``."""
    data, err = _summary(video_id)
    if err is not None:
        return err
    assert data is not None
    return jsonify(data)


@bp.get("/api/videos/<video_id>/chapters")
def chapters(video_id: str) -> Any:
    """The chapters as JSON, WebVTT (``format=vtt``, for a ``<track kind="chapters">``) or a
    ``0:00 Title`` list (``format=txt``, what video sites read from a description)."""
    fmt = (request.args.get("format") or "json").lower()
    if fmt not in ("json", "vtt", "txt"):
        return jsonify(error="format must be json, vtt or txt"), 400
    data, err = _summary(video_id)
    if err is not None:
        return err
    assert data is not None
    if fmt == "vtt":
        return Response(chapters_vtt(data["chapters"]), mimetype="text/vtt")
    if fmt == "txt":
        return Response(chapters_text(data["chapters"]), mimetype="text/plain")
    return jsonify({"video_id": video_id, "chapters": data["chapters"], "method": data["method"]})
