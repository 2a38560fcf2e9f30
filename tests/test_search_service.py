"""The search service highlights the page it returns, and embeds a repeated query once."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.embedder import HashEmbedder
from vidx.schema import Event
from vidx.search import QUERY_CACHE, Query, SearchService
from vidx.store.base import SearchMode
from vidx.store.embedded import EmbeddedStore


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_query(self, text: str):  # type: ignore[no-untyped-def]
        self.queries.append(text)
        return super().embed_query(text)


def _store(tmp_path: Path, emb: HashEmbedder, n: int = 30) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path / "events.sqlite3")
    store.ensure_schema(emb.model_id, emb.dims)
    texts = [f"the harbour crane lifts container number {i} onto the ship" for i in range(n)]
    vecs = emb.embed(texts)
    store.replace_video_events("v" * 16, [
        Event(event_id=f"{i:032x}", video_id="v" * 16, video_path="/v.mp4", start_sec=float(i), end_sec=i + 1.0,
              description=t, embedding=[float(x) for x in v]) for i, (t, v) in enumerate(zip(texts, vecs))])
    return store


def test_paging_through_a_query_embeds_it_once_and_highlights_each_page(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    svc = SearchService(_store(tmp_path, emb), lambda: emb, min_score=0.0)
    pages = [svc.search(Query(q="harbour crane", mode=SearchMode.hybrid, size=10, video_id=None, page=p))
             for p in (1, 2, 3)]
    assert emb.queries == ["harbour crane"]  # asked three times, embedded once
    ids = [h["event_id"] for page in pages for h in page["hits"]]
    assert len(ids) == len(set(ids)) == 30
    for page in pages:
        for h in page["hits"]:
            assert "<em>harbour</em>" in " ".join(h["highlights"]["description"]), h
    svc.search(Query(q="container ship", mode=SearchMode.semantic, size=5, video_id=None))
    assert emb.queries == ["harbour crane", "container ship"]


def test_the_query_cache_is_bounded(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    svc = SearchService(_store(tmp_path, emb, n=3), lambda: emb, min_score=0.0)
    for i in range(QUERY_CACHE + 10):
        svc.search(Query(q=f"crane {i}", mode=SearchMode.semantic, size=1, video_id=None))
    svc.search(Query(q="crane 0", mode=SearchMode.semantic, size=1, video_id=None))  # pushed out: embedded again
    assert len(emb.queries) == QUERY_CACHE + 11
