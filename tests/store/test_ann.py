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
    q = _vectors(1, 5)[0]
    exact = set(_ids(store, _plan(), q))  # every vector compared (below the graph's threshold)
    store.ann.min_rows = 1000
    store.search(_plan(), q)
    assert store.ann.ready.wait(60)
    graph = tmp_path / "events.vectors.usearch"
    assert graph.exists() and store.ann.mapped  # the builder, too, reads the shared file
    want = _ids(store, _plan(), q)
    assert len(exact & set(want)) >= 9
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
    # a new graph (built in parallel threads, so not the same graph): as close to exact search
    assert len(exact & set(_ids(other, _plan(), q))) >= 9


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


def test_the_vectors_move_to_a_file_and_searches_read_them_there(store: EmbeddedStore, tmp_path: Path) -> None:
    """Once the graph is built, a process keeps in memory only the vectors newer than it: the
    rest are read from the mapped vector file, and every search mode answers as before."""
    queries = _vectors(20, 8)
    vid = "1" * 32
    person_free = [(_plan(), q) for q in queries[:10]] + [(_plan(video_ids=(vid,)), q) for q in queries[10:]]
    before = [_ids(store, p, q) for p, q in person_free]
    store.ann.min_rows = 1000
    store.search(_plan(), queries[0])
    assert store.ann.ready.wait(60)
    store.search(_plan(), queries[0])  # the next search moves the vectors out of memory
    cat = store._catalog
    assert cat.vfile is not None and cat.vec_base == N and cat.vec is not None and cat.vec.n == 0
    assert (tmp_path / "events.vectors.i8.npy").stat().st_size >= N * DIMS
    # the filtered (exact) searches now read the file and give exactly the same pages
    assert [_ids(store, p, q) for p, q in person_free][10:] == before[10:]
    after = [_ids(store, p, q) for p, q in person_free][:10]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(after, before[:10])]) >= 0.95
    # new rows stay in memory and are found at once
    new = _events("m" * 32, np.vstack([queries[3], _vectors(20, 9)]), 80_000)
    store.replace_video_events("m" * 32, new)
    assert _ids(store, _plan(), queries[3])[0] == new[0].event_id
    assert cat.vec.n == len(new) and cat.vec_base == N
    # another process maps the same file and keeps no vectors of its own for those rows
    reader = EmbeddedStore(tmp_path / "events.sqlite3", read_only=True)
    reader.ann.min_rows = 1000
    reader.search(_plan(), queries[0])
    reader.search(_plan(), queries[0])
    assert reader.ann.built_in_s == 0 and reader._catalog.vec_base == N
    assert _ids(reader, _plan(video_ids=(vid,)), queries[12]) == before[12]


def test_a_reduced_graph_keeps_recall(tmp_path: Path) -> None:
    """The graph holds vectors reduced to their principal directions; the candidates are then
    scored with the full vectors, so the top 10 still matches exact search."""
    dims = 96
    rng = np.random.default_rng(11)
    basis = rng.standard_normal((24, dims))
    v = rng.standard_normal((N + 40, 24)) @ basis + 0.2 * rng.standard_normal((N + 40, dims))
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    s = EmbeddedStore(tmp_path / "events.sqlite3")
    s.ensure_schema("test", dims)
    for k in range(4):
        vid = f"{k}" * 32
        s.replace_video_events(vid, _events(vid, v[k * 3000:(k + 1) * 3000], k * 3000))
    queries = v[N:]
    exact = [_ids(s, _plan(), q) for q in queries]
    s.ann.min_rows, s.ann.reduced_dims = 1000, 32
    s.search(_plan(), queries[0])
    assert s.ann.ready.wait(60)
    assert s.ann._basis is not None and s.ann._basis.shape == (dims, 32)
    approx = [_ids(s, _plan(), q) for q in queries]
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)]) >= 0.95


def test_a_graph_without_its_vector_file_is_built_again(store: EmbeddedStore, tmp_path: Path) -> None:
    store.ann.min_rows = 1000
    q = _vectors(1, 12)[0]
    store.search(_plan(), q)
    assert store.ann.ready.wait(60)
    want = _ids(store, _plan(), q)
    (tmp_path / "events.vectors.rows.npz").unlink()  # e.g. a graph written by an older vidx
    other = EmbeddedStore(tmp_path / "events.sqlite3", read_only=True)
    other.ann.min_rows = 1000
    other.search(_plan(), q)
    assert other.ann.ready.wait(60) and other.ann.built_in_s > 0
    assert (tmp_path / "events.vectors.rows.npz").exists()
    assert _ids(other, _plan(), q) == want


