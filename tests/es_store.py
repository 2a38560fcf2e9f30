"""vidx's ElasticStore on the fake Elasticsearch's transport: the wiring between the code
under test and the independent fake (kept out of tests/fakes, which import nothing from vidx)."""

from __future__ import annotations

from typing import Any

from tests.fakes.es_server import FakeES, make_client


def make_elastic_store(fake: FakeES | None = None, **kw: Any) -> Any:
    from vidx.store.elastic import ElasticStore

    fake = fake or FakeES()
    store = ElasticStore(make_client(fake), url="http://127.0.0.1:9200", initial_backoff=0.01, **kw)
    store.fake = fake  # type: ignore[attr-defined]
    return store
