from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.fakes.embedder import HashEmbedder
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.schema import Event, event_id_for
from vidx.store.embedded import EmbeddedStore

XSS = [
    "<script>alert('x')</script>",
    '"><svg onload=alert(1)>',
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "</textarea><b>bold</b>",
    "{{7*7}}",
    "[click](javascript:alert(1))",
    "\u202etxt.exe",
]


def add_video(settings: Settings, video: Path, events: list[dict[str, Any]], emb: HashEmbedder) -> list[Event]:
    """Index events for ``video`` straight into the store and ledger (no analysis)."""
    store = EmbeddedStore(settings.store_path)
    store.ensure_schema(emb.model_id, emb.dims)
    vid = (video.name.encode().hex() + "0" * 32)[:32]
    evs = []
    for i, kw in enumerate(events):
        e = Event(event_id=event_id_for(vid, "t", kw.get("start_sec", 0), kw.get("end_sec", 1), i), video_id=vid,
                  video_path=str(video), **{"start_sec": 0.0, "end_sec": 1.0, **kw})
        e.embedding = [float(x) for x in emb.embed_query(e.embedding_text())]
        evs.append(e)
    store.replace_video_events(vid, evs)
    ledger = Ledger(settings.ledger_path)
    ledger.observe(str(video), 1, 1, "")
    ledger.set(str(video), state="done", video_id=vid, events=len(evs), progress=1.0)
    return evs


@pytest.fixture
def app(settings: Settings, hash_embedder: HashEmbedder) -> Flask:
    from search_ui import create_app

    EmbeddedStore(settings.store_path).ensure_schema(hash_embedder.model_id, hash_embedder.dims)
    Ledger(settings.ledger_path)
    return create_app(settings, embedder_factory=lambda: hash_embedder)
