"""The vidx web UI and JSON API (Flask app factory)."""

from __future__ import annotations

import hmac
import logging
from base64 import b64decode
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from search_ui.clips import ClipMaker
from vidx.config import Settings, load_settings
from vidx.embed import Embedder, load_embedder
from vidx.ledger import Ledger
from vidx.search import SearchService
from vidx.store import EventStore, open_store

log = logging.getLogger("search_ui")

CSP = (
    "default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


def create_app(
    settings: Settings | None = None,
    store: EventStore | None = None,
    embedder_factory: Callable[[], Embedder] | None = None,
) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, JSON_SORT_KEYS=False)
    store = store or open_store(settings, read_only=True)  # nothing in the UI writes to the store
    factory = embedder_factory or (
        lambda: load_embedder(settings.embed_model, settings.embed_batch_size, settings.embed_device)
    )
    app.extensions["vidx"] = {
        "settings": settings,
        "store": store,
        "search": SearchService(store, factory, min_score=settings.min_score),
        "ledger": Ledger(settings.ledger_path, read_only=True),
        "clips": ClipMaker(settings),
    }

    from search_ui.api import bp as api_bp
    from search_ui.media import bp as media_bp
    from search_ui.views import bp as views_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(media_bp)
    app.register_blueprint(views_bp)

    @app.before_request
    def _auth() -> Response | None:
        key = settings.ui_api_key
        if key is None or request.path == "/healthz":
            return None
        if _authorised(key.get_secret_value()):
            return None
        resp = jsonify(error="authentication required")
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Basic realm="vidx"'
        return resp

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if request.path.startswith("/api/") or request.path.startswith("/media/") or request.path == "/healthz":
            return jsonify(error=exc.description or exc.name), exc.code
        from flask import render_template

        return render_template("error.html", code=exc.code, message=exc.description or exc.name), exc.code

    @app.errorhandler(Exception)
    def _error(exc: Exception) -> Any:
        log.exception("unhandled error on %s", request.path)
        if request.path.startswith("/api/"):
            return jsonify(error="internal error"), 500
        from flask import render_template

        return render_template("error.html", code=500, message="Something went wrong."), 500

    return app


def _authorised(key: str) -> bool:
    header = request.headers.get("Authorization", "")
    supplied = ""
    if header.startswith("Bearer "):
        supplied = header[7:]
    elif header.startswith("Basic "):
        try:
            supplied = b64decode(header[6:]).decode().split(":", 1)[-1]
        except (ValueError, UnicodeDecodeError):
            supplied = ""
    else:
        supplied = request.headers.get("X-Api-Key", "")
    return bool(supplied) and hmac.compare_digest(supplied.encode(), key.encode())


def services() -> dict[str, Any]:
    from flask import current_app

    return current_app.extensions["vidx"]  # type: ignore[no-any-return]
