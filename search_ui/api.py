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
    s["metrics"].searches.labels(query.mode.value).inc()
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
    lines = transcript_lines(events, speakers_of(video_id))
    if fmt == "json":
        return jsonify(video_id=video_id, lines=lines)
    name = s["ledger"].names_for([video_id]).get(video_id, video_id)
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.rsplit(".", 1)[0])[:100] or video_id
    body, mime = (to_srt(lines), "application/x-subrip") if fmt == "srt" else (to_vtt(lines), "text/vtt")
    resp = Response(body, mimetype=mime)
    resp.headers["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
    return resp


def speakers_of(video_id: str) -> dict[str, tuple[int, str, bool]]:
    """{speech event id: (person id, name, hidden)}; empty when no people are known."""
    from search_ui.people import people_db

    db = people_db()
    try:
        return db.speakers_of(video_id) if db.exists() else {}
    except Exception as exc:  # noqa: BLE001 (a transcript without names beats none)
        log.warning("speakers unavailable: %s", exc)
        return {}


def _video_rows(video_id: str) -> list[Any]:
    return [r for r in services()["ledger"].rows_for_video(video_id)] if services()["ledger"].exists() else []


def _bad_id(value: str, what: str) -> Any:
    from vidx.search import VIDEO_ID_RE

    if not VIDEO_ID_RE.match(value):
        return jsonify(error=f"{what} id must be 32 hexadecimal characters"), 404
    return None


@bp.get("/api/videos")
def videos() -> Any:
    """The library: one entry per video (copies listed under it), sorted, filtered, paged."""
    from search_ui.library import LibraryError, LibraryQuery

    try:
        query = LibraryQuery.from_args(request.args.to_dict(), default_size=200)
    except LibraryError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(library_page(query))


def library_page(query: Any) -> dict[str, Any]:
    """The library listing with each video's links (shared by /api/videos and /library)."""
    from search_ui.library import listing
    from vidx.store.base import StoreError

    s = services()
    try:
        languages = s["store"].video_languages()
    except StoreError as exc:  # the list still comes from the ledger; only languages are missing
        log.warning("library: no languages from the store: %s", exc)
        languages = {}
    out = listing(s["ledger"].rows(), languages, query)
    thumbs = s["settings"].thumbs_dir
    for v in out["videos"]:
        vid = v["video_id"]
        ok = bool(vid) and v["events"] > 0
        v["page_url"] = f"/videos/{vid}" if ok else None
        v["poster_url"] = f"/media/poster/{vid}.jpg" if ok and (thumbs / vid).is_dir() else None
    return out


@bp.get("/api/videos/<video_id>")
def video(video_id: str) -> Any:
    bad = _bad_id(video_id, "video")
    if bad:
        return bad
    rows = _video_rows(video_id)
    if not rows:
        return jsonify(error="no such video"), 404
    r = rows[0]
    return jsonify(video_id=video_id, name=r.path.rsplit("/", 1)[-1], paths=[x.path.rsplit("/", 1)[-1] for x in rows],
                   state=r.state, events=r.events, duration_sec=r.duration_sec, analyzer=r.analyzer,
                   warnings=r.warnings, error=r.error, note=r.note,
                   transcript_url=f"/api/videos/{video_id}/transcript", page_url=f"/videos/{video_id}")


@bp.get("/api/videos/<video_id>/events")
def video_events(video_id: str) -> Any:
    from vidx.search import Hit, hit_dict

    bad = _bad_id(video_id, "video")
    if bad:
        return bad
    try:
        events = services()["store"].events_for_video(video_id)
    except StoreError as exc:
        log.warning("events: %s", exc)
        return jsonify(error=f"events are unavailable: {public_message(exc)}"), 503
    if not events:
        return jsonify(error="no such video"), 404
    hits = [hit_dict(Hit(event=e, score=1.0)) for e in events]
    for h in hits:
        h.pop("score", None), h.pop("scores", None), h.pop("highlights", None)
    return jsonify(video_id=video_id, total=len(hits), events=with_clips({"hits": hits})["hits"])


@bp.get("/api/events/<event_id>")
def event(event_id: str) -> Any:
    from vidx.search import Hit, hit_dict

    bad = _bad_id(event_id, "event")
    if bad:
        return bad
    try:
        e = services()["store"].get_event(event_id)
    except StoreError as exc:
        log.warning("event: %s", exc)
        return jsonify(error=f"the event is unavailable: {public_message(exc)}"), 503
    if e is None:
        return jsonify(error="no such event"), 404
    d = hit_dict(Hit(event=e, score=1.0))
    for k in ("score", "scores", "highlights"):
        d.pop(k, None)
    return jsonify(with_clips({"hits": [d]})["hits"][0])


@bp.get("/api/events/<event_id>/similar")
def similar(event_id: str) -> Any:
    bad = _bad_id(event_id, "event")
    if bad:
        return bad
    try:
        size = min(100, max(1, int(request.args.get("size", 10))))
    except ValueError:
        return jsonify(error="size must be a whole number"), 400
    order = request.args.get("order", "others-first")
    if order not in ("others-first", "score"):
        return jsonify(error="order must be others-first or score"), 400
    try:
        res = services()["search"].similar(event_id, size, others_first=order == "others-first")
    except StoreError as exc:
        log.warning("similar: %s", exc)
        return jsonify(error=f"similar moments are unavailable: {public_message(exc)}"), 503
    if res is None:
        return jsonify(error="no such event"), 404
    return jsonify(with_clips(res))


@bp.get("/api/openapi.json")
def openapi() -> Any:
    from search_ui.openapi import document

    return jsonify(document())


@bp.get("/api/docs")
def api_docs() -> Any:
    """The API for people: Swagger UI ("try it out", response schemas) from the installed
    swagger-ui-py package (no CDN), with the same document rendered on the server below
    (it works without JavaScript)."""
    from flask import make_response, render_template

    from search_ui.openapi import document

    resp = make_response(render_template("api_docs.html", doc=document()))
    # Swagger UI draws its icons as data: images and sets styles from script
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
    return resp


SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"}


@bp.get("/docs-assets/<name>")
def docs_assets(name: str) -> Any:
    """Swagger UI's files, served from the swagger-ui-py package."""
    from pathlib import Path

    from flask import abort, send_from_directory

    if name not in SWAGGER_FILES:
        abort(404)
    try:
        import swagger_ui
    except ImportError:
        abort(404, description="swagger-ui-py is not installed")
    return send_from_directory(Path(swagger_ui.__file__).parent / "static", name, max_age=86400)


@bp.post("/api/upload")
def upload() -> Any:
    """A video into the watch folder (multipart field ``file``); the daemon takes it from there."""
    from flask import redirect, url_for

    from search_ui.upload import UploadRefused, save_upload

    s = services()["settings"]
    f = request.files.get("file")
    try:
        if f is None:
            raise UploadRefused("no file was sent (multipart field 'file')", 400)
        dest = save_upload(f.stream, f.filename or "", s.watch_dir, s.upload_max_mb * 1024 * 1024)
    except UploadRefused as exc:
        return jsonify(error=str(exc)), exc.status
    log.info("uploaded %s", dest.name)
    if request.form.get("then") == "status":
        return redirect(url_for("views.status_page", uploaded=dest.name), code=303)
    return jsonify(name=dest.name, status_url="/api/status"), 201


@bp.get("/metrics")
def metrics() -> Any:
    from flask import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(services()["metrics"].registry), mimetype=CONTENT_TYPE_LATEST)


@bp.post("/api/requeue")
def requeue() -> Any:
    """Ask the daemon to try a failed video again. The UI never writes the ledger: it leaves
    a request in <data_dir>/requests that the daemon takes on its next turn."""
    import hashlib
    import json as _json
    import os

    from flask import redirect, url_for

    path = (request.form.get("path") or (request.get_json(silent=True) or {}).get("path") or "").strip()
    row = services()["ledger"].get(path) if path else None
    if row is None:
        return jsonify(error="no such file in the ledger"), 404
    if row.state != "failed":
        return jsonify(error=f"only failed videos are requeued (this one is {row.state})"), 409
    folder = services()["settings"].requests_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = f"requeue-{hashlib.sha1(path.encode()).hexdigest()}.json"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(_json.dumps({"action": "requeue", "path": path}), encoding="utf-8")
    os.replace(tmp, folder / name)
    if request.form.get("then") == "status":
        return redirect(url_for("views.status_page"), code=303)
    return jsonify(queued=True, path=path), 202
