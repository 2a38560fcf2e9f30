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
    leftovers: list[str] = field(default_factory=list)  # more events than the analysis made (a rewrite's rest)
    # events that play a path whose file now holds other content: video id -> that path
    misplaced_ids: dict[str, str] = field(default_factory=dict)
    stale_model: str | None = None  # the store holds vectors of another embedding model
    indexes: list[str] = field(default_factory=list)  # derived indexes that disagree with the events

    @property
    def ok(self) -> bool:
        return not (self.missing or self.orphans or self.gone or self.leftovers or self.misplaced_ids
                    or self.stale_model or self.indexes)

    @property
    def misplaced(self) -> list[str]:
        return sorted(set(self.misplaced_ids.values()))

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "videos": self.videos, "missing": self.missing, "orphans": self.orphans,
                "gone": self.gone, "leftovers": self.leftovers, "misplaced": self.misplaced,
                "stale_model": self.stale_model, "indexes": self.indexes}


def verify(ledger: Ledger, store: VerifiedStore, embedding_model: str | None = None, dims: int = 0) -> Report:
    rows = ledger.rows()
    counts = store.video_event_counts()
    report = Report(videos=len(rows))
    known = {r.video_id for r in rows if r.video_id}
    for r in rows:
        if not Path(r.path).exists():
            report.gone.append(r.path)
        elif r.state == "done" and r.video_id and counts.get(r.video_id, 0) < r.events:
            report.missing.append(r.path)
        elif r.state == "done" and r.video_id and counts.get(r.video_id, 0) > r.events:
            report.leftovers.append(r.path)
    report.orphans = sorted(v for v in counts if v not in known)
    by_path = {r.path: r.video_id for r in rows}
    for vid, path in store.video_paths().items():
        if vid in known and path in by_path and by_path[path] != vid:
            report.misplaced_ids[vid] = path
    if embedding_model and not store.schema_matches(embedding_model, dims):
        report.stale_model = f"the store holds vectors of another model than {embedding_model}: run `vidx reindex`"
    report.indexes = store.check_indexes()
    return report
