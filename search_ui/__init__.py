"""The vidx web UI and JSON API (Flask app factory)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, jsonify, redirect, request, session, url_for
from werkzeug.exceptions import HTTPException

from search_ui.clips import ClipMaker
from search_ui.metrics import Metrics
from search_ui.security import SAFE_METHODS, csrf_ok, csrf_token, key_from_headers, key_matches, session_secret
from vidx.config import Settings, load_settings
from vidx.embed import Embedder, store_embedder
from vidx.ledger import Ledger
from vidx.search import SearchService
from vidx.store import EventStore, open_store

log = logging.getLogger("search_ui")

CSP = (
    "default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


def warm_in_background(app: Flask) -> threading.Thread:
    """Load the query embedder and the store's columns in a background thread of a server
    process that has just started, so that its first search does not wait seconds for them
    (an empty library loads nothing: its first search is instant anyway). A failure is logged;
    searches then report it themselves."""
    ext = app.extensions["vidx"]

    def run() -> None:
        try:
            if ext["store"].video_paths():
                log.info("search ready in %.1fs (query embedder and index loaded)", ext["search"].warm())
        except Exception as exc:  # noqa: BLE001 (only a head start: the first search loads it again)
            log.warning("could not prepare search at start: %s", exc)

    t = threading.Thread(target=run, name="vidx-warm-search", daemon=True)
    t.start()
    return t


def create_app(
    settings: Settings | None = None,
    store: EventStore | None = None,
    embedder_factory: Callable[[], Embedder] | None = None,
) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False)
    store = store or open_store(settings, read_only=True)  # nothing in the UI writes to the store
    factory = embedder_factory or (
        lambda: store_embedder(settings, store)
    )
    app.extensions["vidx"] = {
        "settings": settings,
        "store": store,
        "search": SearchService(store, factory, min_score=settings.min_score),
        "ledger": Ledger(settings.ledger_path, read_only=True),
        "clips": ClipMaker(settings),
    }

    from search_ui.api import bp as api_bp
    from search_ui.ask import bp as ask_bp
    from search_ui.media import bp as media_bp
    from search_ui.people import bp as people_bp
    from search_ui.saved import bp as saved_bp
    from search_ui.views import bp as views_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(media_bp)
    app.register_blueprint(views_bp)
    app.register_blueprint(saved_bp)
    app.register_blueprint(ask_bp)
    app.register_blueprint(people_bp)

    from search_ui.i18n import init_app as init_i18n

    init_i18n(app)

    key = settings.ui_api_key.get_secret_value() if settings.ui_api_key else None
    app.secret_key = session_secret(key)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      MAX_CONTENT_LENGTH=settings.upload_max_mb * 1024 * 1024,
                      # a Host header the server is not reached by is refused (400): no DNS rebinding
                      TRUSTED_HOSTS=settings.allowed_hosts())
    if key is None and settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the web UI binds to %s without VIDX_UI_API_KEY: anyone who can reach it can search, play "
                    "and upload; set VIDX_UI_API_KEY", settings.host)
    metrics = Metrics(app.extensions["vidx"]["ledger"])
    app.extensions["vidx"]["metrics"] = metrics

    @app.context_processor
    def _template_helpers() -> dict[str, Any]:
        return {"csrf_token": csrf_token, "signed_in": bool(key) and bool(session.get("auth"))}

    @app.before_request
    def _auth() -> Any:
        g.t0 = time.perf_counter()
        open_paths = ("/healthz", "/login") if key else ()
        if key is None or request.path in open_paths or request.path.startswith("/static/"):
            g.by_key = False
        elif key_matches(key_from_headers(request), key):
            g.by_key = True  # an API client: no CSRF token needed
        elif session.get("auth"):
            g.by_key = False
        elif request.path.startswith(("/api/", "/media/", "/metrics")):
            resp = jsonify(error="authentication required")
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = 'Bearer realm="vidx"'
            return resp
        else:
            return redirect(url_for("views.login", next=request.full_path.rstrip("?")))
        # a JSON body cannot be sent cross-site without a CORS preflight (which this server never
        # grants), so API clients (curl, scripts) need no token; forms and other bodies keep it
        if (request.method not in SAFE_METHODS and not g.by_key and request.path != "/login"
                and request.mimetype != "application/json" and not csrf_ok(request)):
            return jsonify(error="missing or wrong CSRF token: reload the page and try again"), 403
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.requests.labels(route, request.method, str(resp.status_code)).inc()
        if "t0" in g:
            metrics.latency.labels(route).observe(time.perf_counter() - g.t0)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        from werkzeug.exceptions import SecurityError

        if isinstance(exc, SecurityError):  # a Host header not in VIDX_TRUSTED_HOSTS: say so, render nothing
            return ("this server does not answer to that host name (VIDX_TRUSTED_HOSTS)\n", 400,
                    {"Content-Type": "text/plain; charset=utf-8"})
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


def validation_message(exc: Any) -> str:
    """A pydantic ValidationError as one line for a 400: the first wrong field and why."""
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}".replace("Value error, ", "")


_lazy_lock = threading.RLock()  # a service may make another on first use


def lazy(name: str, make: Callable[[], Any]) -> Any:
    """A service made on first use, once per app even when the first requests come together."""
    ext = services()
    if name not in ext:
        with _lazy_lock:
            if name not in ext:
                ext[name] = make()
    return ext[name]


def services() -> dict[str, Any]:
    from flask import current_app

    return current_app.extensions["vidx"]  # type: ignore[no-any-return]
