"""Every EventStore implementation runs the same contract suite: add a factory here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vidx.store.base import EventStore

StoreFactory = Callable[[Path], EventStore]


def _embedded(tmp: Path) -> EventStore:
    from vidx.store.embedded import EmbeddedStore

    return EmbeddedStore(tmp / "events.sqlite3")


def _elastic(tmp: Path) -> EventStore:
    from tests.es_store import make_elastic_store

    return make_elastic_store()


def _live_elastic(tmp: Path) -> EventStore:
    """A real cluster (VIDX_TEST_ES_URL); each test gets its own alias, removed afterwards."""
    url = os.environ.get("VIDX_TEST_ES_URL")
    if not url:
        pytest.skip("set VIDX_TEST_ES_URL to run the contract suite against a real Elasticsearch")
    from vidx.config import load_settings
    from vidx.store.elastic import ElasticStore

    s = load_settings(es_url=url, es_index=f"vidx-test-{uuid.uuid4().hex[:8]}",
                      es_api_key=os.environ.get("VIDX_TEST_ES_API_KEY") or None,
                      es_username=os.environ.get("VIDX_TEST_ES_USERNAME") or None,
                      es_password=os.environ.get("VIDX_TEST_ES_PASSWORD") or None,
                      es_ca_cert=os.environ.get("VIDX_TEST_ES_CA_CERT") or None)
    return ElasticStore.from_settings(s)


FACTORIES: dict[str, StoreFactory] = {"embedded": _embedded, "elastic": _elastic, "live-elastic": _live_elastic}


@pytest.fixture(params=[
    "embedded",
    "elastic",
    pytest.param("live-elastic", marks=pytest.mark.live),
])
def store(request: Any, tmp_path: Path) -> Iterator[EventStore]:
    s = FACTORIES[request.param](tmp_path)
    yield s
    if request.param == "live-elastic":
        es = s.es  # type: ignore[attr-defined]
        es.indices.delete(index=f"{s.alias}-*", ignore_unavailable=True)  # type: ignore[attr-defined]
        es.indices.delete_index_template(name=s.alias)  # type: ignore[attr-defined]
    s.close()
