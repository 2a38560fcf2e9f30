"""Names given to people reach the stored events in both stores (the embedded store and
Elasticsearch through the independent fake), on a library larger than any search window:
exact totals for person: and speaker:, and a rename or hide that replaces the old name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.fakes.embedder import HashEmbedder
from vidx.people import FacePrint, PeopleDB, VoicePrint
from vidx.people_sync import sync_pending
from vidx.schema import Event, event_id_for
from vidx.search import SearchService, parse_query
from vidx.store.base import EventStore

EMB = HashEmbedder()
N = 700  # lines per video, half of them hers


def _events(video: str) -> list[Event]:
    out = []
    for i in range(N):
        e = Event(event_id=event_id_for(video, "t/1", i * 3.0, i * 3.0 + 2, i), video_id=video,
                  video_path=f"/v/{video[:4]}.mp4", start_sec=i * 3.0, end_sec=i * 3.0 + 2, source="speech",
                  dialogue=f"line {i} about the harbour", analyzer="t/1")
        out.append(e)
    out.append(Event(event_id=event_id_for(video, "t/1", 0, N * 3.0, N), video_id=video, video_path=f"/v/{video[:4]}.mp4",
                     start_sec=0.0, end_sec=30.0, source="scene", description="A room by the harbour", analyzer="t/1"))
    for e in out:
        e.embedding = [float(x) for x in EMB.embed_query(e.embedding_text())]
        e.embedding_model = EMB.model_id
    return out


def _total(store: EventStore, q: str) -> int:
    return int(SearchService(store, lambda: EMB).search(parse_query({"q": q, "mode": "keyword", "size": "10"}))["total"])


def test_names_reach_both_stores_at_scale(store: EventStore, tmp_path: Path) -> None:
    store.ensure_schema(EMB.model_id, EMB.dims)
    rng = np.random.default_rng(0)
    her, him = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 256)).astype(np.float32))
    face = rng.standard_normal(128).astype(np.float32) * 0.05
    db = PeopleDB(tmp_path / "people.sqlite3")
    for video in ("a" * 32, "b" * 32):
        evs = _events(video)
        store.replace_video_events(video, evs)
        turns = {e.event_id: i % 2 for i, e in enumerate(evs[:N])}
        db.register_video(video, [VoicePrint(0, her, 9.0, (0.0, 2.0)), VoicePrint(1, him, 9.0, (3.0, 5.0))],
                          turns, "enc")
        db.register_faces(video, [FacePrint(t, face, 1.0, (0, 0, 50, 50)) for t in (1.0, 2.0, 3.0)], "face")
    refresh = getattr(store, "refresh", lambda: None)
    ada = db.speakers_of("a" * 32)[_events("a" * 32)[0].event_id][0]
    seen = next(p.id for p in db.persons() if p.has_face)
    db.merge(seen, ada)
    db.rename(ada, "Ada Quill")
    sync_pending(db, store, lambda: EMB)  # type: ignore[arg-type]
    refresh()
    assert _total(store, 'speaker:"Ada Quill"') == N  # half of each video's lines
    assert _total(store, 'person:"Ada Quill"') == N + 2  # and the two scenes her face is in
    assert _total(store, 'person:"Ada Quill" harbour') == N + 2
    db.rename(ada, "Ada Lovelace")
    sync_pending(db, store, lambda: EMB)  # type: ignore[arg-type]
    refresh()
    assert _total(store, 'person:"Ada Quill"') == 0 and _total(store, 'person:"Ada Lovelace"') == N + 2
    db.hide(ada, True)
    sync_pending(db, store, lambda: EMB)  # type: ignore[arg-type]
    refresh()
    assert _total(store, 'person:"Ada Lovelace"') == 0
    assert _total(store, "harbour") == 2 * N + 2  # nothing else changed
