"""Elasticsearch store: one document per event behind an alias, hybrid search on any licence.

* Writes go through the alias (``VIDX_ES_INDEX``, default ``vidx-events``) into an index
  made from the versioned template in ``mappings/``; after a schema or embedding-model
  change ``vidx reindex`` rebuilds into a new index and swaps the alias in one call, so
  searches never see a half-built index.
* Bulk writes use ``helpers.streaming_bulk`` with retries on 429 and count every item:
  a 200 answer with ``errors: true`` never loses a document silently.  Stale events of a
  video are deleted only after all new ones are acknowledged; a rewrite that fails part-way
  is rolled back (its new events deleted, the old documents it overwrote put back), so
  readers see the old set or the new one, never both; ``vidx verify`` finds leftovers.
* Hybrid search fuses a BM25 search and a kNN search in vidx (reciprocal-rank fusion,
  free licence); the server-side ``rrf`` retriever is used when the licence allows it
  (``VIDX_ES_HYBRID=auto``) or when forced (``rrf``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

import numpy as np

import mappings
from vidx.config import EsHybrid, Settings
from vidx.plan import FACET_SIZE, TOTAL_CAP, Filters, Plan
from vidx.schema import Event
from vidx.store.base import (
    RRF_K,
    EventStore,
    Hit,
    PlanResult,
    SchemaMismatch,
    SearchMode,
    SearchResult,
    StoreError,
    StoreUnavailable,
    WriteReport,
    rrf_fuse,
)
from vidx.text import TYPO_CREDIT, typo_edits

log = logging.getLogger("vidx.store.elastic")

TEXT_FIELDS = ["description^2", "description.std", "dialogue^1.5", "dialogue.std", "ocr_text", "ocr_text.std",
               "action", "location", "people.text", "objects.text"]
HIGHLIGHT_FIELDS: dict[str, dict[str, Any]] = {
    "description": {"number_of_fragments": 3, "fragment_size": 160},
    "dialogue": {"number_of_fragments": 3, "fragment_size": 160},
    "ocr_text": {"number_of_fragments": 2, "fragment_size": 160},
}
# encoder html: model and subtitle text is untrusted, only our <em> tags are markup
HIGHLIGHT: dict[str, Any] = {"encoder": "html", "pre_tags": ["<em>"], "post_tags": ["</em>"],
                             "fields": HIGHLIGHT_FIELDS}
HYBRID_WINDOW = 50
COSINE_SCRIPT = "cosineSimilarity(params.query_vector, 'embedding') + 1.0"
KNN_WINDOW = 1_000  # neighbours a semantic search asks for at least; its total says "1,000+" beyond
# the fields a query word is looked for in (stemmed .std fields and the CJK-bigram fields)
WORD_FIELDS = ["description", "description.std", "dialogue", "dialogue.std", "ocr_text", "ocr_text.std",
               "action", "location", "people.text", "objects.text"]
FACET_AGGS: dict[str, Any] = {
    "source": {"terms": {"field": "source", "size": FACET_SIZE}},
    "language": {"terms": {"field": "language", "size": FACET_SIZE + 1}},
    "video": {"terms": {"field": "video_name", "size": FACET_SIZE}},
    "person": {"terms": {"field": "people", "size": FACET_SIZE}},
    "location": {"terms": {"field": "location.keyword", "size": FACET_SIZE + 1}},
    "object": {"terms": {"field": "objects", "size": FACET_SIZE}},
    "added": {"date_histogram": {"field": "indexed_at", "calendar_interval": "day", "format": "yyyy-MM-dd",
                                 "min_doc_count": 1}},
}
COUNT_PAGE = 1_000  # videos per page of the composite aggregation
ENTERPRISE = {"enterprise", "trial"}


def _phrase_clause(text: str) -> dict[str, Any]:
    return {"multi_match": {"query": text, "type": "phrase", "fields": WORD_FIELDS}}


def _wild(value: str) -> str:
    return "*" + "".join("\\" + c if c in "*?\\" else c for c in value) + "*"


def plan_filters(f: Filters) -> list[dict[str, Any]]:
    """The plan's filters as Elasticsearch ``filter`` clauses (no scoring, cached by the engine)."""
    out: list[dict[str, Any]] = []
    video: list[dict[str, Any]] = []
    if f.video_ids:
        video.append({"terms": {"video_id": list(f.video_ids)}})
    for v in f.video:
        video.append({"term": {"video_id": v.lower()}} if re.fullmatch(r"[0-9a-fA-F]{32}", v)
                     else {"wildcard": {"video_name": {"value": _wild(v), "case_insensitive": True}}})
    if video:
        out.append({"bool": {"should": video, "minimum_should_match": 1}})
    for p in f.person:
        out.append({"wildcard": {"people": {"value": _wild(p), "case_insensitive": True}}})
    if f.source:
        out.append({"terms": {"source": list(f.source)}})
    if f.lang:
        out.append({"bool": {"should": [{"prefix": {"language": {"value": x[:2].lower(), "case_insensitive": True}}}
                                        for x in f.lang], "minimum_should_match": 1}})
    for ph in f.phrases:
        out.append(_phrase_clause(ph))
    if f.start is not None:
        out.append({"range": {"end_sec": {"gt": f.start}}})
    if f.end is not None:
        out.append({"range": {"start_sec": {"lt": f.end}}})
    if f.added_from or f.added_to:
        rng: dict[str, Any] = {}
        if f.added_from:
            rng["gte"] = f.added_from
        if f.added_to:
            rng["lt"] = f.added_before()
        out.append({"range": {"indexed_at": rng}})
    return out


