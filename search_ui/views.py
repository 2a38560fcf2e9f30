"""The server-rendered search page (works without JavaScript)."""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
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


def _summary() -> dict[str, int]:
    """Files done, busy and failed, from one aggregate query of the ledger."""
    counts = services()["ledger"].summary()
    return {"done": counts.get("done", 0), "busy": counts.get("pending", 0) + counts.get("processing", 0),
            "failed": counts.get("failed", 0)}


@bp.get("/")
def index() -> Any:
    s = services()
    params = request.args.to_dict()
    params.setdefault("group", "moment")  # the page shows one result per moment
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
        error, status = _("Search is unavailable: %(why)s.", why=public_message(exc)), 503
    summary = _summary()
    names = s["ledger"].names_for([h["video_id"] for h in (result or {}).get("hits", [])])
    return (
        render_template(
            "index.html",
            q=(query.q if query else params.get("q", "")[:200]),
            mode=(query.mode.value if query else "hybrid"),
            video_id=(query.video_id if query else None),
            min_score=(query.min_score if query and query.min_score is not None else s["settings"].min_score),
            group=(query.group if query else "moment"),
            result=result,
            error=error,
            summary=summary,
            names=names,
        ),
        status,
    )


@bp.get("/videos/<video_id>")
def video_page(video_id: str) -> Any:
    """One video: the player, a timeline of its events, the event list and the transcript."""
    from flask import abort

    from search_ui.api import speakers_of
    from search_ui.media import resolve_media
    from vidx.media import browser_playable
    from vidx.search import VIDEO_ID_RE, Hit, hit_dict
    from vidx.transcript import transcript_lines

    if not VIDEO_ID_RE.match(video_id):
        abort(404)
    s = services()
    try:
        events = s["store"].events_for_video(video_id)
    except StoreError as exc:
        log.warning("video page: %s", exc)
        abort(503, description=_("The index is unavailable: %(why)s.", why=public_message(exc)))
    if not events:
        abort(404, description=_("No such video."))
    try:
        t = max(0.0, float(request.args.get("t", "0")))
    except ValueError:
        t = 0.0
    src = resolve_media(events[0].video_path)
    playable = src is not None and browser_playable(src)
    duration = max((e.end_sec for e in events), default=1.0) or 1.0
    name = s["ledger"].names_for([video_id]).get(video_id, events[0].video_path.rsplit("/", 1)[-1])
    items = [hit_dict(Hit(event=e, score=1.0)) for e in events]
    items = with_clips({"hits": items})["hits"]
    current = next((e.event_id for e in events if e.start_sec <= t < e.end_sec), None)
    from search_ui.ask import summaries

    try:
        summary = summaries().ready(video_id, events)  # None: the page fetches it once shown
    except Exception as exc:  # a summary helps; it never stops the page
        log.warning("summary of %s: %s", video_id, exc)
        summary = None
    return render_template("video.html", video_id=video_id, name=name, events=items, t=t, duration=duration,
                           playable=playable, transcript=transcript_lines(events, speakers_of(video_id)), current=current,
                           video_summary=summary)


@bp.get("/similar/<event_id>")
def similar_page(event_id: str) -> Any:
    """"More like this": moments across all videos nearest to one event."""
    from flask import abort

    from vidx.search import VIDEO_ID_RE

    if not VIDEO_ID_RE.match(event_id):
        abort(404)
    s = services()
    try:
        res = s["search"].similar(event_id, s["settings"].page_size)
        base = s["store"].get_event(event_id)
    except StoreError as exc:
        log.warning("similar page: %s", exc)
        abort(503, description=_("The index is unavailable: %(why)s.", why=public_message(exc)))
    if res is None or base is None:
        abort(404, description=_("No such event."))
    res = with_clips(res)
    names = s["ledger"].names_for([h["video_id"] for h in res["hits"]])
    return render_template("index.html", q="", mode="semantic", video_id=None, result=res, error=None,
                           summary=_summary(), names=names, min_score=res["min_score"], similar_to=base)


@bp.get("/library")
def library() -> Any:
    """Every video as a card, newest first (or by name, length, events), filtered and paged."""
    from search_ui.api import library_page
    from search_ui.library import SORTS, STATES, LibraryError, LibraryQuery

    args = request.args.to_dict()
    error, status = None, 200
    try:
        query = LibraryQuery.from_args(args)
    except LibraryError as exc:
        error, status, query = str(exc), 400, LibraryQuery()
    data = library_page(query)
    return render_template("library.html", data=data, query=query, sorts=list(SORTS), states=STATES,
                           error=error, summary=_summary()), status