def test_a_vector_file_that_cannot_be_written_leaves_the_graph_in_memory(
        store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only or full data directory: the graph is built and used in memory, every vector
    stays in memory, and nothing is retried in a loop."""
    from vidx.store import ann as ann_mod

    def cannot(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ann_mod.VectorFile, "begin", staticmethod(cannot))
    queries = _vectors(20, 13)
    exact = [_ids(store, _plan(), q) for q in queries]
    store.ann.min_rows = 1000
    store.search(_plan(), queries[0])
    assert store.ann.ready.wait(60) and not store.ann.mapped and store.ann.vfile is None
    approx = [_ids(store, _plan(), q) for q in queries]
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)]) >= 0.95
    assert store._catalog.vec_base == 0 and store._catalog.vec is not None and store._catalog.vec.n == N


def _graph_and_counted_cosines(store: EmbeddedStore, q: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Build the graph, then count the rows each search compares exactly (the returned list)."""
    from vidx.store import embedded_search

    store.ann.min_rows = 1000
    store.search(_plan(), q)
    assert store.ann.ready.wait(60)
    compared: list[int] = []
    real = embedded_search.Executor.cosines

    def counting(self: embedded_search.Executor, pos: np.ndarray, vector: np.ndarray) -> np.ndarray:
        compared.append(len(pos))
        return real(self, pos, vector)

    monkeypatch.setattr(embedded_search.Executor, "cosines", counting)
    return compared


def test_hybrid_compares_only_the_keyword_rows_that_can_reach_the_page(
        store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word in every event gives a hybrid search thousands of keyword rows beyond the graph's
    candidates: only those whose meaning could lift them onto the page are compared, and the
    page, the total and the facets are those of comparing every one."""
    from vidx.store import embedded_search

    queries = _vectors(12, 14)
    compared = _graph_and_counted_cosines(store, queries[0], monkeypatch)
    for i, q in enumerate(queries):
        plan = Plan(mode=SearchMode.hybrid, words=("line", str(200 + i)), phrase="", threshold=0.55,
                    filters=Filters(), size=10, unrelated=0.0, paraphrase=0.9)
        compared.clear()
        bounded = store.search(plan, q)
        bounded_compared = sum(compared)
        monkeypatch.setattr(embedded_search, "EXACT_EXTRA", 10**9)
        full = store.search(plan, q)
        monkeypatch.setattr(embedded_search, "EXACT_EXTRA", 2_000)
        assert [h.event.event_id for h in bounded.hits] == [h.event.event_id for h in full.hits]
        assert [h.score for h in bounded.hits] == [h.score for h in full.hits]
        assert (bounded.total, bounded.exact, bounded.facets) == (full.total, full.exact, full.facets)
        assert bounded_compared < N // 2, bounded_compared  # not every keyword row was read


def test_hybrid_bounds_keyword_rows_of_different_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every event holds the word, in texts of different lengths (so different keyword weights):
    the rows that cannot reach the page on meaning are not compared, and the page, total and
    facets equal those of comparing every row."""
    from vidx.store import embedded_search

    s = EmbeddedStore(tmp_path / "events.sqlite3")
    s.ensure_schema("test", DIMS)
    vecs = _vectors(N, 15)
    for k in range(4):
        vid = f"{k}" * 32
        evs = _events(vid, vecs[k * 3000:(k + 1) * 3000], k * 3000)
        for j, e in enumerate(evs):
            e.dialogue = "harbour " + " ".join(f"w{(j * 7 + m) % 997}" for m in range(j % 23))
        s.replace_video_events(vid, evs)
    queries = _vectors(8, 16)
    compared = _graph_and_counted_cosines(s, queries[0], monkeypatch)
    for q in queries:
        plan = Plan(mode=SearchMode.hybrid, words=("harbour",), phrase="", threshold=0.55,
                    filters=Filters(), size=10, unrelated=0.0, paraphrase=0.9)
        compared.clear()
        bounded = s.search(plan, q)
        assert sum(compared) < N // 2, sum(compared)
        monkeypatch.setattr(embedded_search, "EXACT_EXTRA", 10**9)
        full = s.search(plan, q)
        monkeypatch.setattr(embedded_search, "EXACT_EXTRA", 2_000)
        assert [(h.event.event_id, h.score) for h in bounded.hits] == [(h.event.event_id, h.score) for h in full.hits]
        assert (bounded.total, bounded.exact, bounded.facets) == (full.total, full.exact, full.facets)
        assert bounded.total >= min(N - 1000, 10_000)  # the word is in every event: far more match than the page


def test_a_vector_file_that_disagrees_with_memory_is_not_used(store: EmbeddedStore, tmp_path: Path) -> None:
    """The process that built the graph checks the file against the vectors it holds before
    dropping them: a file changed under it is refused (once), and searches keep their answers."""
    q = _vectors(1, 17)[0]
    want = _ids(store, _plan(), q)
    store.ann.min_rows = 1000
    store.ann.maybe_build = lambda cat, gen: None  # type: ignore[method-assign]  # build by hand, offload later
    from vidx.store.ann import AnnIndex

    cat = store._sync()
    AnnIndex.maybe_build(store.ann, cat, store._generation)
    assert store.ann.ready.wait(60) and store.ann.vfile is not None
    path = tmp_path / "events.vectors.i8.npy"
    data = bytearray(path.read_bytes())
    data[128:] = bytes(len(data) - 128)  # every vector zeroed, in place (the mapping sees it)
    with open(path, "r+b") as f:
        f.write(data)
    del store.ann.maybe_build
    res = _ids(store, _plan(), q)
    assert cat.vec_base == 0 and cat._refused is store.ann.vfile
    assert len(set(res) & set(want)) >= 9


def test_a_vector_file_damaged_on_disk_is_caught_when_another_process_loads(
        store: EmbeddedStore, tmp_path: Path) -> None:
    """A process that loads its vectors from the file checks a spread of every batch against the
    database: a file damaged in place is set aside, the process answers from the database's
    vectors, and the graph and file are built again."""
    queries = _vectors(5, 21)
    vid = "2" * 32
    want = [_ids(store, _plan(video_ids=(vid,)), q) for q in queries]
    store.ann.min_rows = 1000
    store.search(_plan(), queries[0])
    assert store.ann.ready.wait(60)
    path = tmp_path / "events.vectors.i8.npy"
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    data[half:] = bytes(len(data) - half)  # the second half's rows lost (zeroed)
    path.write_bytes(data)
    reader = EmbeddedStore(tmp_path / "events.sqlite3", read_only=False)
    reader.ann.min_rows = 1000
    assert [_ids(reader, _plan(video_ids=(vid,)), q) for q in queries] == want
    cat = reader._catalog
    assert cat.vfile is None and cat.vec is not None and cat.vec.n == N  # every vector from the database
    assert not path.exists()  # set aside: the next search builds both again
    reader.search(_plan(), queries[0])
    assert reader.ann.ready.wait(60) and reader.ann.built_in_s > 0 and path.exists()
    assert [_ids(reader, _plan(video_ids=(vid,)), q) for q in queries] == want


def test_searches_after_the_vector_file_left_the_page_cache(store: EmbeddedStore, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel drops the vector file's pages (memory pressure, an idle night): the graph's
    candidates are read again, their missing pages asked for at once, and every answer is the
    same as with the file cached."""
    import os

    # 1,000 candidates of 12,000 rows is a dense read here; at a million events it is 1 in 1,000
    monkeypatch.setattr("vidx.store.vecfile.DENSE", 4)

    queries = _vectors(6, 23)
    store.ann.min_rows = 1000
    store.search(_plan(), queries[0])
    assert store.ann.ready.wait(60)
    store.search(_plan(), queries[0])
    vf = store._catalog.vfile
    assert vf is not None
    warm = [_ids(store, _plan(), q) for q in queries]
    from vidx.store import vecfile

    if vecfile._MINCORE is None:
        pytest.skip("no mincore on this system: reads are not prefetched")
    pages = (vf.path.stat().st_size + vecfile.PAGE - 1) // vecfile.PAGE
    for q, want in zip(queries, warm):
        fd = os.open(vf.path, os.O_RDONLY)
        try:
            os.fsync(fd)  # a file just written keeps its dirty pages until they reach the disk
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        resident = np.zeros(pages, dtype=np.uint8)
        assert vecfile._MINCORE(vf._address, pages * vecfile.PAGE, resident.ctypes.data) == 0
        if (resident & 1).mean() > 0.5:
            pytest.skip("the kernel kept the vector file's pages cached: nothing to prefetch")
        before = vf.prefetched
        assert _ids(store, _plan(), q) == want
        assert vf.prefetched > before  # the search asked for its missing pages ahead of reading them