def words_clause(plan: Plan) -> dict[str, Any]:
    """The query's words: each adds 1/n to the score (0.8/n when found only with a typo:
    ``fuzziness`` AUTO:5,8, first letter fixed), and ``function_score.min_score`` keeps the
    events whose coverage reaches the threshold's (:meth:`vidx.plan.Plan.min_coverage`)."""
    clauses: list[dict[str, Any]] = []
    for w in plan.words:
        exact: dict[str, Any] = {"constant_score": {"filter": {"multi_match": {"query": w, "fields": WORD_FIELDS}},
                                    "boost": round(1.0 / plan.n, 6)}}
        if typo_edits(w):
            fuzzy = {"constant_score": {"filter": {"multi_match": {
                "query": w, "fields": WORD_FIELDS, "fuzziness": "AUTO:5,8", "prefix_length": 1}},
                "boost": round(TYPO_CREDIT / plan.n, 6)}}
            clauses.append({"dis_max": {"queries": [exact, fuzzy]}})
        else:
            clauses.append(exact)
    return {"function_score": {"query": {"bool": {"should": clauses, "minimum_should_match": 1}},
                               "min_score": round(plan.min_coverage(), 6)}}


def _facets(aggs: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for name, agg in aggs.items():
        buckets = agg.get("buckets") or []
        pairs = [(str(b.get("key_as_string", b.get("key"))), int(b["doc_count"])) for b in buckets]
        pairs = [p for p in pairs if p[0] and p[1] > 0]
        pairs.sort(key=lambda x: (-x[1], x[0]))
        if pairs:
            out[name] = pairs[:FACET_SIZE]
    return out


def _es_error(exc: Exception, what: str, url: str) -> StoreError:
    from elastic_transport import ConnectionError as TransportConnectionError
    from elastic_transport import TlsError

    if isinstance(exc, TlsError):
        return StoreError(f"Elasticsearch at {url}: TLS failed ({exc}); set VIDX_ES_CA_CERT or VIDX_ES_FINGERPRINT")
    if isinstance(exc, TransportConnectionError):  # timeouts too (ConnectionTimeout is a subclass)
        return StoreUnavailable(
            f"Elasticsearch at {url} is unreachable ({what}): {exc}. Check VIDX_ES_URL; vidx does not fall "
            "back to the embedded store while VIDX_ES_URL is set."
        )
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
    if status == 401:
        return StoreError(f"Elasticsearch at {url} rejected the credentials ({what}): check VIDX_ES_API_KEY "
                          "or VIDX_ES_USERNAME/VIDX_ES_PASSWORD")
    if status == 403:
        return StoreError(f"Elasticsearch at {url} refused {what}: the API key or user lacks the privilege")
    return StoreError(f"Elasticsearch {what} failed: {exc}")


class ElasticStore:
    def __init__(self, client: Any, alias: str = "vidx-events", hybrid: EsHybrid = EsHybrid.auto,
                 url: str = "", max_retries: int = 5, initial_backoff: float = 2.0, index: str | None = None,
                 shards: int = 1, replicas: int = 0) -> None:
        self.es = client
        self.alias = alias
        # where reads and writes go: the alias, or (while `vidx reindex` rebuilds) a new index not yet behind it
        self.target = index or alias
        self.hybrid = hybrid
        self.shards, self.replicas = shards, replicas
        self.url = url
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self._license: str | None = None

    @classmethod
    def from_settings(cls, s: Settings, check: bool = True) -> ElasticStore:
        from elasticsearch import Elasticsearch

        assert s.es_url
        kw: dict[str, Any] = dict(request_timeout=s.es_timeout, max_retries=3, retry_on_timeout=True)
        if s.es_api_key is not None:
            kw["api_key"] = s.es_api_key.get_secret_value()
        elif s.es_username:
            kw["basic_auth"] = (s.es_username, s.es_password.get_secret_value() if s.es_password else "")
        if s.es_ca_cert is not None:
            kw["ca_certs"] = str(s.es_ca_cert)
        if s.es_fingerprint:
            kw["ssl_assert_fingerprint"] = s.es_fingerprint
        store = cls(Elasticsearch(s.es_url, **kw), alias=s.es_index, hybrid=s.es_hybrid, url=s.es_url,
                    shards=s.es_shards, replicas=s.es_replicas)
        if check:
            store.ping()
        return store

    # -- connection and schema ---------------------------------------------------
    def ping(self) -> dict[str, Any]:
        try:
            info = self.es.info()
        except Exception as exc:
            raise _es_error(exc, "connecting", self.url) from exc
        version = info.get("version", {}).get("number", "?")
        log.info("Elasticsearch %s at %s, alias %s", version, self.url, self.alias)
        return dict(info)

    def setup(self, dims: int, embedding_model: str) -> dict[str, Any]:
        """Install the template, and an index behind the alias when there is none. Idempotent."""
        body = mappings.index_template(self.alias, dims, embedding_model, self.shards, self.replicas)
        try:
            self.es.indices.put_index_template(name=self.alias, body=body)
            if self.es.indices.exists_alias(name=self.alias):
                self._check_index(embedding_model, dims)
                created = None
            else:
                if self.es.indices.exists(index=self.alias):
                    raise StoreError(
                        f"{self.alias} is a concrete index, not an alias (auto-created without the vidx template?). "
                        f"Delete it or set VIDX_ES_INDEX to another name, then run `vidx es-setup`."
                    )
                created = f"{self.alias}-{time.strftime('%Y%m%d%H%M%S')}"
                self.es.indices.create(index=created, aliases={self.alias: {"is_write_index": True}})
        except StoreError:
            raise
        except Exception as exc:
            raise _es_error(exc, "setup", self.url) from exc
        return {"template": self.alias, "alias": self.alias, "created_index": created,
                "schema_version": mappings.schema_version(), "dims": dims, "embedding_model": embedding_model}

    def _check_index(self, embedding_model: str, dims: int) -> None:
        got = self.es.indices.get_mapping(index=self.alias)
        for index, m in dict(got).items():
            meta = m.get("mappings", {}).get("_meta", {})
            if "schema_version" not in meta:
                raise SchemaMismatch(f"index {index} behind {self.alias} was not made from the vidx template; "
                                 "run `vidx reindex` into a new index")
            if int(meta["schema_version"]) != mappings.schema_version():
                raise SchemaMismatch(f"index {index} has schema version {meta['schema_version']}, vidx needs "
                                 f"{mappings.schema_version()}: run `vidx reindex`")
            have_model, have_dims = meta.get("embedding_model"), int(meta.get("dims") or 0)
            if (have_model, have_dims) != (embedding_model, dims):
                raise SchemaMismatch(f"index {index} holds vectors of {have_model} ({have_dims} dims), the embedder is "
                                 f"{embedding_model} ({dims} dims): run `vidx reindex` or set VIDX_EMBED_MODEL back")

    def embedding_model(self) -> str | None:
        """The model whose vectors the index behind the alias holds (None: no index yet)."""
        try:
            if not self.es.indices.exists_alias(name=self.alias):
                return None
            got = dict(self.es.indices.get_mapping(index=self.alias))
        except Exception as exc:
            raise _es_error(exc, "get_mapping", self.url) from exc
        for m in got.values():
            model = m.get("mappings", {}).get("_meta", {}).get("embedding_model")
            if model:
                return str(model)
        return None

    def schema_matches(self, embedding_model: str, dims: int) -> bool:
        try:
            if not self.es.indices.exists_alias(name=self.alias):
                return True  # nothing yet: `setup` makes it right
            self._check_index(embedding_model, dims)
        except StoreError:
            return False
        except Exception as exc:
            raise _es_error(exc, "checking the alias", self.url) from exc
        return True

    def ensure_schema(self, embedding_model: str, dims: int) -> None:
        if self.target != self.alias:  # a rebuild target was made from the current template
            return
        try:
            exists = self.es.indices.exists_alias(name=self.alias)
        except Exception as exc:
            raise _es_error(exc, "checking the alias", self.url) from exc
        if exists:
            self._check_index(embedding_model, dims)
        else:
            self.setup(dims, embedding_model)

    # -- rebuild (vidx reindex): a new index, then one atomic alias swap ----------------
    def begin_rebuild(self, embedding_model: str, dims: int) -> ElasticStore:
        """A store writing to a new index made from the current template; searches keep
        using the old index behind the alias until :meth:`finish_rebuild` swaps it."""
        body = mappings.index_template(self.alias, dims, embedding_model, self.shards, self.replicas)
        new = f"{self.alias}-{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 1_000_000:06d}"
        try:
            self.es.indices.put_index_template(name=self.alias, body=body)
            self.es.indices.create(index=new)
        except Exception as exc:
            raise _es_error(exc, "creating the new index", self.url) from exc
        log.info("rebuilding into %s (alias %s still points at the old index)", new, self.alias)
        return ElasticStore(self.es, alias=self.alias, hybrid=self.hybrid, url=self.url, max_retries=self.max_retries,
                            initial_backoff=self.initial_backoff, index=new, shards=self.shards,
                            replicas=self.replicas)

    def finish_rebuild(self, target: EventStore, keep_old: bool = False) -> str:
        """Point the alias at the rebuilt index in one ``_aliases`` call, then drop the old index."""
        new = getattr(target, "target", None)
        if not isinstance(new, str) or new == self.alias:
            raise StoreError("finish_rebuild needs the store that begin_rebuild returned")
        try:
            old = list(dict(self.es.indices.get_alias(name=self.alias))) if \
                self.es.indices.exists_alias(name=self.alias) else []
            actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": self.alias}} for i in old if i != new]
            actions.append({"add": {"index": new, "alias": self.alias, "is_write_index": True}})
            self.es.indices.update_aliases(actions=actions)
            if old and not keep_old:
                self.es.indices.delete(index=",".join(i for i in old if i != new))
        except Exception as exc:
            raise _es_error(exc, "switching the alias", self.url) from exc
        kept = f"; old index kept: {', '.join(old)}" if old and keep_old else ""
        return f"alias {self.alias} now points at {new}{kept}"

    def abort_rebuild(self, target: EventStore) -> str:
        new = getattr(target, "target", None)
        if not isinstance(new, str) or new == self.alias:
            return f"alias {self.alias} unchanged"
        try:
            self.es.indices.delete(index=new, ignore_unavailable=True)
        except Exception as exc:
            return f"alias {self.alias} unchanged; could not delete the partial index {new}: {exc}"
        return f"alias {self.alias} unchanged (still the old index); the partial index {new} was deleted"

    # -- writes ------------------------------------------------------------------
    def _actions(self, events: Sequence[Event], run_id: str) -> Iterator[dict[str, Any]]:
        now = datetime.now(UTC).isoformat()
        for e in events:
            doc = e.doc()
            doc["run_id"] = run_id
            doc["@timestamp"] = e.indexed_at or now
            doc["duration_sec"] = round(e.end_sec - e.start_sec, 3)
            doc["video_name"] = PurePath(e.video_path).name
            if doc.get("embedding") is None:
                doc.pop("embedding", None)
            yield {"_op_type": "index", "_index": self.target, "_id": e.event_id, "_source": doc}

    def replace_video_events(self, video_id: str, events: Sequence[Event]) -> WriteReport:
        from elasticsearch import helpers

        run_id = events[0].run_id if events and events[0].run_id else f"r{time.time_ns()}"
        for e in events:
            if e.video_id != video_id:
                raise StoreError(f"event {e.event_id} belongs to {e.video_id}, not {video_id}")
            e.run_id = run_id
        report = WriteReport()
        overwritten = self._sources(video_id, [e.event_id for e in events])
        try:
            for ok, item in helpers.streaming_bulk(
                self.es, self._actions(events, run_id), chunk_size=500, max_retries=self.max_retries,
                initial_backoff=self.initial_backoff, max_backoff=60, raise_on_error=False,
                raise_on_exception=False, refresh="wait_for",
            ):
                if ok:
                    report.written += 1
                else:
                    op = next(iter(item.values()))
                    err = op.get("error")
                    reason = err.get("reason", str(err)) if isinstance(err, dict) else str(err)
                    etype = err.get("type", "") if isinstance(err, dict) else ""
                    report.failed.append((str(op.get("_id")), f"{etype}: {reason}" if etype else reason))
        except Exception as exc:
            raise _es_error(exc, "bulk write", self.url) from exc
        for eid, reason in report.failed:
            log.error("event %s was not stored: %s", eid, reason)
        if report.failed:
            # all or nothing for readers: a partial new set never stands beside (or replaces)
            # the complete old one. What `vidx verify` finds if even this rollback fails.
            self._roll_back(video_id, run_id, overwritten)
            return report
        try:
            resp = self.es.delete_by_query(
                index=self.target,
                query={"bool": {"filter": [{"term": {"video_id": video_id}}],
                                "must_not": [{"term": {"run_id": run_id}}]}},
                refresh=True, conflicts="proceed",
            )
            report.deleted = int(resp.get("deleted", 0))
        except Exception as exc:
            raise _es_error(exc, "removing stale events", self.url) from exc
        return report

    def _sources(self, video_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored documents of this video that a rewrite will overwrite (same event id)."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 1000):
            chunk = list(ids[i:i + 1000])
            body = {"size": len(chunk), "query": {"bool": {"filter": [{"term": {"video_id": video_id}},
                                                                      {"ids": {"values": chunk}}]}}}
            for h in self._search(body, "reading the events a rewrite replaces")["hits"]["hits"]:
                out[str(h["_id"])] = h["_source"]
        return out

    def _roll_back(self, video_id: str, run_id: str, overwritten: dict[str, dict[str, Any]]) -> None:
        from elasticsearch import helpers

        try:
            self.es.delete_by_query(index=self.target, refresh=True, conflicts="proceed",
                                    query={"bool": {"filter": [{"term": {"video_id": video_id}},
                                                               {"term": {"run_id": run_id}}]}})
            if overwritten:
                helpers.bulk(self.es, ({"_op_type": "index", "_index": self.target, "_id": k, "_source": v}
                                       for k, v in overwritten.items()), refresh="wait_for",
                             max_retries=self.max_retries, initial_backoff=self.initial_backoff)
            log.warning("the partial rewrite of video %s was rolled back; its previous events stay", video_id)
        except Exception as exc:  # verify finds what is left
            log.error("could not roll back the partial rewrite of video %s (%s): run `vidx verify --fix`",
                      video_id, exc)

    def delete_video(self, video_id: str) -> int:
        try:
            resp = self.es.delete_by_query(index=self.target, query={"term": {"video_id": video_id}},
                                           refresh=True, conflicts="proceed")
        except Exception as exc:
            raise _es_error(exc, "delete", self.url) from exc
        return int(resp.get("deleted", 0))

    # -- search -------------------------------------------------------------------
    @staticmethod
    def _filters(video_id: str | None) -> list[dict[str, Any]]:
        return [{"term": {"video_id": video_id}}] if video_id else []

    @staticmethod
    def _text_query(text: str) -> dict[str, Any]:
        return {"multi_match": {"query": text, "fields": TEXT_FIELDS, "type": "best_fields"}}

    def keyword_body(self, text: str, size: int, video_id: str | None) -> dict[str, Any]:
        return {
            "size": size,
            "track_total_hits": TOTAL_CAP,
            "query": {"bool": {"must": [self._text_query(text)], "filter": self._filters(video_id)}},
            "highlight": HIGHLIGHT,
            "_source": {"excludes": ["embedding"]},
        }

    def knn_body(self, vector: np.ndarray, size: int, video_id: str | None, text: str = "") -> dict[str, Any]:
        knn: dict[str, Any] = {"field": "embedding", "query_vector": [float(x) for x in vector], "k": size,
                               "num_candidates": min(10_000, max(100, size * 10))}
        if video_id:
            knn["filter"] = self._filters(video_id)
        body: dict[str, Any] = {"size": size, "knn": knn, "_source": {"excludes": ["embedding"]}}
        if text:  # vectors cannot be highlighted: highlight the query words instead
            body["highlight"] = {**HIGHLIGHT, "fields": {
                f: {**opts, "highlight_query": {"match": {f: text}}} for f, opts in HIGHLIGHT_FIELDS.items()
            }}
        return body

    def rrf_body(self, text: str, vector: np.ndarray, size: int, video_id: str | None) -> dict[str, Any]:
        window = max(HYBRID_WINDOW, size)
        knn = self.knn_body(vector, window, video_id)["knn"]
        return {
            "size": size,
            "retriever": {"rrf": {
                "retrievers": [
                    {"standard": {"query": {"bool": {"must": [self._text_query(text)],
                                                     "filter": self._filters(video_id)}}}},
                    {"knn": knn},
                ],
                "rank_window_size": window,
                "rank_constant": RRF_K,
            }},
            "highlight": HIGHLIGHT,
            "_source": {"excludes": ["embedding"]},
        }

    def _hits(self, resp: Any) -> tuple[list[Hit], int]:
        hits = []
        for h in resp["hits"]["hits"]:
            e = Event.model_validate(h["_source"])
            hl = {k.split(".")[0]: v for k, v in (h.get("highlight") or {}).items()}
            hits.append(Hit(event=e, score=round(float(h.get("_score") or 0.0), 6), highlights=hl))
        total = resp["hits"].get("total", {})
        return hits, int(total.get("value", len(hits)) if isinstance(total, dict) else total)

    def _search(self, body: dict[str, Any], what: str) -> Any:
        try:
            return self.es.search(index=self.target, **body)
        except Exception as exc:
            raise _es_error(exc, what, self.url) from exc

    def search_keyword(
        self, text: str, size: int, video_id: str | None = None, highlight: bool = True
    ) -> SearchResult:  # Elasticsearch highlights on the server: cheap, so always
        if not text.strip():
            return SearchResult(0, [])
        hits, total = self._hits(self._search(self.keyword_body(text, size, video_id), "keyword search"))
        return SearchResult(total=total, hits=hits)

    def search_knn(self, vector: np.ndarray, size: int, video_id: str | None = None, text: str = "") -> SearchResult:
        hits, _ = self._hits(self._search(self.knn_body(vector, size, video_id, text), "semantic search"))
        for h in hits:  # Elasticsearch's cosine _score is (1 + cos) / 2: give the cosine, like every store
            h.score = round(2 * h.score - 1, 6)
        return SearchResult(total=len(hits), hits=hits)

    def server_rrf(self) -> bool:
        if self.hybrid == EsHybrid.rrf:
            return True
        if self.hybrid == EsHybrid.client:
            return False
        if self._license is None:
            try:
                self._license = str(self.es.license.get()["license"]["type"])
            except Exception as exc:  # no licence API (serverless, OpenSearch-like): fuse in vidx
                log.info("licence unknown (%s): hybrid fusion in vidx", exc)
                self._license = "unknown"
        return self._license in ENTERPRISE

    def search_hybrid(self, text: str, vector: np.ndarray, size: int, video_id: str | None = None) -> SearchResult:
        if self.server_rrf():
            hits, total = self._hits(self._search(self.rrf_body(text, vector, size, video_id), "hybrid search"))
            return SearchResult(total=total, hits=hits)
        window = max(HYBRID_WINDOW, size)
        searches = [{"index": self.target}, self.keyword_body(text, window, video_id),
                    {"index": self.target}, self.knn_body(vector, window, video_id, text)]
        try:
            resp = self.es.msearch(searches=searches)
        except Exception as exc:
            raise _es_error(exc, "hybrid search", self.url) from exc
        lists, total = [], 0
        for r in resp["responses"]:
            if "error" in r:
                raise StoreError(f"hybrid search failed: {r['error']}")
            hits, t = self._hits(r)
            lists.append(hits)
            total = max(total, t)
        fused = rrf_fuse(lists, size)
        ids = {h.event.event_id for hl in lists for h in hl}
        return SearchResult(total=max(total, len(ids)), hits=fused)

    # -- the query plan (vidx.plan): one request per search, filters inside it --------------
    def plan_body(self, plan: Plan, vector: np.ndarray | None) -> dict[str, Any]:
        """The request body of a plan: ``bool`` (``filter``/``must_not``) narrows before ranking;
        words are ``constant_score`` clauses whose count ``minimum_should_match`` holds to the
        threshold; ``knn`` carries the same filters and the threshold's cosine as ``similarity``;
        facets are ``aggs`` over every match; ``track_total_hits`` counts to 10,000."""
        f = plan.filters
        filters = plan_filters(f)
        must_not = [_phrase_clause(x) for x in f.exclude]
        body: dict[str, Any] = {"from": plan.offset, "size": plan.size, "track_total_hits": TOTAL_CAP,
                                "_source": {"excludes": ["embedding"]}}
        if plan.facets:
            body["aggs"] = FACET_AGGS
        by_vector = vector is not None and plan.mode == SearchMode.semantic
        if not plan.has_text and not by_vector:
            body["query"] = {"bool": {"filter": filters, "must_not": must_not}}
            body["sort"] = [{"video_name": "asc"}, {"start_sec": "asc"}, {"event_id": "asc"}]
            return body
        words = words_clause(plan) if plan.has_text else {"match_none": {}}
        text_q: dict[str, Any] = {"bool": {"must": [words], "filter": filters, "must_not": must_not}}
        if plan.phrase:
            text_q["bool"]["should"] = [{"constant_score": {"filter": _phrase_clause(plan.phrase), "boost": 0.15}}]
        if plan.mode == SearchMode.keyword:
            body["query"] = text_q
            body["sort"] = ["_score", {"duration_sec": "asc"}, {"event_id": "asc"}]
            return body
        assert vector is not None
        qv = [float(x) for x in vector]
        cut = plan.min_cosine()
        body["_source"] = True  # the page's vectors give its exact semantic scores
        if filters or must_not:
            # filtered: exact cosine over the allowed events (script_score), its threshold as min_score,
            # so totals, pages and facets are exact however selective the filter
            sem: dict[str, Any] = {"script_score": {
                "query": {"exists": {"field": "embedding"}},
                "script": {"source": COSINE_SCRIPT, "params": {"query_vector": qv}}}}
            if cut > -1:
                sem["script_score"]["min_score"] = round(min(cut, 1.0001) + 1.0, 6)
            if plan.mode == SearchMode.semantic:
                body["query"] = {"bool": {"must": [sem], "filter": filters, "must_not": must_not}}
            else:
                either = {"bool": {"should": [words, sem], "minimum_should_match": 1}}
                body["query"] = {"bool": {"must": [either], "filter": filters, "must_not": must_not,
                                          **({"should": text_q["bool"]["should"]} if plan.phrase else {})}}
            return body
        # unfiltered: approximate kNN (HNSW) for the semantic half, at least KNN_WINDOW neighbours
        k = min(TOTAL_CAP, max(plan.end, KNN_WINDOW))
        knn: dict[str, Any] = {"field": "embedding", "query_vector": qv, "k": k,
                               "num_candidates": min(TOTAL_CAP, max(k, 100))}
        if cut > -1:
            knn["similarity"] = round(min(cut, 1.0001), 6)
        body["knn"] = knn
        if plan.mode == SearchMode.hybrid:
            body["query"] = text_q
        return body

    def search(self, plan: Plan, vector: np.ndarray | None = None) -> PlanResult:
        from vidx import relevance as rel

        resp = self._search(self.plan_body(plan, vector), f"{plan.mode.value} search")
        total = resp["hits"].get("total", {})
        n, relation = int(total.get("value", 0)), str(total.get("relation", "eq"))
        approximate = vector is not None and plan.mode == SearchMode.semantic and plan.filters.empty
        # kNN returns at most k neighbours: a full set may be the start of more
        exact = relation == "eq" and not (approximate and n >= min(TOTAL_CAP, max(plan.end, KNN_WINDOW)))
        hits: list[Hit] = []
        q = np.asarray(vector, dtype=np.float64) if vector is not None else None
        cal = rel.Calibration(plan.unrelated, plan.paraphrase)
        for h in resp["hits"]["hits"]:
            src = dict(h["_source"])
            emb = src.pop("embedding", None)
            e = Event.model_validate(src)
            if not plan.has_text and q is None:
                hits.append(Hit(event=e, score=1.0))
                continue
            parts: dict[str, float] = {}
            kw = rel.keyword_relevance(e, plan.words, plan.phrase)
            if plan.mode != SearchMode.semantic:
                parts["keyword"] = kw
            if q is not None:
                cos = -1.0
                if emb:
                    v = np.asarray(emb, dtype=np.float64)
                    cos = float(v @ q / ((np.linalg.norm(v) * np.linalg.norm(q)) or 1.0))
                parts["semantic"] = rel.semantic_relevance(cos, cal)
            score = parts.get("keyword", 0.0) if plan.mode == SearchMode.keyword else \
                parts["semantic"] if plan.mode == SearchMode.semantic else rel.fuse(kw, parts["semantic"])
            hits.append(Hit(event=e, score=score, scores=parts))
        if plan.has_text or q is not None:  # the engine ranks in its own terms; the page shows vidx's scores
            hits.sort(key=lambda h: -h.score)
        below = 0
        if plan.has_text and n == 0 and plan.mode != SearchMode.semantic:
            below = self._count_any_word(plan)
        facets = _facets(resp.get("aggregations") or {}) if plan.facets else {}
        return PlanResult(total=n, exact=exact, hits=hits, facets=facets, below=below)

    def _count_any_word(self, plan: Plan) -> int:
        """Events holding a query word but below the threshold (asked only when nothing passed)."""
        query = {"bool": {"must": [{"multi_match": {"query": " ".join(plan.words), "fields": WORD_FIELDS}}],
                          "filter": plan_filters(plan.filters),
                          "must_not": [_phrase_clause(x) for x in plan.filters.exclude]}}
        try:
            return int(self.es.count(index=self.target, query=query)["count"])
        except Exception as exc:
            raise _es_error(exc, "count", self.url) from exc

    # -- reads -----------------------------------------------------------------------
    def get_event(self, event_id: str) -> Event | None:
        from elasticsearch import NotFoundError

        try:
            resp = self.es.search(index=self.target, size=1, query={"ids": {"values": [event_id]}},
                                  source_excludes=["embedding"])
        except NotFoundError:
            return None
        except Exception as exc:
            raise _es_error(exc, "get", self.url) from exc
        hits = resp["hits"]["hits"]
        return Event.model_validate(hits[0]["_source"]) if hits else None

    def event_vector(self, event_id: str) -> np.ndarray | None:
        try:
            resp = self.es.search(index=self.target, size=1, query={"ids": {"values": [event_id]}},
                                  source_includes=["embedding"])
        except Exception as exc:
            raise _es_error(exc, "reading a vector", self.url) from exc
        hits = resp["hits"]["hits"]
        vec = hits[0]["_source"].get("embedding") if hits else None
        return np.asarray(vec, dtype=np.float32) if vec else None

    def events_for_video(self, video_id: str, page_size: int = 1000) -> list[Event]:
        out: list[Event] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"size": page_size, "query": {"term": {"video_id": video_id}},
                                    "sort": [{"start_sec": "asc"}, {"event_id": "asc"}],
                                    "_source": {"excludes": ["embedding"]}}
            if after is not None:
                body["search_after"] = after
            hits = self._search(body, "reading a video's events")["hits"]["hits"]
            out.extend(Event.model_validate(h["_source"]) for h in hits)
            if len(hits) < page_size:
                return out
            after = hits[-1]["sort"]

    def event_vectors(self, video_id: str, page_size: int = 500) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"size": page_size, "query": {"term": {"video_id": video_id}},
                                    "sort": [{"event_id": "asc"}], "_source": {"includes": ["event_id", "embedding"]}}
            if after is not None:
                body["search_after"] = after
            hits = self._search(body, "reading a video's vectors")["hits"]["hits"]
            for h in hits:
                vec = h["_source"].get("embedding")
                if vec:
                    out[h["_source"]["event_id"]] = np.asarray(vec, dtype=np.float32)
            if len(hits) < page_size:
                return out
            after = hits[-1]["sort"]

    def _composite(self, fields: Sequence[str], page_size: int) -> Iterator[tuple[dict[str, Any], int]]:
        """Every bucket of a ``composite`` aggregation, paged: no cap on the number of keys
        (a ``terms`` aggregation stops at its ``size``)."""
        after: dict[str, Any] | None = None
        while True:
            comp: dict[str, Any] = {"size": page_size, "sources": [{f: {"terms": {"field": f}}} for f in fields]}
            if after is not None:
                comp["after"] = after
            try:
                resp = self.es.search(index=self.target, size=0, aggs={"videos": {"composite": comp}})
            except Exception as exc:
                raise _es_error(exc, "aggregation", self.url) from exc
            agg = resp["aggregations"]["videos"]
            for b in agg["buckets"]:
                yield b["key"], int(b["doc_count"])
            after = agg.get("after_key")
            if not agg["buckets"] or after is None:
                return

    def video_event_counts(self, page_size: int = COUNT_PAGE) -> dict[str, int]:
        """Events per video."""
        return {str(k["video_id"]): n for k, n in self._composite(["video_id"], page_size)}

    def video_paths(self, page_size: int = COUNT_PAGE) -> dict[str, str]:
        return {str(k["video_id"]): str(k["video_path"])
                for k, _ in self._composite(["video_id", "video_path"], page_size)}

    def video_languages(self, page_size: int = COUNT_PAGE) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, _ in self._composite(["video_id", "language"], page_size):
            langs = out.setdefault(str(k["video_id"]), [])
            if k.get("language"):
                langs.append(str(k["language"]))
        return {v: sorted(ls) for v, ls in out.items()}

    def repoint_video(self, video_id: str, video_path: str) -> int:
        try:
            resp = self.es.update_by_query(
                index=self.target, query={"term": {"video_id": video_id}}, refresh=True, conflicts="proceed",
                script={"source": "ctx._source.video_path = params.p; ctx._source.video_name = params.n",
                        "lang": "painless", "params": {"p": video_path, "n": PurePath(video_path).name}},
            )
        except Exception as exc:
            raise _es_error(exc, "re-pointing events", self.url) from exc
        return int(resp.get("updated", 0))

    def count(self, video_id: str | None = None) -> int:
        try:
            if video_id:
                return int(self.es.count(index=self.target, query={"term": {"video_id": video_id}})["count"])
            return int(self.es.count(index=self.target)["count"])
        except Exception as exc:
            raise _es_error(exc, "count", self.url) from exc

    def check_indexes(self, repair: bool = False) -> list[str]:
        return []  # the cluster keeps its own indexes consistent with the documents

    def health(self) -> dict[str, Any]:
        try:
            h = self.es.cluster.health()
        except Exception as exc:
            return {"status": "error", "store": "elasticsearch", "error": str(_es_error(exc, "health", self.url))}
        return {"status": "ok" if h.get("status") in ("green", "yellow") else "degraded", "store": "elasticsearch",
                "cluster": h.get("status")}

    def close(self) -> None:
        try:
            self.es.close()
        except Exception:  # pragma: no cover
            pass
