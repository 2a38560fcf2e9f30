"""The server-rendered search page (works without JavaScript)."""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from flask import Blueprint, render_template, request
from markupsafe import Markup, escape

from search_ui import services
from search_ui.media import with_clips
from vidx.schema import format_ts
from vidx.search import BadRequest, parse_query
from vidx.store.base import StoreError, public_message

log = logging.getLogger("search_ui.views")
bp = Blueprint("views", __name__)

_EM = re.compile(r"(</?em>)")


def em_only(fragment: str) -> Markup:
    """Render a highlight fragment keeping only <em> tags; every other byte is escaped.

    Fragments come pre-escaped from the store (our highlighter or Elasticsearch's
    ``encoder: html``); they are unescaped piecewise and escaped again, so nothing but
    the literal <em>/</em> markers can ever become markup."""
    out = []
    for piece in _EM.split(fragment):
        if piece in ("<em>", "</em>"):
            out.append(Markup(piece))
        else:
            out.append(escape(html.unescape(piece)))
    return Markup("").join(out)


@bp.app_template_filter("ts")
def _ts(v: float) -> str:
    return format_ts(v)


@bp.app_template_filter("em_only")
def _em_only(v: str) -> Markup:
    return em_only(v)


@bp.get("/")
def index() -> Any:
    s = services()
    params = request.args.to_dict()
    error = None
    status = 200
    result: dict[str, Any] | None = None
    query = None
    try:
        query = parse_query(params, s["settings"].page_size)
        if query.q:
            result = with_clips(s["search"].search(query))
    except BadRequest as exc:
        error, status = str(exc), 400
    except StoreError as exc:
        log.warning("search failed: %s", exc)
        error, status = f"Search is unavailable: {public_message(exc)}.", 503
    counts = s["ledger"].summary()
    summary = {
        "done": counts.get("done", 0),
        "busy": counts.get("pending", 0) + counts.get("processing", 0),
        "failed": counts.get("failed", 0),
    }
    names = s["ledger"].names_for([h["video_id"] for h in (result or {}).get("hits", [])])
    return (
        render_template(
            "index.html",
            q=(query.q if query else params.get("q", "")[:200]),
            mode=(query.mode.value if query else "hybrid"),
            video_id=(query.video_id if query else None),
            min_score=(query.min_score if query and query.min_score is not None else s["settings"].min_score),
            result=result,
            error=error,
            summary=summary,
            names=names,
        ),
        status,
    )
