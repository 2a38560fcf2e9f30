"""Rebuild a store from its own events with another embedding model: no video is decoded or
analysed again (a library analysed by Qwen3-VL on a GPU keeps every description). Each
video's stored events are read, their text embedded by the new model, and written into the
rebuild target in one write per video; the old index answers searches until the target is
switched in (:meth:`EventStore.finish_rebuild`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from vidx.embed import Embedder
from vidx.store.base import EventStore

log = logging.getLogger("vidx.reembed")


@dataclass
class ReembedReport:
    videos: int = 0
    events: int = 0
    failed: list[str] = field(default_factory=list)  # video ids whose events could not be written


def reembed(source: EventStore, target: EventStore, embedder: Embedder, video_ids: list[str],
            progress: Callable[[int, int, str], None] | None = None) -> ReembedReport:
    """Copy every listed video's events from ``source`` to ``target`` with new vectors."""
    report = ReembedReport()
    for i, vid in enumerate(video_ids):
        if progress is not None:
            progress(i, len(video_ids), vid)
        events = source.events_for_video(vid)
        if not events:
            continue
        vectors = embedder.embed([e.embedding_text() for e in events])
        fresh = [e.model_copy(update={"embedding": [float(x) for x in v], "embedding_model": embedder.model_id})
                 for e, v in zip(events, vectors)]
        res = target.replace_video_events(vid, fresh)
        if getattr(res, "failed", 0):
            report.failed.append(vid)
            log.warning("re-embedding video %s: %s", vid, res)
            continue
        report.videos += 1
        report.events += len(fresh)
    if progress is not None:
        progress(len(video_ids), len(video_ids), "")
    return report
