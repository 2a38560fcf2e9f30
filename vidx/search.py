"""Search as the API, the page and the CLI see it: validate, embed the query, ask the store."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from vidx.crosslingual import language_axis, neutral
from vidx.embed import Embedder
from vidx.moments import Moment, group, same_moment
from vidx.plan import TOTAL_CAP, Plan
from vidx.store.base import EventSearcher, Hit, PlanResult, SearchMode, highlight_event

log = logging.getLogger("vidx.search")

MAX_QUERY_CHARS = 4000
DEFAULT_MIN_SCORE = 0.25  # chosen on the relevance benchmark (README "Search quality")
MAX_SIZE = 100
VIDEO_ID_RE = re.compile(r"^[0-9a-f]{32}$")
GROUPS = ("none", "moment")
MOMENT_WINDOW_MIN = 60  # events ranked to group one page of moments (at least)
MOMENT_WINDOW_CAP = 600  # ... and at most: grouped paging goes this deep


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
    group: str = "none"  # "moment": hits of one video whose times overlap are one result (vidx.moments)


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
    group = str(params.get("group") or "none").lower()
    if group not in GROUPS:
        raise BadRequest("group must be none or moment")
    _check_cost(q)
    if group == "moment" and (page - 1) * size >= MOMENT_WINDOW_CAP:
        raise BadRequest(f"grouped results page through the best {MOMENT_WINDOW_CAP} matching events: "
                         "narrow the search with words or filters, or use group=none")
    if (page - 1) * size >= TOTAL_CAP:
        raise BadRequest(f"pages go up to result {TOTAL_CAP:,}: narrow the search with words or filters")
    return Query(q=q, mode=mode, size=size, video_id=video_id, min_score=min_score, page=page, start=start, end=end,
                 added_from=added_from, added_to=added_to, group=group)


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


def context_dict(h: Hit) -> dict[str, Any]:
    """An event folded into a moment: enough to show it and to open it."""
    e = h.event
    return {"event_id": e.event_id, "source": e.source, "start_sec": e.start_sec, "end_sec": e.end_sec,
            "description": e.description, "dialogue": e.dialogue, "ocr_text": e.ocr_text, "score": h.score,
            "highlights": h.highlights, "thumbnail_url": thumbnail_url(e.event_id)}


def moment_dict(m: Moment) -> dict[str, Any]:
    """A moment as a hit: its head event's fields, the moment's best score, its span and the
    events folded into it."""
    d = hit_dict(m.head)
    d["score"] = m.score
    d["moment"] = {"start_sec": m.start, "end_sec": m.end, "events": 1 + len(m.context)}
    d["context"] = [context_dict(h) for h in m.context]
    return d


WARM_QUERY = "people talking in a room"  # what warm() searches for (any everyday sentence)
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
        self._axis_lock = threading.Lock()
        self._axis: tuple[Embedder, Any] | None = None  # (embedder, its language axis or None)
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
                # a store that lets searches share a pass over its vectors hears how many are coming
                self._query_batcher = QueryBatcher(emb, on_batch=getattr(self.store, "expect_vector_searches", None))
            return self._query_batcher

    def _language_axis(self) -> Any:
        """The model's Chinese-English direction, measured once per embedder (:mod:`vidx.crosslingual`)."""
        emb = self.embedder
        with self._axis_lock:  # measured once, not by every search thread at the first query
            if self._axis is None or self._axis[0] is not emb:
                self._axis = (emb, language_axis(emb))
            return self._axis[1]

    def _query_vector(self, text: str) -> Any:
        """The query's embedding as searched, without the model's Chinese-English direction
        (:mod:`vidx.crosslingual`: a Chinese question finds an English answer). The last
        QUERY_CACHE texts are kept, because paging, filters and the threshold ask the same query
        again (it is most of a semantic query's time)."""
        with self._lock:
            vec = self._vectors.get(text)
            if vec is not None:
                self._vectors.move_to_end(text)
                return vec
        # a pasted paragraph: its first ~50 words carry its meaning, and the model's cost grows with length
        vec = neutral(self._batcher().embed_query(text[:QUERY_EMBED_CHARS]), self._language_axis())
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
            plan = build(parse(query.q), query.mode, threshold, offset=offset, size=query.size,
                         video_ids=(query.video_id,) if query.video_id else (), start=query.start, end=query.end,
                         added_from=query.added_from, added_to=query.added_to, unrelated=cal.unrelated,
                         paraphrase=cal.paraphrase)
        except PlanTooCostly as exc:
            raise BadRequest(str(exc)) from None
        if cal.relative and plan.has_text:
            own = cal.for_query(self._baseline(self._query_vector(plan.text)))
            plan = replace(plan, unrelated=own.unrelated, paraphrase=own.paraphrase)
        return plan

    def _baseline(self, vector: Any) -> float:
        """The vector's mean cosine with the embedder's everyday sentences (0 where it has none)."""
        fn = getattr(self.embedder, "baseline", None)
        return float(fn(vector)) if fn is not None else 0.0

    def run(self, query: Query, plan: Plan | None = None) -> PlanResult:
        """The store executes the plan (filters, threshold, totals, facets); here only the page
        shown is highlighted."""
        plan = plan or self.plan(query)
        vector = None
        if plan.has_text and plan.mode != SearchMode.keyword:
            vector = self._query_vector(plan.text)
        res = self.store.search(plan, vector)
        for h in res.hits:
            if not h.highlights and plan.has_text:
                h.highlights = highlight_event(h.event, plan.text)
        return res

    def similar(self, event_id: str, size: int = 10, min_score: float | None = None,
                others_first: bool = True) -> dict[str, Any] | None:
        """"More like this": distinct moments nearest to one event's vector (its own moment
        left out), from other videos first unless ``others_first`` is false. None when the
        event does not exist."""
        from vidx import relevance as rel

        vec = self.store.event_vector(event_id)
        if vec is None:
            return None
        from vidx.plan import Filters

        cal = rel.calibration(self.embedder.model_id).for_query(self._baseline(vec))
        threshold = self.min_score if min_score is None else min_score
        # the same plan as a semantic search, ranked by the event's own vector; a deeper list,
        # because the event's own moment and near-duplicates of one moment are folded away
        plan = Plan(mode=SearchMode.semantic, words=(), phrase="", filters=Filters(), threshold=threshold,
                    size=max(4 * size, 40), facets=False, unrelated=cal.unrelated, paraphrase=cal.paraphrase)
        hits = self.store.search(plan, vec).hits
        base = next((h for h in hits if h.event.event_id == event_id), None)  # nearest to itself: first
        rest = [h for h in hits if h.event.event_id != event_id and not (base and same_moment(h, base))]
        moments = group(rest)
        if others_first and base is not None:  # stable: by score within each part
            moments.sort(key=lambda m: m.head.event.video_id == base.event.video_id)
        moments = moments[:size]
        return {"total": len(moments), "hits": [moment_dict(m) for m in moments], "min_score": threshold,
                "below_threshold": 0, "group": "moment"}

    def _highlight(self, hits: Iterable[Hit], text: str) -> None:
        for h in hits:
            if not h.highlights:
                h.highlights = highlight_event(h.event, text)

    def _filter_total(self, plan: Plan) -> int | None:
        """For a search that found nothing: how many events its field filters (``video:``,
        ``person:``, ``source:``, ``lang:``, the time and added ranges) allow at all, so a person
        learns that a filter, not the words, left nothing. None when it has no such filter."""
        flt = replace(plan.filters, phrases=(), exclude=())
        if flt.empty:
            return None
        probe = replace(plan, mode=SearchMode.keyword, words=(), phrase="", text="", filters=flt, threshold=0.0,
                        offset=0, size=1, all_up_to=0, facets=False)
        return self.store.search(probe, None).total

    def search_moments(self, query: Query) -> dict[str, Any]:
        """Results grouped by moment (:mod:`vidx.moments`). The engine ranks a window of the
        best events (three pages' worth per page asked for, at least 60; every match when there
        are at most 600); the moments are counted exactly when the window held every match
        above the threshold, else the count is a lower bound (``total_relation: gte``). Facets and ``events_total`` count events."""
        window = min(MOMENT_WINDOW_CAP, max(MOMENT_WINDOW_MIN, 3 * query.size * query.page))
        # all of them fit: rank them all, count exactly (the embedded store does it in the same pass)
        plan = replace(self.plan(query), offset=0, size=window, all_up_to=MOMENT_WINDOW_CAP)
        vector = None
        if plan.has_text and plan.mode != SearchMode.keyword:
            vector = self._query_vector(plan.text)
        res = self.store.search(plan, vector)
        if res.exact and len(res.hits) < res.total <= MOMENT_WINDOW_CAP:
            res = self.store.search(replace(plan, size=res.total), vector)
        moments = group(res.hits)
        complete = res.exact and res.total <= len(res.hits)
        first = (query.page - 1) * query.size
        shown = moments[first:first + query.size]
        if plan.has_text:
            for m in shown:
                self._highlight([m.head, *m.context], plan.text)
        threshold = self.min_score if query.min_score is None else query.min_score
        out = {"total": len(moments), "total_relation": "eq" if complete else "gte", "group": "moment",
               "events_total": res.total, "events_total_relation": "eq" if res.exact else "gte",
               "hits": [moment_dict(m) for m in shown], "min_score": threshold, "below_threshold": res.below,
               "page": query.page, "pages": max(1, -(-len(moments) // query.size)),
               "facets": {k: [list(x) for x in v] for k, v in res.facets.items()}}
        return self._with_filter_total(out, plan, res.total)

    def _with_filter_total(self, out: dict[str, Any], plan: Plan, total: int) -> dict[str, Any]:
        if total == 0 and plan.has_text:
            n = self._filter_total(plan)
            if n is not None:
                out["filter_total"] = n
        return out

    def warm(self) -> float:
        """Load what a server process's first search would otherwise wait for (the query
        embedder, its language axis, the store's columns) by running one hybrid search.
        Returns the seconds it took; errors propagate (the caller logs them)."""
        import time

        t0 = time.perf_counter()
        self.run(parse_query({"q": WARM_QUERY, "mode": "hybrid"}, 10))
        return time.perf_counter() - t0

    def search(self, query: Query) -> dict[str, Any]:
        if query.group == "moment":
            return self.search_moments(query)
        plan = self.plan(query)
        res = self.run(query, plan)
        threshold = self.min_score if query.min_score is None else query.min_score
        shown = min(res.total, TOTAL_CAP)
        out = {"total": res.total, "total_relation": "eq" if res.exact else "gte",
               "hits": [hit_dict(h) for h in res.hits], "min_score": threshold,
               "below_threshold": res.below, "page": query.page, "pages": max(1, -(-shown // query.size)),
               "facets": {k: [list(x) for x in v] for k, v in res.facets.items()}}
        return self._with_filter_total(out, plan, res.total)
