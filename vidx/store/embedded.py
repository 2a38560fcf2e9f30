"""Embedded store: SQLite (WAL) with FTS5 for BM25 and float32 vectors for exact kNN.

Text, metadata and vectors of one event live in one row and are written in one
transaction, so a crash (even kill -9) can never leave them disagreeing.  Vectors are
searched exactly with NumPy over an in-memory matrix that each process keeps in step
with the database incrementally (new rows by rowid, deleted rows by a deletion log), so
a reader process sees the daemon's writes as soon as they commit.

Chinese, Japanese and Korean text is split into overlapping bigrams before it reaches
FTS5 (the same idea as Elasticsearch's ``cjk_bigram``), so CJK queries match.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vidx.plan import Plan
from vidx.schema import SCHEMA_VERSION, Event
from vidx.sqlite import connect
from vidx.store.ann import AnnIndex
from vidx.store.base import (
    RRF_K,
    EventStore,
    Hit,
    PlanResult,
    SchemaMismatch,
    SearchMode,
    SearchResult,
    StoreError,
    WriteReport,
    highlight_event,
    query_tokens,
    tokens,
)
from vidx.store.catalog import LARGE_CATALOG, Catalog, VectorFileMismatch, searchable_length_of_doc, trim_memory
from vidx.store.vecfile import VectorFile
from vidx.store.vectors import decode, encode

log = logging.getLogger("vidx.store.embedded")

MAX_QUERY_TOKENS = 64
HYBRID_WINDOW = 50
RESCORE_FACTOR = 4  # int8 candidates per requested hit, rescored with the stored vectors
TOTAL_CAP = 10_000
WARM_MIN_ROWS = 100_000  # catalogs this large remember their most frequent words' matches at once
TRIM_EVERY = 64  # searches between returning freed memory to the system (large libraries only)
TRIM_MIN_ROWS = 100_000
OPTIMIZE_SEGMENTS = 6  # FTS5 segments from separate writes before the idle daemon merges them into one
VOCAB_TTL = 30.0  # seconds a process keeps the index's vocabulary before reading it again

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    video_id TEXT NOT NULL,
    start_sec REAL NOT NULL,
    doc TEXT NOT NULL,
    vec BLOB
);
CREATE INDEX IF NOT EXISTS events_video ON events(video_id, start_sec);
CREATE TABLE IF NOT EXISTS vectors(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS videos(video_id TEXT PRIMARY KEY, video_path TEXT NOT NULL, changed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deletions(seq INTEGER PRIMARY KEY AUTOINCREMENT, row INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(
    description, dialogue, ocr_text, meta,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

# bm25 column weights: description, dialogue, ocr_text, meta (people, objects, place...)
_RANK = "bm25(2.0, 1.5, 1.0, 1.0)"


def _fts_text(s: str) -> str:
    return " ".join(tokens(s))


def _fts_row(e: Event) -> tuple[str, str, str, str]:
    meta = " ".join([*e.people, *e.objects, e.location, e.action, e.emotion])
    return (_fts_text(e.description), _fts_text(e.dialogue), _fts_text(e.ocr_text), _fts_text(meta))


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression: every token quoted, OR-ed (BM25 ranks the best)."""
    toks = query_tokens(text, limit=MAX_QUERY_TOKENS)
    if not toks:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in toks)


