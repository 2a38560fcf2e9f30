"""Results grouped by moment: hits of one video whose times overlap become one result.

A spoken line is often found three times: as its speech or subtitle event and inside the
scene (and the VLM event) that contains it. Grouping walks the ranked hits once: a hit that
overlaps a moment's head (by at least half of the shorter of the two, or lies inside it)
joins that moment; otherwise it starts a new one. Each moment is headed by its most
specific event (a spoken or subtitle line before a VLM event before a scene, then the
shorter), keeps the others as context, and scores as its best hit. Two different lines of
one scene stay two moments (they do not overlap each other); the scene folds into the
better-ranked one.

This module only groups a ranked list; :class:`vidx.search.SearchService` decides how many
hits to rank (a window that grows with the page asked for)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vidx.store.base import Hit

SPECIFICITY = {"speech": 0, "subtitle": 0, "vlm": 1, "scene": 2}
MIN_OVERLAP = 0.5  # of the shorter event's length


@dataclass
class Moment:
    head: Hit
    score: float  # the best hit's
    context: list[Hit] = field(default_factory=list)

    @property
    def start(self) -> float:
        return min(h.event.start_sec for h in [self.head, *self.context])

    @property
    def end(self) -> float:
        return max(h.event.end_sec for h in [self.head, *self.context])


def specificity(h: Hit) -> tuple[int, float]:
    e = h.event
    return SPECIFICITY.get(e.source, 1), e.end_sec - e.start_sec


def same_moment(a: Hit, b: Hit) -> bool:
    """Two events of one video that show the same moment."""
    ea, eb = a.event, b.event
    if ea.video_id != eb.video_id:
        return False
    overlap = min(ea.end_sec, eb.end_sec) - max(ea.start_sec, eb.start_sec)
    shorter = min(ea.end_sec - ea.start_sec, eb.end_sec - eb.start_sec)
    if shorter <= 0:  # an instant: inside the other one
        return overlap >= 0
    return overlap >= MIN_OVERLAP * shorter


def group(hits: Iterable[Hit]) -> list[Moment]:
    """Moments in the order of their best hit (``hits`` is ranked best first)."""
    moments: list[Moment] = []
    by_video: dict[str, list[Moment]] = {}
    for h in hits:
        home = next((m for m in by_video.get(h.event.video_id, []) if same_moment(h, m.head)), None)
        if home is None:
            m = Moment(head=h, score=h.score)
            moments.append(m)
            by_video.setdefault(h.event.video_id, []).append(m)
        elif specificity(h) < specificity(home.head):
            home.context.insert(0, home.head)
            home.head = h
        else:
            home.context.append(h)
    for m in moments:
        m.context.sort(key=lambda x: (x.event.start_sec, specificity(x)))
    return moments
