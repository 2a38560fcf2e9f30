"""Cross-language questions through the HTTP API, on either store: in a library of hundreds of Chinese and English
lines, a Chinese question finds the English line that answers it (and the reverse), although
every Chinese line is nearer to it as embedded; a model without a shared space is left alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from flask import Flask

from tests.ui.conftest import add_video
from vidx.config import Settings
from vidx.crosslingual import PAIRS, language_axis, neutral

DIMS = 128
RNG = np.random.default_rng(7)
TOPICS = {k: v / np.linalg.norm(v) for k, v in
          ((k, RNG.standard_normal(DIMS).astype(np.float32)) for k in range(400))}
ZH = np.zeros(DIMS, np.float32)
ZH[0] = 1.0
EN = np.zeros(DIMS, np.float32)
EN[1] = 1.0
# test words and their translations, each a topic of its own
WORDS = {"onion": 300, "洋葱": 300, "storm": 301, "暴风雨": 301, "roast duck": 302, "烤鸭": 302,
         "lighthouse": 303, "灯塔": 303}
# the reference pairs are translations: the same topic in either language
for i, (en, zh) in enumerate(PAIRS):
    WORDS[en] = WORDS[zh] = 350 + i


def is_zh(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


class TwoLanguageEmbedder:
    """A test double at the Embedder seam that behaves as a multilingual model does: a text and
    its translation share a topic direction, and every vector also leans on its language's own
    direction (0.8 language, 0.6 topic)."""

    model_id = "test/two-languages"
    dims = DIMS

    def _vec(self, text: str) -> np.ndarray:
        key = next((k for k in sorted(WORDS, key=len, reverse=True) if k in text), None)
        if key is not None:
            topic = TOPICS[WORDS[key]]
        else:  # a line of its own: its number picks its topic
            digits = "".join(c for c in text if c.isdigit()) or "0"
            topic = TOPICS[int(digits) % 290]
        v = 0.8 * (ZH if is_zh(text) else EN) + 0.6 * topic
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


@pytest.fixture(params=["embedded", "elasticsearch"])
def library(request: pytest.FixtureRequest, settings: Settings) -> tuple[Flask, TwoLanguageEmbedder]:
    from search_ui import create_app

    emb = TwoLanguageEmbedder()
    en = [{"start_sec": 4.0 * i, "end_sec": 4.0 * i + 3, "source": "subtitle", "language": "en",
           "dialogue": f"line {i} of the English talk"} for i in range(300)]
    en[120]["dialogue"] = "chop the onion finely"
    en[200]["dialogue"] = "a storm was coming from the north"
    zh = [{"start_sec": 4.0 * i, "end_sec": 4.0 * i + 3, "source": "subtitle", "language": "zh",
           "dialogue": f"中文讲座第{i}句"} for i in range(300)]
    zh[77]["dialogue"] = "这家餐厅的烤鸭非常有名"
    videos = [add_video(settings, settings.watch_dir / "talk.mp4", en, emb),  # type: ignore[arg-type]
              add_video(settings, settings.watch_dir / "讲座.mp4", zh, emb)]  # type: ignore[arg-type]
    if request.param == "embedded":
        return create_app(settings, embedder_factory=lambda: emb), emb
    from tests.es_store import make_elastic_store

    es = make_elastic_store()
    es.ensure_schema(emb.model_id, DIMS)
    for evs in videos:
        es.replace_video_events(evs[0].video_id, evs)
    return create_app(settings, store=es, embedder_factory=lambda: emb), emb


def top(app: Flask, q: str, mode: str) -> dict[str, Any]:
    r = app.test_client().get("/api/search", query_string={"q": q, "mode": mode, "min_score": "0", "size": "5"})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["hits"][0]


def test_a_chinese_question_finds_the_english_line_that_answers_it(library: tuple[Flask, Any]) -> None:
    app, emb = library
    q = emb.embed_query("洋葱")
    # as embedded, every Chinese line of the library is nearer to the question than the answer
    assert float(q @ emb.embed_query("chop the onion finely")) < min(
        float(q @ emb.embed_query(f"中文讲座第{i}句")) for i in range(300))
    for mode in ("semantic", "hybrid"):
        assert top(app, "洋葱", mode)["dialogue"] == "chop the onion finely", mode
        assert top(app, "暴风雨", mode)["dialogue"] == "a storm was coming from the north", mode
        assert top(app, "roast duck", mode)["dialogue"] == "这家餐厅的烤鸭非常有名", mode  # and the reverse


def test_a_model_without_a_shared_space_searches_queries_as_embedded() -> None:
    from tests.fakes.embedder import HashEmbedder

    emb = HashEmbedder()
    assert language_axis(emb) is None  # a bag of words: translations share nothing
    v = emb.embed_query("洋葱")
    assert neutral(v, language_axis(emb)) is v
    axis = language_axis(TwoLanguageEmbedder())
    assert axis is not None and abs(float(axis @ (ZH - EN))) / np.sqrt(2) > 0.99  # the language direction
