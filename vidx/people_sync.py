"""Names into stored events: after a person is named, merged, hidden or deleted, the
speech events of their videos are written again with the names as they are now, so that
``person:"Ada Quill"``, the person facet, the transcript and semantic search all see them.

Only the ``people`` field of speech events changes (the speaker is all it holds); those
events are embedded again (their text names the people), the others keep their vectors.
The daemon does this (it is the store's one writer); ``vidx people`` does it at once when
no daemon runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np

from vidx.people import PeopleDB
from vidx.schema import Event
from vidx.store.base import WriteReport

log = logging.getLogger("vidx.people")


class NamedStore(Protocol):
    def events_for_video(self, video_id: str) -> list[Event]: ...

    def event_vectors(self, video_id: str) -> dict[str, np.ndarray]: ...

    def replace_video_events(self, video_id: str, events: list[Event]) -> WriteReport: ...


class TextEmbedder(Protocol):
    model_id: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


FACE_SOURCES = ("scene", "vlm")  # events that show a picture: the people seen in it are named there


def name_events(db: PeopleDB, video_id: str, events: list[Event], fresh: bool = False) -> list[Event]:
    """Set the speaker's name on the video's speech events and the names of the faces seen on
    its scene (and VLM) events; returns the events that changed. Names a VLM wrote stay: only
    the face names vidx itself wrote before are replaced (``fresh``: the events were just
    made, nothing was written into them yet)."""
    names = db.names_of(video_id)
    seen = [(t, name) for t, _pid, name, hidden in db.faces_of(video_id) if not hidden]
    before = {} if fresh else db.written_of(video_id)
    written: dict[str, list[str]] = {}
    changed = []
    for e in events:
        if e.source == "speech":
            want = names.get(e.event_id, [])
        elif e.source in FACE_SOURCES:
            end = max(e.end_sec, e.start_sec + 0.01)
            faces: list[str] = []
            for t, name in seen:
                if e.start_sec <= t < end and name not in faces:
                    faces.append(name)
            old = set(before.get(e.event_id, []))
            base = [p for p in e.people if p not in old]
            added = [n for n in faces if n not in base]
            want = base + added
            if added:
                written[e.event_id] = added
        else:
            continue
        if e.people != want:
            e.people = list(want)
            changed.append(e)
    if written or before or fresh:
        db.set_written(video_id, written)
    return changed


def apply_names(db: PeopleDB, store: NamedStore, embedder: Callable[[], TextEmbedder], video_id: str) -> int:
    """Rewrite one video's events with the current names; returns how many changed."""
    events = store.events_for_video(video_id)
    if not events:
        return 0
    changed = name_events(db, video_id, events)
    if not changed:
        return 0
    vectors = store.event_vectors(video_id)
    emb = embedder()
    fresh = emb.embed([e.embedding_text() for e in changed])
    for e, v in zip(changed, fresh):
        vectors[e.event_id] = np.asarray(v, dtype=np.float32)
    for e in events:
        v = vectors.get(e.event_id)
        e.embedding = [float(x) for x in v] if v is not None else None
        if v is not None and not e.embedding_model:
            e.embedding_model = emb.model_id
    report = store.replace_video_events(video_id, events)
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} event(s) were not written: {report.failed[0][1]}")
    return len(changed)


def sync_pending(db: PeopleDB, store: NamedStore, embedder: Callable[[], TextEmbedder],
                 should_stop: Callable[[], bool] = lambda: False) -> int:
    """Bring every video waiting for new names up to date; returns how many events changed."""
    total = 0
    for video_id, since in db.pending():
        if should_stop():
            break
        n = apply_names(db, store, embedder, video_id)
        db.done(video_id, since)
        if n:
            log.info("names: %d line(s) of video %s now carry their speaker's current name", n, video_id[:12])
        total += n
    return total
