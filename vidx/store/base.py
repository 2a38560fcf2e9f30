"""The EventStore seam: every store (embedded SQLite, Elasticsearch) implements it."""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from vidx.errors import ServiceUnavailable
from vidx.schema import Event

if TYPE_CHECKING:
    from vidx.plan import Plan

RRF_K = 60
HIGHLIGHT_FIELDS = ("description", "dialogue", "ocr_text")


class StoreError(RuntimeError):
    """A store cannot do what was asked (unreachable, wrong schema, partial write...)."""


class StoreUnavailable(StoreError, ServiceUnavailable):
    """The store cannot be reached (connection refused, timeout)."""


class SchemaMismatch(StoreError):
    """The store was made for another schema version or embedding model. Nothing can be
    written until the operator acts (`vidx reindex`, or the setting set back): the daemon
    stops with this message rather than analysing videos it cannot store."""


def public_message(exc: Exception) -> str:
    """What a client may be told about a store error: no URL, path or server detail
    (the log keeps those)."""
    if isinstance(exc, StoreUnavailable):
        return "the search index cannot be reached right now; try again shortly"
    if isinstance(exc, SchemaMismatch):
        return "the search index was built with another embedding model or schema; an operator must run `vidx reindex`"
    return "the search index reported an error"


class SearchMode(str, Enum):
    keyword = "keyword"
    semantic = "semantic"
    hybrid = "hybrid"


@dataclass
class Hit:
    """A store's candidate. ``score``: BM25 (keyword), cosine similarity in [-1, 1] (kNN), or,
    once scored by vidx.search, the calibrated relevance in [0, 1]."""

    event: Event
    score: float
    highlights: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class SearchResult:
    total: int
    hits: list[Hit]


@dataclass
class PlanResult:
    """What a store's engine found for a :class:`vidx.plan.Plan`: the total (exact when
    ``exact``, else at least this many), the page's hits with calibrated scores, facet counts
    over every match, and how many events held a query word but fell below the threshold."""

    total: int
    exact: bool
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    below: int = 0


@dataclass
class WriteReport:
    """What a write did; ``failed`` lists (event_id, reason) never silently dropped."""

    written: int = 0
    deleted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


class EventWriter(Protocol):
    """What ingest uses: one writer process at a time (``vidx.writelock``)."""

    def ensure_schema(self, embedding_model: str, dims: int) -> None:
        """Create what is missing; refuse a store built with another embedding model."""

    def replace_video_events(self, video_id: str, events: Sequence[Event]) -> WriteReport:
        """Atomically make ``events`` the only events of ``video_id``."""

    def delete_video(self, video_id: str) -> int: ...

    def repoint_video(self, video_id: str, video_path: str) -> int:
        """The same content now lives at ``video_path`` (rename, or the first copy deleted):
        rewrite the path on its events without analysing anything again."""
        ...


@runtime_checkable
class IndexMaintainer(Protocol):
    """A store whose index wants upkeep while the writer is idle (the embedded store merges its
    FTS5 segments; Elasticsearch merges on its own and does not implement it)."""

    def optimize_index(self) -> bool:
        """Do the upkeep if it is due; whether anything was done."""
        ...


class EventSearcher(Protocol):
    """What the search service uses (vidx.search): plans executed in the engine."""

    def search(self, plan: Plan, vector: np.ndarray | None = None) -> PlanResult:
        """Execute a query plan in the engine: filters before ranking, the threshold, exact
        totals (up to vidx.plan.TOTAL_CAP), the page and facet counts over every match.
        With no words, a semantic plan ranks by ``vector`` alone ("more like this")."""
        ...

    def event_vector(self, event_id: str) -> np.ndarray | None:
        """The stored embedding of one event (for "more like this")."""
        ...


class EventBrowser(Protocol):
    """What video pages, transcripts, clips and `vidx verify` read."""

    def get_event(self, event_id: str) -> Event | None: ...

    def events_for_video(self, video_id: str) -> list[Event]:
        """Every event of one video, in time order."""
        ...

    def event_vectors(self, video_id: str) -> dict[str, np.ndarray]:
        """The stored vector of each event of one video (to write events back unchanged)."""
        ...

    def video_event_counts(self) -> dict[str, int]: ...

    def video_paths(self) -> dict[str, str]:
        """The file each video's events play, by video id."""
        ...

    def video_languages(self) -> dict[str, list[str]]:
        """The languages of each video's events (spoken or written), by video id, sorted."""
        ...

    def count(self, video_id: str | None = None) -> int: ...


class StoreAdmin(Protocol):
    """What setup, `vidx reindex`, health checks and the CLI use."""

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    def schema_matches(self, embedding_model: str, dims: int) -> bool:
        """False when the store holds vectors of another model or an older schema."""

    def check_indexes(self, repair: bool = False) -> list[str]:
        """Problems with what the store derives from its events (the embedded store's vector
        file); ``repair`` removes what is wrong, to be built again from the events."""

    def begin_rebuild(self, embedding_model: str, dims: int) -> EventStore:
        """A store to write every video into afresh, with the new model."""

    def finish_rebuild(self, target: EventStore, keep_old: bool = False) -> str:
        """Make the rebuilt events the live ones; returns what was done, for the user."""

    def abort_rebuild(self, target: EventStore) -> str:
        """Give up a rebuild that failed part-way; returns what state was left."""


class EventStore(EventWriter, EventSearcher, EventBrowser, StoreAdmin, Protocol):
    """A whole store (embedded SQLite, Elasticsearch): each caller takes only its part.
    Implementations must be safe for one writer process plus any number of readers."""


