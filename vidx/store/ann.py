"""An approximate-nearest-neighbour index for the embedded store's semantic half.

Below ``MIN_ROWS`` live events, or when a filter leaves fewer than half of them, every
allowed vector is compared exactly (float16 dot products: a few milliseconds). Above it,
an HNSW graph (usearch, float16, cosine) proposes the ``CANDIDATES`` nearest events, and
only those are scored exactly, thresholded, paged and faceted; totals are then a lower
bound when every candidate passes (as with Elasticsearch's kNN).

The graph is a rebuildable cache: it is built from the catalog's vectors in a background
thread (searches stay exact meanwhile), keyed by rowid; rows added after it was built are
compared exactly, deleted ones are dropped by the catalog's live mask, and it is rebuilt
when the rows added since pass a fifth of it. Nothing is lost when a process dies.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

log = logging.getLogger("vidx.store.ann")

MIN_ROWS = 50_000
CANDIDATES = 1_000
EXPANSION = 1_200  # HNSW search breadth (>= CANDIDATES)
CONNECTIVITY = 16
EXPANSION_ADD = 64  # build breadth: 128 took 694 s for 1 M events on 2 cores (recall 0.991 after rescoring)
REBUILD_SHARE = 0.2  # rebuild when the rows added since the build pass this share of it
BATCH = 50_000


class AnnIndex:
    """One per store object (per process); thread-safe."""

    def __init__(self, min_rows: int = MIN_ROWS) -> None:
        self.min_rows = min_rows
        self._index: Any = None
        self._covered = 0  # catalog positions [0, covered) are in the graph
        self._generation: object = None
        self._building = False
        self._lock = threading.Lock()
        self.built_in_s = 0.0
        self.ready = threading.Event()

    def available(self) -> bool:
        try:
            import usearch.index  # noqa: F401
        except ImportError:
            return False
        return True

    def maybe_build(self, cat: Any, generation: object) -> None:
        """Start a background build when the catalog is large enough and the graph is missing
        or stale (call with the catalog's lock held: it reads the arrays' current buffers)."""
        n = cat.n
        if n < self.min_rows or cat.vec is None:
            return
        with self._lock:
            if self._building:
                return
            fresh = self._index is not None and self._generation == generation and \
                n - self._covered <= max(1000, REBUILD_SHARE * self._covered)
            if fresh or not self.available():
                return
            self._building = True
        # the arrays only grow: these views of today's buffers stay valid and unchanged
        vecs, rowids, has = cat.vec.view()[:n], cat.rowid.view()[:n], cat.has_vec.view()[:n]
        t = threading.Thread(target=self._build, args=(vecs, rowids, has, n, generation), name="ann-build",
                             daemon=True)
        t.start()

    def _build(self, vecs: np.ndarray, rowids: np.ndarray, has: np.ndarray, n: int, generation: object) -> None:
        from usearch.index import Index

        t0 = time.perf_counter()
        try:
            idx = Index(ndim=vecs.shape[1], metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                        expansion_add=EXPANSION_ADD, expansion_search=EXPANSION)
            keep = np.flatnonzero(has)
            for i in range(0, len(keep), BATCH):
                sel = keep[i : i + BATCH]
                idx.add(rowids[sel].astype(np.uint64), vecs[sel], threads=0)
            with self._lock:
                self._index, self._covered, self._generation = idx, n, generation
            self.built_in_s = time.perf_counter() - t0
            self.ready.set()
            log.info("vector index: %d events in %.1fs", len(keep), self.built_in_s)
        except Exception as exc:  # noqa: BLE001 (searches stay exact)
            log.warning("the vector index could not be built (searches stay exact): %s", exc)
        finally:
            with self._lock:
                self._building = False

    def candidates(self, cat: Any, generation: object, vector: np.ndarray, k: int = CANDIDATES) -> np.ndarray | None:
        """Sorted catalog positions of the ~k nearest events and every event newer than the
        graph; None when there is no usable graph (search exactly)."""
        with self._lock:
            idx, covered, gen = self._index, self._covered, self._generation
        if idx is None or gen != generation or covered > cat.n:
            return None
        q = np.asarray(vector, dtype=np.float32)
        m = idx.search(q, k)
        keys = np.asarray(m.keys, dtype=np.int64)
        pos, ok = cat.positions(np.sort(keys))
        pos = pos[ok]
        newer = np.arange(covered, cat.n, dtype=np.int64)
        return np.unique(np.concatenate([pos, newer])) if len(newer) else pos
