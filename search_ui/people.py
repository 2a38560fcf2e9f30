"""People: who speaks in the library. The API lists, names, hides, merges and deletes
people; the pages show them with a voice sample and their moments across videos.

Names are kept in ``people.sqlite3``; the daemon writes them into the stored events (so
``person:"…"`` and the person facet find them) within a few seconds of a change.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for

from search_ui import lazy, services
from search_ui.media import clip_fields
from vidx.people import PeopleDB, PeopleError, Person, PersonNotFound
from vidx.store.base import StoreError

log = logging.getLogger("search_ui.people")
bp = Blueprint("people", __name__)

MAX_MOMENTS = 1000  # a person page lists this many moments at most (the API too)


def people_db() -> PeopleDB:
    s = services()["settings"]
    return lazy("people", lambda: PeopleDB(s.people_path))  # type: ignore[no-any-return]


def person_dict(p: Person) -> dict[str, Any]:
    sample = None
    if p.sample is not None and p.sample[3]:
        vid, a, b, eid = p.sample
        try:  # the file decides whether the clip is the source itself or a transcoded piece
            ev = services()["store"].get_event(eid)
        except StoreError:
            ev = None
        sample = {"video_id": vid, "start_sec": a, "end_sec": b, "event_id": eid,
                  **clip_fields(eid, vid, ev.video_path if ev else "", a, b)}
    return {"id": p.id, "name": p.display, "named": p.name is not None, "hidden": p.hidden,
            "has_voice": p.has_voice, "has_face": p.has_face, "moments": p.moments + p.faces, "videos": p.videos,
            "lines": p.moments, "faces": p.faces, "speech_seconds": p.seconds,
            "thumbnail_url": f"/api/people/{p.id}/thumbnail" if p.has_face else None, "sample": sample,
            "url": f"/api/people/{p.id}", "page_url": f"/people/{p.id}"}


def moments_of(pid: int) -> list[dict[str, Any]]:
    """What the person said, across videos, in (video, time) order."""
    from vidx.people_sync import FACE_SOURCES
    from vidx.search import Hit, hit_dict

    db, store = people_db(), services()["store"]
    by_video: dict[str, set[str]] = {}
    for vid, eid in db.moments(pid):
        by_video.setdefault(vid, set()).add(eid)
    seen: dict[str, list[float]] = {}
    for vid, t in db.seen(pid):
        seen.setdefault(vid, []).append(t)
    out: list[dict[str, Any]] = []
    for vid in sorted(set(by_video) | set(seen)):
        times = seen.get(vid, [])
        for e in store.events_for_video(vid):
            said = e.event_id in by_video.get(vid, set())
            shown = e.source in FACE_SOURCES and any(e.start_sec <= t < max(e.end_sec, e.start_sec + 0.01)
                                                     for t in times)
            if said or shown:
                d = hit_dict(Hit(event=e, score=1.0))
                for k in ("score", "scores", "highlights"):
                    d.pop(k, None)
                d.update(clip_fields(e.event_id, e.video_id, e.video_path, e.start_sec, e.end_sec))
                out.append(d)
                if len(out) >= MAX_MOMENTS:
                    return out
    return out


def _person_or_404(pid: int) -> Person:
    try:
        return people_db().person(pid)
    except PersonNotFound:
        abort(404)


# -- API ------------------------------------------------------------------------------------
@bp.get("/api/people")
def list_people() -> Any:
    hidden = request.args.get("hidden", "0") in ("1", "true", "yes")
    db = people_db()
    people = db.persons(include_hidden=hidden) if db.exists() else []
    return jsonify(total=len(people), people=[person_dict(p) for p in people])


@bp.get("/api/people/<int:pid>")
def get_person(pid: int) -> Any:
    try:
        p = people_db().person(pid)
    except PersonNotFound:
        return jsonify(error="no such person"), 404
    try:
        moments = moments_of(pid)
    except StoreError as exc:
        return jsonify(error=f"the person's moments are unavailable: {exc}"), 503
    return jsonify({**person_dict(p), "moment_list": moments})


def _json_body() -> dict[str, Any] | Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    return body


@bp.get("/api/people/<int:pid>/thumbnail")
def person_thumbnail(pid: int) -> Any:
    from flask import Response

    data = people_db().thumbnail(pid)
    if not data:
        return jsonify(error="no face of this person"), 404
    resp = Response(data, mimetype="image/jpeg")
    resp.headers["Cache-Control"] = "private, max-age=60"
    return resp


@bp.patch("/api/people/<int:pid>")
def patch_person(pid: int) -> Any:
    body = _json_body()
    if body is None:
        return jsonify(error="the body must be a JSON object"), 400
    unknown = set(body) - {"name", "hidden"}
    if unknown or not body:
        return jsonify(error="send {\"name\": \"…\"} (null: back to \"Speaker N\") and/or {\"hidden\": true|false}"), 400
    db = people_db()
    try:
        if "name" in body:
            db.rename(pid, body["name"])
        if "hidden" in body:
            if not isinstance(body["hidden"], bool):
                return jsonify(error="hidden must be true or false"), 400
            db.hide(pid, body["hidden"])
        return jsonify(person_dict(db.person(pid)))
    except PersonNotFound:
        return jsonify(error="no such person"), 404
    except PeopleError as exc:
        return jsonify(error=str(exc)), 400


@bp.post("/api/people/<int:pid>/merge")
def merge_person(pid: int) -> Any:
    body = _json_body()
    into = body.get("into") if body else None
    if not isinstance(into, int) or isinstance(into, bool):
        return jsonify(error="send {\"into\": <the id of the person to keep>}"), 400
    db = people_db()
    try:
        db.merge(pid, into)
        return jsonify(person_dict(db.person(into)))
    except PersonNotFound:
        return jsonify(error="no such person"), 404
    except PeopleError as exc:
        return jsonify(error=str(exc)), 400


@bp.post("/api/people/<int:pid>/split")
def split_person(pid: int) -> Any:
    body = _json_body()
    vid = body.get("video_id") if body else None
    if not isinstance(vid, str) or not vid:
        return jsonify(error="send {\"video_id\": <the video whose voice and faces are someone else>}"), 400
    db = people_db()
    try:
        new = db.split(pid, vid)
        return jsonify(person_dict(db.person(new)))
    except PersonNotFound:
        return jsonify(error="no such person"), 404
    except PeopleError as exc:
        return jsonify(error=str(exc)), 400


@bp.delete("/api/people/<int:pid>")
def delete_person(pid: int) -> Any:
    try:
        people_db().delete(pid)
    except PersonNotFound:
        return jsonify(error="no such person"), 404
    return jsonify(deleted=pid)


# -- pages ----------------------------------------------------------------------------------
@bp.get("/people")
def people_page() -> Any:
    db = people_db()
    show_hidden = request.args.get("hidden") == "1"
    people = [person_dict(p) for p in (db.persons(include_hidden=show_hidden) if db.exists() else [])]
    return render_template("people.html", people=people, show_hidden=show_hidden,
                           pending=bool(db.exists() and db.pending()), everyone=people)


@bp.get("/people/<int:pid>")
def person_page(pid: int) -> Any:
    p = _person_or_404(pid)
    try:
        moments = moments_of(pid)
    except StoreError as exc:
        moments, error = [], str(exc)
    else:
        error = ""
    others = [person_dict(x) for x in people_db().persons() if x.id != pid]
    return render_template("person.html", person=person_dict(p), moments=moments, error=error, others=others,
                           videos=by_video(moments), can_split=p.videos > 1, capped=len(moments) >= MAX_MOMENTS)


def by_video(moments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The person's moments per video, with each moment's place on the video's timeline (%)."""
    groups: dict[str, dict[str, Any]] = {}
    store = services()["store"]
    for m in moments:
        g = groups.setdefault(m["video_id"], {"video_id": m["video_id"], "name": m["video_path"].rsplit("/", 1)[-1],
                                              "moments": []})
        g["moments"].append(m)
    for g in groups.values():
        try:
            dur = max((e.end_sec for e in store.events_for_video(g["video_id"])), default=1.0) or 1.0
        except StoreError:
            dur = max(m["end_sec"] for m in g["moments"]) or 1.0
        g["duration"] = dur
        for m in g["moments"]:
            m["left"] = round(100 * m["start_sec"] / dur, 2)
            m["width"] = max(0.6, round(100 * (m["end_sec"] - m["start_sec"]) / dur, 2))
    return list(groups.values())


@bp.post("/people/<int:pid>")
def person_form(pid: int) -> Any:
    """The forms of the People pages (no script needed): rename, hide/show, merge, delete."""
    db = people_db()
    action = request.form.get("action", "")
    try:
        if action == "rename":
            name = request.form.get("name", "").strip()
            db.rename(pid, name or None)
        elif action in ("hide", "show"):
            db.hide(pid, action == "hide")
        elif action == "merge":
            into = int(request.form.get("into", ""))
            db.merge(pid, into)
            return redirect(url_for("people.person_page", pid=into))
        elif action == "split":
            new = db.split(pid, request.form.get("video_id", ""))
            return redirect(url_for("people.person_page", pid=new))
        elif action == "delete":
            db.delete(pid)
            return redirect(url_for("people.people_page"))
        else:
            abort(400)
    except PersonNotFound:
        abort(404)
    except (PeopleError, ValueError) as exc:
        return render_template("error.html", code=400, message=str(exc)), 400
    return redirect(request.form.get("then") == "list" and url_for("people.people_page")
                    or url_for("people.person_page", pid=pid))
