"""Searches that arrive together share one pass over the embedded store's vectors: each gets
exactly the cosines, totals and pages it gets alone, rows added after the packed copy was
made are still compared, and searches said to be coming are waited for (briefly)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import vidx.store.vectors as vectors
from vidx.plan import Filters, Plan
from vidx.schema import Event, event_id_for
from vidx.store.base import SearchMode
from vidx.store.embedded import EmbeddedStore
from vidx.store.vectors import SharedScan, cosines, quantize

DIMS = 48


def _unit(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _together(n: int, fn: object) -> list[object]:
    out: list[object] = [None] * n

    def run(i: int) -> None:
        out[i] = fn(i)  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_a_group_gets_exactly_what_each_query_gets_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "LINGER_S", 10.0)  # the pass waits for all four, however slow the threads start
    rows, scales = quantize(_unit(5_000, 1))
    queries = _unit(4, 2)
    scan, owner = SharedScan(), object()
    scan.expect(4)  # four are coming: the first waits for the three others
    got = _together(4, lambda i: scan.cosines(owner, rows, scales, queries[i]))
    assert scan.groups == 1  # one pass for the four
    for q, g in zip(queries, got, strict=True):
        assert np.array_equal(g, cosines(rows, scales, q))  # exact integer dot products either way


def test_rows_added_after_the_packed_copy_are_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "LINGER_S", 10.0)
    allrows, allscales = quantize(_unit(3_000, 3))
    scan, owner = SharedScan(), object()
    queries = _unit(2, 4)
    for n in (2_000, 2_100):  # the second pass reuses the copy of the first 2,000 rows
        rows, scales = allrows[:n], allscales[:n]
        scan.expect(2)
        got = _together(2, lambda i, rows=rows, scales=scales: scan.cosines(owner, rows, scales, queries[i]))
        for q, g in zip(queries, got, strict=True):
            assert np.array_equal(g, cosines(rows, scales, q))
    assert scan.groups == 2 and scan._packed[1] == 2_000


def test_searches_not_yet_come_are_waited_for_only_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "LINGER_S", 0.05)
    rows, scales = quantize(_unit(100, 5))
    scan = SharedScan()
    scan.expect(5)  # five said to be coming, none comes
    q = _unit(1, 6)[0]
    assert np.array_equal(scan.cosines(object(), rows, scales, q), cosines(rows, scales, q))
    assert scan.groups == 0


def test_a_failed_pass_fails_its_searches_and_the_next_pass_works(monkeypatch: pytest.MonkeyPatch) -> None:
    rows, scales = quantize(_unit(100, 7))
    scan = SharedScan()
    q = _unit(1, 8)[0]
    monkeypatch.setattr(scan, "_pass", lambda *a: (_ for _ in ()).throw(MemoryError("no room")))
    with pytest.raises(MemoryError):
        scan.cosines(object(), rows, scales, q)
    monkeypatch.undo()
    assert np.array_equal(scan.cosines(object(), rows, scales, q), cosines(rows, scales, q))


def _store(tmp_path: Path) -> tuple[EmbeddedStore, list[Event]]:
    store = EmbeddedStore(tmp_path / "events.sqlite3")
    store.ensure_schema("test", DIMS)
    vecs = _unit(6_000, 9)
    events = []
    for k in range(3):  # three videos of 2,000 events: far more match than a page holds
        vid = f"{k + 1}" * 32
        mine = []
        for i in range(2_000):
            e = Event(event_id=event_id_for(vid, "t", i, i + 1, i), video_id=vid, video_path=f"/v/{k}.mp4",
                      start_sec=float(i), end_sec=float(i + 1), source="speech",
                      dialogue=f"harbour line {i}" if i % 3 == 0 else f"street line {i}")
            e.embedding = [float(x) for x in vecs[k * 2_000 + i]]
            e.embedding_model = "test"
            mine.append(e)
        store.replace_video_events(vid, mine)
        events += mine
    return store, events


@pytest.mark.parametrize("mode", [SearchMode.semantic, SearchMode.hybrid])
def test_concurrent_store_searches_answer_as_they_do_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          mode: SearchMode) -> None:
    """Through the store: totals, facets and pages of searches that shared passes are those of
    the same searches run one after another, deleted events included."""
    store, events = _store(tmp_path)
    store.delete_video("2" * 32)  # 2,000 dead rows the pass still covers
    queries = _unit(6, 10)
    plans = [Plan(mode=mode, words=("harbour",) if mode == SearchMode.hybrid else (), phrase="",
                  threshold=0.3, filters=Filters(), size=20, offset=20 * (i % 2), unrelated=0.0, paraphrase=0.9)
             for i in range(6)]

    def answer(i: int) -> tuple[int, list[tuple[str, float]], object]:
        res = store.search(plans[i], queries[i])
        return res.total, [(h.event.event_id, h.score) for h in res.hits], res.facets

    alone = [answer(i) for i in range(6)]
    assert all(a[0] > 20 for a in alone)  # far more match than the page
    scan = store._sync().scan
    before = scan.groups
    monkeypatch.setattr(vectors, "LINGER_S", 10.0)
    store.expect_vector_searches(6)
    together = _together(6, answer)
    assert together == alone
    assert scan.groups > before
    dead = {e.event_id for e in events if e.video_id == "2" * 32}
    assert not any(eid in dead for _, hits, _ in together for eid, _ in hits)  # type: ignore[attr-defined]


def test_a_query_vector_of_another_size_is_a_store_error(tmp_path: Path) -> None:
    """A model switched without `vidx reindex` gives vectors of another size: the store says so
    (StoreError, which the API answers as 503 with its message), not a kernel's ValueError."""
    from vidx.store.base import StoreError

    store, _ = _store(tmp_path)
    plan = Plan(mode=SearchMode.semantic, words=(), phrase="", threshold=0.0, filters=Filters(), size=10,
                unrelated=0.0, paraphrase=0.9)
    with pytest.raises(StoreError, match="dims"):
        store.search(plan, np.ones(DIMS * 2, dtype=np.float32))
