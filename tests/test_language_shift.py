"""Cross-language queries: in a library of Chinese and English events, a query's own language
direction is taken out before the search, so a Chinese query finds the English event that
answers it; a library of one language leaves queries untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidx.language_shift import query_is_cjk, shift
from vidx.schema import Event, event_id_for
from vidx.search import Query, SearchService
from vidx.store.base import SearchMode
from vidx.store.embedded import EmbeddedStore

DIMS = 32
ZH, EN = np.eye(DIMS, dtype=np.float32)[0], np.eye(DIMS, dtype=np.float32)[1]
TOPIC = {w: np.eye(DIMS, dtype=np.float32)[2 + i] for i, w in enumerate(
    ["onion", "storm", "train", "duck", "wall", "flight", "budget", "match"])}
WORDS = {"洋葱": "onion", "暴风雨": "storm", "火车": "train", "烤鸭": "duck", "长城": "wall", "航班": "flight"}


class TwoLanguageEmbedder:
    """A model whose every vector leans on its language's direction (as real multilingual
    models do), plus the topic: a test double at the Embedder seam."""

    model_id = "test/two-languages"
    dims = DIMS

    def _vec(self, text: str) -> np.ndarray:
        zh = query_is_cjk(text)
        topic = next((TOPIC[WORDS.get(w, w)] for w in [*WORDS, *TOPIC] if w in text), np.zeros(DIMS, np.float32))
        v = 0.8 * (ZH if zh else EN) + 0.6 * topic
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)


def _store(tmp_path: Path, lines: dict[str, list[tuple[str, str]]]) -> EmbeddedStore:
    emb = TwoLanguageEmbedder()
    store = EmbeddedStore(tmp_path / "events.sqlite3")
    store.ensure_schema(emb.model_id, DIMS)
    for vid, items in lines.items():
        events = []
        for i, (lang, text) in enumerate(items):
            e = Event(event_id=event_id_for(vid, "s", i, i + 1, i), video_id=vid, video_path=f"/v/{vid[:4]}.mp4",
                      start_sec=float(i * 5), end_sec=float(i * 5 + 4), source="subtitle", language=lang, dialogue=text)
            e.embedding = emb.embed_query(text).tolist()
            e.embedding_model = emb.model_id
            events.append(e)
        store.replace_video_events(vid, events)
    return store


def _top(store: EmbeddedStore, q: str) -> str:
    svc = SearchService(store, TwoLanguageEmbedder, min_score=0.0)
    hits = svc.search(Query(q=q, mode=SearchMode.semantic, size=3, video_id=None))["hits"]
    return str(hits[0]["dialogue"])


def test_a_chinese_question_finds_the_english_answer(tmp_path: Path) -> None:
    en = [("en", f"we talked about the {w} today") for w in ("onion", "storm", "budget", "match")]
    zh = [("zh", text) for text in ("我们吃了烤鸭", "我们爬了长城", "火车晚点了", "航班取消了")]
    store = _store(tmp_path, {"e" * 32: en, "z" * 32: zh})
    emb = TwoLanguageEmbedder()
    q = emb.embed_query("洋葱")
    raw = [float(np.dot(q, emb.embed_query(t))) for _, t in en + zh]
    assert max(raw[4:]) > raw[0]  # as embedded, every Chinese line is nearer than the answer
    assert _top(store, "洋葱") == "we talked about the onion today"
    assert _top(store, "暴风雨") == "we talked about the storm today"
    assert _top(store, "roast duck") == "我们吃了烤鸭"  # and the reverse
    c = store.language_centroids()
    assert c is not None and float(np.dot(c.cjk - c.other, ZH - EN)) > 0


def test_a_library_of_one_language_leaves_queries_as_they_are(tmp_path: Path) -> None:
    store = _store(tmp_path, {"e" * 32: [("en", "the onion"), ("en", "the storm"), ("en", "the train"), ("", "a wall")]})
    assert store.language_centroids() is None
    v = TwoLanguageEmbedder().embed_query("洋葱")
    assert np.array_equal(shift(v, "洋葱", store.language_centroids()), v)
    assert _top(store, "洋葱") == "the onion"
