"""Search as the API, the page and the CLI see it: validate, embed the query, ask the store."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vidx.embed import Embedder
from vidx.store.base import EventStore, Hit, SearchMode, SearchResult

log = logging.getLogger("vidx.search")

MAX_QUERY_CHARS = 4000
MAX_SIZE = 100
VIDEO_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class BadRequest(ValueError):
    """A search parameter is invalid; the message is safe to show."""


@dataclass(frozen=True)
class Query:
    q: str
    mode: SearchMode
    size: int
    video_id: str | None


def parse_query(params: dict[str, Any], default_size: int = 20) -> Query:
    q = params.get("q")
    q = "" if q is None else str(q)
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"query is too long ({len(q)} characters; at most {MAX_QUERY_CHARS})")
    q = q.replace("\x00", " ").strip()
    mode_s = str(params.get("mode") or "hybrid").lower()
    try:
        mode = SearchMode(mode_s)
    except ValueError:
        raise BadRequest("mode must be keyword, semantic or hybrid") from None
    size_s = params.get("size")
    if size_s in (None, ""):
        size = default_size
    else:
        try:
            size = int(str(size_s))
        except ValueError:
            raise BadRequest("size must be a whole number") from None
        if not 1 <= size <= MAX_SIZE:
            raise BadRequest(f"size must be between 1 and {MAX_SIZE}")
    video_id = params.get("video_id") or None
    if video_id is not None:
        video_id = str(video_id).lower()
        if not VIDEO_ID_RE.match(video_id):
            raise BadRequest("video_id must be 32 hexadecimal characters")
    return Query(q=q, mode=mode, size=size, video_id=video_id)


def clip_url(hit_event_id: str, start: float, end: float) -> str:
    return f"/media/clip/{hit_event_id}#t={start:.2f},{end:.2f}"


def thumbnail_url(event_id: str) -> str:
    return f"/media/thumb/{event_id}.jpg"


def hit_dict(h: Hit) -> dict[str, Any]:
    e = h.event
    return {
        "event_id": e.event_id,
        "video_id": e.video_id,
        "video_path": e.video_path,
        "start_sec": e.start_sec,
        "end_sec": e.end_sec,
        "description": e.description,
        "dialogue": e.dialogue,
        "ocr_text": e.ocr_text,
        "people": e.people,
        "location": e.location,
        "action": e.action,
        "objects": e.objects,
        "emotion": e.emotion,
        "source": e.source,
        "language": e.language,
        "analyzer": e.analyzer,
        "model": e.model,
        "score": h.score,
        "clip_url": clip_url(e.event_id, e.start_sec, e.end_sec),
        "thumbnail_url": thumbnail_url(e.event_id),
        "highlights": h.highlights,
    }


class SearchService:
    """Loads the embedder lazily (keyword search never needs it) and only once."""

    def __init__(self, store: EventStore, embedder_factory: Callable[[], Embedder]) -> None:
        self.store = store
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._factory()
            return self._embedder

    def run(self, query: Query) -> SearchResult:
        if not query.q:
            return SearchResult(total=0, hits=[])
        if query.mode == SearchMode.keyword:
            return self.store.search_keyword(query.q, query.size, query.video_id)
        vec = self.embedder.embed_query(query.q)
        if query.mode == SearchMode.semantic:
            return self.store.search_knn(vec, query.size, query.video_id, text=query.q)
        return self.store.search_hybrid(query.q, vec, query.size, query.video_id)

    def search(self, query: Query) -> dict[str, Any]:
        res = self.run(query)
        return {"total": res.total, "hits": [hit_dict(h) for h in res.hits]}