class EmbeddedStore:
    """SQLite FTS5 + exact NumPy kNN. One writer process and many readers may share it."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        self._local = threading.local()
        self._catalog = Catalog()
        self.ann = AnnIndex(self.path)
        self._write_lock = threading.Lock()
        self._generation: str | None = None
        self._searches = 0
        self._writes = 0  # this process's write transactions: a connection's data_version misses its own
        self._has_schema = False
        self._tables: tuple[bool, bool, bool] | None = None
        self._vocab: tuple[float, list[str], str | None] | None = None
        if read_only:  # the UI and `vidx search`: never create or change anything
            return
        conn = self._conn()
        if not read_only:
            conn.executescript(_SCHEMA)
            self._upgrade(conn)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            have = conn.execute("SELECT v FROM events_fts_config WHERE k = 'rank'").fetchone()
            if have is None or have[0] != _RANK:  # set once: changing it invalidates other connections
                conn.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('rank', ?)", (_RANK,))

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Bring a store made by an older vidx up to date in place, from the stored events (no
        re-analysis): the word count of every event and the table of videos."""
        cols = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
        if "length" not in cols:
            conn.execute("ALTER TABLE events ADD COLUMN length INTEGER")
        missing = conn.execute("SELECT count(*) FROM events WHERE length IS NULL").fetchone()[0]
        if missing:
            log.info("upgrading the embedded store: counting the words of %d events", missing)
            done = 0
            while True:
                rows = conn.execute("SELECT rowid, doc FROM events WHERE length IS NULL LIMIT 5000").fetchall()
                if not rows:
                    break
                with self._write() as w:
                    w.executemany("UPDATE events SET length = ? WHERE rowid = ?",
                                  [(searchable_length_of_doc(d), r) for r, d in rows])
                done += len(rows)
                log.info("upgrading the embedded store: %d of %d events", done, missing)
        self._move_vectors(conn)
        if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM videos) AND EXISTS (SELECT 1 FROM events)").fetchone()[0]:
            with self._write() as w:
                w.execute("INSERT OR REPLACE INTO videos(video_id, video_path, changed) "
                          "SELECT video_id, json_extract(doc, '$.video_path'), 1 FROM events GROUP BY video_id")

    def _move_vectors(self, conn: sqlite3.Connection) -> None:
        """Vectors of an older store (float32 in ``events.vec``) move to the ``vectors`` table as
        float16, in batches with progress; the file is compacted once afterwards."""
        missing = conn.execute("SELECT count(*) FROM events WHERE vec IS NOT NULL").fetchone()[0]
        if not missing:
            return
        dims = int(self._meta("dims") or 0)
        log.info("upgrading the embedded store: moving %d vectors to float16", missing)
        done, last = 0, 0
        while True:
            rows = conn.execute("SELECT rowid, vec FROM events WHERE rowid > ? AND vec IS NOT NULL ORDER BY rowid "
                                "LIMIT 20000", (last,)).fetchall()
            if not rows:
                break
            with self._write() as w:
                w.executemany("INSERT OR REPLACE INTO vectors(rowid, vec) VALUES (?, ?)",
                              [(r, encode(decode(v, dims))) for r, v in rows])
                w.executemany("UPDATE events SET vec = NULL WHERE rowid = ?", [(r,) for r, _ in rows])
            done += len(rows)
            last = rows[-1][0]
            log.info("upgrading the embedded store: %d of %d vectors moved", done, missing)
        # rows shrink in place and free few whole pages: the space comes back only with a rewrite
        log.info("upgrading the embedded store: compacting %s (once)", self.path)
        try:
            conn.execute("VACUUM")
        except sqlite3.OperationalError as exc:  # a reader holds the file: it stays larger, nothing is lost
            log.warning("the embedded store could not be compacted now (%s); it is upgraded all the same", exc)

    # -- connections ------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = connect(self.path, self.read_only)
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot open the embedded store at {self.path}: {exc}") from exc
            # the index's vocabulary, for typo tolerance (temp tables: read-only connections can make them)
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vidx_vocab_row USING fts5vocab(main, 'events_fts', 'row')")
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vidx_vocab_instance "
                         "USING fts5vocab(main, 'events_fts', 'instance')")
            self._local.conn = conn
        return conn

    def _missing(self) -> bool:
        """A read-only store whose file (or schema) the daemon has not made yet: it is empty."""
        if not self.read_only or self._has_schema:
            return False
        if not self.path.exists():
            return True
        self._has_schema = self._conn().execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone() is not None
        return not self._has_schema

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, under the process's write lock; rolled back on any error."""
        if self.read_only:
            raise StoreError("store opened read-only")
        conn = self._conn()
        with self._write_lock, self._counted():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _counted(self) -> Iterator[None]:
        """Counts a write transaction of this process before and after it (see :meth:`_sync`);
        used under the write lock."""
        self._writes += 1
        try:
            yield
        finally:
            self._writes += 1

    def _meta(self, key: str) -> str | None:
        if self._missing():
            return None
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- schema -----------------------------------------------------------------
    def ensure_schema(self, embedding_model: str, dims: int) -> None:
        version = self._meta("schema_version")
        if version is not None and int(version) != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"the embedded store at {self.path} has schema version {version}, this vidx needs "
                f"{SCHEMA_VERSION}: run `vidx reindex --rebuild`"
            )
        have_model, have_dims = self._meta("embedding_model"), self._meta("dims")
        if have_model is None:
            if self.read_only:
                return
            with self._write() as conn:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('embedding_model', ?)", (embedding_model,))
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('dims', ?)", (str(dims),))
            return
        if have_model != embedding_model or int(have_dims or 0) != dims:
            raise SchemaMismatch(
                f"the embedded store at {self.path} holds vectors of {have_model} ({have_dims} dims), "
                f"but the embedder is {embedding_model} ({dims} dims). Run `vidx reindex` to re-embed, "
                "or set VIDX_EMBED_MODEL back."
            )

    def embedding_model(self) -> str | None:
        return self._meta("embedding_model")

    def schema_matches(self, embedding_model: str, dims: int) -> bool:
        version = self._meta("schema_version")
        if version is not None and int(version) != SCHEMA_VERSION:
            return False
        have_model = self._meta("embedding_model")
        return have_model is None or (have_model == embedding_model and int(self._meta("dims") or 0) == dims)

    # -- rebuild (vidx reindex after a model change) --------------------------------
    def begin_rebuild(self, embedding_model: str, dims: int) -> EmbeddedStore:
        """Empty the store in one transaction and record the new embedding model.

        One machine, one file: the rebuild happens in place, so searches find fewer
        events until ``vidx reindex`` has re-indexed every video (Elasticsearch instead
        builds a new index and swaps its alias). Reader processes notice the new
        generation and drop their in-memory vectors."""
        with self._write() as conn:
            gen = int(self._meta("generation") or 0) + 1
            conn.execute("DELETE FROM events_fts")
            conn.execute("DELETE FROM events")
            conn.execute("DELETE FROM vectors")
            conn.execute("DELETE FROM deletions")
            conn.execute("DELETE FROM videos")
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                ("embedding_model", embedding_model), ("dims", str(dims)), ("generation", str(gen)),
                ("schema_version", str(SCHEMA_VERSION))])
        log.info("embedded store emptied for a rebuild with %s (%d dims)", embedding_model, dims)
        return self

    def snapshot(self, path: Path) -> EmbeddedStore:
        """A consistent copy of the whole file at ``path`` (SQLite's backup API), opened read-only."""
        path.unlink(missing_ok=True)
        dst = sqlite3.connect(path)
        try:
            self._conn().backup(dst)
        finally:
            dst.close()
        return EmbeddedStore(path, read_only=True)

    def restore_from(self, path: Path) -> None:
        """Put a :meth:`snapshot` back in place of this store's content (readers follow)."""
        before = int(self._meta("generation") or 0)
        src = sqlite3.connect(path)
        try:
            src.backup(self._conn())
        finally:
            src.close()
        with self._write() as conn:  # a generation no reader has seen: they reload their columns
            gen = max(before, int(self._meta("generation") or 0)) + 1
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(gen),))
        self._catalog = Catalog()

    def finish_rebuild(self, target: EventStore, keep_old: bool = False) -> str:
        return f"rebuilt {self.path} in place"

    def abort_rebuild(self, target: EventStore) -> str:
        return f"{self.path} holds only the videos re-indexed so far: run `vidx reindex` again"

    # -- writes -----------------------------------------------------------------
    def replace_video_events(self, video_id: str, events: Sequence[Event]) -> WriteReport:
        if self.read_only:
            raise StoreError("store opened read-only")
        report = WriteReport()
        rows = []
        for e in events:
            if e.video_id != video_id:
                raise StoreError(f"event {e.event_id} belongs to {e.video_id}, not {video_id}")
            vec = None
            if e.embedding is not None:
                vec = encode(e.embedding)
            rows.append((e, vec))
        conn = self._conn()
        with self._write_lock, self._counted():
            conn.execute("BEGIN IMMEDIATE")
            try:
                old = [r[0] for r in conn.execute("SELECT rowid FROM events WHERE video_id = ?", (video_id,))]
                if old:
                    conn.executemany("DELETE FROM events_fts WHERE rowid = ?", [(r,) for r in old])
                    conn.executemany("DELETE FROM vectors WHERE rowid = ?", [(r,) for r in old])
                    conn.execute("DELETE FROM events WHERE video_id = ?", (video_id,))
                    conn.executemany("INSERT INTO deletions(row) VALUES (?)", [(r,) for r in old])
                for e, vec in rows:
                    doc = json.dumps(e.doc(with_embedding=False), ensure_ascii=False)
                    fts = _fts_row(e)
                    cur = conn.execute(
                        "INSERT INTO events(event_id, video_id, start_sec, doc, length) VALUES (?,?,?,?,?)",
                        (e.event_id, e.video_id, e.start_sec, doc, sum(len(f.split()) for f in fts)),
                    )
                    if vec is not None:
                        conn.execute("INSERT INTO vectors(rowid, vec) VALUES (?, ?)", (cur.lastrowid, vec))
                    conn.execute(
                        "INSERT INTO events_fts(rowid, description, dialogue, ocr_text, meta) VALUES (?,?,?,?,?)",
                        (cur.lastrowid, *fts),
                    )
                if rows:
                    conn.execute("INSERT INTO videos(video_id, video_path, changed) VALUES (?, ?, "
                                 "(SELECT coalesce(max(changed), 0) + 1 FROM videos)) ON CONFLICT(video_id) DO "
                                 "UPDATE SET video_path = excluded.video_path, changed = excluded.changed "
                                 "WHERE video_path != excluded.video_path",
                                 (video_id, rows[0][0].video_path))
                else:
                    conn.execute("DELETE FROM videos WHERE video_id = ?", (video_id,))
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK")
                raise StoreError(f"duplicate event id in one write for video {video_id}: {exc}") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        report.written, report.deleted = len(rows), len(old)
        return report

    def delete_video(self, video_id: str) -> int:
        return self.replace_video_events(video_id, []).deleted

    def repoint_video(self, video_id: str, video_path: str) -> int:
        with self._write() as conn:
            n = int(conn.execute("UPDATE events SET doc = json_set(doc, '$.video_path', ?) WHERE video_id = ?",
                                 (video_path, video_id)).rowcount)
            conn.execute("UPDATE videos SET video_path = ?, changed = (SELECT max(changed) + 1 FROM videos) "
                         "WHERE video_id = ?", (video_path, video_id))
            return n

    def optimize_index(self) -> bool:
        """Merge the full-text index into one segment once separate writes have split it into
        :data:`OPTIMIZE_SEGMENTS` or more (FTS5 ``optimize``). A lookup of one row, as the
        phrase check of a keyword page does, then probes one segment instead of a dozen (about
        5x faster at a million events); the merge takes about 1.5 s at a million events.
        The daemon calls it while idle. Returns whether it merged."""
        if self.read_only or self._missing():
            return False
        try:
            segments = int(self._conn().execute("SELECT count(DISTINCT segid) FROM events_fts_idx").fetchone()[0])
        except sqlite3.Error:
            return False
        if segments < OPTIMIZE_SEGMENTS:
            return False
        t0 = time.perf_counter()
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO events_fts(events_fts) VALUES('optimize')")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot merge the full-text index of {self.path}: {exc}") from exc
        log.info("full-text index: %d segments merged into one in %.1fs", segments, time.perf_counter() - t0)
        return True

    # -- reads ------------------------------------------------------------------
    def _sync(self) -> Catalog:
        """The catalog, brought up to date with the database (new rows, deletions, renames)."""
        conn = self._conn()
        # nothing committed since this thread's connection last looked: SQLite's data_version moves
        # with every other connection's commit, the write counter with this process's own
        stamp = (conn.execute("PRAGMA data_version").fetchone()[0], self._writes, id(self._catalog))
        if getattr(self._local, "synced", None) == stamp and not self._missing():
            return self._catalog
        gen = self._meta("generation")
        if gen != self._generation:  # a rebuild emptied the store: start the catalog afresh
            with self._catalog.lock:
                self._catalog, self._generation = Catalog(), gen
        tables = self._table_flags()
        cat = self._catalog
        with cat.lock:
            if cat.n == 0 and cat.vfile is None:
                vf = self.ann.attach(gen)  # a large store's vectors stay in their file as rows load
                if vf is not None:
                    cat.attach(vf)
            try:
                cat.sync(conn, *tables, dims=0 if cat.dims else int(self._meta("dims") or 0))
            except VectorFileMismatch as exc:
                # a damaged vector file: forget it and the graph built with it (both are rebuilt
                # from the database), and load every vector from the database instead
                log.warning("the vector file %s; it is set aside and rebuilt from the stored vectors", exc)
                self.ann.discard(exc.vfile)
                cat.reset()
                cat.sync(conn, *tables, dims=int(self._meta("dims") or 0))
        self._local.synced = stamp if self._writes == stamp[1] and cat is self._catalog else None
        if cat.n >= WARM_MIN_ROWS and not cat.warming:
            cat.warming = True  # once per catalog (a rebuild starts a new one)
            threading.Thread(target=self._warm, args=(cat,), name="vidx-warm", daemon=True).start()
        return cat

    def _warm(self, cat: Catalog) -> None:
        from vidx.store.embedded_search import warm

        t0 = time.perf_counter()
        try:
            n = warm(self._conn(), cat)
            log.debug("remembered the matches of %d common words in %.1fs", n, time.perf_counter() - t0)
        except (sqlite3.Error, StoreError) as exc:  # a cache: searches read FTS5 as before
            log.debug("warming the common words failed: %s", exc)
        finally:
            cat.warmed.set()

    def _vocabulary(self) -> list[str]:
        """The index's stemmed terms (for typo tolerance), re-read at most every VOCAB_TTL seconds."""
        now = time.monotonic()
        cached = self._vocab
        if cached is not None and now - cached[0] < VOCAB_TTL and cached[2] == self._generation:
            return cached[1]
        terms = [r[0] for r in self._conn().execute("SELECT term FROM temp.vidx_vocab_row")]
        self._vocab = (now, terms, self._generation)
        return terms

    def expect_vector_searches(self, n: int) -> None:
        """``n`` searches with query vectors embedded together are about to run: the first to
        compare every vector waits a moment for the others, to share one pass with them."""
        self._catalog.scan.expect(n)

    def search(self, plan: Plan, vector: np.ndarray | None = None) -> PlanResult:
        """Execute a query plan (:mod:`vidx.store.embedded_search`): exact totals, the page,
        facets over every match."""
        from vidx.store.embedded_search import Executor

        if self._missing():
            return PlanResult(total=0, exact=True, hits=[])
        cat = self._sync()
        gen = self._generation

        def ann(q: np.ndarray) -> np.ndarray | None:
            return self.ann.candidates(cat, gen, q)

        passed: np.ndarray | None = None  # the query's cosines with every vector, when all are compared
        if vector is not None and len(vector) == cat.dims and plan.filters.empty and (
                plan.mode == SearchMode.semantic or (plan.mode == SearchMode.hybrid and plan.has_text)):
            with cat.lock:
                snapshot = cat.vectors() if not self.ann.usable(cat, gen) else None
            if snapshot is not None:  # every vector is compared: outside the lock, so that searches meet
                passed = snapshot.every(np.asarray(vector, dtype=np.float32))
        with cat.lock:  # the catalog's arrays grow in place: one search or sync at a time reads them
            if vector is not None:
                self.ann.maybe_build(cat, gen)
            res, rows = Executor(self._conn(), cat, plan, self._vocabulary, ann, every=passed).run(vector)
        docs = self._docs([r for r, _, _ in rows])
        res.hits = [Hit(event=docs[r], score=sc, scores=parts) for r, sc, parts in rows if r in docs]
        self._searches += 1
        every = TRIM_EVERY if cat.n < LARGE_CATALOG else TRIM_EVERY // 4  # a million events: keep the heap tight
        if self._searches % every == 0 and cat.n >= TRIM_MIN_ROWS:
            trim_memory()  # a search's large temporaries go back to the system, not to the heap's slack
        return res

    def _docs(self, rowids: list[int]) -> dict[int, Event]:
        conn = self._conn()
        out: dict[int, Event] = {}
        for i in range(0, len(rowids), 500):
            chunk = rowids[i : i + 500]
            q = f"SELECT rowid, doc FROM events WHERE rowid IN ({','.join('?' * len(chunk))})"
            for rid, doc in conn.execute(q, chunk):
                out[rid] = Event.model_validate_json(doc)
        return out

    def _hits(self, ranked: list[tuple[int, float]], text: str) -> list[Hit]:
        docs = self._docs([r for r, _ in ranked])
        return [
            Hit(event=docs[r], score=round(sc, 6), highlights=highlight_event(docs[r], text) if text else {})
            for r, sc in ranked
            if r in docs
        ]

    def _keyword_ranked(self, text: str, size: int, video_id: str | None) -> tuple[list[tuple[int, float]], int]:
        match = fts_query(text)
        if match is None:
            return [], 0
        conn = self._conn()
        try:
            # rank inside FTS5 and touch documents only for the top rows;
            # with a video filter, CROSS JOIN makes FTS5 drive the plan
            if video_id:
                # a video's events are written in one transaction, so their rowids form a tight
                # range that FTS5 can use directly; the join then checks the video exactly
                lo, hi = conn.execute(
                    "SELECT min(rowid), max(rowid) FROM events WHERE video_id = ?", (video_id,)
                ).fetchone()
                if lo is None:
                    return [], 0
                frm = "events_fts CROSS JOIN events e ON e.rowid = events_fts.rowid"
                where = "events_fts MATCH ? AND events_fts.rowid BETWEEN ? AND ? AND e.video_id = ?"
                args = [match, lo, hi, video_id]
            else:
                frm, where, args = "events_fts", "events_fts MATCH ?", [match]
            top = conn.execute(
                f"SELECT events_fts.rowid, rank FROM {frm} WHERE {where} ORDER BY rank LIMIT ?", (*args, size)
            ).fetchall()
            if len(top) < size:
                total = len(top)
            else:  # counted up to a cap, like Elasticsearch's track_total_hits
                total = conn.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {frm} WHERE {where} LIMIT {TOTAL_CAP})", args
                ).fetchone()[0]
        except sqlite3.OperationalError as exc:
            raise StoreError(f"keyword search failed: {exc}") from exc
        return [(int(r), -float(rank)) for r, rank in top], int(total)

    def _knn_ranked(self, vector: np.ndarray, size: int, video_id: str | None) -> list[tuple[int, float]]:
        from vidx.plan import Filters
        from vidx.plan import Plan as _Plan
        from vidx.store.embedded_search import Executor

        cat = self._sync()
        plan = _Plan(mode=SearchMode.semantic, words=(), phrase="", threshold=0.0,
                     filters=Filters(video_ids=(video_id,) if video_id else ()))
        with cat.lock:
            pos = np.flatnonzero(cat.alive.view())
            if video_id:
                pos = pos[Executor(self._conn(), cat, plan).allowed(pos)]
            cos = Executor(self._conn(), cat, plan).cosines(pos, vector)
            keep = np.isfinite(cos)
            pos, cos = pos[keep], cos[keep]
            k = min(size * RESCORE_FACTOR, len(pos))
            if k == 0:
                return []
            top = np.argpartition(-cos, k - 1)[:k]
            candidates = [int(cat.rowid.view()[pos[i]]) for i in top]
        q = np.asarray(vector, dtype=np.float32)
        # rescoring of the int8 candidates with the stored vectors
        conn = self._conn()
        scored: list[tuple[int, float]] = []
        for i in range(0, len(candidates), 500):
            chunk = candidates[i : i + 500]
            for rid, vec in conn.execute(
                f"SELECT rowid, {self._vec_sql('e')} FROM events e WHERE rowid IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                v = decode(vec, self._dims())
                if v is not None:
                    scored.append((int(rid), float(v @ q)))
        scored.sort(key=lambda x: (-x[1], x[0]))
        return scored[:size]

    def search_keyword(
        self, text: str, size: int, video_id: str | None = None, highlight: bool = True
    ) -> SearchResult:
        if self._missing():
            return SearchResult(0, [])
        ranked, total = self._keyword_ranked(text, size, video_id)
        return SearchResult(total=total, hits=self._hits(ranked, text if highlight else ""))

    def search_knn(
        self, vector: np.ndarray, size: int, video_id: str | None = None, text: str = ""
    ) -> SearchResult:
        if self._missing():
            return SearchResult(0, [])
        hits = self._hits(self._knn_ranked(vector, size, video_id), text)
        return SearchResult(total=len(hits), hits=hits)

    def search_hybrid(
        self, text: str, vector: np.ndarray, size: int, video_id: str | None = None
    ) -> SearchResult:
        if self._missing():
            return SearchResult(0, [])
        window = max(HYBRID_WINDOW, size)
        kw, kw_total = self._keyword_ranked(text, window, video_id)
        knn = self._knn_ranked(vector, window, video_id)
        scores: dict[int, float] = {}
        for ranked in (kw, knn):
            for rank, (rid, _) in enumerate(ranked, start=1):
                scores[rid] = scores.get(rid, 0.0) + 1.0 / (RRF_K + rank)
        fused = sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:size]
        return SearchResult(total=max(len(scores), kw_total), hits=self._hits(fused, text))

    def get_event(self, event_id: str) -> Event | None:
        if self._missing():
            return None
        row = self._conn().execute("SELECT doc FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return Event.model_validate_json(row[0]) if row else None

    def event_vector(self, event_id: str) -> np.ndarray | None:
        if self._missing():
            return None
        row = self._conn().execute(f"SELECT {self._vec_sql('e')} FROM events e WHERE event_id = ?",
                                   (event_id,)).fetchone()
        return decode(row[0], self._dims()) if row else None

    def events_for_video(self, video_id: str) -> list[Event]:
        if self._missing():
            return []
        rows = self._conn().execute(
            "SELECT doc FROM events WHERE video_id = ? ORDER BY start_sec", (video_id,)
        ).fetchall()
        return [Event.model_validate_json(r[0]) for r in rows]

    def event_vectors(self, video_id: str) -> dict[str, np.ndarray]:
        if self._missing():
            return {}
        rows = self._conn().execute(f"SELECT event_id, {self._vec_sql('e')} FROM events e WHERE video_id = ?",
                                    (video_id,)).fetchall()
        dims = self._dims()
        return {r[0]: v for r in rows if (v := decode(r[1], dims)) is not None}

    def _table_flags(self) -> tuple[bool, bool, bool]:
        """Whether the store has the videos table, the length column and the vectors table (an
        older store lacks them until the daemon upgrades it: look again until it has them)."""
        if self._tables != (True, True, True):
            conn = self._conn()
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            cols = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
            self._tables = ("videos" in names, "length" in cols, "vectors" in names)
        return self._tables

    def _vec_sql(self, alias: str) -> str:
        """The SQL of one event's stored vector (the vectors table, or events.vec in an older store)."""
        if self._table_flags()[2]:
            return f"coalesce((SELECT v.vec FROM vectors v WHERE v.rowid = {alias}.rowid), {alias}.vec)"
        return f"{alias}.vec"

    def _dims(self) -> int:
        return int(self._meta("dims") or 0)

    def video_event_counts(self) -> dict[str, int]:
        if self._missing():
            return {}
        return {v: n for v, n in self._conn().execute("SELECT video_id, count(*) FROM events GROUP BY video_id")}

    def video_paths(self) -> dict[str, str]:
        if self._missing():
            return {}
        self._sync()  # the videos table exists once the store is upgraded
        return {v: p for v, p in self._conn().execute("SELECT video_id, video_path FROM videos")}

    def video_languages(self) -> dict[str, list[str]]:
        if self._missing():
            return {}
        cat = self._sync()
        with cat.lock:  # from the catalog's columns: no scan of the documents
            alive = cat.alive.view()
            pairs = np.unique(np.stack([cat.video.view()[alive], cat.lang.view()[alive]]).astype(np.int64), axis=1)
            out: dict[str, list[str]] = {}
            for v, lang in pairs.T:
                name = cat.langs.values[int(lang)] if lang >= 0 else ""
                langs = out.setdefault(cat.videos.values[int(v)], [])
                if name:
                    langs.append(name)
        return {v: sorted(ls) for v, ls in out.items()}

    def count(self, video_id: str | None = None) -> int:
        if self._missing():
            return 0
        if video_id:
            return int(self._conn().execute("SELECT count(*) FROM events WHERE video_id = ?", (video_id,)).fetchone()[0])
        return int(self._conn().execute("SELECT count(*) FROM events").fetchone()[0])

    def health(self) -> dict[str, Any]:
        try:
            n = self.count()
        except sqlite3.Error as exc:
            return {"status": "error", "store": "embedded", "error": str(exc)}
        return {"status": "ok", "store": "embedded", "path": str(self.path), "events": n}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def check_indexes(self, repair: bool = False) -> list[str]:
        """Problems with what is derived from the events (the vector graph's vector file):
        every row of the file is compared with the database's vector. ``repair`` removes what
        disagrees; it is built again from the stored vectors at the next search."""
        from vidx.store.catalog import SYNC_BATCH, file_disagrees, vector_column

        if self._missing():
            return []
        meta = self.ann._read_meta()
        vpaths = self.ann._vector_files()
        if meta is None or vpaths is None or not vpaths[0].exists():
            return []
        vf = VectorFile.open(vpaths[0], vpaths[1], int(meta.get("dims", 0)), str(meta.get("token", "")))
        if vf is None:
            return []  # no usable file: it is written again at the next build, nothing to repair
        conn = self._conn()
        sql = f"SELECT rowid, {vector_column(self._table_flags()[2])} FROM events WHERE rowid BETWEEN ? AND ?"
        bad = checked = 0
        try:
            for i in range(0, len(vf.rowids), SYNC_BATCH):
                ids = vf.rowids[i : i + SYNC_BATCH]
                found = dict(conn.execute(sql, (int(ids[0]), int(ids[-1]))).fetchall())
                differ, known = file_disagrees(vf, np.arange(i, i + len(ids)), [found.get(r) for r in ids.tolist()])
                bad += int(differ.sum())  # rows deleted since are not the file's fault
                checked += int(known.sum())
                if i and i % 200_000 == 0:
                    log.info("checking the vector file: %d of %d rows", i, len(vf.rowids))
        finally:
            vf.close()
        if not bad:
            return []
        problem = f"the vector file {vpaths[0].name} disagrees with the stored vectors in {bad} of {checked} rows"
        if repair:
            self.ann.discard(vf)
            return [problem + ": removed; it is built again from the stored vectors at the next search"]
        return [problem + " (`vidx verify --fix` removes it; it is built again from the stored vectors)"]
