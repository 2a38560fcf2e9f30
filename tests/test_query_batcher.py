"""Queries that arrive together are embedded in one pass, each caller gets its own vector."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from tests.fakes.embedder import HashEmbedder
from vidx.embed import QueryBatcher


class SlowBatchEmbedder(HashEmbedder):
    """A model whose every pass takes 50 ms, however many texts it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.passes: list[int] = []

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.passes.append(len(texts))
        time.sleep(0.05)
        if "boom" in texts:
            raise RuntimeError("model failed")
        return np.stack([self._vec(t) for t in texts])


def test_concurrent_queries_share_passes_and_each_gets_its_own_vector() -> None:
    emb = SlowBatchEmbedder()
    batcher = QueryBatcher(emb, max_batch=16)
    texts = [f"query number {i}" for i in range(24)]
    got: dict[str, np.ndarray] = {}

    def ask(t: str) -> None:
        got[t] = batcher.embed_query(t)

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert set(got) == set(texts)
    for t in texts:
        assert np.allclose(got[t], emb._vec(t))
    assert sum(emb.passes) == 24 and len(emb.passes) < 12 and max(emb.passes) <= 16


def test_a_failed_pass_fails_its_callers_and_the_next_pass_works() -> None:
    batcher = QueryBatcher(SlowBatchEmbedder())
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.embed_query("boom")
    assert np.allclose(batcher.embed_query("fine"), HashEmbedder()._vec("fine"))


def test_a_long_query_is_matched_whole_but_only_its_start_is_embedded(tmp_path: object) -> None:
    from pathlib import Path

    from vidx.search import QUERY_EMBED_CHARS, SearchService, parse_query
    from vidx.store.embedded import EmbeddedStore

    seen: list[str] = []

    class Recording(HashEmbedder):
        def embed_query(self, text: str) -> np.ndarray:
            seen.append(text)
            return super().embed_query(text)

    store = EmbeddedStore(Path(str(tmp_path)) / "e.sqlite3")
    store.ensure_schema(Recording().model_id, 64)
    q = ("harbour budget " * 300)[:3990]
    SearchService(store, Recording).search(parse_query({"q": q, "mode": "hybrid"}))
    assert seen and all(len(t) <= QUERY_EMBED_CHARS for t in seen) and seen[0] == q[:QUERY_EMBED_CHARS]


def test_the_store_hears_how_many_searches_a_pass_embedded() -> None:
    """A batch of several queries is announced (a store waits for them to share its vector pass);
    a query embedded alone is not."""
    heard: list[int] = []
    emb = SlowBatchEmbedder()
    batcher = QueryBatcher(emb, on_batch=heard.append)
    batcher.embed_query("alone")
    assert heard == []
    threads = [threading.Thread(target=batcher.embed_query, args=(f"q{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(heard) == sum(p for p in emb.passes if p > 1) and sum(heard) >= 2
