"""Search as the API, the page and the CLI see it: validate, embed the query, ask the store."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vidx.embed import Embedder
from vidx.store.base import EventStore, Hit, SearchMode, SearchResult, highlight_event

log = logging.getLogger("vidx.search")

MAX_QUERY_CHARS = 4000
DEFAULT_MIN_SCORE = 0.25  # chosen on the relevance benchmark (README "Search quality")
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
    min_score: float | None = None  # None: the service's default (VIDX_MIN_SCORE)
    page: int = 1
    start: float | None = None  # only events that end after this second of their video
    end: float | None = None  # only events that start before this second
    added_from: str | None = None  # only videos indexed on or after this day (YYYY-MM-DD)
    added_to: str | None = None  # ... on or before this day


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
    min_s = params.get("min_score")
    min_score: float | None = None
    if min_s not in (None, ""):
        try:
            min_score = float(str(min_s))
        except ValueError:
            raise BadRequest("min_score must be a number between 0 and 1") from None
        if not 0.0 <= min_score <= 1.0 or min_score != min_score:
            raise BadRequest("min_score must be a number between 0 and 1")
    page = _int(params.get("page"), 1, "page", 1, 1000)
    start = _seconds(params.get("from"), "from")
    end = _seconds(params.get("to"), "to")
    added_from = _day(params.get("added_from"), "added_from")
    added_to = _day(params.get("added_to"), "added_to")
    return Query(q=q, mode=mode, size=size, video_id=video_id, min_score=min_score, page=page, start=start, end=end,
                 added_from=added_from, added_to=added_to)


def _day(v: Any, name: str) -> str | None:
    if v in (None, ""):
        return None
    text = str(v).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise BadRequest(f"{name} must be a date, YYYY-MM-DD")
    return text


def _int(v: Any, default: int, name: str, lo: int, hi: int) -> int:
    if v in (None, ""):
        return default
    try:
        n = int(str(v))
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if not lo <= n <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return n


def _seconds(v: Any, name: str) -> float | None:
    """Seconds, or mm:ss / hh:mm:ss."""
    if v in (None, ""):
        return None
    text = str(v).strip()
    try:
        parts = [float(x) for x in text.split(":")]
    except ValueError:
        raise BadRequest(f"{name} must be seconds or mm:ss") from None
    if not 1 <= len(parts) <= 3 or any(p < 0 or p != p for p in parts):
        raise BadRequest(f"{name} must be seconds or mm:ss")
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total


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
        "scores": dict(h.scores) if getattr(h, "scores", None) else {},
        "clip_url": clip_url(e.event_id, e.start_sec, e.end_sec),
        "thumbnail_url": thumbnail_url(e.event_id),
        "highlights": h.highlights,
    }


def facets(hits: list[Hit]) -> dict[str, list[tuple[str, int]]]:
    """Counts of the hits above the threshold by source, language, video, person, place, object and
    the day the video was indexed."""
    from collections import Counter

    c: dict[str, Counter[str]] = {k: Counter() for k in ("source", "language", "video", "person", "location",
                                                            "object", "added")}
    for h in hits:
        e = h.event
        c["source"][e.source] += 1
        if e.language:
            c["language"][e.language] += 1
        c["video"][e.video_path.rsplit("/", 1)[-1]] += 1
        for p in e.people:
            c["person"][p] += 1
        if e.location:
            c["location"][e.location] += 1
        for o in e.objects:
            c["object"][o] += 1
        if e.indexed_at:
            c["added"][e.indexed_at[:10]] += 1
    return {k: v.most_common(8) for k, v in c.items() if v}


QUERY_CACHE = 256  # query embeddings kept (paging and filters ask the same query again)
CANDIDATES = 100  # hits asked of the store per list; scoring, filters and the threshold pick from them


class SearchService:
    """Finds candidates in the store, scores them (:mod:`vidx.relevance`), applies the query's
    syntax and the threshold. Loads the embedder lazily (keyword search never needs it)."""

    def __init__(self, store: EventStore, embedder_factory: Callable[[], Embedder],
                 min_score: float = DEFAULT_MIN_SCORE) -> None:
        self.store = store
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, Any] = OrderedDict()
        self.min_score = min_score

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._factory()
            return self._embedder

    def _query_vector(self, text: str) -> Any:
        """The query's embedding; the last QUERY_CACHE texts are kept, because paging, filters
        and the threshold ask the same query again (it is most of a semantic query's time)."""
        with self._lock:
            vec = self._vectors.get(text)
            if vec is not None:
                self._vectors.move_to_end(text)
                return vec
        vec = self.embedder.embed_query(text)
        with self._lock:
            self._vectors[text] = vec
            while len(self._vectors) > QUERY_CACHE:
                self._vectors.popitem(last=False)
        return vec

    def run(self, query: Query) -> tuple[SearchResult, int, list[Hit]]:
        """(this page of hits above the threshold, how many candidates the threshold left out,
        every hit above it)."""
        from vidx import relevance as rel
        from vidx.query import parse

        pq = parse(query.q)
        if not pq.text:
            return SearchResult(total=0, hits=[]), 0, []
        window = max(CANDIDATES, query.size * 4)
        terms = rel.query_terms(pq.text)
        found: dict[str, Hit] = {}
        sem_scores: dict[str, float] = {}
        cosines: dict[str, float] = {}
        bm25_rank: dict[str, int] = {}
        if query.mode in (SearchMode.keyword, SearchMode.hybrid):
            # highlights are made below for the page shown only (not for every candidate)
            for i, h in enumerate(self.store.search_keyword(pq.text, window, query.video_id, highlight=False).hits):
                found[h.event.event_id] = h
                bm25_rank[h.event.event_id] = i
        if query.mode in (SearchMode.semantic, SearchMode.hybrid):
            emb = self.embedder
            cal = rel.calibration(emb.model_id)
            knn = self.store.search_knn(self._query_vector(pq.text), window, query.video_id).hits
            for h in knn:
                sem_scores[h.event.event_id] = rel.semantic_relevance(h.score, cal)
                cosines[h.event.event_id] = h.score
                prev = found.get(h.event.event_id)
                if prev is None:
                    found[h.event.event_id] = h
                else:
                    for f, frags in h.highlights.items():
                        prev.highlights.setdefault(f, frags)
            floor = min(sem_scores.values()) if len(knn) >= window else 0.0  # not in the window: at most this
        scored: list[Hit] = []
        for eid, h in found.items():
            if not rel.passes(h.event, pq):
                continue
            kw = rel.keyword_relevance(h.event, terms)
            if query.mode == SearchMode.keyword:
                score = kw
                parts = {"keyword": kw}
            elif query.mode == SearchMode.semantic:
                score = sem_scores.get(eid, 0.0)
                parts = {"semantic": score}
            else:
                sem = sem_scores.get(eid, floor)
                score = rel.fuse(kw, sem)
                parts = {"keyword": kw, "semantic": sem}
            scored.append(Hit(event=h.event, score=score, highlights=h.highlights, scores=parts))
        threshold = self.min_score if query.min_score is None else query.min_score
        kept = [h for h in scored if h.score >= threshold and (h.score > 0 or threshold == 0)
                and (query.start is None or h.event.end_sec > query.start)
                and (query.end is None or h.event.start_sec < query.end)
                and (query.added_from is None or h.event.indexed_at[:10] >= query.added_from)
                and (query.added_to is None or h.event.indexed_at[:10] <= query.added_to)]
        last = len(bm25_rank)
        kept.sort(key=lambda h: (-h.score, -cosines.get(h.event.event_id, -2.0), bm25_rank.get(h.event.event_id, last),
                                 h.event.duration_sec, h.event.start_sec, h.event.event_id))
        first = (query.page - 1) * query.size
        page = kept[first: first + query.size]
        for h in page:
            if not h.highlights:
                h.highlights = highlight_event(h.event, pq.text)
        return SearchResult(total=len(kept), hits=page), len(scored) - len(kept), kept

    def similar(self, event_id: str, size: int = 10, min_score: float | None = None) -> dict[str, Any] | None:
        """"More like this": the events nearest to one event's vector, across all videos
        (the event itself left out). None when the event does not exist."""
        from vidx import relevance as rel

        vec = self.store.event_vector(event_id)
        if vec is None:
            return None
        cal = rel.calibration(self.embedder.model_id)
        threshold = self.min_score if min_score is None else min_score
        hits = []
        for h in self.store.search_knn(vec, size + 1).hits:
            if h.event.event_id == event_id:
                continue
            score = rel.semantic_relevance(h.score, cal)
            if score >= threshold:
                hits.append(Hit(event=h.event, score=score, scores={"semantic": score}))
        hits = hits[:size]
        return {"total": len(hits), "hits": [hit_dict(h) for h in hits], "min_score": threshold,
                "below_threshold": 0}

    def search(self, query: Query) -> dict[str, Any]:
        res, below, kept = self.run(query)
        threshold = self.min_score if query.min_score is None else query.min_score
        return {"total": res.total, "hits": [hit_dict(h) for h in res.hits], "min_score": threshold,
                "below_threshold": below, "page": query.page, "pages": max(1, -(-res.total // query.size)),
                "facets": facets(kept)}
