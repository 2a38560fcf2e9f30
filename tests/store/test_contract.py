"""The EventStore contract, run against every store (see conftest.FACTORIES)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes.embedder import HashEmbedder
from vidx.schema import Event, event_id_for
from vidx.store.base import EventStore, StoreError

EMB = HashEmbedder()
V1 = "a" * 32
V2 = "b" * 32


def ev(video: str, i: int, start: float, text: str, dialogue: str = "", **kw: object) -> Event:
    e = Event(
        event_id=event_id_for(video * 2, "test/1", start, start + 2, i),
        video_id=video,
        video_path=f"/videos/{video}.mp4",
        start_sec=start,
        end_sec=start + 2,
        description=text,
        dialogue=dialogue,
        analyzer="test/1",
        **kw,  # type: ignore[arg-type]
    )
    e.embedding = [float(x) for x in EMB.embed_query(e.embedding_text())]
    e.embedding_model = EMB.model_id
    return e


@pytest.fixture
def filled(store: EventStore) -> EventStore:
    store.ensure_schema(EMB.model_id, EMB.dims)
    store.replace_video_events(V1, [
        ev(V1, 0, 0, "A red car drives along the coast road"),
        ev(V1, 1, 10, "Two people argue in a kitchen", dialogue="You never listen to me"),
        ev(V1, 2, 20, "The lighthouse keeper climbs the stairs", people=["keeper"], objects=["lamp"]),
    ])
    store.replace_video_events(V2, [
        ev(V2, 0, 5, "A lighthouse seen from a boat"),
        ev(V2, 1, 15, "我们明天早上在火车站见面", dialogue="我们明天早上在火车站见面"),
    ])
    return store


def test_keyword_finds_and_ranks(filled: EventStore) -> None:
    res = filled.search_keyword("lighthouse keeper", 10)
    assert res.total == 2
    assert res.hits[0].event.start_sec == 20 and res.hits[0].event.video_id == V1
    assert res.hits[0].score >= res.hits[1].score


def test_keyword_highlights_with_em(filled: EventStore) -> None:
    hit = filled.search_keyword("kitchen", 5).hits[0]
    assert any("<em>kitchen</em>" in f.lower() for f in hit.highlights["description"])


def test_keyword_searches_people_and_objects(filled: EventStore) -> None:
    assert [h.event.start_sec for h in filled.search_keyword("lamp", 5).hits] == [20]


def test_filter_by_video(filled: EventStore) -> None:
    res = filled.search_keyword("lighthouse", 10, video_id=V2)
    assert [h.event.video_id for h in res.hits] == [V2]
    knn = filled.search_knn(EMB.embed_query("lighthouse"), 10, video_id=V2)
    assert {h.event.video_id for h in knn.hits} == {V2}


def test_knn_nearest_first(filled: EventStore) -> None:
    res = filled.search_knn(EMB.embed_query("Two people argue in a kitchen"), 3)
    assert res.hits[0].event.start_sec == 10
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)


def test_hybrid_fuses_both_lists(filled: EventStore) -> None:
    res = filled.search_hybrid("lighthouse keeper", EMB.embed_query("lighthouse keeper"), 5)
    ids = [h.event.event_id for h in res.hits]
    assert len(ids) == len(set(ids))
    assert res.hits[0].event.start_sec == 20
    assert res.hits[0].score > 0


def test_chinese_query_finds_chinese_dialogue(filled: EventStore) -> None:
    res = filled.search_keyword("火车站", 5)
    assert [h.event.video_id for h in res.hits] == [V2]
    assert any("<em>" in f for f in res.hits[0].highlights.get("dialogue", []))


def test_replace_is_idempotent_and_drops_stale(filled: EventStore) -> None:
    before = filled.count()
    again = [ev(V1, 0, 0, "A red car drives along the coast road")]
    filled.replace_video_events(V1, again)
    filled.replace_video_events(V1, again)
    assert filled.count(V1) == 1
    assert filled.count() == before - 2
    assert filled.search_keyword("kitchen", 5).total == 0
    assert filled.search_knn(EMB.embed_query("kitchen argue"), 10, video_id=V1).hits[0].event.start_sec == 0


def test_get_event_and_counts(filled: EventStore) -> None:
    e = filled.search_keyword("kitchen", 1).hits[0].event
    got = filled.get_event(e.event_id)
    assert got is not None and got.dialogue == "You never listen to me"
    assert filled.get_event("0" * 32) is None
    assert filled.video_event_counts() == {V1: 3, V2: 2}


def test_languages_per_video(filled: EventStore) -> None:
    """The library's language column: each video's languages, from its events."""
    assert filled.video_languages() == {V1: [], V2: []}
    filled.replace_video_events(V2, [
        ev(V2, 0, 5, "A lighthouse seen from a boat", language="en"),
        ev(V2, 1, 15, "我们明天早上在火车站见面", dialogue="我们明天早上在火车站见面", language="zh"),
        ev(V2, 2, 25, "The boat turns back", dialogue="Back to the harbour", language="en"),
    ])
    assert filled.video_languages() == {V1: [], V2: ["en", "zh"]}
    filled.delete_video(V2)
    assert filled.video_languages() == {V1: []}


def test_delete_video(filled: EventStore) -> None:
    assert filled.delete_video(V2) == 2
    assert filled.count(V2) == 0
    assert all(h.event.video_id == V1 for h in filled.search_knn(EMB.embed_query("lighthouse"), 10).hits)


def test_markup_in_text_is_escaped_in_highlights(store: EventStore) -> None:
    store.ensure_schema(EMB.model_id, EMB.dims)
    payload = '<script>alert(1)</script> the villain <img src=x onerror=alert(2)>'
    store.replace_video_events(V1, [ev(V1, 0, 0, "a scene", dialogue=payload)])
    hit = store.search_keyword("villain script", 5).hits[0]
    frags = " ".join(hit.highlights["dialogue"])
    assert "<script>" not in frags and "<img" not in frags
    assert "&lt;script&gt;" in frags or "&lt;" in frags
    assert "<em>villain</em>" in frags


def test_query_syntax_is_not_interpreted(filled: EventStore) -> None:
    for q in ['"unbalanced', "kitchen AND NOT", "NEAR(a b", "col:kitchen", "*", "(", "-kitchen", "a" * 5000]:
        res = filled.search_keyword(q, 5)
        assert res.total >= 0


def test_refuses_another_embedding_model(filled: EventStore) -> None:
    with pytest.raises(StoreError, match="reindex"):
        filled.ensure_schema("other/model", 128)


def test_empty_store_searches(store: EventStore) -> None:
    store.ensure_schema(EMB.model_id, EMB.dims)
    assert store.search_keyword("anything", 5).hits == []
    assert store.search_knn(np.ones(EMB.dims, np.float32) / 8, 5).hits == []
    assert store.health()["status"] == "ok"


def test_rebuild_with_another_model_replaces_everything(filled: EventStore) -> None:
    other = HashEmbedder(dims=16)
    other.model_id = "other/model"
    assert filled.schema_matches(EMB.model_id, EMB.dims)
    assert not filled.schema_matches(other.model_id, other.dims)
    target = filled.begin_rebuild(other.model_id, other.dims)
    target.ensure_schema(other.model_id, other.dims)
    e = ev(V1, 0, 0, "The lighthouse keeper climbs the stairs")
    e.embedding, e.embedding_model = [float(x) for x in other.embed_query(e.embedding_text())], other.model_id
    assert target.replace_video_events(V1, [e]).written == 1
    done = filled.finish_rebuild(target)
    assert "points at" in done or "rebuilt" in done
    assert filled.schema_matches(other.model_id, other.dims)
    assert filled.count() == 1 and filled.video_event_counts() == {V1: 1}
    hits = filled.search_knn(other.embed_query("lighthouse keeper"), 5).hits
    assert [h.event.event_id for h in hits] == [e.event_id]
    assert filled.search_keyword("lighthouse", 5).total == 1
