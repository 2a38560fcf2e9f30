"""How the embedded store keeps event vectors: float16 on disk, int8 in memory.

On disk (the ``vectors`` table, one row per event, beside ``events``) a vector is float16:
half of float32's bytes, and small enough that several fit in one SQLite page, where a
float32 vector beside the document gave each event a page of its own. A store written by an
older vidx keeps float32 vectors in ``events.vec`` until it is upgraded; :func:`decode` reads
both.

In memory each process holds one int8 row per event with its own scale (the row's largest
component maps to 127): 384 bytes + 4 per event at 384 dims, a quarter of float32. Cosines
are int8 dot products (NumKong's SIMD kernels, NumPy when it is missing) times the two
scales; the error against float32 stays within about 0.003 on normalised vectors, far below
the gaps the calibrated threshold reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_nk: Any
try:
    import numkong as _nk
except ImportError:  # pragma: no cover (installed with usearch)
    _nk = None


def encode(vector: Any) -> bytes:
    """A vector as stored on disk (float16)."""
    return np.asarray(vector, dtype=np.float16).tobytes()


def decode(blob: bytes | None, dims: int = 0) -> np.ndarray | None:
    """A stored vector as float32: float16 (this vidx) or float32 (older stores), told apart
    by the blob's length when ``dims`` is known, else float16."""
    if not blob:
        return None
    if dims and len(blob) == dims * 4:
        return np.frombuffer(blob, dtype=np.float32).copy()
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)


def quantize(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float rows -> (int8 rows, float32 scale per row): row ~= int8 * scale."""
    block = np.asarray(block, dtype=np.float32)
    peak = np.abs(block).max(axis=1) if block.size else np.zeros(len(block), dtype=np.float32)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(block / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantize_stored(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stored vectors (float32 rows) as every process holds them: through float16 first, as
    stored on disk, so an upgraded store (float32 on disk) holds exactly the same rows."""
    return quantize(np.asarray(block, dtype=np.float32).astype(np.float16).astype(np.float32))


def cosines(matrix: np.ndarray, scales: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Dot products of int8 rows (with their scales) and a float32 query, as float64."""
    if len(matrix) == 0:
        return np.zeros(0)
    qi, qs = quantize(np.asarray(query, dtype=np.float32)[None, :])
    if _nk is not None:
        raw = np.asarray(_nk.cdist(qi, np.ascontiguousarray(matrix), metric="dot", threads=0,
                                   out_dtype="float64")).ravel()
    else:  # pragma: no cover
        raw = matrix.astype(np.float32) @ qi[0].astype(np.float32)
    return raw * (scales.astype(np.float64) * float(qs[0]))
