"""One text analysis: vidx's stemmer agrees with the engines' Porter stemmers word for word."""

from __future__ import annotations

import re
import sqlite3

from vidx.text import near_terms, query_terms, stem, tokens

# real English words with the suffixes a stemmer must handle (plurals, -ing, -ed, -ation, -ies,
# -ness, -ful, -ly, -ive, -ize, -ement, doubled consonants, y -> i)
WORDS = """
run running runs ran runner city cities citizen generalization generalize general generally
connect connected connecting connection connections connective lighthouse lighthouses keeper keepers
kept relational conditional rational valency hesitancy digitizer conformability radically
differently vileness analogously vietnamization predication operator feudalism decisiveness hopefulness
callousness formality sensitivity sensibility triplicate formative formalize electricity electrical
hopeful goodness revival allowance inference airliner gyroscopic adjustable defensible irritant
replacement adjustment dependent adoption homologou communism activate angularity homologous effective
bowdlerize probate rate cease controlling rolling agreed plastered motoring sing conflated troubled
sized hopping tanned falling hissing fizzed failing filing happy sky caresses ponies ties caress cats
feed bled meetings budget budgets bridges bridge tables table lamps studies studying studied
argued arguing arguments meeting harbour harbours traffic opened opening opens reported reporting
volunteers volunteering training trained monitoring coral reefs parrotfish counted counting
""".split()


def _fts5_stems(words: list[str]) -> dict[str, str]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'porter unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    conn.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", list(enumerate(words)))
    return {words[doc]: term for term, doc in conn.execute("SELECT term, doc FROM v")}


def test_vidx_stems_every_word_as_sqlite_fts5_porter_does() -> None:
    fts = _fts5_stems(WORDS)
    diff = [(w, fts[w], stem(w)) for w in WORDS if fts[w] != stem(w)]
    assert diff == []


def test_short_words_and_chinese_are_left_as_they_are() -> None:
    short = ["as", "is", "us", "go", "a"]
    fts = _fts5_stems(short)
    assert [stem(w) for w in short] == [fts[w] for w in short] == short
    assert tokens("城市的预算 budget") == ["城市", "市的", "的预", "预算", "budget"]
    assert [stem(t) for t in tokens("城市")] == ["城市"]


def test_query_terms_drop_stop_words_and_stem() -> None:
    assert query_terms("The keeper of the lighthouses") == ["keeper", "lighthous"]
    assert query_terms("of the") == ["of", "the"]  # a query of only stop words still searches


def test_typos_are_matched_against_the_index_vocabulary() -> None:
    vocab = sorted({stem(w) for w in WORDS})
    assert "bridg" in near_terms("brige", vocab)  # a letter left out of a stemmed word
    assert "tabl" in near_terms("tabel", vocab)  # two letters swapped
    assert near_terms("lamp", vocab) == []  # exact: nothing else
    assert near_terms("cat", vocab) == []  # three letters: no typo tolerance
    assert near_terms("wall", vocab + ["will", "well"]) == []  # four letters neither
    # "grey" (stem "grei") is two edits from "great": not a typo of it, though "grea" is one from "grei"
    assert near_terms("great", vocab + ["grei"]) == []
    assert all(re.fullmatch(r"[a-z]+", t) for t in near_terms("volunters", vocab))


def test_one_media_opener_for_the_whole_project() -> None:
    """Containers are opened for reading only through vidx.media.open_tolerant (badly encoded
    metadata must never stop a file): no other module calls av.open."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = [f"{p.relative_to(root)}:{i}" for pkg in ("vidx", "ingest", "search_ui") for p in (root / pkg).rglob("*.py")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if "av.open(" in line and p.name != "media.py"]
    assert found == []
