"""Scores a person can read: every hit gets a relevance in [0, 1] that means the same in
every mode, for every query and with either store.

* keyword relevance: grows with the share of the query's distinct words found in the event
  (Porter-stemmed, :mod:`vidx.text`), faster than linearly (one word of three is weak evidence),
  +0.15 when the words appear together in order, +0.10 x coverage for a short event that is
  mostly the query (:func:`vidx.plan.keyword_score`); the engines compute it for every match;
* semantic relevance: the cosine similarity of query and event on a logistic curve placed
  between what this embedding model gives unrelated text (about 0.08) and what it gives a
  close paraphrase (about 0.92); for a model whose cosines all sit close together (E5) both
  points are measured from the query's own baseline (:attr:`Calibration.relative`);
* hybrid: ``1 - (1 - keyword) * (1 - semantic)``: either kind of evidence counts, both
  together count more, and a query with neither (random letters) scores 0.

The stores execute the threshold and the filters (:mod:`vidx.plan`); this module holds the
calibration and the per-event formula used on a page of hits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vidx.plan import keyword_score
from vidx.schema import Event
from vidx.text import TYPO_CREDIT, near, stem, tokens


@dataclass(frozen=True)
class Calibration:
    unrelated: float  # cosine this model gives text unrelated to the query
    paraphrase: float  # cosine it gives a close paraphrase
    # True: both are measured from the query's own baseline, its mean cosine with a fixed set of
    # everyday sentences (Embedder.baseline). A model whose cosines all sit close together (E5)
    # gives a string of random letters about the same cosine with everything, a real question a
    # high one with its answer only; the baseline tells the two apart.
    relative: bool = False

    def for_query(self, baseline: float) -> Calibration:
        """The calibration of one query, whose baseline cosine is ``baseline``."""
        if not self.relative:
            return self
        return Calibration(self.unrelated + baseline, self.paraphrase + baseline)


# chosen on the relevance benchmark (bench/relevance): see README "Search quality"
CALIBRATIONS: dict[str, Calibration] = {
    "sentence-transformers/all-MiniLM-L6-v2": Calibration(0.25, 0.60),
    # E5's cosines sit close together (0.7-0.9 for any pair): measured from each query's baseline
    "intfloat/multilingual-e5-small": Calibration(0.056, 0.136, relative=True),
}
DEFAULT_CALIBRATION = Calibration(0.25, 0.60)


def calibration(model_id: str) -> Calibration:
    return CALIBRATIONS.get(model_id, DEFAULT_CALIBRATION)


def semantic_relevance(cosine: float, cal: Calibration) -> float:
    """A logistic curve: about 0.08 at the unrelated level, 0.92 at the paraphrase level; it
    keeps the order of the cosines (no ties at 0 or 1)."""
    import math

    mid = (cal.unrelated + cal.paraphrase) / 2
    scale = (cal.paraphrase - cal.unrelated) / 5
    return round(1.0 / (1.0 + math.exp(-(cosine - mid) / scale)), 4)


def semantic_relevance_array(cosines: Any, unrelated: float, paraphrase: float) -> Any:
    """:func:`semantic_relevance` of many cosines at once (NumPy); -inf (no vector) gives 0."""
    import numpy as np

    mid = (unrelated + paraphrase) / 2
    scale = (paraphrase - unrelated) / 5
    with np.errstate(over="ignore", invalid="ignore"):
        rel = 1.0 / (1.0 + np.exp(-(np.asarray(cosines, dtype=np.float64) - mid) / scale))
    return np.round(np.nan_to_num(rel, nan=0.0, neginf=0.0), 4)


def fuse(keyword: float, semantic: float) -> float:
    return round(1.0 - (1.0 - keyword) * (1.0 - semantic), 4)


def _fields(e: Event) -> list[str]:
    return [e.dialogue, e.description, e.ocr_text, " ".join(e.people), " ".join(e.objects), e.location, e.action,
            e.emotion]


def keyword_relevance(e: Event, words: Iterable[str], phrase: str = "") -> float:
    """The keyword relevance of one event (what the embedded engine computes for every match),
    for stores that rank in their own terms and score the page shown."""
    words = list(dict.fromkeys(words))
    if not words:
        return 0.0
    raw = [tokens(f) for f in _fields(e) if f]
    fields = [[stem(t) for t in f] for f in raw]
    have = {t for f in fields for t in f}
    have_raw = {t for f in raw for t in f}
    matched = 0.0
    for w in words:
        if stem(w) in have:
            matched += 1
        elif any(near(w, h) or near(stem(w), stem(h)) for h in have_raw):
            matched += TYPO_CREDIT
    terms = list(dict.fromkeys(stem(w) for w in words))
    together = False
    if phrase and len(terms) > 1:
        p = [stem(t) for t in tokens(phrase)]
        together = any(f[i:i + len(p)] == p for f in fields for i in range(len(f) - len(p) + 1))
    return keyword_score(matched, len(words), together, sum(len(f) for f in fields))
