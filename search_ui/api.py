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
