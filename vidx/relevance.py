"""Scores a person can read: every hit gets a relevance in [0, 1] that means the same in
every mode, for every query and with either store.

* keyword relevance: grows with the share of the query's words found in the event (stemmed;
  a word of five letters or more also matches with one typo), faster than linearly (one word
  of three is weak evidence), 1.0 only when they appear together as a phrase; a short event
  that is mostly the query ranks above a long one that merely contains it;
* semantic relevance: the cosine similarity of query and event on a logistic curve placed
  between what this embedding model gives unrelated text (about 0.08) and what it gives a
  close paraphrase (about 0.92);
* hybrid: ``1 - (1 - keyword) * (1 - semantic)``: either kind of evidence counts, both
  together count more, and a query with neither (random letters) scores 0.

The stores only find candidates; scoring, filters and the threshold are applied here, the
same way for the embedded store and Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vidx.query import ParsedQuery
from vidx.schema import Event
from vidx.store.base import STOP_WORDS, _stem, tokens


@dataclass(frozen=True)
class Calibration:
    unrelated: float  # cosine this model gives text unrelated to the query
    paraphrase: float  # cosine it gives a close paraphrase


# chosen on the relevance benchmark (bench/relevance): see README "Search quality"
CALIBRATIONS: dict[str, Calibration] = {
    "sentence-transformers/all-MiniLM-L6-v2": Calibration(0.25, 0.60),
    "intfloat/multilingual-e5-small": Calibration(0.80, 0.88),  # E5's cosines sit close together
}
DEFAULT_CALIBRATION = Calibration(0.25, 0.60)
PHRASE_WEIGHT = 0.15
DENSITY_WEIGHT = 0.10


def calibration(model_id: str) -> Calibration:
    return CALIBRATIONS.get(model_id, DEFAULT_CALIBRATION)


def semantic_relevance(cosine: float, cal: Calibration) -> float:
    """A logistic curve: about 0.08 at the unrelated level, 0.92 at the paraphrase level; it
    keeps the order of the cosines (no ties at 0 or 1)."""
    import math

    mid = (cal.unrelated + cal.paraphrase) / 2
    scale = (cal.paraphrase - cal.unrelated) / 5
    return round(1.0 / (1.0 + math.exp(-(cosine - mid) / scale)), 4)


def fuse(keyword: float, semantic: float) -> float:
    return round(1.0 - (1.0 - keyword) * (1.0 - semantic), 4)


def _fields(e: Event) -> list[str]:
    return [e.dialogue, e.description, e.ocr_text, " ".join(e.people), " ".join(e.objects), e.location, e.action]


def _norm(toks: Iterable[str]) -> list[str]:
    return [_stem(t) for t in toks]


def _near(a: str, b: str) -> bool:
    """One edit apart (insert, delete, substitute or swap two neighbours), for words of 5+ letters."""
    if len(a) < 5 or len(b) < 5 or abs(len(a) - len(b)) > 1 or a[0] != b[0]:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    s, t = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(s) and s[i] == t[i]:
        i += 1
    return s[i:] == t[i + 1:]


def query_terms(text: str) -> list[str]:
    toks = [t for t in tokens(text) if t not in STOP_WORDS] or tokens(text)
    return list(dict.fromkeys(_norm(toks)))


def keyword_relevance(e: Event, terms: list[str]) -> float:
    if not terms:
        return 0.0
    fields = [_norm(tokens(f)) for f in _fields(e) if f]
    have = {t for f in fields for t in f}
    matched = 0.0
    for t in terms:
        if t in have:
            matched += 1
        elif any(_near(t, h) for h in have):
            matched += 0.8  # a typo
    coverage = matched / len(terms)
    together = _in_order(fields, terms) if len(terms) > 1 else coverage >= 1
    best = min((len(f) for f in fields if set(terms) & set(f)), default=0)
    density = min(1.0, len(terms) / best) if best else 0.0
    # a partial match is weak evidence: one word of three is far less than a third of a match
    score = coverage ** 1.5 * (1 - PHRASE_WEIGHT - DENSITY_WEIGHT) + PHRASE_WEIGHT * together \
        + DENSITY_WEIGHT * density * coverage
    return round(min(1.0, score if coverage > 0 else 0.0), 4)


def _in_order(fields: list[list[str]], terms: list[str]) -> bool:
    n = len(terms)
    return any(f[i:i + n] == terms for f in fields for i in range(len(f) - n + 1))


def _contains(e: Event, phrase: str) -> bool:
    terms = _norm(tokens(phrase))
    if not terms:
        return True
    fields = [_norm(tokens(f)) for f in _fields(e) if f]
    return _in_order(fields, terms)


def passes(e: Event, q: ParsedQuery) -> bool:
    """The query's phrases, exclusions and field filters."""
    if any(not _contains(e, p) for p in q.phrases):
        return False
    if any(_contains(e, x) for x in q.exclude):
        return False
    if q.person:
        people = " ".join(e.people).lower()
        if not all(p.lower() in people for p in q.person):
            return False
    if q.source and e.source not in q.source:
        return False
    if q.lang and not any((e.language or "").lower().startswith(x[:2]) for x in q.lang):
        return False
    if q.video:
        name = e.video_path.rsplit("/", 1)[-1].lower()
        if not any(v.lower() == e.video_id or v.lower() in name for v in q.video):
            return False
    return True
