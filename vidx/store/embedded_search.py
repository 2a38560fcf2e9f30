"""A query plan (:mod:`vidx.plan`) executed by the embedded store.

* Words: one FTS5 ``MATCH`` per distinct query word (FTS5 stems it with its ``porter``
  tokenizer) gives the rows holding it; a vectorised count gives each row's coverage, a
  phrase ``MATCH`` the phrase bonus. No row text is read.
* Filters: phrases and exclusions are FTS5 phrase queries; video, person, source, language,
  time and day-added filters are vectorised comparisons over the catalog's columns. They
  narrow the rows before anything is ranked, in every mode.
* Vectors: an exact float16 dot product over the allowed rows (all of them, or only the
  filtered subset when the filter is selective).
* Totals and facets count every matching row; only the page's rows are read from SQLite.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import numpy as np

from vidx.plan import COVERAGE_WEIGHT, DENSITY_WEIGHT, PHRASE_WEIGHT, TOTAL_CAP, Plan
from vidx.relevance import semantic_relevance_array
from vidx.store.ann import CANDIDATES
from vidx.store.base import PlanResult, SearchMode, StoreError
from vidx.store.catalog import FEW_CODES, Catalog, code_counts, top_counts
from vidx.text import TYPO_CREDIT, near_terms, stem

log = logging.getLogger("vidx.store.embedded")

EXACT_EXTRA = 2_000  # keyword rows beyond the graph's candidates compared without bounds
LAZY_PHRASE_MIN_ROWS = 20_000  # more matches than this: a phrase is checked for the page's rows only
LAZY_PHRASE_MAX_END = 100  # ... when the page ends within the first this many hits
LAZY_PHRASE_CHECKS = 1_024  # ... checking at most this many rows one by one (fewer for fewer matches)
SCORE_TABLE_MIN_ROWS = 20_000  # more matches than this: keyword scores looked up in a table (same values)
SCORE_TABLE_MAX_LENGTH = 4096  # ... while every matching event has fewer words than this
WARM_TERMS = 48  # the most frequent words whose matches a large catalog remembers at once


def fts_phrase(text: str) -> str | None:
    """An FTS5 expression for the words of ``text`` together and in order (one quoted phrase)."""
    from vidx.store.embedded import _fts_text

    words = _fts_text(text)
    if not words:
        return None
    return '"' + words.replace('"', '""') + '"'


def cache_key(match: str) -> str:
    """The key a word's matches are remembered under: its stem for one quoted word (FTS5's
    porter tokenizer stems it the same way, so "running" and "runs" share one entry)."""
    if match.startswith('"') and match.endswith('"') and " " not in match and '""' not in match[1:-1]:
        return '"' + stem(match[1:-1]) + '"'
    return match


def warm(conn: sqlite3.Connection, cat: Catalog, terms: int = WARM_TERMS) -> int:
    """Remember the matches of the index's most frequent words (in the background after a
    large catalog loads): the first query holding one then costs what later ones do."""
    try:
        top = conn.execute("SELECT term FROM temp.vidx_vocab_row ORDER BY doc DESC LIMIT ?", (terms,)).fetchall()
    except sqlite3.OperationalError:
        return 0
    done = 0
    for (term,) in top:
        if not term or stem(term) != term or '"' in term:  # the entry must be what a query of it finds
            continue
        match = f'"{term}"'
        with cat.lock:
            if cat.recall(match) is not None:
                continue
            watermark = cat.max_rowid
        rowids = _rows(conn, match)  # outside the lock: searches go on meanwhile
        rowids = rowids[rowids <= watermark]
        with cat.lock:
            pos, ok = cat.positions(rowids)
            cat.remember(match, watermark, pos[ok])
        done += 1
    return done


def _rows(conn: sqlite3.Connection, match: str, after: int = 0) -> np.ndarray:
    """Rowids matching an FTS5 expression (above ``after``), in order; parsed from one string
    (3x faster than a Python object per row for the most common words)."""
    try:
        got = conn.execute("SELECT group_concat(rowid, ' ') FROM events_fts WHERE events_fts MATCH ? AND rowid > ?",
                           (match, after)).fetchone()[0]
    except sqlite3.OperationalError as exc:
        raise StoreError(f"keyword search failed: {exc}") from exc
    return np.fromstring(got, dtype=np.int64, sep=" ") if got else np.zeros(0, dtype=np.int64)


def keyword_scores(cov: Any, together: Any, length: Any, n: int) -> np.ndarray:
    """:func:`vidx.plan.keyword_score` over arrays (they broadcast): coverage, whether the words
    are in order, the event's length in words, the query's number of words."""
    length = np.asarray(length, dtype=np.float64)
    density = np.where(length > 0, np.minimum(1.0, n / np.maximum(length, 1)), 0.0)
    score = COVERAGE_WEIGHT * cov ** 1.5 + PHRASE_WEIGHT * together + DENSITY_WEIGHT * density * cov
    return np.round(np.minimum(1.0, score), 4)


def _member(pos: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if len(sorted_set) == 0 or len(pos) == 0:
        return np.zeros(len(pos), dtype=bool)
    i = np.clip(np.searchsorted(sorted_set, pos), 0, len(sorted_set) - 1)
    return sorted_set[i] == pos


class Executor:
    def __init__(self, conn: sqlite3.Connection, cat: Catalog, plan: Plan,
                 vocabulary: Any = None, ann: Any = None, every: np.ndarray | None = None) -> None:
        self.conn, self.cat, self.plan = conn, cat, plan
        self.every = every  # the query's cosines with the catalog's first len(every) rows, when known
        self.vocabulary = vocabulary  # () -> list of the index's stemmed terms (typo tolerance)
        self.ann = ann  # (query vector) -> sorted candidate positions, or None: compare every vector
        self._phrase_sets: dict[str, np.ndarray] = {}
        self._masks: dict[str, np.ndarray] = {}
        self._kw: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # keyword mode, a page near the top, a threshold every event holding all the words passes:
        # the phrase bonus can only reorder those events, so it is checked for the page's rows only
        self.lazy_phrase = plan.mode == SearchMode.keyword and plan.end <= LAZY_PHRASE_MAX_END \
            and plan.threshold <= COVERAGE_WEIGHT and plan.all_up_to == 0
        self._pending_phrase = ""

    # -- building blocks ----------------------------------------------------------------
    def match_positions(self, match: str) -> np.ndarray:
        """Sorted positions of the live rows matching an FTS5 expression. The catalog keeps the
        positions of recent expressions and asks FTS5 only for rows added since."""
        got = self._phrase_sets.get(match)
        if got is None:
            cat = self.cat
            cached = cat.recall(cache_key(match))
            if cached is not None and cached[0] == cat.max_rowid:
                pos = cached[1]
            else:
                after = cached[0] if cached is not None else 0
                new, ok = cat.positions(_rows(self.conn, match, after))
                new = new[ok & (new >= 0)]
                pos = np.concatenate([cached[1], new]) if cached is not None else new
                cat.remember(cache_key(match), cat.max_rowid, pos)
            got = self._phrase_sets[match] = pos[cat.alive.view()[pos]]
        return got

    def match_mask(self, match: str) -> np.ndarray:
        """The live rows matching an FTS5 expression as a boolean mask over the catalog: straight
        from a remembered bitmap (a common word), else from its positions."""
        got = self._masks.get(match)
        if got is None:
            cat = self.cat
            bits = cat.recall_mask(cache_key(match)) if match not in self._phrase_sets else None
            if bits is not None and bits[0] == cat.max_rowid and len(bits[1]) == cat.n:
                got = bits[1] & cat.alive.view()
            else:
                got = np.zeros(cat.n, dtype=bool)
                got[self.match_positions(match)] = True
            self._masks[match] = got
        return got

    def allowed(self, pos: np.ndarray) -> np.ndarray:
        """A mask over ``pos``: the rows every filter of the plan allows."""
        f, cat = self.plan.filters, self.cat
        ok = cat.alive.view()[pos].copy()
        if f.video_ids or f.video:
            want: set[int] = set()
            for vid in f.video_ids:
                c = cat.videos.index.get(vid)
                if c is not None:
                    want.add(c)
            for v in f.video:
                low = v.lower()
                for c, vid in enumerate(cat.videos.values):
                    if vid == low or low in cat.video_name(c).lower():
                        want.add(c)
            ok &= np.isin(cat.video.view()[pos], np.array(sorted(want), dtype=np.int32))
        for p in f.person:
            low = p.lower()
            codes = cat.people.codes.matching(lambda name, low=low: low in name.lower())
            ok &= cat.people.rows_with(codes, cat.n)[pos]
        if f.source:
            codes = cat.sources.matching(lambda s: s in f.source)
            ok &= np.isin(cat.source.view()[pos], codes)
        if f.lang:
            prefixes = tuple(x[:2].lower() for x in f.lang)
            codes = cat.langs.matching(lambda s: s.startswith(prefixes))
            ok &= np.isin(cat.lang.view()[pos], codes)
        if f.start is not None:
            ok &= cat.end.view()[pos] > f.start
        if f.end is not None:
            ok &= cat.start.view()[pos] < f.end
        if f.added_from:
            ok &= cat.added.view()[pos] >= int(f.added_from.replace("-", ""))
        if f.added_to:
            ok &= cat.added.view()[pos] <= int(f.added_to.replace("-", ""))
        for ph in f.phrases:
            m = fts_phrase(ph)
            if m:
                ok &= self.match_mask(m)[pos]
        for ex in f.exclude:
            m = fts_phrase(ex)
            if m:
                ok &= ~self.match_mask(m)[pos]
        return ok

    def term_positions(self, term: str) -> np.ndarray:
        """Sorted positions of the live rows holding one stemmed index term (exactly as stored,
        without stemming it again)."""
        try:
            cur = self.conn.execute("SELECT DISTINCT doc FROM temp.vidx_vocab_instance WHERE term = ?", (term,))
            rowids = np.fromiter((r[0] for r in cur), dtype=np.int64)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"keyword search failed: {exc}") from exc
        pos, ok = self.cat.positions(np.sort(rowids))
        pos = pos[ok]
        return pos[self.cat.alive.view()[pos]]

    def keyword(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions holding at least one word, their keyword relevance, their coverage)."""
        if self._kw is None:
            self._kw = self._keyword()
        return self._kw

    def _keyword(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        plan, cat = self.plan, self.cat
        n = plan.n
        masks: list[np.ndarray] = []  # the rows holding each word
        typos: list[np.ndarray] = []  # the rows holding a near term of a word no row holds
        for w in plan.words:
            m = fts_phrase(w)
            if not m:
                continue
            exact = self.match_mask(m)
            if exact.any() or self.vocabulary is None:
                masks.append(exact)
                continue
            # a word no live event holds is taken for a typo: the index's terms within its edit budget
            # (the vocabulary is read only then, so a query of known words never pays for it)
            near = [self.term_positions(t) for t in near_terms(w, self.vocabulary())]
            if near:
                typos.append(np.unique(np.concatenate(near)))
        if typos:
            credit = np.zeros(cat.n, dtype=np.float32)
            for mask in masks:
                credit += mask
            for t in typos:
                credit[t] += np.float32(TYPO_CREDIT)
            pos = np.flatnonzero(credit)
            cov = np.minimum(1.0, credit[pos].astype(np.float64) / n)
        else:  # boolean masks all the way: NumPy's fast path for a mask's positions
            union = masks[0].copy() if masks else np.zeros(cat.n, dtype=bool)
            for mask in masks[1:]:
                union |= mask
            pos = np.flatnonzero(union)
            hits = np.zeros(len(pos), dtype=np.int32)
            for mask in masks:
                hits += mask[pos]
            cov_of = np.minimum(1.0, np.arange(n + 1) / np.float64(n))  # by number of words held
            cov = cov_of[hits]
        if n > 1 and plan.phrase:
            m = fts_phrase(plan.phrase)
            if m and self.lazy_phrase and not typos and len(pos) > LAZY_PHRASE_MIN_ROWS:
                self._pending_phrase = m  # settled for the rows of the page only (see settle_phrase)
                together = np.zeros(len(pos), dtype=bool)
            else:
                together = self.match_mask(m)[pos] if m else np.zeros(len(pos), dtype=bool)
        else:
            together = cov >= 1
        length = cat.length.view()[pos]
        if not typos and len(pos) > SCORE_TABLE_MIN_ROWS:
            # a score depends only on (words held, phrase or not, length): look it up in a table
            # computed with the same formula, instead of computing it for every match
            longest = int(length.max()) if len(length) else 0
            if longest < SCORE_TABLE_MAX_LENGTH:
                table = keyword_scores(cov_of[:, None, None], np.array([False, True])[None, :, None],
                                       np.arange(longest + 1)[None, None, :], n).reshape(-1)
                return pos, table[(hits * 2 + together) * (longest + 1) + length], cov
        return pos, keyword_scores(cov, together, length, n), cov

    def settle_phrase(self, pos: np.ndarray, score: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The phrase bonus for the rows that can reach the page, without the phrase's FTS5
        lookup over every match (two very common words: tens of milliseconds). Returns the
        scores and, when it is known, the page (indices into ``pos``, in order).

        Every event holding all the words passes the threshold, and one holding them as the
        phrase outranks every one that does not (the bonus is larger than the most the length
        can add). So walking the events that hold every word in the order of their score
        without the bonus, and asking FTS5 about those rows only (``rowid IN``), the first
        ``plan.end`` phrase events found are exactly the top of the ranking. When the rate at
        which they turn up says that checking would cost more than the whole lookup (a rare
        phrase), the whole phrase is looked up."""
        plan, cat, m = self.plan, self.cat, self._pending_phrase
        self._pending_phrase = ""
        full = np.flatnonzero(cov >= 1)  # indices into pos: every word held
        want = plan.end
        # checking a row costs about what FTS5 spends on ~1,000 matches of the whole lookup
        budget = int(min(LAZY_PHRASE_CHECKS, max(64, len(pos) // 1000)))
        limit = min(len(full), budget)
        # the best `limit` of them, in order: without the bonus their score is one value per
        # length, so a count by length gives the lowest score among the best `limit`, and only
        # the rows at or above it are sorted
        sfull = score[full]
        length = cat.length.view()[pos[full]]
        by_length = np.bincount(length) if len(length) else np.zeros(1, dtype=np.int64)
        where = np.zeros(len(by_length), dtype=np.int64)
        where[length] = np.arange(len(length))  # a row of each length (all of one length score the same)
        present = np.flatnonzero(by_length)
        per_length = sfull[where[present]]
        counts = by_length[present]
        ranked = np.argsort(-per_length, kind="stable")
        reach = int(np.searchsorted(np.cumsum(counts[ranked]), limit)) if len(ranked) else 0
        lowest = per_length[ranked[min(reach, len(ranked) - 1)]] if len(ranked) else 0.0
        top = full[sfull >= lowest]
        keys = (cat.eid.view()[pos[top]], self._duration(pos[top]), -score[top])
        order = top[_page(keys, score[top], 0, limit)]  # the best rows holding every word, in order
        found: list[int] = []
        checked = 0
        step = max(want * 4, 64)
        while len(found) < want and checked < len(order):
            chunk = order[checked : checked + step]
            checked += len(chunk)
            rowids = cat.rowid.view()[pos[chunk]]
            try:
                got = {r for (r,) in self.conn.execute(
                    f"SELECT rowid FROM events_fts WHERE events_fts MATCH ? AND rowid IN ({','.join('?' * len(rowids))})",
                    [m, *(int(r) for r in rowids)])}
            except sqlite3.OperationalError as exc:
                raise StoreError(f"keyword search failed: {exc}") from exc
            found.extend(int(i) for i, r in zip(chunk, rowids, strict=True) if int(r) in got)
            if len(found) < want and checked + (want - len(found)) * checked / max(len(found), 0.5) > limit:
                break  # at this rate the rows to check would cost more than the whole lookup
        if len(found) < want and limit < len(full):  # a rare phrase: ask FTS5 for all of it
            return self._with_phrase(pos, score, cov, self.match_mask(m)[pos]), None
        together = np.zeros(len(pos), dtype=bool)
        together[np.array(found, dtype=np.int64)] = True
        score = self._with_phrase(pos, score, cov, together)
        if len(found) < want:  # every row holding all the words was checked: the plain page
            return score, None
        f = np.array(found, dtype=np.int64)
        f = f[np.lexsort((cat.eid.view()[pos[f]], self._duration(pos[f]), -score[f]))]
        return score, f[plan.offset : want]

    def _with_phrase(self, pos: np.ndarray, score: np.ndarray, cov: np.ndarray, together: np.ndarray) -> np.ndarray:
        """``score`` with the phrase bonus added where ``together``: the keyword formula again
        for those rows (the same values the whole lookup gives)."""
        if not together.any():
            return score
        sel = np.flatnonzero(together)
        out = score.copy()
        out[sel] = keyword_scores(cov[sel], True, self.cat.length.view()[pos[sel]], self.plan.n)
        return out

    def _duration(self, pos: np.ndarray) -> np.ndarray:
        return np.round(self.cat.end.view()[pos] - self.cat.start.view()[pos], 3)

    def cosines(self, pos: np.ndarray, vector: np.ndarray) -> np.ndarray:
        cat = self.cat
        if cat.vec is None or len(pos) == 0:
            return np.full(len(pos), -np.inf)
        q = np.asarray(vector, dtype=np.float32)
        if q.shape[0] != cat.dims:
            raise StoreError(f"query vector has {q.shape[0]} dims, the store {cat.dims}")
        every = self.every
        if every is None:
            return cat.vectors().cosines(pos, q)
        m = len(every)
        if len(pos) == m and (m == 0 or pos[-1] == m - 1):  # sorted distinct positions: all of them
            return every
        if pos[-1] < m:
            return every[pos]
        known = pos < m  # rows added since the pass were not in it
        out = np.empty(len(pos))
        out[known] = every[pos[known]]
        out[~known] = cat.vectors().cosines(pos[~known], q)
        return out

    def hybrid_cosines(self, allpos: np.ndarray, near: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Cosines for a hybrid search through the vector graph: exact for the graph's candidates,
        and for the keyword rows beyond them only where the meaning could lift a row onto the
        page; -inf elsewhere (those rows are counted and faceted by their keyword relevance alone).

        A row the graph did not propose has a cosine at most that of its weakest candidate
        (``bound``, as far as the graph is right: the approximation semantic search makes). When
        that bound is under the threshold's cosine, such a row passes on its keywords or not at
        all, and its fused relevance lies between its keyword relevance and the fusion with the
        bound: only rows that pass on their keywords and whose upper value reaches the page's
        lowest keyword-only value are compared. This keeps a common word's ten thousand keyword
        rows from being read from the vector file one by one."""
        plan = self.plan
        inside = np.isin(allpos, near, assume_unique=True)
        out = np.flatnonzero(~inside)
        cos = np.full(len(allpos), -np.inf)
        cos[inside] = self.cosines(allpos[inside], vector)
        known = cos[inside]
        known = known[np.isfinite(known)]
        k = min(len(known), CANDIDATES)
        bound = float(np.partition(known, len(known) - k)[len(known) - k]) if k else np.inf
        if plan.all_up_to > plan.end or bound >= plan.min_cosine():
            cos[out] = self.cosines(allpos[out], vector)  # every row may show or pass on meaning
            return cos
        kpos, kw_s, cov = self.keyword()
        at = np.minimum(np.searchsorted(kpos, allpos[out]), len(kpos) - 1)
        held = kpos[at] == allpos[out]
        kw_o = np.where(held, kw_s[at], 0.0)
        cov_o = np.where(held, cov[at], 0.0)
        t = plan.threshold
        need = (cov_o >= plan.min_coverage()) & (kw_o >= t) & (kw_o > 0)  # the others cannot pass
        lower = kw_o[need]
        if len(lower) > plan.end:  # more keyword rows pass than the page holds: bound them
            cutoff = float(np.partition(lower, len(lower) - plan.end)[len(lower) - plan.end])
            sem_bound = float(semantic_relevance_array(np.array([bound]), plan.unrelated, plan.paraphrase)[0])
            need &= 1.0 - (1.0 - kw_o) * (1.0 - sem_bound) >= cutoff - 1e-4
        sel = out[need]
        if len(sel):
            cos[sel] = self.cosines(allpos[sel], vector)
        return cos

    # -- the plan -----------------------------------------------------------------------
    def run(self, vector: np.ndarray | None) -> tuple[PlanResult, list[tuple[int, float, dict[str, float]]]]:
        plan, cat = self.plan, self.cat
        t = plan.threshold
        below = 0
        saturated = False
        cand: np.ndarray | None = None
        cos_all: np.ndarray | None = None
        known_page: np.ndarray | None = None  # the page, when a shortcut already ranked it
        if not plan.has_text and (vector is None or plan.mode != SearchMode.semantic):
            pos = np.flatnonzero(cat.alive.view())
            pos = pos[self.allowed(pos)]
            score = np.ones(len(pos))
            order_keys: tuple[np.ndarray, ...] = (cat.eid.view()[pos], cat.start.view()[pos],
                                                  np.array([cat.video_name(c) for c in cat.video.view()[pos]]))
            parts: dict[str, np.ndarray] = {}
        elif plan.mode == SearchMode.keyword:
            pos, kw, cov = self.keyword()
            keep = self.allowed(pos)
            pos, kw, cov = pos[keep], kw[keep], cov[keep]
            passing = (cov >= plan.min_coverage()) & (kw >= t) & ((kw > 0) | (t == 0))
            below = int((~passing).sum())
            pos, score, cov = pos[passing], kw[passing], cov[passing]
            if self._pending_phrase:
                score, known_page = self.settle_phrase(pos, score, cov)
            parts = {"keyword": score}
            order_keys = () if known_page is not None else (cat.eid.view()[pos], self._duration(pos), -score)
        else:
            if vector is None:
                raise StoreError("semantic search needs a query vector")
            base: np.ndarray | None = None
            if self.ann is not None and plan.filters.empty:  # no filter: nothing to count over every row
                cand = self.ann(vector)
            else:
                base = np.flatnonzero(cat.alive.view())
                base = base[self.allowed(base)]
                cand = self.ann(vector) if self.ann is not None and len(base) * 2 >= max(1, cat.n) else None
            allpos: np.ndarray = base if base is not None else \
                np.flatnonzero(cat.alive.view()) if cand is None else cand
            near: np.ndarray | None = None  # the graph's candidates, before a hybrid adds keyword rows
            if cand is not None:  # the graph's nearest events (and those newer than it), not every event
                cand = cand[self.allowed(cand)]
                near = cand
                if plan.mode == SearchMode.hybrid:
                    kpos0, _, _ = self.keyword()
                    cand = np.union1d(cand, kpos0[self.allowed(kpos0)])
                allpos = cand
            if near is not None and plan.mode == SearchMode.hybrid and len(allpos) - len(near) > EXACT_EXTRA:
                cos_all = self.hybrid_cosines(allpos, near, vector)
            else:
                cos_all = self.cosines(allpos, vector)
            sem_pass = np.isfinite(cos_all) & (cos_all >= plan.min_cosine())

            def relevance(need: np.ndarray) -> np.ndarray:  # only where it can decide or show something
                sem = np.zeros(len(allpos))
                sem[need] = semantic_relevance_array(cos_all[need], plan.unrelated, plan.paraphrase)
                return sem

            if plan.mode == SearchMode.semantic:
                sem = relevance(sem_pass)
                passing = sem_pass & ((sem > 0) | (t == 0))
                pos, score, cos_k = allpos[passing], sem[passing], cos_all[passing]
                parts = {"semantic": score}
            else:
                kpos, kw_s, cov = self.keyword()
                kw_full = np.zeros(len(allpos))
                cov_full = np.zeros(len(allpos))
                idx = np.searchsorted(allpos, kpos)
                inside = _member(kpos, allpos)  # a filter that matches nothing leaves allpos empty
                kw_full[idx[inside]] = kw_s[inside]
                cov_full[idx[inside]] = cov[inside]
                kw_pass = (cov_full >= plan.min_coverage()) & (kw_full >= t) & (kw_full > 0)
                sem = relevance(kw_pass | sem_pass)
                fused = np.round(1.0 - (1.0 - kw_full) * (1.0 - sem), 4)
                passing = (kw_pass | sem_pass) & ((fused > 0) | (t == 0))
                below = int(((cov_full > 0) & ~passing).sum())
                pos, score, cos_k = allpos[passing], fused[passing], cos_all[passing]
                parts = {"keyword": kw_full[passing], "semantic": sem[passing]}
            order_keys = (cat.eid.view()[pos], self._duration(pos), -cos_k, -score)
            if cand is not None and len(pos) and sem_pass.sum() >= len(cand) * 0.9 and len(cand) >= 100:
                saturated = True  # nearly every candidate is relevant: more may be, beyond the graph's answer
        total = len(pos)
        facets = self.facets(pos) if plan.facets else {}
        end = total if plan.offset == 0 and plan.end < total <= min(plan.all_up_to, TOTAL_CAP) \
            and not saturated else plan.end
        page = known_page if known_page is not None else _page(order_keys, score, plan.offset, end)
        rows = [(int(cat.rowid.view()[pos[i]]), float(score[i]), {k: float(v[i]) for k, v in parts.items()})
                for i in page]
        return PlanResult(total=min(total, TOTAL_CAP), exact=total <= TOTAL_CAP and not saturated, hits=[],
                          facets=facets, below=below), rows

    def facets(self, pos: np.ndarray) -> dict[str, list[tuple[str, int]]]:
        cat = self.cat
        out: dict[str, list[tuple[str, int]]] = {}
        if len(pos) == 0:
            return out
        mask = np.zeros(cat.n, dtype=bool)
        mask[pos] = True
        out["source"] = top_counts(code_counts(cat.source.view()[pos], len(cat.sources.values)),
                                   cat.sources.values, skip={""})
        out["language"] = top_counts(code_counts(cat.lang.view()[pos], len(cat.langs.values)),
                                     cat.langs.values, skip={""})
        vb = np.bincount(cat.video.view()[pos], minlength=len(cat.videos.values))
        names, name_of = cat.video_names()  # videos with the same file name count as one
        by_name = np.bincount(name_of, weights=vb, minlength=len(names)).astype(np.int64)
        top = np.flatnonzero(by_name)
        if len(top) > 8:
            kth = np.partition(by_name[top], len(top) - 8)[len(top) - 8]
            top = top[by_name[top] >= kth]
        out["video"] = sorted(((names[i], int(by_name[i])) for i in top), key=lambda x: (-x[1], x[0]))[:8]
        out["person"] = cat.people.counts(mask)
        loc = cat.location.view()[pos]
        loc = loc[loc >= 0]
        out["location"] = top_counts(np.bincount(loc, minlength=len(cat.locations.values)), cat.locations.values) \
            if len(loc) else []
        out["object"] = cat.objects.counts(mask)
        days = cat.added.view()[pos]
        few = sorted(d for d in cat.days if d > 0) if len(cat.days) <= FEW_CODES else None
        if few is not None:  # a library indexed on a few days: count each
            counts = [int(np.count_nonzero(days == d)) for d in few]
            ranked = sorted((-c, d) for d, c in zip(few, counts) if c)[:8]
            out["added"] = [(f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}", -c) for c, d in ranked]
            days = days[:0]
        days = days[days > 0]
        if len(days):
            lo = int(days.min())
            if int(days.max()) - lo < 1 << 22:  # yyyymmdd over a few centuries: count, don't sort
                bc = np.bincount(days - lo)
                uniq = np.flatnonzero(bc)
                cnt = bc[uniq]
                uniq = uniq + lo
            else:
                uniq, cnt = np.unique(days, return_counts=True)
            order = np.lexsort((uniq, -cnt))[:8]
            out["added"] = [(f"{int(uniq[i]) // 10000:04d}-{int(uniq[i]) // 100 % 100:02d}-{int(uniq[i]) % 100:02d}",
                             int(cnt[i])) for i in order]
        return {k: v for k, v in out.items() if v}


def _page(keys: tuple[np.ndarray, ...], score: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Indices of rows lo..hi in order: best score first, then the other keys (np.lexsort order:
    the last key is the primary one). Sorts only the rows that can reach the page."""
    n = len(score)
    if lo >= n:
        return np.zeros(0, dtype=np.int64)
    primary = keys[-1]
    if hi < n:
        kth = np.partition(primary, hi - 1)[hi - 1]
        cand = np.flatnonzero(primary <= kth)
    else:
        cand = np.arange(n)
    order = np.lexsort(tuple(k[cand] for k in keys))
    return cand[order][lo:hi]


