"""The catalog's lookups agree with the plain definitions: rowid -> position with gaps in the
rowids (deleted and re-indexed videos), and remembered matches kept as positions or bitmaps."""

from __future__ import annotations

import numpy as np

from vidx.store import catalog as catalog_mod
from vidx.store.catalog import Catalog


def _catalog(rowids: np.ndarray) -> Catalog:
    cat = Catalog()
    cat.rowid.extend(rowids)
    cat.alive.extend(np.ones(len(rowids), dtype=bool))
    cat.n, cat.max_rowid = len(rowids), int(rowids[-1])
    return cat


def test_positions_with_gaps_dense_and_sparse() -> None:
    rng = np.random.default_rng(0)
    for spread in (1.3, 50.0):  # a table while rowids are dense, a binary search when they are sparse
        rowids = np.unique(rng.integers(1, int(5000 * spread), 5000))
        cat = _catalog(rowids)
        asked = np.concatenate([rowids[::7], rng.integers(-5, int(rowids[-1]) + 50, 500)])
        pos, ok = cat.positions(asked)
        want_ok = np.isin(asked, rowids)
        assert (ok == want_ok).all()
        assert (rowids[pos[ok]] == asked[ok]).all()
        assert (cat._lut is not None) == (spread < catalog_mod.LOOKUP_SPARSENESS)
    # rows appended later are found too
    cat = _catalog(np.arange(1, 1001))
    cat.positions(np.array([5]))
    cat.rowid.extend(np.arange(1001, 1101))
    cat.alive.extend(np.ones(100, dtype=bool))
    cat.n, cat.max_rowid = 1100, 1100
    pos, ok = cat.positions(np.array([1050, 1100, 1101]))
    assert ok.tolist() == [True, True, False] and pos[:2].tolist() == [1049, 1099]


def test_remembered_matches_come_back_exactly() -> None:
    cat = _catalog(np.arange(1, 100_001))
    common = np.sort(np.random.default_rng(1).choice(100_000, 60_000, replace=False))
    rare = np.array([3, 70, 99_999])
    cat.remember('"the"', 100_000, common)
    cat.remember('"lighthouse"', 100_000, rare)
    assert cat.matches['"the"'][2] and not cat.matches['"lighthouse"'][2]  # bitmap / positions
    assert cat.matches['"the"'][1].nbytes < common.nbytes // 20
    for key, want in (('"the"', common), ('"lighthouse"', rare)):
        got = cat.recall(key)
        assert got is not None and got[0] == 100_000 and np.array_equal(got[1], want)
    assert cat.recall('"nothing"') is None


def test_the_most_frequent_words_are_remembered_and_found_by_any_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """warm() remembers the index's most frequent words; a query of another form of the word
    ("running" for "run") is answered from that entry, and the answer is what FTS5 finds."""
    from vidx.plan import Filters, Plan
    from vidx.schema import Event, event_id_for
    from vidx.store.base import SearchMode
    from vidx.store.embedded import EmbeddedStore
    from vidx.store.embedded_search import cache_key, warm

    store = EmbeddedStore(tmp_path / "events.sqlite3")
    vid = "a" * 32
    words = ["run", "runs", "running", "walk", "harbour"]
    events = [Event(event_id=event_id_for(vid, "t", i, i + 1, i), video_id=vid, video_path="/v/a.mp4",
                    start_sec=float(i), end_sec=float(i + 1), source="subtitle",
                    dialogue=f"we {words[i % 5]} to the {words[(i * 3) % 5]} line {i}") for i in range(400)]
    store.replace_video_events(vid, events)
    cat = store._sync()
    assert warm(store._conn(), cat, terms=10) >= 3
    assert cache_key('"running"') == cache_key('"runs"') == '"run"'
    got = cat.recall('"run"')
    assert got is not None
    want = sorted(i for i, e in enumerate(events) if {"run", "runs", "running"} & set(e.dialogue.split()))
    assert got[1].tolist() == want
    plan = Plan(mode=SearchMode.keyword, words=("running",), phrase="", filters=Filters(), threshold=0.0, size=500)
    res = store.search(plan)
    assert res.total == len(want) and {h.event.event_id for h in res.hits} == {events[i].event_id for i in want}
