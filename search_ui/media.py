"""Clips and thumbnails, looked up by event id. A path never comes from the request."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, send_file

from search_ui import services
from vidx.media import ProbeError, browser_playable, make_clip, mime_for

log = logging.getLogger("search_ui.media")
bp = Blueprint("media", __name__, url_prefix="/media")

EVENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")


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
    if e is None:
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
    # a codec the browser cannot play: a cached H.264 clip of just this event
    dest = services()["settings"].clips_dir / e.video_id / f"{e.event_id}.mp4"
    try:
        make_clip(src, e.start_sec, e.end_sec, dest)
    except (ProbeError, OSError, ValueError) as exc:
        log.warning("cannot make a clip of %s: %s", src, exc)
        abort(404, description="the clip could not be made")
    return send_file(dest, mimetype="video/mp4", conditional=True, etag=True, max_age=3600)


@bp.get("/thumb/<name>")
def thumb(name: str) -> Any:
    if not name.endswith(".jpg"):
        abort(404)
    e = _event(name[:-4])
    path = services()["settings"].thumbs_dir / e.video_id / f"{e.event_id}.jpg"
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/jpeg", conditional=True, max_age=86400)