@bp.app_template_filter("duration")
def _duration(v: float | None) -> str:
    return format_ts(v) if v else "–"


@bp.app_template_filter("bytes")
def _bytes(n: int | None) -> str:
    if not n:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


@bp.app_template_filter("when")
def _when(iso: str | None) -> str:
    """A date and minute for the status page (UTC, as stored)."""
    return iso[:16].replace("T", " ") if iso else "–"


@bp.app_template_filter("took")
def _took(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return _("%(s).1f s", s=seconds)
    return format_ts(seconds)


@bp.get("/status")
def status_page() -> Any:
    """Every file with its state and progress; the page refreshes itself from /api/status."""
    s = services()
    rows = s["ledger"].rows()
    data = s["ledger"].status()
    health = s["store"].health()
    counts = s["ledger"].summary()
    analyzers = sorted({r.analyzer for r in rows if r.analyzer})
    from search_ui.saved import saved_with_state
    from vidx.embed import model_for_store

    return render_template("status.html", rows=rows, paused=data.get("forgetting_paused"), health=health,
                           saved=saved_with_state(),
                           settings=s["settings"], counts=counts, analyzers=analyzers,
                           embed_model=model_for_store(s["settings"], s["store"]),
                           uploaded=request.args.get("uploaded", "")[:200])


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with VIDX_UI_API_KEY once; a signed session cookie keeps the browser signed in."""
    from flask import redirect, session

    from search_ui.security import csrf_ok, key_matches

    s = services()["settings"]
    nxt = request.values.get("next") or "/"
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"  # never redirect off the site
    if s.ui_api_key is None:
        return redirect(nxt)
    error = None
    if request.method == "POST":
        if not csrf_ok(request):
            error = _("The form expired: try again.")
        elif key_matches(request.form.get("key", ""), s.ui_api_key.get_secret_value()):
            session.clear()
            session["auth"] = True
            return redirect(nxt, code=303)
        else:
            error = _("Wrong key.")
    return render_template("login.html", error=error, next=nxt), (401 if error else 200)


@bp.post("/logout")
def logout() -> Any:
    from flask import redirect, session

    session.clear()
    return redirect("/login", code=303)


_CITE = re.compile(r"\[(\d+)\]")


def answer_parts(answer: str, numbers: set[int]) -> list[tuple[str, int | None]]:
    """The answer as text pieces and citation numbers (``[2]`` becomes a link to citation 2)."""
    parts: list[tuple[str, int | None]] = []
    pos = 0
    for m in _CITE.finditer(answer):
        n = int(m.group(1))
        if n not in numbers:
            continue
        parts.append((answer[pos:m.start()], None))
        parts.append((m.group(0), n))
        pos = m.end()
    parts.append((answer[pos:], None))
    return [p for p in parts if p[0]]


@bp.get("/ask")
def ask_page() -> Any:
    """Ask the library: the answer with numbered citations that play their moment. Works
    without script (the answer is made here); app.js streams it instead as it is written."""
    from pydantic import ValidationError

    from search_ui.ask import _with_clips, asker
    from vidx.ask import AskRequest

    q = (request.args.get("q") or "").strip()
    video = (request.args.get("video") or "").strip() or None
    result = None
    error = None
    if q:
        try:
            result = _with_clips(asker().ask(AskRequest(question=q, video=video)))
        except ValidationError:
            error = _("The question is too long or empty.")
        except BadRequest as exc:
            error = str(exc)
        except StoreError as exc:
            log.warning("ask page: %s", exc)
            error = _("The index is unavailable: %(why)s.", why=public_message(exc))
    parts = answer_parts(result["answer"], {c["n"] for c in result["citations"]}) if result else []
    names = services()["ledger"].names_for([c["video_id"] for c in result["citations"]]) if result else {}
    video_name = (services()["ledger"].names_for([video.lower()]).get(video.lower(), video)) if video else None
    return render_template("ask.html", q=q, video=video, video_name=video_name, result=result, parts=parts,
                           error=error, names=names, has_model=asker().model is not None)
