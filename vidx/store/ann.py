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

So that a million events fit in half a gigabyte per process, the graph holds each vector
reduced to its ``REDUCED_DIMS`` principal directions (an SVD of a sample of the library's own
vectors: 128 of 384 dims), and the full int8 vectors move to a file beside it
(:mod:`vidx.store.vecfile`) that every process maps and reads only for the rows it scores. The
graph proposes candidates in the reduced space; they are then scored with the full vectors,
so what a person sees is ranked exactly as an exact search would rank the same candidates.
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

from vidx.store.catalog import Vectors
from vidx.store.vecfile import VectorFile

log = logging.getLogger("vidx.store.ann")

MIN_ROWS = 250_000  # below it exact int8 search is faster than the graph (100 k: ~3 ms vs ~5 ms)
CANDIDATES = 1_000
EXPANSION = 3_000  # HNSW search breadth at 1 M events (128-dim graph, connectivity 12): 0.984 of the exact top 10 (2,000: 0.968), +3 ms
EXPANSION_PER_EVENTS = 333  # smaller graphs search less broadly: one unit per 333 events, at least CANDIDATES
CONNECTIVITY = 12  # 16 keeps 0.9715 of the exact top 10 on real E5 sentences, 12 keeps 0.969 and is 32 MB smaller per million
EXPANSION_ADD = 64  # build breadth: 128 took 694 s for 1 M float16 events on 2 cores (recall 0.991 after rescoring)
DTYPE = "i8"  # the graph's own copy of the vectors: 1 byte per dimension (recall 0.997 after rescoring 1,000)
REDUCED_DIMS = 128  # the graph's vectors: real E5 sentences keep 0.97 of the exact top 10 in 200 of 24 k candidates
PCA_SAMPLE = 20_000  # vectors the principal directions are computed from
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
        self.reduced_dims = REDUCED_DIMS
        self._basis: np.ndarray | None = None  # dims x reduced: the graph's projection
        self.vfile: VectorFile | None = None  # the full vectors of the graph's rows
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

    def _vector_files(self) -> tuple[Path, Path] | None:
        if self.path is None:
            return None
        return self.path.with_suffix(".vectors.i8.npy"), self.path.with_suffix(".vectors.rows.npz")

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
        vpaths = self._vector_files()
        assert vpaths is not None
        vf = VectorFile.open(vpaths[0], vpaths[1], int(meta.get("dims", 0)), str(meta.get("token", "")))
        if vf is None or "basis" not in vf.extra or vf.extra["basis"].shape[1] != idx.ndim:
            return False
        idx.expansion_search = expansion(len(idx))  # type: ignore[misc]  # a search setting, not from the file
        with self._lock:
            self._index, self._covered_rowid = idx, int(meta["covered_rowid"])
            self._count, self._generation = int(meta["count"]), meta.get("generation")
            self._basis, self.vfile = vf.extra["basis"].astype(np.float32), vf
            self.mapped = True
        self.ready.set()
        log.info("vector index: mapped %s (%d events)", files[0], len(idx))
        return True

    def attach(self, generation: object) -> VectorFile | None:
        """The shared graph and vector file of this generation, mapped (before a catalog first
        loads, so that it need not hold the vectors the file holds); None when there are none."""
        meta = self._read_meta()
        if meta is None or meta.get("generation") != generation or not self.available():
            return None
        with self._lock:
            if self._index is not None and self._generation == generation:
                return self.vfile
        return self.vfile if self._map(meta) else None

    def discard(self, vf: VectorFile) -> None:
        """``vf`` disagrees with the database: forget it and the graph built with it, and remove
        both files (when they are still the ones ``vf`` came from) so that they are built again."""
        with self._lock:
            if self.vfile is vf:
                self._index, self.vfile, self._basis, self._generation = None, None, None, None
                self._covered_rowid = self._count = 0
                self.mapped = False
                self.ready.clear()
            self._checked = 0.0
        files, vpaths = self._files(), self._vector_files()
        if files is None or vpaths is None:
            return
        try:
            with np.load(vpaths[1]) as z:
                same = str(z["token"]) == vf.token
        except (OSError, ValueError, KeyError):
            same = True
        if same:  # not already replaced by a newer build
            for p in (files[1], files[0], *vpaths):
                try:
                    p.unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("cannot remove %s: %s", p, exc)

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
            vf, gen = self.vfile, self._generation
        if vf is not None and gen == generation and cat.vfile is not vf and cat.offload(vf):
            log.info("vector index: the vectors of %d events are read from %s", cat.vec_base, vf.path)
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
        t = threading.Thread(target=self._build, args=(cat.vectors(), cat.rowid.view()[:n], generation, cat.dims, lock),
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

    def _build(self, vectors: Vectors, rowids: np.ndarray, generation: object, dims: int, lock: Any) -> None:
        from usearch.index import Index

        t0 = time.perf_counter()
        n = len(rowids)
        vfiles = self._vector_files()
        out = None
        try:
            has = vectors.has[:n]
            keep = np.flatnonzero(has)
            basis = self._principal_directions(vectors, keep, dims)
            idx = Index(ndim=basis.shape[1], metric="cos", dtype=DTYPE, connectivity=CONNECTIVITY,
                        expansion_add=EXPANSION_ADD, expansion_search=expansion(n))
            token = f"{generation}:{int(rowids[-1]) if n else 0}:{time.time_ns()}"
            try:
                out = VectorFile.begin(vfiles[0], n, dims) if vfiles is not None else None
            except OSError as exc:  # a read-only data directory: the graph is kept in memory
                log.warning("the vector file %s cannot be written (the graph stays in memory): %s",
                            vfiles[0] if vfiles else "", exc)
                out = None
            for i in range(0, n, BATCH):
                pos = np.arange(i, min(i + BATCH, n))
                block = vectors.take(pos)
                if out is not None:
                    try:
                        out.write(block.tobytes())
                    except OSError as exc:  # a full disk: the graph stays in memory
                        log.warning("the vector file cannot be written (the graph stays in memory): %s", exc)
                        out.close()
                        out = None
                        if vfiles is not None:
                            vfiles[0].with_suffix(".npy.tmp").unlink(missing_ok=True)
                sel = np.flatnonzero(has[pos])
                if len(sel):
                    full = block[sel].astype(np.float32) * vectors.scales[pos[sel], None]
                    idx.add(rowids[pos[sel]].astype(np.uint64), full @ basis, threads=0)
                log.info("vector index: %d of %d events", min(i + BATCH, n), n)
            covered = int(rowids[-1]) if n else 0
            meta = {"generation": generation, "covered_rowid": covered, "count": len(idx), "dims": dims,
                    "reduced_dims": int(basis.shape[1]), "token": token,
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dtype": DTYPE}
            saved = False
            if out is not None and vfiles is not None:
                try:
                    VectorFile.finish(out, vfiles[0], vfiles[1], rowids, vectors.scales[:n], token, basis=basis)
                    saved = self._save(idx, meta)
                except OSError as exc:
                    log.warning("the vector file cannot be saved (the graph stays in memory): %s", exc)
                out = None
            self.built_in_s = time.perf_counter() - t0
            if not saved or not self._map(meta):
                with self._lock:
                    self._index, self._covered_rowid, self._count = idx, covered, len(idx)
                    self._generation, self.mapped, self._basis = generation, False, basis
                self.ready.set()
            log.info("vector index: %d events in %.1fs", len(keep), self.built_in_s)
        except Exception as exc:  # noqa: BLE001 (searches stay exact)
            log.warning("the vector index could not be built (searches stay exact): %s", exc)
        finally:
            if out is not None:
                out.close()
            with self._lock:
                self._building = False
            if isinstance(lock, int) and not isinstance(lock, bool):
                os.close(lock)

    def _principal_directions(self, vectors: Vectors, keep: np.ndarray, dims: int) -> np.ndarray:
        """dims x r: the ``reduced_dims`` directions that hold most of a sample of the vectors
        (not centred: what a query's inner product reads); the identity when dims is small."""
        r = self.reduced_dims
        if dims <= r or len(keep) < r:
            return np.eye(dims, dtype=np.float32)
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(keep, min(PCA_SAMPLE, len(keep)), replace=False))
        sample = vectors.take(pick).astype(np.float32) * vectors.scales[pick, None]
        _, _, vt = np.linalg.svd(sample, full_matrices=False)
        return np.ascontiguousarray(vt[:r].T, dtype=np.float32)

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
    def usable(self, cat: Any, generation: object) -> bool:
        """Whether :meth:`candidates` would search the graph (else every vector is compared)."""
        with self._lock:
            idx, gen, basis = self._index, self._generation, self._basis
        return not (idx is None or gen != generation or basis is None or cat.n < self.min_rows)

    def candidates(self, cat: Any, generation: object, vector: np.ndarray, k: int = CANDIDATES) -> np.ndarray | None:
        """Sorted catalog positions of the ~k nearest events and every event newer than the
        graph; None when there is no usable graph (search exactly)."""
        with self._lock:
            idx, covered_rowid, gen, basis = self._index, self._covered_rowid, self._generation, self._basis
        if idx is None or gen != generation or basis is None or cat.n < self.min_rows:
            return None  # below min_rows comparing every vector is faster
        q = np.asarray(vector, dtype=np.float32) @ basis
        m = idx.search(q, k)
        keys = np.asarray(m.keys, dtype=np.int64)
        pos, ok = cat.positions(np.sort(keys))
        pos = pos[ok]
        start = int(np.searchsorted(cat.rowid.view()[: cat.n], covered_rowid, side="right"))
        newer = np.arange(start, cat.n, dtype=np.int64)
        return np.unique(np.concatenate([pos, newer])) if len(newer) else pos
