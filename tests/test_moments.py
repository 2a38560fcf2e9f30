"""Grouping ranked hits into moments (vidx.moments), without a store."""

from __future__ import annotations

from vidx.moments import group, same_moment
from vidx.schema import Event, event_id_for
from vidx.store.base import Hit


def hit(video: str, start: float, end: float, source: str, score: float, i: int = 0) -> Hit:
    vid = (video * 32)[:32]
    e = Event(event_id=event_id_for(vid, "t", start, end, i), video_id=vid, video_path=f"/v/{video}.mp4",
              start_sec=start, end_sec=end, source=source, description=f"{source} {start}")
    return Hit(event=e, score=score)


def test_a_line_inside_a_scene_is_one_moment_headed_by_the_line() -> None:
    scene, vlm, line = hit("a", 20, 45, "scene", 0.9), hit("a", 24, 34, "vlm", 0.8, 1), hit("a", 26, 29, "subtitle", 0.7, 2)
    (m,) = group([scene, vlm, line])
    assert m.head is line and m.score == 0.9 and m.context == [scene, vlm]
    assert (m.start, m.end) == (20, 45)


def test_two_lines_of_one_scene_stay_two_moments_and_the_scene_folds_into_the_better() -> None:
    a, b, scene = hit("a", 21, 23, "speech", 0.9), hit("a", 30, 33, "speech", 0.8, 1), hit("a", 20, 45, "scene", 0.7, 2)
    ms = group([a, b, scene])
    assert [m.head for m in ms] == [a, b] and ms[0].context == [scene] and ms[1].context == []


def test_other_videos_and_neighbouring_lines_are_not_folded() -> None:
    a, other = hit("a", 10, 12, "speech", 0.9), hit("b", 10, 12, "speech", 0.8)
    touching, slight = hit("a", 12, 14, "speech", 0.7, 1), hit("a", 11.5, 14, "subtitle", 0.6, 2)
    assert not same_moment(a, other) and not same_moment(a, touching) and not same_moment(a, slight)
    assert len(group([a, other, touching])) == 3 and len(group([a, slight])) == 2
    # the same words as subtitle and as recognised speech: one moment
    twin = hit("a", 10.2, 12.3, "subtitle", 0.5, 3)
    assert len(group([a, twin])) == 1
    # an instant inside a line
    assert same_moment(a, hit("a", 11, 11, "scene", 0.4, 4))
