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

import logging
import time
from typing import Any

import numpy as np

from vidx.gather import Gatherer

log = logging.getLogger("vidx.store.vectors")

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


def _dots(qi: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Exact int8 dot products ``[queries, rows]`` as float64."""
    if _nk is not None:
        return np.asarray(_nk.cdist(qi, np.ascontiguousarray(matrix), metric="dot", threads=0,
                                    out_dtype="float64")).reshape(len(qi), len(matrix))
    return qi.astype(np.float64) @ matrix.astype(np.float64).T  # pragma: no cover


def cosines(matrix: np.ndarray, scales: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Dot products of int8 rows (with their scales) and a float32 query, as float64."""
    if len(matrix) == 0:
        return np.zeros(0)
    qi, qs = quantize(np.asarray(query, dtype=np.float32)[None, :])
    return _dots(qi, matrix)[0] * (scales.astype(np.float64) * float(qs[0]))


LINGER_S = 0.004  # the longest a pass waits for searches said to be coming
EXPECT_S = 0.05  # a search said to be coming that has not come by then is not waited for
REPACK_ROWS = 4096  # rows added since the packed copy was made: more than this (or 1/20 of it), pack again
MAX_GROUP = 16  # queries in one shared pass


class SharedScan(Gatherer[tuple[Any, ...]]):
    """Compares every in-memory vector with the queries of the searches that arrive together,
    in one pass over the rows.

    A search server's requests meet here much as they meet at the query embedder: a search
    that finds a pass running waits for it, and the next free search then compares every
    query queued meanwhile at once. One query is compared as :func:`cosines` does (NumKong's
    ``cdist``); two or more go through NumKong's packed int8 kernel (``dots_packed``), which
    reads each row once for all of them: on a 2-core AVX2 machine 8 queries over 100 k rows
    took about 2.5 times as long as one query, where separate passes take 8 times. The
    packed copy of the rows costs as much memory again as the rows (one byte per dimension);
    it is made the first time searches meet (a server used by one person at a time never
    makes it), and again once the catalog has grown by a twentieth; rows added since it was
    made are compared separately.
    The dot products are exact integers either way, so a search gets the same cosines alone
    or in a group."""

    def __init__(self, max_group: int = MAX_GROUP) -> None:
        super().__init__(max_group)
        self._packed: Any = None  # (matrix it packs, rows packed, the packed copy)
        self._coming: list[float] = []  # monotonic deadlines of the searches said to be coming
        self.groups = 0  # passes that compared more than one query (for tests and benchmarks)

    def expect(self, n: int) -> None:
        """``n`` searches (embedded together) will soon ask for a pass: the next one waits up to
        :data:`LINGER_S` for them, so that they share it. A search that asks for none (it took
        another path) is forgotten after :data:`EXPECT_S`."""
        until = time.monotonic() + EXPECT_S
        with self._cond:
            self._coming = [t for t in self._coming if t > until - EXPECT_S]
            self._coming.extend([until] * n)

    def cosines(self, rows: object, matrix: np.ndarray, scales: np.ndarray, query: np.ndarray) -> np.ndarray:
        """:func:`cosines` of every row of ``matrix`` with ``query``. ``rows`` is the append-only
        store ``matrix`` is the first rows of (the catalog's in-memory vectors): searches over the
        same rows and as many of them share a pass."""
        if len(matrix) == 0:
            return np.zeros(0)
        qi, qs = quantize(np.asarray(query, dtype=np.float32)[None, :])
        return self.submit((rows, matrix, scales, qi[0], float(qs[0])))  # type: ignore[no-any-return]

    def _arrived(self, item: tuple[Any, ...]) -> None:
        if self._coming:
            self._coming.pop(0)
            self._cond.notify_all()  # a pass waiting for this search can go

    def _gathering(self) -> None:
        self._linger()  # the searches said to be coming join this pass

    def _select(self, items: list[tuple[Any, ...]], mine: tuple[Any, ...]) -> list[int]:
        same = [i for i, it in enumerate(items) if it[0] is mine[0] and len(it[1]) == len(mine[1])]
        return same[: self.max_batch]

    def _run(self, items: list[tuple[Any, ...]]) -> list[Any]:
        raw = self._pass(items[0][0], items[0][1], np.stack([it[3] for it in items]))
        return [row * (it[2].astype(np.float64) * it[4]) for row, it in zip(raw, items, strict=True)]

    def _linger(self) -> None:
        """Wait (the lock held) until the searches said to be coming have arrived, or
        :data:`LINGER_S` has passed."""
        now = time.monotonic()
        end = now + LINGER_S
        while now < end and len(self._pending) < self.max_batch:
            self._coming = [t for t in self._coming if t > now]
            if not self._coming:
                return
            self._cond.wait(end - now)
            now = time.monotonic()

    def _pass(self, rows: object, matrix: np.ndarray, qi: np.ndarray) -> np.ndarray:
        if len(qi) == 1 or _nk is None or not hasattr(_nk, "dots_packed"):
            return _dots(qi, matrix)
        self.groups += 1
        n, packed = len(matrix), self._packed
        if packed is None or packed[0] is not rows or n < packed[1] \
                or n - packed[1] > max(REPACK_ROWS, packed[1] // 20):
            # the rows are append-only: a packed copy of the first k stays right while they grow
            packed = self._packed = (rows, n, _nk.dots_pack(np.ascontiguousarray(matrix)))
            log.debug("packed %d vectors for shared passes", n)
        k = packed[1]
        out = np.empty((len(qi), n), dtype=np.float64)
        out[:, :k] = np.asarray(_nk.dots_packed(np.ascontiguousarray(qi), packed[2]))
        if n > k:
            out[:, k:] = _dots(qi, matrix[k:])
        return out
