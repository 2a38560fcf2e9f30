"""The embedded store's in-memory columns: what filters, facets and vector search read.

Each process keeps, per stored event, its vector (int8 with a scale per row,
:mod:`vidx.store.vectors`) and the few columns a search
filters, sorts and counts on (video, source, language, times, day added, people, objects,
place, length in words), in NumPy arrays indexed by position. The arrays follow the SQLite
file incrementally, as the vectors always did: new rows by rowid, deleted rows through the
``deletions`` log, renamed videos through the ``videos`` table's change counter. So a reader
process sees the daemon's commits at its next search, and nothing here can disagree with the
database for longer than one sync: the database is the truth, the catalog a rebuildable cache.

Memory per event: the vector (1 byte x dims + 4) plus about 40 bytes of columns. Once a large
store's vector graph is built, the vectors of the rows it holds are read from the shared vector
file instead (:mod:`vidx.store.vecfile`): 8 bytes per event stay in memory (scale and file row).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from vidx.store.vecfile import VectorFile, scan
from vidx.store.vectors import SharedScan, cosines, decode, quantize_stored
from vidx.text import tokens

NO_CODE = -1
LARGE_CATALOG = 250_000  # rows from which a search's temporaries are managed (where the vector graph is used)
SYNC_BATCH = 20_000
MATCH_CACHE_BYTES = 16 << 20  # recent word matches kept per process
LOOKUP_SPARSENESS = 4  # a rowid -> position table while rowids stay below 4x the rows
FILE_PROBES = 8  # rows per loaded batch whose stored vector is checked against the vector file


class VectorFileMismatch(Exception):
    """The vector file does not hold the database's vectors (damaged or edited in place)."""

    def __init__(self, vf: VectorFile, rowid: int) -> None:
        super().__init__(f"{vf.path} disagrees with the database at event row {rowid}")
        self.vfile = vf


