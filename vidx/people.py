"""People: voices and faces recognised across the library, named once.

One SQLite file, ``people.sqlite3`` in the data folder, written by the daemon (new voices)
and by the web UI and CLI (names, merges, hiding, deletion):

* ``persons`` — a person: a name (or none: shown as "Speaker N"), hidden or not;
* ``voices`` — one voiceprint per speaker of a video (a 256-d unit vector), the person it
  belongs to, its speech time and a sample line to play;
* ``turns`` — which voice speaks each speech event;
* ``faces`` — each face found on a sampled frame: its descriptor (128-d), second, crop, and
  the person it belongs to (none while it waits for look-alikes);
* ``written`` — the face names last written into each non-speech event (so a new name
  replaces the old one and leaves the names a VLM wrote alone);
* ``pending`` — videos whose stored events must be given new names (after a rename, merge,
  hide or delete); the daemon rewrites them (:func:`vidx.people_sync.apply_names`).

A new video's speakers are matched against the voiceprints already known: a speaker joins
the person whose closest voiceprint is at least ``across`` similar (cosine), each person at
most once per video, best pairs first; an unmatched speaker becomes a new person. Prints
never leave the data folder; deleting a person deletes their prints.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidx.sqlite import connect

log = logging.getLogger("vidx.people")

DEFAULT_FACE_MATCH = 0.45  # descriptor distance: one person's photos <= 0.26, two people >= 0.61 (bench/people_bench.py)
DEFAULT_FACE_MIN = 3  # faces that wait unassigned until this many look alike: then they are a new person
DEFAULT_ACROSS = 0.85  # cosine between voiceprints of one voice in two videos (bench/people_bench.py)
MAX_NAME = 120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS persons(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    hidden INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS voices(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id INTEGER NOT NULL REFERENCES persons(id),
    video_id TEXT NOT NULL,
    label INTEGER NOT NULL,
    print BLOB NOT NULL,
    seconds REAL NOT NULL,
    sample_start REAL NOT NULL,
    sample_end REAL NOT NULL,
    model TEXT NOT NULL,
    sample_event TEXT NOT NULL DEFAULT '',
    UNIQUE(video_id, label)
);
CREATE INDEX IF NOT EXISTS voices_person ON voices(person_id);
CREATE TABLE IF NOT EXISTS turns(
    event_id TEXT PRIMARY KEY,
    video_id TEXT NOT NULL,
    voice_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_video ON turns(video_id);
CREATE INDEX IF NOT EXISTS turns_voice ON turns(voice_id);
CREATE TABLE IF NOT EXISTS pending(video_id TEXT PRIMARY KEY, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faces(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id TEXT NOT NULL,
    t REAL NOT NULL,
    descriptor BLOB NOT NULL,
    score REAL NOT NULL,
    box TEXT NOT NULL,
    thumb BLOB,
    person_id INTEGER,
    model TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_video ON faces(video_id);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
CREATE TABLE IF NOT EXISTS written(event_id TEXT PRIMARY KEY, video_id TEXT NOT NULL, names TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS written_video ON written(video_id);
"""


class PersonNotFound(KeyError):
    pass


class PeopleError(ValueError):
    """A request about people that cannot be done (shown to the user as is)."""


@dataclass
class VoicePrint:
    label: int
    print: np.ndarray
    seconds: float
    sample: tuple[float, float]
    sample_event: str = ""  # the speech event of the sample line


@dataclass
class FacePrint:
    t: float
    descriptor: np.ndarray
    score: float
    box: tuple[int, int, int, int]
    thumb: bytes = b""


@dataclass
class Person:
    id: int
    name: str | None
    hidden: bool
    voices: int
    faces: int
    videos: int
    moments: int
    seconds: float
    sample: tuple[str, float, float, str] | None  # (video_id, start, end, event id) of a line to play

    @property
    def display(self) -> str:
        return self.name or f"Speaker {self.id}"

    @property
    def has_voice(self) -> bool:
        return self.voices > 0

    @property
    def has_face(self) -> bool:
        return self.faces > 0


