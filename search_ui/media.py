"""Clips and thumbnails, looked up by event id. A path never comes from the request."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, jsonify, send_file

from search_ui import services
from search_ui.clips import ClipFailed
from vidx.media import CLIP_PAD_S, browser_playable, clip_name, mime_for

log = logging.getLogger("search_ui.media")
bp = Blueprint("media", __name__, url_prefix="/media")

EVENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
CLIP_RETRY_S = 1


def clip_fields(event_id: str, video_id: str, video_path: str, start: float, end: float) -> dict[str, Any]:
    """Where the player finds the event: the source itself (seek to the event's time) or a
    transcoded clip that starts at the event's first frame (time 0 in the clip)."""
    src = resolve_media(video_path) if EVENT_ID_RE.match(video_id or "") else None
    direct = src is None or browser_playable(src)
    a, b = (start, end + CLIP_PAD_S) if direct else (0.0, max(0.0, end - start) + CLIP_PAD_S)
    return {"clip_url": f"/media/clip/{event_id}#t={a:.2f},{b:.2f}", "clip_start": round(a, 3),
            "clip_end": round(b, 3), "clip_direct": direct}


def with_clips(result: dict[str, Any]) -> dict[str, Any]:
    for h in result.get("hits", []):
        h.update(clip_fields(h["event_id"], h["video_id"], h["video_path"], h["start_sec"], h["end_sec"]))
    return result


def media_roots() -> list[Path]:
    s = services()["settings"]
    return [p.resolve() for p in [s.watch_dir, *s.extra_media_dirs]]


def resolve_media(stored_path: str) -> Path | None:
    """The stored video path if it is a regular file inside a media root, else None."""
    try:
        p = Path(stored_path)
        if not p.is_absolute():
            return None
        real = p.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    for root in media_roots():
        if real.is_relative_to(root):
            return real if real.is_file() else None
    log.warning("refusing to serve %s: outside the media folders", stored_path)
    return None


def _event(event_id: str) -> Any:
    if not EVENT_ID_RE.match(event_id):
        abort(404)
    e = services()["store"].get_event(event_id)
    # stored fields are data, not trusted paths: ids are checked before a path is built from them
    if e is None or not EVENT_ID_RE.match(e.event_id) or not EVENT_ID_RE.match(e.video_id):
        abort(404)
    return e


@bp.get("/clip/<event_id>")
def clip(event_id: str) -> Any:
    e = _event(event_id)
    src = resolve_media(e.video_path)
    if src is None:
        abort(404, description="the video file is not available")
    if browser_playable(src):
        return send_file(src, mimetype=mime_for(src), conditional=True, etag=True, max_age=3600)
    # a codec the browser cannot play: a cached H.264/AAC clip of just this event, made off this thread
    dest = services()["settings"].clips_dir / e.video_id / clip_name(e.event_id)
    try:
        ready = services()["clips"].request(src, e.start_sec, e.end_sec + CLIP_PAD_S, dest)
    except ClipFailed as exc:
        log.warning("cannot make a clip of %s: %s", src, exc)
        abort(404, description="the clip could not be made")
    if ready is None:
        resp = jsonify(error="the clip is being prepared; try again shortly", retry_after=CLIP_RETRY_S)
        resp.status_code = 503
        resp.headers["Retry-After"] = str(CLIP_RETRY_S)
        return resp
    return send_file(ready, mimetype="video/mp4", conditional=True, etag=True, max_age=3600)


@bp.get("/thumb/<name>")
def thumb(name: str) -> Any:
    if not name.endswith(".jpg"):
        abort(404)
    e = _event(name[:-4])
    path = services()["settings"].thumbs_dir / e.video_id / f"{e.event_id}.jpg"
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/jpeg", conditional=True, max_age=86400)


@bp.get("/poster/<name>")
def poster(name: str) -> Any:
    """A video's picture for the library: the most detailed of its event thumbnails (the
    largest JPEG: a black or blank frame compresses to little)."""
    if not name.endswith(".jpg") or not EVENT_ID_RE.match(name[:-4]):
        abort(404)
    folder = services()["settings"].thumbs_dir / name[:-4]
    try:
        best = max(folder.glob("*.jpg"), key=lambda p: (p.stat().st_size, p.name), default=None)
    except OSError:
        best = None
    if best is None:
        abort(404)
    return send_file(best, mimetype="image/jpeg", conditional=True, max_age=3600)


@bp.get("/video/<video_id>")
def whole_video(video_id: str) -> Any:
    """The whole source of a video a browser can play (the video page's player)."""
    from vidx.search import VIDEO_ID_RE

    if not VIDEO_ID_RE.match(video_id):
        abort(404)
    events = services()["store"].events_for_video(video_id)
    if not events or not EVENT_ID_RE.match(events[0].video_id):
        abort(404)
    src = resolve_media(events[0].video_path)
    if src is None:
        abort(404, description="the video file is not available")
    if not browser_playable(src):
        abort(415, description="the browser cannot play this file whole; each event plays as a clip")
    return send_file(src, mimetype=mime_for(src), conditional=True, etag=True, max_age=3600)
