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


def test_a_remembered_bitmap_comes_back_as_a_mask() -> None:
    cat = _catalog(np.arange(1, 10_001))
    common = np.sort(np.random.default_rng(2).choice(10_000, 6_000, replace=False))
    cat.remember('"the"', 10_000, common)
    cat.remember('"rare"', 10_000, np.array([5, 9]))
    got = cat.recall_mask('"the"')
    assert got is not None and got[0] == 10_000 and got[1].dtype == bool
    assert np.array_equal(np.flatnonzero(got[1]), common)
    assert cat.recall_mask('"rare"') is None  # kept as positions
    assert cat.recall_mask('"nothing"') is None


def test_searches_see_every_commit_without_rereading_an_unchanged_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A search skips re-reading the store when nothing was committed (SQLite's data_version for
    other connections, a write count for this process's own), and sees every kind of change."""
    import threading

    from vidx.plan import Filters, Plan
    from vidx.schema import Event, event_id_for
    from vidx.store.base import SearchMode
    from vidx.store.embedded import EmbeddedStore

    path = tmp_path / "events.sqlite3"
    writer = EmbeddedStore(path)
    reader = EmbeddedStore(path, read_only=True)  # another connection, as the UI beside the daemon

    def events(vid: str, n: int) -> list[Event]:
        return [Event(event_id=event_id_for(vid, "t", i, i + 1, i), video_id=vid, video_path=f"/v/{vid[:4]}.mp4",
                      start_sec=float(i), end_sec=float(i + 1), source="subtitle", dialogue=f"harbour line {i}")
                for i in range(n)]

    plan = Plan(mode=SearchMode.keyword, words=("harbour",), phrase="", filters=Filters(), threshold=0.0, size=10)

    def totals() -> tuple[int, int]:
        return writer.search(plan).total, reader.search(plan).total

    a, b = "a" * 32, "b" * 32
    writer.replace_video_events(a, events(a, 30))
    assert totals() == (30, 30)
    synced = reader._catalog.sync
    calls = []
    reader._catalog.sync = lambda *x, **k: (calls.append(1), synced(*x, **k))[1]  # type: ignore[method-assign]
    assert totals() == (30, 30) and calls == []  # nothing committed: not re-read
    writer.replace_video_events(b, events(b, 12))  # the writer's own connection, then the reader's
    assert totals() == (42, 42) and len(calls) == 1
    t = threading.Thread(target=writer.replace_video_events, args=(a, events(a, 5)))  # another thread's connection
    t.start()
    t.join()
    assert totals() == (17, 17)
    writer.delete_video(b)
    assert totals() == (5, 5)
    writer.repoint_video(a, "/v/renamed.mp4")
    assert {h.event.video_path for h in reader.search(plan).hits} == {"/v/renamed.mp4"}



def test_the_idle_daemon_merges_a_split_full_text_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Separate writes split FTS5's index into segments; optimize_index merges them into one
    (answers unchanged), and only when enough have piled up."""
    from vidx.plan import Filters, Plan
    from vidx.schema import Event, event_id_for
    from vidx.store import embedded as embedded_mod
    from vidx.store.base import IndexMaintainer, SearchMode
    from vidx.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "events.sqlite3")
    assert isinstance(store, IndexMaintainer)

    def segments() -> int:
        return int(store._conn().execute("SELECT count(DISTINCT segid) FROM events_fts_idx").fetchone()[0])

    for v in range(12):  # one transaction per video, as the daemon writes
        vid = f"{v:032x}"
        store.replace_video_events(vid, [
            Event(event_id=event_id_for(vid, "t", i, i + 1, i), video_id=vid, video_path=f"/v/{v}.mp4",
                  start_sec=float(i), end_sec=float(i + 1), dialogue=f"harbour crane line {i} of video {v}")
            for i in range(20)])
    plan = Plan(mode=SearchMode.keyword, words=("harbour", "crane"), phrase="harbour crane", filters=Filters(),
                threshold=0.0, size=300)

    def answer() -> list[tuple[str, float]]:
        return [(h.event.event_id, h.score) for h in store.search(plan).hits]

    before, split = answer(), segments()
    assert split >= embedded_mod.OPTIMIZE_SEGMENTS and len(before) == 240
    assert store.optimize_index() is True
    assert segments() == 1 and answer() == before
    assert store.optimize_index() is False  # nothing to merge
    assert EmbeddedStore(tmp_path / "events.sqlite3", read_only=True).optimize_index() is False
