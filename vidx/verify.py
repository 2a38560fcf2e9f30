"""`vidx verify`: the ledger, the store and the watch folder must agree.

Every video the ledger calls done has exactly its events in the store, every video in the
store has a ledger row, and every file still exists. ``repair`` hands what disagrees back to
the daemon (re-queue) or removes what nothing refers to any more; it never touches a video
file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidx.ledger import Ledger
from vidx.store.base import EventStore

log = logging.getLogger("vidx.verify")


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


def verify(ledger: Ledger, store: EventStore, embedding_model: str | None = None, dims: int = 0) -> Report:
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


def forget_file(ledger: Ledger, store: EventStore, path: str) -> None:
    """A video file was deleted: drop its row, and its events unless a copy with the same
    bytes remains (then that copy is re-queued, so the events point at a file that exists)."""
    row = ledger.remove(path)
    if row is None or not row.video_id:
        return
    others = [r for r in ledger.rows() if r.video_id == row.video_id]
    if others:
        ledger.set(others[0].path, state="pending")
    else:
        store.delete_video(row.video_id)


def repair(report: Report, ledger: Ledger, store: EventStore) -> list[str]:
    """Re-queue videos whose events are missing; forget rows of deleted files and events
    nothing refers to. Returns one line per action."""
    done: list[str] = []
    for path in report.missing:
        ledger.set(path, state="pending", attempts=0, error=None)
        done.append(f"re-queued {path}")
    for path in report.gone:
        forget_file(ledger, store, path)
        done.append(f"forgot {path} (file deleted)")
    for vid in report.orphans:
        n = store.delete_video(vid)
        done.append(f"deleted {n} orphan event(s) of video {vid}")
    for line in done:
        log.info("%s", line)
    return done
