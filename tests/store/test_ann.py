"""The embedded store's vector index at a scale where it is used: semantic and hybrid search
through the HNSW graph agree with exact search, rows added after the graph was built and rows
deleted since are honoured, a selective filter is searched exactly, and totals say when they
are a lower bound. (The graph's threshold is lowered so that the test library stays small.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidx.plan import Filters, Plan
from vidx.schema import Event, event_id_for
from vidx.store.base import SearchMode
from vidx.store.embedded import EmbeddedStore

pytest.importorskip("usearch")
DIMS = 64
N = 12_000


def _vectors(n: int, seed: int) -> np.ndarray:
    """Structured (low-rank plus noise) unit vectors: random ones make every graph look broken."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((16, DIMS))
    v = rng.standard_normal((n, 16)) @ basis + 0.3 * rng.standard_normal((n, DIMS))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _events(video: str, vecs: np.ndarray, first: int = 0) -> list[Event]:
    out = []
    for i, v in enumerate(vecs):
        e = Event(event_id=event_id_for(video, "t", i, i + 1, first + i), video_id=video, video_path=f"/v/{video[:3]}.mp4",
                  start_sec=float(i), end_sec=float(i + 1), source="speech", dialogue=f"line {first + i}")
        e.embedding = [float(x) for x in v]
        e.embedding_model = "test"
        out.append(e)
    return out


def _plan(mode: SearchMode = SearchMode.semantic, words: tuple[str, ...] = (), **filters: object) -> Plan:
    return Plan(mode=mode, words=words, phrase=" ".join(words), threshold=0.0,
                filters=Filters(**filters), size=10, unrelated=0.0, paraphrase=0.9)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "events.sqlite3")
    s.ensure_schema("test", DIMS)
    vecs = _vectors(N, 1)
    for k in range(4):  # four videos of 3,000 events
        vid = f"{k}" * 32
        s.replace_video_events(vid, _events(vid, vecs[k * 3000:(k + 1) * 3000], k * 3000))
    return s


def _ids(store: EmbeddedStore, plan: Plan, q: np.ndarray) -> list[str]:
    return [h.event.event_id for h in store.search(plan, q).hits]


def test_the_graph_finds_what_exact_search_finds(store: EmbeddedStore) -> None:
    queries = _vectors(40, 2)
    exact = [_ids(store, _plan(), q) for q in queries]  # below the threshold: exact
    hybrid_exact = [_ids(store, _plan(SearchMode.hybrid, (str(100 + i),)), q) for i, q in enumerate(queries)]
    store.ann.min_rows = 1000
    store.search(_plan(), queries[0])  # starts the build
    assert store.ann.ready.wait(60)
    approx = [_ids(store, _plan(), q) for q in queries]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.95, recall
    hybrid = [_ids(store, _plan(SearchMode.hybrid, (str(100 + i),)), q) for i, q in enumerate(queries)]
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(hybrid, hybrid_exact)]) >= 0.95
    assert all(a[0] == e[0] for a, e in zip(hybrid, hybrid_exact))  # the line holding the word stays first
    res = store.search(_plan(), queries[0])
    assert not res.exact  # threshold 0: every candidate passes, the total is a lower bound
    # a selective filter (one video of four) is searched exactly
    vid = "2" * 32
    store.ann.min_rows = 10**9
    exact_f = _ids(store, _plan(video_ids=(vid,)), queries[1])
    store.ann.min_rows = 1000
    assert _ids(store, _plan(video_ids=(vid,)), queries[1]) == exact_f


def test_rows_added_or_deleted_after_the_build(store: EmbeddedStore) -> None:
    store.ann.min_rows = 1000
    q = _vectors(1, 3)[0]
    store.search(_plan(), q)
    assert store.ann.ready.wait(60)
    # a new video whose first event is the query itself: found at once, before any rebuild
    new = _events("n" * 32, np.vstack([q, _vectors(50, 4)]), 90_000)
    store.replace_video_events("n" * 32, new)
    assert _ids(store, _plan(), q)[0] == new[0].event_id
    store.delete_video("n" * 32)
    assert new[0].event_id not in _ids(store, _plan(), q)


def test_the_graph_is_saved_once_and_mapped_by_other_processes(store: EmbeddedStore, tmp_path: Path) -> None:
    store.ann.min_rows = 1000
    q = _vectors(1, 5)[0]
    store.search(_plan(), q)
    assert store.ann.ready.wait(60)
    graph = tmp_path / "events.vectors.usearch"
    assert graph.exists() and store.ann.mapped  # the builder, too, reads the shared file
    want = _ids(store, _plan(), q)
    # another process (the UI) opens the same data directory: it maps the file, it builds nothing
    reader = EmbeddedStore(tmp_path / "events.sqlite3", read_only=True)
    reader.ann.min_rows = 1000
    reader.search(_plan(), q)
    assert reader.ann.ready.is_set() and reader.ann.mapped and reader.ann.built_in_s == 0
    assert _ids(reader, _plan(), q) == want
    # a damaged file is rebuilt, not trusted
    graph.write_bytes(b"not a graph")
    other = EmbeddedStore(tmp_path / "events.sqlite3", read_only=True)
    other.ann.min_rows = 1000
    other.search(_plan(), q)
    assert other.ann.ready.wait(60) and other.ann.built_in_s > 0
    assert _ids(other, _plan(), q) == want


def test_a_graph_of_another_generation_is_not_used(store: EmbeddedStore, tmp_path: Path) -> None:
    store.ann.min_rows = 1000
    q = _vectors(1, 6)[0]
    store.search(_plan(), q)
    assert store.ann.ready.wait(60)
    # `vidx reindex` empties the store and writes other vectors: the old graph must not propose them
    store.begin_rebuild("test", DIMS)
    vid = "r" * 32
    store.replace_video_events(vid, _events(vid, _vectors(1500, 7)))
    reopened = EmbeddedStore(tmp_path / "events.sqlite3", read_only=True)
    reopened.ann.min_rows = 1000
    first = _ids(reopened, _plan(), q)  # exact meanwhile
    assert all(h.event.video_id == vid for h in reopened.search(_plan(), q).hits)
    assert reopened.ann.ready.wait(60) and reopened.ann.built_in_s > 0
    assert _ids(reopened, _plan(), q) == first
