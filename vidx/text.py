"""The one text analysis of vidx: tokens, stop words and stems.

Every part that compares words uses this module: the embedded store (what it gives FTS5),
the keyword scorer, the highlighter and the VLM event merger. Stemming is the original Porter
algorithm from the Snowball project (PyStemmer, a maintained C library): the algorithm of
SQLite FTS5's ``porter`` tokenizer and of Elasticsearch's ``english`` analyzer
(``porter_stem``). Like both, words of one or two letters are left as they are. A test stems
real English words with PyStemmer and with FTS5 and finds no difference.

Chinese, Japanese and Korean runs become overlapping bigrams (Elasticsearch's ``cjk_bigram``);
a lone CJK character stays a unigram.
"""

from __future__ import annotations

import functools
import re
import threading

import Stemmer

_CJK = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\uac00-\ud7af"  # Hangul
)
TOKEN_RE = re.compile(rf"[{_CJK}]+|[^\W_]+", re.UNICODE)
CJK_RE = re.compile(rf"[{_CJK}]")

STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have in into is it its of on or that the their then there "
    "these they this to was were will with".split()
)

_local = threading.local()  # PyStemmer objects are not thread-safe: one per thread


def tokens(text: str, limit: int | None = None) -> list[str]:
    """Lower-cased words; CJK runs as overlapping bigrams."""
    out: list[str] = []
    for m in TOKEN_RE.finditer(text):
        run = m.group(0)
        if CJK_RE.match(run):
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            out.append(run.lower())
        if limit is not None and len(out) >= limit:
            break
    return out


def is_cjk(token: str) -> bool:
    return bool(CJK_RE.match(token))


def query_tokens(text: str, limit: int = 64) -> list[str]:
    """Distinct tokens of a query; stop words are dropped unless the query has nothing else."""
    toks = list(dict.fromkeys(tokens(text, limit=limit)))
    content = [t for t in toks if t not in STOP_WORDS]
    return content or toks


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Porter stem of one lower-case token (CJK tokens and words of 1-2 letters unchanged)."""
    if len(word) <= 2 or CJK_RE.match(word):
        return word
    st = getattr(_local, "stemmer", None)
    if st is None:
        st = _local.stemmer = Stemmer.Stemmer("porter", 0)
    return str(st.stemWord(word))


def stems(text: str) -> list[str]:
    return [stem(t) for t in tokens(text)]


def query_terms(text: str, limit: int = 64) -> list[str]:
    """The distinct stemmed content words of a query, in order (what keyword coverage counts)."""
    return list(dict.fromkeys(stem(t) for t in query_tokens(text, limit=limit)))


# --------------------------------------------------------------------------- typos
TYPO_MIN_LEN = 5  # words of 5-7 letters match with one edit (4 let "wall" find "will")
TYPO_TWO_LEN = 8  # words of 8 letters or more with two
TYPO_CREDIT = 0.8  # a word found only with a typo counts this much of a word


def typo_edits(word: str) -> int:
    """Edits allowed for a query word (Elasticsearch's ``fuzziness: AUTO:5,8``): none for CJK
    and short words, 1 from 5 letters, 2 from 8. Four-letter words are left exact: on the
    relevance benchmark one edit let "wall" match "will" and "that" match "what"."""
    if is_cjk(word) or len(word) < TYPO_MIN_LEN or not word.isalpha():
        return 0
    return 1 if len(word) < TYPO_TWO_LEN else 2


def near_terms(word: str, vocabulary: list[str], limit: int = 16) -> list[str]:
    """Stemmed terms of ``vocabulary`` that ``word`` (a lower-case query token) matches with a
    typo: within :func:`typo_edits` edits (substitution, insertion, deletion or two neighbours
    swapped), first letter equal. Stems are compared with the word and with the word cut by up
    to two letters, so "brige" finds "bridg" (bridge) as well as "brig"."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    k = typo_edits(word)
    if not k or not vocabulary:
        return []
    exact = stem(word)
    found: dict[str, int] = {}
    for probe in dict.fromkeys([word, exact, word[:-1], word[:-2]]):
        if len(probe) < TYPO_MIN_LEN - 1:
            continue
        # a cut probe stands for a word whose ending the stemmer dropped: its term must be
        # longer than the probe ("brig" -> "bridg"), never a same-length substitute ("grea" ->
        # "grei", the stem of "grey", two edits from "great")
        shortest = len(probe) + 1 if probe not in (word, exact) else TYPO_MIN_LEN - 1
        for term, dist, _ in process.extract(probe, vocabulary, scorer=OSA.distance, score_cutoff=k, limit=None):
            if term != exact and term[:1] == word[:1] and len(term) >= shortest and term not in STOP_WORDS:
                found[term] = min(found.get(term, 9), int(dist))
    return [t for t, _ in sorted(found.items(), key=lambda x: (x[1], x[0]))][:limit]


def near(word: str, other: str) -> bool:
    """``other`` (an event's word) is ``word`` (a query word) with a typo."""
    from rapidfuzz.distance import OSA

    k = typo_edits(word)
    if not k or other[:1] != word[:1] or other == word:
        return False
    return int(OSA.distance(word, other, score_cutoff=k)) <= k
