"""An approximate-nearest-neighbour index for the embedded store's semantic half.

Below ``MIN_ROWS`` live events, or when a filter leaves fewer than half of them, every
allowed vector is compared exactly (int8 dot products: a few milliseconds). Above it, an
HNSW graph (usearch, int8, cosine) proposes the ``CANDIDATES`` nearest events, and only
those are scored, thresholded, paged and faceted; totals are then a lower bound when every
candidate passes (as with Elasticsearch's kNN).

The graph is a rebuildable cache kept in a file beside the database
(``events.vectors.usearch`` + ``.json``: the generation and the last rowid it covers). Every
process memory-maps that file instead of holding its own copy, so the daemon and the UI share
one graph through the page cache and a restart does not rebuild it. When the file is missing,
of another generation, or the rows added since pass a fifth of it, one process builds a new
one in a background thread (a lock file keeps the others from building the same thing;
searches stay exact meanwhile) and replaces the file atomically; the others map the new file
at their next semantic search. Rows newer than the graph are compared exactly, deleted ones
are dropped by the catalog's live mask: nothing is lost when a process dies mid-build.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("vidx.store.ann")

MIN_ROWS = 250_000  # below it exact int8 search is faster than the graph (100 k: ~3 ms vs ~5 ms)
CANDIDATES = 1_000
EXPANSION = 2_000  # HNSW search breadth at 1 M events: 0.991 of the exact top 10 (1,200: 0.971), +4 ms
EXPANSION_PER_EVENTS = 500  # smaller graphs search less broadly: one unit per 500 events, at least CANDIDATES
CONNECTIVITY = 16
EXPANSION_ADD = 64  # build breadth: 128 took 694 s for 1 M float16 events on 2 cores (recall 0.991 after rescoring)
DTYPE = "i8"  # the graph's own copy of the vectors: 1 byte per dimension (recall 0.997 after rescoring 1,000)
REBUILD_SHARE = 0.2  # rebuild when the rows added since the build pass this share of it
BATCH = 50_000
RECHECK_S = 10.0  # how often a process with a stale graph looks for a newer file


def expansion(events: int) -> int:
    """HNSW search breadth for a graph of ``events``: recall needs more breadth as it grows."""
    return int(min(EXPANSION, max(CANDIDATES, events // EXPANSION_PER_EVENTS)))


class AnnIndex:
    """One per store object (per process); thread-safe. ``path`` None: kept in memory only."""

    def __init__(self, path: Path | None = None, min_rows: int = MIN_ROWS) -> None:
        self.path = path
        self.min_rows = min_rows
        self._index: Any = None
        self._covered_rowid = 0  # the graph holds rows up to this rowid
        self._count = 0
        self._generation: object = None
        self._building = False
        self._checked = 0.0
        self._lock = threading.Lock()
        self.built_in_s = 0.0
        self.mapped = False  # the graph is the shared file, memory-mapped
        self.ready = threading.Event()

    # -- files --------------------------------------------------------------------------
    def _files(self) -> tuple[Path, Path, Path] | None:
        if self.path is None:
            return None
        return (self.path.with_suffix(".vectors.usearch"), self.path.with_suffix(".vectors.json"),
                self.path.with_suffix(".vectors.lock"))

    def _read_meta(self) -> dict[str, Any] | None:
        files = self._files()
        if files is None or not files[0].exists():
            return None
        try:
            meta: dict[str, Any] = json.loads(files[1].read_text())
            return meta
        except (OSError, ValueError):
            return None

    def _map(self, meta: dict[str, Any]) -> bool:
        """Use the shared file (memory-mapped); False when it cannot be read."""
        from usearch.index import Index

        files = self._files()
        assert files is not None
        try:
            idx = Index.restore(str(files[0]), view=True)
        except Exception as exc:  # noqa: BLE001 (a damaged cache: rebuild it)
            log.warning("the vector index file %s cannot be read (it will be rebuilt): %s", files[0], exc)
            return False
        if idx is None or len(idx) != int(meta.get("count", -1)):
            return False
        idx.expansion_search = expansion(len(idx))  # type: ignore[misc]  # a search setting, not from the file
        with self._lock:
            self._index, self._covered_rowid = idx, int(meta["covered_rowid"])
            self._count, self._generation = int(meta["count"]), meta.get("generation")
            self.mapped = True
        self.ready.set()
        log.info("vector index: mapped %s (%d events)", files[0], len(idx))
        return True

    # -- keeping it fresh ---------------------------------------------------------------
    def available(self) -> bool:
        try:
            import usearch.index  # noqa: F401
        except ImportError:
            return False
        return True

    def _fresh(self, cat: Any, covered_rowid: int, count: int) -> bool:
        newer = cat.n - int(np.searchsorted(cat.rowid.view()[: cat.n], covered_rowid, side="right"))
        return newer <= max(1000, REBUILD_SHARE * count)

    def maybe_build(self, cat: Any, generation: object) -> None:
        """Map the shared graph, or start a background build, when the catalog is large enough
        and the graph is missing or stale (call with the catalog's lock held)."""
        n = cat.n
        if n < self.min_rows or cat.vec is None:
            return
        with self._lock:
            if self._building:
                return
            if self._index is not None and self._generation == generation and \
                    self._fresh(cat, self._covered_rowid, self._count):
                return
            now = time.monotonic()
            if now - self._checked < RECHECK_S:
                return
            self._checked = now
        if not self.available():
            return
        meta = self._read_meta()
        if meta is not None and meta.get("generation") == generation and meta.get("dims") == cat.dims and \
                self._fresh(cat, int(meta.get("covered_rowid", 0)), int(meta.get("count", 0))) and \
                (self._index is None or int(meta["covered_rowid"]) > self._covered_rowid) and self._map(meta):
            return
        lock = self._try_lock()
        if lock is False:
            return  # another process is building it: stay exact (or on the older graph) meanwhile
        with self._lock:
            if self._building:
                return
            self._building = True
        # the arrays only grow: these views of today's buffers stay valid and unchanged
        vecs, scales = cat.vec.view()[:n], cat.vscale.view()[:n]
        rowids, has = cat.rowid.view()[:n], cat.has_vec.view()[:n]
        t = threading.Thread(target=self._build, args=(vecs, scales, rowids, has, generation, cat.dims, lock),
                             name="ann-build", daemon=True)
        t.start()

    def _try_lock(self) -> Any:
        """An exclusive build lock (a file descriptor), None where there is no file, False when
        another process holds it."""
        files = self._files()
        if files is None:
            return None
        try:
            import fcntl

            fd = os.open(files[2], os.O_RDWR | os.O_CREAT, 0o644)
        except (ImportError, OSError):
            return None  # not writable (a read-only data directory): build in memory
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        return fd

    def _build(self, vecs: np.ndarray, scales: np.ndarray, rowids: np.ndarray, has: np.ndarray,
               generation: object, dims: int, lock: Any) -> None:
        from usearch.index import Index

        t0 = time.perf_counter()
        try:
            idx = Index(ndim=vecs.shape[1], metric="cos", dtype=DTYPE, connectivity=CONNECTIVITY,
                        expansion_add=EXPANSION_ADD, expansion_search=expansion(len(vecs)))
            keep = np.flatnonzero(has)
            for i in range(0, len(keep), BATCH):
                sel = keep[i : i + BATCH]
                block = vecs[sel].astype(np.float32) * scales[sel, None]
                idx.add(rowids[sel].astype(np.uint64), block, threads=0)
                log.info("vector index: %d of %d events", min(i + BATCH, len(keep)), len(keep))
            covered = int(rowids[-1]) if len(rowids) else 0
            meta = {"generation": generation, "covered_rowid": covered, "count": len(idx), "dims": dims,
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dtype": DTYPE}
            self.built_in_s = time.perf_counter() - t0
            if not self._save(idx, meta) or not self._map(meta):
                with self._lock:
                    self._index, self._covered_rowid, self._count = idx, covered, len(idx)
                    self._generation, self.mapped = generation, False
                self.ready.set()
            log.info("vector index: %d events in %.1fs", len(keep), self.built_in_s)
        except Exception as exc:  # noqa: BLE001 (searches stay exact)
            log.warning("the vector index could not be built (searches stay exact): %s", exc)
        finally:
            with self._lock:
                self._building = False
            if isinstance(lock, int) and not isinstance(lock, bool):
                os.close(lock)

    def _save(self, idx: Any, meta: dict[str, Any]) -> bool:
        files = self._files()
        if files is None:
            return False
        graph, side, _ = files
        try:
            tmp = graph.with_suffix(".usearch.tmp")
            idx.save(str(tmp))
            os.replace(tmp, graph)  # a process that mapped the old file keeps reading it
            tmp_meta = side.with_suffix(".json.tmp")
            tmp_meta.write_text(json.dumps(meta))
            os.replace(tmp_meta, side)
        except OSError as exc:
            log.warning("the vector index could not be saved to %s (kept in memory): %s", graph, exc)
            return False
        return True

    # -- searching ----------------------------------------------------------------------
    def candidates(self, cat: Any, generation: object, vector: np.ndarray, k: int = CANDIDATES) -> np.ndarray | None:
        """Sorted catalog positions of the ~k nearest events and every event newer than the
        graph; None when there is no usable graph (search exactly)."""
        with self._lock:
            idx, covered_rowid, gen = self._index, self._covered_rowid, self._generation
        if idx is None or gen != generation:
            return None
        q = np.asarray(vector, dtype=np.float32)
        m = idx.search(q, k)
        keys = np.asarray(m.keys, dtype=np.int64)
        pos, ok = cat.positions(np.sort(keys))
        pos = pos[ok]
        start = int(np.searchsorted(cat.rowid.view()[: cat.n], covered_rowid, side="right"))
        newer = np.arange(start, cat.n, dtype=np.int64)
        return np.unique(np.concatenate([pos, newer])) if len(newer) else pos
