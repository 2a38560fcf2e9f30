"""`vidx verify`: the ledger, the store and the watch folder must agree.

Every video the ledger calls done has exactly its events in the store, every video in the
store has a ledger row, and every file still exists. Repairs follow the daemon's lifecycle
rules and live with them (``ingest.lifecycle.repair``); this module only reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidx.ledger import Ledger
from vidx.store.base import EventBrowser, StoreAdmin


class VerifiedStore(EventBrowser, StoreAdmin, Protocol):
    """What `vidx verify` reads: event counts per video and the schema."""


@dataclass
class Report:
    videos: int = 0
    missing: list[str] = field(default_factory=list)  # done, but the store lacks some or all events
    orphans: list[str] = field(default_factory=list)  # video ids in the store that no ledger row knows
    gone: list[str] = field(default_factory=list)  # ledger rows whose file no longer exists
    stale_model: str | None = None  # the store holds vectors of another embedding model

    @property
    def ok(self) -> bool:
        return not (self.missing or self.orphans or self.gone or self.stale_model)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "videos": self.videos, "missing": self.missing, "orphans": self.orphans,
                "gone": self.gone, "stale_model": self.stale_model}


def verify(ledger: Ledger, store: VerifiedStore, embedding_model: str | None = None, dims: int = 0) -> Report:
    rows = ledger.rows()
    counts = store.video_event_counts()
    report = Report(videos=len(rows))
    known = {r.video_id for r in rows if r.video_id}
    for r in rows:
        if not Path(r.path).exists():
            report.gone.append(r.path)
        elif r.state == "done" and r.video_id and counts.get(r.video_id, 0) != r.events:
            report.missing.append(r.path)
    report.orphans = sorted(v for v in counts if v not in known)
    if embedding_model and not store.schema_matches(embedding_model, dims):
        report.stale_model = f"the store holds vectors of another model than {embedding_model}: run `vidx reindex`"
    return report
