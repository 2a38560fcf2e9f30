"""One query plan, executed by the store's engine.

A search request (:class:`vidx.search.Query`) and the query syntax (:mod:`vidx.query`) become a
:class:`Plan`: the words to match, the filters that narrow the search *before* ranking, the
threshold, and the page. Each store turns the plan into its engine's query (FTS5 ``MATCH`` plus
column filters in the embedded store; ``bool`` + ``knn.filter`` + ``aggs`` in Elasticsearch), and
returns exact totals (up to :data:`TOTAL_CAP`), the page, and facet counts over every match.

What "matches" means, the same in both stores:

* **keyword**: the event holds at least :meth:`Plan.min_coverage` of the query's distinct words
  (stemmed, in any field; a word of 5+ letters also matches with one typo, 8+ with two, for
  0.8 of a word), so that its keyword relevance is at least the threshold;
* **semantic**: the cosine of query and event vectors is at least :meth:`Plan.min_cosine`, the
  cosine whose calibrated relevance is the threshold;
* **hybrid**: either of the two; the score fuses both;
* **no words** (only filters): every event the filters allow, listed by video and time.

Scores are the calibrated relevance of :mod:`vidx.relevance` (in [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from vidx.query import ParsedQuery
from vidx.store.base import SearchMode
from vidx.text import query_tokens, tokens

TOTAL_CAP = 10_000  # totals are exact up to this, then "10,000+" (Elasticsearch's track_total_hits)
MAX_TERMS = 32  # distinct words a query may match on
MAX_OPERATORS = 16  # phrases, exclusions and field filters together
FACET_SIZE = 8

COVERAGE_WEIGHT = 0.75
PHRASE_WEIGHT = 0.15
DENSITY_WEIGHT = 0.10


class PlanTooCostly(ValueError):
    """The query asks for more work than a search may cost; the message says what to change."""


@dataclass(frozen=True)
class Filters:
    video_ids: tuple[str, ...] = ()  # exact ids (the ``video_id`` parameter): any of them
    video: tuple[str, ...] = ()  # ``video:``: an id, or part of the file name; any of them
    person: tuple[str, ...] = ()  # ``person:``: part of a name; every one must be there
    source: tuple[str, ...] = ()  # any of them
    lang: tuple[str, ...] = ()  # language codes; the first two letters are compared
    phrases: tuple[str, ...] = ()  # each must appear, words together and in order
    exclude: tuple[str, ...] = ()  # none may appear
    start: float | None = None  # the event ends after this second
    end: float | None = None  # the event starts before this second
    added_from: str | None = None  # the event was indexed on or after this day (YYYY-MM-DD)
    added_to: str | None = None  # ... on or before this day

    @property
    def empty(self) -> bool:
        return not (self.video_ids or self.video or self.person or self.source or self.lang or self.phrases
                    or self.exclude or self.start is not None or self.end is not None or self.added_from
                    or self.added_to)

    def added_before(self) -> str | None:
        """The day after ``added_to`` (an exclusive bound that needs no time of day)."""
        if not self.added_to:
            return None
        return (date.fromisoformat(self.added_to) + timedelta(days=1)).isoformat()


@dataclass(frozen=True)
class Plan:
    mode: SearchMode
    words: tuple[str, ...]  # distinct query tokens, stop words dropped (the engines stem them)
    phrase: str  # the query's words in order, for the phrase bonus ("" for a one-word query)
    filters: Filters
    threshold: float
    offset: int = 0
    size: int = 20
    all_up_to: int = 0  # when at most this many events match, return every one of them (an engine may ignore it)
    facets: bool = True
    unrelated: float = 0.25  # the embedding model's calibration (vidx.relevance.Calibration)
    paraphrase: float = 0.60
    text: str = ""  # the searched text, for the embedder and the highlighter

    @property
    def has_text(self) -> bool:
        return bool(self.words)

    @property
    def n(self) -> int:
        return len(self.words)

    def min_coverage(self) -> float:
        """The share of the query's words (a word found only with a typo counts
        :data:`vidx.text.TYPO_CREDIT`) an event needs for its keyword relevance to reach the
        threshold whatever its length: ``0.75 x coverage^1.5 >= threshold``."""
        if self.threshold <= 0:
            return 1e-9
        return min(1.0, (self.threshold / COVERAGE_WEIGHT) ** (2 / 3)) - 1e-9

    def min_cosine(self) -> float:
        """The cosine whose calibrated semantic relevance equals the threshold."""
        t = self.threshold
        if t <= 0:
            return -math.inf
        if t >= 1:
            return math.inf
        mid = (self.unrelated + self.paraphrase) / 2
        scale = (self.paraphrase - self.unrelated) / 5
        return mid + scale * math.log(t / (1 - t))

    @property
    def end(self) -> int:
        return self.offset + self.size


def keyword_score(matched: float, n: int, phrase: bool, length: int) -> float:
    """Keyword relevance in [0, 1]: grows faster than linearly with the share of the query's words
    found (one word of three is weak evidence), +0.15 when they appear together in order (a
    one-word query always does), +0.10 x coverage for an event that is mostly the query."""
    if n == 0 or matched <= 0:
        return 0.0
    c = min(1.0, matched / n)
    together = phrase if n > 1 else c >= 1
    density = min(1.0, n / length) if length > 0 else 0.0
    score = COVERAGE_WEIGHT * c ** 1.5 + PHRASE_WEIGHT * together + DENSITY_WEIGHT * density * c
    return round(min(1.0, score), 4)


def check_cost(pq: ParsedQuery) -> tuple[str, ...]:
    """The query's distinct words; :class:`PlanTooCostly` when it asks for more than a search may cost."""
    words = tuple(query_tokens(pq.text, limit=MAX_TERMS * 4)) if pq.text else ()
    if len(words) > MAX_TERMS:
        raise PlanTooCostly(f"the query has {len(words)} different words; at most {MAX_TERMS} are searched at once: "
                            "shorten it, or quote the exact words that matter")
    ops = len(pq.phrases) + len(pq.exclude) + len(pq.person) + len(pq.video) + len(pq.source) + len(pq.lang)
    if ops > MAX_OPERATORS:
        raise PlanTooCostly(f"the query has {ops} phrases, exclusions and filters; at most {MAX_OPERATORS}")
    return words


def build(pq: ParsedQuery, mode: SearchMode, threshold: float, *, offset: int = 0, size: int = 20,
          video_ids: tuple[str, ...] = (), start: float | None = None, end: float | None = None,
          added_from: str | None = None, added_to: str | None = None, facets: bool = True,
          unrelated: float = 0.25, paraphrase: float = 0.60) -> Plan:
    """The plan of one parsed query; raises :class:`PlanTooCostly` beyond the caps."""
    words = check_cost(pq)
    all_toks = tokens(pq.text) if pq.text else []
    phrase = " ".join(all_toks) if len(words) > 1 and len(all_toks) <= MAX_TERMS else ""
    flt = Filters(
        video_ids=tuple(video_ids), video=tuple(pq.video), person=tuple(pq.person), source=tuple(pq.source),
        lang=tuple(pq.lang), phrases=tuple(p for p in pq.phrases if tokens(p)),
        exclude=tuple(x for x in pq.exclude if tokens(x)), start=start, end=end, added_from=added_from,
        added_to=added_to)
    return Plan(mode=mode, words=words, phrase=phrase, filters=flt, threshold=threshold, offset=offset, size=size,
                facets=facets, unrelated=unrelated, paraphrase=paraphrase, text=pq.text)
