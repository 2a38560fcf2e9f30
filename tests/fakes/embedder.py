"""HashEmbedder: a deterministic bag-of-words embedder, a test double at the Embedder seam.

Texts sharing words get similar vectors, so kNN order is predictable without a model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[\u3400-\u9fff]+|[^\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """The fake's own words: lowercased; Chinese runs as overlapping pairs of characters."""
    out: list[str] = []
    for m in _WORD.finditer(text):
        w = m.group(0)
        if "\u3400" <= w[0] <= "\u9fff":
            out.extend([w] if len(w) == 1 else [w[i:i + 2] for i in range(len(w) - 1)])
        else:
            out.append(w.lower())
    return out


class HashEmbedder:
    model_id = "test/hash-embedder"

    def __init__(self, dims: int = 64) -> None:
        self.dims = dims
        self.calls = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dims, dtype=np.float32)
        for t in tokens(text):
            h = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v[h % self.dims] += 1.0 if (h >> 32) & 1 else -1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dims), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)
