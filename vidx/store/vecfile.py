"""The int8 vectors of a large embedded store, on disk beside the vector graph, read on demand.

At a million events the int8 vectors are 384 MB. Held in every process's heap beside the
graph, they alone would use most of the half gigabyte a process may take. Once the vector graph
is built, the builder also writes the vectors it was built from to ``events.vectors.i8.npy``
(an ordinary ``.npy`` file, one int8 row per event in rowid order) and their rowids and scales
to ``events.vectors.rows.npz``. Each process memory-maps the vector file and then drops, from its
own heap, the vectors of every row the file covers. Rows newer than the file stay in memory.

A search reads the rows it scores (the graph's candidates, or the events a filter allows) from
the mapping, in chunks, and then tells the kernel it is done with those pages
(``madvise(MADV_DONTNEED)``). The pages stay in the page cache, which every process shares, but
they leave this process's resident set. So the process keeps a fixed size however many searches
it runs, and a full scan costs page-cache reads instead of heap.
"""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger("vidx.store.vecfile")

CHUNK_ROWS = 32_768  # rows read from the mapping at a time (12 MB at 384 dims)
PAGE = mmap.PAGESIZE
PREFETCH_GAP = 4  # pages: missing pages this close together are asked for in one request
PROBE_PAGES = 16  # pages looked up before deciding that a read's pages are all cached
DENSE = 32  # reads of more than one row in 32 of their span are left to the kernel's read-ahead (measured: 1 in 20 reads slower with prefetching, 1 in 50 faster)
prefetching = True  # ask for a read's missing pages all at once (off: the baseline of bench/store_bench.py)


def _mincore() -> Any:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.mincore
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):  # not Linux or BSD: no prefetching
        return None


_MINCORE = _mincore()


