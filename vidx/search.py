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
from vidx.plan import TOTAL_CAP, Plan
from vidx.store.base import EventSearcher, Hit, PlanResult, SearchMode, highlight_event

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
    _check_cost(q)
    if (page - 1) * size >= TOTAL_CAP:
        raise BadRequest(f"pages go up to result {TOTAL_CAP:,}: narrow the search with words or filters")
    return Query(q=q, mode=mode, size=size, video_id=video_id, min_score=min_score, page=page, start=start, end=end,
                 added_from=added_from, added_to=added_to)


def _check_cost(q: str) -> None:
    from vidx.plan import PlanTooCostly, check_cost
    from vidx.query import parse

    try:
        check_cost(parse(q))
    except PlanTooCostly as exc:
        raise BadRequest(str(exc)) from None


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


QUERY_CACHE = 256  # query embeddings kept (paging and filters ask the same query again)
QUERY_EMBED_CHARS = 300  # characters of a query that are embedded (all of them are matched as words)


class SearchService:
    """Finds candidates in the store, scores them (:mod:`vidx.relevance`), applies the query's
    syntax and the threshold. Loads the embedder lazily (keyword search never needs it)."""

    def __init__(self, store: EventSearcher, embedder_factory: Callable[[], Embedder],
                 min_score: float = DEFAULT_MIN_SCORE) -> None:
        self.store = store
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, Any] = OrderedDict()
        self._query_batcher: Any = None
        self.min_score = min_score

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._factory()
            return self._embedder

    def _batcher(self) -> Any:
        from vidx.embed import QueryBatcher

        emb = self.embedder
        with self._lock:
            if self._query_batcher is None or self._query_batcher.embedder is not emb:
                self._query_batcher = QueryBatcher(emb)
            return self._query_batcher

    def _query_vector(self, text: str) -> Any:
        """The query's embedding; the last QUERY_CACHE texts are kept, because paging, filters
        and the threshold ask the same query again (it is most of a semantic query's time)."""
        with self._lock:
            vec = self._vectors.get(text)
            if vec is not None:
                self._vectors.move_to_end(text)
                return vec
        # a pasted paragraph: its first ~50 words carry its meaning, and the model's cost grows with length
        vec = self._batcher().embed_query(text[:QUERY_EMBED_CHARS])
        with self._lock:
            self._vectors[text] = vec
            while len(self._vectors) > QUERY_CACHE:
                self._vectors.popitem(last=False)
        return vec

    def plan(self, query: Query) -> Plan:
        """The query plan of a request (raises :class:`BadRequest` for one that costs too much)."""
        from vidx import relevance as rel
        from vidx.plan import PlanTooCostly, build
        from vidx.query import parse

        threshold = self.min_score if query.min_score is None else query.min_score
        offset = (query.page - 1) * query.size
        if offset >= TOTAL_CAP:
            raise BadRequest(f"pages go up to result {TOTAL_CAP:,}: narrow the search with filters")
        cal = rel.calibration(self.embedder.model_id) if query.mode != SearchMode.keyword else rel.DEFAULT_CALIBRATION
        try:
            return build(parse(query.q), query.mode, threshold, offset=offset, size=query.size,
                         video_ids=(query.video_id,) if query.video_id else (), start=query.start, end=query.end,
                         added_from=query.added_from, added_to=query.added_to, unrelated=cal.unrelated,
                         paraphrase=cal.paraphrase)
        except PlanTooCostly as exc:
            raise BadRequest(str(exc)) from None

    def run(self, query: Query) -> PlanResult:
        """The store executes the plan (filters, threshold, totals, facets); here only the page
        shown is highlighted."""
        plan = self.plan(query)
        vector = None
        if plan.has_text and plan.mode != SearchMode.keyword:
            vector = self._query_vector(plan.text)
        res = self.store.search(plan, vector)
        for h in res.hits:
            if not h.highlights and plan.has_text:
                h.highlights = highlight_event(h.event, plan.text)
        return res

    def similar(self, event_id: str, size: int = 10, min_score: float | None = None) -> dict[str, Any] | None:
        """"More like this": the events nearest to one event's vector, across all videos
        (the event itself left out). None when the event does not exist."""
        from vidx import relevance as rel

        vec = self.store.event_vector(event_id)
        if vec is None:
            return None
        from vidx.plan import Filters

        cal = rel.calibration(self.embedder.model_id)
        threshold = self.min_score if min_score is None else min_score
        # the same plan as a semantic search, ranked by the event's own vector
        plan = Plan(mode=SearchMode.semantic, words=(), phrase="", filters=Filters(), threshold=threshold, size=size + 1,
                    facets=False, unrelated=cal.unrelated, paraphrase=cal.paraphrase)
        hits = [h for h in self.store.search(plan, vec).hits if h.event.event_id != event_id][:size]
        return {"total": len(hits), "hits": [hit_dict(h) for h in hits], "min_score": threshold,
                "below_threshold": 0}

    def search(self, query: Query) -> dict[str, Any]:
        res = self.run(query)
        threshold = self.min_score if query.min_score is None else query.min_score
        shown = min(res.total, TOTAL_CAP)
        return {"total": res.total, "total_relation": "eq" if res.exact else "gte",
                "hits": [hit_dict(h) for h in res.hits], "min_score": threshold,
                "below_threshold": res.below, "page": query.page, "pages": max(1, -(-shown // query.size)),
                "facets": {k: [list(x) for x in v] for k, v in res.facets.items()}}
