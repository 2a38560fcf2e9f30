"""Saved searches: GET/POST/DELETE /api/saved-searches, and the form on the search page.

The web UI writes the saved searches; the daemon runs them on each video it indexes and
keeps the notifications in its outbox (read here for the delivery state)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, redirect, request, url_for
from pydantic import ValidationError

from search_ui import lazy, services, validation_message
from vidx.saved import Outbox, SavedSearches, SavedSearchIn

log = logging.getLogger("search_ui.saved")
bp = Blueprint("saved", __name__)


def _saved() -> SavedSearches:
    return lazy("saved", lambda: SavedSearches(services()["settings"].saved_searches_path))  # type: ignore[no-any-return]


def _outbox() -> Outbox:
    return lazy("outbox", lambda: Outbox(services()["settings"].alerts_path, read_only=True))  # type: ignore[no-any-return]


def saved_with_state() -> list[dict[str, Any]]:
    """Every saved search with its notifications: sent, waiting, the last error."""
    try:
        state = _outbox().summary()
    except Exception as exc:  # noqa: BLE001 (the list still shows without the delivery state)
        log.warning("the notification outbox cannot be read: %s", exc)
        state = {}
    out = []
    for s in _saved().all():
        d = s.public()
        d.pop("notify")  # the URL may hold a token or a password: only where it goes is shown
        d["notifications"] = state.get(s.id, {"sent": 0, "waiting": 0, "last_sent": None, "last_error": None})
        out.append(d)
    return out


@bp.get("/api/saved-searches")
def list_saved() -> Any:
    return jsonify(saved_searches=saved_with_state())


@bp.post("/api/saved-searches")
def add_saved() -> Any:
    from_form = not request.is_json
    data: Any = request.get_json(silent=True) if not from_form else request.form.to_dict()
    if not isinstance(data, dict):
        return jsonify(error="send a JSON object: {\"q\", \"mode\", \"min_score\", \"notify\"}"), 400
    if from_form and data.get("min_score") in ("", None):
        data.pop("min_score", None)
    try:
        item = SavedSearchIn.model_validate({k: data.get(k) for k in ("q", "mode", "min_score", "notify")
                                             if data.get(k) is not None})
        row = _saved().add(item)
    except ValidationError as exc:
        return jsonify(error=validation_message(exc)), 400
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    if from_form and request.form.get("then") == "search":
        return redirect(url_for("views.index", q=row.q, mode=row.mode, saved=row.id), code=303)
    body = row.public()
    body.pop("notify")
    return jsonify(body), 201


@bp.delete("/api/saved-searches/<search_id>")
def delete_saved(search_id: str) -> Any:
    if not _saved().delete(search_id):
        return jsonify(error="no such saved search"), 404
    return "", 204


@bp.post("/saved-searches/<search_id>/delete")
def delete_saved_form(search_id: str) -> Any:
    """The status page's delete button (a form: browsers do not send DELETE without script)."""
    _saved().delete(search_id)
    return redirect(url_for("views.status_page"), code=303)
