"""ElasticStore specifics: what the official client sends (validated against Elastic's
OpenAPI specification when ../shared is present), partial bulk failures, 429, connection
refused, licence-gated RRF."""

from __future__ import annotations

import importlib.util
import json
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import SHARED
from tests.es_store import make_elastic_store
from tests.fakes.es_server import FakeES, make_client
from tests.store.test_contract import EMB, V1, ev
from vidx.config import EsHybrid, load_settings
from vidx.store.base import StoreError

CHECKER = SHARED / "tools" / "es_spec_check.py"


def _checker() -> Any:
    if not CHECKER.exists():
        pytest.skip(f"{CHECKER} not present: the OpenAPI check needs ../shared")
    spec = importlib.util.spec_from_file_location("es_spec_check", CHECKER)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


API_FOR = {"_index_template": "indices.put_index_template", "_bulk": "bulk", "_search": "search",
           "_aliases": "indices.update_aliases",
           "_msearch": "msearch", "_delete_by_query": "delete_by_query", "_count": "count"}


def _api(method: str, path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    for p in parts:
        if p in API_FOR:
            return API_FOR[p]
    if method == "PUT" and len(parts) == 1:
        return "indices.create"
    return None


def _exercise(store: Any) -> None:
    store.ensure_schema(EMB.model_id, EMB.dims)
    store.replace_video_events(V1, [ev(V1, 0, 0, "a lighthouse keeper", dialogue="good morning", people=["Ann"]),
                                    ev(V1, 1, 4, "a harbour at night", objects=["boat"])])
    q = EMB.embed_query("lighthouse")
    store.search_keyword("lighthouse keeper", 10)
    store.search_keyword("lighthouse", 10, video_id=V1)
    store.search_knn(q, 10)
    store.search_knn(q, 10, video_id=V1, text="lighthouse")
    store.search_hybrid("lighthouse", q, 10)
    store.search_hybrid("lighthouse", q, 10, video_id=V1)
    from vidx.search import SearchService, parse_query

    svc = SearchService(store, lambda: EMB)
    for mode in ("keyword", "semantic", "hybrid"):
        for q in ("lighthouse keeper", 'lighthouse video:v1.mp4 person:Ann source:scene lang:en -night "a keeper"',
                  "person:Ann", "zzzz"):
            svc.search(parse_query({"q": q, "mode": mode, "from": "1", "to": "90", "added_from": "2026-01-01",
                                    "added_to": "2026-12-31", "page": "2", "size": "5"}))
        svc.search(parse_query({"q": "lighthouse", "mode": mode, "min_score": "0"}))
    store.count()
    store.count(V1)
    store.video_event_counts()
    store.delete_video(V1)


@pytest.mark.parametrize("licence", ["basic", "enterprise"])
def test_every_request_body_matches_the_es_specification(licence: str) -> None:
    esc = _checker()
    store = make_elastic_store(FakeES(license=licence))
    _exercise(store)
    checked: dict[str, int] = {}
    for c in store.fake.captured:
        api = _api(c.method, c.path)
        if api is None or not c.body:
            continue
        problems = esc.validate(api, c.body if api in ("bulk", "msearch") else json.loads(c.body))
        assert problems == [], f"{c.method} {c.path}: {problems}"
        checked[api] = checked.get(api, 0) + 1
    expected = {"indices.put_index_template", "indices.create", "bulk", "search", "delete_by_query", "count"}
    assert expected <= set(checked), checked
    assert ("msearch" in checked) == (licence == "basic")  # basic: client-side fusion of two searches


def test_template_file_matches_the_specification() -> None:
    esc = _checker()
    import mappings

    body = mappings.index_template("vidx-events", 384, "sentence-transformers/all-MiniLM-L6-v2")
    assert esc.validate("indices.put_index_template", body) == []
    vec = body["template"]["mappings"]["properties"]["embedding"]
    assert vec["index_options"]["type"] == "int8_hnsw" and vec["similarity"] == "cosine" and vec["dims"] == 384


def test_hybrid_uses_rrf_retriever_only_when_the_licence_allows() -> None:
    for licence, forced, expect_rrf in [("basic", EsHybrid.auto, False), ("enterprise", EsHybrid.auto, True),
                                        ("trial", EsHybrid.auto, True), ("enterprise", EsHybrid.client, False)]:
        store = make_elastic_store(FakeES(license=licence), hybrid=forced)
        store.ensure_schema(EMB.model_id, EMB.dims)
        store.replace_video_events(V1, [ev(V1, 0, 0, "lighthouse keeper")])
        res = store.search_hybrid("lighthouse", EMB.embed_query("lighthouse"), 5)
        assert res.hits and res.hits[0].event.start_sec == 0
        bodies = [c.json() for c in store.fake.captured if c.path.endswith("_search") and c.body]
        used_rrf = any("retriever" in (b or {}) for b in bodies)
        assert used_rrf == expect_rrf, (licence, forced)


def test_forced_rrf_on_basic_is_a_clear_error() -> None:
    store = make_elastic_store(FakeES(license="basic"), hybrid=EsHybrid.rrf)
    store.ensure_schema(EMB.model_id, EMB.dims)
    with pytest.raises(StoreError, match="refused|licen"):
        store.search_hybrid("x", EMB.embed_query("x"), 5)


def test_partial_bulk_failure_is_reported_and_old_events_are_kept() -> None:
    store = make_elastic_store()
    store.ensure_schema(EMB.model_id, EMB.dims)
    old = [ev(V1, i, i * 10.0, f"old event {i}") for i in range(3)]
    store.replace_video_events(V1, old)
    new = [ev(V1, i, i * 10.0 + 1, f"new event {i}") for i in range(10)]
    store.fake.item_failures[new[3].event_id] = (400, "mapper_parsing_exception", "failed to parse field [x]")
    report = store.replace_video_events(V1, new)
    assert report.written == 9
    assert report.failed == [(new[3].event_id, "mapper_parsing_exception: failed to parse field [x]")]
    assert report.deleted == 0  # nothing stale removed while the new set is incomplete
    # all-or-nothing for readers (defect 14): the 9 new events that were stored are rolled
    # back, the 3 old ones stay as they were
    assert store.count(V1) == 3
    assert sorted(e.description for e in store.events_for_video(V1)) == [f"old event {i}" for i in range(3)]


def test_a_partial_rewrite_with_colliding_ids_restores_the_old_events() -> None:
    """Re-analysis keeps event ids: a failed rewrite must put back the old documents it overwrote."""
    store = make_elastic_store()
    store.ensure_schema(EMB.model_id, EMB.dims)
    old = [ev(V1, i, i * 10.0, f"old event {i}") for i in range(3)]
    store.replace_video_events(V1, old)
    new = [ev(V1, i, i * 10.0, f"new event {i}") for i in range(5)]
    assert new[0].event_id == old[0].event_id
    store.fake.item_failures[new[4].event_id] = (400, "mapper_parsing_exception", "failed to parse field [x]")
    report = store.replace_video_events(V1, new)
    assert report.failed and store.count(V1) == 3
    assert sorted(e.description for e in store.events_for_video(V1)) == [f"old event {i}" for i in range(3)]
    store.fake.item_failures.clear()
    assert not store.replace_video_events(V1, new).failed
    assert sorted(e.description for e in store.events_for_video(V1)) == [f"new event {i}" for i in range(5)]


def test_pipeline_does_not_mark_a_partial_write_done(settings: Any, talk_video: Path) -> None:
    import shutil

    from ingest.daemon import build_pipeline
    from tests.fakes.embedder import HashEmbedder

    store = make_elastic_store()

    class FailAll(dict):  # every item fails
        def __contains__(self, k: object) -> bool:
            return True

        def __getitem__(self, k: object) -> tuple[int, str, str]:
            return (400, "mapper_parsing_exception", "bad doc")

    store.fake.item_failures = FailAll()
    dest = settings.watch_dir / "t.mp4"
    shutil.copy(talk_video, dest)
    emb = HashEmbedder()
    out = build_pipeline(settings, store=store, embedder_factory=lambda: emb).process(dest)
    assert out.state in ("pending", "failed") and "not stored" in (out.error or "")


def test_elasticsearch_outage_keeps_videos_pending_without_using_up_attempts(settings: Any,
                                                                           talk_video: Path) -> None:
    import shutil

    from ingest.daemon import build_pipeline
    from tests.fakes.embedder import HashEmbedder

    store = make_elastic_store()
    settings = settings.model_copy(update={"max_attempts": 1})
    dest = settings.watch_dir / "t.mp4"
    shutil.copy(talk_video, dest)
    shutil.copy(talk_video.with_suffix(".srt"), dest.with_suffix(".srt"))
    emb = HashEmbedder()
    pipeline = build_pipeline(settings, store=store, embedder_factory=lambda: emb)
    store.fake.down = True  # stopped while the daemon runs
    for _ in range(2):
        out = pipeline.process(dest)
        assert out.state == "pending" and "unreachable" in (out.error or "")
    assert pipeline.ledger.rows()[0].attempts == 0
    store.fake.down = False
    assert pipeline.process(dest).state == "done"
    assert store.search_keyword("lighthouse keeper", 3).hits[0].event.start_sec == 26.0


def test_429_is_retried_with_backoff_and_everything_is_stored_once() -> None:
    store = make_elastic_store()
    store.ensure_schema(EMB.model_id, EMB.dims)
    store.fake.reject_bulk_items = 4
    evs = [ev(V1, i, float(i), f"event {i}") for i in range(6)]
    report = store.replace_video_events(V1, evs)
    assert report.written == 6 and report.failed == []
    assert store.count(V1) == 6
    bulks = [c for c in store.fake.captured if c.path == "/_bulk"]
    assert len(bulks) >= 2  # the rejected items went again


def test_documents_fit_the_strict_mapping() -> None:
    store = make_elastic_store()
    store.ensure_schema(EMB.model_id, EMB.dims)
    report = store.replace_video_events(V1, [ev(V1, 0, 0, "x", people=["a"], objects=["b"], location="c",
                                                action="d", emotion="e")])
    assert report.failed == [] and report.written == 1


def test_auto_mapped_index_is_refused() -> None:
    fake = FakeES()
    fake.indices["vidx-events"] = {"mappings": {"properties": {}}, "docs": {}}
    store = make_elastic_store(fake)
    with pytest.raises(StoreError, match="concrete index"):
        store.ensure_schema(EMB.model_id, EMB.dims)


def test_api_key_and_compatibility_headers_are_sent() -> None:
    store = make_elastic_store()
    store.ping()
    h = {k.lower(): v for k, v in store.fake.captured[0].headers.items()}
    assert h["authorization"] == "ApiKey test-key"
    import elasticsearch

    major = elasticsearch.__versionstr__.split(".")[0]  # the client speaks its own major version
    assert f"compatible-with={major}" in h.get("accept", "")


def test_connection_refused_is_a_clear_error_and_no_fallback() -> None:
    from vidx.store import open_store

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave the block
    settings = load_settings(es_url=f"http://127.0.0.1:{port}", es_timeout=2)
    t = time.monotonic()
    with pytest.raises(StoreError, match="unreachable") as exc:
        open_store(settings)
    assert "embedded" in str(exc.value)  # says it will not fall back
    assert time.monotonic() - t < 30


def test_setup_is_idempotent() -> None:
    store = make_elastic_store()
    first = store.setup(EMB.dims, EMB.model_id)
    second = store.setup(EMB.dims, EMB.model_id)
    assert first["created_index"] and second["created_index"] is None
    assert len(store.fake.aliases["vidx-events"]) == 1


def test_knn_body_has_k_num_candidates_and_prefilter() -> None:
    store = make_elastic_store()
    body = store.knn_body(np.ones(4, np.float32), 10, V1)
    knn = body["knn"]
    assert knn["k"] == 10 and knn["num_candidates"] >= knn["k"] and knn["filter"] == [{"term": {"video_id": V1}}]
    assert body["_source"] == {"excludes": ["embedding"]}


def test_shards_and_replicas_are_settings_applied_to_new_indices() -> None:
    from vidx.store.elastic import ElasticStore

    fake = FakeES()
    s = load_settings(es_url="http://127.0.0.1:9200", es_shards=3, es_replicas=1)
    store = ElasticStore(make_client(fake), alias=s.es_index, url=s.es_url, shards=s.es_shards,
                         replicas=s.es_replicas)
    store.ensure_schema(EMB.model_id, EMB.dims)
    settings = fake.templates[s.es_index]["template"]["settings"]
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == (3, 1)
    rebuilt = store.begin_rebuild(EMB.model_id, EMB.dims)
    assert (rebuilt.shards, rebuilt.replicas) == (3, 1)
    assert load_settings().es_shards == 1 and load_settings().es_replicas == 0  # the documented defaults