class Codes:
    """Strings <-> small integer codes (one dictionary per column)."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}

    def code(self, value: str) -> int:
        c = self.index.get(value)
        if c is None:
            c = self.index[value] = len(self.values)
            self.values.append(value)
        return c

    def matching(self, pred: Any) -> np.ndarray:
        return np.array([i for i, v in enumerate(self.values) if pred(v)], dtype=np.int32)


class _Grow:
    """An append-only NumPy column with amortised growth."""

    def __init__(self, dtype: Any, width: int = 0) -> None:
        self.dtype, self.width, self.n = dtype, width, 0
        self.a = np.zeros((0, width) if width else 0, dtype=dtype)

    def extend(self, values: Any) -> None:
        values = np.asarray(values, dtype=self.dtype)
        need = self.n + len(values)
        if need > len(self.a):
            cap = max(need, int(len(self.a) * 1.5) + 1024)
            a = np.zeros((cap, self.width) if self.width else cap, dtype=self.dtype)
            a[: self.n] = self.a[: self.n]
            self.a = a
        self.a[self.n : need] = values
        self.n = need

    def view(self) -> np.ndarray:
        return self.a[: self.n]


@dataclass
class _Multi:
    """A multi-valued column (people, objects): codes per entry and the row of each entry."""

    codes: Codes = field(default_factory=Codes)
    entry_code: _Grow = field(default_factory=lambda: _Grow(np.int32))
    entry_row: _Grow = field(default_factory=lambda: _Grow(np.int64))

    def add(self, row: int, values: list[str]) -> None:
        if values:
            self.entry_code.extend([self.codes.code(v) for v in values])
            self.entry_row.extend([row] * len(values))

    def rows_with(self, codes: np.ndarray, n: int) -> np.ndarray:
        """A mask over rows: the row has at least one of ``codes``."""
        mask = np.zeros(n, dtype=bool)
        if len(codes):
            hit = np.isin(self.entry_code.view(), codes)
            mask[self.entry_row.view()[hit]] = True
        return mask

    def counts(self, rows_mask: np.ndarray) -> list[tuple[str, int]]:
        sel = rows_mask[self.entry_row.view()]
        if not sel.any():
            return []
        bc = np.bincount(self.entry_code.view()[sel], minlength=len(self.codes.values))
        return top_counts(bc, self.codes.values)


FEW_CODES = 16  # up to this many distinct values: count each by comparison (faster than bincount)


def code_counts(values: np.ndarray, codes: int) -> np.ndarray:
    """How many of ``values`` hold each code 0..codes-1 (np.bincount, or one comparison per code
    when there are few: bincount first widens every value to 64 bits)."""
    if codes <= FEW_CODES:
        return np.array([np.count_nonzero(values == c) for c in range(codes)], dtype=np.int64)
    return np.bincount(values, minlength=codes)


def top_counts(bc: np.ndarray, names: list[str], k: int = 8, skip: set[str] | None = None) -> list[tuple[str, int]]:
    order = np.lexsort((np.arange(len(bc)), -bc))
    out: list[tuple[str, int]] = []
    for i in order:
        if bc[i] <= 0:
            break
        if skip and names[i] in skip:
            continue
        out.append((names[i], int(bc[i])))
        if len(out) >= k:
            break
    return out


class Catalog:
    """Columns and vectors of every stored event, by position (rowid order)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0
        self.max_rowid = 0
        self.del_seq = 0
        self.video_seq = -1
        self.dims = 0
        self.rowid = _Grow(np.int64)
        self.alive = _Grow(np.bool_)
        self.has_vec = _Grow(np.bool_)
        self.vec: _Grow | None = None  # int8 rows from position vec_base on (those before: in vfile)
        self.scan = SharedScan()  # full passes over vec shared by the searches that arrive together
        self.vscale = _Grow(np.float32)  # each row's scale
        self.vfile: VectorFile | None = None  # the vectors of the first vec_base rows, on disk
        self.vec_base = 0
        self.file_row = _Grow(np.int32)  # position -> row of vfile (-1: not there), for the first vec_base
        self._refused: VectorFile | None = None  # a vector file that disagreed with memory
        self.video = _Grow(np.int32)
        self.source = _Grow(np.int16)
        self.lang = _Grow(np.int16)
        self.start = _Grow(np.float32)
        self.end = _Grow(np.float32)
        self.added = _Grow(np.int32)  # yyyymmdd, 0 when unknown
        self.days: set[int] = set()  # the distinct values of added, while there are few
        self.length = _Grow(np.int32)  # words in the event's searchable text
        self.eid = _Grow(np.int64)  # the event id's first 15 hex digits: the last tie-breaker, as in Elasticsearch
        self.location = _Grow(np.int32)
        self.videos = Codes()  # video ids
        self.video_paths: dict[int, str] = {}  # code -> current path
        self._names: dict[int, tuple[str, str]] = {}  # code -> (path, file name)
        self._name_index: tuple[tuple[int, int, int], list[str], np.ndarray] | None = None
        self.sources = Codes()
        self.langs = Codes()
        self.locations = Codes()
        self.people = _Multi()
        self.objects = _Multi()
        # FTS5 expression -> (rowid watermark, positions or bitmap, is a bitmap, rows then), least recent first
        self.matches: OrderedDict[str, tuple[int, np.ndarray, bool, int]] = OrderedDict()
        self.match_bytes = 0
        self.warming = False  # the most frequent words' matches are being (or were) remembered
        self.warmed = threading.Event()  # ... and are
        self._lut: np.ndarray | None = None  # rowid -> position (-1: none)
        self._lut_n = 0

    def remember(self, match: str, watermark: int, pos: np.ndarray) -> None:
        """Keep one expression's matching positions, within MATCH_CACHE_BYTES in all: as positions
        (int32), or as a bitmap over the catalog when that is smaller (a word in most events)."""
        old = self.matches.pop(match, None)
        if old is not None:
            self.match_bytes -= old[1].nbytes
        if len(pos) * 32 > self.n:
            mask = np.zeros(self.n, dtype=bool)
            mask[pos] = True
            value = np.packbits(mask)
        else:
            value = pos.astype(np.int32)
        self.matches[match] = (watermark, value, len(pos) * 32 > self.n, self.n)
        self.match_bytes += value.nbytes
        while self.match_bytes > MATCH_CACHE_BYTES and len(self.matches) > 1:
            _, dropped = self.matches.popitem(last=False)
            self.match_bytes -= dropped[1].nbytes

    def recall(self, match: str) -> tuple[int, np.ndarray] | None:
        """(rowid watermark, sorted positions) of a remembered expression."""
        got = self.matches.get(match)
        if got is None:
            return None
        self.matches.move_to_end(match)
        watermark, value, packed, n = got
        if packed:
            return watermark, np.flatnonzero(np.unpackbits(value, count=n))
        return watermark, value.astype(np.int64)

    def recall_mask(self, match: str) -> tuple[int, np.ndarray] | None:
        """(rowid watermark, a boolean mask over the catalog as it was then) of an expression
        remembered as a bitmap; None when it is not remembered, or kept as positions."""
        got = self.matches.get(match)
        if got is None or not got[2]:
            return None
        self.matches.move_to_end(match)
        return got[0], np.unpackbits(got[1], count=got[3]).view(bool)

    def reset(self) -> None:
        """Empty, to load afresh (call with the lock held: it stays the same lock)."""
        lock = self.lock
        self.__init__()  # type: ignore[misc]
        self.lock = lock

    # -- keeping in step -------------------------------------------------------------
    def sync(self, conn: sqlite3.Connection, has_videos_table: bool, has_length: bool,
             has_vectors_table: bool = True, dims: int = 0) -> None:
        length_col = "length" if has_length else "NULL"
        if dims and not self.dims:
            self.dims = dims
        vec_col = vector_column(has_vectors_table)
        cur = conn.execute(
            f"SELECT rowid, video_id, start_sec, {vec_col}, json_extract(doc, '$.end_sec'), json_extract(doc, '$.source'), "
            "json_extract(doc, '$.language'), substr(json_extract(doc, '$.indexed_at'), 1, 10), "
            "json_extract(doc, '$.people'), json_extract(doc, '$.objects'), json_extract(doc, '$.location'), "
            f"json_extract(doc, '$.video_path'), {length_col}, "
            "CASE WHEN " + ("length IS NULL" if has_length else "1") + " THEN doc END, event_id "
            "FROM events WHERE rowid > ? ORDER BY rowid", (self.max_rowid,))
        loaded = 0
        while rows := cur.fetchmany(SYNC_BATCH):  # in batches: a million rows never sit in one list
            self._append(rows)
            loaded += len(rows)
        if loaded > SYNC_BATCH:
            trim_memory()  # give the batches' freed memory back to the system
        if self.n >= LARGE_CATALOG:
            map_large_allocations()
        dels = conn.execute("SELECT seq, row FROM deletions WHERE seq > ? ORDER BY seq", (self.del_seq,)).fetchall()
        if dels:
            if self.n:
                pos, ok = self.positions(np.array([r[1] for r in dels], dtype=np.int64))
                self.alive.a[pos[ok]] = False
            self.del_seq = int(dels[-1][0])
        if has_videos_table:
            seq = conn.execute("SELECT coalesce(max(changed), 0) FROM videos").fetchone()[0]
            if seq != self.video_seq:
                for vid, path in conn.execute("SELECT video_id, video_path FROM videos"):
                    self.video_paths[self.videos.code(vid)] = path
                self.video_seq = seq

    def attach(self, vf: VectorFile) -> None:
        """Before the first sync: the rows ``vf`` holds keep no vectors in memory as they load."""
        if self.n == 0 and self.vfile is None:
            self.vfile = vf

    def _from_file(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Load the leading rows whose vectors the attached file holds (without decoding them);
        the rest are returned for loading into memory."""
        vf = self.vfile
        if vf is None or self.vec_base != self.n or len(vf.rowids) == 0 or (self.dims and vf.dims != self.dims):
            return rows
        rid = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        k = int(np.searchsorted(rid, int(vf.rowids[-1]), side="right"))
        if k == 0:
            return rows
        at = vf.rows_of(rid[:k])
        has = np.fromiter((r[3] is not None for r in rows[:k]), dtype=bool, count=k) & (at >= 0)
        self._probe(vf, rows, at, has)
        if not self.dims:
            self.dims = vf.dims
        if self.vec is None:
            self.vec = _Grow(np.int8, self.dims)
        self.file_row.extend(at)
        self.vscale.extend(np.where(at >= 0, vf.scales[np.maximum(at, 0)], 1.0))
        self.has_vec.extend(has)
        self.vec_base += k
        return rows[k:]

    def _probe(self, vf: VectorFile, rows: list[tuple[Any, ...]], at: np.ndarray, has: np.ndarray) -> None:
        """The file must hold the database's vectors: a spread of the batch's rows is decoded
        from the database and compared (the rest of each row is never decoded)."""
        cand = np.flatnonzero(has)
        if len(cand) == 0:
            return
        pick = cand[np.linspace(0, len(cand) - 1, min(FILE_PROBES, len(cand))).astype(np.int64)]
        differ, known = file_disagrees(vf, at[pick], [rows[j][3] for j in pick])
        bad = np.flatnonzero(differ | ~known)  # a row the file holds must have a stored vector
        if len(bad):
            raise VectorFileMismatch(vf, int(rows[pick[bad[0]]][0]))

    def _append(self, rows: list[tuple[Any, ...]]) -> None:
        first = self.n
        in_memory = self._from_file(rows)
        vecs: list[np.ndarray | None] = [None] * (len(rows) - len(in_memory))
        vecs.extend(decode(r[3], self.dims) for r in in_memory)
        dims = next((len(v) for v in vecs if v is not None), 0)
        if dims and not self.dims:
            self.dims = dims
        if dims and self.vec is None:
            self.vec = _Grow(np.int8, self.dims)
        if dims and dims != self.dims:
            from vidx.store.base import StoreError

            raise StoreError(f"vector size changed from {self.dims} to {dims}: run `vidx reindex`")
        skip = len(rows) - len(in_memory)  # loaded from the vector file above
        if self.dims and self.vec is not None and len(in_memory):
            block = np.zeros((len(in_memory), self.dims), dtype=np.float32)
            for i, v in enumerate(vecs[skip:]):
                if v is not None and len(v) == self.dims:
                    block[i] = v
            q, scale = quantize_stored(block)
            self.vec.extend(q)
            self.vscale.extend(scale)
        elif len(in_memory):
            self.vscale.extend(np.ones(len(in_memory), dtype=np.float32))
        self.has_vec.extend([v is not None for v in vecs[skip:]])
        self.rowid.extend([r[0] for r in rows])
        self.alive.extend(np.ones(len(rows), dtype=bool))
        vcode = []
        for r in rows:
            c = self.videos.code(r[1])
            if c not in self.video_paths:
                self.video_paths[c] = r[11] or ""
            vcode.append(c)
        self.video.extend(vcode)
        self.start.extend([r[2] for r in rows])
        self.eid.extend([_eid_key(r[14]) for r in rows])
        self.end.extend([r[4] if r[4] is not None else r[2] for r in rows])
        self.source.extend([self.sources.code(r[5] or "") for r in rows])
        self.lang.extend([self.langs.code((r[6] or "").lower()) for r in rows])
        added = [int(r[7].replace("-", "")) if r[7] and len(r[7]) == 10 and r[7][:4].isdigit() else 0 for r in rows]
        self.added.extend(added)
        if len(self.days) <= FEW_CODES:
            self.days.update(added)
        self.location.extend([self.locations.code(r[10]) if r[10] else NO_CODE for r in rows])
        self.length.extend([r[12] if r[12] is not None else searchable_length_of_doc(r[13]) for r in rows])
        for i, r in enumerate(rows):
            if r[8] and r[8] != "[]":
                self.people.add(first + i, json.loads(r[8]))
            if r[9] and r[9] != "[]":
                self.objects.add(first + i, json.loads(r[9]))
        self.n += len(rows)
        self.max_rowid = int(rows[-1][0])

    # -- vectors -----------------------------------------------------------------------
    def vectors(self) -> Vectors:
        """The vectors as they are now (a snapshot that stays valid while the catalog grows or
        moves its rows to a vector file)."""
        vec = self.vec.view() if self.vec is not None else np.zeros((0, self.dims), dtype=np.int8)
        return Vectors(self.dims, self.vfile, self.file_row.view(), self.vec_base, vec, self.vscale.view(),
                       self.has_vec.view(), shared=(self.scan, self.vec) if self.vec is not None else None)

    def offload(self, vf: VectorFile) -> bool:
        """Drop from memory the vectors of the rows that ``vf`` holds (they are read from the
        file from now on); False when the file covers nothing new or disagrees with memory."""
        if self.vec is None or vf is self.vfile or vf is self._refused or vf.dims != self.dims or len(vf.rowids) == 0:
            return False
        p0 = int(np.searchsorted(self.rowid.view()[: self.n], int(vf.rowids[-1]), side="right"))
        if p0 <= self.vec_base:
            return False
        rows = vf.rows_of(self.rowid.view()[:p0])
        # the file must hold what memory holds: check a spread of the rows kept in memory now
        mine = np.arange(self.vec_base, p0)
        probe = mine[np.linspace(0, len(mine) - 1, min(64, len(mine))).astype(np.int64)]
        probe = probe[(rows[probe] >= 0) & self.has_vec.view()[probe]]
        if len(probe) and not np.array_equal(vf.take(rows[probe]), self.vec.view()[probe - self.vec_base]):
            self._refused = vf  # not asked again at every search (a newer file is)
            return False
        tail = _Grow(np.int8, self.dims)
        tail.extend(self.vec.view()[p0 - self.vec_base :])
        file_row = _Grow(np.int32)
        file_row.extend(rows)
        self.vec, self.vec_base, self.file_row, self.vfile = tail, p0, file_row, vf
        trim_memory()
        return True

    def positions(self, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``rowids`` and whether each is known: a lookup table from rowid to
        position while rowids are dense enough (4 bytes per rowid), else a binary search."""
        have = self.rowid.view()
        if self.n == 0:
            return np.zeros(len(rowids), dtype=np.int64), np.zeros(len(rowids), dtype=bool)
        lut = self._lookup()
        if lut is not None:
            inside = (rowids >= 0) & (rowids < len(lut))
            pos = np.where(inside, lut[np.where(inside, rowids, 0)], -1).astype(np.int64)
            ok = pos >= 0
            return np.where(ok, pos, 0), ok
        pos = np.clip(np.searchsorted(have, rowids), 0, self.n - 1)
        return pos, have[pos] == rowids

    def _lookup(self) -> np.ndarray | None:
        top = self.max_rowid + 1
        if top > LOOKUP_SPARSENESS * max(self.n, 1024):
            self._lut = None
            return None
        lut = self._lut
        if lut is None or self._lut_n != self.n:
            if lut is None or len(lut) < top:
                grown = np.full(max(top, int(top * 1.25)), -1, dtype=np.int32)
                if lut is not None:
                    grown[: len(lut)] = lut
                lut = grown
            start = self._lut_n if self._lut is not None else 0
            lut[self.rowid.view()[start : self.n]] = np.arange(start, self.n, dtype=np.int32)
            self._lut, self._lut_n = lut, self.n
        return lut

    def video_names(self) -> tuple[list[str], np.ndarray]:
        """(distinct file names, the index of each video code's name), kept until a video is
        added or moved."""
        stamp = (len(self.videos.values), self.video_seq, len(self.video_paths))
        got = self._name_index
        if got is None or got[0] != stamp:
            index: dict[str, int] = {}
            name_of = np.array([index.setdefault(self.video_name(c), len(index))
                                for c in range(len(self.videos.values))], dtype=np.int64)
            got = self._name_index = (stamp, list(index), name_of)
        return got[1], got[2]

    def video_name(self, code: int) -> str:
        path = self.video_paths.get(code, "")
        got = self._names.get(code)
        if got is None or got[0] != path:
            got = self._names[code] = (path, PurePath(path).name)
        return got[1]


class Vectors:
    """The int8 vectors of the catalog's rows: the first ``base`` read from a vector file, the
    rest from memory."""

    def __init__(self, dims: int, vfile: VectorFile | None, file_row: np.ndarray, base: int,
                 vec: np.ndarray, scales: np.ndarray, has: np.ndarray,
                 shared: tuple[SharedScan, object] | None = None) -> None:
        self.dims, self.vfile, self.file_row, self.base = dims, vfile, file_row, base
        self.vec, self.scales, self.has = vec, scales, has
        self.shared = shared  # (the catalog's SharedScan, the append-only rows vec is a view of)

    def take(self, pos: np.ndarray) -> np.ndarray:
        """A copy of the int8 rows at ``pos`` (zeros where a row has no vector)."""
        out = np.zeros((len(pos), self.dims), dtype=np.int8)
        mem = pos >= self.base
        out[mem] = self.vec[pos[mem] - self.base]
        if self.vfile is not None and not mem.all():
            at = np.flatnonzero(~mem)
            rows = self.file_row[pos[at]]
            ok = rows >= 0
            out[at[ok]] = self.vfile.take(rows[ok])
        return out

    def every(self, query: np.ndarray) -> np.ndarray | None:
        """Cosines of every row with ``query`` (-inf where a row has no vector) in one pass
        that searches arriving at the same time share (:class:`vidx.store.vectors.SharedScan`);
        None when some rows are in the vector file (a large catalog searches through its graph).
        Needs no lock: the rows are append-only, and this snapshot sees the first of them."""
        if self.base != 0 or self.shared is None:
            return None
        n = len(self.vec)
        cos = self.shared[0].cosines(self.shared[1], self.vec, self.scales[:n], query)
        cos[~self.has[:n]] = -np.inf
        return cos

    def cosines(self, pos: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Cosines of the rows at ``pos`` with ``query``; -inf where a row has no vector."""
        cos = np.full(len(pos), -np.inf)
        if len(pos) == 0:
            return cos
        mem = pos >= self.base
        if mem.all():
            cos[:] = cosines(self.vec if len(pos) == len(self.vec) and self.base == 0 else self.vec[pos - self.base],
                             self.scales[pos], query)
        else:
            at = np.flatnonzero(mem)
            if len(at):
                cos[at] = cosines(self.vec[pos[at] - self.base], self.scales[pos[at]], query)
            assert self.vfile is not None
            at = np.flatnonzero(~mem)
            rows = self.file_row[pos[at]]
            ok = rows >= 0
            at, rows = at[ok], rows[ok]
            order = np.argsort(rows, kind="stable")
            at, rows = at[order], rows[order]

            def part(i: int, block: np.ndarray) -> None:
                sel = at[i : i + len(block)]
                cos[sel] = cosines(block, self.scales[pos[sel]], query)

            scan(self.vfile, rows, part)  # rows the file lacks (deleted before it was written) stay -inf
        cos[~self.has[pos]] = -np.inf
        return cos


LARGE_ALLOCATION = 4 << 20  # bytes: larger arrays are mapped and unmapped, never kept in the heap
_large_set = False


def vector_column(has_vectors_table: bool) -> str:
    """The SQL expression of an event row's stored vector (the ``vectors`` table, or the
    ``events.vec`` column of a store not yet upgraded)."""
    return "coalesce((SELECT v.vec FROM vectors v WHERE v.rowid = events.rowid), vec)" if has_vectors_table else "vec"


def file_disagrees(vf: VectorFile, file_rows: np.ndarray, blobs: list[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """Compare rows of a vector file with the stored vectors they were made from: (rows whose
    int8 values or scale differ, rows that have a stored vector at all)."""
    block = np.zeros((len(blobs), vf.dims), dtype=np.float32)
    known = np.zeros(len(blobs), dtype=bool)
    for j, blob in enumerate(blobs):
        v = decode(blob, vf.dims)
        if v is not None and len(v) == vf.dims:
            block[j], known[j] = v, True
    q, scale = quantize_stored(block)
    differ = (vf.take(file_rows) != q).any(axis=1) | ~np.isclose(vf.scales[file_rows], scale, rtol=1e-6, atol=0)
    return differ & known, known


def map_large_allocations() -> None:
    """Make glibc map every allocation over LARGE_ALLOCATION and unmap it when freed (once per
    process). By default the threshold follows the largest block freed (up to 32 MB), so a large
    library's search temporaries (a few MB each) would stay in the heap as slack: 25 MB of
    resident memory at a million events."""
    global _large_set
    if _large_set:
        return
    _large_set = True
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, LARGE_ALLOCATION)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


def trim_memory() -> None:
    """Give freed heap memory back to the system (glibc only), after work that allocated a lot."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _eid_key(event_id: str) -> int:
    try:
        return int(event_id[:15], 16)
    except ValueError:  # not hexadecimal (never written by vidx)
        return (1 << 60) - 1


def searchable_length(description: str, dialogue: str, ocr_text: str, meta: str) -> int:
    return len(tokens(description)) + len(tokens(dialogue)) + len(tokens(ocr_text)) + len(tokens(meta))


def searchable_length_of_doc(doc: str | None) -> int:
    if not doc:
        return 0
    d = json.loads(doc)
    meta = " ".join([*d.get("people", []), *d.get("objects", []), d.get("location", ""), d.get("action", ""),
                     d.get("emotion", "")])
    return searchable_length(d.get("description", ""), d.get("dialogue", ""), d.get("ocr_text", ""), meta)