def display_name(pid: int, name: str | None) -> str:
    return name or f"Speaker {pid}"


def clean_name(name: Any) -> str:
    if not isinstance(name, str):
        raise PeopleError("name must be a string")
    s = " ".join(name.replace("\x00", "").split())
    if not s:
        raise PeopleError("name must not be empty")
    if len(s) > MAX_NAME:
        raise PeopleError(f"name is longer than {MAX_NAME} characters")
    if any(c in s for c in ',"'):
        raise PeopleError('a name cannot hold a comma or a double quote (they separate names in searches)')
    return s


class PeopleDB:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(_SCHEMA)

    def _conn(self) -> Any:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = connect(self.path, self.read_only)
            c.row_factory = __import__("sqlite3").Row
        return c

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction (taken at once, so a reader never blocks it half-way), rolled back on any error."""
        with self._lock:
            c = self._conn()
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        if self.read_only and not self.path.exists():
            return []
        return list(self._conn().execute(sql, tuple(args)))

    # -- the daemon: a video's speakers ------------------------------------------------------
    def register_video(self, video_id: str, prints: Sequence[VoicePrint], turns: dict[str, int],
                       model: str, across: float = DEFAULT_ACROSS) -> dict[int, int]:
        """Replace what is known of ``video_id``'s voices; returns {speaker label: person id}.
        ``turns`` maps speech event ids to speaker labels."""
        with self._tx() as c:
            old_persons = {r[0] for r in c.execute("SELECT person_id FROM voices WHERE video_id = ?", (video_id,))}
            # the video's own earlier voices count too: analysed again, its speakers stay who they were
            known = [(int(r[0]), int(r[1]), np.frombuffer(r[2], dtype=np.float32))
                     for r in c.execute("SELECT v.id, v.person_id, v.print FROM voices v WHERE v.model = ?",
                                        (model,))]
            c.execute("DELETE FROM turns WHERE video_id = ?", (video_id,))
            c.execute("DELETE FROM voices WHERE video_id = ?", (video_id,))
            mapping = self._match(prints, known, across)
            now = time.time()
            for p in prints:
                if p.label not in mapping:
                    cur = c.execute("INSERT INTO persons(name, hidden, created_at) VALUES (NULL, 0, ?)", (now,))
                    mapping[p.label] = int(cur.lastrowid)
            voice_ids: dict[int, int] = {}
            for p in prints:
                cur = c.execute(
                    "INSERT INTO voices(person_id, video_id, label, print, seconds, sample_start, sample_end, model,"
                    " sample_event) VALUES (?,?,?,?,?,?,?,?,?)",
                    (mapping[p.label], video_id, p.label, np.asarray(p.print, dtype=np.float32).tobytes(),
                     float(p.seconds), float(p.sample[0]), float(p.sample[1]), model, p.sample_event))
                voice_ids[p.label] = int(cur.lastrowid)
            c.executemany("INSERT OR REPLACE INTO turns(event_id, video_id, voice_id) VALUES (?,?,?)",
                          [(eid, video_id, voice_ids[label]) for eid, label in turns.items() if label in voice_ids])
            self._drop_empty(c, old_persons)
        return mapping

    @staticmethod
    def _match(prints: Sequence[VoicePrint], known: list[tuple[int, int, np.ndarray]],
               across: float) -> dict[int, int]:
        """Greedy best-first assignment of this video's speakers to known persons."""
        if not prints or not known:
            return {}
        best: dict[tuple[int, int], float] = {}
        for p in prints:
            q = np.asarray(p.print, dtype=np.float32)
            for _vid, pid, vec in known:
                if len(vec) != len(q):
                    continue
                s = float(vec @ q)
                if s > best.get((p.label, pid), -2.0):
                    best[(p.label, pid)] = s
        out: dict[int, int] = {}
        used: set[int] = set()
        for (label, pid), s in sorted(best.items(), key=lambda x: -x[1]):
            if s < across:
                break
            if label in out or pid in used:
                continue
            out[label] = pid
            used.add(pid)
        return out

    def _drop_empty(self, c: Any, pids: Iterable[int]) -> None:
        """Unnamed persons left without any voice are forgotten."""
        for pid in pids:
            left = c.execute("SELECT (SELECT COUNT(*) FROM voices WHERE person_id = ?) + "
                             "(SELECT COUNT(*) FROM faces WHERE person_id = ?)", (pid, pid)).fetchone()[0]
            if not left:
                c.execute("DELETE FROM persons WHERE id = ? AND name IS NULL", (pid,))

    def forget_video(self, video_id: str) -> None:
        """The video left the library: its voices and turns go (people who only spoke there too,
        unless named)."""
        with self._tx() as c:
            pids = {r[0] for r in c.execute("SELECT person_id FROM voices WHERE video_id = ? UNION "
                                            "SELECT person_id FROM faces WHERE video_id = ? AND person_id "
                                            "IS NOT NULL", (video_id, video_id))}
            c.execute("DELETE FROM turns WHERE video_id = ?", (video_id,))
            c.execute("DELETE FROM voices WHERE video_id = ?", (video_id,))
            c.execute("DELETE FROM faces WHERE video_id = ?", (video_id,))
            c.execute("DELETE FROM written WHERE video_id = ?", (video_id,))
            c.execute("DELETE FROM pending WHERE video_id = ?", (video_id,))
            self._drop_empty(c, pids)

    # -- names for events -----------------------------------------------------------------
    def speakers_of(self, video_id: str) -> dict[str, tuple[int, str, bool]]:
        """{speech event id: (person id, display name, hidden)} for one video."""
        rows = self._rows(
            "SELECT t.event_id, p.id, p.name, p.hidden FROM turns t JOIN voices v ON v.id = t.voice_id "
            "JOIN persons p ON p.id = v.person_id WHERE t.video_id = ?", (video_id,))
        return {r[0]: (int(r[1]), display_name(int(r[1]), r[2]), bool(r[3])) for r in rows}

    def names_of(self, video_id: str) -> dict[str, list[str]]:
        """{speech event id: the names its people field holds} (hidden people: none)."""
        return {eid: ([] if hidden else [name]) for eid, (_pid, name, hidden) in self.speakers_of(video_id).items()}

    def match_names(self, prints: Sequence[VoicePrint], model: str,
                    across: float = DEFAULT_ACROSS) -> dict[int, str]:
        """{speaker label: name} for the speakers who are named, visible people already (read only)."""
        known = [(int(r[0]), int(r[1]), np.frombuffer(r[2], dtype=np.float32)) for r in self._rows(
            "SELECT v.id, v.person_id, v.print FROM voices v JOIN persons p ON p.id = v.person_id "
            "WHERE v.model = ? AND p.name IS NOT NULL AND p.hidden = 0", (model,))]
        mapping = self._match(prints, known, across)
        names = {int(r[0]): r[1] for r in self._rows("SELECT id, name FROM persons WHERE name IS NOT NULL")}
        return {label: names[pid] for label, pid in mapping.items() if pid in names}

    def forget_voices(self, video_id: str) -> None:
        """The video was analysed again without voices: its voices and turns go."""
        self.register_video(video_id, [], {}, "")

    def forget_faces(self, video_id: str) -> None:
        """The video was analysed again without faces: its faces go."""
        with self._tx() as c:
            pids = {r[0] for r in c.execute("SELECT person_id FROM faces WHERE video_id = ? AND person_id "
                                            "IS NOT NULL", (video_id,))}
            c.execute("DELETE FROM faces WHERE video_id = ?", (video_id,))
            self._drop_empty(c, pids)

    def register_faces(self, video_id: str, faces: Sequence[FacePrint], model: str,
                       match: float = DEFAULT_FACE_MATCH, min_faces: int = DEFAULT_FACE_MIN) -> None:
        """Replace the video's faces and place them in the library, as Immich does: a face joins
        the person of the nearest known face within ``match``; faces that match no one wait
        until ``min_faces`` of them (from any videos) look alike, and then become a new person.
        Other videos whose waiting faces became a person get their names (pending)."""
        with self._tx() as c:
            old = {r[0] for r in c.execute("SELECT person_id FROM faces WHERE video_id = ? AND person_id "
                                           "IS NOT NULL", (video_id,))}
            # the video's own earlier faces count too: analysed again, its people stay who they were
            known = [(int(r[0]), np.frombuffer(r[1], dtype=np.float32)) for r in c.execute(
                "SELECT person_id, descriptor FROM faces WHERE person_id IS NOT NULL AND model = ?", (model,))]
            c.execute("DELETE FROM faces WHERE video_id = ?", (video_id,))
            kp = np.array([k[0] for k in known], dtype=np.int64)
            km = np.stack([k[1] for k in known]) if known else np.zeros((0, 128), dtype=np.float32)
            for f in faces:
                d = np.asarray(f.descriptor, dtype=np.float32)
                pid = None
                if len(km):
                    dist = np.linalg.norm(km - d, axis=1)
                    j = int(np.argmin(dist))
                    if dist[j] <= match:
                        pid = int(kp[j])
                c.execute("INSERT INTO faces(video_id, t, descriptor, score, box, thumb, person_id, model) "
                          "VALUES (?,?,?,?,?,?,?,?)",
                          (video_id, float(f.t), d.tobytes(), float(f.score), ",".join(map(str, f.box)),
                           f.thumb or None, pid, model))
            self._cluster_waiting(c, model, match, min_faces, video_id)
            self._drop_empty(c, old)

    def _cluster_waiting(self, c: Any, model: str, match: float, min_faces: int, video_id: str) -> None:
        rows = list(c.execute("SELECT id, video_id, descriptor FROM faces WHERE person_id IS NULL AND model = ?",
                              (model,)))
        if len(rows) < min_faces:
            return
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vids = [r[1] for r in rows]
        m = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
        dist = np.linalg.norm(m[:, None, :] - m[None, :, :], axis=2) if len(rows) <= 4000 else None
        free = np.ones(len(rows), dtype=bool)
        touched: set[str] = set()
        now = time.time()
        while True:
            if dist is None:
                break
            near = (dist <= match) & free[None, :] & free[:, None]
            counts = near.sum(axis=1)
            i = int(np.argmax(counts))
            if counts[i] < min_faces:
                break
            members = np.flatnonzero(near[i])
            pid = int(c.execute("INSERT INTO persons(name, hidden, created_at) VALUES (NULL, 0, ?)",
                                (now,)).lastrowid)
            c.executemany("UPDATE faces SET person_id = ? WHERE id = ?", [(pid, int(ids[j])) for j in members])
            free[members] = False
            touched.update(vids[j] for j in members)
        for v in touched - {video_id}:
            c.execute("INSERT OR REPLACE INTO pending(video_id, since) VALUES (?, ?)", (v, now))

    def faces_of(self, video_id: str) -> list[tuple[float, int, str, bool]]:
        """(second, person id, display name, hidden) of each recognised face in the video."""
        return [(float(r[0]), int(r[1]), display_name(int(r[1]), r[2]), bool(r[3])) for r in self._rows(
            "SELECT f.t, p.id, p.name, p.hidden FROM faces f JOIN persons p ON p.id = f.person_id "
            "WHERE f.video_id = ? ORDER BY f.t", (video_id,))]

    def written_of(self, video_id: str) -> dict[str, list[str]]:
        """Face names vidx last wrote into each non-speech event of the video."""
        import json

        return {r[0]: list(json.loads(r[1])) for r in self._rows("SELECT event_id, names FROM written WHERE "
                                                                "video_id = ?", (video_id,))}

    def set_written(self, video_id: str, names: dict[str, list[str]]) -> None:
        import json

        with self._tx() as c:
            c.execute("DELETE FROM written WHERE video_id = ?", (video_id,))
            c.executemany("INSERT INTO written(event_id, video_id, names) VALUES (?,?,?)",
                          [(k, video_id, json.dumps(v)) for k, v in names.items() if v])

    def thumbnail(self, pid: int) -> bytes | None:
        rows = self._rows("SELECT thumb FROM faces WHERE person_id = ? AND thumb IS NOT NULL "
                          "ORDER BY score DESC LIMIT 1", (pid,))
        return bytes(rows[0][0]) if rows else None

    def seen(self, pid: int) -> list[tuple[str, float]]:
        """(video id, second) of each face of the person."""
        return [(r[0], float(r[1])) for r in self._rows(
            "SELECT video_id, t FROM faces WHERE person_id = ? ORDER BY video_id, t", (pid,))]

    # -- pending name updates -------------------------------------------------------------
    def _mark(self, c: Any, pids: Iterable[int]) -> None:
        now = time.time()
        for pid in pids:
            c.execute("INSERT OR REPLACE INTO pending(video_id, since) SELECT DISTINCT video_id, ? FROM voices "
                      "WHERE person_id = ? UNION SELECT DISTINCT video_id, ? FROM faces WHERE person_id = ?",
                      (now, pid, now, pid))

    def pending(self) -> list[tuple[str, float]]:
        """(video id, since) of the videos whose events wait for new names, oldest first."""
        return [(r[0], float(r[1])) for r in self._rows("SELECT video_id, since FROM pending ORDER BY since")]

    def done(self, video_id: str, since: float) -> None:
        """The names asked for up to ``since`` are in the video's events (a later request stays)."""
        self._conn().execute("DELETE FROM pending WHERE video_id = ? AND since <= ?", (video_id, since))

    # -- the user: list, name, hide, merge, delete ------------------------------------------
    def persons(self, include_hidden: bool = True, only: int | None = None) -> list[Person]:
        """Everyone (named first, then by speech time and faces), or just person ``only``."""
        where, args = ("WHERE p.id = ? ", (only,)) if only is not None else ("", ())
        rows = self._rows(
            "SELECT p.id, p.name, p.hidden, "
            "(SELECT COUNT(*) FROM voices v WHERE v.person_id = p.id), "
            "(SELECT COUNT(*) FROM (SELECT video_id FROM voices WHERE person_id = p.id UNION "
            " SELECT video_id FROM faces WHERE person_id = p.id)), "
            "(SELECT COALESCE(SUM(seconds), 0) FROM voices v WHERE v.person_id = p.id), "
            "(SELECT COUNT(*) FROM turns t JOIN voices v2 ON v2.id = t.voice_id WHERE v2.person_id = p.id), "
            "(SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) "
            f"FROM persons p {where}ORDER BY p.name IS NULL, 6 DESC, 8 DESC, p.id", args)
        samples = {int(r[0]): (r[1], float(r[2]), float(r[3]), r[4]) for r in self._rows(
            "SELECT person_id, video_id, sample_start, sample_end, sample_event FROM voices v WHERE "
            + ("person_id = ? AND " if only is not None else "") + "seconds = "
            "(SELECT MAX(seconds) FROM voices v2 WHERE v2.person_id = v.person_id)", args)}
        out = [Person(id=int(r[0]), name=r[1], hidden=bool(r[2]), voices=int(r[3]), faces=int(r[7]),
                      videos=int(r[4]), seconds=round(float(r[5]), 1), moments=int(r[6]),
                      sample=samples.get(int(r[0]))) for r in rows]
        return [p for p in out if include_hidden or not p.hidden]

    def person(self, pid: int) -> Person:
        for p in self.persons(only=pid):
            return p
        raise PersonNotFound(pid)

    def moments(self, pid: int) -> list[tuple[str, str]]:
        """(video id, event id) of everything the person said."""
        return [(r[0], r[1]) for r in self._rows(
            "SELECT t.video_id, t.event_id FROM turns t JOIN voices v ON v.id = t.voice_id WHERE v.person_id = ?",
            (pid,))]

    def videos_of(self, pid: int) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT video_id FROM voices WHERE person_id = ?", (pid,))]

    def _exists(self, c: Any, pid: int) -> None:
        if c.execute("SELECT 1 FROM persons WHERE id = ?", (pid,)).fetchone() is None:
            raise PersonNotFound(pid)

    def rename(self, pid: int, name: str | None) -> None:
        name = clean_name(name) if name is not None else None
        with self._tx() as c:
            self._exists(c, pid)
            c.execute("UPDATE persons SET name = ? WHERE id = ?", (name, pid))
            self._mark(c, [pid])

    def hide(self, pid: int, hidden: bool) -> None:
        with self._tx() as c:
            self._exists(c, pid)
            c.execute("UPDATE persons SET hidden = ? WHERE id = ?", (int(bool(hidden)), pid))
            self._mark(c, [pid])

    def merge(self, pid: int, into: int) -> None:
        """Everything of ``pid`` becomes ``into``'s; ``pid`` is gone. The kept name is
        ``into``'s, or ``pid``'s when ``into`` has none."""
        if pid == into:
            raise PeopleError("a person cannot be merged into themselves")
        with self._tx() as c:
            self._exists(c, pid)
            self._exists(c, into)
            self._mark(c, [pid, into])
            c.execute("UPDATE persons SET name = COALESCE(name, (SELECT name FROM persons WHERE id = ?)) "
                      "WHERE id = ?", (pid, into))
            c.execute("UPDATE voices SET person_id = ? WHERE person_id = ?", (into, pid))
            c.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (into, pid))
            c.execute("DELETE FROM persons WHERE id = ?", (pid,))

    def split(self, pid: int, video_id: str) -> int:
        """The voice ``pid`` has in ``video_id`` becomes a person of its own; returns its id."""
        with self._tx() as c:
            self._exists(c, pid)
            n = c.execute("SELECT COUNT(*) FROM (SELECT video_id FROM voices WHERE person_id = ? UNION ALL "
                          "SELECT video_id FROM faces WHERE person_id = ?)", (pid, pid)).fetchone()[0]
            mine = c.execute("SELECT COUNT(*) FROM (SELECT video_id FROM voices WHERE person_id = ? AND "
                             "video_id = ? UNION ALL SELECT video_id FROM faces WHERE person_id = ? AND "
                             "video_id = ?)", (pid, video_id, pid, video_id)).fetchone()[0]
            if not mine:
                raise PeopleError(f"person {pid} is not heard or seen in video {video_id}")
            if mine == n:
                raise PeopleError("that is all the person has: nothing to split off")
            new = int(c.execute("INSERT INTO persons(name, hidden, created_at) VALUES (NULL, 0, ?)",
                                (time.time(),)).lastrowid)
            c.execute("UPDATE voices SET person_id = ? WHERE person_id = ? AND video_id = ?", (new, pid, video_id))
            c.execute("UPDATE faces SET person_id = ? WHERE person_id = ? AND video_id = ?", (new, pid, video_id))
            self._mark(c, [new])
        return new

    def delete(self, pid: int) -> None:
        """The person and their voiceprints are deleted; their lines lose the name."""
        with self._tx() as c:
            self._exists(c, pid)
            self._mark(c, [pid])
            vids = [r[0] for r in c.execute("SELECT id FROM voices WHERE person_id = ?", (pid,))]
            c.executemany("DELETE FROM turns WHERE voice_id = ?", [(v,) for v in vids])
            c.execute("DELETE FROM voices WHERE person_id = ?", (pid,))
            c.execute("DELETE FROM faces WHERE person_id = ?", (pid,))
            c.execute("DELETE FROM persons WHERE id = ?", (pid,))

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None
