"""The fused query encoder gives the model's own vectors (it only runs them faster)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

SENTENCES = [
    "budget meeting",
    "who talked about the software licence costs",
    "the lighthouse keeper watched the storm at sea " * 60,  # longer than the model's 256 tokens
    "厨师在厨房里切洋葱",
    "tabel lamp",
    "",
]


@pytest.fixture(scope="module")
def minilm() -> Any:
    """The bundled English MiniLM: the BERT the fused encoder is for."""
    from vidx.embed import load_embedder

    return load_embedder("all-MiniLM-L6-v2")


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _reference(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False))


@pytest.mark.parametrize("precision,floor", [("float32", 0.99999), ("bfloat16", 0.999)])
def test_fused_encoder_gives_the_models_vectors(minilm: Any, precision: str, floor: float) -> None:
    import torch

    from vidx.fast_bert import FastBert

    model = minilm._model
    assert FastBert.supports(model)
    fast = FastBert(model, getattr(torch, precision))
    ref = _reference(model, SENTENCES)
    batch = fast.encode(SENTENCES)  # one padded batch
    one_by_one = np.stack([fast.encode([s])[0] for s in SENTENCES])
    assert _cos(batch, ref).min() >= floor
    assert _cos(one_by_one, ref).min() >= floor
    # a different sentence gives a different vector (the comparison above can fail)
    assert _cos(batch[:1], ref[1:2])[0] < 0.9


def test_queries_embed_like_documents(minilm: Any) -> None:
    """Whichever path the embedder chose for queries, a query's vector is the document vector
    of the same text, so the calibrated cosines mean the same."""
    q = minilm.embed_queries(SENTENCES)
    d = minilm.embed(SENTENCES)
    assert q.shape == d.shape == (len(SENTENCES), minilm.dims)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    assert _cos(q, d).min() >= 0.9995
    assert _cos(minilm.embed_query(SENTENCES[1])[None, :], d[1:2])[0] >= 0.9995


def test_other_model_shapes_keep_the_library(minilm: Any) -> None:
    """A model pooled another way than the mean is not run by the fused encoder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    from vidx.fast_bert import FastBert, choose

    model = minilm._model
    cls_pooled = SentenceTransformer(modules=[model[0], Pooling(minilm.dims, pooling_mode="cls")])
    assert not FastBert.supports(cls_pooled)
    assert choose(cls_pooled) is None
    assert not FastBert.supports(object())
