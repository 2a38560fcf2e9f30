"""Cross-language queries: take the Chinese-English direction out of a query vector.

A multilingual embedding model puts a sentence and its translation close together, but every
vector also leans on a direction shared by all text of its language. In a library holding both
Chinese and English events, a Chinese query's nearest events are therefore Chinese ones
whatever they say, and a Chinese question about English speech ranks its answer low (the
relevance benchmark: MRR 0.34 for Chinese queries about English lines).

The direction is measured on the model, not on a library: the mean query vector of the Chinese
half of :data:`PAIRS` (everyday sentences and their translations) minus that of the English
half; translation keeps the topics equal, so what is left is language. A query's component
along it is removed and the vector normalised again, so neither language's events get a bonus
for sharing the query's language (a projection; no parameter to tune). A model that does not
place translations nearer to each other than to other sentences (an English-only model) has no
shared space to correct, and its queries are left as they are.

Measured on the relevance benchmark (`bench/relevance/run.py`, multilingual-e5-small, 88
queries): Chinese for English MRR 0.34 -> 0.92, English for Chinese 0.71 -> 0.74, Japanese for
English 0.56 -> 1.00, Korean for English 0.32 -> 0.38, semantic and hybrid MRR 0.84 -> 0.94,
no-answer queries 0.80 -> 1.00 (two Chinese ones returned hits without it), every other kind
unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# (English, Chinese): everyday sentences on many topics, none of them the benchmark's
PAIRS: tuple[tuple[str, str], ...] = (
    ("The children are playing in the park.", "孩子们在公园里玩。"),
    ("Please close the window, it is cold.", "请关上窗户，天气很冷。"),
    ("My sister works at the hospital.", "我姐姐在医院工作。"),
    ("The library opens at nine in the morning.", "图书馆早上九点开门。"),
    ("He forgot his umbrella on the bus.", "他把雨伞忘在公交车上了。"),
    ("We need to buy milk and bread.", "我们需要买牛奶和面包。"),
    ("The cat is sleeping on the sofa.", "猫在沙发上睡觉。"),
    ("She is learning to play the piano.", "她正在学弹钢琴。"),
    ("The price of the house went up again.", "房子的价格又涨了。"),
    ("Turn left at the next traffic light.", "在下一个红绿灯左转。"),
    ("The doctor said I should rest for a week.", "医生说我应该休息一个星期。"),
    ("Our teacher gave us a lot of homework.", "老师给我们布置了很多作业。"),
    ("The river is very clean this year.", "今年这条河很干净。"),
    ("I lost my phone yesterday.", "我昨天把手机丢了。"),
    ("The museum has a new exhibition about birds.", "博物馆有一个关于鸟类的新展览。"),
    ("Can you help me carry this box?", "你能帮我搬这个箱子吗？"),
    ("The garden is full of flowers in spring.", "春天花园里开满了鲜花。"),
    ("He drinks coffee every morning.", "他每天早上喝咖啡。"),
    ("The computer is too slow to use.", "这台电脑太慢了，没法用。"),
    ("They moved to a small village by the sea.", "他们搬到了海边的一个小村庄。"),
    ("The baby started to cry at midnight.", "婴儿半夜开始哭了。"),
    ("I will send you the photos tonight.", "我今晚把照片发给你。"),
    ("The shop on the corner sells fresh fish.", "拐角的那家商店卖新鲜的鱼。"),
    ("It took two hours to fix the car.", "修车花了两个小时。"),
)
# how much nearer a translation must be than another pair's sentence (mean cosine) for the model
# to count as multilingual: multilingual-e5-small gives 0.13, the English all-MiniLM-L6-v2 0.047,
# a bag of words 0.0
MIN_MARGIN = 0.08


def _queries(embedder: Any, texts: list[str]) -> np.ndarray:
    """Query vectors of ``texts`` in one batch (a model without a query form: its vectors)."""
    fn = getattr(embedder, "embed_queries", None)
    rows = fn(texts) if fn is not None else embedder.embed(texts)
    m = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def translation_margin(en: np.ndarray, zh: np.ndarray) -> float:
    """Mean cosine of each sentence with its translation minus the mean with the other pairs'."""
    s = zh @ en.T
    n = len(s)
    return float(np.trace(s) / n - (s.sum() - np.trace(s)) / (n * n - n))


def language_axis(embedder: Any) -> np.ndarray | None:
    """The unit Chinese-minus-English direction of ``embedder``'s query vectors, or None for a
    model that does not align translations."""
    en = _queries(embedder, [a for a, _ in PAIRS])
    zh = _queries(embedder, [b for _, b in PAIRS])
    margin = translation_margin(en, zh)
    axis = zh.mean(axis=0) - en.mean(axis=0)
    norm = float(np.linalg.norm(axis))
    if margin < MIN_MARGIN or norm == 0:
        log.info("%s: translations are not nearer than other sentences (margin %.3f): queries are "
                 "searched as embedded", getattr(embedder, "model_id", "?"), margin)
        return None
    log.info("%s: the Chinese-English direction is taken out of queries (translation margin %.3f)",
             getattr(embedder, "model_id", "?"), margin)
    return (axis / norm).astype(np.float32)


def neutral(vector: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    """``vector`` without its component along ``axis``, normalised again (as it is without an axis)."""
    if axis is None:
        return vector
    v = np.asarray(vector, dtype=np.float32)
    out = v - float(v @ axis) * axis
    norm = float(np.linalg.norm(out))
    return (out / norm).astype(np.float32) if norm > 0 else v
