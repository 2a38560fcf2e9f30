"""The UI in English and Chinese (Flask-Babel).

The language comes from ``?lang=`` (kept in a cookie: the switch in the page header), else
from the browser's ``Accept-Language``, else English. Message catalogues live in the repo as
``search_ui/translations/<lang>/LC_MESSAGES/messages.po``; they are compiled when the app
starts into a temporary folder of this process, removed when the process that made it exits
(no compiled file is kept in the repo). Dates and numbers are formatted for the language by
Babel."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask, g, request
from flask.wrappers import Response

log = logging.getLogger("search_ui.i18n")

LANGUAGES = {"en": "English", "zh": "中文"}
COOKIE = "vidx_lang"
CATALOGUES = Path(__file__).parent / "translations"
_compiled: Path | None = None


def compiled_catalogues() -> Path:
    """The .po files compiled to .mo once per process (in a temporary folder)."""
    global _compiled
    if _compiled is None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        dest = Path(tempfile.mkdtemp(prefix="vidx-i18n-"))
        atexit.register(_remove, dest, os.getpid())
        for po in sorted(CATALOGUES.glob("*/LC_MESSAGES/messages.po")):
            out = dest / po.relative_to(CATALOGUES).with_suffix(".mo")
            out.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as f:
                catalog = read_po(f)
            with out.open("wb") as f:
                write_mo(f, catalog)
        _compiled = dest
    return _compiled


def _remove(dest: Path, owner: int) -> None:
    """Remove the compiled catalogues at exit, in the process that made them only: server worker
    processes forked from it read the same folder and exit before it."""
    if os.getpid() == owner:
        shutil.rmtree(dest, ignore_errors=True)


def select_locale() -> str:
    asked = (request.args.get("lang") or "").lower()
    if asked in LANGUAGES:
        g.set_lang = asked
        return asked
    kept = request.cookies.get(COOKIE, "")
    if kept in LANGUAGES:
        return kept
    return request.accept_languages.best_match(list(LANGUAGES), default="en") or "en"


def init_app(app: Flask) -> None:
    from flask_babel import Babel, format_date, format_datetime, get_locale

    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled_catalogues())
    Babel(app, locale_selector=select_locale, default_locale="en")

    @app.after_request
    def _keep_language(resp: Response) -> Response:
        lang = g.get("set_lang")
        if lang:
            resp.set_cookie(COOKIE, lang, max_age=365 * 86400, samesite="Lax", httponly=True)
        return resp

    def _when(value: Any, kind: str = "date") -> str:
        """An ISO date-time or a Unix time, as a date (or date and time) in the page's language."""
        if value in (None, ""):
            return "–"
        dt = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else datetime.fromisoformat(value)
        return str(format_datetime(dt, "short") if kind == "datetime" else format_date(dt, "medium"))

    app.jinja_env.filters["localdate"] = _when

    def _replace_lang(query: str, code: str) -> str:
        """The page's query string with ``lang`` set (the language switch keeps the search)."""
        pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "lang"]
        return urlencode([*pairs, ("lang", code)])

    app.jinja_env.filters["replace_lang"] = _replace_lang

    @app.context_processor
    def _languages() -> dict[str, Any]:
        from flask_babel import gettext as _

        loc = str(get_locale() or "en")
        states = {"done": _("done"), "processing": _("processing"), "pending": _("pending"), "failed": _("failed"),
                  "missing": _("missing")}
        return {"languages": LANGUAGES, "lang": loc, "html_lang": "zh-Hans" if loc == "zh" else loc,
                "state_names": states}