def rrf_fuse(result_lists: Iterable[list[Hit]], size: int, k: int = RRF_K) -> list[Hit]:
    """Reciprocal-rank fusion: score = sum over lists of 1 / (k + rank), rank from 1."""
    fused: dict[str, Hit] = {}
    scores: dict[str, float] = {}
    for hits in result_lists:
        for rank, hit in enumerate(hits, start=1):
            eid = hit.event.event_id
            scores[eid] = scores.get(eid, 0.0) + 1.0 / (k + rank)
            if eid not in fused:
                fused[eid] = Hit(event=hit.event, score=0.0, highlights=dict(hit.highlights))
            else:
                for f, frags in hit.highlights.items():
                    fused[eid].highlights.setdefault(f, frags)
    ordered = sorted(fused.values(), key=lambda h: (-scores[h.event.event_id], h.event.event_id))
    for h in ordered:
        h.score = round(scores[h.event.event_id], 6)
    return ordered[:size]


# Tokens: one text analysis for the whole project (vidx.text); re-exported for older imports
from vidx.text import CJK_RE as _CJK_RE  # noqa: E402
from vidx.text import STOP_WORDS, query_tokens, stem, tokens  # noqa: E402,F401
from vidx.text import TOKEN_RE as _TOKEN_RE  # noqa: E402


class _HighlightTerms:
    """A query's words, their stems, its CJK tokens and the words a longer form of which counts
    too, worked out once per query, not once per field of every hit."""

    __slots__ = ("cjk", "heads", "prefixes", "stems", "words")

    def __init__(self, query: str) -> None:
        qt = query_tokens(query)
        self.words = frozenset(t for t in qt if not _CJK_RE.match(t))
        self.cjk = frozenset(t for t in qt if _CJK_RE.match(t))
        self.stems = frozenset(stem(w) for w in self.words)
        self.prefixes = tuple(w for w in self.words if len(w) >= 4)
        # the Porter stemmer rewrites only suffixes: a word and its stem begin with the same
        # letter, so a text word whose first letter no query word or stem has cannot match
        self.heads = frozenset(w[:1] for w in self.words) | frozenset(s[:1] for s in self.stems)

    def found(self, text_tokens: set[str]) -> set[str]:
        """The tokens (lower case) that count as the query's words."""
        heads, words, prefixes, stems = self.heads, self.words, self.prefixes, self.stems
        return {t for t in text_tokens if t[:1] in heads and not _CJK_RE.match(t) and (
            t in words or (bool(prefixes) and t.startswith(prefixes)) or stem(t) in stems)}


@functools.lru_cache(maxsize=256)
def _highlight_terms(query: str) -> _HighlightTerms:
    return _HighlightTerms(query)


def highlight(text: str, query: str, max_fragments: int = 3, fragment_chars: int = 160) -> list[str]:
    """HTML fragments of ``text`` with query words wrapped in <em>; everything else escaped."""
    if not text or not query:
        return []
    terms = _highlight_terms(query)
    cjk = terms.cjk
    # the text's distinct words that match, found first: most hits of a semantic search hold none
    found = terms.found(set(_TOKEN_RE.findall(text.lower()))) if terms.words else set()
    if not found and not (cjk and any(p in text for p in cjk)):
        return []
    spans = _ascii_spans(text.lower(), found) if not cjk and text.isascii() else _token_spans(text, found, cjk)
    if not spans:
        return []
    spans = _merge(sorted(spans))
    frags: list[str] = []
    used_until = -1
    for s, _ in spans:
        if s < used_until:
            continue
        lo = max(0, s - fragment_chars // 3)
        hi = min(len(text), lo + fragment_chars)
        inner = [(a, b) for a, b in spans if a >= lo and b <= hi]
        parts: list[str] = ["…" if lo > 0 else ""]
        pos = lo
        for a, b in inner:
            parts.append(html.escape(text[pos:a]))
            parts.append("<em>" + html.escape(text[a:b]) + "</em>")
            pos = b
        parts.append(html.escape(text[pos:hi]))
        parts.append("…" if hi < len(text) else "")
        frags.append("".join(parts))
        used_until = hi
        if len(frags) >= max_fragments:
            break
    return frags


def _ascii_spans(low: str, found: set[str]) -> list[tuple[int, int]]:
    """Where the words in ``found`` stand as whole tokens in ``low`` (lower-case ASCII, so a
    token is a run of letters and digits and ``str.find`` positions are the text's)."""
    spans: list[tuple[int, int]] = []
    end = len(low)
    for word in found:
        i = low.find(word)
        while i >= 0:
            j = i + len(word)
            if (i == 0 or not low[i - 1].isalnum()) and (j == end or not low[j].isalnum()):
                spans.append((i, j))
            i = low.find(word, j)  # a later token cannot start inside this run of letters
    return spans


def _token_spans(text: str, found: set[str], cjk: frozenset[str]) -> list[tuple[int, int]]:
    """Where the query's words (``found``) and CJK pieces stand in ``text``, token by token."""
    spans: list[tuple[int, int]] = []
    for m in _TOKEN_RE.finditer(text):
        run = m.group(0)
        if cjk and _CJK_RE.match(run):
            for piece in cjk:
                start = 0
                while (idx := run.find(piece, start)) >= 0:
                    spans.append((m.start() + idx, m.start() + idx + len(piece)))
                    start = idx + 1
        elif run.lower() in found:
            spans.append((m.start(), m.end()))
    return spans


def highlight_event(e: Event, query: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in HIGHLIGHT_FIELDS:
        frags = highlight(getattr(e, f), query)
        if frags:
            out[f] = frags
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
