"""JSON API: /healthz, /api/status, /api/search. Errors are JSON, never HTML."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request

from search_ui import services
from search_ui.media import with_clips
from vidx.ledger import LedgerError
from vidx.search import BadRequest, parse_query
from vidx.store.base import StoreError, public_message

log = logging.getLogger("search_ui.api")
bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@bp.get("/api/status")
def status() -> Any:
    s = services()
    try:
        data = s["ledger"].status()
        counts = s["store"].video_event_counts()
    except LedgerError as exc:
        log.warning("status: %s", exc)
        return jsonify(error="status is unavailable: the ingest ledger cannot be read"), 503
    except StoreError as exc:
        log.warning("status: %s", exc)
        return jsonify(error=f"status is unavailable: {public_message(exc)}"), 503
    for v in data["videos"]:
        if v["video_id"] in counts and v["state"] == "done":
            v["events"] = counts[v["video_id"]]
    return jsonify(data)


@bp.get("/api/search")
def search() -> Any:
    s = services()
    try:
        query = parse_query(request.args.to_dict(), s["settings"].page_size)
    except BadRequest as exc:
        return jsonify(error=str(exc)), 400
    try:
        return jsonify(with_clips(s["search"].search(query)))
    except StoreError as exc:
        log.warning("search failed: %s", exc)
        return jsonify(error=f"search is unavailable: {public_message(exc)}"), 503


@bp.get("/api/videos/<video_id>/transcript")
def transcript(video_id: str) -> Any:
    """The video's spoken lines (subtitles or recognised speech) as JSON, SRT or WebVTT."""
    from flask import Response

    from vidx.search import VIDEO_ID_RE
    from vidx.transcript import FORMATS, to_srt, to_vtt, transcript_lines

    fmt = (request.args.get("format") or "json").lower()
    if fmt not in FORMATS:
        return jsonify(error="format must be json, srt or vtt"), 400
    if not VIDEO_ID_RE.match(video_id):
        return jsonify(error="video id must be 32 hexadecimal characters"), 404
    s = services()
    try:
        events = s["store"].events_for_video(video_id)
    except StoreError as exc:
        log.warning("transcript: %s", exc)
        return jsonify(error=f"the transcript is unavailable: {public_message(exc)}"), 503
    if not events:
        return jsonify(error="no such video"), 404
    lines = transcript_lines(events)
    if fmt == "json":
        return jsonify(video_id=video_id, lines=lines)
    name = s["ledger"].names_for([video_id]).get(video_id, video_id)
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.rsplit(".", 1)[0])[:100] or video_id
    body, mime = (to_srt(lines), "application/x-subrip") if fmt == "srt" else (to_vtt(lines), "text/vtt")
    resp = Response(body, mimetype=mime)
    resp.headers["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
    return resp