class VectorFile:
    """A read-only mapping of ``events.vectors.i8.npy`` and the rowids and scales beside it."""

    def __init__(self, path: Path, rowids: np.ndarray, scales: np.ndarray, token: str,
                 mm: mmap.mmap, offset: int, dims: int, extra: dict[str, np.ndarray] | None = None) -> None:
        self.path = path
        self.extra = extra or {}
        self.rowids = rowids
        self.scales = scales
        self.token = token
        self.dims = dims
        self._mm = mm
        self._offset = offset
        self.matrix = np.frombuffer(mm, dtype=np.int8, count=len(rowids) * dims, offset=offset).reshape(-1, dims)
        whole = np.frombuffer(mm, dtype=np.uint8)
        self._address = int(whole.ctypes.data)  # where the mapping starts (page-aligned)
        del whole
        self.prefetched = 0  # pages asked for ahead of a read (they were not in the page cache)

    # -- writing (the graph builder) ------------------------------------------------------
    @staticmethod
    def begin(path: Path, rows: int, dims: int) -> IO[bytes]:
        """An open temporary file with the ``.npy`` header of ``rows`` x ``dims`` int8 written:
        the caller appends the rows in order and calls :meth:`finish`."""
        tmp = path.with_suffix(".npy.tmp")
        f = open(tmp, "wb")  # noqa: SIM115 (closed by finish)
        np.lib.format.write_array_header_1_0(f, {"descr": "|i1", "fortran_order": False, "shape": (rows, dims)})
        return f

    @staticmethod
    def finish(f: IO[bytes], path: Path, side: Path, rowids: np.ndarray, scales: np.ndarray, token: str,
               **extra: np.ndarray) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(path.with_suffix(".npy.tmp"), path)
        tmp = side.with_suffix(".tmp.npz")
        arrays: dict[str, Any] = {"rowids": rowids.astype(np.int64), "scales": scales.astype(np.float32),
                                  "token": np.array(token), **extra}
        np.savez(tmp, **arrays)
        os.replace(tmp, side)

    # -- reading ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, side: Path, dims: int, token: str) -> VectorFile | None:
        """The mapped file, or None when it is missing, damaged, or not the one the graph was
        built with (``token``)."""
        try:
            with np.load(side) as z:
                if str(z["token"]) != token:
                    return None
                rowids, scales = np.asarray(z["rowids"]), np.asarray(z["scales"])
                extra = {k: np.asarray(z[k]) for k in z.files if k not in ("rowids", "scales", "token")}
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                offset = f.tell()
                if tuple(shape) != (len(rowids), dims) or fortran or dtype != np.int8:
                    return None
                if os.fstat(f.fileno()).st_size < offset + len(rowids) * dims:
                    return None
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:  # not written yet (or by a vidx before vector files)
            return None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("the vector file %s cannot be read (it will be written again): %s", path, exc)
            return None
        return cls(path, rowids, scales, token, mm, offset, dims, extra)

    def rows_of(self, rowids: np.ndarray) -> np.ndarray:
        """The file row of each rowid, -1 where the file does not hold it."""
        if len(self.rowids) == 0:
            return np.full(len(rowids), -1, dtype=np.int64)
        at = np.clip(np.searchsorted(self.rowids, rowids), 0, len(self.rowids) - 1)
        return np.where(self.rowids[at] == rowids, at, -1).astype(np.int64)

    def prefetch(self, rows: np.ndarray) -> int:
        """Ask the kernel at once for the pages of ``rows`` (file rows) that are not in the page
        cache, so that a read of scattered rows waits for the disk about once instead of once
        per missing page (the file's pages are evicted when memory is short or the store was
        idle). Returns how many pages were asked for; a read whose pages are cached costs the
        lookup of 16 of them (``mincore``)."""
        if not prefetching or _MINCORE is None or len(rows) == 0:
            return 0
        lo_row, hi_row = int(rows.min()), int(rows.max()) + 1
        if len(rows) * DENSE > hi_row - lo_row:
            return 0  # dense reads (a filter's scan): the kernel's own read-ahead does better
        # a spread of the rows' pages first: one mincore over a million-event file's span costs 3 ms
        one = np.zeros(1, dtype=np.uint8)
        for r in rows[np.linspace(0, len(rows) - 1, min(PROBE_PAGES, len(rows))).astype(np.int64)]:
            page = (self._offset + int(r) * self.dims) // PAGE
            if _MINCORE(self._address + page * PAGE, PAGE, one.ctypes.data) != 0:
                return 0
            if not one[0] & 1:
                break
        else:
            return 0  # all cached (eviction takes whole files or long runs of pages)
        start = self._offset + rows.astype(np.int64) * self.dims
        pages = np.unique(np.concatenate([start // PAGE, (start + self.dims - 1) // PAGE]))
        lo, hi = int(pages[0]), int(pages[-1]) + 1
        resident = np.zeros(hi - lo, dtype=np.uint8)
        if _MINCORE(self._address + lo * PAGE, (hi - lo) * PAGE, resident.ctypes.data) != 0:
            return 0
        missing = pages[(resident[pages - lo] & 1) == 0]
        if len(missing) == 0:
            return 0
        breaks = np.flatnonzero(np.diff(missing) > PREFETCH_GAP) + 1
        for run in np.split(missing, breaks):
            first, last = int(run[0]), int(run[-1])
            try:
                self._mm.madvise(mmap.MADV_WILLNEED, first * PAGE, (last - first + 1) * PAGE)
            except (AttributeError, OSError, ValueError):  # no madvise here: read page by page
                return 0
        self.prefetched += len(missing)
        return len(missing)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """A copy of the int8 vectors of ``rows`` (file rows, sorted or not); the mapping's pages
        are released afterwards."""
        self.prefetch(rows)
        out = self.matrix[rows]
        if len(rows):
            self.release(int(rows.min()), int(rows.max()) + 1)
        return out

    def release(self, lo: int = 0, hi: int | None = None) -> None:
        """Drop the pages of rows lo..hi from this process (they stay in the page cache)."""
        hi = len(self.rowids) if hi is None else hi
        start = (self._offset + lo * self.dims) // PAGE * PAGE
        end = min(len(self._mm), self._offset + hi * self.dims)
        if end > start:
            try:
                self._mm.madvise(mmap.MADV_DONTNEED, start, end - start)
            except (AttributeError, OSError, ValueError):  # no madvise here: the pages stay mapped
                pass

    def close(self) -> None:
        self.matrix = np.zeros((0, self.dims), dtype=np.int8)
        try:
            self._mm.close()
        except (BufferError, ValueError):  # a view still reads it: the mapping goes with it
            pass

    @property
    def nbytes(self) -> int:
        return len(self.rowids) * self.dims

    def __repr__(self) -> str:
        return f"VectorFile({self.path}, rows={len(self.rowids)})"


def scan(vf: VectorFile, rows: np.ndarray, fn: Any) -> None:
    """Call ``fn(i, block)`` for consecutive chunks of ``rows`` (file rows; ``i`` is the chunk's
    first index into ``rows``), releasing each chunk's pages after use."""
    for i in range(0, len(rows), CHUNK_ROWS):
        part = rows[i : i + CHUNK_ROWS]
        lo, hi = int(part[0]), int(part[-1]) + 1
        vf.prefetch(part)
        if hi - lo == len(part):  # consecutive rows: read the mapping in place
            fn(i, vf.matrix[lo:hi])
        else:
            fn(i, vf.matrix[part])
        vf.release(int(part.min()), int(part.max()) + 1)
